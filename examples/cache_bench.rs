//! Cache measurements for `docs/benchmarks.md` ("Caching"): the overhead of a hit through
//! `get_or_load` against a raw `GET` through the same executor (one connection, then a
//! `Client`), interleaved with rotation and taken as per-round ratios, and origin calls
//! when 64 threads hit one cold (or just expired) key under each strategy.
//!
//! Starts a throwaway server per kind (the test kit). Run:
//! `cargo run --release --example cache_bench --features testkit`
//! (`VALKIT_SERVER=valkey|redis` for one kind only; `HIT_ITERS=n` calls per variant,
//! default 60,000, in blocks of `HIT_BLOCK`, default 500). Pin it (`taskset -c 1`) and run
//! it unpinned too: `docs/benchmarks.md` reports both.

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
        hit_overhead("one connection", conn.clone(), iters)?;
        let client = valkit::Client::builder().config(server.config()).build()?;
        hit_overhead("a Client", client, iters)?;
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

/// The hit path against raw GETs through the same executor `db` (a connection, or a
/// `Client`): short blocks of each variant in turn, the starting variant rotating from
/// round to round (so that drift and load from elsewhere land on all of them alike), and
/// the overhead taken as the ratio within each round, median (and spread) over rounds.
fn hit_overhead<E>(label: &str, db: E, iters: usize) -> Result<(), Box<dyn std::error::Error>>
where
    E: valkit::Execute + Clone + Send + Sync + 'static,
{
    let cache = Cache::builder(db.clone()).namespace("bench").build()?;
    let ttl = Duration::from_secs(600);
    cache.put("user:42", ttl, &user())?;
    let raw_key = "bench:raw:user:42";
    db.set(raw_key, serde_json::to_vec(&user())?)?;

    type Variant<'a> = (&'a str, Box<dyn Fn() + 'a>);
    let variants: Vec<Variant> = vec![
        (
            "raw GET (bytes)",
            Box::new(|| {
                let _: Option<Vec<u8>> = db.get(raw_key).unwrap();
            }),
        ),
        (
            "raw GET + serde_json decode",
            Box::new(|| {
                let b: Vec<u8> = db.get::<_, Option<Vec<u8>>>(raw_key).unwrap().unwrap();
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
    let block: usize = std::env::var("HIT_BLOCK")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(500);
    let rounds = (iters / block).max(5);
    for (_, f) in &variants {
        for _ in 0..block {
            f(); // warm up
        }
    }
    // per_op[round][variant], µs per call
    let mut per_op: Vec<Vec<f64>> = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let mut row = vec![0.0; variants.len()];
        for k in 0..variants.len() {
            let i = (k + round) % variants.len();
            let f = &variants[i].1;
            let t = Instant::now();
            for _ in 0..block {
                f();
            }
            row[i] = t.elapsed().as_secs_f64() * 1e6 / block as f64;
        }
        per_op.push(row);
    }
    let sorted = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v
    };
    let quartiles = |v: &[f64]| (v[v.len() / 4], v[v.len() / 2], v[v.len() * 3 / 4]);
    println!(
        "hit path through {label}: {rounds} rounds x {block} calls per variant, interleaved, \
         starting variant rotated (µs/op, median of rounds):"
    );
    for (i, (name, _)) in variants.iter().enumerate() {
        let v = sorted(per_op.iter().map(|r| r[i]).collect());
        println!("  {name:<45} {:>8.2}", quartiles(&v).1);
    }
    for (a, base, what) in [
        (3, 1, "get_or_load hit / raw GET + decode"),
        (3, 0, "get_or_load hit / raw GET (bytes)"),
        (2, 1, "cache.get / raw GET + decode"),
    ] {
        let v = sorted(per_op.iter().map(|r| r[a] / r[base]).collect());
        let (q1, med, q3) = quartiles(&v);
        println!(
            "  {what:<38}: {:+.1} % per round (median; quartiles {:+.1} % .. {:+.1} %)",
            (med - 1.0) * 100.0,
            (q1 - 1.0) * 100.0,
            (q3 - 1.0) * 100.0
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
