//! The one error type of the crate, its classification, and the retry class.
//!
//! Every failure surfaces as [`Error`]. Callers (and the retry/breaker code) decide by
//! [`Error::kind`] and the predicates, never by comparing message strings.

use std::fmt;

/// Shorthand for `Result<T, valkit::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, coarsely. `Copy`, cheap to match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A connection could not be established (refused, unreachable, DNS, TLS handshake).
    /// Nothing was sent: safe to retry any command.
    Connect,
    /// An I/O error on an established connection (reset, EOF, broken pipe). A request
    /// may already have reached the server.
    Io,
    /// A connect, read or write timeout expired. A request may already have reached the server.
    Timeout,
    /// The peer sent bytes that are not valid RESP.
    Protocol,
    /// A reply broke a configured decoder limit (a bulk string longer than `max_bulk_len`,
    /// an aggregate longer than `max_aggregate_len`, nesting deeper than `max_depth`, a line
    /// longer than `max_line_len`); [`Error::limit`] says which. The reply is well-formed
    /// but was not read, so the connection can no longer be used. Not a sign of an
    /// unavailable server: retry and the circuit breaker leave it alone.
    Limit,
    /// The command was refused before anything was written: it has no name, or an argument
    /// is longer than `max_bulk_len` (then [`Error::limit`] is [`Limit::BulkLen`]). The
    /// connection is unaffected.
    InvalidCommand,
    /// The server answered with an error reply; see [`ServerErrorKind`].
    Server(ServerErrorKind),
    /// Authentication failed during the handshake (wrong password, unknown user, no password set).
    Auth,
    /// Invalid configuration: a bad URL, environment variable or option.
    Config,
    /// A reply could not be converted into the requested Rust type.
    Conversion,
    /// TLS was requested but the crate was built without the `tls` feature, or the TLS
    /// configuration could not be applied.
    Tls,
    /// The connection was already broken by an earlier failure and cannot be used again.
    Broken,
    /// A transaction was not applied because a watched key changed (EXEC returned nil).
    Aborted,
    /// No pooled connection became free within the checkout timeout.
    PoolExhausted,
    /// The circuit breaker is open: calls fail fast until the recovery timeout passes.
    CircuitOpen,
    /// A throwaway server of the test kit could not be started.
    Testkit,
    /// The command cannot be run through this API: it would desynchronise the connection
    /// (SUBSCRIBE, MONITOR, RESET or CLIENT REPLY through `exec` or a pipeline). The detail
    /// names the API to use. Also a `SCAN` without a literal hash tag on a cluster client,
    /// which would cover one node only (use `Client::scan_cluster`). Nothing was sent; the
    /// connection stays usable.
    Unsupported,
}

/// Which configured limit an error is about (a field of `valkit::resp::Limits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Limit {
    /// `max_bulk_len`: a bulk string, bulk error, verbatim or streamed string too long (in a
    /// reply), or a command argument too long (refused before sending).
    BulkLen,
    /// `max_aggregate_len`: an array, set, map, push or attribute with too many elements.
    AggregateLen,
    /// `max_depth`: aggregates nested too deep.
    Depth,
    /// `max_line_len`: a simple string, error, number or header line too long.
    LineLen,
}

/// Whose problem an error is, for turning it into a response: the one classification a
/// service maps to HTTP statuses (see `docs/errors.md`).
///
/// ```
/// use valkit::{Error, ErrorClass, ErrorKind, ServerError};
/// fn status(e: &Error) -> u16 {
///     match e.class() {
///         ErrorClass::Unavailable => 503, // with Retry-After
///         ErrorClass::Caller => 400,
///         _ => 500,
///     }
/// }
/// assert_eq!(status(&Error::new(ErrorKind::Timeout, "read")), 503);
/// assert_eq!(status(&ServerError::new("LOADING Redis is loading").into()), 503);
/// assert_eq!(status(&ServerError::new("WRONGTYPE Operation against a key").into()), 400);
/// assert_eq!(status(&Error::new(ErrorKind::Conversion, "not a number")), 400);
/// assert_eq!(status(&Error::new(ErrorKind::Config, "bad URL")), 500);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorClass {
    /// The server, or the way to it, cannot serve right now, and trying again later may
    /// work: connect failures, I/O errors and timeouts, a broken connection, an exhausted
    /// pool, an open circuit breaker, a peer that does not speak RESP, and the server
    /// replies `LOADING`, `BUSY`, `MASTERDOWN`, `CLUSTERDOWN`, `TRYAGAIN`, `READONLY`,
    /// `MOVED`/`ASK` (a failover or resharding under way) and `OOM`. HTTP 503.
    Unavailable,
    /// The request was wrong, and sending it again will not help: `WRONGTYPE`, a syntax or
    /// argument error (`ERR ...`), `NOPERM`, `CROSSSLOT`, `EXECABORT`, a reply that does
    /// not convert into the type asked for, a transaction aborted by a watched key. HTTP
    /// 400 (or 403, 409 where the service knows better).
    Caller,
    /// A bug or a misconfiguration on this side: bad configuration or credentials, TLS set
    /// up wrongly, a protocol the server does not support, a script the server lost, and
    /// anything unclassified. HTTP 500.
    Internal,
}

impl ErrorClass {
    /// The HTTP status this class usually maps to: 503, 400 or 500.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorClass::Unavailable => 503,
            ErrorClass::Caller => 400,
            ErrorClass::Internal => 500,
        }
    }
}

/// The class of a server error reply, taken from its first word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ServerErrorKind {
    /// `MOVED slot host:port`: the slot lives on another cluster node.
    Moved,
    /// `ASK slot host:port`: the slot is being migrated; ask the other node once.
    Ask,
    /// `LOADING`: the server is loading its dataset.
    Loading,
    /// `READONLY`: a write was sent to a replica.
    ReadOnly,
    /// `NOSCRIPT`: EVALSHA of a script the server does not have.
    NoScript,
    /// `WRONGTYPE`: the key holds another type.
    WrongType,
    /// `BUSY`: a script or function is running too long.
    Busy,
    /// `OOM`: `maxmemory` reached and the command would use more.
    Oom,
    /// `NOAUTH`: authentication required.
    NoAuth,
    /// `WRONGPASS`: invalid username/password pair or user disabled.
    WrongPass,
    /// `NOPERM`: the user may not run this command or touch this key.
    NoPerm,
    /// `TRYAGAIN`: a multi-key operation during resharding; retry shortly.
    TryAgain,
    /// `CLUSTERDOWN`: the cluster cannot serve this slot right now.
    ClusterDown,
    /// `MASTERDOWN`: the replica lost its primary and `replica-serve-stale-data` is off.
    MasterDown,
    /// `CROSSSLOT`: keys of one command hash to different slots.
    CrossSlot,
    /// `EXECABORT`: a transaction was discarded because a queued command was rejected.
    ExecAbort,
    /// `NOPROTO`: the requested protocol version is not supported.
    NoProto,
    /// `ERR max number of clients reached`: the server is at `maxclients` and refused this
    /// connection (it closes it). Retryable: nothing ran, and a slot frees up when another
    /// client disconnects.
    MaxClients,
    /// Any other code (`ERR`, `WRONGARGS`, module codes ...).
    Other,
}

impl ServerErrorKind {
    /// Classify an error code (the first word of an error reply, e.g. `MOVED`).
    pub fn from_code(code: &str) -> ServerErrorKind {
        match code {
            "MOVED" => Self::Moved,
            "ASK" => Self::Ask,
            "LOADING" => Self::Loading,
            "READONLY" => Self::ReadOnly,
            "NOSCRIPT" => Self::NoScript,
            "WRONGTYPE" => Self::WrongType,
            "BUSY" => Self::Busy,
            "OOM" => Self::Oom,
            "NOAUTH" => Self::NoAuth,
            "WRONGPASS" => Self::WrongPass,
            "NOPERM" => Self::NoPerm,
            "TRYAGAIN" => Self::TryAgain,
            "CLUSTERDOWN" => Self::ClusterDown,
            "MASTERDOWN" => Self::MasterDown,
            "CROSSSLOT" => Self::CrossSlot,
            "EXECABORT" => Self::ExecAbort,
            "NOPROTO" => Self::NoProto,
            _ => Self::Other,
        }
    }

    /// The [`ErrorClass`] of a reply of this kind.
    pub fn class(self) -> ErrorClass {
        match self {
            Self::Moved
            | Self::Ask
            | Self::Loading
            | Self::ReadOnly
            | Self::Busy
            | Self::Oom
            | Self::TryAgain
            | Self::ClusterDown
            | Self::MasterDown
            | Self::MaxClients => ErrorClass::Unavailable,
            Self::WrongType | Self::NoPerm | Self::CrossSlot | Self::ExecAbort | Self::Other => {
                ErrorClass::Caller
            }
            Self::NoScript | Self::NoAuth | Self::WrongPass | Self::NoProto => ErrorClass::Internal,
        }
    }

    /// True when a reply of this class means the command was **not** applied and resending
    /// it (after a pause, or to another node) is safe even for non-idempotent commands.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Self::Moved
                | Self::Ask
                | Self::Loading
                | Self::TryAgain
                | Self::ClusterDown
                | Self::MasterDown
                | Self::Busy
                | Self::ReadOnly
                | Self::MaxClients
        )
    }
}

/// What Valkey and Redis send to a connection accepted beyond `maxclients`.
const MAX_CLIENTS: &str = "ERR max number of clients reached";

/// An error reply from the server, e.g. `-WRONGTYPE Operation against a key ...`.
///
/// Both simple errors (`-`) and bulk errors (`!`) decode into this type.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ServerError {
    kind: ServerErrorKind,
    text: String,
}

impl ServerError {
    /// Build from the full error text (code, a space, then the message).
    pub fn new(text: impl Into<String>) -> ServerError {
        let text = text.into();
        let mut kind = ServerErrorKind::from_code(text.split(' ').next().unwrap_or(""));
        // The one condition servers report under the generic `ERR` code that callers must
        // tell apart (it is retryable; other `ERR` replies are not).
        if kind == ServerErrorKind::Other && text.starts_with(MAX_CLIENTS) {
            kind = ServerErrorKind::MaxClients;
        }
        ServerError { kind, text }
    }

    /// The classification of the code.
    pub fn kind(&self) -> ServerErrorKind {
        self.kind
    }

    /// The code: the first word of the error text (`ERR`, `MOVED`, ...).
    pub fn code(&self) -> &str {
        self.text.split(' ').next().unwrap_or("")
    }

    /// The text after the code (empty when there is none).
    pub fn message(&self) -> &str {
        match self.text.find(' ') {
            Some(i) => &self.text[i + 1..],
            None => "",
        }
    }

    /// The whole error text as the server sent it.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// For `MOVED`/`ASK`: the slot and the `host:port` to go to.
    pub fn redirect(&self) -> Option<(u16, &str)> {
        if !matches!(self.kind, ServerErrorKind::Moved | ServerErrorKind::Ask) {
            return None;
        }
        let mut parts = self.message().split(' ');
        let slot = parts.next()?.parse().ok()?;
        let addr = parts.next()?;
        Some((slot, addr))
    }
}

impl fmt::Debug for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServerError({:?})", self.text)
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for ServerError {}

/// The crate's error: a kind, a human-readable detail, and an optional source.
///
/// Small (one pointer) so that `Result<T>` stays cheap on the hot path.
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    detail: String,
    server: Option<ServerError>,
    limit: Option<Limit>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// A new error of `kind` with a detail message.
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Error {
        Error {
            inner: Box::new(Inner {
                kind,
                detail: detail.into(),
                server: None,
                limit: None,
                source: None,
            }),
        }
    }

    /// Attach the underlying cause, reachable through [`std::error::Error::source`].
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Error {
        self.inner.source = Some(Box::new(source));
        self
    }

    /// The classification.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The detail message (without the kind prefix).
    pub fn detail(&self) -> &str {
        &self.inner.detail
    }

    /// The configured limit this error is about: for [`ErrorKind::Limit`] (a reply broke
    /// it) and for an [`ErrorKind::InvalidCommand`] whose argument was too long.
    ///
    /// ```no_run
    /// use valkit::{Commands, Connection, ConnectionConfig, ErrorKind, Limit};
    /// # fn main() -> valkit::Result<()> {
    /// let mut config = ConnectionConfig::from_url("redis://127.0.0.1:6379")?;
    /// config.limits.max_bulk_len = 1024; // no reply string, and no argument, over 1 KiB
    /// let conn = Connection::open(&config)?;
    /// // An argument over the limit is refused before anything is sent.
    /// let err = conn.set("k", vec![0u8; 2048]).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::InvalidCommand);
    /// assert_eq!(err.limit(), Some(Limit::BulkLen));
    /// assert!(err.is_limit());
    /// # Ok(()) }
    /// ```
    pub fn limit(&self) -> Option<Limit> {
        self.inner.limit
    }

    /// True when a configured limit was hit ([`Error::limit`] is `Some`).
    pub fn is_limit(&self) -> bool {
        self.inner.limit.is_some()
    }

    /// The server's error reply, when this error is one.
    pub fn server_error(&self) -> Option<&ServerError> {
        self.inner.server.as_ref()
    }

    /// Whose problem this is: [`ErrorClass::Unavailable`] (try again later, 503),
    /// [`ErrorClass::Caller`] (a wrong request, 400) or [`ErrorClass::Internal`] (a bug or
    /// misconfiguration, 500). See [`ErrorClass`] for the full list.
    pub fn class(&self) -> ErrorClass {
        match self.inner.kind {
            ErrorKind::Connect
            | ErrorKind::Io
            | ErrorKind::Timeout
            | ErrorKind::Protocol
            | ErrorKind::Broken
            | ErrorKind::PoolExhausted
            | ErrorKind::CircuitOpen => ErrorClass::Unavailable,
            ErrorKind::Server(k) => k.class(),
            ErrorKind::Conversion
            | ErrorKind::Aborted
            | ErrorKind::InvalidCommand
            | ErrorKind::Unsupported => ErrorClass::Caller,
            ErrorKind::Auth
            | ErrorKind::Config
            | ErrorKind::Tls
            | ErrorKind::Testkit
            | ErrorKind::Limit => ErrorClass::Internal,
        }
    }

    /// True when the server or the way to it cannot serve right now
    /// ([`ErrorClass::Unavailable`]): the failures a cache degrades on and a circuit
    /// breaker counts.
    pub fn is_unavailable(&self) -> bool {
        self.class() == ErrorClass::Unavailable
    }

    /// True when the request itself was wrong ([`ErrorClass::Caller`]).
    pub fn is_caller_error(&self) -> bool {
        self.class() == ErrorClass::Caller
    }

    /// True when resending the same command cannot apply it twice: nothing reached the
    /// server (a failed connect, a connection already broken before the write), or the server said it did not run it (`LOADING`,
    /// `TRYAGAIN`, `BUSY`, `CLUSTERDOWN`, `MASTERDOWN`, `READONLY`, `MOVED`, `ASK`).
    ///
    /// I/O errors and timeouts on an established connection are **not** retryable by this
    /// rule: the request may have been applied. See [`Error::is_ambiguous`].
    pub fn is_retryable(&self) -> bool {
        match self.inner.kind {
            // Broken: the connection was found unusable before anything was written.
            ErrorKind::Connect | ErrorKind::Broken => true,
            ErrorKind::Server(k) => k.is_retryable(),
            _ => false,
        }
    }

    /// True when the outcome is unknown: the connection failed (I/O error or timeout)
    /// after a request may have been written. Only idempotent commands may be resent.
    pub fn is_ambiguous(&self) -> bool {
        matches!(self.inner.kind, ErrorKind::Io | ErrorKind::Timeout)
    }

    /// True for a timeout.
    pub fn is_timeout(&self) -> bool {
        self.inner.kind == ErrorKind::Timeout
    }

    /// True when the connection that produced this error can no longer be used.
    pub fn is_connection_broken(&self) -> bool {
        matches!(
            self.inner.kind,
            ErrorKind::Io
                | ErrorKind::Timeout
                | ErrorKind::Protocol
                | ErrorKind::Limit
                | ErrorKind::Broken
                | ErrorKind::Connect
        )
    }

    /// For `MOVED`/`ASK` replies: the slot and address to follow.
    pub fn redirect(&self) -> Option<(u16, &str)> {
        self.inner.server.as_ref().and_then(|s| s.redirect())
    }

    pub(crate) fn io(kind: ErrorKind, what: &str, err: std::io::Error) -> Error {
        let kind = match err.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => ErrorKind::Timeout,
            _ => kind,
        };
        Error::new(kind, format!("{what}: {err}")).with_source(err)
    }

    pub(crate) fn set_detail(&mut self, detail: String) {
        self.inner.detail = detail;
    }

    pub(crate) fn protocol(detail: impl Into<String>) -> Error {
        Error::new(ErrorKind::Protocol, detail)
    }

    /// A reply broke the configured limit `which`.
    pub(crate) fn limit_exceeded(which: Limit, detail: impl Into<String>) -> Error {
        let mut e = Error::new(ErrorKind::Limit, detail);
        e.inner.limit = Some(which);
        e
    }

    /// A command refused before sending; `limit` when an argument was too long.
    pub(crate) fn invalid_command(limit: Option<Limit>, detail: impl Into<String>) -> Error {
        let mut e = Error::new(ErrorKind::InvalidCommand, detail);
        e.inner.limit = limit;
        e
    }

    pub(crate) fn config(detail: impl Into<String>) -> Error {
        Error::new(ErrorKind::Config, detail)
    }

    pub(crate) fn conversion(detail: impl Into<String>) -> Error {
        Error::new(ErrorKind::Conversion, detail)
    }
}

impl From<ServerError> for Error {
    fn from(e: ServerError) -> Error {
        Error {
            inner: Box::new(Inner {
                kind: ErrorKind::Server(e.kind()),
                detail: e.text().to_owned(),
                server: Some(e),
                limit: None,
                source: None,
            }),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.inner.kind)
            .field("detail", &self.inner.detail);
        if let Some(l) = &self.inner.limit {
            d.field("limit", l);
        }
        if let Some(s) = &self.inner.source {
            d.field("source", s);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = match self.inner.kind {
            ErrorKind::Connect => "connect error",
            ErrorKind::Io => "I/O error",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Protocol => "protocol error",
            ErrorKind::Limit => "limit exceeded",
            ErrorKind::InvalidCommand => "invalid command",
            ErrorKind::Server(_) => "server error",
            ErrorKind::Auth => "authentication failed",
            ErrorKind::Config => "configuration error",
            ErrorKind::Conversion => "conversion error",
            ErrorKind::Tls => "TLS error",
            ErrorKind::Broken => "connection broken",
            ErrorKind::Aborted => "transaction aborted",
            ErrorKind::PoolExhausted => "pool exhausted",
            ErrorKind::CircuitOpen => "circuit open",
            ErrorKind::Testkit => "testkit error",
            ErrorKind::Unsupported => "unsupported",
        };
        write!(f, "{label}: {}", self.inner.detail)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        if let Some(s) = &self.inner.source {
            return Some(s.as_ref());
        }
        self.inner
            .server
            .as_ref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_is_one_pointer() {
        assert_eq!(std::mem::size_of::<Error>(), std::mem::size_of::<usize>());
        assert!(std::mem::size_of::<Result<()>>() <= 2 * std::mem::size_of::<usize>());
    }

    #[test]
    fn server_errors_are_classified_by_prefix() {
        let cases = [
            ("MOVED 3999 127.0.0.1:6381", ServerErrorKind::Moved),
            ("ASK 3999 127.0.0.1:6381", ServerErrorKind::Ask),
            ("LOADING Redis is loading", ServerErrorKind::Loading),
            ("READONLY You can't write", ServerErrorKind::ReadOnly),
            ("NOSCRIPT No matching script", ServerErrorKind::NoScript),
            ("WRONGTYPE Operation against", ServerErrorKind::WrongType),
            ("BUSY Redis is busy", ServerErrorKind::Busy),
            ("OOM command not allowed", ServerErrorKind::Oom),
            ("NOAUTH Authentication required.", ServerErrorKind::NoAuth),
            ("WRONGPASS invalid username", ServerErrorKind::WrongPass),
            ("NOPERM User app has no", ServerErrorKind::NoPerm),
            ("TRYAGAIN Multiple keys", ServerErrorKind::TryAgain),
            (
                "CLUSTERDOWN The cluster is down",
                ServerErrorKind::ClusterDown,
            ),
            ("MASTERDOWN Link with MASTER", ServerErrorKind::MasterDown),
            ("CROSSSLOT Keys in request", ServerErrorKind::CrossSlot),
            (
                "EXECABORT Transaction discarded",
                ServerErrorKind::ExecAbort,
            ),
            ("ERR unknown command", ServerErrorKind::Other),
            (
                "ERR max number of clients reached",
                ServerErrorKind::MaxClients,
            ),
            ("ERR max number of clients", ServerErrorKind::Other),
            ("", ServerErrorKind::Other),
        ];
        for (text, kind) in cases {
            let e = ServerError::new(text);
            assert_eq!(e.kind(), kind, "{text}");
            let err = Error::from(e);
            assert_eq!(err.kind(), ErrorKind::Server(kind));
        }
    }

    #[test]
    fn redirect_parses_slot_and_address() {
        let e = ServerError::new("MOVED 3999 127.0.0.1:6381");
        assert_eq!(e.redirect(), Some((3999, "127.0.0.1:6381")));
        assert_eq!(e.code(), "MOVED");
        assert_eq!(e.message(), "3999 127.0.0.1:6381");
        let e = ServerError::new("ASK 1 :6380");
        assert_eq!(e.redirect(), Some((1, ":6380")));
        assert_eq!(ServerError::new("ERR x").redirect(), None);
        assert_eq!(ServerError::new("MOVED notanumber x").redirect(), None);
    }

    #[test]
    fn retry_classes() {
        assert!(Error::new(ErrorKind::Connect, "x").is_retryable());
        assert!(!Error::new(ErrorKind::Io, "x").is_retryable());
        assert!(Error::new(ErrorKind::Io, "x").is_ambiguous());
        assert!(Error::from(ServerError::new("LOADING x")).is_retryable());
        assert!(!Error::from(ServerError::new("WRONGTYPE x")).is_retryable());
        assert!(!Error::from(ServerError::new("NOPERM x")).is_retryable());
        assert!(Error::from(ServerError::new("ERR max number of clients reached")).is_retryable());
        assert!(!Error::new(ErrorKind::Unsupported, "x").is_retryable());
        assert!(!Error::new(ErrorKind::Unsupported, "x").is_connection_broken());
    }

    #[test]
    fn every_kind_has_a_class() {
        use ErrorClass::*;
        let kinds = [
            (ErrorKind::Connect, Unavailable),
            (ErrorKind::Io, Unavailable),
            (ErrorKind::Timeout, Unavailable),
            (ErrorKind::Protocol, Unavailable),
            (ErrorKind::Broken, Unavailable),
            (ErrorKind::PoolExhausted, Unavailable),
            (ErrorKind::CircuitOpen, Unavailable),
            (ErrorKind::Conversion, Caller),
            (ErrorKind::Aborted, Caller),
            (ErrorKind::Auth, Internal),
            (ErrorKind::Config, Internal),
            (ErrorKind::Tls, Internal),
            (ErrorKind::Testkit, Internal),
        ];
        for (kind, class) in kinds {
            let e = Error::new(kind, "x");
            assert_eq!(e.class(), class, "{kind:?}");
            assert_eq!(e.is_unavailable(), class == Unavailable, "{kind:?}");
            assert_eq!(e.is_caller_error(), class == Caller, "{kind:?}");
        }
        let replies = [
            (
                "LOADING Redis is loading the dataset in memory",
                Unavailable,
            ),
            ("MASTERDOWN Link with MASTER is down", Unavailable),
            ("CLUSTERDOWN The cluster is down", Unavailable),
            (
                "TRYAGAIN Multiple keys request during rehashing",
                Unavailable,
            ),
            ("BUSY Redis is busy running a script", Unavailable),
            (
                "READONLY You can't write against a read only replica.",
                Unavailable,
            ),
            (
                "OOM command not allowed when used memory > 'maxmemory'.",
                Unavailable,
            ),
            ("MOVED 3999 127.0.0.1:6381", Unavailable),
            ("WRONGTYPE Operation against a key", Caller),
            ("ERR syntax error", Caller),
            ("NOPERM User app has no permissions", Caller),
            (
                "CROSSSLOT Keys in request don't hash to the same slot",
                Caller,
            ),
            ("EXECABORT Transaction discarded", Caller),
            ("NOSCRIPT No matching script", Internal),
            ("NOAUTH Authentication required.", Internal),
            ("WRONGPASS invalid username-password pair", Internal),
            ("NOPROTO unsupported protocol version", Internal),
        ];
        for (text, class) in replies {
            assert_eq!(Error::from(ServerError::new(text)).class(), class, "{text}");
        }
        assert_eq!(Unavailable.http_status(), 503);
        assert_eq!(Caller.http_status(), 400);
        assert_eq!(Internal.http_status(), 500);
    }

    #[test]
    fn source_is_chained() {
        use std::error::Error as _;
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        let e = Error::io(ErrorKind::Io, "read", io);
        assert!(e.source().is_some());
        let e = Error::io(
            ErrorKind::Io,
            "read",
            std::io::Error::from(std::io::ErrorKind::WouldBlock),
        );
        assert_eq!(e.kind(), ErrorKind::Timeout);
    }
}
