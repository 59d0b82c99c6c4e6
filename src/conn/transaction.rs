//! WATCH / MULTI / EXEC with an optimistic-lock retry outcome.

use std::cell::RefCell;

use super::Inner;
use crate::cmd::{cmd, Cmd, Execute, FromValue, Pipeline};
use crate::error::{ErrorKind, Result};
use crate::resp::Value;

/// The outcome of a WATCH transaction ([`Connection::transaction`](super::Connection::transaction),
/// [`Pool::transaction`](crate::Pool::transaction), [`Client::transaction`](crate::Client::transaction)).
///
/// `T` is what the committed replies convert into, exactly as with
/// [`Pipeline::query`]: a tuple with one element per command, a `Vec`, `()` to only check
/// for errors; [`ignore`](Pipeline::ignore)d replies are left out.
///
/// ```
/// use valkit::TxOutcome;
/// let done: TxOutcome<(i64, String)> = TxOutcome::Committed((11, "ok".into()));
/// assert_eq!(done.committed(), Some((11, "ok".to_string())));
/// let lost: TxOutcome<(i64, String)> = TxOutcome::Aborted;
/// assert!(lost.is_aborted());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "an aborted transaction applied nothing: check the outcome"]
pub enum TxOutcome<T> {
    /// EXEC ran: every queued command was applied, and these are their replies.
    Committed(T),
    /// A watched key changed before EXEC: nothing was applied. Read again and retry.
    Aborted,
}

impl<T> TxOutcome<T> {
    /// The replies if the transaction committed, `None` if it was aborted.
    pub fn committed(self) -> Option<T> {
        match self {
            TxOutcome::Committed(t) => Some(t),
            TxOutcome::Aborted => None,
        }
    }

    /// True when EXEC ran.
    pub fn is_committed(&self) -> bool {
        matches!(self, TxOutcome::Committed(_))
    }

    /// True when a watched key changed and nothing was applied.
    pub fn is_aborted(&self) -> bool {
        matches!(self, TxOutcome::Aborted)
    }
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

pub(super) fn run<T, K, F>(inner: &mut Inner, keys: &[K], build: F) -> Result<TxOutcome<T>>
where
    T: FromValue,
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
        // Converted after EXEC: a per-command error (WRONGTYPE, ...) is returned as `Err`
        // although the other commands were applied, as with `Pipeline::query`.
        Ok(replies) => pipeline.convert(replies).map(TxOutcome::Committed),
        Err(e) if e.kind() == ErrorKind::Aborted => Ok(TxOutcome::Aborted),
        Err(e) => Err(e),
    }
}
