//! Sharded pub/sub on a cluster: one [`Subscriber`] per node that serves subscribed shard
//! channels, their events merged into one stream, and channels followed to their new node
//! when their slot moves.
//!
//! This module knows nothing of the cluster client: where a slot lives comes from a
//! [`ShardRouter`] (the client implements it), so `pubsub` stays below `client`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, SendTimeoutError, Sender};
use parking_lot::{Mutex, MutexGuard};

use super::message::{Event, Message};
use super::subscriber::{GroupLink, Lost, StopHandle, Subscriber, SubscriberOptions};
use crate::cmd::key_slot;
use crate::config::ConnectionConfig;
use crate::error::{Error, ErrorKind, Result};
use crate::resp::Bytes;

/// Where shard channels live: the node that serves a slot now. Implemented by
/// [`Client`](crate::Client) (a cluster client answers from its slot map, a single-server
/// client with its one server), which is what [`Client::shard_subscriber`](crate::Client::shard_subscriber)
/// passes; implement it yourself to route by other means.
pub trait ShardRouter: Send + Sync + 'static {
    /// The node serving `slot` now: its `host:port` name and the settings to connect to it.
    ///
    /// # Errors
    /// When no node is known for the slot (the caller refreshes and tries again later).
    fn node_for_slot(&self, slot: u16) -> Result<(String, ConnectionConfig)>;

    /// Re-read where slots live; called after a node dropped or refused a channel (`MOVED`)
    /// or became unreachable, at most every 250 ms.
    ///
    /// # Errors
    /// When no node answered; the caller tries again later.
    fn refresh(&self) -> Result<()>;
}

/// How long the supervisor waits for a lost-channel report per turn (the bound on how late
/// a stop is seen by it).
const TICK: Duration = Duration::from_millis(100);
/// The slot map is re-read at most this often while a channel waits for a new home or a
/// node is unreachable.
const REFRESH_EVERY: Duration = Duration::from_millis(250);
/// Attempts of one subscription (resolve, subscribe, refresh after a refusal).
const ATTEMPTS: u32 = 3;

#[derive(Default)]
struct State {
    /// One subscriber per node serving subscribed channels, by `host:port`.
    nodes: BTreeMap<String, Subscriber>,
    /// Every subscribed channel and the node serving it.
    channels: BTreeMap<Vec<u8>, String>,
    /// Channels lost by their node and not yet subscribed anew, with when that was seen.
    homeless: BTreeMap<Vec<u8>, Instant>,
}

struct Group {
    router: Arc<dyn ShardRouter>,
    opts: SubscriberOptions,
    stop: Arc<AtomicBool>,
    /// The sending side handed to every member; `None` once stopped.
    tx: Mutex<Option<Sender<Event>>>,
    rx: Receiver<Event>,
    lost_tx: Sender<Lost>,
    state: Mutex<State>,
    moves: AtomicU64,
}

impl Group {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// The member for `addr`, connected on first use. The connect (a connect timeout and a
    /// handshake, at worst) runs with the state lock released, so other callers are not
    /// held up: what the caller read under the lock may have changed when this returns.
    fn member<'s>(
        &self,
        state: &'s mut MutexGuard<'_, State>,
        addr: &str,
        config: &ConnectionConfig,
    ) -> Result<&'s Subscriber> {
        if !state.nodes.contains_key(addr) {
            let Some(tx) = self.tx.lock().clone() else {
                return Err(stopped());
            };
            let link = GroupLink {
                tx,
                rx: self.rx.clone(),
                stop: Arc::clone(&self.stop),
                lost: self.lost_tx.clone(),
            };
            let sub = MutexGuard::unlocked(state, || {
                Subscriber::start(config, self.opts.clone(), Some(link))
            })?;
            if self.stopped() {
                // Stopped meanwhile: the stop has taken the members already; this one
                // stops here (its thread joined without the lock).
                MutexGuard::unlocked(state, || drop(sub));
                return Err(stopped());
            }
            if state.nodes.contains_key(addr) {
                // Another caller connected to the node meanwhile: keep theirs.
                MutexGuard::unlocked(state, || drop(sub));
            } else {
                state.nodes.insert(addr.to_owned(), sub);
            }
        }
        Ok(&state.nodes[addr])
    }

    /// Subscribe `channel` at the node serving its slot; after a refusal (`MOVED`) or an
    /// unreachable node, refresh the map and try again (bounded). The node's name on
    /// success. The map is re-read, and the pause before the next try taken, with the
    /// state lock released: a slow refresh (a connect timeout per unreachable node) does
    /// not hold up other callers.
    fn subscribe_one(&self, state: &mut MutexGuard<'_, State>, channel: &[u8]) -> Result<String> {
        let slot = key_slot(channel);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let r = self.router.node_for_slot(slot).and_then(|(addr, config)| {
                self.member(state, &addr, &config)?.ssubscribe(&[channel])?;
                Ok(addr)
            });
            match r {
                Ok(addr) => return Ok(addr),
                Err(e) if attempt < ATTEMPTS && !self.stopped() && moved_or_down(&e) => {
                    log::debug!("shard subscription refused or node down, refreshing: {e}");
                    prune(state);
                    MutexGuard::unlocked(state, || {
                        let _ = self.router.refresh();
                        std::thread::sleep(Duration::from_millis(20 * u64::from(attempt)));
                    });
                }
                Err(e) => {
                    prune(state);
                    return Err(e);
                }
            }
        }
    }

    /// Hand an event to the consumer, waiting while the buffer is full (unless stopped).
    fn deliver(&self, mut ev: Event) {
        let Some(tx) = self.tx.lock().clone() else {
            return;
        };
        loop {
            match tx.send_timeout(ev, TICK) {
                Ok(()) | Err(SendTimeoutError::Disconnected(_)) => return,
                Err(SendTimeoutError::Timeout(back)) => {
                    if self.stopped() {
                        return;
                    }
                    ev = back;
                }
            }
        }
    }

    /// One supervisor turn: take the lost channels reported, and when some channel has no
    /// home or some node is unreachable, re-read the map and move the channels whose slot
    /// is served elsewhere now.
    fn reconcile(
        &self,
        lost: Vec<Lost>,
        down_since: &mut BTreeMap<String, Instant>,
        last_refresh: &mut Option<Instant>,
    ) {
        let now = Instant::now();
        {
            let mut state = self.state.lock();
            for l in lost {
                if state.channels.contains_key(&l.channel) {
                    state.homeless.entry(l.channel).or_insert(l.at);
                }
            }
            down_since.retain(|addr, _| state.nodes.get(addr).is_some_and(|m| !m.is_connected()));
            for (addr, m) in &state.nodes {
                if !m.is_connected() {
                    down_since.entry(addr.clone()).or_insert(now);
                }
            }
            if state.homeless.is_empty() && down_since.is_empty() {
                return;
            }
        }
        if last_refresh.is_some_and(|at| at.elapsed() < REFRESH_EVERY) {
            return;
        }
        *last_refresh = Some(now);
        // The slot map is re-read without the lock: its round trips (a connect timeout per
        // unreachable node, at worst) do not hold up callers subscribing meanwhile.
        if let Err(e) = self.router.refresh() {
            log::debug!("shard subscriber: refreshing the slot map failed: {e}");
        }
        let mut state = self.state.lock();
        let channels: Vec<(Vec<u8>, String)> = state
            .channels
            .iter()
            .map(|(c, n)| (c.clone(), n.clone()))
            .collect();
        for (channel, node) in channels {
            if self.stopped() {
                return;
            }
            // Still subscribed where the list says? (A connect of an earlier turn ran
            // without the lock: a caller may have unsubscribed it meanwhile.)
            if state.channels.get(&channel) != Some(&node) {
                continue;
            }
            let homeless = state.homeless.get(&channel).copied();
            let Ok((addr, config)) = self.router.node_for_slot(key_slot(&channel)) else {
                continue;
            };
            let since = match homeless {
                Some(at) => at,
                // Still where it was: nothing to do (a node that is down and still owns
                // the slot gets it back by its own reconnection).
                None if addr == node => continue,
                None => {
                    // Its node is unreachable and the slot has a new owner (a failover).
                    if let Some(old) = state.nodes.get(&node) {
                        old.forget_shard(&channel);
                    }
                    down_since.get(&node).copied().unwrap_or(now)
                }
            };
            let connected = self.member(&mut state, &addr, &config).map(|_| ());
            // The connect may have run without the lock: unsubscribed meanwhile, it stays so
            // (and is not left homeless, which would keep the map being re-read).
            if state.channels.get(&channel) != Some(&node) {
                continue;
            }
            if let Err(e) = connected {
                log::debug!("shard subscriber: connecting to {addr} failed: {e}");
                state.homeless.insert(channel, since);
                continue;
            }
            let r = match state.nodes.get(&addr) {
                Some(m) => m.ssubscribe(&[&channel[..]]),
                None => Err(stopped()),
            };
            match r {
                Ok(()) => {
                    state.channels.insert(channel.clone(), addr.clone());
                    state.homeless.remove(&channel);
                    self.moves.fetch_add(1, Ordering::Relaxed);
                    self.deliver(Event::ShardMoved {
                        channel: Bytes::from(channel),
                        node: addr,
                        gap: since.elapsed(),
                    });
                }
                Err(e) => {
                    log::debug!("shard subscriber: resubscribing at {addr} failed: {e}");
                    state.homeless.insert(channel, since);
                }
            }
        }
        prune(&mut state);
    }
}

fn stopped() -> Error {
    Error::new(ErrorKind::Broken, "the shard subscriber is stopped")
}

/// A refusal that a fresher slot map may fix: a redirect, a node down or unreachable.
fn moved_or_down(e: &Error) -> bool {
    e.redirect().is_some()
        || e.is_retryable()
        || matches!(
            e.kind(),
            ErrorKind::Connect | ErrorKind::Io | ErrorKind::Timeout | ErrorKind::Broken
        )
}

/// Drop (stop and join) the members that keep no channel.
fn prune(state: &mut State) {
    let idle: Vec<String> = state
        .nodes
        .iter()
        .filter(|(addr, m)| m.wanted_shards() == 0 && !state.channels.values().any(|n| n == *addr))
        .map(|(a, _)| a.clone())
        .collect();
    for addr in idle {
        state.nodes.remove(&addr);
    }
}

/// Sharded pub/sub (`SSUBSCRIBE`) on a Valkey/Redis cluster: each shard channel is
/// subscribed on the node that owns its slot, one connection (and one reader thread,
/// `valkit-pubsub`) per such node, and every node's messages and events come out of one
/// [`recv`](ShardSubscriber::recv) / [`messages`](ShardSubscriber::messages) stream.
/// Messages of one channel arrive in the order they were published.
///
/// When a channel's slot moves (a slot migration, a failover), the old node drops the
/// channel (`sunsubscribe`, Valkey/Redis 7+) or becomes unreachable; a supervisor thread
/// (`valkit-shardsub`) re-reads the slot map, subscribes the channel on the new owner and
/// reports [`Event::ShardMoved`] with the gap, during which messages were missed. A lost
/// connection to a node that still owns its slots is reconnected as a [`Subscriber`] does
/// ([`Event::Disconnected`], [`Event::Reconnected`]).
///
/// Made by [`Client::shard_subscriber`](crate::Client::shard_subscriber), or from any
/// [`ShardRouter`]. Dropping it stops and joins every thread.
///
/// ```no_run
/// use std::time::Duration;
/// use valkit::pubsub::{Event, Publish};
/// use valkit::Client;
/// # fn main() -> valkit::Result<()> {
/// let client = Client::builder().cluster(["redis://10.0.0.1:6379"]).build()?;
/// let sub = client.shard_subscriber()?;
/// sub.ssubscribe(&["orders:{eu}", "orders:{us}"])?; // maybe two nodes
/// client.spublish("orders:{eu}", "42")?;             // routed to the slot's node
/// match sub.recv(Duration::from_secs(1)) {
///     Some(Event::Message(m)) => assert_eq!(m.payload_str(), "42"),
///     Some(Event::ShardMoved { channel, gap, .. }) => eprintln!("{channel:?}: missed {gap:?}"),
///     _ => {}
/// }
/// # Ok(()) }
/// ```
pub struct ShardSubscriber {
    group: Arc<Group>,
    rx: Receiver<Event>,
    thread: Option<JoinHandle<()>>,
}

impl ShardSubscriber {
    /// A shard subscriber over `router`, with default [`SubscriberOptions`] (used for
    /// every node's connection). No connection is opened before the first subscription.
    ///
    /// # Errors
    /// The supervisor thread could not be started.
    pub fn new(router: impl ShardRouter) -> Result<ShardSubscriber> {
        ShardSubscriber::with_options(router, SubscriberOptions::default())
    }

    /// A shard subscriber over `router` with these options for every node's subscriber
    /// (`capacity` is the size of the one merged buffer).
    ///
    /// # Errors
    /// [`ErrorKind::Config`] for a zero capacity; the supervisor thread could not start.
    pub fn with_options(
        router: impl ShardRouter,
        opts: SubscriberOptions,
    ) -> Result<ShardSubscriber> {
        if opts.capacity == 0 {
            return Err(Error::new(
                ErrorKind::Config,
                "subscriber capacity must be at least 1",
            ));
        }
        let (tx, rx) = crossbeam_channel::bounded(opts.capacity);
        let (lost_tx, lost_rx) = crossbeam_channel::unbounded();
        let group = Arc::new(Group {
            router: Arc::new(router),
            opts,
            stop: Arc::new(AtomicBool::new(false)),
            tx: Mutex::new(Some(tx)),
            rx: rx.clone(),
            lost_tx,
            state: Mutex::new(State::default()),
            moves: AtomicU64::new(0),
        });
        let g = Arc::clone(&group);
        let thread = std::thread::Builder::new()
            .name("valkit-shardsub".into())
            .spawn(move || supervise(&g, &lost_rx))
            .map_err(|e| Error::io(ErrorKind::Io, "spawn the shard subscriber's supervisor", e))?;
        Ok(ShardSubscriber {
            group,
            rx,
            thread: Some(thread),
        })
    }

    /// Subscribe to shard channels, each on the node that serves its slot, and wait until
    /// each node confirmed. A node that refuses (`MOVED`: the map was stale) or cannot be
    /// reached makes the map be re-read and the channel tried again (3 attempts).
    ///
    /// # Errors
    /// The last refusal or connection error; [`ErrorKind::Timeout`] when a confirmation
    /// did not arrive in time; [`ErrorKind::Broken`] once stopped. Channels subscribed
    /// before the failing one stay subscribed.
    pub fn ssubscribe<C: AsRef<[u8]>>(&self, channels: &[C]) -> Result<()> {
        for c in channels {
            if self.group.stopped() {
                return Err(stopped());
            }
            let c = c.as_ref();
            let mut state = self.group.state.lock();
            if state.channels.contains_key(c) {
                continue;
            }
            let addr = self.group.subscribe_one(&mut state, c)?;
            state.channels.insert(c.to_vec(), addr);
        }
        Ok(())
    }

    /// Unsubscribe from shard channels (each on its node; a node that is unreachable just
    /// forgets them).
    ///
    /// # Errors
    /// A write error or a missing confirmation from a node (the channel is forgotten
    /// anyway).
    pub fn sunsubscribe<C: AsRef<[u8]>>(&self, channels: &[C]) -> Result<()> {
        let mut state = self.group.state.lock();
        let mut result = Ok(());
        for c in channels {
            let c = c.as_ref();
            state.homeless.remove(c);
            let Some(node) = state.channels.remove(c) else {
                continue;
            };
            if let Some(m) = state.nodes.get(&node) {
                let r = m.sunsubscribe(&[c]);
                if result.is_ok() {
                    result = r;
                }
            }
        }
        prune(&mut state);
        result
    }

    /// The next event from any node, waiting at most `timeout`. `None` when nothing
    /// arrived in time, or when stopped and every event before the stop was taken.
    pub fn recv(&self, timeout: Duration) -> Option<Event> {
        self.rx.recv_timeout(timeout).ok()
    }

    /// The next event if one is waiting.
    pub fn try_recv(&self) -> Option<Event> {
        self.rx.try_recv().ok()
    }

    /// A blocking iterator over messages only, ending when the subscriber is stopped.
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

    /// A handle that stops every node's reader and the supervisor from another thread.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle::new(Arc::clone(&self.group.stop))
    }

    /// Stop (as [`StopHandle::stop`]); events already received stay readable.
    pub fn stop(&self) {
        self.group.stop.store(true, Ordering::SeqCst);
    }

    /// True once stopped.
    pub fn is_stopped(&self) -> bool {
        self.group.stopped()
    }

    /// The `host:port` of the node a subscribed shard channel is on now (`None` when not
    /// subscribed).
    pub fn node_of(&self, channel: impl AsRef<[u8]>) -> Option<String> {
        self.group
            .state
            .lock()
            .channels
            .get(channel.as_ref())
            .cloned()
    }

    /// The nodes with a subscriber now (`host:port`, sorted).
    pub fn nodes(&self) -> Vec<String> {
        self.group.state.lock().nodes.keys().cloned().collect()
    }

    /// How many times a channel was moved to another node.
    pub fn moves(&self) -> u64 {
        self.group.moves.load(Ordering::Relaxed)
    }
}

impl std::fmt::Debug for ShardSubscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.group.state.lock();
        f.debug_struct("ShardSubscriber")
            .field("nodes", &state.nodes.keys().collect::<Vec<_>>())
            .field("shard_channels", &state.channels.len())
            .field("moves", &self.moves())
            .field("stopped", &self.is_stopped())
            .finish()
    }
}

impl Drop for ShardSubscriber {
    fn drop(&mut self) {
        self.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        // The supervisor dropped the members; in case it could not run, do it here.
        let members = std::mem::take(&mut self.group.state.lock().nodes);
        drop(members);
    }
}

/// The supervisor: follows lost channels until stopped, then closes the event stream
/// (drops the sending side and every member, joining their readers).
fn supervise(group: &Group, lost_rx: &Receiver<Lost>) {
    let mut down_since = BTreeMap::new();
    let mut last_refresh = None;
    while !group.stopped() {
        let mut lost = Vec::new();
        if let Ok(l) = lost_rx.recv_timeout(TICK) {
            lost.push(l);
        }
        lost.extend(lost_rx.try_iter().take(10_000));
        group.reconcile(lost, &mut down_since, &mut last_refresh);
    }
    *group.tx.lock() = None;
    let members = std::mem::take(&mut group.state.lock().nodes);
    drop(members);
}
