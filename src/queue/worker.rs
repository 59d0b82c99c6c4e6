//! [`WorkerPool`]: N named threads running a handler over a queue, one reaper thread, and
//! a graceful shutdown.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};
use parking_lot::Mutex;

use super::error::{QueueError, QueueErrorKind};
use super::job::Job;
use super::metrics::Counters;
use super::ops::Reserved;
use super::Queue;
use crate::cmd::Execute;

/// What a handler's error may be: anything that converts into a boxed error.
pub type HandlerError = Box<dyn std::error::Error + Send + Sync + 'static>;

type Handler = dyn Fn(&Job) -> Result<(), HandlerError> + Send + Sync + 'static;

/// Builds a [`WorkerPool`]: `WorkerPool::builder(queue).workers(4).start(handler)`.
#[derive(Debug)]
pub struct WorkerPoolBuilder<E> {
    queue: Queue<E>,
    workers: usize,
    name: String,
    reap_every: Duration,
    wait: Duration,
}

impl<E: Execute + Send + Sync + 'static> WorkerPoolBuilder<E> {
    /// How many worker threads (default 1, at most 256).
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n.clamp(1, 256);
        self
    }

    /// The thread name stem: threads are `valkit-queue-<name>-<n>` and
    /// `valkit-queue-<name>-reaper` (default: the queue's name).
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.to_owned();
        self
    }

    /// How often the reaper thread returns expired leases (default 1 s).
    pub fn reap_every(mut self, every: Duration) -> Self {
        self.reap_every = every.max(Duration::from_millis(1));
        self
    }

    /// How long one reserve waits before the worker looks at the stop flag again
    /// (default 100 ms): the bound on how late a shutdown is noticed by an idle worker.
    pub fn reserve_wait(mut self, wait: Duration) -> Self {
        self.wait = wait.max(Duration::from_millis(1));
        self
    }

    /// Start the threads. Every reserved job is passed to `handler`: `Ok` acks it, `Err`
    /// or a panic nacks it (retry with backoff, dead letter after the last attempt).
    ///
    /// # Errors
    /// [`QueueErrorKind::Config`] when a thread cannot be spawned (the ones already
    /// started are stopped and joined).
    pub fn start<F>(self, handler: F) -> Result<WorkerPool, QueueError>
    where
        F: Fn(&Job) -> Result<(), HandlerError> + Send + Sync + 'static,
    {
        let handler: Arc<Handler> = Arc::new(handler);
        let stop = Arc::new(AtomicBool::new(false));
        let (exit_tx, exit_rx) = bounded::<usize>(self.workers);
        let busy: Arc<Vec<Mutex<Option<Reserved>>>> =
            Arc::new((0..self.workers).map(|_| Mutex::new(None)).collect());
        let (reaper_stop, reaper_rx) = bounded::<()>(0);
        let mut pool = WorkerPool {
            stop: stop.clone(),
            threads: Vec::new(),
            reaper: None,
            reaper_stop: Some(reaper_stop),
            exit_rx,
            busy: busy.clone(),
            release: Box::new({
                let q = self.queue.clone();
                move |r| q.release(r)
            }),
        };
        for n in 0..self.workers {
            let ctx = WorkerCtx {
                queue: self.queue.clone(),
                handler: handler.clone(),
                stop: stop.clone(),
                busy: busy.clone(),
                slot: n,
                wait: self.wait,
                exit: exit_tx.clone(),
            };
            let spawned = std::thread::Builder::new()
                .name(format!("valkit-queue-{}-{n}", self.name))
                .spawn(move || ctx.run());
            match spawned {
                Ok(h) => pool.threads.push(h),
                Err(e) => {
                    pool.shutdown(Duration::from_secs(5));
                    return Err(QueueError::new(
                        QueueErrorKind::Config,
                        format!("cannot spawn a worker thread: {e}"),
                    ));
                }
            }
        }
        let q = self.queue.clone();
        let every = self.reap_every;
        let spawned = std::thread::Builder::new()
            .name(format!("valkit-queue-{}-reaper", self.name))
            .spawn(move || reaper(q, every, reaper_rx));
        match spawned {
            Ok(h) => pool.reaper = Some(h),
            Err(e) => {
                pool.shutdown(Duration::from_secs(5));
                return Err(QueueError::new(
                    QueueErrorKind::Config,
                    format!("cannot spawn the reaper thread: {e}"),
                ));
            }
        }
        Ok(pool)
    }
}

/// Worker threads running a handler over a [`Queue`], plus a reaper thread.
///
/// [`WorkerPool::shutdown`] (or drop, with a 30 s deadline) stops reserving, lets
/// running handlers finish until the deadline, hands the jobs of handlers still running
/// after it back to the queue (their late acks then fail harmlessly), and joins every
/// thread. A handler that never returns therefore blocks the join: keep handlers bounded.
///
/// ```no_run
/// use std::time::Duration;
/// use valkit::queue::{Queue, WorkerPool};
/// use valkit::Client;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let client = Client::open("redis://127.0.0.1:6379")?;
/// let queue = Queue::new(client, "jobs")?;
/// let workers = WorkerPool::builder(queue).workers(4).start(|job| {
///     println!("{} {}", job.kind(), job.payload());
///     Ok(())
/// })?;
/// // ...
/// let mut workers = workers;
/// let report = workers.shutdown(Duration::from_secs(10));
/// assert_eq!(report.handed_back, 0);
/// # Ok(()) }
/// ```
pub struct WorkerPool {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    reaper: Option<JoinHandle<()>>,
    reaper_stop: Option<Sender<()>>,
    exit_rx: Receiver<usize>,
    busy: Arc<Vec<Mutex<Option<Reserved>>>>,
    #[allow(clippy::type_complexity)]
    release: Box<dyn Fn(Reserved) -> Result<(), QueueError> + Send + Sync>,
}

impl std::fmt::Debug for WorkerPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerPool")
            .field("threads", &self.threads.len())
            .field("stopping", &self.stop.load(Ordering::Relaxed))
            .finish()
    }
}

/// What [`WorkerPool::shutdown`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Worker threads that stopped within the deadline.
    pub stopped_in_time: usize,
    /// Jobs whose handlers were still running at the deadline, handed back to the queue.
    pub handed_back: usize,
    /// How long the shutdown took (joins included).
    pub took: Duration,
}

impl WorkerPool {
    /// Start building a pool over `queue`.
    pub fn builder<E: Execute + Send + Sync + 'static>(queue: Queue<E>) -> WorkerPoolBuilder<E> {
        let name = queue.keys().name().to_owned();
        WorkerPoolBuilder {
            queue,
            workers: 1,
            name,
            reap_every: Duration::from_secs(1),
            wait: Duration::from_millis(100),
        }
    }

    /// Worker threads still running a handler right now.
    pub fn busy(&self) -> usize {
        self.busy.iter().filter(|b| b.lock().is_some()).count()
    }

    /// Stop reserving, wait up to `deadline` for running handlers, hand back the jobs of
    /// those still running, and join every thread. Idempotent.
    pub fn shutdown(&mut self, deadline: Duration) -> ShutdownReport {
        let started = Instant::now();
        self.stop.store(true, Ordering::SeqCst);
        drop(self.reaper_stop.take());
        let until = started + deadline;
        let mut report = ShutdownReport::default();
        let mut exited = 0;
        while exited < self.threads.len() {
            let left = until.saturating_duration_since(Instant::now());
            match self.exit_rx.recv_timeout(left) {
                Ok(_) => exited += 1,
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        report.stopped_in_time = exited;
        if exited < self.threads.len() {
            for slot in self.busy.iter() {
                if let Some(r) = slot.lock().take() {
                    match (self.release)(r) {
                        Ok(()) => report.handed_back += 1,
                        Err(e) => log::warn!("shutdown: handing a job back failed: {e}"),
                    }
                }
            }
        }
        for h in self.threads.drain(..) {
            let _ = h.join();
        }
        if let Some(h) = self.reaper.take() {
            let _ = h.join();
        }
        report.took = started.elapsed();
        report
    }
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        if !self.threads.is_empty() || self.reaper.is_some() {
            self.shutdown(Duration::from_secs(30));
        }
    }
}

struct WorkerCtx<E> {
    queue: Queue<E>,
    handler: Arc<Handler>,
    stop: Arc<AtomicBool>,
    busy: Arc<Vec<Mutex<Option<Reserved>>>>,
    slot: usize,
    wait: Duration,
    exit: Sender<usize>,
}

impl<E: Execute> WorkerCtx<E> {
    fn run(self) {
        let mut pause = Duration::from_millis(50);
        while !self.stop.load(Ordering::SeqCst) {
            let r = match self.queue.reserve(self.wait) {
                Ok(Some(r)) => r,
                Ok(None) => continue,
                Err(e) => {
                    log::warn!("queue {}: reserve failed: {e}", self.queue.keys().name());
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_secs(2));
                    continue;
                }
            };
            pause = Duration::from_millis(50);
            if self.stop.load(Ordering::SeqCst) {
                // Stopping: hand it back without counting an attempt.
                if let Err(e) = self.queue.release(r) {
                    log::warn!("queue {}: release failed: {e}", self.queue.keys().name());
                }
                break;
            }
            *self.busy[self.slot].lock() = Some(r.clone());
            let outcome = catch_unwind(AssertUnwindSafe(|| (self.handler)(r.job())));
            // Taken back by shutdown after its deadline: the job was handed back already.
            let still_ours = self.busy[self.slot].lock().take().is_some();
            let c = self.queue.counters();
            let settled = match outcome {
                Ok(Ok(())) => {
                    Counters::add(&c.handler_ok, 1);
                    if still_ours {
                        self.queue.ack(&r)
                    } else {
                        Ok(())
                    }
                }
                Ok(Err(e)) => {
                    Counters::add(&c.handler_err, 1);
                    if still_ours {
                        self.queue.nack(r, &e.to_string()).map(|_| ())
                    } else {
                        Ok(())
                    }
                }
                Err(panic) => {
                    Counters::add(&c.handler_panic, 1);
                    let msg = panic
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "handler panicked".to_owned());
                    if still_ours {
                        self.queue
                            .nack(r, &format!("handler panicked: {msg}"))
                            .map(|_| ())
                    } else {
                        Ok(())
                    }
                }
            };
            if let Err(e) = settled {
                log::warn!(
                    "queue {}: settling a job failed: {e}",
                    self.queue.keys().name()
                );
            }
        }
        let _ = self.exit.send(self.slot);
    }
}

fn reaper<E: Execute>(queue: Queue<E>, every: Duration, stop: Receiver<()>) {
    loop {
        match stop.recv_timeout(every) {
            Err(RecvTimeoutError::Timeout) => {
                if let Err(e) = queue.reap() {
                    log::debug!("queue {}: reap failed: {e}", queue.keys().name());
                }
            }
            _ => return,
        }
    }
}
