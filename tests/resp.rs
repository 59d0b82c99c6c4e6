//! The RESP decoder against its contract (RELIABILITY.md §a.0): table-driven valid and
//! malformed vectors, every split point, pipelining, hostile lengths and nesting, limits,
//! encode/decode round trips, and the failed state.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use valkit::resp::__internals::{decode, encode_value, Decoder};
use valkit::resp::Limits;
use valkit::{ErrorKind, ServerError, Value};

// ---------------------------------------------------------------------------------------
// A counting allocator, per thread (tests run in parallel).

struct Counting;

thread_local! {
    static ALLOCATED: Cell<usize> = const { Cell::new(0) };
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn count(add: usize, live: isize) {
    let _ = ALLOCATED.try_with(|c| c.set(c.get().wrapping_add(add)));
    let _ = LIVE.try_with(|c| c.set(c.get().wrapping_add(live)));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size(), layout.size() as isize);
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size(), layout.size() as isize);
        System.alloc_zeroed(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(0, -(layout.size() as isize));
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size, new_size as isize - layout.size() as isize);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Bytes allocated by this thread while running `f`.
fn allocated_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = ALLOCATED.with(Cell::get);
    let out = f();
    (out, ALLOCATED.with(Cell::get) - before)
}

fn live_bytes() -> isize {
    LIVE.with(Cell::get)
}

// ---------------------------------------------------------------------------------------
// Helpers

fn simple(s: &str) -> Value {
    Value::Simple(s.into())
}
fn bulk(b: &[u8]) -> Value {
    Value::Bulk(b.into())
}
fn int(i: i64) -> Value {
    Value::Int(i)
}
fn err(s: &str) -> Value {
    Value::Error(ServerError::new(s))
}
fn arr(v: Vec<Value>) -> Value {
    Value::Array(v)
}
fn set(v: Vec<Value>) -> Value {
    Value::Set(v)
}
fn map(v: Vec<(Value, Value)>) -> Value {
    Value::Map(v)
}
fn dbl(d: f64) -> Value {
    Value::Double(d)
}
fn big(s: &str) -> Value {
    Value::BigNumber(s.into())
}
fn verb(f: &str, t: &[u8]) -> Value {
    Value::Verbatim {
        format: f.into(),
        text: t.into(),
    }
}
fn attr(a: Vec<(Value, Value)>, v: Value) -> Value {
    Value::Attribute {
        attributes: a,
        value: Box::new(v),
    }
}
fn push(kind: &str, data: Vec<Value>) -> Value {
    Value::Push {
        kind: kind.into(),
        data,
    }
}

/// Equality where NaN equals NaN (and -0.0 differs from 0.0): compare the Debug forms too.
fn same(a: &Value, b: &Value) -> bool {
    a == b || format!("{a:?}") == format!("{b:?}")
}

macro_rules! assert_same {
    ($a:expr, $b:expr, $($ctx:tt)*) => {{
        let (a, b) = (&$a, &$b);
        assert!(same(a, b), "{}\n  left: {a:?}\n right: {b:?}", format!($($ctx)*));
    }};
}

fn lim() -> Limits {
    Limits::default()
}

fn limits(f: impl FnOnce(&mut Limits)) -> Limits {
    let mut l = Limits::default();
    f(&mut l);
    l
}

fn assert_protocol<T: std::fmt::Debug>(r: valkit::Result<T>, ctx: &str) -> valkit::Error {
    match r {
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::Protocol, "{ctx}: {e}");
            assert!(!e.detail().is_empty(), "{ctx}: empty detail");
            e
        }
        Ok(v) => panic!("{ctx}: expected a protocol error, got {v:?}"),
    }
}

/// A limit error (its own kind, issue 9 item 6) naming the limit `which`.
fn assert_limit<T: std::fmt::Debug>(
    r: valkit::Result<T>,
    which: valkit::Limit,
    ctx: &str,
) -> valkit::Error {
    match r {
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::Limit, "{ctx}: {e}");
            assert_eq!(e.limit(), Some(which), "{ctx}: {e}");
            assert!(e.is_limit() && e.is_connection_broken(), "{ctx}");
            e
        }
        Ok(v) => panic!("{ctx}: expected a limit error, got {v:?}"),
    }
}

/// Every way of feeding `wire` that the contract covers gives `want`, consuming all of it.
fn check_valid(wire: &[u8], want: &Value, l: &Limits) {
    let ctx = wire.escape_ascii().to_string();
    // One shot.
    let (v, n) = decode(wire, l)
        .unwrap_or_else(|e| panic!("{ctx}: {e}"))
        .unwrap_or_else(|| panic!("{ctx}: incomplete"));
    assert_same!(v, *want, "one-shot {ctx}");
    assert_eq!(n, wire.len(), "consumed {ctx}");
    // Followed by another frame: consumed stops at the frame's end.
    let mut two = wire.to_vec();
    two.extend_from_slice(b"+next\r\n");
    let (v, n) = decode(&two, l).unwrap().unwrap();
    assert_same!(v, *want, "pipelined {ctx}");
    assert_eq!(n, wire.len(), "pipelined consumed {ctx}");
    // Every strict prefix is incomplete, one-shot.
    for k in 0..wire.len() {
        match decode(&wire[..k], l) {
            Ok(None) => {}
            other => panic!("{ctx}: prefix {k} gave {other:?}"),
        }
    }
    // Split at every byte boundary, incremental.
    for k in 0..=wire.len() {
        let mut d = Decoder::with_limits(*l);
        d.feed(&wire[..k]);
        if k < wire.len() {
            match d.next_value() {
                Ok(None) => {}
                other => panic!("{ctx}: split {k} first half gave {other:?}"),
            }
            assert_eq!(d.buffered(), k, "{ctx}: buffered after {k}");
            assert_eq!(d.is_mid_frame(), k > 0, "{ctx}: mid-frame after {k}");
        }
        d.feed(&wire[k..]);
        let v = d
            .next_value()
            .unwrap_or_else(|e| panic!("{ctx}: split {k}: {e}"))
            .unwrap_or_else(|| panic!("{ctx}: split {k}: incomplete"));
        assert_same!(v, *want, "split {k} of {ctx}");
        assert_eq!(d.buffered(), 0, "{ctx}: split {k} left bytes");
        assert!(!d.is_mid_frame());
        assert_eq!(d.next_value().unwrap(), None);
    }
    // Byte by byte, asking after each byte.
    let mut d = Decoder::with_limits(*l);
    for (i, b) in wire.iter().enumerate() {
        d.feed(std::slice::from_ref(b));
        let r = d
            .next_value()
            .unwrap_or_else(|e| panic!("{ctx}: byte {i}: {e}"));
        if i + 1 < wire.len() {
            assert!(r.is_none(), "{ctx}: value early at byte {i}: {r:?}");
            assert_eq!(d.buffered(), i + 1);
        } else {
            assert_same!(r.expect("complete"), *want, "byte-by-byte {ctx}");
        }
    }
    assert_eq!(d.buffered(), 0);
}

/// A malformed frame is a protocol error one-shot, and byte-by-byte before any value.
fn check_malformed(wire: &[u8], l: &Limits) {
    let ctx = wire.escape_ascii().to_string();
    assert_protocol(decode(wire, l), &format!("one-shot {ctx}"));
    let mut d = Decoder::with_limits(*l);
    let mut failed = false;
    for b in wire {
        d.feed(std::slice::from_ref(b));
        match d.next_value() {
            Ok(None) => {}
            Ok(Some(v)) => panic!("{ctx}: byte-by-byte gave a value {v:?}"),
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Protocol);
                failed = true;
                break;
            }
        }
    }
    assert!(failed, "{ctx}: byte-by-byte never failed");
    assert!(d.is_failed());
}

// ---------------------------------------------------------------------------------------
// Vectors

fn valid_vectors() -> Vec<(&'static [u8], Value)> {
    vec![
        // Simple strings and errors.
        (b"+OK\r\n", simple("OK")),
        (b"+\r\n", simple("")),
        (b"+hello world\r\n", simple("hello world")),
        ("+h\u{e9}llo \u{1f600}\r\n".as_bytes(), simple("h\u{e9}llo \u{1f600}")),
        (b"-ERR unknown command 'x'\r\n", err("ERR unknown command 'x'")),
        (b"-WRONGTYPE Operation against a key\r\n", err("WRONGTYPE Operation against a key")),
        (b"-MOVED 3999 127.0.0.1:6381\r\n", err("MOVED 3999 127.0.0.1:6381")),
        (b"-\r\n", err("")),
        // Integers.
        (b":0\r\n", int(0)),
        (b":42\r\n", int(42)),
        (b":-42\r\n", int(-42)),
        (b":9223372036854775807\r\n", int(i64::MAX)),
        (b":-9223372036854775808\r\n", int(i64::MIN)),
        (b":9223372036854775806\r\n", int(i64::MAX - 1)),
        (b":-9223372036854775807\r\n", int(i64::MIN + 1)),
        // Bulk strings.
        (b"$5\r\nhello\r\n", bulk(b"hello")),
        (b"$0\r\n\r\n", bulk(b"")),
        (b"$-1\r\n", Value::Nil),
        (b"$8\r\n\r\n\0\r\x00\n\xff\r\r\n", bulk(b"\r\n\0\r\x00\n\xff\r")),
        (b"$2\r\n\r\n\r\n", bulk(b"\r\n")),
        // Arrays.
        (b"*0\r\n", arr(vec![])),
        (b"*-1\r\n", Value::Nil),
        (b"*2\r\n$3\r\nfoo\r\n$3\r\nbar\r\n", arr(vec![bulk(b"foo"), bulk(b"bar")])),
        (b"*3\r\n:1\r\n$-1\r\n*-1\r\n", arr(vec![int(1), Value::Nil, Value::Nil])),
        (b"*3\r\n_\r\n+a\r\n_\r\n", arr(vec![Value::Nil, simple("a"), Value::Nil])),
        (
            b"*2\r\n*2\r\n:1\r\n:2\r\n*1\r\n+x\r\n",
            arr(vec![arr(vec![int(1), int(2)]), arr(vec![simple("x")])]),
        ),
        (b"*1\r\n*0\r\n", arr(vec![arr(vec![])])),
        (b"*2\r\n-ERR x\r\n:1\r\n", arr(vec![err("ERR x"), int(1)])),
        (b"*1\r\n*1\r\n*1\r\n:7\r\n", arr(vec![arr(vec![arr(vec![int(7)])])])),
        // Null, booleans.
        (b"_\r\n", Value::Nil),
        (b"#t\r\n", Value::Bool(true)),
        (b"#f\r\n", Value::Bool(false)),
        // Doubles.
        (b",1.23\r\n", dbl(1.23)),
        (b",10\r\n", dbl(10.0)),
        (b",-3\r\n", dbl(-3.0)),
        (b",0\r\n", dbl(0.0)),
        (b",1.5e10\r\n", dbl(1.5e10)),
        (b",-1E-3\r\n", dbl(-1e-3)),
        (b",1e+2\r\n", dbl(100.0)),
        (b",2.5E300\r\n", dbl(2.5e300)),
        (b",inf\r\n", dbl(f64::INFINITY)),
        (b",-inf\r\n", dbl(f64::NEG_INFINITY)),
        (b",nan\r\n", dbl(f64::NAN)),
        (b",+1.5\r\n", dbl(1.5)),
        (b",1e-05\r\n", dbl(1e-5)),
        // Big numbers.
        (
            b"(3492890328409238509324850943850943825024385\r\n",
            big("3492890328409238509324850943850943825024385"),
        ),
        (b"(-12\r\n", big("-12")),
        (b"(0\r\n", big("0")),
        // Bulk errors.
        (b"!21\r\nSYNTAX invalid syntax\r\n", err("SYNTAX invalid syntax")),
        (b"!0\r\n\r\n", err("")),
        (b"!8\r\nERR a\r\nb\r\n", err("ERR a\r\nb")),
        // Verbatim strings.
        (b"=15\r\ntxt:Some string\r\n", verb("txt", b"Some string")),
        (b"=4\r\nmkd:\r\n", verb("mkd", b"")),
        (b"=8\r\ntxt:a\r\nb\r\n", verb("txt", b"a\r\nb")),
        // Maps: pairs in order, keys of any type.
        (
            b"%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n",
            map(vec![(simple("first"), int(1)), (simple("second"), int(2))]),
        ),
        (b"%0\r\n", map(vec![])),
        (
            b"%2\r\n:1\r\n#t\r\n*1\r\n:2\r\n_\r\n",
            map(vec![(int(1), Value::Bool(true)), (arr(vec![int(2)]), Value::Nil)]),
        ),
        (
            b"%1\r\n$1\r\nk\r\n%1\r\n,1.5\r\n~1\r\n#f\r\n",
            map(vec![(bulk(b"k"), map(vec![(dbl(1.5), set(vec![Value::Bool(false)]))]))]),
        ),
        // Sets.
        (b"~3\r\n+a\r\n:1\r\n#f\r\n", set(vec![simple("a"), int(1), Value::Bool(false)])),
        (b"~0\r\n", set(vec![])),
        // Attributes: the spec's example, inside an array, empty, nested, before a push.
        (
            b"|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n*2\r\n:2039123\r\n:9543892\r\n",
            attr(
                vec![(
                    simple("key-popularity"),
                    map(vec![(bulk(b"a"), dbl(0.1923)), (bulk(b"b"), dbl(0.0012))]),
                )],
                arr(vec![int(2039123), int(9543892)]),
            ),
        ),
        (
            b"*2\r\n:1\r\n|1\r\n+ttl\r\n:3600\r\n:2\r\n",
            arr(vec![int(1), attr(vec![(simple("ttl"), int(3600))], int(2))]),
        ),
        (b"|0\r\n+x\r\n", attr(vec![], simple("x"))),
        (
            b"|1\r\n+a\r\n|1\r\n+b\r\n+c\r\n+v\r\n:1\r\n",
            attr(
                vec![(simple("a"), attr(vec![(simple("b"), simple("c"))], simple("v")))],
                int(1),
            ),
        ),
        (
            b"|1\r\n+a\r\n+b\r\n|1\r\n+c\r\n+d\r\n*0\r\n",
            attr(
                vec![(simple("a"), simple("b"))],
                attr(vec![(simple("c"), simple("d"))], arr(vec![])),
            ),
        ),
        (
            b"|1\r\n+a\r\n+b\r\n>2\r\n+message\r\n+x\r\n",
            attr(vec![(simple("a"), simple("b"))], push("message", vec![simple("x")])),
        ),
        (
            b"%1\r\n|1\r\n+k\r\n+v\r\n+key\r\n:5\r\n",
            map(vec![(attr(vec![(simple("k"), simple("v"))], simple("key")), int(5))]),
        ),
        // Pushes.
        (
            b">3\r\n+message\r\n+channel\r\n+hello\r\n",
            push("message", vec![simple("channel"), simple("hello")]),
        ),
        (b">1\r\n$10\r\ninvalidate\r\n", push("invalidate", vec![])),
        (
            b">2\r\n$10\r\ninvalidate\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n",
            push("invalidate", vec![arr(vec![bulk(b"a"), bulk(b"b")])]),
        ),
        (
            b">4\r\n$8\r\npmessage\r\n$2\r\nh*\r\n$5\r\nhello\r\n$0\r\n\r\n",
            push("pmessage", vec![bulk(b"h*"), bulk(b"hello"), bulk(b"")]),
        ),
        // Streamed strings.
        (b"$?\r\n;4\r\nHell\r\n;5\r\no wor\r\n;2\r\nld\r\n;0\r\n", bulk(b"Hello world")),
        (b"$?\r\n;0\r\n", bulk(b"")),
        (b"$?\r\n;2\r\n\r\n\r\n;0\r\n", bulk(b"\r\n")),
        (
            b"*2\r\n$?\r\n;1\r\na\r\n;0\r\n:5\r\n",
            arr(vec![bulk(b"a"), int(5)]),
        ),
        // Streamed aggregates.
        (b"*?\r\n:1\r\n:2\r\n.\r\n", arr(vec![int(1), int(2)])),
        (b"*?\r\n.\r\n", arr(vec![])),
        (b"~?\r\n+a\r\n.\r\n", set(vec![simple("a")])),
        (
            b"%?\r\n+a\r\n:1\r\n+b\r\n:2\r\n.\r\n",
            map(vec![(simple("a"), int(1)), (simple("b"), int(2))]),
        ),
        (b"|?\r\n+a\r\n:1\r\n.\r\n+v\r\n", attr(vec![(simple("a"), int(1))], simple("v"))),
        (
            b"*?\r\n*?\r\n:1\r\n.\r\n$?\r\n;1\r\nx\r\n;0\r\n*1\r\n_\r\n.\r\n",
            arr(vec![arr(vec![int(1)]), bulk(b"x"), arr(vec![Value::Nil])]),
        ),
    ]
}

fn malformed_vectors() -> Vec<&'static [u8]> {
    vec![
        // Unknown type bytes.
        b"A\r\n",
        b"@foo\r\n",
        b"\x00",
        b"\r\n",
        b"*1\r\nX\r\n",
        // CR/LF discipline and UTF-8 in lines.
        b"+OK\rX",
        b"+OK\n",
        b"+a\nb\r\n",
        b"+OK\r\r\n",
        b":1\n",
        // Integers.
        b":12a\r\n",
        b":\r\n",
        b":-\r\n",
        b":+5\r\n",
        // Non-canonical integers and lengths (issue 9, item 4): servers never write them.
        b":-0\r\n",
        b":007\r\n",
        b":01\r\n",
        b":-01\r\n",
        b":00\r\n",
        b"$03\r\nabc\r\n",
        b"$00\r\n\r\n",
        b"*02\r\n:1\r\n:2\r\n",
        b"*00\r\n",
        b"%01\r\n:1\r\n:1\r\n",
        b"~01\r\n:1\r\n",
        b"|01\r\n+a\r\n+b\r\n:1\r\n",
        b">02\r\n+m\r\n:1\r\n",
        b"!03\r\nERR\r\n",
        b"=08\r\ntxt:abcd\r\n",
        b"$?\r\n;01\r\na\r\n;0\r\n",
        b"*1\r\n:-0\r\n",
        b"*2\r\n:1\r\n$01\r\na\r\n",
        b"*3\r\n:1\r\n:2\r\n:0012345678\r\n",
        b"$012345678\r\n",
        // Doubles outside the RESP3 grammar (issue 9, item 5).
        b",.5\r\n",
        b",-.5\r\n",
        b",1.\r\n",
        b",INF\r\n",
        b",-Inf\r\n",
        b",NaN\r\n",
        b",1e999\r\n",
        b": 5\r\n",
        b":5 \r\n",
        b":1.0\r\n",
        b":--1\r\n",
        b":9223372036854775808\r\n",
        b":-9223372036854775809\r\n",
        b":99999999999999999999999\r\n",
        // Bulk strings.
        b"$3\r\nabcd\r\n",
        b"$3\r\nab\r\n",
        b"$3\r\nabcXY",
        b"$3\r\nabc\rX",
        b"$-2\r\n",
        b"$-0\r\n",
        b"$+3\r\nabc\r\n",
        b"$ 3\r\nabc\r\n",
        b"$\r\n",
        b"$3x\r\n",
        b"$99999999999999999999999\r\n",
        // Arrays.
        b"*-2\r\n",
        b"*x\r\n",
        b"*+1\r\n:1\r\n",
        b"*\r\n",
        b"*1\r\n:x\r\n",
        b"*2\r\n:1\r\n$3\r\nab\r\n",
        // Null, boolean, double, big number.
        b"_x\r\n",
        b"#x\r\n",
        b"#\r\n",
        b"#tt\r\n",
        b"#T\r\n",
        b",abc\r\n",
        b",\r\n",
        b",1.2.3\r\n",
        b",1e\r\n",
        b", 1\r\n",
        b",infinity\r\n",
        b",.\r\n",
        b"(12a\r\n",
        b"(\r\n",
        b"(-\r\n",
        b"(+1\r\n",
        b"(1.5\r\n",
        // Verbatim strings and bulk errors.
        b"=5\r\nab:cd\r\n",
        b"=3\r\ntxt\r\n",
        b"=4\r\ntxt;\r\n",
        b"=-1\r\n",
        b"=?\r\n",
        b"=5\r\n\xff\xfe\xfd:x\r\n",
        b"!-1\r\n",
        b"!3\r\nabcd\r\n",
        b"!?\r\n",
        // Maps, sets, attributes.
        b"%1\r\n+a\r\n.\r\n",
        b"%-1\r\n",
        b"%x\r\n",
        b"~-1\r\n",
        b"|-1\r\n",
        b"%1\r\n+a\r\n:x\r\n",
        // Pushes.
        b">0\r\n",
        b">-1\r\n",
        b">?\r\n",
        b"*1\r\n>1\r\n+message\r\n",
        b"%1\r\n>1\r\n+a\r\n:1\r\n",
        b"~1\r\n>1\r\n+m\r\n",
        b"|1\r\n>1\r\n+m\r\n+v\r\n+x\r\n",
        b">2\r\n+m\r\n>1\r\n+x\r\n",
        b">1\r\n:1\r\n",
        b">2\r\n*0\r\n:1\r\n",
        b">1\r\n$2\r\n\xff\xfe\r\n",
        // Streamed strings and aggregates.
        b"$?\r\n+a\r\n",
        b"$?\r\n;-1\r\n",
        b"$?\r\n;2\r\nabc\r\n",
        b"$?\r\n;?\r\n",
        b"$?\r\n;\r\n",
        b";1\r\na\r\n",
        b".\r\n",
        b"*1\r\n.\r\n",
        b"%?\r\n+a\r\n.\r\n",
        b"*?\r\n.x\r\n",
    ]
}

// ---------------------------------------------------------------------------------------
// Table-driven tests

#[test]
fn valid_vectors_decode_in_every_split() {
    let l = lim();
    for (wire, want) in valid_vectors() {
        check_valid(wire, &want, &l);
    }
}

#[test]
fn malformed_vectors_are_protocol_errors() {
    let l = lim();
    for wire in malformed_vectors() {
        check_malformed(wire, &l);
    }
}

#[test]
fn error_details_name_the_problem() {
    let l = limits(|l| l.max_bulk_len = 536_870_912);
    let e = assert_limit(
        decode(b"$600000000\r\n", &l),
        valkit::Limit::BulkLen,
        "bulk",
    );
    assert!(e.detail().contains("600000000"), "{}", e.detail());
    assert!(
        e.detail().contains("max_bulk_len 536870912"),
        "{}",
        e.detail()
    );
    let e = assert_protocol(decode(b":12a\r\n", &l), "int");
    assert!(
        e.detail().contains("invalid integer line"),
        "{}",
        e.detail()
    );
    let e = assert_protocol(decode(b"A\r\n", &l), "type");
    assert!(
        e.detail().contains("unknown type byte 0x41"),
        "{}",
        e.detail()
    );
    let e = assert_protocol(decode(b"*1\r\n>1\r\n+m\r\n", &l), "push");
    assert!(e.detail().contains("push"), "{}", e.detail());
}

#[test]
fn server_errors_are_values_not_failures() {
    let mut d = Decoder::new();
    d.feed(b"-LOADING Redis is loading\r\n!10\r\nBUSY x y z\r\n+after\r\n");
    let v = d.next_value().unwrap().unwrap();
    match v {
        Value::Error(e) => assert_eq!(e.kind(), valkit::ServerErrorKind::Loading),
        other => panic!("{other:?}"),
    }
    assert_eq!(d.next_value().unwrap(), Some(err("BUSY x y z")));
    assert_eq!(d.next_value().unwrap(), Some(simple("after")));
}

#[test]
fn errors_are_detected_before_the_frame_is_complete() {
    let l = lim();
    // An unknown type byte or a bad CRLF fails with the bytes at hand, not later.
    assert_protocol(decode(b"A", &l), "type byte alone");
    assert_protocol(decode(b"+OK\rX", &l), "CR then X");
    assert_protocol(decode(b"$3\r\nabcX", &l), "bad bulk terminator");
    assert_protocol(decode(b"*5\r\n:1\r\n:x\r\n", &l), "bad element");
    // Line length: fails as soon as the limit is crossed, without any CRLF.
    let small = limits(|l| l.max_line_len = 8);
    assert_eq!(decode(b"+12345678", &small).unwrap(), None);
    assert_limit(
        decode(b"+123456789", &small),
        valkit::Limit::LineLen,
        "line over limit",
    );
    assert_eq!(
        decode(b"+12345678\r\n", &small).unwrap(),
        Some((simple("12345678"), 11))
    );
    let mut d = Decoder::with_limits(small);
    d.feed(b"+1234");
    assert_eq!(d.next_value().unwrap(), None);
    d.feed(b"56789");
    assert_limit(
        d.next_value(),
        valkit::Limit::LineLen,
        "incremental line over limit",
    );
}

// ---------------------------------------------------------------------------------------
// Pipelining and buffers

#[test]
fn pipelined_frames_come_out_one_by_one() {
    let l = lim();
    let wire = b"+OK\r\n:1\r\n";
    assert_eq!(decode(wire, &l).unwrap(), Some((simple("OK"), 5)));
    assert_eq!(decode(&wire[5..], &l).unwrap(), Some((int(1), 4)));

    let mut d = Decoder::new();
    d.feed(b"+OK\r\n:1\r\n*2\r\n:1\r\n");
    assert_eq!(d.next_value().unwrap(), Some(simple("OK")));
    assert_eq!(d.buffered(), 12);
    assert_eq!(d.next_value().unwrap(), Some(int(1)));
    assert_eq!(d.next_value().unwrap(), None);
    assert_eq!(d.buffered(), 8);
    assert!(d.is_mid_frame());
    d.feed(b":2\r\n$1\r\nx\r\n");
    assert_eq!(d.next_value().unwrap(), Some(arr(vec![int(1), int(2)])));
    assert_eq!(d.next_value().unwrap(), Some(bulk(b"x")));
    assert_eq!(d.next_value().unwrap(), None);
    assert_eq!(d.buffered(), 0);
    assert!(!d.is_mid_frame());
}

#[test]
fn all_valid_vectors_pipelined_in_one_feed() {
    let vectors = valid_vectors();
    let mut wire = Vec::new();
    for (w, _) in &vectors {
        wire.extend_from_slice(w);
    }
    let mut d = Decoder::new();
    d.feed(&wire);
    for (w, want) in &vectors {
        let v = d.next_value().unwrap().unwrap();
        assert_same!(v, *want, "{}", w.escape_ascii());
    }
    assert_eq!(d.next_value().unwrap(), None);
    assert_eq!(d.buffered(), 0);
    // And one-shot, advancing by the consumed count.
    let l = lim();
    let mut at = 0;
    for (w, want) in &vectors {
        let (v, n) = decode(&wire[at..], &l).unwrap().unwrap();
        assert_same!(v, *want, "{}", w.escape_ascii());
        assert_eq!(n, w.len());
        at += n;
    }
    assert_eq!(at, wire.len());
}

#[test]
fn memory_does_not_grow_across_many_frames() {
    let mut d = Decoder::new();
    let frame = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n";
    let start = live_bytes();
    let mut peak = 0isize;
    for i in 0..100_000usize {
        // Feed in uneven pieces that straddle frames.
        let cut = i % frame.len();
        d.feed(&frame[..cut]);
        let _ = d.next_value().unwrap();
        d.feed(&frame[cut..]);
        while let Some(v) = d.next_value().unwrap() {
            assert_eq!(v.as_slice().map(<[Value]>::len), Some(3));
        }
        peak = peak.max(live_bytes() - start);
    }
    assert_eq!(d.buffered(), 0);
    assert!(peak < 16 * 1024, "decoder held {peak} bytes");
}

#[test]
fn many_frames_in_one_feed_are_compacted() {
    // 50,000 frames fed at once; taking them one by one must stay linear (the buffer is
    // drained in amortized steps, not after every frame).
    let mut wire = Vec::new();
    for i in 0..50_000 {
        wire.extend_from_slice(format!(":{i}\r\n").as_bytes());
    }
    let t = std::time::Instant::now();
    let mut d = Decoder::new();
    d.feed(&wire);
    for i in 0..50_000 {
        assert_eq!(d.next_value().unwrap(), Some(int(i)));
    }
    assert_eq!(d.buffered(), 0);
    assert!(t.elapsed().as_secs() < 10);
}

#[test]
fn large_frames_fed_in_small_pieces_stay_linear() {
    // A 200,000-element array and an 8 MiB bulk, fed 7 bytes / 4 KiB at a time with a
    // next_value() after every piece: quadratic re-scanning would take minutes here.
    let mut wire = b"*200000\r\n".to_vec();
    for i in 0..200_000 {
        wire.extend_from_slice(format!("${}\r\n{i}\r\n", i.to_string().len()).as_bytes());
    }
    let t = std::time::Instant::now();
    let mut d = Decoder::new();
    let mut got = None;
    for piece in wire.chunks(7) {
        d.feed(piece);
        if let Some(v) = d.next_value().unwrap() {
            got = Some(v);
        }
    }
    let got = got.expect("array decoded");
    assert_eq!(got.as_slice().map(<[Value]>::len), Some(200_000));

    let data = vec![b'x'; 8 << 20];
    let mut wire = format!("${}\r\n", data.len()).into_bytes();
    wire.extend_from_slice(&data);
    wire.extend_from_slice(b"\r\n");
    let mut d = Decoder::new();
    let mut got = None;
    let ((), allocated) = allocated_during(|| {
        for piece in wire.chunks(4096) {
            d.feed(piece);
            if let Some(v) = d.next_value().unwrap() {
                got = Some(v);
            }
        }
    });
    assert_eq!(got, Some(Value::Bulk(data.into())));
    // Growing by doubling: well under 4x the payload in total allocations.
    assert!(allocated < 4 * (8 << 20), "allocated {allocated}");
    assert!(t.elapsed().as_secs() < 20, "took {:?}", t.elapsed());
}

// ---------------------------------------------------------------------------------------
// Hostile lengths and nesting

#[test]
fn hostile_bulk_length_allocates_nothing() {
    // 4 GiB is over the default 512 MiB limit: an error straight from the header.
    assert_limit(
        decode(b"$4294967296\r\n", &lim()),
        valkit::Limit::BulkLen,
        "4 GiB default limits",
    );
    let mut d = Decoder::new();
    d.feed(b"$4294967296\r\n");
    assert_limit(d.next_value(), valkit::Limit::BulkLen, "4 GiB decoder");
    // A failed decoder keeps saying why.
    assert_limit(
        d.next_value(),
        valkit::Limit::BulkLen,
        "4 GiB decoder, again",
    );

    // Within the limits (default 512 MiB exactly, or a raised limit): incomplete, tiny memory.
    let raised = limits(|l| l.max_bulk_len = usize::MAX);
    for (wire, l) in [
        (&b"$536870912\r\n"[..], lim()),
        (b"$4294967296\r\n", raised),
        (b"$4294967296\r\nabc", raised),
        (b"=4294967296\r\n", raised),
        (b"!4294967296\r\n", raised),
    ] {
        let (r, n) = allocated_during(|| decode(wire, &l).unwrap());
        assert!(r.is_none());
        assert!(n < 1024, "one-shot {} allocated {n}", wire.escape_ascii());
        let mut d = Decoder::with_limits(l);
        d.feed(wire);
        let (r, n) = allocated_during(|| d.next_value().unwrap());
        assert!(r.is_none());
        assert!(n < 1024, "decoder {} allocated {n}", wire.escape_ascii());
        assert_eq!(d.buffered(), wire.len());
        assert!(d.is_mid_frame());
    }
    // A streamed string whose chunks would overflow the total.
    let small = limits(|l| l.max_bulk_len = 10);
    assert_limit(
        decode(b"$?\r\n;6\r\nabcdef\r\n;5\r\n", &small),
        valkit::Limit::BulkLen,
        "streamed total",
    );
}

#[test]
fn hostile_aggregate_length_allocates_nothing() {
    for wire in [
        &b"*10000000\r\n"[..],
        b"%10000000\r\n",
        b"~10000000\r\n",
        b">10000000\r\n",
        b"|10000000\r\n",
        b"*10000000\r\n:1\r\n",
        b"%10000000\r\n:1\r\n:1\r\n",
    ] {
        let (r, n) = allocated_during(|| decode(wire, &lim()).unwrap());
        assert!(r.is_none());
        assert!(n < 1024 * 1024, "{} allocated {n}", wire.escape_ascii());
        let mut d = Decoder::new();
        d.feed(wire);
        let (r, n) = allocated_during(|| d.next_value().unwrap());
        assert!(r.is_none());
        assert!(n < 1024 * 1024, "{} allocated {n}", wire.escape_ascii());
    }
    // 128 nested huge headers (the default depth): still almost nothing.
    let wire = b"*16000000\r\n".repeat(128);
    let (r, n) = allocated_during(|| decode(&wire, &lim()).unwrap());
    assert!(r.is_none());
    assert!(n < 64 * 1024, "nested headers allocated {n}");
    // Over the default 2^24 elements: a limit error from the header.
    assert_limit(
        decode(b"*16777217\r\n", &lim()),
        valkit::Limit::AggregateLen,
        "array over limit",
    );
    assert_limit(
        decode(b"%16777217\r\n", &lim()),
        valkit::Limit::AggregateLen,
        "map over limit",
    );
    assert_limit(
        decode(b"*18446744073709551615\r\n", &lim()),
        valkit::Limit::AggregateLen,
        "u64 max",
    );
    assert_protocol(decode(b"%18446744073709551616\r\n", &lim()), "overflow");
}

fn nested(depth: usize, leaf: &[u8]) -> Vec<u8> {
    let mut v = b"*1\r\n".repeat(depth);
    v.extend_from_slice(leaf);
    v
}

/// Run `f` in a thread with a normal 2 MiB stack.
fn on_small_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    on_small_stack(|| {
        for depth in [129, 10_000, 100_000] {
            let wire = nested(depth, b":1\r\n");
            assert_limit(
                decode(&wire, &lim()),
                valkit::Limit::Depth,
                &format!("depth {depth}"),
            );
            let mut d = Decoder::new();
            d.feed(&wire);
            assert_limit(d.next_value(), valkit::Limit::Depth, "decoder");
            // Incomplete deep prefixes fail as well once the limit is crossed.
            let wire = b"%1\r\n~1\r\n|1\r\n>1\r\n".repeat(depth / 4 + 1);
            assert_protocol(decode(&wire, &lim()), "mixed");
        }
        let wire = nested(128, b":1\r\n");
        assert!(decode(&wire, &lim()).unwrap().is_some());
    });
}

#[test]
fn depth_is_capped_so_values_drop_safely() {
    assert_eq!(Limits::HARD_MAX_DEPTH, 1000);
    on_small_stack(|| {
        let l = limits(|l| l.max_depth = usize::MAX);
        let cap = Limits::HARD_MAX_DEPTH;
        let (v, _) = decode(&nested(cap, b":1\r\n"), &l).unwrap().unwrap();
        drop(v); // recursive Drop of the deepest value the decoder builds
        assert_limit(
            decode(&nested(cap + 1, b":1\r\n"), &l),
            valkit::Limit::Depth,
            "over hard cap",
        );
        let mut mixed = b"%1\r\n:0\r\n|1\r\n+a\r\n+b\r\n~1\r\n".repeat(cap / 3);
        mixed.extend_from_slice(&nested(cap - 3 * (cap / 3), b":1\r\n"));
        let (v, _) = decode(&mixed, &l).unwrap().unwrap();
        let v2 = v.clone();
        assert!(v == v2);
        drop(v);
        drop(v2);
    });
}

// ---------------------------------------------------------------------------------------
// Configurable limits: accepted at the limit, rejected one past it.

#[test]
fn bulk_limit_is_exact() {
    let l = limits(|l| l.max_bulk_len = 10);
    check_valid(b"$10\r\n0123456789\r\n", &bulk(b"0123456789"), &l);
    check_valid(b"!10\r\nERR 456789\r\n", &err("ERR 456789"), &l);
    check_valid(b"=10\r\ntxt:456789\r\n", &verb("txt", b"456789"), &l);
    check_valid(
        b"$?\r\n;4\r\n0123\r\n;6\r\n456789\r\n;0\r\n",
        &bulk(b"0123456789"),
        &l,
    );
    check_valid(
        b"*2\r\n:1\r\n$10\r\n0123456789\r\n",
        &arr(vec![int(1), bulk(b"0123456789")]),
        &l,
    );
    for wire in [
        &b"$11\r\n"[..],
        b"*2\r\n:1\r\n$11\r\n01234567890\r\n",
        b"!11\r\n",
        b"=11\r\n",
        b"$?\r\n;4\r\n0123\r\n;7\r\n",
        b"$?\r\n;11\r\n",
    ] {
        assert_limit(
            decode(wire, &l),
            valkit::Limit::BulkLen,
            &wire.escape_ascii().to_string(),
        );
    }
}

#[test]
fn aggregate_limit_is_exact() {
    let l = limits(|l| l.max_aggregate_len = 3);
    check_valid(
        b"*3\r\n:1\r\n:2\r\n:3\r\n",
        &arr(vec![int(1), int(2), int(3)]),
        &l,
    );
    check_valid(
        b"~3\r\n:1\r\n:2\r\n:3\r\n",
        &set(vec![int(1), int(2), int(3)]),
        &l,
    );
    check_valid(
        b"%3\r\n:1\r\n:1\r\n:2\r\n:2\r\n:3\r\n:3\r\n",
        &map(vec![(int(1), int(1)), (int(2), int(2)), (int(3), int(3))]),
        &l,
    );
    check_valid(
        b">3\r\n+m\r\n:1\r\n:2\r\n",
        &push("m", vec![int(1), int(2)]),
        &l,
    );
    check_valid(
        b"*?\r\n:1\r\n:2\r\n:3\r\n.\r\n",
        &arr(vec![int(1), int(2), int(3)]),
        &l,
    );
    for wire in [
        &b"*4\r\n"[..],
        b"~4\r\n",
        b"%4\r\n",
        b"|4\r\n",
        b">4\r\n",
        b"*?\r\n:1\r\n:2\r\n:3\r\n:4\r\n",
        b"%?\r\n:1\r\n:1\r\n:2\r\n:2\r\n:3\r\n:3\r\n:4\r\n:4\r\n",
    ] {
        assert_limit(
            decode(wire, &l),
            valkit::Limit::AggregateLen,
            &wire.escape_ascii().to_string(),
        );
    }
}

#[test]
fn depth_limit_is_exact() {
    let l = limits(|l| l.max_depth = 3);
    check_valid(
        &nested(3, b":1\r\n"),
        &arr(vec![arr(vec![arr(vec![int(1)])])]),
        &l,
    );
    check_valid(
        &nested(2, b"*0\r\n"),
        &arr(vec![arr(vec![arr(vec![])])]),
        &l,
    );
    // Maps, sets and attributes count.
    check_valid(
        b"%1\r\n:1\r\n~1\r\n|1\r\n+a\r\n+b\r\n:2\r\n",
        &map(vec![(
            int(1),
            set(vec![attr(vec![(simple("a"), simple("b"))], int(2))]),
        )]),
        &l,
    );
    for wire in [
        nested(4, b":1\r\n"),
        nested(3, b"*0\r\n"),
        nested(3, b"%0\r\n"),
        b"%1\r\n:1\r\n~1\r\n|1\r\n+a\r\n+b\r\n*1\r\n:2\r\n".to_vec(),
        b"|1\r\n+a\r\n+b\r\n>1\r\n*1\r\n*1\r\n:1\r\n".to_vec(),
        nested(3, b"*?\r\n"),
    ] {
        assert_limit(
            decode(&wire, &l),
            valkit::Limit::Depth,
            &wire.escape_ascii().to_string(),
        );
    }
}

#[test]
fn line_limit_is_exact() {
    let l = limits(|l| l.max_line_len = 5);
    check_valid(b"+abcde\r\n", &simple("abcde"), &l);
    check_valid(b":12345\r\n", &int(12345), &l);
    check_valid(b"*1\r\n-E 45\r\n", &arr(vec![err("E 45")]), &l);
    // Inside arrays too (the array fast path honours the limit).
    check_valid(
        b"*2\r\n:-1234\r\n$3\r\nabc\r\n",
        &arr(vec![int(-1234), bulk(b"abc")]),
        &l,
    );
    for wire in [
        &b"+abcdef\r\n"[..],
        b":123456\r\n",
        b"*1\r\n-E 4567\r\n",
        b"(123456",
        b"*2\r\n:1\r\n:123456\r\n",
        b"*2\r\n:1\r\n:-12345\r\n",
        b"*1\r\n$123456\r\n",
    ] {
        assert_limit(
            decode(wire, &l),
            valkit::Limit::LineLen,
            &wire.escape_ascii().to_string(),
        );
    }
}

// ---------------------------------------------------------------------------------------
// Failed state, reset

#[test]
fn decoder_stays_failed_after_an_error() {
    let mut d = Decoder::new();
    d.feed(b"+OK\r\n:x\r\n+after\r\n");
    assert_eq!(d.next_value().unwrap(), Some(simple("OK")));
    assert_protocol(d.next_value(), "first error");
    assert!(d.is_failed());
    for _ in 0..3 {
        let e = assert_protocol(d.next_value(), "still failed");
        assert!(
            e.detail().contains("invalid integer line"),
            "{}",
            e.detail()
        );
    }
    d.feed(b"+OK\r\n");
    assert_protocol(d.next_value(), "after feeding valid bytes");
    assert_eq!(d.buffered(), 0);

    d.reset();
    assert!(!d.is_failed());
    d.feed(b"+OK\r\n");
    assert_eq!(d.next_value().unwrap(), Some(simple("OK")));
}

#[test]
fn reset_drops_a_partial_frame() {
    let l = limits(|l| l.max_depth = 2);
    let mut d = Decoder::with_limits(l);
    d.feed(b"*2\r\n$5\r\nab");
    assert_eq!(d.next_value().unwrap(), None);
    assert!(d.is_mid_frame());
    d.reset();
    assert!(!d.is_mid_frame());
    assert_eq!(d.limits().max_depth, 2);
    d.feed(b":5\r\n");
    assert_eq!(d.next_value().unwrap(), Some(int(5)));
}

// ---------------------------------------------------------------------------------------
// Round trips: decode(encode(v)) == v, whole and in chunks.

/// xorshift64*: deterministic, no crates.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn bytes(&mut self, max: u64) -> Vec<u8> {
        let n = self.below(max + 1);
        (0..n)
            .map(|_| match self.below(4) {
                0 => b"\r\n\0"[self.below(3) as usize],
                _ => self.below(256) as u8,
            })
            .collect()
    }
    fn text(&mut self, max: u64, crlf: bool) -> String {
        let n = self.below(max + 1);
        (0..n)
            .map(|_| match self.below(8) {
                0 if crlf => ['\r', '\n'][self.below(2) as usize],
                1 => ['\u{e9}', '\u{1f600}', ' '][self.below(3) as usize],
                _ => (b'a' + self.below(26) as u8) as char,
            })
            .collect()
    }
}

fn gen_value(r: &mut Rng, depth: u32) -> Value {
    let scalar = depth == 0 || r.below(3) != 0;
    if scalar {
        match r.below(10) {
            0 => Value::Nil,
            1 => Value::Simple(r.text(12, false).into()),
            2 => Value::Error(ServerError::new(r.text(12, true))),
            3 => Value::Int(match r.below(3) {
                0 => [i64::MIN, i64::MAX, 0, -1][r.below(4) as usize],
                _ => r.next() as i64 >> r.below(64),
            }),
            4 => Value::Bulk(r.bytes(20).into()),
            5 => Value::Bool(r.below(2) == 0),
            6 => Value::Double(match r.below(4) {
                0 => [
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                    0.0,
                    -0.0,
                    f64::MAX,
                    f64::MIN_POSITIVE,
                ][r.below(6) as usize],
                1 => (r.next() as i64 >> r.below(64)) as f64,
                _ => {
                    let d = f64::from_bits(r.next());
                    if d.is_nan() {
                        1.5
                    } else {
                        d
                    }
                }
            }),
            7 => {
                let digits: String = (0..=r.below(40))
                    .map(|_| (b'0' + r.below(10) as u8) as char)
                    .collect();
                Value::BigNumber(if r.below(2) == 0 {
                    format!("-{digits}")
                } else {
                    digits
                })
            }
            8 => Value::Verbatim {
                format: ["txt", "mkd", "xyz"][r.below(3) as usize].into(),
                text: r.bytes(20).into(),
            },
            _ => Value::Bulk(Vec::new().into()),
        }
    } else {
        let n = r.below(5);
        let items = |r: &mut Rng| (0..n).map(|_| gen_value(r, depth - 1)).collect::<Vec<_>>();
        let pairs = |r: &mut Rng| {
            (0..n)
                .map(|_| (gen_value(r, depth - 1), gen_value(r, depth - 1)))
                .collect::<Vec<_>>()
        };
        match r.below(4) {
            0 => Value::Array(items(r)),
            1 => Value::Set(items(r)),
            2 => Value::Map(pairs(r)),
            _ => Value::Attribute {
                attributes: pairs(r),
                value: Box::new(gen_value(r, depth - 1)),
            },
        }
    }
}

/// A top-level value: anything, or a push (pushes are only valid at the top).
fn gen_top(r: &mut Rng) -> Value {
    match r.below(6) {
        0 => Value::Push {
            kind: ["message", "invalidate", "pmessage"][r.below(3) as usize].into(),
            data: (0..r.below(4)).map(|_| gen_value(r, 3)).collect(),
        },
        _ => gen_value(r, 4),
    }
}

fn hand_built() -> Vec<Value> {
    vec![
        Value::Nil,
        simple("OK"),
        simple(""),
        err("ERR x"),
        err("ERR multi\r\nline"),
        err(""),
        int(i64::MIN),
        int(i64::MAX),
        bulk(b""),
        bulk(b"\r\n\0\xff"),
        arr(vec![]),
        arr(vec![Value::Nil, arr(vec![int(1)]), map(vec![])]),
        Value::Bool(true),
        dbl(0.1),
        dbl(-0.0),
        dbl(1e300),
        dbl(5e-324),
        dbl(f64::INFINITY),
        dbl(f64::NEG_INFINITY),
        dbl(f64::NAN),
        big("-123456789012345678901234567890"),
        verb("txt", b""),
        verb("mkd", b"# t\r\nx"),
        map(vec![
            (arr(vec![]), set(vec![Value::Bool(false)])),
            (dbl(2.0), Value::Nil),
        ]),
        set(vec![]),
        attr(vec![], int(1)),
        attr(
            vec![(simple("a"), int(1))],
            attr(vec![], push("message", vec![])),
        ),
        push("invalidate", vec![arr(vec![bulk(b"k1"), bulk(b"k2")])]),
        push("message", vec![bulk(b"ch"), bulk(b"payload")]),
    ]
}

fn roundtrip_one(v: &Value) {
    let mut wire = Vec::new();
    encode_value(&mut wire, v);
    let (got, n) = decode(&wire, &lim())
        .unwrap_or_else(|e| panic!("{v:?} -> {}: {e}", wire.escape_ascii()))
        .unwrap_or_else(|| panic!("{v:?}: incomplete"));
    assert_same!(got, *v, "round trip of {}", wire.escape_ascii());
    assert_eq!(n, wire.len());
}

#[test]
fn roundtrip_hand_built_values() {
    for v in hand_built() {
        roundtrip_one(&v);
        let mut wire = Vec::new();
        encode_value(&mut wire, &v);
        check_valid(&wire, &v, &lim());
    }
}

#[test]
fn roundtrip_generated_values_whole_and_chunked() {
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..60 {
        let values: Vec<Value> = (0..50).map(|_| gen_top(&mut r)).collect();
        let mut wire = Vec::new();
        for v in &values {
            roundtrip_one(v);
            encode_value(&mut wire, v);
        }
        // The whole batch, fed in chunks of varying size (1..=64, sometimes bigger).
        let mut d = Decoder::new();
        let mut got = Vec::new();
        let mut at = 0;
        while at < wire.len() {
            let size = match r.below(10) {
                0 => 1 + r.below(4096),
                _ => 1 + r.below(64),
            } as usize;
            let end = (at + size).min(wire.len());
            d.feed(&wire[at..end]);
            at = end;
            while let Some(v) = d.next_value().unwrap() {
                got.push(v);
            }
        }
        assert_eq!(got.len(), values.len(), "round {round}");
        for (g, v) in got.iter().zip(&values) {
            assert_same!(*g, *v, "round {round}");
        }
        assert_eq!(d.buffered(), 0);
    }
}

#[test]
fn roundtrip_generated_values_at_every_split() {
    let mut r = Rng(42);
    for _ in 0..40 {
        let v = gen_top(&mut r);
        let mut wire = Vec::new();
        encode_value(&mut wire, &v);
        if wire.len() < 600 {
            check_valid(&wire, &v, &lim());
        }
    }
}

// ---------------------------------------------------------------------------------------
// One buffer per reply: bulk strings are views, not copies

/// The bulk strings of an array, as slices.
fn bulk_slices(v: &Value) -> Vec<&[u8]> {
    v.as_slice()
        .unwrap()
        .iter()
        .map(|x| x.as_bytes().unwrap())
        .collect()
}

/// True when each slice starts `stride` bytes after the previous one: they are views of one
/// buffer laid out as on the wire.
fn laid_out_as_on_the_wire(s: &[&[u8]], stride: usize) -> bool {
    s.windows(2)
        .all(|w| w[1].as_ptr() as usize == w[0].as_ptr() as usize + stride)
}

fn mget_wire(n: usize, len: usize) -> Vec<u8> {
    let mut wire = format!("*{n}\r\n").into_bytes();
    for i in 0..n {
        wire.extend_from_slice(format!("${len}\r\n").as_bytes());
        wire.extend(std::iter::repeat(b'a' + (i % 26) as u8).take(len));
        wire.extend_from_slice(b"\r\n");
    }
    wire
}

#[test]
fn bulk_strings_of_a_reply_share_one_buffer() {
    let wire = mget_wire(100, 32);
    let stride = 32 + 2 + 5; // body, CRLF, "$32\r\n"

    // Decoder: views into its own buffer, nothing copied. (The first reply grows the
    // decoder's reused tape; the second is measured.)
    let mut d = Decoder::new();
    d.feed(&wire);
    d.feed(&wire);
    drop(d.next_value().unwrap().unwrap());
    let (v, n) = allocated_during(|| d.next_value().unwrap().unwrap());
    let s = bulk_slices(&v);
    assert_eq!(s.len(), 100);
    assert!(s
        .iter()
        .enumerate()
        .all(|(i, b)| b.len() == 32 && b[0] == b'a' + (i % 26) as u8));
    assert!(laid_out_as_on_the_wire(&s, stride));
    // The element vector and the parse stack only: no byte of the payload was copied.
    assert!(
        n <= 100 * std::mem::size_of::<Value>() + 1024,
        "decoder allocated {n}"
    );

    // One-shot decode: one copy of the frame for all its strings.
    let (w, used) = decode(&wire, &lim()).unwrap().unwrap();
    assert_eq!(used, wire.len());
    assert_eq!(w, v);
    assert!(laid_out_as_on_the_wire(&bulk_slices(&w), stride));

    // The same through the chunked path.
    let mut d = Decoder::new();
    let mut got = None;
    for piece in wire.chunks(7) {
        d.feed(piece);
        if let Some(x) = d.next_value().unwrap() {
            got = Some(x);
        }
    }
    assert_eq!(got.as_ref(), Some(&v));
}

#[test]
fn values_stay_intact_while_the_decoder_moves_on() {
    let mut wire = Vec::new();
    for i in 0..2000 {
        wire.extend_from_slice(format!("${}\r\n{}\r\n", i.to_string().len(), i).as_bytes());
        wire.extend_from_slice(b"*2\r\n$3\r\nabc\r\n:7\r\n+OK\r\n");
    }
    wire.extend_from_slice(&mget_wire(50, 40_000)); // past RETAINED_CAPACITY
    for chunk in [1, 5, 64, 4096, wire.len()] {
        let mut d = Decoder::new();
        let mut kept = Vec::new();
        for piece in wire.chunks(chunk) {
            if chunk % 2 == 0 {
                d.feed(piece);
            } else {
                d.read_with(piece.len(), |room| {
                    room[..piece.len()].copy_from_slice(piece);
                    Ok::<_, std::io::Error>(piece.len())
                })
                .unwrap();
            }
            while let Some(v) = d.next_value().unwrap() {
                kept.push(v);
            }
        }
        assert!(!d.is_mid_frame());
        drop(d);
        assert_eq!(kept.len(), 2000 * 3 + 1, "chunk {chunk}");
        for (i, three) in kept.chunks(3).take(2000).enumerate() {
            assert_eq!(three[0], bulk(i.to_string().as_bytes()), "chunk {chunk}");
            assert_eq!(three[1], arr(vec![bulk(b"abc"), int(7)]));
            assert_eq!(three[2], simple("OK"));
        }
        assert_eq!(
            Some(kept.last().unwrap()),
            decode(&mget_wire(50, 40_000), &lim())
                .unwrap()
                .map(|x| x.0)
                .as_ref()
        );
    }
}

#[test]
fn push_kind_and_verbatim_from_views() {
    let wire = b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n=9\r\ntxt:hello\r\n";
    let want = Value::Push {
        kind: "message".into(),
        data: vec![bulk(b"ch"), verb("txt", b"hello")],
    };
    assert_eq!(
        decode(wire, &lim()).unwrap(),
        Some((want.clone(), wire.len()))
    );
    let mut d = Decoder::new();
    d.feed(wire);
    assert_eq!(d.next_value().unwrap(), Some(want));
}

#[test]
fn bytes_into_vec_and_from_value() {
    let mut d = Decoder::new();
    d.feed(b"$5\r\nhello\r\n");
    let v = d.next_value().unwrap().unwrap();
    let Value::Bulk(b) = v.clone() else {
        panic!("{v:?}")
    };
    assert_eq!(b, b"hello");
    assert_eq!(format!("{b:?}"), "b\"hello\"");
    assert_eq!(
        <Vec<u8> as valkit::FromValue>::from_value(v.clone()).unwrap(),
        b"hello"
    );
    assert_eq!(
        <String as valkit::FromValue>::from_value(v.clone()).unwrap(),
        "hello"
    );
    let shared = <valkit::Bytes as valkit::FromValue>::from_value(v).unwrap();
    assert_eq!(shared, b);
    assert_eq!(b.into_vec(), b"hello".to_vec());
    assert_eq!(shared.into_vec(), b"hello".to_vec());
}

#[test]
fn feed_bytes_adopts_without_writing_into_shared_buffers() {
    let mut wire = mget_wire(3, 5);
    wire.extend_from_slice(b"+OK\r\n$3\r\nfoo\r\n");
    let want: Vec<Value> = {
        let mut d = Decoder::new();
        d.feed(&wire);
        std::iter::from_fn(|| d.next_value().unwrap()).collect()
    };
    assert_eq!(want.len(), 3);
    for cut in 0..=wire.len() {
        let (a, b) = wire.split_at(cut);
        let first = valkit::Bytes::from(a);
        let second = valkit::Bytes::from(b);
        let mut d = Decoder::new();
        let mut got = Vec::new();
        d.feed_bytes(first.clone());
        got.extend(std::iter::from_fn(|| d.next_value().unwrap()));
        if cut % 2 == 0 {
            d.feed_bytes(second.clone());
        } else {
            d.feed(&second);
        }
        got.extend(std::iter::from_fn(|| d.next_value().unwrap()));
        // More bytes after an adopted buffer: appended elsewhere, never into `second`.
        d.feed(b":9\r\n");
        got.extend(std::iter::from_fn(|| d.next_value().unwrap()));
        assert_eq!(got.last(), Some(&int(9)), "cut {cut}");
        got.pop();
        assert_eq!(got, want, "cut {cut}");
        assert_eq!(first, a);
        assert_eq!(second, b);
        assert!(!d.is_mid_frame());
    }
}

/// `Ok` values compared by `Debug` (NaN-safe enough for these types), errors by kind and
/// message: the frame path must give exactly what the `Value` path gives.
fn same_conversion<T: valkit::FromValue + std::fmt::Debug>(
    v: &Value,
    f: valkit::resp::Frame<'_>,
    what: &str,
) {
    let a = T::from_value(v.clone());
    let b = T::from_frame(f);
    match (&a, &b) {
        (Ok(x), Ok(y)) => assert_eq!(format!("{x:?}"), format!("{y:?}"), "{what} of {v:?}"),
        (Err(x), Err(y)) => {
            assert_eq!(x.kind(), y.kind(), "{what} of {v:?}");
            assert_eq!(x.detail(), y.detail(), "{what} of {v:?}");
        }
        _ => panic!("{what} of {v:?}: from_value {a:?}, from_frame {b:?}"),
    }
}

#[test]
fn frames_read_in_place_agree_with_values() {
    let mut r = Rng(0x51ed_2701_aa5c_9e11);
    let mut fixed = vec![
        Value::Nil,
        Value::Int(-7),
        Value::Bulk(b"42".into()),
        Value::Bulk(b"\xff\xfe".into()),
        Value::Simple("OK".into()),
        Value::Error(ServerError::new("ERR nope")),
        Value::Array(vec![Value::Bulk(b"a".into()), Value::Nil, Value::Int(3)]),
        Value::Array(vec![Value::Error(ServerError::new("WRONGTYPE x"))]),
        Value::Map(vec![(Value::Bulk(b"k".into()), Value::Int(1))]),
        Value::Attribute {
            attributes: vec![(Value::Simple("ttl".into()), Value::Int(9))],
            value: Box::new(Value::Bulk(b"v".into())),
        },
        Value::Push {
            kind: "message".into(),
            data: vec![Value::Bulk(b"ch".into()), Value::Bulk(b"hi".into())],
        },
        Value::Verbatim {
            format: "txt".into(),
            text: b"some text".into(),
        },
        Value::Double(1.5),
        Value::Bool(true),
        Value::BigNumber("-123456789012345678901234567890".into()),
    ];
    fixed.extend((0..400).map(|_| gen_top(&mut r)));
    let mut d = Decoder::new();
    for v in &fixed {
        let mut wire = Vec::new();
        encode_value(&mut wire, v);
        d.feed(&wire);
        let reply = d.next_reply().unwrap().expect("complete");
        assert_eq!(reply.wire_bytes(), &wire[..]);
        let f = reply.frame();
        assert_same!(f.to_value(), *v, "to_value");
        assert_eq!(f.type_name(), v.type_name());
        same_conversion::<Value>(v, f, "Value");
        same_conversion::<()>(v, f, "()");
        same_conversion::<Vec<u8>>(v, f, "Vec<u8>");
        same_conversion::<String>(v, f, "String");
        same_conversion::<i64>(v, f, "i64");
        same_conversion::<u16>(v, f, "u16");
        same_conversion::<Option<i64>>(v, f, "Option<i64>");
        same_conversion::<Option<Vec<u8>>>(v, f, "Option<Vec<u8>>");
        same_conversion::<Option<String>>(v, f, "Option<String>");
        same_conversion::<Vec<Option<Vec<u8>>>>(v, f, "Vec<Option<Vec<u8>>>");
        same_conversion::<Vec<Vec<u8>>>(v, f, "Vec<Vec<u8>>");
        same_conversion::<Vec<i64>>(v, f, "Vec<i64>");
        same_conversion::<Vec<Value>>(v, f, "Vec<Value>");
        same_conversion::<Option<Vec<Option<String>>>>(v, f, "Option<Vec<Option<String>>>");
        same_conversion::<(Vec<u8>, Option<i64>)>(v, f, "a pair");
    }
}

#[test]
fn next_reply_and_next_value_mix_on_one_stream() {
    let mut d = Decoder::new();
    d.feed(b"+OK\r\n*2\r\n$1\r\na\r\n:5\r\n$3\r\nxyz\r\n%1\r\n+k\r\n");
    assert_eq!(
        d.next_reply().unwrap().unwrap().frame().as_bytes(),
        Some(&b"OK"[..])
    );
    assert_eq!(
        d.next_value().unwrap(),
        Some(Value::Array(vec![Value::Bulk(b"a".into()), Value::Int(5)]))
    );
    let r = d.next_reply().unwrap().unwrap();
    assert_eq!(r.frame().as_bytes(), Some(&b"xyz"[..]));
    // A map cut after its key: not complete yet, then complete.
    assert!(d.next_reply().unwrap().is_none());
    assert!(d.is_mid_frame());
    d.feed(b":1\r\n");
    let r = d.next_reply().unwrap().unwrap();
    let items: Vec<_> = r.frame().iter().collect();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].as_bytes(), Some(&b"k"[..]));
    assert_eq!(items[1].as_int(), Some(1));
    assert!(!d.is_mid_frame());
    // Errors fail the decoder for both.
    d.feed(b"?\r\n");
    assert_eq!(d.next_reply().unwrap_err().kind(), ErrorKind::Protocol);
    assert_eq!(d.next_value().unwrap_err().kind(), ErrorKind::Protocol);
}

/// Issue 9, item 8: `+` and `-` lines that are not UTF-8 are legal replies (a server
/// echoes binary arguments, cuts an echo inside a character, runs scripts that return any
/// bytes): decoded lossily into the `Value`, kept as sent in the `Frame`, and the stream
/// goes on.
#[test]
fn non_utf8_status_and_error_lines_are_values() {
    let wire = b"+\xff\xfe ok\r\n-ERR '\xc3'\r\n*2\r\n+a\xe9\r\n-E \x80\r\n:1\r\n";
    for chunk in [1, 3, wire.len()] {
        let mut d = Decoder::new();
        let mut got = Vec::new();
        for piece in wire.chunks(chunk) {
            d.feed(piece);
            while let Some(v) = d.next_value().unwrap() {
                got.push(v);
            }
        }
        assert_eq!(
            got,
            vec![
                simple("\u{fffd}\u{fffd} ok"),
                err("ERR '\u{fffd}'"),
                arr(vec![simple("a\u{fffd}"), err("E \u{fffd}")]),
                int(1),
            ],
            "chunks of {chunk}"
        );
    }
    let mut d = Decoder::new();
    d.feed(b"+\xff\xfe ok\r\n");
    let reply = d.next_reply().unwrap().unwrap();
    assert_eq!(reply.frame().as_bytes(), Some(&b"\xff\xfe ok"[..]));
}
