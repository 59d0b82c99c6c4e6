//! The observer hook: called once for every command (or pipeline) the client runs.

use std::time::{Duration, SystemTime};

use crate::error::Error;

/// What happened to one command or pipeline, reported after it finished (retries
/// included).
///
/// `started` and `duration` let an observer record a span after the fact (OpenTelemetry
/// accepts explicit start and end times), so no per-command allocation is needed up front.
#[derive(Debug)]
#[non_exhaustive]
pub struct CommandEvent<'a> {
    /// Upper-case command name (`GET`), or `PIPELINE` / `MULTI` for batches.
    pub command: &'a str,
    /// Which endpoint served it (`writer` or `reader`).
    pub endpoint: &'a str,
    /// Commands in the batch (1 for a single command).
    pub commands: usize,
    /// Wall-clock start.
    pub started: SystemTime,
    /// Total time, retries and backoff included.
    pub duration: Duration,
    /// Attempts made (1 when no retry happened).
    pub attempts: u32,
    /// The final error, if it failed.
    pub error: Option<&'a Error>,
}

/// A hook called around every command a [`Client`](crate::Client) runs. Install with
/// [`ClientBuilder::observer`](crate::ClientBuilder::observer).
///
/// Observers run on the caller's thread after the command returns: keep them fast and
/// never block in them.
///
/// ```
/// use valkit::{CommandEvent, Observer};
/// struct SlowLog;
/// impl Observer for SlowLog {
///     fn on_command(&self, e: &CommandEvent<'_>) {
///         if e.duration.as_millis() > 100 {
///             eprintln!("slow {} on {}: {:?}", e.command, e.endpoint, e.duration);
///         }
///     }
/// }
/// ```
pub trait Observer: Send + Sync + 'static {
    /// One command or pipeline finished.
    fn on_command(&self, event: &CommandEvent<'_>);

    /// An attempt failed and will be retried after `delay`.
    fn on_retry(&self, command: &str, error: &Error, delay: Duration) {
        let _ = (command, error, delay);
    }
}
