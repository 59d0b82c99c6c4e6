//! Caching patterns against real servers (Valkey and Redis): singleflight under a stampede,
//! failing and panicking loaders, cross-process singleflight (two OS processes),
//! stale-while-revalidate, negative caching, jitter, tags, versions, degradation with a
//! killed server, sessions, write-through failure rules, batches, XFetch, stats.
//!
//! The behaviour tests run on each of [`support::targets`]: the shared Valkey and Redis
//! servers and the shared Valkey cluster through a cluster `Client` (a child process gets
//! the cluster's seed URLs). These stay on single servers, being about one server process:
//! - `degraded_when_the_server_is_gone` and
//!   `cache_over_a_client_degrades_when_the_breaker_opens`: kill their own server;
//! - `reads_go_to_the_writer_by_default_even_when_the_replica_lags`: a primary and a
//!   replica detached from it (a cluster's replicas are not a client's reader endpoint);
//! - `noscript_fallbacks_are_not_errors_in_metrics`: flushes the script cache of its own
//!   server and reads one client's per-endpoint command counts for it;
//! - `refresher_threads_are_named`: about this process's threads, not the server.
#![cfg(all(feature = "testkit", feature = "json"))]

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use support::{key, kinds, shared, targets, Exec, Target};
use valkit::cache::{
    Cache, CacheBuilder, CacheErrorKind, CacheTtl, CrossProcess, Lookup, SessionId, SessionStore,
};
use valkit::testkit::Server;
use valkit::{cmd, Commands, Connection, Execute, Ttl};

/// A connection on a single server, a cluster client on the cluster.
type Conn = Exec;

fn conn(t: Target) -> Conn {
    t.conn()
}

fn builder(t: Target, name: &str) -> CacheBuilder<Conn> {
    let ns = key(&format!("{name}-{}", t.label()));
    Cache::builder(conn(t)).namespace(&ns)
}

fn counter() -> Arc<AtomicUsize> {
    Arc::new(AtomicUsize::new(0))
}

/// Run `f` on `n` threads released together by a barrier; their results, in order.
fn together<T: Send + 'static>(n: usize, f: impl Fn() -> T + Send + Sync + 'static) -> Vec<T> {
    let f = Arc::new(f);
    let barrier = Arc::new(Barrier::new(n));
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let (f, barrier) = (f.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                f()
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

/// 64 threads released together on one cold key; returns how often the loader ran.
fn stampede(cache: &Cache<Conn>, key: &str) -> usize {
    let loads = counter();
    let (cache, l, key) = (cache.clone(), loads.clone(), key.to_owned());
    let values = together(64, move || {
        let l = l.clone();
        cache
            .get_or_load(&key, Duration::from_secs(10), move || {
                l.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(50));
                Ok::<_, std::io::Error>("value".to_string())
            })
            .unwrap()
    });
    assert!(values.iter().all(|v| v == "value"));
    loads.load(Ordering::SeqCst)
}

#[test]
fn stampede_runs_the_loader_once_with_singleflight() {
    for t in targets() {
        let with = builder(t, "stampede").build().unwrap();
        let n_with = stampede(&with, "hot");
        let without = builder(t, "stampede-off")
            .singleflight(false)
            .build()
            .unwrap();
        let n_without = stampede(&without, "hot");
        eprintln!(
            "{t:?}: 64 threads, one cold key, 50 ms loader: {n_with} load(s) with \
             singleflight, {n_without} without"
        );
        assert_eq!(n_with, 1, "{t:?}");
        assert!(n_without >= 1, "{t:?}");
        let s = with.stats();
        assert_eq!(s.loads, 1);
        assert_eq!(s.coalesced_waiters + s.hits, 63, "{s:?}");
    }
}

/// 16 threads wait for a loader that fails (`panic == false`) or panics; returns the
/// errors' kinds and how often the loader ran.
fn failing_stampede(cache: &Cache<Conn>, key: &str, panic: bool) -> (Vec<CacheErrorKind>, usize) {
    let loads = counter();
    let (cache, l, key) = (cache.clone(), loads.clone(), key.to_owned());
    let kinds = together(16, move || {
        let l = l.clone();
        let r: Result<String, _> = cache.get_or_load(&key, Duration::from_secs(10), move || {
            l.fetch_add(1, Ordering::SeqCst);
            // Long enough that every thread has joined the flight even on a loaded
            // machine: a thread that only arrives after a failed load has finished
            // rightly starts a new one (errors are not cached).
            std::thread::sleep(Duration::from_millis(200));
            if panic {
                panic!("loader exploded");
            }
            Err("origin down")
        });
        r.unwrap_err().kind()
    });
    (kinds, loads.load(Ordering::SeqCst))
}

#[test]
fn failing_or_panicking_loader_fails_every_waiter_and_is_not_cached() {
    for t in targets() {
        let cache = builder(t, "failing").build().unwrap();
        for (panic, want) in [
            (false, CacheErrorKind::Loader),
            (true, CacheErrorKind::LoaderPanicked),
        ] {
            let key = format!("k-{panic}");
            let (errors, loads) = failing_stampede(&cache, &key, panic);
            assert_eq!(loads, 1, "{t:?} panic={panic}");
            assert!(errors.iter().all(|k| *k == want), "{errors:?}");
            // Not cached: the next call loads again, and succeeds.
            let v: String = cache
                .get_or_load(&key, Duration::from_secs(10), || {
                    Ok::<_, String>("ok".into())
                })
                .unwrap();
            assert_eq!(v, "ok");
        }
        let e = cache
            .get_or_load::<String, _, _>("typed", Duration::from_secs(1), || {
                Err(std::io::Error::new(std::io::ErrorKind::NotFound, "gone"))
            })
            .unwrap_err();
        let io = e.loader_error().unwrap().downcast_ref::<std::io::Error>();
        assert_eq!(io.unwrap().kind(), std::io::ErrorKind::NotFound);
        assert_eq!(cache.stats().load_errors, 3);
    }
}

const CHILD_URL: &str = "VALKIT_CACHE_TEST_CHILD_URL";
const CHILD_NS: &str = "VALKIT_CACHE_TEST_CHILD_NS";

/// One process's part of the cross-process test: wait until both processes are ready
/// (a counter in the server), then 8 threads ask for one cold key; the loader counts its
/// runs in the server.
fn cross_process_role(url: &str, ns: &str) {
    let conn = support::child_conn(url);
    let cache = Cache::builder(conn.clone())
        .namespace(ns)
        .cross_process(CrossProcess {
            lock_ttl: Duration::from_secs(5),
            wait: Duration::from_secs(5),
            poll: Duration::from_millis(10),
        })
        .build()
        .unwrap();
    let ready = format!("{ns}:ready");
    conn.incr(&ready).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while conn.get_string(&ready).unwrap().as_deref() != Some("2") {
        assert!(Instant::now() < deadline, "the other process never came");
        std::thread::sleep(Duration::from_millis(2));
    }
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (cache, conn, ns) = (cache.clone(), conn.clone(), ns.to_owned());
            std::thread::spawn(move || {
                let loads = format!("{ns}:loads");
                cache
                    .get_or_load("shared", Duration::from_secs(30), move || {
                        std::thread::sleep(Duration::from_millis(300));
                        conn.incr(&loads).map(|_| "from-origin".to_string())
                    })
                    .unwrap()
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), "from-origin");
    }
}

/// The child role, run by [`cross_process_singleflight_loads_once`] re-executing this test
/// binary; does nothing in a normal run.
#[test]
fn cross_process_child() {
    if let (Ok(url), Ok(ns)) = (std::env::var(CHILD_URL), std::env::var(CHILD_NS)) {
        cross_process_role(&url, &ns);
    }
}

#[test]
fn cross_process_singleflight_loads_once() {
    for t in targets() {
        let url = t.child_url();
        let ns = key(&format!("xproc-{}", t.label()));
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "cross_process_child", "--test-threads=1"])
            .env(CHILD_URL, &url)
            .env(CHILD_NS, &ns)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        cross_process_role(&url, &ns);
        assert!(child.wait().unwrap().success(), "child process failed");
        let c = conn(t);
        let loads = c.get_string(format!("{ns}:loads")).unwrap();
        eprintln!("{t:?}: two processes x 8 threads, one cold key: {loads:?} load(s)");
        assert_eq!(loads.as_deref(), Some("1"), "{t:?}");
    }
}

#[test]
fn stale_while_revalidate_serves_stale_and_refreshes_once() {
    for t in targets() {
        let cache = builder(t, "swr")
            .jitter(0.0)
            .stale_for(Duration::from_secs(5))
            .build()
            .unwrap();
        let loads = counter();
        let get = |cache: &Cache<Conn>| -> (u64, Duration) {
            let loads = loads.clone();
            let started = Instant::now();
            let v = cache
                .get_or_load("k", Duration::from_millis(200), move || {
                    let n = loads.fetch_add(1, Ordering::SeqCst) as u64 + 1;
                    std::thread::sleep(Duration::from_millis(150));
                    Ok::<_, String>(n)
                })
                .unwrap();
            (v, started.elapsed())
        };
        assert_eq!(get(&cache).0, 1);
        std::thread::sleep(Duration::from_millis(250)); // past fresh-until
        for _ in 0..20 {
            let (v, took) = get(&cache);
            assert_eq!(v, 1, "{t:?}: the stale value is served");
            assert!(took < Duration::from_millis(150), "{t:?}: waited {took:?}");
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while cache.pending_refreshes() > 0 {
            assert!(Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(
            loads.load(Ordering::SeqCst),
            2,
            "{t:?}: exactly one refresh"
        );
        assert_eq!(get(&cache).0, 2, "the refreshed value");
        let s = cache.stats();
        assert_eq!(
            (s.stale_hits, s.refreshes, s.refresh_errors),
            (20, 1, 0),
            "{s:?}"
        );

        // Past stale-until the entry is gone: the call waits for the loader.
        let short = builder(t, "swr-short")
            .jitter(0.0)
            .stale_for(Duration::from_millis(100))
            .build()
            .unwrap();
        assert_eq!(get(&short).0, 3);
        std::thread::sleep(Duration::from_millis(350));
        let (v, took) = get(&short);
        assert_eq!(v, 4);
        assert!(took >= Duration::from_millis(150), "{took:?}");
    }
}

#[test]
fn failed_refresh_keeps_serving_stale() {
    for t in targets() {
        let cache = builder(t, "swr-fail")
            .jitter(0.0)
            .stale_for(Duration::from_secs(5))
            .build()
            .unwrap();
        let ttl = Duration::from_millis(100);
        cache.put("k", ttl, &"old".to_string()).unwrap();
        std::thread::sleep(Duration::from_millis(150));
        let v: String = cache
            .get_or_load("k", ttl, || Err::<String, _>("origin down"))
            .unwrap();
        assert_eq!(v, "old");
        while cache.pending_refreshes() > 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(cache.stats().refresh_errors, 1);
        let v: Lookup<String> = cache.get("k").unwrap();
        assert_eq!(v, Lookup::Found("old".into()));
    }
}

#[test]
fn negative_caching_calls_the_loader_once_per_negative_ttl() {
    for t in targets() {
        let cache = builder(t, "negative")
            .jitter(0.0)
            .negative_ttl(Duration::from_millis(300))
            .build()
            .unwrap();
        let loads = counter();
        let lookup = |cache: &Cache<Conn>| {
            let loads = loads.clone();
            cache
                .lookup_or_load("user:404", Duration::from_secs(60), move || {
                    loads.fetch_add(1, Ordering::SeqCst);
                    Ok::<Option<String>, String>(None)
                })
                .unwrap()
        };
        assert_eq!(lookup(&cache), Lookup::Missing);
        for _ in 0..20 {
            assert_eq!(lookup(&cache), Lookup::KnownMissing);
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        std::thread::sleep(Duration::from_millis(350));
        assert_eq!(lookup(&cache), Lookup::Missing);
        assert_eq!(lookup(&cache), Lookup::KnownMissing);
        assert_eq!(loads.load(Ordering::SeqCst), 2, "{t:?}");
        assert_eq!(cache.stats().negative_hits, 21);
    }
}

#[test]
fn jitter_spreads_ttls_within_bounds() {
    for t in targets() {
        let cache = builder(t, "jitter").jitter(0.1).build().unwrap();
        let keys: Vec<String> = (0..1000).map(|i| format!("item:{i}")).collect();
        let written = cache
            .warm(&keys, Duration::from_secs(100), |ks| {
                Ok::<_, String>(
                    ks.iter()
                        .map(|k| (k.clone(), 1u8))
                        .collect::<HashMap<_, _>>(),
                )
            })
            .unwrap();
        assert_eq!(written, 1000);
        let mut p = valkit::pipe();
        for k in &keys {
            p.add(cmd("PTTL").arg(cache.keyspace().entry(k)));
        }
        let ttls: Vec<i64> = p.query(cache.executor()).unwrap();
        let (lo, hi) = (ttls.iter().min().unwrap(), ttls.iter().max().unwrap());
        let distinct = ttls.iter().collect::<HashSet<_>>().len();
        eprintln!("{t:?}: 1000 PTTLs in {lo}..={hi} ms, {distinct} distinct");
        assert!(*lo >= 90_000 - 2_000 && *hi <= 110_000, "{lo}..{hi}");
        assert!(hi - lo > 10_000, "spread {lo}..{hi}");
        assert!(distinct > 500);
    }
}

#[test]
fn invalidating_a_tag_removes_exactly_its_entries() {
    for t in targets() {
        let cache = builder(t, "tags").build().unwrap();
        let ttl = Duration::from_secs(60);
        cache.entry("a", ttl).tags(["t1"]).put(&1).unwrap();
        cache.entry("b", ttl).tags(["t1", "t2"]).put(&2).unwrap();
        cache.entry("c", ttl).tags(["t2"]).put(&3).unwrap();
        cache.put("d", ttl, &4).unwrap();
        let loaded: i32 = cache
            .entry("e", ttl)
            .tags(["t1"])
            .get_or_load(|| Ok::<_, String>(5))
            .unwrap();
        assert_eq!(loaded, 5);
        assert_eq!(cache.invalidate_tag("t1").unwrap(), 3);
        for (k, present) in [
            ("a", false),
            ("b", false),
            ("e", false),
            ("c", true),
            ("d", true),
        ] {
            let got: Lookup<i32> = cache.get(k).unwrap();
            assert_eq!(got.is_found(), present, "{t:?} {k}");
        }
        let ex = cache.executor();
        assert_eq!(ex.exists(cache.keyspace().tag("t1")).unwrap(), 0);
        // The tag set lives as long as its longest entry.
        assert!(matches!(
            ex.pttl(cache.keyspace().tag("t2")).unwrap(),
            Ttl::Expires(_)
        ));
        assert_eq!(cache.invalidate_tag("t2").unwrap(), 1); // c (b is gone already)
    }
}

#[test]
fn tagged_writes_racing_invalidations_leave_no_orphans() {
    for t in targets() {
        let cache = builder(t, "tag-race").build().unwrap();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let (cache, stop) = (Cache::clone(&cache), stop.clone());
                // Each writer on its own connection, so commands really interleave.
                let own = Cache::builder(conn(t))
                    .namespace(cache.keyspace().namespace())
                    .build()
                    .unwrap();
                std::thread::spawn(move || {
                    let mut i = 0;
                    while !stop.load(Ordering::Relaxed) {
                        own.entry(&format!("w{w}:{}", i % 50), Duration::from_secs(60))
                            .tags(["hot"])
                            .put(&i)
                            .unwrap();
                        i += 1;
                    }
                    drop(cache);
                })
            })
            .collect();
        for _ in 0..50 {
            cache.invalidate_tag("hot").unwrap();
            std::thread::sleep(Duration::from_millis(2));
        }
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            w.join().unwrap();
        }
        let ex = cache.executor();
        let members: HashSet<Vec<u8>> = ex.smembers(cache.keyspace().tag("hot")).unwrap();
        let mut orphans = 0;
        for w in 0..4 {
            for i in 0..50 {
                let k = cache.keyspace().entry(&format!("w{w}:{i}"));
                if ex.exists(&k).unwrap() == 1 && !members.contains(k.as_bytes()) {
                    orphans += 1;
                }
            }
        }
        assert_eq!(orphans, 0, "{t:?}");
        let existing = members.len() as u64;
        assert_eq!(cache.invalidate_tag("hot").unwrap(), existing);
    }
}

#[test]
fn version_bump_hides_old_entries() {
    for t in targets() {
        let ns = key(&format!("version-{}", t.label()));
        let v1 = Cache::builder(conn(t))
            .namespace(&ns)
            .version(1)
            .build()
            .unwrap();
        let v2 = Cache::builder(conn(t))
            .namespace(&ns)
            .version(2)
            .build()
            .unwrap();
        v1.put("k", Duration::from_secs(60), &"old".to_string())
            .unwrap();
        assert_eq!(v2.get::<String>("k").unwrap(), Lookup::Missing);
        assert_eq!(v1.get::<String>("k").unwrap(), Lookup::Found("old".into()));
        // Old versions can be swept by pattern.
        assert_eq!(v1.invalidate_pattern("*").unwrap(), 1);
    }
}

#[test]
fn invalidate_key_and_pattern() {
    for t in targets() {
        let cache = builder(t, "pattern").build().unwrap();
        let ttl = Duration::from_secs(60);
        for i in 0..1200 {
            cache.put(&format!("user:{i}"), ttl, &i).unwrap();
        }
        cache.put("order:1", ttl, &1).unwrap();
        assert_eq!(cache.invalidate_pattern("user:*").unwrap(), 1200);
        assert!(cache.get::<i32>("order:1").unwrap().is_found());
        assert!(cache.invalidate("order:1").unwrap());
        assert!(!cache.invalidate("order:1").unwrap());
    }
}

#[test]
fn degraded_when_the_server_is_gone() {
    for kind in kinds() {
        let mut server = Server::start(kind).unwrap();
        let conn = Arc::new(Connection::open(&server.config()).unwrap());
        let cache = Cache::builder(conn.clone())
            .namespace("degrade")
            .build()
            .unwrap();
        let strict = Cache::builder(conn)
            .namespace("degrade")
            .degrade(false)
            .build()
            .unwrap();
        cache
            .put("k", Duration::from_secs(60), &"cached".to_string())
            .unwrap();
        server.kill();
        let v: String = cache
            .get_or_load("k", Duration::from_secs(60), || {
                Ok::<_, String>("origin".into())
            })
            .unwrap();
        assert_eq!(v, "origin");
        assert_eq!(cache.stats().degraded, 1, "{kind:?}");
        let e = strict
            .get_or_load::<String, _, _>("k", Duration::from_secs(60), || {
                Ok::<_, String>("x".into())
            })
            .unwrap_err();
        assert_eq!(e.kind(), CacheErrorKind::Server);
        assert!(e.server_error().is_some());
        // Write-through with the cache gone: origin written, cache possibly stale.
        let writes = counter();
        let w = writes.clone();
        let e = cache
            .put_through(
                "k",
                Duration::from_secs(60),
                &"new".to_string(),
                move |_| {
                    w.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, String>(())
                },
            )
            .unwrap_err();
        assert_eq!(e.kind(), CacheErrorKind::CacheStale);
        assert_eq!(writes.load(Ordering::SeqCst), 1);
    }
}

#[test]
fn write_through_order_and_failure_rules() {
    for t in targets() {
        let cache = builder(t, "write-through").build().unwrap();
        let ttl = Duration::from_secs(60);
        cache.put("k", ttl, &"v1".to_string()).unwrap();
        // Origin fails: the cache is untouched.
        let e = cache
            .put_through("k", ttl, &"v2".to_string(), |_| Err("db down"))
            .unwrap_err();
        assert_eq!(e.kind(), CacheErrorKind::Origin);
        assert_eq!(
            cache.get::<String>("k").unwrap(),
            Lookup::Found("v1".into())
        );
        // Both succeed: the cache has the new value.
        cache
            .put_through("k", ttl, &"v3".to_string(), |_| Ok::<_, String>(()))
            .unwrap();
        assert_eq!(
            cache.get::<String>("k").unwrap(),
            Lookup::Found("v3".into())
        );
        // The cache write fails after the origin succeeded (a tag key of the wrong type
        // makes the tag script fail): the entry is invalidated and the caller told.
        cache
            .executor()
            .set(cache.keyspace().tag("broken"), "not a set")
            .unwrap();
        let e = cache
            .entry("k", ttl)
            .tags(["broken"])
            .put_through(&"v4".to_string(), |_| Ok::<_, String>(()))
            .unwrap_err();
        assert_eq!(e.kind(), CacheErrorKind::CacheInvalidated, "{e}");
        assert_eq!(cache.get::<String>("k").unwrap(), Lookup::Missing);
    }
}

#[test]
fn get_many_uses_one_loader_call_and_writes_back() {
    for t in targets() {
        let cache = builder(t, "batch").build().unwrap();
        let ttl = Duration::from_secs(60);
        cache.put("a", ttl, &"A".to_string()).unwrap();
        cache.put("c", ttl, &"C".to_string()).unwrap();
        let calls = counter();
        let load = |calls: &Arc<AtomicUsize>, seen: &mut Vec<String>| {
            let calls = calls.clone();
            let mut asked = Vec::new();
            let r = cache
                .get_many(&["a", "b", "c", "d", "e"], ttl, |missing| {
                    calls.fetch_add(1, Ordering::SeqCst);
                    asked.extend(missing.iter().cloned());
                    // "e" does not exist at the origin.
                    Ok::<_, String>(
                        missing
                            .iter()
                            .filter(|k| *k != "e")
                            .map(|k| (k.clone(), k.to_uppercase()))
                            .collect(),
                    )
                })
                .unwrap();
            *seen = asked;
            r
        };
        let mut asked = Vec::new();
        let r = load(&calls, &mut asked);
        let want = vec![
            Some("A".to_string()),
            Some("B".into()),
            Some("C".into()),
            Some("D".into()),
            None,
        ];
        assert_eq!(r, want);
        assert_eq!(asked, ["b", "d", "e"]);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // Everything is cached now, "e" as a tombstone.
        let r = load(&calls, &mut asked);
        assert_eq!(r, want);
        assert_eq!(calls.load(Ordering::SeqCst), 1, "{t:?}");
        assert_eq!(cache.get::<String>("e").unwrap(), Lookup::KnownMissing);
    }
}

#[test]
fn xfetch_refreshes_early_only_when_enabled() {
    for t in targets() {
        for (beta, expect_early) in [(0.0, false), (1000.0, true)] {
            let cache = builder(t, "xfetch")
                .jitter(0.0)
                .xfetch(beta)
                .build()
                .unwrap();
            let loads = counter();
            for _ in 0..10 {
                let loads = loads.clone();
                let _: u32 = cache
                    .get_or_load("k", Duration::from_secs(2), move || {
                        loads.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(20));
                        Ok::<_, String>(1)
                    })
                    .unwrap();
            }
            while cache.pending_refreshes() > 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
            let s = cache.stats();
            // With delta 20 ms and beta 1000, the expected head start is 20 s > the 2 s TTL.
            assert_eq!(
                s.early_refreshes > 0,
                expect_early,
                "{t:?} beta {beta}: {s:?}"
            );
            assert_eq!(loads.load(Ordering::SeqCst) > 1, expect_early);
        }
    }
}

#[test]
fn sessions_round_trip_with_sliding_expiry() {
    for t in targets() {
        let ns = key(&format!("sessions-{}", t.label()));
        let store = SessionStore::new(conn(t), &ns, Duration::from_millis(400));
        let id = store.create(&vec!["cart".to_string()]).unwrap();
        assert_eq!(id.as_str().len(), 32);
        assert_eq!(id.as_str().parse::<SessionId>().unwrap(), id);
        assert!("nope".parse::<SessionId>().is_err());
        // Used every 200 ms, it outlives its 400 ms idle timeout.
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(200));
            let data: Option<Vec<String>> = store.get(&id).unwrap();
            assert_eq!(data.as_deref(), Some(&["cart".to_string()][..]), "{t:?}");
        }
        let Ttl::Expires(left) = conn(t).pttl(store.key(&id)).unwrap() else {
            panic!("no expiry")
        };
        assert!(left > Duration::from_millis(300), "{left:?}");
        assert!(store
            .update(&id, &vec!["cart".to_string(), "book".into()])
            .unwrap());
        std::thread::sleep(Duration::from_millis(200));
        assert!(store.touch(&id).unwrap());
        std::thread::sleep(Duration::from_millis(200));
        let data: Option<Vec<String>> = store.get(&id).unwrap();
        assert_eq!(data.unwrap().len(), 2);
        assert!(store.destroy(&id).unwrap());
        assert_eq!(store.get::<Vec<String>>(&id).unwrap(), None);
        assert!(!store.update(&id, &Vec::<String>::new()).unwrap());
        // Unused, it expires.
        let id = store.create(&1u32).unwrap();
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(store.get::<u32>(&id).unwrap(), None);
    }
}

#[test]
fn forever_entries_have_no_expiry_and_stats_render() {
    for t in targets() {
        let cache = builder(t, "forever").build().unwrap();
        cache.put("k", CacheTtl::Forever, &1).unwrap();
        let ttl = cache.executor().pttl(cache.keyspace().entry("k")).unwrap();
        assert_eq!(ttl, Ttl::NoExpiry);
        let _: i32 = cache
            .get_or_load("k", CacheTtl::Forever, || Ok::<_, String>(2))
            .unwrap();
        let text = cache.metrics_text();
        let ns = cache.keyspace().namespace();
        assert!(text.contains("# TYPE valkit_cache_hits_total counter"));
        assert!(
            text.contains(&format!("valkit_cache_hits_total{{namespace=\"{ns}\"}} 1")),
            "{text}"
        );
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split('{').next().unwrap();
            assert!(
                name.starts_with("valkit_cache_") && name.ends_with("_total"),
                "{line}"
            );
        }
        let _ = cache.executor().exec(&cmd("PING")).unwrap();
    }
}

#[test]
fn cache_over_a_client_degrades_when_the_breaker_opens() {
    use valkit::{BreakerOptions, BreakerState, Client, Endpoint, PoolOptions, RetryPolicy};
    for kind in kinds() {
        let mut server = Server::start(kind).unwrap();
        let client = Client::builder()
            .config(server.config())
            .retry(RetryPolicy::none())
            // A refused connect is retried until the checkout timeout: keep it short.
            .pool(PoolOptions::default().checkout_timeout(Duration::from_millis(200)))
            .breaker(
                BreakerOptions::default()
                    .failure_threshold(2)
                    .recovery_timeout(Duration::from_secs(60)),
            )
            .build()
            .unwrap();
        let cache = Cache::builder(client.clone())
            .namespace("client")
            .build()
            .unwrap();
        let v: String = cache
            .get_or_load("k", Duration::from_secs(60), || {
                Ok::<_, String>("loaded".into())
            })
            .unwrap();
        assert_eq!(v, "loaded");
        assert_eq!(
            cache.get::<String>("k").unwrap(),
            Lookup::Found("loaded".into())
        );
        server.kill();
        for _ in 0..5 {
            let t = Instant::now();
            let v: String = cache
                .get_or_load("k", Duration::from_secs(60), || {
                    Ok::<_, String>("origin".into())
                })
                .unwrap();
            assert_eq!(v, "origin");
            // Pool exhausted twice (200 ms each), then the open breaker fails fast.
            assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        }
        assert_eq!(
            client.breaker_state(Endpoint::Writer),
            Some(BreakerState::Open)
        );
        assert_eq!(cache.stats().degraded, 5, "{kind:?}");
        let text = format!("{}{}", client.metrics_text(), cache.metrics_text());
        assert!(text.contains("valkit_cache_degraded_total{namespace=\"client\"} 5"));
    }
}

/// Read from `sock` until `needle` shows up (or 2 s pass); returns everything read.
fn read_until(sock: &mut std::net::TcpStream, needle: &str) -> String {
    use std::io::Read;
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline && !String::from_utf8_lossy(&seen).contains(needle) {
        if let Ok(n) = sock.read(&mut buf) {
            seen.extend_from_slice(&buf[..n]);
        }
    }
    String::from_utf8_lossy(&seen).into_owned()
}

#[test]
fn invalidations_are_published() {
    use std::io::Write;
    for t in targets() {
        let cache = builder(t, "events").build().unwrap();
        let channel = cache.keyspace().channel();
        // A plain RESP2 subscriber on its own socket.
        // On the cluster, PUBLISH reaches the subscribers of every node.
        let port = match t {
            Target::Single(kind) => shared(kind).port(),
            Target::Cluster => support::cluster().nodes()[0].port(),
        };
        let mut sub = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(
            sub,
            "*2\r\n$9\r\nSUBSCRIBE\r\n${}\r\n{channel}\r\n",
            channel.len()
        )
        .unwrap();
        assert!(read_until(&mut sub, ":1\r\n").contains("subscribe"));
        cache.put("k", Duration::from_secs(60), &1).unwrap();
        cache.invalidate("k").unwrap();
        cache.invalidate_tag("catalog").unwrap();
        cache.invalidate_pattern("user:*").unwrap();
        let got = read_until(&mut sub, "pattern user:*");
        for event in ["key k", "tag catalog", "pattern user:*"] {
            assert!(got.contains(event), "{t:?}: {event:?} not in {got:?}");
        }
    }
}

#[test]
fn shutdown_stops_refreshes_but_keeps_serving() {
    for t in targets() {
        let cache = builder(t, "shutdown")
            .jitter(0.0)
            .stale_for(Duration::from_secs(5))
            .build()
            .unwrap();
        let ttl = Duration::from_millis(50);
        cache.put("k", ttl, &1).unwrap();
        cache.shutdown();
        std::thread::sleep(Duration::from_millis(80));
        let v: i32 = cache.get_or_load("k", ttl, || Ok::<_, String>(2)).unwrap();
        assert_eq!(v, 1, "stale value served");
        let s = cache.stats();
        assert_eq!(
            (s.stale_hits, s.refreshes_dropped, s.loads),
            (1, 1, 0),
            "{s:?}"
        );
        drop(cache); // joins nothing twice, does not hang
    }
}

#[test]
fn foreign_bytes_are_a_miss_and_get_overwritten() {
    for t in targets() {
        let cache = builder(t, "foreign").build().unwrap();
        let full = cache.keyspace().entry("k");
        cache
            .executor()
            .set(&full, "written by someone else")
            .unwrap();
        assert_eq!(cache.get::<String>("k").unwrap(), Lookup::Missing);
        let v: String = cache
            .get_or_load("k", Duration::from_secs(60), || {
                Ok::<_, String>("mine".into())
            })
            .unwrap();
        assert_eq!(v, "mine");
        assert_eq!(
            cache.get::<String>("k").unwrap(),
            Lookup::Found("mine".into())
        );
    }
}

/// Regression: an empty namespace makes the key prefix `{}`, which is no hash tag, so on a
/// cluster a tagged put and `get_many` failed with CROSSSLOT (an entry, its tag sets and
/// its lock in different slots). It is refused on every target.
#[test]
fn an_empty_namespace_is_refused() {
    for t in targets() {
        let e = Cache::builder(conn(t)).namespace("").build().unwrap_err();
        assert_eq!(e.kind(), valkit::ErrorKind::Config, "{t:?}: {e}");
        assert!(e.to_string().contains("namespace"), "{e}");
        let e = Cache::new(conn(t), "").unwrap_err();
        assert_eq!(e.kind(), valkit::ErrorKind::Config, "{t:?}: {e}");
    }
}

#[test]
fn refresher_threads_are_named() {
    let cache = builder(Target::Single(kinds()[0]), "threads")
        .build()
        .unwrap();
    // A new thread takes its name only once it first runs (on a loaded machine, a while
    // after `build` returns): wait up to 5 s for it, then check.
    let named = |names: &[String]| names.iter().any(|n| n.starts_with("valkit-cache-re"));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut names = support::thread_names();
    while !named(&names) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        names = support::thread_names();
    }
    if !names.is_empty() {
        // Linux keeps the first 15 bytes of a thread name.
        assert!(named(&names), "{names:?}");
    }
    drop(cache);
}

/// A port nothing listens on (bound once, then released).
fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn reads_go_to_the_writer_by_default_even_when_the_replica_lags() {
    use valkit::testkit::ServerOptions;
    use valkit::{Client, Info, PoolOptions, ReadFrom};
    for kind in kinds() {
        let primary = Server::start(kind).unwrap();
        let replica = ServerOptions::new(kind)
            .replica_of(primary.port())
            .start()
            .unwrap();
        let replica_admin = Connection::open(&replica.config()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let info: Info = replica_admin.info_sections("replication").unwrap();
            if info.field("master_link_status") == Some("up") {
                break;
            }
            assert!(Instant::now() < deadline, "{kind:?}: replication link");
            std::thread::sleep(Duration::from_millis(20));
        }
        // The replica stops following the primary but keeps serving its (stale) data:
        // a replica that lags forever.
        let _: () = replica_admin
            .query(&cmd("REPLICAOF").arg("127.0.0.1").arg(dead_port()))
            .unwrap();
        let client = Client::builder()
            .config(primary.config())
            .reader_config(replica.config())
            .pool(PoolOptions::default().max_size(2))
            .build()
            .unwrap();
        assert!(client.has_reader());

        let writer_reads = Cache::builder(client.clone())
            .namespace("route-w")
            .build()
            .unwrap();
        let v: String = writer_reads
            .get_or_load("k", Duration::from_secs(60), || {
                Ok::<_, String>("v1".into())
            })
            .unwrap();
        assert_eq!(v, "v1");
        assert_eq!(
            writer_reads.get::<String>("k").unwrap(),
            Lookup::Found("v1".into()),
            "{kind:?}: a value written is read back at once"
        );
        let missing: Lookup<String> = writer_reads
            .lookup_or_load("gone", Duration::from_secs(60), || Ok::<_, String>(None))
            .unwrap();
        assert_eq!(missing, Lookup::Missing);
        let loads = counter();
        let l = loads.clone();
        let again: Lookup<String> = writer_reads
            .lookup_or_load("gone", Duration::from_secs(60), move || {
                l.fetch_add(1, Ordering::SeqCst);
                Ok::<_, String>(None)
            })
            .unwrap();
        assert_eq!(again, Lookup::KnownMissing, "{kind:?}: tombstone seen");
        assert_eq!(loads.load(Ordering::SeqCst), 0);
        let many: Vec<Option<String>> = writer_reads
            .get_many(&["k"], Duration::from_secs(60), |_| {
                Ok::<_, String>(HashMap::new())
            })
            .unwrap();
        assert_eq!(many, vec![Some("v1".to_string())]);
        assert_eq!(writer_reads.stats().hits, 1, "{kind:?}: the batch hit");

        // Opting in to the reader: the lagging replica has none of it.
        let reader_reads = Cache::builder(client.clone())
            .namespace("route-r")
            .read_from(ReadFrom::Reader)
            .build()
            .unwrap();
        reader_reads
            .put("k", Duration::from_secs(60), &"v1".to_string())
            .unwrap();
        assert_eq!(
            reader_reads.get::<String>("k").unwrap(),
            Lookup::Missing,
            "{kind:?}: the reader endpoint was asked"
        );
        // ... while the primary has it (the same GET, pinned to the writer).
        let pinned = cmd("GET")
            .arg(reader_reads.keyspace().entry("k"))
            .read_from(ReadFrom::Writer);
        let on_primary: Option<Vec<u8>> = client.query(&pinned).unwrap();
        assert!(on_primary.is_some(), "{kind:?}");
    }
}

#[test]
fn noscript_fallbacks_are_not_errors_in_metrics() {
    use valkit::{Client, PoolOptions};
    for kind in kinds() {
        let server = Server::start(kind).unwrap();
        let client = Client::builder()
            .config(server.config())
            .pool(PoolOptions::default().max_size(2))
            .build()
            .unwrap();
        let cache = Cache::builder(client.clone())
            .namespace("noscript")
            .build()
            .unwrap();
        let _: () = client.query(&cmd("SCRIPT").arg("FLUSH")).unwrap();
        cache
            .entry("k", Duration::from_secs(60))
            .tags(["t"])
            .put(&1)
            .unwrap();
        let _: () = client.query(&cmd("SCRIPT").arg("FLUSH")).unwrap();
        assert_eq!(cache.invalidate_tag("t").unwrap(), 1);
        let text = client.metrics_text();
        assert!(
            text.contains("command=\"EVALSHA\",endpoint=\"writer\",outcome=\"ok\""),
            "{kind:?}: {text}"
        );
        assert!(
            text.contains("command=\"EVAL\",endpoint=\"writer\",outcome=\"ok\""),
            "{kind:?}: the fallback ran: {text}"
        );
        assert!(!text.contains("outcome=\"error\""), "{kind:?}: {text}");
        assert!(!text.contains("server_noscript"), "{kind:?}: {text}");
    }
}

#[test]
fn hit_ratio_counts_hits_against_misses() {
    for t in targets() {
        let cache = builder(t, "ratio").build().unwrap();
        assert_eq!(cache.stats().hit_ratio(), None);
        for _ in 0..4 {
            let _: i32 = cache
                .get_or_load("k", Duration::from_secs(60), || Ok::<_, String>(1))
                .unwrap();
        }
        let s = cache.stats();
        assert_eq!((s.hits, s.misses), (3, 1), "{t:?}");
        assert_eq!(s.hit_ratio(), Some(0.75));
    }
}

#[test]
fn loader_error_type_is_inferred() {
    fn origin(path: &std::path::Path) -> std::io::Result<String> {
        std::fs::read_to_string(path)
    }
    for t in targets() {
        let cache = builder(t, "infer").build().unwrap();
        let path = std::env::temp_dir().join(format!("valkit-{}", key("infer")));
        std::fs::write(&path, "from disk").unwrap();
        let p = path.clone();
        // No turbofish, no annotation on the error: `std::io::Error` is inferred.
        let v: String = cache
            .get_or_load("k", Duration::from_secs(60), move || origin(&p))
            .unwrap();
        assert_eq!(v, "from disk");
        let missing = path.with_extension("absent");
        let err = cache
            .get_or_load::<String, _, _>("other", Duration::from_secs(60), move || origin(&missing))
            .unwrap_err();
        assert_eq!(err.kind(), CacheErrorKind::Loader);
        std::fs::remove_file(&path).unwrap();
    }
}

#[test]
fn local_loaders_borrow_and_refresh_stale_entries_in_the_caller() {
    for (t, xp) in targets().into_iter().flat_map(|t| [(t, false), (t, true)]) {
        let mut b = builder(t, &format!("local-{xp}"))
            .jitter(0.0)
            .stale_for(Duration::from_secs(30));
        if xp {
            // The refresh also goes through the cross-process lock step.
            b = b.cross_process(CrossProcess::default());
        }
        let cache = b.build().unwrap();
        // A local the loader borrows (not 'static), an io::Error inferred.
        let origin = std::cell::Cell::new(0u32);
        let name = String::from("v");
        let load = || -> std::io::Result<String> {
            origin.set(origin.get() + 1);
            Ok(format!("{name}{}", origin.get()))
        };
        let v: String = cache
            .get_or_load_local("k", Duration::from_millis(100), load)
            .unwrap();
        assert_eq!(v, "v1");
        let v: String = cache
            .get_or_load_local("k", Duration::from_millis(100), load)
            .unwrap();
        assert_eq!((v.as_str(), origin.get()), ("v1", 1), "{t:?}: a hit");
        std::thread::sleep(Duration::from_millis(250));
        // Stale: this caller refreshes and gets the new value; nothing queued.
        let v: String = cache
            .get_or_load_local("k", Duration::from_millis(100), load)
            .unwrap();
        assert_eq!((v.as_str(), origin.get()), ("v2", 2), "{t:?}");
        assert_eq!(cache.pending_refreshes(), 0);
        std::thread::sleep(Duration::from_millis(250));
        // Stale and the origin fails: the stale value, the failure counted.
        let v: String = cache
            .entry("k", Duration::from_millis(100))
            .get_or_load_local(|| Err(std::io::Error::other("origin down")))
            .unwrap();
        assert_eq!(v, "v2", "{t:?}");
        let s = cache.stats();
        assert_eq!((s.stale_hits, s.refresh_errors), (2, 1), "{t:?}");
        // Negative caching with a borrowing loader.
        let asked = std::cell::Cell::new(0);
        for expected in [Lookup::Missing, Lookup::KnownMissing] {
            let l: Lookup<String> = cache
                .entry("none", Duration::from_secs(60))
                .lookup_or_load_local(|| {
                    asked.set(asked.get() + 1);
                    Ok::<_, std::io::Error>(None)
                })
                .unwrap();
            assert_eq!(l, expected, "{t:?}");
        }
        assert_eq!(asked.get(), 1);
    }
}

#[test]
fn plain_entries_are_the_codec_bytes() {
    use valkit::ErrorKind;
    for t in targets() {
        let cache = builder(t, "plain").plain(true).build().unwrap();
        let value: HashMap<String, u32> = [("a".to_string(), 1)].into();
        let v: HashMap<String, u32> = cache
            .get_or_load_local("k", Duration::from_secs(60), || {
                Ok::<_, String>(value.clone())
            })
            .unwrap();
        assert_eq!(v, value);
        // Another service reads it with a plain GET: exactly the codec's (JSON) bytes.
        let raw: Option<Vec<u8>> = cache
            .executor()
            .query(&cmd("GET").arg(cache.keyspace().entry("k")))
            .unwrap();
        assert_eq!(raw.unwrap(), serde_json::to_vec(&value).unwrap(), "{t:?}");
        let pttl = cache.executor().pttl(cache.keyspace().entry("k")).unwrap();
        assert!(
            matches!(pttl, Ttl::Expires(d) if d > Duration::from_secs(50)),
            "{pttl:?}"
        );
        // ... and writes it: the cache serves what the other service stored.
        let _: () = cache
            .executor()
            .query(&cmd("SET").arg(cache.keyspace().entry("j")).arg("[1,2]"))
            .unwrap();
        assert_eq!(
            cache.get::<Vec<u8>>("j").unwrap(),
            Lookup::Found(vec![1, 2])
        );
        // No tombstones: "not found" is not stored, the loader is asked again.
        let asked = counter();
        for _ in 0..2 {
            let a = asked.clone();
            let l: Lookup<String> = cache
                .lookup_or_load("none", Duration::from_secs(60), move || {
                    a.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, String>(None)
                })
                .unwrap();
            assert_eq!(l, Lookup::Missing);
        }
        assert_eq!(asked.load(Ordering::SeqCst), 2, "{t:?}");
        assert_eq!(
            cache
                .executor()
                .exists(cache.keyspace().entry("none"))
                .unwrap(),
            0u64
        );
        // What needs the header is refused, with a reason.
        let err = cache
            .entry("s", Duration::from_secs(60))
            .stale_for(Duration::from_secs(5))
            .put(&1)
            .unwrap_err();
        assert_eq!(err.kind(), CacheErrorKind::InvalidInput, "{err}");
        for b in [
            builder(t, "plain-swr")
                .plain(true)
                .stale_for(Duration::from_secs(1)),
            builder(t, "plain-xf").plain(true).xfetch(1.0),
        ] {
            let err = b.build().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config);
            assert!(err.to_string().contains("plain"), "{err}");
        }
    }
}
