//! The pool's maintenance thread: closes idle and expired connections and keeps
//! `min_idle` open. It holds only a `Weak` to the pool, so it never keeps one alive.

use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::shared::Shared;
use crate::error::{Error, ErrorKind, Result};

/// The thread's name (`ps -L`, debuggers, panics).
pub(crate) const THREAD_NAME: &str = "valkit-pool-reaper";

/// How long dropping the pool waits for the thread to exit (it may be in the middle of a
/// connect) before letting it finish on its own.
const JOIN_WAIT: Duration = Duration::from_millis(250);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    Stopping,
    Exited,
}

struct Control {
    phase: Mutex<Phase>,
    changed: Condvar,
}

/// Handle to the running thread; dropping it stops the thread.
pub(crate) struct Reaper {
    control: Arc<Control>,
    thread: Option<JoinHandle<()>>,
}

impl Reaper {
    pub(crate) fn spawn(pool: Weak<Shared>, period: Duration) -> Result<Reaper> {
        let control = Arc::new(Control {
            phase: Mutex::new(Phase::Running),
            changed: Condvar::new(),
        });
        let c = Arc::clone(&control);
        let thread = std::thread::Builder::new()
            .name(THREAD_NAME.into())
            .spawn(move || {
                run(&pool, &c, period);
                *c.phase.lock() = Phase::Exited;
                c.changed.notify_all();
            })
            .map_err(|e| {
                Error::new(ErrorKind::Io, "cannot start the pool maintenance thread").with_source(e)
            })?;
        Ok(Reaper {
            control,
            thread: Some(thread),
        })
    }
}

fn run(pool: &Weak<Shared>, control: &Control, period: Duration) {
    let stopping = || *control.phase.lock() != Phase::Running;
    loop {
        match pool.upgrade() {
            Some(shared) => shared.maintain(&stopping),
            None => return,
        }
        let mut phase = control.phase.lock();
        if *phase == Phase::Running {
            control.changed.wait_for(&mut phase, period);
        }
        if *phase != Phase::Running {
            return;
        }
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        let deadline = Instant::now() + JOIN_WAIT;
        let exited = {
            let mut phase = self.control.phase.lock();
            if *phase == Phase::Running {
                *phase = Phase::Stopping;
            }
            self.control.changed.notify_all();
            while *phase != Phase::Exited {
                if self
                    .control
                    .changed
                    .wait_until(&mut phase, deadline)
                    .timed_out()
                {
                    break;
                }
            }
            *phase == Phase::Exited
        };
        if let Some(t) = self.thread.take() {
            if exited {
                let _ = t.join();
            } else {
                // Busy connecting: it sees the stop flag (or the pool gone) right after.
                log::debug!("pool maintenance thread still connecting; not waiting for it");
            }
        }
    }
}
