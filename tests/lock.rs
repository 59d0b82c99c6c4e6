//! Distributed locks against real servers (Valkey and Redis; on Valkey both the native
//! `DELIFEQ` / `SET … IFEQ` path and the forced Lua path): guard outcomes, expiry while
//! held, fencing, blocking hand-off and timeout, mutual exclusion across two OS processes,
//! the watchdog (long work, takeover, a paused server), Redlock with 3 and 5 servers, and
//! fencing across a forced failover.
//!
//! The behaviour tests run on every [`support::targets`]: the shared Valkey and Redis
//! servers and the shared Valkey cluster (through a cluster `Client`). These stay on single
//! servers, being about one server process or about independent servers:
//! - `native_commands_are_detected_once_per_server` (second half): counts `COMMAND INFO`,
//!   `DELIFEQ` and `SET` calls in one server's `INFO commandstats` (the detection itself
//!   runs on the cluster too, in its first half);
//! - `watchdog_tells_the_holder_before_the_ttl_ends_when_the_server_is_paused`: pauses
//!   one server process;
//! - `runs_on_a_connection_a_pool_and_a_client`: about the executor types over one
//!   server (a cluster has only the client, which every other test here uses);
//! - `redlock_with_three_and_five_servers_survives_a_minority_and_refuses_without_majority`:
//!   Redlock needs N independent servers, and kills some of them;
//! - `fencing_tokens_stay_monotonic_across_a_forced_failover`: partitions and fails over
//!   one primary+replica pair through a fault proxy;
//! - `an_unreachable_server_is_a_typed_unavailable_error`: kills its own server.
#![cfg(feature = "testkit")]

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{key, kinds, shared, targets, thread_names, Exec, Target};
use valkit::lock::{LeaseLost, LockErrorKind, LockGuard, Locks, NativeCommands, Redlock, Release};
use valkit::testkit::{FaultProxy, Server, ServerKind, ServerOptions};
use valkit::{cmd, Client, Commands, Connection, Execute, Pool, PoolOptions};

/// Every (server kind, command path) to test: the detected path on each kind, plus the
/// forced Lua path on Valkey (Redis 7.0 has no native commands, so it is Lua already).
/// Tests that start watchdogs run one at a time, so that
/// [`watchdog_threads_are_joined_before_release_returns`] can count threads exactly.
static WATCHDOG_TESTS: Mutex<()> = Mutex::new(());

fn watchdog_test() -> std::sync::MutexGuard<'static, ()> {
    WATCHDOG_TESTS.lock().unwrap_or_else(|e| e.into_inner())
}

fn paths() -> Vec<(Target, NativeCommands)> {
    let mut v = Vec::new();
    for t in targets() {
        v.push((t, NativeCommands::Auto));
        if t.kind() == ServerKind::Valkey {
            v.push((t, NativeCommands::Never));
        }
    }
    v
}

fn pool(server: &Server, size: usize) -> Pool {
    Pool::new(server.config(), PoolOptions::new().max_size(size)).unwrap()
}

/// Locks on `t`: over a pool of 16 on a single server, over a cluster client on the cluster.
fn locks(t: Target, native: NativeCommands) -> Locks<Exec> {
    Locks::builder(t.pool(16)).native_commands(native).build()
}

fn conn(t: Target) -> Exec {
    t.conn()
}

fn exists(c: &impl Execute, k: &str) -> bool {
    c.query::<i64>(&cmd("EXISTS").arg(k)).unwrap() == 1
}

#[test]
fn native_commands_are_detected_once_per_server() {
    for (t, native) in paths() {
        let l = locks(t, native);
        let expected = t.kind() == ServerKind::Valkey && native == NativeCommands::Auto;
        assert_eq!(
            l.uses_native_commands().unwrap(),
            expected,
            "{t:?} {native:?}"
        );
    }
    // Asked once: count COMMAND INFO on a server of our own.
    for kind in kinds() {
        let server = ServerOptions::new(kind).start().unwrap();
        let admin = Connection::open(&server.config()).unwrap();
        let l = Locks::new(Connection::open(&server.config()).unwrap());
        for _ in 0..5 {
            let mut g = l
                .try_acquire("probe", Duration::from_secs(5))
                .unwrap()
                .unwrap();
            g.reacquire().unwrap();
            assert_eq!(g.release().unwrap(), Release::Released);
        }
        let stats: String = admin.query(&cmd("INFO").arg("commandstats")).unwrap();
        let calls = |name: &str| -> u64 {
            stats
                .lines()
                .find_map(|l| l.strip_prefix(&format!("cmdstat_{name}:calls=")))
                .and_then(|rest| rest.split(',').next())
                .map_or(0, |n| n.parse().unwrap())
        };
        assert_eq!(calls("command|info"), 1, "{kind:?}: {stats}");
        let native = kind == ServerKind::Valkey;
        assert_eq!(calls("delifeq"), if native { 5 } else { 0 }, "{kind:?}");
        // SET … IFEQ for the reacquires on Valkey; on Redis the only SETs are the ones
        // inside the acquire script (lock + fence).
        assert_eq!(calls("set"), if native { 15 } else { 10 }, "{kind:?}");
    }
}

#[test]
fn guard_outcomes_extend_reacquire_and_ownership() {
    for (t, native) in paths() {
        let l = locks(t, native);
        let c = conn(t);
        let name = key(&format!("guard-{}-{native:?}", t.label()));
        let ttl = Duration::from_secs(2);

        let mut g = l.try_acquire(&name, ttl).unwrap().expect("free lock");
        assert!(l.try_acquire(&name, ttl).unwrap().is_none(), "exclusive");
        assert!(g.is_owned().unwrap());
        let left = g.remaining_ttl().unwrap().unwrap();
        assert!(
            left > Duration::from_millis(1500) && left <= ttl,
            "{left:?}"
        );
        assert!(g.time_left() <= ttl && g.time_left() > Duration::from_millis(1500));

        // extend adds to what is left; reacquire resets to the full TTL.
        g.extend(Duration::from_secs(3)).unwrap();
        let left = g.remaining_ttl().unwrap().unwrap();
        assert!(
            left > Duration::from_millis(4500),
            "{t:?} {native:?}: {left:?}"
        );
        assert!(g.time_left() > Duration::from_millis(4400));
        g.reacquire().unwrap();
        let left = g.remaining_ttl().unwrap().unwrap();
        assert!(
            left <= ttl && left > Duration::from_millis(1500),
            "{left:?}"
        );

        let k = g.key().to_owned();
        assert_eq!(g.release().unwrap(), Release::Released);
        assert!(!exists(&c, &k), "released lock key still there");

        // Drop releases.
        {
            let _g = l.try_acquire(&name, ttl).unwrap().unwrap();
            assert!(exists(&c, &k));
        }
        assert!(!exists(&c, &k), "dropped guard did not release");

        // Someone else's value: release leaves it, extend fails with LeaseLost.
        let mut g = l.try_acquire(&name, ttl).unwrap().unwrap();
        c.query::<()>(&cmd("SET").arg(&k).arg("intruder").arg("PX").arg(10_000))
            .unwrap();
        assert!(!g.is_owned().unwrap());
        assert_eq!(g.remaining_ttl().unwrap(), None);
        let e = g.extend(Duration::from_secs(1)).unwrap_err();
        assert_eq!(e.kind(), LockErrorKind::LeaseLost, "{e}");
        assert_eq!(g.reacquire().unwrap_err().kind(), LockErrorKind::LeaseLost);
        assert_eq!(g.lease_lost(), Some(LeaseLost::Taken));
        assert_eq!(g.release().unwrap(), Release::TakenByOther);
        assert_eq!(c.get_string(&k).unwrap().as_deref(), Some("intruder"));
        c.del([&k]).unwrap();

        // Bad input is a typed error.
        let e = l.try_acquire("", ttl).unwrap_err();
        assert_eq!(e.kind(), LockErrorKind::InvalidArgument);
        let e = l.try_acquire(&name, Duration::ZERO).unwrap_err();
        assert_eq!(e.kind(), LockErrorKind::InvalidArgument);
        let e = l
            .acquire_within(&name, Duration::from_secs(100_000_000), Duration::ZERO)
            .unwrap_err();
        assert_eq!(e.kind(), LockErrorKind::InvalidArgument);
    }
}

#[test]
fn expiry_while_held_never_resurrects_and_fences_increase() {
    for (t, native) in paths() {
        let l = locks(t, native);
        let c = conn(t);
        let name = key(&format!("expiry-{}-{native:?}", t.label()));
        let mut fences = Vec::new();

        let mut a = l
            .try_acquire(&name, Duration::from_millis(150))
            .unwrap()
            .unwrap();
        fences.push(a.fencing_token());
        let k = a.key().to_owned();
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(a.lease_lost(), Some(LeaseLost::Expired), "deadline passed");
        assert!(!exists(&c, &k), "the key expired on the server");

        // Expired and nobody took it: extend must not recreate it.
        let e = a.extend(Duration::from_secs(5)).unwrap_err();
        assert_eq!(e.kind(), LockErrorKind::LeaseLost);
        assert!(!exists(&c, &k), "extend resurrected an expired lock");

        // Someone else takes it; the first holder can neither extend nor release it.
        let b = l
            .try_acquire(&name, Duration::from_secs(5))
            .unwrap()
            .unwrap();
        fences.push(b.fencing_token());
        assert_eq!(a.reacquire().unwrap_err().kind(), LockErrorKind::LeaseLost);
        assert!(!a.is_owned().unwrap());
        let pttl_before = b.remaining_ttl().unwrap().unwrap();
        assert_eq!(a.release().unwrap(), Release::TakenByOther);
        assert!(
            b.is_owned().unwrap(),
            "the stale holder's release deleted it"
        );
        assert!(b.remaining_ttl().unwrap().unwrap() <= pttl_before);

        assert_eq!(b.release().unwrap(), Release::Released);
        let d = l
            .try_acquire(&name, Duration::from_millis(100))
            .unwrap()
            .unwrap();
        fences.push(d.fencing_token());
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(d.release().unwrap(), Release::Expired);
        for _ in 0..20 {
            let g = l
                .try_acquire(&name, Duration::from_secs(5))
                .unwrap()
                .unwrap();
            fences.push(g.fencing_token());
        }
        assert!(
            fences.windows(2).all(|w| w[0] < w[1]),
            "{t:?} {native:?}: fencing tokens not strictly increasing: {fences:?}"
        );
    }
}

#[test]
fn blocking_acquire_is_woken_by_a_release_and_times_out_typed() {
    for (t, native) in paths() {
        // A 3 s safety-net poll: a hand-off faster than that came from the wake-up.
        let l = Locks::builder(t.pool(4))
            .native_commands(native)
            .max_poll(Duration::from_secs(3))
            .build();
        let c = conn(t);
        let name = key(&format!("handoff-{}-{native:?}", t.label()));
        let holder = l
            .try_acquire(&name, Duration::from_secs(10))
            .unwrap()
            .unwrap();
        let waiters_key = format!("{}:waiters", holder.key());

        // Timeout: the typed error, after the wait and not much later.
        let t0 = Instant::now();
        let e = l
            .acquire_within(&name, Duration::from_secs(1), Duration::from_millis(300))
            .unwrap_err();
        let waited = t0.elapsed();
        assert_eq!(e.kind(), LockErrorKind::NotAcquired, "{e}");
        assert!(e.is_not_acquired());
        assert!(
            waited >= Duration::from_millis(300) && waited < Duration::from_millis(1500),
            "{waited:?}"
        );
        c.del([&waiters_key]).unwrap();

        // Hand-off: a waiter blocked on the lock gets it soon after the release.
        let (l2, n2) = (l.clone(), name.clone());
        let waiter = std::thread::spawn(move || {
            let g = l2
                .acquire_within(&n2, Duration::from_secs(5), Duration::from_secs(8))
                .unwrap();
            (Instant::now(), g.fencing_token())
        });
        let until = Instant::now() + Duration::from_secs(5);
        while !exists(&c, &waiters_key) {
            assert!(Instant::now() < until, "the waiter never waited");
            std::thread::sleep(Duration::from_millis(5));
        }
        // Let it get into its BLPOP.
        std::thread::sleep(Duration::from_millis(100));
        // The waiter marked the holder's token: ownership checks and extend still work
        // (on the native path SET … IFEQ misses and the script takes over).
        let mut holder = holder;
        assert!(holder.is_owned().unwrap());
        let left = holder.remaining_ttl().unwrap().unwrap();
        holder.extend(Duration::from_secs(2)).unwrap();
        let after = holder.remaining_ttl().unwrap().unwrap();
        assert!(
            after > left + Duration::from_secs(1),
            "{left:?} -> {after:?}"
        );
        let holder_fence = holder.fencing_token();
        let released = Instant::now();
        assert_eq!(holder.release().unwrap(), Release::Released);
        let (acquired, fence) = waiter.join().unwrap();
        let handoff = acquired.saturating_duration_since(released);
        eprintln!("{t:?} {native:?}: hand-off after release in {handoff:?}");
        assert!(fence > holder_fence);
        assert!(
            handoff < Duration::from_millis(750),
            "{t:?} {native:?}: hand-off took {handoff:?} (the poll is 1.5-3 s: no wake-up?)"
        );
    }
}

const CHILD_URL: &str = "VALKIT_LOCK_TEST_CHILD_URL";
const CHILD_NAME: &str = "VALKIT_LOCK_TEST_CHILD_NAME";
const CHILD_LUA: &str = "VALKIT_LOCK_TEST_CHILD_LUA";
const THREADS: usize = 8;
const INCREMENTS: usize = 1000;

/// One process's part: wait for the other process, then 8 threads x INCREMENTS of
/// GET-then-SET on a plain counter under the lock. `url` is a server's URL, or `cluster:`
/// and seed URLs separated by commas (a cluster client).
fn mutex_role(url: &str, name: &str, native: NativeCommands) -> Vec<u64> {
    let pool: Exec = support::child_exec(url, |url| {
        Arc::new(Pool::from_url(url, PoolOptions::new().max_size(THREADS + 2)).unwrap())
    });
    let l = Locks::builder(pool.clone())
        .native_commands(native)
        .max_poll(Duration::from_millis(50))
        .build();
    let ready = format!("{name}:ready");
    pool.incr(&ready).unwrap();
    let until = Instant::now() + Duration::from_secs(30);
    while pool.get_string(&ready).unwrap().as_deref() != Some("2") {
        assert!(Instant::now() < until, "the other process never came");
        std::thread::sleep(Duration::from_millis(2));
    }
    let counter = format!("{name}:counter");
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let (l, pool, counter, name) =
                (l.clone(), pool.clone(), counter.clone(), name.to_owned());
            std::thread::spawn(move || {
                let mut fences = Vec::with_capacity(INCREMENTS);
                for _ in 0..INCREMENTS {
                    let g = l
                        .acquire_within(&name, Duration::from_secs(10), Duration::from_secs(60))
                        .unwrap();
                    let n: i64 = pool
                        .get_string(&counter)
                        .unwrap()
                        .map_or(0, |s| s.parse().unwrap());
                    pool.set(&counter, n + 1).unwrap();
                    fences.push(g.fencing_token());
                    assert_eq!(g.release().unwrap(), Release::Released);
                }
                fences
            })
        })
        .collect();
    threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect()
}

/// The child role, run by [`mutual_exclusion_across_two_processes`] re-executing this test
/// binary; does nothing in a normal run.
#[test]
fn lock_mutex_child() {
    if let (Ok(url), Ok(name)) = (std::env::var(CHILD_URL), std::env::var(CHILD_NAME)) {
        let native = if std::env::var(CHILD_LUA).is_ok() {
            NativeCommands::Never
        } else {
            NativeCommands::Auto
        };
        let fences = mutex_role(&url, &name, native);
        let mut sorted = fences.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(
            sorted.len(),
            fences.len(),
            "duplicate fencing tokens in the child"
        );
    }
}

#[test]
fn mutual_exclusion_across_two_processes() {
    for t in targets() {
        let url = t.child_url();
        let name = key(&format!("mutex-{}", t.label()));
        let mut child = std::process::Command::new(std::env::current_exe().unwrap());
        child
            .args(["--exact", "lock_mutex_child", "--test-threads=1"])
            .env(CHILD_URL, &url)
            .env(CHILD_NAME, &name)
            .stdout(std::process::Stdio::null());
        // On Valkey the child uses the Lua path while this process uses the native one:
        // both paths must exclude each other.
        if t.kind() == ServerKind::Valkey {
            child.env(CHILD_LUA, "1");
        }
        let started = Instant::now();
        let mut child = child.spawn().unwrap();
        let fences = mutex_role(&url, &name, NativeCommands::Auto);
        assert!(child.wait().unwrap().success(), "child process failed");
        let total: i64 = conn(t)
            .get_string(format!("{name}:counter"))
            .unwrap()
            .unwrap()
            .parse()
            .unwrap();
        eprintln!(
            "{t:?}: 2 processes x {THREADS} threads x {INCREMENTS} increments in {:?}: {total}",
            started.elapsed()
        );
        assert_eq!(
            total,
            (2 * THREADS * INCREMENTS) as i64,
            "{t:?}: lost updates"
        );
        let mut sorted = fences.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), fences.len(), "duplicate fencing tokens");
    }
}

#[test]
fn watchdog_keeps_a_one_second_lock_through_five_seconds_of_work() {
    let _serial = watchdog_test();
    std::thread::scope(|s| {
        for (t, native) in paths() {
            s.spawn(move || {
                let l = locks(t, native);
                let c = conn(t);
                let name = key(&format!("watchdog-{}-{native:?}", t.label()));
                let g = l
                    .try_acquire(&name, Duration::from_secs(1))
                    .unwrap()
                    .unwrap()
                    .watchdog()
                    .unwrap();
                let k = g.key().to_owned();
                let started = Instant::now();
                while started.elapsed() < Duration::from_secs(5) {
                    std::thread::sleep(Duration::from_millis(250));
                    assert!(
                        g.is_owned().unwrap(),
                        "{t:?} {native:?}: lost after {:?}",
                        started.elapsed()
                    );
                    assert_eq!(g.lease_lost(), None);
                    assert!(
                        g.time_left() > Duration::from_millis(300),
                        "{:?}",
                        g.time_left()
                    );
                    assert!(l
                        .try_acquire(&name, Duration::from_secs(1))
                        .unwrap()
                        .is_none());
                }
                drop(g);
                assert!(!exists(&c, &k), "{t:?}: key left after drop");
                // No renewal after the release (it would recreate nothing, but check).
                std::thread::sleep(Duration::from_millis(500));
                assert!(!exists(&c, &k));
            });
        }
    });
}

#[test]
fn watchdog_reports_a_takeover_through_flag_wait_and_callback() {
    let _serial = watchdog_test();
    for (t, native) in paths() {
        let l = locks(t, native);
        let c = conn(t);
        let name = key(&format!("takeover-{}-{native:?}", t.label()));
        let told = Arc::new(Mutex::new(None));
        let told2 = told.clone();
        let g = l
            .try_acquire(&name, Duration::from_millis(600))
            .unwrap()
            .unwrap()
            .watchdog_with(move |why| *told2.lock().unwrap() = Some(why))
            .unwrap();
        c.query::<()>(&cmd("SET").arg(g.key()).arg("other").arg("PX").arg(10_000))
            .unwrap();
        let t0 = Instant::now();
        assert_eq!(g.wait_lost(Duration::from_secs(3)), Some(LeaseLost::Taken));
        assert!(
            t0.elapsed() < Duration::from_millis(600),
            "{:?}",
            t0.elapsed()
        );
        let until = Instant::now() + Duration::from_secs(1);
        while told.lock().unwrap().is_none() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(*told.lock().unwrap(), Some(LeaseLost::Taken));
        let k = g.key().to_owned();
        assert_eq!(g.release().unwrap(), Release::TakenByOther);
        assert_eq!(c.get_string(&k).unwrap().as_deref(), Some("other"));
    }
}

#[test]
fn watchdog_tells_the_holder_before_the_ttl_ends_when_the_server_is_paused() {
    let _serial = watchdog_test();
    for kind in kinds() {
        let server = ServerOptions::new(kind).start().unwrap();
        let probe = Connection::open(&server.config()).unwrap();
        let l = Locks::new(Connection::open(&server.config()).unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        let ttl = Duration::from_secs(1);
        let g = l
            .try_acquire("paused", ttl)
            .unwrap()
            .unwrap()
            .watchdog_with(move |why| {
                let _ = tx.send((Instant::now(), why));
            })
            .unwrap();
        // Let a renewal or two happen.
        std::thread::sleep(Duration::from_millis(700));
        // The server's lease ends no earlier than `sent + PTTL`.
        let sent = Instant::now();
        let pttl: i64 = probe.query(&cmd("PTTL").arg(g.key())).unwrap();
        assert!(pttl > 0, "{pttl}");
        let server_end_at_least = sent + Duration::from_millis(pttl as u64);
        server.pause().unwrap();
        let paused = Instant::now();
        let (told, why) = rx.recv_timeout(Duration::from_secs(5)).expect("never told");
        eprintln!(
            "{kind:?}: told {:?} after the pause, {:?} before the server's lease could end",
            told - paused,
            server_end_at_least.saturating_duration_since(told)
        );
        assert_eq!(why, LeaseLost::Expired);
        assert!(told < server_end_at_least, "told too late");
        assert!(told - paused <= ttl, "{:?}", told - paused);
        assert_eq!(g.lease_lost(), Some(LeaseLost::Expired));
        server.resume().unwrap();
        drop(g);
    }
}

#[test]
fn runs_on_a_connection_a_pool_and_a_client() {
    let _serial = watchdog_test();
    for kind in kinds() {
        let server = shared(kind);
        let name = key(&format!("executors-{}", kind.name()));
        fn cycle<E: Execute + Send + Sync + 'static>(l: &Locks<E>, name: &str) -> u64 {
            let g = l.acquire(name, Duration::from_secs(5)).unwrap();
            let g: LockGuard<E> = g.watchdog().unwrap();
            let f = g.fencing_token();
            assert_eq!(g.release().unwrap(), Release::Released);
            f
        }
        let a = cycle(
            &Locks::new(Connection::open(&server.config()).unwrap()),
            &name,
        );
        let b = cycle(&Locks::new(pool(server, 2)), &name);
        let client = Client::builder().config(server.config()).build().unwrap();
        let c = cycle(&Locks::new(client), &name);
        assert!(a < b && b < c, "{a} {b} {c}");
    }
}

/// Regression: a prefix opening an empty hash tag (`app{}:`) made every key of a lock hash
/// whole, so on a cluster acquiring failed with CROSSSLOT (the lock, fence, waiters and
/// wake keys in different slots). It is refused with a typed error on every target; a
/// prefix with a tag of its own keeps every lock of the prefix in that tag's slot.
#[test]
fn a_prefix_with_an_empty_hash_tag_is_refused_and_a_tagged_prefix_works() {
    for (t, native) in paths() {
        let bad = Locks::builder(t.pool(2))
            .native_commands(native)
            .prefix("app{}:")
            .build();
        let e = bad.try_acquire("x", Duration::from_secs(5)).unwrap_err();
        assert_eq!(
            e.kind(),
            LockErrorKind::InvalidArgument,
            "{t:?} {native:?}: {e}"
        );
        let e = bad
            .acquire_within("x", Duration::from_secs(5), Duration::from_millis(50))
            .unwrap_err();
        assert_eq!(e.kind(), LockErrorKind::InvalidArgument, "{e}");

        let tag = key(&format!("tagged-{}-{native:?}", t.label()));
        let l = Locks::builder(t.pool(4))
            .native_commands(native)
            .prefix(&format!("app{{{tag}}}:"))
            .build();
        let c = conn(t);
        let mut a = l.try_acquire("a", Duration::from_secs(5)).unwrap().unwrap();
        let b = l.try_acquire("b", Duration::from_secs(5)).unwrap().unwrap();
        assert_eq!(
            valkit::key_slot(a.key().as_bytes()),
            valkit::key_slot(b.key().as_bytes()),
            "one slot for every lock of the prefix"
        );
        assert!(l
            .try_acquire("a", Duration::from_secs(5))
            .unwrap()
            .is_none());
        a.extend(Duration::from_secs(5)).unwrap();
        assert!(a.remaining_ttl().unwrap().unwrap() > Duration::from_secs(6));
        a.reacquire().unwrap();
        assert!(a.is_owned().unwrap() && b.is_owned().unwrap());
        // A waiter is handed the lock on release.
        let (l2, fence_a) = (l.clone(), a.fencing_token());
        let waiter = std::thread::Builder::new()
            .name("lock-tag-waiter".into())
            .spawn(move || {
                l2.acquire_within("a", Duration::from_secs(5), Duration::from_secs(5))
                    .unwrap()
                    .fencing_token()
            })
            .unwrap();
        let waiters = format!("{}:waiters", a.key());
        let until = Instant::now() + Duration::from_secs(5);
        while !exists(&c, &waiters) {
            assert!(Instant::now() < until, "{t:?}: the waiter never waited");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(a.release().unwrap(), Release::Released);
        assert!(waiter.join().unwrap() > fence_a, "{t:?} {native:?}");
        assert_eq!(b.release().unwrap(), Release::Released);
    }
}

/// `n` dedicated servers of `kind` and a connection to each.
fn servers(kind: ServerKind, n: usize) -> (Vec<Server>, Vec<Connection>) {
    let servers: Vec<Server> = (0..n)
        .map(|_| ServerOptions::new(kind).start().unwrap())
        .collect();
    let conns = servers
        .iter()
        .map(|s| Connection::open(&s.config()).unwrap())
        .collect();
    (servers, conns)
}

#[test]
fn redlock_with_three_and_five_servers_survives_a_minority_and_refuses_without_majority() {
    for kind in kinds() {
        for n in [3usize, 5] {
            let (mut srv, conns) = servers(kind, n);
            let other_conns: Vec<Connection> = srv
                .iter()
                .map(|s| Connection::open(&s.config()).unwrap())
                .collect();
            let rl = Redlock::new(conns).unwrap();
            let rival = Redlock::new(other_conns).unwrap();
            assert_eq!(rl.quorum(), n / 2 + 1);
            let ttl = Duration::from_secs(10);

            let g = rl.try_acquire("job", ttl).unwrap().expect("all up");
            assert_eq!(g.granted(), n);
            assert!(g.time_left() > Duration::from_secs(9));
            assert!(
                rival.try_acquire("job", ttl).unwrap().is_none(),
                "exclusive"
            );
            let e = rival
                .acquire_within("job", ttl, Duration::from_millis(200))
                .unwrap_err();
            assert_eq!(e.kind(), LockErrorKind::NotAcquired);
            assert_eq!(g.release().unwrap(), n);

            // One server killed: still a majority.
            srv[0].kill();
            let g = rl.try_acquire("job", ttl).unwrap().expect("one down");
            assert_eq!(g.granted(), n - 1);
            assert!(rival.try_acquire("job", ttl).unwrap().is_none());
            drop(g);
            let g = rival
                .try_acquire("job", ttl)
                .unwrap()
                .expect("released on drop");
            drop(g);

            // A majority down: refused with the typed error, not "held by someone".
            for s in srv.iter_mut().take(n - rl.quorum() + 1) {
                s.kill();
            }
            let e = rl.try_acquire("job", ttl).unwrap_err();
            assert_eq!(e.kind(), LockErrorKind::Unavailable, "{kind:?} n={n}: {e}");
            assert!(e.cause().is_some());
            let e = rl
                .acquire_within("job", ttl, Duration::from_millis(200))
                .unwrap_err();
            assert!(e.is_unavailable());
            eprintln!("{kind:?} n={n}: {e}");
        }
    }
}

fn info_field(c: &Connection, section: &str, field: &str) -> Option<String> {
    let text: String = c.query(&cmd("INFO").arg(section)).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(|v| v.trim().to_owned())
}

#[test]
fn fencing_tokens_stay_monotonic_across_a_forced_failover() {
    for kind in kinds() {
        let mut primary = ServerOptions::new(kind).start().unwrap();
        // The replica follows the primary through a fault proxy, to partition them.
        let link = FaultProxy::start(primary.port()).unwrap();
        let replica = ServerOptions::new(kind)
            .replica_of(link.port())
            .start()
            .unwrap();
        let rconn = Connection::open(&replica.config()).unwrap();
        let until = Instant::now() + Duration::from_secs(20);
        while info_field(&rconn, "replication", "master_link_status").as_deref() != Some("up") {
            assert!(Instant::now() < until, "replica never synced");
            std::thread::sleep(Duration::from_millis(20));
        }
        let pconn = Connection::open(&primary.config()).unwrap();
        let l = Locks::new(Connection::open(&primary.config()).unwrap());
        let mut fences = Vec::new();
        for _ in 0..5 {
            let g = l
                .try_acquire("orders", Duration::from_secs(5))
                .unwrap()
                .unwrap();
            fences.push(g.fencing_token());
        }
        let fence_key = "lock:{orders}:fence";
        let acked: i64 = pconn.query(&cmd("WAIT").arg(1).arg(5000)).unwrap();
        assert_eq!(acked, 1);
        // Partition: the replica stops hearing from the primary, so the next acquisitions
        // never reach it (asynchronous replication).
        link.set_down(true);
        link.cut();
        for _ in 0..5 {
            let g = l
                .try_acquire("orders", Duration::from_secs(5))
                .unwrap()
                .unwrap();
            fences.push(g.fencing_token());
        }
        let last = *fences.last().unwrap();
        primary.kill();
        rconn
            .query::<()>(&cmd("REPLICAOF").arg("NO").arg("ONE"))
            .unwrap();
        assert_eq!(
            info_field(&rconn, "replication", "role").as_deref(),
            Some("master")
        );
        // The scenario really lost increments: the promoted replica's fence is behind.
        let kept: u64 = rconn
            .get_string(fence_key)
            .unwrap()
            .expect("fence replicated")
            .parse()
            .unwrap();
        assert!(
            kept < last,
            "{kind:?}: the replica has every increment ({kept} vs {last})"
        );
        let l2 = Locks::new(Connection::open(&replica.config()).unwrap());
        for _ in 0..5 {
            let g = l2
                .try_acquire("orders", Duration::from_secs(5))
                .unwrap()
                .unwrap();
            fences.push(g.fencing_token());
        }
        eprintln!(
            "{kind:?}: kept {kept}, last before failover {last}, after {:?}",
            &fences[10..]
        );
        assert!(
            fences.windows(2).all(|w| w[0] < w[1]),
            "{kind:?}: fencing went backwards across the failover: {fences:?}"
        );
    }
}

/// Names of this process's threads that start with `prefix` (Linux: /proc/self/task).
fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with(prefix))
        .count()
}

#[test]
fn watchdog_threads_are_joined_before_release_returns() {
    let _serial = watchdog_test();
    for t in targets() {
        let l = locks(t, NativeCommands::Auto);
        let name = key(&format!("threads-{}", t.label()));
        let before = threads_named("valkit-lock-");
        let guards: Vec<_> = (0..4)
            .map(|i| {
                l.try_acquire(&format!("{name}{i}"), Duration::from_millis(300))
                    .unwrap()
                    .unwrap()
                    .watchdog()
                    .unwrap()
            })
            .collect();
        // Two per guard (other tests of this binary may run their own at the same time).
        // A new thread takes its name once it runs: give them a moment on a busy machine.
        let until = Instant::now() + Duration::from_secs(5);
        while threads_named("valkit-lock-") < before + 8 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        let running = threads_named("valkit-lock-");
        assert_eq!(running, before + 8, "two per guard: {:?}", thread_names());
        std::thread::sleep(Duration::from_millis(350));
        for g in guards {
            // Renewed past the 300 ms lease, then released (stopping the watchdog first).
            assert_eq!(g.release().unwrap(), Release::Released);
        }
        // release() returns after joining both threads: none is left.
        assert_eq!(
            threads_named("valkit-lock-"),
            before,
            "{:?}",
            thread_names()
        );
        let g = l
            .try_acquire(&name, Duration::from_millis(300))
            .unwrap()
            .unwrap()
            .watchdog()
            .unwrap();
        drop(g);
        assert!(l
            .try_acquire(&name, Duration::from_secs(1))
            .unwrap()
            .is_some());
    }
}

#[test]
fn an_unreachable_server_is_a_typed_unavailable_error() {
    for kind in kinds() {
        let mut server = ServerOptions::new(kind).start().unwrap();
        let l = Locks::new(pool(&server, 2));
        let mut g = l
            .try_acquire("gone", Duration::from_secs(5))
            .unwrap()
            .unwrap();
        server.kill();
        let e = l.try_acquire("other", Duration::from_secs(5)).unwrap_err();
        assert_eq!(e.kind(), LockErrorKind::Unavailable, "{kind:?}: {e}");
        assert!(e.cause().is_some());
        let e = l
            .acquire_within("other", Duration::from_secs(5), Duration::from_secs(1))
            .unwrap_err();
        assert!(e.is_unavailable(), "{e}");
        assert!(g
            .extend(Duration::from_secs(1))
            .unwrap_err()
            .is_unavailable());
        assert!(g.is_owned().unwrap_err().is_unavailable());
        assert!(g.release().unwrap_err().is_unavailable());
    }
}
