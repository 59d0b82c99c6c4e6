//! One blocking connection to one server.
//!
//! A [`Connection`] owns exactly one socket. It speaks RESP2 or RESP3 (after `HELLO 3`),
//! sets push frames aside so they are never mistaken for replies, and marks itself broken
//! for good after any I/O error, timeout or protocol error in the middle of a reply: a late
//! reply must never be read as the answer to the next command.
//!
//! # Timeouts
//! The read timeout bounds each *whole reply*, not each socket read: when a reply is
//! awaited a deadline is set (now + the read timeout, plus the command's own blocking
//! time), and every socket read waits only for what is left of it. A server that trickles a
//! reply byte by byte therefore fails the call with [`ErrorKind::Timeout`] at the deadline.
//! In a pipeline each reply has its own deadline, starting when the previous reply was
//! complete (the first when the pipeline was written). Blocking commands are sent in
//! bounded slices (see [`Blocking`]).

mod handshake;
mod session;
mod shares;
mod stream;
mod tls;
mod transaction;

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::cmd::secrets::{scrub_error, scrub_reply};
use crate::cmd::{Blocking, BuildReplies, Cmd, Execute, Pipeline, Reissue, Share};
use crate::config::{ConnectionConfig, Protocol};
use crate::error::{Error, ErrorKind, Result};
use crate::resp::{Bytes, Decoder, Frame, FrameKind, Keep, LargeBulk, Next, Value};

pub use session::SessionState;
pub(crate) use shares::SentShares;
pub use stream::PeerState;
use stream::Stream;
pub use transaction::{Transaction, TxOutcome};

/// Pushes kept for [`Connection::take_pushes`] before the oldest are dropped.
const MAX_PENDING_PUSHES: usize = 10_000;
/// Room offered to one socket read (read straight into the decoder's buffer).
const READ_CHUNK: usize = 16 * 1024;
/// How far the socket's read timeout may be from what is left until the reply's deadline
/// before it is set again (one system call; the usual reply needs none).
const DEADLINE_SLACK: Duration = Duration::from_millis(1);
/// A typed reply that is one bulk string this long or longer takes the decoder's buffer
/// instead of being copied out of it (see `Decoder::next_reply_or_owned`).
const OWNED_REPLY: usize = crate::cmd::LARGE_ARG;
/// A reply that is one bulk string with this many bytes or more still to come after the
/// first reads is read straight into a buffer of its own (see `Decoder::take_large_bulk`).
const DIRECT_BULK: usize = READ_CHUNK;
/// Most bytes one read of such a body takes before the deadline is looked at again.
const DRAIN_MAX: usize = 1024 * 1024;

/// A blocking connection to one Valkey/Redis server.
///
/// `Send + Sync`: commands from several threads are serialised on the one socket. For
/// parallelism use several connections (a pool).
///
/// ```no_run
/// use valkit::{Commands, Connection};
/// # fn main() -> valkit::Result<()> {
/// let conn = Connection::open_url("redis://127.0.0.1:6379/0")?;
/// conn.set("greeting", "hello")?;
/// let greeting: Option<String> = conn.get("greeting")?;
/// assert_eq!(greeting.as_deref(), Some("hello"));
/// # Ok(()) }
/// ```
pub struct Connection {
    inner: Mutex<Inner>,
    config: ConnectionConfig,
    server_version: Option<String>,
    server_name: Option<String>,
}

pub(crate) struct Inner {
    stream: Stream,
    decoder: Decoder,
    wbuf: Vec<u8>,
    /// Large arguments of the commands in `wbuf`, written from where they are (no copy):
    /// each with the offset in `wbuf` where its bytes belong.
    wparts: Vec<(usize, Bytes)>,
    /// When to let go of a grown `wbuf`.
    wkeep: Keep,
    /// Why the connection is unusable, once it is.
    broken: Option<String>,
    pushes: VecDeque<Value>,
    dropped_pushes: u64,
    /// The read timeout currently set on the socket.
    socket_read_timeout: Option<Duration>,
    /// The read timeout for ordinary commands.
    read_timeout: Option<Duration>,
    /// How long each reply of the current call may take (`None`: no bound).
    reply_timeout: Option<Duration>,
    /// When the reply being read must be complete: set by its first socket read (so a
    /// reply already buffered costs no clock read), cleared when a new reply is awaited.
    deadline: Option<Instant>,
    /// The longest server-side wait of one blocking command.
    blocking_slice: Option<Duration>,
    /// What the user changed in the server-side session.
    session: SessionState,
    /// The database the handshake selected.
    db: u32,
}

impl Connection {
    /// Connect and run the handshake (HELLO/AUTH, CLIENT SETNAME, SELECT), all within the
    /// connect timeout.
    ///
    /// # Errors
    /// [`ErrorKind::Connect`] when the server cannot be reached, [`ErrorKind::Timeout`] when
    /// it does not answer in time, [`ErrorKind::Auth`] for rejected credentials,
    /// [`ErrorKind::Tls`] for TLS failures, a server error when it refuses HELLO or SELECT.
    pub fn open(config: &ConnectionConfig) -> Result<Connection> {
        let stream = Stream::connect(config)?;
        let mut inner = Inner {
            stream,
            decoder: Decoder::with_limits(config.limits),
            wbuf: Vec::with_capacity(1024),
            wparts: Vec::new(),
            wkeep: Keep::default(),
            broken: None,
            pushes: VecDeque::new(),
            dropped_pushes: 0,
            socket_read_timeout: None,
            read_timeout: config.read_timeout,
            // The handshake is bounded by the connect timeout: a server that accepts the
            // socket and never answers must not hang the caller.
            reply_timeout: Some(config.connect_timeout),
            deadline: None,
            blocking_slice: config.blocking_slice.filter(|d| !d.is_zero()),
            session: SessionState::default(),
            db: config.db,
        };
        inner
            .stream
            .set_write_timeout(Some(config.connect_timeout))?;
        let mut config = config.clone();
        let hello = match inner.handshake(&config) {
            // A server without HELLO (before Redis 6, HELLO renamed, some proxies), and the
            // protocol was not asked for: authenticate with AUTH and speak RESP2.
            Err(e) if handshake::may_fall_back(&config, &e) => {
                log::debug!(
                    "{} does not know HELLO; falling back to AUTH and RESP2",
                    config.addr
                );
                config.protocol = Protocol::Resp2;
                inner.handshake(&config)?
            }
            other => other?,
        };
        let config = &config;
        inner.stream.set_write_timeout(config.write_timeout)?;
        inner.reply_timeout = config.read_timeout;
        log::debug!(
            "connected to {} ({:?}, server {})",
            config.addr,
            config.protocol,
            hello.version.as_deref().unwrap_or("?")
        );
        Ok(Connection {
            inner: Mutex::new(inner),
            config: config.clone(),
            server_version: hello.version,
            server_name: hello.server,
        })
    }

    /// Parse `url` (see [`ConnectionConfig::from_url`]) and connect.
    pub fn open_url(url: &str) -> Result<Connection> {
        Connection::open(&ConnectionConfig::from_url(url)?)
    }

    /// The configuration this connection was opened with.
    pub fn config(&self) -> &ConnectionConfig {
        &self.config
    }

    /// The protocol spoken on this connection.
    pub fn protocol(&self) -> Protocol {
        self.config.protocol
    }

    /// The server version reported by `HELLO` (RESP3 only).
    pub fn server_version(&self) -> Option<&str> {
        self.server_version.as_deref()
    }

    /// The server software reported by `HELLO` (`redis` or `valkey`; RESP3 only).
    pub fn server_name(&self) -> Option<&str> {
        self.server_name.as_deref()
    }

    /// True once an I/O error, timeout or protocol error made this connection unusable.
    pub fn is_broken(&self) -> bool {
        self.inner.lock().broken.is_some()
    }

    /// Run one command with its own read timeout instead of the configured one (for
    /// example a health-check PING that must not wait the full read timeout). A timeout
    /// breaks the connection like any other.
    pub fn exec_with_timeout(&self, cmd: &Cmd, timeout: Duration) -> Result<Value> {
        let mut guard = self.inner.lock();
        let inner = &mut *guard;
        inner.check_usable()?;
        inner.check_sendable(cmd)?;
        inner.session.observe(cmd, inner.db);
        inner.encode(cmd);
        let mut reply = inner.with_read_timeout(Some(timeout), |i| {
            i.flush_wbuf()?;
            i.read_reply()
        })?;
        scrub_reply(cmd, &mut reply);
        reply.into_result()
    }

    /// Shut the socket and mark the connection unusable (a pool then drops it instead of
    /// reusing it). For example after a `READONLY` reply showed the endpoint became a replica.
    pub fn close(&self, reason: &str) {
        let mut inner = self.inner.lock();
        let _ = inner.poison(Error::new(ErrorKind::Broken, reason.to_owned()));
    }

    /// What commands sent on this connection changed in its server-side session (MULTI,
    /// WATCH, SELECT, SUBSCRIBE, CLIENT TRACKING, ...).
    pub fn session_state(&self) -> SessionState {
        self.inner.lock().session
    }

    /// Put the session back as the handshake left it: `RESET` followed by the handshake
    /// again (AUTH, protocol, name, database), in one round trip. Does nothing when the
    /// session is already clean.
    ///
    /// # Errors
    /// Any failure (including a server without `RESET`, before Redis 6.2) leaves the
    /// connection broken, so a pool drops it instead of reusing it.
    pub fn reset_session(&self) -> Result<()> {
        let mut inner = self.inner.lock();
        inner.check_usable()?;
        if inner.session.is_clean() && inner.decoder.buffered() == 0 {
            return Ok(());
        }
        // Like the handshake it repeats, bounded by the connect timeout.
        let bound = self.config.connect_timeout;
        let config = &self.config;
        let r = inner.with_read_timeout(Some(bound), |i| i.reset(config));
        r.map_err(|e| {
            let mut e = e;
            if inner.broken.is_none() {
                e = inner.poison(e);
            }
            e
        })
    }

    /// Look at the socket without a round trip: is the peer still there, did unexpected
    /// bytes arrive? Costs a few system calls, never blocks.
    pub fn peer_state(&self) -> PeerState {
        let inner = self.inner.lock();
        match inner.local_state() {
            PeerState::Unknown => inner.stream.peer_state(),
            known => known,
        }
    }

    /// What the connection knows without a system call: `Closed` once broken,
    /// `DataPending` when unread bytes are buffered, else `Unknown`.
    pub(crate) fn local_state(&self) -> PeerState {
        self.inner.lock().local_state()
    }

    /// Take the RESP3 push frames that arrived between replies so far (for example
    /// `CLIENT TRACKING` invalidations). This is not a subscriber: commands that turn a
    /// connection into a subscriber cannot run through `exec` or a pipeline.
    pub fn take_pushes(&self) -> Vec<Value> {
        self.inner.lock().pushes.drain(..).collect()
    }

    /// What a pool checks when the connection comes back, under one lock: whether it is
    /// broken, and its session; pushes nobody took are dropped (the next user must not see
    /// them).
    #[inline]
    pub(crate) fn returned(&self) -> (bool, SessionState) {
        let mut inner = self.inner.lock();
        if !inner.pushes.is_empty() {
            inner.pushes.clear();
        }
        (inner.broken.is_some(), inner.session)
    }

    /// How many pushes were dropped because nobody took them (the oldest go first once
    /// 10,000 are waiting).
    pub fn dropped_pushes(&self) -> u64 {
        self.inner.lock().dropped_pushes
    }

    /// Write `cmd` without waiting for its reply, bypassing the refusal of commands whose
    /// replies do not pair with requests (SUBSCRIBE and friends). For the pub/sub and
    /// tracking readers only: whatever the server answers is read by
    /// [`Connection::next_unpaired`]. Nothing else may read replies on this connection
    /// afterwards (on RESP2) except through `next_unpaired`.
    pub(crate) fn send_unpaired(&self, cmd: &Cmd) -> Result<()> {
        let mut guard = self.inner.lock();
        let inner = &mut *guard;
        inner.check_usable()?;
        cmd.check_sendable(inner.decoder.limits().max_bulk_len)?;
        inner.session.observe(cmd, inner.db);
        inner.encode(cmd);
        inner.flush_wbuf()
    }

    /// The next frame of any kind (a push, a set-aside push, or an unpaired reply), waiting
    /// at most `wait`. `Ok(None)` when nothing complete arrived in time: an idle wait is
    /// not an error and leaves the connection usable (a partly received frame stays in the
    /// decoder and is completed by a later call). The lock is held only for the wait and
    /// handed fairly to a waiting writer afterwards, so [`Connection::send_unpaired`] and
    /// commands from other threads get through between two waits.
    pub(crate) fn next_unpaired(&self, wait: Duration) -> Result<Option<Value>> {
        let mut guard = self.inner.lock();
        let out = guard.next_unpaired(wait);
        parking_lot::MutexGuard::unlock_fair(guard);
        out
    }

    /// [`Execute::exec`], calling `mark` first while holding the connection: whatever
    /// `mark` records is ordered exactly as the commands reach the server (the near cache
    /// numbers its reads this way).
    pub(crate) fn exec_marked(&self, cmd: &Cmd, mark: impl FnOnce()) -> Result<Value> {
        let mut inner = self.inner.lock();
        mark();
        inner.exec(cmd)
    }

    /// [`Connection::next_unpaired`] that never waits for another thread and never blocks
    /// on an idle socket: `Ok(None)` when another thread is using the connection (it sets
    /// pushes aside for [`Connection::take_pushes`]) or nothing is there. Where the socket
    /// cannot be looked at without reading (Unix sockets, TLS), it reads for at most 1 ms.
    pub(crate) fn try_next_unpaired(&self) -> Result<Option<Value>> {
        let Some(mut guard) = self.inner.try_lock() else {
            return Ok(None);
        };
        let inner = &mut *guard;
        inner.check_usable()?;
        if let Some(v) = inner.pushes.pop_front() {
            return Ok(Some(v));
        }
        match inner.decoder.next_value() {
            Ok(Some(v)) => return Ok(Some(v)),
            Ok(None) => {}
            Err(e) => return Err(inner.poison(e)),
        }
        match inner.stream.peer_state() {
            PeerState::Open => Ok(None),
            PeerState::Closed => {
                let e = Error::new(ErrorKind::Io, "connection closed by the server");
                Err(inner.poison(e))
            }
            PeerState::DataPending | PeerState::Unknown => {
                inner.next_unpaired(Duration::from_millis(1))
            }
        }
    }

    /// Run `build` with `keys` watched, then commit the pipeline it returns as MULTI/EXEC,
    /// and convert the replies into `T` as [`Pipeline::query`] does.
    ///
    /// Inside `build`, read through the given [`Transaction`] (it implements
    /// [`Execute`], so [`Commands`](crate::Commands) helpers work on it); no other thread
    /// can use this connection until the transaction ends. If a watched key changed, the
    /// outcome is [`TxOutcome::Aborted`] and nothing was applied: read again and retry. If
    /// `build` returns an error, the keys are unwatched and the error is returned. A command
    /// that fails inside EXEC (WRONGTYPE, ...) makes the call return that error, although
    /// the transaction committed (as with an atomic [`Pipeline::query`]; use
    /// [`Pipeline::run`] on an atomic pipeline to see each command's own result).
    ///
    /// ```no_run
    /// use valkit::{pipe, Commands, Connection, TxOutcome};
    /// # fn main() -> valkit::Result<()> {
    /// let conn = Connection::open_url("redis://127.0.0.1:6379")?;
    /// // Move 10 from one balance to another unless either changed meanwhile; retry a
    /// // few times, then give up.
    /// for _ in 0..5 {
    ///     let outcome: TxOutcome<(i64, i64)> = conn.transaction(&["{acct}:a", "{acct}:b"], |tx| {
    ///         let a: Option<i64> = tx.get("{acct}:a")?;
    ///         Ok(pipe().set("{acct}:a", a.unwrap_or(0) - 10).ignore().incr_by("{acct}:b", 10).get("{acct}:a"))
    ///     })?;
    ///     match outcome {
    ///         TxOutcome::Committed((b, a)) => { println!("a = {a}, b = {b}"); break; }
    ///         TxOutcome::Aborted => continue, // someone else wrote a or b: read again
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn transaction<T, K, F>(&self, keys: &[K], build: F) -> Result<TxOutcome<T>>
    where
        T: crate::cmd::FromValue,
        K: AsRef<[u8]>,
        F: FnOnce(&Transaction<'_>) -> Result<Pipeline>,
    {
        let mut inner = self.inner.lock();
        transaction::run(&mut inner, keys, build)
    }
}

impl Connection {
    /// Shares of one pipeline, each on its own connection (a cluster's nodes): every share
    /// is sent before any reply is read (see [`SentShares`]). One result per share, in
    /// order; a share that could not be sent is not read, and one that was sent is always
    /// read to its end (or its connection is broken), so no connection is left with
    /// replies pending.
    pub(crate) fn exec_shares(jobs: &[(&Connection, Share<'_>)]) -> Vec<Result<Vec<Value>>> {
        let (mut sent, results) = SentShares::send(jobs);
        results
            .into_iter()
            .enumerate()
            .map(|(g, r)| r.and_then(|()| sent.read_rest(g)))
            .collect()
    }

    /// One share of a pipeline on this connection (see [`Connection::exec_shares`]).
    pub(crate) fn exec_share(&self, share: Share<'_>) -> Result<Vec<Value>> {
        let (mut sent, mut results) = SentShares::send(&[(self, share)]);
        results
            .pop()
            .unwrap_or(Ok(()))
            .and_then(|()| sent.read_rest(0))
    }
}

impl Execute for Connection {
    fn exec(&self, cmd: &Cmd) -> Result<Value> {
        self.inner.lock().exec(cmd)
    }

    fn exec_pipeline(&self, pipeline: &Pipeline) -> Result<Vec<Value>> {
        self.inner.lock().exec_pipeline(pipeline)
    }

    fn exec_frame(&self, cmd: &Cmd, read: &mut dyn FnMut(Frame<'_>) -> Result<()>) -> Result<()> {
        self.inner.lock().exec_frame(cmd, read)
    }

    fn exec_pipeline_replies(
        &self,
        pipeline: &Pipeline,
        build: &mut BuildReplies<'_>,
    ) -> Option<Result<()>> {
        if pipeline.is_atomic() {
            return None;
        }
        Some(self.inner.lock().exec_pipeline_replies(pipeline, build))
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("addr", &self.config.addr)
            .field("protocol", &self.config.protocol)
            .field("db", &self.config.db)
            .field("server_version", &self.server_version)
            .field("broken", &self.is_broken())
            .finish()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.inner.get_mut().stream.shutdown();
    }
}

impl Inner {
    /// See [`Connection::local_state`].
    fn local_state(&self) -> PeerState {
        if self.broken.is_some() {
            PeerState::Closed
        } else if self.decoder.buffered() > 0 {
            PeerState::DataPending
        } else {
            PeerState::Unknown
        }
    }

    fn handshake(&mut self, config: &ConnectionConfig) -> Result<handshake::Hello> {
        let steps = handshake::commands(config);
        let mut hello = handshake::Hello::default();
        if steps.is_empty() {
            return Ok(hello);
        }
        self.wbuf.clear();
        for (_, c) in &steps {
            c.encode(&mut self.wbuf);
        }
        self.flush_wbuf()?;
        // Read every reply even after a failure, so the first error is the one reported
        // (also when the server closes after it, as it does at maxclients).
        let mut first_err = None;
        for (step, c) in &steps {
            let mut reply = match self.read_reply() {
                Ok(reply) => reply,
                Err(e) => return Err(first_err.unwrap_or(e)),
            };
            scrub_reply(c, &mut reply);
            if let Err(e) = handshake::check(*step, reply, &mut hello) {
                first_err.get_or_insert(e);
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(hello),
        }
    }

    /// RESET, then the handshake again, pipelined.
    fn reset(&mut self, config: &ConnectionConfig) -> Result<()> {
        let steps = handshake::commands(config);
        self.wbuf.clear();
        crate::resp::encode_command(&mut self.wbuf, [&b"RESET"[..]]);
        for (_, c) in &steps {
            c.encode(&mut self.wbuf);
        }
        self.flush_wbuf()?;
        let reset = self.read_reply()?;
        let mut hello = handshake::Hello::default();
        let mut first_err = match reset {
            Value::Error(e) => Some(Error::from(e)),
            _ => None,
        };
        for (step, c) in &steps {
            let mut reply = self.read_reply()?;
            scrub_reply(c, &mut reply);
            if let Err(e) = handshake::check(*step, reply, &mut hello) {
                first_err.get_or_insert(e);
            }
        }
        self.pushes.clear();
        match first_err {
            Some(e) => Err(e),
            None => {
                self.session = SessionState::default();
                Ok(())
            }
        }
    }

    pub(crate) fn exec(&mut self, cmd: &Cmd) -> Result<Value> {
        self.check_usable()?;
        self.check_sendable(cmd)?;
        self.session.observe(cmd, self.db);
        if let Some((plan, total)) = self.slicing(cmd) {
            return self.exec_sliced(cmd, plan, total);
        }
        self.encode(cmd);
        let mut reply = self.with_blocking(cmd.blocking_mode(), |inner| {
            inner.flush_wbuf()?;
            inner.read_reply()
        })?;
        // (After a failure the connection is broken: its buffers go with it.)
        self.decoder.end_call();
        scrub_reply(cmd, &mut reply);
        reply.into_result()
    }

    /// As [`Inner::exec`], but the reply is read in place by `read` (no `Value` built).
    pub(crate) fn exec_frame(
        &mut self,
        cmd: &Cmd,
        read: &mut dyn FnMut(Frame<'_>) -> Result<()>,
    ) -> Result<()> {
        self.check_usable()?;
        self.check_sendable(cmd)?;
        self.session.observe(cmd, self.db);
        let result = match self.slicing(cmd) {
            Some((plan, total)) => self.exec_frame_sliced(cmd, plan, total, read),
            None => {
                self.encode(cmd);
                self.with_blocking(cmd.blocking_mode(), |inner| {
                    inner.flush_wbuf()?;
                    inner.read_frame(read)
                })
                .map_err(|e| scrub_error(cmd, e))
            }
        };
        // Done with the reply: let the decoder drop a big drained buffer now rather than at
        // the next command (an idle pooled connection keeps nothing it does not need).
        self.decoder.end_call();
        result
    }

    pub(crate) fn exec_pipeline(&mut self, p: &Pipeline) -> Result<Vec<Value>> {
        self.check_usable()?;
        if p.is_empty() && !p.is_atomic() {
            return Ok(Vec::new());
        }
        let blocking = self.prepare_pipeline(p)?;
        let replies = self.with_blocking(blocking, |inner| {
            inner.flush_wbuf()?;
            if p.is_atomic() {
                inner.read_atomic(p.commands())
            } else {
                inner.read_plain(p)
            }
        });
        self.decoder.end_call();
        replies
    }

    /// The replies of the non-atomic pipeline `p`, sent: one per command, scrubbed.
    fn read_plain(&mut self, p: &Pipeline) -> Result<Vec<Value>> {
        let mut replies = Vec::with_capacity(p.len());
        for c in p.commands() {
            let mut reply = self.read_reply()?;
            scrub_reply(c, &mut reply);
            replies.push(reply);
        }
        Ok(replies)
    }

    /// Send a share of a pipeline (see [`SentShares`]) and stop there, with each reply's
    /// time bound set for its replies; [`SentShares`] reads them and puts the bound back.
    fn send_share(&mut self, share: Share<'_>) -> Result<()> {
        self.check_usable()?;
        if share.is_empty() {
            return Ok(());
        }
        self.wbuf.clear();
        self.wparts.clear();
        let max_bulk_len = self.decoder.limits().max_bulk_len;
        let encoded = share.encode_checked(&mut self.wbuf, &mut self.wparts, max_bulk_len)?;
        if encoded.effects {
            self.observe_sent(share.commands());
        }
        self.reply_timeout = self.blocking_timeout(encoded.blocking);
        self.flush_wbuf()
    }

    /// A non-atomic pipeline whose replies are read in place, one at a time, by `build`
    /// (see `Execute::exec_pipeline_replies`).
    pub(crate) fn exec_pipeline_replies(
        &mut self,
        p: &Pipeline,
        build: &mut BuildReplies<'_>,
    ) -> Result<()> {
        debug_assert!(!p.is_atomic());
        self.check_usable()?;
        let blocking = if p.is_empty() {
            Blocking::No
        } else {
            self.prepare_pipeline(p)?
        };
        let result = self.with_blocking(blocking, |inner| {
            if !p.is_empty() {
                inner.flush_wbuf()?;
            }
            inner.read_replies(p, build)
        });
        self.decoder.end_call();
        result
    }

    /// Read the replies of `p` (sent, not atomic) into `build`, then any it left unread.
    /// Precedence: a broken connection, then the first server error reply, then a
    /// conversion error (as `Pipeline::query` over values has it).
    fn read_replies(&mut self, p: &Pipeline, build: &mut BuildReplies<'_>) -> Result<()> {
        let cmds = p.commands();
        let ignored = p.ignored();
        let mut at = 0;
        let mut skipped = 0;
        // Set when the error `next` returns is a server error reply (not a conversion one).
        let mut server_error = false;
        let built = {
            let mut next = |read: &mut dyn FnMut(Frame<'_>) -> Result<()>| -> Result<()> {
                loop {
                    let Some(c) = cmds.get(at) else {
                        return Err(Error::conversion("more replies read than commands sent"));
                    };
                    let skip = ignored.get(skipped) == Some(&at);
                    at += 1;
                    let mut called = false;
                    let r = if skip {
                        skipped += 1;
                        self.read_frame(&mut |_| Ok(()))
                    } else {
                        self.read_frame_with(|f| {
                            called = true;
                            read(f)
                        })
                    };
                    match r {
                        Ok(()) if skip => continue,
                        Ok(()) => return Ok(()),
                        Err(e) if called || self.broken.is_some() => return Err(e),
                        Err(e) => {
                            server_error = true;
                            return Err(scrub_error(c, e));
                        }
                    }
                }
            };
            build(&mut next)
        };
        if self.broken.is_some() {
            return built;
        }
        // What `build` left unread (replies after a failure, ignored ones at the end).
        let mut later = None;
        while let Some(c) = cmds.get(at) {
            at += 1;
            if let Err(e) = self.read_frame(&mut |_| Ok(())) {
                if self.broken.is_some() {
                    return Err(e);
                }
                later.get_or_insert_with(|| scrub_error(c, e));
            }
        }
        match built {
            Err(e) if server_error => Err(e),
            // Any server error reply wins over a conversion error.
            Err(e) => Err(later.unwrap_or(e)),
            Ok(()) => later.map_or(Ok(()), Err),
        }
    }

    /// Encode `p` into the write buffer and note its session effects (nothing sent yet);
    /// the longest one of its commands may block.
    fn prepare_pipeline(&mut self, p: &Pipeline) -> Result<Blocking> {
        self.wbuf.clear();
        self.wparts.clear();
        let max_bulk_len = self.decoder.limits().max_bulk_len;
        let encoded = p.encode_checked(&mut self.wbuf, &mut self.wparts, max_bulk_len)?;
        if encoded.effects {
            self.observe_sent(p.commands().iter());
        }
        if p.is_atomic() {
            // The pipeline's own MULTI ... EXEC: EXEC ends the transaction and any WATCH,
            // whatever its outcome (and a failure on the way breaks the connection).
            self.session.in_multi = false;
            self.session.watching = false;
        }
        Ok(encoded.blocking)
    }

    /// Note the session effects of `cmds` (encoded, checked, not sent yet: see
    /// `Pipeline::encode_checked`).
    #[cold]
    fn observe_sent<'c>(&mut self, cmds: impl Iterator<Item = &'c Cmd>) {
        for c in cmds {
            self.session.observe(c, self.db);
        }
    }

    /// Read the replies of MULTI, the queued `cmds` and EXEC.
    fn read_atomic(&mut self, cmds: &[Cmd]) -> Result<Vec<Value>> {
        let multi = self.read_reply()?;
        let mut queue_err = None;
        for c in cmds {
            let mut reply = self.read_reply()?;
            scrub_reply(c, &mut reply);
            if let Value::Error(e) = reply {
                queue_err.get_or_insert(e);
            }
        }
        let exec = self.read_reply()?;
        if let Value::Error(e) = multi {
            return Err(e.into());
        }
        match exec.strip_attributes() {
            Value::Array(mut items) => {
                for (v, c) in items.iter_mut().zip(cmds) {
                    scrub_reply(c, v);
                }
                Ok(items)
            }
            Value::Nil => Err(Error::new(
                ErrorKind::Aborted,
                "EXEC returned nil: a watched key changed, nothing was applied",
            )),
            Value::Error(e) => {
                // A queued command redirected (the slot moved or is moving): the server
                // discarded the transaction, nothing was applied, and the redirect says where
                // to run all of it, so report the redirect (a cluster client follows it).
                if let Some(q) = queue_err.as_ref().filter(|q| q.redirect().is_some()) {
                    let mut err = Error::from(q.clone());
                    err.set_detail(format!(
                        "{}; the transaction was discarded ({e})",
                        err.detail()
                    ));
                    return Err(err);
                }
                let mut err = Error::from(e);
                if let Some(q) = queue_err {
                    err.set_detail(format!("{}; first rejected command: {}", err.detail(), q));
                }
                Err(err)
            }
            other => Err(self.poison(Error::protocol(format!(
                "unexpected {} reply to EXEC",
                other.type_name()
            )))),
        }
    }

    /// When `cmd` must be sent in slices: its re-issue plan and how long the caller lets it
    /// block in total (`None`: for ever).
    fn slicing(&self, cmd: &Cmd) -> Option<(Reissue, Option<Duration>)> {
        let slice = self.blocking_slice?;
        let total = match cmd.blocking_mode() {
            Blocking::No => return None,
            Blocking::For(d) if d <= slice => return None,
            Blocking::For(d) => Some(d),
            Blocking::Forever => None,
        };
        Reissue::plan(cmd).map(|p| (p, total))
    }

    /// The next slice of a sliced blocking command: `cmd` with its timeout set to at most
    /// one slice of what is left before `until`; `None` once nothing is left. The second
    /// value tells whether this is the last slice.
    fn next_slice(&self, cmd: &Cmd, plan: Reissue, until: Option<Instant>) -> Option<(Cmd, bool)> {
        let slice = self.blocking_slice.unwrap_or(Duration::MAX);
        let (wait, last) = match until {
            None => (slice, false),
            Some(t) => {
                let left = t.saturating_duration_since(Instant::now());
                if left < Duration::from_millis(1) {
                    return None;
                }
                (left.min(slice), left <= slice)
            }
        };
        Some((plan.with_wait(cmd, wait), last))
    }

    /// Run a blocking command as a loop of bounded server-side waits (see [`Blocking`]).
    fn exec_sliced(&mut self, cmd: &Cmd, plan: Reissue, total: Option<Duration>) -> Result<Value> {
        let until = total.and_then(|d| Instant::now().checked_add(d));
        let mut reply = Value::Nil;
        while let Some((part, last)) = self.next_slice(cmd, plan, until) {
            self.encode(&part);
            reply = self.with_blocking(part.blocking_mode(), |inner| {
                inner.flush_wbuf()?;
                inner.read_reply()
            })?;
            if last || !plan.is_nothing_yet(&reply) {
                break;
            }
        }
        reply.into_result()
    }

    /// As [`Inner::exec_sliced`], with the final reply read in place.
    fn exec_frame_sliced(
        &mut self,
        cmd: &Cmd,
        plan: Reissue,
        total: Option<Duration>,
        read: &mut dyn FnMut(Frame<'_>) -> Result<()>,
    ) -> Result<()> {
        let until = total.and_then(|d| Instant::now().checked_add(d));
        while let Some((part, last)) = self.next_slice(cmd, plan, until) {
            self.encode(&part);
            let mut again = false;
            self.with_blocking(part.blocking_mode(), |inner| {
                inner.flush_wbuf()?;
                inner.read_frame(&mut |f| {
                    if !last && plan.is_nothing_yet_frame(&f) {
                        again = true;
                        Ok(())
                    } else {
                        read(f)
                    }
                })
            })?;
            if !again {
                return Ok(());
            }
        }
        // The caller's timeout ran out between two slices: that is a timed-out wait.
        crate::resp::with_value_frame(&Value::Nil, read)
    }

    /// Run `f` with the read timeout extended for a blocking command.
    fn with_blocking<T>(
        &mut self,
        blocking: Blocking,
        f: impl FnOnce(&mut Inner) -> Result<T>,
    ) -> Result<T> {
        let wanted = self.blocking_timeout(blocking);
        self.with_read_timeout(wanted, f)
    }

    /// How long each reply may take when a command blocks the server as `blocking` says:
    /// the read timeout, plus the command's own wait (`None`: no bound).
    fn blocking_timeout(&self, blocking: Blocking) -> Option<Duration> {
        match (blocking, self.read_timeout) {
            (Blocking::No, b) => b,
            (Blocking::Forever, _) => None,
            (Blocking::For(d), Some(b)) => Some(b.saturating_add(d)),
            (Blocking::For(_), None) => None,
        }
    }

    /// Run `f` with each reply bounded by `wanted` instead of the read timeout.
    fn with_read_timeout<T>(
        &mut self,
        wanted: Option<Duration>,
        f: impl FnOnce(&mut Inner) -> Result<T>,
    ) -> Result<T> {
        self.reply_timeout = wanted;
        let out = f(self);
        self.reply_timeout = self.read_timeout;
        out
    }

    /// A reply is awaited from now: it must be complete within the reply timeout (the
    /// deadline is fixed by the first socket read it needs, a few instructions later).
    fn start_reply(&mut self) {
        self.deadline = None;
    }

    /// Make the socket's read timeout what is left until the deadline (within
    /// [`DEADLINE_SLACK`], so that the usual reply costs no system call).
    #[inline(always)]
    fn arm_socket(&mut self, left: Option<Duration>) -> Result<()> {
        let close_enough = match (self.socket_read_timeout, left) {
            (None, None) => true,
            (Some(cur), Some(left)) => cur.max(left) - cur.min(left) <= DEADLINE_SLACK,
            _ => false,
        };
        if !close_enough {
            self.stream
                .set_read_timeout(left)
                .map_err(|e| self.poison(e))?;
            self.socket_read_timeout = left;
        }
        Ok(())
    }

    /// The reply did not arrive by its deadline: the connection cannot be used again.
    fn timed_out(&mut self, source: Option<std::io::Error>) -> Error {
        let waited = self
            .reply_timeout
            .map_or_else(|| "?".to_owned(), |t| format!("{t:?}"));
        let mut e = Error::new(
            ErrorKind::Timeout,
            format!("no complete reply within {waited}"),
        );
        if let Some(source) = source {
            e = e.with_source(source);
        }
        self.poison(e)
    }

    /// Refuse, before anything is written, a command that cannot be sent: one after which
    /// replies would no longer pair with requests (SUBSCRIBE, MONITOR, ...; see the command
    /// table), one without a name, or one with an argument over `max_bulk_len`. The
    /// connection stays usable.
    #[inline]
    fn check_sendable(&self, cmd: &Cmd) -> Result<()> {
        self.check_refusal(cmd)?;
        cmd.check_sendable(self.decoder.limits().max_bulk_len)
    }

    /// The command-table half of [`Inner::check_sendable`] (pipelines check lengths while
    /// encoding).
    #[inline]
    fn check_refusal(&self, cmd: &Cmd) -> Result<()> {
        match cmd.refusal() {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }

    /// Put `cmd` in the write buffer (its large arguments in `wparts`).
    #[inline]
    fn encode(&mut self, cmd: &Cmd) {
        self.wbuf.clear();
        if !self.wparts.is_empty() {
            self.wparts.clear();
        }
        // (Checked already: no length limit to look at again.)
        if !cmd.encode_plain(&mut self.wbuf, usize::MAX) {
            cmd.encode_parts(&mut self.wbuf, &mut self.wparts);
        }
    }

    fn check_usable(&self) -> Result<()> {
        match &self.broken {
            None => Ok(()),
            Some(why) => Err(Error::new(
                ErrorKind::Broken,
                format!("connection unusable after an earlier failure: {why}"),
            )),
        }
    }

    /// Mark the connection broken for good and pass the error on.
    fn poison(&mut self, e: Error) -> Error {
        if self.broken.is_none() {
            log::debug!("connection broken: {e}");
            self.broken = Some(e.to_string());
            self.stream.shutdown();
        }
        e
    }

    fn flush_wbuf(&mut self) -> Result<()> {
        if !self.wparts.is_empty() {
            return self.flush_spliced();
        }
        let r = self
            .stream
            .write_all(&self.wbuf)
            .and_then(|_| self.stream.flush());
        self.settle_wbuf();
        r.map_err(|e| {
            let e = Error::io(ErrorKind::Io, "write", e);
            self.poison(e)
        })
    }

    /// After a write: keep the write buffer for the next command unless it grew past what
    /// recent commands need (see `Keep`: at most 256 KiB is kept).
    #[inline]
    fn settle_wbuf(&mut self) {
        if self.wbuf.capacity() > crate::resp::SMALL_CAPACITY {
            self.settle_big_wbuf();
        }
    }

    #[cold]
    fn settle_big_wbuf(&mut self) {
        self.wkeep.used(self.wbuf.len());
        if self.wkeep.release(self.wbuf.capacity()) {
            self.wbuf = Vec::with_capacity(1024);
        }
    }

    /// `flush_wbuf` with large arguments: each written from where it is.
    #[cold]
    fn flush_spliced(&mut self) -> Result<()> {
        let r = write_spliced(&mut self.stream, &self.wbuf, &self.wparts)
            .and_then(|_| self.stream.flush());
        // Let go of the large arguments at once (the caller may hold the last handle).
        self.wparts.clear();
        self.settle_wbuf();
        r.map_err(|e| {
            let e = Error::io(ErrorKind::Io, "write", e);
            self.poison(e)
        })
    }

    /// Read the next reply, setting push frames aside.
    #[inline]
    pub(crate) fn read_reply(&mut self) -> Result<Value> {
        self.start_reply();
        loop {
            match self.decoder.next_value() {
                Ok(Some(v)) if v.is_push() => self.stash_push(v),
                Ok(Some(v)) => return Ok(v),
                Ok(None) => {
                    if self.decoder.may_take_large_bulk(DIRECT_BULK) {
                        if let Some(bytes) = self.read_large_reply()? {
                            return Ok(Value::Bulk(bytes));
                        }
                    }
                    self.fill()?
                }
                Err(e) => return Err(self.poison(e)),
            }
        }
    }

    /// Read the next reply (setting pushes aside) and hand it to `read`; an error reply is
    /// returned as `Err` without calling `read`.
    fn read_frame(&mut self, read: &mut dyn FnMut(Frame<'_>) -> Result<()>) -> Result<()> {
        self.read_frame_with(read)
    }

    /// [`Inner::read_frame`], generic over `read` (a typed pipeline's reader of each reply
    /// is called directly).
    fn read_frame_with<F>(&mut self, mut read: F) -> Result<()>
    where
        F: FnMut(Frame<'_>) -> Result<()>,
    {
        self.start_reply();
        loop {
            match self.decoder.next_reply_or_owned(OWNED_REPLY) {
                Ok(Some(Next::Owned(bytes))) => return crate::resp::with_owned_bulk(bytes, read),
                Ok(Some(Next::Reply(reply))) => {
                    let f = reply.frame();
                    // One look at the node: most replies are neither pushes nor errors.
                    match f.kind() {
                        FrameKind::Push => {
                            let push = f.to_value();
                            self.stash_push(push);
                            continue;
                        }
                        FrameKind::Error => {
                            return match f.server_error() {
                                Some(e) => Err(e.into()),
                                None => read(f),
                            }
                        }
                        _ => return read(f),
                    }
                }
                Ok(None) => {
                    if self.decoder.may_take_large_bulk(DIRECT_BULK) {
                        if let Some(bytes) = self.read_large_reply()? {
                            return crate::resp::with_owned_bulk(bytes, read);
                        }
                    }
                    self.fill()?
                }
                Err(e) => return Err(self.poison(e)),
            }
        }
    }

    fn next_unpaired(&mut self, wait: Duration) -> Result<Option<Value>> {
        self.check_usable()?;
        if let Some(v) = self.pushes.pop_front() {
            return Ok(Some(v));
        }
        let until = Instant::now().checked_add(wait);
        loop {
            match self.decoder.next_value() {
                Ok(Some(v)) => return Ok(Some(v)),
                Ok(None) => {}
                Err(e) => return Err(self.poison(e)),
            }
            let left = match until {
                None => None,
                Some(u) => {
                    let left = u.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(None);
                    }
                    Some(left)
                }
            };
            self.arm_socket(left)?;
            let stream = &mut self.stream;
            match self.decoder.read_with(READ_CHUNK, |room| stream.read(room)) {
                Ok(0) => {
                    let e = Error::new(ErrorKind::Io, "connection closed by the server");
                    return Err(self.poison(e));
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => {
                    let e = Error::io(ErrorKind::Io, "read", e);
                    return Err(self.poison(e));
                }
            }
        }
    }

    fn stash_push(&mut self, v: Value) {
        if self.pushes.len() >= MAX_PENDING_PUSHES {
            self.pushes.pop_front();
            self.dropped_pushes += 1;
        }
        self.pushes.push_back(v);
    }

    /// A failed socket read while a reply is awaited: `Ok` to read again (interrupted, or
    /// the socket timeout ended before the reply's deadline, `left` being the time that
    /// was left), otherwise the error, the connection broken (a timeout at the deadline, an
    /// I/O error).
    fn read_failed(&mut self, e: std::io::Error, left: Option<Duration>) -> Result<()> {
        match e.kind() {
            std::io::ErrorKind::Interrupted => Ok(()),
            // The socket timeout may end a little before the deadline: look again.
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => match left {
                Some(_) => Ok(()),
                None => Err(self.timed_out(Some(e))),
            },
            _ => Err(self.poison(Error::io(ErrorKind::Io, "read", e))),
        }
    }

    /// Read more bytes from the socket straight into the decoder's buffer, waiting no
    /// longer than the reply's deadline.
    fn fill(&mut self) -> Result<()> {
        loop {
            let left = self.time_left()?;
            self.arm_socket(left)?;
            let stream = &mut self.stream;
            match self.decoder.read_with(READ_CHUNK, |room| stream.read(room)) {
                Ok(0) => {
                    let e = Error::new(ErrorKind::Io, "connection closed by the server");
                    return Err(self.poison(e));
                }
                Ok(_) => return Ok(()),
                Err(e) => self.read_failed(e, left)?,
            }
        }
    }

    /// What is left until the reply's deadline (`None`: no bound), fixing the deadline at
    /// the reply's first read; a timeout error (the connection broken) once it has passed.
    #[inline]
    fn time_left(&mut self) -> Result<Option<Duration>> {
        // (A timeout too long for the clock to represent is no timeout.)
        Ok(match self.reply_timeout {
            None => None,
            Some(t) => {
                let now = Instant::now();
                match self.deadline {
                    // The reply's first read: all of the timeout is left.
                    None => now.checked_add(t).map(|deadline| {
                        self.deadline = Some(deadline);
                        t
                    }),
                    Some(deadline) => {
                        let left = deadline.saturating_duration_since(now);
                        if left.is_zero() {
                            return Err(self.timed_out(None));
                        }
                        Some(left)
                    }
                }
            }
        })
    }

    /// When the reply is one bulk string with [`DIRECT_BULK`] bytes or more still to come:
    /// read it whole, straight into a buffer of its own (see `Decoder::take_large_bulk`);
    /// `None` (nothing read) otherwise.
    #[cold]
    #[inline(never)]
    fn read_large_reply(&mut self) -> Result<Option<Bytes>> {
        match self.decoder.take_large_bulk(DIRECT_BULK) {
            Some(body) => self.read_large_bulk(body).map(Some),
            None => Ok(None),
        }
    }

    /// Read the rest of a large bulk string reply straight into its own buffer (see
    /// `Decoder::take_large_bulk`), within the reply's deadline. Any failure breaks the
    /// connection: the decoder no longer knows where the stream is.
    fn read_large_bulk(&mut self, mut body: LargeBulk) -> Result<Bytes> {
        while body.missing() != 0 {
            let left = self.time_left()?;
            self.arm_socket(left)?;
            let (buf, room) = body.room();
            match self.stream.read_append(buf, room.min(DRAIN_MAX)) {
                Ok(0) => {
                    let e = Error::new(
                        ErrorKind::Io,
                        "connection closed by the server in the middle of a reply",
                    );
                    return Err(self.poison(e));
                }
                Ok(_) => {}
                Err(e) => self.read_failed(e, left)?,
            }
        }
        body.finish().map_err(|e| self.poison(e))
    }
}

/// Write `wbuf` with the large arguments in `parts` spliced in at their offsets, each
/// from where it is (no copy into one buffer).
fn write_spliced(w: &mut Stream, wbuf: &[u8], parts: &[(usize, Bytes)]) -> std::io::Result<()> {
    let mut from = 0;
    for (at, bytes) in parts {
        write_fully(w, wbuf.get(from..*at).unwrap_or_default())?;
        write_fully(w, bytes)?;
        from = *at;
    }
    write_fully(w, wbuf.get(from..).unwrap_or_default())
}

/// `write_all`, spelled out so that the small-command path keeps its own inlined copy.
fn write_fully(w: &mut Stream, mut buf: &[u8]) -> std::io::Result<()> {
    while !buf.is_empty() {
        match w.write(buf) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = buf.get(n..).unwrap_or_default(),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
