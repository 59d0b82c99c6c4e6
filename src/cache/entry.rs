//! The wire format of one entry: a fixed 22-byte header, then the codec's bytes.
//!
//! ```text
//! offset size  field
//! 0      1     format version, 1
//! 1      1     kind: 0 = value, 1 = tombstone ("known missing"; no payload)
//! 2      8     fresh_until, u64 big-endian, Unix ms on the server's clock (u64::MAX: never)
//! 10     8     stale_until, same encoding (u64::MAX: never); the key's own PX expiry,
//!              set by the server, is what actually removes the entry
//! 18     4     delta, u32 big-endian: how long the load took, in ms (XFetch input)
//! 22     ...   payload: the codec's bytes
//! ```

/// Size of the header.
pub(crate) const HEADER_LEN: usize = 22;
const FORMAT: u8 = 1;
const KIND_VALUE: u8 = 0;
const KIND_TOMBSTONE: u8 = 1;

/// A decoded header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub tombstone: bool,
    pub fresh_until: u64,
    pub stale_until: u64,
    pub delta_ms: u32,
}

impl Header {
    /// Start an entry buffer with this header; the codec appends the payload.
    pub fn start(&self, payload_hint: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + payload_hint);
        out.push(FORMAT);
        out.push(if self.tombstone {
            KIND_TOMBSTONE
        } else {
            KIND_VALUE
        });
        out.extend_from_slice(&self.fresh_until.to_be_bytes());
        out.extend_from_slice(&self.stale_until.to_be_bytes());
        out.extend_from_slice(&self.delta_ms.to_be_bytes());
        out
    }

    /// Split stored bytes into header and payload; `None` when they are not an entry of
    /// this format (written by something else, or by a future format).
    pub fn parse(bytes: &[u8]) -> Option<(Header, &[u8])> {
        if bytes.len() < HEADER_LEN || bytes[0] != FORMAT {
            return None;
        }
        let tombstone = match bytes[1] {
            KIND_VALUE => false,
            KIND_TOMBSTONE => true,
            _ => return None,
        };
        let u64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[i..i + 8]);
            u64::from_be_bytes(b)
        };
        let mut d = [0u8; 4];
        d.copy_from_slice(&bytes[18..22]);
        Some((
            Header {
                tombstone,
                fresh_until: u64_at(2),
                stale_until: u64_at(10),
                delta_ms: u32::from_be_bytes(d),
            },
            &bytes[HEADER_LEN..],
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let h = Header {
            tombstone: false,
            fresh_until: 1_700_000_000_123,
            stale_until: u64::MAX,
            delta_ms: 42,
        };
        let mut buf = h.start(3);
        buf.extend_from_slice(b"abc");
        assert_eq!(buf.len(), HEADER_LEN + 3);
        let (back, payload) = Header::parse(&buf).unwrap();
        assert_eq!(back, h);
        assert_eq!(payload, b"abc");
    }

    #[test]
    fn foreign_bytes_are_not_entries() {
        assert!(Header::parse(b"hello").is_none());
        assert!(Header::parse(&[9u8; 40]).is_none());
        let mut t = Header {
            tombstone: true,
            fresh_until: 0,
            stale_until: 0,
            delta_ms: 0,
        }
        .start(0);
        t[1] = 7;
        assert!(Header::parse(&t).is_none());
    }
}
