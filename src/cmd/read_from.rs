//! [`ReadFrom`]: which endpoint a read-only command may go to.

/// Where a read-only command may be served, for executors with a reader endpoint (a
/// [`Client`](crate::Client) built with a reader URL). Writes always go to the writer;
/// a [`Connection`](crate::Connection) or [`Pool`](crate::Pool) has one server and
/// ignores the hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ReadFrom {
    /// The writer (primary): reads see every write that completed before them.
    Writer,
    /// The reader endpoint when there is one (replicas may lag, and miss everything
    /// while doing their initial sync). The default for commands without a hint.
    #[default]
    Reader,
    /// The reader endpoint while it is in sync with its primary (its replication link is
    /// up and no initial sync is running, as `INFO replication` reports; checked at most
    /// once a second, by one thread), the writer otherwise. A replica that lags a little
    /// still serves; one that is loading or has lost its primary does not.
    ReaderWhenInSync,
}
