//! The subscriber: one connection of its own, a named reader thread, resubscription after
//! a reconnect.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, SendTimeoutError, Sender};
use parking_lot::{Condvar, Mutex};

use super::message::{classify, Event, Incoming, Message, SubKind};
use crate::cmd::{cmd, Cmd, Execute, FromValue, Pipeline};
use crate::config::{ConnectionConfig, Protocol};
use crate::conn::Connection;
use crate::error::{Error, ErrorKind, Result, ServerError};
use crate::resp::{Frame, Value};

/// A shard channel the server unsubscribed this connection from without being asked (its
/// slot moved to another node), reported to the [`ShardSubscriber`](super::ShardSubscriber)
/// that owns this subscriber.
pub(crate) struct Lost {
    pub(crate) channel: Vec<u8>,
    pub(crate) at: Instant,
}

/// What ties a subscriber into a [`ShardSubscriber`](super::ShardSubscriber): the shared
/// event channel, the group's stop flag, and where lost shard channels are reported.
pub(crate) struct GroupLink {
    pub(crate) tx: Sender<Event>,
    pub(crate) rx: Receiver<Event>,
    pub(crate) stop: Arc<AtomicBool>,
    pub(crate) lost: Sender<Lost>,
}

/// How long the reader holds the connection per wait: the bound on how late a stop is
/// seen and how long a thread calling `subscribe` waits for the socket.
const SLICE: Duration = Duration::from_millis(25);
/// The wait slice for a while after another thread used the connection (a command on
/// RESP3, a subscription change), so that the next such call waits at most this long.
const BUSY_SLICE: Duration = Duration::from_millis(1);
/// How long "a while" is.
const BUSY_FOR: Duration = Duration::from_millis(500);

/// Options of a [`Subscriber`].
#[derive(Debug, Clone)]
pub struct SubscriberOptions {
    /// Events buffered between the reader thread and the consumer (default 10,000). When
    /// full, the reader waits (and stops reading the socket): a consumer that stays too
    /// slow is eventually disconnected by the server's `client-output-buffer-limit pubsub`,
    /// which the subscriber reports as [`Event::Disconnected`] and recovers from.
    pub capacity: usize,
    /// Send a `PING` after this long without traffic, to find a dead peer (default 15 s).
    pub ping_after: Duration,
    /// How long a `PING` or a subscription may wait for its answer (default: the
    /// connection's read timeout, or 5 s without one).
    pub reply_timeout: Option<Duration>,
    /// Reconnect after a lost connection (default on). Off: the subscriber stops, and
    /// [`Subscriber::recv`] returns `None` once the events before the loss are taken.
    pub reconnect: bool,
    /// Longest pause between two reconnection attempts (default 1 s; the first is 50 ms,
    /// doubling).
    pub max_backoff: Duration,
}

impl Default for SubscriberOptions {
    fn default() -> Self {
        SubscriberOptions {
            capacity: 10_000,
            ping_after: Duration::from_secs(15),
            reply_timeout: None,
            reconnect: true,
            max_backoff: Duration::from_secs(1),
        }
    }
}

#[derive(Default, Clone)]
struct Subs {
    channels: BTreeSet<Vec<u8>>,
    patterns: BTreeSet<Vec<u8>>,
    shards: BTreeSet<Vec<u8>>,
}

impl Subs {
    fn set(&mut self, kind: SubKind) -> &mut BTreeSet<Vec<u8>> {
        match kind {
            SubKind::Channel => &mut self.channels,
            SubKind::Pattern => &mut self.patterns,
            SubKind::Shard => &mut self.shards,
        }
    }

    fn len(&self) -> usize {
        self.channels.len() + self.patterns.len() + self.shards.len()
    }
}

struct Shared {
    config: ConnectionConfig,
    opts: SubscriberOptions,
    /// The connection in use; `None` while reconnecting.
    conn: Mutex<Option<Arc<Connection>>>,
    /// What the caller asked for (resubscribed after a reconnect).
    wanted: Mutex<Subs>,
    /// What the server confirmed on the current connection.
    confirmed: Mutex<Subs>,
    confirmed_cv: Condvar,
    /// The last error reply read (a refused subscription, e.g. `MOVED`), taken by the
    /// thread waiting for a confirmation.
    rejected: Mutex<Option<ServerError>>,
    /// This subscriber's own stop flag.
    stop: Arc<AtomicBool>,
    /// The group's stop flag, when part of a [`ShardSubscriber`](super::ShardSubscriber).
    group_stop: Option<Arc<AtomicBool>>,
    /// Where shard channels lost to a slot move are reported (group members only).
    lost: Option<Sender<Lost>>,
    client_id: AtomicI64,
    reconnects: AtomicU64,
    /// When another thread last used the connection (ms since `born`).
    touched: AtomicU64,
    born: Instant,
}

impl Shared {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
            || self
                .group_stop
                .as_ref()
                .is_some_and(|g| g.load(Ordering::SeqCst))
    }

    fn reply_timeout(&self) -> Duration {
        self.opts
            .reply_timeout
            .or(self.config.read_timeout)
            .unwrap_or(Duration::from_secs(5))
    }

    fn current(&self) -> Option<Arc<Connection>> {
        self.conn.lock().clone()
    }

    /// Another thread is about to use the connection: shorten the reader's waits.
    fn touch(&self) {
        let now = self.born.elapsed().as_millis() as u64;
        self.touched.store(now.max(1), Ordering::Relaxed);
    }

    fn slice(&self) -> Duration {
        let t = self.touched.load(Ordering::Relaxed);
        let now = self.born.elapsed().as_millis() as u64;
        if t != 0 && now.saturating_sub(t) < BUSY_FOR.as_millis() as u64 {
            BUSY_SLICE
        } else {
            SLICE
        }
    }
}

/// A pub/sub subscriber on a connection of its own (outside any pool's limit).
///
/// A named thread (`valkit-pubsub`) reads the connection and hands [`Event`]s to
/// [`Subscriber::recv`] / [`Subscriber::messages`]. Subscriptions can be changed from any
/// thread while another waits in `recv`. A quiet channel is not an error: the reader
/// waits in short slices and sends a `PING` after [`SubscriberOptions::ping_after`] of
/// silence, so a dead peer is found and a live idle one never breaks the connection.
/// After a lost connection it reconnects with backoff and subscribes again to everything,
/// reporting the gap as [`Event::Disconnected`] then [`Event::Reconnected`].
///
/// On RESP3 the same connection also runs ordinary commands ([`Execute`] is implemented):
/// pushes and replies are told apart by type, so a message is never taken as a reply. A
/// command waits for the reader's current wait to end (25 ms at most when the connection
/// was idle; for 500 ms after a command or a subscription change the reader waits in 1 ms
/// slices, so commands in a row are not slowed). On RESP2 a subscribed connection can only
/// run pub/sub commands, and `exec` is refused.
///
/// ```no_run
/// use std::time::Duration;
/// use valkit::pubsub::{Event, Subscriber};
/// use valkit::{Commands, Connection, ConnectionConfig};
/// # fn main() -> valkit::Result<()> {
/// let config = ConnectionConfig::from_url("redis://127.0.0.1:6379")?;
/// let sub = Subscriber::open(&config)?;
/// sub.subscribe(&["events:user:created"])?;
/// let publisher = Connection::open(&config)?;
/// publisher.publish("events:user:created", "42")?;
/// if let Some(Event::Message(m)) = sub.recv(Duration::from_secs(1)) {
///     assert_eq!(m.payload_str(), "42");
/// }
/// # Ok(()) }
/// ```
pub struct Subscriber {
    shared: Arc<Shared>,
    rx: Receiver<Event>,
    thread: Option<JoinHandle<()>>,
}

/// Stops a [`Subscriber`]'s reader from another thread (see [`Subscriber::stop_handle`]).
#[derive(Clone)]
pub struct StopHandle {
    stop: Arc<AtomicBool>,
}

impl StopHandle {
    pub(crate) fn new(stop: Arc<AtomicBool>) -> StopHandle {
        StopHandle { stop }
    }

    /// Stop the reader: it ends within about 25 ms (one wait slice), and a thread blocked
    /// in [`Subscriber::recv`] returns `None` once the events already received are taken.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl std::fmt::Debug for StopHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StopHandle")
            .field("stopped", &self.stop.load(Ordering::SeqCst))
            .finish()
    }
}

impl Subscriber {
    /// Connect and start the reader thread, with default [`SubscriberOptions`].
    ///
    /// # Errors
    /// As [`Connection::open`].
    pub fn open(config: &ConnectionConfig) -> Result<Subscriber> {
        Subscriber::with_options(config, SubscriberOptions::default())
    }

    /// Connect and start the reader thread.
    ///
    /// # Errors
    /// As [`Connection::open`]; [`ErrorKind::Config`] for a zero capacity.
    pub fn with_options(config: &ConnectionConfig, opts: SubscriberOptions) -> Result<Subscriber> {
        Subscriber::start(config, opts, None)
    }

    /// Connect and start the reader; a group member sends its events to the group's
    /// channel and stops with the group.
    pub(crate) fn start(
        config: &ConnectionConfig,
        opts: SubscriberOptions,
        group: Option<GroupLink>,
    ) -> Result<Subscriber> {
        if opts.capacity == 0 {
            return Err(Error::new(
                ErrorKind::Config,
                "subscriber capacity must be at least 1",
            ));
        }
        let conn = Arc::new(Connection::open(config)?);
        let id = client_id_of(&conn).unwrap_or(-1);
        let (group_stop, lost, channel) = match group {
            Some(g) => (Some(g.stop), Some(g.lost), Some((g.tx, g.rx))),
            None => (None, None, None),
        };
        let shared = Arc::new(Shared {
            config: conn.config().clone(),
            opts,
            conn: Mutex::new(Some(conn)),
            wanted: Mutex::new(Subs::default()),
            confirmed: Mutex::new(Subs::default()),
            confirmed_cv: Condvar::new(),
            rejected: Mutex::new(None),
            stop: Arc::new(AtomicBool::new(false)),
            group_stop,
            lost,
            client_id: AtomicI64::new(id),
            reconnects: AtomicU64::new(0),
            touched: AtomicU64::new(0),
            born: Instant::now(),
        });
        let (tx, rx) = channel.unwrap_or_else(|| crossbeam_channel::bounded(shared.opts.capacity));
        let reader = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("valkit-pubsub".into())
            .spawn(move || {
                read_loop(&reader, &tx);
                reader.stop.store(true, Ordering::SeqCst);
                reader.confirmed_cv.notify_all();
            })
            .map_err(|e| Error::io(ErrorKind::Io, "spawn the pub/sub reader", e))?;
        Ok(Subscriber {
            shared,
            rx,
            thread: Some(thread),
        })
    }

    /// Subscribe to channels (`SUBSCRIBE`) and wait until the server confirmed each.
    ///
    /// # Errors
    /// [`ErrorKind::Timeout`] when a confirmation does not arrive within the reply timeout
    /// (the subscription stays wanted and is retried after a reconnect); a write error.
    /// While the subscriber is reconnecting, the channels are recorded and subscribed by
    /// the reconnection, and `Ok` is returned.
    pub fn subscribe<C: AsRef<[u8]>>(&self, channels: &[C]) -> Result<()> {
        self.change(SubKind::Channel, true, channels)
    }

    /// Subscribe to glob patterns (`PSUBSCRIBE`), as [`Subscriber::subscribe`].
    ///
    /// # Errors
    /// As [`Subscriber::subscribe`].
    pub fn psubscribe<C: AsRef<[u8]>>(&self, patterns: &[C]) -> Result<()> {
        self.change(SubKind::Pattern, true, patterns)
    }

    /// Subscribe to sharded channels (`SSUBSCRIBE`; Valkey 7+ / Redis 7+), one command per
    /// channel so that channels of different slots never share a command.
    ///
    /// # Errors
    /// As [`Subscriber::subscribe`].
    pub fn ssubscribe<C: AsRef<[u8]>>(&self, channels: &[C]) -> Result<()> {
        self.change(SubKind::Shard, true, channels)
    }

    /// Unsubscribe from channels and wait for the confirmations.
    ///
    /// # Errors
    /// As [`Subscriber::subscribe`].
    pub fn unsubscribe<C: AsRef<[u8]>>(&self, channels: &[C]) -> Result<()> {
        self.change(SubKind::Channel, false, channels)
    }

    /// Unsubscribe from patterns.
    ///
    /// # Errors
    /// As [`Subscriber::subscribe`].
    pub fn punsubscribe<C: AsRef<[u8]>>(&self, patterns: &[C]) -> Result<()> {
        self.change(SubKind::Pattern, false, patterns)
    }

    /// Unsubscribe from sharded channels.
    ///
    /// # Errors
    /// As [`Subscriber::subscribe`].
    pub fn sunsubscribe<C: AsRef<[u8]>>(&self, channels: &[C]) -> Result<()> {
        self.change(SubKind::Shard, false, channels)
    }

    /// The next event, waiting at most `timeout`. `None` when nothing arrived in time, or
    /// when the subscriber is stopped and every event before the stop was taken.
    pub fn recv(&self, timeout: Duration) -> Option<Event> {
        self.rx.recv_timeout(timeout).ok()
    }

    /// The next event if one is waiting.
    pub fn try_recv(&self) -> Option<Event> {
        self.rx.try_recv().ok()
    }

    /// A blocking iterator over messages only (other events skipped), ending when the
    /// subscriber is stopped.
    pub fn messages(&self) -> impl Iterator<Item = Message> + '_ {
        self.rx.iter().filter_map(|e| match e {
            Event::Message(m) => Some(m),
            _ => None,
        })
    }

    /// A blocking iterator over every event, ending when the subscriber is stopped.
    pub fn events(&self) -> impl Iterator<Item = Event> + '_ {
        self.rx.iter()
    }

    /// A handle that stops the reader from another thread.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle::new(Arc::clone(&self.shared.stop))
    }

    /// Stop the reader (as [`StopHandle::stop`]); events already received stay readable.
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
    }

    /// True once stopped (by a handle, or after a loss with reconnection off).
    pub fn is_stopped(&self) -> bool {
        self.shared.stopped()
    }

    /// True while a connection is open (false while reconnecting).
    pub(crate) fn is_connected(&self) -> bool {
        self.shared.current().is_some()
    }

    /// The shard channels this subscriber keeps subscribed.
    pub(crate) fn wanted_shards(&self) -> usize {
        self.shared.wanted.lock().shards.len()
    }

    /// Stop keeping `channel` subscribed here (it moved to another node): no longer
    /// resubscribed after a reconnect; a `SUNSUBSCRIBE` is sent when connected, not waited
    /// for.
    pub(crate) fn forget_shard(&self, channel: &[u8]) {
        self.shared.wanted.lock().shards.remove(channel);
        if let Some(conn) = self.shared.current() {
            self.shared.touch();
            let _ = conn.send_unpaired(&cmd("SUNSUBSCRIBE").arg(channel));
        }
    }

    /// The server's `CLIENT ID` of the current connection (`-1` when the server did not
    /// answer it). Changes after a reconnect.
    pub fn client_id(&self) -> i64 {
        self.shared.client_id.load(Ordering::SeqCst)
    }

    /// How many times the connection was replaced.
    pub fn reconnects(&self) -> u64 {
        self.shared.reconnects.load(Ordering::SeqCst)
    }

    /// The protocol of the subscriber's connection.
    pub fn protocol(&self) -> Protocol {
        self.shared.config.protocol
    }

    fn change<C: AsRef<[u8]>>(&self, kind: SubKind, on: bool, names: &[C]) -> Result<()> {
        if names.is_empty() {
            return Ok(());
        }
        if self.is_stopped() {
            return Err(Error::new(ErrorKind::Broken, "the subscriber is stopped"));
        }
        let names: Vec<Vec<u8>> = names.iter().map(|n| n.as_ref().to_vec()).collect();
        {
            let mut w = self.shared.wanted.lock();
            for n in &names {
                if on {
                    w.set(kind).insert(n.clone());
                } else {
                    w.set(kind).remove(n);
                }
            }
        }
        let Some(conn) = self.shared.current() else {
            return Ok(());
        };
        self.shared.touch();
        *self.shared.rejected.lock() = None;
        for c in sub_commands(kind, on, &names) {
            conn.send_unpaired(&c)?;
        }
        // Wait until the reader saw the confirmations.
        let deadline = Instant::now() + self.shared.reply_timeout();
        let mut confirmed = self.shared.confirmed.lock();
        loop {
            let done = names.iter().all(|n| confirmed.set(kind).contains(n) == on);
            if done {
                return Ok(());
            }
            if let Some(refused) = self.shared.rejected.lock().take() {
                // E.g. `MOVED` for a shard channel another node serves: not wanted here.
                drop(confirmed);
                let mut w = self.shared.wanted.lock();
                for n in &names {
                    w.set(kind).remove(n);
                }
                return Err(refused.into());
            }
            if self.shared.stopped() {
                return Err(Error::new(ErrorKind::Broken, "the subscriber is stopped"));
            }
            // Wait in slices: a group's stop does not wake this condvar.
            let now = Instant::now();
            self.shared
                .confirmed_cv
                .wait_until(&mut confirmed, deadline.min(now + SLICE));
            let done = names.iter().all(|n| confirmed.set(kind).contains(n) == on);
            if !done && Instant::now() >= deadline {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "the server did not confirm the {} within {:?}",
                        if on { "subscription" } else { "unsubscription" },
                        self.shared.reply_timeout()
                    ),
                ));
            }
        }
    }

    fn command_conn(&self) -> Result<Arc<Connection>> {
        if self.shared.config.protocol != Protocol::Resp3 {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "a RESP2 subscriber connection runs only pub/sub commands (messages and \
                 replies cannot be told apart there): use another connection, or RESP3",
            ));
        }
        self.shared.touch();
        self.shared
            .current()
            .ok_or_else(|| Error::new(ErrorKind::Broken, "the subscriber is reconnecting"))
    }
}

impl Execute for Subscriber {
    /// Run an ordinary command on the subscriber's connection (RESP3 only: pushes are set
    /// aside for the reader, never returned as the reply).
    fn exec(&self, cmd: &Cmd) -> Result<Value> {
        self.command_conn()?.exec(cmd)
    }

    fn exec_pipeline(&self, pipeline: &Pipeline) -> Result<Vec<Value>> {
        self.command_conn()?.exec_pipeline(pipeline)
    }

    fn exec_frame(&self, cmd: &Cmd, read: &mut dyn FnMut(Frame<'_>) -> Result<()>) -> Result<()> {
        self.command_conn()?.exec_frame(cmd, read)
    }
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let w = self.shared.wanted.lock();
        f.debug_struct("Subscriber")
            .field("addr", &self.shared.config.addr)
            .field("channels", &w.channels.len())
            .field("patterns", &w.patterns.len())
            .field("shard_channels", &w.shards.len())
            .field("client_id", &self.client_id())
            .field("stopped", &self.is_stopped())
            .finish()
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.stop();
        self.shared.confirmed_cv.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn client_id_of(conn: &Connection) -> Option<i64> {
    conn.exec(&cmd("CLIENT").arg("ID"))
        .ok()
        .and_then(|v| i64::from_value(v).ok())
}

fn sub_commands(kind: SubKind, on: bool, names: &[Vec<u8>]) -> Vec<Cmd> {
    let name = match (kind, on) {
        (SubKind::Channel, true) => "SUBSCRIBE",
        (SubKind::Channel, false) => "UNSUBSCRIBE",
        (SubKind::Pattern, true) => "PSUBSCRIBE",
        (SubKind::Pattern, false) => "PUNSUBSCRIBE",
        (SubKind::Shard, true) => "SSUBSCRIBE",
        (SubKind::Shard, false) => "SUNSUBSCRIBE",
    };
    if kind == SubKind::Shard {
        return names.iter().map(|n| cmd(name).arg(&n[..])).collect();
    }
    let mut c = cmd(name);
    for n in names {
        c.add_arg(&n[..]);
    }
    vec![c]
}

/// Hand an event to the consumer, waiting while the buffer is full (unless stopped).
fn deliver(shared: &Shared, tx: &Sender<Event>, mut ev: Event) -> bool {
    loop {
        match tx.send_timeout(ev, SLICE) {
            Ok(()) => return true,
            Err(SendTimeoutError::Disconnected(_)) => return false,
            Err(SendTimeoutError::Timeout(back)) => {
                if shared.stopped() {
                    return false;
                }
                ev = back;
            }
        }
    }
}

fn note_confirmation(shared: &Shared, ev: &Event) {
    let (kind, channel, on) = match ev {
        Event::Subscribed { kind, channel, .. } => (*kind, channel, true),
        Event::Unsubscribed { kind, channel, .. } => (*kind, channel, false),
        _ => return,
    };
    let mut c = shared.confirmed.lock();
    if on {
        c.set(kind).insert(channel.to_vec());
    } else {
        c.set(kind).remove(&channel[..]);
    }
    drop(c);
    shared.confirmed_cv.notify_all();
}

fn read_loop(shared: &Shared, tx: &Sender<Event>) {
    let mut last_traffic = Instant::now();
    let mut ping_sent: Option<Instant> = None;
    while !shared.stopped() {
        let Some(conn) = shared.current() else {
            return;
        };
        let r = conn.next_unpaired(shared.slice()).and_then(|got| {
            let now = Instant::now();
            match got {
                Some(v) => {
                    last_traffic = now;
                    Ok(Some(v))
                }
                None => {
                    if let Some(at) = ping_sent {
                        if now.duration_since(at) > shared.reply_timeout() {
                            return Err(Error::new(
                                ErrorKind::Timeout,
                                "no answer to the subscriber's PING",
                            ));
                        }
                    } else if now.duration_since(last_traffic) >= shared.opts.ping_after {
                        if ping(shared, &conn)? {
                            ping_sent = Some(now);
                        }
                        last_traffic = now;
                    }
                    Ok(None)
                }
            }
        });
        match r {
            Ok(Some(Value::Error(e))) => {
                *shared.rejected.lock() = Some(e);
                shared.confirmed_cv.notify_all();
            }
            Ok(Some(v)) => match classify(v) {
                Incoming::Event(ev) => {
                    ping_sent = None;
                    if shard_lost(shared, &ev) {
                        continue;
                    }
                    note_confirmation(shared, &ev);
                    if !deliver(shared, tx, ev) {
                        return;
                    }
                }
                Incoming::Pong => ping_sent = None,
                Incoming::Other => {}
            },
            Ok(None) => {}
            Err(e) => {
                conn.close("the subscriber's connection failed");
                if !recover(shared, tx, &e) {
                    shared.stop.store(true, Ordering::SeqCst);
                    shared.confirmed_cv.notify_all();
                    return;
                }
                last_traffic = Instant::now();
                ping_sent = None;
            }
        }
    }
}

/// A group member's shard channel the server dropped without being asked (a
/// `sunsubscribe` for a channel still wanted: its slot moved): forgotten here and reported
/// to the group, which subscribes it at the slot's new owner. True when handled so.
fn shard_lost(shared: &Shared, ev: &Event) -> bool {
    let (
        Some(lost),
        Event::Unsubscribed {
            kind: SubKind::Shard,
            channel,
            ..
        },
    ) = (&shared.lost, ev)
    else {
        return false;
    };
    if !shared.wanted.lock().shards.remove(&channel[..]) {
        return false;
    }
    shared.confirmed.lock().shards.remove(&channel[..]);
    let _ = lost.send(Lost {
        channel: channel.to_vec(),
        at: Instant::now(),
    });
    true
}

/// A liveness check: on RESP3 a paired `PING` (its `PONG` is a reply, which an `exec`
/// from another thread must not take; answered when this returns), on RESP2 an unpaired
/// one (answered `pong` inside pub/sub mode, later). True when an answer is awaited.
fn ping(shared: &Shared, conn: &Connection) -> Result<bool> {
    if shared.config.protocol == Protocol::Resp3 {
        conn.exec_with_timeout(&cmd("PING"), shared.reply_timeout())
            .map(|_| false)
    } else {
        conn.send_unpaired(&cmd("PING")).map(|()| true)
    }
}

/// Reconnect (with backoff, until stopped) and subscribe again. False when stopped or
/// reconnection is off.
fn recover(shared: &Shared, tx: &Sender<Event>, e: &Error) -> bool {
    let lost_at = Instant::now();
    *shared.conn.lock() = None;
    *shared.confirmed.lock() = Subs::default();
    shared.confirmed_cv.notify_all();
    log::debug!("subscriber connection lost: {e}");
    if !deliver(
        shared,
        tx,
        Event::Disconnected {
            reason: e.to_string(),
        },
    ) {
        return false;
    }
    if !shared.opts.reconnect {
        return false;
    }
    let mut pause = Duration::from_millis(50);
    loop {
        if shared.stopped() {
            return false;
        }
        match Connection::open(&shared.config) {
            Ok(conn) => {
                let conn = Arc::new(conn);
                shared
                    .client_id
                    .store(client_id_of(&conn).unwrap_or(-1), Ordering::SeqCst);
                // Publish the connection first, then read what is wanted: a subscribe()
                // racing this either lands in the snapshot or sees the new connection.
                *shared.conn.lock() = Some(Arc::clone(&conn));
                let wanted = shared.wanted.lock().clone();
                let mut sent = Ok(());
                for (kind, set) in [
                    (SubKind::Channel, &wanted.channels),
                    (SubKind::Pattern, &wanted.patterns),
                    (SubKind::Shard, &wanted.shards),
                ] {
                    if set.is_empty() {
                        continue;
                    }
                    let names: Vec<Vec<u8>> = set.iter().cloned().collect();
                    for c in sub_commands(kind, true, &names) {
                        if sent.is_ok() {
                            sent = conn.send_unpaired(&c);
                        }
                    }
                }
                match sent {
                    Ok(()) => {
                        shared.reconnects.fetch_add(1, Ordering::SeqCst);
                        return deliver(
                            shared,
                            tx,
                            Event::Reconnected {
                                gap: lost_at.elapsed(),
                                resubscribed: wanted.len(),
                            },
                        );
                    }
                    Err(e) => {
                        log::debug!("resubscribing failed: {e}");
                        *shared.conn.lock() = None;
                    }
                }
            }
            Err(e) => log::debug!("subscriber reconnect failed: {e}"),
        }
        // Sleep in slices so a stop is seen promptly.
        let until = Instant::now() + pause;
        while Instant::now() < until {
            if shared.stopped() {
                return false;
            }
            std::thread::sleep(SLICE.min(until.saturating_duration_since(Instant::now())));
        }
        let jitter = rand::random::<u64>() % 20;
        pause = (pause * 2).min(shared.opts.max_backoff) + Duration::from_millis(jitter);
    }
}
