//! Options for the string commands: [`SetOptions`], [`Expiry`], [`Condition`], [`GetExExpiry`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::cmd::{ArgWriter, ToArgs};

/// When a key set by `SET` expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Expiry {
    /// `EX seconds`: expire after this long, in whole seconds (a fraction is dropped).
    Ex(Duration),
    /// `PX milliseconds`: expire after this long, in whole milliseconds.
    Px(Duration),
    /// `EXAT unix-seconds`: expire at this instant (whole seconds).
    ExAt(SystemTime),
    /// `PXAT unix-milliseconds`: expire at this instant (whole milliseconds).
    PxAt(SystemTime),
    /// `KEEPTTL`: keep the key's current time to live.
    KeepTtl,
}

/// Whether `SET` (or `ZADD`) may create or overwrite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Condition {
    /// `NX`: only when the key (or member) does not exist yet.
    Nx,
    /// `XX`: only when the key (or member) already exists.
    Xx,
}

/// Options of `SET`: an expiry and a condition.
///
/// ```
/// use std::time::Duration;
/// use valkit::{Condition, Expiry, SetOptions};
/// let opts = SetOptions::new()
///     .expiry(Expiry::Px(Duration::from_millis(1500)))
///     .condition(Condition::Nx);
/// assert_eq!(opts.get_condition(), Some(Condition::Nx));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct SetOptions {
    /// When the key expires; `None` clears any previous expiry (plain `SET`).
    pub expiry: Option<Expiry>,
    /// Write only if the key does (`Xx`) or does not (`Nx`) exist.
    pub condition: Option<Condition>,
}

impl SetOptions {
    /// No expiry, no condition: a plain `SET`.
    pub fn new() -> SetOptions {
        SetOptions::default()
    }

    /// Set the expiry.
    pub fn expiry(mut self, expiry: Expiry) -> SetOptions {
        self.expiry = Some(expiry);
        self
    }

    /// Set the condition.
    pub fn condition(mut self, condition: Condition) -> SetOptions {
        self.condition = Some(condition);
        self
    }

    /// Shorthand for `.condition(Condition::Nx)`.
    pub fn nx(self) -> SetOptions {
        self.condition(Condition::Nx)
    }

    /// Shorthand for `.condition(Condition::Xx)`.
    pub fn xx(self) -> SetOptions {
        self.condition(Condition::Xx)
    }

    /// The expiry, if any.
    pub fn get_expiry(&self) -> Option<Expiry> {
        self.expiry
    }

    /// The condition, if any.
    pub fn get_condition(&self) -> Option<Condition> {
        self.condition
    }
}

impl ToArgs for Expiry {
    fn write_args(&self, out: &mut ArgWriter<'_>) {
        match *self {
            Expiry::Ex(d) => ("EX", d.as_secs()).write_args(out),
            Expiry::Px(d) => ("PX", millis(d)).write_args(out),
            Expiry::ExAt(t) => ("EXAT", unix(t).as_secs()).write_args(out),
            Expiry::PxAt(t) => ("PXAT", millis(unix(t))).write_args(out),
            Expiry::KeepTtl => out.write(b"KEEPTTL"),
        }
    }
}

impl ToArgs for Condition {
    fn write_args(&self, out: &mut ArgWriter<'_>) {
        out.write(match self {
            Condition::Nx => b"NX",
            Condition::Xx => b"XX",
        })
    }
}

impl ToArgs for SetOptions {
    fn write_args(&self, out: &mut ArgWriter<'_>) {
        self.condition.write_args(out);
        self.expiry.write_args(out);
    }
}

/// The expiry change `GETEX` makes while reading a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GetExExpiry {
    /// `EX seconds` (whole seconds).
    Ex(Duration),
    /// `PX milliseconds`.
    Px(Duration),
    /// `EXAT unix-seconds`.
    ExAt(SystemTime),
    /// `PXAT unix-milliseconds`.
    PxAt(SystemTime),
    /// `PERSIST`: remove the expiry.
    Persist,
}

impl ToArgs for GetExExpiry {
    fn write_args(&self, out: &mut ArgWriter<'_>) {
        match *self {
            GetExExpiry::Ex(d) => Expiry::Ex(d).write_args(out),
            GetExExpiry::Px(d) => Expiry::Px(d).write_args(out),
            GetExExpiry::ExAt(t) => Expiry::ExAt(t).write_args(out),
            GetExExpiry::PxAt(t) => Expiry::PxAt(t).write_args(out),
            GetExExpiry::Persist => out.write(b"PERSIST"),
        }
    }
}

/// Whole milliseconds of `d`, saturating.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Time since the Unix epoch; instants before it count as the epoch.
fn unix(t: SystemTime) -> Duration {
    t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO)
}
