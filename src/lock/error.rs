//! [`LockError`]: what lock operations fail with, classified so callers can decide
//! without reading messages.

use std::fmt;

use crate::error::{Error, ErrorKind};

/// What went wrong in a lock operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LockErrorKind {
    /// The lock was held by someone else for the whole wait (or, for
    /// [`Redlock`](super::Redlock), no quorum could be reached while enough servers
    /// answered).
    NotAcquired,
    /// The lease is gone: the key expired or holds another owner's token. An extend or
    /// reacquire never recreates it.
    LeaseLost,
    /// The server (or, for Redlock, a majority of servers) could not be reached: connect,
    /// I/O, timeout, pool exhausted, circuit open. [`LockError::cause`] has the cause.
    Unavailable,
    /// The server answered with an error that is not about availability (`NOPERM`,
    /// `WRONGTYPE` on a lock key, a script error ...). [`LockError::cause`] has it.
    Server,
    /// Bad input: an empty name, a zero or too long TTL.
    InvalidArgument,
    /// The watchdog thread could not be started.
    Watchdog,
}

/// The error of a lock operation: a kind, a detail, and the server error behind it.
pub struct LockError {
    kind: LockErrorKind,
    detail: String,
    cause: Option<Error>,
}

impl LockError {
    pub(crate) fn new(kind: LockErrorKind, detail: impl Into<String>) -> LockError {
        LockError {
            kind,
            detail: detail.into(),
            cause: None,
        }
    }

    pub(crate) fn invalid(detail: impl Into<String>) -> LockError {
        LockError::new(LockErrorKind::InvalidArgument, detail)
    }

    pub(crate) fn set_cause(&mut self, cause: Option<Error>) {
        self.cause = cause;
    }

    /// The classification.
    pub fn kind(&self) -> LockErrorKind {
        self.kind
    }

    /// A human-readable detail.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The client or server error behind an [`Unavailable`](LockErrorKind::Unavailable) or
    /// [`Server`](LockErrorKind::Server) error (for Redlock: the last one seen).
    pub fn cause(&self) -> Option<&Error> {
        self.cause.as_ref()
    }

    /// True for [`LockErrorKind::NotAcquired`].
    pub fn is_not_acquired(&self) -> bool {
        self.kind == LockErrorKind::NotAcquired
    }

    /// True for [`LockErrorKind::LeaseLost`].
    pub fn is_lease_lost(&self) -> bool {
        self.kind == LockErrorKind::LeaseLost
    }

    /// True for [`LockErrorKind::Unavailable`].
    pub fn is_unavailable(&self) -> bool {
        self.kind == LockErrorKind::Unavailable
    }
}

/// True for failures that mean "the server cannot be reached right now".
pub(crate) fn is_availability(e: &Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::Connect
            | ErrorKind::Io
            | ErrorKind::Timeout
            | ErrorKind::Broken
            | ErrorKind::PoolExhausted
            | ErrorKind::CircuitOpen
    )
}

impl From<Error> for LockError {
    /// Availability failures become [`Unavailable`](LockErrorKind::Unavailable), anything
    /// else [`Server`](LockErrorKind::Server).
    fn from(e: Error) -> LockError {
        let kind = if is_availability(&e) {
            LockErrorKind::Unavailable
        } else {
            LockErrorKind::Server
        };
        LockError {
            kind,
            detail: e.to_string(),
            cause: Some(e),
        }
    }
}

impl fmt::Debug for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockError")
            .field("kind", &self.kind)
            .field("detail", &self.detail)
            .finish()
    }
}

impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = match self.kind {
            LockErrorKind::NotAcquired => "lock not acquired",
            LockErrorKind::LeaseLost => "lock lease lost",
            LockErrorKind::Unavailable => "lock server unavailable",
            LockErrorKind::Server => "lock server error",
            LockErrorKind::InvalidArgument => "invalid lock argument",
            LockErrorKind::Watchdog => "lock watchdog failed",
        };
        write!(f, "{label}: {}", self.detail)
    }
}

impl std::error::Error for LockError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
