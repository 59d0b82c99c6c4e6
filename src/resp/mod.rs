//! The RESP2/RESP3 codec: bytes in, [`Value`]s out, and commands out as bytes.
//!
//! Pure: no I/O, no panics on any input, bounded allocation and nesting (see [`Limits`]).
//! The connection layer feeds a [`Decoder`] with whatever the socket produced; fuzz
//! targets and parser benchmarks drive the same code directly.

mod bytes;
mod decode;
mod encode;
mod value;

pub use bytes::Bytes;
pub use decode::{decode, Decoder, Limits, RETAINED_CAPACITY};
pub use encode::{encode_command, encode_value};
pub use value::Value;
