//! [`QueueError`]: what queue operations fail with.

use std::fmt;

use crate::error::Error;

/// What went wrong in a queue operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum QueueErrorKind {
    /// The server failed or refused the command; [`QueueError::server_error`] has it.
    Server,
    /// The job's lease is gone: it expired and the job was handed back to the queue (and
    /// maybe to another worker). The ack, nack or extension did nothing.
    LeaseLost,
    /// A job could not be encoded (a payload that does not serialize).
    Encode,
    /// An entry could not be decoded (not JSON, no `id`, wrong types).
    Decode,
    /// A bad option or argument (e.g. an empty queue name).
    Config,
    /// The worker pool is shut down (or shutting down).
    ShutDown,
}

/// The error of a queue operation: a kind, a detail, and the server error behind it.
pub struct QueueError {
    kind: QueueErrorKind,
    detail: String,
    source: Option<Error>,
}

impl QueueError {
    pub(crate) fn new(kind: QueueErrorKind, detail: impl Into<String>) -> QueueError {
        QueueError {
            kind,
            detail: detail.into(),
            source: None,
        }
    }

    /// The classification.
    pub fn kind(&self) -> QueueErrorKind {
        self.kind
    }

    /// A human-readable detail.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The server (or connection) error behind a [`QueueErrorKind::Server`] error.
    pub fn server_error(&self) -> Option<&Error> {
        self.source.as_ref()
    }
}

impl From<Error> for QueueError {
    fn from(e: Error) -> QueueError {
        QueueError {
            kind: QueueErrorKind::Server,
            detail: e.to_string(),
            source: Some(e),
        }
    }
}

impl fmt::Debug for QueueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueError")
            .field("kind", &self.kind)
            .field("detail", &self.detail)
            .finish()
    }
}

impl fmt::Display for QueueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = match self.kind {
            QueueErrorKind::Server => "queue server error",
            QueueErrorKind::LeaseLost => "lease lost",
            QueueErrorKind::Encode => "job encoding failed",
            QueueErrorKind::Decode => "malformed job",
            QueueErrorKind::Config => "queue configuration error",
            QueueErrorKind::ShutDown => "worker pool shut down",
        };
        write!(f, "{label}: {}", self.detail)
    }
}

impl std::error::Error for QueueError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
