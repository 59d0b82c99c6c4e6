//! `Health`, `PoolStats` and `CacheStats` serialize with serde (feature `json`), so a
//! `/healthz` or stats handler is one `serde_json::to_string` call; no secret serializes.
#![cfg(all(feature = "testkit", feature = "json"))]

mod support;

use std::time::Duration;

use serde_json::Value as Json;
use valkit::cache::Cache;
use valkit::{Client, Commands, Endpoint, PoolOptions, Secret};

const PW: &str = "Hunter2Secret";

fn client(cfg: valkit::ConnectionConfig) -> Client {
    Client::builder()
        .config(cfg)
        .pool(
            PoolOptions::default()
                .max_size(2)
                .checkout_timeout(Duration::from_millis(500)),
        )
        .build()
        .unwrap()
}

#[test]
fn health_pool_and_cache_stats_serialize() {
    for kind in support::kinds() {
        let client = client(support::shared(kind).config());
        let _: Option<String> = client.get(support::key("ser:missing")).unwrap();

        let health: Json = serde_json::to_value(client.health()).unwrap();
        let writer = &health["endpoints"][0];
        assert_eq!(writer["endpoint"], "writer", "{health}");
        assert_eq!(writer["breaker"], "closed", "{health}");
        assert_eq!(writer["role"], "master", "{health}");
        assert!(writer["error"].is_null(), "{health}");
        assert!(writer["ping"]["secs"].is_u64(), "{health}");
        assert!(writer["used_memory"].as_u64().unwrap() > 0, "{health}");
        assert_eq!(writer["pool"]["max_size"], 2, "{health}");

        let pool = client.pool_stats(Endpoint::Writer).unwrap();
        let json: Json = serde_json::to_value(pool).unwrap();
        assert_eq!(json["max_size"], 2);
        assert_eq!(json["checkouts"].as_u64(), Some(pool.checkouts));
        assert!(pool.checkouts > 0);
        assert!(json["wait_time_total"]["nanos"].is_u64(), "{json}");

        let cache = Cache::new(client.clone(), &support::key("ser:cache")).unwrap();
        let load = || Ok::<String, std::io::Error>("v".to_owned());
        for _ in 0..2 {
            let v: String = cache
                .get_or_load("k", Duration::from_secs(60), load)
                .unwrap();
            assert_eq!(v, "v");
        }
        let stats = cache.stats();
        let json: Json = serde_json::to_value(stats).unwrap();
        assert_eq!(json["hits"].as_u64(), Some(stats.hits), "{json}");
        assert_eq!(json["misses"].as_u64(), Some(stats.misses), "{json}");
        assert!(stats.hits >= 1 && stats.misses >= 1, "{stats:?}");
    }
}

/// A failing endpoint's health carries its error, never the password it tried.
#[test]
fn health_of_a_failing_endpoint_serializes_without_the_password() {
    let kind = support::kinds()[0];
    let mut cfg = support::shared(kind).config();
    // The shared server has no password: AUTH with one fails.
    cfg.username = Some("nobody".into());
    cfg.password = Some(Secret::new(PW));
    let client = client(cfg);
    let health = client.health();
    assert!(!health.is_ready(), "{health:?}");
    let text = serde_json::to_string(&health).unwrap();
    let json: Json = serde_json::from_str(&text).unwrap();
    assert!(json["endpoints"][0]["error"].is_string(), "{text}");
    assert!(!text.contains("Hunter2"), "{text}");
}
