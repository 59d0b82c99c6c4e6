//! Pool checkout + GET throughput with 2 and 8 threads (issue 3's pool benchmark).
//!
//! `cargo bench --features testkit --bench pool` starts a throwaway server (the kind from
//! `VALKIT_SERVER`, Valkey by default) or uses `VALKIT_BENCH_URL`, then runs, for each
//! thread count, a fixed wall-clock window (`VALKIT_BENCH_SECS`, default 3 s) after a
//! 0.5 s warm-up, `VALKIT_BENCH_ROUNDS` (default 3) times with the variants interleaved,
//! and prints the median ops/s:
//!
//! * `pool`: `pool.get()` + `GET` + return: the normal path (liveness from a socket peek,
//!   no round trip on checkout);
//! * `pool+ping`: the same with `idle_check_after = 0`, i.e. a `PING` before every
//!   checkout, the cost r2d2 pays with its default `test_on_check_out`;
//! * `conn/thread`: one dedicated connection per thread, no pool: the ceiling.
//!
//! The peer rows (redis-rs sync API + r2d2, with and without `test_on_check_out`) belong
//! in the same run against the same server; they need `redis` (feature `r2d2`) and `r2d2`
//! as dev-dependencies, which this branch does not add. The loop below is the shape to
//! give them: same key, same thread counts, same window.
//!
//! Plain `std` timing rather than criterion: the quantity is aggregate throughput of
//! several threads over a window, which criterion's per-iteration model does not express.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use valkit::testkit::{Server, ServerKind};
use valkit::{cmd, Connection, ConnectionConfig, Execute, Pool, PoolOptions};

/// Run `op` on `threads` threads for `window` (after a warm-up) and return ops/s.
fn throughput<F>(threads: usize, window: Duration, make: impl Fn() -> F) -> f64
where
    F: FnMut() + Send + 'static,
{
    let stop = Arc::new(AtomicBool::new(false));
    let counting = Arc::new(AtomicBool::new(false));
    let ops = Arc::new(AtomicU64::new(0));
    let start = Arc::new(Barrier::new(threads + 1));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let mut op = make();
            let (stop, counting, ops, start) =
                (stop.clone(), counting.clone(), ops.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                let mut n = 0u64;
                while !stop.load(Relaxed) {
                    op();
                    if counting.load(Relaxed) {
                        n += 1;
                    }
                }
                ops.fetch_add(n, Relaxed);
            })
        })
        .collect();
    start.wait();
    thread::sleep(Duration::from_millis(500));
    counting.store(true, Relaxed);
    let t = Instant::now();
    thread::sleep(window);
    counting.store(false, Relaxed);
    let elapsed = t.elapsed();
    stop.store(true, Relaxed);
    for w in workers {
        w.join().expect("bench worker panicked");
    }
    ops.load(Relaxed) as f64 / elapsed.as_secs_f64()
}

fn main() -> valkit::Result<()> {
    let window = Duration::from_secs_f64(
        std::env::var("VALKIT_BENCH_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(3.0),
    );
    let server;
    let config = match std::env::var("VALKIT_BENCH_URL") {
        Ok(url) => ConnectionConfig::from_url(&url)?,
        Err(_) => {
            server = Server::start(ServerKind::from_env())?;
            server.config()
        }
    };
    let key = "valkit-bench:pool:key";
    Connection::open(&config)?.exec(&cmd("SET").arg(key).arg("value"))?;
    let get = cmd("GET").arg(key);

    // Variants are interleaved and repeated, and the median is reported, so that a burst
    // of load from elsewhere on the machine does not land on one variant only.
    let rounds: usize = std::env::var("VALKIT_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    println!(
        "{:<12} {:>8} {:>12}   (median of {rounds} rounds)",
        "variant", "threads", "ops/s"
    );
    for threads in [2usize, 8] {
        let pool = Pool::new(config.clone(), PoolOptions::new())?;
        let checked = Pool::new(
            config.clone(),
            PoolOptions::new().idle_check_after(Duration::ZERO),
        )?;
        let mut results: [Vec<f64>; 3] = Default::default();
        for _ in 0..rounds {
            for (i, pool) in [&pool, &checked].into_iter().enumerate() {
                results[i].push(throughput(threads, window, || {
                    let (pool, get) = (pool.clone(), get.clone());
                    move || {
                        let conn = pool.get().expect("checkout");
                        conn.exec(&get).expect("GET");
                    }
                }));
            }
            results[2].push(throughput(threads, window, || {
                let conn = Connection::open(&config).expect("connect");
                let get = get.clone();
                move || {
                    conn.exec(&get).expect("GET");
                }
            }));
        }
        for (name, mut r) in ["pool", "pool+ping", "conn/thread"]
            .into_iter()
            .zip(results)
        {
            r.sort_by(f64::total_cmp);
            println!("{name:<12} {threads:>8} {:>12.0}", r[r.len() / 2]);
        }
    }
    Ok(())
}
