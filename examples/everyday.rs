//! Everyday programs, the way a `redis`-crate user writes them: basic types, a
//! leaderboard, and pipelines (plain and MULTI/EXEC), against a throwaway server. Every
//! result is checked, so this doubles as a smoke test.
//!
//! ```text
//! cargo run --example everyday --features testkit
//! ```

use std::collections::HashMap;

use valkit::testkit::{Server, ServerKind};
use valkit::{pipe, Commands, Connection, ZRangeOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = Server::start(ServerKind::Valkey)?;
    let conn = Connection::open(&server.config())?;

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
        .query(&conn)?;
    println!("pipeline: {name}, {visits}, {board_size}");
    assert_eq!((name.as_str(), visits, board_size), ("Ada", 50, 3));

    // The same as one MULTI/EXEC transaction, all replies in a Vec.
    let counters: Vec<i64> = pipe()
        .atomic()
        .incr("a")
        .incr_by("a", 10)
        .decr("a")
        .query(&conn)?;
    println!("transaction: {counters:?}");
    assert_eq!(counters, [1, 11, 10]);

    // Per-command errors stay available.
    let results = pipe().incr("a").lpop("a").get("a").run(&conn)?;
    for (i, r) in results.iter().enumerate() {
        println!("command {i}: {}", if r.is_ok() { "ok" } else { "error" });
    }
    assert!(results[1].is_err() && results[2].is_ok());
    Ok(())
}
