//! [`CacheError`]: what cache operations fail with. Cheap to clone, because one load's
//! error is handed to every caller that waited for it.

use std::fmt;
use std::sync::Arc;

use crate::error::{Error, ErrorClass};

/// What went wrong in a cache operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CacheErrorKind {
    /// The loader returned an error. Every caller that waited for that load gets it; it
    /// is never cached, so the next call loads again.
    Loader,
    /// The loader panicked. Treated like [`Loader`](CacheErrorKind::Loader): every waiter
    /// gets this error, nobody deadlocks, the next call loads again.
    LoaderPanicked,
    /// The server failed and the failure is not one that degradation covers (or
    /// degradation is off); [`CacheError::server_error`] has the cause.
    Server,
    /// The codec could not encode or decode a value.
    Codec,
    /// Write-through: the origin writer failed. The cache was not touched.
    Origin,
    /// Write-through: the origin was written, the cache write failed, and the entry was
    /// deleted: the next read loads the new value from the origin.
    CacheInvalidated,
    /// Write-through: the origin was written, and both the cache write and the deletion of
    /// the old entry failed: the old value may be served until its TTL ends.
    CacheStale,
    /// The caller's input was rejected before anything was sent: a session id that is not
    /// 32 hex digits (a forged or truncated cookie).
    InvalidInput,
}

/// The error of a cache operation: a kind, a detail, and the cause.
#[derive(Clone)]
pub struct CacheError {
    inner: Arc<Inner>,
}

struct Inner {
    kind: CacheErrorKind,
    detail: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl CacheError {
    pub(crate) fn new(
        kind: CacheErrorKind,
        detail: impl Into<String>,
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> CacheError {
        CacheError {
            inner: Arc::new(Inner {
                kind,
                detail: detail.into(),
                source,
            }),
        }
    }

    pub(crate) fn server(e: Error) -> CacheError {
        CacheError::new(CacheErrorKind::Server, e.to_string(), Some(Box::new(e)))
    }

    pub(crate) fn codec(
        what: &str,
        e: Box<dyn std::error::Error + Send + Sync + 'static>,
    ) -> CacheError {
        CacheError::new(CacheErrorKind::Codec, format!("{what}: {e}"), Some(e))
    }

    pub(crate) fn loader(e: Box<dyn std::error::Error + Send + Sync + 'static>) -> CacheError {
        CacheError::new(CacheErrorKind::Loader, e.to_string(), Some(e))
    }

    /// The classification.
    pub fn kind(&self) -> CacheErrorKind {
        self.inner.kind
    }

    /// Whose problem this is, for turning it into a response (see [`ErrorClass`]): the
    /// server error's own class for [`Server`](CacheErrorKind::Server),
    /// [`CacheInvalidated`](CacheErrorKind::CacheInvalidated) and
    /// [`CacheStale`](CacheErrorKind::CacheStale); [`ErrorClass::Caller`] for
    /// [`InvalidInput`](CacheErrorKind::InvalidInput) (a bad session id: 400, or treat it
    /// as "no session"); [`ErrorClass::Internal`] for codec failures and for the loader's
    /// and origin's own errors, which the service classifies itself through
    /// [`CacheError::loader_error`].
    ///
    /// ```
    /// use valkit::cache::SessionId;
    /// use valkit::ErrorClass;
    /// let err = "not-a-session-id".parse::<SessionId>().unwrap_err();
    /// assert_eq!(err.class(), ErrorClass::Caller);
    /// ```
    pub fn class(&self) -> ErrorClass {
        match self.inner.kind {
            CacheErrorKind::Server
            | CacheErrorKind::CacheInvalidated
            | CacheErrorKind::CacheStale => self
                .server_error()
                .map_or(ErrorClass::Internal, Error::class),
            CacheErrorKind::InvalidInput => ErrorClass::Caller,
            CacheErrorKind::Loader
            | CacheErrorKind::LoaderPanicked
            | CacheErrorKind::Codec
            | CacheErrorKind::Origin => ErrorClass::Internal,
        }
    }

    /// A human-readable detail.
    pub fn detail(&self) -> &str {
        &self.inner.detail
    }

    /// The server error behind a [`Server`](CacheErrorKind::Server),
    /// [`CacheInvalidated`](CacheErrorKind::CacheInvalidated) or
    /// [`CacheStale`](CacheErrorKind::CacheStale) error.
    pub fn server_error(&self) -> Option<&Error> {
        self.inner.source.as_ref()?.downcast_ref::<Error>()
    }

    /// The loader's (or origin writer's) own error, to downcast to its type:
    /// `err.loader_error().and_then(|e| e.downcast_ref::<MyError>())`.
    pub fn loader_error(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        match self.inner.kind {
            CacheErrorKind::Loader | CacheErrorKind::Origin => self.inner.source.as_deref(),
            _ => None,
        }
    }
}

impl fmt::Debug for CacheError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheError")
            .field("kind", &self.inner.kind)
            .field("detail", &self.inner.detail)
            .finish()
    }
}

impl fmt::Display for CacheError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = match self.inner.kind {
            CacheErrorKind::Loader => "loader failed",
            CacheErrorKind::LoaderPanicked => "loader panicked",
            CacheErrorKind::Server => "cache server error",
            CacheErrorKind::Codec => "cache codec error",
            CacheErrorKind::Origin => "origin write failed",
            CacheErrorKind::CacheInvalidated => {
                "origin written, cache write failed, entry invalidated"
            }
            CacheErrorKind::CacheStale => "origin written, cache write and invalidation failed",
            CacheErrorKind::InvalidInput => "invalid input",
        };
        write!(f, "{label}: {}", self.inner.detail)
    }
}

impl std::error::Error for CacheError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// True for failures that mean "the cache is unavailable", the ones graceful degradation
/// covers: [`Error::is_unavailable`] (connect, I/O, timeout, broken connection, pool
/// exhausted, circuit open, and server replies such as `LOADING` or `MASTERDOWN`).
pub(crate) fn is_availability(e: &Error) -> bool {
    e.is_unavailable()
}
