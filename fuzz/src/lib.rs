//! The checks behind the fuzz targets, as plain functions so that each target stays one line
//! and the seeds can be replayed by `cargo test` in this crate without libFuzzer.
//!
//! Every check panics (which libFuzzer reports as a crash) when valkit breaks a promise.

use std::alloc::{GlobalAlloc, Layout, System};

use valkit::resp::__internals::{decode, encode_command, encode_value, Decoder};
use valkit::resp::{Frame, Limits};
use valkit::{ConnectionConfig, FromValue, Secret, ServerError, Value};

// ---------------------------------------------------------------------------------------
// One allocation of 512 MiB or more is a finding, with or without a sanitizer

/// The largest single allocation a check may make, in MiB: the same rule as libFuzzer's
/// `-malloc_limit_mb=512` (which the scripts pass), i.e. any request of 512 MiB or more.
pub const MALLOC_LIMIT_MB: usize = 512;

/// True when an allocation of `size` bytes breaks [`MALLOC_LIMIT_MB`].
pub fn over_malloc_limit(size: usize) -> bool {
    size >> 20 >= MALLOC_LIMIT_MB
}

/// The system allocator, except that a request over the limit aborts the process, which
/// libFuzzer reports as a crash (`deadly signal`) and saves the input.
///
/// Why here and not only libFuzzer's `-malloc_limit_mb`: libFuzzer enforces that flag
/// through the sanitizer's malloc hooks, so a build without a sanitizer (`cargo fuzz run
/// -s none`, which the long campaigns use) silently ignores it. Checked on this machine: a
/// target doing `Vec::<u8>::with_capacity(1 << 30)` stops with `out-of-memory
/// (malloc(1073741824))` under ASan but passes without a word under `-s none`, and the RSS
/// limit cannot see an allocation that is never touched. A hostile length that makes the
/// decoder pre-allocate is exactly the bug this limit exists for, so the check lives in the
/// harness itself.
pub struct LimitedAlloc;

#[cold]
fn malloc_limit_exceeded(size: usize) -> ! {
    use std::io::Write;
    // Stderr is unbuffered: writing a formatted line does not allocate.
    let _ = writeln!(
        std::io::stderr(),
        "==valkit-fuzz== ERROR: allocation of {size} bytes: over the {MALLOC_LIMIT_MB} MiB \
         single-allocation limit (a pre-allocation from a hostile length?)"
    );
    std::process::abort()
}

// SAFETY: every call is passed unchanged to `System`, which upholds `GlobalAlloc`'s contract;
// the only addition is an abort (never an unwind) before an over-limit request.
unsafe impl GlobalAlloc for LimitedAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if over_malloc_limit(layout.size()) {
            malloc_limit_exceeded(layout.size());
        }
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if over_malloc_limit(layout.size()) {
            malloc_limit_exceeded(layout.size());
        }
        System.alloc_zeroed(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if over_malloc_limit(new_size) {
            malloc_limit_exceeded(new_size);
        }
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOC: LimitedAlloc = LimitedAlloc;

// ---------------------------------------------------------------------------------------
// Helpers

/// Structural equality of two values in which NaN equals NaN (any payload) and other
/// doubles are compared bit for bit (so `-0.0 != 0.0`).
pub fn value_eq(a: &Value, b: &Value) -> bool {
    fn all(a: &[Value], b: &[Value]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| value_eq(x, y))
    }
    fn pairs(a: &[(Value, Value)], b: &[(Value, Value)]) -> bool {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|((ka, va), (kb, vb))| value_eq(ka, kb) && value_eq(va, vb))
    }
    match (a, b) {
        (Value::Double(x), Value::Double(y)) => {
            (x.is_nan() && y.is_nan()) || x.to_bits() == y.to_bits()
        }
        (Value::Array(x), Value::Array(y)) | (Value::Set(x), Value::Set(y)) => all(x, y),
        (Value::Map(x), Value::Map(y)) => pairs(x, y),
        (
            Value::Attribute {
                attributes: ax,
                value: vx,
            },
            Value::Attribute {
                attributes: ay,
                value: vy,
            },
        ) => pairs(ax, ay) && value_eq(vx, vy),
        (Value::Push { kind: kx, data: dx }, Value::Push { kind: ky, data: dy }) => {
            kx == ky && all(dx, dy)
        }
        _ => a == b,
    }
}

/// Tight limits, so that hostile lengths and depths hit the limit branches.
pub fn small_limits() -> Limits {
    let mut l = Limits::default();
    l.max_bulk_len = 64;
    l.max_aggregate_len = 8;
    l.max_depth = 4;
    l.max_line_len = 32;
    l
}

/// What decoding a byte string gives: the values in order, then how it stopped.
#[derive(Debug)]
pub struct Outcome {
    pub values: Vec<Value>,
    /// `Some(detail)` when decoding stopped on a protocol error.
    pub error: Option<String>,
    /// Bytes left over after the last value when no error stopped decoding.
    pub leftover: usize,
}

fn same_outcome(a: &Outcome, b: &Outcome) -> bool {
    a.values.len() == b.values.len()
        && a.values.iter().zip(&b.values).all(|(x, y)| value_eq(x, y))
        && a.error == b.error
        && a.leftover == b.leftover
}

/// The oracle: repeated one-shot [`decode`] of the whole buffer.
pub fn decode_all_one_shot(data: &[u8], lim: &Limits) -> Outcome {
    let mut values = Vec::new();
    let mut rest = data;
    loop {
        match decode(rest, lim) {
            Ok(Some((v, n))) => {
                assert!(n > 0 && n <= rest.len(), "consumed {n} of {}", rest.len());
                values.push(v);
                rest = &rest[n..];
            }
            Ok(None) => {
                return Outcome {
                    values,
                    error: None,
                    leftover: rest.len(),
                }
            }
            Err(e) => {
                return Outcome {
                    values,
                    error: Some(e.detail().to_owned()),
                    leftover: 0,
                }
            }
        }
    }
}

/// Feed `data` to a [`Decoder`] in chunks of the given sizes (cycled; 0 is read as 1),
/// draining values after every chunk.
pub fn decode_all_chunked(data: &[u8], sizes: &[usize], lim: &Limits) -> Outcome {
    let mut d = Decoder::with_limits(*lim);
    let mut values = Vec::new();
    let mut rest = data;
    let mut i = 0;
    while !rest.is_empty() {
        let size = sizes
            .get(i % sizes.len().max(1))
            .copied()
            .unwrap_or(1)
            .max(1);
        i += 1;
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        rest = tail;
        d.feed(chunk);
        loop {
            // Every third value is read in place (`next_reply`) and copied out: the two
            // ways of reading must mix freely on one stream.
            let step = if values.len() % 3 == 2 {
                d.next_reply().map(|r| r.map(|r| r.to_value()))
            } else {
                d.next_value()
            };
            match step {
                Ok(Some(v)) => values.push(v),
                Ok(None) => break,
                Err(e) => {
                    assert!(d.is_failed(), "error without failing the decoder");
                    assert_eq!(d.buffered(), 0, "a failed decoder holds bytes");
                    assert!(d.next_value().is_err(), "a failed decoder recovered");
                    return Outcome {
                        values,
                        error: Some(e.detail().to_owned()),
                        leftover: 0,
                    };
                }
            }
        }
    }
    let leftover = d.buffered();
    assert_eq!(d.is_mid_frame(), leftover != 0);
    Outcome {
        values,
        error: None,
        leftover,
    }
}

/// A deterministic stream of choices drawn from the fuzz input; zeros once it runs out, so
/// every builder terminates.
pub struct Gen<'a> {
    data: &'a [u8],
}

impl<'a> Gen<'a> {
    pub fn new(data: &'a [u8]) -> Gen<'a> {
        Gen { data }
    }

    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    pub fn u64(&mut self) -> u64 {
        (0..8).fold(0u64, |acc, _| (acc << 8) | u64::from(self.u8()))
    }

    pub fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = usize::from(self.u8()) % (max + 1);
        let n = n.min(self.data.len());
        let (b, rest) = self.data.split_at(n);
        self.data = rest;
        b.to_vec()
    }

    pub fn string(&mut self, max: usize) -> String {
        String::from_utf8_lossy(&self.bytes(max)).into_owned()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// Build a [`Value`] that RESP3 can represent exactly (see `encode_value`'s docs): simple
/// strings without CR/LF, verbatim formats of exactly 3 bytes, big numbers that are digits,
/// and pushes only at the top level (possibly under attributes).
pub fn build_value(g: &mut Gen<'_>, depth: usize, top: bool) -> Value {
    const MAX_DEPTH: usize = 12;
    const MAX_LEN: u8 = 8;
    let tag = g.u8() % 15;
    let leaf = depth >= MAX_DEPTH;
    match tag {
        0 => Value::Nil,
        1 => Value::Simple(g.string(40).replace(['\r', '\n'], "").into()),
        2 => Value::Error(ServerError::new(g.string(40))),
        3 => Value::Int(g.u64() as i64),
        4 => Value::Bulk(g.bytes(80).into()),
        5 => Value::Bool(g.u8() & 1 == 1),
        6 => Value::Double(f64::from_bits(g.u64())),
        7 => {
            let neg = g.u8() & 1 == 1;
            let digits: String = g
                .bytes(30)
                .iter()
                .map(|b| char::from(b'0' + b % 10))
                .collect();
            let digits = if digits.is_empty() {
                "0".into()
            } else {
                digits
            };
            Value::BigNumber(if neg { format!("-{digits}") } else { digits })
        }
        8 => {
            let format: String = (0..3).map(|_| char::from(g.u8() & 0x7f)).collect();
            Value::Verbatim {
                format,
                text: g.bytes(60).into(),
            }
        }
        9 | 10 if !leaf => {
            let n = g.u8() % MAX_LEN;
            let items = (0..n).map(|_| build_value(g, depth + 1, false)).collect();
            if tag == 9 {
                Value::Array(items)
            } else {
                Value::Set(items)
            }
        }
        11 if !leaf => Value::Map(build_pairs(g, depth)),
        12 if !leaf => Value::Attribute {
            attributes: build_pairs(g, depth),
            // Attributes may wrap a push at the top level.
            value: Box::new(build_value(g, depth + 1, top)),
        },
        13 if !leaf && top => {
            let kind = g.string(20);
            let n = g.u8() % MAX_LEN;
            Value::Push {
                kind,
                data: (0..n).map(|_| build_value(g, depth + 1, false)).collect(),
            }
        }
        _ => Value::Int(i64::from(g.u8())),
    }
}

fn build_pairs(g: &mut Gen<'_>, depth: usize) -> Vec<(Value, Value)> {
    let n = g.u8() % 6;
    (0..n)
        .map(|_| {
            let k = build_value(g, depth + 1, false);
            (k, build_value(g, depth + 1, false))
        })
        .collect()
}

/// Chunk sizes chosen by one byte: the low nibble `k`, the high bits a mode.
pub fn chunk_sizes(b: u8, len: usize) -> Vec<usize> {
    let k = usize::from(b & 0x0f);
    match b >> 5 {
        // One fixed size, 1..=16 (1-byte feeding included).
        0..=2 => vec![k + 1],
        // Two pieces, split at a point chosen by the byte.
        3 | 4 => vec![(usize::from(b) * len / 256).max(1), usize::MAX],
        // A pseudo-random sequence of sizes in 1..=2^(k%8+1), seeded by the byte.
        _ => {
            let max = 1usize << (k % 8 + 1);
            let mut x = u32::from(b) | 0x100;
            (0..64)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    (x >> 16) as usize % max + 1
                })
                .collect()
        }
    }
}

// ---------------------------------------------------------------------------------------
// Checks, one per fuzz target

/// One-shot decode of arbitrary bytes with default and with small limits: no panic; a value
/// consumes 1..=len bytes, decodes again from exactly those bytes, and no strict prefix of
/// them yields a value or an error; what small limits accept, default limits accept equally.
pub fn check_decode(data: &[u8]) {
    let default = Limits::default();
    let small = small_limits();
    let mut found = Vec::new();
    for lim in [&default, &small] {
        let r = decode(data, lim);
        check_frame_path(data, lim, &r);
        if let Ok(Some((v, n))) = &r {
            assert!(*n > 0 && *n <= data.len(), "consumed {n} of {}", data.len());
            let again = decode(&data[..*n], lim).expect("the frame alone decodes");
            assert!(matches!(&again, Some((w, m)) if m == n && value_eq(v, w)));
            let prefix = decode(&data[..n - 1], lim);
            assert!(
                matches!(prefix, Ok(None)),
                "strict prefix of a frame gave {prefix:?}"
            );
        }
        found.push(r);
    }
    if let Ok(Some((v, n))) = &found[1] {
        let ok = matches!(&found[0], Ok(Some((w, m))) if m == n && value_eq(v, w));
        assert!(
            ok,
            "small limits accepted what default limits decode differently"
        );
    }
}

/// One conversion both ways: from the built [`Value`] and from the frame read in place must
/// agree exactly (`Ok` values by `Debug`, errors by kind and detail).
fn same_conversion<T: FromValue + std::fmt::Debug>(v: &Value, f: Frame<'_>) {
    let a = T::from_value(v.clone());
    let b = T::from_frame(f);
    match (&a, &b) {
        (Ok(x), Ok(y)) => assert_eq!(format!("{x:?}"), format!("{y:?}")),
        (Err(x), Err(y)) => assert!(x.kind() == y.kind() && x.detail() == y.detail()),
        _ => panic!("from_value {a:?} but from_frame {b:?}"),
    }
}

/// [`Decoder::next_reply`] on the same bytes must agree with the one-shot `decode` result
/// `r`: the same length, a frame that copies out to the same value and converts the same
/// way, and the same error or need for more bytes.
fn check_frame_path(data: &[u8], lim: &Limits, r: &valkit::Result<Option<(Value, usize)>>) {
    let mut d = Decoder::with_limits(*lim);
    d.feed(data);
    match (r, d.next_reply()) {
        (Ok(Some((v, n))), Ok(Some(reply))) => {
            assert_eq!(reply.wire_bytes().len(), *n);
            let f = reply.frame();
            assert!(value_eq(&f.to_value(), v), "frame copied out differs");
            assert_eq!(f.type_name(), v.type_name());
            same_conversion::<Vec<u8>>(v, f);
            same_conversion::<String>(v, f);
            same_conversion::<i64>(v, f);
            same_conversion::<()>(v, f);
            same_conversion::<Option<Vec<u8>>>(v, f);
            same_conversion::<Vec<Option<Vec<u8>>>>(v, f);
            same_conversion::<Vec<i64>>(v, f);
            same_conversion::<Option<Vec<Option<String>>>>(v, f);
        }
        (Ok(None), Ok(None)) => {}
        (Err(a), Err(b)) => assert_eq!(a.detail(), b.detail()),
        (a, b) => panic!("decode gave {a:?} but next_reply gave {b:?}"),
    }
}

/// Byte 0 picks chunk sizes; the rest fed to a [`Decoder`] in those chunks must give exactly
/// the values, error and leftover that repeated one-shot decoding gives.
pub fn check_decode_chunked(data: &[u8]) {
    let Some((&b, rest)) = data.split_first() else {
        return;
    };
    let sizes = chunk_sizes(b, rest.len());
    for lim in [Limits::default(), small_limits()] {
        let oracle = decode_all_one_shot(rest, &lim);
        let chunked = decode_all_chunked(rest, &sizes, &lim);
        assert!(
            same_outcome(&oracle, &chunked),
            "chunks {sizes:?}\none-shot {oracle:?}\nchunked  {chunked:?}"
        );
    }
}

/// Build a representable [`Value`] from the bytes, encode it, and decode it back one-shot
/// and in chunks: the same value, all bytes consumed. Also a command of bulk arguments.
pub fn check_roundtrip(data: &[u8]) {
    let mut g = Gen::new(data);
    let chunking = g.u8();
    let v = build_value(&mut g, 0, true);
    let mut out = Vec::new();
    encode_value(&mut out, &v);
    // Relative to the encoded frame (not the input), so a two-piece split can fall anywhere
    // in it.
    let sizes = chunk_sizes(chunking, out.len());
    let lim = Limits::default();
    match decode(&out, &lim) {
        Ok(Some((w, n))) => {
            assert!(
                value_eq(&v, &w),
                "{v:?}\n-> {:?}\n-> {w:?}",
                out.escape_ascii().to_string()
            );
            assert_eq!(n, out.len());
        }
        other => panic!(
            "{v:?}\n-> {:?}\n-> {other:?}",
            out.escape_ascii().to_string()
        ),
    }
    let chunked = decode_all_chunked(&out, &sizes, &lim);
    assert!(
        chunked.error.is_none() && chunked.leftover == 0,
        "{chunked:?}"
    );
    assert!(chunked.values.len() == 1 && value_eq(&v, &chunked.values[0]));

    let mut args = Vec::new();
    while !g.is_empty() && args.len() < 16 {
        args.push(g.bytes(40));
    }
    let mut cmd = Vec::new();
    encode_command(&mut cmd, args.iter().map(Vec::as_slice));
    let want = Value::Array(args.into_iter().map(|a| Value::Bulk(a.into())).collect());
    assert_eq!(decode(&cmd, &lim).ok(), Some(Some((want, cmd.len()))));
}

/// Rotate the ASCII letters g-z and G-Z (never hex digits or punctuation), so a password keeps
/// its structure and percent-encoding but differs in every letter that could leak.
fn rotate(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'g'..='y' | 'G'..='Y' => char::from(c as u8 + 1),
            'z' => 'g',
            'Z' => 'G',
            c => c,
        })
        .collect()
}

/// What a config may show: `Display` and `Debug` must not depend on the password.
fn check_config_hides_password(cfg: &ConnectionConfig) {
    let mut other = cfg.clone();
    other.password = cfg
        .password
        .as_ref()
        .map(|p| Secret::new(format!("{}x", rotate(p.expose()))));
    assert_eq!(
        cfg.to_string(),
        other.to_string(),
        "Display depends on the password"
    );
    assert_eq!(
        format!("{cfg:?}"),
        format!("{other:?}"),
        "Debug depends on the password"
    );
}

/// How every password of the `url` target's password mode starts (see [`check_url`]).
const PW_MARKER: &str = "Pw~";

fn url_case(url: &str) {
    if let Ok(cfg) = ConnectionConfig::from_url(url) {
        check_config_hides_password(&cfg);
        if cfg.password.is_none() {
            let shown = cfg.to_string();
            let back = ConnectionConfig::from_url(&shown);
            assert!(
                back.as_ref().is_ok_and(|b| *b == cfg),
                "{url:?} -> {cfg:?}\nDisplay {shown:?} -> {back:?}"
            );
        }
    }
}

/// The URL and environment parsers: never panic; a parsed config shows no password and
/// (without a password) its `Display` parses back to an equal config; error messages do not
/// depend on the password.
///
/// Byte 0 picks the mode: arbitrary UTF-8 as a URL; a URL with a fuzzed password spliced into
/// its user info; or a fuzzed environment for `from_env_vars`.
pub fn check_url(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    match mode % 4 {
        0 | 1 => url_case(&text),
        2 => {
            // scheme://user:PASSWORD@rest, the password free of the delimiters; or, with
            // the mode's top bit set, scheme://user:PASSWORDrest with no '@' at all (a URL
            // without a host, whose "port" is the password: `redis://default:secret`).
            // The password starts with a marker no message text contains, so that finding
            // it in a message is a leak, not a coincidence.
            let mut parts = text.splitn(3, '\u{0}');
            let (pw, tail) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let with_at = mode & 0x80 == 0;
            let pw: String = pw.chars().filter(|c| !"@/?#".contains(*c)).collect();
            let pw = format!("{PW_MARKER}{pw}");
            let scheme =
                ["redis", "rediss", "valkey", "unix", "redis+unix"][usize::from(mode >> 2) % 5];
            let url = |pw: &str| match with_at {
                true => format!("{scheme}://u:{pw}@{tail}"),
                false => format!("{scheme}://u:{pw}{tail}"),
            };
            url_case(&url(&pw));
            let a = ConnectionConfig::from_url(&url(&pw));
            let b = ConnectionConfig::from_url(&url(&rotate(&pw)));
            let (a, b) = (a.err(), b.err());
            assert_eq!(
                a.as_ref().map(|e| e.to_string()),
                b.as_ref().map(|e| e.to_string()),
                "URL error message depends on the password {pw:?}"
            );
            if let Some(e) = a.filter(|_| !tail.contains(PW_MARKER)) {
                for text in [e.to_string(), format!("{e:?}")] {
                    assert!(
                        !text.contains(&pw),
                        "URL error message quotes the password {pw:?}: {text}"
                    );
                }
            }
        }
        _ => {
            const NAMES: [&str; 7] = [
                "VALKEY_URL",
                "VALKEY_HOST",
                "VALKEY_PORT",
                "VALKEY_USER",
                "VALKEY_PASSWORD",
                "VALKEY_DB",
                "VALKEY_TLS",
            ];
            let values: Vec<&str> = text.split('\u{0}').collect();
            let env = |pw_rot: bool| {
                let values = values.clone();
                move |name: &str| {
                    let i = NAMES.iter().position(|n| *n == name)?;
                    // Bit i of the mode byte unset: the variable is unset.
                    if mode >> 2 & (1 << i) == 0 && i != 6 {
                        return None;
                    }
                    let v = values.get(i)?.to_string();
                    Some(if pw_rot && name == "VALKEY_PASSWORD" {
                        rotate(&v)
                    } else {
                        v
                    })
                }
            };
            let a = ConnectionConfig::from_env_vars(env(false));
            let b = ConnectionConfig::from_env_vars(env(true));
            match (&a, &b) {
                (Ok(cfg), Ok(_)) => {
                    check_config_hides_password(cfg);
                    if cfg.password.is_none() {
                        let shown = cfg.to_string();
                        let back = ConnectionConfig::from_url(&shown);
                        assert!(
                            back.as_ref().is_ok_and(|b| b == cfg),
                            "{cfg:?}\nDisplay {shown:?} -> {back:?}"
                        );
                    }
                }
                (Err(x), Err(y)) => assert_eq!(
                    x.to_string(),
                    y.to_string(),
                    "env error message depends on the password"
                ),
                _ => panic!("the password's letters decided success: {a:?} vs {b:?}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malloc_limit_matches_libfuzzer() {
        // libFuzzer: `(size >> 20) < malloc_limit_mb` passes, anything else is reported.
        assert!(!over_malloc_limit((512 << 20) - 1));
        assert!(over_malloc_limit(512 << 20));
        assert!(over_malloc_limit(usize::MAX));
        assert!(!over_malloc_limit(0));
    }

    /// Replay every committed seed through every check (no libFuzzer needed).
    #[test]
    fn seeds_pass_all_checks() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
        let mut n = 0;
        for dir in std::fs::read_dir(&root).expect("fuzz/seeds") {
            let dir = dir.expect("entry").path();
            for f in std::fs::read_dir(&dir).expect("seed dir") {
                let data = std::fs::read(f.expect("entry").path()).expect("seed");
                check_decode(&data);
                check_decode_chunked(&data);
                check_roundtrip(&data);
                check_url(&data);
                n += 1;
            }
        }
        assert!(n > 0, "no seeds found");
    }
}
