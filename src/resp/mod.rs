//! Replies as they are read: [`Frame`] (a reply read in place, what
//! [`Execute::exec_frame`](crate::Execute::exec_frame) and
//! [`FromValue::from_frame`](crate::FromValue::from_frame) see), [`Str`] (the text of a
//! simple string in [`Value::Simple`]) and the decoder [`Limits`] a
//! [`ConnectionConfig`](crate::ConnectionConfig) carries.
//!
//! Behind them is the RESP2/RESP3 codec: bytes in, values out, commands out as bytes.
//! It is pure: no I/O, no panics on any input, bounded allocation and nesting (see
//! [`Limits`]). The connection feeds its decoder whatever the socket produced; the fuzz
//! targets and parser benchmarks drive the same code through a hidden path that is not
//! part of the API (see `docs/architecture.md`, "Public surface").

// The codec reads untrusted bytes: no panicking operations anywhere in it (every index
// is a checked `get`, every wire number goes through checked or saturating arithmetic).
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic,
    clippy::unreachable,
    clippy::todo
)]

mod build;
pub(crate) mod bytes;
mod decode;
mod encode;
mod frame;
mod lines;
mod scan;
mod text;
pub(crate) mod value;

// The public surface of the codec: what `Execute::exec_frame` hands out (`Frame`, its
// kind and children), the text inside `Value::Simple` (`Str`) and the decoder limits a
// `ConnectionConfig` carries. `Value` and `Bytes` are public at the crate root only.
pub use decode::Limits;
pub use frame::{Frame, FrameKind, Frames};
pub use text::Str;

// The rest is the crate's own (one path each: `crate::resp::X`).
pub(crate) use bytes::Bytes;
#[cfg(test)]
pub(crate) use decode::decode;
pub(crate) use decode::Decoder;
pub(crate) use decode::{Keep, LargeBulk, Next, SMALL_CAPACITY};
pub(crate) use encode::{encode_command, encode_value};
pub(crate) use frame::{with_owned_bulk, with_value_frame, Reply};
pub(crate) use value::Value;

/// The decoder and encoder themselves, for this crate's fuzz targets (`fuzz/`), parser
/// benchmarks (`benches/`), codec tests (`tests/resp.rs`) and instruction counts
/// (`examples/scan_instructions.rs`).
///
/// **Not part of the API**: hidden from the documentation, outside semantic versioning,
/// and free to change in any release. Applications talk to a server through
/// [`Execute`](crate::Execute) and read replies as [`Value`](crate::Value)s, typed
/// results ([`FromValue`](crate::FromValue)) or [`Frame`]s.
#[doc(hidden)]
pub mod __internals {
    pub use super::decode::{decode, Decoder, RETAINED_CAPACITY};
    pub use super::encode::{encode_command, encode_value};
    pub use super::frame::Reply;
}
