//! A tour of valkit against a real server.
//!
//! Connects to `VALKEY_URL` when it is set; otherwise starts a throwaway Valkey 9.1 on a free
//! loopback port (the test kit) and stops it at the end.
//!
//! With `VALKEY_CLUSTER_URL` set (comma-separated seed URLs), or with `--cluster` (a
//! throwaway 3 + 3 cluster from the test kit), the tour runs against a Valkey Cluster:
//! routing, pipelines over several nodes, replica reads, and the patterns on a cluster.
//!
//! Run: `scripts/tour.sh` (or `cargo run --example tour --features testkit`).

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use valkit::cache::{Cache, Lookup};
use valkit::lock::Locks;
use valkit::testkit::{Server, ServerKind};
use valkit::{
    cmd, pipe, Backoff, BreakerOptions, Client, Commands, Connection, ConnectionConfig, Endpoint,
    ErrorKind, Execute, PoolOptions, Protocol, RetryPolicy, Script, SetOptions, TxOutcome, Value,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cluster_url = std::env::var("VALKEY_CLUSTER_URL").unwrap_or_default();
    if !cluster_url.is_empty() || std::env::args().any(|a| a == "--cluster") {
        return cluster_tour(&cluster_url);
    }
    // 1. Where to connect: VALKEY_URL, or a throwaway server.
    let (config, _server) = match std::env::var("VALKEY_URL") {
        Ok(url) if !url.is_empty() => {
            let cfg = ConnectionConfig::from_url(&url)?;
            println!("== using VALKEY_URL = {cfg}");
            (cfg, None)
        }
        _ => {
            let server = Server::start(ServerKind::Valkey)?;
            println!(
                "== VALKEY_URL not set: started a throwaway {} on {} (pid {:?})",
                server.kind().name(),
                server.url(),
                server.pid()
            );
            (server.config(), Some(server))
        }
    };

    let conn = Connection::open(&config)?;
    println!(
        "connected: {} {} over {:?}",
        conn.server_name().unwrap_or("server"),
        conn.server_version().unwrap_or("?"),
        conn.protocol()
    );
    let prefix = format!("tour:{}:", std::process::id());
    let k = |name: &str| format!("{prefix}{name}");

    // 2. Typed helpers.
    println!("\n== typed commands");
    conn.set(k("greeting"), "hello")?;
    let greeting: Option<String> = conn.get(k("greeting"))?;
    println!("GET greeting        -> {greeting:?}");
    let written = conn.set_options(k("greeting"), "again", &SetOptions::default().nx())?;
    println!("SET NX on existing  -> written = {written}");
    conn.set_ex(k("session"), "alice", Duration::from_secs(30))?;
    println!("TTL session         -> {:?}", conn.ttl(k("session"))?);
    println!("INCRBY counter 5    -> {}", conn.incr_by(k("counter"), 5)?);
    conn.hset(k("user:1"), [("name", "Ada"), ("lang", "en")])?;
    let user: std::collections::HashMap<String, String> = conn.hgetall(k("user:1"))?;
    println!("HGETALL user:1      -> {user:?}");
    conn.zadd(k("board"), &[("ann", 10.0), ("bob", 30.0), ("cy", 20.0)])?;
    let board: Vec<(String, f64)> =
        conn.zrange_withscores(k("board"), valkit::ZRangeOptions::by_index(0, -1))?;
    println!("ZRANGE board WITHSCORES -> {board:?}");

    // 3. Any command through the builder.
    println!("\n== any command");
    // Typed: converted straight from the read buffer, no intermediate Value.
    let encoding: String = conn.query(&cmd("OBJECT").arg("ENCODING").arg(k("counter")))?;
    println!("OBJECT ENCODING counter -> {encoding:?}");
    // Raw: the reply as a Value, faithful to its RESP type.
    let reply = conn.exec(&cmd("OBJECT").arg("FREQ").arg(k("counter")));
    println!("OBJECT FREQ counter -> {reply:?} (an error unless an LFU policy is set)");

    // 4. Pipelines: one write, N replies, per-command errors.
    println!("\n== pipeline of 1,000 commands");
    let started = Instant::now();
    let mut p = pipe();
    for i in 0..1000 {
        p.add(cmd("SET").arg(k(&format!("p:{i}"))).arg(i));
    }
    p.add(cmd("LPUSH").arg(k("greeting")).arg("x")); // WRONGTYPE, for this command only
    let replies = p.run(&conn)?;
    let ok = replies.iter().filter(|r| r.is_ok()).count();
    let err = replies
        .last()
        .and_then(|r| r.as_ref().err())
        .map(|e| e.kind());
    println!(
        "{ok} ok, last one failed alone with {err:?}, in {:?}",
        started.elapsed()
    );

    // 5. Optimistic transaction with WATCH.
    println!("\n== WATCH / MULTI / EXEC");
    let outcome: TxOutcome<(i64,)> = conn.transaction(&[k("counter")], |tx| {
        let current: Option<i64> = tx.get(k("counter"))?;
        Ok(pipe()
            .set(k("counter"), current.unwrap_or(0) * 2)
            .ignore()
            .get(k("counter")))
    })?;
    match outcome {
        TxOutcome::Committed((now,)) => println!("committed: counter = {now}"),
        TxOutcome::Aborted => println!("aborted: someone changed the key, nothing applied"),
    }

    // 6. Lua scripts: EVALSHA, falling back to EVAL on NOSCRIPT.
    println!("\n== scripts");
    let script = Script::new("return {KEYS[1], ARGV[1], redis.call('INCR', KEYS[1])}");
    println!("sha1 {}", script.sha1_hex());
    let first: (String, String, i64) =
        script.key(k("script-counter")).arg("hi").invoke_as(&conn)?;
    conn.exec(&cmd("SCRIPT").arg("FLUSH"))?;
    let second: (String, String, i64) = script
        .key(k("script-counter"))
        .arg("again")
        .invoke_as(&conn)?;
    println!("before flush {first:?}\nafter flush  {second:?}");

    // 7. SCAN as an iterator.
    println!("\n== SCAN");
    let found = conn
        .scan(
            valkit::ScanOptions::default()
                .pattern(format!("{prefix}p:1*"))
                .count(100),
        )
        .collect::<valkit::Result<Vec<String>>>()?;
    println!("{} keys match {prefix}p:1*", found.len());

    // 8. INFO, parsed.
    let info = conn.info_sections("memory")?;
    println!(
        "\n== INFO memory: used_memory_human = {:?}",
        info.get("memory", "used_memory_human")
    );

    // 9. Errors are typed.
    println!("\n== typed errors");
    let e = conn.exec(&cmd("INCR").arg(k("greeting"))).unwrap_err();
    println!(
        "INCR on a string     -> kind {:?}, retryable {}",
        e.kind(),
        e.is_retryable()
    );
    let mut short = config.clone();
    short.read_timeout = Some(Duration::from_millis(100));
    short.protocol = Protocol::Resp2;
    let slow = Connection::open(&short)?;
    let started = Instant::now();
    let e = slow
        .exec(&cmd("BLPOP").arg(k("nothing")).arg(0.3))
        .unwrap_err();
    println!(
        "BLPOP 0.3s without the blocking hint, read timeout 100ms -> {:?} after {:?}; broken: {}",
        e.kind(),
        started.elapsed(),
        slow.is_broken()
    );
    let popped: Option<(String, String)> =
        conn.blpop(&[k("nothing")], Duration::from_millis(300))?;
    println!("typed blpop knows it blocks -> {popped:?}");
    assert_eq!(e.kind(), ErrorKind::Timeout);

    // 10. RESP3 values.
    if conn.protocol() == Protocol::Resp3 {
        let v = conn.exec(&cmd("HGETALL").arg(k("user:1")))?;
        println!(
            "\n== RESP3 HGETALL is a map: {}",
            matches!(v, Value::Map(_))
        );
    }

    // 11. The Client: a pool per endpoint, retry, circuit breaker, metrics, health.
    println!("\n== Client: pool + retry + breaker + metrics");
    let client = Client::builder()
        .config(config.clone())
        .pool(PoolOptions::default().max_size(8))
        .retry(RetryPolicy::new(
            3,
            Backoff::ExponentialFullJitter {
                base: Duration::from_millis(10),
                cap: Duration::from_millis(200),
            },
        ))
        .breaker(BreakerOptions::default().failure_threshold(5))
        .build()?;
    let started = Instant::now();
    let workers: Vec<_> = (0..8)
        .map(|t| {
            let client = client.clone(); // cheap: one Arc
            let key = k(&format!("client:{t}"));
            std::thread::spawn(move || -> valkit::Result<i64> {
                let mut last = 0;
                for _ in 0..500 {
                    last = client.incr(&key)?;
                }
                Ok(last)
            })
        })
        .collect();
    let mut total = 0;
    for w in workers {
        total += w.join().expect("worker thread")?;
    }
    let stats = client.pool_stats(Endpoint::Writer).expect("writer pool");
    println!(
        "8 threads x 500 INCR = {total} in {:?}; pool: {} open, {} idle, {} waits, {} created",
        started.elapsed(),
        stats.open,
        stats.idle,
        stats.waits,
        stats.created
    );
    // A failed command is retried only when that is safe (see docs/client.md).
    let e = client.exec(&cmd("INCR").arg(k("greeting"))).unwrap_err();
    println!(
        "INCR on a string through the client -> {:?} (not retried: a caller mistake)",
        e.kind()
    );
    let health = client.health();
    let w = &health.endpoints[0];
    println!(
        "health: ready={} ping={:?} role={:?} version={:?} hit_rate={:?} breaker={:?}",
        health.is_ready(),
        w.ping,
        w.role,
        w.version,
        w.hit_rate,
        w.breaker
    );
    let metrics = client.metrics_text();
    println!(
        "metrics (Prometheus text, {} lines), for example:",
        metrics.lines().count()
    );
    for line in metrics.lines().filter(|l| {
        l.starts_with("valkit_commands_total")
            || l.starts_with("valkit_errors_total")
            || l.starts_with("valkit_pool_created_total")
            || l.starts_with("valkit_breaker_state")
    }) {
        println!("  {line}");
    }

    // 12. Caching on top of the client: singleflight, negative caching, tags, stats.
    println!("\n== cache: 16 threads ask for one cold key whose loader takes 50 ms");
    let cache: Cache<Client> = Cache::builder(client.clone())
        .namespace(&format!("{prefix}cache"))
        .stale_for(Duration::from_secs(30))
        .build()?;
    client.add_metrics_source(cache.metrics_source());
    let loads = Arc::new(AtomicUsize::new(0));
    let callers: Vec<_> = (0..16)
        .map(|_| {
            let (cache, loads) = (cache.clone(), loads.clone());
            std::thread::spawn(move || {
                cache.get_or_load("user:1", Duration::from_secs(60), move || {
                    loads.fetch_add(1, SeqCst);
                    std::thread::sleep(Duration::from_millis(50));
                    Ok::<_, String>("Ada".to_string())
                })
            })
        })
        .collect();
    for c in callers {
        let name: String = c.join().expect("caller thread")?;
        assert_eq!(name, "Ada");
    }
    println!(
        "16 callers got the value; origin calls: {}",
        loads.load(SeqCst)
    );
    let find = || Ok::<Option<String>, String>(None);
    let first: Lookup<String> = cache.lookup_or_load("user:404", Duration::from_secs(60), find)?;
    let second: Lookup<String> = cache.lookup_or_load("user:404", Duration::from_secs(60), find)?;
    println!("user:404 -> {first:?}, then {second:?} (a tombstone: no second origin call)");
    cache
        .entry("price:1", Duration::from_secs(60))
        .tags(["prices"])
        .put(&10u32)?;
    cache
        .entry("price:2", Duration::from_secs(60))
        .tags(["prices"])
        .put(&12u32)?;
    println!(
        "invalidate tag 'prices' -> {} entries removed",
        cache.invalidate_tag("prices")?
    );
    let s = cache.stats();
    println!(
        "cache stats: hits {}, misses {}, negative hits {}, loads {}, coalesced waiters {}",
        s.hits, s.misses, s.negative_hits, s.loads, s.coalesced_waiters
    );
    for line in client.metrics_text().lines().filter(|l| {
        l.starts_with("valkit_cache_loads_total") || l.starts_with("valkit_cache_hits_total")
    }) {
        println!("  {line}");
    }
    cache.invalidate_pattern("*")?;

    // 12b. Distributed locks: a guard, a watchdog, a waiter woken by the release, fencing.
    println!("\n== locks: a holder with a watchdog, a waiter woken by the release");
    let locks = Locks::builder(client.clone())
        .prefix(&format!("{prefix}lock:"))
        .build();
    let holder = locks
        .acquire("nightly-report", Duration::from_millis(300))?
        .watchdog()?;
    println!(
        "  holder: fencing token {}, native DELIFEQ/SET IFEQ: {}",
        holder.fencing_token(),
        locks.uses_native_commands()?
    );
    let waiter = {
        let locks = locks.clone();
        std::thread::spawn(move || {
            let guard = locks.acquire_within(
                "nightly-report",
                Duration::from_secs(5),
                Duration::from_secs(5),
            );
            (Instant::now(), guard.map(|g| g.fencing_token()))
        })
    };
    // Work longer than the 300 ms lease: the watchdog renews it every 100 ms.
    std::thread::sleep(Duration::from_millis(700));
    println!(
        "  after 700 ms of work on a 300 ms lease: still owned {}, lease lost {:?}",
        holder.is_owned()?,
        holder.lease_lost()
    );
    let released_at = Instant::now();
    println!("  holder: {:?}", holder.release()?);
    let (got_at, fence) = waiter.join().expect("waiter thread");
    println!(
        "  waiter got it {:?} after the release, fencing token {} (greater)",
        got_at.saturating_duration_since(released_at),
        fence?
    );
    let busy = locks.try_acquire("nightly-report", Duration::from_secs(1))?;
    println!("  try_acquire on a free lock: {}", busy.is_some());
    // Rate limiting: GCRA, 5 requests a second with a burst of 2 more, on the server's clock.
    println!("\n== rate limiter (GCRA: burst 2, 5 per second), answers as HTTP headers");
    let limiter = valkit::limit::Limiter::new(
        &k("rl"),
        valkit::limit::Algorithm::gcra(2, 5, Duration::from_secs(1)),
    )?;
    for i in 1..=4 {
        let d = limiter.check(&client, "user-42")?;
        let headers: Vec<String> = d
            .headers()
            .iter()
            .map(|(h, v)| format!("{h}: {v}"))
            .collect();
        println!(
            "  request {i}: {} | {}",
            if d.allowed { "200" } else { "429" },
            headers.join(", ")
        );
    }
    let big = limiter.check_n(&client, "user-42", 10)?;
    println!("  cost 10 (above the limit of 3): {:?}", big.outcome);

    // 13. The breaker in action, on a second throwaway server we can kill.
    if _server.is_some() {
        println!("\n== circuit breaker: kill the server, watch it open, restart, watch it close");
        let mut victim = Server::start(ServerKind::Valkey)?;
        let client = Client::builder()
            .config(victim.config())
            .pool(PoolOptions::default().checkout_timeout(Duration::from_millis(200)))
            .retry(RetryPolicy::none())
            .breaker(
                BreakerOptions::default()
                    .failure_threshold(3)
                    .recovery_timeout(Duration::from_millis(500)),
            )
            .build()?;
        client.ping()?;
        victim.kill();
        for i in 1..=4 {
            let t = Instant::now();
            let e = client.ping().unwrap_err();
            println!(
                "  call {i}: {:?} after {:?}; breaker {:?}",
                e.kind(),
                t.elapsed(),
                client.breaker_state(Endpoint::Writer).expect("writer")
            );
        }
        victim.restart()?;
        std::thread::sleep(Duration::from_millis(550));
        client.ping()?;
        println!(
            "  restarted; after the recovery timeout one probe succeeds -> breaker {:?}",
            client.breaker_state(Endpoint::Writer).expect("writer")
        );
    }

    // 14. A reliable queue and a write-behind (valkit::queue, valkit::write_behind).
    println!("\n== queue: priorities, a failing job retried then dead-lettered, a worker pool");
    {
        use valkit::queue::{Job, Priority, Queue, QueueOptions, WorkerPool};
        use valkit::write_behind::{OriginError, Write, WriteBehind};
        let qname = format!("{prefix}jobs");
        let opts = QueueOptions::new()
            .max_attempts(2)
            .backoff(Duration::ZERO, Duration::ZERO);
        let queue = Queue::with_options(Arc::new(Connection::open(&config)?), &qname, opts)?;
        queue.push(
            Priority::Low,
            &Job::new("report", serde_json::json!({"month": 11})),
        )?;
        queue.push(
            Priority::High,
            &Job::new("email", serde_json::json!({"to": "ada@example.com"})),
        )?;
        queue.push(
            Priority::High,
            &Job::new("charge", serde_json::json!({"card": "expired"})),
        )?;
        let s = queue.stats()?;
        println!(
            "  waiting high/medium/low = {:?}, oldest {:?}",
            s.waiting, s.oldest_age
        );
        let mut workers = WorkerPool::builder(queue.clone())
            .workers(2)
            .reserve_wait(Duration::from_millis(20))
            .start(|job| {
                println!(
                    "  worker: {} {} (attempt {})",
                    job.kind(),
                    job.payload(),
                    job.attempts() + 1
                );
                if job.kind() == "charge" {
                    return Err("card expired".into());
                }
                Ok(())
            })?;
        let until = Instant::now() + Duration::from_secs(5);
        while !queue.stats()?.is_idle() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        let report = workers.shutdown(Duration::from_secs(2));
        for d in queue.dead_letters(0, 10)? {
            println!("  dead letter: id {:?}, error {:?}", d.id(), d.error());
        }
        let m = queue.metrics();
        println!(
            "  handler ok {}, errors {}; workers stopped in time {}; purged {} dead letter(s)",
            m.handler_ok,
            m.handler_err,
            report.stopped_in_time,
            queue.purge_dead()?
        );

        println!(
            "\n== write-behind: put = cache write + durable record; workers drain to the origin"
        );
        let applied = Arc::new(AtomicUsize::new(0));
        let seen = applied.clone();
        let wb = WriteBehind::builder(Arc::new(Connection::open(&config)?), &format!("{prefix}wb"))
            .origin(move |batch: &[Write]| -> Result<(), OriginError> {
                // A real origin would UPSERT ... WHERE seq < $seq here.
                seen.fetch_add(batch.len(), SeqCst);
                Ok(())
            })
            .start()?;
        for i in 0..100 {
            wb.put(
                &format!("user:{}", i % 10),
                format!("{{\"visits\":{i}}}").as_bytes(),
            )?;
        }
        println!(
            "  cache now: user:9 = {:?}",
            wb.get("user:9")?.map(String::from_utf8)
        );
        let t = Instant::now();
        wb.flush(Duration::from_secs(5))?;
        println!(
            "  flushed in {:?}: {} writes applied to the origin; backlog {:?}",
            t.elapsed(),
            applied.load(SeqCst),
            wb.stats()?.pending
        );
        wb.shutdown(Duration::from_secs(5))?;
        for tag in [qname, format!("{prefix}wb")] {
            let keys = conn
                .scan(valkit::ScanOptions::default().pattern(format!("{{{tag}}}*")))
                .collect::<valkit::Result<Vec<String>>>()?;
            if !keys.is_empty() {
                conn.del(&keys)?;
            }
        }
    }

    // 15. Pub/sub and the near cache (valkit::pubsub, valkit::near).
    println!("\n== pub/sub and a near cache");
    {
        use valkit::near::{NearCache, NearOptions};
        use valkit::pubsub::{Event, Subscriber};
        let sub = Subscriber::open(&config)?;
        let channel = k("events:user:created");
        sub.subscribe(&[&channel])?;
        sub.psubscribe(&[k("events:*")])?;
        let receivers = conn.publish(&channel, "user 42")?;
        println!("PUBLISH -> {receivers} receiver(s) (one connection, two subscriptions)");
        let until = Instant::now() + Duration::from_secs(2);
        let mut got = 0;
        while got < 2 && Instant::now() < until {
            match sub.recv(Duration::from_millis(200)) {
                Some(Event::Message(m)) => {
                    got += 1;
                    println!(
                        "  {:?} message on {} (pattern {:?}): {}",
                        m.kind,
                        m.channel_str(),
                        m.pattern
                            .as_ref()
                            .map(|p| String::from_utf8_lossy(p).into_owned()),
                        m.payload_str()
                    );
                }
                Some(other) => println!("  event {other:?}"),
                None => {}
            }
        }
        let stop = sub.stop_handle();
        let t = Instant::now();
        stop.stop();
        while sub.recv(Duration::from_secs(1)).is_some() {}
        println!("stopped the subscriber from a handle in {:?}", t.elapsed());

        let near = NearCache::open(&config, NearOptions::default())?;
        conn.set(k("near"), "v1")?;
        let a: Option<String> = near.get(k("near"))?;
        let t = Instant::now();
        let b: Option<String> = near.get(k("near"))?;
        println!(
            "near cache: miss {a:?}, then a hit {b:?} in {:?}",
            t.elapsed()
        );
        conn.set(k("near"), "v2")?; // another connection writes: the server invalidates
        let until = Instant::now() + Duration::from_secs(2);
        while near.stats().invalidations == 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(1));
        }
        let c: Option<String> = near.get(k("near"))?;
        println!(
            "after another client's SET: {c:?} ({:?} mode); {:?}",
            near.mode(),
            near.stats()
        );
    }

    let removed = conn.del(&found)?;
    let mut rest = conn
        .scan(valkit::ScanOptions::default().pattern(format!("{prefix}*")))
        .collect::<valkit::Result<Vec<String>>>()?;
    rest.sort();
    let removed_rest = conn.del(&rest)?;
    println!("\ncleaned up {} keys", removed + removed_rest);
    Ok(())
}

/// The tour on a Valkey Cluster: `VALKEY_CLUSTER_URL`, or a throwaway test-kit cluster.
fn cluster_tour(urls: &str) -> Result<(), Box<dyn std::error::Error>> {
    use valkit::limit::{Algorithm, Limiter};
    use valkit::queue::{Job, Priority, Queue};
    use valkit::testkit::Cluster;
    use valkit::ReplicaReads;

    let (seeds, _cluster) = if urls.is_empty() {
        let started = Instant::now();
        let cluster = Cluster::start(ServerKind::Valkey)?;
        println!(
            "== started a throwaway cluster (3 primaries + 3 replicas) in {:?}",
            started.elapsed()
        );
        (cluster.urls(), Some(cluster))
    } else {
        println!("== using VALKEY_CLUSTER_URL");
        (urls.split(',').map(|u| u.trim().to_owned()).collect(), None)
    };
    let client = Client::builder()
        .cluster(seeds.iter().map(String::as_str))
        .replica_reads(ReplicaReads::PreferReplica)
        .build()?;
    let prefix = format!("tour:{}:", std::process::id());
    let k = |name: &str| format!("{prefix}{name}");

    println!("\n== routing: each key goes to the primary of its slot");
    for name in ["a", "b", "c", "d"] {
        client.set(k(name), name)?;
        println!(
            "  {:<20} slot {:>5} -> {}",
            k(name),
            valkit::key_slot(k(name).as_bytes()),
            client
                .cluster_node_for(k(name).as_bytes())
                .unwrap_or_default()
        );
    }
    let e = client
        .exec(&cmd("MGET").arg(k("a")).arg(k("b")))
        .unwrap_err();
    println!("  MGET over two slots -> {:?}: {e}", e.kind());
    let tagged = [format!("{{{prefix}}}x"), format!("{{{prefix}}}y")];
    client.exec(&cmd("MSET").arg(&tagged[0]).arg(1).arg(&tagged[1]).arg(2))?;
    let both: Vec<i64> = client.query(&cmd("MGET").arg(&tagged[0]).arg(&tagged[1]))?;
    println!("  MGET with a shared hash tag -> {both:?}");

    println!("\n== a pipeline of 1,000 commands over every node");
    let started = Instant::now();
    let mut p = pipe();
    for i in 0..1000 {
        p.add(cmd("SET").arg(k(&format!("p:{i}"))).arg(i));
    }
    client.exec_pipeline(&p)?;
    println!("  1,000 SETs in {:?}", started.elapsed());
    let keys = client.scan_cluster(&format!("{prefix}p:*"))?;
    println!(
        "  scan_cluster found {} keys over every primary",
        keys.len()
    );
    let total: i64 = client.query(&cmd("DBSIZE"))?;
    println!("  DBSIZE (summed over the primaries) = {total}");

    println!("\n== patterns, unchanged, on the cluster client");
    let cache: Cache<Client> = Cache::builder(client.clone())
        .namespace(&k("cache"))
        .build()?;
    let v: String = cache.get_or_load("user:1", Duration::from_secs(60), || {
        Ok::<_, String>("Ada".to_owned())
    })?;
    println!("  cache get_or_load -> {v}");
    let locks = Locks::builder(client.clone()).prefix(&k("lock:")).build();
    let guard = locks.acquire("report", Duration::from_secs(5))?;
    println!("  lock acquired, fencing token {}", guard.fencing_token());
    guard.release()?;
    let limiter = Limiter::new(
        &k("rl"),
        Algorithm::fixed_window(3, Duration::from_secs(60)),
    )?;
    let allowed = (0..5)
        .filter(|_| {
            limiter
                .check(&client, "u1")
                .map(|d| d.allowed)
                .unwrap_or(false)
        })
        .count();
    println!("  limiter: {allowed} of 5 allowed (limit 3)");
    let queue = Queue::new(client.clone(), &k("jobs"))?;
    queue.push(
        Priority::High,
        &Job::new("email", serde_json::json!({"to": "ada"})),
    )?;
    if let Some(r) = queue.reserve(Duration::from_millis(100))? {
        println!("  queue: reserved {} {}", r.job().kind(), r.job().payload());
        queue.ack(&r)?;
    }
    println!(
        "\nslot map refreshes: {}; commands: {}",
        client.cluster_refreshes(),
        client.metrics().commands_total()
    );
    Ok(())
}
