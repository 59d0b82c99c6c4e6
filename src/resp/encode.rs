//! Encoding: commands as RESP arrays of bulk strings, and any [`Value`] (for tests and fuzzing).

use super::Value;

/// Append one command, a RESP array of bulk strings, to `out`.
///
/// Only this form is ever sent to a server: every argument is length-prefixed, so CR/LF
/// inside an argument stays data (no inline-protocol injection is possible).
///
/// ```
/// let mut out = Vec::new();
/// valkit::resp::__internals::encode_command(&mut out, [&b"GET"[..], b"k"]);
/// assert_eq!(out, b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
/// ```
pub fn encode_command<'a, I>(out: &mut Vec<u8>, args: I)
where
    I: IntoIterator<Item = &'a [u8]>,
    I::IntoIter: ExactSizeIterator,
{
    let args = args.into_iter();
    write_header(out, b'*', args.len() as u64);
    for a in args {
        write_header(out, b'$', a.len() as u64);
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

fn write_header(out: &mut Vec<u8>, prefix: u8, n: u64) {
    out.push(prefix);
    write_u64(out, n);
    out.extend_from_slice(b"\r\n");
}

fn write_u64(out: &mut Vec<u8>, n: u64) {
    let mut tmp = [0u8; 20];
    let mut n = n;
    let mut used = 0usize;
    for slot in tmp.iter_mut().rev() {
        *slot = b'0'.wrapping_add(n.wrapping_rem(10) as u8);
        used = used.wrapping_add(1);
        n = n.wrapping_div(10);
        if n == 0 {
            break;
        }
    }
    let start = tmp.len().wrapping_sub(used);
    out.extend_from_slice(tmp.get(start..).unwrap_or_default());
}

fn write_i64(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    write_u64(out, n.unsigned_abs());
}

/// Append the RESP3 encoding of `value` to `out` (RESP2 has no encoding for most RESP3
/// types). Error replies containing CR or LF are written as bulk errors (`!`) so that they
/// decode back to the same [`Value::Error`].
///
/// The output decodes back to `value` except where RESP cannot express it: a simple string
/// containing CR or LF is written as a bulk string (and decodes as [`Value::Bulk`]); a
/// verbatim format that is not exactly 3 bytes, or a push anywhere but at the top level
/// (possibly under attributes), is written as given but rejected by the decoder; and NaN
/// decodes to NaN, which does not compare equal to itself.
///
/// ```
/// use valkit::resp::__internals::{decode, encode_value};
/// use valkit::resp::Limits;
/// use valkit::Value;
/// let v = Value::Array(vec![Value::Int(-7), Value::Bulk(b"a\r\nb".into())]);
/// let mut out = Vec::new();
/// encode_value(&mut out, &v);
/// assert_eq!(decode(&out, &Limits::default()).unwrap(), Some((v, out.len())));
/// ```
pub fn encode_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Nil => out.extend_from_slice(b"_\r\n"),
        Value::Simple(s) => {
            if s.bytes().any(|b| b == b'\r' || b == b'\n') {
                // Not representable as a simple string; the closest faithful form is lost,
                // so fall back to a verbatim-free bulk. Decoders see a Bulk then.
                write_header(out, b'$', s.len() as u64);
                out.extend_from_slice(s.as_bytes());
                out.extend_from_slice(b"\r\n");
            } else {
                out.push(b'+');
                out.extend_from_slice(s.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
        }
        Value::Error(e) => {
            let t = e.text().as_bytes();
            if t.iter().any(|&b| b == b'\r' || b == b'\n') {
                write_header(out, b'!', t.len() as u64);
                out.extend_from_slice(t);
                out.extend_from_slice(b"\r\n");
            } else {
                out.push(b'-');
                out.extend_from_slice(t);
                out.extend_from_slice(b"\r\n");
            }
        }
        Value::Int(i) => {
            out.push(b':');
            write_i64(out, *i);
            out.extend_from_slice(b"\r\n");
        }
        Value::Bulk(b) => {
            write_header(out, b'$', b.len() as u64);
            out.extend_from_slice(b);
            out.extend_from_slice(b"\r\n");
        }
        Value::Array(items) => {
            write_header(out, b'*', items.len() as u64);
            items.iter().for_each(|v| encode_value(out, v));
        }
        Value::Bool(b) => out.extend_from_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
        Value::Double(d) => {
            out.push(b',');
            if d.is_nan() {
                out.extend_from_slice(b"nan");
            } else if d.is_infinite() {
                out.extend_from_slice(if *d > 0.0 { b"inf" } else { b"-inf" });
            } else {
                // `{:?}` prints the shortest representation that round-trips exactly.
                out.extend_from_slice(format!("{d:?}").as_bytes());
            }
            out.extend_from_slice(b"\r\n");
        }
        Value::BigNumber(n) => {
            out.push(b'(');
            out.extend_from_slice(n.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        Value::Verbatim { format, text } => {
            let len = text.len().saturating_add(format.len()).saturating_add(1);
            write_header(out, b'=', len as u64);
            out.extend_from_slice(format.as_bytes());
            out.push(b':');
            out.extend_from_slice(text);
            out.extend_from_slice(b"\r\n");
        }
        Value::Map(pairs) => {
            write_header(out, b'%', pairs.len() as u64);
            for (k, v) in pairs {
                encode_value(out, k);
                encode_value(out, v);
            }
        }
        Value::Set(items) => {
            write_header(out, b'~', items.len() as u64);
            items.iter().for_each(|v| encode_value(out, v));
        }
        Value::Attribute { attributes, value } => {
            write_header(out, b'|', attributes.len() as u64);
            for (k, v) in attributes {
                encode_value(out, k);
                encode_value(out, v);
            }
            encode_value(out, value);
        }
        Value::Push { kind, data } => {
            write_header(out, b'>', (data.len() as u64).saturating_add(1));
            write_header(out, b'$', kind.len() as u64);
            out.extend_from_slice(kind.as_bytes());
            out.extend_from_slice(b"\r\n");
            data.iter().for_each(|v| encode_value(out, v));
        }
    }
}
