//! [`Reply`] and [`Frame`]: a decoded reply read in place, without building [`Value`]s.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use super::build::{build, Source};
use super::scan::{next_sibling, string_bytes, Node, Scan, Span};
use super::{Bytes, Limits, Value};
use crate::error::{Result, ServerError};

/// One complete reply, validated and indexed where it lies in the decoder's buffer: nothing
/// is copied or allocated to read it. Get one from
/// [`Decoder::next_reply`](super::Decoder::next_reply); it borrows the decoder until dropped.
///
/// ```
/// use valkit::resp::__internals::Decoder;
/// use valkit::resp::FrameKind;
/// let mut d = Decoder::new();
/// d.feed(b"*3\r\n$3\r\nfoo\r\n$-1\r\n:7\r\n");
/// let reply = d.next_reply().unwrap().unwrap();
/// let root = reply.frame();
/// assert_eq!(root.kind(), FrameKind::Array);
/// let items: Vec<_> = root.iter().collect();
/// assert_eq!(items[0].as_bytes(), Some(&b"foo"[..]));
/// assert!(items[1].is_nil());
/// assert_eq!(items[2].as_int(), Some(7));
/// ```
#[derive(Clone, Copy)]
pub struct Reply<'a> {
    bytes: &'a [u8],
    tape: &'a [Node],
}

impl<'a> Reply<'a> {
    pub(crate) fn new(bytes: &'a [u8], tape: &'a [Node]) -> Reply<'a> {
        Reply { bytes, tape }
    }

    /// The reply's top-level value.
    pub fn frame(&self) -> Frame<'a> {
        Frame {
            bytes: self.bytes,
            tape: self.tape,
            idx: 0,
            owned: None,
        }
    }

    /// The reply's bytes as they arrived.
    pub fn wire_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// An owned copy of the reply (its strings share one new buffer).
    pub fn to_value(&self) -> Value {
        self.frame().to_value()
    }
}

impl fmt::Debug for Reply<'_> {
    /// The type and size only: replies may hold user data.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reply")
            .field("type", &self.frame().type_name())
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

/// The RESP type of a [`Frame`], as in [`Value`]'s variants. Streamed strings are
/// [`FrameKind::Bulk`]; simple and bulk errors are [`FrameKind::Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FrameKind {
    /// A null.
    Nil,
    /// A simple string.
    Simple,
    /// An error reply.
    Error,
    /// An integer.
    Int,
    /// A bulk string.
    Bulk,
    /// An array.
    Array,
    /// A boolean.
    Bool,
    /// A double.
    Double,
    /// A big number.
    BigNumber,
    /// A verbatim string.
    Verbatim,
    /// A map.
    Map,
    /// A set.
    Set,
    /// A value with attributes.
    Attribute,
    /// An out-of-band push.
    Push,
}

/// One value of a reply, read where it lies in the connection's receive buffer (validated
/// and indexed, not copied): a cheap, copyable cursor. Accessors return `None` (or
/// nothing) for a value of another type; nothing here allocates except
/// [`Frame::to_value`] and the bytes of a streamed string.
///
/// Frames are what [`Execute::exec_frame`](crate::Execute::exec_frame) hands to its
/// closure and what [`FromValue::from_frame`](crate::FromValue::from_frame) reads; they
/// borrow the buffer, so they live only for that call.
///
/// ```no_run
/// use valkit::resp::FrameKind;
/// use valkit::{cmd, Connection, Execute};
/// # fn main() -> valkit::Result<()> {
/// let conn = Connection::open_url("redis://127.0.0.1:6379")?;
/// conn.exec_frame(&cmd("MGET").arg("a").arg("b"), &mut |f| {
///     assert_eq!(f.kind(), FrameKind::Array);
///     for item in f.iter() {
///         println!("{:?}", item.as_bytes()); // `None` for a missing key
///     }
///     Ok(())
/// })?;
/// # Ok(()) }
/// ```
#[derive(Clone, Copy)]
pub struct Frame<'a> {
    bytes: &'a [u8],
    tape: &'a [Node],
    idx: usize,
    /// For a reply that is one large bulk string whose buffer the connection handed over:
    /// the bytes, for a conversion that can take them without a copy (see
    /// [`with_owned_bulk`]).
    owned: Option<&'a Cell<Option<Bytes>>>,
}

impl<'a> Frame<'a> {
    /// For a whole reply that is one large bulk string received into a buffer nobody else
    /// holds: its bytes, taken (once) without a copy. The caller converts them as
    /// `FromValue::from_value(Value::Bulk(bytes))`, which follows the same rules as
    /// `from_frame`; by the time it runs the connection has let go of them, so a `Vec<u8>`
    /// is made in place.
    pub(crate) fn take_owned(&self) -> Option<Bytes> {
        self.owned.and_then(Cell::take)
    }

    /// As [`Frame::as_bytes`], except for a status line that is not UTF-8: `None`, so that
    /// conversions take the `Value` path and read it exactly as `from_value` does (lossily).
    pub(crate) fn text_bytes(&self) -> Option<&'a [u8]> {
        match self.node() {
            Node::SimpleRaw(_) => None,
            _ => self.as_bytes(),
        }
    }

    fn node(&self) -> Node {
        self.tape.get(self.idx).copied().unwrap_or(Node::Nil)
    }

    fn text(&self, s: Span) -> &'a [u8] {
        self.bytes.get(s.start..s.end).unwrap_or_default()
    }

    /// The RESP type.
    pub fn kind(&self) -> FrameKind {
        match self.node() {
            Node::Nil => FrameKind::Nil,
            Node::Simple(_) | Node::SimpleRaw(_) => FrameKind::Simple,
            Node::Error(_) | Node::BulkError(_) => FrameKind::Error,
            Node::Int(_) => FrameKind::Int,
            Node::Bulk(_) | Node::Streamed(_) => FrameKind::Bulk,
            Node::Array(_) => FrameKind::Array,
            Node::Bool(_) => FrameKind::Bool,
            Node::Double(_) => FrameKind::Double,
            Node::BigNumber(_) => FrameKind::BigNumber,
            Node::Verbatim(_) => FrameKind::Verbatim,
            Node::Map(_) => FrameKind::Map,
            Node::Set(_) => FrameKind::Set,
            Node::Attribute(_) => FrameKind::Attribute,
            Node::Push(_) => FrameKind::Push,
        }
    }

    /// A short name of the RESP type, as [`Value::type_name`] gives it.
    pub fn type_name(&self) -> &'static str {
        self.node().type_name()
    }

    /// True for a null.
    pub fn is_nil(&self) -> bool {
        matches!(self.node(), Node::Nil)
    }

    /// The integer of an integer reply.
    pub fn as_int(&self) -> Option<i64> {
        match self.node() {
            Node::Int(i) => Some(i),
            _ => None,
        }
    }

    /// The number of a double reply.
    pub fn as_double(&self) -> Option<f64> {
        match self.node() {
            Node::Double(d) => Some(d),
            _ => None,
        }
    }

    /// The truth of a boolean reply.
    pub fn as_bool(&self) -> Option<bool> {
        match self.node() {
            Node::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The bytes of a bulk or simple string, or a verbatim string's text, as they lie in the
    /// buffer. `None` for other types and for a streamed string (see [`Frame::string`]).
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match self.node() {
            Node::Bulk(s) | Node::Simple(s) | Node::SimpleRaw(s) => Some(self.text(s)),
            Node::Verbatim(s) => Some(self.text(s).get(4..).unwrap_or_default()),
            _ => None,
        }
    }

    /// Like [`Frame::as_bytes`], also for a streamed string (whose chunks are joined into
    /// a new buffer) and a big number's digits.
    pub fn string(&self) -> Option<Cow<'a, [u8]>> {
        string_bytes(self.tape, self.bytes, self.idx)
    }

    /// The server error of an error reply.
    pub fn server_error(&self) -> Option<ServerError> {
        match self.node() {
            Node::Error(s) | Node::BulkError(s) => Some(ServerError::new(
                String::from_utf8_lossy(self.text(s)).into_owned(),
            )),
            _ => None,
        }
    }

    /// `Err` with the server error for an error reply, else this frame.
    #[inline]
    pub fn into_result(self) -> Result<Frame<'a>> {
        // One look at the node first: most replies are not errors (this runs once per
        // typed reply, a pipeline's included).
        if !matches!(
            self.tape.get(self.idx),
            Some(Node::Error(_) | Node::BulkError(_))
        ) {
            return Ok(self);
        }
        self.into_error()
    }

    /// See [`Frame::into_result`]: an error reply.
    #[cold]
    fn into_error(self) -> Result<Frame<'a>> {
        match self.server_error() {
            Some(e) => Err(e.into()),
            None => Ok(self),
        }
    }

    /// Elements: of an array or set; of a map, keys and values alternating; of a push, the
    /// kind first; of an attribute, its keys and values (see [`Frame::strip_attributes`] for
    /// the value it describes). Empty for other types.
    pub fn len(&self) -> usize {
        match self.node() {
            Node::Array(a) | Node::Set(a) | Node::Map(a) | Node::Push(a) => a.children,
            Node::Attribute(a) => a.children.saturating_sub(1),
            _ => 0,
        }
    }

    /// True when [`Frame::len`] is 0.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements counted by [`Frame::len`], in order.
    pub fn iter(&self) -> Frames<'a> {
        Frames {
            bytes: self.bytes,
            tape: self.tape,
            idx: self.idx.saturating_add(1),
            left: self.len(),
        }
    }

    /// The value without any attributes around it.
    pub fn strip_attributes(self) -> Frame<'a> {
        let mut f = self;
        while let Node::Attribute(a) = f.node() {
            let mut i = f.idx.saturating_add(1);
            for _ in 1..a.children {
                i = next_sibling(f.tape, i);
            }
            if i <= f.idx || i >= f.tape.len() {
                break;
            }
            f.idx = i;
        }
        f
    }

    /// An owned copy of this value (its strings share one new buffer).
    pub fn to_value(&self) -> Value {
        let mut src = Source::Borrowed {
            reply: self.bytes,
            copy: None,
        };
        build(self.tape, self.idx, &mut src)
    }
}

impl fmt::Debug for Frame<'_> {
    /// The type only: replies may hold user data.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Frame({})", self.type_name())
    }
}

/// The elements of a [`Frame`] (see [`Frame::iter`]).
#[derive(Clone)]
pub struct Frames<'a> {
    bytes: &'a [u8],
    tape: &'a [Node],
    idx: usize,
    left: usize,
}

impl<'a> Iterator for Frames<'a> {
    type Item = Frame<'a>;

    #[inline]
    fn next(&mut self) -> Option<Frame<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left = self.left.saturating_sub(1);
        let f = Frame {
            bytes: self.bytes,
            tape: self.tape,
            idx: self.idx,
            owned: None,
        };
        self.idx = next_sibling(self.tape, self.idx);
        Some(f)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Frames<'_> {}

impl fmt::Debug for Frames<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Frames({} left)", self.left)
    }
}

/// Run `read` on a [`Frame`] of the bulk string `bytes` (a whole reply handed over by the
/// decoder) that offers `bytes` itself to [`Frame::take_owned`].
pub(crate) fn with_owned_bulk<T>(bytes: Bytes, read: impl FnOnce(Frame<'_>) -> T) -> T {
    let cell = Cell::new(Some(bytes.clone()));
    let tape = [Node::Bulk(Span {
        start: 0,
        end: bytes.len(),
    })];
    read(Frame {
        bytes: &bytes,
        tape: &tape,
        idx: 0,
        owned: Some(&cell),
    })
}

/// Run `read` on `v` as a [`Frame`] (encoded and scanned again): how callers that only
/// have a [`Value`] serve code written against frames.
pub(crate) fn with_value_frame<T>(
    v: &Value,
    read: impl FnOnce(Frame<'_>) -> Result<T>,
) -> Result<T> {
    let mut wire = Vec::new();
    super::encode_value(&mut wire, v);
    let mut scan = Scan::default();
    let lim = Limits {
        max_bulk_len: usize::MAX,
        max_aggregate_len: usize::MAX,
        max_depth: Limits::HARD_MAX_DEPTH,
        max_line_len: usize::MAX,
    };
    match scan.scan(&wire, &lim)? {
        Some(n) => read(Reply::new(wire.get(..n).unwrap_or_default(), scan.tape()).frame()),
        None => Err(crate::Error::protocol("re-encoded value did not scan back")),
    }
}
