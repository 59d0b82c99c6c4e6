//! The watchdog: two named threads per guard. The renewer does the I/O (one
//! compare-and-extend at a time); the supervisor keeps time, so a renewal stuck on an
//! unreachable server cannot delay telling the holder that the lease is lost.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, select, Receiver, Sender};

use super::backend::Backend;
use super::lease::{deadline_after, Lease, LeaseLost};
use super::LockError;
use crate::cmd::Execute;

/// Called once, from the watchdog thread, when the lease is lost.
pub(crate) type OnLost = Box<dyn FnOnce(LeaseLost) + Send + 'static>;

/// A running watchdog; [`Watchdog::stop`] (or drop) stops and joins both threads.
pub(crate) struct Watchdog {
    stop: Option<Sender<()>>,
    threads: Vec<JoinHandle<()>>,
}

/// What the renewer thread needs.
pub(crate) struct Renewal<E> {
    pub(crate) backend: Arc<Backend<E>>,
    pub(crate) key: String,
    pub(crate) token: Arc<str>,
    pub(crate) ttl: Duration,
    pub(crate) waiters: Arc<AtomicBool>,
}

type Outcome = (Instant, Result<bool, LockError>);

impl Watchdog {
    pub(crate) fn start<E>(
        renewal: Renewal<E>,
        lease: Arc<Lease>,
        on_lost: Option<OnLost>,
    ) -> std::io::Result<Watchdog>
    where
        E: Execute + Send + Sync + 'static,
    {
        let ttl = renewal.ttl;
        let (stop_tx, stop_rx) = bounded::<()>(0);
        let (req_tx, req_rx) = bounded::<()>(1);
        let (res_tx, res_rx) = bounded::<Outcome>(1);
        let renewer = std::thread::Builder::new()
            .name("valkit-lock-renew".into())
            .spawn(move || renew_loop(renewal, req_rx, res_tx))?;
        let supervisor = std::thread::Builder::new()
            .name("valkit-lock-watchdog".into())
            .spawn(move || supervise(ttl, &lease, on_lost, stop_rx, req_tx, res_rx));
        match supervisor {
            Ok(s) => Ok(Watchdog {
                stop: Some(stop_tx),
                threads: vec![s, renewer],
            }),
            Err(e) => {
                // The renewer ends when its request channel closes (req_tx was moved into
                // the failed closure and is dropped with it).
                let _ = renewer.join();
                Err(e)
            }
        }
    }

    /// Stop both threads and wait for them: afterwards no renewal is in flight, so a
    /// release cannot be followed by a renewal. A renewal already sent finishes first
    /// (bounded by the executor's timeouts).
    pub(crate) fn stop(&mut self) {
        self.stop = None;
        for t in self.threads.drain(..) {
            if t.join().is_err() {
                log::warn!("a lock watchdog thread panicked");
            }
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop();
    }
}

fn renew_loop<E: Execute>(r: Renewal<E>, requests: Receiver<()>, results: Sender<Outcome>) {
    // Ends when the supervisor drops its sender.
    while requests.recv().is_ok() {
        let sent = Instant::now();
        let outcome = r.backend.set_lease(&r.key, &r.token, r.ttl, &r.waiters);
        if results.send((sent, outcome)).is_err() {
            break;
        }
    }
}

fn supervise(
    ttl: Duration,
    lease: &Lease,
    mut on_lost: Option<OnLost>,
    stop: Receiver<()>,
    requests: Sender<()>,
    results: Receiver<Outcome>,
) {
    let every = ttl / 3;
    // After a failed renewal, try again sooner (but not in a hot loop).
    let retry = (ttl / 10).max(Duration::from_millis(5));
    let mut next = Instant::now() + every;
    let mut in_flight = false;
    let mut lose = |why: LeaseLost| {
        if lease.lose(why) {
            log::warn!("lock lease lost ({why:?})");
            if let Some(f) = on_lost.take() {
                f(why);
            }
        }
    };
    loop {
        let deadline = lease.deadline();
        let now = Instant::now();
        if now >= deadline {
            lose(LeaseLost::Expired);
            return;
        }
        if !in_flight && now >= next {
            if requests.try_send(()).is_err() {
                return;
            }
            in_flight = true;
        }
        let wake = if in_flight {
            deadline
        } else {
            next.min(deadline)
        };
        let timeout = wake.saturating_duration_since(now);
        select! {
            recv(stop) -> _ => return,
            recv(results) -> r => {
                in_flight = false;
                match r {
                    Ok((sent, Ok(true))) => {
                        lease.renewed(deadline_after(sent, ttl));
                        next = sent + every;
                    }
                    Ok((_, Ok(false))) => {
                        lose(LeaseLost::Taken);
                        return;
                    }
                    Ok((_, Err(e))) => {
                        log::debug!("lock renewal failed: {e}");
                        next = Instant::now() + retry;
                    }
                    Err(_) => return,
                }
            }
            default(timeout) => {}
        }
    }
}
