//! How long callers keep failing after a server comes back, with the default client
//! (pool, retry, circuit breaker): a throwaway server is stopped, left down for each given
//! outage, and restarted, while 4 threads send GETs in a loop. Prints, per outage, the
//! first successful call after the server answered again.
//!
//! ```text
//! cargo run --release --features testkit --example breaker_recovery -- 100 10000
//! ```
//!
//! Arguments: outages in milliseconds (default `100 10000`). `VALKIT_ONLY=valkey|redis`
//! picks the server (default: both). `FIXED_OPEN_MS=60000` replaces the doubling open period
//! with a fixed one of that length (the breaker before issue 9), for comparison.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use valkit::testkit::{ServerKind, ServerOptions};
use valkit::{BreakerOptions, Client, Commands, ErrorKind};

fn main() -> valkit::Result<()> {
    let outages: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let outages = if outages.is_empty() {
        vec![100, 10_000]
    } else {
        outages
    };
    let kinds = match std::env::var("VALKIT_ONLY").ok().as_deref() {
        Some("valkey") => vec![ServerKind::Valkey],
        Some("redis") => vec![ServerKind::Redis],
        _ => vec![ServerKind::Valkey, ServerKind::Redis],
    };
    let mut breaker = BreakerOptions::default();
    if let Some(ms) = std::env::var("FIXED_OPEN_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        let d = Duration::from_millis(ms);
        breaker = breaker.recovery_timeout(d).min_recovery_timeout(d);
    }
    println!("kind\toutage asked\toutage real\tfirst success after back\tcalls rejected (CircuitOpen)\tother failures");
    for kind in kinds {
        for &outage in &outages {
            measure(kind, Duration::from_millis(outage), breaker.clone())?;
        }
    }
    Ok(())
}

fn measure(kind: ServerKind, outage: Duration, breaker: BreakerOptions) -> valkit::Result<()> {
    let mut server = ServerOptions::new(kind).start()?;
    let client = Client::builder()
        .config(server.config())
        .breaker(breaker)
        .build()?;
    client.set("k", "v")?;
    let stop = AtomicBool::new(false);
    let back: Mutex<Option<Instant>> = Mutex::new(None);
    let first_ok: Mutex<Option<Instant>> = Mutex::new(None);
    let rejected = AtomicU64::new(0);
    let failed = AtomicU64::new(0);
    let limit = outage + Duration::from_secs(120);
    let (real, recovery) =
        std::thread::scope(|s| -> valkit::Result<(Duration, Option<Duration>)> {
            for _ in 0..4 {
                s.spawn(|| {
                    let end = Instant::now() + limit;
                    while !stop.load(Ordering::SeqCst) && Instant::now() < end {
                        match client.get::<_, Option<Vec<u8>>>("k") {
                            Ok(_) => {
                                if back.lock().is_some() {
                                    first_ok.lock().get_or_insert_with(Instant::now);
                                }
                            }
                            Err(e) if e.kind() == ErrorKind::CircuitOpen => {
                                rejected.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(_) => {
                                failed.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        std::thread::sleep(Duration::from_millis(1));
                    }
                });
            }
            std::thread::sleep(Duration::from_millis(200));
            let down = Instant::now();
            server.stop()?;
            std::thread::sleep(outage);
            server.restart()?;
            let up = Instant::now();
            *back.lock() = Some(up);
            while first_ok.lock().is_none() && up.elapsed() < limit {
                std::thread::sleep(Duration::from_millis(5));
            }
            stop.store(true, Ordering::SeqCst);
            let first = *first_ok.lock();
            Ok((up - down, first.map(|t| t - up)))
        })?;
    println!(
        "{}\t{:?}\t{:?}\t{:?}\t{}\t{}",
        kind.name(),
        outage,
        real,
        recovery,
        rejected.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed)
    );
    Ok(())
}
