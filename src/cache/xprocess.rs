//! Cross-process singleflight on [`crate::lock`]: the loading caller of each process takes
//! the entry's load lock; the others wait for it (a release wakes them at once), find the
//! holder's value, or load themselves when the wait ends.

use super::aside::Loaded;
use super::codec::Codec;
use super::stats::Counters;
use super::store::Read;
use super::{Core, Spec};
use crate::cmd::Execute;
use crate::lock::{LockGuard, Release};

/// Whether the cross-process lock step found a value or lets us load (holding the lock,
/// when we got it).
pub(crate) enum LockStep<T, E: Execute> {
    Found(Loaded<T>),
    Load(Option<LockGuard<E>>),
}

impl<E: Execute, C> Core<E, C> {
    /// Cross-process singleflight: take the lock, or wait (bounded) for the holder.
    /// `stale_ok`: whether a stale entry found once the lock is ours ends the load.
    pub(crate) fn lock_step<T>(&self, spec: &Spec, stale_ok: bool) -> LockStep<T, E>
    where
        C: Codec<T>,
    {
        let Some(cp) = self.settings.cross_process else {
            return LockStep::Load(None);
        };
        let (got, waited) = match self.locks.try_acquire(&spec.key, cp.lock_ttl) {
            Ok(Some(g)) => (Ok(g), false),
            Ok(None) => (
                self.locks.acquire_within(&spec.key, cp.lock_ttl, cp.wait),
                true,
            ),
            Err(e) => (Err(e), false),
        };
        let guard = match got {
            Ok(g) => g,
            Err(e) if e.is_not_acquired() => {
                log::debug!("cross-process wait for {} timed out; loading", spec.key);
                return LockStep::Load(None);
            }
            Err(e) => {
                log::debug!("cross-process lock for {} failed ({e}); loading", spec.key);
                return LockStep::Load(None);
            }
        };
        // Ours. The previous holder stores the value before releasing: look once more.
        let read = self.read(&spec.full).map(|r| match r {
            Read::Stale(_) if !stale_ok => Read::Miss,
            r => r,
        });
        match read.map(|r| self.found(r)) {
            Ok(Ok(Some(l))) => {
                if waited {
                    Counters::add(&self.stats.coalesced, 1);
                }
                self.release(spec, guard);
                LockStep::Found(l)
            }
            // Missing, or the server failed, or the other process stored something we
            // cannot decode: load ourselves (still holding the lock).
            _ => LockStep::Load(Some(guard)),
        }
    }

    /// Release a load lock, logging anything but a clean release.
    pub(crate) fn release(&self, spec: &Spec, guard: LockGuard<E>) {
        match guard.release() {
            Ok(Release::Released) => {}
            Ok(other) => log::debug!("the load lock of {} was {other:?}", spec.key),
            Err(e) => log::debug!("releasing the load lock of {} failed: {e}", spec.key),
        }
    }
}
