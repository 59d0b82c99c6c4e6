//! Server subcommands: health, info, stats, bigkeys, slowlog, backup.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::json;
use valkit::admin::{self, BigKeyOptions, InfoReport};
use valkit::{cmd, Execute, Info};

use crate::args::{Args, Failure};
use crate::out::{self, Progress};
use crate::Global;

const HEALTH_HELP: &str = "\
valkit health: is the server up and well?

USAGE: valkit health [--max-memory PERCENT]

Connects, PINGs (timed), reads INFO and reports problems: still loading, replica link
down, memory above --max-memory percent of maxmemory (default 90), last background save
or AOF write failed. On a cluster node also CLUSTER INFO: the cluster state must be ok,
every slot assigned, none on a failed (or suspected) node. Exit 0 healthy, 1 unhealthy
or unreachable.
";

pub(crate) fn health(g: &Global, mut a: Args) -> Result<ExitCode, Failure> {
    a.help(HEALTH_HELP)?;
    let max_memory = a.number("--max-memory")?.unwrap_or(90);
    a.finish()?;
    let cfg = g.config()?;
    let conn = match valkit::Connection::open(&cfg) {
        Ok(c) => c,
        Err(e) => {
            if g.json {
                out::json(&json!({"healthy": false, "reachable": false, "error": e.to_string()}));
                return Ok(ExitCode::from(1));
            }
            return Err(crate::connect_failure(&cfg, &e));
        }
    };
    let t = Instant::now();
    conn.exec(&cmd("PING"))?;
    let ping = t.elapsed();
    let r = admin::info(&conn)?;
    let mut problems = Vec::new();
    if r.persistence.loading {
        problems.push("the server is loading its dataset".to_owned());
    }
    if r.replication.role == "slave" && r.replication.link_status.as_deref() != Some("up") {
        problems.push(format!(
            "replica link to {}:{} is {}",
            r.replication.primary_host.as_deref().unwrap_or("?"),
            r.replication.primary_port.unwrap_or(0),
            r.replication.link_status.as_deref().unwrap_or("unknown")
        ));
    }
    if let Some(ratio) = r.memory.used_ratio() {
        if ratio * 100.0 > max_memory as f64 {
            problems.push(format!(
                "memory at {:.0} % of maxmemory (above {max_memory} %)",
                ratio * 100.0
            ));
        }
    }
    if r.persistence.rdb_last_bgsave_status == "err" {
        problems.push("the last background save failed".into());
    }
    if r.persistence.aof_last_write_status == "err" {
        problems.push("the last AOF write failed".into());
    }
    // A cluster node: the cluster's own view, one more round trip (CLUSTER INFO).
    let cluster = if r.server.mode == "cluster" {
        let text: String = valkit::FromValue::from_value(conn.exec(&cmd("CLUSTER").arg("INFO"))?)?;
        let c = ClusterHealth::parse(&text);
        problems.extend(c.problems());
        Some(c)
    } else {
        None
    };
    let healthy = problems.is_empty();
    if g.json {
        out::json(&json!({
            "cluster": cluster.as_ref().map(ClusterHealth::to_json),
            "healthy": healthy,
            "reachable": true,
            "ping_ms": ping.as_secs_f64() * 1000.0,
            "product": r.server.product,
            "version": r.server.version,
            "role": r.replication.role,
            "used_memory": r.memory.used_memory,
            "maxmemory": r.memory.maxmemory,
            "problems": problems,
        }));
    } else {
        println!(
            "{}: {} {} at {cfg}, ping {}, role {}, memory {}{}",
            if healthy { "healthy" } else { "UNHEALTHY" },
            r.server.product,
            r.server.version,
            out::dur(ping),
            r.replication.role,
            out::bytes(r.memory.used_memory),
            match r.memory.maxmemory {
                Some(m) => format!(" of {}", out::bytes(m)),
                None => " (no maxmemory)".into(),
            }
        );
        if let Some(c) = &cluster {
            println!(
                "  cluster: state {}, {} shards, {} nodes known, slots {} assigned, {} ok, {} pfail, {} fail",
                c.state, c.size, c.known_nodes, c.slots_assigned, c.slots_ok, c.slots_pfail, c.slots_fail
            );
        }
        for p in &problems {
            println!("  problem: {p}");
        }
    }
    Ok(if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// What `CLUSTER INFO` says about the cluster, as seen by this node.
struct ClusterHealth {
    state: String,
    slots_assigned: u64,
    slots_ok: u64,
    slots_pfail: u64,
    slots_fail: u64,
    known_nodes: u64,
    size: u64,
}

impl ClusterHealth {
    fn parse(text: &str) -> ClusterHealth {
        let info = valkit::Info::parse(text);
        let num = |f: &str| {
            info.field(f)
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0)
        };
        ClusterHealth {
            state: info
                .field("cluster_state")
                .unwrap_or("unknown")
                .trim()
                .to_owned(),
            slots_assigned: num("cluster_slots_assigned"),
            slots_ok: num("cluster_slots_ok"),
            slots_pfail: num("cluster_slots_pfail"),
            slots_fail: num("cluster_slots_fail"),
            known_nodes: num("cluster_known_nodes"),
            size: num("cluster_size"),
        }
    }

    fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.state != "ok" {
            p.push(format!("cluster state is `{}` (not ok)", self.state));
        }
        if self.slots_assigned < 16384 {
            p.push(format!(
                "only {} of 16384 slots are assigned",
                self.slots_assigned
            ));
        }
        if self.slots_fail > 0 || self.slots_pfail > 0 {
            p.push(format!(
                "{} slots on failed nodes, {} on nodes suspected to fail",
                self.slots_fail, self.slots_pfail
            ));
        }
        p
    }

    fn to_json(&self) -> serde_json::Value {
        json!({
            "state": self.state, "size": self.size, "known_nodes": self.known_nodes,
            "slots_assigned": self.slots_assigned, "slots_ok": self.slots_ok,
            "slots_pfail": self.slots_pfail, "slots_fail": self.slots_fail,
        })
    }
}

const INFO_HELP: &str = "\
valkit info: the server's INFO, typed

USAGE: valkit info [--raw] [SECTION...]

Without arguments: server, clients, memory, stats, replication, persistence and
keyspace, summarized. With --raw or SECTION names (e.g. `valkit info commandstats`):
every field of those sections as the server sent it.
";

pub(crate) fn info(g: &Global, mut a: Args) -> Result<ExitCode, Failure> {
    a.help(INFO_HELP)?;
    let raw = a.flag("--raw");
    let mut sections = Vec::new();
    while let Some(s) = a.positional() {
        sections.push(s);
    }
    a.finish()?;
    let conn = g.connect()?;
    if raw || !sections.is_empty() {
        let mut c = cmd("INFO");
        for s in &sections {
            c = c.arg(s.as_str());
        }
        let info = <Info as valkit::FromValue>::from_value(conn.exec(&c)?)?;
        if g.json {
            out::json(&out::to_json(info.sections()));
        } else {
            for (name, fields) in info.sections() {
                println!("# {name}");
                for (k, v) in fields {
                    println!("{k}:{v}");
                }
                println!();
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let r = admin::info(&conn)?;
    if g.json {
        out::json(&out::to_json(&r));
    } else {
        print_report(&r);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_report(r: &InfoReport) {
    let s = &r.server;
    println!(
        "server       {} {} ({}), pid {}, port {}, up {}",
        s.product,
        s.version,
        s.mode,
        s.process_id,
        s.tcp_port,
        out::secs(s.uptime_secs)
    );
    println!(
        "clients      {} connected, {} blocked",
        r.clients.connected_clients, r.clients.blocked_clients
    );
    let m = &r.memory;
    println!(
        "memory       {} used ({} rss, peak {}), maxmemory {}, policy {}, fragmentation {:.2}",
        out::bytes(m.used_memory),
        out::bytes(m.used_memory_rss),
        out::bytes(m.used_memory_peak),
        m.maxmemory.map_or("none".into(), out::bytes),
        m.maxmemory_policy,
        m.fragmentation_ratio
    );
    let st = &r.stats;
    println!(
        "stats        {} ops/s now, {} commands, hit rate {}, {} evicted, {} expired, {} rejected connections",
        st.instantaneous_ops_per_sec,
        st.total_commands_processed,
        st.hit_rate()
            .map_or("n/a".into(), |h| format!("{:.1} %", h * 100.0)),
        st.evicted_keys,
        st.expired_keys,
        st.rejected_connections
    );
    let rep = &r.replication;
    match (&rep.primary_host, rep.primary_port) {
        (Some(h), Some(p)) => println!(
            "replication  {} of {h}:{p}, link {}",
            rep.role,
            rep.link_status.as_deref().unwrap_or("?")
        ),
        _ => println!(
            "replication  {}, {} replicas, offset {}",
            rep.role, rep.connected_replicas, rep.repl_offset
        ),
    }
    let p = &r.persistence;
    println!(
        "persistence  rdb last save {} ({}), {} changes since; aof {}{}",
        p.rdb_last_save_time,
        p.rdb_last_bgsave_status,
        p.rdb_changes_since_last_save,
        if p.aof_enabled { "on" } else { "off" },
        if p.loading { "; LOADING" } else { "" }
    );
    if r.keyspace.is_empty() {
        println!("keyspace     empty");
    }
    for db in &r.keyspace {
        println!(
            "keyspace     db{}: {} keys, {} with a TTL",
            db.db, db.keys, db.expires
        );
    }
}

const STATS_HELP: &str = "\
valkit stats: server counters and valkit's own metrics

USAGE: valkit stats [--queue NAME]... [--scrape http://HOST:PORT/PATH]

Server: ops/s, hit rate, evictions, expirations, clients, memory. --queue adds a
queue's depths (repeatable). --scrape reads an application's Prometheus endpoint and
shows its valkit_* metrics (pool, breaker, cache, limiter, queue).
";

pub(crate) fn stats(g: &Global, mut a: Args) -> Result<ExitCode, Failure> {
    a.help(STATS_HELP)?;
    let queues = a.values("--queue")?;
    let scrape = a.value("--scrape")?;
    a.finish()?;
    let conn = g.connect()?;
    let r = admin::info(&conn)?;
    let mut queue_stats = Vec::new();
    if !queues.is_empty() {
        // Queues are routed like the `queue` subcommand (on a cluster, to their slot's node).
        let db = g.patterns_db()?;
        for q in &queues {
            queue_stats.push((q.clone(), crate::patterns::queue_stats(&db, q)?));
        }
    }
    let scraped = match &scrape {
        Some(url) => Some(scrape_metrics(url)?),
        None => None,
    };
    if g.json {
        let mut v = json!({
            "ops_per_sec": r.stats.instantaneous_ops_per_sec,
            "hit_rate": r.stats.hit_rate(),
            "keyspace_hits": r.stats.keyspace_hits,
            "keyspace_misses": r.stats.keyspace_misses,
            "evicted_keys": r.stats.evicted_keys,
            "expired_keys": r.stats.expired_keys,
            "connected_clients": r.clients.connected_clients,
            "blocked_clients": r.clients.blocked_clients,
            "rejected_connections": r.stats.rejected_connections,
            "used_memory": r.memory.used_memory,
            "maxmemory": r.memory.maxmemory,
        });
        if !queue_stats.is_empty() {
            v["queues"] = queue_stats
                .iter()
                .map(|(n, s)| crate::patterns::queue_json(n, s))
                .collect();
        }
        if let Some(lines) = &scraped {
            v["valkit_metrics"] = lines
                .iter()
                .map(|(k, val)| json!({"series": k, "value": val}))
                .collect();
        }
        out::json(&v);
        return Ok(ExitCode::SUCCESS);
    }
    println!("ops/s           {}", r.stats.instantaneous_ops_per_sec);
    println!(
        "hit rate        {} ({} hits, {} misses)",
        r.stats
            .hit_rate()
            .map_or("n/a".into(), |h| format!("{:.1} %", h * 100.0)),
        r.stats.keyspace_hits,
        r.stats.keyspace_misses
    );
    println!("evicted keys    {}", r.stats.evicted_keys);
    println!("expired keys    {}", r.stats.expired_keys);
    println!(
        "clients         {} connected, {} blocked, {} rejected",
        r.clients.connected_clients, r.clients.blocked_clients, r.stats.rejected_connections
    );
    println!(
        "memory          {}{}",
        out::bytes(r.memory.used_memory),
        match r.memory.used_ratio() {
            Some(x) => format!(" ({:.1} % of maxmemory)", x * 100.0),
            None => String::new(),
        }
    );
    for (n, s) in &queue_stats {
        crate::patterns::print_queue(n, s);
    }
    if let Some(lines) = scraped {
        println!("valkit metrics ({} series):", lines.len());
        for (k, v) in lines {
            println!("  {k} {v}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// GET an `http://` Prometheus endpoint (HTTP/1.0, no TLS) and keep its `valkit_*`
/// samples.
fn scrape_metrics(url: &str) -> Result<Vec<(String, String)>, Failure> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| Failure::Usage(format!("--scrape: `{url}` is not an http:// URL")))?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/metrics"),
    };
    let fail = |e: std::io::Error| Failure::Failed(format!("--scrape {url}: {e}"));
    let addr = std::net::ToSocketAddrs::to_socket_addrs(hostport)
        .map_err(fail)?
        .next()
        .ok_or_else(|| Failure::Failed(format!("--scrape {url}: no address")))?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(fail)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(fail)?;
    // The request in one write.
    let request = format!("GET {path} HTTP/1.0\r\nHost: {hostport}\r\nAccept: text/plain\r\n\r\n");
    s.write_all(request.as_bytes()).map_err(fail)?;
    let mut body = Vec::new();
    s.take(64 << 20).read_to_end(&mut body).map_err(fail)?;
    let text = String::from_utf8_lossy(&body);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    if !head.split_whitespace().nth(1).is_some_and(|c| c == "200") {
        return Err(Failure::Failed(format!(
            "--scrape {url}: {}",
            head.lines().next().unwrap_or("no HTTP status")
        )));
    }
    Ok(body
        .lines()
        .filter(|l| l.starts_with("valkit_"))
        .filter_map(|l| l.rsplit_once(' '))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect())
}

const BIGKEYS_HELP: &str = "\
valkit bigkeys: the biggest keys per type, sampled safely

USAGE: valkit bigkeys [--pattern GLOB] [--rate KEYS_PER_SEC] [--max-time DURATION]
                      [--max-keys N] [--top N] [--no-memory]

Walks the keyspace with SCAN: strings by length, lists/hashes/sets/zsets/streams by
element count, plus MEMORY USAGE (unless --no-memory). Paced to --rate keys a second
(default 5000; 0 = unpaced) and stopped after --max-time (default 60s) or --max-keys:
safe on production. Reports whether it covered the whole keyspace.
";

pub(crate) fn bigkeys(g: &Global, mut a: Args) -> Result<ExitCode, Failure> {
    a.help(BIGKEYS_HELP)?;
    let mut opts = BigKeyOptions::new();
    if let Some(p) = a.value("--pattern")? {
        opts = opts.pattern(&p);
    }
    if let Some(r) = a.number("--rate")? {
        opts = opts.max_rate(r);
    }
    if let Some(d) = a.duration("--max-time")? {
        opts = opts.max_duration(d);
    }
    if let Some(n) = a.number("--max-keys")? {
        opts = opts.max_keys(n);
    }
    if let Some(n) = a.number("--top")? {
        opts = opts.top(n as usize);
    }
    if a.flag("--no-memory") {
        opts = opts.memory_usage(false);
    }
    a.finish()?;
    let conn = g.connect()?;
    let mut progress = Progress::new(g.json);
    let report = admin::big_keys(&conn, &opts, &mut |p| {
        let pct = if p.dbsize > 0 {
            format!(
                " ({:.0} %)",
                (p.scanned as f64 * 100.0 / p.dbsize as f64).min(100.0)
            )
        } else {
            String::new()
        };
        progress.show(&format!(
            "bigkeys: {} of ~{} keys{pct}, {}",
            p.scanned,
            p.dbsize,
            out::dur(p.elapsed)
        ));
    })?;
    progress.clear();
    if g.json {
        out::json(&out::to_json(&report));
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "scanned {} keys in {:.1} s{}",
        report.scanned,
        report.elapsed_secs,
        if report.complete {
            ""
        } else {
            " (stopped by a budget: not the whole keyspace)"
        }
    );
    for (kind, s) in &report.by_type {
        println!(
            "\n{kind}: {} keys, {} {} in total{}",
            s.keys,
            s.total_size,
            if kind == "string" { "bytes" } else { "items" },
            if s.total_memory > 0 {
                format!(", {} of memory", out::bytes(s.total_memory))
            } else {
                String::new()
            }
        );
        for b in &s.biggest {
            println!(
                "  {:>12} {:<5}  {}{}",
                b.size,
                b.unit(),
                b.key,
                b.memory
                    .map_or(String::new(), |m| format!("  ({})", out::bytes(m)))
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

const SLOWLOG_HELP: &str = "\
valkit slowlog: the server's slow log

USAGE: valkit slowlog [get] [--count N]
       valkit slowlog len
       valkit slowlog reset

get (default): the newest --count entries (default 10), newest first.
";

pub(crate) fn slowlog(g: &Global, mut a: Args) -> Result<ExitCode, Failure> {
    a.help(SLOWLOG_HELP)?;
    let count = a.number("--count")?;
    let action = a.positional().unwrap_or_else(|| "get".into());
    a.finish()?;
    let conn = g.connect()?;
    match action.as_str() {
        "get" => {
            let entries = admin::slowlog_get(&conn, Some(count.unwrap_or(10)))?;
            if g.json {
                out::json(&out::to_json(&entries));
            } else if entries.is_empty() {
                println!("slow log is empty");
            } else {
                for e in entries {
                    println!(
                        "#{} at {} took {} µs from {}{}: {}",
                        e.id,
                        e.timestamp,
                        e.duration.as_micros(),
                        e.client_addr.as_deref().unwrap_or("?"),
                        e.client_name
                            .as_deref()
                            .map_or(String::new(), |n| format!(" ({n})")),
                        e.args.join(" ")
                    );
                }
            }
        }
        "len" => {
            let n = admin::slowlog_len(&conn)?;
            if g.json {
                out::json(&json!({ "len": n }));
            } else {
                println!("{n}");
            }
        }
        "reset" => {
            admin::slowlog_reset(&conn)?;
            if g.json {
                out::json(&json!({ "reset": true }));
            } else {
                println!("slow log reset");
            }
        }
        other => return Err(Failure::Usage(format!("slowlog: unknown action `{other}`"))),
    }
    Ok(ExitCode::SUCCESS)
}

const BACKUP_HELP: &str = "\
valkit backup: a snapshot (BGSAVE), or an AOF rewrite, waited for to the end

USAGE: valkit backup [--aof] [--wait DURATION]

Starts BGSAVE (or BGREWRITEAOF with --aof), polls INFO persistence until it is done
(at most --wait, default 10m) and prints where the file is. Copy that file off the
machine to keep the backup (docs/operations.md, Backup).
";

pub(crate) fn backup(g: &Global, mut a: Args) -> Result<ExitCode, Failure> {
    a.help(BACKUP_HELP)?;
    let aof = a.flag("--aof");
    let wait = a.duration("--wait")?.unwrap_or(Duration::from_secs(600));
    a.finish()?;
    let conn = g.connect()?;
    let mut progress = Progress::new(g.json);
    let what = if aof { "AOF rewrite" } else { "snapshot" };
    let mut tick = |d: Duration| progress.show(&format!("backup: {what} running, {}", out::dur(d)));
    let r = if aof {
        admin::bgrewriteaof(&conn, wait, &mut tick)?
    } else {
        admin::bgsave(&conn, wait, &mut tick)?
    };
    progress.clear();
    if g.json {
        out::json(&out::to_json(&r));
    } else {
        println!(
            "{what} done in {:.2} s, status {}{}",
            r.elapsed_secs,
            r.status,
            r.path
                .as_deref()
                .map_or(String::new(), |p| format!(", file {p}"))
        );
    }
    Ok(ExitCode::SUCCESS)
}
