//! [`Pipeline`]: many commands in one write, optionally as one MULTI/EXEC transaction.

use super::{Blocking, Cmd, Execute, FromValue};
use crate::error::{Error, Result};
use crate::resp::Value;

/// A batch of commands sent in one write, whose replies are read back in order.
///
/// Queue commands with the same methods as [`Commands`](crate::Commands) (`.set(..)`,
/// `.incr(..)`, `.hgetall(..)`, ...) or any [`Cmd`] with [`Pipeline::cmd`]; then
/// [`query`](Pipeline::query) converts all replies at once into a tuple or a `Vec`, and
/// [`run`](Pipeline::run) gives each command's own result. [`atomic`](Pipeline::atomic)
/// wraps the batch in `MULTI`/`EXEC`; [`ignore`](Pipeline::ignore) leaves the previous
/// command's reply out of `query`'s result.
///
/// ```no_run
/// use valkit::{pipe, Connection};
/// # fn main() -> valkit::Result<()> {
/// let conn = Connection::open_url("redis://127.0.0.1:6379")?;
/// let (greeting, visits, missing): (String, i64, Option<String>) = pipe()
///     .set("greeting", "hello").ignore()
///     .get("greeting")
///     .incr("visits")
///     .get("no such key")
///     .query(&conn)?;
/// // The same as one MULTI/EXEC transaction, every reply in a Vec:
/// let counts: Vec<i64> = pipe().atomic().incr("a").incr("b").query(&conn)?;
/// # Ok(()) }
/// ```
///
/// Per-command errors:
///
/// ```no_run
/// use valkit::{cmd, pipe, Connection, Execute};
/// # fn main() -> valkit::Result<()> {
/// let conn = Connection::open_url("redis://127.0.0.1:6379")?;
/// let replies = pipe()
///     .cmd(cmd("SET").arg("a").arg(1))
///     .cmd(cmd("INCR").arg("a"))
///     .cmd(cmd("LPUSH").arg("a").arg("x")) // WRONGTYPE: an error for this command only
///     .run(&conn)?;
/// assert!(replies[1].is_ok() && replies[2].is_err());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pipeline {
    cmds: Vec<Cmd>,
    atomic: bool,
    /// Indexes (ascending) of commands whose replies `query` leaves out.
    ignored: Vec<usize>,
}

/// Start an empty pipeline.
pub fn pipe() -> Pipeline {
    Pipeline::default()
}

impl Pipeline {
    /// An empty pipeline.
    pub fn new() -> Pipeline {
        Pipeline::default()
    }

    /// Add a command (builder style).
    pub fn cmd(mut self, cmd: Cmd) -> Pipeline {
        self.cmds.push(cmd);
        self
    }

    /// Add a command in place.
    pub fn add(&mut self, cmd: Cmd) -> &mut Pipeline {
        self.cmds.push(cmd);
        self
    }

    /// Leave the reply of the command queued last out of [`query`](Pipeline::query)'s
    /// result (its error, if any, is still returned). Does nothing on an empty pipeline.
    /// [`run`](Pipeline::run) still returns every reply.
    pub fn ignore(mut self) -> Pipeline {
        if let Some(last) = self.cmds.len().checked_sub(1) {
            if self.ignored.last() != Some(&last) {
                self.ignored.push(last);
            }
        }
        self
    }

    /// Wrap the commands in MULTI/EXEC: they run as one transaction, and the replies are
    /// those inside EXEC's reply.
    pub fn atomic(mut self) -> Pipeline {
        self.atomic = true;
        self
    }

    /// Whether the commands run in MULTI/EXEC.
    pub fn is_atomic(&self) -> bool {
        self.atomic
    }

    /// The commands, in order.
    pub fn commands(&self) -> &[Cmd] {
        &self.cmds
    }

    /// Number of commands (MULTI/EXEC not counted).
    pub fn len(&self) -> usize {
        self.cmds.len()
    }

    /// True when no command was added.
    pub fn is_empty(&self) -> bool {
        self.cmds.is_empty()
    }

    /// Remove all commands, keeping the allocation.
    pub fn clear(&mut self) {
        self.cmds.clear();
        self.ignored.clear();
    }

    /// The longest a command of this pipeline may block on the server.
    pub fn blocking_mode(&self) -> Blocking {
        longest_block(self.cmds.iter())
    }

    /// Append the whole pipeline's encoding (with MULTI/EXEC when atomic) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        if self.atomic {
            crate::resp::encode_command(out, [&b"MULTI"[..]]);
        }
        for c in &self.cmds {
            c.encode(out);
        }
        if self.atomic {
            crate::resp::encode_command(out, [&b"EXEC"[..]]);
        }
    }

    /// As [`Pipeline::encode`], with large arguments recorded in `parts` instead of copied
    /// (see `Cmd::encode_parts`), and every command checked on the way (see
    /// `Cmd::check_sendable`, then `Cmd::refusal`): a refused command refuses the whole
    /// pipeline, and `out` and `parts` are then left empty (nothing is written).
    pub(crate) fn encode_checked(
        &self,
        out: &mut Vec<u8>,
        parts: &mut Vec<(usize, crate::resp::Bytes)>,
        max_bulk_len: usize,
    ) -> Result<Encoded> {
        if self.atomic {
            crate::resp::encode_command(out, [&b"MULTI"[..]]);
        }
        let encoded = encode_commands(&self.cmds, None, out, parts, max_bulk_len)?;
        if self.atomic {
            crate::resp::encode_command(out, [&b"EXEC"[..]]);
        }
        Ok(encoded)
    }

    /// Run it and return one result per command: a server error for one command is that
    /// command's `Err`, the others still succeed. The outer `Err` is for failures of the
    /// whole batch (I/O, timeout, EXECABORT, an aborted transaction).
    pub fn run<E: Execute + ?Sized>(&self, ex: &E) -> Result<Vec<Result<Value>>> {
        Ok(ex
            .exec_pipeline(self)?
            .into_iter()
            .map(Value::into_result)
            .collect())
    }

    /// Run it and convert the replies (those not [`ignore`](Pipeline::ignore)d), as one
    /// array, into `T`: a tuple with one element per reply, a `Vec<T>`, or `()` to only
    /// check for errors. The first per-command error, if any, is returned instead (use
    /// [`run`](Pipeline::run) to see every command's own result).
    pub fn query<T: FromValue, E: Execute + ?Sized>(&self, ex: &E) -> Result<T> {
        if !self.atomic {
            // Replies read where they lie, each converted straight into its place in `T`.
            let kept = self.cmds.len() - self.ignored.len();
            let mut out = None;
            let ran = ex.exec_pipeline_replies(self, &mut |next| {
                out = Some(T::from_replies(kept, next)?);
                Ok(())
            });
            if let Some(ran) = ran {
                ran?;
                return out
                    .ok_or_else(|| Error::conversion("the pipeline's replies were not read"));
            }
        }
        self.convert(ex.exec_pipeline(self)?)
    }

    /// The commands at `idx` (ascending), as a [`Share`] of this pipeline.
    pub(crate) fn share<'p>(&'p self, idx: &'p [usize]) -> Share<'p> {
        debug_assert!(idx.windows(2).all(|w| w[0] < w[1]));
        debug_assert!(idx.last().map_or(true, |&i| i < self.cmds.len()));
        Share {
            cmds: &self.cmds,
            idx,
        }
    }

    /// Indexes (ascending) of the commands whose replies `query` leaves out.
    pub(crate) fn ignored(&self) -> &[usize] {
        &self.ignored
    }

    /// Convert this pipeline's replies as [`query`](Pipeline::query) does (also what a
    /// committed WATCH transaction's replies go through).
    pub(crate) fn convert<T: FromValue>(&self, replies: Vec<Value>) -> Result<T> {
        let mut ignored = self.ignored.iter().peekable();
        let mut kept = Vec::with_capacity(self.cmds.len() - self.ignored.len());
        for (i, reply) in replies.into_iter().enumerate() {
            let reply = reply.into_result()?;
            if ignored.peek() == Some(&&i) {
                ignored.next();
            } else {
                kept.push(reply);
            }
        }
        T::from_value(Value::Array(kept))
    }
}

/// Some commands of a non-atomic [`Pipeline`], picked by index (ascending): one node's share
/// of a pipeline a cluster client splits. It is encoded, sent and read straight from the
/// caller's pipeline: no command is copied.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Share<'p> {
    cmds: &'p [Cmd],
    idx: &'p [usize],
}

impl<'p> Share<'p> {
    /// Number of commands in the share.
    pub(crate) fn len(&self) -> usize {
        self.idx.len()
    }

    /// True when the share has no command.
    pub(crate) fn is_empty(&self) -> bool {
        self.idx.is_empty()
    }

    /// The share's `k`-th command.
    pub(crate) fn command(&self, k: usize) -> &'p Cmd {
        &self.cmds[self.idx[k]]
    }

    /// The share's commands, in order.
    pub(crate) fn commands(&self) -> impl Iterator<Item = &'p Cmd> + Clone + 'p {
        let cmds = self.cmds;
        self.idx.iter().map(move |&i| &cmds[i])
    }

    /// Positions of the share's commands in the whole pipeline.
    pub(crate) fn indexes(&self) -> &'p [usize] {
        self.idx
    }

    /// The share's commands from the `k`-th on.
    pub(crate) fn from(&self, k: usize) -> Share<'p> {
        Share {
            cmds: self.cmds,
            idx: &self.idx[k..],
        }
    }

    /// As [`Pipeline::encode_checked`] (never atomic), over the share.
    pub(crate) fn encode_checked(
        &self,
        out: &mut Vec<u8>,
        parts: &mut Vec<(usize, crate::resp::Bytes)>,
        max_bulk_len: usize,
    ) -> Result<Encoded> {
        encode_commands(self.cmds, Some(self.idx), out, parts, max_bulk_len)
    }
}

/// The longest any of `cmds` may block on the server.
fn longest_block<'c>(cmds: impl Iterator<Item = &'c Cmd>) -> Blocking {
    cmds.fold(Blocking::No, |longest, c| {
        longer(longest, c.blocking_mode())
    })
}

/// The longer of two blocking modes.
#[inline(always)]
fn longer(a: Blocking, b: Blocking) -> Blocking {
    match (a, b) {
        (Blocking::Forever, _) | (_, Blocking::Forever) => Blocking::Forever,
        (Blocking::No, b) => b,
        (Blocking::For(a), Blocking::For(b)) => Blocking::For(a.max(b)),
        (a, Blocking::No) => a,
    }
}

/// What encoding a batch found on the way (one pass over its commands).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Encoded {
    /// The longest a command of the batch may block on the server.
    pub(crate) blocking: Blocking,
    /// Some command has a session effect, a refusal or subcommand rows (see
    /// `Cmd::has_effects`): the connection looks at them before sending.
    pub(crate) effects: bool,
}

/// Encode `cmds` (those at `idx`, or all) into `out` (large arguments into `parts`), each
/// checked on the way; a refused command (too long an argument, then one the connection
/// may not send: see `Cmd::refusal`) leaves `out` and `parts` empty.
fn encode_commands(
    cmds: &[Cmd],
    idx: Option<&[usize]>,
    out: &mut Vec<u8>,
    parts: &mut Vec<(usize, crate::resp::Bytes)>,
    max_bulk_len: usize,
) -> Result<Encoded> {
    let mut encoded = Encoded {
        blocking: Blocking::No,
        effects: false,
    };
    let mut one = |c: &Cmd| -> bool {
        if c.blocking_mode() == Blocking::No && c.encode_plain(out, max_bulk_len) {
            return true;
        }
        if c.check_sendable(max_bulk_len).is_err() || (c.has_effects() && c.refusal().is_some()) {
            return false;
        }
        encoded.effects |= c.has_effects();
        encoded.blocking = longer(encoded.blocking, c.blocking_mode());
        c.encode_parts(out, parts);
        true
    };
    let all_sendable = match idx {
        None => cmds.iter().all(&mut one),
        Some(idx) => idx.iter().all(|&i| one(&cmds[i])),
    };
    if all_sendable {
        return Ok(encoded);
    }
    out.clear();
    parts.clear();
    Err(refused(cmds, idx, max_bulk_len))
}

/// Why a batch is refused (some command is): the first too long an argument, else the
/// first command the connection may not send.
#[cold]
fn refused(cmds: &[Cmd], idx: Option<&[usize]>, max_bulk_len: usize) -> Error {
    let picked = |k: usize| match idx {
        None => cmds.get(k),
        Some(idx) => idx.get(k).map(|&i| &cmds[i]),
    };
    let batch = || (0..).map_while(picked);
    batch()
        .find_map(|c| c.check_sendable(max_bulk_len).err())
        .or_else(|| batch().find_map(Cmd::refusal))
        .unwrap_or_else(|| Error::conversion("a command was refused, then was not"))
}
