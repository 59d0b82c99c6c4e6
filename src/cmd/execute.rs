//! [`Execute`]: the one interface every pattern is written against.

use super::{Cmd, Pipeline};
use crate::error::Result;
use crate::resp::Value;

/// Something that runs commands: a connection, a pool, a cluster, a client.
///
/// Patterns (caches, locks, limiters, queues) are written once against this trait, so the
/// same code runs on one connection or a whole cluster. Typed helpers for common commands
/// come from the [`Commands`](crate::Commands) extension trait, implemented for every
/// `Execute`.
pub trait Execute {
    /// Run one command. A server error reply is returned as `Err` with
    /// [`ErrorKind::Server`](crate::ErrorKind::Server).
    fn exec(&self, cmd: &Cmd) -> Result<Value>;

    /// Run a pipeline: all commands are written at once, then all replies are read.
    /// Returns one raw reply per command (for an atomic pipeline: the replies inside
    /// EXEC); per-command server errors are [`Value::Error`] items, not an `Err`.
    fn exec_pipeline(&self, pipeline: &Pipeline) -> Result<Vec<Value>>;
}

impl<E: Execute + ?Sized> Execute for &E {
    fn exec(&self, cmd: &Cmd) -> Result<Value> {
        (**self).exec(cmd)
    }
    fn exec_pipeline(&self, pipeline: &Pipeline) -> Result<Vec<Value>> {
        (**self).exec_pipeline(pipeline)
    }
}

impl<E: Execute + ?Sized> Execute for std::sync::Arc<E> {
    fn exec(&self, cmd: &Cmd) -> Result<Value> {
        (**self).exec(cmd)
    }
    fn exec_pipeline(&self, pipeline: &Pipeline) -> Result<Vec<Value>> {
        (**self).exec_pipeline(pipeline)
    }
}
