//! How the pool classifies connect failures and builds its exhaustion error.

use std::fmt;
use std::time::Duration;

use crate::error::{Error, ErrorKind};

/// True for failures that waiting cannot fix (wrong credentials, bad configuration, a
/// TLS setup error, a handshake command the server rejects for good): the checkout
/// returns them at once instead of waiting out its timeout.
pub(crate) fn is_fatal(e: &Error) -> bool {
    match e.kind() {
        ErrorKind::Auth | ErrorKind::Config | ErrorKind::Tls => true,
        ErrorKind::Server(k) => !k.is_retryable(),
        _ => false,
    }
}

/// True when the server answered the connect with "not now" (`ERR max number of clients
/// reached`, or another retryable server condition): it is up but full or busy, so the
/// pool waits for its own connections to come back and spaces out its connect attempts
/// (see [`busy_backoff`]) instead of failing at once or opening socket after socket.
pub(crate) fn is_server_busy(e: &Error) -> bool {
    matches!(e.kind(), ErrorKind::Server(k) if k.is_retryable())
}

/// True for a connect that failed at the socket (refused, reset, EOF in the handshake):
/// read together with "this pool holds open connections", it means a server that is up
/// but turning connections away without saying why.
pub(crate) fn is_refused_while_up(e: &Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::Io | ErrorKind::Connect | ErrorKind::Broken
    )
}

/// The pool-wide pause before the next connect attempt after `n` consecutive "server
/// busy" connect failures: 10 ms doubling up to 250 ms, so at most about 4 attempts a
/// second in the long run, however many threads are waiting.
pub(crate) fn busy_backoff(n: u32) -> Duration {
    let shift = n.saturating_sub(1).min(16);
    Duration::from_millis(10u64 << shift).min(BUSY_BACKOFF_CAP)
}

/// The longest pause between two connect attempts while the server reports itself busy.
pub(crate) const BUSY_BACKOFF_CAP: Duration = Duration::from_millis(250);

/// A copy of `e` to keep in the pool while the original goes to the caller: same kind
/// and detail, with the source chain kept as text.
pub(crate) fn duplicate(e: &Error) -> Error {
    let copy = Error::new(e.kind(), e.detail());
    match std::error::Error::source(e) {
        Some(s) => copy.with_source(SourceText::of(s)),
        None => copy,
    }
}

/// `PoolExhausted` after waiting `waited`, with the connect failure as its source.
pub(crate) fn exhausted(waited: Duration, max_size: usize, cause: Option<Error>) -> Error {
    match cause {
        Some(cause) => Error::new(
            ErrorKind::PoolExhausted,
            format!("no connection within {waited:?}: connecting failed"),
        )
        .with_source(cause),
        None => Error::new(
            ErrorKind::PoolExhausted,
            format!("no connection within {waited:?}: all {max_size} are in use"),
        ),
    }
}

/// The text of an error and of its sources, detached from the originals.
#[derive(Debug)]
struct SourceText {
    text: String,
    next: Option<Box<SourceText>>,
}

impl SourceText {
    fn of(e: &(dyn std::error::Error + 'static)) -> SourceText {
        SourceText {
            text: e.to_string(),
            next: e.source().map(|s| Box::new(SourceText::of(s))),
        }
    }
}

impl fmt::Display for SourceText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for SourceText {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.next.as_deref().map(|s| s as _)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn duplicate_keeps_kind_detail_and_source_text() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = Error::new(ErrorKind::Connect, "connect 127.0.0.1:1").with_source(io);
        let d = duplicate(&e);
        assert_eq!(d.kind(), ErrorKind::Connect);
        assert_eq!(d.detail(), "connect 127.0.0.1:1");
        assert_eq!(
            d.source().map(|s| s.to_string()).as_deref(),
            Some("refused")
        );
    }

    #[test]
    fn fatal_kinds() {
        assert!(is_fatal(&Error::new(ErrorKind::Auth, "x")));
        assert!(is_fatal(&Error::new(ErrorKind::Config, "x")));
        assert!(!is_fatal(&Error::new(ErrorKind::Connect, "x")));
        assert!(!is_fatal(&Error::new(ErrorKind::Timeout, "x")));
        let loading = Error::from(crate::error::ServerError::new("LOADING x"));
        assert!(!is_fatal(&loading));
        let full = Error::from(crate::error::ServerError::new(
            "ERR max number of clients reached",
        ));
        assert!(
            !is_fatal(&full),
            "the server is up but full: wait, do not fail"
        );
        assert!(is_server_busy(&full) && is_server_busy(&loading));
        assert!(!is_server_busy(&Error::new(ErrorKind::Connect, "refused")));
    }

    #[test]
    fn busy_backoff_doubles_to_its_cap() {
        let d: Vec<u128> = (1..=8).map(|n| busy_backoff(n).as_millis()).collect();
        assert_eq!(d, [10, 20, 40, 80, 160, 250, 250, 250]);
        assert_eq!(busy_backoff(0), Duration::from_millis(10));
        assert_eq!(busy_backoff(u32::MAX), BUSY_BACKOFF_CAP);
    }

    #[test]
    fn exhausted_carries_its_cause() {
        let e = exhausted(
            Duration::from_millis(5),
            2,
            Some(Error::new(ErrorKind::Connect, "refused")),
        );
        assert_eq!(e.kind(), ErrorKind::PoolExhausted);
        let src = e.source().and_then(|s| s.downcast_ref::<Error>());
        assert_eq!(src.map(Error::kind), Some(ErrorKind::Connect));
    }
}
