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
