//! [`Str`]: the text of a simple string reply, shared with the buffer it arrived in.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

use super::Bytes;

/// Immutable UTF-8 text: a [`Bytes`] known to be valid UTF-8. Decoded simple strings
/// (`+OK`, `+PONG`, `+QUEUED`) are views of the reply's buffer, so they cost no allocation;
/// it derefs to `str` and compares with `str`, `&str` and `String`.
///
/// ```
/// use valkit::resp::Str;
/// use valkit::Value;
/// let v = Value::Simple("OK".into());
/// if let Value::Simple(s) = &v {
///     assert_eq!(s, "OK");
///     assert_eq!(s.to_lowercase(), "ok"); // any `str` method
/// }
/// assert_eq!(Str::from("PONG").into_string(), "PONG");
/// ```
///
/// Like [`Bytes`], a `Str` from a reply keeps that reply's buffer alive while it lives.
/// Each deref checks the UTF-8 again (the crate has no `unsafe`); simple strings are short.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Str(Bytes);

impl Str {
    /// Text from bytes the scanner already checked as UTF-8.
    pub(crate) fn from_checked(b: Bytes) -> Str {
        Str(b)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.0.as_slice()).unwrap_or_default()
    }

    /// The text as bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_slice()
    }

    /// An owned `String` (a copy).
    pub fn into_string(self) -> String {
        self.as_str().to_owned()
    }

    /// The bytes, copied into a `Vec`.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0.into_vec()
    }
}

impl Deref for Str {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Str {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Str {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl Hash for Str {
    /// As `str` hashes, so that `Borrow<str>` lookups work.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for Str {
    fn from(s: &str) -> Str {
        Str(Bytes::from(s))
    }
}

impl From<String> for Str {
    fn from(s: String) -> Str {
        Str(Bytes::from(s))
    }
}

impl From<Str> for String {
    fn from(s: Str) -> String {
        s.into_string()
    }
}

impl PartialEq<str> for Str {
    fn eq(&self, other: &str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<&str> for Str {
    fn eq(&self, other: &&str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<String> for Str {
    fn eq(&self, other: &String) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<Str> for str {
    fn eq(&self, other: &Str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<Str> for &str {
    fn eq(&self, other: &Str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<Str> for String {
    fn eq(&self, other: &Str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn compares_hashes_and_prints_as_text() {
        let s = Str::from("QUEUED");
        assert_eq!(s, "QUEUED");
        assert_eq!("QUEUED", s);
        assert_eq!(s, String::from("QUEUED"));
        assert_eq!(format!("{s} {s:?}"), "QUEUED \"QUEUED\"");
        let set: HashSet<Str> = [Str::from("a"), Str::from("b")].into_iter().collect();
        assert!(set.contains("a"));
        assert_eq!(Str::default(), "");
        let (a, b) = (Str::from("a"), Str::from("b"));
        assert!(a < b);
        assert_eq!(Str::from(String::from("x")).into_bytes(), b"x");
    }
}
