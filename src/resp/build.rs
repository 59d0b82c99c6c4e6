//! Building owned [`Value`]s from a scanned reply's tape.
//!
//! Strings become [`Bytes`] views of one shared buffer per reply: the decoder's own buffer
//! (no copy), or for a borrowed slice one copy of the reply's bytes made the first time a
//! string is met (none for a reply without strings). Recursion follows the tape's nesting,
//! which the scanner bounds by [`Limits::HARD_MAX_DEPTH`](super::Limits::HARD_MAX_DEPTH).

use std::sync::Arc;

use super::scan::{next_sibling, string_bytes, Node, Span};
use super::{Bytes, Str, Value};
use crate::error::ServerError;

/// Where the strings of a reply come from.
pub(crate) enum Source<'a> {
    /// The reply starts at `base` in a shared buffer: strings are views of it.
    Shared { buf: &'a Arc<Vec<u8>>, base: usize },
    /// The reply is a borrowed slice: the first string copies it into `copy`.
    Borrowed {
        reply: &'a [u8],
        copy: Option<Arc<Vec<u8>>>,
    },
}

impl Source<'_> {
    fn reply(&self) -> &[u8] {
        match self {
            Source::Shared { buf, base } => buf.get(*base..).unwrap_or_default(),
            Source::Borrowed { reply, .. } => reply,
        }
    }

    fn text(&self, s: Span) -> &[u8] {
        self.reply().get(s.start..s.end).unwrap_or_default()
    }

    fn bytes(&mut self, s: Span) -> Bytes {
        if s.start >= s.end {
            return Bytes::new();
        }
        match self {
            Source::Shared { buf, base } => Bytes::view(
                buf,
                base.saturating_add(s.start),
                base.saturating_add(s.end),
            ),
            Source::Borrowed { reply, copy } => {
                let buf = copy.get_or_insert_with(|| Arc::new(reply.to_vec()));
                Bytes::view(buf, s.start, s.end)
            }
        }
    }

    fn string(&self, s: Span) -> String {
        String::from_utf8_lossy(self.text(s)).into_owned()
    }
}

/// The value rooted at tape index `idx`.
pub(crate) fn build(tape: &[Node], idx: usize, src: &mut Source<'_>) -> Value {
    let Some(node) = tape.get(idx) else {
        return Value::Nil;
    };
    match *node {
        Node::Nil => Value::Nil,
        // Checked UTF-8 by the scanner.
        Node::Simple(s) => Value::Simple(Str::from_checked(src.bytes(s))),
        // Not UTF-8: lossy (invalid sequences become U+FFFD).
        Node::SimpleRaw(s) => Value::Simple(Str::from(src.string(s))),
        Node::Error(s) | Node::BulkError(s) => Value::Error(ServerError::new(src.string(s))),
        Node::Int(i) => Value::Int(i),
        Node::Bulk(s) => Value::Bulk(src.bytes(s)),
        Node::Bool(b) => Value::Bool(b),
        Node::Double(d) => Value::Double(d),
        Node::BigNumber(s) => Value::BigNumber(src.string(s)),
        Node::Verbatim(s) => {
            let format = src.string(Span {
                start: s.start,
                end: s.start.saturating_add(3).min(s.end),
            });
            let text = src.bytes(Span {
                start: s.start.saturating_add(4).min(s.end),
                end: s.end,
            });
            Value::Verbatim { format, text }
        }
        Node::Array(a) => Value::Array(items(tape, idx, a.children, src)),
        Node::Set(a) => Value::Set(items(tape, idx, a.children, src)),
        Node::Map(a) => Value::Map(pairs(tape, idx.saturating_add(1), a.children / 2, src).0),
        Node::Attribute(a) => {
            let (attributes, value_at) = pairs(tape, idx.saturating_add(1), a.children / 2, src);
            Value::Attribute {
                attributes,
                value: Box::new(build(tape, value_at, src)),
            }
        }
        Node::Push(a) => {
            let first = idx.saturating_add(1);
            let kind = string_bytes(tape, src.reply(), first)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            let mut data = Vec::with_capacity(a.children.saturating_sub(1));
            let mut i = next_sibling(tape, first);
            for _ in 1..a.children {
                data.push(build(tape, i, src));
                i = next_sibling(tape, i);
            }
            Value::Push { kind, data }
        }
        Node::Streamed(_) => Value::Bulk(Bytes::from(
            string_bytes(tape, src.reply(), idx)
                .map(|b| b.into_owned())
                .unwrap_or_default(),
        )),
    }
}

/// The `n` children of the aggregate at `idx`. Bulk strings and integers (most elements
/// of most replies) are built right in their slot.
fn items(tape: &[Node], idx: usize, n: usize, src: &mut Source<'_>) -> Vec<Value> {
    let mut out = Vec::with_capacity(n);
    let mut i = idx.saturating_add(1);
    for _ in 0..n {
        match tape.get(i) {
            Some(&Node::Bulk(s)) => {
                push_in_place(&mut out, || Value::Bulk(src.bytes(s)));
                i = i.saturating_add(1);
            }
            Some(&Node::Int(v)) => {
                push_in_place(&mut out, || Value::Int(v));
                i = i.saturating_add(1);
            }
            _ => {
                out.push(build(tape, i, src));
                i = next_sibling(tape, i);
            }
        }
    }
    out
}

/// `items.push(make())`, written so that the value is built in its slot: a plain `push`
/// stages the 56-byte enum on the stack and copies it.
#[inline(always)]
fn push_in_place(items: &mut Vec<Value>, make: impl FnOnce() -> Value) {
    let mut make = Some(make);
    items.resize_with(items.len().saturating_add(1), || match make.take() {
        Some(f) => f(),
        None => Value::Nil,
    });
}

/// `n` key/value pairs starting at tape index `first`, and the index after them.
fn pairs(
    tape: &[Node],
    first: usize,
    n: usize,
    src: &mut Source<'_>,
) -> (Vec<(Value, Value)>, usize) {
    let mut out = Vec::with_capacity(n);
    let mut i = first;
    for _ in 0..n {
        let k = build(tape, i, src);
        i = next_sibling(tape, i);
        let v = build(tape, i, src);
        i = next_sibling(tape, i);
        out.push((k, v));
    }
    (out, i)
}
