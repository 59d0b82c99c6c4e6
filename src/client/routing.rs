//! Which commands are read-only (routable to a reader endpoint) and which are idempotent
//! (safe to resend after an ambiguous failure), as the command table (`cmd/spec`) says:
//! a command's row is found once, when its name is added to the `Cmd`
//! ([`CommandName::of`] only reads it), and the row's position is also its slot in the
//! per-command metrics counters.

use std::borrow::Cow;

use crate::cmd::spec::{self, Access, TABLE};
use crate::cmd::{Cmd, Pipeline, ReadFrom};

/// A command's name as the client reports it (metrics, observers, logs): its row in the
/// command table, or the name as sent when the table does not know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CommandName<'a> {
    /// A row of the command table (`cmd::spec::TABLE`).
    Known(usize),
    /// A name the table does not know, as sent.
    Other(&'a [u8]),
}

impl<'a> CommandName<'a> {
    /// A batch of commands (not a transaction).
    pub(crate) const PIPELINE: CommandName<'static> =
        CommandName::Known(spec::index_of("PIPELINE"));
    /// A transaction (`MULTI` ... `EXEC`).
    pub(crate) const MULTI: CommandName<'static> = CommandName::Known(spec::index_of("MULTI"));

    /// The name of `cmd`.
    #[inline(always)]
    pub(crate) fn of(cmd: &'a Cmd) -> CommandName<'a> {
        match cmd.spec_index() {
            Some(k) => CommandName::Known(k),
            None => CommandName::Other(cmd.name()),
        }
    }

    /// The upper-case label: the table's name, or the first 32 bytes of an unknown name
    /// (invalid UTF-8 replaced), upper-cased (allocates, for unknown names only).
    pub(crate) fn label(self) -> Cow<'static, str> {
        match self {
            CommandName::Known(k) => Cow::Borrowed(TABLE[k].name),
            CommandName::Other(name) => {
                let name = &name[..name.len().min(32)];
                Cow::Owned(String::from_utf8_lossy(name).to_ascii_uppercase())
            }
        }
    }

    #[inline]
    fn access(self) -> Option<Access> {
        match self {
            CommandName::Known(k) => Some(TABLE[k].access),
            CommandName::Other(_) => None,
        }
    }

    /// True when the command never writes, so it may go to a replica.
    #[inline]
    pub(crate) fn is_read_only(self) -> bool {
        self.access() == Some(Access::ReadOnly)
    }

    /// True when running `cmd` (named `self`) twice is the same as running it once.
    #[inline(always)]
    pub(crate) fn is_idempotent(self, cmd: &Cmd) -> bool {
        if let Some(hint) = cmd.idempotent_hint() {
            return hint;
        }
        match self.access() {
            Some(Access::ReadOnly | Access::IdempotentWrite) => true,
            Some(Access::IdempotentUnless { from, words }) => idempotent_unless(cmd, from, words),
            Some(Access::Write) | None => false,
        }
    }
}

/// True when none of `words` (ASCII case-insensitive) appears in `cmd` from argument
/// `from` on. (A command with no argument from `from` on is not looked at: `SET k v`.)
fn idempotent_unless(cmd: &Cmd, from: usize, words: &[&str]) -> bool {
    cmd.len() <= from
        || !cmd
            .args()
            .skip(from)
            .any(|a| words.iter().any(|w| a.eq_ignore_ascii_case(w.as_bytes())))
}

/// True when `cmd` never writes, so it may go to a replica.
pub(crate) fn is_read_only(cmd: &Cmd) -> bool {
    CommandName::of(cmd).is_read_only()
}

/// True when `cmd` may go to the reader: read-only, and not pinned to the writer (the
/// rule `Client::exec` applies with the name it already looked up).
#[cfg(test)]
pub(crate) fn may_read_from_reader(cmd: &Cmd) -> bool {
    reader_allowed(cmd) && is_read_only(cmd)
}

/// False when the command asks to be read from the writer ([`Cmd::read_from`]).
#[cfg(test)]
fn reader_allowed(cmd: &Cmd) -> bool {
    cmd.read_from_hint() != Some(crate::cmd::ReadFrom::Writer)
}

/// The strictest hint among a pipeline's commands (writer, then reader when in sync,
/// then reader): one command pinned to the writer sends the whole batch there.
pub(crate) fn pipeline_read_from(p: &Pipeline) -> Option<ReadFrom> {
    let mut out = None;
    for hint in p.commands().iter().filter_map(Cmd::read_from_hint) {
        match hint {
            ReadFrom::Writer => return Some(ReadFrom::Writer),
            ReadFrom::ReaderWhenInSync => out = Some(hint),
            ReadFrom::Reader => out = out.or(Some(hint)),
        }
    }
    out
}

/// True when running `cmd` twice is the same as running it once.
pub(crate) fn is_idempotent(cmd: &Cmd) -> bool {
    CommandName::of(cmd).is_idempotent(cmd)
}

/// A pipeline is read-only (idempotent) when all its commands are; transactions never
/// go to a reader.
pub(crate) fn pipeline_is_read_only(p: &Pipeline) -> bool {
    !p.is_atomic() && !p.is_empty() && p.commands().iter().all(is_read_only)
}

pub(crate) fn pipeline_is_idempotent(p: &Pipeline) -> bool {
    p.commands().iter().all(is_idempotent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::cmd;

    #[test]
    fn names_are_the_table_rows_or_the_name_as_sent() {
        assert_eq!(CommandName::PIPELINE.label(), "PIPELINE");
        assert_eq!(CommandName::MULTI.label(), "MULTI");
        let odd = cmd("my.Module\u{e9}");
        assert_eq!(
            CommandName::of(&odd),
            CommandName::Other("my.Module\u{e9}".as_bytes())
        );
        assert_eq!(CommandName::of(&odd).label(), "MY.MODULE\u{e9}");
        assert_eq!(CommandName::of(&cmd("hGetAll")).label(), "HGETALL");
    }

    #[test]
    fn classification() {
        assert!(is_read_only(&cmd("get").arg("k")));
        assert!(may_read_from_reader(&cmd("GET").arg("k")));
        let pinned = cmd("GET").arg("k").read_from(crate::cmd::ReadFrom::Writer);
        assert!(!may_read_from_reader(&pinned));
        assert!(!may_read_from_reader(
            &cmd("SET")
                .arg("k")
                .arg(1)
                .read_from(crate::cmd::ReadFrom::Reader)
        ));
        assert!(!is_read_only(&cmd("SET").arg("k").arg("v")));
        assert!(!is_read_only(&cmd("INCR").arg("k")));
        assert!(is_idempotent(
            &cmd("SET").arg("k").arg("v").arg("EX").arg(10)
        ));
        assert!(!is_idempotent(&cmd("SET").arg("k").arg("v").arg("NX")));
        assert!(!is_idempotent(&cmd("INCR").arg("k")));
        assert!(is_idempotent(&cmd("INCR").arg("k").idempotent(true)));
        assert!(!is_idempotent(&cmd("GET").arg("k").idempotent(false)));
        assert!(is_idempotent(&cmd("del").arg("k")) && !is_read_only(&cmd("DEL").arg("k")));
        assert!(is_idempotent(&cmd("set").arg("k").arg("v")));
        assert!(!is_idempotent(&cmd("set").arg("k").arg("v").arg("get")));
        assert!(!is_idempotent(&cmd("LPUSH").arg("k").arg("v")));
        assert!(!is_idempotent(&cmd("MYCMD").arg("k")) && !is_read_only(&cmd("MYCMD")));
        let p = crate::cmd::pipe()
            .cmd(cmd("GET").arg("a"))
            .cmd(cmd("MGET").arg("b"));
        assert!(pipeline_is_read_only(&p));
        assert!(!pipeline_is_read_only(&p.clone().atomic()));
        assert!(!pipeline_is_read_only(&p.cmd(cmd("DEL").arg("a"))));
    }
}
