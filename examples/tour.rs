//! A tour of valkit against a real server.
//!
//! Connects to `VALKEY_URL` when it is set; otherwise starts a throwaway Valkey 9.1 on a free
//! loopback port (the test kit) and stops it at the end.
//!
//! Run: `scripts/tour.sh` (or `cargo run --example tour --features testkit`).

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use valkit::cache::{Cache, Lookup};
use valkit::testkit::{Server, ServerKind};
use valkit::{
    cmd, pipe, Backoff, BreakerOptions, Client, Commands, Connection, ConnectionConfig, Endpoint,
    ErrorKind, Execute, PoolOptions, Protocol, RetryPolicy, Script, SetOptions, TxOutcome, Value,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
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
    let outcome = conn.transaction(&[k("counter")], |tx| {
        let current = tx.get_string(k("counter"))?.unwrap_or_default();
        let next: i64 = current.parse().unwrap_or(0) * 2;
        Ok(pipe().cmd(cmd("SET").arg(k("counter")).arg(next)))
    })?;
    match outcome {
        TxOutcome::Committed(replies) => println!("committed: {replies:?}"),
        TxOutcome::Aborted => println!("aborted: someone changed the key, nothing applied"),
        _ => {}
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

    let removed = conn.del(&found)?;
    let mut rest = conn
        .scan(valkit::ScanOptions::default().pattern(format!("{prefix}*")))
        .collect::<valkit::Result<Vec<String>>>()?;
    rest.sort();
    let removed_rest = conn.del(&rest)?;
    println!("\ncleaned up {} keys", removed + removed_rest);
    Ok(())
}
