//! Connection tests against real servers: handshake, ACL, TLS, timeouts, dead servers,
//! push frames, broken-connection rules. Every test runs on Valkey 9.1 and Redis 7.0, and
//! in RESP2 and RESP3 where the protocol matters.
#![cfg(feature = "testkit")]

mod support;

use std::time::{Duration, Instant};

use support::{combos, shared};
use valkit::testkit::{FakeServer, Server, ServerKind, ServerOptions, Step};
use valkit::{
    cmd, pipe, Connection, ConnectionConfig, ErrorKind, Execute, Protocol, ServerErrorKind, Value,
};

fn assert_within(started: Instant, low: Duration, high: Duration) {
    let took = started.elapsed();
    assert!(
        took >= low && took <= high,
        "took {took:?}, expected {low:?}..{high:?}"
    );
}

#[test]
fn handshake_sets_name_db_and_protocol() {
    for (kind, proto) in combos() {
        let server = shared(kind);
        let mut cfg = server.config();
        cfg.protocol = proto;
        cfg.db = 3;
        cfg.client_name = Some("valkit-test".into());
        let conn = Connection::open(&cfg).unwrap();
        let name = conn.exec(&cmd("CLIENT").arg("GETNAME")).unwrap();
        assert_eq!(
            name.as_bytes(),
            Some(&b"valkit-test"[..]),
            "{kind:?} {proto:?}"
        );
        let info = conn.exec(&cmd("CLIENT").arg("INFO")).unwrap();
        let info = String::from_utf8_lossy(info.as_bytes().unwrap()).into_owned();
        assert!(info.contains(" db=3 "), "{info}");
        let resp = if proto == Protocol::Resp3 {
            "resp=3"
        } else {
            "resp=2"
        };
        assert!(info.contains(resp), "{info}");
        // RESP3 gives maps; RESP2 gives flat arrays.
        let hello_map = conn.exec(&cmd("CONFIG").arg("GET").arg("port")).unwrap();
        match proto {
            Protocol::Resp3 => assert!(matches!(hello_map, Value::Map(_)), "{hello_map:?}"),
            _ => assert!(matches!(hello_map, Value::Array(_)), "{hello_map:?}"),
        }
        if proto == Protocol::Resp3 {
            assert!(conn.server_version().is_some());
        }
    }
}

#[test]
fn acl_user_right_password_wrong_password_and_noperm() {
    for (kind, proto) in combos() {
        let server = shared(kind);
        let admin = Connection::open(&server.config()).unwrap();
        let user = format!("app_{}_{:?}", kind.name(), proto).to_lowercase();
        admin
            .exec(
                &cmd("ACL")
                    .arg("SETUSER")
                    .arg(&user)
                    .arg("reset")
                    .arg("on")
                    .arg(">s3cret-pass")
                    .arg("~app:*")
                    .arg("+@all")
                    .arg("-flushall"),
            )
            .unwrap();

        let mut cfg = server.config();
        cfg.protocol = proto;
        cfg.username = Some(user.clone());
        cfg.password = Some("s3cret-pass".into());
        let conn = Connection::open(&cfg).expect("right password works");
        conn.exec(&cmd("SET").arg("app:x").arg(1)).unwrap();

        let err = conn.exec(&cmd("SET").arg("other:x").arg(1)).unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::Server(ServerErrorKind::NoPerm),
            "{err}"
        );
        let err = conn.exec(&cmd("FLUSHALL")).unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::Server(ServerErrorKind::NoPerm),
            "{err}"
        );
        assert!(!err.is_retryable());

        cfg.password = Some("wrong-hunter2".into());
        let err = Connection::open(&cfg).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Auth, "{kind:?} {proto:?}: {err}");
        for text in [format!("{err}"), format!("{err:?}"), format!("{cfg:?}")] {
            assert!(!text.contains("wrong-hunter2"), "password leaked: {text}");
        }
    }
}

#[test]
fn server_requiring_a_password() {
    let server = ServerOptions::new(ServerKind::from_env())
        .password(Some("top-secret-pw"))
        .start()
        .unwrap();
    for proto in [Protocol::Resp3, Protocol::Resp2] {
        let mut cfg = server.config();
        cfg.protocol = proto;
        let conn = Connection::open(&cfg).unwrap();
        conn.exec(&cmd("PING")).unwrap();

        cfg.password = None;
        match Connection::open(&cfg) {
            // HELLO 3 without AUTH is refused during the handshake.
            Err(e) => assert_eq!(e.kind(), ErrorKind::Auth, "{e}"),
            // RESP2 sends no AUTH, so the first command is refused.
            Ok(conn) => {
                let e = conn.exec(&cmd("PING")).unwrap_err();
                assert_eq!(e.kind(), ErrorKind::Server(ServerErrorKind::NoAuth), "{e}");
            }
        }
        cfg.password = Some("not-the-pw".into());
        let e = Connection::open(&cfg).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Auth, "{e}");
        assert!(!format!("{e} {e:?}").contains("not-the-pw"));
    }
}

#[test]
fn read_timeout_is_a_timeout_within_bounds_and_breaks_the_connection() {
    for kind in support::kinds() {
        // A dedicated server: DEBUG SLEEP blocks everyone on it.
        let server = Server::start(kind).unwrap();
        let mut cfg = server.config();
        cfg.read_timeout = Some(Duration::from_millis(200));
        let conn = Connection::open(&cfg).unwrap();
        let started = Instant::now();
        let err = conn.exec(&cmd("DEBUG").arg("SLEEP").arg(1)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
        assert!(err.is_ambiguous() && !err.is_retryable());
        assert_within(
            started,
            Duration::from_millis(190),
            Duration::from_millis(900),
        );
        assert!(conn.is_broken());
        // The late reply must never be read as the answer to the next command.
        std::thread::sleep(Duration::from_millis(900));
        let err = conn.exec(&cmd("PING")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Broken);
    }
}

#[test]
fn blocking_commands_extend_the_read_timeout() {
    for (kind, proto) in combos() {
        let server = shared(kind);
        let mut cfg = server.config();
        cfg.protocol = proto;
        cfg.read_timeout = Some(Duration::from_millis(200));
        let conn = Connection::open(&cfg).unwrap();
        let key = support::key("blpop-empty");
        let started = Instant::now();
        let reply = conn
            .exec(
                &cmd("BLPOP")
                    .arg(&key)
                    .arg(0.5)
                    .blocking(valkit::Blocking::For(Duration::from_millis(500))),
            )
            .unwrap();
        assert!(reply.is_nil(), "{reply:?}");
        assert_within(
            started,
            Duration::from_millis(450),
            Duration::from_millis(1500),
        );
        // The normal timeout is back afterwards.
        conn.exec(&cmd("PING")).unwrap();
    }
}

#[test]
fn killed_server_gives_an_io_error_never_a_hang() {
    for kind in support::kinds() {
        let mut server = Server::start(kind).unwrap();
        let conn = Connection::open(&server.config()).unwrap();
        conn.exec(&cmd("PING")).unwrap();
        server.kill();
        let started = Instant::now();
        let err = conn.exec(&cmd("PING")).unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::Io | ErrorKind::Timeout),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(11));
        assert!(conn.is_broken());
        let err = Connection::open(&server.config()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Connect, "{err}");
        assert!(err.is_retryable());
        // Restart on the same port: a new connection works.
        server.restart().unwrap();
        Connection::open(&server.config())
            .unwrap()
            .exec(&cmd("PING"))
            .unwrap();
    }
}

/// A server that accepts the socket and never answers must not hang the handshake.
#[test]
fn silent_server_times_out_the_handshake() {
    let fake = FakeServer::start(vec![Step::Hang]).unwrap();
    let mut cfg = fake.config();
    cfg.protocol = Protocol::Resp3; // HELLO 3: a handshake to wait for
    cfg.connect_timeout = Duration::from_millis(300);
    let started = Instant::now();
    let err = Connection::open(&cfg).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert_within(
        started,
        Duration::from_millis(290),
        Duration::from_millis(1500),
    );
}

/// Replies with fixed bytes to the first request, then stays silent (hostile replies
/// beyond these are in tests/faults.rs).
fn fake_server(reply: &'static [u8]) -> FakeServer {
    FakeServer::start(vec![Step::Read, Step::Reply(reply.to_vec()), Step::Hang]).unwrap()
}

#[test]
fn garbage_reply_is_a_protocol_error_and_breaks_the_connection() {
    let fake = fake_server(b"+OK\r\n?garbage\r\n");
    let cfg = fake.config();
    let conn = Connection::open(&cfg).unwrap();
    let first = conn.exec(&cmd("PING")).unwrap();
    assert_eq!(first, Value::Simple("OK".into()));
    let err = conn.exec(&cmd("PING")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
    assert!(conn.is_broken());
    assert_eq!(
        conn.exec(&cmd("PING")).unwrap_err().kind(),
        ErrorKind::Broken
    );
}

#[test]
fn reply_cut_mid_frame_is_an_io_error() {
    let fake = FakeServer::start(vec![
        Step::Read,
        Step::Reply(b"$10\r\nabc".to_vec()),
        Step::Close,
    ])
    .unwrap();
    let cfg = fake.config();
    let conn = Connection::open(&cfg).unwrap();
    let err = conn.exec(&cmd("GET").arg("k")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    assert!(conn.is_broken());
}

/// RESP3 tracking invalidations arrive as pushes between replies; they must be set aside,
/// never returned as a command's reply.
#[test]
fn push_frames_are_set_aside() {
    for kind in support::kinds() {
        let server = shared(kind);
        let mut cfg = server.config();
        cfg.protocol = Protocol::Resp3;
        let tracked = Connection::open(&cfg).unwrap();
        let writer = Connection::open(&server.config()).unwrap();
        let key = support::key("tracked");
        writer.exec(&cmd("SET").arg(&key).arg("v1")).unwrap();
        tracked
            .exec(&cmd("CLIENT").arg("TRACKING").arg("ON"))
            .unwrap();
        assert_eq!(
            tracked.exec(&cmd("GET").arg(&key)).unwrap().as_bytes(),
            Some(&b"v1"[..])
        );
        writer.exec(&cmd("SET").arg(&key).arg("v2")).unwrap();
        // The invalidation push is sent before this reply; the reply must still be PONG.
        let mut pushes = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while pushes.is_empty() && Instant::now() < deadline {
            let pong = tracked.exec(&cmd("PING")).unwrap();
            assert_eq!(pong, Value::Simple("PONG".into()));
            pushes = tracked.take_pushes();
        }
        let push = pushes.first().expect("an invalidation push arrived");
        match push {
            Value::Push { kind, data } => {
                assert_eq!(kind, "invalidate");
                let keys = data[0].as_slice().unwrap();
                assert_eq!(keys[0].as_bytes(), Some(key.as_bytes()));
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn unix_socket_connection() {
    let server = ServerOptions::new(ServerKind::from_env())
        .unix_socket(true)
        .start()
        .unwrap();
    let cfg = server.unix_config().unwrap();
    let conn = Connection::open(&cfg).unwrap();
    assert_eq!(
        conn.exec(&cmd("PING")).unwrap(),
        Value::Simple("PONG".into())
    );
    // A large value: the rest of its body read straight into its own buffer (zero-filled
    // chunks over a Unix socket).
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 247) as u8).collect();
    conn.exec(&cmd("SET").arg("unix:big").arg(big.as_slice()))
        .unwrap();
    let got: Option<Vec<u8>> = valkit::Commands::query(&conn, &cmd("GET").arg("unix:big")).unwrap();
    assert!(got.as_deref() == Some(&big[..]), "typed");
    let got = conn.exec(&cmd("GET").arg("unix:big")).unwrap();
    assert!(got == Value::Bulk(big.clone().into()));
    assert_eq!(
        conn.exec(&cmd("PING")).unwrap(),
        Value::Simple("PONG".into())
    );
}

#[test]
fn pipelined_transaction_and_watch_abort() {
    for (kind, proto) in combos() {
        let server = shared(kind);
        let mut cfg = server.config();
        cfg.protocol = proto;
        let conn = Connection::open(&cfg).unwrap();
        let other = Connection::open(&cfg).unwrap();
        let key = support::key("watched");
        conn.exec(&cmd("SET").arg(&key).arg(1)).unwrap();

        let outcome: valkit::TxOutcome<Vec<Value>> = conn
            .transaction(&[&key], |tx| {
                let v = tx.exec(&cmd("GET").arg(&key))?;
                assert_eq!(v.as_bytes(), Some(&b"1"[..]));
                // Typed reads go through the transaction's own in-place path.
                let typed: Option<i64> = valkit::Commands::query(tx, &cmd("GET").arg(&key))?;
                assert_eq!(typed, Some(1));
                // Someone else changes the key between WATCH and EXEC.
                other.exec(&cmd("SET").arg(&key).arg(100))?;
                Ok(pipe().cmd(cmd("INCR").arg(&key)))
            })
            .unwrap();
        assert_eq!(outcome, valkit::TxOutcome::Aborted);
        assert_eq!(
            conn.exec(&cmd("GET").arg(&key)).unwrap().as_bytes(),
            Some(&b"100"[..])
        );

        let outcome: valkit::TxOutcome<Vec<Value>> = conn
            .transaction(&[&key], |_| {
                Ok(pipe().cmd(cmd("INCR").arg(&key)).cmd(cmd("GET").arg(&key)))
            })
            .unwrap();
        assert_eq!(
            outcome,
            valkit::TxOutcome::Committed(vec![Value::Int(101), Value::Bulk(b"101".into())])
        );

        // A command rejected while queueing aborts the whole EXEC with EXECABORT.
        let err = pipe()
            .cmd(cmd("INCR").arg(&key))
            .cmd(cmd("NOSUCHCOMMAND"))
            .atomic()
            .run(&conn)
            .unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::Server(ServerErrorKind::ExecAbort),
            "{err}"
        );
        assert_eq!(
            conn.exec(&cmd("GET").arg(&key)).unwrap().as_bytes(),
            Some(&b"101"[..])
        );
        // A runtime error inside EXEC is that command's error only.
        let replies = pipe()
            .cmd(cmd("INCR").arg(&key))
            .cmd(cmd("LPUSH").arg(&key).arg("x"))
            .atomic()
            .run(&conn)
            .unwrap();
        assert_eq!(replies[0].as_ref().unwrap(), &Value::Int(102));
        assert_eq!(
            replies[1].as_ref().unwrap_err().kind(),
            ErrorKind::Server(ServerErrorKind::WrongType)
        );
        // An error inside the build closure unwatches and returns it.
        let err = conn
            .transaction::<(), _, _>(&[&key], |_| {
                Err(valkit::Error::new(ErrorKind::Conversion, "mine"))
            })
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conversion);
        conn.exec(&cmd("PING")).unwrap();
    }
}

#[test]
fn debug_and_display_never_show_the_password() {
    let url = "redis://user:pa%24%24word-xyz@127.0.0.1:1/0";
    let cfg = ConnectionConfig::from_url(url).unwrap();
    assert_eq!(cfg.password.as_ref().unwrap().expose(), "pa$$word-xyz");
    for text in [format!("{cfg:?}"), format!("{cfg}")] {
        assert!(
            !text.contains("pa$$word-xyz") && !text.contains("pa%24%24word"),
            "{text}"
        );
    }
    let err = Connection::open(&cfg).unwrap_err();
    for text in [format!("{err:?}"), format!("{err}")] {
        assert!(!text.contains("pa$$word-xyz"), "{text}");
    }
}
