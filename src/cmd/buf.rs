//! A command's encoded arguments: inline in the `Cmd` while they fit (a `GET key`, a short
//! `SET`: no allocation to build the command, nothing to free), in a `Vec` once they
//! outgrow it.

/// Bytes kept inline: `$3\r\nGET\r\n` (9) plus a key of up to 40 bytes with its header.
/// (40 measured +40 instructions on a pipeline of 64 typed GETs whose keys spilled; 56
/// costs a single GET ~30 instructions of moves against the allocation it saves.)
const INLINE: usize = 56;

/// The encoded arguments of a command.
#[derive(Clone)]
pub(crate) enum CmdBuf {
    /// The first `len` bytes of `bytes`.
    Inline { len: u8, bytes: [u8; INLINE] },
    /// Outgrew the inline bytes.
    Heap(Vec<u8>),
}

impl Default for CmdBuf {
    fn default() -> CmdBuf {
        CmdBuf::Inline {
            len: 0,
            bytes: [0; INLINE],
        }
    }
}

impl PartialEq for CmdBuf {
    fn eq(&self, other: &CmdBuf) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for CmdBuf {}

impl CmdBuf {
    /// The bytes written so far.
    #[inline]
    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            CmdBuf::Inline { len, bytes } => &bytes[..usize::from(*len)],
            CmdBuf::Heap(v) => v,
        }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        match self {
            CmdBuf::Inline { len, .. } => usize::from(*len),
            CmdBuf::Heap(v) => v.len(),
        }
    }

    /// Append `more`, moving to the heap when it would not fit inline.
    #[inline(always)]
    pub(crate) fn extend_from_slice(&mut self, more: &[u8]) {
        match self {
            CmdBuf::Inline { len, bytes } => {
                let at = usize::from(*len);
                let end = at + more.len();
                match bytes.get_mut(at..end) {
                    Some(dst) => {
                        dst.copy_from_slice(more);
                        // end <= INLINE < 256
                        *len = end as u8;
                    }
                    None => self.spill(more.len()).extend_from_slice(more),
                }
            }
            CmdBuf::Heap(v) => v.extend_from_slice(more),
        }
    }

    /// One RESP bulk string of `name` (under 100 bytes), built by the compiler when `name`
    /// is a constant.
    pub(crate) const fn bulk(name: &[u8]) -> CmdBuf {
        let n = name.len();
        assert!(n < 100 && n + 7 <= INLINE, "a short constant argument");
        let mut bytes = [0; INLINE];
        bytes[0] = b'$';
        let mut at = 1;
        if n >= 10 {
            bytes[at] = b'0' + (n / 10) as u8;
            at += 1;
        }
        bytes[at] = b'0' + (n % 10) as u8;
        bytes[at + 1] = b'\r';
        bytes[at + 2] = b'\n';
        at += 3;
        let mut i = 0;
        while i < n {
            bytes[at + i] = name[i];
            i += 1;
        }
        bytes[at + n] = b'\r';
        bytes[at + n + 1] = b'\n';
        CmdBuf::Inline {
            len: (at + n + 2) as u8,
            bytes,
        }
    }

    /// Append `more` as a RESP bulk string (`$<len>\r\n<more>\r\n`) in one step when it
    /// is under 100 bytes and fits inline; false (nothing written) otherwise.
    #[inline(always)]
    pub(crate) fn push_short_bulk(&mut self, more: &[u8]) -> bool {
        let CmdBuf::Inline { len, bytes } = self else {
            return false;
        };
        let n = more.len();
        if n >= 100 {
            return false;
        }
        let head = if n < 10 { 4 } else { 5 };
        let at = usize::from(*len);
        let Some(dst) = bytes.get_mut(at..at + head + n + 2) else {
            return false;
        };
        let (h, rest) = dst.split_at_mut(head);
        let (body, crlf) = rest.split_at_mut(n);
        h[0] = b'$';
        if n < 10 {
            h[1] = b'0' + n as u8;
        } else {
            h[1] = b'0' + (n / 10) as u8;
            h[2] = b'0' + (n % 10) as u8;
        }
        h[head - 2] = b'\r';
        h[head - 1] = b'\n';
        body.copy_from_slice(more);
        crlf.copy_from_slice(b"\r\n");
        // at + head + n + 2 <= INLINE < 256
        *len = (at + head + n + 2) as u8;
        true
    }

    /// Make room for `additional` more bytes (moving to the heap when they would not fit
    /// inline).
    #[inline]
    pub(crate) fn reserve(&mut self, additional: usize) {
        match self {
            CmdBuf::Inline { len, .. } => {
                if usize::from(*len) + additional > INLINE {
                    self.spill(additional);
                }
            }
            CmdBuf::Heap(v) => v.reserve(additional),
        }
    }

    /// Move to the heap with room for `additional` more bytes; the vector.
    #[cold]
    fn spill(&mut self, additional: usize) -> &mut Vec<u8> {
        if let CmdBuf::Inline { .. } = self {
            let mut v = Vec::with_capacity((self.len() + additional).max(2 * INLINE));
            v.extend_from_slice(self.as_slice());
            *self = CmdBuf::Heap(v);
        }
        match self {
            CmdBuf::Heap(v) => v,
            CmdBuf::Inline { .. } => unreachable!("just moved to the heap"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_inline_until_full_then_keeps_every_byte() {
        let mut b = CmdBuf::default();
        let mut want = Vec::new();
        for i in 0..200u8 {
            let piece = [i; 3];
            b.extend_from_slice(&piece);
            want.extend_from_slice(&piece);
            assert_eq!(b.as_slice(), &want[..]);
            assert_eq!(b.len(), want.len());
            assert_eq!(matches!(b, CmdBuf::Inline { .. }), want.len() <= INLINE);
        }
        let mut r = CmdBuf::default();
        r.extend_from_slice(b"abc");
        r.reserve(INLINE);
        assert!(matches!(r, CmdBuf::Heap(_)));
        assert_eq!(r.as_slice(), b"abc");
        assert!(r.clone() == r);
    }

    #[test]
    fn short_bulks_encode_as_the_general_path_does() {
        assert_eq!(CmdBuf::bulk(b"GET").as_slice(), b"$3\r\nGET\r\n");
        assert_eq!(
            CmdBuf::bulk(b"ZREMRANGEBYSCORE").as_slice(),
            b"$16\r\nZREMRANGEBYSCORE\r\n"
        );
        let mut fast = CmdBuf::default();
        let mut want = Vec::new();
        for n in [0usize, 1, 9, 10, 11, 20, 99, 3, 100, 5] {
            let arg = vec![b'a' + (n % 26) as u8; n];
            if !fast.push_short_bulk(&arg) {
                assert!(n >= 100 || fast.len() + n + 6 > INLINE || matches!(fast, CmdBuf::Heap(_)));
                fast.extend_from_slice(format!("${n}\r\n").as_bytes());
                fast.extend_from_slice(&arg);
                fast.extend_from_slice(b"\r\n");
            }
            want.extend_from_slice(format!("${n}\r\n").as_bytes());
            want.extend_from_slice(&arg);
            want.extend_from_slice(b"\r\n");
            assert_eq!(fast.as_slice(), &want[..]);
        }
    }
}
