//! Value codecs: how a typed value becomes the bytes stored after the entry header.

/// What a codec returns when it cannot encode or decode.
pub type CodecError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Turns values of `T` into bytes and back. A codec is shared by every thread of a cache.
///
/// `JsonCodec` (feature `json`, on by default) handles every serde type; [`BytesCodec`]
/// stores `Vec<u8>` and `String` as they are. Plug another format by implementing this
/// trait:
///
/// ```
/// use valkit::cache::{Codec, CodecError};
/// struct U64Codec;
/// impl Codec<u64> for U64Codec {
///     fn encode(&self, value: &u64, out: &mut Vec<u8>) -> Result<(), CodecError> {
///         out.extend_from_slice(&value.to_le_bytes());
///         Ok(())
///     }
///     fn decode(&self, bytes: &[u8]) -> Result<u64, CodecError> {
///         Ok(u64::from_le_bytes(bytes.try_into()?))
///     }
/// }
/// ```
pub trait Codec<T>: Send + Sync + 'static {
    /// Append the encoding of `value` to `out`.
    fn encode(&self, value: &T, out: &mut Vec<u8>) -> Result<(), CodecError>;
    /// Decode a value from exactly `bytes`.
    fn decode(&self, bytes: &[u8]) -> Result<T, CodecError>;
}

/// serde_json: any `T: Serialize + DeserializeOwned`.
#[cfg(feature = "json")]
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonCodec;

#[cfg(feature = "json")]
impl<T> Codec<T> for JsonCodec
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    fn encode(&self, value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
        serde_json::to_writer(out, value).map_err(Into::into)
    }

    fn decode(&self, bytes: &[u8]) -> Result<T, CodecError> {
        serde_json::from_slice(bytes).map_err(Into::into)
    }
}

/// Bytes as they are (`Vec<u8>`), and UTF-8 text (`String`).
#[derive(Debug, Clone, Copy, Default)]
pub struct BytesCodec;

impl Codec<Vec<u8>> for BytesCodec {
    fn encode(&self, value: &Vec<u8>, out: &mut Vec<u8>) -> Result<(), CodecError> {
        out.extend_from_slice(value);
        Ok(())
    }

    fn decode(&self, bytes: &[u8]) -> Result<Vec<u8>, CodecError> {
        Ok(bytes.to_vec())
    }
}

impl Codec<String> for BytesCodec {
    fn encode(&self, value: &String, out: &mut Vec<u8>) -> Result<(), CodecError> {
        out.extend_from_slice(value.as_bytes());
        Ok(())
    }

    fn decode(&self, bytes: &[u8]) -> Result<String, CodecError> {
        Ok(String::from_utf8(bytes.to_vec())?)
    }
}

/// The codec a [`Cache`](super::Cache) uses unless told otherwise: [`JsonCodec`] with the
/// `json` feature, [`BytesCodec`] without it.
#[cfg(feature = "json")]
pub type DefaultCodec = JsonCodec;

/// The codec a [`Cache`](super::Cache) uses unless told otherwise: `JsonCodec` with the
/// `json` feature, [`BytesCodec`] without it.
#[cfg(not(feature = "json"))]
pub type DefaultCodec = BytesCodec;
