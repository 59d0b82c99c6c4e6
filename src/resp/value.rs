//! [`Value`]: one reply, of any RESP2 or RESP3 type.

use super::{Bytes, Str};
use crate::error::ServerError;

/// A reply from the server, faithful to the RESP2/RESP3 type it arrived as.
///
/// Streamed strings (`$?`) and streamed aggregates (`*?`, `%?`, `~?`) are assembled by the
/// decoder and arrive as the ordinary [`Value::Bulk`], [`Value::Array`], [`Value::Map`] or
/// [`Value::Set`]. All three nulls (`$-1`, `*-1`, `_`) are [`Value::Nil`].
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A null: RESP2 `$-1` / `*-1`, RESP3 `_`.
    Nil,
    /// A simple string (`+OK`): UTF-8 text, a view of the reply's buffer when decoded
    /// (`Value::Simple("OK".into())` builds one). A status line that is not valid UTF-8
    /// (a script's `redis.status_reply` with binary text) is decoded lossily: invalid
    /// sequences become U+FFFD. [`Frame::as_bytes`](super::Frame::as_bytes) gives its
    /// bytes unchanged.
    Simple(Str),
    /// An error reply, simple (`-`) or bulk (`!`). Error text that is not valid UTF-8 (an
    /// echoed binary argument, an echo cut inside a character at 128 bytes, a script's
    /// `redis.error_reply`) is decoded lossily: invalid sequences become U+FFFD. It never
    /// fails the connection.
    Error(ServerError),
    /// A signed 64-bit integer (`:`).
    Int(i64),
    /// A binary-safe bulk string (`$`). Decoded replies share one buffer per reply (see
    /// [`Bytes`]); `Value::Bulk(b"foo".into())` builds one.
    Bulk(Bytes),
    /// An array (`*`).
    Array(Vec<Value>),
    /// A RESP3 boolean (`#t` / `#f`).
    Bool(bool),
    /// A RESP3 double (`,`), including `inf`, `-inf` and `nan`.
    Double(f64),
    /// A RESP3 big number (`(`), kept as its decimal digits with an optional leading `-`.
    BigNumber(String),
    /// A RESP3 verbatim string (`=`): a 3-character format (`txt`, `mkd`) and the text.
    Verbatim {
        /// The format, exactly three bytes, e.g. `txt`.
        format: String,
        /// The text after the `fmt:` prefix.
        text: Bytes,
    },
    /// A RESP3 map (`%`): pairs in the order the server sent them; keys may be any type.
    Map(Vec<(Value, Value)>),
    /// A RESP3 set (`~`).
    Set(Vec<Value>),
    /// A value preceded by RESP3 attributes (`|`), which are surfaced, not dropped.
    Attribute {
        /// The attribute pairs.
        attributes: Vec<(Value, Value)>,
        /// The value the attributes describe.
        value: Box<Value>,
    },
    /// A RESP3 out-of-band push (`>`): pub/sub messages, tracking invalidations.
    Push {
        /// The push kind, the first element (`message`, `invalidate`, ...).
        kind: String,
        /// The remaining elements.
        data: Vec<Value>,
    },
}

impl Value {
    /// True for [`Value::Nil`].
    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }

    /// True for [`Value::Push`].
    pub fn is_push(&self) -> bool {
        matches!(self, Value::Push { .. })
    }

    /// The value without any attributes wrapped around it.
    pub fn strip_attributes(self) -> Value {
        let mut v = self;
        while let Value::Attribute { value, .. } = v {
            v = *value;
        }
        v
    }

    /// The bytes of a string-like value (bulk, simple, verbatim text).
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bulk(b) => Some(b),
            Value::Simple(s) => Some(s.as_bytes()),
            Value::Verbatim { text, .. } => Some(text),
            Value::Attribute { value, .. } => value.as_bytes(),
            _ => None,
        }
    }

    /// The integer of an [`Value::Int`].
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Attribute { value, .. } => value.as_int(),
            _ => None,
        }
    }

    /// The elements of an array, set or push (the push kind excluded).
    pub fn as_slice(&self) -> Option<&[Value]> {
        match self {
            Value::Array(v) | Value::Set(v) => Some(v),
            Value::Push { data, .. } => Some(data),
            Value::Attribute { value, .. } => value.as_slice(),
            _ => None,
        }
    }

    /// Turn an error reply into `Err`, anything else into `Ok(self)`.
    pub fn into_result(self) -> crate::Result<Value> {
        match self {
            Value::Error(e) => Err(e.into()),
            v => Ok(v),
        }
    }

    /// A short name of the RESP type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Simple(_) => "simple string",
            Value::Error(_) => "error",
            Value::Int(_) => "integer",
            Value::Bulk(_) => "bulk string",
            Value::Array(_) => "array",
            Value::Bool(_) => "boolean",
            Value::Double(_) => "double",
            Value::BigNumber(_) => "big number",
            Value::Verbatim { .. } => "verbatim string",
            Value::Map(_) => "map",
            Value::Set(_) => "set",
            Value::Attribute { .. } => "attribute",
            Value::Push { .. } => "push",
        }
    }
}
