//! [`Bytes`]: an immutable, cheaply clonable byte string that may share its buffer.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

/// An immutable byte string: a view of a range of a shared, reference-counted buffer.
///
/// The decoder hands out the bulk strings of a reply as views into the buffer the reply was
/// received in, so a reply costs no allocation per string: cloning a `Bytes` or taking one
/// out of a reply only bumps a reference count. Equality, ordering and hashing are by
/// content, like `[u8]`, and `Bytes` dereferences to `[u8]`, so most code reads it as a
/// slice:
///
/// ```
/// use valkit::Bytes;
/// let b = Bytes::from("hello");
/// assert_eq!(b.len(), 5);
/// assert_eq!(&b[..], b"hello");
/// assert!(b.starts_with(b"he"));
/// assert_eq!(b, Bytes::from(b"hello".to_vec()));
/// assert_eq!(b.into_vec(), b"hello".to_vec());
/// ```
///
/// **Memory.** A view keeps its whole buffer alive. A `Bytes` taken from a reply may hold
/// the connection's read buffer (typically 16 KiB or more, shared by every value received in
/// it) for as long as it lives; to keep a small value for a long time, keep
/// [`Bytes::into_vec`] (or `to_vec()`) of it instead, which copies just its bytes. The typed
/// conversions (`FromValue` for `Vec<u8>`, `String`...) copy, so they never keep a buffer.
#[derive(Clone, Default)]
pub struct Bytes {
    /// The buffer, or `None` for an empty string.
    buf: Option<Arc<Vec<u8>>>,
    start: usize,
    end: usize,
}

impl Bytes {
    /// An empty byte string (no allocation).
    pub const fn new() -> Bytes {
        Bytes {
            buf: None,
            start: 0,
            end: 0,
        }
    }

    /// The bytes `buf[start..end]`, sharing `buf`. An out-of-range view reads as empty.
    #[inline]
    pub(crate) fn view(buf: &Arc<Vec<u8>>, start: usize, end: usize) -> Bytes {
        Bytes {
            buf: Some(Arc::clone(buf)),
            start,
            end,
        }
    }

    /// The shared buffer and the range of it this views, `None` for an empty string.
    pub(crate) fn into_parts(self) -> Option<(Arc<Vec<u8>>, usize, usize)> {
        let buf = self.buf?;
        (self.start <= self.end && self.end <= buf.len()).then_some((buf, self.start, self.end))
    }

    /// The bytes.
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        match &self.buf {
            Some(b) => b.get(self.start..self.end).unwrap_or_default(),
            None => &[],
        }
    }

    /// Number of bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    /// True when there are no bytes.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }

    /// The bytes as a `Vec<u8>`: without copying when this is the only handle to its buffer
    /// and starts it (e.g. a `Bytes` made from a `Vec<u8>`) or fills most of it (a large
    /// reply the connection handed over: the bytes are moved to the buffer's start in
    /// place), otherwise a copy of just these bytes.
    pub fn into_vec(self) -> Vec<u8> {
        let Bytes { buf, start, end } = self;
        let Some(buf) = buf else {
            return Vec::new();
        };
        if start > end || end > buf.len() {
            return Vec::new();
        }
        // A view that is most of its buffer (a large reply handed over) takes the buffer:
        // the bytes move to its start in place, no second buffer. A small view of a big
        // buffer is copied, so that it does not keep the rest alive.
        let mostly =
            start == 0 || end.saturating_sub(start) >= (buf.capacity() / 4).saturating_mul(3);
        match Arc::try_unwrap(buf) {
            Ok(mut v) if mostly => {
                v.truncate(end);
                if start != 0 {
                    v.drain(..start);
                }
                v
            }
            Ok(v) => v.get(start..end).unwrap_or_default().to_vec(),
            Err(buf) => buf.get(start..end).unwrap_or_default().to_vec(),
        }
    }
}

impl Deref for Bytes {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl Borrow<[u8]> for Bytes {
    fn borrow(&self) -> &[u8] {
        self.as_slice()
    }
}

impl PartialEq for Bytes {
    fn eq(&self, other: &Bytes) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Bytes {}

impl PartialOrd for Bytes {
    fn partial_cmp(&self, other: &Bytes) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Bytes {
    fn cmp(&self, other: &Bytes) -> Ordering {
        self.as_slice().cmp(other.as_slice())
    }
}

impl Hash for Bytes {
    /// Hashes like `[u8]` (consistent with `Borrow<[u8]>`).
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

impl PartialEq<[u8]> for Bytes {
    fn eq(&self, other: &[u8]) -> bool {
        self.as_slice() == other
    }
}

impl PartialEq<&[u8]> for Bytes {
    fn eq(&self, other: &&[u8]) -> bool {
        self.as_slice() == *other
    }
}

impl<const N: usize> PartialEq<[u8; N]> for Bytes {
    fn eq(&self, other: &[u8; N]) -> bool {
        self.as_slice() == other
    }
}

impl<const N: usize> PartialEq<&[u8; N]> for Bytes {
    fn eq(&self, other: &&[u8; N]) -> bool {
        self.as_slice() == *other
    }
}

impl PartialEq<Vec<u8>> for Bytes {
    fn eq(&self, other: &Vec<u8>) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl PartialEq<str> for Bytes {
    fn eq(&self, other: &str) -> bool {
        self.as_slice() == other.as_bytes()
    }
}

impl PartialEq<&str> for Bytes {
    fn eq(&self, other: &&str) -> bool {
        self.as_slice() == other.as_bytes()
    }
}

impl PartialEq<Bytes> for [u8] {
    fn eq(&self, other: &Bytes) -> bool {
        self == other.as_slice()
    }
}

impl PartialEq<Bytes> for Vec<u8> {
    fn eq(&self, other: &Bytes) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl fmt::Debug for Bytes {
    /// Like a byte string literal, `b"..."` with non-printable bytes escaped; values longer
    /// than 256 bytes are cut there and end with `...` and the total length.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MAX: usize = 256;
        let s = self.as_slice();
        let cut = s.get(..MAX).unwrap_or(s);
        write!(f, "b\"")?;
        for &b in cut {
            if b == b'"' {
                f.write_str("\\\"")?;
            } else {
                write!(f, "{}", std::ascii::escape_default(b))?;
            }
        }
        write!(f, "\"")?;
        if cut.len() < s.len() {
            write!(f, "... ({} bytes)", s.len())?;
        }
        Ok(())
    }
}

impl From<Vec<u8>> for Bytes {
    /// Takes the vector without copying (one small allocation for the reference count;
    /// none for an empty vector).
    fn from(v: Vec<u8>) -> Bytes {
        if v.is_empty() {
            return Bytes::new();
        }
        let end = v.len();
        Bytes {
            buf: Some(Arc::new(v)),
            start: 0,
            end,
        }
    }
}

impl From<&[u8]> for Bytes {
    fn from(s: &[u8]) -> Bytes {
        Bytes::from(s.to_vec())
    }
}

impl<const N: usize> From<&[u8; N]> for Bytes {
    fn from(s: &[u8; N]) -> Bytes {
        Bytes::from(s.to_vec())
    }
}

impl From<&str> for Bytes {
    fn from(s: &str) -> Bytes {
        Bytes::from(s.as_bytes().to_vec())
    }
}

impl From<String> for Bytes {
    fn from(s: String) -> Bytes {
        Bytes::from(s.into_bytes())
    }
}

impl From<Bytes> for Vec<u8> {
    fn from(b: Bytes) -> Vec<u8> {
        b.into_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::hash_map::DefaultHasher;

    #[test]
    fn into_vec_takes_a_mostly_full_buffer_and_copies_a_small_view() {
        let mut wire = b"$8\r\n".to_vec();
        wire.extend_from_slice(&[7u8; 1000]);
        let buf = Arc::new(wire);
        let ptr = buf.as_ptr();
        let v = Bytes::view(&buf, 4, 1004);
        drop(buf);
        let out = v.into_vec();
        assert_eq!(out, vec![7u8; 1000]);
        assert_eq!(out.as_ptr(), ptr, "the buffer itself, bytes moved in place");

        let buf = Arc::new(vec![1u8; 100_000]);
        let v = Bytes::view(&buf, 10, 20);
        drop(buf);
        let out = v.into_vec();
        assert_eq!(out, vec![1u8; 10]);
        assert!(
            out.capacity() < 1000,
            "a small view does not keep a big buffer"
        );
    }

    fn h(x: &(impl Hash + ?Sized)) -> u64 {
        let mut s = DefaultHasher::new();
        x.hash(&mut s);
        s.finish()
    }

    #[test]
    fn views_compare_by_content() {
        let buf = Arc::new(b"xxhelloyy".to_vec());
        let v = Bytes::view(&buf, 2, 7);
        let o = Bytes::from("hello");
        assert_eq!(v, o);
        assert_eq!(h(&v), h(&o));
        assert_eq!(h(&v), h(&b"hello"[..]));
        assert_eq!(v.len(), 5);
        assert!(Bytes::new().is_empty());
        assert_eq!(Bytes::from(Vec::new()), Bytes::new());
        let (a, b) = (Bytes::from("a"), Bytes::from("b"));
        assert!(a < b);
        assert_eq!(v, b"hello");
        assert_eq!(v, "hello");
        // Out of range reads as empty, never panics.
        assert!(Bytes::view(&buf, 5, 100).is_empty());
        assert!(Bytes::view(&buf, 7, 2).is_empty());
    }

    #[test]
    fn into_vec_copies_only_when_needed() {
        let v = b"abc".to_vec();
        let ptr = v.as_ptr();
        let b = Bytes::from(v);
        let back = b.into_vec();
        assert_eq!(back.as_ptr(), ptr);
        assert_eq!(back, b"abc");

        let b = Bytes::from("abc");
        let c = b.clone();
        assert_eq!(b.into_vec(), b"abc");
        assert_eq!(c.into_vec(), b"abc");

        let buf = Arc::new(b"xxhelloyy".to_vec());
        assert_eq!(Bytes::view(&buf, 2, 7).into_vec(), b"hello");
        assert_eq!(Bytes::view(&buf, 0, 4).into_vec(), b"xxhe");
        drop(buf);
    }

    #[test]
    fn debug_is_a_byte_string_and_truncates() {
        assert_eq!(
            format!("{:?}", Bytes::from("a\"b\r\n")),
            "b\"a\\\"b\\r\\n\""
        );
        let long = Bytes::from(vec![b'x'; 300]);
        let d = format!("{long:?}");
        assert!(d.ends_with("... (300 bytes)"), "{d}");
        assert_eq!(d.len(), 256 + 3 + " ... (300 bytes)".len() - 1);
    }
}
