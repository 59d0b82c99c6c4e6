//! The RESP2/RESP3 codec: bytes in, [`Value`]s (or in-place [`Reply`]s) out, and commands
//! out as bytes.
//!
//! Pure: no I/O, no panics on any input, bounded allocation and nesting (see [`Limits`]).
//! The connection layer feeds a [`Decoder`] with whatever the socket produced; fuzz
//! targets and parser benchmarks drive the same code directly.

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
mod bytes;
mod decode;
mod encode;
mod frame;
mod lines;
mod scan;
mod text;
mod value;

pub use bytes::Bytes;
pub(crate) use decode::Next;
pub use decode::{decode, Decoder, Limits, RETAINED_CAPACITY};
pub(crate) use encode::write_header;
pub use encode::{encode_command, encode_value};
pub(crate) use frame::{with_owned_bulk, with_value_frame};
pub use frame::{Frame, FrameKind, Frames, Reply};
pub use text::Str;
pub use value::Value;
