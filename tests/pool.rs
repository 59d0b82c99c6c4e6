//! Pool tests against real servers: contention without crossed replies, exhaustion,
//! fast failures, a server restart, dirty sessions, reaping. Every test runs on Valkey and
//! Redis.
#![cfg(feature = "testkit")]

mod support;

use std::error::Error as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use support::{combos, key, kinds, shared};
use valkit::testkit::{dead_port, Server, ServerOptions};
use valkit::{
    cmd, pipe, ConnectionConfig, ErrorKind, Execute, Pool, PoolOptions, PoolStats,
    PooledConnection, Protocol, Secret, Value,
};

fn assert_within(started: Instant, low: Duration, high: Duration) {
    let took = started.elapsed();
    assert!(
        took >= low && took <= high,
        "took {took:?}, expected {low:?}..{high:?}"
    );
}

/// Poll `f` (every millisecond) until it holds or `limit` passes; returns whether it held.
fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(1));
    }
}

fn text(v: &Value) -> String {
    String::from_utf8_lossy(v.as_bytes().unwrap_or(b"<not a string>")).into_owned()
}

fn client_info(c: &PooledConnection) -> String {
    text(&c.exec(&cmd("CLIENT").arg("INFO")).unwrap())
}

/// One `name=value` field of a `CLIENT INFO` line.
fn field<'a>(info: &'a str, name: &str) -> &'a str {
    info.split_whitespace()
        .find_map(|kv| kv.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
        .unwrap_or_else(|| panic!("no {name}= in {info}"))
}

/// The session as the handshake left it: database 2, no MULTI (Redis shows `multi=-1`,
/// Valkey `multi=0`), no subscriptions, no flags (no `x` MULTI, `t` tracking, `P` pub/sub).
fn assert_clean_session(info: &str, what: &str) {
    assert_eq!(field(info, "db"), "2", "{what}: {info}");
    assert!(
        field(info, "multi").parse::<i64>().unwrap() <= 0,
        "{what}: {info}"
    );
    assert_eq!(field(info, "flags"), "N", "{what}: {info}");
    assert_eq!(field(info, "sub"), "0", "{what}: {info}");
    assert_eq!(field(info, "psub"), "0", "{what}: {info}");
}

fn client_id(c: &PooledConnection) -> i64 {
    c.exec(&cmd("CLIENT").arg("ID")).unwrap().as_int().unwrap()
}

/// Created minus closed is what is open, at any quiet moment.
fn assert_consistent(s: &PoolStats) {
    assert_eq!(s.created - s.closed, s.open as u64, "{s:?}");
    assert_eq!(s.open, s.idle + s.in_use, "{s:?}");
}

#[test]
fn eight_threads_share_four_connections_without_crossed_replies() {
    const THREADS: usize = 8;
    const ROUNDS: usize = 1_000; // x 10 commands = 10,000 commands per thread
    for kind in kinds() {
        let server = shared(kind);
        let pool = Pool::new(server.config(), PoolOptions::new().max_size(4)).unwrap();
        let prefix = key("contend");
        let started = Instant::now();
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let pool = pool.clone();
                let prefix = prefix.clone();
                thread::spawn(move || {
                    let counter = format!("{prefix}counter:{t}");
                    for i in 0..ROUNDS {
                        let keys: Vec<String> =
                            (0..4).map(|j| format!("{prefix}{t}:{i}:{j}")).collect();
                        let vals: Vec<String> =
                            (0..4).map(|j| format!("value-{t}-{i}-{j}")).collect();
                        let token = format!("echo-{t}-{i}");
                        let mut p = pipe();
                        for (k, v) in keys.iter().zip(&vals) {
                            p.add(cmd("SET").arg(k).arg(v).arg("EX").arg(60));
                        }
                        for k in &keys {
                            p.add(cmd("GET").arg(k));
                        }
                        p.add(cmd("INCR").arg(&counter));
                        p.add(cmd("ECHO").arg(&token));
                        // Alternate the two ways in: the pool itself, and a checkout.
                        let replies = if i % 2 == 0 {
                            pool.exec_pipeline(&p).unwrap()
                        } else {
                            pool.get().unwrap().exec_pipeline(&p).unwrap()
                        };
                        assert_eq!(replies.len(), 10);
                        for r in &replies[..4] {
                            assert_eq!(text(r), "OK");
                        }
                        for (r, v) in replies[4..8].iter().zip(&vals) {
                            assert_eq!(&text(r), v, "thread {t} round {i}");
                        }
                        assert_eq!(replies[8].as_int(), Some(i as i64 + 1), "thread {t}");
                        assert_eq!(text(&replies[9]), token);
                    }
                    counter
                })
            })
            .collect();
        for w in workers {
            let counter = w.join().unwrap();
            let total = pool.exec(&cmd("GET").arg(&counter)).unwrap();
            assert_eq!(text(&total), ROUNDS.to_string());
        }
        let s = pool.stats();
        eprintln!(
            "{kind:?}: {} commands from {THREADS} threads over {} connections in {:?}; {s:?}",
            THREADS * ROUNDS * 10,
            s.created,
            started.elapsed()
        );
        assert!(s.created <= 4, "{s:?}");
        assert_eq!(s.in_use, 0, "{s:?}");
        assert_eq!(s.checkouts, (THREADS * ROUNDS) as u64 + THREADS as u64);
        assert_eq!(s.health_checks, 0, "no PING on checkout: {s:?}");
        assert_consistent(&s);
    }
}

#[test]
fn eight_threads_single_commands_every_reply_checked() {
    const THREADS: usize = 8;
    // x 4 commands = 5,000 round trips per thread (the pipelined test above does 10,000).
    const ROUNDS: usize = 1_250;
    for kind in kinds() {
        let server = shared(kind);
        let pool = Pool::new(server.config(), PoolOptions::new().max_size(4)).unwrap();
        let prefix = key("single");
        let started = Instant::now();
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let pool = pool.clone();
                let prefix = prefix.clone();
                thread::spawn(move || {
                    let counter = format!("{prefix}counter:{t}");
                    for i in 0..ROUNDS {
                        let k = format!("{prefix}{t}:{i}");
                        let v = format!("value-{t}-{i}");
                        {
                            // Two commands on one checkout...
                            let c = pool.get().unwrap();
                            let set = c.exec(&cmd("SET").arg(&k).arg(&v).arg("EX").arg(60));
                            assert_eq!(text(&set.unwrap()), "OK");
                            assert_eq!(text(&c.exec(&cmd("GET").arg(&k)).unwrap()), v);
                        }
                        // ...and one checkout per command.
                        let n = pool.exec(&cmd("INCR").arg(&counter)).unwrap();
                        assert_eq!(n.as_int(), Some(i as i64 + 1), "thread {t}");
                        let token = format!("echo-{t}-{i}");
                        assert_eq!(text(&pool.exec(&cmd("ECHO").arg(&token)).unwrap()), token);
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        let s = pool.stats();
        eprintln!(
            "{kind:?}: {} single commands from {THREADS} threads in {:?}; {s:?}",
            THREADS * ROUNDS * 4,
            started.elapsed()
        );
        assert_eq!(s.checkouts, (THREADS * ROUNDS * 3) as u64);
        assert!(s.created <= 4 && s.in_use == 0, "{s:?}");
        assert_consistent(&s);
    }
}

#[test]
fn exhaustion_is_a_typed_error_within_the_timeout_and_returns_wake_waiters() {
    for kind in kinds() {
        let server = shared(kind);
        let opts = PoolOptions::new()
            .max_size(2)
            .checkout_timeout(Duration::from_millis(200));
        let pool = Pool::new(server.config(), opts).unwrap();
        let a = pool.get().unwrap();
        let b = pool.get().unwrap();

        let t = Instant::now();
        let err = pool.get_timeout(Duration::from_millis(200)).unwrap_err();
        assert_within(t, Duration::from_millis(200), Duration::from_secs(1));
        assert_eq!(err.kind(), ErrorKind::PoolExhausted, "{err}");
        assert!(err.source().is_none(), "no connect failed: {err:?}");

        let t = Instant::now();
        let err = pool.get().unwrap_err();
        assert_within(t, Duration::from_millis(200), Duration::from_secs(1));
        assert_eq!(err.kind(), ErrorKind::PoolExhausted);
        assert!(pool.try_get().is_none());

        let s = pool.stats();
        assert_eq!(
            (s.open, s.in_use, s.idle, s.timeouts),
            (2, 2, 0, 2),
            "{s:?}"
        );
        assert_eq!(s.waits, 2, "{s:?}");
        assert!(s.wait_time_total >= Duration::from_millis(400), "{s:?}");

        // A waiter is woken by a return, long before its own timeout.
        let p2 = pool.clone();
        let waiter = thread::spawn(move || {
            let t = Instant::now();
            let c = p2.get_timeout(Duration::from_secs(10)).unwrap();
            c.exec(&cmd("PING")).unwrap();
            t.elapsed()
        });
        assert!(eventually(Duration::from_secs(5), || pool.stats().waiting == 1));
        drop(a);
        let took = waiter.join().unwrap();
        assert!(took < Duration::from_secs(5), "{took:?}");
        drop(b);
        let s = pool.stats();
        assert_eq!(
            (s.idle, s.in_use, s.waiting, s.waits),
            (2, 0, 0, 3),
            "{s:?}"
        );
        assert_consistent(&s);
    }
}

#[test]
fn wrong_password_fails_fast() {
    for kind in kinds() {
        let server = ServerOptions::new(kind)
            .password(Some("right-password"))
            .start()
            .unwrap();
        for proto in [Protocol::Resp3, Protocol::Resp2] {
            let mut cfg = server.config();
            cfg.protocol = proto;
            cfg.password = Some(Secret::new("wrong-password"));
            let opts = PoolOptions::new().checkout_timeout(Duration::from_secs(5));
            let pool = Pool::new(cfg.clone(), opts.clone()).unwrap();
            let t = Instant::now();
            let err = pool.get().unwrap_err();
            assert_within(t, Duration::ZERO, Duration::from_secs(1));
            assert_eq!(err.kind(), ErrorKind::Auth, "{kind:?} {proto:?}: {err}");
            assert!(!format!("{err} {err:?}").contains("wrong-password"));
            assert_eq!(pool.stats().open, 0);

            let err = Pool::new(cfg.clone(), opts.clone().connect_on_build(true)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Auth);

            // No password at all against a server that wants one: HELLO 3 is refused at
            // once (RESP2 sends nothing to refuse during the handshake).
            if proto == Protocol::Resp2 {
                continue;
            }
            cfg.password = None;
            let pool = Pool::new(cfg, opts).unwrap();
            let t = Instant::now();
            let err = pool.get().unwrap_err();
            assert_within(t, Duration::ZERO, Duration::from_secs(1));
            assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
        }
        let pool = Pool::new(server.config(), PoolOptions::new()).unwrap();
        pool.exec(&cmd("PING")).unwrap();
    }
}

#[test]
fn dead_server_fails_fast_with_the_connect_error() {
    let cfg = ConnectionConfig::new("127.0.0.1", dead_port());
    let opts = PoolOptions::new().checkout_timeout(Duration::from_secs(5));
    // Building does not touch the network...
    let pool = Pool::new(cfg.clone(), opts.clone()).unwrap();
    let t = Instant::now();
    let err = pool.get().unwrap_err();
    // ...and with nothing open, a refused connect is returned at once, not after 5 s.
    assert_within(t, Duration::ZERO, Duration::from_millis(500));
    assert_eq!(err.kind(), ErrorKind::Connect, "{err}");
    assert!(err.is_retryable());
    let s = pool.stats();
    assert_eq!((s.open, s.connecting, s.created), (0, 0, 0));
    assert_eq!(s.connect_failures, 1);

    // ...unless asked to.
    let t = Instant::now();
    let err = Pool::new(cfg, opts.connect_on_build(true)).unwrap_err();
    assert_within(t, Duration::ZERO, Duration::from_secs(1));
    assert_eq!(err.kind(), ErrorKind::Connect);
}

/// While other connections are open (the server answers them), a failed connect is retried
/// until the checkout timeout, and the timeout carries the last connect error as its source.
#[test]
fn failed_connects_beside_open_connections_time_out_with_the_cause() {
    let kind = kinds()[0];
    let server = Server::start(kind).unwrap();
    let proxy = valkit::testkit::FaultProxy::start(server.port()).unwrap();
    let pool = Pool::new(
        proxy.config(),
        PoolOptions::new()
            .max_size(2)
            .checkout_timeout(Duration::from_millis(300)),
    )
    .unwrap();
    let held = pool.get().unwrap();
    proxy.set_down(true); // new connects are refused; the open one keeps working
    let t = Instant::now();
    let err = pool.get().unwrap_err();
    assert_within(t, Duration::from_millis(300), Duration::from_millis(1300));
    assert_eq!(err.kind(), ErrorKind::PoolExhausted, "{err}");
    let cause = err
        .source()
        .and_then(|s| s.downcast_ref::<valkit::Error>())
        .expect("the connect error is the source");
    assert_eq!(cause.kind(), ErrorKind::Connect, "{cause}");
    let s = pool.stats();
    assert!(s.connect_failures >= 2, "retried within the timeout: {s:?}");
    assert_eq!(s.timeouts, 1);
    held.exec(&cmd("PING")).unwrap();
}

#[test]
fn server_restart_dead_connections_are_never_handed_out() {
    for kind in kinds() {
        let mut server = Server::start(kind).unwrap();
        let opts = PoolOptions::new()
            .max_size(4)
            .checkout_timeout(Duration::from_millis(500));
        let pool = Pool::new(server.config(), opts).unwrap();

        // Quiet restart: four idle connections, all dead after the kill.
        {
            let held: Vec<_> = (0..4).map(|_| pool.get().unwrap()).collect();
            for c in &held {
                c.exec(&cmd("PING")).unwrap();
            }
        }
        assert_eq!(pool.stats().idle, 4);
        server.kill();
        server.restart().unwrap();
        {
            // Hold all four, so each is a different connection: the first command on
            // every one must work (the checkout saw the FIN and reconnected).
            let held: Vec<_> = (0..4).map(|_| pool.get().unwrap()).collect();
            for c in &held {
                c.exec(&cmd("PING")).unwrap();
            }
        }
        let s = pool.stats();
        assert_eq!((s.created, s.closed, s.open), (8, 4, 4), "{s:?}");
        assert_eq!(s.health_checks, 0, "detected without PING: {s:?}");

        // The maintenance thread notices dead idle connections by itself and refills
        // min_idle once the server is back.
        let kept = Pool::new(server.config(), PoolOptions::new().min_idle(2)).unwrap();
        assert!(eventually(Duration::from_secs(5), || kept.stats().idle == 2));
        server.kill();
        assert!(
            eventually(Duration::from_secs(5), || kept.stats().open == 0),
            "{:?}",
            kept.stats()
        );
        server.restart().unwrap();
        assert!(eventually(Duration::from_secs(5), || kept.stats().idle == 2));
        let s = kept.stats();
        assert_eq!((s.created, s.closed, s.checkouts), (4, 2, 0), "{s:?}");
        drop(kept);

        // Restart under load: four threads keep working through the pool.
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let k = key("restart");
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let (pool, stop, ok, failed, k) = (
                    pool.clone(),
                    stop.clone(),
                    ok.clone(),
                    failed.clone(),
                    k.clone(),
                );
                thread::spawn(move || {
                    while !stop.load(Relaxed) {
                        match pool.get().and_then(|c| c.exec(&cmd("INCR").arg(&k))) {
                            Ok(_) => ok.fetch_add(1, Relaxed),
                            Err(_) => failed.fetch_add(1, Relaxed),
                        };
                    }
                })
            })
            .collect();
        assert!(eventually(Duration::from_secs(10), || ok.load(Relaxed) >= 200));
        server.kill();
        assert!(eventually(Duration::from_secs(10), || failed.load(Relaxed) >= 1));
        server.restart().unwrap();
        let at_restart = ok.load(Relaxed);
        assert!(
            eventually(Duration::from_secs(10), || ok.load(Relaxed)
                >= at_restart + 500),
            "work did not resume: {:?}",
            pool.stats()
        );
        stop.store(true, Relaxed);
        for w in workers {
            w.join().unwrap();
        }
        // Quiet again: every checkout works first time.
        for _ in 0..20 {
            let c = pool.get().unwrap();
            c.exec(&cmd("PING")).unwrap();
        }
        let s = pool.stats();
        eprintln!(
            "{kind:?}: restart under load: {} ok, {} failed; {s:?}",
            ok.load(Relaxed),
            failed.load(Relaxed)
        );
        assert!(s.open <= 4, "{s:?}");
        assert_consistent(&s);
    }
}

/// Issue 11: a connection returned moments ago is handed out without a look at its
/// socket (no system call), but one idle past `skip_check_within` is checked: after a
/// server restart it is never handed out dead. Inside the window, a dead connection fails
/// its command with an I/O error (never a wrong reply), and the client's retry absorbs it
/// for an idempotent command.
#[test]
fn connections_idle_past_the_skip_window_are_checked_after_a_restart() {
    for kind in kinds() {
        let mut server = Server::start(kind).unwrap();
        let window = Duration::from_millis(300);
        // No maintenance thread: it closes dead idle sockets too, and racing the
        // checkout it would take away what this test looks at (the checkout's rule).
        let opts = PoolOptions::new()
            .max_size(1)
            .skip_check_within(window)
            .max_idle_time(None)
            .max_lifetime(None)
            .checkout_timeout(Duration::from_secs(2));
        assert_eq!(opts.min_idle, 0);
        let pool = Pool::new(server.config(), opts.clone()).unwrap();
        pool.get().unwrap().exec(&cmd("PING")).unwrap();
        let returned = Instant::now();
        server.kill();
        server.restart().unwrap();
        // Past the window: the checkout looks at the socket, sees the old server's FIN,
        // closes that connection and opens a new one; the first command works.
        thread::sleep((window + Duration::from_millis(50)).saturating_sub(returned.elapsed()));
        let c = pool.get().unwrap();
        c.exec(&cmd("PING")).unwrap();
        drop(c);
        let s = pool.stats();
        assert_eq!((s.created, s.closed, s.open), (2, 1, 1), "{kind:?}: {s:?}");
        assert_eq!(
            s.health_checks, 0,
            "{kind:?}: the peek decided, no PING: {s:?}"
        );

        // Inside the window: a client over the same kind of pool. The connection used a
        // moment ago is handed out unchecked; its GET fails with an I/O error and the
        // client's retry runs it again on a new connection.
        let k = key("skipwin");
        let client = valkit::Client::builder()
            .config(server.config())
            .pool(opts.clone().skip_check_within(Duration::from_secs(30)))
            .build()
            .unwrap();
        client.exec(&cmd("SET").arg(&k).arg("v")).unwrap();
        server.kill();
        server.restart().unwrap();
        client.exec(&cmd("GET").arg(&k)).unwrap();
        let s = client.pool_stats(valkit::Endpoint::Writer).unwrap();
        assert_eq!((s.created, s.closed), (2, 1), "{kind:?}: {s:?}");
        assert!(client.metrics().retries_total() >= 1, "{kind:?}: retried");
    }
}

#[test]
fn dirty_sessions_are_reset_before_reuse() {
    for (kind, proto) in combos() {
        let server = shared(kind);
        let mut cfg = server.config();
        cfg.db = 2;
        cfg.protocol = proto;
        let pool = Pool::new(cfg, PoolOptions::new().max_size(1)).unwrap();
        let k = key("dirty");
        let what = format!("{kind:?} {proto:?}");

        // Left in MULTI with a queued command.
        let c = pool.get().unwrap();
        let id = client_id(&c);
        c.exec(&cmd("MULTI")).unwrap();
        let queued = c.exec(&cmd("SET").arg(&k).arg("queued")).unwrap();
        assert_eq!(text(&queued), "QUEUED");
        drop(c);
        let c = pool.get().unwrap();
        assert_eq!(client_id(&c), id, "{what}: reset, not reconnected");
        let info = client_info(&c);
        assert_clean_session(&info, &what);
        assert_eq!(text(&c.exec(&cmd("SET").arg(&k).arg("v")).unwrap()), "OK");
        drop(c);

        // Another database, a WATCH, tracking, a subscription.
        // (commands, whether the same connection comes back reset)
        let mut dirty = vec![
            (vec![cmd("SELECT").arg(5)], true),
            (vec![cmd("WATCH").arg(&k)], true),
            (vec![cmd("MULTI"), cmd("GET").arg(&k)], true),
        ];
        if proto == Protocol::Resp3 {
            dirty.push((vec![cmd("CLIENT").arg("TRACKING").arg("ON")], true));
        }
        // SUBSCRIBE is refused by exec since issue 9 (item 9): it cannot dirty a session
        // any more (the pool's "subscribed on RESP2: close" rule waits for the pub/sub API).
        let c = pool.get().unwrap();
        let refused = c
            .exec(&cmd("SUBSCRIBE").arg(format!("{k}chan")))
            .unwrap_err();
        assert_eq!(refused.kind(), valkit::ErrorKind::Unsupported, "{what}");
        assert!(c.session_state().is_clean(), "{what}");
        drop(c);
        let mut id = id;
        for (cmds, reused) in dirty {
            let c = pool.get().unwrap();
            for x in &cmds {
                c.exec(x).unwrap();
            }
            assert!(!c.session_state().is_clean(), "{what}: {cmds:?}");
            drop(c);
            let c = pool.get().unwrap();
            assert!(c.session_state().is_clean());
            let now = client_id(&c);
            assert_eq!(now == id, reused, "{what}: {cmds:?}");
            id = now;
            assert_clean_session(&client_info(&c), &format!("{what} after {cmds:?}"));
            assert_eq!(text(&c.exec(&cmd("GET").arg(&k)).unwrap()), "v");
        }

        // A thread panics in the middle of a transaction: the pool stays usable and clean.
        let p2 = pool.clone();
        let k2 = k.clone();
        let panicked = thread::spawn(move || {
            let c = p2.get().unwrap();
            c.exec(&cmd("MULTI")).unwrap();
            c.exec(&cmd("SET").arg(&k2).arg("from-the-panic")).unwrap();
            panic!("user code failed mid-MULTI (expected by the test)");
        })
        .join();
        assert!(panicked.is_err());
        let c = pool.get_timeout(Duration::from_secs(1)).unwrap();
        assert_clean_session(&client_info(&c), &format!("{what} after a panic"));
        assert_eq!(text(&c.exec(&cmd("GET").arg(&k)).unwrap()), "v");
        drop(c);
        let s = pool.stats();
        let (resets, closed) = match proto {
            Protocol::Resp3 => (5, 1),
            _ => (4, 1),
        };
        assert_eq!(
            (s.resets, s.closed, s.open),
            (resets, closed, 1),
            "{what}: {s:?}"
        );
        assert_consistent(&s);
    }
}

#[test]
fn idle_connections_are_reaped_and_min_idle_is_kept() {
    for kind in kinds() {
        let server = shared(kind);
        let short = Some(Duration::from_millis(200));

        let pool = Pool::new(server.config(), PoolOptions::new().max_idle_time(short)).unwrap();
        drop((0..3).map(|_| pool.get().unwrap()).collect::<Vec<_>>());
        assert_eq!(pool.stats().idle, 3);
        let t = Instant::now();
        assert!(eventually(Duration::from_secs(3), || pool.stats().idle == 0));
        assert!(
            t.elapsed() >= Duration::from_millis(150),
            "{:?}",
            t.elapsed()
        );
        let s = pool.stats();
        assert_eq!((s.created, s.closed, s.open, s.checkouts), (3, 3, 0, 3));
        assert_eq!((s.timeouts, s.waits), (0, 0));
        assert_consistent(&s);

        // min_idle is opened in the background and kept through reaping.
        let opts = PoolOptions::new().min_idle(2).max_idle_time(short);
        let pool = Pool::new(server.config(), opts).unwrap();
        assert!(eventually(Duration::from_secs(3), || pool.stats().idle == 2));
        drop((0..4).map(|_| pool.get().unwrap()).collect::<Vec<_>>());
        assert_eq!(pool.stats().idle, 4);
        assert!(eventually(Duration::from_secs(3), || pool.stats().idle == 2));
        let s = pool.stats();
        assert_eq!((s.created, s.closed, s.open), (4, 2, 2), "{s:?}");

        // max_lifetime: an old connection is closed when it comes back.
        let opts = PoolOptions::new().max_lifetime(Some(Duration::from_millis(100)));
        let pool = Pool::new(server.config(), opts).unwrap();
        let c = pool.get().unwrap();
        thread::sleep(Duration::from_millis(150)); // let it age
        drop(c);
        let s = pool.stats();
        assert_eq!((s.created, s.closed, s.idle), (1, 1, 0), "{s:?}");
    }
}

/// A hung server (SIGSTOP) must not hold a checkout for the whole read timeout: the
/// health-check PING and the replacement connect are both bounded by the connect timeout.
#[test]
fn health_check_of_a_hung_server_is_bounded_by_the_connect_timeout() {
    for kind in kinds() {
        let server = Server::start(kind).unwrap();
        let mut cfg = server.config();
        cfg.connect_timeout = Duration::from_millis(300);
        cfg.read_timeout = Some(Duration::from_secs(10));
        let pool = Pool::new(
            cfg,
            PoolOptions::new()
                .max_size(1)
                .idle_check_after(Duration::ZERO)
                .checkout_timeout(Duration::from_millis(500)),
        )
        .unwrap();
        pool.get().unwrap().exec(&cmd("PING")).unwrap();
        server.pause().unwrap();
        let started = Instant::now();
        let err = match pool.get() {
            Ok(_) => panic!("{kind:?}: a hung server yields no connection"),
            Err(e) => e,
        };
        let took = started.elapsed();
        server.resume().unwrap();
        // The PING timed out and its connection was closed; the replacement connect timed
        // out too, and with nothing open that timeout is returned as is.
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
        assert!(
            took < Duration::from_millis(1500),
            "{kind:?}: checkout took {took:?}, not bounded by the 10 s read timeout"
        );
        assert!(pool.stats().health_checks >= 1);
        // And it recovers once the server runs again.
        assert!(eventually(Duration::from_secs(5), || pool
            .get()
            .and_then(|c| c.exec(&cmd("PING")))
            .is_ok()));
    }
}
