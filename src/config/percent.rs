//! Percent-decoding and -encoding of URL parts.

/// Decode `%XX` escapes exactly once. `None` for a bad escape or a result that is not UTF-8.
pub(super) fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hi = (hex[0] as char).to_digit(16)?;
            let lo = (hex[1] as char).to_digit(16)?;
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Escape everything but RFC 3986 unreserved characters.
pub(super) fn percent_encode(s: &str) -> String {
    encode_except(s, b"-._~")
}

/// Like [`percent_encode`] but keeps `/`.
pub(super) fn percent_encode_path(s: &str) -> String {
    encode_except(s, b"-._~/")
}

fn encode_except(s: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || keep.contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
