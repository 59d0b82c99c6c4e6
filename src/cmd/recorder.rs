//! A fake [`Execute`] for unit tests of layers above `cmd`: it records the commands it
//! is given and answers with canned replies. Real behaviour is tested against real servers.

use std::cell::RefCell;
use std::collections::VecDeque;

use super::{Blocking, Cmd, Execute, Pipeline};
use crate::error::Result;
use crate::resp::Value;

/// Records every command and answers with canned replies (`Nil` once they run out).
#[derive(Default)]
pub(crate) struct Recorder {
    sent: RefCell<Vec<Cmd>>,
    replies: RefCell<VecDeque<Value>>,
}

impl Recorder {
    pub(crate) fn replying(replies: impl IntoIterator<Item = Value>) -> Recorder {
        Recorder {
            sent: RefCell::default(),
            replies: RefCell::new(replies.into_iter().collect()),
        }
    }

    /// The arguments of every command sent, as lossy text.
    pub(crate) fn sent(&self) -> Vec<Vec<String>> {
        self.sent
            .borrow()
            .iter()
            .map(|c| {
                c.args()
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect()
            })
            .collect()
    }

    /// The arguments of the only command sent, space-joined.
    pub(crate) fn last(&self) -> String {
        self.sent().last().expect("nothing sent").join(" ")
    }

    pub(crate) fn last_blocking(&self) -> Blocking {
        self.sent
            .borrow()
            .last()
            .expect("nothing sent")
            .blocking_mode()
    }
}

impl Execute for Recorder {
    fn exec(&self, cmd: &Cmd) -> Result<Value> {
        self.sent.borrow_mut().push(cmd.clone());
        self.replies
            .borrow_mut()
            .pop_front()
            .unwrap_or(Value::Nil)
            .into_result()
    }

    fn exec_pipeline(&self, pipeline: &Pipeline) -> Result<Vec<Value>> {
        pipeline.commands().iter().map(|c| self.exec(c)).collect()
    }
}

impl Recorder {
    /// Every command sent, its arguments space-joined.
    pub(crate) fn lines(&self) -> Vec<String> {
        self.sent().into_iter().map(|a| a.join(" ")).collect()
    }
}
