//! [`PooledConnection`]: a checked-out connection that goes back to its pool on drop.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Instant;

use super::shared::Shared;
use crate::cmd::{Cmd, Execute, Pipeline};
use crate::conn::Connection;
use crate::error::Result;
use crate::resp::Value;

/// A connection checked out of a [`Pool`](super::Pool).
///
/// Derefs to [`Connection`] and implements [`Execute`]. Dropping it gives the connection
/// back: a broken one is closed and its slot freed; one whose session was changed (MULTI,
/// WATCH, SELECT, SUBSCRIBE, CLIENT TRACKING, ...) is reset with `RESET` and the handshake
/// first, or closed if that fails (and always closed, without I/O, when dropped during a
/// panic, or when subscribed on RESP2, where in-flight messages look like replies); one
/// past `max_lifetime` is closed.
pub struct PooledConnection {
    conn: Option<Box<Connection>>,
    /// When the connection passes `max_lifetime` (`None`: never).
    expires: Option<Instant>,
    shared: Arc<Shared>,
}

impl PooledConnection {
    pub(crate) fn new(
        conn: Box<Connection>,
        expires: Option<Instant>,
        shared: Arc<Shared>,
    ) -> Self {
        PooledConnection {
            conn: Some(conn),
            expires,
            shared,
        }
    }

    /// Take the connection out of the pool for good (e.g. a long-lived connection with
    /// session state the pool must not hand to others, such as `CLIENT TRACKING`). Its slot
    /// is freed, so the pool may open another one.
    pub fn detach(mut self) -> Connection {
        self.shared.forget();
        match self.conn.take() {
            Some(c) => *c,
            None => unreachable!("a PooledConnection holds its connection until dropped"),
        }
    }

    /// Give the connection back now (as dropping does) and return the clock reading the
    /// pool took while doing so: the client's command path uses it as its end time.
    #[inline(always)]
    pub(crate) fn release(mut self) -> Instant {
        match self.conn.take() {
            Some(conn) => self.shared.put_back(conn, self.expires),
            None => Instant::now(),
        }
    }

    #[inline]
    fn conn(&self) -> &Connection {
        match &self.conn {
            Some(c) => c,
            None => unreachable!("a PooledConnection holds its connection until dropped"),
        }
    }
}

impl Deref for PooledConnection {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn()
    }
}

impl Execute for PooledConnection {
    fn exec(&self, cmd: &Cmd) -> Result<Value> {
        self.conn().exec(cmd)
    }

    fn exec_pipeline(&self, pipeline: &Pipeline) -> Result<Vec<Value>> {
        self.conn().exec_pipeline(pipeline)
    }

    fn exec_frame(
        &self,
        cmd: &Cmd,
        read: &mut dyn FnMut(crate::resp::Frame<'_>) -> Result<()>,
    ) -> Result<()> {
        self.conn().exec_frame(cmd, read)
    }

    fn exec_pipeline_replies(
        &self,
        pipeline: &Pipeline,
        build: &mut crate::cmd::BuildReplies<'_>,
    ) -> Option<Result<()>> {
        self.conn().exec_pipeline_replies(pipeline, build)
    }
}

impl std::fmt::Debug for PooledConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("PooledConnection").field(&self.conn).finish()
    }
}

impl Drop for PooledConnection {
    // Small enough to inline, so that after `release` (which takes the connection) the
    // check folds away.
    #[inline]
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.shared.put_back_dropped(conn, self.expires);
        }
    }
}
