//! Requests per second of the caching service (`examples/service`) on a cache hit of
//! `GET /users/{id}`, against `GET /ping` (a handler that returns a constant: the HTTP
//! server's own ceiling), so the cost of valkit inside a request is visible.
//!
//! ```sh
//! cargo run --release --example service_bench --features testkit,json
//! # knobs: BENCH_ROUNDS (default 5), BENCH_SECS per case and round (default 1),
//! #        BENCH_CONNECTIONS (default 16), HTTP_WORKERS (default 16)
//! # or load an already running service: BENCH_URL=http://127.0.0.1:8000 (paths as below)
//! ```
//!
//! It starts the service in-process on a throwaway server (or uses `BENCH_URL`), warms
//! the cache, then runs `BENCH_CONNECTIONS` keep-alive HTTP/1.1 clients for `BENCH_SECS`
//! per case, the cases interleaved over `BENCH_ROUNDS` rounds (so load drift hits them
//! alike), and prints requests/s, the ratio to `/ping` and latency percentiles. The clients run on the same
//! machine, so they share its cores with the service and the server.

#[allow(dead_code)]
#[path = "service/app/mod.rs"]
mod app;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One keep-alive connection: send `GET path`, read one response (Content-Length body).
struct Conn {
    reader: BufReader<TcpStream>,
    request: Vec<u8>,
}

impl Conn {
    fn open(addr: SocketAddr, path: &str, user: &str) -> std::io::Result<Conn> {
        let s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nX-User: {user}\r\n\r\n").into_bytes();
        Ok(Conn {
            reader: BufReader::new(s),
            request,
        })
    }

    /// The status of one request.
    fn call(&mut self) -> std::io::Result<u16> {
        self.reader.get_mut().write_all(&self.request)?;
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut len = 0usize;
        loop {
            line.clear();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; len];
        self.reader.read_exact(&mut body)?;
        Ok(status)
    }
}

struct Result {
    requests: u64,
    errors: u64,
    secs: f64,
    latencies: Vec<Duration>,
}

fn run(addr: SocketAddr, path: &str, connections: usize, secs: u64) -> Result {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let threads: Vec<_> = (0..connections)
        .map(|i| {
            let (stop, path) = (stop.clone(), path.to_string());
            std::thread::Builder::new()
                .name(format!("bench-client-{i}"))
                .spawn(move || {
                    let mut lat = Vec::new();
                    let mut errors = 0u64;
                    // One user per connection, as a real client population would be.
                    let mut conn = Conn::open(addr, &path, &format!("bench-{i}")).expect("connect");
                    while !stop.load(Ordering::Relaxed) {
                        let t = Instant::now();
                        match conn.call() {
                            Ok(200) => lat.push(t.elapsed()),
                            Ok(_) => errors += 1,
                            Err(_) => {
                                errors += 1;
                                conn = Conn::open(addr, &path, &format!("bench-{i}"))
                                    .expect("reconnect");
                            }
                        }
                    }
                    (lat, errors)
                })
                .expect("spawn a client")
        })
        .collect();
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    let mut errors = 0;
    for t in threads {
        let (l, e) = t.join().expect("client thread");
        latencies.extend(l);
        errors += e;
    }
    let secs = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    Result {
        requests: latencies.len() as u64,
        errors,
        secs,
        latencies,
    }
}

fn pct(l: &[Duration], p: f64) -> f64 {
    if l.is_empty() {
        return 0.0;
    }
    l[((l.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1e6
}

fn main() {
    let secs = env_u64("BENCH_SECS", 1);
    let connections = env_u64("BENCH_CONNECTIONS", 16) as usize;
    let mut running = None;
    let addr: SocketAddr = match std::env::var("BENCH_URL") {
        Ok(url) => {
            let hostport = url.trim_start_matches("http://").trim_end_matches('/');
            hostport
                .to_socket_addrs()
                .expect("BENCH_URL")
                .next()
                .expect("BENCH_URL resolves")
        }
        Err(_) => {
            let workers = env_u64("HTTP_WORKERS", 16).to_string();
            let env: HashMap<&str, String> = [
                ("PORT", "0".to_string()),
                ("HTTP_WORKERS", workers),
                ("RATE_MAX_TOKENS", "1000000".into()),
                ("RATE_WINDOW_SEC", "1".into()),
            ]
            .into();
            let mut cfg = app::Config::from_vars(|k| env.get(k).cloned()).expect("config");
            // Keep the cases apart: the limiter is measured in its own case.
            cfg.rate_limit = false;
            let r = app::Service::start(cfg).expect("start the service");
            let addr = r.addr;
            running = Some(r);
            addr
        }
    };
    // Warm the entries the hit cases read.
    for path in ["/users/1", "/bulk/users?ids=1,2,3,4,5"] {
        let mut warm = Conn::open(addr, path, "warm").expect("connect");
        assert_eq!(warm.call().expect("warm"), 200);
    }
    let rounds = env_u64("BENCH_ROUNDS", 5) as usize;
    println!(
        "service_bench: {connections} keep-alive connections, {rounds} rounds of {secs} s per case (interleaved), {} HTTP workers",
        env_u64("HTTP_WORKERS", 16)
    );
    let mut cases: Vec<(&str, &str, bool)> = vec![
        ("GET /ping (constant, no valkit)", "/ping", false),
        ("GET /users/1 (cache hit: one GET)", "/users/1", false),
        (
            "GET /bulk/users?ids=1,2,3,4,5 (hits: one MGET)",
            "/bulk/users?ids=1,2,3,4,5",
            false,
        ),
        (
            "GET /users/1 (cache hit + per-user rate limit: GET + EVALSHA)",
            "/users/1",
            true,
        ),
    ];
    if running.is_none() {
        cases.truncate(2); // an external service: its own limiter setting applies
    }
    // Per case: requests/s of each round, all latencies.
    let mut rps: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    let mut lat: Vec<Vec<Duration>> = vec![Vec::new(); cases.len()];
    let mut errors = vec![0u64; cases.len()];
    for _ in 0..rounds {
        for (i, (_, path, limited)) in cases.iter().enumerate() {
            if let Some(r) = &running {
                r.service.rate_limiting.store(*limited, Ordering::Relaxed);
            }
            let res = run(addr, path, connections, secs);
            rps[i].push(res.requests as f64 / res.secs);
            lat[i].extend(res.latencies);
            errors[i] += res.errors;
        }
    }
    println!("| case | requests/s (median of rounds) | min-max | vs /ping (median of per-round ratios) | p50 µs | p99 µs | errors |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for (i, (name, _, _)) in cases.iter().enumerate() {
        let ratios: Vec<f64> = rps[i].iter().zip(&rps[0]).map(|(a, b)| a / b).collect();
        lat[i].sort_unstable();
        let (lo, hi) = rps[i]
            .iter()
            .fold((f64::MAX, 0f64), |(lo, hi), &x| (lo.min(x), hi.max(x)));
        println!(
            "| {name} | {:.0} | {lo:.0}-{hi:.0} | {:.2} | {:.0} | {:.0} | {} |",
            median(&rps[i]),
            median(&ratios),
            pct(&lat[i], 0.5),
            pct(&lat[i], 0.99),
            errors[i]
        );
    }
    if let Some(r) = running {
        let _ = r.shutdown(Duration::from_secs(5));
    }
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}
