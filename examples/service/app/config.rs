//! Configuration from the environment (the original service's variables, plus a few for
//! the demo origin), read through a lookup function so tests need not touch the process
//! environment.

use std::time::Duration;

use valkit::ConnectionConfig;

/// Everything the service reads at start.
#[derive(Debug, Clone)]
pub struct Config {
    /// The primary (`VALKEY_WRITER_ENDPOINT`); `None`: start a throwaway server from the
    /// test kit.
    pub writer: Option<ConnectionConfig>,
    /// A replica or reader endpoint (`VALKEY_READER_ENDPOINT`); cache reads go there.
    pub reader: Option<ConnectionConfig>,
    /// `CACHE_VER` (default 1): the cache's version segment; bump it to drop every entry.
    pub cache_ver: u32,
    /// `CACHE_NAMESPACE` (default `svc`): the hash tag of every cache key.
    pub namespace: String,
    /// `RATE_MAX_TOKENS` (default 100) requests per `RATE_WINDOW_SEC` (default 60) per user.
    pub rate_max: u64,
    /// See `rate_max`.
    pub rate_window: Duration,
    /// `RATE_LIMIT` (default `on`): `off` skips the per-user limiter (for benchmarks).
    pub rate_limit: bool,
    /// `HOST` (default `127.0.0.1`).
    pub host: String,
    /// `PORT` (default 8000; 0 picks a free port).
    pub port: u16,
    /// `ORIGIN_LATENCY_MS` (default 50): how long each origin call takes.
    pub origin_latency: Duration,
    /// `ORIGIN_USERS` (default 1000): users 1..=N exist in the origin.
    pub origin_users: u64,
    /// `HTTP_WORKERS` (default 64): threads answering requests.
    pub workers: usize,
    /// `RECOMPUTE_MS` (default 200): how long the `/recompute` job works under its lock.
    pub recompute: Duration,
    /// `WRITE_BEHIND_DELAY_MS` (default 200): how long a write may wait to be batched.
    pub write_behind_delay: Duration,
}

impl Config {
    /// Read the configuration from the process environment.
    pub fn from_env() -> Result<Config, String> {
        Config::from_vars(|name| std::env::var(name).ok())
    }

    /// Read the configuration through `get` (`None` or empty: unset).
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Config, String> {
        let var = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let num = |name: &str, default: u64, min: u64, max: u64| -> Result<u64, String> {
            match var(name) {
                None => Ok(default),
                Some(v) => match v.trim().parse::<u64>() {
                    Ok(n) if (min..=max).contains(&n) => Ok(n),
                    _ => Err(format!(
                        "{name}: expected a whole number in {min}..={max}, got '{}'",
                        v.escape_debug()
                    )),
                },
            }
        };
        let endpoint =
            |endpoint_var: &str, port_var: &str| -> Result<Option<ConnectionConfig>, String> {
                let Some(host) = var(endpoint_var) else {
                    return Ok(None);
                };
                // valkit reads VALKEY_HOST / VALKEY_PORT / VALKEY_USER / ...; map ours onto them.
                let port = var(port_var).or_else(|| var("VALKEY_WRITER_PORT"));
                let mapped = |name: &str| -> Option<String> {
                    match name {
                        "VALKEY_HOST" => Some(host.clone()),
                        "VALKEY_PORT" => port.clone(),
                        "VALKEY_USER" | "VALKEY_PASSWORD" | "VALKEY_TLS" | "VALKEY_DB" => var(name),
                        _ => None,
                    }
                };
                ConnectionConfig::from_env_vars(mapped)
                    .map(Some)
                    .map_err(|e| {
                        e.to_string()
                            .replace("VALKEY_HOST", endpoint_var)
                            .replace("VALKEY_PORT", port_var)
                    })
            };
        let writer = endpoint("VALKEY_WRITER_ENDPOINT", "VALKEY_WRITER_PORT")?;
        let reader = endpoint("VALKEY_READER_ENDPOINT", "VALKEY_READER_PORT")?;
        if writer.is_none() && reader.is_some() {
            return Err("VALKEY_READER_ENDPOINT needs VALKEY_WRITER_ENDPOINT".into());
        }
        Ok(Config {
            writer,
            reader,
            cache_ver: num("CACHE_VER", 1, 0, u64::from(u32::MAX))? as u32,
            namespace: var("CACHE_NAMESPACE").unwrap_or_else(|| "svc".into()),
            rate_max: num("RATE_MAX_TOKENS", 100, 1, 1_000_000)?,
            rate_window: Duration::from_secs(num("RATE_WINDOW_SEC", 60, 1, 86_400)?),
            rate_limit: match var("RATE_LIMIT")
                .as_deref()
                .map(str::to_ascii_lowercase)
                .as_deref()
            {
                None | Some("on" | "1" | "true" | "yes") => true,
                Some("off" | "0" | "false" | "no") => false,
                Some(other) => {
                    return Err(format!(
                        "RATE_LIMIT: expected on or off, got '{}'",
                        other.escape_debug()
                    ))
                }
            },
            host: var("HOST").unwrap_or_else(|| "127.0.0.1".into()),
            port: num("PORT", 8000, 0, 65_535)? as u16,
            origin_latency: Duration::from_millis(num("ORIGIN_LATENCY_MS", 50, 0, 60_000)?),
            origin_users: num("ORIGIN_USERS", 1000, 0, 10_000_000)?,
            workers: num("HTTP_WORKERS", 64, 1, 1024)? as usize,
            recompute: Duration::from_millis(num("RECOMPUTE_MS", 200, 0, 600_000)?),
            write_behind_delay: Duration::from_millis(num(
                "WRITE_BEHIND_DELAY_MS",
                200,
                1,
                60_000,
            )?),
        })
    }
}
