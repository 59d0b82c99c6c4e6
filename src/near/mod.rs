//! A near cache: an in-process L1 in front of the server, kept coherent by server-assisted
//! client-side caching (`CLIENT TRACKING`).
//!
//! [`NearCache`] answers plain `GET`s from memory when it can, and sends everything else to
//! the server on its own connection. It implements [`Execute`], so it works on its own
//! (`near.get::<_, Option<String>>("k")` through [`Commands`](crate::Commands)) and in
//! front of a [`Cache`](crate::cache::Cache) (`Cache::new(Arc::new(near), "ns")`: the
//! cache's `GET`s become L1 hits).
//!
//! # Coherence
//! Every key the L1 holds was read on the near cache's data connection with tracking on,
//! so the server promises to send an invalidation for it when it changes (default mode:
//! as a RESP3 push on that connection; `REDIRECT`: as a message on a second connection
//! subscribed to `__redis__:invalidate`, which works on RESP2). A named thread
//! (`valkit-near`) reads those invalidations as they arrive and drops the keys. A read
//! that misses takes a *ticket* before asking the server and installs the answer only if
//! no invalidation (and no flush) for that key was processed meanwhile, so a read racing
//! its own invalidation never installs the stale value. A null invalidation (`FLUSHALL`,
//! `FLUSHDB`) flushes everything; so does the loss of the data or invalidation connection
//! (the server forgets what it tracked for a closed connection): the L1 is flushed and
//! switched off until tracking is set up again on new connections. What this gives: a
//! value served from the L1 is at most as old as the invalidation still in flight for it
//! (the server sends it when the write is applied; on loopback, tens of microseconds),
//! and never older than the last invalidation the near cache received. A server or proxy
//! without `CLIENT TRACKING` is detected at start: a warning is logged and every read goes
//! to the server.
//!
//! # When not to use it
//! Keys written many times per read (invalidations cost more than they save); values
//! that must be linearizable (the window above is small but not zero); huge key spaces
//! read uniformly (the L1 never hits); a proxy in front of a cluster that does not forward
//! invalidations. On a server with many near caches, tracking costs server memory
//! (`tracking-table-max-keys`); the `BCAST` mode with prefixes costs none per key but
//! sends every change under the prefixes to every client.

mod store;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};

use crate::cmd::{cmd, Cmd, Execute, FromValue, Pipeline};
use crate::config::{ConnectionConfig, Protocol};
use crate::conn::Connection;
use crate::error::{Error, ErrorKind, Result};
use crate::resp::{Bytes, Frame, Value};

pub use store::Policy;
use store::Store;

/// How long the tracking reader holds its connection per wait (the bound on how late a
/// stop is seen).
const SLICE: Duration = Duration::from_millis(25);
/// How often, in default mode, the shared connection is polled for invalidations.
const POLL: Duration = Duration::from_millis(1);
/// How often, in `REDIRECT` mode, the data connection is checked for a close by the peer.
const DATA_CHECK: Duration = Duration::from_millis(50);
/// Arguments longer than this are never taken for keys by the conservative local
/// invalidation of commands sent through the near cache.
const MAX_LOCAL_KEY: usize = 1024;

/// How the server's invalidations reach the near cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackingMode {
    /// RESP3 pushes on the data connection itself (needs RESP3).
    Default,
    /// A second connection, subscribed to `__redis__:invalidate`, receives them
    /// (`CLIENT TRACKING ON REDIRECT <id>`); works on RESP2 and RESP3.
    Redirect,
}

/// Options of a [`NearCache`].
#[derive(Debug, Clone)]
pub struct NearOptions {
    /// Most entries held (default 10,000).
    pub max_entries: usize,
    /// Most bytes held, counting keys, values and about 96 bytes per entry (default
    /// 64 MiB).
    pub max_bytes: usize,
    /// No entry is served longer than this after it was read (default 5 minutes), a
    /// safety net in case an invalidation is lost.
    pub ttl_cap: Duration,
    /// How invalidations arrive (default: [`TrackingMode::Default`] on RESP3,
    /// [`TrackingMode::Redirect`] on RESP2).
    pub mode: Option<TrackingMode>,
    /// `BCAST` mode: the server sends an invalidation for every change of a key under one
    /// of these prefixes (to every such client) and tracks nothing per key. Only keys
    /// under the prefixes are cached. Empty (the default): normal per-key tracking.
    pub bcast_prefixes: Vec<String>,
    /// Eviction policy (default [`Policy::TinyLfu`]).
    pub policy: Policy,
}

impl Default for NearOptions {
    fn default() -> Self {
        NearOptions {
            max_entries: 10_000,
            max_bytes: 64 << 20,
            ttl_cap: Duration::from_secs(300),
            mode: None,
            bcast_prefixes: Vec::new(),
            policy: Policy::TinyLfu,
        }
    }
}

/// A snapshot of a near cache's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NearStats {
    /// GETs answered from the L1.
    pub hits: u64,
    /// GETs sent to the server (including those while the L1 was off).
    pub misses: u64,
    /// Keys dropped because the server said they changed.
    pub invalidations: u64,
    /// Entries dropped to stay within the bounds.
    pub evictions: u64,
    /// Times everything was dropped (a null invalidation, a lost connection).
    pub flushes: u64,
    /// Bytes held now (keys, values, overhead).
    pub bytes: u64,
    /// Entries held now.
    pub entries: u64,
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    invalidations: AtomicU64,
    flushes: AtomicU64,
}

struct Inner {
    config: ConnectionConfig,
    opts: NearOptions,
    mode: TrackingMode,
    store: Store,
    /// The connection reads and pass-through commands use (tracking on).
    data: RwLock<Option<Arc<Connection>>>,
    /// The `REDIRECT` target (`None` in default mode).
    inv: Mutex<Option<Arc<Connection>>>,
    /// The L1 is usable: tracking is on for the current connections.
    enabled: AtomicBool,
    /// Bumped by every flush and every (re)connection: a read that began in another epoch
    /// installs nothing.
    epoch: AtomicU64,
    /// The server supports tracking (else the L1 stays off for good).
    supported: AtomicBool,
    stop: AtomicBool,
    counters: Counters,
    /// CLIENT ID of the connection the invalidations arrive on.
    tracking_id: AtomicU64,
}

/// An in-process L1 cache kept coherent by `CLIENT TRACKING` (see the [module
/// docs](self) for the coherence argument and when not to use it).
///
/// ```no_run
/// use valkit::near::{NearCache, NearOptions};
/// use valkit::{Commands, ConnectionConfig};
/// # fn main() -> valkit::Result<()> {
/// let config = ConnectionConfig::from_url("redis://127.0.0.1:6379?protocol=3")?;
/// let near = NearCache::open(&config, NearOptions::default())?;
/// near.set("greeting", "hello")?;
/// let a: Option<String> = near.get("greeting")?; // from the server, now tracked
/// let b: Option<String> = near.get("greeting")?; // from memory
/// assert_eq!(a, b);
/// println!("{:?}", near.stats());
/// # Ok(()) }
/// ```
pub struct NearCache {
    inner: Arc<Inner>,
    thread: Option<JoinHandle<()>>,
}

impl NearCache {
    /// Connect (one connection, two in `REDIRECT` mode), turn tracking on and start the
    /// invalidation reader (`valkit-near`). A server that refuses `CLIENT TRACKING` (old,
    /// a proxy, an ACL) gives a near cache with the L1 off (logged as a warning).
    ///
    /// # Errors
    /// As [`Connection::open`]; [`ErrorKind::Config`] for zero bounds or
    /// [`TrackingMode::Default`] on RESP2.
    pub fn open(config: &ConnectionConfig, opts: NearOptions) -> Result<NearCache> {
        if opts.max_entries == 0 || opts.max_bytes == 0 {
            return Err(Error::new(
                ErrorKind::Config,
                "near cache bounds must be at least 1",
            ));
        }
        let mode = match (opts.mode, config.protocol) {
            (Some(TrackingMode::Default), Protocol::Resp2) => {
                return Err(Error::new(
                    ErrorKind::Config,
                    "TrackingMode::Default needs RESP3 (invalidations are pushes): use \
                     TrackingMode::Redirect on RESP2",
                ))
            }
            (Some(m), _) => m,
            (None, Protocol::Resp3) => TrackingMode::Default,
            (None, _) => TrackingMode::Redirect,
        };
        let inner = Arc::new(Inner {
            config: config.clone(),
            store: Store::new(opts.max_entries, opts.max_bytes, opts.policy),
            opts,
            mode,
            data: RwLock::new(None),
            inv: Mutex::new(None),
            enabled: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
            supported: AtomicBool::new(true),
            stop: AtomicBool::new(false),
            counters: Counters::default(),
            tracking_id: AtomicU64::new(0),
        });
        match inner.connect() {
            Ok(()) => {}
            Err(e) if matches!(e.kind(), ErrorKind::Server(_) | ErrorKind::Unsupported) => {
                log::warn!(
                    "near cache disabled: {} does not accept CLIENT TRACKING ({e}); every read \
                     goes to the server",
                    inner.config.addr
                );
                inner.supported.store(false, Ordering::SeqCst);
                if inner.data.read().is_none() {
                    *inner.data.write() = Some(Arc::new(Connection::open(&inner.config)?));
                }
            }
            Err(e) => return Err(e),
        }
        let thread = if inner.supported.load(Ordering::SeqCst) {
            let reader = Arc::clone(&inner);
            Some(
                std::thread::Builder::new()
                    .name("valkit-near".into())
                    .spawn(move || reader.track_loop())
                    .map_err(|e| Error::io(ErrorKind::Io, "spawn the near cache reader", e))?,
            )
        } else {
            None
        };
        Ok(NearCache { inner, thread })
    }

    /// `GET key`, from the L1 when it holds the key, else from the server (and kept).
    ///
    /// # Errors
    /// As a `GET` on a connection.
    pub fn get_bytes(&self, key: &[u8]) -> Result<Option<Bytes>> {
        self.inner.get(key)
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> NearStats {
        let c = &self.inner.counters;
        let s = &self.inner.store.stats;
        NearStats {
            hits: c.hits.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
            invalidations: c.invalidations.load(Ordering::Relaxed),
            evictions: s.evictions.load(Ordering::Relaxed),
            flushes: c.flushes.load(Ordering::Relaxed),
            bytes: s.bytes.load(Ordering::Relaxed),
            entries: s.entries.load(Ordering::Relaxed),
        }
    }

    /// True while the L1 serves reads (tracking is on for the current connections).
    pub fn is_enabled(&self) -> bool {
        self.inner.enabled.load(Ordering::SeqCst)
    }

    /// The tracking mode in use.
    pub fn mode(&self) -> TrackingMode {
        self.inner.mode
    }

    /// The server's `CLIENT ID` of the connection invalidations arrive on (the data
    /// connection in default mode, the redirect target otherwise); 0 while unknown. For
    /// tests and operations (`CLIENT KILL ID`).
    pub fn tracking_client_id(&self) -> u64 {
        self.inner.tracking_id.load(Ordering::SeqCst)
    }

    /// Drop everything the L1 holds.
    pub fn flush(&self) {
        self.inner.flush();
    }
}

impl Drop for NearCache {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl std::fmt::Debug for NearCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NearCache")
            .field("addr", &self.inner.config.addr)
            .field("mode", &self.inner.mode)
            .field("enabled", &self.is_enabled())
            .field("stats", &self.stats())
            .finish()
    }
}

/// `GET <key>` exactly: the one command the L1 answers.
fn plain_get(cmd: &Cmd) -> Option<&[u8]> {
    if cmd.len() != 2 || !cmd.name().eq_ignore_ascii_case(b"GET") {
        return None;
    }
    cmd.args().nth(1)
}

impl Execute for NearCache {
    fn exec(&self, cmd: &Cmd) -> Result<Value> {
        if let Some(key) = plain_get(cmd) {
            return Ok(match self.inner.get(key)? {
                Some(b) => Value::Bulk(b),
                None => Value::Nil,
            });
        }
        let conn = self.inner.data_conn()?;
        self.inner.local_invalidate(std::iter::once(cmd));
        let r = conn.exec(cmd);
        self.inner.local_invalidate(std::iter::once(cmd));
        self.inner.after_command(&conn, r.as_ref().err());
        r
    }

    fn exec_pipeline(&self, pipeline: &Pipeline) -> Result<Vec<Value>> {
        let conn = self.inner.data_conn()?;
        self.inner.local_invalidate(pipeline.commands().iter());
        let r = conn.exec_pipeline(pipeline);
        self.inner.local_invalidate(pipeline.commands().iter());
        self.inner.after_command(&conn, r.as_ref().err());
        r
    }

    fn exec_frame(&self, cmd: &Cmd, read: &mut dyn FnMut(Frame<'_>) -> Result<()>) -> Result<()> {
        if let Some(key) = plain_get(cmd) {
            let v = match self.inner.get(key)? {
                Some(b) => Value::Bulk(b),
                None => Value::Nil,
            };
            return crate::resp::with_value_frame(&v, read);
        }
        let conn = self.inner.data_conn()?;
        self.inner.local_invalidate(std::iter::once(cmd));
        let r = conn.exec_frame(cmd, read);
        self.inner.local_invalidate(std::iter::once(cmd));
        self.inner.after_command(&conn, r.as_ref().err());
        r
    }
}

impl Inner {
    fn data_conn(&self) -> Result<Arc<Connection>> {
        self.data
            .read()
            .clone()
            .ok_or_else(|| Error::new(ErrorKind::Broken, "the near cache is reconnecting"))
    }

    fn cacheable(&self, key: &[u8]) -> bool {
        self.opts.bcast_prefixes.is_empty()
            || self
                .opts
                .bcast_prefixes
                .iter()
                .any(|p| key.starts_with(p.as_bytes()))
    }

    fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        let enabled = self.enabled.load(Ordering::Acquire) && self.cacheable(key);
        if enabled {
            if let Some(v) = self.store.get(key, Instant::now()) {
                self.counters.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(Some(v));
            }
        }
        self.counters.misses.fetch_add(1, Ordering::Relaxed);
        let conn = self.data_conn()?;
        let epoch = self.epoch.load(Ordering::SeqCst);
        let mut ticket = None;
        let read_at = Instant::now();
        // The ticket is taken while holding the connection, so tickets are ordered as the
        // GETs reach the server: only the latest read of a key may install (an earlier
        // read finishing late would otherwise install an older value).
        let r = conn.exec_marked(&cmd("GET").arg(key), || {
            if enabled {
                ticket = Some(self.store.begin(key));
            }
        });
        // Invalidations set aside while the reply was awaited apply first.
        self.drain_pushes(&conn);
        let value = match r {
            Ok(Value::Nil) => None,
            Ok(v) => Some(Bytes::from_value(v)?),
            Err(e) => {
                if let Some(t) = ticket {
                    self.store.abandon(key, t);
                }
                self.after_command(&conn, Some(&e));
                return Err(e);
            }
        };
        if let (Some(t), Some(v)) = (ticket, value.as_ref()) {
            let expires = read_at + self.opts.ttl_cap;
            self.store.finish(key, t, Some(v.clone()), expires, || {
                self.enabled.load(Ordering::SeqCst) && self.epoch.load(Ordering::SeqCst) == epoch
            });
        } else if let Some(t) = ticket {
            self.store.abandon(key, t);
        }
        Ok(value)
    }

    /// Drop, before and after a command sent through the near cache, every argument that
    /// may be a key: conservative (an over-invalidation only costs a miss), so a thread
    /// reads its own writes at once instead of after the server's invalidation arrives.
    fn local_invalidate<'a>(&self, cmds: impl Iterator<Item = &'a Cmd>) {
        if !self.enabled.load(Ordering::Relaxed) {
            return;
        }
        for c in cmds {
            for a in c.args().skip(1) {
                if a.len() <= MAX_LOCAL_KEY {
                    self.store.invalidate(a);
                }
            }
        }
    }

    fn after_command(&self, conn: &Connection, err: Option<&Error>) {
        self.drain_pushes(conn);
        if err.is_some() && conn.is_broken() {
            // The server forgets what it tracked for a closed connection. (A connection
            // already replaced by a reconnection says nothing about the current one.)
            let current = self
                .data
                .read()
                .as_ref()
                .is_some_and(|c| std::ptr::eq(Arc::as_ptr(c), conn));
            if current {
                self.lose("the data connection failed");
            }
        }
    }

    fn drain_pushes(&self, conn: &Connection) {
        for p in conn.take_pushes() {
            self.handle(p);
        }
    }

    fn flush(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.store.clear();
        self.counters.flushes.fetch_add(1, Ordering::Relaxed);
    }

    /// Tracking is lost: switch the L1 off and flush it.
    /// Only the first loss flushes: while the L1 is off nothing is served from it or
    /// installed in it, and [`Inner::connect`] moves to a new epoch before turning it on.
    fn lose(&self, why: &str) {
        if self.enabled.swap(false, Ordering::SeqCst) {
            log::debug!("near cache: {why}; flushing the L1");
            self.flush();
        }
    }

    /// Open the connection(s) and turn tracking on; on success the L1 is enabled.
    fn connect(&self) -> Result<()> {
        let data = Arc::new(Connection::open(&self.config)?);
        let mut tracking = cmd("CLIENT").arg("TRACKING").arg("ON");
        let inv = match self.mode {
            TrackingMode::Default => None,
            TrackingMode::Redirect => {
                let inv = Arc::new(Connection::open(&self.config)?);
                let id = u64::from_value(inv.exec(&cmd("CLIENT").arg("ID"))?)?;
                inv.send_unpaired(&cmd("SUBSCRIBE").arg("__redis__:invalidate"))?;
                // Invalidations reach a RESP2 target only once it is subscribed.
                let until = Instant::now() + self.config.connect_timeout;
                loop {
                    let left = until.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(Error::new(
                            ErrorKind::Timeout,
                            "no confirmation of SUBSCRIBE __redis__:invalidate",
                        ));
                    }
                    if let Some(v) = inv.next_unpaired(left)? {
                        if is_subscribe_confirmation(&v) {
                            break;
                        }
                    }
                }
                tracking.add_arg("REDIRECT");
                tracking.add_arg(id);
                Some((inv, id))
            }
        };
        if !self.opts.bcast_prefixes.is_empty() {
            tracking.add_arg("BCAST");
            for p in &self.opts.bcast_prefixes {
                tracking.add_arg("PREFIX");
                tracking.add_arg(p.as_str());
            }
        }
        let tracked = data.exec(&tracking);
        *self.data.write() = Some(Arc::clone(&data));
        tracked?;
        let id = match &inv {
            Some((_, id)) => *id,
            None => u64::from_value(data.exec(&cmd("CLIENT").arg("ID"))?)?,
        };
        *self.inv.lock() = inv.map(|(c, _)| c);
        self.tracking_id.store(id, Ordering::SeqCst);
        // Reads that began before this point used other connections: their epoch is over.
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.enabled.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Apply one frame from the tracking connection.
    fn handle(&self, v: Value) {
        let keys = match v {
            Value::Push { kind, mut data } if kind.eq_ignore_ascii_case("invalidate") => {
                if data.is_empty() {
                    return;
                }
                data.swap_remove(0)
            }
            Value::Push { kind, .. } if kind.eq_ignore_ascii_case("tracking-redir-broken") => {
                self.lose("the invalidation connection is gone");
                return;
            }
            // RESP2 (or RESP3 redirect target): a message on __redis__:invalidate.
            Value::Push { kind, mut data } if kind.eq_ignore_ascii_case("message") => {
                if data.len() < 2 {
                    return;
                }
                data.swap_remove(1)
            }
            Value::Array(mut items) if items.len() == 3 => {
                let is_msg = items
                    .first()
                    .and_then(|v| v.as_bytes())
                    .is_some_and(|k| k.eq_ignore_ascii_case(b"message"));
                if !is_msg {
                    return;
                }
                items.swap_remove(2)
            }
            _ => return,
        };
        match keys {
            Value::Nil => {
                // FLUSHALL / FLUSHDB (or tracking table overflow): everything.
                self.flush();
            }
            Value::Array(keys) | Value::Set(keys) => {
                for k in keys {
                    if let Some(k) = k.as_bytes() {
                        self.store.invalidate(k);
                        self.counters.invalidations.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            other => {
                if let Some(k) = other.as_bytes() {
                    self.store.invalidate(k);
                    self.counters.invalidations.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// The next frame from the tracking connection. Default mode shares it with reads, so
    /// it is polled (every millisecond, never waiting for a reader that holds it: such a
    /// reader sets pushes aside and applies them itself); a `REDIRECT` target is read with
    /// a blocking wait.
    fn next_invalidation(&self, c: &Connection) -> Result<Option<Value>> {
        match self.mode {
            TrackingMode::Redirect => c.next_unpaired(SLICE),
            TrackingMode::Default => {
                let v = c.try_next_unpaired()?;
                if v.is_none() {
                    std::thread::sleep(POLL);
                }
                Ok(v)
            }
        }
    }

    /// The `valkit-near` thread: read invalidations; on any loss flush, reconnect, track
    /// again.
    fn track_loop(&self) {
        let mut last_check = Instant::now();
        let mut pause = Duration::from_millis(50);
        while !self.stop.load(Ordering::SeqCst) {
            let conn = match self.mode {
                TrackingMode::Default => self.data.read().clone(),
                TrackingMode::Redirect => self.inv.lock().clone(),
            };
            let failed = match conn {
                None => Some("no tracking connection".to_owned()),
                Some(c) => match self.next_invalidation(&c) {
                    Ok(Some(v)) => {
                        self.handle(v);
                        None
                    }
                    Ok(None) => None,
                    Err(e) => Some(format!("the tracking connection failed: {e}")),
                },
            };
            // In REDIRECT mode the data connection may be closed by the peer while idle.
            let failed = failed.or_else(|| {
                if self.mode == TrackingMode::Redirect && last_check.elapsed() >= DATA_CHECK {
                    last_check = Instant::now();
                    let data = self.data.read().clone();
                    match data.map(|d| d.peer_state()) {
                        Some(crate::conn::PeerState::Closed) | None => {
                            Some("the data connection is closed".to_owned())
                        }
                        _ => None,
                    }
                } else {
                    None
                }
            });
            let Some(why) = failed else { continue };
            self.lose(&why);
            if let Some(c) = self.data.write().take() {
                c.close("near cache reconnecting");
            }
            if let Some(c) = self.inv.lock().take() {
                c.close("near cache reconnecting");
            }
            loop {
                if self.stop.load(Ordering::SeqCst) {
                    return;
                }
                match self.connect() {
                    Ok(()) => {
                        pause = Duration::from_millis(50);
                        break;
                    }
                    Err(e) => {
                        log::debug!("near cache reconnect failed: {e}");
                        let until = Instant::now() + pause;
                        while Instant::now() < until && !self.stop.load(Ordering::SeqCst) {
                            std::thread::sleep(SLICE);
                        }
                        pause = (pause * 2).min(Duration::from_secs(1));
                    }
                }
            }
        }
    }
}

fn is_subscribe_confirmation(v: &Value) -> bool {
    let first = match v {
        Value::Push { kind, .. } => return kind.eq_ignore_ascii_case("subscribe"),
        Value::Array(items) => items.first(),
        _ => None,
    };
    first
        .and_then(|f| f.as_bytes())
        .is_some_and(|k| k.eq_ignore_ascii_case(b"subscribe"))
}
