//! The one attempt loop every call takes, whatever the topology: the topology chooses the
//! node per attempt; this loop asks its breaker, checks out a connection, sends `ASKING`
//! when told to, runs the attempt, then reads the error's class: a redirect (`MOVED`/`ASK`,
//! for a topology that follows them) goes elsewhere at once, within [`MAX_REDIRECTS`] and
//! without counting as an attempt; anything else is retried per the [`RetryPolicy`] after a
//! backoff; [`Client::run`] adds metrics and observers.

use std::time::{Duration, Instant, SystemTime};

use super::breaker::Permit;
use super::retry::{is_availability_failure, RetryPolicy};
use super::routing::CommandName;
use super::topology::{Call, Node, Previous, Topology, MAX_REDIRECTS};
use super::{Client, CommandEvent, Endpoint, Retry};
use crate::cmd::{cmd, Execute};
use crate::conn::Connection;
use crate::error::{Error, ErrorKind, Result, ServerErrorKind};

/// How a call's attempts went, besides the result (filled in by [`attempt_loop`]).
pub(crate) struct Tally {
    /// Attempts made (redirects not counted; 0 when the breaker refused the call).
    pub(crate) attempts: u32,
    /// The endpoint label of the last node tried (the writer when none was).
    pub(crate) endpoint: Endpoint,
    /// When the last connection went back to its pool.
    pub(crate) returned: Option<Instant>,
}

impl Tally {
    pub(crate) const NEW: Tally = Tally {
        attempts: 0,
        endpoint: Endpoint::Writer,
        returned: None,
    };
}

/// Whether `e` counts as a failure for the breaker of the node that returned it: a
/// redirect does not, for a topology that follows redirects.
#[inline]
fn breaker_failure<P: Topology>(e: &Error) -> bool {
    is_availability_failure(e) && !(P::FOLLOWS_REDIRECTS && e.redirect().is_some())
}

/// Run a call's attempts on `topo`: see the module docs. `t0` is the call's start (the
/// first checkout's clock reading); `retry` is asked only after a failure, or before the
/// first checkout when the pool could skip its check (classifying a command costs
/// instructions every call would pay); `on_retry` is told of every retry with its delay.
/// (The tally is an out-parameter: the result is returned in place, not moved through a
/// struct.)
#[inline]
#[allow(clippy::too_many_arguments)]
pub(crate) fn attempt_loop<'t, P: Topology, T>(
    topo: &'t P,
    call: &Call,
    t0: Instant,
    policy: &RetryPolicy,
    retry: impl Fn() -> Retry,
    mut on_retry: impl FnMut(&Error, Duration),
    mut attempt: impl FnMut(&Connection) -> Result<T>,
    tally: &mut Tally,
) -> Result<T> {
    let mut attempts = 0;
    let mut redirects = 0;
    let mut delay = Duration::ZERO;
    let mut returned = None;
    let mut unchecked = false;
    // The node of the last attempt (`None`: none could be chosen).
    let mut last: Option<P::Node<'t>> = None;
    // The permit of a topology whose calls never change node (`PERMIT_PER_CALL`).
    let mut call_permit: Option<Permit> = None;
    // The previous attempt: its node (`None`: none could be chosen), its error, and
    // whether it is followed as a redirect.
    let mut previous: Option<(Option<P::Node<'t>>, Error, bool)> = None;
    let result = loop {
        let epoch = topo.epoch();
        let chosen = topo.choose(
            call,
            previous.as_ref().map(|(node, error, redirected)| Previous {
                node: node.as_ref(),
                error,
                redirected: *redirected,
            }),
        );
        let node = match chosen {
            Ok(node) => node,
            Err(e) => {
                // No node known (a cluster slot without an owner): a failed attempt.
                attempts += 1;
                if attempts < policy.attempts && may_retry(policy, &retry, &e) {
                    topo.before_next(None, &e, false, epoch);
                    delay = policy.backoff.delay(attempts, delay, rand::random::<f64>());
                    on_retry(&e, delay);
                    std::thread::sleep(delay);
                    previous = Some((None, e, false));
                    continue;
                }
                break Err(e);
            }
        };
        if P::PERMIT_PER_CALL && call_permit.is_none() {
            match node.breaker().acquire() {
                Ok(p) => call_permit = Some(p),
                Err(e) => {
                    last = Some(node);
                    break Err(e);
                }
            }
        }
        if attempts == 0 && redirects == 0 {
            // A call that will be resent whatever happens (idempotent, retries left) may
            // take a recently returned connection unchecked on its first attempt: if the
            // server closed it meanwhile, the resend goes out on a checked connection
            // (PoolOptions::skip_check_when_resendable).
            unchecked =
                policy.attempts > 1 && node.trusts_resendable() && retry() == Retry::Idempotent;
        }
        attempts += 1;
        let e = 'failed: {
            let permit = if P::PERMIT_PER_CALL {
                None
            } else {
                match node.breaker().acquire() {
                    Ok(p) => Some(p),
                    Err(e) => break 'failed e,
                }
            };
            // The first attempt's checkout starts at `t0` (one clock read less).
            let start = if attempts == 1 && redirects == 0 {
                t0
            } else {
                Instant::now()
            };
            let r = node.checkout(start, unchecked).and_then(|conn| {
                if node.asking() {
                    conn.exec(&cmd("ASKING"))?;
                }
                let r = attempt(&conn);
                if let Err(e) = &r {
                    if e.kind() == ErrorKind::Server(ServerErrorKind::ReadOnly) {
                        // The node became a replica (failover): this connection points
                        // at the wrong server; never reuse it.
                        conn.close("READONLY: the endpoint is a replica now");
                    }
                }
                returned = Some(conn.release());
                r
            });
            if let Some(permit) = permit {
                let failed = r.as_ref().err().is_some_and(breaker_failure::<P>);
                node.breaker().record(permit, failed);
            }
            match r {
                Err(e) => e,
                // Done: what follows the loop, for a success, and the result returned as
                // it is (not taken apart, rebuilt and moved through the loop's value).
                ok => {
                    if let Some(permit) = call_permit {
                        node.breaker().record(permit, false);
                    }
                    tally.attempts = attempts;
                    tally.endpoint = node.endpoint();
                    tally.returned = returned;
                    return ok;
                }
            }
        };
        if P::FOLLOWS_REDIRECTS && redirects < MAX_REDIRECTS && e.redirect().is_some() {
            // Go where the error says, at once: not a failed attempt.
            redirects += 1;
            attempts -= 1;
            topo.before_next(Some(&node), &e, true, epoch);
            previous = Some((Some(node), e, true));
            continue;
        }
        if attempts < policy.attempts && may_retry(policy, &retry, &e) {
            // Resends look at the socket: a dead connection costs one attempt at most.
            // (The backoff stays: resending at once changes how an outage is seen, see
            // tests/availability.rs.) A connection taken unchecked that failed on the
            // socket may just have been closed while idle: that says nothing of the node,
            // so the topology is not told (no slot map refresh); if the node is really
            // gone, the checked resend fails too, and that failure is told.
            let stale = unchecked && matches!(e.kind(), ErrorKind::Io | ErrorKind::Broken);
            unchecked = false;
            if !stale {
                topo.before_next(Some(&node), &e, false, epoch);
            }
            delay = policy.backoff.delay(attempts, delay, rand::random::<f64>());
            on_retry(&e, delay);
            std::thread::sleep(delay);
            previous = Some((Some(node), e, false));
            continue;
        }
        last = Some(node);
        break Err(e);
    };
    // (Only failures leave the loop: a success returns from inside it.)
    if let (Some(permit), Some(node)) = (call_permit, &last) {
        let failed = result.as_ref().err().is_some_and(breaker_failure::<P>);
        node.breaker().record(permit, failed);
    }
    tally.attempts = attempts;
    tally.endpoint = last.as_ref().map_or(Endpoint::Writer, Node::endpoint);
    tally.returned = returned;
    result
}

/// The retry rule for one failure (attempts aside).
#[inline]
fn may_retry(policy: &RetryPolicy, retry: &impl Fn() -> Retry, e: &Error) -> bool {
    match retry() {
        Retry::Never => false,
        r => policy.may_retry(e, r == Retry::Idempotent),
    }
}

impl Client {
    /// The one path every call takes: the attempt loop on `topo`, then metrics and
    /// observers.
    ///
    /// For a command the client knows by name, with no observer installed, it allocates
    /// nothing and takes no lock of its own on a single server (the pool's aside), and
    /// reads the clock twice.
    #[inline]
    pub(super) fn run<P: Topology, T>(
        &self,
        name: CommandName<'_>,
        topo: &P,
        call: &Call,
        commands: usize,
        retry: impl Fn() -> Retry,
        attempt: impl FnMut(&Connection) -> Result<T>,
    ) -> Result<T> {
        let observed = !self.shared.observers.is_empty();
        let started = observed.then(SystemTime::now);
        let t0 = Instant::now();
        let mut tally = Tally::NEW;
        let result = attempt_loop(
            topo,
            call,
            t0,
            &self.shared.retry,
            retry,
            |e, delay| self.on_retry(name, e, delay),
            attempt,
            &mut tally,
        );
        let duration = match tally.returned {
            Some(end) => end.saturating_duration_since(t0),
            None => t0.elapsed(),
        };
        let error = result.as_ref().err();
        self.shared
            .metrics
            .record(name, tally.endpoint, error, duration);
        if let Some(started) = started {
            let label = name.label();
            let event = CommandEvent {
                command: &label,
                endpoint: tally.endpoint.name(),
                commands,
                started,
                duration,
                attempts: tally.attempts.max(1),
                error,
            };
            for o in &self.shared.observers {
                o.on_command(&event);
            }
        }
        result
    }

    /// Log, count and observe a retry.
    #[cold]
    pub(super) fn on_retry(&self, name: CommandName<'_>, e: &Error, delay: Duration) {
        let label = name.label();
        log::debug!("retrying {label} in {delay:?} after: {e}");
        self.shared.metrics.count_retry();
        for o in &self.shared.observers {
            o.on_retry(&label, e, delay);
        }
    }
}
