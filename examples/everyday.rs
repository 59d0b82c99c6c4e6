//! Everyday programs, the way a `redis`-crate user writes them, against a throwaway
//! server: basic types, a leaderboard, pipelines (plain and MULTI/EXEC), a WATCH
//! transaction, sessions, configuration from the environment, explicit retry, a readiness
//! probe and JSON cache-aside. Every result is checked, so this doubles as a test:
//! `cargo test` runs it (`test = true` in Cargo.toml), and so does
//!
//! ```text
//! cargo run --example everyday --features testkit,json
//! ```

use std::collections::HashMap;
use std::error::Error;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use valkit::cache::{Cache, SessionId, SessionStore};
use valkit::testkit::{FaultProxy, Server, ServerKind};
use valkit::{
    pipe, Backoff, Client, Commands, Connection, ConnectionConfig, RetryPolicy, TxOutcome,
    ZRangeOptions,
};

fn main() -> Result<(), Box<dyn Error>> {
    let server = Server::start(ServerKind::Valkey)?;
    let conn = Connection::open(&server.config())?;
    basics_leaderboard_pipelines(&conn)?;
    watch_transaction(&conn)?;

    // The rest goes through a `Client`: a pool with retry, a breaker and metrics.
    let client = Client::builder().config(server.config()).build()?;
    sessions(&client)?;
    config_from_the_environment(&server)?;
    explicit_retry(&server)?;
    readiness_probe(&server)?;
    json_cache_aside(&client)?;
    println!("all everyday programs ran");
    Ok(())
}

/// Basic types, a leaderboard and pipelines on one connection.
fn basics_leaderboard_pipelines(conn: &Connection) -> Result<(), Box<dyn Error>> {
    // Basic types: ask for the type you want.
    conn.set("visits", 41)?;
    assert_eq!(conn.incr("visits")?, 42);
    let visits: Option<i64> = conn.get("visits")?;
    let as_text: Option<String> = conn.get("visits")?;
    let missing: Option<String> = conn.get("nobody")?;
    println!("visits = {visits:?} ({as_text:?}), nobody = {missing:?}");
    assert_eq!((visits, missing), (Some(42), None));

    conn.hset("user:1", [("name", "Ada"), ("born", "1815")])?;
    let user: HashMap<String, String> = conn.hgetall("user:1")?;
    let born: Option<u32> = conn.hget("user:1", "born")?;
    println!("user:1 = {user:?}, born {born:?}");
    assert_eq!(born, Some(1815));

    // A leaderboard.
    conn.zadd("board", &[("ann", 310.0), ("bob", 250.0), ("cyd", 420.0)])?;
    conn.zincr_by("board", "bob", 100.0)?;
    let top: Vec<(String, f64)> =
        conn.zrange_withscores("board", ZRangeOptions::by_index(0, 2).rev())?;
    let bob_rank = conn.zrevrank("board", "bob")?;
    println!("top 3 = {top:?}; bob is #{}", bob_rank.map_or(0, |r| r + 1));
    assert_eq!(top[0], ("cyd".to_string(), 420.0));
    assert_eq!(bob_rank, Some(1));

    // Pipelines: one round trip, typed results; `ignore` drops a reply.
    let (name, visits, board_size): (String, i64, u64) = pipe()
        .set("greeting", "hello")
        .ignore()
        .hget("user:1", "name")
        .incr_by("visits", 8)
        .zcard("board")
        .query(conn)?;
    println!("pipeline: {name}, {visits}, {board_size}");
    assert_eq!((name.as_str(), visits, board_size), ("Ada", 50, 3));

    // The same as one MULTI/EXEC transaction, all replies in a Vec.
    let counters: Vec<i64> = pipe()
        .atomic()
        .incr("a")
        .incr_by("a", 10)
        .decr("a")
        .query(conn)?;
    println!("transaction: {counters:?}");
    assert_eq!(counters, [1, 11, 10]);

    // Per-command errors stay available.
    let results = pipe().incr("a").lpop("a").get("a").run(conn)?;
    for (i, r) in results.iter().enumerate() {
        println!("command {i}: {}", if r.is_ok() { "ok" } else { "error" });
    }
    assert!(results[1].is_err() && results[2].is_ok());
    Ok(())
}

/// An optimistic transaction: move credit between two accounts unless either changed
/// meanwhile, retrying a bounded number of times.
fn watch_transaction(conn: &Connection) -> Result<(), Box<dyn Error>> {
    // Keys touched together share a hash tag, so this also runs on a cluster.
    let (from, to) = ("{acct}:ann", "{acct}:bob");
    conn.set(from, 100)?;
    for attempt in 1..=5 {
        let outcome: TxOutcome<(i64, i64)> = conn.transaction(&[from, to], |tx| {
            let balance: Option<i64> = tx.get(from)?;
            let balance = balance.unwrap_or(0);
            if balance < 30 {
                return Err(valkit::Error::new(
                    valkit::ErrorKind::Conversion,
                    "too poor",
                ));
            }
            Ok(pipe().decr_by(from, 30).incr_by(to, 30))
        })?;
        match outcome {
            TxOutcome::Committed((ann, bob)) => {
                println!("transfer committed on attempt {attempt}: ann {ann}, bob {bob}");
                assert_eq!((ann, bob), (70, 30));
                return Ok(());
            }
            TxOutcome::Aborted => println!("attempt {attempt}: a balance changed, again"),
        }
    }
    Err("transfer kept aborting".into())
}

/// Web sessions: an opaque id in a cookie, the data server-side with an idle timeout.
fn sessions(client: &Client) -> Result<(), Box<dyn Error>> {
    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Session {
        user: String,
        cart: Vec<String>,
    }
    let store = SessionStore::new(client.clone(), "web", Duration::from_secs(30 * 60));

    // Log in: create the session, send its id as a cookie.
    let id = store.create(&Session {
        user: "ada".into(),
        cart: vec![],
    })?;
    let cookie = format!("sid={id}; HttpOnly; Secure");
    println!("Set-Cookie: {}...", &cookie[..10]);

    // Next request: parse the id from the cookie (a malformed one is a typed error, not a
    // lookup), read the session, change it.
    let sid: SessionId = cookie["sid=".len()..cookie.find(';').unwrap_or(cookie.len())].parse()?;
    let mut session: Session = store.get(&sid)?.ok_or("session expired")?;
    session.cart.push("book:42".into());
    assert!(store.update(&sid, &session)?);
    let again: Option<Session> = store.get(&sid)?;
    assert_eq!(again.as_ref().map(|s| s.cart.len()), Some(1));
    assert!("not-a-session-id".parse::<SessionId>().is_err());

    // Log out.
    assert!(store.destroy(&sid)?);
    assert_eq!(store.get::<Session>(&sid)?, None);
    println!("session: created, read, updated, destroyed");
    Ok(())
}

/// Configuration from the environment: `VALKEY_URL`, else `REDIS_URL`, else `VALKEY_HOST`,
/// `VALKEY_PORT`, `VALKEY_PASSWORD`, ... In a service this is one line,
/// `Client::from_env()?`; here the variables come from a map so that the example does not
/// change its own process environment.
fn config_from_the_environment(server: &Server) -> Result<(), Box<dyn Error>> {
    let port = server.port().to_string();
    let url = server.url();
    let environments: [Vec<(&str, &str)>; 3] = [
        vec![("VALKEY_HOST", "127.0.0.1"), ("VALKEY_PORT", &port)],
        vec![("REDIS_URL", &url)], // what Heroku-style platforms set
        vec![("VALKEY_URL", &url), ("VALKEY_PORT", "1")], // the URL wins
    ];
    for env in environments {
        let env: HashMap<&str, &str> = env.into_iter().collect();
        let config = ConnectionConfig::from_env_vars(|name| env.get(name).map(|v| v.to_string()))?;
        let client = Client::builder().config(config).build()?;
        assert!(client.ping().is_ok(), "{env:?}");
    }
    // A bad value names its variable (and never echoes a password).
    let err = ConnectionConfig::from_env_vars(|name| (name == "VALKEY_PORT").then(|| "x".into()))
        .unwrap_err();
    println!("config from the environment: ok; a bad one says: {err}");
    assert!(err.to_string().contains("VALKEY_PORT"));
    Ok(())
}

/// Explicit retry: the client retries what is safe on its own (a `RetryPolicy`); a program
/// that wants its own loop reads the error's classification, never its text.
fn explicit_retry(server: &Server) -> Result<(), Box<dyn Error>> {
    // A proxy in front of the server plays the outage: connections are refused.
    let proxy = FaultProxy::start(server.port())?;
    let client = Client::builder()
        .config(proxy.config())
        .retry(RetryPolicy::none()) // this program retries by hand
        .build()?;
    client.set("retry:stock", 10)?;
    proxy.set_down(true);
    proxy.cut();

    let mut attempt = 0;
    let stock = loop {
        attempt += 1;
        if attempt == 3 {
            proxy.set_down(false); // the server is back
        }
        match client.decr("retry:stock") {
            Ok(n) => break n,
            // Not sent at all (refused, LOADING, ...): always safe to send again.
            Err(e) if e.is_retryable() && attempt < 5 => {
                println!("attempt {attempt}: {:?} (retryable), backing off", e.kind());
                thread::sleep(Duration::from_millis(20 << attempt));
            }
            // Maybe applied (timeout, cut mid-reply): DECR is not idempotent, so a resend
            // could count twice. Give up and let the caller decide.
            Err(e) if e.is_ambiguous() => return Err(format!("unknown outcome: {e}").into()),
            Err(e) => return Err(e.into()),
        }
    };
    println!("DECR succeeded on attempt {attempt}: stock {stock}");
    assert_eq!((attempt, stock), (3, 9));

    // The same, left to the client: idempotent commands and commands that were never sent
    // are retried with exponential backoff and jitter; DECR after an ambiguous failure is not.
    let _patient = Client::builder()
        .config(proxy.config())
        .retry(RetryPolicy::new(
            4,
            Backoff::ExponentialFullJitter {
                base: Duration::from_millis(10),
                cap: Duration::from_millis(200),
            },
        ))
        .build()?;
    Ok(())
}

/// A readiness probe (`GET /readyz`): 200 when the writer answers, 503 when not; the
/// health report serializes to JSON for a `/healthz` body.
fn readiness_probe(server: &Server) -> Result<(), Box<dyn Error>> {
    fn readyz(client: &Client) -> (u16, &'static str) {
        if client.ready() {
            (200, "ready")
        } else {
            (503, "not ready")
        }
    }
    let proxy = FaultProxy::start(server.port())?;
    let mut config = proxy.config();
    config.connect_timeout = Duration::from_millis(300);
    let client = Client::builder().config(config).build()?;

    assert_eq!(readyz(&client), (200, "ready"));
    let health = client.health();
    let body = serde_json::to_string(&health)?;
    println!("GET /healthz -> {}...", &body[..body.len().min(60)]);
    assert!(health.is_ready() && body.contains("\"endpoint\":\"writer\""));

    proxy.set_down(true);
    proxy.cut();
    assert_eq!(readyz(&client), (503, "not ready"));
    proxy.set_down(false);
    assert_eq!(readyz(&client), (200, "ready"));
    println!("GET /readyz -> 200, 503 while the server was away, 200 again");
    Ok(())
}

/// Cache-aside with JSON values: read the cache, on a miss load from the database and
/// store the result with a TTL; concurrent misses share one load.
fn json_cache_aside(client: &Client) -> Result<(), Box<dyn Error>> {
    #[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
    struct Product {
        id: u64,
        name: String,
        price_cents: u64,
    }
    /// The slow source of truth.
    fn load_product(id: u64, calls: &AtomicU32) -> Result<Product, std::io::Error> {
        calls.fetch_add(1, Ordering::SeqCst);
        Ok(Product {
            id,
            name: format!("product {id}"),
            price_cents: 1999,
        })
    }

    let cache = Cache::new(client.clone(), "shop")?;
    let calls = Arc::new(AtomicU32::new(0));
    let get = |id: u64| -> Result<Product, Box<dyn Error>> {
        let calls = Arc::clone(&calls);
        let key = format!("product:{id}");
        Ok(cache.get_or_load(&key, Duration::from_secs(60), move || {
            load_product(id, &calls)
        })?)
    };
    let first = get(7)?; // miss: loaded and stored
    let second = get(7)?; // hit: from the cache
    assert_eq!(first, second);
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // The entry is plain JSON to anyone reading it with the same codec; after a write to
    // the database, drop the entry so that the next read loads the new row.
    assert!(cache.invalidate("product:7")?);
    get(7)?;
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let stats = cache.stats();
    println!(
        "cache-aside: {} loads, hit ratio {:.2}",
        stats.loads,
        stats.hit_ratio().unwrap_or(0.0)
    );
    assert_eq!(stats.hit_ratio(), Some(1.0 / 3.0));
    Ok(())
}

#[test]
fn everyday_programs_run() {
    main().unwrap();
}
