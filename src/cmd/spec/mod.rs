//! What a command is: the one command table, looked up once per command by its name (when
//! the name is added to a [`Cmd`]: `cmd(name)`, or the first `Cmd::add_arg`), with
//! subcommand rows where a property depends on the subcommand (`CONFIG SET`,
//! `CLIENT TRACKING`, `OBJECT HELP`).
//!
//! One row per command name ([`table::TABLE`], sorted) says everything the client needs:
//! where the keys are ([`KeySpec`], read by cluster routing and the cross-slot check),
//! whether it is read-only or idempotent ([`Access`], read by routing and retry), whether it
//! blocks and where its timeout is ([`Timeout`], read by the blocking re-issue), what it
//! changes in the connection's session ([`Session`], read by the session tracker), which
//! arguments carry secrets ([`Secrets`], read by redaction) and why `exec` refuses it
//! ([`Refusal`]). A name's row index is also its slot in the client's per-command metrics.
//! Nothing else keeps its own list of command names: a new property is a new field of
//! [`CommandSpec`], a new command a new row.
//!
//! A command the table does not know is a write, not idempotent unless declared, whose
//! first argument is its only key (GET-like module commands), with no other property.

mod name;
mod table;

pub(crate) use name::{index_of, index_of_name, row_of_known, row_of_name, EFFECTS};
pub(crate) use table::TABLE;

use super::Cmd;

/// Which arguments of a command carry secrets (passwords, password hashes, key passphrases).
///
/// Positions count the command name as argument 0. Redaction errs on the side of hiding:
/// a rule may hide an argument that is not a secret, never the other way round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Secrets {
    /// Every argument from this position on (`AUTH [user] password`).
    From(usize),
    /// From this position on, after each keyword (ASCII case-insensitive) the next `n`
    /// arguments (`HELLO 3 AUTH user password`, `MIGRATE ... AUTH2 user password`).
    AfterKeyword {
        from: usize,
        keywords: &'static [(&'static str, usize)],
    },
    /// ACL rules from this position on: those that set or remove a password or a password
    /// hash (`>pw`, `<pw`, `#hash`, `!hash`).
    AclRules { from: usize },
    /// `name value` pairs from this position on: the value of every pair whose name is in
    /// the list (ASCII case-insensitive), e.g. `CONFIG SET requirepass <pw>`.
    Pairs {
        from: usize,
        names: &'static [&'static str],
    },
}

/// Why `exec` and pipelines refuse a command: after it, the server no longer sends exactly
/// one reply per request, so the connection would read another command's reply (or a
/// published message) as the answer to the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// SUBSCRIBE and friends: the connection enters (or answers as if in) pub/sub mode,
    /// where messages arrive unasked and each channel gets its own confirmation.
    PubSub,
    /// MONITOR: every command the server runs is streamed to the connection.
    Monitor,
    /// RESET: undoes the handshake (user, protocol, database, name) behind the
    /// connection's back.
    Reset,
    /// CLIENT REPLY: switches replies off or skips the next one.
    ClientReply,
}

impl Refusal {
    /// Why the command is refused and what to use instead.
    pub(crate) fn explain(self, name: &str) -> String {
        match self {
            Refusal::PubSub => format!(
                "{name} switches the connection to pub/sub mode, where messages arrive unasked \
                 and replies no longer pair with requests: exec, exec_frame, pipelines and \
                 transactions cannot run it. Use valkit's pub/sub API, valkit::pubsub::Subscriber (a \
                 connection of its own). Nothing was sent; the connection is unchanged"
            ),
            Refusal::Monitor => format!(
                "{name} streams every command the server runs to this connection, so replies no \
                 longer pair with requests: exec, exec_frame, pipelines and transactions cannot \
                 run it. Use a dedicated monitoring API (not available yet in valkit) or \
                 valkey-cli. Nothing was sent; the connection is unchanged"
            ),
            Refusal::Reset => format!(
                "{name} would undo the handshake (user, protocol, database, client name) behind \
                 the connection's back: use Connection::reset_session (a pool calls it when a \
                 connection with a changed session comes back). Nothing was sent; the \
                 connection is unchanged"
            ),
            Refusal::ClientReply => format!(
                "{name} changes how many replies the server sends, and valkit reads exactly one \
                 reply per command: exec, exec_frame, pipelines and transactions cannot run it. \
                 Nothing was sent; the connection is unchanged"
            ),
        }
    }
}

/// Whether a command writes, and whether running it twice is the same as running it once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Never writes: may go to a replica, and may be resent.
    ReadOnly,
    /// Writes, but repeating it leaves the same state and reply.
    IdempotentWrite,
    /// Idempotent unless one of these words (ASCII case-insensitive) appears from argument
    /// `from` on (`SET k v` is, `SET k v NX` / `XX` / `GET` is not).
    IdempotentUnless {
        from: usize,
        words: &'static [&'static str],
    },
    /// Anything else.
    Write,
}

/// How to find the keys of one command. Positions count the command name as argument 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeySpec {
    /// No key: the command can run on any node (or must run on all: see the cluster docs).
    None,
    /// Arguments `first`, `first + step`, ... up to `len - 1 - trailing` (inclusive).
    Range {
        first: usize,
        step: usize,
        trailing: usize,
    },
    /// Only the arguments `first..=last` (when present).
    Fixed { first: usize, last: usize },
    /// `numkeys` at position `at`, then that many keys; `extra` is one more key position
    /// before it (ZUNIONSTORE's destination), or 0.
    NumKeys { at: usize, extra: usize },
    /// XREAD / XREADGROUP: after the `STREAMS` keyword, the first half of what follows.
    Streams,
}

/// Where a blocking command's server-side timeout is (see `cmd/blocking.rs`, which
/// re-issues the commands that allow it with a shorter timeout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timeout {
    /// The last argument, in decimal seconds (`BLPOP k... timeout`); at least 3 arguments.
    LastSeconds,
    /// Argument 1, in decimal seconds (`BLMPOP timeout numkeys key... LEFT`); at least 4
    /// arguments.
    FirstSeconds,
    /// After the `BLOCK` option, in milliseconds (`XREAD`, `XREADGROUP` when `group`).
    Block { group: bool },
    /// `WAIT numreplicas timeout`: milliseconds; "nothing yet" is fewer replicas.
    Wait,
    /// Blocks, but is never re-issued (`WAITAOF`).
    NotReissued,
}

/// What a command changes in the connection's session, for the session tracker
/// (`conn/session.rs`): a pool never hands on a connection whose session changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Session {
    /// MULTI: a transaction is open.
    Multi,
    /// EXEC, DISCARD: the transaction and any WATCH end.
    EndTransaction,
    /// WATCH.
    Watch,
    /// UNWATCH.
    Unwatch,
    /// SELECT db: changed unless `db` is the configured one.
    Select,
    /// SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE.
    Subscribe,
    /// CLIENT TRACKING on|off.
    Tracking,
    /// Anything else that outlives the command (HELLO, AUTH, RESET, READONLY, READWRITE,
    /// MONITOR, CLIENT REPLY, CLIENT SETNAME).
    Other,
}

/// One row of the command table: one command name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CommandSpec {
    /// The command name, upper case.
    pub(crate) name: &'static str,
    pub(crate) access: Access,
    /// Where its keys are (a subcommand row may say otherwise).
    pub(crate) keys: KeySpec,
    /// Where its blocking timeout is, if it blocks.
    pub(crate) blocking: Option<Timeout>,
    /// What it changes in the session, if anything (a subcommand row may add it).
    pub(crate) session: Option<Session>,
    /// Which arguments carry secrets, if any (a subcommand row may add them).
    pub(crate) secrets: Option<Secrets>,
    /// Why `exec` and pipelines refuse it, if they do (a subcommand row may add it).
    pub(crate) refusal: Option<Refusal>,
    /// Rows for subcommands whose properties differ from the command's.
    pub(crate) subcommands: &'static [SubSpec],
}

/// A subcommand's row: the properties that differ from its command's (`None`: the
/// command's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SubSpec {
    /// The words after the command name, upper case (`["SET"]` for `CONFIG SET`,
    /// `["CONFIG", "SET"]` for `SENTINEL CONFIG SET`).
    pub(crate) words: &'static [&'static str],
    pub(crate) keys: Option<KeySpec>,
    pub(crate) session: Option<Session>,
    pub(crate) secrets: Option<Secrets>,
    pub(crate) refusal: Option<Refusal>,
}

impl CommandSpec {
    /// The subcommand row `cmd` matches, if any (the first that matches: the more
    /// specific row of one word comes first).
    #[inline(never)]
    fn subcommand(&self, cmd: &Cmd) -> Option<&'static SubSpec> {
        if self.subcommands.is_empty() {
            return None;
        }
        self.subcommands.iter().find(|sub| {
            sub.words.len() < cmd.len()
                && sub
                    .words
                    .iter()
                    .zip(cmd.args().skip(1))
                    .all(|(w, a)| a.eq_ignore_ascii_case(w.as_bytes()))
        })
    }
}

/// The row of `cmd` (found once, when its name was added), if the table knows its name.
#[inline]
pub(crate) fn of(cmd: &Cmd) -> Option<&'static CommandSpec> {
    cmd.spec_index().map(|k| &TABLE[k])
}

/// Where the keys of `cmd` are.
pub(crate) fn keys(cmd: &Cmd) -> KeySpec {
    match of(cmd) {
        Some(row) => row.subcommand(cmd).and_then(|s| s.keys).unwrap_or(row.keys),
        None => KeySpec::Fixed { first: 1, last: 1 },
    }
}

/// What `cmd` changes in the session, if anything. Runs before every command is sent.
#[inline]
pub(crate) fn session(cmd: &Cmd) -> Option<Session> {
    if !cmd.has_effects() {
        return None;
    }
    let row = of(cmd)?;
    if row.subcommands.is_empty() {
        return row.session;
    }
    row.subcommand(cmd).and_then(|s| s.session).or(row.session)
}

/// Which arguments of `cmd` carry secrets, if any.
pub(crate) fn secrets(cmd: &Cmd) -> Option<Secrets> {
    let row = of(cmd)?;
    row.subcommand(cmd).and_then(|s| s.secrets).or(row.secrets)
}

/// Why `exec` must refuse `cmd`, if it must. Runs before every command is sent.
#[inline]
pub(crate) fn refusal(cmd: &Cmd) -> Option<Refusal> {
    if !cmd.has_effects() {
        return None;
    }
    let row = of(cmd)?;
    if row.subcommands.is_empty() {
        return row.refusal;
    }
    row.subcommand(cmd).and_then(|s| s.refusal).or(row.refusal)
}

/// Where `cmd`'s blocking timeout is, if it blocks.
#[inline]
pub(crate) fn blocking(cmd: &Cmd) -> Option<Timeout> {
    of(cmd)?.blocking
}

#[cfg(test)]
pub(crate) mod tests;
