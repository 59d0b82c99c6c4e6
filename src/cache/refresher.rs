//! Background refreshes (stale-while-revalidate, XFetch): a few named threads fed by a
//! bounded channel, at most one queued or running refresh per key, stopped and joined
//! when the last clone of the cache is dropped (or on [`Cache::shutdown`](super::Cache::shutdown)).

use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Sender, TrySendError};
use parking_lot::Mutex;

type Job = Box<dyn FnOnce() + Send + 'static>;

pub(crate) enum Scheduled {
    Queued,
    /// A refresh of this key is already queued or running.
    AlreadyPending,
    /// The queue is full (or the refresher stopped); nothing was queued.
    Dropped,
}

pub(crate) struct Refresher {
    tx: Mutex<Option<Sender<(String, Job)>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    stopping: Arc<AtomicBool>,
    pending: Arc<Mutex<HashSet<String>>>,
}

impl Refresher {
    /// `threads` workers named `valkit-cache-refresh-<namespace>-<n>`, a queue of `queue` jobs.
    pub fn start(namespace: &str, threads: usize, queue: usize) -> std::io::Result<Refresher> {
        let (tx, rx) = bounded::<(String, Job)>(queue.max(1));
        let stopping = Arc::new(AtomicBool::new(false));
        let pending: Arc<Mutex<HashSet<String>>> = Arc::default();
        let mut handles = Vec::new();
        for n in 0..threads.max(1) {
            let rx = rx.clone();
            let stopping = stopping.clone();
            let pending = pending.clone();
            let h = std::thread::Builder::new()
                .name(format!("valkit-cache-refresh-{namespace}-{n}"))
                .spawn(move || {
                    for (key, job) in rx {
                        if !stopping.load(Ordering::Acquire) {
                            // A panicking refresh is the job's business (it counts it);
                            // the worker survives it.
                            let _ = catch_unwind(AssertUnwindSafe(job));
                        }
                        pending.lock().remove(&key);
                    }
                })?;
            handles.push(h);
        }
        Ok(Refresher {
            tx: Mutex::new(Some(tx)),
            threads: Mutex::new(handles),
            stopping,
            pending,
        })
    }

    /// Queue `job` as the refresh of `key`, unless one is pending already.
    pub fn schedule(&self, key: &str, job: Job) -> Scheduled {
        if !self.pending.lock().insert(key.to_owned()) {
            return Scheduled::AlreadyPending;
        }
        let sent = match self.tx.lock().as_ref() {
            Some(tx) => match tx.try_send((key.to_owned(), job)) {
                Ok(()) => true,
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
            },
            None => false,
        };
        if sent {
            Scheduled::Queued
        } else {
            self.pending.lock().remove(key);
            Scheduled::Dropped
        }
    }

    /// Refreshes queued or running.
    pub fn pending(&self) -> usize {
        self.pending.lock().len()
    }

    /// Skip queued jobs, let running ones finish, and join the threads.
    pub fn shutdown(&self) {
        self.stopping.store(true, Ordering::Release);
        drop(self.tx.lock().take());
        let handles = std::mem::take(&mut *self.threads.lock());
        let me = std::thread::current().id();
        for h in handles {
            if h.thread().id() != me {
                let _ = h.join();
            }
        }
    }
}

impl Drop for Refresher {
    fn drop(&mut self) {
        self.shutdown();
    }
}
