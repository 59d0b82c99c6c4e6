//! In-process singleflight: concurrent callers for one key share one load.
//!
//! The first caller for a key becomes the leader and loads; the others wait on the
//! flight's condition variable and all receive a clone of the leader's outcome, a value or
//! an error alike. The leader finishes the flight through a guard, so a panic anywhere in
//! the leader's path still wakes every waiter (with an error) and removes the flight: the
//! next call starts a new load.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use super::error::{CacheError, CacheErrorKind};

/// What a load produced, in a form every waiter can decode with its own codec.
#[derive(Debug, Clone)]
pub(crate) enum Shared {
    /// The whole stored entry (header and payload).
    Value(Arc<Vec<u8>>),
    /// The loader answered "not found" (a tombstone was written).
    NotFound,
    /// A tombstone was found (e.g. while waiting on another process's lock).
    KnownMissing,
}

pub(crate) type Outcome = Result<Shared, CacheError>;

#[derive(Default)]
pub(crate) struct Flights {
    map: Mutex<HashMap<String, Arc<Flight>>>,
}

#[derive(Default)]
pub(crate) struct Flight {
    done: Mutex<Option<Outcome>>,
    cv: Condvar,
}

pub(crate) enum Role<'a> {
    Leader(LeaderGuard<'a>),
    Waiter(Arc<Flight>),
}

impl Flights {
    /// Lead a new flight for `key`, or join the one in progress.
    pub fn join(&self, key: &str) -> Role<'_> {
        let mut map = self.map.lock();
        if let Some(f) = map.get(key) {
            return Role::Waiter(f.clone());
        }
        let flight = Arc::new(Flight::default());
        map.insert(key.to_owned(), flight.clone());
        Role::Leader(LeaderGuard {
            flights: self,
            key: key.to_owned(),
            flight,
            finished: false,
        })
    }

    /// Flights in progress (for tests and debugging).
    #[allow(dead_code)]
    pub fn in_flight(&self) -> usize {
        self.map.lock().len()
    }
}

impl Flight {
    /// Block until the leader finishes.
    pub fn wait(&self) -> Outcome {
        let mut done = self.done.lock();
        loop {
            if let Some(o) = done.as_ref() {
                return o.clone();
            }
            self.cv.wait(&mut done);
        }
    }
}

/// Held by the leader; finishing (or dropping) it wakes the waiters.
pub(crate) struct LeaderGuard<'a> {
    flights: &'a Flights,
    key: String,
    flight: Arc<Flight>,
    finished: bool,
}

impl LeaderGuard<'_> {
    pub fn finish(mut self, outcome: Outcome) {
        self.complete(outcome);
    }

    fn complete(&mut self, outcome: Outcome) {
        self.finished = true;
        // Out of the map first: a caller arriving from now on starts a new flight (and
        // normally finds the value the leader just stored).
        self.flights.map.lock().remove(&self.key);
        *self.flight.done.lock() = Some(outcome);
        self.flight.cv.notify_all();
    }
}

impl Drop for LeaderGuard<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.complete(Err(CacheError::new(
                CacheErrorKind::LoaderPanicked,
                "the loading caller panicked before finishing",
                None,
            )));
        }
    }
}
