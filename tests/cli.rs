//! The `valkit` binary against real servers: every subcommand, human and `--json` output,
//! and the error paths (server down, wrong password, unknown queue, bad usage): a clear
//! message and a non-zero exit, never a panic.

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value as Json;
use support::{key, kinds};
use valkit::lock::Locks;
use valkit::queue::{Job, Nacked, Priority, Queue, QueueOptions};
use valkit::testkit::{ClusterOptions, Server, ServerKind, ServerOptions};
use valkit::{Client, Commands, Connection};

const BIN: &str = env!("CARGO_BIN_EXE_valkit");

/// Run `valkit` with a clean environment (no VALKEY_*/REDIS_* from the caller).
fn valkit(url: Option<&str>, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("VALKEY_") || k.starts_with("REDIS_") {
            c.env_remove(k);
        }
    }
    if let Some(u) = url {
        c.arg("--url").arg(u);
    }
    c.args(args).envs(env.iter().copied());
    let out = c.output().expect("run the valkit binary");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("panicked"),
        "valkit {args:?} panicked: {stderr}"
    );
    out
}

fn ok(url: &str, args: &[&str]) -> String {
    let out = valkit(Some(url), args, &[]);
    assert!(
        out.status.success(),
        "valkit {args:?} failed ({:?}): {}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn ok_json(url: &str, args: &[&str]) -> Json {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let text = ok(url, &all);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {text}"))
}

fn fails(url: Option<&str>, args: &[&str], code: i32) -> String {
    let out = valkit(url, args, &[]);
    assert_eq!(
        out.status.code(),
        Some(code),
        "valkit {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stderr).unwrap()
}

fn server(kind: ServerKind) -> (Server, String) {
    let s = Server::start(kind).unwrap();
    let url = s.url();
    (s, url)
}

#[test]
fn help_for_every_subcommand() {
    let out = valkit(None, &["--help"], &[]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let subcommands = [
        "health", "info", "stats", "bigkeys", "slowlog", "queue", "limit", "lock", "backup",
        "bench",
    ];
    for s in subcommands {
        assert!(text.contains(&format!("    {s} ")), "--help lacks {s}");
        let out = valkit(None, &[s, "--help"], &[]);
        assert!(out.status.success(), "{s} --help");
        let h = String::from_utf8(out.stdout).unwrap();
        assert!(
            h.contains("USAGE") && h.contains(&format!("valkit {s}")),
            "{s}: {h}"
        );
    }
    assert!(ok("redis://x", &["--version"]).starts_with("valkit "));
    // Bad usage: exit 2 with a message, before any connection is tried.
    assert!(fails(None, &[], 2).contains("no command"));
    assert!(fails(None, &["frobnicate"], 2).contains("unknown command `frobnicate`"));
    assert!(fails(None, &["health", "--bogus"], 2).contains("unknown option `--bogus`"));
    assert!(fails(None, &["bigkeys", "--rate", "fast"], 2).contains("not a whole number"));
    assert!(fails(None, &["bench", "--max-time", "soon"], 2).contains("not a duration"));
    assert!(fails(None, &["bench", "--tests", "incr"], 2).contains("unknown test"));
    assert!(fails(None, &["bench", "--requests", "999999999999"], 2).contains("--requests"));
    assert!(fails(None, &["bench", "--size", "1000000000"], 2).contains("--size"));
    assert!(fails(None, &["lock", "status"], 2).contains("missing lock name"));
    assert!(fails(None, &["--url", "ftp://x", "health"], 2).contains("configuration error"));
    assert!(fails(
        None,
        &["limit", "check", "api", "k", "--algorithm", "magic:1/1s"],
        2
    )
    .contains("--algorithm"));
    assert!(fails(None, &["queue", "purge", "jobs"], 2).contains("--yes"));
    assert!(text.contains("--cluster") && text.contains("VALKEY_CLUSTER_URL"));
    let seeds = "redis://127.0.0.1:1,ftp://x";
    assert!(
        fails(None, &["--cluster", "--url", seeds, "queue", "ls"], 2)
            .contains("configuration error")
    );
}

#[test]
fn health_and_info_on_each_server() {
    for kind in kinds() {
        let (s, url) = server(kind);
        let text = ok(&url, &["health"]);
        assert!(text.starts_with("healthy: "), "{text}");
        assert!(text.contains(kind.name()), "{text}");
        let h = ok_json(&url, &["health"]);
        assert_eq!(h["healthy"], true);
        assert_eq!(h["product"], kind.name());
        assert!(h["ping_ms"].as_f64().unwrap() > 0.0);

        let text = ok(&url, &["info"]);
        for line in [
            "server ",
            "clients ",
            "memory ",
            "stats ",
            "replication ",
            "persistence ",
            "keyspace ",
        ] {
            assert!(text.contains(line), "info lacks {line}: {text}");
        }
        let j = ok_json(&url, &["info"]);
        assert_eq!(j["server"]["tcp_port"], s.port());
        assert_eq!(j["replication"]["role"], "master");
        let raw = ok(&url, &["info", "commandstats"]);
        assert!(
            raw.contains("# commandstats") && raw.contains("cmdstat_info:"),
            "{raw}"
        );
        // The environment, as the library reads it.
        let port = s.port().to_string();
        let out = valkit(None, &["health"], &[("VALKEY_PORT", &port)]);
        assert!(out.status.success());
        // Unhealthy: memory above the threshold gives exit 1 and says why.
        let conn = Connection::open(&s.config()).unwrap();
        valkit::admin::config_set(&conn, "maxmemory", "2mb").unwrap();
        let out = valkit(Some(&url), &["health", "--max-memory", "1"], &[]);
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stdout).contains("problem: memory at"));
    }
}

#[test]
fn server_down_and_wrong_password_are_clear_errors() {
    let kind = kinds()[0];
    // Down: a port nobody listens on.
    let port = valkit::testkit::dead_port();
    let url = format!("redis://127.0.0.1:{port}");
    for args in [
        &["health"][..],
        &["info"],
        &["stats"],
        &["bigkeys"],
        &["slowlog"],
        &["queue", "stats", "q"],
        &["limit", "check", "api", "k"],
        &["lock", "status", "l"],
        &["backup"],
        &["bench", "--requests", "10"],
    ] {
        let err = fails(Some(&url), args, 1);
        assert!(
            err.contains("cannot use the server") && err.contains("is the server running"),
            "{args:?}: {err}"
        );
    }
    let j = valkit(Some(&url), &["--json", "health"], &[]);
    assert_eq!(j.status.code(), Some(1));
    let v: Json = serde_json::from_slice(&j.stdout).unwrap();
    assert_eq!(v["reachable"], false);

    // Wrong password: says so, never prints it.
    let s = ServerOptions::new(kind)
        .password(Some("right-secret-1"))
        .start()
        .unwrap();
    let bad = format!("redis://default:wrong-secret-2@127.0.0.1:{}", s.port());
    let err = fails(Some(&bad), &["info"], 1);
    assert!(err.contains("authentication failed"), "{err}");
    assert!(err.contains("check the user and password"), "{err}");
    assert!(!err.contains("wrong-secret-2"), "password leaked: {err}");
    // The right one through the environment.
    let port = s.port().to_string();
    let out = valkit(
        None,
        &["health"],
        &[
            ("VALKEY_PORT", &port),
            ("VALKEY_PASSWORD", "right-secret-1"),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn stats_with_queue_and_scrape() {
    let kind = kinds()[0];
    let (s, url) = server(kind);
    let conn = Connection::open(&s.config()).unwrap();
    let q = Queue::new(&conn, "orders").unwrap();
    q.push(Priority::High, &Job::new("t", serde_json::json!(1)))
        .unwrap();
    // A fake application /metrics endpoint, serving one request.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let app = std::thread::spawn(move || {
        let (mut sock, _) = listener.accept().unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        // Read the whole request (it may come in pieces): closing with unread bytes
        // resets the connection (regression: a flaky "connection reset by peer").
        let mut req = Vec::new();
        let mut buf = [0u8; 1024];
        while !req.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = sock.read(&mut buf).unwrap();
            assert!(
                n > 0,
                "request cut short: {:?}",
                String::from_utf8_lossy(&req)
            );
            req.extend_from_slice(&buf[..n]);
        }
        assert!(String::from_utf8_lossy(&req).starts_with("GET /metrics HTTP/1.0"));
        let body = "# TYPE valkit_breaker_state gauge\nvalkit_breaker_state{endpoint=\"writer\"} 1\nother_metric 5\n";
        write!(
            sock,
            "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n{body}"
        )
        .unwrap();
    });
    let scrape = format!("http://{addr}/metrics");
    let v = ok_json(&url, &["stats", "--queue", "orders", "--scrape", &scrape]);
    app.join().unwrap();
    assert_eq!(v["queues"][0]["waiting"]["high"], 1);
    assert_eq!(
        v["valkit_metrics"][0]["series"],
        "valkit_breaker_state{endpoint=\"writer\"}"
    );
    assert_eq!(v["valkit_metrics"].as_array().unwrap().len(), 1);
    let text = ok(&url, &["stats", "--queue", "orders"]);
    assert!(
        text.contains("hit rate") && text.contains("queue orders: 1 waiting"),
        "{text}"
    );
    let err = fails(Some(&url), &["stats", "--queue", "nosuch"], 1);
    assert!(err.contains("queue `nosuch` not found"), "{err}");
    let err = fails(
        Some(&url),
        &["stats", "--scrape", "http://127.0.0.1:1/metrics"],
        1,
    );
    assert!(err.contains("--scrape"), "{err}");
}

#[test]
fn bigkeys_slowlog_backup() {
    for kind in kinds() {
        let (s, url) = server(kind);
        let conn = Connection::open(&s.config()).unwrap();
        conn.set("big:string", vec![b'z'; 50_000]).unwrap();
        for i in 0..30 {
            conn.set(format!("small:{i}"), "v").unwrap();
        }
        let v = ok_json(&url, &["bigkeys", "--rate", "0"]);
        assert_eq!(v["complete"], true);
        assert_eq!(v["by_type"]["string"]["biggest"][0]["key"], "big:string");
        assert_eq!(v["by_type"]["string"]["biggest"][0]["size"], 50_000);
        let text = ok(&url, &["bigkeys", "--top", "1", "--no-memory"]);
        assert!(text.contains("50000 bytes  big:string"), "{text}");
        let v = ok_json(&url, &["bigkeys", "--max-keys", "5"]);
        assert_eq!(v["complete"], false, "{v}");

        valkit::admin::config_set(&conn, "slowlog-log-slower-than", "0").unwrap();
        conn.set("slow:marker", "1").unwrap();
        let v = ok_json(&url, &["slowlog", "--count", "100"]);
        assert!(
            v.as_array()
                .unwrap()
                .iter()
                .any(|e| e["args"][1] == "slow:marker"),
            "{v}"
        );
        let n = ok_json(&url, &["slowlog", "len"]);
        assert!(n["len"].as_u64().unwrap() >= 1);
        assert!(ok(&url, &["slowlog", "reset"]).contains("reset"));
        assert!(fails(Some(&url), &["slowlog", "flush"], 2).contains("unknown action"));

        let v = ok_json(&url, &["backup"]);
        assert_eq!(v["status"], "ok");
        assert!(s.dir().join("dump.rdb").exists());
        let text = ok(&url, &["backup", "--aof", "--wait", "30s"]);
        assert!(text.starts_with("AOF rewrite done"), "{text}");
    }
}

#[test]
fn queue_subcommands() {
    let kind = kinds()[0];
    let (s, url) = server(kind);
    let conn = Connection::open(&s.config()).unwrap();
    let name = key("cliq");
    let q = Queue::with_options(&conn, &name, QueueOptions::new().max_attempts(1)).unwrap();
    for i in 0..3 {
        q.push(
            Priority::Low,
            &Job::new("t", serde_json::json!(i)).with_id(format!("j{i}")),
        )
        .unwrap();
    }
    // Two jobs fail for good: dead letters.
    for _ in 0..2 {
        let r = q.try_reserve().unwrap().unwrap();
        assert!(matches!(q.nack(r, "boom").unwrap(), Nacked::DeadLettered));
    }
    let ls = ok(&url, &["queue", "ls"]);
    assert!(ls.contains(&format!("queue {name}: 1 waiting")), "{ls}");
    let v = ok_json(&url, &["queue", "stats", &name]);
    assert_eq!(v[0]["waiting"]["low"], 1);
    assert_eq!(v[0]["dead_letters"], 2);
    assert!(v[0]["oldest_age_secs"].as_f64().is_some());
    let dead = ok_json(&url, &["queue", "dead", &name]);
    assert_eq!(dead.as_array().unwrap().len(), 2);
    assert_eq!(dead[0]["error"], "boom");
    let text = ok(&url, &["queue", "dead", &name, "--count", "1"]);
    assert_eq!(text.lines().count(), 1, "{text}");
    let id = dead[0]["id"].as_str().unwrap().to_owned();
    let v = ok_json(&url, &["queue", "requeue", &name, "--id", &id]);
    assert_eq!(v["requeued"], 1);
    assert!(
        fails(Some(&url), &["queue", "requeue", &name, "--id", "nope"], 1)
            .contains("no dead letter")
    );
    assert_eq!(q.stats().unwrap().waiting[2], 2);
    let v = ok_json(&url, &["queue", "requeue", &name]);
    assert_eq!(v["requeued"], 1);
    // Make one more dead letter, then purge.
    let r = q.try_reserve().unwrap().unwrap();
    q.nack(r, "again").unwrap();
    let v = ok_json(&url, &["queue", "purge", &name, "--yes"]);
    assert_eq!(v["purged"], 1);
    assert_eq!(q.stats().unwrap().dead_lettered, 0);
    // Unknown queue: exit 1, says so.
    for args in [
        &["queue", "stats", "no-such-queue"][..],
        &["queue", "dead", "no-such-queue"],
        &["queue", "requeue", "no-such-queue"],
        &["queue", "purge", "no-such-queue", "--yes"],
    ] {
        let err = fails(Some(&url), args, 1);
        assert!(
            err.contains("queue `no-such-queue` not found"),
            "{args:?}: {err}"
        );
    }
    assert!(fails(Some(&url), &["queue", "stats"], 2).contains("name at least one"));
}

#[test]
fn limit_and_lock_status() {
    let kind = kinds()[0];
    let (s, url) = server(kind);
    let text = ok(&url, &["limit", "check", "api", "user-1"]);
    assert!(text.contains("no state for user-1"), "{text}");
    let spec = "token_bucket:5:1/10s";
    let v = ok_json(
        &url,
        &["limit", "check", "api", "user-1", "--algorithm", spec],
    );
    assert_eq!(
        (v["allowed"].clone(), v["remaining"].clone()),
        (true.into(), 5.into())
    );
    let v = ok_json(
        &url,
        &[
            "limit",
            "check",
            "api",
            "user-1",
            "--algorithm",
            spec,
            "--cost",
            "4",
        ],
    );
    assert_eq!(v["remaining"], 1);
    let v = ok_json(
        &url,
        &[
            "limit",
            "check",
            "api",
            "user-1",
            "--algorithm",
            spec,
            "--cost",
            "3",
        ],
    );
    assert_eq!(v["outcome"], "limited");
    assert!(v["retry_after_ms"].as_u64().unwrap() > 0);
    let v = ok_json(&url, &["limit", "check", "api", "user-1"]);
    assert_eq!(v["state"][0]["algorithm"], "bucket");
    assert!(v["state"][0]["ttl_ms"].as_i64().unwrap() > 0);

    let conn = Connection::open(&s.config()).unwrap();
    let locks = Locks::new(&conn);
    let text = ok(&url, &["lock", "status", "invoice:7"]);
    assert!(text.contains("is free"), "{text}");
    let guard = locks
        .try_acquire("invoice:7", Duration::from_secs(30))
        .unwrap()
        .unwrap();
    let v = ok_json(&url, &["lock", "status", "invoice:7"]);
    assert_eq!(v["held"], true);
    let ttl = v["ttl_ms"].as_u64().unwrap();
    assert!(ttl > 20_000 && ttl <= 30_000, "{ttl}");
    assert_eq!(v["fencing_token"], guard.fencing_token().to_string());
    let text = ok(&url, &["lock", "status", "invoice:7"]);
    assert!(text.contains("is HELD"), "{text}");
    guard.release().unwrap();
    assert!(ok(&url, &["lock", "status", "invoice:7"]).contains("is free"));
    assert!(fails(Some(&url), &["lock", "grab", "x"], 2).contains("unknown action"));
}

#[test]
fn bench_prints_throughput_and_percentiles() {
    let kind = kinds()[0];
    let (_s, url) = server(kind);
    for pipeline in ["1", "8"] {
        let v = ok_json(
            &url,
            &[
                "bench",
                "--requests",
                "2000",
                "--threads",
                "2",
                "--pipeline",
                pipeline,
                "--keyspace",
                "100",
                "--size",
                "16",
            ],
        );
        let runs = v.as_array().unwrap();
        assert_eq!(runs.len(), 2);
        for r in runs {
            assert_eq!(r["requests"], 2000, "{r}");
            assert!(r["ops_per_sec"].as_f64().unwrap() > 0.0);
            let l = &r["latency_ms"];
            let get = |k: &str| l[k].as_f64().unwrap();
            assert!(get("min") <= get("p50") && get("p50") <= get("p95"), "{l}");
            assert!(get("p95") <= get("p99") && get("p99") <= get("max"), "{l}");
        }
    }
    let text = ok(
        &url,
        &[
            "bench",
            "--requests",
            "500",
            "--threads",
            "1",
            "--tests",
            "get",
        ],
    );
    assert!(text.contains("====== GET ======"), "{text}");
    assert!(
        text.contains("requests per second") && text.contains("p99"),
        "{text}"
    );
    // The bench keys are cleaned up.
    let conn = Connection::open(&valkit::ConnectionConfig::from_url(&url).unwrap()).unwrap();
    assert_eq!(conn.dbsize().unwrap(), 0);
}

#[test]
fn node_commands_on_a_cluster() {
    // The server subcommands talk to one node: each node of a cluster answers for itself.
    let kind = kinds()[0];
    let cluster = valkit::testkit::shared_cluster(kind).unwrap();
    for url in cluster.urls() {
        let h = ok_json(&url, &["health"]);
        assert_eq!(h["healthy"], true, "{url}: {h}");
        let info = ok_json(&url, &["info"]);
        assert_eq!(info["server"]["mode"], "cluster", "{url}");
        let b = ok_json(&url, &["bigkeys", "--rate", "0"]);
        assert_eq!(b["complete"], true, "{url}");
        let s = ok_json(&url, &["slowlog", "len"]);
        assert!(s["len"].is_u64());
    }
    // bench measures one primary with keys of its own slots; a replica serves none.
    let primaries = cluster.primary_ports().unwrap();
    for node in cluster.nodes() {
        let url = node.server().url();
        let args = [
            "bench",
            "--requests",
            "300",
            "--threads",
            "2",
            "--keyspace",
            "20",
        ];
        if primaries.contains(&node.port()) {
            let v = ok_json(&url, &args);
            assert_eq!(v[0]["requests"], 300, "{url}: {v}");
            assert_eq!(v[1]["requests"], 300, "{url}: {v}");
            let conn = node.connect().unwrap();
            let left: Vec<String> = conn
                .query(&valkit::cmd("KEYS").arg("valkit-bench:*"))
                .unwrap();
            assert!(left.is_empty(), "{url}: bench keys cleaned up: {left:?}");
        } else {
            assert!(fails(Some(&url), &args, 1).contains("serves no slot"));
        }
    }
    let b = ok_json(&cluster.url(), &["backup"]);
    assert_eq!(b["status"], "ok", "{b}");
}

/// The port of a `host:port` address.
fn port_of(addr: &str) -> u16 {
    addr.rsplit_once(':').unwrap().1.parse().unwrap()
}

/// A name (`{prefix-N}`) whose slot is served by the primary at `addr`.
fn name_on(client: &Client, prefix: &str, addr: &str) -> String {
    for i in 0..10_000 {
        let name = format!("{prefix}-{i}");
        if client
            .cluster_node_for(format!("{{{name}}}").as_bytes())
            .as_deref()
            == Some(addr)
        {
            return name;
        }
    }
    panic!("no name of {prefix} hashes to {addr}");
}

#[test]
fn pattern_subcommands_on_a_cluster() {
    let kind = kinds()[0];
    let cluster = valkit::testkit::shared_cluster(kind).unwrap();
    let client = Client::builder()
        .cluster_url(&cluster.url())
        .build()
        .unwrap();
    let primaries = client.cluster_primaries();
    assert_eq!(primaries.len(), 3, "{primaries:?}");
    // The seed the CLI is given is the first primary; the queue under test lives elsewhere.
    let seed = cluster
        .node_by_port(port_of(&primaries[0]))
        .unwrap()
        .server()
        .url();
    let prefix = key("cliqc");
    let names: Vec<String> = primaries
        .iter()
        .map(|a| name_on(&client, &prefix, a))
        .collect();
    for n in &names {
        let q = Queue::new(&client, n).unwrap();
        q.push(Priority::High, &Job::new("t", serde_json::json!(0)))
            .unwrap();
    }
    let name = &names[2];
    assert_ne!(
        client.cluster_node_for(format!("{{{name}}}").as_bytes()),
        Some(primaries[0].clone())
    );
    let q = Queue::with_options(&client, name, QueueOptions::new().max_attempts(1)).unwrap();
    for i in 0..3 {
        q.push(
            Priority::Low,
            &Job::new("t", serde_json::json!(i)).with_id(format!("j{i}")),
        )
        .unwrap();
    }
    let _ = q.try_reserve().unwrap().unwrap(); // the High job
    for _ in 0..2 {
        let r = q.try_reserve().unwrap().unwrap();
        assert!(matches!(q.nack(r, "boom").unwrap(), Nacked::DeadLettered));
    }
    // `queue ls` finds the queues of every primary: with the cluster detected from the
    // URL, with --cluster, and from VALKEY_CLUSTER_URL.
    let cluster_env = [("VALKEY_CLUSTER_URL", seed.as_str())];
    for (url, args, env) in [
        (Some(seed.as_str()), &["--json", "queue", "ls"][..], &[][..]),
        (
            Some(seed.as_str()),
            &["--cluster", "--json", "queue", "ls"],
            &[],
        ),
        (None, &["--json", "queue", "ls"], &cluster_env[..]),
    ] {
        let out = valkit(url, args, env);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Json = serde_json::from_slice(&out.stdout).unwrap();
        let found: Vec<&str> = v
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|q| q["queue"].as_str())
            .collect();
        for n in &names {
            assert!(
                found.contains(&n.as_str()),
                "{args:?}: {n} not in {found:?}"
            );
        }
    }
    let v = ok_json(&seed, &["queue", "stats", name]);
    assert_eq!(v[0]["waiting"]["low"], 1, "{v}");
    assert_eq!(v[0]["dead_letters"], 2, "{v}");
    let dead = ok_json(&seed, &["queue", "dead", name]);
    assert_eq!(dead.as_array().unwrap().len(), 2);
    assert_eq!(dead[0]["error"], "boom");
    let id = dead[0]["id"].as_str().unwrap().to_owned();
    let v = ok_json(&seed, &["queue", "requeue", name, "--id", &id]);
    assert_eq!(v["requeued"], 1);
    assert_eq!(q.stats().unwrap().waiting[2], 2);
    let v = ok_json(&seed, &["--cluster", "queue", "requeue", name]);
    assert_eq!(v["requeued"], 1);
    let r = q.try_reserve().unwrap().unwrap();
    q.nack(r, "again").unwrap();
    let v = ok_json(&seed, &["queue", "purge", name, "--yes"]);
    assert_eq!(v["purged"], 1);
    assert_eq!(q.stats().unwrap().dead_lettered, 0);
    let v = ok_json(&seed, &["stats", "--queue", name]);
    assert_eq!(v["queues"][0]["waiting"]["low"], 2, "{v}");
    let err = fails(Some(&seed), &["queue", "stats", "no-such-queue"], 1);
    assert!(err.contains("queue `no-such-queue` not found"), "{err}");

    // A limiter id and a lock on a node other than the seed's.
    let id = name_on(&client, &key("user"), &primaries[1]);
    let spec = "token_bucket:5:1/10s";
    let v = ok_json(
        &seed,
        &[
            "limit",
            "check",
            "api",
            &id,
            "--algorithm",
            spec,
            "--cost",
            "4",
        ],
    );
    assert_eq!(v["remaining"], 1, "{v}");
    let v = ok_json(&seed, &["limit", "check", "api", &id]);
    assert_eq!(v["state"][0]["algorithm"], "bucket", "{v}");
    let lock = name_on(&client, &key("invoice"), &primaries[2]);
    let locks = Locks::new(&client);
    assert!(ok(&seed, &["lock", "status", &lock]).contains("is free"));
    let guard = locks
        .try_acquire(&lock, Duration::from_secs(30))
        .unwrap()
        .unwrap();
    let v = ok_json(&seed, &["lock", "status", &lock]);
    assert_eq!(v["held"], true, "{v}");
    assert_eq!(v["fencing_token"], guard.fencing_token().to_string());
    guard.release().unwrap();

    // health on a cluster node reports the cluster's state.
    let h = ok_json(&seed, &["health"]);
    assert_eq!(h["healthy"], true, "{h}");
    assert_eq!(h["cluster"]["state"], "ok", "{h}");
    assert_eq!(h["cluster"]["slots_assigned"], 16384, "{h}");
    assert!(ok(&seed, &["health"]).contains("cluster: state ok"));
}

#[test]
fn cluster_errors_are_clear() {
    let kind = kinds()[0];
    // No server at the seed: exit 1, a clear message, quickly.
    let dead = format!("redis://127.0.0.1:{}", valkit::testkit::dead_port());
    let t = std::time::Instant::now();
    let err = fails(Some(&dead), &["--cluster", "queue", "ls"], 1);
    assert!(
        err.contains("cannot use the server") && err.contains("hint"),
        "{err}"
    );
    let out = valkit(
        None,
        &["lock", "status", "x"],
        &[("VALKEY_CLUSTER_URL", &dead)],
    );
    assert_eq!(out.status.code(), Some(1));
    // The password of a seed URL never appears in the message.
    let with_password = dead.replace("redis://", "redis://ops:sekret-pw@");
    let err = fails(
        Some(&with_password),
        &["--cluster", "limit", "check", "a", "b"],
        1,
    );
    assert!(
        !err.contains("sekret-pw") && err.contains("cannot use"),
        "{err}"
    );
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    // --cluster against a server that is not a cluster node.
    let (_s, url) = server(kind);
    let err = fails(Some(&url), &["--cluster", "queue", "ls"], 1);
    assert!(err.contains("cluster"), "{err}");

    // A primary down: its queue fails with the node's error, the scan names the node,
    // and health on a live node reports the cluster down once the others notice.
    let cluster = ClusterOptions::new(kind)
        .replicas(0)
        .node_timeout(Duration::from_millis(1000))
        .start()
        .unwrap();
    let client = Client::builder()
        .cluster_url(&cluster.url())
        .build()
        .unwrap();
    let primaries = client.cluster_primaries();
    let seed = cluster
        .node_by_port(port_of(&primaries[0]))
        .unwrap()
        .server()
        .url();
    let far = name_on(&client, &key("cliqd"), &primaries[2]);
    Queue::new(&client, &far)
        .unwrap()
        .push(Priority::High, &Job::new("t", serde_json::json!(1)))
        .unwrap();
    drop(client);
    let mut cluster = cluster;
    let victim = port_of(&primaries[2]);
    for n in cluster.nodes_mut() {
        if n.port() == victim {
            n.server_mut().kill();
        }
    }
    let t = std::time::Instant::now();
    let out = valkit(Some(&seed), &["queue", "stats", &far], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("valkit: error:"), "{err}");
    let out = valkit(Some(&seed), &["queue", "ls"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&victim.to_string()) || err.contains("CLUSTERDOWN") || err.contains("down"),
        "{err}"
    );
    eprintln!("two commands with a primary down: {:?}", t.elapsed());
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let out = valkit(Some(&seed), &["--json", "health"], &[]);
        let h: Json = serde_json::from_slice(&out.stdout).unwrap();
        if out.status.code() == Some(1) {
            assert_eq!(h["healthy"], false, "{h}");
            // First the node suspects the primary (pfail), then the cluster fails it.
            let c = &h["cluster"];
            let lost = c["slots_pfail"].as_u64().unwrap() + c["slots_fail"].as_u64().unwrap();
            assert!(c["state"] != "ok" || lost >= 5461, "{h}");
            assert!(!h["problems"].as_array().unwrap().is_empty(), "{h}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "health never saw the cluster down: {h}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}
