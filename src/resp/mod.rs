//! The RESP2/RESP3 codec: bytes in, [`Value`]s (or in-place [`Reply`]s) out, and commands
//! out as bytes.
//!
//! Pure: no I/O, no panics on any input, bounded allocation and nesting (see [`Limits`]).
//! The connection layer feeds a [`Decoder`] with whatever the socket produced; fuzz
//! targets and parser benchmarks drive the same code directly.

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
pub use decode::{decode, Decoder, Limits, RETAINED_CAPACITY};
pub use encode::{encode_command, encode_value};
pub(crate) use frame::with_value_frame;
pub use frame::{Frame, FrameKind, Frames, Reply};
pub use text::Str;
pub use value::Value;
