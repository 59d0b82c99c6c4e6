//! [`Redlock`]: one lock over N independent servers, held when a majority granted it
//! within the lease (minus the time taken and a drift allowance).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;

use super::backend::{Backend, NativeCommands};
use super::error::is_availability;
use super::keys::LockKeys;
use super::lease::deadline_after;
use super::{check_ttl, new_token, LockError, LockErrorKind, Release};
use crate::cmd::Execute;
use crate::error::Error;

type Nodes<E> = Arc<[Backend<E>]>;

/// A lock over N independent servers (not replicas of each other), after the Redlock
/// algorithm: `SET key token NX PX ttl` on every server in turn; the lock is held when a
/// majority said yes and the time spent left some lease (`ttl − elapsed − drift`);
/// otherwise it is released everywhere. Read the limits in the patterns docs ("Locks")
/// before relying on it for correctness: it tolerates a minority of servers failing, but
/// it depends on bounded pauses and clock rates, and it issues no fencing token.
///
/// ```no_run
/// use std::time::Duration;
/// use valkit::{lock::Redlock, Connection};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let nodes = ["redis://10.0.0.1:6379", "redis://10.0.0.2:6379", "redis://10.0.0.3:6379"]
///     .iter()
///     .map(|u| Connection::open_url(u))
///     .collect::<Result<Vec<_>, _>>()?;
/// let redlock = Redlock::new(nodes)?;
/// if let Some(guard) = redlock.try_acquire("daily-export", Duration::from_secs(30))? {
///     // held on a majority until guard.deadline()
///     guard.release()?;
/// }
/// # Ok(()) }
/// ```
pub struct Redlock<E: Execute> {
    nodes: Nodes<E>,
    prefix: String,
    retry_delay: Duration,
}

/// Settings for [`Redlock`]; made by [`Redlock::builder`].
#[derive(Debug)]
pub struct RedlockBuilder<E> {
    nodes: Vec<E>,
    prefix: String,
    native: NativeCommands,
    retry_delay: Duration,
}

impl<E: Execute> RedlockBuilder<E> {
    /// Key prefix (default `lock:`).
    pub fn prefix(mut self, prefix: &str) -> Self {
        self.prefix = prefix.to_owned();
        self
    }

    /// Native commands or Lua for the release (default [`NativeCommands::Auto`], asked
    /// of each server).
    pub fn native_commands(mut self, native: NativeCommands) -> Self {
        self.native = native;
        self
    }

    /// Pause between rounds of [`Redlock::acquire_within`] (default 50 ms, jittered down
    /// to half of it, so contenders do not keep splitting the votes).
    pub fn retry_delay(mut self, delay: Duration) -> Self {
        self.retry_delay = delay.max(Duration::from_millis(1));
        self
    }

    /// Build it.
    ///
    /// # Errors
    /// [`InvalidArgument`](LockErrorKind::InvalidArgument) without any server.
    pub fn build(self) -> Result<Redlock<E>, LockError> {
        if self.nodes.is_empty() {
            return Err(LockError::invalid("Redlock needs at least one server"));
        }
        let native = self.native;
        Ok(Redlock {
            nodes: self
                .nodes
                .into_iter()
                .map(|ex| Backend::new(ex, native))
                .collect(),
            prefix: self.prefix,
            retry_delay: self.retry_delay,
        })
    }
}

impl<E: Execute> Redlock<E> {
    /// Redlock over these servers with default settings.
    ///
    /// # Errors
    /// [`InvalidArgument`](LockErrorKind::InvalidArgument) without any server.
    pub fn new(nodes: Vec<E>) -> Result<Redlock<E>, LockError> {
        Redlock::builder(nodes).build()
    }

    /// Start configuring Redlock over these servers.
    pub fn builder(nodes: Vec<E>) -> RedlockBuilder<E> {
        RedlockBuilder {
            nodes,
            prefix: "lock:".to_owned(),
            native: NativeCommands::Auto,
            retry_delay: Duration::from_millis(50),
        }
    }

    /// How many servers must grant the lock: a majority, N/2 + 1.
    pub fn quorum(&self) -> usize {
        self.nodes.len() / 2 + 1
    }

    /// One round: `Some` when a majority granted the lock with lease left, `None` when
    /// not (what was granted is released again).
    ///
    /// # Errors
    /// [`Unavailable`](LockErrorKind::Unavailable) when so many servers failed that no
    /// majority could have answered yes (the cause is the last failure);
    /// [`InvalidArgument`](LockErrorKind::InvalidArgument) for a bad name or TTL.
    pub fn try_acquire(
        &self,
        name: &str,
        ttl: Duration,
    ) -> Result<Option<RedlockGuard<E>>, LockError> {
        check_ttl(ttl)?;
        let keys = LockKeys::new(&self.prefix, name)?;
        let token = new_token();
        self.round(keys, token, ttl).map(Result::ok)
    }

    /// Rounds until one succeeds or `wait` ends, with a jittered pause between rounds.
    ///
    /// # Errors
    /// [`NotAcquired`](LockErrorKind::NotAcquired) when `wait` ends;
    /// [`Unavailable`](LockErrorKind::Unavailable) when a majority of servers failed in
    /// the last round.
    pub fn acquire_within(
        &self,
        name: &str,
        ttl: Duration,
        wait: Duration,
    ) -> Result<RedlockGuard<E>, LockError> {
        check_ttl(ttl)?;
        let mut keys = LockKeys::new(&self.prefix, name)?;
        let token = new_token();
        let until = Instant::now() + wait;
        loop {
            match self.round(keys, token.clone(), ttl)? {
                Ok(guard) => return Ok(guard),
                Err(k) => keys = k,
            }
            let now = Instant::now();
            if now >= until {
                return Err(LockError::new(
                    LockErrorKind::NotAcquired,
                    format!("no majority for {} within {wait:?}", keys.lock),
                ));
            }
            let pause = self
                .retry_delay
                .mul_f64(rand::thread_rng().gen_range(0.5..=1.0));
            std::thread::sleep(pause.min(until - now));
        }
    }

    /// One round. `Ok(Err(keys))`: no quorum (released again).
    fn round(
        &self,
        keys: LockKeys,
        token: String,
        ttl: Duration,
    ) -> Result<Result<RedlockGuard<E>, LockKeys>, LockError> {
        let started = Instant::now();
        let mut granted = 0;
        let mut failed = 0;
        let mut last_error: Option<Error> = None;
        for node in self.nodes.iter() {
            match node.set_nx(&keys.lock, &token, ttl) {
                Ok(true) => granted += 1,
                Ok(false) => {}
                Err(e) => {
                    failed += 1;
                    if !is_availability(&e) {
                        log::debug!("Redlock: server error on {}: {e}", keys.lock);
                    }
                    last_error = Some(e);
                }
            }
        }
        let deadline = deadline_after(started, ttl);
        if granted >= self.quorum() && Instant::now() < deadline {
            return Ok(Ok(RedlockGuard {
                nodes: self.nodes.clone(),
                keys,
                token,
                deadline,
                granted,
                done: false,
            }));
        }
        // Not held: undo everywhere (a SET may have been applied even where the reply was
        // lost).
        release_all(&self.nodes, &keys, &token);
        if failed > self.nodes.len() - self.quorum() {
            let mut err = LockError::new(
                LockErrorKind::Unavailable,
                format!(
                    "{failed} of {} servers failed; a majority ({}) is needed",
                    self.nodes.len(),
                    self.quorum()
                ),
            );
            err.set_cause(last_error);
            return Err(err);
        }
        Ok(Err(keys))
    }
}

/// Compare-and-delete on every server; the number of servers that released it.
fn release_all<E: Execute>(nodes: &[Backend<E>], keys: &LockKeys, token: &str) -> usize {
    let mut released = 0;
    let no_waiters = std::sync::atomic::AtomicBool::new(false);
    for node in nodes {
        match node.release(keys, token, &no_waiters, Duration::from_millis(1)) {
            Ok(Release::Released) => released += 1,
            Ok(_) => {}
            Err(e) => log::debug!("Redlock: releasing {} failed: {e}", keys.lock),
        }
    }
    released
}

impl<E: Execute> fmt::Debug for Redlock<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redlock")
            .field("servers", &self.nodes.len())
            .field("quorum", &self.quorum())
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// A lock held on a majority of [`Redlock`] servers; released everywhere on drop.
pub struct RedlockGuard<E: Execute> {
    nodes: Nodes<E>,
    keys: LockKeys,
    token: String,
    deadline: Instant,
    granted: usize,
    done: bool,
}

impl<E: Execute> RedlockGuard<E> {
    /// The end of the validity time: round start + TTL − drift (1 % + 2 ms). Past it, a
    /// majority may have let the key expire.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Validity left (zero once the deadline passed).
    pub fn time_left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// How many servers granted the lock.
    pub fn granted(&self) -> usize {
        self.granted
    }

    /// Release on every server; the number of servers where it still held our token.
    ///
    /// # Errors
    /// None today (failures per server are logged); the `Result` leaves room for a
    /// policy.
    pub fn release(mut self) -> Result<usize, LockError> {
        self.done = true;
        Ok(release_all(&self.nodes, &self.keys, &self.token))
    }
}

impl<E: Execute> Drop for RedlockGuard<E> {
    fn drop(&mut self) {
        if !self.done {
            release_all(&self.nodes, &self.keys, &self.token);
        }
    }
}

impl<E: Execute> fmt::Debug for RedlockGuard<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedlockGuard")
            .field("key", &self.keys.lock)
            .field("granted", &self.granted)
            .field("time_left", &self.time_left())
            .finish()
    }
}
