//! Availability under slow, dead and restarting servers (issue 9, items 11-13):
//!
//! * a reply trickled byte by byte fails at the read timeout (a per-reply deadline, not a
//!   per-read timeout);
//! * a blocking command that waits "for ever" is a loop of bounded server-side waits, so a
//!   black-holed server is found within one slice plus the read timeout, while a real
//!   `BLPOP 0` still gets an element pushed several slices later;
//! * after a short server restart, the default circuit breaker closes again in about a
//!   second (its open period starts at 1 s and doubles up to 60 s).
//!
//! Real servers (Valkey and Redis) behind the test kit's [`FaultProxy`]; docs/reliability.md
//! gives the figures.
#![cfg(feature = "testkit")]

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use valkit::testkit::{Direction, FaultProxy, ServerKind, ServerOptions};
use valkit::{
    cmd, pipe, BreakerState, Client, Commands, Connection, ConnectionConfig, Endpoint, ErrorKind,
    Execute, Protocol, Value,
};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A proxy in front of the shared server of `kind`, and a config through it.
fn proxied(kind: ServerKind) -> (FaultProxy, ConnectionConfig) {
    let server = support::shared(kind);
    let proxy = FaultProxy::start(server.port()).unwrap();
    let cfg = proxy.config_for(&server.config());
    (proxy, cfg)
}

fn assert_between(took: Duration, low: Duration, high: Duration, what: &str) {
    assert!(
        took >= low && took <= high,
        "{what}: took {took:?}, expected {low:?}..{high:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Item 11: the read timeout bounds the whole reply.

#[test]
fn trickled_reply_fails_at_the_read_timeout() {
    for kind in support::kinds() {
        let (proxy, mut cfg) = proxied(kind);
        cfg.read_timeout = Some(Duration::from_secs(1));
        let key = support::key("trickle");
        let conn = Connection::open(&cfg).unwrap();
        conn.set(&key, "twenty-bytes-of-text").unwrap();

        // One byte every 300 ms, after 50 ms of latency: every socket read gets a byte well
        // within the 1 s read timeout, but the 27-byte reply would take about 8 s.
        proxy.latency(Direction::Downstream, ms(50));
        proxy.slicer(Direction::Downstream, 1, ms(300));
        let started = Instant::now();
        let err = conn.get::<_, Option<Vec<u8>>>(&key).unwrap_err();
        let took = started.elapsed();
        eprintln!("{kind:?}: trickled GET failed after {took:?}: {err}");
        assert_eq!(err.kind(), ErrorKind::Timeout, "{kind:?}: {err}");
        assert_between(took, ms(1000), ms(1600), "trickled GET");
        assert!(err.is_ambiguous());
        assert!(conn.is_broken(), "a timed-out reply breaks the connection");
        assert_eq!(
            conn.get::<_, Option<Vec<u8>>>(&key).unwrap_err().kind(),
            ErrorKind::Broken
        );

        // A pipeline: each reply has its own deadline; the first one cannot make it.
        proxy.clear();
        let conn = Connection::open(&cfg).unwrap();
        proxy.slicer(Direction::Downstream, 1, ms(300));
        let started = Instant::now();
        let err = conn
            .exec_pipeline(&pipe().cmd(cmd("GET").arg(&key)).cmd(cmd("GET").arg(&key)))
            .unwrap_err();
        let took = started.elapsed();
        eprintln!("{kind:?}: trickled pipeline failed after {took:?}");
        assert_eq!(err.kind(), ErrorKind::Timeout, "{kind:?}: {err}");
        assert_between(took, ms(1000), ms(1600), "trickled pipeline");
        assert!(conn.is_broken());
    }
}

#[test]
fn slow_pipeline_within_the_per_reply_bound_succeeds() {
    for kind in support::kinds() {
        let (proxy, mut cfg) = proxied(kind);
        cfg.read_timeout = Some(ms(600));
        let conn = Connection::open(&cfg).unwrap();
        // Three PINGs written at once; the proxy forwards the replies one `+PONG\r\n` (7
        // bytes) at a time, 400 ms apart. Each reply comes within 600 ms of the previous
        // one; the whole pipeline takes longer than 600 ms: per-reply deadlines let it
        // through.
        proxy.slicer(Direction::Downstream, 7, ms(400));
        let started = Instant::now();
        let replies = conn
            .exec_pipeline(&pipe().cmd(cmd("PING")).cmd(cmd("PING")).cmd(cmd("PING")))
            .unwrap();
        let took = started.elapsed();
        eprintln!("{kind:?}: slow pipeline took {took:?}");
        assert!(
            took > ms(700),
            "the replies were not spread over more than the read timeout: {took:?}"
        );
        assert_eq!(replies, vec![Value::Simple("PONG".into()); 3]);
        assert!(!conn.is_broken());
    }
}

// ---------------------------------------------------------------------------------------
// Item 12: waiting for ever is a loop of bounded server-side waits.

/// A call running on its own thread.
struct Call<T> {
    rx: mpsc::Receiver<T>,
    handle: std::thread::JoinHandle<()>,
}

impl<T: Send + 'static> Call<T> {
    fn spawn(f: impl FnOnce() -> T + Send + 'static) -> Call<T> {
        let (tx, rx) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("availability-call".into())
            .spawn(move || {
                let _ = tx.send(f());
            })
            .unwrap();
        Call { rx, handle }
    }

    /// Its result, or `None` if it did not finish within `bound`; in that case `unblock`
    /// runs (it must make the call end) before the thread is joined.
    fn result(self, bound: Duration, unblock: impl FnOnce()) -> Option<T> {
        let r = self.rx.recv_timeout(bound).ok();
        if r.is_none() {
            unblock();
        }
        let _ = self.handle.join();
        r
    }
}

#[test]
fn blocking_forever_on_a_blackholed_server_fails_within_slice_plus_read_timeout() {
    for kind in support::kinds() {
        for proto in [Protocol::Resp3, Protocol::Resp2] {
            let (proxy, mut cfg) = proxied(kind);
            cfg.protocol = proto;
            cfg.read_timeout = Some(ms(300));
            cfg.blocking_slice = Some(ms(500));
            let conn = Connection::open(&cfg).unwrap();
            let key = support::key("blackhole-blpop");
            let started = Instant::now();
            let call = Call::spawn(move || {
                let r = conn.blpop::<_, Option<(Vec<u8>, Vec<u8>)>>(&key, Duration::ZERO);
                (r, started.elapsed(), conn.is_broken())
            });
            // The server goes silent while the call is waiting on it.
            std::thread::sleep(ms(100));
            proxy.hold(Direction::Both, true);
            let Some((r, took, broken)) = call.result(Duration::from_secs(5), || drop(proxy))
            else {
                panic!(
                    "{kind:?} {proto:?}: BLPOP 0 still blocked 5 s after the server went silent"
                );
            };
            let err = r.unwrap_err();
            eprintln!("{kind:?} {proto:?}: BLPOP 0 on a black hole failed after {took:?}: {err}");
            assert_eq!(err.kind(), ErrorKind::Timeout, "{kind:?}: {err}");
            // The hold starts 100 ms into the first 500 ms slice: its reply never comes, and
            // the call fails one slice + one read timeout after the slice was sent.
            assert_between(took, ms(800), ms(1500), "BLPOP 0 on a black hole");
            assert!(broken);
        }
    }
}

#[test]
fn blocking_forever_on_a_paused_server_fails_within_slice_plus_read_timeout() {
    // One kind is enough: SIGSTOP freezes either the same way.
    let kind = support::kinds()[0];
    let server = ServerOptions::new(kind).start().unwrap();
    let mut cfg = server.config();
    cfg.read_timeout = Some(ms(300));
    cfg.blocking_slice = Some(ms(400));
    let conn = Connection::open(&cfg).unwrap();
    let key = support::key("paused-brpop");
    let pusher = Connection::open(&server.config()).unwrap();
    // A raw command marked as blocking for ever goes through the same loop.
    let call = Call::spawn({
        let key = key.clone();
        move || {
            let started = Instant::now();
            let c = cmd("BRPOP")
                .arg(&key)
                .arg(0)
                .blocking(valkit::Blocking::Forever);
            (conn.exec(&c), started.elapsed())
        }
    });
    // Two slices pass with the server up, then it freezes.
    std::thread::sleep(ms(900));
    server.pause().unwrap();
    let paused = Instant::now();
    let result = call.result(Duration::from_secs(5), || {
        // Still waiting: wake the server and give the call its element.
        let _ = server.resume();
        let _ = pusher.rpush(&key, "x");
    });
    let _ = server.resume();
    let Some((r, took)) = result else {
        panic!("{kind:?}: BRPOP 0 still blocked 5 s after the server was paused");
    };
    let err = r.unwrap_err();
    let after_pause = paused.elapsed();
    eprintln!("{kind:?}: BRPOP 0 on a paused server failed after {took:?} ({after_pause:?} after the pause): {err}");
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    // Found within one slice + the read timeout of the pause (plus scheduling).
    assert!(
        after_pause <= ms(400 + 300 + 400),
        "{after_pause:?} after the pause"
    );
    assert!(took >= ms(900));
}

/// The bytes one slice of `BLPOP key 0` sends, with a slice of `slice_text` seconds.
fn blpop_len(key: &str, slice_text: &str) -> u64 {
    let mut out = Vec::new();
    cmd("BLPOP").arg(key).arg(slice_text).encode(&mut out);
    out.len() as u64
}

#[test]
fn blpop_forever_receives_an_element_pushed_several_slices_later() {
    for (kind, proto) in support::combos() {
        let (proxy, mut cfg) = proxied(kind);
        cfg.protocol = proto;
        cfg.read_timeout = Some(ms(500));
        cfg.blocking_slice = Some(ms(200));
        let conn = Connection::open(&cfg).unwrap();
        let key = support::key("blpop-forever");
        let sent_before = proxy.bytes_forwarded(Direction::Upstream);
        let started = Instant::now();
        let call = Call::spawn({
            let key = key.clone();
            move || {
                (
                    conn.blpop::<_, Option<(Vec<u8>, Vec<u8>)>>(&key, Duration::ZERO),
                    started.elapsed(),
                )
            }
        });
        std::thread::sleep(ms(750));
        // Pushed on another connection, straight to the server.
        let pusher = Connection::open(&support::shared(kind).config()).unwrap();
        pusher.rpush(&key, "job-1").unwrap();
        let (r, took) = call
            .result(Duration::from_secs(5), || proxy.cut())
            .expect("BLPOP returned");
        eprintln!("{kind:?} {proto:?}: BLPOP 0 got the element after {took:?}");
        assert_eq!(
            r.unwrap(),
            Some((key.clone().into_bytes(), b"job-1".to_vec()))
        );
        assert!(took >= ms(750), "{took:?}");
        // The wait was re-issued: at least 3 slices of 200 ms were sent in 750 ms (a server
        // ends a blocking wait up to ~100 ms late: its timer runs at `hz` 10).
        let sent = proxy.bytes_forwarded(Direction::Upstream) - sent_before;
        let one = blpop_len(&key, "0.200");
        assert!(sent >= 3 * one, "{sent} bytes sent, one slice is {one}");
        assert_eq!(pusher.llen(&key).unwrap(), 0, "popped exactly once");
    }
}

#[test]
fn xread_block_zero_is_reissued_until_an_entry_arrives() {
    for (kind, proto) in support::combos() {
        let mut cfg = support::shared(kind).config();
        cfg.protocol = proto;
        cfg.blocking_slice = Some(ms(150));
        let conn = Connection::open(&cfg).unwrap();
        let stream = support::key("xread-forever");
        let started = Instant::now();
        let call = Call::spawn({
            let stream = stream.clone();
            move || {
                let c = cmd("XREAD")
                    .arg("BLOCK")
                    .arg(0)
                    .arg("STREAMS")
                    .arg(&stream)
                    .arg("0-0")
                    .blocking(valkit::Blocking::Forever);
                (conn.exec(&c), started.elapsed())
            }
        });
        std::thread::sleep(ms(500));
        let writer = Connection::open(&support::shared(kind).config()).unwrap();
        writer
            .exec(&cmd("XADD").arg(&stream).arg("1-1").arg("f").arg("v"))
            .unwrap();
        let (r, took) = call
            .result(Duration::from_secs(5), || {
                let _ = writer.exec(&cmd("XADD").arg(&stream).arg("*").arg("f").arg("v"));
            })
            .expect("XREAD returned");
        let v = r.unwrap();
        eprintln!("{kind:?} {proto:?}: XREAD BLOCK 0 returned after {took:?}");
        assert!(took >= ms(500), "{took:?}");
        assert!(!v.is_nil(), "{v:?}");
        assert!(format!("{v:?}").contains("1-1"), "{v:?}");
    }
}

#[test]
fn long_finite_blocking_timeout_is_kept_across_slices() {
    for (kind, proto) in support::combos() {
        let mut cfg = support::shared(kind).config();
        cfg.protocol = proto;
        cfg.blocking_slice = Some(ms(200));
        let conn = Connection::open(&cfg).unwrap();
        let key = support::key("blpop-finite");
        let started = Instant::now();
        // 700 ms in slices of 200: nothing arrives, None after the full 700 ms (not after
        // one slice; the server's clock may end a wait a fraction of a millisecond early).
        assert_eq!(
            conn.blpop::<_, Option<(Vec<u8>, Vec<u8>)>>(&key, ms(700))
                .unwrap(),
            None
        );
        let took = started.elapsed();
        eprintln!("{kind:?} {proto:?}: BLPOP 0.7 timed out after {took:?}");
        assert_between(took, ms(680), ms(1200), "BLPOP 0.7 in slices");
        // The same through exec (a Value, not read in place).
        let started = Instant::now();
        let c = cmd("BLPOP")
            .arg(&key)
            .arg("0.5")
            .blocking(valkit::Blocking::For(ms(500)));
        assert_eq!(conn.exec(&c).unwrap(), Value::Nil);
        assert_between(
            started.elapsed(),
            ms(480),
            ms(1000),
            "exec BLPOP 0.5 in slices",
        );
        assert!(!conn.is_broken());
        // A timeout too long for the clock (sliced, and unsliced) is no bound, not a panic.
        for slice in [Some(ms(200)), None] {
            let mut cfg = cfg.clone();
            cfg.blocking_slice = slice;
            let conn = Connection::open(&cfg).unwrap();
            conn.rpush(&key, "x").unwrap();
            match conn.blpop::<_, Option<(Vec<u8>, Vec<u8>)>>(&key, Duration::MAX) {
                Ok(got) => assert_eq!(got, Some((key.clone().into_bytes(), b"x".to_vec()))),
                // Sent as given, the server itself refuses so large a timeout.
                Err(e) => assert!(
                    slice.is_none() && matches!(e.kind(), ErrorKind::Server(_)),
                    "{slice:?}: {e}"
                ),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Item 13: the breaker lets a short outage recover in about a second.

/// Hammer `client` with GETs from `threads` threads until `stop`; returns when they ended.
/// Each thread records when it saw its first success after `back` was set.
struct Load {
    stop: AtomicBool,
    /// Set (to the instant the server answered again) by the test.
    back: parking_lot::Mutex<Option<Instant>>,
    first_ok_after_back: parking_lot::Mutex<Option<Instant>>,
    circuit_open_seen: AtomicBool,
}

#[test]
fn default_breaker_recovers_within_about_a_second_after_a_100ms_outage() {
    for kind in support::kinds() {
        let mut server = ServerOptions::new(kind).start().unwrap();
        // Every default: pool, retry, and breaker (5 failures, open 1 s doubling to 60 s).
        let client = Client::builder().config(server.config()).build().unwrap();
        let key = support::key("breaker");
        client.set(&key, "v").unwrap();
        let load = Load {
            stop: AtomicBool::new(false),
            back: parking_lot::Mutex::new(None),
            first_ok_after_back: parking_lot::Mutex::new(None),
            circuit_open_seen: AtomicBool::new(false),
        };
        let (outage, recovery) = std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    let deadline = Instant::now() + Duration::from_secs(20);
                    while !load.stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                        match client.get::<_, Option<Vec<u8>>>(&key) {
                            Ok(_) => {
                                if load.back.lock().is_some() {
                                    let mut first = load.first_ok_after_back.lock();
                                    first.get_or_insert_with(Instant::now);
                                }
                            }
                            Err(e) if e.kind() == ErrorKind::CircuitOpen => {
                                load.circuit_open_seen.store(true, Ordering::SeqCst);
                            }
                            Err(_) => {}
                        }
                        std::thread::sleep(ms(1));
                    }
                });
            }
            std::thread::sleep(ms(100));
            let down = Instant::now();
            server.stop().unwrap();
            std::thread::sleep(ms(100));
            server.restart().unwrap();
            let back = Instant::now();
            *load.back.lock() = Some(back);
            // Wait (bounded) for the first success after the server is back.
            let limit = back + Duration::from_secs(8);
            while load.first_ok_after_back.lock().is_none() && Instant::now() < limit {
                std::thread::sleep(ms(5));
            }
            load.stop.store(true, Ordering::SeqCst);
            let first = *load.first_ok_after_back.lock();
            (back - down, first.map(|t| t - back))
        });
        assert!(
            load.circuit_open_seen.load(Ordering::SeqCst),
            "{kind:?}: the outage did not open the breaker; the test proves nothing"
        );
        let recovery = recovery.unwrap_or_else(|| {
            panic!("{kind:?}: no successful call within 8 s of the server being back")
        });
        eprintln!(
            "{kind:?}: outage {outage:?} (stop + 100 ms + restart), first success {recovery:?} after the server was back"
        );
        assert!(recovery <= ms(1500), "{kind:?}: recovery took {recovery:?}");
        assert_eq!(
            client.breaker_state(Endpoint::Writer),
            Some(BreakerState::Closed)
        );
    }
}
