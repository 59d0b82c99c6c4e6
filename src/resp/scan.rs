//! The reply scanner: the one parsing core of the codec.
//!
//! It reads one reply at the front of a byte slice, checks every rule of RESP2/RESP3 and
//! [`Limits`], and records the reply's structure on a *tape*: one [`Node`] per value, in
//! wire order (an aggregate's node is followed by its children's subtrees), with offsets
//! into the slice instead of copies. The tape is reused from reply to reply, so scanning
//! allocates nothing once it has grown to the size of the largest reply. Everything else
//! reads the tape: [`Reply`](super::Reply) and [`Frame`](super::Frame) walk it in place,
//! and the [`Value`](super::Value) builder (`build.rs`) turns it into owned values.
//!
//! The scan is resumable: when the slice ends inside the reply, the scanner keeps its tape,
//! its stack of open aggregates and its position, and the next call continues where it
//! stopped with the same slice grown longer (offsets are relative to the reply's first
//! byte, so the caller may move the bytes between calls). Nothing complete is parsed twice;
//! a partial line is not rescanned; a partial body costs a header re-read (a few bytes).
//!
//! Every length from the wire is checked against [`Limits`] before it is used, nothing is
//! reserved from a declared length (the tape grows one node per value actually received),
//! nesting is bounded by an explicit stack, and all arithmetic on wire numbers is checked.

use super::lines::{
    fast_digits, fast_int, find_line_end, is_type_byte, limit, parse_double, parse_i64, parse_len,
    proto, show, type_name, Len, MAX_DOUBLE_LEN,
};
use super::Limits;
use crate::error::{Limit, Result};

/// A byte range of the reply, relative to its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// An aggregate's shape on the tape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Agg {
    /// Direct children: elements; a map's keys and values; an attribute's keys and values
    /// then the value it describes; a streamed string's chunks.
    pub(crate) children: usize,
    /// Tape index just past this aggregate's subtree (its next sibling).
    pub(crate) end: usize,
}

/// One value on the tape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Node {
    Nil,
    /// `+`: valid UTF-8.
    Simple(Span),
    /// `+` whose bytes are not valid UTF-8 (a script's `redis.status_reply` with binary
    /// text): a legal reply, decoded lossily into a `Value`.
    SimpleRaw(Span),
    /// `-`: any bytes but CR/LF (usually, not always, UTF-8).
    Error(Span),
    /// `!`: any bytes.
    BulkError(Span),
    Int(i64),
    Bulk(Span),
    Bool(bool),
    Double(f64),
    /// `(`: an optional `-` and ASCII digits.
    BigNumber(Span),
    /// `=`: the whole body, `fmt:` prefix included (checked: 3 UTF-8 bytes and `:`).
    Verbatim(Span),
    Array(Agg),
    Set(Agg),
    Map(Agg),
    /// The first child is the push kind (a string, checked UTF-8).
    Push(Agg),
    Attribute(Agg),
    /// A streamed string (`$?`); its children are `Bulk` chunks.
    Streamed(Agg),
}

impl Node {
    /// The RESP type name, as [`Value::type_name`](super::Value::type_name) gives it.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Node::Nil => "nil",
            Node::Simple(_) | Node::SimpleRaw(_) => "simple string",
            Node::Error(_) | Node::BulkError(_) => "error",
            Node::Int(_) => "integer",
            Node::Bulk(_) | Node::Streamed(_) => "bulk string",
            Node::Array(_) => "array",
            Node::Bool(_) => "boolean",
            Node::Double(_) => "double",
            Node::BigNumber(_) => "big number",
            Node::Verbatim(_) => "verbatim string",
            Node::Map(_) => "map",
            Node::Set(_) => "set",
            Node::Attribute(_) => "attribute",
            Node::Push(_) => "push",
        }
    }

    /// The aggregate shape, for aggregates.
    pub(crate) fn agg(&self) -> Option<Agg> {
        match *self {
            Node::Array(a)
            | Node::Set(a)
            | Node::Map(a)
            | Node::Push(a)
            | Node::Attribute(a)
            | Node::Streamed(a) => Some(a),
            _ => None,
        }
    }

    fn set_agg(&mut self, shape: Agg) {
        match self {
            Node::Array(a)
            | Node::Set(a)
            | Node::Map(a)
            | Node::Push(a)
            | Node::Attribute(a)
            | Node::Streamed(a) => *a = shape,
            _ => {}
        }
    }
}

/// Tape index of the node after `idx`'s subtree.
#[inline]
pub(crate) fn next_sibling(tape: &[Node], idx: usize) -> usize {
    match tape.get(idx).and_then(Node::agg) {
        Some(a) => a.end,
        None => idx.saturating_add(1),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpenKind {
    /// Array or set.
    Seq,
    Map,
    Push,
    Attr,
    /// A streamed string: only `;` chunks until `;0`.
    Chunks,
}

/// An aggregate whose children are still arriving.
#[derive(Debug, Clone, Copy)]
struct Open {
    kind: OpenKind,
    /// Its node on the tape.
    node: usize,
    /// Children still expected (not used while `streamed`).
    left: usize,
    /// Children so far.
    count: usize,
    streamed: bool,
    /// A streamed string's bytes so far.
    total: usize,
}

impl Open {
    /// An array, set or map with a length (the fast lane's kind, see [`lane`]).
    #[inline(always)]
    fn counted(&self) -> bool {
        !self.streamed && matches!(self.kind, OpenKind::Seq | OpenKind::Map)
    }

    /// An attribute whose pairs are all in, waiting for the value it describes.
    fn attr_value_phase(&self) -> bool {
        self.kind == OpenKind::Attr && !self.streamed && self.left == 1
    }
}

/// What one step of the scan produced.
enum Item {
    /// A complete value (a leaf, or an empty aggregate), already on the tape: the bytes it
    /// took.
    Leaf(usize),
    /// An aggregate header: its node, how it stays open, and the bytes it took.
    Open(Node, Open, usize),
    /// A streamed string chunk (a `Bulk` child) or its `;0` terminator (`None`).
    Chunk(Option<Span>, usize),
    /// The end marker `.` of a streamed aggregate.
    End(usize),
    /// More bytes are needed.
    Incomplete,
}

/// The scanner's state: the tape of the reply being scanned and what is needed to resume.
#[derive(Debug)]
pub(crate) struct Scan {
    tape: Vec<Node>,
    open: Vec<Open>,
    /// Bytes of the reply scanned so far.
    at: usize,
    /// Bytes after the type byte of the current line already known to hold no CR/LF.
    scanned: usize,
    /// The tape holds a complete reply (cleared by the next scan).
    done: bool,
    /// The complete reply is the single node in `leaf`, not on `tape` (the fast path).
    single: bool,
    leaf: [Node; 1],
    /// When the last scan stopped inside a bulk body: the reply bytes needed to finish that
    /// body (a lower bound for the reply's length), else 0. The decoder grows its buffer
    /// toward it, never past it.
    need: usize,
    /// When the last scan stopped inside the body of a bulk string that *is* the reply (a
    /// `$` item at the top level, not inside an aggregate or after an attribute): its body's
    /// range in the reply (the decoder may then hand the body to a direct read).
    top_bulk: Option<Span>,
}

impl Default for Scan {
    fn default() -> Scan {
        Scan {
            tape: Vec::new(),
            open: Vec::new(),
            at: 0,
            scanned: 0,
            done: false,
            single: false,
            leaf: [Node::Nil],
            need: 0,
            top_bulk: None,
        }
    }
}

/// Largest tape capacity kept between replies (nodes); a bigger one is released.
const RETAINED_NODES: usize = 4096;

impl Scan {
    /// Forget any partial reply.
    pub(crate) fn reset(&mut self) {
        self.tape.clear();
        if self.tape.capacity() > RETAINED_NODES {
            self.tape = Vec::new();
        }
        self.open.clear();
        self.at = 0;
        self.scanned = 0;
        self.done = false;
        self.single = false;
        self.need = 0;
        self.top_bulk = None;
    }

    /// Between replies: release a tape grown by a huge reply (more than
    /// [`RETAINED_NODES`]), so that an idle connection does not keep it.
    pub(crate) fn trim(&mut self) {
        if self.done && self.tape.capacity() > RETAINED_NODES {
            self.tape = Vec::new();
        }
    }

    /// See `need`: the reply bytes known to be needed, 0 when unknown.
    #[inline]
    pub(crate) fn need(&self) -> usize {
        self.need
    }

    /// See `top_bulk`: the body of the top-level bulk string the last scan stopped in.
    #[inline]
    pub(crate) fn top_bulk(&self) -> Option<Span> {
        self.top_bulk
    }

    /// Nodes the tape has room for.
    #[cfg(test)]
    pub(crate) fn tape_capacity(&self) -> usize {
        self.tape.capacity()
    }

    /// The tape of the reply the last successful [`Scan::scan`] completed.
    #[inline(always)]
    pub(crate) fn tape(&self) -> &[Node] {
        if self.single {
            &self.leaf
        } else {
            &self.tape
        }
    }

    /// Scan (or continue scanning) the reply that starts at `buf[0]`. `Ok(Some(n))`: it is
    /// complete, `n` bytes long, and [`Scan::tape`] describes it. `Ok(None)`: `buf` ends
    /// inside it; call again with the same bytes and more. `Err`: a protocol error (the
    /// scanner must then be [`Scan::reset`] before any other use).
    #[inline]
    pub(crate) fn scan(&mut self, buf: &[u8], lim: &Limits) -> Result<Option<usize>> {
        self.need = 0;
        self.top_bulk = None;
        if self.done {
            self.tape.clear();
            self.done = false;
            self.single = false;
            self.at = 0;
        }
        if let Some(len) = self.leaf_reply(buf, lim) {
            return Ok(Some(len));
        }
        loop {
            if self.fast_lane(buf, lim)? {
                self.done = true;
                return Ok(Some(self.at));
            }
            let rest = buf.get(self.at..).unwrap_or_default();
            let completed = match self.item(rest, lim)? {
                Item::Leaf(used) => {
                    self.at = self.at.saturating_add(used);
                    self.tape.len().saturating_sub(1)
                }
                Item::Open(node, open, used) => {
                    self.at = self.at.saturating_add(used);
                    self.open_aggregate(node, open);
                    continue;
                }
                Item::Chunk(Some(span), used) => {
                    self.at = self.at.saturating_add(used);
                    self.add_chunk(span);
                    continue;
                }
                Item::Chunk(None, used) => {
                    self.at = self.at.saturating_add(used);
                    let Some(o) = self.open.pop() else {
                        return Err(proto("streamed string chunk outside a streamed string"));
                    };
                    self.close(o);
                    o.node
                }
                Item::End(used) => {
                    self.at = self.at.saturating_add(used);
                    match self.end_marker()? {
                        Some(closed) => closed,
                        None => continue,
                    }
                }
                Item::Incomplete => return Ok(None),
            };
            if self.finish_child(buf, lim, completed)? {
                self.done = true;
                return Ok(Some(self.at));
            }
        }
    }

    /// The fast lane of [`Scan::scan`] (see [`lane`]), when the innermost open aggregate is
    /// an array, set or map (counted, not streamed: what MGET, HGETALL and most RESP3
    /// replies are made of). `Ok(true)` when the reply is complete; `Ok(false)` when the
    /// general path must take the next item.
    #[inline(always)]
    fn fast_lane(&mut self, buf: &[u8], lim: &Limits) -> Result<bool> {
        loop {
            match self.open.last() {
                Some(top) if top.counted() => {}
                _ => return Ok(false),
            }
            let at = self.at;
            let stop = lane(&mut self.tape, &mut self.open, &mut self.at, buf, lim);
            if self.at != at {
                // A partial line scanned by an earlier call was taken whole by the lane.
                self.scanned = 0;
            }
            match stop {
                Lane::Done => return Ok(true),
                Lane::Stop => return Ok(false),
                Lane::Closed(node) => {
                    if self.finish_child(buf, lim, node)? {
                        return Ok(true);
                    }
                }
            }
        }
    }

    /// The fast path, for [`Decoder`](super::Decoder) and [`Scan::scan`]: when no reply is
    /// in progress and `pending` starts with a whole one-node reply (see [`fast_leaf`]),
    /// record it in `leaf` (no tape) and return its length. `None`, changing nothing, for
    /// anything else.
    #[inline(always)]
    pub(crate) fn leaf_reply(&mut self, pending: &[u8], lim: &Limits) -> Option<usize> {
        if !(self.done || self.at == 0) {
            return None;
        }
        let (node, len) = fast_leaf(pending, lim)?;
        self.leaf = [node];
        self.single = true;
        // A partial line scanned by an earlier call belonged to this reply.
        self.scanned = 0;
        self.at = len;
        self.done = true;
        Some(len)
    }

    /// Parse the item at `rest[0]`; a complete leaf is pushed on the tape.
    #[inline]
    fn item(&mut self, rest: &[u8], lim: &Limits) -> Result<Item> {
        let Some(&t) = rest.first() else {
            return Ok(Item::Incomplete);
        };
        let base = self.at;
        let in_chunks = matches!(self.open.last(), Some(o) if o.kind == OpenKind::Chunks);
        if !in_chunks {
            // Fast paths: the common complete, well-formed items; anything else falls
            // through to the general path, which owns every rule and error message.
            match t {
                b'$' => {
                    if let Some((n, digits)) =
                        rest.get(1..).and_then(|r| fast_digits(r, lim.max_line_len))
                    {
                        let n = usize::try_from(n).unwrap_or(usize::MAX);
                        self.scanned = 0;
                        if n > lim.max_bulk_len {
                            return Err(too_long(t, n, lim));
                        }
                        let head = digits.saturating_add(3);
                        return Ok(match body(rest, head, n, t)? {
                            Some(used) => {
                                self.tape.push(Node::Bulk(span(base, head, n)));
                                Item::Leaf(used)
                            }
                            None => {
                                let s = span(base, head, n);
                                self.need = s.end.saturating_add(2);
                                if self.open.is_empty() {
                                    self.top_bulk = Some(s);
                                }
                                Item::Incomplete
                            }
                        });
                    }
                }
                b':' => {
                    if let Some((n, used)) = fast_int(rest, lim.max_line_len) {
                        self.scanned = 0;
                        self.tape.push(Node::Int(n));
                        return Ok(Item::Leaf(used));
                    }
                }
                b'*' | b'%' | b'~' => {
                    if let Some((n, digits)) =
                        rest.get(1..).and_then(|r| fast_digits(r, lim.max_line_len))
                    {
                        self.scanned = 0;
                        let n = usize::try_from(n).unwrap_or(usize::MAX);
                        return self.aggregate(t, Len::N(n), digits.saturating_add(3), lim);
                    }
                }
                _ => {}
            }
        } else if t != b';' {
            // (checked before the line is complete, as the old decoder did)
            return Err(proto(format!(
                "expected a streamed string chunk (';'), got type byte 0x{t:02x}"
            )));
        }
        if !is_type_byte(t) {
            return Err(proto(format!("unknown type byte 0x{t:02x}")));
        }
        let Some(cr) = find_line_end(rest, &mut self.scanned, lim.max_line_len)? else {
            return Ok(Item::Incomplete);
        };
        self.scanned = 0;
        let line = rest.get(1..cr).unwrap_or_default();
        let head = cr.saturating_add(2);
        let line_span = Span {
            start: base.saturating_add(1),
            end: base.saturating_add(cr),
        };
        let node = match t {
            // Any bytes but CR and LF: servers echo binary arguments into error lines (cut
            // at 128 bytes, possibly inside a UTF-8 sequence) and scripts may return any
            // bytes as a status or an error. Such a line is a legal reply, never a reason to
            // fail the connection; `build` turns invalid UTF-8 into U+FFFD for the `Value`,
            // a `Frame` keeps the bytes as they came.
            b'+' => match std::str::from_utf8(line) {
                Ok(_) => Node::Simple(line_span),
                Err(_) => Node::SimpleRaw(line_span),
            },
            b'-' => Node::Error(line_span),
            b':' => Node::Int(
                parse_i64(line)
                    .ok_or_else(|| proto(format!("invalid integer line {:?}", show(line))))?,
            ),
            b'_' => {
                if !line.is_empty() {
                    return Err(proto(format!("null with content {:?}", show(line))));
                }
                Node::Nil
            }
            b'#' => match line {
                b"t" => Node::Bool(true),
                b"f" => Node::Bool(false),
                _ => return Err(proto(format!("invalid boolean line {:?}", show(line)))),
            },
            b',' => Node::Double(parse_double(line).ok_or_else(|| {
                if line.len() > MAX_DOUBLE_LEN {
                    proto(format!(
                        "double line of {} bytes (at most {MAX_DOUBLE_LEN}): {:?}",
                        line.len(),
                        show(line)
                    ))
                } else {
                    proto(format!("invalid double line {:?}", show(line)))
                }
            })?),
            b'(' => {
                let digits = line.strip_prefix(b"-").unwrap_or(line);
                if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                    return Err(proto(format!("invalid big number line {:?}", show(line))));
                }
                Node::BigNumber(line_span)
            }
            b'.' => {
                if !line.is_empty() {
                    return Err(proto(format!("end marker with content {:?}", show(line))));
                }
                return Ok(Item::End(head));
            }
            b'$' | b'!' | b'=' => return self.body_item(rest, t, parse_len(line, t)?, head, lim),
            b';' => {
                if !in_chunks {
                    return Err(proto("streamed string chunk outside a streamed string"));
                }
                return self.chunk(rest, parse_len(line, t)?, head, lim);
            }
            b'*' | b'~' | b'%' | b'|' | b'>' => {
                return self.aggregate(t, parse_len(line, t)?, head, lim)
            }
            _ => return Err(proto(format!("unknown type byte 0x{t:02x}"))),
        };
        self.tape.push(node);
        Ok(Item::Leaf(head))
    }

    /// A `$`, `!` or `=` item whose header line is `head` bytes long.
    fn body_item(
        &mut self,
        rest: &[u8],
        t: u8,
        len: Len,
        head: usize,
        lim: &Limits,
    ) -> Result<Item> {
        let n = match len {
            Len::N(n) => n,
            Len::Null if t == b'$' => {
                self.tape.push(Node::Nil);
                return Ok(Item::Leaf(head));
            }
            Len::Streamed if t == b'$' => {
                let node = Node::Streamed(Agg {
                    children: 0,
                    end: 0,
                });
                let open = Open {
                    kind: OpenKind::Chunks,
                    node: 0,
                    left: 0,
                    count: 0,
                    streamed: true,
                    total: 0,
                };
                return Ok(Item::Open(node, open, head));
            }
            Len::Null => return Err(proto(format!("null length for a {}", type_name(t)))),
            Len::Streamed => {
                return Err(proto(format!("streamed length '?' for a {}", type_name(t))))
            }
        };
        if n > lim.max_bulk_len {
            return Err(too_long(t, n, lim));
        }
        if t == b'=' && n < 4 {
            return Err(proto(format!(
                "verbatim string length {n} is too short for a 'fmt:' prefix"
            )));
        }
        let Some(used) = body(rest, head, n, t)? else {
            let s = span(self.at, head, n);
            self.need = s.end.saturating_add(2);
            if t == b'$' && self.open.is_empty() {
                self.top_bulk = Some(s);
            }
            return Ok(Item::Incomplete);
        };
        let s = span(self.at, head, n);
        let node = match t {
            b'$' => Node::Bulk(s),
            b'!' => Node::BulkError(s),
            _ => {
                let data = rest.get(head..head.saturating_add(n)).unwrap_or_default();
                if data.get(3) != Some(&b':') {
                    return Err(proto(format!(
                        "verbatim string without a 3-byte format and ':' prefix: {}",
                        show(data)
                    )));
                }
                if data
                    .get(..3)
                    .and_then(|f| std::str::from_utf8(f).ok())
                    .is_none()
                {
                    return Err(proto("verbatim string format is not UTF-8"));
                }
                Node::Verbatim(s)
            }
        };
        self.tape.push(node);
        Ok(Item::Leaf(used))
    }

    /// A `;` chunk of the streamed string on top of the stack.
    fn chunk(&mut self, rest: &[u8], len: Len, head: usize, lim: &Limits) -> Result<Item> {
        let Len::N(n) = len else {
            return Err(proto("null or '?' length for a streamed string chunk"));
        };
        if n == 0 {
            return Ok(Item::Chunk(None, head));
        }
        let total = self.open.last().map_or(0, |o| o.total);
        match total.checked_add(n) {
            Some(t) if t <= lim.max_bulk_len => {}
            _ => {
                return Err(limit(
                    Limit::BulkLen,
                    format!("streamed string exceeds max_bulk_len {}", lim.max_bulk_len),
                ))
            }
        }
        Ok(match body(rest, head, n, b';')? {
            Some(used) => Item::Chunk(Some(span(self.at, head, n)), used),
            None => Item::Incomplete,
        })
    }

    /// An aggregate header (`* ~ % | >`) whose line is `head` bytes long.
    fn aggregate(&mut self, t: u8, len: Len, head: usize, lim: &Limits) -> Result<Item> {
        let (n, streamed) = match len {
            Len::N(n) => (n, false),
            Len::Null if t == b'*' => {
                self.tape.push(Node::Nil);
                return Ok(Item::Leaf(head));
            }
            Len::Null => return Err(proto(format!("null length for a {}", type_name(t)))),
            Len::Streamed if t == b'>' => return Err(proto("streamed length '?' for a push")),
            Len::Streamed => (0, true),
        };
        if t == b'>' && !self.open.iter().all(Open::attr_value_phase) {
            return Err(proto("push nested inside an aggregate"));
        }
        if n > lim.max_aggregate_len {
            return Err(limit(
                Limit::AggregateLen,
                format!(
                    "{} length {n} exceeds max_aggregate_len {}",
                    type_name(t),
                    lim.max_aggregate_len
                ),
            ));
        }
        let max_depth = lim.depth();
        if self.open.len() >= max_depth {
            return Err(limit(
                Limit::Depth,
                format!("nesting deeper than max_depth {max_depth}"),
            ));
        }
        let shape = Agg {
            children: 0,
            end: self.tape.len().saturating_add(1),
        };
        let (node, kind, left) = match t {
            b'*' => (Node::Array(shape), OpenKind::Seq, n),
            b'~' => (Node::Set(shape), OpenKind::Seq, n),
            b'%' => (Node::Map(shape), OpenKind::Map, n.saturating_mul(2)),
            b'>' => {
                if n == 0 {
                    return Err(proto("push with no elements"));
                }
                (Node::Push(shape), OpenKind::Push, n)
            }
            // An attribute's pairs, then the value it describes.
            _ => (
                Node::Attribute(shape),
                OpenKind::Attr,
                n.saturating_mul(2).saturating_add(1),
            ),
        };
        if left == 0 && !streamed {
            // An empty array, set or map is complete at once.
            self.tape.push(node);
            return Ok(Item::Leaf(head));
        }
        let open = Open {
            kind,
            node: 0,
            left,
            count: 0,
            streamed,
            total: 0,
        };
        Ok(Item::Open(node, open, head))
    }

    fn open_aggregate(&mut self, node: Node, mut open: Open) {
        open.node = self.tape.len();
        self.tape.push(node);
        self.open.push(open);
    }

    /// A chunk of the streamed string on top of the stack (checked by `chunk`).
    fn add_chunk(&mut self, span: Span) {
        if let Some(top) = self.open.last_mut() {
            top.total = top
                .total
                .saturating_add(span.end.saturating_sub(span.start));
            top.count = top.count.saturating_add(1);
        }
        self.tape.push(Node::Bulk(span));
    }

    /// Record the end of the aggregate `o` (already popped) on its node.
    fn close(&mut self, o: Open) {
        let end = self.tape.len();
        if let Some(node) = self.tape.get_mut(o.node) {
            node.set_agg(Agg {
                children: o.count,
                end,
            });
        }
    }

    /// The end marker `.`: close the streamed aggregate on top and return its node, or
    /// `None` for a streamed attribute, which now waits for the value it describes.
    fn end_marker(&mut self) -> Result<Option<usize>> {
        let Some(top) = self.open.last_mut() else {
            return Err(proto("end marker '.' outside a streamed aggregate"));
        };
        if !top.streamed || top.kind == OpenKind::Chunks {
            return Err(proto("end marker '.' outside a streamed aggregate"));
        }
        if matches!(top.kind, OpenKind::Map | OpenKind::Attr) && top.count % 2 != 0 {
            return Err(proto("streamed map ended between a key and its value"));
        }
        if top.kind == OpenKind::Attr {
            top.streamed = false;
            top.left = 1;
            return Ok(None);
        }
        let Some(o) = self.open.pop() else {
            return Ok(None);
        };
        self.close(o);
        Ok(Some(o.node))
    }

    /// The value at tape index `child` just completed: count it in the open aggregates,
    /// closing every one it completes. True when the reply is complete.
    #[inline]
    fn finish_child(&mut self, buf: &[u8], lim: &Limits, mut child: usize) -> Result<bool> {
        loop {
            let Some(top) = self.open.last_mut() else {
                return Ok(true);
            };
            match top.kind {
                OpenKind::Chunks => return Err(proto("value inside a streamed string")),
                OpenKind::Push if top.count == 0 => check_push_kind(&self.tape, buf, child)?,
                _ => {}
            }
            if top.streamed {
                let max = lim.max_aggregate_len;
                match top.kind {
                    OpenKind::Map | OpenKind::Attr => {
                        if top.count % 2 == 1 && top.count / 2 >= max {
                            return Err(limit(
                                Limit::AggregateLen,
                                format!("streamed map exceeds max_aggregate_len {max}"),
                            ));
                        }
                    }
                    _ => {
                        if top.count >= max {
                            return Err(limit(
                                Limit::AggregateLen,
                                format!("streamed aggregate exceeds max_aggregate_len {max}"),
                            ));
                        }
                    }
                }
                top.count = top.count.saturating_add(1);
                return Ok(false);
            }
            top.count = top.count.saturating_add(1);
            top.left = top.left.saturating_sub(1);
            if top.left != 0 {
                return Ok(false);
            }
            let Some(o) = self.open.pop() else {
                return Ok(true);
            };
            self.close(o);
            child = o.node;
        }
    }
}

/// The most bytes the top-level fast path looks at for a simple string's end.
const FAST_LINE: usize = 256;

/// Fast path for a whole reply that is one complete, well-formed `+line`, `:int` or `$len`
/// bulk string (the most common replies): its node and length. Anything else, incomplete or
/// unusual gives `None`, and the general path (which owns every rule and error) takes over.
#[inline(always)]
fn fast_leaf(buf: &[u8], lim: &Limits) -> Option<(Node, usize)> {
    match *buf.first()? {
        // The most common reply of all (the `redis` crate has a variant just for it).
        b'+' if is_ok(buf) && lim.max_line_len >= 2 => {
            Some((Node::Simple(Span { start: 1, end: 3 }), 5))
        }
        b'+' => {
            if let Some(found) = simple_in_word(buf, lim.max_line_len) {
                return found;
            }
            let window = buf.get(
                1..buf
                    .len()
                    .min(FAST_LINE)
                    .min(lim.max_line_len.saturating_add(2)),
            )?;
            let mut ascii = true;
            for (i, &b) in window.iter().enumerate() {
                if b == b'\r' {
                    if buf.get(i.wrapping_add(2)) != Some(&b'\n') {
                        return None;
                    }
                    let line = window.get(..i)?;
                    if !ascii && std::str::from_utf8(line).is_err() {
                        return None;
                    }
                    let end = i.wrapping_add(1);
                    return Some((Node::Simple(Span { start: 1, end }), end.wrapping_add(2)));
                }
                if b == b'\n' {
                    return None;
                }
                ascii &= b < 0x80;
            }
            None
        }
        b':' => fast_int(buf, lim.max_line_len).map(|(n, len)| (Node::Int(n), len)),
        b'$' => {
            let (n, start) = bulk_head(buf, lim)?;
            let (end, after) = body_crlf(buf, start, n)?;
            Some((Node::Bulk(Span { start, end }), after))
        }
        _ => None,
    }
}

/// `buf` starts with `+OK\r\n`.
#[inline(always)]
fn is_ok(buf: &[u8]) -> bool {
    match buf.get(..5).and_then(|b| <[u8; 5]>::try_from(b).ok()) {
        Some([a, b, c, d, e]) => {
            u32::from_le_bytes([a, b, c, d]) == u32::from_le_bytes(*b"+OK\r") && e == b'\n'
        }
        None => false,
    }
}

/// The `+line` fast path on the eight bytes after the `+` at once (SWAR): `Some(result)`
/// when they settle it (an ASCII line whose CR is among them), `None` to scan bytewise.
#[inline(always)]
fn simple_in_word(buf: &[u8], max_line: usize) -> Option<Option<(Node, usize)>> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let word = u64::from_le_bytes(buf.get(1..9).and_then(|w| <[u8; 8]>::try_from(w).ok())?);
    // High bit of each byte equal to `c` (exact up to the first match, which is all we use).
    let find = |c: u8| {
        let x = word ^ ONES.wrapping_mul(u64::from(c));
        x.wrapping_sub(ONES) & !x & HIGH
    };
    let cr = find(b'\r');
    if cr == 0 {
        return None;
    }
    let k = (cr.trailing_zeros() / 8) as usize;
    // Bytes before the CR: no LF, all ASCII (else the bytewise path decides).
    let before = (1u64 << (k as u32).wrapping_mul(8)).wrapping_sub(1);
    if (find(b'\n') | (word & HIGH)) & before != 0 {
        return None;
    }
    if k > max_line || buf.get(k.wrapping_add(2)) != Some(&b'\n') {
        return Some(None);
    }
    let end = k.wrapping_add(1);
    Some(Some((
        Node::Simple(Span { start: 1, end }),
        end.wrapping_add(2),
    )))
}

/// Where [`lane`] stopped.
enum Lane {
    /// At an item it does not take (the general path takes it).
    Stop,
    /// The reply is complete.
    Done,
    /// It closed the aggregate at this tape index, whose parent is not counted (see
    /// [`Open::counted`]): the general path counts it in.
    Closed(usize),
}

/// The fast lane of [`Scan::scan`], entered when the innermost open aggregate is counted
/// (an array, set or map with a length, see [`Open::counted`]): the common items inside
/// such aggregates, in one tight loop, without the general item machinery.
///
/// It takes complete, well-formed bulk strings and integers, and headers of non-empty
/// counted aggregates (which it opens, then fills the same way), closing every aggregate
/// whose last child it took. Anything else (another type, an incomplete item, a number
/// that is not canonical or breaks a [`Limits`] rule, an aggregate inside an uncounted
/// one) stops it with nothing of that item consumed: the general path then takes it, and
/// owns every rule and error message. So the lane never fails, and what it builds on the
/// tape is exactly what the general path would.
#[inline(never)]
fn lane(
    tape: &mut Vec<Node>,
    open: &mut Vec<Open>,
    at: &mut usize,
    buf: &[u8],
    lim: &Limits,
) -> Lane {
    // A local `Vec`, so that its length stays in a register.
    let mut nodes = std::mem::take(tape);
    let mut pos = *at;
    // Lengths of one or two digits need no limit check under the usual limits.
    let short_ok = lim.max_bulk_len >= 99 && lim.max_line_len >= 2;
    let max_depth = lim.depth();
    let stop = 'lane: loop {
        let Some(top) = open.last_mut() else {
            break Lane::Done;
        };
        // The leaves of `top`, with its counter in a register. (`count + left` is
        // constant while an aggregate is counted.)
        let mut left = top.left;
        while left != 0 {
            let Some(rest) = buf.get(pos..) else {
                break;
            };
            let (node, used) = match rest.first() {
                Some(b'$') => {
                    let (n, head) = match short_bulk_head(rest) {
                        Some(head) if short_ok => head,
                        _ => match long_bulk_head(rest, lim) {
                            Some(head) => head,
                            None => break,
                        },
                    };
                    let Some((end, used)) = body_crlf(rest, head, n) else {
                        break;
                    };
                    // (all within `buf`: no overflow)
                    let s = Span {
                        start: pos.wrapping_add(head),
                        end: pos.wrapping_add(end),
                    };
                    (Node::Bulk(s), used)
                }
                Some(b':') => {
                    let Some((v, used)) = int_item(rest, lim) else {
                        break;
                    };
                    (Node::Int(v), used)
                }
                _ => break,
            };
            nodes.push(node);
            pos = pos.wrapping_add(used);
            left = left.wrapping_sub(1);
        }
        top.count = top.count.saturating_add(top.left.wrapping_sub(left));
        top.left = left;
        if left == 0 {
            // Close `top`, and every counted parent this completes.
            loop {
                let Some(o) = open.pop() else {
                    break 'lane Lane::Done;
                };
                let end = nodes.len();
                if let Some(node) = nodes.get_mut(o.node) {
                    node.set_agg(Agg {
                        children: o.count,
                        end,
                    });
                }
                match open.last_mut() {
                    None => break 'lane Lane::Done,
                    Some(parent) if parent.counted() => {
                        parent.count = parent.count.saturating_add(1);
                        parent.left = parent.left.saturating_sub(1);
                        if parent.left != 0 {
                            continue 'lane;
                        }
                    }
                    Some(_) => break 'lane Lane::Closed(o.node),
                }
            }
        }
        // Not a leaf taken above: the header of a non-empty counted aggregate?
        let Some(rest) = buf.get(pos..) else {
            break Lane::Stop;
        };
        let Some(&t @ (b'*' | b'~' | b'%')) = rest.first() else {
            break Lane::Stop;
        };
        let Some((n, digits)) = rest.get(1..).and_then(|r| fast_digits(r, lim.max_line_len)) else {
            break Lane::Stop;
        };
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        if n == 0 || n > lim.max_aggregate_len || open.len() >= max_depth {
            break Lane::Stop;
        }
        let idx = nodes.len();
        let shape = Agg {
            children: 0,
            end: idx.saturating_add(1),
        };
        let (node, kind, children) = match t {
            b'*' => (Node::Array(shape), OpenKind::Seq, n),
            b'~' => (Node::Set(shape), OpenKind::Seq, n),
            _ => (Node::Map(shape), OpenKind::Map, n.saturating_mul(2)),
        };
        nodes.push(node);
        open.push(Open {
            kind,
            node: idx,
            left: children,
            count: 0,
            streamed: false,
            total: 0,
        });
        pos = pos.wrapping_add(digits.wrapping_add(3));
    };
    *tape = nodes;
    *at = pos;
    stop
}

/// [`bulk_head`] out of line: the fast lane's loop keeps its registers for the usual case.
#[inline(never)]
fn long_bulk_head(rest: &[u8], lim: &Limits) -> Option<(usize, usize)> {
    bulk_head(rest, lim)
}

/// [`fast_int`] out of line, for the fast lane (see [`long_bulk_head`]).
#[inline(never)]
fn int_item(rest: &[u8], lim: &Limits) -> Option<(i64, usize)> {
    fast_int(rest, lim.max_line_len)
}

/// The length and header size of a complete, canonical `$<len>\r\n` header at `rest[0]`
/// whose length is within [`Limits`]; `None` for anything else (the general path decides).
#[inline(always)]
fn bulk_head(rest: &[u8], lim: &Limits) -> Option<(usize, usize)> {
    let (n, digits) = match short_bulk_head(rest) {
        Some((n, head)) => (n, head.wrapping_sub(3)),
        None => {
            let (n, digits) = fast_digits(rest.get(1..)?, lim.max_line_len)?;
            (usize::try_from(n).ok()?, digits)
        }
    };
    if n > lim.max_bulk_len || digits > lim.max_line_len {
        return None;
    }
    Some((n, digits.wrapping_add(3)))
}

/// The end of a body of `n` bytes after a `head`-byte header (its offset in `rest`) and
/// the bytes the item takes with the CRLF after it; `None` when incomplete or not
/// followed by CRLF (the general path decides).
#[inline(always)]
fn body_crlf(rest: &[u8], head: usize, n: usize) -> Option<(usize, usize)> {
    let end = head.checked_add(n)?;
    let after = end.checked_add(2)?;
    (rest.get(end..after)? == b"\r\n").then_some((end, after))
}

/// The length and header size of a `$` header at `rest[0]` whose length has one or two
/// digits (most values), read from one 4-byte word; `None` for anything else. Canonical
/// (no leading zero); the caller checks it against [`Limits`].
#[inline(always)]
fn short_bulk_head(rest: &[u8]) -> Option<(usize, usize)> {
    const CRLF: u32 = u16::from_le_bytes(*b"\r\n") as u32;
    let word = u32::from_le_bytes(rest.get(1..5).and_then(|w| <[u8; 4]>::try_from(w).ok())?);
    let d0 = (word & 0xff).wrapping_sub(u32::from(b'0'));
    let d1 = ((word >> 8) & 0xff).wrapping_sub(u32::from(b'0'));
    if word >> 16 == CRLF && d0.wrapping_sub(1) <= 8 && d1 <= 9 {
        // (`d0` from 1: no leading zero)
        return Some((d0.wrapping_mul(10).wrapping_add(d1) as usize, 5));
    }
    if (word >> 8) & 0xffff == CRLF && d0 <= 9 {
        return Some((d0 as usize, 4));
    }
    None
}

/// Offsets of a body of `n` bytes after a `head`-byte header, for an item at `base`.
#[inline]
fn span(base: usize, head: usize, n: usize) -> Span {
    let start = base.saturating_add(head);
    Span {
        start,
        end: start.saturating_add(n),
    }
}

/// The bytes a body of `n` bytes after a `head`-byte header takes with its CRLF, `None`
/// while incomplete. A wrong terminator is an error as soon as its first byte is here.
#[inline]
fn body(rest: &[u8], head: usize, n: usize, t: u8) -> Result<Option<usize>> {
    let bad = || {
        proto(format!(
            "{} of length {n} not followed by CRLF",
            body_name(t)
        ))
    };
    let end = head.checked_add(n).ok_or_else(bad)?;
    match (rest.get(end), rest.get(end.saturating_add(1))) {
        (Some(b'\r'), Some(b'\n')) => Ok(Some(end.saturating_add(2))),
        (Some(b'\r'), None) | (None, _) => Ok(None),
        _ => Err(bad()),
    }
}

fn body_name(t: u8) -> &'static str {
    match t {
        b'!' => "bulk error",
        b'=' => "verbatim string",
        b';' => "streamed string chunk",
        _ => "bulk string",
    }
}

fn too_long(t: u8, n: usize, lim: &Limits) -> crate::Error {
    limit(
        Limit::BulkLen,
        format!(
            "{} length {n} exceeds max_bulk_len {}",
            type_name(t),
            lim.max_bulk_len
        ),
    )
}

/// A push's first element must be a string (its kind): simple, or bulk and UTF-8.
fn check_push_kind(tape: &[Node], buf: &[u8], idx: usize) -> Result<()> {
    match tape.get(idx) {
        Some(Node::Simple(_)) => Ok(()),
        Some(Node::SimpleRaw(_)) => Err(proto("push kind is not UTF-8")),
        Some(Node::Bulk(_) | Node::Streamed(_)) => {
            let bytes = string_bytes(tape, buf, idx).unwrap_or_default();
            match std::str::from_utf8(&bytes) {
                Ok(_) => Ok(()),
                Err(_) => Err(proto("push kind is not UTF-8")),
            }
        }
        Some(other) => Err(proto(format!(
            "push kind must be a string, got {}",
            other.type_name()
        ))),
        None => Err(proto("push without a kind")),
    }
}

/// The bytes of a string node (simple, bulk, streamed, big number; a verbatim's text), borrowed
/// when they are contiguous, assembled for a streamed string.
pub(crate) fn string_bytes<'a>(
    tape: &[Node],
    buf: &'a [u8],
    idx: usize,
) -> Option<std::borrow::Cow<'a, [u8]>> {
    use std::borrow::Cow;
    let at = |s: Span| buf.get(s.start..s.end).unwrap_or_default();
    match *tape.get(idx)? {
        Node::Simple(s) | Node::SimpleRaw(s) | Node::Bulk(s) | Node::BigNumber(s) => {
            Some(Cow::Borrowed(at(s)))
        }
        Node::Verbatim(s) => Some(Cow::Borrowed(at(s).get(4..).unwrap_or_default())),
        Node::Streamed(a) => {
            let mut out = Vec::new();
            let mut i = idx.saturating_add(1);
            while i < a.end {
                if let Some(Node::Bulk(s)) = tape.get(i) {
                    out.extend_from_slice(at(*s));
                }
                i = i.saturating_add(1);
            }
            Some(Cow::Owned(out))
        }
        _ => None,
    }
}
