//! [`Execute`]: the one interface every pattern is written against.

use super::{Cmd, Pipeline};
use crate::error::Result;
use crate::resp::{Frame, Value};

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

    /// Run one command and hand its reply to `read` as it lies in the connection's read
    /// buffer: validated and indexed, but not copied into a [`Value`] (see
    /// [`Frame`]). This is how typed results are made
    /// ([`Commands::query`](crate::Commands::query) and every typed helper): the reply's
    /// bytes are copied once, into the result (not at all for a reply that is one bulk
    /// string of 64 KiB or more: the connection hands its read buffer over). A server error reply is returned as `Err`
    /// and `read` is not called; `read` is called at most once per successful run (a
    /// client's retry runs the command again only when it failed).
    ///
    /// `read` runs while the connection is held: it must not use the same connection.
    ///
    /// The provided implementation runs [`Execute::exec`] and reads the value (encoded and
    /// scanned again): right for any implementor, and overridden by those that own a
    /// connection.
    fn exec_frame(&self, cmd: &Cmd, read: &mut dyn FnMut(Frame<'_>) -> Result<()>) -> Result<()> {
        let v = self.exec(cmd)?;
        crate::resp::with_value_frame(&v, read)
    }
}

impl<E: Execute + ?Sized> Execute for &E {
    fn exec(&self, cmd: &Cmd) -> Result<Value> {
        (**self).exec(cmd)
    }
    fn exec_pipeline(&self, pipeline: &Pipeline) -> Result<Vec<Value>> {
        (**self).exec_pipeline(pipeline)
    }
    fn exec_frame(&self, cmd: &Cmd, read: &mut dyn FnMut(Frame<'_>) -> Result<()>) -> Result<()> {
        (**self).exec_frame(cmd, read)
    }
}

impl<E: Execute + ?Sized> Execute for std::sync::Arc<E> {
    fn exec(&self, cmd: &Cmd) -> Result<Value> {
        (**self).exec(cmd)
    }
    fn exec_pipeline(&self, pipeline: &Pipeline) -> Result<Vec<Value>> {
        (**self).exec_pipeline(pipeline)
    }
    fn exec_frame(&self, cmd: &Cmd, read: &mut dyn FnMut(Frame<'_>) -> Result<()>) -> Result<()> {
        (**self).exec_frame(cmd, read)
    }
}
