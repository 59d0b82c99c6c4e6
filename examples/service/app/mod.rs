//! The caching-patterns service: wiring (client, caches, limiter, locks, write-behind,
//! origin) and the HTTP server loop. The handlers are in `routes.rs`.
//!
//! `tests/service.rs` includes this module (`#[path]`) to run the service in-process and
//! in child processes; `main.rs` runs it from the environment.

pub mod config;
pub mod http;
pub mod origin;
pub mod routes;

use std::collections::BTreeMap;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use valkit::cache::Cache;
use valkit::limit::{Algorithm, Limiter};
use valkit::lock::Locks;
use valkit::testkit::{Server, ServerKind};
use valkit::write_behind::{OriginError, Write, WriteBehind};
use valkit::{BreakerOptions, Client, PoolOptions};

pub use config::Config;
use http::Reply;
use origin::{Origin, User};

/// Largest request body read (larger ones are refused with 413).
pub const MAX_BODY: usize = 64 * 1024;

/// The service's state, shared by the HTTP worker threads.
pub struct Service {
    pub config: Config,
    pub client: Client,
    /// Singleflight on (strategies `singleflight`, `swr`, `negative`, bulk, write-through).
    pub cache: Cache<Client>,
    /// Singleflight off (strategy `cache-aside`: the plain pattern, stampedes included).
    pub plain: Cache<Client>,
    pub limiter: Limiter,
    /// Whether requests are rate limited (`RATE_LIMIT`; switchable at run time).
    pub rate_limiting: AtomicBool,
    pub locks: Locks<Client>,
    pub write_behind: WriteBehind<Client>,
    pub origin: Arc<Origin>,
    /// Requests answered, by route and status.
    pub requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    /// Rate-limit checks that failed (the request was let through: fail open).
    pub limiter_failures: std::sync::atomic::AtomicU64,
    pub started: Instant,
    /// The throwaway server when no endpoint was configured (dropped last).
    pub throwaway: Option<Server>,
}

impl Service {
    /// Connect (or start a throwaway server) and build every pattern.
    pub fn new(config: Config) -> Result<Service, String> {
        let (writer, reader, throwaway) = match &config.writer {
            Some(w) => (w.clone(), config.reader.clone(), None),
            None => {
                let server = Server::start(ServerKind::from_env()).map_err(|e| {
                    format!("no VALKEY_WRITER_ENDPOINT and no throwaway server: {e}")
                })?;
                (server.config(), None, Some(server))
            }
        };
        let mut builder = Client::builder()
            .config(writer)
            .pool(
                PoolOptions::default()
                    .max_size(config.workers + 8)
                    .checkout_timeout(Duration::from_secs(2))
                    .connect_on_build(false),
            )
            // Short open periods, so the service notices a recovered server within seconds.
            .breaker(
                BreakerOptions::default()
                    .failure_threshold(5)
                    .recovery_timeout(Duration::from_secs(5)),
            );
        if let Some(r) = reader {
            builder = builder.reader_config(r);
        }
        let client = builder.build().map_err(|e| format!("client: {e}"))?;
        // Cache reads go to the reader while it is in sync with the primary (link up, no
        // initial sync), to the writer otherwise.
        let read_from = if client.has_reader() {
            valkit::ReadFrom::ReaderWhenInSync
        } else {
            valkit::ReadFrom::Writer
        };
        let cache = Cache::builder(client.clone())
            .namespace(&config.namespace)
            .version(config.cache_ver)
            .read_from(read_from)
            .build()
            .map_err(|e| format!("cache: {e}"))?;
        let plain = Cache::builder(client.clone())
            .namespace(&config.namespace)
            .version(config.cache_ver)
            .read_from(read_from)
            .singleflight(false)
            .build()
            .map_err(|e| format!("cache: {e}"))?;
        // A sliding log: exactly `rate_max` requests in any window, per user.
        let limiter = Limiter::new(
            &format!("{}:rl", config.namespace),
            Algorithm::sliding_log(config.rate_max, config.rate_window),
        )
        .map_err(|e| format!("limiter: {e}"))?;
        let locks = Locks::new(client.clone());
        let origin = Arc::new(Origin::new(config.origin_users, config.origin_latency));
        let wb_origin = origin.clone();
        let write_behind =
            WriteBehind::builder(client.clone(), &format!("{}:wb", config.namespace))
                .origin(move |batch: &[Write]| -> Result<(), OriginError> {
                    let mut users = Vec::with_capacity(batch.len());
                    for w in batch {
                        let user: User = serde_json::from_slice(w.value())
                            .map_err(|e| OriginError::permanent(format!("{}: {e}", w.key())))?;
                        users.push(user);
                    }
                    wb_origin.put_batch(&users);
                    Ok(())
                })
                .max_delay(config.write_behind_delay)
                .cache_ttl(Some(Duration::from_secs(3600)))
                .thread_name("svc-wb")
                .start()
                .map_err(|e| format!("write-behind: {e}"))?;
        client.add_metrics_source(cache.metrics_source());
        client.add_metrics_source(limiter.metrics_source());
        Ok(Service {
            rate_limiting: AtomicBool::new(config.rate_limit),
            config,
            client,
            cache,
            plain,
            limiter,
            locks,
            write_behind,
            origin,
            requests: Mutex::new(BTreeMap::new()),
            limiter_failures: Default::default(),
            started: Instant::now(),
            throwaway,
        })
    }

    /// Start listening on `HOST:PORT` with `config.workers` threads.
    pub fn start(config: Config) -> Result<Running, String> {
        let service = Arc::new(Service::new(config)?);
        let addr = format!("{}:{}", service.config.host, service.config.port);
        let http =
            Arc::new(tiny_http::Server::http(&addr).map_err(|e| format!("listen on {addr}: {e}"))?);
        let local = http
            .server_addr()
            .to_ip()
            .ok_or_else(|| format!("listen on {addr}: not an IP address"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let mut workers = Vec::with_capacity(service.config.workers);
        for n in 0..service.config.workers {
            let (service, http, flag) = (service.clone(), http.clone(), stop.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("svc-http-{n}"))
                .spawn(move || serve(&service, &http, &flag));
            match spawned {
                Ok(h) => workers.push(h),
                Err(e) => {
                    stop.store(true, Ordering::Relaxed);
                    for h in workers {
                        let _ = h.join();
                    }
                    return Err(format!("spawn an HTTP worker: {e}"));
                }
            }
        }
        Ok(Running {
            service,
            addr: local,
            stop,
            workers,
        })
    }
}

/// A running service: stop it with [`Running::shutdown`].
pub struct Running {
    pub service: Arc<Service>,
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
}

impl Running {
    /// `http://host:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop taking requests, finish the ones in progress, flush the write-behind (at most
    /// `deadline`), stop the background threads. Returns the writes still pending.
    pub fn shutdown(mut self, deadline: Duration) -> Result<u64, String> {
        self.stop.store(true, Ordering::Relaxed);
        for h in self.workers.drain(..) {
            let _ = h.join();
        }
        let report = self
            .service
            .write_behind
            .shutdown(deadline)
            .map_err(|e| format!("write-behind shutdown: {e}"))?;
        self.service.cache.shutdown();
        self.service.plain.shutdown();
        Ok(report.pending)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for h in self.workers.drain(..) {
            let _ = h.join();
        }
    }
}

/// One HTTP worker: take requests until told to stop.
fn serve(service: &Service, http: &tiny_http::Server, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let mut request = match http.recv_timeout(Duration::from_millis(100)) {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(_) => break,
        };
        let method = request.method().as_str().to_ascii_uppercase();
        let url = request.url().to_string();
        let user = request
            .headers()
            .iter()
            .find(|h| h.field.equiv("X-User"))
            .map(|h| h.value.as_str().to_string());
        let mut body = Vec::new();
        let too_large = request
            .as_reader()
            .take(MAX_BODY as u64 + 1)
            .read_to_end(&mut body)
            .map(|n| n > MAX_BODY)
            .unwrap_or(true);
        let (route, reply) = if too_large {
            (
                "other",
                Reply::error(413, format!("body larger than {MAX_BODY} bytes")),
            )
        } else {
            routes::handle(service, &method, &url, user.as_deref(), &body)
        };
        *service
            .requests
            .lock()
            .entry((route, reply.status))
            .or_insert(0) += 1;
        let mut response = tiny_http::Response::from_data(reply.body)
            .with_status_code(reply.status)
            .with_header(header("Content-Type", reply.content_type));
        for (name, value) in &reply.headers {
            response.add_header(header(name, value));
        }
        if let Err(e) = request.respond(response) {
            log::debug!("respond to {method} {url}: {e}");
        }
    }
}

fn header(name: &str, value: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).unwrap_or_else(|()| {
        tiny_http::Header::from_bytes(&b"X-Invalid-Header"[..], &b"1"[..]).expect("valid")
    })
}
