//! End-to-end tests of the caching-patterns service (`examples/service`): real Valkey/Redis
//! servers from the test kit, real HTTP over loopback. The service's core is included
//! from the example (`#[path]`), run in-process, and, for the two-process lock test, in
//! child processes that re-execute this test binary.
#![cfg(all(feature = "testkit", feature = "json"))]

#[allow(dead_code)]
#[path = "../examples/service/app/mod.rs"]
mod app;
mod support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use serde_json::Value;
use valkit::testkit::{self, Server, ServerKind, ServerOptions};

// ---------------------------------------------------------------------------------------
// A minimal HTTP/1.1 client (one connection per request, `Connection: close`).

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
    elapsed: Duration,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    user: Option<&str>,
    body: Option<&str>,
) -> Resp {
    let started = Instant::now();
    let mut s =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect to the service");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(u) = user {
        req.push_str(&format!("X-User: {u}\r\n"));
    }
    let body = body.unwrap_or("");
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read the response");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end: {text:?}"));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad status line: {head:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Resp {
        status,
        headers,
        body: body.to_string(),
        elapsed: started.elapsed(),
    }
}

fn get(addr: SocketAddr, path: &str, user: &str) -> Resp {
    http(addr, "GET", path, Some(user), None)
}

fn post(addr: SocketAddr, path: &str, user: &str, body: &str) -> Resp {
    http(addr, "POST", path, Some(user), Some(body))
}

// ---------------------------------------------------------------------------------------
// Starting services.

/// A service on `server` with `extra` settings; a namespace no other test uses.
fn start_service(server: &Server, extra: &[(&str, String)]) -> app::Running {
    start_service_on(server.port(), None, extra)
}

fn start_service_on(port: u16, reader: Option<u16>, extra: &[(&str, String)]) -> app::Running {
    let mut env: HashMap<String, String> = HashMap::new();
    env.insert("VALKEY_WRITER_ENDPOINT".into(), "127.0.0.1".into());
    env.insert("VALKEY_WRITER_PORT".into(), port.to_string());
    if let Some(r) = reader {
        env.insert("VALKEY_READER_ENDPOINT".into(), "127.0.0.1".into());
        env.insert("VALKEY_READER_PORT".into(), r.to_string());
    }
    env.insert("PORT".into(), "0".into());
    env.insert("CACHE_NAMESPACE".into(), testkit::unique_prefix("svc"));
    env.insert("ORIGIN_LATENCY_MS".into(), "20".into());
    env.insert("HTTP_WORKERS".into(), "16".into());
    for (k, v) in extra {
        env.insert((*k).to_string(), v.clone());
    }
    let config = app::Config::from_vars(|k| env.get(k).cloned()).expect("valid config");
    app::Service::start(config).expect("service starts")
}

fn origin_reads(addr: SocketAddr, id: u64) -> u64 {
    get(addr, &format!("/debug/origin?id={id}"), "t").json()["reads_of_id"]
        .as_u64()
        .unwrap()
}

fn poll_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------------------------------
// Every endpoint, on both server kinds.

#[test]
fn every_endpoint_answers_and_validates_input() {
    for kind in support::kinds() {
        eprintln!("-- {kind:?}");
        let svc = start_service(support::shared(kind), &[]);
        let a = svc.addr;

        // GET /users/{id}: a miss goes to the origin, the next call is a hit.
        for strategy in ["cache-aside", "singleflight", "swr", "negative"] {
            let id = match strategy {
                "cache-aside" => 11,
                "singleflight" => 12,
                "swr" => 13,
                _ => 14,
            };
            let path = format!("/users/{id}?strategy={strategy}&ttl=60&stale_grace=5");
            let first = get(a, &path, "u");
            assert_eq!(first.status, 200, "{strategy}: {}", first.body);
            assert_eq!(first.header("X-Cache"), Some("MISS"), "{strategy}");
            let j = first.json();
            assert_eq!(j["user"]["id"], id);
            assert_eq!(j["strategy"], strategy);
            assert_eq!(j["source"], "origin");
            let second = get(a, &path, "u");
            assert_eq!(second.header("X-Cache"), Some("HIT"), "{strategy}");
            assert_eq!(second.json()["user"], j["user"]);
            assert_eq!(origin_reads(a, id), 1, "{strategy}");
        }
        // Missing user: 404 from every strategy.
        assert_eq!(get(a, "/users/999999", "u").status, 404);
        assert_eq!(
            get(a, "/users/999999?strategy=negative", "u").json()["error"],
            "user 999999 not found"
        );

        // Bad input: 400 with a JSON message naming the problem.
        for (path, needle) in [
            ("/users/abc", "invalid id"),
            ("/users/0", "invalid id"),
            ("/users/-3", "invalid id"),
            ("/users/1?strategy=lru", "invalid strategy"),
            ("/users/1?ttl=0", "invalid ttl"),
            ("/users/1?ttl=86401", "invalid ttl"),
            ("/users/1?ttl=x", "invalid ttl"),
            ("/users/1?stale_grace=3601", "invalid stale_grace"),
            ("/bulk/users", "missing ids"),
            ("/bulk/users?ids=1,x", "invalid id"),
            ("/bulk/users?ids=", "invalid id"),
        ] {
            let r = get(a, path, "u");
            assert_eq!(r.status, 400, "{path}: {}", r.body);
            let msg = r.json()["error"].as_str().unwrap().to_string();
            assert!(msg.contains(needle), "{path}: {msg}");
        }
        let many: Vec<String> = (1..=101).map(|i| i.to_string()).collect();
        assert_eq!(
            get(a, &format!("/bulk/users?ids={}", many.join(",")), "u").status,
            400
        );
        for (body, needle) in [
            ("not json", "invalid body"),
            (r#"{"name": "A"}"#, "invalid body"),
            (
                r#"{"name": "A", "title": "B", "mode": "later"}"#,
                "invalid mode",
            ),
            (r#"{"name": "", "title": "B"}"#, "invalid name"),
            (r#"{"name": "A", "title": "B", "extra": 1}"#, "invalid body"),
        ] {
            let r = post(a, "/users/5", "u", body);
            assert_eq!(r.status, 400, "{body}: {}", r.body);
            assert!(
                r.json()["error"].as_str().unwrap().contains(needle),
                "{body}: {}",
                r.body
            );
        }
        assert_eq!(get(a, "/nothing/here", "u").status, 404);
        assert_eq!(http(a, "DELETE", "/users/1", Some("u"), None).status, 405);

        // POST /users/{id}, write-through: the origin and the cache both have the new value.
        let w = post(
            a,
            "/users/21",
            "u",
            r#"{"name": "Ada", "title": "chief", "mode": "write-through"}"#,
        );
        assert_eq!(w.status, 200, "{}", w.body);
        let o = get(a, "/debug/origin?id=21", "t").json();
        assert_eq!(o["user"]["name"], "Ada");
        let r = get(a, "/users/21", "u");
        assert_eq!(
            (r.header("X-Cache"), r.json()["user"]["name"].as_str()),
            (Some("HIT"), Some("Ada"))
        );

        // GET /bulk/users: one origin call for the misses, none when all are cached.
        let before = get(a, "/debug/origin", "t").json()["counts"]["batch_reads"]
            .as_u64()
            .unwrap();
        let b = get(a, "/bulk/users?ids=31,32,33,999998", "u").json();
        assert_eq!(b["loaded_from_origin"], 4);
        assert_eq!(b["missing"], serde_json::json!([999998]));
        assert_eq!(b["users"][1]["id"], 32);
        let b2 = get(a, "/bulk/users?ids=31,32,33,999998", "u").json();
        assert_eq!(
            b2["loaded_from_origin"], 0,
            "all cached (the missing one as a tombstone)"
        );
        assert_eq!(b2["users"], b["users"]);
        let after = get(a, "/debug/origin", "t").json()["counts"]["batch_reads"]
            .as_u64()
            .unwrap();
        assert_eq!(after - before, 1);

        // POST /recompute stores a report; POST /invalidate/{id} drops the user and it.
        let rc = post(a, "/recompute", "u", "");
        assert_eq!(rc.status, 200, "{}", rc.body);
        assert_eq!(rc.json()["running_at_start"], 1);
        let inv = post(a, "/invalidate/21", "u", "").json();
        assert_eq!(inv["deleted"], true);
        assert_eq!(
            inv["dependents_deleted"], 1,
            "the report depends on every user"
        );
        assert_eq!(get(a, "/users/21", "u").header("X-Cache"), Some("MISS"));
        assert_eq!(post(a, "/invalidate/21x", "u", "").status, 400);

        // GET /healthz, /stats, /metrics.
        let h = get(a, "/healthz", "t");
        assert_eq!(h.status, 200);
        let hj = h.json();
        assert_eq!(hj["ready"], true);
        assert_eq!(hj["endpoints"][0]["endpoint"], "writer");
        assert_eq!(hj["endpoints"][0]["breaker"], "closed");
        let s = get(a, "/stats", "t").json();
        assert!(s["hit_ratio"].as_f64().unwrap() > 0.0, "{s}");
        assert!(s["cache"]["hits"].as_u64().unwrap() >= 6, "{s}");
        assert!(s["origin"]["reads"].as_u64().unwrap() >= 4, "{s}");
        let m = get(a, "/metrics", "t");
        assert!(m.header("Content-Type").unwrap().starts_with("text/plain"));
        for needle in [
            "valkit_commands_total{command=\"GET\",endpoint=\"writer\",outcome=\"ok\"}",
            "valkit_cache_hits_total{namespace=",
            "valkit_limit_decisions_total{",
            "service_http_requests_total{route=\"GET /users/{id}\",status=\"200\"}",
            "service_origin_calls_total{kind=\"read\"}",
        ] {
            assert!(
                m.body.contains(needle),
                "metrics lack {needle}:\n{}",
                m.body
            );
        }
        assert_eq!(get(a, "/ping", "t").body, r#"{"ok":true}"#);
        assert_eq!(svc.shutdown(Duration::from_secs(5)).unwrap(), 0);
    }
}

// ---------------------------------------------------------------------------------------
// Strategies.

/// 64 concurrent requests for a cold key: one origin call with singleflight and with SWR;
/// plain cache-aside (no singleflight) calls the origin many times.
#[test]
fn stampede_on_a_cold_key_calls_the_origin_once() {
    let svc = start_service(
        support::shared(ServerKind::Valkey),
        &[
            ("ORIGIN_LATENCY_MS", "200".into()),
            ("HTTP_WORKERS", "64".into()),
        ],
    );
    let a = svc.addr;
    let mut calls = HashMap::new();
    for (id, strategy) in [(1u64, "singleflight"), (2, "swr"), (3, "cache-aside")] {
        let barrier = Arc::new(Barrier::new(64));
        let handles: Vec<_> = (0..64)
            .map(|i| {
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    get(
                        a,
                        &format!("/users/{id}?strategy={strategy}"),
                        &format!("s{i}"),
                    )
                })
            })
            .collect();
        for h in handles {
            let r = h.join().unwrap();
            assert_eq!(r.status, 200, "{strategy}: {}", r.body);
            assert_eq!(r.json()["user"]["id"], id);
        }
        calls.insert(strategy, origin_reads(a, id));
    }
    eprintln!("origin calls for 64 concurrent cold requests: {calls:?}");
    assert_eq!(calls["singleflight"], 1);
    assert_eq!(calls["swr"], 1);
    assert!(
        calls["cache-aside"] > 1,
        "without singleflight the stampede reaches the origin"
    );
    svc.shutdown(Duration::from_secs(5)).unwrap();
}

/// After the fresh TTL, SWR answers at once with the stale value and refreshes it in the
/// background; the next request sees the new value.
#[test]
fn swr_serves_stale_while_refreshing() {
    let svc = start_service(
        support::shared(ServerKind::Valkey),
        &[("ORIGIN_LATENCY_MS", "1500".into())],
    );
    let a = svc.addr;
    let path = "/users/7?strategy=swr&ttl=1&stale_grace=60";
    let first = get(a, path, "w");
    assert_eq!(first.json()["source"], "origin");
    let old = first.json()["user"]["name"].as_str().unwrap().to_string();
    // Change the origin behind the cache's back.
    let put = http(
        a,
        "PUT",
        "/debug/origin/7",
        Some("w"),
        Some(r#"{"name": "Renamed", "title": "x"}"#),
    );
    assert_eq!(put.status, 200, "{}", put.body);
    std::thread::sleep(Duration::from_millis(1200)); // past the fresh TTL (1 s ± 10 %)
    let stale = get(a, path, "w");
    assert_eq!(stale.status, 200);
    assert_eq!(
        stale.json()["user"]["name"],
        old.as_str(),
        "the stale value is served"
    );
    assert_eq!(stale.json()["source"], "cache");
    assert!(
        stale.elapsed < Duration::from_millis(1000),
        "a stale hit does not wait for the 1.5 s origin: {:?}",
        stale.elapsed
    );
    poll_until("the background refresh", Duration::from_secs(5), || {
        get(a, path, "w").json()["user"]["name"] == "Renamed"
    });
    assert_eq!(origin_reads(a, 7), 2, "one load, one background refresh");
    svc.shutdown(Duration::from_secs(5)).unwrap();
}

/// Missing ids: the negative strategy asks the origin once; the others every time.
#[test]
fn negative_caching_stops_origin_calls_for_missing_ids() {
    let svc = start_service(support::shared(ServerKind::Valkey), &[]);
    let a = svc.addr;
    for i in 0..20 {
        let r = get(a, "/users/500001?strategy=negative", "n");
        assert_eq!(r.status, 404);
        assert_eq!(r.json()["cached"], i > 0, "request {i}");
    }
    assert_eq!(origin_reads(a, 500001), 1);
    for _ in 0..5 {
        assert_eq!(
            get(a, "/users/500002?strategy=singleflight", "n").status,
            404
        );
    }
    assert_eq!(
        origin_reads(a, 500002),
        5,
        "errors are never cached without negative caching"
    );
    svc.shutdown(Duration::from_secs(5)).unwrap();
}

/// A write-behind write is served from the cache at once and reaches the origin only
/// after a flush (the batching delay here is a minute).
#[test]
fn write_behind_reaches_the_origin_after_flush() {
    let svc = start_service(
        support::shared(ServerKind::Valkey),
        &[("WRITE_BEHIND_DELAY_MS", "60000".into())],
    );
    let a = svc.addr;
    let w = post(
        a,
        "/users/40",
        "wb",
        r#"{"name": "Later", "title": "t", "mode": "write-behind"}"#,
    );
    assert_eq!(w.status, 202, "{}", w.body);
    assert!(w.json()["seq"].as_u64().unwrap() >= 1);
    let o = get(a, "/debug/origin?id=40", "t").json();
    assert_ne!(o["user"]["name"], "Later", "not applied yet");
    assert_eq!(o["counts"]["write_behind_writes"], 0);
    let r = get(a, "/users/40", "wb");
    assert_eq!(
        (r.header("X-Cache"), r.json()["user"]["name"].as_str()),
        (Some("HIT"), Some("Later"))
    );
    let f = post(a, "/debug/flush", "t", "");
    assert_eq!(f.status, 200, "{}", f.body);
    let o = get(a, "/debug/origin?id=40", "t").json();
    assert_eq!(o["user"]["name"], "Later");
    assert_eq!(o["counts"]["write_behind_writes"], 1);
    // One more, applied by the graceful shutdown.
    let w = post(
        a,
        "/users/41",
        "wb",
        r#"{"name": "AtExit", "title": "t", "mode": "write-behind"}"#,
    );
    assert_eq!(w.status, 202);
    let origin = svc.service.origin.clone();
    assert_eq!(
        svc.shutdown(Duration::from_secs(10)).unwrap(),
        0,
        "shutdown drains"
    );
    assert_eq!(origin.peek(41).unwrap().name, "AtExit");
}

/// 1,000 requests from one user: exactly 100 allowed; another user is unaffected.
#[test]
fn rate_limit_is_exact_per_user() {
    let svc = start_service(
        support::shared(ServerKind::Valkey),
        &[("RATE_MAX_TOKENS", "100".into())],
    );
    let a = svc.addr;
    assert_eq!(get(a, "/users/1", "warmup").status, 200);
    let threads: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                let mut counts = (0u32, 0u32);
                for _ in 0..125 {
                    let r = get(a, "/users/1", "alice");
                    match r.status {
                        200 => {
                            counts.0 += 1;
                            assert!(r.header("RateLimit-Remaining").is_some());
                        }
                        429 => {
                            counts.1 += 1;
                            assert_eq!(r.header("RateLimit-Remaining"), Some("0"));
                            let retry: u64 = r
                                .header("Retry-After")
                                .expect("Retry-After")
                                .parse()
                                .unwrap();
                            assert!((1..=60).contains(&retry), "{retry}");
                        }
                        s => panic!("unexpected {s}: {}", r.body),
                    }
                }
                counts
            })
        })
        .collect();
    let (mut ok, mut limited) = (0, 0);
    for t in threads {
        let (o, l) = t.join().unwrap();
        ok += o;
        limited += l;
    }
    eprintln!("alice: {ok} allowed, {limited} refused");
    assert_eq!((ok, limited), (100, 900));
    let bob = get(a, "/users/1", "bob");
    assert_eq!(bob.status, 200);
    assert_eq!(bob.header("RateLimit-Limit"), Some("100"));
    assert_eq!(bob.header("RateLimit-Remaining"), Some("99"));
    // Health and metrics are not rate limited.
    assert_eq!(get(a, "/healthz", "alice").status, 200);
    svc.shutdown(Duration::from_secs(5)).unwrap();
}

// ---------------------------------------------------------------------------------------
// Two service processes: one recompute at a time.

const CHILD_PORT: &str = "VALKIT_SERVICE_TEST_CHILD_PORT";
const CHILD_NS: &str = "VALKIT_SERVICE_TEST_CHILD_NS";

/// Not a test on its own: the body of the child processes of
/// `recompute_runs_one_at_a_time_across_processes` (returns at once otherwise).
#[test]
fn service_child_process() {
    let (Ok(port), Ok(ns)) = (std::env::var(CHILD_PORT), std::env::var(CHILD_NS)) else {
        return;
    };
    let env: HashMap<&str, String> = [
        ("VALKEY_WRITER_ENDPOINT", "127.0.0.1".to_string()),
        ("VALKEY_WRITER_PORT", port),
        ("CACHE_NAMESPACE", ns),
        ("PORT", "0".into()),
        ("RECOMPUTE_MS", "250".into()),
        ("ORIGIN_LATENCY_MS", "5".into()),
        ("HTTP_WORKERS", "8".into()),
    ]
    .into();
    let config = app::Config::from_vars(|k| env.get(k).cloned()).unwrap();
    let svc = app::Service::start(config).unwrap();
    println!("LISTENING {}", svc.addr);
    // Serve until the parent closes our stdin.
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    if let Err(e) = svc.shutdown(Duration::from_secs(5)) {
        eprintln!("child service shutdown: {e}");
    }
}

struct ChildService {
    child: Child,
    addr: SocketAddr,
}

impl Drop for ChildService {
    fn drop(&mut self) {
        drop(self.child.stdin.take()); // EOF: the child shuts down
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_child(port: u16, ns: &str) -> ChildService {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "service_child_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_PORT, port.to_string())
        .env(CHILD_NS, ns)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the child service");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // The test harness may print "test ... " before it on the same line.
            if let Some((_, addr)) = line.split_once("LISTENING ") {
                let _ = tx.send(addr.trim().to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the child service starts within 30 s");
    ChildService {
        child,
        addr: addr.parse().unwrap(),
    }
}

#[test]
fn recompute_runs_one_at_a_time_across_processes() {
    let server = support::shared(ServerKind::Valkey);
    let ns = testkit::unique_prefix("svc-recompute");
    let children = [
        spawn_child(server.port(), &ns),
        spawn_child(server.port(), &ns),
    ];
    let addrs: Vec<SocketAddr> = children.iter().map(|c| c.addr).collect();
    let barrier = Arc::new(Barrier::new(6));
    let handles: Vec<_> = (0..6)
        .map(|i| {
            let (addr, barrier) = (addrs[i % 2], barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                post(addr, "/recompute?wait_ms=20000", &format!("r{i}"), "")
            })
        })
        .collect();
    let mut runs: Vec<(u64, u64, u64)> = Vec::new();
    let mut pids = std::collections::BTreeSet::new();
    let mut tokens = Vec::new();
    for h in handles {
        let r = h.join().unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        let j = r.json();
        assert_eq!(
            j["running_at_start"], 1,
            "another recompute was running: {j}"
        );
        runs.push((
            j["started_ms"].as_u64().unwrap(),
            j["finished_ms"].as_u64().unwrap(),
            j["pid"].as_u64().unwrap(),
        ));
        pids.insert(j["pid"].as_u64().unwrap());
        tokens.push(j["fencing_token"].as_u64().unwrap());
    }
    assert_eq!(pids.len(), 2, "both processes ran recomputes");
    runs.sort();
    for pair in runs.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "recomputes overlapped: {pair:?}");
    }
    tokens.sort_unstable();
    tokens.dedup();
    assert_eq!(tokens.len(), 6, "every run had its own fencing token");
    // A caller that will not wait is told the recompute is busy.
    let busy = {
        let addr = addrs[0];
        let long = std::thread::spawn(move || post(addr, "/recompute", "busy1", ""));
        let mut seen = None;
        poll_until(
            "a 409 while a recompute runs",
            Duration::from_secs(10),
            || {
                let r = post(addrs[1], "/recompute?wait_ms=0", "busy2", "");
                let done = r.status == 409;
                seen = Some(r);
                done
            },
        );
        assert_eq!(long.join().unwrap().status, 200);
        seen.unwrap()
    };
    assert!(busy.json()["error"]
        .as_str()
        .unwrap()
        .contains("already running"));
    drop(children);
}

// ---------------------------------------------------------------------------------------
// Failures.

/// Valkey is killed: the service keeps answering (reads degrade to the origin, the
/// limiter fails open), `/healthz` says 503, writes that need Valkey are 503 with
/// `Retry-After`; when Valkey is back, everything recovers.
#[test]
fn survives_a_valkey_outage_and_recovers() {
    let mut server = Server::start(ServerKind::Valkey).unwrap();
    let svc = start_service(&server, &[]);
    let a = svc.addr;
    assert_eq!(get(a, "/users/3", "o").status, 200);
    assert_eq!(get(a, "/users/3", "o").header("X-Cache"), Some("HIT"));

    server.kill();
    for i in 0..10 {
        let r = get(a, &format!("/users/{}", 3 + i % 2), "o");
        assert_eq!(r.status, 200, "degraded read {i}: {}", r.body);
        assert_eq!(
            r.json()["source"],
            "origin",
            "the loader answers while Valkey is down"
        );
        assert!(r.elapsed < Duration::from_secs(5), "{:?}", r.elapsed);
    }
    let h = get(a, "/healthz", "o");
    assert_eq!(h.status, 503, "{}", h.body);
    assert_eq!(h.json()["ready"], false);
    let b = get(a, "/bulk/users?ids=5,6", "o");
    assert_eq!(b.status, 200, "{}", b.body);
    let w = post(
        a,
        "/users/9",
        "o",
        r#"{"name": "N", "title": "t", "mode": "write-behind"}"#,
    );
    assert_eq!(w.status, 503, "{}", w.body);
    assert_eq!(w.header("Retry-After"), Some("1"));
    assert!(
        !w.body.contains("at "),
        "no internals in the body: {}",
        w.body
    );
    assert_eq!(post(a, "/recompute", "o", "").status, 503);
    let s = get(a, "/stats", "o").json();
    assert!(s["cache"]["degraded"].as_u64().unwrap() >= 10, "{s}");
    assert!(
        s["rate_limit"]["failed_open"].as_u64().unwrap() >= 10,
        "{s}"
    );

    server.restart().unwrap();
    poll_until(
        "/healthz 200 after the restart",
        Duration::from_secs(20),
        || get(a, "/healthz", "o").status == 200,
    );
    poll_until(
        "a cache hit after the restart",
        Duration::from_secs(10),
        || get(a, "/users/3", "o").header("X-Cache") == Some("HIT"),
    );
    let w = post(
        a,
        "/users/9",
        "o",
        r#"{"name": "N", "title": "t", "mode": "write-behind"}"#,
    );
    assert_eq!(w.status, 202, "{}", w.body);
    assert!(
        get(a, "/users/3", "o")
            .header("RateLimit-Remaining")
            .is_some(),
        "the limiter is back"
    );
    assert_eq!(svc.shutdown(Duration::from_secs(10)).unwrap(), 0);
}

/// A primary and a real replica: cache reads go to the reader, writes to the writer, and
/// `/healthz` reports both endpoints with their roles.
#[test]
fn reader_and_writer_endpoints_with_a_replica() {
    let primary = Server::start(ServerKind::Valkey).unwrap();
    let replica = ServerOptions::new(ServerKind::Valkey)
        .replica_of(primary.port())
        .start()
        .unwrap();
    poll_until("the replica's link", Duration::from_secs(20), || {
        testkit::raw_command(replica.port(), &[b"INFO", b"replication"])
            .map(|r| String::from_utf8_lossy(&r).contains("master_link_status:up"))
            .unwrap_or(false)
    });
    let svc = start_service_on(primary.port(), Some(replica.port()), &[]);
    let a = svc.addr;
    let h = get(a, "/healthz", "rw").json();
    assert_eq!(h["ready"], true);
    let roles: Vec<(String, String)> = h["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["endpoint"].as_str().unwrap().into(),
                e["role"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    assert_eq!(
        roles,
        [
            ("writer".into(), "master".into()),
            ("reader".into(), "slave".into())
        ]
    );

    assert_eq!(get(a, "/users/8", "rw").header("X-Cache"), Some("MISS"));
    poll_until(
        "a hit read from the replica",
        Duration::from_secs(5),
        || get(a, "/users/8", "rw").header("X-Cache") == Some("HIT"),
    );
    let w = post(
        a,
        "/users/8",
        "rw",
        r#"{"name": "Replicated", "title": "t"}"#,
    );
    assert_eq!(w.status, 200, "{}", w.body);
    poll_until(
        "the new value through the replica",
        Duration::from_secs(5),
        || get(a, "/users/8", "rw").json()["user"]["name"] == "Replicated",
    );
    let gets = |port: u16| -> u64 {
        let info = testkit::raw_command(port, &[b"INFO", b"commandstats"]).unwrap();
        let info = String::from_utf8_lossy(&info).into_owned();
        info.lines()
            .find_map(|l| l.strip_prefix("cmdstat_get:calls="))
            .and_then(|rest| rest.split(',').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let (on_replica, on_primary) = (gets(replica.port()), gets(primary.port()));
    eprintln!("GETs: replica {on_replica}, primary {on_primary}");
    assert!(
        on_replica >= 3,
        "cache reads go to the reader: {on_replica}"
    );
    assert_eq!(on_primary, 0, "no cache read went to the writer");
    svc.shutdown(Duration::from_secs(5)).unwrap();
}

// ---------------------------------------------------------------------------------------
// Configuration and the example binary.

#[test]
fn configuration_from_the_environment() {
    let cfg = |pairs: &[(&str, &str)]| {
        let env: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        app::Config::from_vars(|k| env.get(k).cloned())
    };
    let c = cfg(&[]).unwrap();
    assert!(
        c.writer.is_none() && c.reader.is_none(),
        "nothing set: a throwaway server"
    );
    assert_eq!(
        (c.port, c.host.as_str(), c.rate_max, c.cache_ver),
        (8000, "127.0.0.1", 100, 1)
    );
    assert_eq!(c.rate_window, Duration::from_secs(60));
    let c = cfg(&[
        ("VALKEY_WRITER_ENDPOINT", "primary.internal"),
        ("VALKEY_WRITER_PORT", "6380"),
        ("VALKEY_READER_ENDPOINT", "replica.internal"),
        ("VALKEY_USER", "svc"),
        ("VALKEY_PASSWORD", "hunter2"),
        ("VALKEY_DB", "2"),
        ("CACHE_VER", "7"),
        ("RATE_MAX_TOKENS", "5"),
        ("RATE_WINDOW_SEC", "10"),
        ("PORT", "9001"),
    ])
    .unwrap();
    let (w, r) = (c.writer.unwrap(), c.reader.unwrap());
    assert_eq!(
        w.to_string(),
        "redis://svc:<redacted>@primary.internal:6380/2"
    );
    assert_eq!(
        r.to_string(),
        "redis://svc:<redacted>@replica.internal:6380/2",
        "the reader port defaults to the writer's"
    );
    assert!(
        !format!("{w:?}").contains("hunter2"),
        "the password is redacted"
    );
    assert_eq!((c.cache_ver, c.rate_max, c.port), (7, 5, 9001));
    for (pairs, needle) in [
        (vec![("PORT", "http")], "PORT"),
        (vec![("RATE_MAX_TOKENS", "0")], "RATE_MAX_TOKENS"),
        (
            vec![("VALKEY_WRITER_ENDPOINT", "h"), ("VALKEY_WRITER_PORT", "x")],
            "VALKEY_WRITER_PORT",
        ),
        (
            vec![("VALKEY_WRITER_ENDPOINT", "h"), ("VALKEY_TLS", "maybe")],
            "VALKEY_TLS",
        ),
        (
            vec![("VALKEY_READER_ENDPOINT", "h")],
            "VALKEY_READER_ENDPOINT",
        ),
    ] {
        let e = cfg(&pairs).unwrap_err();
        assert!(e.contains(needle), "{pairs:?}: {e}");
    }
}

#[test]
fn without_an_endpoint_it_starts_a_throwaway_server() {
    let env: HashMap<&str, &str> = [
        ("PORT", "0"),
        ("ORIGIN_LATENCY_MS", "0"),
        ("HTTP_WORKERS", "2"),
    ]
    .into();
    let config = app::Config::from_vars(|k| env.get(k).map(|v| v.to_string())).unwrap();
    let svc = app::Service::start(config).unwrap();
    let server_port = svc
        .service
        .throwaway
        .as_ref()
        .expect("a throwaway server")
        .port();
    assert!(testkit::raw_ping(server_port));
    assert_eq!(get(svc.addr, "/users/1", "t").status, 200);
    assert_eq!(
        get(svc.addr, "/users/1", "t").header("X-Cache"),
        Some("HIT")
    );
    assert_eq!(svc.shutdown(Duration::from_secs(5)).unwrap(), 0);
}

/// The example binary itself (`cargo test` builds it next to this test's directory):
/// configured from the environment, it serves, and SIGTERM drains the write-behind.
#[test]
fn the_example_binary_drains_write_behind_on_sigterm() {
    let exe = std::env::current_exe().unwrap();
    let Some(bin) = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|p| p.join("examples").join("service"))
    else {
        return;
    };
    if !bin.exists() {
        eprintln!(
            "{} is not built (cargo test --all-features builds it); not run",
            bin.display()
        );
        return;
    }
    let server = support::shared(ServerKind::Valkey);
    let ns = testkit::unique_prefix("svc-bin");
    let mut child = Command::new(&bin)
        .env("VALKEY_WRITER_ENDPOINT", "127.0.0.1")
        .env("VALKEY_WRITER_PORT", server.port().to_string())
        .env("PORT", "0")
        .env("CACHE_NAMESPACE", &ns)
        .env("WRITE_BEHIND_DELAY_MS", "60000")
        .env("HTTP_WORKERS", "4")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("{line:?}"));
    let addr: SocketAddr = url.parse().unwrap();
    let w = post(
        addr,
        "/users/3",
        "bin",
        r#"{"name": "Bye", "title": "t", "mode": "write-behind"}"#,
    );
    assert_eq!(w.status, 202, "{}", w.body);
    let pending = |ns: &str| {
        let key = format!("{{{ns}:wb}}:pending");
        String::from_utf8_lossy(
            &testkit::raw_command(server.port(), &[b"GET", key.as_bytes()]).unwrap(),
        )
        .into_owned()
    };
    assert!(
        pending(&ns).contains("\r\n1\r\n"),
        "one write pending: {:?}",
        pending(&ns)
    );
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the service did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "{status:?}: {err}");
    assert!(err.contains("write-behind drained"), "{err}");
    assert!(
        pending(&ns).contains("\r\n0\r\n"),
        "nothing pending: {:?}",
        pending(&ns)
    );
}
