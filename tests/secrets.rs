//! Issue 9, item 1: a server that echoes a command's arguments back (an unknown command's
//! error quotes them) never gets a password into an error, a `Debug`/`Display` output or a
//! log record; and a server without HELLO is reached with AUTH + RESP2 when no protocol was
//! asked for.
//!
//! This binary installs a process-wide `log` logger that keeps every record at every level,
//! so every test here also checks what the crate logged.

mod support;

use std::sync::{Mutex, Once};

use support::kinds;
use valkit::testkit::{Server, ServerKind, ServerOptions};
use valkit::{
    cmd, pipe, Commands, Connection, ErrorKind, Execute, Pool, PoolOptions, Protocol, Value,
};

/// The password of every server here. Distinctive, so any occurrence is a leak.
const PW: &str = "Echo-Me-Not-7f3a";

static RECORDS: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let line = format!("{} {}: {}", record.level(), record.target(), record.args());
        RECORDS.lock().unwrap_or_else(|e| e.into_inner()).push(line);
    }

    fn flush(&self) {}
}

static CAPTURE: Capture = Capture;

fn capture_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        log::set_logger(&CAPTURE).expect("the only logger of this test binary");
        log::set_max_level(log::LevelFilter::Trace);
    });
}

fn records() -> Vec<String> {
    RECORDS.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// No record logged so far (by any test of this binary) contains the password.
fn assert_logs_clean() {
    for r in records() {
        assert!(!r.contains(PW), "a log record leaks the password: {r}");
    }
}

/// Neither the Display nor the Debug of `e`, nor of anything in its source chain, contains
/// the password.
fn assert_hidden(what: &str, e: &valkit::Error) {
    let mut texts = vec![e.to_string(), format!("{e:?}")];
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        texts.push(s.to_string());
        texts.push(format!("{s:?}"));
        src = s.source();
    }
    if let Some(s) = e.server_error() {
        texts.push(s.text().to_owned());
    }
    for t in texts {
        assert!(!t.contains(PW), "{what}: the error shows the password: {t}");
    }
}

/// A server with a password whose HELLO is renamed away (`--rename-command HELLO ""`),
/// as on Redis before 6 or behind some proxies.
fn server_without_hello(kind: ServerKind) -> Server {
    ServerOptions::new(kind)
        .password(Some(PW))
        .arg_values("rename-command", ["HELLO", ""])
        .start()
        .expect("start a server without HELLO")
}

fn text(v: &Value) -> String {
    String::from_utf8_lossy(v.as_bytes().unwrap_or_default()).into_owned()
}

#[test]
fn without_hello_the_connection_falls_back_to_auth_and_resp2() {
    capture_logs();
    for kind in kinds() {
        let server = server_without_hello(kind);
        let mut cfg = server.config();
        cfg.client_name = Some("fallback".into());
        cfg.db = 3;
        assert_eq!(cfg.protocol, Protocol::Resp3);
        assert!(cfg.resp2_fallback, "the default");

        let conn = Connection::open(&cfg)
            .unwrap_or_else(|e| panic!("{kind:?}: no fallback to AUTH + RESP2: {e}"));
        assert_eq!(conn.protocol(), Protocol::Resp2, "{kind:?}");
        assert_eq!(text(&conn.exec(&cmd("PING")).unwrap()), "PONG");
        assert_eq!(
            text(&conn.exec(&cmd("ACL").arg("WHOAMI")).unwrap()),
            "default"
        );
        assert_eq!(
            text(&conn.exec(&cmd("CLIENT").arg("GETNAME")).unwrap()),
            "fallback"
        );
        let info = text(&conn.exec(&cmd("CLIENT").arg("INFO")).unwrap());
        assert!(info.contains(" db=3 "), "{kind:?}: {info}");
        assert!(info.contains(" resp=2"), "{kind:?}: {info}");
        let k = support::key("fallback");
        conn.set(&k, "v").unwrap();
        assert_eq!(
            conn.get::<_, Option<Vec<u8>>>(&k).unwrap(),
            Some(b"v".to_vec())
        );

        // A pool of such connections: a dirtied session is reset (RESET + the RESP2
        // handshake) and reused.
        let pool = Pool::new(cfg.clone(), PoolOptions::new().max_size(1)).unwrap();
        let c = pool.get().unwrap();
        c.exec(&cmd("SELECT").arg(5)).unwrap();
        drop(c);
        let c = pool.get().unwrap();
        assert_eq!(
            c.get::<_, Option<Vec<u8>>>(&k).unwrap(),
            Some(b"v".to_vec()),
            "{kind:?}: back in db 3"
        );
        drop(c);
        let s = pool.stats();
        assert_eq!((s.created, s.resets), (1, 1), "{kind:?}: {s:?}");
    }
    let logs = records();
    assert!(
        logs.iter().any(|r| r.contains("does not know HELLO")),
        "the fallback is logged at debug level (the logger sees every level): {logs:?}"
    );
    assert_logs_clean();
}

#[test]
fn an_explicit_resp3_fails_without_showing_the_password() {
    capture_logs();
    for kind in kinds() {
        let server = server_without_hello(kind);
        let cfg = valkit::ConnectionConfig::from_url(&format!("{}?protocol=resp3", server.url()))
            .unwrap();
        assert!(!cfg.resp2_fallback);
        let e = Connection::open(&cfg).expect_err("HELLO is unknown and RESP3 was asked for");
        assert!(
            e.detail().starts_with("the server does not know HELLO"),
            "{kind:?}: {e}"
        );
        assert_hidden(&format!("{kind:?} open"), &e);

        // The pool logs connect failures at debug level.
        let pool = Pool::new(cfg, PoolOptions::new()).unwrap();
        let e = pool.get().expect_err("connect fails");
        assert_hidden(&format!("{kind:?} pool"), &e);
    }
    let logs = records();
    assert!(
        logs.iter().any(|r| r.contains("connect failed")),
        "the pool's connect failure was logged: {logs:?}"
    );
    assert_logs_clean();
}

#[test]
fn replies_echoing_secret_arguments_are_scrubbed() {
    capture_logs();
    for kind in kinds() {
        let server = server_without_hello(kind);
        let conn = Connection::open(&server.config()).unwrap();
        // Authenticated now: both servers echo the unknown command's arguments.
        let hello = cmd("HELLO").arg(3).arg("AUTH").arg("default").arg(PW);

        let e = conn.exec(&hello).expect_err("HELLO is unknown");
        assert_eq!(e.kind(), ErrorKind::Server(valkit::ServerErrorKind::Other));
        assert!(e.detail().contains("unknown command"), "{kind:?}: {e}");
        assert!(e.detail().contains("<redacted>"), "{kind:?}: {e}");
        assert_hidden(&format!("{kind:?} exec"), &e);

        let e = conn.query::<Value>(&hello).expect_err("HELLO is unknown");
        assert_hidden(&format!("{kind:?} exec_frame"), &e);

        let replies = conn
            .exec_pipeline(&pipe().cmd(cmd("PING")).cmd(hello.clone()))
            .unwrap();
        assert!(
            matches!(replies[1], Value::Error(_)),
            "{kind:?}: {replies:?}"
        );
        let shown = format!("{replies:?}");
        assert!(!shown.contains(PW), "{kind:?}: pipeline replies: {shown}");

        let e = conn
            .exec_pipeline(&pipe().cmd(cmd("PING")).cmd(hello.clone()).atomic())
            .expect_err("EXECABORT");
        assert!(e.detail().contains("unknown command"), "{kind:?}: {e}");
        assert_hidden(&format!("{kind:?} transaction"), &e);

        // A malformed password hash is quoted back by ACL SETUSER.
        let acl = cmd("ACL").arg("SETUSER").arg("echo").arg(format!("#{PW}"));
        let e = conn.exec(&acl).expect_err("not a SHA-256 hex digest");
        assert!(e.detail().contains("ACL SETUSER"), "{kind:?}: {e}");
        assert_hidden(&format!("{kind:?} ACL SETUSER"), &e);

        // The connection is fine afterwards.
        assert_eq!(text(&conn.exec(&cmd("PING")).unwrap()), "PONG");
    }
    assert_logs_clean();
}
