//! Queue and write-behind measurements for `docs/benchmarks.md` ("Queues"):
//! enqueue throughput, reserve + ack with 1 and 4 workers against the same commands sent
//! by hand with the `redis` crate, and write-behind `put` with 8 threads against raw `SET`
//! with 8 threads (and the drain lag under that load).
//!
//! Starts a throwaway server per kind (the test kit). Run:
//! `cargo run --release --example queue_bench --features testkit,json`
//! (`VALKIT_SERVER=valkey|redis` for one kind; `ROUNDS=n`, `SECS=s` to change the runs).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use valkit::queue::{Job, Priority, Queue};
use valkit::testkit::{Server, ServerKind};
use valkit::write_behind::{OriginError, Write, WriteBehind};
use valkit::{cmd, Connection, Execute};

const RESERVE_LUA: &str = concat!(
    include_str!("../src/queue/common.lua"),
    "\n",
    include_str!("../src/queue/reserve.lua")
);
const ACK_LUA: &str = concat!(
    include_str!("../src/queue/common.lua"),
    "\n",
    include_str!("../src/queue/ack.lua")
);

type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() -> BoxResult<()> {
    let kinds = match std::env::var("VALKIT_SERVER").ok().as_deref() {
        Some("valkey") => vec![ServerKind::Valkey],
        Some("redis") => vec![ServerKind::Redis],
        _ => vec![ServerKind::Valkey, ServerKind::Redis],
    };
    let rounds = env("ROUNDS", 3) as usize;
    let secs = env("SECS", 2);
    for kind in kinds {
        let server = Server::start(kind)?;
        println!("== {} ({})", kind.name(), server.url());
        enqueue(&server, rounds)?;
        reserve_ack(&server, rounds, 1)?;
        reserve_ack(&server, rounds, 4)?;
        write_behind(&server, rounds, Duration::from_secs(secs))?;
    }
    Ok(())
}

fn envelope(i: usize) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": format!("{i:032x}"), "type": "email", "payload": {"to": "ada@example.com", "n": i},
        "attempts": 0, "enqueued_at": 1_700_000_000_000u64, "error": null,
    }))
    .unwrap()
}

/// Jobs/s: valkit `push_many` (1,000 jobs per call: 10 LPUSH of 100 in one pipeline),
/// the same pipeline by hand with the redis crate, and one `push` per job.
fn enqueue(server: &Server, rounds: usize) -> BoxResult<()> {
    let n = 50_000;
    let c = Connection::open(&server.config())?;
    let mut r = redis::Client::open(server.url().as_str())?.get_connection()?;
    let (mut vk, mut rc, mut single) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let q = Queue::new(&c, &format!("bench-enq-{round}"))?;
        let t = Instant::now();
        for start in (0..n).step_by(1000) {
            let jobs: Vec<Job> = (start..start + 1000)
                .map(|i| Job::new("email", json!({"to": "ada@example.com", "n": i})))
                .collect();
            q.push_many(Priority::Medium, &jobs)?;
        }
        vk.push(n as f64 / t.elapsed().as_secs_f64());
        let key = format!("{{bench-enq-redis-{round}}}:medium");
        let t = Instant::now();
        for start in (0..n).step_by(1000) {
            let mut p = redis::pipe();
            for chunk in (start..start + 1000).collect::<Vec<_>>().chunks(100) {
                let mut cmd = redis::cmd("LPUSH");
                cmd.arg(&key);
                for &i in chunk {
                    cmd.arg(envelope(i));
                }
                p.add_command(cmd);
            }
            let _: Vec<i64> = p.query(&mut r)?;
        }
        rc.push(n as f64 / t.elapsed().as_secs_f64());
        let t = Instant::now();
        for i in 0..5_000 {
            q.push(Priority::Low, &Job::new("email", json!({"n": i})))?;
        }
        single.push(5_000.0 / t.elapsed().as_secs_f64());
        c.exec(&cmd("FLUSHALL"))?;
    }
    let (vk, rc, single) = (median(&mut vk), median(&mut rc), median(&mut single));
    println!("enqueue, {n} jobs per round, {rounds} rounds (median jobs/s):");
    println!("  valkit push_many (1,000 per call)           {vk:>10.0}");
    println!(
        "  redis crate, same LPUSH pipeline by hand    {rc:>10.0}   valkit/redis {:.2}",
        vk / rc
    );
    println!("  valkit push, one round trip per job         {single:>10.0}");
    Ok(())
}

/// Jobs/s draining a prefilled queue with `workers` threads (own connection each):
/// valkit `try_reserve` + `ack`, and the same two scripts by hand (EVALSHA) with the
/// redis crate.
fn reserve_ack(server: &Server, rounds: usize, workers: usize) -> BoxResult<()> {
    let n = 20_000usize;
    let setup = Connection::open(&server.config())?;
    let (mut vk, mut rc) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        // valkit
        let name = format!("bench-rsv-{workers}-{round}");
        let q = Queue::new(&setup, &name)?;
        for start in (0..n).step_by(1000) {
            let jobs: Vec<Job> = (start..start + 1000)
                .map(|i| Job::new("t", json!(i)))
                .collect();
            q.push_many(Priority::Medium, &jobs)?;
        }
        let t = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..workers {
                let cfg = server.config();
                let name = name.clone();
                s.spawn(move || {
                    let c = Connection::open(&cfg).unwrap();
                    let q = Queue::new(c, &name).unwrap();
                    while let Some(r) = q.try_reserve().unwrap() {
                        q.ack(&r).unwrap();
                    }
                });
            }
        });
        vk.push(n as f64 / t.elapsed().as_secs_f64());
        assert!(q.stats()?.is_idle());
        // the redis crate, by hand: the same scripts, EVALSHA
        let name = format!("bench-rsv-redis-{workers}-{round}");
        let q = Queue::new(&setup, &name)?;
        for start in (0..n).step_by(1000) {
            let jobs: Vec<Job> = (start..start + 1000)
                .map(|i| Job::new("t", json!(i)))
                .collect();
            q.push_many(Priority::Medium, &jobs)?;
        }
        let keys: Vec<String> = [
            "high",
            "medium",
            "low",
            "inflight",
            "leases",
            "delayed",
            "dead-letter",
            "expired",
            "seq",
        ]
        .iter()
        .map(|k| format!("{{{name}}}:{k}"))
        .collect();
        let mut loader = redis::Client::open(server.url().as_str())?.get_connection()?;
        let reserve: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(RESERVE_LUA)
            .query(&mut loader)?;
        let ack: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(ACK_LUA)
            .query(&mut loader)?;
        let t = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..workers {
                let url = server.url();
                let keys = keys.clone();
                let (reserve, ack) = (&reserve, &ack);
                s.spawn(move || {
                    let mut r = redis::Client::open(url.as_str())
                        .unwrap()
                        .get_connection()
                        .unwrap();
                    loop {
                        let token = format!("{:032x}", rand::random::<u128>());
                        let (raw, pri, _, _, _): (Vec<u8>, i64, i64, i64, i64) =
                            redis::cmd("EVALSHA")
                                .arg(reserve)
                                .arg(keys.len())
                                .arg(&keys)
                                .arg(&token)
                                .arg(30_000)
                                .arg(100)
                                .query(&mut r)
                                .unwrap();
                        if pri == 0 {
                            break;
                        }
                        assert!(!raw.is_empty());
                        let done: i64 = redis::cmd("EVALSHA")
                            .arg(ack)
                            .arg(keys.len())
                            .arg(&keys)
                            .arg(&token)
                            .query(&mut r)
                            .unwrap();
                        assert_eq!(done, 1);
                    }
                });
            }
        });
        rc.push(n as f64 / t.elapsed().as_secs_f64());
        assert!(q.stats()?.is_idle());
        setup.exec(&cmd("FLUSHALL"))?;
    }
    let (vk, rc) = (median(&mut vk), median(&mut rc));
    println!(
        "reserve + ack, {workers} worker(s), {n} jobs per round, {rounds} rounds (median jobs/s):"
    );
    println!("  valkit try_reserve + ack                    {vk:>10.0}");
    println!(
        "  redis crate, same EVALSHAs by hand          {rc:>10.0}   valkit/redis {:.2}",
        vk / rc
    );
    Ok(())
}

/// 8 threads for `dur`: write-behind `put` (2 workers draining to a no-op origin) against
/// raw `SET` (valkit and the redis crate), 100-byte values over 10,000 keys.
fn write_behind(server: &Server, rounds: usize, dur: Duration) -> BoxResult<()> {
    let threads = 8;
    let value = vec![b'v'; 100];
    let (mut set_vk, mut set_rc, mut put, mut lag_max, mut drain) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut put_solo = Vec::new();
    let run = |f: &(dyn Fn(usize, &AtomicBool) -> u64 + Sync)| -> f64 {
        let stop = AtomicBool::new(false);
        let total = AtomicU64::new(0);
        let t = Instant::now();
        std::thread::scope(|s| {
            for th in 0..threads {
                let (stop, total) = (&stop, &total);
                s.spawn(move || total.fetch_add(f(th, stop), Relaxed));
            }
            std::thread::sleep(dur);
            stop.store(true, Relaxed);
        });
        total.load(Relaxed) as f64 / t.elapsed().as_secs_f64()
    };
    for round in 0..rounds {
        set_vk.push(run(&|th, stop| {
            let c = Connection::open(&server.config()).unwrap();
            let mut n = 0u64;
            while !stop.load(Relaxed) {
                c.exec(
                    &cmd("SET")
                        .arg(format!("set:{}", (n as usize * threads + th) % 10_000))
                        .arg(&value[..]),
                )
                .unwrap();
                n += 1;
            }
            n
        }));
        set_rc.push(run(&|th, stop| {
            let mut r = redis::Client::open(server.url().as_str())
                .unwrap()
                .get_connection()
                .unwrap();
            let mut n = 0u64;
            while !stop.load(Relaxed) {
                let _: () = redis::cmd("SET")
                    .arg(format!("rset:{}", (n as usize * threads + th) % 10_000))
                    .arg(&value[..])
                    .query(&mut r)
                    .unwrap();
                n += 1;
            }
            n
        }));
        let name = format!("bench-wb-{round}");
        let drainer = WriteBehind::builder(Arc::new(Connection::open(&server.config())?), &name)
            .origin(|_: &[Write]| -> Result<(), OriginError> { Ok(()) })
            .workers(2)
            .start()?;
        let sampling = AtomicBool::new(true);
        let worst = AtomicU64::new(0);
        let rate = std::thread::scope(|s| {
            s.spawn(|| {
                while sampling.load(Relaxed) {
                    if let Ok(st) = drainer.stats() {
                        let ms = st.lag.map_or(0, |d| d.as_millis() as u64);
                        worst.fetch_max(ms, Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            });
            // One handle shared by the 8 threads (as in an application): group commit.
            let shared =
                WriteBehind::builder(Arc::new(Connection::open(&server.config()).unwrap()), &name)
                    .origin(|_: &[Write]| -> Result<(), OriginError> { Ok(()) })
                    .workers(0)
                    .start()
                    .unwrap();
            let rate = run(&|th, stop| {
                let mut n = 0u64;
                while !stop.load(Relaxed) {
                    shared
                        .put(
                            &format!("k{}", (n as usize * threads + th) % 10_000),
                            &value,
                        )
                        .unwrap();
                    n += 1;
                }
                n
            });
            // One handle per thread, one script per put (group commit off).
            let solo = run(&|th, stop| {
                let wb = WriteBehind::builder(Connection::open(&server.config()).unwrap(), &name)
                    .origin(|_: &[Write]| -> Result<(), OriginError> { Ok(()) })
                    .workers(0)
                    .group_commit(false)
                    .start()
                    .unwrap();
                let mut n = 0u64;
                while !stop.load(Relaxed) {
                    wb.put(
                        &format!("k{}", (n as usize * threads + th) % 10_000),
                        &value,
                    )
                    .unwrap();
                    n += 1;
                }
                n
            });
            put_solo.push(solo);
            sampling.store(false, Relaxed);
            rate
        });
        let t = Instant::now();
        drainer.flush(Duration::from_secs(60))?;
        drain.push(t.elapsed().as_secs_f64() * 1000.0);
        lag_max.push(worst.load(Relaxed) as f64);
        put.push(rate);
        drainer.shutdown(Duration::from_secs(5))?;
        Connection::open(&server.config())?.exec(&cmd("FLUSHALL"))?;
    }
    let (sv, sr, p) = (median(&mut set_vk), median(&mut set_rc), median(&mut put));
    println!("8 threads x {dur:?}, 100-byte values, {rounds} rounds (median ops/s):");
    println!("  raw SET, valkit                             {sv:>10.0}");
    println!("  raw SET, redis crate                        {sr:>10.0}");
    let ps = median(&mut put_solo);
    println!("  write-behind put, shared handle (group commit, 2 workers draining) {p:>10.0}   put/SET(valkit) {:.2}  put/SET(redis crate) {:.2}", p / sv, p / sr);
    println!("  write-behind put, handle per thread, no group commit              {ps:>10.0}   put/SET(valkit) {:.2}  put/SET(redis crate) {:.2}", ps / sv, ps / sr);
    println!(
        "  drain lag under that load: worst sampled {:.0} ms (median over rounds); flush after the run {:.0} ms",
        median(&mut lag_max),
        median(&mut drain)
    );
    Ok(())
}
