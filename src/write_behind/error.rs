//! [`WriteBehindError`]: what write-behind operations fail with.

use std::fmt;

use crate::error::Error;

/// What went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WriteBehindErrorKind {
    /// The backlog is at its bound ([`Backpressure::Reject`](super::Backpressure), or
    /// [`Backpressure::Block`](super::Backpressure) waited its time out). Nothing was
    /// written: the write is not accepted, the caller still has it.
    Full,
    /// The server failed; [`WriteBehindError::server_error`] has the cause. For a `put`,
    /// an I/O error or timeout leaves open whether the write was accepted.
    Server,
    /// [`flush`](super::WriteBehind::flush) or
    /// [`shutdown`](super::WriteBehind::shutdown) did not finish in time.
    Timeout,
    /// Bad options (no origin, an empty name, a thread that would not start).
    Config,
    /// The handle is shut down.
    ShutDown,
}

/// The error of a write-behind operation.
pub struct WriteBehindError {
    kind: WriteBehindErrorKind,
    detail: String,
    source: Option<Error>,
}

impl WriteBehindError {
    pub(crate) fn new(kind: WriteBehindErrorKind, detail: impl Into<String>) -> Self {
        WriteBehindError {
            kind,
            detail: detail.into(),
            source: None,
        }
    }

    /// The classification.
    pub fn kind(&self) -> WriteBehindErrorKind {
        self.kind
    }

    /// A human-readable detail.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The server error behind a [`WriteBehindErrorKind::Server`] error.
    pub fn server_error(&self) -> Option<&Error> {
        self.source.as_ref()
    }
}

impl From<Error> for WriteBehindError {
    fn from(e: Error) -> Self {
        WriteBehindError {
            kind: WriteBehindErrorKind::Server,
            detail: e.to_string(),
            source: Some(e),
        }
    }
}

impl fmt::Debug for WriteBehindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteBehindError")
            .field("kind", &self.kind)
            .field("detail", &self.detail)
            .finish()
    }
}

impl fmt::Display for WriteBehindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = match self.kind {
            WriteBehindErrorKind::Full => "write-behind backlog full",
            WriteBehindErrorKind::Server => "write-behind server error",
            WriteBehindErrorKind::Timeout => "write-behind timeout",
            WriteBehindErrorKind::Config => "write-behind configuration error",
            WriteBehindErrorKind::ShutDown => "write-behind shut down",
        };
        write!(f, "{label}: {}", self.detail)
    }
}

impl std::error::Error for WriteBehindError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
