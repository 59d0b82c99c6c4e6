//! Cache measurements for `docs/benchmarks.md` ("Caching"): the overhead of a hit through
//! `get_or_load` against a raw `GET` on the same connection, and origin calls when 64
//! threads hit one cold (or just expired) key under each strategy.
//!
//! Starts a throwaway server per kind (the test kit). Run:
//! `cargo run --release --example cache_bench --features testkit`
//! (`VALKIT_SERVER=valkey|redis` for one kind only; `HIT_ITERS=n` to change the loop).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use valkit::cache::{Cache, CacheBuilder, CrossProcess};
use valkit::testkit::{Server, ServerKind};
use valkit::{Commands, Connection};

type Conn = Arc<Connection>;
type Configure = Box<dyn Fn(CacheBuilder<Conn>) -> CacheBuilder<Conn>>;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let kinds = match std::env::var("VALKIT_SERVER").ok().as_deref() {
        Some("valkey") => vec![ServerKind::Valkey],
        Some("redis") => vec![ServerKind::Redis],
        _ => vec![ServerKind::Valkey, ServerKind::Redis],
    };
    let iters: usize = std::env::var("HIT_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60_000);
    for kind in kinds {
        let server = Server::start(kind)?;
        let conn: Conn = Arc::new(Connection::open(&server.config())?);
        println!("== {} ({})", kind.name(), server.url());
        hit_overhead(&conn, iters)?;
        stampedes(&conn)?;
    }
    Ok(())
}

#[derive(serde::Serialize, serde::Deserialize)]
struct User {
    id: u64,
    name: String,
    email: String,
    roles: Vec<String>,
}

fn user() -> User {
    User {
        id: 42,
        name: "Ada Lovelace".into(),
        email: "ada@example.com".into(),
        roles: vec!["admin".into(), "dev".into()],
    }
}

/// Median of `rounds` per-op times, alternating the variants each round.
fn hit_overhead(conn: &Conn, iters: usize) -> Result<(), Box<dyn std::error::Error>> {
    let cache = Cache::builder(conn.clone()).namespace("bench").build()?;
    let ttl = Duration::from_secs(600);
    cache.put("user:42", ttl, &user())?;
    let raw_key = "bench:raw:user:42";
    conn.set(raw_key, serde_json::to_vec(&user())?)?;

    type Variant<'a> = (&'a str, Box<dyn Fn() + 'a>);
    let variants: Vec<Variant> = vec![
        (
            "raw GET (bytes)",
            Box::new(|| {
                let _: Option<Vec<u8>> = conn.get(raw_key).unwrap();
            }),
        ),
        (
            "raw GET + serde_json decode",
            Box::new(|| {
                let b: Vec<u8> = conn.get::<_, Option<Vec<u8>>>(raw_key).unwrap().unwrap();
                let _: User = serde_json::from_slice(&b).unwrap();
            }),
        ),
        (
            "cache.get (entry key GET + header + decode)",
            Box::new(|| {
                let _ = cache.get::<User>("user:42").unwrap();
            }),
        ),
        (
            "cache.get_or_load hit",
            Box::new(|| {
                let _: User = cache
                    .get_or_load("user:42", ttl, || Ok::<_, String>(user()))
                    .unwrap();
            }),
        ),
    ];
    // Short blocks, variants interleaved, many rounds: drift and noise hit every variant
    // alike; the median per variant is reported.
    let block = 2_000;
    let rounds = (iters / block).max(5);
    let mut per_op: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    for (_, f) in &variants {
        for _ in 0..block {
            f(); // warm up
        }
    }
    for _ in 0..rounds {
        for (i, (_, f)) in variants.iter().enumerate() {
            let t = Instant::now();
            for _ in 0..block {
                f();
            }
            per_op[i].push(t.elapsed().as_secs_f64() * 1e6 / block as f64);
        }
    }
    let stat = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        (v[v.len() / 2], v[0])
    };
    let stats: Vec<(f64, f64)> = per_op.iter().map(|v| stat(v)).collect();
    println!("hit path, {rounds} rounds x {block} calls per variant, interleaved (µs/op):");
    println!("  {:<45} {:>8} {:>8}", "", "median", "best");
    for (i, (name, _)) in variants.iter().enumerate() {
        println!("  {name:<45} {:>8.2} {:>8.2}", stats[i].0, stats[i].1);
    }
    for (base, label) in [(1, "raw GET + decode"), (0, "raw GET (bytes)")] {
        println!(
            "  get_or_load hit vs {label:<17}: {:+.1} % (median), {:+.1} % (best)",
            (stats[3].0 / stats[base].0 - 1.0) * 100.0,
            (stats[3].1 / stats[base].1 - 1.0) * 100.0
        );
    }
    assert!(cache.stats().hits > 0);
    Ok(())
}

struct Outcome {
    loads: usize,
    slowest: Duration,
}

/// 64 threads call `get_or_load` on `key` at once; the loader takes 50 ms.
fn herd(cache: &Cache<Conn>, key: &str) -> Outcome {
    let loads = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(64));
    let threads: Vec<_> = (0..64)
        .map(|_| {
            let (cache, loads, barrier, key) = (
                cache.clone(),
                loads.clone(),
                barrier.clone(),
                key.to_owned(),
            );
            std::thread::spawn(move || {
                barrier.wait();
                let t = Instant::now();
                let _: u64 = cache
                    .get_or_load(&key, Duration::from_millis(300), move || {
                        loads.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(50));
                        Ok::<_, String>(7)
                    })
                    .unwrap();
                t.elapsed()
            })
        })
        .collect();
    let slowest = threads
        .into_iter()
        .map(|t| t.join().unwrap())
        .max()
        .unwrap_or_default();
    while cache.pending_refreshes() > 0 {
        std::thread::sleep(Duration::from_millis(2));
    }
    Outcome {
        loads: loads.load(Ordering::SeqCst),
        slowest,
    }
}

fn stampedes(conn: &Conn) -> Result<(), Box<dyn std::error::Error>> {
    let strategies: Vec<(&str, Configure)> = vec![
        (
            "no protection (singleflight off)",
            Box::new(|b| b.singleflight(false)),
        ),
        ("singleflight (default)", Box::new(|b| b)),
        (
            "singleflight + cross-process lock",
            Box::new(|b| b.cross_process(CrossProcess::default())),
        ),
        (
            "stale-while-revalidate (grace 10 s)",
            Box::new(|b| b.stale_for(Duration::from_secs(10))),
        ),
        ("XFetch (beta 1)", Box::new(|b| b.xfetch(1.0))),
    ];
    println!(
        "64 threads, one key, 50 ms loader, TTL 300 ms (jitter off); steady: 8 threads for 1.5 s:"
    );
    println!("  | strategy | cold start: origin calls | cold: slowest caller | after expiry: origin calls | after expiry: slowest caller | steady: origin calls | steady: calls that waited > 20 ms |");
    println!("  | --- | --- | --- | --- | --- | --- | --- |");
    for (i, (name, configure)) in strategies.iter().enumerate() {
        let b = Cache::builder(conn.clone())
            .namespace(&format!("bench-herd-{i}-{}", std::process::id()))
            .jitter(0.0);
        let cache = configure(b).build()?;
        let cold = herd(&cache, "hot");
        std::thread::sleep(Duration::from_millis(350)); // past the TTL
        let expired = herd(&cache, "hot");
        let (steady_loads, waited) = steady(&cache, "steady");
        println!(
            "  | {name} | {} | {:.0} ms | {} | {:.0} ms | {steady_loads} | {waited} |",
            cold.loads,
            cold.slowest.as_secs_f64() * 1e3,
            expired.loads,
            expired.slowest.as_secs_f64() * 1e3
        );
    }
    Ok(())
}

/// 8 threads read one key in a loop for 1.5 s (TTL 300 ms, 50 ms loader): origin calls,
/// and how many calls waited more than 20 ms.
fn steady(cache: &Cache<Conn>, key: &str) -> (usize, usize) {
    let loads = Arc::new(AtomicUsize::new(0));
    let waited = Arc::new(AtomicUsize::new(0));
    let until = Instant::now() + Duration::from_millis(1500);
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (cache, loads, waited, key) =
                (cache.clone(), loads.clone(), waited.clone(), key.to_owned());
            std::thread::spawn(move || {
                while Instant::now() < until {
                    let loads = loads.clone();
                    let t = Instant::now();
                    let _: u64 = cache
                        .get_or_load(&key, Duration::from_millis(300), move || {
                            loads.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(Duration::from_millis(50));
                            Ok::<_, String>(7)
                        })
                        .unwrap();
                    if t.elapsed() > Duration::from_millis(20) {
                        waited.fetch_add(1, Ordering::SeqCst);
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    while cache.pending_refreshes() > 0 {
        std::thread::sleep(Duration::from_millis(2));
    }
    (loads.load(Ordering::SeqCst), waited.load(Ordering::SeqCst))
}
