//! Fault injection: the client against real servers behind the test kit's [`FaultProxy`]
//! (killed mid-reply, reset mid-pipeline, sliced replies, black hole, refused, slow link)
//! and against the scripted [`FakeServer`] (hostile replies). docs/reliability.md
//! summarises what these tests show.
//!
//! Every test takes one lock, so the tests of this file run one at a time: the thread
//! and memory checks look at the whole process. Every test name starts with `fault_`,
//! which is how the leak check tells the test harness's own threads from leaked ones.
#![cfg(feature = "testkit")]

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use valkit::resp::Limits;
use valkit::testkit::{Direction, FakeServer, FaultProxy, ServerKind, Step};
use valkit::{
    cmd, pipe, Commands, Connection, ConnectionConfig, ErrorKind, Execute, Pool, PoolOptions,
    Protocol, Value,
};

// ---------------------------------------------------------------------------------------
// Harness: serialisation, leak and memory checks.

/// Counts the largest single allocation request, to prove hostile lengths reserve nothing.
struct CountingAlloc;

static LARGEST_ALLOC: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST_ALLOC.fetch_max(layout.size(), Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST_ALLOC.fetch_max(layout.size(), Ordering::Relaxed);
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST_ALLOC.fetch_max(new_size, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

static SERIAL: Mutex<()> = Mutex::new(());

/// `(tid, name)` of every thread of this process.
fn threads() -> Vec<(u32, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let Ok(tid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let name = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
        out.push((tid, name.trim().to_owned()));
    }
    out
}

/// One fault scenario: holds the file-wide lock and the threads alive at its start.
struct Scenario {
    before: HashSet<u32>,
    /// `connected_clients` of each shared server at the start.
    clients: Vec<(ServerKind, u64)>,
    _serial: MutexGuard<'static, ()>,
}

fn scenario() -> Scenario {
    let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Shared servers first, so whatever they start is part of the baseline.
    for kind in support::kinds() {
        support::shared(kind);
    }
    Scenario {
        before: threads().into_iter().map(|(tid, _)| tid).collect(),
        clients: support::kinds()
            .into_iter()
            .map(|k| (k, connected_clients(k)))
            .collect(),
        _serial: serial,
    }
}

impl Scenario {
    /// Threads that appeared since the start and are still here: none may remain once
    /// the proxies and fake servers of the scenario were dropped. Test-harness threads
    /// (named after the tests, `fault_*`) come and go and are ignored; the test kit's
    /// threads (`vk-*`) must all be gone, whenever they started.
    fn leaked(&self) -> Vec<(u32, String)> {
        threads()
            .into_iter()
            .filter(|(tid, name)| {
                name.starts_with("vk-")
                    || (!self.before.contains(tid) && !name.starts_with("fault_"))
            })
            .collect()
    }

    /// No thread leaked, and every shared server is back to its number of clients (every
    /// connection of the scenario, proxied or broken, was closed on the server's side).
    fn assert_no_leaks(self) {
        // Joined threads can take a moment to leave /proc, closed sockets to be noticed.
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let leaked = self.leaked();
            if leaked.is_empty() {
                break;
            }
            assert!(Instant::now() < deadline, "threads leaked: {leaked:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
        for (kind, before) in &self.clients {
            loop {
                let now = connected_clients(*kind);
                if now <= *before {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{kind:?}: {now} clients connected, {before} before the scenario"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// `connected_clients` from `INFO clients` of the shared server of `kind` (counting the
/// connection asking).
fn connected_clients(kind: ServerKind) -> u64 {
    let port = support::shared(kind).port();
    let info = valkit::testkit::raw_command(port, &[b"INFO", b"clients"]).unwrap();
    let info = String::from_utf8_lossy(&info);
    info.lines()
        .find_map(|l| l.strip_prefix("connected_clients:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no connected_clients in {info}"))
}

/// (virtual size, resident size) of this process, in bytes.
fn memory() -> (u64, u64) {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let mut f = statm.split_whitespace().map(|x| x.parse::<u64>().unwrap());
    let (size, resident) = (f.next().unwrap(), f.next().unwrap());
    (size * 4096, resident * 4096)
}

/// Run `f` and return it with the growth of the resident size (the peak seen by a
/// sampler every 5 ms, and after `f`) and the largest single allocation made meanwhile.
fn measure<T>(f: impl FnOnce() -> T) -> (T, u64, usize) {
    let (_, rss0) = memory();
    LARGEST_ALLOC.store(0, Ordering::SeqCst);
    let done = std::sync::atomic::AtomicBool::new(false);
    let (out, peak) = std::thread::scope(|s| {
        let sampler = std::thread::Builder::new()
            .name("fault_sampler".into())
            .spawn_scoped(s, || {
                let mut peak = 0;
                while !done.load(Ordering::SeqCst) {
                    peak = peak.max(memory().1);
                    std::thread::sleep(Duration::from_millis(5));
                }
                peak
            })
            .unwrap();
        let out = f();
        let after = memory().1;
        done.store(true, Ordering::SeqCst);
        (out, sampler.join().unwrap().max(after))
    });
    let largest = LARGEST_ALLOC.load(Ordering::SeqCst);
    (out, peak.saturating_sub(rss0), largest)
}

const MIB: u64 = 1024 * 1024;

fn assert_within(started: Instant, low: Duration, high: Duration, what: &str) -> Duration {
    let took = started.elapsed();
    assert!(
        took >= low && took <= high,
        "{what}: took {took:?}, expected {low:?}..{high:?}"
    );
    took
}

/// CPU time (user + system) of the calling thread so far.
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
    // Fields after the command name (which is in parentheses and may contain spaces).
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 here (0-based 11, 12).
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux
}

/// Most connections of the pools in these tests.
const POOL_MAX: usize = 2;

/// A pool through the proxy (`cfg`), with one idle connection already open: the fault
/// hits it too.
fn warm_pool(cfg: &ConnectionConfig) -> Pool {
    let options = PoolOptions::new()
        .max_size(POOL_MAX)
        .checkout_timeout(Duration::from_secs(2));
    let pool = Pool::new(cfg.clone(), options).unwrap();
    pool.get().unwrap().exec(&cmd("PING")).unwrap();
    assert_eq!(pool.stats().idle, 1);
    pool
}

/// After a fault, with the proxy's toxics cleared: a new connection answers, and the pool
/// hands out connections that answer (never a broken one), within its size.
fn assert_recovers(proxy: &FaultProxy, cfg: &ConnectionConfig, pool: &Pool) {
    proxy.clear();
    let conn = Connection::open(cfg).expect("a new connection works");
    assert_eq!(
        conn.exec(&cmd("PING")).unwrap(),
        Value::Simple("PONG".into())
    );
    for _ in 0..3 {
        let started = Instant::now();
        let pooled = pool.get().expect("the pool recovers");
        let reply = pooled.exec(&cmd("PING"));
        assert_eq!(
            reply.unwrap(),
            Value::Simple("PONG".into()),
            "pooled connection after the fault"
        );
        assert!(started.elapsed() < Duration::from_secs(2));
    }
    let stats = pool.stats();
    assert!(stats.open <= POOL_MAX, "{stats:?}");
}

/// Config pointing at a proxy in front of the shared server of `kind`, with the given
/// read timeout.
fn proxied(kind: ServerKind) -> (FaultProxy, ConnectionConfig) {
    let server = support::shared(kind);
    let proxy = FaultProxy::start(server.port()).unwrap();
    let cfg = proxy.config_for(&server.config());
    (proxy, cfg)
}

fn big_value(len: usize) -> Vec<u8> {
    (0..len).map(|i| b'a' + (i % 26) as u8).collect()
}

// ---------------------------------------------------------------------------------------
// Faults on the way to real servers.

#[test]
fn fault_server_killed_mid_reply() {
    let sc = scenario();
    for kind in support::kinds() {
        let (proxy, cfg) = proxied(kind);
        let key = support::key("killed-mid-reply");
        let value = big_value(1024 * 1024);
        let pool = warm_pool(&cfg);
        // The failing call goes through a pooled connection.
        let conn = pool.get().unwrap();
        conn.exec(&cmd("SET").arg(&key).arg(&value[..])).unwrap();
        let down_before = proxy.bytes_forwarded(Direction::Downstream);

        // The server "dies" after 64 KiB of the 1 MiB reply.
        proxy.limit_data(Direction::Downstream, Some(64 * 1024));
        let started = Instant::now();
        let err = conn.exec(&cmd("GET").arg(&key)).unwrap_err();
        let took = assert_within(started, Duration::ZERO, Duration::from_secs(2), "GET");
        eprintln!("killed mid-reply {kind:?}: {err} after {took:?}");
        assert_eq!(err.kind(), ErrorKind::Io, "{kind:?}: {err}");
        assert!(err.is_ambiguous() && err.is_connection_broken());
        assert!(conn.is_broken());
        assert_eq!(
            proxy.bytes_forwarded(Direction::Downstream) - down_before,
            64 * 1024
        );
        assert_eq!(
            conn.exec(&cmd("PING")).unwrap_err().kind(),
            ErrorKind::Broken
        );
        // Back to the pool: a broken connection is dropped, never handed out again.
        drop(conn);
        let again = pool.get().unwrap();
        assert!(!again.is_broken());
        let got = again.exec(&cmd("GET").arg(&key)).unwrap_err();
        // Still limited: this (healthy) connection is cut the same way.
        assert_eq!(got.kind(), ErrorKind::Io, "{got}");
        drop(again);

        // A new connection reads the whole value.
        proxy.clear();
        let fresh = Connection::open(&cfg).unwrap();
        let got = fresh.exec(&cmd("GET").arg(&key)).unwrap();
        assert_eq!(got.as_bytes(), Some(&value[..]), "{kind:?}");
        assert_recovers(&proxy, &cfg, &pool);
        let got = pool.get().unwrap().exec(&cmd("GET").arg(&key)).unwrap();
        assert_eq!(got.as_bytes(), Some(&value[..]), "{kind:?} via the pool");
        fresh.exec(&cmd("DEL").arg(&key)).unwrap();
    }
    sc.assert_no_leaks();
}

#[test]
fn fault_connection_reset_mid_pipeline() {
    let sc = scenario();
    for kind in support::kinds() {
        let (proxy, cfg) = proxied(kind);
        let key = support::key("reset-mid-pipeline");
        let pool = warm_pool(&cfg);
        // The pipeline runs on a pooled connection (the warm one); a second one waits
        // idle in the pool, and the cut kills it too.
        let conn = pool.get().unwrap();
        drop(pool.get().unwrap());
        assert_eq!(pool.stats().idle, 1);
        conn.exec(&cmd("SET").arg(&key).arg(&big_value(100)[..]))
            .unwrap();
        // 10,000 GETs of 100 bytes: about 1 MiB of replies, slowed to 1 MiB/s so the
        // pipeline is still in flight when the proxy cuts every connection.
        let mut p = pipe();
        for _ in 0..10_000 {
            p = p.cmd(cmd("GET").arg(&key));
        }
        proxy.bandwidth(Direction::Downstream, Some(1024 * 1024));
        let started = Instant::now();
        let err = std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(150));
                proxy.cut();
            });
            conn.exec_pipeline(&p).unwrap_err()
        });
        let took = assert_within(
            started,
            Duration::from_millis(140),
            Duration::from_secs(2),
            "pipeline",
        );
        assert!(
            matches!(err.kind(), ErrorKind::Io),
            "{kind:?}: {err} after {took:?}"
        );
        assert!(err.is_ambiguous() && conn.is_broken());
        eprintln!("cut mid-pipeline {kind:?}: {err} after {took:?}");
        drop(conn);

        // A fresh connection runs the same pipeline in full.
        proxy.clear();
        let fresh = Connection::open(&cfg).unwrap();
        let replies = fresh.exec_pipeline(&p).unwrap();
        assert_eq!(replies.len(), 10_000);
        assert!(replies
            .iter()
            .all(|r| r.as_bytes() == Some(&big_value(100)[..])));
        fresh.exec(&cmd("DEL").arg(&key)).unwrap();
        assert_recovers(&proxy, &cfg, &pool);
        let replies = pool.get().unwrap().exec_pipeline(&p).unwrap();
        assert_eq!(replies.len(), 10_000);
    }
    sc.assert_no_leaks();
}

#[test]
fn fault_replies_sliced_into_single_bytes() {
    let sc = scenario();
    for kind in support::kinds() {
        for proto in [Protocol::Resp3, Protocol::Resp2] {
            let (proxy, mut cfg) = proxied(kind);
            cfg.protocol = proto;
            let key = support::key("sliced");
            let hkey = support::key("sliced-hash");
            let value = big_value(10 * 1024);
            let setup = Connection::open(&cfg).unwrap();
            setup.exec(&cmd("SET").arg(&key).arg(&value[..])).unwrap();
            let mut hset = cmd("HSET").arg(&hkey);
            for i in 0..20 {
                hset = hset.arg(format!("field{i}")).arg(format!("value-{i}"));
            }
            setup.exec(&hset).unwrap();

            // Every reply byte in its own write, 10 us apart (the handshake too).
            proxy.slicer(Direction::Downstream, 1, Duration::from_micros(10));
            let started = Instant::now();
            let cpu0 = thread_cpu();
            let conn = Connection::open(&cfg).unwrap();
            let got = conn.exec(&cmd("GET").arg(&key)).unwrap();
            assert_eq!(got.as_bytes(), Some(&value[..]), "{kind:?} {proto:?}");

            let all = conn.exec(&cmd("HGETALL").arg(&hkey)).unwrap();
            let pairs: Vec<(Vec<u8>, Vec<u8>)> = match all {
                Value::Map(m) => m
                    .into_iter()
                    .map(|(k, v)| {
                        (
                            k.as_bytes().unwrap().to_vec(),
                            v.as_bytes().unwrap().to_vec(),
                        )
                    })
                    .collect(),
                Value::Array(a) => a
                    .chunks(2)
                    .map(|kv| {
                        (
                            kv[0].as_bytes().unwrap().to_vec(),
                            kv[1].as_bytes().unwrap().to_vec(),
                        )
                    })
                    .collect(),
                other => panic!("{other:?}"),
            };
            assert_eq!(pairs.len(), 20);
            for (k, v) in pairs {
                let i = String::from_utf8(k).unwrap()["field".len()..].to_owned();
                assert_eq!(v, format!("value-{i}").into_bytes());
            }

            let mut p = pipe();
            for i in 0..50 {
                p = p.cmd(cmd("INCRBY").arg(&key).arg(0).arg(i).arg("x").arg(1));
                p = p.cmd(cmd("ECHO").arg(format!("echo-{i}")));
                p = p.cmd(cmd("STRLEN").arg(&key));
            }
            let replies = conn.exec_pipeline(&p).unwrap();
            assert_eq!(replies.len(), 150);
            for (i, r) in replies.chunks(3).enumerate() {
                // Wrong arity: an error reply for that command only.
                assert!(matches!(r[0], Value::Error(_)), "{:?}", r[0]);
                assert_eq!(r[1].as_bytes(), Some(format!("echo-{i}").as_bytes()));
                assert_eq!(r[2], Value::Int(10 * 1024));
            }
            let took = started.elapsed();
            let cpu = thread_cpu().saturating_sub(cpu0);
            assert!(!conn.is_broken());
            // About 12,000 one-byte reads: bounded time, and no busy waiting between them.
            assert!(
                took < Duration::from_secs(8),
                "{kind:?} {proto:?}: {took:?}"
            );
            assert!(
                cpu < Duration::from_millis(1500),
                "{kind:?} {proto:?}: cpu {cpu:?}"
            );
            eprintln!("sliced {kind:?} {proto:?}: {took:?}, client cpu {cpu:?}");
            setup.exec(&cmd("DEL").arg(&key).arg(&hkey)).unwrap();
        }
    }
    sc.assert_no_leaks();
}

#[test]
fn fault_blackholed_server_times_out_within_bounds() {
    let sc = scenario();
    for kind in support::kinds() {
        let (proxy, mut cfg) = proxied(kind);
        cfg.read_timeout = Some(Duration::from_millis(300));
        cfg.connect_timeout = Duration::from_millis(400);
        let pool = warm_pool(&cfg);
        let conn = pool.get().unwrap();
        conn.exec(&cmd("PING")).unwrap();

        // Nothing gets through any more, but the sockets stay open.
        proxy.hold(Direction::Both, true);
        let started = Instant::now();
        let err = conn.exec(&cmd("PING")).unwrap_err();
        let took = assert_within(
            started,
            Duration::from_millis(300),
            Duration::from_millis(800),
            "read",
        );
        assert_eq!(err.kind(), ErrorKind::Timeout, "{kind:?}: {err}");
        assert!(err.is_ambiguous() && conn.is_broken());
        eprintln!("blackhole {kind:?}: read timeout after {took:?}");
        drop(conn);

        // The handshake is bounded by the connect timeout.
        let started = Instant::now();
        let err = Connection::open(&cfg).unwrap_err();
        let took = assert_within(
            started,
            Duration::from_millis(400),
            Duration::from_millis(900),
            "handshake",
        );
        assert_eq!(err.kind(), ErrorKind::Timeout, "{kind:?}: {err}");
        eprintln!("blackhole {kind:?}: handshake timeout after {took:?}");

        // A checkout meanwhile: the broken connection was discarded, a new one cannot
        // finish its handshake; with nothing open the pool returns that connect timeout
        // itself, within the connect bound (not the 600 ms checkout timeout plus more).
        let started = Instant::now();
        let err = pool.get_timeout(Duration::from_millis(600)).unwrap_err();
        let took = assert_within(
            started,
            Duration::from_millis(390),
            Duration::from_millis(1100),
            "pool checkout",
        );
        assert_eq!(err.kind(), ErrorKind::Timeout, "{kind:?}: {err}");
        eprintln!("blackhole {kind:?}: pool checkout failed after {took:?}: {err}");

        assert_recovers(&proxy, &cfg, &pool);
    }
    sc.assert_no_leaks();
}

#[test]
fn fault_bandwidth_limited_link() {
    let sc = scenario();
    for kind in support::kinds() {
        let (proxy, cfg) = proxied(kind);
        let pool = warm_pool(&cfg);
        let key = support::key("slow-link");
        let value = big_value(100 * 1024);
        let conn = Connection::open(&cfg).unwrap();
        conn.exec(&cmd("SET").arg(&key).arg(&value[..])).unwrap();
        proxy.bandwidth(Direction::Downstream, Some(64 * 1024));
        let started = Instant::now();
        let got = conn.exec(&cmd("GET").arg(&key)).unwrap();
        // 100 KiB at 64 KiB/s: about 1.56 s.
        let took = assert_within(
            started,
            Duration::from_millis(1400),
            Duration::from_millis(3000),
            "GET",
        );
        assert_eq!(got.as_bytes(), Some(&value[..]));
        eprintln!("bandwidth {kind:?}: 100 KiB at 64 KiB/s in {took:?}");
        conn.exec(&cmd("DEL").arg(&key)).unwrap();
        assert_recovers(&proxy, &cfg, &pool);
    }
    sc.assert_no_leaks();
}

#[test]
fn fault_refused_connection_is_a_retryable_connect_error() {
    let sc = scenario();
    for kind in support::kinds() {
        let (proxy, cfg) = proxied(kind);
        let open = Connection::open(&cfg).unwrap();
        let pool = warm_pool(&cfg);
        proxy.set_down(true);
        let started = Instant::now();
        let err = Connection::open(&cfg).unwrap_err();
        assert_within(
            started,
            Duration::ZERO,
            Duration::from_millis(500),
            "connect",
        );
        assert_eq!(err.kind(), ErrorKind::Connect, "{kind:?}: {err}");
        assert!(err.is_retryable());
        eprintln!("down {kind:?}: {err} after {:?}", started.elapsed());
        // "Down" refuses new connections; the open one still works.
        open.exec(&cmd("PING")).unwrap();
        // The pool's idle connection still serves; a second one cannot be opened.
        let idle = pool.get().unwrap();
        idle.exec(&cmd("PING")).unwrap();
        let started = Instant::now();
        let err = pool.get_timeout(Duration::from_millis(300)).unwrap_err();
        let took = assert_within(
            started,
            Duration::ZERO,
            Duration::from_millis(800),
            "pool checkout",
        );
        assert_eq!(err.kind(), ErrorKind::PoolExhausted, "{kind:?}: {err}");
        assert!(
            std::error::Error::source(&err).is_some(),
            "the connect failure"
        );
        eprintln!("down {kind:?}: second pool checkout failed after {took:?}: {err}");
        drop(idle);
        assert_recovers(&proxy, &cfg, &pool);
    }
    sc.assert_no_leaks();
}

// ---------------------------------------------------------------------------------------
// Hostile replies from the fake server.

/// Send GET to a fake server answering `reply`, with `limits` and a 300 ms read timeout.
fn get_from_fake(reply: &[u8], limits: Limits) -> (valkit::Error, Duration) {
    let fake =
        FakeServer::start(vec![Step::Read, Step::Reply(reply.to_vec()), Step::Hang]).unwrap();
    let mut cfg = fake.config();
    cfg.limits = limits;
    cfg.read_timeout = Some(Duration::from_millis(300));
    let conn = Connection::open(&cfg).unwrap();
    let started = Instant::now();
    let err = conn.exec(&cmd("GET").arg("k")).unwrap_err();
    let took = started.elapsed();
    assert!(conn.is_broken());
    assert_eq!(fake.requests(), vec![vec![b"GET".to_vec(), b"k".to_vec()]]);
    (err, took)
}

#[test]
fn fault_hostile_lengths_keep_memory_flat() {
    let sc = scenario();
    let mut raised = Limits::default();
    raised.max_bulk_len = usize::MAX;
    raised.max_aggregate_len = usize::MAX;
    let mut strict = Limits::default();
    strict.max_aggregate_len = 1_000_000;

    // A hostile length followed by 100 KiB of body: read straight into the value's own
    // buffer (tests/large_values.rs), which grows only with what arrives.
    let mut with_body = b"$4294967296\r\n".to_vec();
    with_body.extend_from_slice(&[b'x'; 100 * 1024]);
    let cases: [(&[u8], Limits, Option<ErrorKind>); 5] = [
        // 4 GiB bulk string: over the 512 MiB default limit.
        (
            b"$4294967296\r\n",
            Limits::default(),
            Some(ErrorKind::Limit),
        ),
        // Limit raised: the client waits for the data that never comes.
        (b"$4294967296\r\n", raised, Some(ErrorKind::Timeout)),
        (&with_body, raised, Some(ErrorKind::Timeout)),
        // 10 million elements: within the default limit (2^24), so a bounded wait.
        (
            b"*10000000\r\n",
            Limits::default(),
            Some(ErrorKind::Timeout),
        ),
        (b"*10000000\r\n", strict, Some(ErrorKind::Limit)),
    ];
    for (reply, limits, want) in cases {
        let ((err, took), rss_growth, largest) = measure(|| get_from_fake(reply, limits));
        let label = String::from_utf8_lossy(reply).trim().to_owned();
        assert_eq!(Some(err.kind()), want, "{label}: {err}");
        if err.kind() == ErrorKind::Timeout {
            assert!(
                took >= Duration::from_millis(290) && took < Duration::from_millis(900),
                "{label}: {took:?}"
            );
        } else {
            assert!(took < Duration::from_millis(200), "{label}: {took:?}");
        }
        assert!(rss_growth < 4 * MIB, "{label}: RSS grew {rss_growth} bytes");
        assert!(
            largest < MIB as usize,
            "{label}: one allocation of {largest} bytes"
        );
        eprintln!(
            "{label} ({:?}): {err} after {took:?}; RSS +{} KiB, largest allocation {largest} B",
            limits.max_bulk_len.min(limits.max_aggregate_len),
            rss_growth / 1024
        );
    }
    sc.assert_no_leaks();
}

#[test]
fn fault_deep_nesting_is_a_limit_error_without_stack_overflow() {
    let sc = scenario();
    let reply = b"*1\r\n".repeat(100_000);
    let mut unlimited = Limits::default();
    unlimited.max_depth = usize::MAX; // capped at Limits::HARD_MAX_DEPTH
    for limits in [Limits::default(), unlimited] {
        // A small stack: nothing may recurse per nesting level.
        let reply = reply.clone();
        let (err, _) = std::thread::Builder::new()
            .name("fault_small_stack".into())
            .stack_size(256 * 1024)
            .spawn(move || get_from_fake(&reply, limits))
            .unwrap()
            .join()
            .expect("no stack overflow");
        assert_eq!(err.kind(), ErrorKind::Limit, "{err}");
        assert_eq!(err.limit(), Some(valkit::Limit::Depth), "{err}");
        eprintln!("100,000-deep nesting: {err}");
    }
    sc.assert_no_leaks();
}

#[test]
fn fault_garbage_bytes_are_a_protocol_error() {
    let sc = scenario();
    let cases: [&[u8]; 5] = [
        b"?garbage\r\n",
        b"\x00\xff\xfe\x80\r\n",
        b"HTTP/1.1 400 Bad Request\r\n\r\n",
        b":12a\r\n",
        b"$3\r\nabcXY",
    ];
    for reply in cases {
        let (err, took) = get_from_fake(reply, Limits::default());
        assert_eq!(err.kind(), ErrorKind::Protocol, "{reply:?}: {err}");
        assert!(took < Duration::from_millis(200), "{reply:?}: {took:?}");
        eprintln!(
            "garbage {:?}: {err} after {took:?}",
            String::from_utf8_lossy(reply)
        );
    }
    // (A valid reply followed by garbage on the same connection: tests/conn.rs.)
    sc.assert_no_leaks();
}

/// A large bulk string reply (read straight into its own buffer, past the first reads):
/// arriving in many small pieces it comes out whole, and the connection stays in step; a
/// timeout, a close or a wrong terminator in the middle of its body break the connection.
#[test]
fn fault_large_bulk_in_pieces_timeout_close_and_bad_terminator_mid_body() {
    let sc = scenario();
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let mut wire = format!("${}\r\n", body.len()).into_bytes();
    wire.extend_from_slice(&body);
    wire.extend_from_slice(b"\r\n");
    let fake = FakeServer::start(vec![
        Step::Read,
        Step::ReplySliced {
            bytes: wire.clone(),
            piece: 3000,
            delay: Duration::from_micros(200),
        },
        Step::Read,
        // A large bulk and a small reply in one write: the next reply stays in the stream.
        Step::Reply([&wire[..], b":7\r\n"].concat()),
        Step::Read,
        Step::Reply(wire[..wire.len() - 2].to_vec()),
        Step::Reply(b"\r".to_vec()),
        Step::Sleep(Duration::from_millis(20)),
        Step::Reply(b"\n".to_vec()),
        Step::Read,
        // A push first (set aside), then the large bulk, then an array holding one.
        Step::Reply([&b">2\r\n$7\r\nmessage\r\n$3\r\nabc\r\n"[..], &wire[..]].concat()),
        Step::Read,
        Step::ReplySliced {
            bytes: [&b"*3\r\n:1\r\n"[..], &wire[..], b"+x\r\n"].concat(),
            piece: 7000,
            delay: Duration::from_micros(100),
        },
        Step::Read,
        Step::Reply(b"+OK\r\n".to_vec()),
    ])
    .unwrap();
    let mut cfg = fake.config();
    cfg.read_timeout = Some(Duration::from_secs(5));
    let conn = Connection::open(&cfg).unwrap();
    let got: Option<Vec<u8>> = conn.query(&cmd("GET").arg("k")).unwrap();
    assert!(got.as_deref() == Some(&body[..]), "sliced: value intact");
    let replies = conn
        .exec_pipeline(&pipe().cmd(cmd("GET").arg("k")).cmd(cmd("INCR").arg("n")))
        .unwrap();
    assert_eq!(replies.len(), 2);
    assert!(replies[0] == Value::Bulk(body.clone().into()));
    assert_eq!(replies[1], Value::Int(7));
    // The CRLF split off and late.
    let got = conn.exec(&cmd("GET").arg("k")).unwrap();
    assert!(got == Value::Bulk(body.clone().into()));
    let got: Option<Vec<u8>> = conn.query(&cmd("GET").arg("k")).unwrap();
    assert!(
        got.as_deref() == Some(&body[..]),
        "after a push: value intact"
    );
    let pushes = conn.take_pushes();
    assert_eq!(pushes.len(), 1, "the push was set aside");
    let (one, big, x): (i64, Vec<u8>, String) = conn.query(&cmd("X")).unwrap();
    assert_eq!((one, x.as_str()), (1, "x"));
    assert!(big == body, "inside an array: value intact");
    assert_eq!(conn.exec(&cmd("PING")).unwrap(), Value::Simple("OK".into()));
    assert!(!conn.is_broken());
    drop(conn);
    drop(fake);

    // Mid-body: silence past the read timeout, a close, a wrong terminator.
    let half = wire[..150_000].to_vec();
    let mut bad = wire[..wire.len() - 2].to_vec();
    bad.extend_from_slice(b"XY");
    let cases: [(Vec<Step>, ErrorKind, &str); 3] = [
        (
            vec![Step::Reply(half.clone()), Step::Hang],
            ErrorKind::Timeout,
            "silence",
        ),
        (vec![Step::Reply(half), Step::Close], ErrorKind::Io, "close"),
        (
            vec![Step::Reply(bad), Step::Hang],
            ErrorKind::Protocol,
            "terminator",
        ),
    ];
    for (steps, want, what) in cases {
        let fake = FakeServer::start([vec![Step::Read], steps].concat()).unwrap();
        let mut cfg = fake.config();
        cfg.read_timeout = Some(Duration::from_millis(300));
        let conn = Connection::open(&cfg).unwrap();
        let started = Instant::now();
        let err = conn
            .query::<Option<Vec<u8>>>(&cmd("GET").arg("k"))
            .unwrap_err();
        let took = started.elapsed();
        assert_eq!(err.kind(), want, "{what}: {err}");
        if want == ErrorKind::Timeout {
            assert!(
                took >= Duration::from_millis(290) && took < Duration::from_millis(900),
                "{what}: {took:?}"
            );
        } else {
            assert!(took < Duration::from_millis(250), "{what}: {took:?}");
        }
        assert!(conn.is_broken(), "{what}: the connection is broken");
        assert_eq!(
            conn.exec(&cmd("PING")).unwrap_err().kind(),
            ErrorKind::Broken,
            "{what}"
        );
    }
    sc.assert_no_leaks();
}

/// A server trickling a large body keeps every read within the read timeout, but the reply
/// as a whole must still fail at its deadline (the direct body read looks at it too).
#[test]
fn fault_trickled_large_bulk_fails_at_the_read_timeout() {
    let sc = scenario();
    let mut wire = b"$200000\r\n".to_vec();
    wire.extend_from_slice(&[b'z'; 200_002]);
    let fake = FakeServer::start(vec![
        Step::Read,
        Step::ReplySliced {
            bytes: wire,
            piece: 20_000,
            delay: Duration::from_millis(100),
        },
        Step::Hang,
    ])
    .unwrap();
    let mut cfg = fake.config();
    cfg.read_timeout = Some(Duration::from_millis(350));
    let conn = Connection::open(&cfg).unwrap();
    let started = Instant::now();
    let err = conn.exec(&cmd("GET").arg("k")).unwrap_err();
    let took = started.elapsed();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(
        took >= Duration::from_millis(340) && took < Duration::from_millis(800),
        "{took:?}"
    );
    assert!(conn.is_broken());
    drop(conn);
    drop(fake);
    sc.assert_no_leaks();
}

#[test]
fn fault_fake_server_replies_in_pieces_and_closes_mid_frame() {
    let sc = scenario();
    // Sliced by the fake server itself (no proxy), then a half frame and a close.
    let fake = FakeServer::start(vec![
        Step::Read,
        Step::ReplySliced {
            bytes: b"*2\r\n$5\r\nhello\r\n:42\r\n".to_vec(),
            piece: 1,
            delay: Duration::from_millis(1),
        },
        Step::Read,
        Step::Reply(b"$10\r\nabc".to_vec()),
        Step::Close,
    ])
    .unwrap();
    let conn = Connection::open(&fake.config()).unwrap();
    let v = conn.exec(&cmd("X")).unwrap();
    assert_eq!(
        v,
        Value::Array(vec![Value::Bulk(b"hello".into()), Value::Int(42)])
    );
    let started = Instant::now();
    let err = conn.exec(&cmd("GET").arg("k")).unwrap_err();
    assert_within(
        started,
        Duration::ZERO,
        Duration::from_millis(500),
        "half frame",
    );
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    assert!(conn.is_broken());
    assert_eq!(fake.requests().len(), 2);
    drop(fake);

    // `replying` answers every request, on every connection.
    let fake = FakeServer::replying(b"+PONG\r\n").unwrap();
    for _ in 0..3 {
        let conn = Connection::open(&fake.config()).unwrap();
        let replies = conn
            .exec_pipeline(&pipe().cmd(cmd("PING")).cmd(cmd("PING")))
            .unwrap();
        assert_eq!(replies, vec![Value::Simple("PONG".into()); 2]);
    }
    assert_eq!(fake.accepted(), 3);
    assert_eq!(fake.requests().len(), 6);
    drop(fake);
    sc.assert_no_leaks();
}

#[test]
fn fault_proxy_counts_and_joins_its_threads() {
    let sc = scenario();
    let kind = support::kinds()[0];
    let (proxy, cfg) = proxied(kind);
    let conns: Vec<Connection> = (0..5).map(|_| Connection::open(&cfg).unwrap()).collect();
    for c in &conns {
        c.exec(&cmd("PING")).unwrap();
    }
    assert_eq!(proxy.accepted(), 5);
    assert_eq!(proxy.connections(), 5);
    assert!(proxy.bytes_forwarded(Direction::Upstream) > 0);
    assert!(proxy.bytes_forwarded(Direction::Downstream) > 0);
    let pumps = threads()
        .iter()
        .filter(|(_, n)| n.starts_with("vk-proxy-up") || n.starts_with("vk-proxy-dow"))
        .count();
    assert_eq!(pumps, 10);
    // The leak check sees them (it would fail if they outlived the proxy).
    assert!(sc.leaked().len() >= 11, "{:?}", sc.leaked());
    // Cut: every connection closes, and its pumps end.
    proxy.cut();
    for c in &conns {
        assert_eq!(c.exec(&cmd("PING")).unwrap_err().kind(), ErrorKind::Io);
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while proxy.connections() != 0 {
        assert!(Instant::now() < deadline, "pumps still running after cut");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Latency per chunk, each way.
    proxy.latency(Direction::Both, Duration::from_millis(50));
    let conn = Connection::open(&cfg).unwrap();
    let started = Instant::now();
    conn.exec(&cmd("PING")).unwrap();
    assert_within(
        started,
        Duration::from_millis(100),
        Duration::from_millis(400),
        "PING with 2 x 50 ms",
    );
    // Dropping the proxy with connections open joins everything.
    drop(proxy);
    assert_eq!(conn.exec(&cmd("PING")).unwrap_err().kind(), ErrorKind::Io);
    sc.assert_no_leaks();
}
