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
    /// bytes are copied once, into the result (not at all for a reply that is one large
    /// bulk string: the connection reads the part of it still to come, when that is 16 KiB
    /// or more, straight into the result's buffer, or hands over its read buffer holding a
    /// whole one of 64 KiB or more). A server error reply is returned as `Err`
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

    /// Run a (non-atomic) pipeline and hand its replies to `build` one at a time, in place:
    /// `build` calls the function it is given once per reply it wants, and that function
    /// reads the next reply not [`ignore`](Pipeline::ignore)d into the reader it is given
    /// (see [`Execute::exec_frame`]); a server error reply is returned as `Err` instead.
    /// Every reply is read even when `build` stops early, and the first server error reply
    /// (in order) wins over a conversion error, as in [`Pipeline::query`].
    ///
    /// `None` when this implementor does not read pipelines in place (the provided
    /// version): [`Pipeline::query`] then converts what [`Execute::exec_pipeline`] returns.
    /// Plumbing of `Pipeline::query`, outside semver.
    #[doc(hidden)]
    fn exec_pipeline_replies(
        &self,
        pipeline: &Pipeline,
        build: &mut BuildReplies<'_>,
    ) -> Option<Result<()>> {
        let _ = (pipeline, build);
        None
    }
}

/// What `Execute::exec_pipeline_replies` hands the replies to.
pub(crate) type BuildReplies<'b> = dyn for<'a> FnMut(&'a mut NextReply<'a>) -> Result<()> + 'b;

/// Reads the next reply of a pipeline into the reader it is given.
pub(crate) type NextReply<'n> =
    dyn FnMut(&mut dyn FnMut(Frame<'_>) -> Result<()>) -> Result<()> + 'n;

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
    fn exec_pipeline_replies(
        &self,
        pipeline: &Pipeline,
        build: &mut BuildReplies<'_>,
    ) -> Option<Result<()>> {
        (**self).exec_pipeline_replies(pipeline, build)
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
    fn exec_pipeline_replies(
        &self,
        pipeline: &Pipeline,
        build: &mut BuildReplies<'_>,
    ) -> Option<Result<()>> {
        (**self).exec_pipeline_replies(pipeline, build)
    }
}
