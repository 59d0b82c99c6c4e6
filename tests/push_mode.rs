//! Issue 9, item 9: commands after which replies no longer pair with requests (SUBSCRIBE and
//! friends, MONITOR, RESET, CLIENT REPLY) are refused by `exec`, `exec_frame`, pipelines and
//! transactions with a typed error, before anything is written; the connection stays
//! usable and in step (before the fix, on RESP2 the next PING returned a published message,
//! on RESP3 `exec(SUBSCRIBE)` timed out and broke the connection).

mod support;

use std::time::Duration;

use support::{each_combo, shared};
use valkit::{cmd, pipe, Cmd, Commands, Connection, ErrorKind, Execute, Pool, PoolOptions, Value};

fn refused_commands(channel: &str) -> Vec<Cmd> {
    vec![
        cmd("SUBSCRIBE").arg(channel),
        cmd("psubscribe").arg(format!("{channel}*")),
        cmd("SSUBSCRIBE").arg(channel),
        cmd("UNSUBSCRIBE").arg(channel).arg("other"),
        cmd("PUNSUBSCRIBE"),
        cmd("SUNSUBSCRIBE").arg(channel),
        cmd("MONITOR"),
        cmd("RESET"),
        cmd("CLIENT").arg("REPLY").arg("SKIP"),
    ]
}

fn assert_refused(what: &str, r: valkit::Result<impl std::fmt::Debug>) {
    match r {
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::Unsupported, "{what}: {e}");
            assert!(e.detail().contains("Nothing was sent"), "{what}: {e}");
            assert!(!e.is_retryable() && !e.is_connection_broken(), "{what}");
        }
        Ok(v) => panic!("{what}: sent, and answered {v:?}"),
    }
}

fn text(v: &Value) -> String {
    String::from_utf8_lossy(v.as_bytes().unwrap_or_default()).into_owned()
}

#[test]
fn push_mode_commands_are_refused_and_the_connection_stays_in_step() {
    each_combo("push-mode", |conn, prefix, kind, proto| {
        let channel = format!("{prefix}:chan");
        let what = |c: &Cmd, how: &str| format!("{kind:?} {proto:?} {how} {c:?}");
        for c in refused_commands(&channel) {
            assert_refused(&what(&c, "exec"), conn.exec(&c));
            assert_refused(&what(&c, "exec_frame"), conn.query::<Value>(&c));
            assert_refused(
                &what(&c, "exec_with_timeout"),
                conn.exec_with_timeout(&c, Duration::from_secs(1)),
            );
            let p = pipe()
                .cmd(cmd("SET").arg(format!("{prefix}:k")).arg("v"))
                .cmd(c.clone());
            assert_refused(&what(&c, "pipeline"), conn.exec_pipeline(&p));
            assert_refused(
                &what(&c, "transaction"),
                conn.exec_pipeline(&p.clone().atomic()),
            );
            let tx = conn.transaction::<(), _, _>(&[format!("{prefix}:k")], |tx| {
                tx.exec(&c)?;
                Ok(pipe())
            });
            assert_refused(&what(&c, "inside transaction()"), tx);
            assert!(!conn.is_broken(), "{}", what(&c, "after"));
            assert!(
                conn.session_state().is_clean(),
                "{}: {:?}",
                what(&c, "session after"),
                conn.session_state()
            );
        }
        // Nothing was written: the pipeline's SET never ran, nobody listens on the channel.
        assert_eq!(
            conn.get::<_, Option<Vec<u8>>>(format!("{prefix}:k"))
                .unwrap(),
            None
        );
        let publisher = Connection::open(&{
            let mut cfg = shared(kind).config();
            cfg.protocol = proto;
            cfg
        })
        .unwrap();
        let receivers = publisher
            .exec(&cmd("PUBLISH").arg(&channel).arg("hello"))
            .unwrap();
        assert_eq!(receivers.as_int(), Some(0), "{kind:?} {proto:?}");
        let receivers = publisher
            .exec(&cmd("SPUBLISH").arg(&channel).arg("hello"))
            .unwrap();
        assert_eq!(receivers.as_int(), Some(0), "{kind:?} {proto:?}");
        // In step: each reply is its own command's.
        for i in 0..3 {
            assert_eq!(text(&conn.exec(&cmd("PING")).unwrap()), "PONG");
            let echo = conn.exec(&cmd("ECHO").arg(format!("e{i}"))).unwrap();
            assert_eq!(text(&echo), format!("e{i}"));
        }
        assert!(conn.take_pushes().is_empty(), "{kind:?} {proto:?}");
    });
}

#[test]
fn a_pool_refuses_them_and_keeps_the_connection() {
    for (kind, proto) in support::combos() {
        let mut cfg = shared(kind).config();
        cfg.protocol = proto;
        let pool = Pool::new(cfg, PoolOptions::new().max_size(1)).unwrap();
        for c in refused_commands("pool-chan") {
            assert_refused(&format!("{kind:?} {proto:?} pool {c:?}"), pool.exec(&c));
        }
        assert_eq!(text(&pool.exec(&cmd("PING")).unwrap()), "PONG");
        let s = pool.stats();
        assert_eq!(
            (s.created, s.closed, s.resets),
            (1, 0, 0),
            "{kind:?} {proto:?}: {s:?}"
        );
    }
}
