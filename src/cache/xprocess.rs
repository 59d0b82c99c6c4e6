//! Cross-process singleflight: a short `SET NX PX` lock per key; the other processes poll
//! for the holder's value for a bounded time, then load themselves.

use std::time::Instant;

use super::aside::Loaded;
use super::codec::Codec;
use super::stats::Counters;
use super::{Core, Spec};
use crate::cmd::{cmd, Execute};

/// Whether the cross-process lock step found a value or lets us load.
pub(crate) enum LockStep<T> {
    Found(Loaded<T>),
    Load(Option<String>),
}

impl<E: Execute, C> Core<E, C> {
    /// Cross-process singleflight: take the lock, or wait (bounded) for the holder's value.
    pub(crate) fn lock_step<T>(&self, spec: &Spec) -> LockStep<T>
    where
        C: Codec<T>,
    {
        let Some(cp) = self.settings.cross_process else {
            return LockStep::Load(None);
        };
        let lock = self.ks.lock(&spec.key);
        let token = format!("{:032x}", rand::random::<u128>());
        let deadline = Instant::now() + cp.wait;
        loop {
            let set = cmd("SET")
                .arg(&lock)
                .arg(&token)
                .arg("NX")
                .arg("PX")
                .arg(cp.lock_ttl.as_millis().max(1) as u64);
            match self.ex.exec(&set) {
                Ok(v) if !v.is_nil() => {
                    // Ours. The previous holder may have stored the value just before
                    // releasing: look once more.
                    return match self.read(&spec.full).map(|r| self.found(r)) {
                        Ok(Ok(Some(l))) => {
                            self.release(spec, &token);
                            LockStep::Found(l)
                        }
                        _ => LockStep::Load(Some(token)),
                    };
                }
                Ok(_) => {}
                Err(_) => return LockStep::Load(None),
            }
            if Instant::now() >= deadline {
                log::debug!("cross-process wait for {} timed out; loading", spec.key);
                return LockStep::Load(None);
            }
            std::thread::sleep(cp.poll);
            match self.read(&spec.full).map(|r| self.found(r)) {
                Ok(Ok(Some(l))) => {
                    Counters::add(&self.stats.coalesced, 1);
                    return LockStep::Found(l);
                }
                Ok(Ok(None)) => {}
                // The server failed, or the other process stored something we cannot
                // decode: load ourselves.
                Ok(Err(_)) | Err(_) => return LockStep::Load(None),
            }
        }
    }

    pub(crate) fn release(&self, spec: &Spec, token: &str) {
        let lock = self.ks.lock(&spec.key);
        if let Err(e) = self.unlock.key(lock).arg(token).invoke(&self.ex) {
            log::debug!("releasing the load lock of {} failed: {e}", spec.key);
        }
    }
}
