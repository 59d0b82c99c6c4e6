//! Encoding and fallback tests with a fake [`Execute`]; real servers in `tests/script.rs`.

use super::*;
use crate::cmd::recorder::Recorder;
use crate::ServerError;

const SRC: &str = "return {KEYS[1], ARGV[1]}";

#[test]
fn sha1_matches_the_servers() {
    // `SCRIPT LOAD "return 1"` answers this on every server version.
    assert_eq!(
        Script::new("return 1").sha1_hex(),
        "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"
    );
    let owned = Script::new(String::from(SRC));
    assert_eq!(owned.sha1_hex(), Script::new(SRC).sha1_hex());
    assert_eq!(owned.source(), SRC);
}

#[test]
fn evalsha_counts_keys_and_keeps_args_apart() {
    let s = Script::new(SRC);
    let inv = s.key("k1").key(["k2", "k3"]).arg(7).arg(("x", "y"));
    let args: Vec<Vec<u8>> = inv.evalsha_cmd().args().map(<[u8]>::to_vec).collect();
    let want: Vec<&[u8]> = vec![
        b"EVALSHA",
        s.sha1_hex().as_bytes(),
        b"3",
        b"k1",
        b"k2",
        b"k3",
        b"7",
        b"x",
        b"y",
    ];
    assert_eq!(args, want);
    assert_eq!(inv.eval_cmd().args().nth(1), Some(SRC.as_bytes()));
    let none = s.prepare_invoke().evalsha_cmd();
    assert_eq!(none.len(), 3);
    assert_eq!(none.args().nth(2), Some(&b"0"[..]));
    let args_only = s.arg("a").evalsha_cmd();
    assert_eq!(args_only.args().nth(2), Some(&b"0"[..]));
}

#[test]
fn noscript_falls_back_to_eval_once() {
    let s = Script::new(SRC);
    let r = Recorder::replying([
        Value::Error(ServerError::new("NOSCRIPT No matching script.")),
        Value::Int(5),
    ]);
    assert_eq!(s.invoke(&r, "k", "a").unwrap(), Value::Int(5));
    let sent = r.lines();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0], format!("EVALSHA {} 1 k a", s.sha1_hex()));
    assert_eq!(sent[1], format!("EVAL {SRC} 1 k a"));
}

#[test]
fn other_errors_are_not_retried() {
    let s = Script::new(SRC);
    let r = Recorder::replying([Value::Error(ServerError::new("ERR boom"))]);
    let e = s.key("k").invoke(&r).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Server(ServerErrorKind::Other));
    assert_eq!(r.lines().len(), 1);

    // A cached script runs with one round trip.
    let r = Recorder::replying([Value::Bulk(b"7".into())]);
    let n: i64 = s.key("k").invoke_as(&r).unwrap();
    assert_eq!(n, 7);
    assert_eq!(r.lines().len(), 1);
}

#[test]
fn script_load_checks_the_sha() {
    let s = Script::new(SRC);
    let r = Recorder::replying([
        Value::Bulk(s.sha1_hex().as_bytes().into()),
        Value::Bulk(b"0000000000000000000000000000000000000000".into()),
    ]);
    s.script_load(&r).unwrap();
    assert_eq!(r.lines()[0], format!("SCRIPT LOAD {SRC}"));
    assert_eq!(s.script_load(&r).unwrap_err().kind(), ErrorKind::Protocol);
}
