//! Options of the list commands: [`ListEnd`], and the encoding of blocking timeouts.

use std::time::Duration;

use crate::cmd::{ArgWriter, Blocking, ToArgs};

/// One end of a list, for `LMOVE`, `BLMOVE` and `BLMPOP`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListEnd {
    /// `LEFT`: the head.
    Left,
    /// `RIGHT`: the tail.
    Right,
}

impl ToArgs for ListEnd {
    fn write_args(&self, out: &mut ArgWriter<'_>) {
        out.write(match self {
            ListEnd::Left => b"LEFT",
            ListEnd::Right => b"RIGHT",
        })
    }
}

/// A blocking timeout as the server reads it: decimal seconds with millisecond precision
/// (`0.5`, `2`, `0` for ever). A non-zero timeout under one millisecond is rounded up to
/// `0.001`, because the server would round it down to `0`, which means "block for ever".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timeout(pub(crate) Duration);

impl Timeout {
    fn millis(self) -> u128 {
        let ms = self.0.as_millis();
        if ms == 0 && !self.0.is_zero() {
            1
        } else if self.0.subsec_nanos() % 1_000_000 != 0 {
            ms + 1
        } else {
            ms
        }
    }

    /// How long the connection must let the server hold the reply.
    pub(crate) fn blocking(self) -> Blocking {
        if self.0.is_zero() {
            Blocking::Forever
        } else {
            Blocking::For(self.0)
        }
    }
}

impl ToArgs for Timeout {
    fn write_args(&self, out: &mut ArgWriter<'_>) {
        let ms = self.millis();
        let text = if ms % 1000 == 0 {
            format!("{}", ms / 1000)
        } else {
            let frac = format!("{:03}", ms % 1000);
            format!("{}.{}", ms / 1000, frac.trim_end_matches('0'))
        };
        out.write(text.as_bytes())
    }
}
