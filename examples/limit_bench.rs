//! Rate-limiter measurements for `docs/benchmarks.md` ("Rate limiters"): decisions per second
//! for each algorithm against a no-op `EVALSHA` on the same connection, commands per decision
//! from `INFO commandstats`, and 8 threads through a `Client`.
//!
//! Starts a throwaway server per kind (the test kit). Run:
//! `cargo run --release --example limit_bench --features testkit`
//! (`VALKIT_SERVER=valkey|redis` for one kind only; `LIMIT_ITERS=n` to change the loop).

use std::collections::BTreeMap;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use valkit::limit::{Algorithm, Limiter};
use valkit::testkit::{Server, ServerKind};
use valkit::{cmd, Client, Connection, Execute, FromValue, PoolOptions, Script};

/// A script that does nothing but answer like a limiter: the floor for one EVALSHA with one
/// key and a limiter's arguments.
const NOOP: &str = "return {0, tonumber(ARGV[2]), 0, 0, -1}";

/// TIME, GET and SET ... PX with no decision logic: the floor for a limiter on the server clock.
const FLOOR: &str = "local t = redis.call('TIME') \
    local v = redis.call('GET', KEYS[1]) \
    redis.call('SET', KEYS[1], t[1] .. t[2], 'PX', 60000) \
    return {0, tonumber(ARGV[2]), 0, 0, -1}";

/// Distinct ids per run: each decision lands on a small, realistic key.
const IDS: usize = 10_000;

type Bench = Box<dyn Fn(&dyn Execute, usize) + Send + Sync>;

fn algorithms() -> Vec<(&'static str, Algorithm)> {
    let min = Duration::from_secs(60);
    vec![
        ("sliding log", Algorithm::sliding_log(100, min)),
        ("sliding counter", Algorithm::sliding_counter(100, min)),
        ("fixed window", Algorithm::fixed_window(100, min)),
        ("token bucket", Algorithm::token_bucket(100, 100, min)),
        ("GCRA", Algorithm::gcra(99, 100, min)),
    ]
}

fn ids() -> Vec<String> {
    (0..IDS).map(|i| format!("user-{i}")).collect()
}

fn variants() -> Vec<(&'static str, Bench)> {
    let noop = Script::new(NOOP);
    let noop_ids = ids();
    let mut v: Vec<(&'static str, Bench)> = vec![(
        "no-op EVALSHA",
        Box::new(move |ex: &dyn Execute, i: usize| {
            let _ = noop
                .key(format!("bench:noop:{{{}}}", noop_ids[i % IDS]))
                .arg(1)
                .arg(100)
                .arg(60_000_000)
                .arg("")
                .invoke(ex)
                .unwrap();
        }),
    )];
    // The least a server-clock limiter can do: read the time, read the state, write it back
    // with a TTL. The gap between this and the no-op is the price of any such limiter.
    let floor = Script::new(FLOOR);
    let floor_ids = ids();
    v.push((
        "floor: TIME+GET+SET",
        Box::new(move |ex: &dyn Execute, i: usize| {
            let _ = floor
                .key(format!("bench:floor:{{{}}}", floor_ids[i % IDS]))
                .arg(1)
                .arg(100)
                .arg(60_000_000)
                .arg("")
                .invoke(ex)
                .unwrap();
        }),
    ));
    for (name, algo) in algorithms() {
        let l = Limiter::new("bench", algo).unwrap();
        let user_ids = ids();
        v.push((
            name,
            Box::new(move |ex: &dyn Execute, i: usize| {
                let _ = l.check(ex, &user_ids[i % IDS]).unwrap();
            }),
        ));
    }
    v
}

/// (calls, total µs) per command name, from INFO commandstats.
fn commandstats(c: &Connection) -> BTreeMap<String, (u64, u64)> {
    let info = String::from_value(c.exec(&cmd("INFO").arg("commandstats")).unwrap()).unwrap();
    info.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("cmdstat_")?;
            let (name, stats) = rest.split_once(':')?;
            let field = |f: &str| -> Option<u64> {
                stats
                    .split(',')
                    .find_map(|kv| kv.strip_prefix(f)?.strip_prefix('='))?
                    .parse()
                    .ok()
            };
            Some((name.to_owned(), (field("calls")?, field("usec")?)))
        })
        .collect()
}

/// The server process's CPU time (user + system), in µs, from INFO cpu: unlike wall time it
/// does not grow while the server waits for a CPU on a loaded machine.
fn server_cpu_us(c: &Connection) -> f64 {
    let info = String::from_value(c.exec(&cmd("INFO").arg("cpu")).unwrap()).unwrap();
    let field = |f: &str| -> f64 {
        info.lines()
            .find_map(|l| l.strip_prefix(f)?.strip_prefix(':'))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    };
    (field("used_cpu_user") + field("used_cpu_sys")) * 1e6
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let kinds = match std::env::var("VALKIT_SERVER").ok().as_deref() {
        Some("valkey") => vec![ServerKind::Valkey],
        Some("redis") => vec![ServerKind::Redis],
        _ => vec![ServerKind::Valkey, ServerKind::Redis],
    };
    let iters: usize = std::env::var("LIMIT_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40_000);
    for kind in kinds {
        let server = Server::start(kind)?;
        let conn = Connection::open(&server.config())?;
        println!("== {} ({})", kind.name(), server.url());
        let variants = variants();
        one_connection(&conn, &variants, iters);
        commands_per_decision(&conn, &variants);
        let client = Client::builder()
            .config(server.config())
            .pool(PoolOptions::default().max_size(8))
            .build()?;
        eight_threads(&client, &variants, iters);
    }
    Ok(())
}

/// Median decisions/s per variant over interleaved blocks on one connection.
fn one_connection(conn: &Connection, variants: &[(&str, Bench)], iters: usize) {
    let block = 1_000;
    let rounds = (iters / block).max(5);
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    let mut n = 0;
    for (_, f) in variants {
        for _ in 0..block {
            f(conn, n);
            n += 1;
        }
    }
    for _ in 0..rounds {
        for (i, (_, f)) in variants.iter().enumerate() {
            let t = Instant::now();
            for _ in 0..block {
                f(conn, n);
                n += 1;
            }
            rates[i].push(block as f64 / t.elapsed().as_secs_f64());
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    let medians: Vec<f64> = rates.iter_mut().map(median).collect();
    println!("one connection, {rounds} rounds x {block} decisions, interleaved (median):");
    for (i, (name, _)) in variants.iter().enumerate() {
        println!(
            "  {name:<20} {:>9.0} decisions/s  {:.2}x no-op",
            medians[i],
            medians[i] / medians[0]
        );
    }
}

/// Commands the client sends, and commands the server runs, per decision.
fn commands_per_decision(conn: &Connection, variants: &[(&str, Bench)]) {
    let n = 2_000;
    println!("commands per decision ({n} decisions each, INFO commandstats):");
    for (name, f) in variants {
        let before = commandstats(conn);
        let cpu0 = server_cpu_us(conn);
        for i in 0..n {
            f(conn, i);
        }
        let cpu = (server_cpu_us(conn) - cpu0) / n as f64;
        let after = commandstats(conn);
        let mut delta: BTreeMap<String, u64> = BTreeMap::new();
        let mut script_usec = 0;
        for (k, (calls, usec)) in &after {
            let (c0, u0) = before.get(k).copied().unwrap_or((0, 0));
            if *calls > c0 && k != "info" {
                delta.insert(k.clone(), calls - c0);
            }
            if k == "evalsha" || k == "eval" {
                script_usec += usec - u0;
            }
        }
        let sent: u64 = ["evalsha", "eval"]
            .iter()
            .map(|k| delta.get(*k).copied().unwrap_or(0))
            .sum();
        let total: u64 = delta.values().sum();
        let key = if name.starts_with("no-op") || name.starts_with("floor") {
            None
        } else {
            let algo = algorithms()
                .into_iter()
                .find(|(n, _)| n == name)
                .map(|(_, a)| a);
            algo.map(|a| Limiter::new("bench", a).unwrap().key("user-0"))
        };
        let memory = key
            .and_then(|k| i64::from_value(conn.exec(&cmd("MEMORY").arg("USAGE").arg(k)).ok()?).ok())
            .map_or(String::new(), |b| {
                format!("; MEMORY USAGE of one id's key: {b} B")
            });
        let inside: Vec<String> = delta
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "evalsha" | "eval"))
            .map(|(k, v)| format!("{k} {:.2}", *v as f64 / n as f64))
            .collect();
        println!(
            "  {name:<20} sent {:.2}  server CPU {cpu:.1} µs  script time {:.1} µs  server-side total {:.2}  (inside the script: {}){memory}",
            sent as f64 / n as f64,
            script_usec as f64 / n as f64,
            total as f64 / n as f64,
            inside.join(", ")
        );
    }
}

/// 8 threads through one `Client` (pool of 8): interleaved rounds, median decisions/s.
fn eight_threads(client: &Client, variants: &[(&str, Bench)], iters: usize) {
    let per_thread = 250;
    let rounds = (iters / (8 * per_thread)).max(5);
    println!(
        "8 threads through a Client (pool 8), {rounds} rounds x 8 x {per_thread} decisions, interleaved (median):"
    );
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    for round in 0..rounds {
        for (i, (_, f)) in variants.iter().enumerate() {
            let start = Barrier::new(8);
            let t = Instant::now();
            thread::scope(|s| {
                for th in 0..8 {
                    let start = &start;
                    s.spawn(move || {
                        start.wait();
                        for j in 0..per_thread {
                            f(client, (round * 8 + th) * per_thread + j);
                        }
                    });
                }
            });
            rates[i].push((8 * per_thread) as f64 / t.elapsed().as_secs_f64());
        }
    }
    let medians: Vec<f64> = rates
        .iter_mut()
        .map(|v| {
            v.sort_by(|a, b| a.partial_cmp(b).unwrap());
            v[v.len() / 2]
        })
        .collect();
    for (i, (name, _)) in variants.iter().enumerate() {
        println!(
            "  {name:<20} {:>9.0} decisions/s  {:.2}x no-op",
            medians[i],
            medians[i] / medians[0]
        );
    }
}
