//! Line-level pieces of the RESP grammar shared by the scanner: finding a line's end,
//! integers, lengths, doubles, type names, and protocol errors with printable excerpts.

use crate::error::{Error, Limit, Result};

pub(super) fn proto(detail: impl Into<String>) -> Error {
    Error::protocol(detail)
}

/// A configured [`Limit`](super::Limits) broken by the peer: its own error kind, so that
/// callers (and the breaker) tell it from malformed bytes without reading the message.
pub(super) fn limit(which: Limit, detail: impl Into<String>) -> Error {
    Error::limit_exceeded(which, detail)
}

/// A short printable excerpt of wire bytes for error messages.
pub(super) fn show(bytes: &[u8]) -> String {
    const MAX: usize = 40;
    let cut = bytes.get(..MAX).unwrap_or(bytes);
    let mut s = cut.escape_ascii().to_string();
    if cut.len() < bytes.len() {
        s.push_str("...");
    }
    s
}

pub(super) fn is_type_byte(t: u8) -> bool {
    matches!(
        t,
        b'+' | b'-'
            | b':'
            | b'$'
            | b'*'
            | b'_'
            | b'#'
            | b','
            | b'('
            | b'!'
            | b'='
            | b'%'
            | b'~'
            | b'|'
            | b'>'
            | b'.'
            | b';'
    )
}

pub(super) fn type_name(t: u8) -> &'static str {
    match t {
        b'+' => "simple string",
        b'-' => "simple error",
        b':' => "integer",
        b'$' => "bulk string",
        b'*' => "array",
        b'_' => "null",
        b'#' => "boolean",
        b',' => "double",
        b'(' => "big number",
        b'!' => "bulk error",
        b'=' => "verbatim string",
        b'%' => "map",
        b'~' => "set",
        b'|' => "attribute",
        b'>' => "push",
        b'.' => "end marker",
        b';' => "streamed string chunk",
        _ => "unknown",
    }
}

/// Find the CR of the line that starts at `rest[0]` (its type byte). `Ok(None)` when the
/// line is not complete yet; `scanned` remembers how far we looked.
pub(super) fn find_line_end(
    rest: &[u8],
    scanned: &mut usize,
    max_line: usize,
) -> Result<Option<usize>> {
    let from = scanned.saturating_add(1);
    // A line of `max_line` content bytes has its CR at index `max_line + 1`.
    let window_end = max_line.saturating_add(2);
    let window = rest
        .get(from..window_end.min(rest.len()))
        .unwrap_or_default();
    match window.iter().position(|&b| b == b'\r' || b == b'\n') {
        Some(i) => {
            let cr = from.saturating_add(i);
            if rest.get(cr) == Some(&b'\n') {
                return Err(proto(format!(
                    "bare LF in {} line",
                    type_name(rest.first().copied().unwrap_or(0))
                )));
            }
            match rest.get(cr.saturating_add(1)) {
                None => {
                    *scanned = cr.saturating_sub(1);
                    Ok(None)
                }
                Some(b'\n') => Ok(Some(cr)),
                Some(_) => Err(proto(format!(
                    "CR not followed by LF in {} line",
                    type_name(rest.first().copied().unwrap_or(0))
                ))),
            }
        }
        None if rest.len() >= window_end => Err(limit(
            Limit::LineLen,
            format!(
                "{} line longer than max_line_len {}",
                type_name(rest.first().copied().unwrap_or(0)),
                max_line
            ),
        )),
        None => {
            *scanned = rest.len().saturating_sub(1);
            Ok(None)
        }
    }
}

/// Fast path: digits then CRLF, all present, at most 19 digits (so no overflow) and at most
/// `max_line` bytes. Returns the number and the count of digits. Anything else (incomplete,
/// malformed, long) returns `None` and is left to the general path, which has the exact rules.
#[inline(always)]
pub(super) fn fast_digits(s: &[u8], max_line: usize) -> Option<(u64, usize)> {
    if let Some(word) = s.get(..8).and_then(|w| <[u8; 8]>::try_from(w).ok()) {
        // Eight bytes at once (SWAR): find the first non-digit, then convert the digits
        // before it with three multiplications. Only 8 or more digits take the loop below.
        let chunk = u64::from_le_bytes(word);
        let nibble = |x: u64| (x & 0xF0F0_F0F0_F0F0_F0F0) ^ 0x3030_3030_3030_3030;
        // A byte is a digit iff its high nibble is 3, before and after adding 6. (A carry
        // out of a non-digit byte can only disturb the bytes after the first non-digit.)
        let nondigit = nibble(chunk) | nibble(chunk.wrapping_add(0x0606_0606_0606_0606));
        if nondigit != 0 {
            let n = (nondigit.trailing_zeros() / 8) as usize;
            // `n == 1 || first != '0'`: no leading zeros (servers write canonical numbers;
            // the general path rejects the rest with the exact error).
            let ok = n != 0
                && ((n == 1) | (chunk as u8 != b'0'))
                && n <= max_line
                && s.get(n) == Some(&b'\r')
                && s.get(n.wrapping_add(1)) == Some(&b'\n');
            if !ok {
                return None;
            }
            let values = chunk.wrapping_sub(0x3030_3030_3030_3030);
            // Right-align the n digits; the bytes shifted in are leading zeros.
            let aligned = values.wrapping_shl(8u32.wrapping_mul(8u32.wrapping_sub(n as u32)));
            return Some((eight_digits(aligned), n));
        }
    }
    let mut v: u64 = 0;
    let mut i = 0usize;
    while let Some(&b) = s.get(i) {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            let ok = i != 0
                && (i == 1 || s.first() != Some(&b'0'))
                && i <= max_line
                && b == b'\r'
                && s.get(i.wrapping_add(1)) == Some(&b'\n');
            return ok.then_some((v, i));
        }
        v = v.wrapping_mul(10).wrapping_add(u64::from(d));
        i = i.wrapping_add(1);
        if i > 19 {
            return None;
        }
    }
    None
}

/// The number written by eight digit values (0-9), one per byte, the most significant in
/// the lowest byte (as loaded little-endian from text).
#[inline(always)]
fn eight_digits(v: u64) -> u64 {
    let v = v.wrapping_mul(10).wrapping_add(v >> 8);
    let mask = 0x0000_00FF_0000_00FF;
    let mul1 = 100u64.wrapping_add(1_000_000u64 << 32);
    let mul2 = 1u64.wrapping_add(10_000u64 << 32);
    ((v & mask)
        .wrapping_mul(mul1)
        .wrapping_add(((v >> 16) & mask).wrapping_mul(mul2)))
        >> 32
}

/// Fast path for a complete, well-formed `:<int>\r\n`: the value and the bytes it takes.
#[inline(always)]
pub(super) fn fast_int(rest: &[u8], max_line: usize) -> Option<(i64, usize)> {
    let body = rest.get(1..)?;
    if let Some(digits) = body.strip_prefix(b"-") {
        let (v, n) = fast_digits(digits, max_line.checked_sub(1)?)?;
        if v == 0 {
            return None; // `-0`: not canonical, the general path rejects it
        }
        Some((0i64.checked_sub_unsigned(v)?, n.wrapping_add(4)))
    } else {
        let (v, n) = fast_digits(body, max_line)?;
        Some((i64::try_from(v).ok()?, n.wrapping_add(3)))
    }
}

/// A length field: `-1` (null), `?` (streamed) or a count.
pub(super) enum Len {
    Null,
    Streamed,
    N(usize),
}

pub(super) fn parse_len(line: &[u8], t: u8) -> Result<Len> {
    match line {
        b"-1" => return Ok(Len::Null),
        b"?" => return Ok(Len::Streamed),
        _ => {}
    }
    let bad = || proto(format!("invalid {} length {:?}", type_name(t), show(line)));
    // Canonical only: not empty, no sign, no leading zero (`0` itself is fine).
    if line.is_empty() || (line.len() > 1 && line.first() == Some(&b'0')) {
        return Err(bad());
    }
    let mut n: usize = 0;
    for &b in line {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return Err(bad());
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(usize::from(d)))
            .ok_or_else(|| {
                proto(format!(
                    "{} length {:?} overflows",
                    type_name(t),
                    show(line)
                ))
            })?;
    }
    Ok(Len::N(n))
}

/// `-`? digits, the whole i64 range, canonical only: no `+`, no spaces, not empty, no
/// leading zero, no `-0` (servers write integers with `%lld`-style formatting).
pub(super) fn parse_i64(line: &[u8]) -> Option<i64> {
    let (neg, digits) = match line.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, line),
    };
    match digits {
        [] => return None,
        [b'0'] if neg => return None,
        [b'0', _, ..] => return None,
        _ => {}
    }
    let mut acc: i64 = 0;
    for &b in digits {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        acc = acc.checked_mul(10)?;
        // Accumulate negatives on the negative side so that i64::MIN parses.
        acc = if neg {
            acc.checked_sub(i64::from(d))?
        } else {
            acc.checked_add(i64::from(d))?
        };
    }
    Some(acc)
}

/// The longest double line accepted (content bytes). Servers write at most 24 (`%.17g`
/// style: sign, 17 significant digits, point, exponent); older ones used a 128-byte buffer.
pub(super) const MAX_DOUBLE_LEN: usize = 128;

/// Exactly the RESP3 double grammar: `inf`, `-inf`, `nan`, or
/// `[+|-]digits[.digits][(e|E)[+|-]digits]` (integer digits required: `.5` and `1.` are
/// rejected). At most [`MAX_DOUBLE_LEN`] bytes. A finite decimal too large for an `f64`
/// (`1e999`) is rejected rather than read as infinity: a server writes `inf` for that.
pub(super) fn parse_double(line: &[u8]) -> Option<f64> {
    match line {
        b"inf" => return Some(f64::INFINITY),
        b"-inf" => return Some(f64::NEG_INFINITY),
        b"nan" => return Some(f64::NAN),
        _ => {}
    }
    if line.len() > MAX_DOUBLE_LEN {
        return None;
    }
    let body = match line.split_first() {
        Some((b'-' | b'+', rest)) => rest,
        _ => line,
    };
    let (rest, int_digits) = skip_digits(body);
    if !int_digits {
        return None;
    }
    let rest = match rest.split_first() {
        Some((b'.', r)) => {
            let (r, frac_digits) = skip_digits(r);
            if !frac_digits {
                return None;
            }
            r
        }
        _ => rest,
    };
    let rest = match rest.split_first() {
        Some((b'e' | b'E', r)) => {
            let r = match r.split_first() {
                Some((b'+' | b'-', r)) => r,
                _ => r,
            };
            let (r, any) = skip_digits(r);
            if !any {
                return None;
            }
            r
        }
        _ => rest,
    };
    if !rest.is_empty() {
        return None;
    }
    let v: f64 = std::str::from_utf8(line).ok()?.parse().ok()?;
    v.is_finite().then_some(v)
}

/// The bytes after a run of ASCII digits, and whether there was at least one.
pub(super) fn skip_digits(s: &[u8]) -> (&[u8], bool) {
    let n = s.iter().take_while(|b| b.is_ascii_digit()).count();
    (s.get(n..).unwrap_or_default(), n != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers() {
        assert_eq!(parse_i64(b"0"), Some(0));
        // Non-canonical forms servers never write.
        for bad in [&b"-0"[..], b"00", b"01", b"-01", b"007", b"-00"] {
            assert_eq!(parse_i64(bad), None, "{bad:?}");
        }
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        assert_eq!(parse_i64(b"-9223372036854775809"), None);
        for bad in [&b""[..], b"-", b"+1", b" 1", b"1 ", b"1a", b"--1"] {
            assert_eq!(parse_i64(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn fast_digits_matches_the_plain_parse() {
        let mut cases: Vec<String> = Vec::new();
        for n in [
            0u64, 1, 9, 10, 42, 99, 100, 12345, 9_999_999, 10_000_000, 99_999_999,
        ] {
            cases.push(n.to_string());
        }
        for len in 1..=20 {
            cases.push("7".repeat(len));
            cases.push(format!("1{}", "0".repeat(len - 1)));
        }
        for digits in cases {
            for tail in ["\r\n", "\r\nxxxxxxxxxx", "\r", "\rx", "x\r\n", "\n", ""] {
                let s = format!("{digits}{tail}");
                let want = if tail.starts_with("\r\n") && digits.len() <= 19 {
                    Some((digits.parse::<u64>().ok().unwrap_or_default(), digits.len()))
                } else {
                    None
                };
                assert_eq!(fast_digits(s.as_bytes(), 64 * 1024), want, "{s:?}");
            }
            let s = format!("{digits}\r\n");
            let limited = fast_digits(s.as_bytes(), 3);
            assert_eq!(
                limited.is_some(),
                digits.len() <= 3,
                "{s:?} with max_line 3"
            );
        }
        assert_eq!(fast_digits(b"\r\n", 10), None);
        assert_eq!(fast_digits(b"12/4\r\n", 10), None);
        assert_eq!(fast_digits(b"12:4\r\n", 10), None);
        assert_eq!(fast_digits(b"1\xff\r\n\xff\xff\xff\xff", 10), None);
    }

    #[test]
    fn doubles() {
        assert_eq!(parse_double(b"1.5e10"), Some(1.5e10));
        assert_eq!(parse_double(b"-1E-3"), Some(-1e-3));
        assert_eq!(parse_double(b"10"), Some(10.0));
        assert_eq!(parse_double(b"1e+2"), Some(100.0));
        assert_eq!(parse_double(b"+1.5"), Some(1.5));
        assert_eq!(parse_double(b"1e-05"), Some(1e-5));
        assert_eq!(parse_double(b"inf"), Some(f64::INFINITY));
        assert_eq!(parse_double(b"-inf"), Some(f64::NEG_INFINITY));
        assert!(parse_double(b"nan").is_some_and(f64::is_nan));
        let long_ok = format!("1.{}", "0".repeat(MAX_DOUBLE_LEN - 2));
        assert_eq!(parse_double(long_ok.as_bytes()), Some(1.0));
        let too_long = format!("1.{}", "0".repeat(MAX_DOUBLE_LEN - 1));
        assert_eq!(parse_double(too_long.as_bytes()), None);
        for bad in [
            &b""[..],
            b"-",
            b"+",
            b".5",
            b"-.5",
            b"1.",
            b"1.e5",
            b"INF",
            b"-Inf",
            b"+inf",
            b"NaN",
            b"-nan",
            b"1e999",
            b"-1e400",
            b"abc",
            b"1e",
            b"e5",
            b".",
            b"1.2.3",
            b"infinity",
            b" 1",
            b"1e5x",
        ] {
            assert_eq!(parse_double(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn line_scan_resumes_without_rescanning() {
        let mut scanned = 0;
        assert!(matches!(find_line_end(b"+OK", &mut scanned, 100), Ok(None)));
        assert_eq!(scanned, 2);
        assert!(matches!(
            find_line_end(b"+OK\r", &mut scanned, 100),
            Ok(None)
        ));
        assert_eq!(scanned, 2);
        assert!(matches!(
            find_line_end(b"+OK\r\n", &mut scanned, 100),
            Ok(Some(3))
        ));
    }

    #[test]
    fn line_limit_is_exact() {
        let mut s = 0;
        assert!(matches!(find_line_end(b"+abc\r\n", &mut s, 3), Ok(Some(4))));
        let mut s = 0;
        assert!(find_line_end(b"+abcd", &mut s, 3).is_err());
        let mut s = 0;
        assert!(matches!(find_line_end(b"+abc", &mut s, 3), Ok(None)));
    }
}
