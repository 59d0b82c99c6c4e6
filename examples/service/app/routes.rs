//! The endpoints. Every handler returns a [`Reply`]; bad input is a 400 with a JSON
//! message, valkit errors map to statuses by their public classification
//! (`ErrorClass::http_status`: 503 when the server is unavailable).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::{json, Value};
use valkit::cache::{user_key, CacheError, CacheErrorKind, CacheStats, Lookup};
use valkit::lock::LockError;
use valkit::write_behind::{WriteBehindError, WriteBehindErrorKind};
use valkit::{Commands, ErrorClass};

use super::http::{param, parse_id, parse_range, split_url, truncate, Handled, Reply};
use super::origin::User;
use super::Service;

/// The tag of every entry derived from the users (the `/recompute` report).
const USERS_TAG: &str = "users";
/// Most ids in one `/bulk/users` request.
const MAX_BULK: usize = 100;

/// Route a request. Returns the route's name (for the request counters) and the reply.
pub fn handle(
    svc: &Service,
    method: &str,
    url: &str,
    user: Option<&str>,
    body: &[u8],
) -> (&'static str, Reply) {
    let (path, query) = split_url(url);
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (route, limited): (&'static str, bool) = match (method, segments.as_slice()) {
        ("GET", ["users", _]) => ("GET /users/{id}", true),
        ("POST", ["users", _]) => ("POST /users/{id}", true),
        ("GET", ["bulk", "users"]) => ("GET /bulk/users", true),
        ("POST", ["invalidate", _]) => ("POST /invalidate/{id}", true),
        ("POST", ["recompute"]) => ("POST /recompute", true),
        ("GET", ["healthz"]) => ("GET /healthz", false),
        ("GET", ["stats"]) => ("GET /stats", false),
        ("GET", ["metrics"]) => ("GET /metrics", false),
        ("GET", ["ping"]) => ("GET /ping", false),
        ("GET", ["debug", "origin"]) => ("GET /debug/origin", false),
        ("PUT", ["debug", "origin", _]) => ("PUT /debug/origin/{id}", false),
        ("POST", ["debug", "flush"]) => ("POST /debug/flush", false),
        (
            _,
            ["users", _]
            | ["bulk", "users"]
            | ["invalidate", _]
            | ["recompute"]
            | ["healthz"]
            | ["stats"]
            | ["metrics"]
            | ["ping"]
            | ["debug", "origin"]
            | ["debug", "origin", _]
            | ["debug", "flush"],
        ) => {
            return (
                "other",
                Reply::error(405, format!("method {method} not allowed on {path}")),
            )
        }
        _ => {
            return (
                "other",
                Reply::error(404, format!("no route for {}", truncate(path, 100))),
            )
        }
    };
    let mut limit_headers = Vec::new();
    if limited && svc.rate_limiting.load(Ordering::Relaxed) {
        match rate_limit(svc, user) {
            Ok(h) => limit_headers = h,
            Err(reply) => return (route, reply),
        }
    }
    let result = match route {
        "GET /users/{id}" => get_user(svc, segments[1], &query),
        "POST /users/{id}" => post_user(svc, segments[1], body),
        "GET /bulk/users" => bulk_users(svc, &query),
        "POST /invalidate/{id}" => invalidate(svc, segments[1]),
        "POST /recompute" => recompute(svc, &query),
        "GET /healthz" => Ok(healthz(svc)),
        "GET /stats" => Ok(stats(svc)),
        "GET /metrics" => Ok(metrics(svc)),
        "GET /ping" => Ok(Reply::json(200, &json!({ "ok": true }))),
        "GET /debug/origin" => debug_origin(svc, &query),
        "PUT /debug/origin/{id}" => debug_set_origin(svc, segments[2], body),
        "POST /debug/flush" => debug_flush(svc),
        _ => Err(Reply::error(404, "no route")),
    };
    let mut reply = result.unwrap_or_else(|r| r);
    for (name, value) in limit_headers {
        reply = reply.with_header(name, value);
    }
    (route, reply)
}

/// Per-user rate limit (`X-User`, else `anonymous`). Allowed: the `RateLimit-*` headers to
/// add. Refused: a 429 with them and `Retry-After`. A limiter that cannot reach the
/// server lets the request through (fail open) and counts it.
fn rate_limit(svc: &Service, user: Option<&str>) -> Result<Vec<(&'static str, String)>, Reply> {
    let user = user
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .unwrap_or("anonymous");
    if user.len() > 128 || user.chars().any(char::is_control) {
        return Err(Reply::bad_request(
            "invalid X-User header: at most 128 printable characters",
        ));
    }
    match svc.limiter.check(&svc.client, user) {
        Ok(d) if d.allowed => Ok(d.headers()),
        Ok(d) => {
            let retry = d.retry_after.map_or(1, |r| r.as_secs_f64().ceil() as u64);
            let mut reply = Reply::json(
                429,
                &json!({ "error": "rate limit exceeded", "user": user, "retry_after_s": retry }),
            );
            for (name, value) in d.headers() {
                reply = reply.with_header(name, value);
            }
            Err(reply)
        }
        Err(e) => {
            svc.limiter_failures.fetch_add(1, Ordering::Relaxed);
            log::warn!("rate limiter unavailable, letting the request through: {e}");
            Ok(Vec::new())
        }
    }
}

/// The origin said "no such user" (for strategies without negative caching).
#[derive(Debug)]
struct NotFound(u64);

impl std::fmt::Display for NotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "user {} not found", self.0)
    }
}

impl std::error::Error for NotFound {}

fn not_found(id: u64, cached: bool) -> Reply {
    Reply::json(
        404,
        &json!({ "error": format!("user {id} not found"), "cached": cached }),
    )
}

/// A valkit error as a response, by its public classification; the detail goes to the
/// log, not to the client.
fn class_reply(class: ErrorClass, what: &str, detail: &dyn std::fmt::Display) -> Reply {
    let status = class.http_status();
    log::warn!("{what}: {status}: {detail}");
    match status {
        503 => Reply::error(
            503,
            format!("{what}: cache server unavailable, try again later"),
        )
        .with_header("Retry-After", "1"),
        400 => Reply::error(400, format!("{what}: rejected by the cache server")),
        _ => Reply::error(500, format!("{what}: internal error")),
    }
}

fn cache_error(e: &CacheError, what: &str) -> Reply {
    if let Some(nf) = e.loader_error().and_then(|l| l.downcast_ref::<NotFound>()) {
        return not_found(nf.0, false);
    }
    match e.kind() {
        CacheErrorKind::Loader | CacheErrorKind::LoaderPanicked | CacheErrorKind::Origin => {
            log::warn!("{what}: origin failed: {e}");
            Reply::error(502, format!("{what}: the origin failed"))
        }
        _ => class_reply(e.class(), what, e),
    }
}

fn lock_error(e: &LockError) -> Reply {
    if e.is_not_acquired() {
        return Reply::error(409, "a recompute is already running; try again later");
    }
    match e.cause() {
        Some(cause) => class_reply(cause.class(), "recompute", e),
        None if e.is_unavailable() => class_reply(ErrorClass::Unavailable, "recompute", e),
        None => class_reply(ErrorClass::Internal, "recompute", e),
    }
}

fn write_behind_error(e: &WriteBehindError) -> Reply {
    match (e.kind(), e.server_error()) {
        (WriteBehindErrorKind::Full, _) => {
            Reply::error(503, "write-behind backlog full, try again later")
                .with_header("Retry-After", "1")
        }
        (_, Some(cause)) => class_reply(cause.class(), "write-behind", e),
        _ => class_reply(ErrorClass::Unavailable, "write-behind", e),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strategy {
    CacheAside,
    Singleflight,
    Swr,
    Negative,
}

impl Strategy {
    fn parse(s: Option<&str>) -> Result<Strategy, Reply> {
        match s {
            None | Some("singleflight") => Ok(Strategy::Singleflight),
            Some("cache-aside") => Ok(Strategy::CacheAside),
            Some("swr") => Ok(Strategy::Swr),
            Some("negative") => Ok(Strategy::Negative),
            Some(other) => Err(Reply::bad_request(format!(
                "invalid strategy '{}': expected cache-aside, singleflight, swr or negative",
                truncate(other, 40)
            ))),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Strategy::CacheAside => "cache-aside",
            Strategy::Singleflight => "singleflight",
            Strategy::Swr => "swr",
            Strategy::Negative => "negative",
        }
    }
}

/// `GET /users/{id}?strategy=&ttl=&stale_grace=`.
fn get_user(svc: &Service, id: &str, query: &[(String, String)]) -> Handled {
    let id = parse_id(id)?;
    let strategy = Strategy::parse(param(query, "strategy"))?;
    let ttl = Duration::from_secs(parse_range(query, "ttl", 300, 1, 86_400)?);
    let grace = Duration::from_secs(parse_range(query, "stale_grace", 30, 0, 3_600)?);
    let key = user_key(id);
    let started = Instant::now();
    // Set when the loader ran on this request's thread: this request went to the origin
    // (a background SWR refresh runs on a refresher thread and does not count).
    let loaded_here = Arc::new(AtomicBool::new(false));
    let (flag, caller, origin) = (
        loaded_here.clone(),
        std::thread::current().id(),
        svc.origin.clone(),
    );
    let loader = move || {
        if std::thread::current().id() == caller {
            flag.store(true, Ordering::Relaxed);
        }
        origin.get(id).ok_or(NotFound(id))
    };
    let result: Result<Lookup<User>, CacheError> = match strategy {
        Strategy::CacheAside => svc
            .plain
            .entry(&key, ttl)
            .get_or_load(loader)
            .map(Lookup::Found),
        Strategy::Singleflight => svc
            .cache
            .entry(&key, ttl)
            .get_or_load(loader)
            .map(Lookup::Found),
        Strategy::Swr => svc
            .cache
            .entry(&key, ttl)
            .stale_for(grace)
            .get_or_load(loader)
            .map(Lookup::Found),
        Strategy::Negative => svc
            .cache
            .entry(&key, ttl)
            .lookup_or_load(move || Ok::<_, NotFound>(loader().ok())),
    };
    let source = if loaded_here.load(Ordering::Relaxed) {
        "origin"
    } else {
        "cache"
    };
    let user = match result {
        Ok(Lookup::Found(user)) => user,
        Ok(Lookup::KnownMissing) => {
            return Err(not_found(id, true).with_header("X-Cache", "NEGATIVE-HIT"))
        }
        Ok(Lookup::Missing) => return Err(not_found(id, false).with_header("X-Cache", "MISS")),
        Err(e) => return Err(cache_error(&e, "GET /users")),
    };
    let body = json!({
        "user": user,
        "strategy": strategy.name(),
        "source": source,
        "ms": started.elapsed().as_secs_f64() * 1e3,
    });
    Ok(Reply::json(200, &body)
        .with_header("X-Cache", if source == "origin" { "MISS" } else { "HIT" }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserWrite {
    name: String,
    title: String,
    #[serde(default)]
    mode: Option<String>,
}

fn parse_user_write(body: &[u8]) -> Result<UserWrite, Reply> {
    let w: UserWrite = serde_json::from_slice(body).map_err(|e| {
        Reply::bad_request(format!(
            "invalid body: {e}; expected {{\"name\": string, \"title\": string, \"mode\": \"write-through\" | \"write-behind\"}}"
        ))
    })?;
    for (field, v) in [("name", &w.name), ("title", &w.title)] {
        if v.trim().is_empty() || v.chars().count() > 100 {
            return Err(Reply::bad_request(format!(
                "invalid {field}: 1 to 100 characters"
            )));
        }
    }
    Ok(w)
}

/// `POST /users/{id}` with `{"name", "title", "mode"}`.
fn post_user(svc: &Service, id: &str, body: &[u8]) -> Handled {
    let id = parse_id(id)?;
    let w = parse_user_write(body)?;
    let user = User {
        id,
        name: w.name,
        title: w.title,
        version: svc.origin.next_version(),
    };
    let key = user_key(id);
    let ttl = Duration::from_secs(300);
    let reply = match w.mode.as_deref().unwrap_or("write-through") {
        "write-through" => {
            let origin = svc.origin.clone();
            svc.cache
                .put_through(&key, ttl, &user, |u: &User| {
                    origin.put(u, false);
                    Ok::<_, NotFound>(())
                })
                .map_err(|e| cache_error(&e, "POST /users"))?;
            Reply::json(200, &json!({ "user": user, "mode": "write-through" }))
        }
        "write-behind" => {
            let bytes = serde_json::to_vec(&user).map_err(|e| Reply::error(500, e.to_string()))?;
            let seq = svc
                .write_behind
                .put(&key, &bytes)
                .map_err(|e| write_behind_error(&e))?;
            // Readers see the new value at once; the origin gets it when the batch is applied.
            if let Err(e) = svc.cache.put(&key, ttl, &user) {
                log::warn!("write-behind of {key}: accepted, cache update failed: {e}");
                let _ = svc.cache.invalidate(&key);
            }
            Reply::json(
                202,
                &json!({ "user": user, "mode": "write-behind", "seq": seq }),
            )
        }
        other => {
            return Err(Reply::bad_request(format!(
                "invalid mode '{}': expected write-through or write-behind",
                truncate(other, 40)
            )))
        }
    };
    // Aggregates over the users are now out of date.
    if let Err(e) = svc.cache.invalidate_tag(USERS_TAG) {
        log::warn!("invalidate {USERS_TAG}: {e}");
    }
    Ok(reply)
}

/// `GET /bulk/users?ids=1,2,3`: one `MGET` for the hits, one origin call for the misses.
fn bulk_users(svc: &Service, query: &[(String, String)]) -> Handled {
    let raw = param(query, "ids")
        .ok_or_else(|| Reply::bad_request("missing ids: /bulk/users?ids=1,2,3"))?;
    let ids = raw
        .split(',')
        .map(|s| parse_id(s.trim()))
        .collect::<Result<Vec<u64>, Reply>>()?;
    if ids.is_empty() || ids.len() > MAX_BULK {
        return Err(Reply::bad_request(format!(
            "invalid ids: 1 to {MAX_BULK} ids"
        )));
    }
    let ttl = Duration::from_secs(parse_range(query, "ttl", 300, 1, 86_400)?);
    let keys: Vec<String> = ids.iter().map(|id| user_key(*id)).collect();
    let mut loaded = 0usize;
    let origin = &svc.origin;
    let users = svc
        .cache
        .get_many(&keys, ttl, |missing: &[String]| {
            let ids: Vec<u64> = missing
                .iter()
                .filter_map(|k| k.strip_prefix("user:").and_then(|n| n.parse().ok()))
                .collect();
            let found = origin.get_many(&ids);
            loaded = ids.len();
            Ok::<_, NotFound>(
                found
                    .into_iter()
                    .map(|u| (user_key(u.id), u))
                    .collect::<HashMap<_, _>>(),
            )
        })
        .map_err(|e| cache_error(&e, "GET /bulk/users"))?;
    let missing: Vec<u64> = ids
        .iter()
        .zip(&users)
        .filter(|(_, u)| u.is_none())
        .map(|(id, _)| *id)
        .collect();
    Ok(Reply::json(
        200,
        &json!({ "users": users, "missing": missing, "loaded_from_origin": loaded }),
    ))
}

/// `POST /invalidate/{id}`: the user's entry and everything derived from the users.
fn invalidate(svc: &Service, id: &str) -> Handled {
    let id = parse_id(id)?;
    let key = user_key(id);
    let deleted = svc
        .cache
        .invalidate(&key)
        .map_err(|e| cache_error(&e, "POST /invalidate"))?;
    let dependents = svc
        .cache
        .invalidate_tag(USERS_TAG)
        .map_err(|e| cache_error(&e, "POST /invalidate"))?;
    Ok(Reply::json(
        200,
        &json!({ "id": id, "deleted": deleted, "dependents_deleted": dependents }),
    ))
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `POST /recompute?wait_ms=`: rebuild the users report under a distributed lock, so one
/// recompute runs at a time across every instance of the service.
fn recompute(svc: &Service, query: &[(String, String)]) -> Handled {
    let wait = Duration::from_millis(parse_range(query, "wait_ms", 10_000, 0, 60_000)?);
    let name = format!("{}:recompute", svc.config.namespace);
    let waited = Instant::now();
    let guard = svc
        .locks
        .acquire_within(&name, Duration::from_secs(30) + svc.config.recompute, wait)
        .map_err(|e| lock_error(&e))?;
    let waited_ms = waited.elapsed().as_millis() as u64;
    let started_ms = unix_ms();
    // A check the lock cannot fake: how many recomputes are running right now, everywhere.
    let active = format!("{{{}}}:recompute:active", svc.config.namespace);
    let running: i64 = svc
        .client
        .incr(&active)
        .map_err(|e| class_reply(e.class(), "recompute", &e))?;
    let users = svc.origin.scan();
    std::thread::sleep(svc.config.recompute);
    let mut by_title: HashMap<String, u64> = HashMap::new();
    for u in &users {
        *by_title.entry(u.title.clone()).or_insert(0) += 1;
    }
    let report = json!({ "users": users.len(), "by_title": by_title, "computed_at_ms": unix_ms() });
    let stored = svc
        .cache
        .entry("report:users", Duration::from_secs(3600))
        .tags([USERS_TAG])
        .put(&report);
    let _ = svc.client.decr(&active);
    let finished_ms = unix_ms();
    let fencing_token = guard.fencing_token();
    if let Err(e) = guard.release() {
        log::warn!("recompute: release: {e}");
    }
    stored.map_err(|e| cache_error(&e, "recompute"))?;
    Ok(Reply::json(
        200,
        &json!({
            "report": report,
            "started_ms": started_ms,
            "finished_ms": finished_ms,
            "waited_ms": waited_ms,
            "running_at_start": running,
            "fencing_token": fencing_token,
            "pid": std::process::id(),
        }),
    ))
}

/// `GET /healthz`: 200 when the writer answers PING and its breaker is not open, else 503.
fn healthz(svc: &Service) -> Reply {
    let health = svc.client.health();
    let ready = health.is_ready();
    let endpoints: Vec<Value> = health
        .endpoints
        .iter()
        .map(|e| {
            json!({
                "endpoint": e.endpoint,
                "ready": e.is_ready(),
                "ping_ms": e.ping.map(|p| p.as_secs_f64() * 1e3),
                "breaker": e.breaker.name(),
                "role": e.role,
                "version": e.version,
                "error": e.error,
            })
        })
        .collect();
    let status = if ready { 200 } else { 503 };
    Reply::json(status, &json!({ "ready": ready, "endpoints": endpoints }))
}

fn add(a: CacheStats, b: CacheStats) -> CacheStats {
    let mut s = a;
    s.hits += b.hits;
    s.misses += b.misses;
    s.stale_hits += b.stale_hits;
    s.negative_hits += b.negative_hits;
    s.loads += b.loads;
    s.load_errors += b.load_errors;
    s.load_time += b.load_time;
    s.coalesced_waiters += b.coalesced_waiters;
    s.early_refreshes += b.early_refreshes;
    s.refreshes += b.refreshes;
    s.refresh_errors += b.refresh_errors;
    s.refreshes_dropped += b.refreshes_dropped;
    s.degraded += b.degraded;
    s.store_errors += b.store_errors;
    s
}

/// `GET /stats`: cache statistics (both caches and together), origin calls, rate limits.
fn stats(svc: &Service) -> Reply {
    let (shared, plain) = (svc.cache.stats(), svc.plain.stats());
    let total = add(shared, plain);
    let limiter = svc.limiter.stats();
    let wb = svc.write_behind.stats().ok().map(|s| {
        json!({ "pending": s.pending, "dead_lettered": s.dead_lettered, "last_seq": s.last_seq })
    });
    let requests: Vec<Value> = svc
        .requests
        .lock()
        .iter()
        .map(|((route, status), n)| json!({ "route": route, "status": status, "count": n }))
        .collect();
    Reply::json(
        200,
        &json!({
            "hit_ratio": total.hit_ratio(),
            "cache": total,
            "by_cache": { "singleflight": shared, "cache-aside": plain },
            "origin": svc.origin.counts(),
            "rate_limit": {
                "allowed": limiter.allowed,
                "limited": limiter.limited,
                "errors": limiter.errors,
                "failed_open": svc.limiter_failures.load(Ordering::Relaxed),
            },
            "write_behind": wb,
            "requests": requests,
            "uptime_s": svc.started.elapsed().as_secs(),
        }),
    )
}

/// `GET /metrics`: the client's metrics (with the cache and limiter counters appended),
/// plus the service's own request and origin counters, in the Prometheus text format.
fn metrics(svc: &Service) -> Reply {
    let mut out = svc.client.metrics_text();
    // The shared cache registered its counters with the client; the cache-aside one
    // (same namespace) is reported under its own metric names to keep series unique.
    let plain = svc.plain.stats();
    out.push_str("# HELP service_cache_aside_total Lookups of the cache-aside (no singleflight) cache, by result.\n");
    out.push_str("# TYPE service_cache_aside_total counter\n");
    for (result, n) in [
        ("hit", plain.hits),
        ("miss", plain.misses),
        ("load", plain.loads),
        ("degraded", plain.degraded),
    ] {
        out.push_str(&format!(
            "service_cache_aside_total{{result=\"{result}\"}} {n}\n"
        ));
    }
    out.push_str(
        "# HELP service_http_requests_total HTTP requests answered, by route and status.\n",
    );
    out.push_str("# TYPE service_http_requests_total counter\n");
    for ((route, status), n) in svc.requests.lock().iter() {
        out.push_str(&format!(
            "service_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}\n"
        ));
    }
    let o = svc.origin.counts();
    out.push_str("# HELP service_origin_calls_total Calls to the origin database, by kind.\n");
    out.push_str("# TYPE service_origin_calls_total counter\n");
    for (kind, n) in [
        ("read", o.reads),
        ("batch_read", o.batch_reads),
        ("write", o.writes),
        ("scan", o.scans),
    ] {
        out.push_str(&format!(
            "service_origin_calls_total{{kind=\"{kind}\"}} {n}\n"
        ));
    }
    Reply::text(200, "text/plain; version=0.0.4", out)
}

/// `GET /debug/origin?id=N`: origin call counters (and the stored row and its reads).
fn debug_origin(svc: &Service, query: &[(String, String)]) -> Handled {
    let mut body = json!({ "counts": svc.origin.counts() });
    if let Some(id) = param(query, "id") {
        let id = parse_id(id)?;
        body["id"] = json!(id);
        body["reads_of_id"] = json!(svc.origin.reads_of(id));
        body["user"] = json!(svc.origin.peek(id));
    }
    Ok(Reply::json(200, &body))
}

/// `PUT /debug/origin/{id}` with `{"name", "title"}`: change the origin behind the cache's
/// back (to watch stale values being served and refreshed).
fn debug_set_origin(svc: &Service, id: &str, body: &[u8]) -> Handled {
    let id = parse_id(id)?;
    let w = parse_user_write(body)?;
    let user = User {
        id,
        name: w.name,
        title: w.title,
        version: svc.origin.next_version(),
    };
    svc.origin.put(&user, false);
    Ok(Reply::json(200, &json!({ "user": user })))
}

/// `POST /debug/flush`: wait until every accepted write-behind write reached the origin.
fn debug_flush(svc: &Service) -> Handled {
    svc.write_behind
        .flush(Duration::from_secs(10))
        .map_err(|e| write_behind_error(&e))?;
    Ok(Reply::json(
        200,
        &json!({ "flushed": true, "origin": svc.origin.counts() }),
    ))
}
