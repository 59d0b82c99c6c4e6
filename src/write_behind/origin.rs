//! The origin side: [`Origin`] (the user's writer), [`Write`] (one recorded write) and
//! [`OriginError`].

use std::fmt;

/// What an origin's error may wrap.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// One accepted write, as the origin receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub(crate) seq: u64,
    pub(crate) at_ms: u64,
    pub(crate) key: String,
    pub(crate) value: Vec<u8>,
}

impl Write {
    /// Its sequence number: unique and increasing over the whole write-behind (all
    /// processes); a later write to a key has a higher one. Use it for idempotent
    /// applies ("set if seq > stored seq").
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// When it was accepted, in server milliseconds since the Unix epoch.
    pub fn accepted_at_ms(&self) -> u64 {
        self.at_ms
    }

    /// The key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The value.
    pub fn value(&self) -> &[u8] {
        &self.value
    }
}

/// An origin write failure: transient (retried with backoff) or permanent (the writes go
/// to the dead-letter list without more retries).
pub struct OriginError {
    permanent: bool,
    error: BoxError,
}

impl OriginError {
    /// A failure that may go away (the database is down, a timeout): retry.
    pub fn transient(error: impl Into<BoxError>) -> OriginError {
        OriginError {
            permanent: false,
            error: error.into(),
        }
    }

    /// A failure that will not go away (a constraint violation, bad data): do not retry.
    pub fn permanent(error: impl Into<BoxError>) -> OriginError {
        OriginError {
            permanent: true,
            error: error.into(),
        }
    }

    /// True for [`OriginError::permanent`].
    pub fn is_permanent(&self) -> bool {
        self.permanent
    }

    /// The wrapped error.
    pub fn error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.error
    }
}

impl fmt::Debug for OriginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OriginError")
            .field("permanent", &self.permanent)
            .field("error", &self.error.to_string())
            .finish()
    }
}

impl fmt::Display for OriginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

/// The system of record that write-behind writes to (a database, a file, a service).
///
/// `write` gets a batch of writes in acceptance order (per key: always in order). It must
/// apply all of them or return an error; a batch that failed is retried whole, so
/// applying must be idempotent (a write may reach the origin more than once: after a
/// crash between the origin write and the acknowledgement in Valkey, or after a retry of
/// a batch that was partly applied).
///
/// Closures `Fn(&[Write]) -> Result<(), OriginError>` are origins.
pub trait Origin: Send + Sync + 'static {
    /// Apply the batch, or fail.
    fn write(&self, batch: &[Write]) -> Result<(), OriginError>;
}

impl<F> Origin for F
where
    F: Fn(&[Write]) -> Result<(), OriginError> + Send + Sync + 'static,
{
    fn write(&self, batch: &[Write]) -> Result<(), OriginError> {
        self(batch)
    }
}
