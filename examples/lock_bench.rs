//! Lock benchmarks, side by side in one run (docs/benchmarks.md, "Locks"):
//!
//! 1. Uncontended acquire + release pairs per second: `valkit::lock` against the same
//!    commands issued by hand with the `redis` crate (`EVALSHA` of the same acquire
//!    script, then `DELIFEQ` or `EVALSHA` of the release script), rounds interleaved.
//! 2. Commands per acquire and per release, from `INFO commandstats` (what the client
//!    sends, and what the server runs inside scripts).
//! 3. Hand-off latency, 8 threads contending for one lock (each: acquire, hold 1 ms,
//!    release, then stay out until another thread got it, so every hand-off goes to a
//!    waiter): from the start of a release to the next holder's acquire returning, p50 /
//!    p99; against a lock that polls every 100 ms (`SET NX PX`, sleep 100 ms, retry:
//!    redis-py's default).
//!
//! ```text
//! cargo run --release --features testkit --example lock_bench [seconds-per-hand-off-run]
//! ```
//! Starts its own throwaway Valkey and Redis servers (dedicated, so the command counts
//! are clean).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use valkit::lock::{Locks, NativeCommands, Release};
use valkit::testkit::{Server, ServerKind};
use valkit::{cmd, Commands, Connection};

const ACQUIRE_LUA: &str = include_str!("../src/lock/acquire.lua");
const RELEASE_LUA: &str = include_str!("../src/lock/release.lua");
const PAIRS: usize = 3000;
const ROUNDS: usize = 3;

fn main() {
    let handoff_secs: f64 = std::env::args()
        .nth(1)
        .map_or(3.0, |s| s.parse().expect("seconds"));
    for kind in [ServerKind::Valkey, ServerKind::Redis] {
        let server = Server::start(kind).expect("start server");
        let paths: &[NativeCommands] = if kind == ServerKind::Valkey {
            &[NativeCommands::Auto, NativeCommands::Never]
        } else {
            &[NativeCommands::Auto]
        };
        let rtt = ping_p50(&server);
        println!("\n## {kind:?} (PING p50 {rtt:?})\n");
        for &native in paths {
            let label = path_label(kind, native);
            uncontended(&server, native, &label);
            command_counts(&server, native, &label);
            handoff(&server, native, &label, handoff_secs, rtt);
        }
        let (acq, rel) = lock_round_trips(&server, NativeCommands::Auto);
        polling_handoff(&server, handoff_secs, rtt, acq + rel);
    }
}

fn path_label(kind: ServerKind, native: NativeCommands) -> String {
    match (kind, native) {
        (ServerKind::Valkey, NativeCommands::Auto) => "native DELIFEQ".into(),
        _ => "Lua".into(),
    }
}

fn ping_p50(server: &Server) -> Duration {
    let c = Connection::open(&server.config()).unwrap();
    let mut v: Vec<Duration> = (0..2000)
        .map(|_| {
            let t = Instant::now();
            let _: String = c.query(&cmd("PING")).unwrap();
            t.elapsed()
        })
        .collect();
    v.sort_unstable();
    v[v.len() / 2]
}

fn valkit_pairs(locks: &Locks<Connection>, n: usize) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        let g = locks
            .try_acquire("bench", Duration::from_secs(10))
            .unwrap()
            .unwrap();
        assert_eq!(g.release().unwrap(), Release::Released);
    }
    n as f64 / t.elapsed().as_secs_f64()
}

fn redis_pairs(con: &mut redis::Connection, native: bool, acq: &str, rel: &str, n: usize) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        let token = format!("{:032x}", rand::random::<u128>());
        let r: Vec<i64> = redis::cmd("EVALSHA")
            .arg(acq)
            .arg(3)
            .arg("lock:{bench}")
            .arg("lock:{bench}:fence")
            .arg("lock:{bench}:waiters")
            .arg(&token)
            .arg(10_000)
            .arg(0)
            .arg(70_000)
            .query(con)
            .unwrap();
        assert_eq!(r[0], 1);
        let released: i64 = if native {
            redis::cmd("DELIFEQ")
                .arg("lock:{bench}")
                .arg(&token)
                .query(con)
                .unwrap()
        } else {
            redis::cmd("EVALSHA")
                .arg(rel)
                .arg(3)
                .arg("lock:{bench}")
                .arg("lock:{bench}:waiters")
                .arg("lock:{bench}:wake")
                .arg(&token)
                .arg(200)
                .query(con)
                .unwrap()
        };
        assert_eq!(released, 1);
    }
    n as f64 / t.elapsed().as_secs_f64()
}

fn uncontended(server: &Server, native: NativeCommands, label: &str) {
    let locks = Locks::builder(Connection::open(&server.config()).unwrap())
        .native_commands(native)
        .build();
    let use_native = locks.uses_native_commands().unwrap();
    let client = redis::Client::open(server.url()).unwrap();
    let mut con = client.get_connection().unwrap();
    let acq: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(ACQUIRE_LUA)
        .query(&mut con)
        .unwrap();
    let rel: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(RELEASE_LUA)
        .query(&mut con)
        .unwrap();
    // Warm up both.
    valkit_pairs(&locks, 300);
    redis_pairs(&mut con, use_native, &acq, &rel, 300);
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        ours.push(valkit_pairs(&locks, PAIRS));
        theirs.push(redis_pairs(&mut con, use_native, &acq, &rel, PAIRS));
    }
    ours.sort_by(f64::total_cmp);
    theirs.sort_by(f64::total_cmp);
    let (o, t) = (ours[ROUNDS / 2], theirs[ROUNDS / 2]);
    println!(
        "uncontended acquire+release, {label}: valkit {o:.0} pairs/s, redis crate by hand {t:.0} pairs/s, ratio {:.2} (median of {ROUNDS} x {PAIRS})",
        o / t
    );
}

fn commandstats(c: &Connection) -> Vec<(String, u64)> {
    let text: String = c.query(&cmd("INFO").arg("commandstats")).unwrap();
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("cmdstat_")?;
            let (name, stats) = rest.split_once(':')?;
            let calls = stats.split(',').find_map(|f| f.strip_prefix("calls="))?;
            Some((name.to_owned(), calls.parse().ok()?))
        })
        .collect()
}

fn command_counts(server: &Server, native: NativeCommands, label: &str) {
    let admin = Connection::open(&server.config()).unwrap();
    let locks = Locks::builder(Connection::open(&server.config()).unwrap())
        .native_commands(native)
        .build();
    // Warm: detection and script caching are one-offs.
    drop(locks.try_acquire("count", Duration::from_secs(10)).unwrap());
    let n = 1000u64;
    let mut guards = Vec::new();
    let _: () = admin.query(&cmd("CONFIG").arg("RESETSTAT")).unwrap();
    for i in 0..n {
        guards.push(
            locks
                .try_acquire(&format!("count{i}"), Duration::from_secs(10))
                .unwrap()
                .unwrap(),
        );
    }
    let acquire = commandstats(&admin);
    let _: () = admin.query(&cmd("CONFIG").arg("RESETSTAT")).unwrap();
    for g in guards {
        assert_eq!(g.release().unwrap(), Release::Released);
    }
    let release = commandstats(&admin);
    let show = |stats: &[(String, u64)]| {
        stats
            .iter()
            .filter(|(name, _)| !matches!(name.as_str(), "config" | "info"))
            .map(|(name, calls)| format!("{name} {:.2}", *calls as f64 / n as f64))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!("commands per acquire, {label}: {}", show(&acquire));
    println!("commands per release, {label}: {}", show(&release));
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort_unstable();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// The shared state of a hand-off run: when the latest release started, how many
/// acquisitions happened (with a condvar, so a thread stepping aside sleeps), and the
/// samples.
#[derive(Default)]
struct Handoffs {
    last_release: Mutex<Option<Instant>>,
    acquisitions: Mutex<u64>,
    next_holder: std::sync::Condvar,
    samples: Mutex<Vec<Duration>>,
}

impl Handoffs {
    /// Just acquired: the hand-off latency is the time since the release that freed it.
    /// Returns the acquisition number.
    fn acquired(&self) -> u64 {
        let now = Instant::now();
        if let Some(r) = self.last_release.lock().unwrap().take() {
            self.samples.lock().unwrap().push(now - r);
        }
        let mut n = self.acquisitions.lock().unwrap();
        *n += 1;
        self.next_holder.notify_all();
        *n
    }

    /// About to release.
    fn releasing(&self) {
        *self.last_release.lock().unwrap() = Some(Instant::now());
    }

    /// After releasing acquisition `n`: stay out until another thread got the lock (at
    /// most 300 ms), so every hand-off goes to a thread that was waiting, not back to the
    /// releaser.
    fn step_aside(&self, n: u64) {
        let guard = self.acquisitions.lock().unwrap();
        let _unused = self
            .next_holder
            .wait_timeout_while(guard, Duration::from_millis(300), |a| *a == n)
            .unwrap();
    }
}

/// 8 threads: acquire, hold 1 ms, release, step aside until someone else holds it,
/// repeat, for `secs`. The hand-off latency is from the start of a release to the next
/// holder's acquire returning.
fn run_handoff(
    secs: f64,
    mut one: impl FnMut() -> Box<dyn FnMut(&Handoffs) + Send>,
) -> Vec<Duration> {
    let h = Arc::new(Handoffs::default());
    let until = Instant::now() + Duration::from_secs_f64(secs);
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let mut step = one();
            let h = h.clone();
            std::thread::spawn(move || {
                while Instant::now() < until {
                    step(&h);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let v = h.samples.lock().unwrap().clone();
    v
}

/// `pair`: one release plus one acquire, uncontended (the least a hand-off can take).
fn report(label: &str, mut v: Vec<Duration>, rtt: Duration, pair: Duration) {
    if v.is_empty() {
        println!("hand-off, {label}: no samples");
        return;
    }
    let p50 = percentile(&mut v, 0.5);
    let p99 = percentile(&mut v, 0.99);
    println!(
        "hand-off, 8 threads, {label}: p50 {p50:?} ({:.1} PING RTT, {:.1} x release+acquire), p99 {p99:?} ({:.1} PING RTT), {} hand-offs",
        p50.as_secs_f64() / rtt.as_secs_f64(),
        p50.as_secs_f64() / pair.as_secs_f64(),
        p99.as_secs_f64() / rtt.as_secs_f64(),
        v.len()
    );
}

/// p50 of one uncontended acquire and of one release (each one command, one round trip).
fn lock_round_trips(server: &Server, native: NativeCommands) -> (Duration, Duration) {
    let locks = Locks::builder(Connection::open(&server.config()).unwrap())
        .native_commands(native)
        .build();
    let (mut acq, mut rel) = (Vec::new(), Vec::new());
    for _ in 0..2000 {
        let t = Instant::now();
        let g = locks
            .try_acquire("rtt", Duration::from_secs(10))
            .unwrap()
            .unwrap();
        acq.push(t.elapsed());
        let t = Instant::now();
        g.release().unwrap();
        rel.push(t.elapsed());
    }
    (percentile(&mut acq, 0.5), percentile(&mut rel, 0.5))
}

fn handoff(server: &Server, native: NativeCommands, label: &str, secs: f64, rtt: Duration) {
    let (acq, rel) = lock_round_trips(server, native);
    println!(
        "one uncontended call, {label}: acquire p50 {acq:?}, release p50 {rel:?} (release + acquire = {:?})",
        acq + rel
    );
    let config = server.config();
    let v = run_handoff(secs, || {
        let locks = Locks::builder(Connection::open(&config).unwrap())
            .native_commands(native)
            .build();
        Box::new(move |h| {
            let g = locks
                .acquire_within("handoff", Duration::from_secs(5), Duration::from_secs(10))
                .unwrap();
            let n = h.acquired();
            std::thread::sleep(Duration::from_millis(1));
            h.releasing();
            g.release().unwrap();
            h.step_aside(n);
        })
    });
    report(&format!("valkit::lock, {label}"), v, rtt, acq + rel);
}

/// redis-py's default: `SET NX PX`; on failure sleep 100 ms and try again.
fn polling_handoff(server: &Server, secs: f64, rtt: Duration, pair: Duration) {
    let config = server.config();
    let v = run_handoff(secs, || {
        let c = Connection::open(&config).unwrap();
        Box::new(move |h| {
            let token = format!("{:032x}", rand::random::<u128>());
            loop {
                let v = valkit::Execute::exec(
                    &c,
                    &cmd("SET")
                        .arg("poll")
                        .arg(&token)
                        .arg("NX")
                        .arg("PX")
                        .arg(5000),
                )
                .unwrap();
                if !v.is_nil() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let n = h.acquired();
            std::thread::sleep(Duration::from_millis(1));
            h.releasing();
            let _: i64 = valkit::Script::new(
                "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
            )
            .key("poll")
            .arg(&token)
            .invoke_as(&c)
            .unwrap();
            h.step_aside(n);
        })
    });
    report("polling lock (100 ms sleep)", v, rtt, pair);
}
