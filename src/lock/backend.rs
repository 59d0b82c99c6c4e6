//! The wire operations of a lock on one server: take, release, extend, inspect. Native
//! commands (`DELIFEQ`, `SET … IFEQ`) where the server has them, Lua otherwise; which one
//! is decided once per backend.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Duration;

use super::error::{is_availability, LockError};
use super::keys::LockKeys;
use super::Release;
use crate::cmd::{cmd, Execute, FromValue};
use crate::error::Error;
use crate::resp::Value;
use crate::script::Script;

/// Whether to use the server's native compare-and-delete / compare-and-set commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum NativeCommands {
    /// Ask the server once (`COMMAND INFO DELIFEQ`) and use `DELIFEQ` and `SET … IFEQ`
    /// when it has them (Valkey 9+), Lua scripts otherwise.
    #[default]
    Auto,
    /// Always use the Lua scripts (every server that runs Lua has them).
    Never,
}

const UNKNOWN: u8 = 0;
const NATIVE: u8 = 1;
const LUA: u8 = 2;

/// What one acquisition attempt found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// Ours, with this fencing token; `waiters` when someone was waiting.
    Acquired { fence: u64, waiters: bool },
    /// Held by someone else for about this long (`None`: no TTL known).
    Held { pttl: Option<Duration> },
}

/// One server: the executor, the capability found on it, the scripts.
pub(crate) struct Backend<E> {
    pub(crate) ex: E,
    mode: NativeCommands,
    state: AtomicU8,
    acquire: Script,
    release: Script,
    extend: Script,
    pttl: Script,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl<E: Execute> Backend<E> {
    pub(crate) fn new(ex: E, mode: NativeCommands) -> Backend<E> {
        Backend {
            ex,
            mode,
            state: AtomicU8::new(UNKNOWN),
            acquire: Script::new(include_str!("acquire.lua")),
            release: Script::new(include_str!("release.lua")),
            extend: Script::new(include_str!("extend.lua")),
            pttl: Script::new(include_str!("pttl.lua")),
        }
    }

    /// Whether native commands are used: decided on first use, then cached.
    pub(crate) fn native(&self) -> Result<bool, Error> {
        if self.mode == NativeCommands::Never {
            return Ok(false);
        }
        match self.state.load(Ordering::Relaxed) {
            NATIVE => return Ok(true),
            LUA => return Ok(false),
            _ => {}
        }
        // `COMMAND INFO X` answers one entry per name: nil for a command the server lacks.
        // DELIFEQ (Valkey 9) implies SET … IFEQ (Valkey 8.1).
        let native = match self.ex.exec(&cmd("COMMAND").arg("INFO").arg("DELIFEQ")) {
            Ok(Value::Array(items)) => matches!(
                items.first(),
                Some(Value::Array(info)) if !info.is_empty()
            ),
            Ok(_) => false,
            Err(e) if is_availability(&e) => return Err(e),
            // COMMAND denied by an ACL, or not supported: the scripts always work.
            Err(e) => {
                log::debug!("COMMAND INFO failed ({e}); using the Lua lock scripts");
                false
            }
        };
        self.state
            .store(if native { NATIVE } else { LUA }, Ordering::Relaxed);
        log::debug!(
            "lock backend: {}",
            if native {
                "native DELIFEQ / SET IFEQ"
            } else {
                "Lua scripts"
            }
        );
        Ok(native)
    }

    /// One try: take the lock (and its fence) or learn how long it is still held.
    /// `mark` is how long to leave the waiters mark (zero: we will not wait).
    pub(crate) fn attempt(
        &self,
        keys: &LockKeys,
        token: &str,
        ttl: Duration,
        mark: Duration,
    ) -> Result<Attempt, LockError> {
        let mark_ms = if mark.is_zero() { 0 } else { ms(mark) };
        // The fence key outlives every lease by a minute; after that the server clock
        // floor keeps tokens rising (see acquire.lua).
        let fence_ttl = ms(ttl).saturating_add(60_000);
        let reply = self
            .acquire
            .key(&keys.lock)
            .key(&keys.fence)
            .key(&keys.waiters)
            .arg(token)
            .arg(ms(ttl))
            .arg(mark_ms)
            .arg(fence_ttl)
            .invoke(&self.ex)?;
        let parts: Vec<i64> = FromValue::from_value(reply)?;
        match parts.as_slice() {
            [1, fence, waiters] => Ok(Attempt::Acquired {
                fence: u64::try_from(*fence).unwrap_or(0),
                waiters: *waiters == 1,
            }),
            [0, pttl] => Ok(Attempt::Held {
                pttl: u64::try_from(*pttl).ok().map(Duration::from_millis),
            }),
            other => Err(LockError::from(Error::new(
                crate::error::ErrorKind::Protocol,
                format!("unexpected reply from the acquire script: {other:?}"),
            ))),
        }
    }

    /// `SET key token NX PX ttl` alone (Redlock: no fence, no waiters).
    pub(crate) fn set_nx(&self, key: &str, token: &str, ttl: Duration) -> Result<bool, Error> {
        let v = self.ex.exec(
            &cmd("SET")
                .arg(key)
                .arg(token)
                .arg("NX")
                .arg("PX")
                .arg(ms(ttl)),
        )?;
        Ok(!v.is_nil())
    }

    /// Compare-and-delete, one command: `DELIFEQ` when the server has it and no waiter is
    /// known, the release script otherwise (it also wakes a waiter). When `DELIFEQ` misses,
    /// the script runs once more: a waiter may have marked our token (see acquire.lua),
    /// and it tells "expired" from "taken".
    pub(crate) fn release(
        &self,
        keys: &LockKeys,
        token: &str,
        waiters: &AtomicBool,
        wake_ttl: Duration,
    ) -> Result<Release, LockError> {
        if !waiters.load(Ordering::Relaxed) && self.native()? {
            let n: i64 =
                FromValue::from_value(self.ex.exec(&cmd("DELIFEQ").arg(&keys.lock).arg(token))?)?;
            if n == 1 {
                return Ok(Release::Released);
            }
        }
        let n: i64 = self
            .release
            .key(&keys.lock)
            .key(&keys.waiters)
            .key(&keys.wake)
            .arg(token)
            .arg(ms(wake_ttl))
            .invoke_as(&self.ex)?;
        Ok(match n {
            1 => Release::Released,
            0 => Release::Expired,
            _ => Release::TakenByOther,
        })
    }

    /// Compare-and-extend: set the lease to `lease` from now if we still hold the key.
    /// Never recreates an expired key. `SET … IFEQ` when the server has it; when that
    /// misses (a waiter marked our token, or the lock is gone) the script decides, and a
    /// marked token is remembered in `waiters`.
    pub(crate) fn set_lease(
        &self,
        key: &str,
        token: &str,
        lease: Duration,
        waiters: &AtomicBool,
    ) -> Result<bool, LockError> {
        let native = !waiters.load(Ordering::Relaxed) && self.native()?;
        if native {
            // SET … IFEQ on a missing key does nothing and answers nil.
            let v = self.ex.exec(
                &cmd("SET")
                    .arg(key)
                    .arg(token)
                    .arg("IFEQ")
                    .arg(token)
                    .arg("PX")
                    .arg(ms(lease)),
            )?;
            if !v.is_nil() {
                return Ok(true);
            }
        }
        let n: i64 = self
            .extend
            .key(key)
            .arg(token)
            .arg(ms(lease))
            .invoke_as(&self.ex)?;
        if n == 1 && native {
            waiters.store(true, Ordering::Relaxed);
        }
        Ok(n == 1)
    }

    /// The remaining lease when we hold the key, `None` otherwise.
    pub(crate) fn remaining(&self, key: &str, token: &str) -> Result<Option<Duration>, LockError> {
        let n: i64 = self.pttl.key(key).arg(token).invoke_as(&self.ex)?;
        Ok(match n {
            -3 => None,
            // -1: ours without a TTL (someone PERSISTed it); report no lease left to count on.
            n => Some(Duration::from_millis(u64::try_from(n).unwrap_or(0))),
        })
    }

    /// Whether the key holds our token.
    pub(crate) fn owns(&self, key: &str, token: &str) -> Result<bool, LockError> {
        let v: Option<Vec<u8>> = FromValue::from_value(self.ex.exec(&cmd("GET").arg(key))?)?;
        Ok(match v.as_deref() {
            Some(v) => v.strip_suffix(b"+w").unwrap_or(v) == token.as_bytes(),
            None => false,
        })
    }

    /// `BLPOP wake slice`: wait for a release's wake-up (or the slice to pass).
    pub(crate) fn wait_wake(&self, wake: &str, slice: Duration) -> Result<(), LockError> {
        let slice = slice.max(Duration::from_millis(1));
        let secs = format!("{:.3}", slice.as_secs_f64());
        self.ex.exec(
            &cmd("BLPOP")
                .arg(wake)
                .arg(secs)
                .blocking(crate::cmd::Blocking::For(slice)),
        )?;
        Ok(())
    }
}
