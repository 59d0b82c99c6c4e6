//! Health: ping latency, breaker state, pool stats and a few INFO fields per endpoint,
//! plus a ready / not-ready answer for readiness probes.

use std::time::{Duration, Instant};

use super::breaker::BreakerState;
use super::{Client, Target};
use crate::cmd::{cmd, Execute};
use crate::commands::Info;
use crate::pool::PoolStats;

/// The health of one endpoint.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "json", derive(serde::Serialize))]
#[non_exhaustive]
pub struct EndpointHealth {
    /// `writer` or `reader`.
    pub endpoint: &'static str,
    /// Round trip of a PING, when it succeeded.
    pub ping: Option<Duration>,
    /// Why the endpoint is unhealthy (the PING or INFO error), if it is.
    pub error: Option<String>,
    /// Circuit breaker state.
    pub breaker: BreakerState,
    /// Pool statistics.
    pub pool: PoolStats,
    /// `role` from INFO replication (`master` / `slave`).
    pub role: Option<String>,
    /// Server software and version from INFO server (e.g. `valkey 9.1.2`).
    pub version: Option<String>,
    /// `used_memory` in bytes.
    pub used_memory: Option<u64>,
    /// keyspace_hits / (keyspace_hits + keyspace_misses); `None` before any lookup.
    pub hit_rate: Option<f64>,
    /// `evicted_keys`.
    pub evicted_keys: Option<u64>,
}

impl EndpointHealth {
    /// Ready: it answered PING and its breaker is not open.
    pub fn is_ready(&self) -> bool {
        self.ping.is_some() && self.breaker != BreakerState::Open
    }
}

/// The health of every endpoint of a client.
///
/// With the `json` feature it serializes with serde (as do [`PoolStats`] and the cache
/// stats), so a `/healthz` body is `serde_json::to_string(&client.health())`. Durations
/// serialize as `{"secs", "nanos"}`, the breaker state as its [`BreakerState::name`].
#[derive(Debug, Clone)]
#[cfg_attr(feature = "json", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Health {
    /// The writer first, then the reader if configured.
    pub endpoints: Vec<EndpointHealth>,
}

impl Health {
    /// Ready when the writer is ready (a down reader degrades reads to errors but does not
    /// make the service unready; look at `endpoints` for that).
    pub fn is_ready(&self) -> bool {
        self.endpoints.first().is_some_and(EndpointHealth::is_ready)
    }
}

impl Client {
    /// Probe every endpoint: PING (timed) and INFO, on a pooled connection, bypassing retry
    /// and the breaker so that the answer reflects the server right now.
    pub fn health(&self) -> Health {
        Health {
            endpoints: self.targets().map(probe).collect(),
        }
    }

    /// A readiness answer: the writer answers PING and its breaker is not open.
    pub fn ready(&self) -> bool {
        let w = self.shared.shape.writer();
        w.breaker.state() != BreakerState::Open
            && w.pool.get().and_then(|c| c.exec(&cmd("PING"))).is_ok()
    }
}

fn probe(t: &Target) -> EndpointHealth {
    let mut h = EndpointHealth {
        endpoint: t.endpoint.name(),
        ping: None,
        error: None,
        breaker: t.breaker.state(),
        pool: t.pool.stats(),
        role: None,
        version: None,
        used_memory: None,
        hit_rate: None,
        evicted_keys: None,
    };
    let conn = match t.pool.get() {
        Ok(c) => c,
        Err(e) => {
            h.error = Some(e.to_string());
            return h;
        }
    };
    let t0 = Instant::now();
    match conn.exec(&cmd("PING")) {
        Ok(_) => h.ping = Some(t0.elapsed()),
        Err(e) => {
            h.error = Some(e.to_string());
            return h;
        }
    }
    let info = conn.exec(&cmd("INFO")).map(|v| {
        v.as_bytes()
            .map(|b| Info::parse(&String::from_utf8_lossy(b)))
    });
    match info {
        Ok(Some(info)) => fill_from_info(&mut h, &info),
        Ok(None) => h.error = Some("INFO returned no text".into()),
        Err(e) => h.error = Some(e.to_string()),
    }
    h.pool = t.pool.stats();
    h
}

fn fill_from_info(h: &mut EndpointHealth, info: &Info) {
    let num = |f: &str| info.field(f).and_then(|v| v.trim().parse::<u64>().ok());
    h.role = info.field("role").map(str::to_owned);
    let software = if info.field("valkey_version").is_some() {
        "valkey"
    } else {
        "redis"
    };
    h.version = info
        .field("valkey_version")
        .or_else(|| info.field("redis_version"))
        .map(|v| format!("{software} {v}"));
    h.used_memory = num("used_memory");
    h.evicted_keys = num("evicted_keys");
    if let (Some(hits), Some(misses)) = (num("keyspace_hits"), num("keyspace_misses")) {
        if hits + misses > 0 {
            h.hit_rate = Some(hits as f64 / (hits + misses) as f64);
        }
    }
}
