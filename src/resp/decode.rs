//! Incremental RESP2/RESP3 decoding: [`Decoder`] for a byte stream, [`decode`] for a slice.
//!
//! # Design
//!
//! One parsing core, the scanner (`scan.rs`), serves both. It checks one complete reply in
//! place and records its structure on a reused *tape* of nodes (offsets, integers, aggregate
//! shapes), allocating nothing per reply. What the caller asks for is then made from the tape:
//!
//! * [`Decoder::next_reply`] hands out the reply as it lies in the buffer ([`Reply`],
//!   [`Frame`](super::Frame)): no copy and no allocation at all. Typed conversions
//!   ([`FromValue::from_frame`](crate::FromValue::from_frame)) read it from there, which is
//!   how the connection answers typed commands;
//! * [`Decoder::next_value`] builds an owned [`Value`] whose strings are [`Bytes`] views of
//!   the buffer the reply arrived in (one reference-count bump each, no copy);
//! * the one-shot [`decode`] reads a borrowed slice, so it copies the reply's bytes once,
//!   the first time a string needs them (never for a reply without strings).
//!
//! A reply that arrives in pieces stays in the buffer until it is complete; the scanner
//! resumes where it stopped (it keeps its tape, its stack of open aggregates and how far the
//! current line was already searched), so feeding a reply in any number of pieces costs the
//! same as feeding it whole, give or take a few header bytes per piece that ends inside a
//! bulk string.
//!
//! Every length read from the wire is checked against [`Limits`] before it is used, nothing
//! is reserved from a declared length (the tape grows by one node per value actually
//! received), nesting is bounded by an explicit stack ([`Limits::max_depth`], itself capped
//! at [`Limits::HARD_MAX_DEPTH`]), never by the thread's stack, and all arithmetic on wire
//! numbers is checked.
//!
//! # One buffer per reply
//!
//! The [`Decoder`] keeps received bytes in an `Arc<Vec<u8>>`. The bulk strings (and verbatim
//! texts) of the values it builds are [`Bytes`] views into that buffer. The buffer is
//! written again only while no value shares it (`Arc::get_mut`: the usual case, since typed
//! replies are converted and the `Value` dropped before the next read); otherwise the next
//! write starts a fresh buffer holding just the unparsed tail, and the old one lives on in
//! the values. So a reply costs at most one buffer (plus one `Vec` per aggregate when built
//! as a `Value`), and usually nothing at all.

use std::sync::Arc;

use super::build::{build, Source};
use super::scan::{Node, Scan};
use super::{Bytes, Reply, Value};
use crate::error::{Error, Result};

/// Limits on what a peer may make the decoder hold. Defaults follow the server's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest bulk string (and bulk error, verbatim string, streamed string total) accepted,
    /// in bytes. Default 512 MiB, like the server's `proto-max-bulk-len`. A connection also
    /// refuses to send a command argument longer than this (nothing is written).
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

    pub(crate) fn depth(&self) -> usize {
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

/// An incremental decoder: feed it bytes as they arrive, take complete values out.
///
/// ```
/// use valkit::resp::__internals::Decoder;
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
/// Replies come out as owned [`Value`]s ([`Decoder::next_value`]) or, without building
/// anything, as a [`Reply`] read in place ([`Decoder::next_reply`]).
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
    /// The scan of the reply starting at `pos`.
    scan: Scan,
    /// Detail of the protocol error that failed the decoder (and the limit, for a limit
    /// error, so that later calls are classified alike).
    failed: Option<String>,
    failed_limit: Option<crate::error::Limit>,
    /// When to let go of a grown buffer (see [`Keep`]).
    keep: Keep,
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
            scan: Scan::default(),
            failed: None,
            failed_limit: None,
            keep: Keep::default(),
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
        self.keep.used(self.end);
    }

    /// Append received bytes held in a [`Bytes`]: when the decoder holds no unparsed bytes it
    /// adopts their buffer without copying (the values decoded from it are views of it, and
    /// the decoder never writes into a buffer that anything else still holds); otherwise
    /// they are copied as by [`Decoder::feed`]. Ignored once the decoder has failed.
    ///
    /// ```
    /// use valkit::resp::__internals::Decoder;
    /// use valkit::{Bytes, Value};
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
    /// use valkit::resp::__internals::Decoder;
    /// use valkit::Value;
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
        // Inside a large bulk string the reply's size is known: the buffer grows toward it
        // (at once up to 512 KiB past what arrived, then doubling, so at most twice what
        // arrived plus 512 KiB is reserved) and never past it, so that a 500 MB value ends in
        // a buffer of 500 MB, not 512 MiB or 1 GiB.
        let known = self.pos.saturating_add(self.scan.need());
        // Unique after `make_writable`, so this never clones.
        let buf = Arc::make_mut(&mut self.buf);
        let want = end.saturating_add(min_space);
        if buf.len() < want {
            if want > buf.capacity() {
                // Up to `KNOWN_SIZE_HEADROOM` past what arrived, trust the announced size
                // and allocate it at once (no regrowth copies); beyond that, double, so
                // that a hostile length costs at most twice what was sent plus the headroom.
                let doubled = buf.capacity().saturating_mul(2);
                let target = if known > end {
                    let trusted = doubled.max(end.saturating_add(KNOWN_SIZE_HEADROOM));
                    known.min(trusted).max(want)
                } else {
                    doubled.max(want)
                };
                buf.reserve_exact(target.saturating_sub(buf.len()));
            }
            buf.resize(want, 0);
        }
        let room = buf.get_mut(end..).unwrap_or_default();
        let room_len = room.len();
        let n = read(room)?.min(room_len);
        self.end = self.end.saturating_add(n);
        self.keep.used(self.end);
        Ok(n)
    }

    /// The next complete value, `Ok(None)` when more bytes are needed, or a protocol error
    /// (after which the decoder stays failed).
    pub fn next_value(&mut self) -> Result<Option<Value>> {
        let Some(start) = self.take_reply()? else {
            return Ok(None);
        };
        let mut src = Source::Shared {
            buf: &self.buf,
            base: start,
        };
        let v = build(self.scan.tape(), 0, &mut src);
        self.compact();
        Ok(Some(v))
    }

    /// The next complete reply, read in place: validated and indexed, but nothing built or
    /// copied (see [`Reply`]). `Ok(None)` when more bytes are needed; a protocol error fails
    /// the decoder as for [`Decoder::next_value`]. The two may be mixed freely.
    ///
    /// ```
    /// use valkit::resp::__internals::Decoder;
    /// let mut d = Decoder::new();
    /// d.feed(b"$5\r\nhello\r\n:4");
    /// assert_eq!(d.next_reply().unwrap().unwrap().frame().as_bytes(), Some(&b"hello"[..]));
    /// assert!(d.next_reply().unwrap().is_none()); // `:4` is not complete
    /// d.feed(b"2\r\n");
    /// assert_eq!(d.next_reply().unwrap().unwrap().frame().as_int(), Some(42));
    /// ```
    #[inline]
    pub fn next_reply(&mut self) -> Result<Option<Reply<'_>>> {
        let Some(start) = self.take_reply()? else {
            return Ok(None);
        };
        let bytes = self.buf.get(start..self.pos).unwrap_or_default();
        Ok(Some(Reply::new(bytes, self.scan.tape())))
    }

    /// As [`Decoder::next_reply`], except that a reply which is one bulk string of at least
    /// `min_owned` bytes, alone in a buffer nobody else holds, comes out as [`Next::Owned`]:
    /// the decoder hands its buffer over (a view of it, the only one) and starts a new one.
    /// A large value then exists once in memory, not in the read buffer and again in its
    /// copy.
    #[inline]
    pub(crate) fn next_reply_or_owned(&mut self, min_owned: usize) -> Result<Option<Next<'_>>> {
        let Some(start) = self.take_reply()? else {
            return Ok(None);
        };
        if let [Node::Bulk(s)] = self.scan.tape() {
            let (from, to) = (s.start, s.end);
            if to.saturating_sub(from) >= min_owned
                && self.pos == self.end
                && Arc::get_mut(&mut self.buf).is_some()
            {
                let buf = std::mem::take(&mut self.buf);
                self.pos = 0;
                self.end = 0;
                let bytes = Bytes::view(&buf, start.saturating_add(from), start.saturating_add(to));
                return Ok(Some(Next::Owned(bytes)));
            }
        }
        let bytes = self.buf.get(start..self.pos).unwrap_or_default();
        Ok(Some(Next::Reply(Reply::new(bytes, self.scan.tape()))))
    }

    /// Scan the reply at `pos`. When it is complete, return where it starts, with `pos`
    /// moved past it and the scanner's tape describing it. A whole one-node reply takes the
    /// scanner's fast path (a failed decoder holds no bytes, so it never gets there); a
    /// protocol error fails the decoder.
    #[inline(always)]
    fn take_reply(&mut self) -> Result<Option<usize>> {
        if let Some(pending) = self.buf.get(self.pos..self.end) {
            if let Some(len) = self.scan.leaf_reply(pending, &self.limits) {
                let start = self.pos;
                self.pos = start.wrapping_add(len);
                return Ok(Some(start));
            }
        }
        self.take_scanned()
    }

    /// [`Decoder::take_reply`] past its fast path: the general scan. Out of line, so that
    /// the fast path stays small enough to inline into every `next_*` caller.
    #[inline(never)]
    fn take_scanned(&mut self) -> Result<Option<usize>> {
        self.compact();
        if let Some(detail) = &self.failed {
            let detail = format!("decoder failed earlier: {detail}");
            return Err(match self.failed_limit {
                Some(which) => Error::limit_exceeded(which, detail),
                None => Error::protocol(detail),
            });
        }
        let pending = self.buf.get(self.pos..self.end).unwrap_or_default();
        match self.scan.scan(pending, &self.limits) {
            Ok(Some(len)) => {
                let start = self.pos;
                self.pos = self.pos.saturating_add(len);
                Ok(Some(start))
            }
            Ok(None) => Ok(None),
            Err(e) => {
                self.failed = Some(e.detail().to_owned());
                self.failed_limit = e.limit();
                self.buf = Arc::default();
                self.pos = 0;
                self.end = 0;
                self.scan.reset();
                Err(e)
            }
        }
    }

    /// Bytes fed but not yet returned as part of a value (those of a partly received reply
    /// included). Zero once the decoder has failed.
    pub fn buffered(&self) -> usize {
        self.end.saturating_sub(self.pos)
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
    /// Runs at the start of every `next_*` call and after `next_value`; a caller done with a
    /// [`Reply`] may run it at once (the connection does, before going idle).
    #[inline]
    pub(crate) fn compact(&mut self) {
        if self.pos >= self.end && self.pos != 0 {
            self.pos = 0;
            self.end = 0;
            if self.buf.capacity() > RETAINED_CAPACITY {
                self.buf = Arc::default();
            }
            self.scan.trim();
        }
    }

    /// The connection is done with a command (or pipeline): [`Decoder::compact`], then let go
    /// of a grown buffer that recent calls no longer needed (see [`Keep`]). A buffer that
    /// still holds unparsed bytes is kept.
    #[inline(always)]
    pub(crate) fn end_call(&mut self) {
        self.compact();
        if self.buf.capacity() > SMALL_CAPACITY {
            self.settle();
        }
    }

    /// See [`Decoder::end_call`]: a grown buffer.
    #[cold]
    fn settle(&mut self) {
        if self.pos == self.end && self.keep.release(self.buf.capacity()) {
            self.buf = Arc::default();
            self.pos = 0;
            self.end = 0;
        }
    }

    /// Capacity of the read buffer (tests).
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// When the reply being received is one bulk string (`$`, at the top level) with at
    /// least `min_len` bytes of it (body and CRLF) still to arrive: take it out of the
    /// decoder, as a
    /// [`LargeBulk`] holding the part of the body received so far, so that the rest can be
    /// read from the socket straight into the value's own buffer (no zero-filled read
    /// buffer, no copy out of it). The decoder is left empty, at the reply's end: the caller
    /// must read exactly [`LargeBulk::missing`] more bytes into the `LargeBulk`, or give the
    /// byte stream up (a connection is broken on any failure in between).
    ///
    /// The new buffer is reserved at most [`KNOWN_SIZE_HEADROOM`] past what arrived (and
    /// grows later only as data arrives, see [`LargeBulk::room`]), so a hostile length costs
    /// what the read buffer would have.
    /// Whether [`Decoder::take_large_bulk`] may have something to take (one comparison;
    /// false means it certainly has not).
    #[inline(always)]
    pub(crate) fn may_take_large_bulk(&self, min_len: usize) -> bool {
        self.scan.need() >= min_len
    }

    #[inline(always)]
    pub(crate) fn take_large_bulk(&mut self, min_len: usize) -> Option<LargeBulk> {
        // One comparison on the usual path: `need` is 0 unless the scan stopped in a body,
        // and never less than the body's length.
        if self.scan.need() < min_len {
            return None;
        }
        self.take_bulk_body(min_len)
    }

    /// See [`Decoder::take_large_bulk`]: at least `min_len` bytes must still be missing.
    #[cold]
    fn take_bulk_body(&mut self, min_len: usize) -> Option<LargeBulk> {
        if self.failed.is_some() {
            return None;
        }
        let body = self.scan.top_bulk()?;
        let (start, len) = (body.start, body.end.checked_sub(body.start)?);
        let total = len.checked_add(2)?;
        let from = self.pos.checked_add(start)?;
        let arrived = self.buf.get(from..self.end)?;
        // Nearly all here (a 16 KiB value after one 16 KiB read): the ordinary path is
        // cheaper than a buffer and a read of its own for the last few bytes.
        if total.saturating_sub(arrived.len()) < min_len {
            return None;
        }
        let cap = total.min(arrived.len().saturating_add(KNOWN_SIZE_HEADROOM));
        let mut buf = Vec::with_capacity(cap);
        buf.extend_from_slice(arrived);
        // Header and received body consumed; the scanner forgets the reply.
        self.pos = self.end;
        self.scan.reset();
        self.compact();
        Some(LargeBulk { buf, len })
    }
}

/// A bulk string reply being read straight into its own buffer (see
/// [`Decoder::take_large_bulk`]): the body, then its CRLF.
#[derive(Debug)]
pub(crate) struct LargeBulk {
    /// The body and CRLF bytes received so far.
    buf: Vec<u8>,
    /// The body's length (`buf` ends at `len + 2` bytes).
    len: usize,
}

impl LargeBulk {
    /// Bytes still to read (body and CRLF).
    #[inline]
    pub(crate) fn missing(&self) -> usize {
        self.len.saturating_add(2).saturating_sub(self.buf.len())
    }

    /// The buffer to append to and how many bytes may be appended to it now (at least one
    /// while [`LargeBulk::missing`] is not zero, never past the reply's end, never past the
    /// buffer's capacity, so appending never reallocates). When the buffer is full it grows
    /// toward the announced size: to twice its capacity or [`KNOWN_SIZE_HEADROOM`] past what
    /// arrived, whichever is more, never past the reply. So a length followed by nothing
    /// reserves at most twice what arrived plus the headroom.
    pub(crate) fn room(&mut self) -> (&mut Vec<u8>, usize) {
        let missing = self.missing();
        let spare = self.buf.capacity().saturating_sub(self.buf.len());
        if spare == 0 && missing != 0 {
            let target = self
                .buf
                .capacity()
                .saturating_mul(2)
                .max(self.buf.len().saturating_add(KNOWN_SIZE_HEADROOM));
            let grow = target.saturating_sub(self.buf.len()).min(missing);
            self.buf.reserve_exact(grow);
        }
        let spare = self.buf.capacity().saturating_sub(self.buf.len());
        (&mut self.buf, spare.min(missing))
    }

    /// The body, once [`LargeBulk::missing`] is zero: its CRLF is checked and cut off. A
    /// wrong terminator is a protocol error (the stream is out of step: close it).
    pub(crate) fn finish(mut self) -> Result<Bytes> {
        if self.missing() != 0 || self.buf.get(self.len..) != Some(&b"\r\n"[..]) {
            return Err(Error::protocol(format!(
                "bulk string of length {} not followed by CRLF",
                self.len
            )));
        }
        self.buf.truncate(self.len);
        Ok(Bytes::from(self.buf))
    }
}

/// When a connection lets go of a grown buffer (the decoder's read buffer, the write
/// buffer). A buffer of up to [`SMALL_CAPACITY`] is always kept; one over
/// [`RETAINED_CAPACITY`] is released as soon as it is drained; one in between is kept
/// while calls keep needing more than [`SMALL_CAPACITY`], and released after
/// [`SMALL_CALLS_BEFORE_RELEASE`] calls in a row that did not. So repeated large replies or
/// deep pipelines reuse one buffer instead of growing (and zero-filling) a new one each
/// time, and an idle connection holds at most [`RETAINED_CAPACITY`] per buffer.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Keep {
    /// Most bytes a buffer held at once during the current call.
    peak: usize,
    /// Calls in a row whose peak was at most [`SMALL_CAPACITY`] while the buffer was bigger.
    small: u32,
}

impl Keep {
    /// The buffer held `n` bytes at once.
    #[inline]
    pub(crate) fn used(&mut self, n: usize) {
        self.peak = self.peak.max(n);
    }

    /// At the end of a call: whether a buffer of `capacity` bytes should be let go.
    #[inline]
    pub(crate) fn release(&mut self, capacity: usize) -> bool {
        let peak = std::mem::take(&mut self.peak);
        if capacity <= SMALL_CAPACITY {
            self.small = 0;
            return false;
        }
        if capacity > RETAINED_CAPACITY {
            self.small = 0;
            return true;
        }
        if peak > SMALL_CAPACITY {
            self.small = 0;
            return false;
        }
        self.small = self.small.saturating_add(1);
        if self.small >= SMALL_CALLS_BEFORE_RELEASE {
            self.small = 0;
            return true;
        }
        false
    }
}

/// What [`Decoder::next_reply_or_owned`] produced.
pub(crate) enum Next<'a> {
    /// A reply read in place.
    Reply(Reply<'a>),
    /// A reply that is one large bulk string: its bytes, in the buffer the decoder let go.
    Owned(Bytes),
}

/// How far past the bytes received a large bulk string's announced length is trusted when
/// the read buffer grows toward it: a reply up to this size is read into one allocation
/// of its size (no copies while growing). Kept under 1 MiB: a hostile length followed by
/// nothing must not cost a megabyte (tests/faults.rs, `fault_hostile_lengths_...`).
pub(crate) const KNOWN_SIZE_HEADROOM: usize = 512 * 1024;

/// Largest buffer a drained decoder (or a connection's write buffer) keeps for the next
/// reply (command). See `Keep` for when a smaller grown one is let go.
pub const RETAINED_CAPACITY: usize = 256 * 1024;

/// A buffer this small is always kept (see `Keep`).
pub(crate) const SMALL_CAPACITY: usize = 32 * 1024;

/// Calls in a row that needed no more than [`SMALL_CAPACITY`] after which a grown buffer
/// is let go (see `Keep`).
pub(crate) const SMALL_CALLS_BEFORE_RELEASE: u32 = 16;

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

/// Decode one value from the start of `buf`: `Ok(Some((value, consumed)))`, `Ok(None)` when
/// `buf` holds only a prefix of a frame, or a protocol error.
///
/// ```
/// use valkit::resp::__internals::decode;
/// use valkit::resp::Limits;
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
    let mut scan = Scan::default();
    let Some(len) = scan.scan(buf, limits)? else {
        return Ok(None);
    };
    let mut src = Source::Borrowed {
        reply: buf.get(..len).unwrap_or_default(),
        copy: None,
    };
    Ok(Some((build(scan.tape(), 0, &mut src), len)))
}

#[cfg(test)]
// Test code: a panic is how it fails (the codec's own no-panic lints are for the codec).
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::field_reassign_with_default
)]
mod tests {
    use super::*;

    /// The scanner's fast lane (children of counted aggregates) stops at whatever breaks a
    /// rule, so the general path reports it exactly as it would at the top level.
    #[test]
    fn fast_lane_leaves_rules_to_the_general_path() {
        use crate::error::Limit;
        let with = |f: fn(&mut Limits)| {
            let mut l = Limits::default();
            f(&mut l);
            l
        };
        let limit_of = |wire: &[u8], l: Limits| {
            let mut d = Decoder::with_limits(l);
            d.feed(wire);
            d.next_value().unwrap_err().limit()
        };
        let wire = b"*2\r\n:1\r\n$16\r\n0123456789abcdef\r\n";
        assert_eq!(
            limit_of(wire, with(|l| l.max_bulk_len = 15)),
            Some(Limit::BulkLen)
        );
        assert_eq!(
            limit_of(wire, with(|l| l.max_line_len = 1)),
            Some(Limit::LineLen)
        );
        let mut d = Decoder::with_limits(with(|l| l.max_bulk_len = 16));
        d.feed(wire);
        assert!(d.next_value().unwrap().is_some());
        let nested = b"*1\r\n%1\r\n$1\r\na\r\n*3\r\n:1\r\n:2\r\n:3\r\n";
        assert_eq!(
            limit_of(nested, with(|l| l.max_aggregate_len = 2)),
            Some(Limit::AggregateLen)
        );
        assert_eq!(
            limit_of(nested, with(|l| l.max_depth = 2)),
            Some(Limit::Depth)
        );
        // Not canonical: a protocol error, not a limit.
        for bad in [
            &b"*2\r\n$01\r\na\r\n:1\r\n"[..],
            b"*2\r\n:01\r\n:1\r\n",
            b"*1\r\n$2\r\nab\r\r",
        ] {
            let mut d = Decoder::new();
            d.feed(bad);
            let e = d.next_value().unwrap_err();
            assert_eq!(e.limit(), None, "{bad:?}: {e}");
        }
        // The same reply in one piece and byte by byte: the same tape.
        let mut whole = Decoder::new();
        whole.feed(nested);
        let want = whole.next_value().unwrap().unwrap();
        let mut split = Decoder::new();
        let mut got = None;
        for b in nested {
            split.feed(&[*b]);
            if let Some(v) = split.next_value().unwrap() {
                got = Some(v);
            }
        }
        assert_eq!(got, Some(want));
    }

    /// A large bulk string's announced size is allocated at once up to 512 KiB past what
    /// arrived (no regrowth copies), and a hostile length reserves no more than twice what
    /// arrived plus that headroom.
    #[test]
    fn a_large_bulk_grows_its_buffer_once_and_a_hostile_length_stays_bounded() {
        let grow = |announced: usize| -> usize {
            let mut d = Decoder::new();
            d.feed(format!("${announced}\r\nabc").as_bytes());
            assert!(matches!(d.next_value(), Ok(None)));
            let _ = d.read_with(16 * 1024, |_room| Ok::<_, std::io::Error>(0));
            d.buf.capacity()
        };
        let header = "$300000\r\n".len();
        let cap = grow(300_000);
        assert!(
            cap >= 300_000 + header && cap < 300_000 + header + 16 * 1024,
            "one allocation of the reply's size: {cap}"
        );
        let cap = grow(500_000_000);
        assert!(
            cap <= 2 * 64 + KNOWN_SIZE_HEADROOM + 32 * 1024,
            "a hostile length reserves at most the headroom: {cap}"
        );
    }

    /// Feed `wire` and scan: the reply must be incomplete.
    fn pending(wire: &[u8]) -> Decoder {
        let mut d = Decoder::new();
        d.feed(wire);
        assert!(matches!(d.next_reply(), Ok(None)));
        d
    }

    #[test]
    fn a_large_top_level_bulk_is_handed_out_with_what_arrived() {
        let mut wire = b"$40000\r\n".to_vec();
        wire.extend_from_slice(&[7u8; 1000]);
        // Too small for the direct read, or complete: nothing taken.
        assert!(pending(&wire).take_large_bulk(40_001).is_none());
        // Fewer bytes missing than asked for: the ordinary path.
        let mut nearly = b"$40000\r\n".to_vec();
        nearly.extend_from_slice(&[7u8; 39_000]);
        assert!(pending(&nearly).take_large_bulk(16 * 1024).is_none());
        assert!(pending(&nearly).take_large_bulk(1002).is_some());
        let mut d = pending(&wire);
        let mut body = d.take_large_bulk(16 * 1024).expect("taken");
        assert_eq!(body.missing(), 40_002 - 1000);
        assert!(!d.is_mid_frame(), "header and received body consumed");
        assert_eq!(d.buffered(), 0);
        // The rest, in pieces no larger than the room offered, then the CRLF.
        let mut rest = vec![7u8; 39_000];
        rest.extend_from_slice(b"\r\n");
        let mut at = 0;
        while body.missing() != 0 {
            let (buf, room) = body.room();
            assert!(room >= 1 && room <= buf.capacity() - buf.len());
            let n = room.min(5000).min(rest.len() - at);
            let cap = buf.capacity();
            buf.extend_from_slice(&rest[at..at + n]);
            assert_eq!(
                buf.capacity(),
                cap,
                "appending within the room never reallocates"
            );
            at += n;
        }
        let bytes = body.finish().unwrap();
        assert_eq!(bytes.len(), 40_000);
        assert!(bytes.iter().all(|&b| b == 7));
        let ptr = bytes.as_ptr();
        let v = bytes.into_vec();
        assert_eq!(v.as_ptr(), ptr, "the body buffer is the value: no copy");
        // The decoder goes on with the next reply.
        d.feed(b":5\r\n");
        assert_eq!(d.next_value().unwrap(), Some(Value::Int(5)));
    }

    #[test]
    fn only_a_bulk_string_that_is_the_whole_reply_is_taken() {
        let big = |prefix: &[u8]| {
            let mut w = prefix.to_vec();
            w.extend_from_slice(b"$100000\r\n");
            w.extend_from_slice(&[1u8; 100]);
            w
        };
        // Inside an array, a push, after an attribute; a bulk error; a verbatim string.
        for prefix in [
            &b"*2\r\n"[..],
            b">2\r\n$7\r\nmessage\r\n",
            b"|1\r\n+a\r\n:1\r\n",
        ] {
            assert!(pending(&big(prefix)).take_large_bulk(1).is_none());
        }
        let mut w = b"!100000\r\n".to_vec();
        w.extend_from_slice(&[1u8; 100]);
        assert!(pending(&w).take_large_bulk(1).is_none());
        let mut w = b"=100000\r\ntxt:".to_vec();
        w.extend_from_slice(&[1u8; 100]);
        assert!(pending(&w).take_large_bulk(1).is_none());
        // A header not complete yet.
        assert!(pending(b"$1000").take_large_bulk(1).is_none());
        // Over the limit: a limit error, never a taken body.
        let mut lim = Limits::default();
        lim.max_bulk_len = 1000;
        let mut d = Decoder::with_limits(lim);
        d.feed(b"$100000\r\nabc");
        assert!(d.next_reply().is_err());
        assert!(d.take_large_bulk(1).is_none());
    }

    /// Append `n` bytes of `b` to `body`, within the room it offers each time.
    fn append(body: &mut LargeBulk, mut n: usize, b: u8) {
        while n != 0 {
            let (buf, room) = body.room();
            let k = room.min(n);
            assert!(k != 0, "room while bytes are missing");
            buf.extend(std::iter::repeat(b).take(k));
            n -= k;
        }
    }

    #[test]
    fn a_taken_body_checks_its_crlf() {
        let mut d = pending(b"$20000\r\nab");
        let mut body = d.take_large_bulk(1).unwrap();
        append(&mut body, 19_998, b'x');
        append(&mut body, 1, b'\n');
        append(&mut body, 1, b'\r');
        assert_eq!(
            body.finish().unwrap_err().kind(),
            crate::error::ErrorKind::Protocol
        );
    }

    #[test]
    fn a_hostile_length_reserves_the_headroom_and_grows_only_with_data() {
        let mut lim = Limits::default();
        lim.max_bulk_len = usize::MAX;
        let mut d = Decoder::with_limits(lim);
        d.feed(b"$4294967296\r\n");
        assert!(matches!(d.next_reply(), Ok(None)));
        let mut body = d.take_large_bulk(1).unwrap();
        let (buf, room) = body.room();
        assert_eq!(
            buf.capacity(),
            KNOWN_SIZE_HEADROOM,
            "nothing arrived: the headroom"
        );
        assert_eq!(room, KNOWN_SIZE_HEADROOM);
        // 1 MiB arrives: the buffer at most doubles past it, plus the headroom.
        let arrived = 1024 * 1024;
        append(&mut body, arrived, 0);
        let (buf, _) = body.room();
        assert!(
            buf.capacity() <= 2 * (arrived + KNOWN_SIZE_HEADROOM),
            "{}",
            buf.capacity()
        );
        // A body of its exact size ends in a buffer of that size.
        let mut d = pending(b"$1048576\r\n");
        let mut body = d.take_large_bulk(1).unwrap();
        append(&mut body, 1024 * 1024, 3);
        append(&mut body, 1, b'\r');
        append(&mut body, 1, b'\n');
        let v = body.finish().unwrap().into_vec();
        assert_eq!(v.len(), 1024 * 1024);
        assert_eq!(v.capacity(), 1024 * 1024 + 2);
    }

    #[test]
    fn grown_buffers_are_kept_for_big_calls_and_let_go_after_small_ones() {
        let array = |n: usize| {
            let mut w = format!("*{n}\r\n").into_bytes();
            for _ in 0..n {
                w.extend_from_slice(b"$16\r\nxxxxxxxxxxxxxxxx\r\n");
            }
            w
        };
        let call = |d: &mut Decoder, wire: &[u8]| {
            for piece in wire.chunks(16 * 1024) {
                d.read_with(16 * 1024, |room| {
                    room[..piece.len()].copy_from_slice(piece);
                    Ok::<_, std::io::Error>(piece.len())
                })
                .unwrap();
            }
            assert!(d.next_reply().unwrap().is_some());
            d.end_call();
        };
        let mut d = Decoder::new();
        call(&mut d, &array(4000)); // about 94 KiB
        let grown = d.capacity();
        assert!(grown > SMALL_CAPACITY, "{grown}");
        for _ in 0..5 {
            call(&mut d, &array(4000));
            assert_eq!(d.capacity(), grown, "kept: no regrowth");
        }
        // Small calls: kept for a while, then let go.
        for _ in 1..SMALL_CALLS_BEFORE_RELEASE {
            call(&mut d, b":1\r\n");
            assert_eq!(d.capacity(), grown);
        }
        call(&mut d, b":1\r\n");
        assert!(d.capacity() <= SMALL_CAPACITY, "{}", d.capacity());
        // Past the cap: let go at once.
        call(&mut d, &array(12_000)); // about 280 KiB
        assert!(d.capacity() <= SMALL_CAPACITY, "{}", d.capacity());
    }

    #[test]
    fn keep_is_bounded() {
        let mut k = Keep::default();
        k.used(100);
        assert!(!k.release(SMALL_CAPACITY));
        k.used(RETAINED_CAPACITY);
        assert!(k.release(RETAINED_CAPACITY + 1), "over the cap");
        k.used(RETAINED_CAPACITY);
        assert!(!k.release(RETAINED_CAPACITY), "at the cap, needed");
        for _ in 1..SMALL_CALLS_BEFORE_RELEASE {
            assert!(!k.release(RETAINED_CAPACITY));
        }
        assert!(k.release(RETAINED_CAPACITY));
    }

    #[test]
    fn a_drained_decoder_lets_go_of_a_big_reply() {
        let mut wire = b"*10000\r\n".to_vec();
        for _ in 0..10_000 {
            wire.extend_from_slice(b":1\r\n");
        }
        let mut d = Decoder::new();
        d.feed(&wire);
        assert_eq!(
            d.next_reply().ok().flatten().map(|r| r.frame().len()),
            Some(10_000)
        );
        assert!(d.scan.tape_capacity() >= 10_001);
        d.compact();
        assert_eq!(d.scan.tape_capacity(), 0, "a 10,000-node tape is released");
        // Small replies keep their tape (no reallocation per reply).
        d.feed(b"*2\r\n:1\r\n:2\r\n*2\r\n:3\r\n:4\r\n");
        assert!(d.next_value().ok().flatten().is_some());
        let kept = d.scan.tape_capacity();
        assert!(kept >= 3);
        assert!(d.next_value().ok().flatten().is_some());
        d.compact();
        assert_eq!(d.scan.tape_capacity(), kept);
    }
}
