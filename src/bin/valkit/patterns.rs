//! Subcommands for valkit's patterns: queue, limit, lock.

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::json;
use valkit::limit::{Algorithm, Limiter, Outcome};
use valkit::queue::{Priority, Queue, QueueKeys, QueueStats};
use valkit::{cmd, Cmd, Execute, FromValue, Value};

use crate::args::{parse_duration, Args, Failure};
use crate::out;
use crate::{Db, Global};

const QUEUE_HELP: &str = "\
valkit queue: valkit queues and their dead letters

USAGE:
    valkit queue ls                       Queues found on the server (bounded SCAN)
    valkit queue stats NAME...            Depths per priority, in flight, delayed,
                                          dead letters, age of the oldest waiting job
    valkit queue dead NAME [--start N] [--count N]
                                          Dead letters, newest first (default 20)
    valkit queue requeue NAME [--max N] [--id ID]
                                          Put dead letters back (oldest first, at most
                                          --max, default 100), or only the one with --id
    valkit queue purge NAME --yes         Delete every dead letter

A NAME whose keys ({NAME}:high, :medium, :low, :dead-letter, ...) do not exist is an
error (exit 1), so a typo never looks like an empty queue.

On a cluster (--cluster, VALKEY_CLUSTER_URL, or the URL of a cluster node) each queue
is read on the node that owns its slot, and `ls` scans every primary.
";

/// The keys whose presence means a queue exists.
fn queue_key_names(name: &str) -> Vec<String> {
    let k = QueueKeys::new(name);
    let mut v: Vec<String> = Priority::ALL
        .iter()
        .map(|p| k.list(*p).to_owned())
        .collect();
    v.push(k.dead_letter().to_owned());
    v.push(k.delayed().to_owned());
    v.push(k.inflight().to_owned());
    let tag = k.name();
    v.push(format!("{{{tag}}}:leases"));
    v.push(format!("{{{tag}}}:seq"));
    v
}

fn open_queue<'a, E: Execute>(conn: &'a E, name: &str) -> Result<Queue<&'a E>, Failure> {
    let keys = queue_key_names(name);
    let mut n = 0u64;
    // One EXISTS per key: a cluster would refuse a multi-key EXISTS across slots (these
    // share a tag, but stay safe).
    for k in &keys {
        n += u64::from_value(conn.exec(&cmd("EXISTS").arg(k.as_str()))?)?;
    }
    if n == 0 {
        return Err(Failure::Failed(format!(
            "queue `{name}` not found: none of its keys ({}, ...) exist. `valkit queue ls` lists the queues",
            keys[0]
        )));
    }
    Ok(Queue::new(conn, name)?)
}

pub(crate) fn queue_stats(conn: &impl Execute, name: &str) -> Result<QueueStats, Failure> {
    Ok(open_queue(conn, name)?.stats()?)
}

pub(crate) fn queue_json(name: &str, s: &QueueStats) -> serde_json::Value {
    json!({
        "queue": name,
        "waiting": {"high": s.waiting[0], "medium": s.waiting[1], "low": s.waiting[2]},
        "in_flight": s.in_flight,
        "delayed": s.delayed,
        "dead_letters": s.dead_lettered,
        "oldest_age_secs": s.oldest_age.map(|d| d.as_secs_f64()),
    })
}

pub(crate) fn print_queue(name: &str, s: &QueueStats) {
    println!(
        "queue {name}: {} waiting (high {}, medium {}, low {}), {} in flight, {} delayed, {} dead letters, oldest {}",
        s.waiting_total(),
        s.waiting[0],
        s.waiting[1],
        s.waiting[2],
        s.in_flight,
        s.delayed,
        s.dead_lettered,
        s.oldest_age.map_or("-".into(), out::dur)
    );
}

pub(crate) fn queue(g: &Global, mut a: Args) -> Result<ExitCode, Failure> {
    a.help(QUEUE_HELP)?;
    let action = a.required("queue action (ls, stats, dead, requeue, purge)")?;
    match action.as_str() {
        "ls" => {
            a.finish()?;
            let conn = g.patterns_db()?;
            let names = find_queues(&conn)?;
            if g.json {
                let v: Vec<_> = names
                    .iter()
                    .map(|n| queue_stats(&conn, n).map(|s| queue_json(n, &s)))
                    .collect::<Result<_, _>>()?;
                out::json(&json!(v));
            } else if names.is_empty() {
                println!("no queues found");
            } else {
                for n in &names {
                    print_queue(n, &queue_stats(&conn, n)?);
                }
            }
        }
        "stats" => {
            let mut names = Vec::new();
            while let Some(n) = a.positional() {
                names.push(n);
            }
            a.finish()?;
            if names.is_empty() {
                return Err(Failure::Usage(
                    "queue stats: name at least one queue".into(),
                ));
            }
            let conn = g.patterns_db()?;
            let mut all = Vec::new();
            for n in &names {
                all.push((n.clone(), queue_stats(&conn, n)?));
            }
            if g.json {
                out::json(&json!(all
                    .iter()
                    .map(|(n, s)| queue_json(n, s))
                    .collect::<Vec<_>>()));
            } else {
                for (n, s) in &all {
                    print_queue(n, s);
                }
            }
        }
        "dead" => {
            let start = a.number("--start")?.unwrap_or(0) as usize;
            let count = a.number("--count")?.unwrap_or(20) as usize;
            let name = a.required("queue name")?;
            a.finish()?;
            let conn = g.patterns_db()?;
            let q = open_queue(&conn, &name)?;
            let dead = q.dead_letters(start, count)?;
            if g.json {
                let v: Vec<_> = dead
                    .iter()
                    .map(|d| {
                        json!({
                            "id": d.id(),
                            "error": d.error(),
                            "priority": d.priority().name(),
                            "failed_at_ms": d.failed_at(),
                            "original": d.original(),
                        })
                    })
                    .collect();
                out::json(&json!(v));
            } else if dead.is_empty() {
                println!("no dead letters in `{name}`");
            } else {
                for (i, d) in dead.iter().enumerate() {
                    println!(
                        "{:>4}  {}  [{}]  {}",
                        start + i,
                        d.id().unwrap_or("(no id)"),
                        d.priority().name(),
                        d.error()
                    );
                }
            }
        }
        "requeue" => {
            let max = a.number("--max")?.unwrap_or(100) as usize;
            let id = a.value("--id")?;
            let name = a.required("queue name")?;
            a.finish()?;
            let conn = g.patterns_db()?;
            let q = open_queue(&conn, &name)?;
            let n = match &id {
                None => q.requeue_all_dead(max)?,
                Some(id) => {
                    // Search a bounded window of the list for that id.
                    let dead = q.dead_letters(0, 10_000)?;
                    let Some(d) = dead.iter().find(|d| d.id() == Some(id.as_str())) else {
                        return Err(Failure::Failed(format!(
                            "no dead letter with id `{id}` among the newest 10000 of `{name}`"
                        )));
                    };
                    usize::from(q.requeue_dead(d)?)
                }
            };
            if g.json {
                out::json(&json!({ "requeued": n }));
            } else {
                println!("requeued {n} dead letter(s) of `{name}`");
            }
        }
        "purge" => {
            let yes = a.flag("--yes");
            let name = a.required("queue name")?;
            a.finish()?;
            if !yes {
                return Err(Failure::Usage(format!(
                    "queue purge deletes every dead letter of `{name}`: add --yes to confirm"
                )));
            }
            let conn = g.patterns_db()?;
            let q = open_queue(&conn, &name)?;
            let n = q.purge_dead()?;
            if g.json {
                out::json(&json!({ "purged": n }));
            } else {
                println!("purged {n} dead letter(s) of `{name}`");
            }
        }
        other => return Err(Failure::Usage(format!("queue: unknown action `{other}`"))),
    }
    Ok(ExitCode::SUCCESS)
}

/// Queue names from a SCAN for `{*}:<suffix>` keys, on the one server or on every primary
/// of a cluster, bounded in total (10 s, 1M keys).
fn find_queues(db: &Db) -> Result<BTreeSet<String>, Failure> {
    let mut names = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = 0u64;
    let nodes: Vec<Option<String>> = match db {
        Db::One(_) => vec![None],
        Db::Cluster(c) => c.cluster_primaries().into_iter().map(Some).collect(),
    };
    for node in &nodes {
        let run = |c: &Cmd| match (db, node) {
            (Db::Cluster(client), Some(addr)) => client
                .exec_on_node(addr, c)
                .map_err(|e| Failure::Failed(format!("scanning node {addr}: {e}"))),
            _ => db.exec(c).map_err(Failure::from),
        };
        let mut cursor = "0".to_owned();
        loop {
            let (next, keys): (String, Vec<String>) = FromValue::from_value(run(&cmd("SCAN")
                .arg(cursor.as_str())
                .arg("MATCH")
                .arg("{*}:*")
                .arg("COUNT")
                .arg(1000))?)?;
            seen += keys.len() as u64;
            for k in keys {
                if let Some(rest) = k.strip_prefix('{') {
                    if let Some((name, suffix)) = rest.split_once("}:") {
                        if matches!(
                            suffix,
                            "high" | "medium" | "low" | "dead-letter" | "inflight" | "delayed"
                        ) {
                            names.insert(name.to_owned());
                        }
                    }
                }
            }
            if Instant::now() >= deadline || seen >= 1_000_000 {
                return Ok(names);
            }
            if next == "0" {
                break;
            }
            cursor = next;
        }
    }
    Ok(names)
}

const LIMIT_HELP: &str = "\
valkit limit: a rate limiter's state for one key

USAGE: valkit limit check LIMITER KEY [--algorithm SPEC] [--cost N]

Without --algorithm: the stored keys of LIMITER for KEY (LIMITER:{KEY}:log, :counter,
:fixed, :bucket, :gcra), their type, TTL and size. Read-only.
With --algorithm: the limiter's decision, as the application would get it. --cost
defaults to 0, which reports the state without counting; a cost above 0 counts.

SPEC:  sliding_log:LIMIT/WINDOW      e.g. sliding_log:100/1m
       sliding_counter:LIMIT/WINDOW  fixed_window:LIMIT/WINDOW
       token_bucket:CAPACITY:REFILL/PER   e.g. token_bucket:100:10/1s
       gcra:BURST:RATE/PERIOD        e.g. gcra:10:100/1s
";

fn parse_algorithm(spec: &str) -> Result<Algorithm, Failure> {
    let bad = || {
        Failure::Usage(format!(
            "--algorithm `{spec}`: expected e.g. sliding_log:100/1m, token_bucket:100:10/1s, gcra:10:100/1s"
        ))
    };
    let (name, rest) = spec.split_once(':').ok_or_else(bad)?;
    let (nums, per) = rest.split_once('/').ok_or_else(bad)?;
    let per = parse_duration(per).ok_or_else(bad)?;
    let nums: Vec<u64> = nums
        .split(':')
        .map(|n| n.parse().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    Ok(match (name, nums.as_slice()) {
        ("sliding_log" | "log", [l]) => Algorithm::sliding_log(*l, per),
        ("sliding_counter" | "counter", [l]) => Algorithm::sliding_counter(*l, per),
        ("fixed_window" | "fixed", [l]) => Algorithm::fixed_window(*l, per),
        ("token_bucket" | "bucket", [c, r]) => Algorithm::token_bucket(*c, *r, per),
        ("gcra", [b, r]) => Algorithm::gcra(*b, *r, per),
        _ => return Err(bad()),
    })
}

pub(crate) fn limit(g: &Global, mut a: Args) -> Result<ExitCode, Failure> {
    a.help(LIMIT_HELP)?;
    let spec = a.value("--algorithm")?;
    let cost = a.number("--cost")?.unwrap_or(0);
    let action = a.required("limit action (check)")?;
    if action != "check" {
        return Err(Failure::Usage(format!("limit: unknown action `{action}`")));
    }
    let limiter = a.required("limiter name")?;
    let key = a.required("key")?;
    a.finish()?;
    let algorithm = spec.as_deref().map(parse_algorithm).transpose()?;
    let conn = g.patterns_db()?;
    if let Some(alg) = algorithm {
        let l = Limiter::new(&limiter, alg)?;
        let d = l.check_n(&conn, &key, cost)?;
        let outcome = match d.outcome {
            Outcome::Allowed => "allowed",
            Outcome::Limited => "limited",
            Outcome::CostExceedsLimit => "cost_exceeds_limit",
            _ => "unknown",
        };
        if g.json {
            out::json(&json!({
                "limiter": limiter, "key": key, "storage_key": l.key(&key),
                "algorithm": alg.name(), "cost": cost, "outcome": outcome,
                "allowed": d.allowed, "limit": d.limit, "remaining": d.remaining,
                "reset_after_ms": d.reset_after.as_millis() as u64,
                "retry_after_ms": d.retry_after.map(|r| r.as_millis() as u64),
            }));
        } else {
            println!(
                "{limiter} for {key} ({}, key {}): {outcome}, {} of {} remaining, full again in {}{}",
                alg.name(),
                l.key(&key),
                d.remaining,
                d.limit,
                out::dur(d.reset_after),
                d.retry_after
                    .map_or(String::new(), |r| format!(", retry after {}", out::dur(r)))
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    // Read-only: which algorithm keys exist for this id.
    let mut found = Vec::new();
    for alg in ["log", "counter", "fixed", "bucket", "gcra"] {
        let k = format!("{limiter}:{{{key}}}:{alg}");
        let t: String = match conn.exec(&cmd("TYPE").arg(k.as_str()))? {
            Value::Simple(s) => s.to_string(),
            v => String::from_value(v)?,
        };
        if t == "none" {
            continue;
        }
        let pttl = i64::from_value(conn.exec(&cmd("PTTL").arg(k.as_str()))?)?;
        let size = match t.as_str() {
            "zset" => i64::from_value(conn.exec(&cmd("ZCARD").arg(k.as_str()))?)?,
            "hash" => i64::from_value(conn.exec(&cmd("HLEN").arg(k.as_str()))?)?,
            "string" => i64::from_value(conn.exec(&cmd("STRLEN").arg(k.as_str()))?)?,
            _ => 0,
        };
        let fields: Vec<(String, String)> = if t == "hash" {
            FromValue::from_value(conn.exec(&cmd("HGETALL").arg(k.as_str()))?)?
        } else {
            Vec::new()
        };
        found.push((alg, k, t, pttl, size, fields));
    }
    if g.json {
        let v: Vec<_> = found
            .iter()
            .map(|(alg, k, t, pttl, size, fields)| {
                json!({"algorithm": alg, "key": k, "type": t, "ttl_ms": pttl, "size": size,
                       "fields": fields.iter().cloned().collect::<std::collections::BTreeMap<_, _>>()})
            })
            .collect();
        out::json(&json!({"limiter": limiter, "key": key, "state": v}));
    } else if found.is_empty() {
        println!(
            "{limiter} has no state for {key} (idle, or never checked): it would be allowed in full"
        );
    } else {
        for (alg, k, t, pttl, size, fields) in &found {
            let fields: Vec<String> = fields.iter().map(|(f, v)| format!("{f}={v}")).collect();
            println!(
                "{alg}: {k} ({t}, size {size}, expires in {}){}",
                out::dur(Duration::from_millis((*pttl).max(0) as u64)),
                if fields.is_empty() {
                    String::new()
                } else {
                    format!(" {}", fields.join(" "))
                }
            );
        }
        println!("(pass --algorithm SPEC for the decision this state gives)");
    }
    Ok(ExitCode::SUCCESS)
}

const LOCK_HELP: &str = "\
valkit lock: who holds a lock

USAGE: valkit lock status NAME [--prefix PREFIX]

Reads PREFIX{NAME} (default prefix `lock:`, as valkit::lock::Locks uses): held or free,
time left on the lease, the last fencing token issued, whether someone waits. Read-only;
the holder's token is never printed.
";

pub(crate) fn lock(g: &Global, mut a: Args) -> Result<ExitCode, Failure> {
    a.help(LOCK_HELP)?;
    let prefix = a.value("--prefix")?.unwrap_or_else(|| "lock:".into());
    let action = a.required("lock action (status)")?;
    if action != "status" {
        return Err(Failure::Usage(format!("lock: unknown action `{action}`")));
    }
    let name = a.required("lock name")?;
    a.finish()?;
    if name.is_empty() {
        return Err(Failure::Usage("lock name is empty".into()));
    }
    let clean: String = name
        .chars()
        .map(|c| if c == '{' || c == '}' { '_' } else { c })
        .collect();
    let key = format!("{prefix}{{{clean}}}");
    let conn = g.patterns_db()?;
    let pttl = i64::from_value(conn.exec(&cmd("PTTL").arg(key.as_str()))?)?;
    let fence: Option<String> =
        FromValue::from_value(conn.exec(&cmd("GET").arg(format!("{key}:fence")))?)?;
    let waiters = u64::from_value(conn.exec(&cmd("EXISTS").arg(format!("{key}:waiters")))?)? > 0;
    let held = pttl != -2;
    if g.json {
        out::json(&json!({
            "lock": name, "key": key, "held": held,
            "ttl_ms": if pttl >= 0 { Some(pttl) } else { None },
            "fencing_token": fence, "waiters": waiters,
        }));
    } else if held {
        println!(
            "lock {name} ({key}) is HELD, lease {}{}; last fencing token {}",
            if pttl >= 0 {
                format!("ends in {}", out::dur(Duration::from_millis(pttl as u64)))
            } else {
                "has NO expiry (not set by valkit?)".into()
            },
            if waiters { ", someone waits" } else { "" },
            fence.as_deref().unwrap_or("-")
        );
    } else {
        println!(
            "lock {name} ({key}) is free; last fencing token {}",
            fence.as_deref().unwrap_or("- (never taken, or forgotten)")
        );
    }
    Ok(ExitCode::SUCCESS)
}
