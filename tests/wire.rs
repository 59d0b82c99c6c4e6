//! Wire strictness and the encoder's refusals (issue 9, items 4-8): what the decoder
//! accepts from a server, which replies must never fail a connection, and which commands
//! are refused before anything is written. Real servers where they can produce the case
//! (Valkey 9.1 and Redis 7.0, RESP2 and RESP3), the fake server for hostile bytes.
#![cfg(feature = "testkit")]

mod support;

use std::time::{Duration, Instant};

use support::{combos, each_combo, shared};
use valkit::testkit::{FakeServer, Step};
use valkit::{
    cmd, pipe, Cmd, Commands, Connection, ErrorKind, Execute, Limit, ServerErrorKind, Value,
};

// ---------------------------------------------------------------------------------------
// Item 8: error and status lines that are not UTF-8

/// The four ways a server sends a `-` or `+` line that is not valid UTF-8, each with what
/// the client must make of it: `Err(text)` for an error reply, `Ok(text)` for a status.
fn non_utf8_triggers(prefix: &str) -> Vec<(&'static str, Cmd, Result<String, String>)> {
    // The server echoes an unknown command's name cut at 128 bytes: 127 ASCII bytes and a
    // two-byte character leave half of it.
    let mut cut_name = "a".repeat(127).into_bytes();
    cut_name.extend_from_slice("\u{e9}".as_bytes());
    let cut_text = format!(
        "ERR unknown command '{}\u{fffd}', with args beginning with: ",
        "a".repeat(127)
    );
    vec![
        (
            "unknown command with a binary name",
            Cmd::new().arg(&b"NOSUCH\xff\xfe"[..]).arg("x"),
            Err(
                "ERR unknown command 'NOSUCH\u{fffd}\u{fffd}', with args beginning with: 'x' "
                    .to_owned(),
            ),
        ),
        (
            "unknown command with a binary argument",
            cmd("NOSUCH").arg(&b"\xff\xfeabc"[..]),
            Err(
                "ERR unknown command 'NOSUCH', with args beginning with: '\u{fffd}\u{fffd}abc' "
                    .to_owned(),
            ),
        ),
        (
            "echo cut inside a character",
            Cmd::new().arg(cut_name),
            Err(cut_text),
        ),
        (
            "redis.error_reply with binary text",
            cmd("EVAL")
                .arg("return redis.error_reply(ARGV[1])")
                .arg(0)
                .arg(&b"ERR \xff\xfe bad"[..])
                .arg(prefix),
            Err("ERR \u{fffd}\u{fffd} bad".to_owned()),
        ),
        (
            "redis.status_reply with binary text",
            cmd("EVAL")
                .arg("return redis.status_reply(ARGV[1])")
                .arg(0)
                .arg(&b"\xff\xfe ok"[..])
                .arg(prefix),
            Ok("\u{fffd}\u{fffd} ok".to_owned()),
        ),
    ]
}

fn check_reply(got: valkit::Result<Value>, want: &Result<String, String>, ctx: &str) {
    match (got, want) {
        (Ok(Value::Simple(s)), Ok(text)) => assert_eq!(&*s, text.as_str(), "{ctx}"),
        (Err(e), Err(text)) => {
            assert_eq!(e.kind(), ErrorKind::Server(ServerErrorKind::Other), "{ctx}");
            assert_eq!(
                e.server_error().map(|s| s.text()),
                Some(text.as_str()),
                "{ctx}"
            );
        }
        (got, want) => panic!("{ctx}: got {got:?}, want {want:?}"),
    }
}

#[test]
fn non_utf8_error_and_status_lines_are_replies_not_protocol_errors() {
    each_combo("wire_non_utf8", |conn, prefix, _, _| {
        for (what, trigger, want) in non_utf8_triggers(prefix) {
            // Alone, as a `Value` ...
            check_reply(conn.exec(&trigger), &want, what);
            assert!(!conn.is_broken(), "{what}");
            // ... and read in place by a typed conversion.
            check_reply(
                conn.query::<Value>(&trigger),
                &want,
                &format!("{what} (frame)"),
            );
            assert!(!conn.is_broken(), "{what} (frame)");
            assert_eq!(
                conn.exec(&cmd("PING")).unwrap(),
                Value::Simple("PONG".into())
            );
        }
    });
}

#[test]
fn non_utf8_lines_in_a_pipeline_keep_the_replies_after_them() {
    each_combo("wire_non_utf8_pipe", |conn, prefix, kind, proto| {
        let key = format!("{prefix}:k");
        for (what, trigger, want) in non_utf8_triggers(prefix) {
            let ctx = format!("{what} on {kind:?} {proto:?}");
            let p = pipe()
                .cmd(cmd("SET").arg(&key).arg("before"))
                .cmd(trigger)
                .cmd(cmd("APPEND").arg(&key).arg("+after"))
                .cmd(cmd("GET").arg(&key));
            let replies = conn
                .exec_pipeline(&p)
                .unwrap_or_else(|e| panic!("{ctx}: {e}"));
            assert_eq!(replies.len(), 4, "{ctx}");
            assert_eq!(replies[0], Value::Simple("OK".into()), "{ctx}");
            check_reply(replies[1].clone().into_result(), &want, &ctx);
            assert_eq!(replies[2], Value::Int(12), "{ctx}");
            assert_eq!(replies[3].as_bytes(), Some(&b"before+after"[..]), "{ctx}");
            assert!(!conn.is_broken(), "{ctx}");
        }
    });
}

#[test]
fn non_utf8_lines_from_a_fake_server_keep_their_bytes_in_frames() {
    let fake = FakeServer::start(vec![
        Step::Read,
        Step::Reply(b"+\xc3\r\n".to_vec()),
        Step::Read,
        Step::Reply(b"-ERR \xff\r\n".to_vec()),
        Step::Read,
        Step::Reply(b"+OK\r\n".to_vec()),
        Step::Hang,
    ])
    .unwrap();
    let conn = Connection::open(&fake.config()).unwrap();
    let mut raw = Vec::new();
    conn.exec_frame(&cmd("PING"), &mut |f| {
        raw = f.as_bytes().unwrap_or_default().to_vec();
        Ok(())
    })
    .unwrap();
    assert_eq!(raw, b"\xc3", "a frame keeps the status bytes as sent");
    let e = conn.exec(&cmd("PING")).unwrap_err();
    assert_eq!(e.server_error().map(|s| s.text()), Some("ERR \u{fffd}"));
    assert_eq!(conn.exec(&cmd("PING")).unwrap(), Value::Simple("OK".into()));
    assert!(!conn.is_broken());
}

// ---------------------------------------------------------------------------------------
// Items 4 and 5: non-canonical numbers and doubles outside the grammar

#[test]
fn non_canonical_numbers_from_a_server_are_protocol_errors() {
    for reply in [
        &b":01\r\n"[..],
        b":-0\r\n",
        b"$03\r\nabc\r\n",
        b"*01\r\n:1\r\n",
        b"%01\r\n+a\r\n:1\r\n",
        b",.5\r\n",
        b",1e999\r\n",
    ] {
        let fake =
            FakeServer::start(vec![Step::Read, Step::Reply(reply.to_vec()), Step::Hang]).unwrap();
        let conn = Connection::open(&fake.config()).unwrap();
        let err = conn.exec(&cmd("GET").arg("k")).unwrap_err();
        let ctx = reply.escape_ascii().to_string();
        assert_eq!(err.kind(), ErrorKind::Protocol, "{ctx}: {err}");
        assert!(conn.is_broken(), "{ctx}");
    }
}

// ---------------------------------------------------------------------------------------
// Item 7: commands refused before anything is written

#[test]
fn an_empty_command_is_refused_before_anything_is_written() {
    let fake = FakeServer::replying(b"+PONG\r\n").unwrap();
    let conn = Connection::open(&fake.config()).unwrap();
    let started = Instant::now();
    let err = conn.exec(&Cmd::new()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidCommand, "{err}");
    assert_eq!(err.limit(), None);
    assert!(!err.is_connection_broken() && !err.is_retryable());
    let err = conn.query::<Value>(&Cmd::new()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidCommand, "{err}");
    let err = conn
        .exec_pipeline(&pipe().cmd(cmd("PING")).cmd(Cmd::new()))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidCommand, "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "no wait for a reply"
    );
    assert!(!conn.is_broken());
    assert_eq!(
        conn.exec(&cmd("PING")).unwrap(),
        Value::Simple("PONG".into())
    );
    // Only the last PING reached the server: not `*0`, not the refused pipeline's PING.
    assert_eq!(fake.requests(), vec![vec![b"PING".to_vec()]]);

    for (kind, proto) in combos() {
        let mut cfg = shared(kind).config();
        cfg.protocol = proto;
        let conn = Connection::open(&cfg).unwrap();
        let err = conn.exec(&Cmd::new()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidCommand, "{kind:?} {proto:?}");
        assert_eq!(
            conn.exec(&cmd("PING")).unwrap(),
            Value::Simple("PONG".into())
        );
    }
}

#[test]
fn an_argument_over_max_bulk_len_is_refused_before_anything_is_written() {
    let fake = FakeServer::replying(b"+OK\r\n").unwrap();
    let mut cfg = fake.config();
    cfg.limits.max_bulk_len = 1024;
    let conn = Connection::open(&cfg).unwrap();
    let at_limit = vec![b'x'; 1024];
    let over = vec![b'x'; 1025];
    let err = conn.set("k", &over).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidCommand, "{err}");
    assert_eq!(err.limit(), Some(Limit::BulkLen));
    assert!(err.is_limit() && !err.is_connection_broken());
    let err = conn.exec(&cmd("SET").arg("k").arg(&over)).unwrap_err();
    assert_eq!(err.limit(), Some(Limit::BulkLen), "{err}");
    // One oversized command refuses the whole pipeline: nothing of it is written.
    let p = pipe()
        .cmd(cmd("SET").arg("a").arg("1"))
        .cmd(cmd("SET").arg("k").arg(&over));
    assert_eq!(
        conn.exec_pipeline(&p).unwrap_err().limit(),
        Some(Limit::BulkLen)
    );
    assert!(fake.requests().is_empty(), "nothing was written");
    assert!(!conn.is_broken());
    conn.set("k", &at_limit).unwrap();
    assert_eq!(fake.requests().len(), 1);
    assert_eq!(fake.requests()[0][2].len(), 1024);

    // The same against real servers (whose own limit is far higher): refused, and the
    // connection goes on.
    each_combo("wire_over_limit", |_, prefix, kind, proto| {
        let mut cfg = shared(kind).config();
        cfg.protocol = proto;
        cfg.limits.max_bulk_len = 1024;
        let conn = Connection::open(&cfg).unwrap();
        let key = format!("{prefix}:k");
        let err = conn.set(&key, &over).unwrap_err();
        assert_eq!(err.limit(), Some(Limit::BulkLen), "{err}");
        let stored: Option<Vec<u8>> = conn.get(&key).unwrap();
        assert_eq!(stored, None, "the refused SET never ran");
        conn.set(&key, &at_limit).unwrap();
        let stored: Option<Vec<u8>> = conn.get(&key).unwrap();
        assert_eq!(stored, Some(at_limit.clone()));
    });
}
