//! Incremental RESP2/RESP3 decoder.
//!
//! # Design
//!
//! One parsing core, [`run`], serves both the one-shot [`decode`] and the incremental
//! [`Decoder`]. It walks the input one *item* at a time (a line such as `:12` or `*3`, or
//! the body of a bulk string), never one byte at a time through a state machine:
//!
//! * a line is found by scanning a slice for CR/LF, then parsed in place (integers and
//!   lengths without allocating or going through `str`);
//! * a bulk body whose bytes are all present is not copied: it becomes a [`Bytes`] view of
//!   the buffer it arrived in (see "One buffer per reply" below);
//! * fast paths handle the common case of bytes that are all here: `:int` and length headers
//!   are parsed and their CRLF checked in one pass, a `$len` header and its body become a
//!   [`Value::Bulk`] at once, and an array or set is filled with such elements in a tight loop
//!   that builds each element in its slot; anything else (or anything odd) goes to the general
//!   path, which owns every rule and error message;
//! * aggregates are built on an explicit stack of [`Frame`]s (no recursion), so nesting is
//!   bounded by [`Limits::max_depth`] (itself capped at [`Limits::HARD_MAX_DEPTH`]) and never
//!   by the thread's stack.
//!
//! When the input runs out, the state needed to resume is small and explicit: the stack of
//! partially built containers, how far the current line was already scanned, and for a bulk
//! body its declared length and (in the [`Decoder`]) the bytes received so far. Children that
//! were completed are owned by their frame, so their bytes are consumed and never parsed
//! again: feeding a frame in any number of pieces costs the same as feeding it whole.
//!
//! Every length read from the wire is checked against [`Limits`] before anything is reserved
//! for it, aggregates pre-allocate at most what the bytes already received could fill, and all
//! arithmetic on wire numbers is checked.
//!
//! # One buffer per reply
//!
//! The [`Decoder`] keeps received bytes in an `Arc<Vec<u8>>`. The bulk strings (and verbatim
//! texts) of the values it returns are [`Bytes`] views into that buffer: a reference count
//! bump each, no allocation and no copy. The buffer is written again only while no value
//! shares it (`Arc::get_mut`: the usual case, since typed replies are converted and the
//! `Value` dropped before the next read); otherwise the next write starts a fresh buffer
//! holding just the unparsed tail, and the old one lives on in the values. So a reply costs
//! at most one buffer (plus one `Vec` per aggregate), and usually nothing at all. Bodies that
//! arrived in pieces across reads (assembled in the parse state) and streamed strings are
//! wrapped into their own `Bytes`.
//!
//! The one-shot [`decode`] reads a borrowed slice, so it records *pending* views (ranges of
//! the input) and, once the frame is complete, copies the frame's bytes once into a shared
//! buffer and points every pending view at it (`attach_all`): one copy per reply, and none
//! for a reply without strings.
//!
//! [`Decoder::next_value`] first tries a fast path for a whole frame at a frame boundary
//! (`+line`, `:int`, `$len` and body, and the header of a `*n` array that [`fill_seq`] then
//! fills), falling back to the general path for anything else.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic,
    clippy::unreachable,
    clippy::todo
)]

use std::mem;
use std::sync::Arc;

use super::{Bytes, Value};
use crate::error::{Error, Result, ServerError};

/// Limits on what a peer may make the decoder hold. Defaults follow the server's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest bulk string (and bulk error, verbatim string, streamed string total) accepted,
    /// in bytes. Default 512 MiB, like the server's `proto-max-bulk-len`.
    pub max_bulk_len: usize,
    /// Most elements in one aggregate (array, set, push; a map counts pairs). Default 2^24.
    pub max_aggregate_len: usize,
    /// Deepest nesting of aggregates (attributes count). Default 128.
    ///
    /// Values above [`Limits::HARD_MAX_DEPTH`] are treated as that cap: a [`Value`] is
    /// dropped, cloned, compared and printed recursively, so the decoder never builds one
    /// deeper than a normal thread stack can take apart.
    pub max_depth: usize,
    /// Longest simple line (simple string, error, integer, double, big number, headers).
    /// Default 64 KiB.
    pub max_line_len: usize,
}

impl Limits {
    /// The deepest nesting the decoder ever accepts, whatever [`Limits::max_depth`] says.
    pub const HARD_MAX_DEPTH: usize = 1000;

    fn depth(&self) -> usize {
        self.max_depth.min(Self::HARD_MAX_DEPTH)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk_len: 512 * 1024 * 1024,
            max_aggregate_len: 1 << 24,
            max_depth: 128,
            max_line_len: 64 * 1024,
        }
    }
}

/// Most elements an aggregate header may make us reserve room for up front; the rest grow
/// by pushing. Also bounded by the bytes already received (an element needs >= 3 bytes).
const PREALLOC_MAX: usize = 1024;

/// An incremental decoder: feed it bytes as they arrive, take complete values out.
///
/// ```
/// use valkit::resp::Decoder;
/// use valkit::Value;
/// let mut d = Decoder::new();
/// d.feed(b"*2\r\n$3\r\nfoo\r\n:4");
/// assert_eq!(d.next_value().unwrap(), None); // need more bytes
/// d.feed(b"2\r\n+OK\r\n");
/// let v = Value::Array(vec![Value::Bulk(b"foo".into()), Value::Int(42)]);
/// assert_eq!(d.next_value().unwrap(), Some(v));
/// assert_eq!(d.next_value().unwrap(), Some(Value::Simple("OK".into())));
/// assert_eq!(d.next_value().unwrap(), None);
/// ```
///
/// Bulk strings come out as [`Bytes`] views of the buffer they were received in, so a reply
/// costs no allocation per string; a value kept alive keeps that buffer alive, and the
/// decoder then reads into a fresh one (see [`Bytes`] on memory).
///
/// The decoder keeps its parse state between calls and never parses a byte twice. After a
/// protocol error it is *failed*: every later [`Decoder::next_value`] returns a protocol
/// error, fed bytes are discarded, and only [`Decoder::reset`] makes it usable again (the
/// stream position is lost, so a connection should be closed instead).
pub struct Decoder {
    limits: Limits,
    /// Received bytes live in `buf[pos..end]`; `buf[end..]` is initialized spare room
    /// that [`Decoder::read_with`] lets the socket fill without zeroing it again.
    ///
    /// Shared: the bulk strings of decoded values are [`Bytes`] views into it. While any
    /// view is alive the buffer is never written again; the next write moves the unparsed
    /// tail to a fresh buffer instead (see `make_writable`).
    buf: Arc<Vec<u8>>,
    /// Start of the unparsed bytes in `buf`.
    pos: usize,
    /// End of the received bytes in `buf`.
    end: usize,
    state: State,
    /// Bytes of the frame being decoded that were already taken out of `buf`.
    frame_bytes: usize,
    /// Detail of the protocol error that failed the decoder.
    failed: Option<String>,
}

impl std::fmt::Debug for Decoder {
    /// Sizes and state only: the buffered bytes are replies, which may hold user data.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("limits", &self.limits)
            .field("buffered", &self.buffered())
            .field("mid_frame", &self.is_mid_frame())
            .field("failed", &self.failed)
            .finish()
    }
}

impl Decoder {
    /// A decoder with default [`Limits`].
    pub fn new() -> Decoder {
        Decoder::with_limits(Limits::default())
    }

    /// A decoder with the given limits.
    pub fn with_limits(limits: Limits) -> Decoder {
        Decoder {
            limits,
            buf: Arc::default(),
            pos: 0,
            end: 0,
            state: State::default(),
            frame_bytes: 0,
            failed: None,
        }
    }

    /// Append bytes received from the peer. Ignored once the decoder has failed.
    pub fn feed(&mut self, data: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        self.make_writable(data.len());
        let end = self.end;
        let buf = Arc::make_mut(&mut self.buf);
        buf.truncate(end);
        buf.extend_from_slice(data);
        self.end = buf.len();
    }

    /// Append received bytes held in a [`Bytes`]: when the decoder holds no unparsed bytes it
    /// adopts their buffer without copying (the values decoded from it are views of it, and
    /// the decoder never writes into a buffer that anything else still holds); otherwise
    /// they are copied as by [`Decoder::feed`]. Ignored once the decoder has failed.
    ///
    /// ```
    /// use valkit::resp::{Bytes, Decoder, Value};
    /// let mut d = Decoder::new();
    /// d.feed_bytes(Bytes::from(&b"$3\r\nfoo\r\n:1\r\n"[..]));
    /// assert_eq!(d.next_value().unwrap(), Some(Value::Bulk("foo".into())));
    /// assert_eq!(d.next_value().unwrap(), Some(Value::Int(1)));
    /// ```
    pub fn feed_bytes(&mut self, data: Bytes) {
        if self.failed.is_some() || data.is_empty() {
            return;
        }
        if self.pos != self.end {
            self.feed(&data);
            return;
        }
        if let Some((buf, start, end)) = data.into_parts() {
            self.buf = buf;
            self.pos = start;
            self.end = end;
        }
    }

    /// The buffer for writing at `end`, with the unparsed bytes kept: the current one when no
    /// decoded value still shares it, else a fresh one holding just the unparsed tail (with
    /// room for `extra` more bytes). Resets the positions when everything was parsed.
    fn make_writable(&mut self, extra: usize) {
        if self.pos == self.end {
            self.pos = 0;
            self.end = 0;
        }
        if let Some(buf) = Arc::get_mut(&mut self.buf) {
            // Drop consumed bytes, amortized: only once they are at least half of the data,
            // so every byte is moved at most a constant number of times.
            if self.pos != 0 && self.pos >= self.end / 2 {
                buf.copy_within(self.pos..self.end, 0);
                self.end = self.end.saturating_sub(self.pos);
                self.pos = 0;
            }
        } else {
            let tail = self.buf.get(self.pos..self.end).unwrap_or_default();
            let mut fresh = Vec::with_capacity(tail.len().saturating_add(extra));
            fresh.extend_from_slice(tail);
            self.end = tail.len();
            self.pos = 0;
            self.buf = Arc::new(fresh);
        }
    }

    /// Receive bytes without an intermediate copy: `read` is handed at least `min_space`
    /// bytes of the decoder's own buffer and returns how many it filled (a socket read).
    /// Returns what `read` returned. Ignored (returns `Ok(0)` without calling `read`) once
    /// the decoder has failed.
    ///
    /// ```
    /// use valkit::resp::{Decoder, Value};
    /// let mut d = Decoder::new();
    /// let wire = b":42\r\n";
    /// d.read_with(16, |room| {
    ///     room[..wire.len()].copy_from_slice(wire);
    ///     Ok::<_, std::io::Error>(wire.len())
    /// })
    /// .unwrap();
    /// assert_eq!(d.next_value().unwrap(), Some(Value::Int(42)));
    /// ```
    pub fn read_with<E>(
        &mut self,
        min_space: usize,
        read: impl FnOnce(&mut [u8]) -> std::result::Result<usize, E>,
    ) -> std::result::Result<usize, E> {
        if self.failed.is_some() {
            return Ok(0);
        }
        let min_space = min_space.max(1);
        self.make_writable(min_space);
        let end = self.end;
        // Unique after `make_writable`, so this never clones.
        let buf = Arc::make_mut(&mut self.buf);
        let want = end.saturating_add(min_space);
        if buf.len() < want {
            buf.resize(want, 0);
        }
        let room = buf.get_mut(end..).unwrap_or_default();
        let room_len = room.len();
        let n = read(room)?.min(room_len);
        self.end = self.end.saturating_add(n);
        Ok(n)
    }

    /// The next complete value, `Ok(None)` when more bytes are needed, or a protocol error
    /// (after which the decoder stays failed).
    pub fn next_value(&mut self) -> Result<Option<Value>> {
        if let Some(detail) = &self.failed {
            return Err(Error::protocol(format!("decoder failed earlier: {detail}")));
        }
        let start = self.pos;
        if let Some(v) = self.fast_frame() {
            self.compact();
            return Ok(Some(v));
        }
        let res = run(
            &mut self.state,
            self.buf.get(..self.end).unwrap_or_default(),
            Some(&self.buf),
            &mut self.pos,
            &self.limits,
            true,
        );
        self.frame_bytes = self
            .frame_bytes
            .saturating_add(self.pos.saturating_sub(start));
        match res {
            Ok(v) => {
                if v.is_some() {
                    self.frame_bytes = 0;
                }
                self.compact();
                Ok(v)
            }
            Err(e) => {
                self.failed = Some(e.detail().to_owned());
                self.buf = Arc::default();
                self.pos = 0;
                self.end = 0;
                self.state = State::default();
                self.frame_bytes = 0;
                Err(e)
            }
        }
    }

    /// Fast path for a frame at a frame boundary whose bytes are all here and well-formed:
    /// `+line`, `:int`, `$len` with its body (a view into the buffer), and the header of a
    /// `*n` array, which is then filled by [`fill_seq`]. Anything else (incomplete, unusual,
    /// malformed) returns `None` having consumed nothing, or for an array having pushed its
    /// frame (exactly as the general path would have): the general path, which owns every
    /// rule and error message, takes over from there.
    #[inline]
    fn fast_frame(&mut self) -> Option<Value> {
        if self.state.body.is_some() || !self.state.stack.is_empty() {
            return None;
        }
        let buf = self.buf.get(..self.end)?;
        let rest = buf.get(self.pos..)?;
        let lim = &self.limits;
        let (v, used) = match *rest.first()? {
            b'+' => fast_simple(rest, lim.max_line_len)?,
            b':' => {
                let (n, used) = fast_int(rest, lim.max_line_len)?;
                (Value::Int(n), used)
            }
            b'$' => {
                let (b, used) = fast_bulk(rest, self.pos, Some(&self.buf), lim)?;
                (Value::Bulk(b), used)
            }
            b'*' => {
                let (n, digits) = rest
                    .get(1..)
                    .and_then(|r| fast_digits(r, lim.max_line_len))?;
                let n = usize::try_from(n).ok()?;
                if n == 0 || n > lim.max_aggregate_len || lim.depth() == 0 {
                    return None;
                }
                self.state.scanned = 0;
                self.pos = self.pos.saturating_add(digits.saturating_add(3));
                self.state.stack.push(Frame::Seq {
                    kind: SeqKind::Array,
                    items: Vec::new(),
                    left: n,
                    streamed: false,
                    push_kind: None,
                });
                return fill_seq(&mut self.state, buf, Some(&self.buf), &mut self.pos, lim);
            }
            _ => return None,
        };
        self.state.scanned = 0;
        self.pos = self.pos.saturating_add(used);
        Some(v)
    }

    /// Bytes fed but not yet returned as part of a value: unparsed bytes plus those of the
    /// frame being decoded. Zero once the decoder has failed.
    pub fn buffered(&self) -> usize {
        self.end
            .saturating_sub(self.pos)
            .saturating_add(self.frame_bytes)
    }

    /// True when the decoder holds part of a frame (or whole frames) not yet returned, i.e.
    /// the stream is not at a frame boundary. A connection in this state cannot be reused
    /// for a new request without first reading the rest.
    pub fn is_mid_frame(&self) -> bool {
        self.buffered() != 0
    }

    /// True once a protocol error has failed the decoder (see [`Decoder::reset`]).
    pub fn is_failed(&self) -> bool {
        self.failed.is_some()
    }

    /// The limits this decoder enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Forget all buffered bytes, any partial frame and a failed state, keeping the limits.
    /// Only correct when the byte stream itself starts over (a new connection).
    pub fn reset(&mut self) {
        *self = Decoder::with_limits(self.limits);
    }

    /// After a value was taken out: a drained buffer larger than [`RETAINED_CAPACITY`] is
    /// released, so an idle connection that once received a big reply does not keep its
    /// memory (values still holding it keep it alive; the decoder lets go). Consumed bytes
    /// of a buffer that is not drained are dropped by the next write (`make_writable`).
    #[inline]
    fn compact(&mut self) {
        if self.pos >= self.end && self.pos != 0 {
            self.pos = 0;
            self.end = 0;
            if self.buf.capacity() > RETAINED_CAPACITY {
                self.buf = Arc::default();
            }
        }
    }
}

/// Largest buffer a drained decoder keeps for the next reply.
pub const RETAINED_CAPACITY: usize = 32 * 1024;

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

/// Decode one value from the start of `buf`: `Ok(Some((value, consumed)))`, `Ok(None)` when
/// `buf` holds only a prefix of a frame, or a protocol error.
///
/// ```
/// use valkit::resp::{decode, Limits};
/// use valkit::Value;
/// let l = Limits::default();
/// assert_eq!(decode(b"+OK\r\n:1\r\n", &l).unwrap(), Some((Value::Simple("OK".into()), 5)));
/// assert_eq!(decode(b"$5\r\nhel", &l).unwrap(), None);
/// assert!(decode(b":12a\r\n", &l).is_err());
/// ```
///
/// Each call parses from the start of `buf`. To read a stream, use a [`Decoder`], which keeps
/// its place between reads instead of parsing a growing prefix again and again.
pub fn decode(buf: &[u8], limits: &Limits) -> Result<Option<(Value, usize)>> {
    let mut state = State::default();
    let mut pos = 0;
    let Some(mut v) = run(&mut state, buf, None, &mut pos, limits, false)? else {
        return Ok(None);
    };
    let mut shared = None;
    attach_all(&mut v, buf.get(..pos).unwrap_or_default(), &mut shared, 0);
    Ok(Some((v, pos)))
}

/// Give every pending [`Bytes`] view in `v` its buffer: one copy of the frame's bytes,
/// made when the first one is met (the one-shot decoder's one allocation per reply).
/// Recursion is bounded by [`Limits::HARD_MAX_DEPTH`] (the decoder builds nothing deeper).
fn attach_all(v: &mut Value, frame: &[u8], shared: &mut Option<Arc<Vec<u8>>>, depth: usize) {
    if depth > Limits::HARD_MAX_DEPTH {
        return;
    }
    let depth = depth.saturating_add(1);
    match v {
        Value::Bulk(b) | Value::Verbatim { text: b, .. } if b.pending_range().is_some() => {
            let buf = shared.get_or_insert_with(|| Arc::new(frame.to_vec()));
            b.attach(buf);
        }
        Value::Array(items) | Value::Set(items) | Value::Push { data: items, .. } => {
            for item in items {
                attach_all(item, frame, shared, depth);
            }
        }
        Value::Map(pairs) => {
            for (k, item) in pairs {
                attach_all(k, frame, shared, depth);
                attach_all(item, frame, shared, depth);
            }
        }
        Value::Attribute { attributes, value } => {
            for (k, item) in attributes {
                attach_all(k, frame, shared, depth);
                attach_all(item, frame, shared, depth);
            }
            attach_all(value, frame, shared, depth);
        }
        _ => {}
    }
}

/// A [`Bytes`] for `start..end` of the input: a view of the decoder's buffer `src`, or a
/// pending view for the one-shot decoder (see [`attach_all`]).
#[inline]
fn bytes_at(src: Option<&Arc<Vec<u8>>>, start: usize, end: usize) -> Bytes {
    match src {
        _ if start >= end => Bytes::new(),
        Some(buf) => Bytes::view(buf, start, end),
        None => Bytes::pending(start, end),
    }
}

// ---------------------------------------------------------------------------------------
// Parse state

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    Bulk,
    Error,
    Verbatim,
    Chunk,
}

impl BodyKind {
    fn name(self) -> &'static str {
        match self {
            BodyKind::Bulk => "bulk string",
            BodyKind::Error => "bulk error",
            BodyKind::Verbatim => "verbatim string",
            BodyKind::Chunk => "streamed string chunk",
        }
    }
}

/// A length-prefixed body whose header was consumed; its bytes start at the current position.
#[derive(Debug)]
struct Body {
    kind: BodyKind,
    len: usize,
    /// Bytes already received and taken out of the input (incremental decoder only).
    got: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SeqKind {
    Array,
    Set,
    Push,
}

/// A container under construction.
#[derive(Debug)]
enum Frame {
    /// An array, set or push.
    Seq {
        kind: SeqKind,
        items: Vec<Value>,
        /// Elements still expected (unused when streamed).
        left: usize,
        streamed: bool,
        /// A push's kind, once its first element arrived.
        push_kind: Option<String>,
    },
    /// A map, or the pairs of an attribute.
    Pairs {
        attr: bool,
        pairs: Vec<(Value, Value)>,
        /// A key waiting for its value.
        key: Option<Value>,
        /// Pairs still expected (unused when streamed).
        left: usize,
        streamed: bool,
    },
    /// Attribute pairs complete; waiting for the value they describe.
    AttrValue { attributes: Vec<(Value, Value)> },
    /// A streamed string (`$?`): the chunks so far.
    Chunks { data: Vec<u8> },
}

#[derive(Debug, Default)]
struct State {
    stack: Vec<Frame>,
    /// Bytes after the type byte of the current line already known to hold no CR/LF.
    scanned: usize,
    /// A body being read.
    body: Option<Body>,
}

enum Step {
    /// A complete value, to be added to the enclosing container.
    Value(Value),
    /// Progress without a value (a header pushed a frame, a chunk was appended...).
    Continue,
    /// More bytes are needed.
    Incomplete,
}

fn proto(detail: impl Into<String>) -> Error {
    Error::protocol(detail)
}

/// A short printable excerpt of wire bytes for error messages.
fn show(bytes: &[u8]) -> String {
    const MAX: usize = 40;
    let cut = bytes.get(..MAX).unwrap_or(bytes);
    let mut s = cut.escape_ascii().to_string();
    if cut.len() < bytes.len() {
        s.push_str("...");
    }
    s
}

// ---------------------------------------------------------------------------------------
// The core

/// Parse from `buf[*pos..]` until one top-level value is complete (returned, `*pos` past it),
/// or the input runs out (`Ok(None)`, `*pos` past everything folded into `st`).
///
/// With `stash`, the bytes of an incomplete body are moved into `st` and consumed too (the
/// incremental decoder); without, they are left in place (the one-shot decoder).
fn run(
    st: &mut State,
    buf: &[u8],
    src: Option<&Arc<Vec<u8>>>,
    pos: &mut usize,
    lim: &Limits,
    stash: bool,
) -> Result<Option<Value>> {
    loop {
        if st.body.is_none() {
            if let Some(v) = fill_seq(st, buf, src, pos, lim) {
                let avail = buf.len().saturating_sub(*pos);
                if let Some(top) = complete(st, v, buf, lim.max_aggregate_len, avail)? {
                    return Ok(Some(top));
                }
                continue;
            }
        }
        let step = if st.body.is_some() {
            body_step(st, buf, src, pos, stash)?
        } else {
            line_step(st, buf, src, pos, lim)?
        };
        match step {
            Step::Value(v) => {
                let avail = buf.len().saturating_sub(*pos);
                if let Some(top) = complete(st, v, buf, lim.max_aggregate_len, avail)? {
                    return Ok(Some(top));
                }
            }
            Step::Continue => {}
            Step::Incomplete => return Ok(None),
        }
    }
}

/// Fast path for the bulk of most replies: fill the array or set on top of the stack with
/// integers and bulk strings whose bytes are all here, each built straight into its slot.
/// Stops at the first element it does not handle (left to the general path, which owns all
/// the rules and errors). Returns the container once its last element is in.
#[inline]
fn fill_seq(
    st: &mut State,
    buf: &[u8],
    src: Option<&Arc<Vec<u8>>>,
    pos: &mut usize,
    lim: &Limits,
) -> Option<Value> {
    let Some(Frame::Seq {
        kind: kind @ (SeqKind::Array | SeqKind::Set),
        items,
        left,
        streamed: false,
        ..
    }) = st.stack.last_mut()
    else {
        return None;
    };
    let mut at = *pos;
    while *left != 0 {
        let rest = buf.get(at..).unwrap_or_default();
        let used = match rest.first() {
            Some(b':') => {
                let Some((n, used)) = fast_int(rest, lim.max_line_len) else {
                    break;
                };
                if items.capacity() == 0 {
                    items.reserve_exact(reserve_for(*left, rest.len(), 3));
                }
                push_in_place(items, || Value::Int(n));
                used
            }
            Some(b'$') => {
                let Some((b, used)) = fast_bulk(rest, at, src, lim) else {
                    break;
                };
                if items.capacity() == 0 {
                    items.reserve_exact(reserve_for(*left, rest.len(), 3));
                }
                push_in_place(items, || Value::Bulk(b));
                used
            }
            _ => break,
        };
        at = at.saturating_add(used);
        *left = left.saturating_sub(1);
    }
    if at != *pos {
        st.scanned = 0;
        *pos = at;
    }
    if *left != 0 {
        return None;
    }
    let items = mem::take(items);
    let v = match kind {
        SeqKind::Set => Value::Set(items),
        _ => Value::Array(items),
    };
    st.stack.pop();
    Some(v)
}

/// `items.push(make())`, but written so that the value is built in its slot: a plain `push`
/// stages the enum on the stack and copies it, which stalls on store forwarding.
#[inline(always)]
fn push_in_place(items: &mut Vec<Value>, make: impl FnOnce() -> Value) {
    let mut make = Some(make);
    items.resize_with(items.len().saturating_add(1), || match make.take() {
        Some(f) => f(),
        None => Value::Nil,
    });
}

/// Continue the pending body.
fn body_step(
    st: &mut State,
    buf: &[u8],
    src: Option<&Arc<Vec<u8>>>,
    pos: &mut usize,
    stash: bool,
) -> Result<Step> {
    let rest = buf.get(*pos..).unwrap_or_default();
    let Some(body) = st.body.as_mut() else {
        return Ok(Step::Continue);
    };
    let need = body.len.saturating_sub(body.got.len());
    let end = need
        .checked_add(2)
        .ok_or_else(|| proto("body length overflows"))?;
    let (Some(data), Some(crlf)) = (rest.get(..need), rest.get(need..end)) else {
        // Incomplete. Reject a wrong terminator as soon as its first byte is here.
        if let Some(&b) = rest.get(need) {
            if b != b'\r' {
                return Err(proto(format!(
                    "{} of length {} not followed by CRLF",
                    body.kind.name(),
                    body.len
                )));
            }
        }
        if stash {
            let take = rest.len().min(need);
            body.got
                .extend_from_slice(rest.get(..take).unwrap_or_default());
            *pos = pos.saturating_add(take);
        }
        return Ok(Step::Incomplete);
    };
    if crlf != b"\r\n" {
        return Err(proto(format!(
            "{} of length {} not followed by CRLF",
            body.kind.name(),
            body.len
        )));
    }
    let at = *pos;
    *pos = pos.saturating_add(end);
    let Some(Body { kind, got, .. }) = st.body.take() else {
        return Ok(Step::Continue);
    };
    if got.is_empty() {
        finish_body(st, kind, Src::Borrowed(data, at), src)
    } else {
        let mut got = got;
        got.extend_from_slice(data);
        finish_body(st, kind, Src::Owned(got), src)
    }
}

/// A complete body: a slice of the input at an offset, or assembled from several inputs.
enum Src<'a> {
    Borrowed(&'a [u8], usize),
    Owned(Vec<u8>),
}

impl Src<'_> {
    fn as_slice(&self) -> &[u8] {
        match self {
            Src::Borrowed(s, _) => s,
            Src::Owned(v) => v,
        }
    }

    /// The bytes after the first `skip` as a [`Bytes`].
    fn into_bytes(self, skip: usize, src: Option<&Arc<Vec<u8>>>) -> Bytes {
        match self {
            Src::Borrowed(s, at) => bytes_at(
                src,
                at.saturating_add(skip).min(at.saturating_add(s.len())),
                at.saturating_add(s.len()),
            ),
            Src::Owned(mut v) => {
                v.drain(..skip.min(v.len()));
                Bytes::from(v)
            }
        }
    }
}

fn finish_body(
    st: &mut State,
    kind: BodyKind,
    data: Src<'_>,
    src: Option<&Arc<Vec<u8>>>,
) -> Result<Step> {
    let v = match kind {
        BodyKind::Bulk => Value::Bulk(data.into_bytes(0, src)),
        BodyKind::Error => {
            // An error message is for humans: keep it even if it is not valid UTF-8.
            let text = match data {
                Src::Owned(v) => match String::from_utf8(v) {
                    Ok(s) => s,
                    Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
                },
                Src::Borrowed(s, _) => String::from_utf8_lossy(s).into_owned(),
            };
            Value::Error(ServerError::new(text))
        }
        BodyKind::Verbatim => {
            let bytes = data.as_slice();
            if bytes.get(3) != Some(&b':') {
                return Err(proto(format!(
                    "verbatim string without a 3-byte format and ':' prefix: {}",
                    show(bytes)
                )));
            }
            let format = bytes
                .get(..3)
                .and_then(|f| std::str::from_utf8(f).ok())
                .ok_or_else(|| proto("verbatim string format is not UTF-8"))?
                .to_owned();
            let text = data.into_bytes(4, src);
            Value::Verbatim { format, text }
        }
        BodyKind::Chunk => {
            let Some(Frame::Chunks { data: acc }) = st.stack.last_mut() else {
                return Err(proto("streamed string chunk outside a streamed string"));
            };
            acc.extend_from_slice(data.as_slice());
            return Ok(Step::Continue);
        }
    };
    Ok(Step::Value(v))
}

fn is_type_byte(t: u8) -> bool {
    matches!(
        t,
        b'+' | b'-'
            | b':'
            | b'$'
            | b'*'
            | b'_'
            | b'#'
            | b','
            | b'('
            | b'!'
            | b'='
            | b'%'
            | b'~'
            | b'|'
            | b'>'
            | b'.'
            | b';'
    )
}

fn type_name(t: u8) -> &'static str {
    match t {
        b'+' => "simple string",
        b'-' => "simple error",
        b':' => "integer",
        b'$' => "bulk string",
        b'*' => "array",
        b'_' => "null",
        b'#' => "boolean",
        b',' => "double",
        b'(' => "big number",
        b'!' => "bulk error",
        b'=' => "verbatim string",
        b'%' => "map",
        b'~' => "set",
        b'|' => "attribute",
        b'>' => "push",
        b'.' => "end marker",
        b';' => "streamed string chunk",
        _ => "unknown",
    }
}

/// Find the CR of the line that starts at `rest[0]` (its type byte). `Ok(None)` when the
/// line is not complete yet; `scanned` remembers how far we looked.
fn find_line_end(rest: &[u8], scanned: &mut usize, max_line: usize) -> Result<Option<usize>> {
    let from = scanned.saturating_add(1);
    // A line of `max_line` content bytes has its CR at index `max_line + 1`.
    let window_end = max_line.saturating_add(2);
    let window = rest
        .get(from..window_end.min(rest.len()))
        .unwrap_or_default();
    match window.iter().position(|&b| b == b'\r' || b == b'\n') {
        Some(i) => {
            let cr = from.saturating_add(i);
            if rest.get(cr) == Some(&b'\n') {
                return Err(proto(format!(
                    "bare LF in {} line",
                    type_name(rest.first().copied().unwrap_or(0))
                )));
            }
            match rest.get(cr.saturating_add(1)) {
                None => {
                    *scanned = cr.saturating_sub(1);
                    Ok(None)
                }
                Some(b'\n') => Ok(Some(cr)),
                Some(_) => Err(proto(format!(
                    "CR not followed by LF in {} line",
                    type_name(rest.first().copied().unwrap_or(0))
                ))),
            }
        }
        None if rest.len() >= window_end => Err(proto(format!(
            "{} line longer than max_line_len {}",
            type_name(rest.first().copied().unwrap_or(0)),
            max_line
        ))),
        None => {
            *scanned = rest.len().saturating_sub(1);
            Ok(None)
        }
    }
}

/// Parse the next line-started item.
fn line_step(
    st: &mut State,
    buf: &[u8],
    src: Option<&Arc<Vec<u8>>>,
    pos: &mut usize,
    lim: &Limits,
) -> Result<Step> {
    let rest = buf.get(*pos..).unwrap_or_default();
    let Some(&t) = rest.first() else {
        return Ok(Step::Incomplete);
    };
    let in_chunks = matches!(st.stack.last(), Some(Frame::Chunks { .. }));
    if in_chunks && t != b';' {
        return Err(proto(format!(
            "expected a streamed string chunk (';'), got type byte 0x{t:02x}"
        )));
    }
    if !is_type_byte(t) {
        return Err(proto(format!("unknown type byte 0x{t:02x}")));
    }
    if t == b';' && !in_chunks {
        return Err(proto("streamed string chunk outside a streamed string"));
    }
    // Fast path: integers and length headers whose line is complete are parsed in one pass;
    // a bulk string whose bytes are all here is copied out at once.
    match t {
        b':' => {
            if let Some((n, used)) = fast_int(rest, lim.max_line_len) {
                st.scanned = 0;
                *pos = pos.saturating_add(used);
                return Ok(Step::Value(Value::Int(n)));
            }
        }
        b'$' | b'*' | b'%' | b'~' | b'>' | b'|' | b'!' | b'=' | b';' => {
            if let Some((n, digits)) = rest.get(1..).and_then(|r| fast_digits(r, lim.max_line_len))
            {
                let n = usize::try_from(n).unwrap_or(usize::MAX);
                st.scanned = 0;
                if t == b'$' {
                    if let Some((b, used)) = fast_bulk(rest, *pos, src, lim) {
                        *pos = pos.saturating_add(used);
                        return Ok(Step::Value(Value::Bulk(b)));
                    }
                }
                *pos = pos.saturating_add(digits.saturating_add(3));
                return header(st, t, Len::N(n), lim);
            }
        }
        _ => {}
    }
    let Some(cr) = find_line_end(rest, &mut st.scanned, lim.max_line_len)? else {
        return Ok(Step::Incomplete);
    };
    st.scanned = 0;
    let line = rest.get(1..cr).unwrap_or_default();
    let after = cr.saturating_add(2);
    *pos = pos.saturating_add(after);

    let v = match t {
        b'+' => Value::Simple(utf8_line(line, t)?),
        b'-' => Value::Error(ServerError::new(utf8_line(line, t)?)),
        b':' => Value::Int(
            parse_i64(line)
                .ok_or_else(|| proto(format!("invalid integer line {:?}", show(line))))?,
        ),
        b'_' => {
            if !line.is_empty() {
                return Err(proto(format!("null with content {:?}", show(line))));
            }
            Value::Nil
        }
        b'#' => match line {
            b"t" => Value::Bool(true),
            b"f" => Value::Bool(false),
            _ => return Err(proto(format!("invalid boolean line {:?}", show(line)))),
        },
        b',' => Value::Double(
            parse_double(line)
                .ok_or_else(|| proto(format!("invalid double line {:?}", show(line))))?,
        ),
        b'(' => {
            let digits = line.strip_prefix(b"-").unwrap_or(line);
            if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                return Err(proto(format!("invalid big number line {:?}", show(line))));
            }
            // Only ASCII here, so this cannot fail.
            Value::BigNumber(String::from_utf8_lossy(line).into_owned())
        }
        b'.' => return end_marker(st, line),
        _ => return header(st, t, parse_len(line, t)?, lim),
    };
    Ok(Step::Value(v))
}

/// Act on a length header (`$ ! = ; * ~ % | >`).
fn header(st: &mut State, t: u8, len: Len, lim: &Limits) -> Result<Step> {
    match t {
        b'$' | b'!' | b'=' => body_header(st, t, len, lim),
        b';' => chunk_header(st, len, lim),
        _ => aggregate_header(st, t, len, lim),
    }
}

/// Fast path: digits then CRLF, all present, at most 19 digits (so no overflow) and at most
/// `max_line` bytes. Returns the number and the count of digits. Anything else (incomplete,
/// malformed, long) returns `None` and is left to the general path, which has the exact rules.
#[inline]
fn fast_digits(s: &[u8], max_line: usize) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    for (i, &b) in s.iter().enumerate().take(20) {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            let ok =
                i != 0 && i <= max_line && b == b'\r' && s.get(i.wrapping_add(1)) == Some(&b'\n');
            return ok.then_some((v, i));
        }
        v = v.wrapping_mul(10).wrapping_add(u64::from(d));
    }
    None
}

/// Fast path for a complete, well-formed `:<int>\r\n`: the value and the bytes it takes.
#[inline]
fn fast_int(rest: &[u8], max_line: usize) -> Option<(i64, usize)> {
    let body = rest.get(1..)?;
    if let Some(digits) = body.strip_prefix(b"-") {
        let (v, n) = fast_digits(digits, max_line.checked_sub(1)?)?;
        Some((0i64.checked_sub_unsigned(v)?, n.wrapping_add(4)))
    } else {
        let (v, n) = fast_digits(body, max_line)?;
        Some((i64::try_from(v).ok()?, n.wrapping_add(3)))
    }
}

/// Fast path for a complete, well-formed `$<len>\r\n<bytes>\r\n` at `rest` (which starts
/// at offset `base` of the input): the string and the bytes it takes.
#[inline]
fn fast_bulk(
    rest: &[u8],
    base: usize,
    src: Option<&Arc<Vec<u8>>>,
    lim: &Limits,
) -> Option<(Bytes, usize)> {
    let (n, digits) = rest
        .get(1..)
        .and_then(|r| fast_digits(r, lim.max_line_len))?;
    let n = usize::try_from(n).ok()?;
    if n > lim.max_bulk_len {
        return None;
    }
    let start = digits.saturating_add(3);
    let end = start.checked_add(n)?;
    let after = end.checked_add(2)?;
    if rest.get(end..after)? != b"\r\n" {
        return None;
    }
    let b = bytes_at(src, base.saturating_add(start), base.saturating_add(end));
    Some((b, after))
}

/// Fast path for a complete, well-formed `+<line>\r\n` within the line limit.
#[inline]
fn fast_simple(rest: &[u8], max_line: usize) -> Option<(Value, usize)> {
    let window = rest.get(1..max_line.saturating_add(2).min(rest.len()))?;
    let i = window.iter().position(|&b| b == b'\r' || b == b'\n')?;
    let after = i.checked_add(3)?;
    if window.get(i) != Some(&b'\r') || rest.get(i.checked_add(2)?) != Some(&b'\n') {
        return None;
    }
    let line = std::str::from_utf8(window.get(..i)?).ok()?;
    Some((Value::Simple(line.to_owned()), after))
}

fn utf8_line(line: &[u8], t: u8) -> Result<String> {
    match std::str::from_utf8(line) {
        Ok(s) => Ok(s.to_owned()),
        Err(_) => Err(proto(format!(
            "{} is not valid UTF-8: {:?}",
            type_name(t),
            show(line)
        ))),
    }
}

/// A length field: `-1` (null), `?` (streamed) or a count.
enum Len {
    Null,
    Streamed,
    N(usize),
}

fn parse_len(line: &[u8], t: u8) -> Result<Len> {
    match line {
        b"-1" => return Ok(Len::Null),
        b"?" => return Ok(Len::Streamed),
        _ => {}
    }
    let bad = || proto(format!("invalid {} length {:?}", type_name(t), show(line)));
    if line.is_empty() {
        return Err(bad());
    }
    let mut n: usize = 0;
    for &b in line {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return Err(bad());
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(usize::from(d)))
            .ok_or_else(|| {
                proto(format!(
                    "{} length {:?} overflows",
                    type_name(t),
                    show(line)
                ))
            })?;
    }
    Ok(Len::N(n))
}

/// `-`? digits, the whole i64 range, nothing else (no `+`, no spaces, not empty).
fn parse_i64(line: &[u8]) -> Option<i64> {
    let (neg, digits) = match line.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, line),
    };
    if digits.is_empty() {
        return None;
    }
    let mut acc: i64 = 0;
    for &b in digits {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        acc = acc.checked_mul(10)?;
        // Accumulate negatives on the negative side so that i64::MIN parses.
        acc = if neg {
            acc.checked_sub(i64::from(d))?
        } else {
            acc.checked_add(i64::from(d))?
        };
    }
    Some(acc)
}

/// `inf`, `-inf`, `nan` (any ASCII case), or `-`? digits [`.` digits] [`e` [+-] digits].
fn parse_double(line: &[u8]) -> Option<f64> {
    if line.eq_ignore_ascii_case(b"inf") {
        return Some(f64::INFINITY);
    }
    if line.eq_ignore_ascii_case(b"-inf") {
        return Some(f64::NEG_INFINITY);
    }
    if line.eq_ignore_ascii_case(b"nan") || line.eq_ignore_ascii_case(b"-nan") {
        return Some(f64::NAN);
    }
    let body = line.strip_prefix(b"-").unwrap_or(line);
    let (rest, int_digits) = skip_digits(body);
    let (rest, frac_digits) = match rest.split_first() {
        Some((b'.', r)) => skip_digits(r),
        _ => (rest, false),
    };
    if !int_digits && !frac_digits {
        return None;
    }
    let rest = match rest.split_first() {
        Some((b'e' | b'E', r)) => {
            let r = match r.split_first() {
                Some((b'+' | b'-', r)) => r,
                _ => r,
            };
            let (r, any) = skip_digits(r);
            if !any {
                return None;
            }
            r
        }
        _ => rest,
    };
    if !rest.is_empty() {
        return None;
    }
    std::str::from_utf8(line).ok()?.parse().ok()
}

/// The bytes after a run of ASCII digits, and whether there was at least one.
fn skip_digits(s: &[u8]) -> (&[u8], bool) {
    let n = s.iter().take_while(|b| b.is_ascii_digit()).count();
    (s.get(n..).unwrap_or_default(), n != 0)
}

fn body_header(st: &mut State, t: u8, len: Len, lim: &Limits) -> Result<Step> {
    let n = match len {
        Len::N(n) => n,
        Len::Null if t == b'$' => return Ok(Step::Value(Value::Nil)),
        Len::Streamed if t == b'$' => {
            st.stack.push(Frame::Chunks { data: Vec::new() });
            return Ok(Step::Continue);
        }
        Len::Null => return Err(proto(format!("null length for a {}", type_name(t)))),
        Len::Streamed => return Err(proto(format!("streamed length '?' for a {}", type_name(t)))),
    };
    if n > lim.max_bulk_len {
        return Err(proto(format!(
            "{} length {n} exceeds max_bulk_len {}",
            type_name(t),
            lim.max_bulk_len
        )));
    }
    let kind = match t {
        b'$' => BodyKind::Bulk,
        b'!' => BodyKind::Error,
        _ => {
            if n < 4 {
                return Err(proto(format!(
                    "verbatim string length {n} is too short for a 'fmt:' prefix"
                )));
            }
            BodyKind::Verbatim
        }
    };
    st.body = Some(Body {
        kind,
        len: n,
        got: Vec::new(),
    });
    Ok(Step::Continue)
}

fn chunk_header(st: &mut State, len: Len, lim: &Limits) -> Result<Step> {
    let Len::N(n) = len else {
        return Err(proto("null or '?' length for a streamed string chunk"));
    };
    let Some(Frame::Chunks { data }) = st.stack.last_mut() else {
        return Err(proto("streamed string chunk outside a streamed string"));
    };
    if n == 0 {
        let data = mem::take(data);
        st.stack.pop();
        return Ok(Step::Value(Value::Bulk(Bytes::from(data))));
    }
    match data.len().checked_add(n) {
        Some(total) if total <= lim.max_bulk_len => {}
        _ => {
            return Err(proto(format!(
                "streamed string exceeds max_bulk_len {}",
                lim.max_bulk_len
            )))
        }
    }
    st.body = Some(Body {
        kind: BodyKind::Chunk,
        len: n,
        got: Vec::new(),
    });
    Ok(Step::Continue)
}

fn end_marker(st: &mut State, line: &[u8]) -> Result<Step> {
    if !line.is_empty() {
        return Err(proto(format!("end marker with content {:?}", show(line))));
    }
    match st.stack.last_mut() {
        Some(Frame::Seq {
            kind,
            items,
            streamed: true,
            ..
        }) => {
            let v = match kind {
                SeqKind::Set => Value::Set(mem::take(items)),
                _ => Value::Array(mem::take(items)),
            };
            st.stack.pop();
            Ok(Step::Value(v))
        }
        Some(Frame::Pairs {
            attr,
            pairs,
            key: None,
            streamed: true,
            ..
        }) => {
            let attr = *attr;
            let pairs = mem::take(pairs);
            st.stack.pop();
            if attr {
                st.stack.push(Frame::AttrValue { attributes: pairs });
                Ok(Step::Continue)
            } else {
                Ok(Step::Value(Value::Map(pairs)))
            }
        }
        Some(Frame::Pairs {
            streamed: true,
            key: Some(_),
            ..
        }) => Err(proto("streamed map ended between a key and its value")),
        _ => Err(proto("end marker '.' outside a streamed aggregate")),
    }
}

fn aggregate_header(st: &mut State, t: u8, len: Len, lim: &Limits) -> Result<Step> {
    let (n, streamed) = match len {
        Len::N(n) => (n, false),
        Len::Null if t == b'*' => return Ok(Step::Value(Value::Nil)),
        Len::Null => return Err(proto(format!("null length for a {}", type_name(t)))),
        Len::Streamed if t == b'>' => return Err(proto("streamed length '?' for a push")),
        Len::Streamed => (0, true),
    };
    if t == b'>'
        && !st
            .stack
            .iter()
            .all(|f| matches!(f, Frame::AttrValue { .. }))
    {
        return Err(proto("push nested inside an aggregate"));
    }
    if n > lim.max_aggregate_len {
        return Err(proto(format!(
            "{} length {n} exceeds max_aggregate_len {}",
            type_name(t),
            lim.max_aggregate_len
        )));
    }
    let max_depth = lim.depth();
    if st.stack.len() >= max_depth {
        return Err(proto(format!("nesting deeper than max_depth {max_depth}")));
    }
    let empty = n == 0 && !streamed;
    // Nothing is reserved here: see `reserve_for` (the declared count is not trusted).
    let frame = match t {
        b'*' | b'~' => {
            let kind = if t == b'*' {
                SeqKind::Array
            } else {
                SeqKind::Set
            };
            if empty {
                return Ok(Step::Value(if t == b'*' {
                    Value::Array(Vec::new())
                } else {
                    Value::Set(Vec::new())
                }));
            }
            Frame::Seq {
                kind,
                items: Vec::new(),
                left: n,
                streamed,
                push_kind: None,
            }
        }
        b'>' => {
            if n == 0 {
                return Err(proto("push with no elements"));
            }
            Frame::Seq {
                kind: SeqKind::Push,
                items: Vec::new(),
                left: n,
                streamed: false,
                push_kind: None,
            }
        }
        b'%' => {
            if empty {
                return Ok(Step::Value(Value::Map(Vec::new())));
            }
            Frame::Pairs {
                attr: false,
                pairs: Vec::new(),
                key: None,
                left: n,
                streamed,
            }
        }
        _ => {
            if empty {
                Frame::AttrValue {
                    attributes: Vec::new(),
                }
            } else {
                Frame::Pairs {
                    attr: true,
                    pairs: Vec::new(),
                    key: None,
                    left: n,
                    streamed,
                }
            }
        }
    };
    st.stack.push(frame);
    Ok(Step::Continue)
}

/// The kind of a push from its first element; `buf` is the input (for a pending view).
fn push_kind(v: Value, buf: &[u8]) -> Result<String> {
    match v {
        Value::Simple(s) => Ok(s),
        Value::Bulk(b) => {
            let bytes = match b.pending_range() {
                Some((start, end)) => buf.get(start..end).unwrap_or_default(),
                None => b.as_slice(),
            };
            std::str::from_utf8(bytes)
                .map(str::to_owned)
                .map_err(|_| proto("push kind is not UTF-8"))
        }
        other => Err(proto(format!(
            "push kind must be a string, got {}",
            other.type_name()
        ))),
    }
}

/// Room to reserve in a container when its first element arrives: what is still declared,
/// but never more than the bytes already received can fill (an element takes at least
/// `min_bytes`) nor [`PREALLOC_MAX`]. A hostile header alone thus reserves nothing, and a
/// real aggregate whose bytes are all here gets its exact size in one allocation.
fn reserve_for(left: usize, avail: usize, min_bytes: usize) -> usize {
    left.min(avail.checked_div(min_bytes).unwrap_or(0).saturating_add(1))
        .min(PREALLOC_MAX)
}

/// Add a completed value to the container on top of the stack, closing every container it
/// completes. Returns the top-level value once the stack is empty. `avail` is the number of
/// bytes received but not parsed yet.
fn complete(
    st: &mut State,
    mut v: Value,
    buf: &[u8],
    max_agg: usize,
    avail: usize,
) -> Result<Option<Value>> {
    loop {
        let Some(top) = st.stack.last_mut() else {
            return Ok(Some(v));
        };
        match top {
            Frame::Seq {
                kind,
                items,
                left,
                streamed,
                push_kind: pk,
            } => {
                if *kind == SeqKind::Push && pk.is_none() {
                    *pk = Some(push_kind(v, buf)?);
                } else {
                    if *streamed && items.len() >= max_agg {
                        return Err(proto(format!(
                            "streamed aggregate exceeds max_aggregate_len {max_agg}"
                        )));
                    }
                    if items.capacity() == 0 && !*streamed {
                        items.reserve_exact(reserve_for(*left, avail, 3));
                    }
                    items.push(v);
                }
                if *streamed {
                    return Ok(None);
                }
                *left = left.saturating_sub(1);
                if *left != 0 {
                    return Ok(None);
                }
                let items = mem::take(items);
                v = match kind {
                    SeqKind::Array => Value::Array(items),
                    SeqKind::Set => Value::Set(items),
                    SeqKind::Push => Value::Push {
                        kind: pk.take().unwrap_or_default(),
                        data: items,
                    },
                };
                st.stack.pop();
            }
            Frame::Pairs {
                attr,
                pairs,
                key,
                left,
                streamed,
            } => {
                match key.take() {
                    None => {
                        *key = Some(v);
                        return Ok(None);
                    }
                    Some(k) => {
                        if *streamed && pairs.len() >= max_agg {
                            return Err(proto(format!(
                                "streamed map exceeds max_aggregate_len {max_agg}"
                            )));
                        }
                        if pairs.capacity() == 0 && !*streamed {
                            pairs.reserve_exact(reserve_for(*left, avail, 6));
                        }
                        pairs.push((k, v));
                    }
                }
                if *streamed {
                    return Ok(None);
                }
                *left = left.saturating_sub(1);
                if *left != 0 {
                    return Ok(None);
                }
                let attr = *attr;
                let pairs = mem::take(pairs);
                if attr {
                    *top = Frame::AttrValue { attributes: pairs };
                    return Ok(None);
                }
                st.stack.pop();
                v = Value::Map(pairs);
            }
            Frame::AttrValue { attributes } => {
                let attributes = mem::take(attributes);
                st.stack.pop();
                v = Value::Attribute {
                    attributes,
                    value: Box::new(v),
                };
            }
            Frame::Chunks { .. } => {
                return Err(proto("value inside a streamed string"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-0"), Some(0));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        assert_eq!(parse_i64(b"-9223372036854775809"), None);
        for bad in [&b""[..], b"-", b"+1", b" 1", b"1 ", b"1a", b"--1"] {
            assert_eq!(parse_i64(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn doubles() {
        assert_eq!(parse_double(b"1.5e10"), Some(1.5e10));
        assert_eq!(parse_double(b"-1E-3"), Some(-1e-3));
        assert_eq!(parse_double(b"10"), Some(10.0));
        assert_eq!(parse_double(b"1e+2"), Some(100.0));
        assert_eq!(parse_double(b"INF"), Some(f64::INFINITY));
        assert_eq!(parse_double(b"-Inf"), Some(f64::NEG_INFINITY));
        assert!(parse_double(b"NaN").is_some_and(f64::is_nan));
        for bad in [
            &b""[..],
            b"-",
            b"+1",
            b"abc",
            b"1e",
            b"e5",
            b".",
            b"1.2.3",
            b"infinity",
            b" 1",
            b"1e5x",
        ] {
            assert_eq!(parse_double(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn line_scan_resumes_without_rescanning() {
        let mut scanned = 0;
        assert!(matches!(find_line_end(b"+OK", &mut scanned, 100), Ok(None)));
        assert_eq!(scanned, 2);
        assert!(matches!(
            find_line_end(b"+OK\r", &mut scanned, 100),
            Ok(None)
        ));
        assert_eq!(scanned, 2);
        assert!(matches!(
            find_line_end(b"+OK\r\n", &mut scanned, 100),
            Ok(Some(3))
        ));
    }

    #[test]
    fn line_limit_is_exact() {
        let mut s = 0;
        assert!(matches!(find_line_end(b"+abc\r\n", &mut s, 3), Ok(Some(4))));
        let mut s = 0;
        assert!(find_line_end(b"+abcd", &mut s, 3).is_err());
        let mut s = 0;
        assert!(matches!(find_line_end(b"+abc", &mut s, 3), Ok(None)));
    }
}
