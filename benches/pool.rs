//! Pool checkout + GET throughput with 1, 4, 16 and 64 threads (`VALKIT_POOL_THREADS`)
//! against the `redis` crate's sync client behind an r2d2 pool (issues 3 and 11), all in
//! one run on one server.
//!
//! `cargo bench --all-features --bench pool` starts a throwaway server (the kind from
//! `VALKIT_SERVER`, Valkey by default) or uses `VALKIT_BENCH_URL`. For each thread count
//! it runs `VALKIT_BENCH_ROUNDS` (default 5) rounds; in each round every variant below
//! runs in turn for a fixed wall-clock window (`VALKIT_BENCH_SECS`, default 1.5 s) after a
//! 0.5 s warm-up, the starting variant rotating from round to round, so that load from
//! elsewhere on the machine lands on all of them alike. Pool sizes: `VALKIT_POOL_SIZES`
//! (default `16`), the same size for valkit and r2d2.
//!
//! * `pool`: valkit `pool.get()` + `GET` + return with the default options: a socket peek
//!   (three system calls) on every checkout, so a dead connection is never handed out;
//! * `pool+skip`: the same with `skip_check_within(250 ms)`: a connection returned less
//!   than 250 ms ago is handed out unchecked (what r2d2 without its check does always);
//! * `pool+ping`: the same with `idle_check_after = 0`, i.e. a `PING` before every
//!   checkout, what r2d2 pays with its default `test_on_check_out`;
//! * `client`: a `valkit::Client` with a pool of that size and default options (retry,
//!   breaker, metrics; an idempotent call with retries left skips the check on a
//!   connection returned within 250 ms: `skip_check_when_resendable`): what users call;
//! * `r2d2 default`: `r2d2::Pool<redis::Client>` with r2d2's defaults
//!   (`test_on_check_out = true`: `PING` on every checkout) but `max_size`;
//! * `r2d2 no-check`: the same with `test_on_check_out(false)` (only redis-rs's
//!   `has_broken`, a flag check, on return);
//! * `conn/thread`: one dedicated valkit connection per thread, no pool: the ceiling.
//!
//! Every variant sends the same prebuilt `GET` of one 5-byte value and gets an owned
//! reply back. Printed: the median ops/s over rounds, and the ratios valkit `pool` over
//! `r2d2 no-check` and over `r2d2 default` taken within each round, median over rounds.
//! The same figures go to `target/criterion/pool.json` (for `scripts/bench.sh`).
//!
//! Plain `std` timing rather than criterion: the quantity is aggregate throughput of
//! several threads over a window, which criterion's per-iteration model does not express.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use valkit::testkit::{Server, ServerKind};
use valkit::{cmd, Connection, ConnectionConfig, Execute, Pool, PoolOptions};

/// One thread's operation: check out, `GET`, give back.
type Op = Box<dyn FnMut() + Send>;

/// Run the op `make` builds (one per thread) on `threads` threads for `window` (after a
/// warm-up) and return ops/s.
fn throughput(threads: usize, window: Duration, make: &dyn Fn() -> Op) -> f64 {
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

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "n/a".to_owned())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A benchmarked variant: its name, its pool size (`None`: no pool) and how each thread
/// gets its operation.
struct Variant {
    name: &'static str,
    size: Option<u32>,
    make: Box<dyn Fn() -> Op>,
}

fn valkit_pool(pool: Pool, get: &valkit::Cmd) -> Box<dyn Fn() -> Op> {
    let get = get.clone();
    Box::new(move || {
        let (pool, get) = (pool.clone(), get.clone());
        Box::new(move || {
            let conn = pool.get().expect("valkit checkout");
            std::hint::black_box(conn.exec(&get).expect("valkit GET"));
        })
    })
}

fn r2d2_pool(pool: r2d2::Pool<redis::Client>, key: &str) -> Box<dyn Fn() -> Op> {
    let mut get = redis::cmd("GET");
    get.arg(key);
    Box::new(move || {
        let (pool, get) = (pool.clone(), get.clone());
        Box::new(move || {
            let mut conn = pool.get().expect("r2d2 checkout");
            let v: Option<Vec<u8>> = get.query(&mut *conn).expect("redis GET");
            std::hint::black_box(v);
        })
    })
}

fn main() -> valkit::Result<()> {
    let window = Duration::from_secs_f64(env_or("VALKIT_BENCH_SECS", 1.5));
    let rounds: usize = env_or("VALKIT_BENCH_ROUNDS", 5).max(1);
    let sizes: Vec<u32> = std::env::var("VALKIT_POOL_SIZES")
        .unwrap_or_else(|_| "16".to_owned())
        .split(',')
        .map(|s| {
            s.trim()
                .parse()
                .expect("VALKIT_POOL_SIZES: comma-separated sizes")
        })
        .collect();
    let server;
    let (config, url) = match std::env::var("VALKIT_BENCH_URL") {
        Ok(url) => (ConnectionConfig::from_url(&url)?, url),
        Err(_) => {
            server = Server::start(ServerKind::from_env())?;
            (server.config(), server.url())
        }
    };
    let key = "valkit-bench:pool:key";
    Connection::open(&config)?.exec(&cmd("SET").arg(key).arg("value"))?;
    let get = cmd("GET").arg(key);
    let client = redis::Client::open(url.as_str()).expect("redis client");

    let mut variants = Vec::new();
    for &size in &sizes {
        let valkit = |opts: PoolOptions| Pool::new(config.clone(), opts.max_size(size as usize));
        let r2d2 = |check: bool| {
            r2d2::Pool::builder()
                .max_size(size)
                .test_on_check_out(check)
                .build(client.clone())
                .expect("r2d2 pool")
        };
        let max = size as usize;
        let size = Some(size);
        variants.push(Variant {
            name: "pool",
            size,
            make: valkit_pool(valkit(PoolOptions::new())?, &get),
        });
        variants.push(Variant {
            name: "pool+skip",
            size,
            make: valkit_pool(
                valkit(PoolOptions::new().skip_check_within(Duration::from_millis(250)))?,
                &get,
            ),
        });
        variants.push(Variant {
            name: "pool+ping",
            size,
            make: valkit_pool(
                valkit(PoolOptions::new().idle_check_after(Duration::ZERO))?,
                &get,
            ),
        });
        variants.push(Variant {
            name: "client",
            size,
            make: {
                let client = valkit::Client::builder()
                    .config(config.clone())
                    .pool(PoolOptions::new().max_size(max))
                    .build()?;
                let get = get.clone();
                Box::new(move || {
                    let (client, get) = (client.clone(), get.clone());
                    Box::new(move || {
                        std::hint::black_box(client.exec(&get).expect("client GET"));
                    })
                })
            },
        });
        variants.push(Variant {
            name: "r2d2 default",
            size,
            make: r2d2_pool(r2d2(true), key),
        });
        variants.push(Variant {
            name: "r2d2 no-check",
            size,
            make: r2d2_pool(r2d2(false), key),
        });
    }
    variants.push(Variant {
        name: "conn/thread",
        size: None,
        make: {
            let (config, get) = (config.clone(), get.clone());
            Box::new(move || {
                let conn = Connection::open(&config).expect("connect");
                let get = get.clone();
                Box::new(move || {
                    std::hint::black_box(conn.exec(&get).expect("GET"));
                })
            })
        },
    });
    let find = |name: &str, size: Option<u32>| {
        variants
            .iter()
            .position(|v| v.name == name && v.size == size)
            .expect("variant")
    };

    let load_before = loadavg();
    println!(
        "pool bench: {rounds} rounds x {:.1} s per variant; load average {load_before}",
        window.as_secs_f64()
    );
    println!(
        "{:<14} {:>5} {:>8} {:>10}   {:>13} {:>13}",
        "variant", "size", "threads", "ops/s", "/r2d2 no-chk", "/r2d2 default"
    );
    let mut json = Vec::new();
    let thread_counts: Vec<usize> = std::env::var("VALKIT_POOL_THREADS")
        .unwrap_or_else(|_| "1,4,16,64".to_owned())
        .split(',')
        .map(|s| {
            s.trim()
                .parse()
                .expect("VALKIT_POOL_THREADS: comma-separated thread counts")
        })
        .collect();
    for &threads in &thread_counts {
        // samples[round][variant]
        let mut samples: Vec<Vec<f64>> = Vec::new();
        for round in 0..rounds {
            let mut s = vec![0.0; variants.len()];
            for k in 0..variants.len() {
                let i = (k + round) % variants.len();
                s[i] = throughput(threads, window, &*variants[i].make);
            }
            samples.push(s);
        }
        let col = |i: usize| median(samples.iter().map(|s| s[i]).collect());
        let ratio = |i: usize, j: usize| median(samples.iter().map(|s| s[i] / s[j]).collect());
        for (i, v) in variants.iter().enumerate() {
            let size = v.size.map_or("-".to_owned(), |s| s.to_string());
            let (over_nocheck, over_default) = match v.size {
                Some(size) if v.name.starts_with("pool") || v.name == "client" => (
                    format!("{:.2}", ratio(i, find("r2d2 no-check", Some(size)))),
                    format!("{:.2}", ratio(i, find("r2d2 default", Some(size)))),
                ),
                _ => (String::new(), String::new()),
            };
            println!(
                "{:<14} {size:>5} {threads:>8} {:>10.0}   {over_nocheck:>13} {over_default:>13}",
                v.name,
                col(i)
            );
            json.push(format!(
                "  {{\"threads\": {threads}, \"variant\": \"{}\", \"size\": {}, \"ops_s\": {:.1}, \"rounds\": [{}]}}",
                v.name,
                v.size.map_or("null".to_owned(), |s| s.to_string()),
                col(i),
                samples
                    .iter()
                    .map(|s| format!("{:.1}", s[i]))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        for &size in &sizes {
            let (p, nc, d) = (
                find("pool", Some(size)),
                find("r2d2 no-check", Some(size)),
                find("r2d2 default", Some(size)),
            );
            let c = find("client", Some(size));
            println!(
                "ratio threads={threads} size={size}: pool/r2d2-no-check {:.3} (goal >= 1.0), pool/r2d2-default {:.3} (goal >= 1.8); client/r2d2-no-check {:.3}, client/r2d2-default {:.3}",
                ratio(p, nc),
                ratio(p, d),
                ratio(c, nc),
                ratio(c, d)
            );
        }
    }
    let load_after = loadavg();
    println!("load average after: {load_after}");
    let _ = std::fs::write(
        results_dir().join("pool.json"),
        format!(
            "{{\"rounds\": {rounds}, \"window_s\": {}, \"load_before\": \"{load_before}\", \"load_after\": \"{load_after}\", \"rows\": [\n{}\n]}}\n",
            window.as_secs_f64(),
            json.join(",\n")
        ),
    );
    Ok(())
}

/// `target/criterion` (where `scripts/bench_collect.py` looks).
fn results_dir() -> std::path::PathBuf {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/target").into())
        .join("criterion");
    let _ = std::fs::create_dir_all(&dir);
    dir
}
