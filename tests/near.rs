//! Issue 16: the near cache against real servers (Valkey and Redis): hits, invalidation by
//! another client, coherence against another *process* writing at random while readers
//! hammer the L1 (with the tracking connection killed mid-run), FLUSHALL, BCAST prefixes,
//! use in front of the `Cache`, and a server that refuses tracking.

mod support;

use std::collections::HashMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use support::{key, kinds, shared};
use valkit::near::{NearCache, NearOptions, TrackingMode};
use valkit::testkit::{ServerKind, ServerOptions};
use valkit::{cmd, Commands, Connection, ConnectionConfig, Execute, Protocol};

/// The modes and the protocol each runs on.
fn modes() -> [(TrackingMode, Protocol); 2] {
    [
        (TrackingMode::Default, Protocol::Resp3),
        (TrackingMode::Redirect, Protocol::Resp2),
    ]
}

fn cfg_for(kind: ServerKind, proto: Protocol) -> ConnectionConfig {
    let mut c = shared(kind).config();
    c.protocol = proto;
    c
}

fn open(cfg: &ConnectionConfig, mode: TrackingMode) -> NearCache {
    let opts = NearOptions {
        mode: Some(mode),
        ..NearOptions::default()
    };
    NearCache::open(cfg, opts).unwrap()
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// Wait until `f` holds, at most `within`.
fn eventually(within: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let until = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < until, "{what} not within {within:?}");
        thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn hits_after_a_miss_and_invalidation_by_another_client() {
    for kind in kinds() {
        for (mode, proto) in modes() {
            let cfg = cfg_for(kind, proto);
            let near = open(&cfg, mode);
            assert!(near.is_enabled());
            let other = Connection::open(&cfg).unwrap();
            let k = key("near-basic");
            other.set(&k, "v1").unwrap();
            let a: Option<String> = near.get(&k).unwrap();
            let b: Option<String> = near.get(&k).unwrap();
            assert_eq!((a.as_deref(), b.as_deref()), (Some("v1"), Some("v1")));
            let s = near.stats();
            assert_eq!(
                (s.hits, s.misses, s.entries),
                (1, 1, 1),
                "{kind:?} {mode:?}"
            );
            assert!(s.bytes > 0);
            other.set(&k, "v2").unwrap();
            eventually(Duration::from_secs(2), "invalidation", || {
                near.stats().invalidations >= 1
            });
            let c: Option<String> = near.get(&k).unwrap();
            assert_eq!(c.as_deref(), Some("v2"));
            // Missing keys are not cached (nothing to invalidate them by).
            let none: Option<String> = near.get(format!("{k}:missing")).unwrap();
            assert!(none.is_none());
            // Writes through the near cache are read back at once.
            near.set(&k, "v3").unwrap();
            let d: Option<String> = near.get(&k).unwrap();
            assert_eq!(d.as_deref(), Some("v3"));
        }
    }
}

/// The writer process (re-executed test binary): random SETs of increasing versions,
/// each logged with when its reply arrived.
#[test]
fn near_writer_child() {
    let Ok(port) = std::env::var("VALKIT_NEAR_PORT") else {
        return; // Only meaningful as a child of the coherence test.
    };
    let prefix = std::env::var("VALKIT_NEAR_PREFIX").unwrap();
    let ms: u64 = std::env::var("VALKIT_NEAR_MS").unwrap().parse().unwrap();
    let keys: usize = std::env::var("VALKIT_NEAR_KEYS").unwrap().parse().unwrap();
    let conn = Connection::open_url(&format!("redis://127.0.0.1:{port}")).unwrap();
    let mut versions = vec![0u64; keys];
    let mut log = String::new();
    let until = Instant::now() + Duration::from_millis(ms);
    while Instant::now() < until {
        let i = rand::random::<u64>() as usize % keys;
        versions[i] += 1;
        conn.set(format!("{prefix}:{i}"), versions[i]).unwrap();
        log.push_str(&format!("W {i} {} {}\n", versions[i], now_ns()));
        thread::sleep(Duration::from_micros(200 + rand::random::<u64>() % 800));
    }
    print!("{log}");
}

/// A read: key, version returned, when it started.
struct Read(usize, u64, u128);

fn coherence_run(kind: ServerKind, mode: TrackingMode, proto: Protocol) {
    const KEYS: usize = 16;
    const RUN_MS: u64 = 1500;
    const BOUND: u128 = 250_000_000; // ns
    let cfg = cfg_for(kind, proto);
    let prefix = key(&format!("near-coh:{mode:?}"));
    let setup = Connection::open(&cfg).unwrap();
    for i in 0..KEYS {
        setup.set(format!("{prefix}:{i}"), 0).unwrap();
    }
    let near = Arc::new(open(&cfg, mode));
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "near_writer_child",
            "--exact",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env("VALKIT_NEAR_PORT", shared(kind).port().to_string())
        .env("VALKIT_NEAR_PREFIX", &prefix)
        .env("VALKIT_NEAR_MS", RUN_MS.to_string())
        .env("VALKIT_NEAR_KEYS", KEYS.to_string())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let near = Arc::clone(&near);
            let stop = Arc::clone(&stop);
            let prefix = prefix.clone();
            thread::spawn(move || {
                let mut reads = Vec::new();
                let mut seen = [0u64; KEYS];
                let mut regressions = 0;
                let started = Instant::now();
                while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(20) {
                    let i = rand::random::<u64>() as usize % KEYS;
                    let t = now_ns();
                    match near.get::<_, Option<u64>>(format!("{prefix}:{i}")) {
                        Ok(Some(v)) => {
                            if v < seen[i] {
                                regressions += 1;
                            }
                            seen[i] = seen[i].max(v);
                            reads.push(Read(i, v, t));
                        }
                        Ok(None) => panic!("key {i} missing"),
                        // The killed connection may fail one read in flight.
                        Err(e) => assert!(
                            e.is_connection_broken()
                                || e.kind() == valkit::ErrorKind::Io
                                || e.kind() == valkit::ErrorKind::Broken,
                            "{e}"
                        ),
                    }
                }
                (reads, regressions)
            })
        })
        .collect();
    // Mid-run: kill the connection the invalidations arrive on.
    thread::sleep(Duration::from_millis(RUN_MS / 2));
    let flushes_before = near.stats().flushes;
    let id = near.tracking_client_id();
    assert!(id > 0);
    setup
        .exec(&cmd("CLIENT").arg("KILL").arg("ID").arg(id))
        .unwrap();
    eventually(Duration::from_secs(2), "flush after the kill", || {
        near.stats().flushes > flushes_before
    });
    eventually(Duration::from_secs(5), "tracking back", || {
        near.is_enabled() && near.tracking_client_id() != id
    });
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "writer failed");
    thread::sleep(Duration::from_millis(50));
    stop.store(true, Ordering::Relaxed);
    let mut reads = Vec::new();
    let mut regressions = 0;
    for r in readers {
        let (rs, reg) = r.join().unwrap();
        reads.extend(rs);
        regressions += reg;
    }
    // When each version was written (its SET's reply time).
    let mut written: HashMap<(usize, u64), u128> = HashMap::new();
    let mut last = [0u64; KEYS];
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split(' ').collect();
        if f.len() == 4 && f[0] == "W" {
            let (i, v, t): (usize, u64, u128) = (
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
                f[3].parse().unwrap(),
            );
            written.insert((i, v), t);
            last[i] = last[i].max(v);
        }
    }
    assert!(written.len() > 200, "too few writes: {}", written.len());
    // A read returned version v: version v+1 must not have been written more than BOUND
    // before the read started.
    let mut worst: i128 = i128::MIN;
    let mut stale = 0;
    for Read(i, v, t) in &reads {
        if let Some(w) = written.get(&(*i, v + 1)) {
            let lag = *t as i128 - *w as i128;
            worst = worst.max(lag);
            if lag > BOUND as i128 {
                stale += 1;
            }
        }
    }
    let s = near.stats();
    eprintln!(
        "{kind:?} {mode:?}: {} reads, {} writes, hits {} misses {} invalidations {} flushes {}, \
         worst lag behind a newer write {:.2} ms, regressions {regressions}",
        reads.len(),
        written.len(),
        s.hits,
        s.misses,
        s.invalidations,
        s.flushes,
        worst as f64 / 1e6
    );
    assert_eq!(
        stale, 0,
        "{stale} reads older than a write {BOUND} ns before them"
    );
    assert!(s.hits > 100 && s.invalidations > 50, "{s:?}");
    // No reader ever goes back to an older version (reads are numbered in the order
    // they reach the server; only the latest may install).
    assert_eq!(regressions, 0);
    // After the writes plus a short bound, every key reads its last version.
    thread::sleep(Duration::from_millis(100));
    for (i, want) in last.iter().enumerate() {
        let got: Option<u64> = near.get(format!("{prefix}:{i}")).unwrap();
        assert_eq!(got, Some(*want), "key {i}");
    }
}

#[test]
fn coherent_against_another_process_with_the_tracking_connection_killed() {
    for kind in kinds() {
        for (mode, proto) in modes() {
            coherence_run(kind, mode, proto);
        }
    }
}

#[test]
fn flushall_flushes_and_a_server_without_tracking_disables_the_l1() {
    for kind in kinds() {
        let server = ServerOptions::new(kind).start().unwrap();
        for (mode, proto) in modes() {
            let mut cfg = server.config();
            cfg.protocol = proto;
            let near = open(&cfg, mode);
            near.set("a", "1").unwrap();
            near.set("b", "2").unwrap();
            let _: Option<String> = near.get("a").unwrap();
            let _: Option<String> = near.get("b").unwrap();
            assert_eq!(near.stats().entries, 2);
            let flushes = near.stats().flushes;
            Connection::open(&cfg)
                .unwrap()
                .exec(&cmd("FLUSHALL"))
                .unwrap();
            eventually(Duration::from_secs(2), "flush", || {
                near.stats().flushes > flushes
            });
            assert_eq!(near.stats().entries, 0);
            let a: Option<String> = near.get("a").unwrap();
            assert!(a.is_none(), "{kind:?} {mode:?}");
        }
        // An ACL user that may not turn tracking on: the L1 is off, reads still work.
        let admin = Connection::open(&server.config()).unwrap();
        admin
            .exec(
                &cmd("ACL")
                    .arg("SETUSER")
                    .arg("notrack")
                    .arg("on")
                    .arg(">pw")
                    .arg("~*")
                    .arg("&*")
                    .arg("+@all")
                    .arg("-client|tracking"),
            )
            .unwrap();
        let mut cfg = server.config();
        cfg.username = Some("notrack".into());
        cfg.password = Some("pw".into());
        let near = NearCache::open(&cfg, NearOptions::default()).unwrap();
        assert!(!near.is_enabled());
        near.set("c", "3").unwrap();
        for _ in 0..3 {
            let c: Option<String> = near.get("c").unwrap();
            assert_eq!(c.as_deref(), Some("3"));
        }
        assert_eq!(near.stats().hits, 0);
    }
}

#[test]
fn bcast_prefixes_cache_only_their_keys() {
    for kind in kinds() {
        let cfg = cfg_for(kind, Protocol::Resp3);
        let p = key("bcast");
        let opts = NearOptions {
            bcast_prefixes: vec![format!("{p}:hot:")],
            ..NearOptions::default()
        };
        let other = Connection::open(&cfg).unwrap();
        let (hot, cold) = (format!("{p}:hot:1"), format!("{p}:cold:1"));
        other.set(&hot, "h1").unwrap();
        other.set(&cold, "c1").unwrap();
        let near = NearCache::open(&cfg, opts).unwrap();
        for _ in 0..3 {
            let _: Option<String> = near.get(&hot).unwrap();
            let _: Option<String> = near.get(&cold).unwrap();
        }
        assert_eq!(near.stats().hits, 2);
        other.set(&hot, "h2").unwrap();
        eventually(Duration::from_secs(2), "bcast invalidation", || {
            near.get::<_, Option<String>>(&hot).unwrap().as_deref() == Some("h2")
        });
    }
}

#[test]
fn in_front_of_the_cache() {
    for kind in kinds() {
        let cfg = cfg_for(kind, Protocol::Resp3);
        let near = Arc::new(NearCache::open(&cfg, NearOptions::default()).unwrap());
        let ns = key("near-cache");
        let cache = valkit::cache::Cache::new(Arc::clone(&near), &ns).unwrap();
        cache
            .entry("p:1", Duration::from_secs(60))
            .put(&"lamp".to_string())
            .unwrap();
        for _ in 0..5 {
            let v: Option<String> = cache.get("p:1").unwrap().found();
            assert_eq!(v.as_deref(), Some("lamp"));
        }
        assert!(near.stats().hits >= 3, "{:?}", near.stats());
        // Another process's cache writes the entry: the L1 follows.
        let remote =
            valkit::cache::Cache::new(Arc::new(Connection::open(&cfg).unwrap()), &ns).unwrap();
        remote
            .entry("p:1", Duration::from_secs(60))
            .put(&"desk".to_string())
            .unwrap();
        eventually(Duration::from_secs(2), "cache entry invalidated", || {
            cache.get::<String>("p:1").unwrap().found().as_deref() == Some("desk")
        });
    }
}
