//! WATCH / MULTI / EXEC with an optimistic-lock retry outcome.

use std::cell::RefCell;

use super::Inner;
use crate::cmd::{cmd, Cmd, Execute, Pipeline};
use crate::error::{ErrorKind, Result};
use crate::resp::Value;

/// The outcome of [`Connection::transaction`](super::Connection::transaction).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum TxOutcome {
    /// EXEC ran; one reply per queued command (per-command errors are [`Value::Error`]).
    Committed(Vec<Value>),
    /// A watched key changed before EXEC: nothing was applied.
    Aborted,
}

/// The connection, locked for the duration of a transaction; use it to read watched keys.
pub struct Transaction<'a> {
    inner: RefCell<&'a mut Inner>,
}

impl Execute for Transaction<'_> {
    fn exec(&self, cmd: &Cmd) -> Result<Value> {
        self.inner.borrow_mut().exec(cmd)
    }

    fn exec_pipeline(&self, pipeline: &Pipeline) -> Result<Vec<Value>> {
        self.inner.borrow_mut().exec_pipeline(pipeline)
    }

    fn exec_frame(
        &self,
        cmd: &Cmd,
        read: &mut dyn FnMut(crate::resp::Frame<'_>) -> Result<()>,
    ) -> Result<()> {
        self.inner.borrow_mut().exec_frame(cmd, read)
    }
}

pub(super) fn run<K, F>(inner: &mut Inner, keys: &[K], build: F) -> Result<TxOutcome>
where
    K: AsRef<[u8]>,
    F: FnOnce(&Transaction<'_>) -> Result<Pipeline>,
{
    if !keys.is_empty() {
        let mut watch = cmd("WATCH");
        for k in keys {
            watch.add_arg(k.as_ref());
        }
        inner.exec(&watch)?;
    }
    let tx = Transaction {
        inner: RefCell::new(inner),
    };
    let built = build(&tx);
    let inner = tx.inner.into_inner();
    let pipeline = match built {
        Ok(p) => p.atomic(),
        Err(e) => {
            if !keys.is_empty() {
                // Leave the connection as we found it; if even this fails the connection
                // is broken and will not be reused.
                let _ = inner.exec(&cmd("UNWATCH"));
            }
            return Err(e);
        }
    };
    match inner.exec_pipeline(&pipeline) {
        Ok(replies) => Ok(TxOutcome::Committed(replies)),
        Err(e) if e.kind() == ErrorKind::Aborted => Ok(TxOutcome::Aborted),
        Err(e) => Err(e),
    }
}
