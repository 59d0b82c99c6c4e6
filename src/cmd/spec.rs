//! What a command is: one table, looked up by the command's name (and subcommand words).
//!
//! Today the table knows two things: which arguments carry secrets (read by `Cmd`'s `Debug`
//! and by the connection, which scrubs a secret-carrying command's error replies), and which
//! commands `exec` and pipelines refuse because the connection could no longer match replies
//! to requests after them (SUBSCRIBE, MONITOR, ...). It is the start of the one command table
//! that routing (key positions), the session tracker, retry (read-only, idempotent) and
//! blocking will read: new properties become new fields of [`CommandSpec`], new commands new
//! rows of [`TABLE`]. Nothing else keeps its own list of secret-carrying commands.

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

/// One row of the command table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CommandSpec {
    /// The command name and any subcommand words, upper case (`["CONFIG", "SET"]`).
    pub(crate) words: &'static [&'static str],
    /// Which arguments carry secrets, if any.
    pub(crate) secrets: Option<Secrets>,
    /// Why `exec` and pipelines refuse it, if they do.
    pub(crate) refusal: Option<Refusal>,
}

const fn secret(words: &'static [&'static str], secrets: Secrets) -> CommandSpec {
    CommandSpec {
        words,
        secrets: Some(secrets),
        refusal: None,
    }
}

const fn refused(words: &'static [&'static str], refusal: Refusal) -> CommandSpec {
    CommandSpec {
        words,
        secrets: None,
        refusal: Some(refusal),
    }
}

/// `CONFIG SET` parameters whose values are secrets. `masteruser`/`primaryuser` name a
/// user rather than hold a password, but they travel with the password and are hidden too.
/// `primaryauth`/`primaryuser` are Valkey's names for `masterauth`/`masteruser`.
const CONFIG_SECRETS: &[&str] = &[
    "requirepass",
    "masterauth",
    "masteruser",
    "primaryauth",
    "primaryuser",
    "tls-key-file-pass",
    "tls-client-key-file-pass",
];

/// The command table. The more specific row (more words) of one name comes first.
pub(crate) const TABLE: &[CommandSpec] = &[
    // AUTH password | AUTH user password
    secret(&["AUTH"], Secrets::From(1)),
    // HELLO [protover [AUTH user password] [SETNAME name]]
    secret(
        &["HELLO"],
        Secrets::AfterKeyword {
            from: 2,
            keywords: &[("AUTH", 2)],
        },
    ),
    // ACL SETUSER name rule...
    secret(&["ACL", "SETUSER"], Secrets::AclRules { from: 3 }),
    // CONFIG SET name value [name value ...]
    secret(
        &["CONFIG", "SET"],
        Secrets::Pairs {
            from: 2,
            names: CONFIG_SECRETS,
        },
    ),
    // MIGRATE host port key db timeout [COPY] [REPLACE] [AUTH pw | AUTH2 user pw] [KEYS ...]
    secret(
        &["MIGRATE"],
        Secrets::AfterKeyword {
            from: 6,
            keywords: &[("AUTH", 1), ("AUTH2", 2)],
        },
    ),
    // SENTINEL CONFIG SET name value [name value ...]
    secret(
        &["SENTINEL", "CONFIG", "SET"],
        Secrets::Pairs {
            from: 3,
            names: &["sentinel-pass", "sentinel-user"],
        },
    ),
    // SENTINEL SET master name value [name value ...]
    secret(
        &["SENTINEL", "SET"],
        Secrets::Pairs {
            from: 3,
            names: &["auth-pass", "auth-user"],
        },
    ),
    // MODULE LOAD path [arg ...]: module arguments are opaque and may hold credentials.
    secret(&["MODULE", "LOAD"], Secrets::From(3)),
    // MODULE LOADEX path [CONFIG name value ...] [ARGS arg ...]: likewise.
    secret(&["MODULE", "LOADEX"], Secrets::From(3)),
    refused(&["SUBSCRIBE"], Refusal::PubSub),
    refused(&["PSUBSCRIBE"], Refusal::PubSub),
    refused(&["SSUBSCRIBE"], Refusal::PubSub),
    // Outside pub/sub mode these still answer once per channel (RESP2) or with pushes
    // (RESP3), not with one reply.
    refused(&["UNSUBSCRIBE"], Refusal::PubSub),
    refused(&["PUNSUBSCRIBE"], Refusal::PubSub),
    refused(&["SUNSUBSCRIBE"], Refusal::PubSub),
    refused(&["MONITOR"], Refusal::Monitor),
    refused(&["RESET"], Refusal::Reset),
    refused(&["CLIENT", "REPLY"], Refusal::ClientReply),
];

/// Bit `n` is set when some row (with a refusal, if `refused_only`) has a command name `n`
/// bytes long: most commands (GET, SET, HGET, ...) are ruled out by one test before any
/// comparison.
const fn name_lengths(refused_only: bool) -> u64 {
    let mut mask = 0u64;
    let mut i = 0;
    while i < TABLE.len() {
        if !refused_only || TABLE[i].refusal.is_some() {
            mask |= 1 << TABLE[i].words[0].len();
        }
        i += 1;
    }
    mask
}

const NAME_LENGTHS: u64 = name_lengths(false);
const REFUSED_NAME_LENGTHS: u64 = name_lengths(true);

#[inline]
fn may_match(name: &[u8], mask: u64) -> bool {
    name.len() < 64 && mask & (1 << name.len()) != 0
}

/// Why `exec` must refuse `cmd`, if it must. This runs before every command is sent: GET,
/// SET and most other names are ruled out by their length alone.
#[inline]
pub(crate) fn refusal(cmd: &Cmd) -> Option<Refusal> {
    if !may_match(cmd.name(), REFUSED_NAME_LENGTHS) {
        return None;
    }
    lookup(cmd)?.refusal
}

/// The row for `cmd`, if the table has one (looked up each time it is needed, for now;
/// the cluster work may keep it on the `Cmd`).
pub(crate) fn lookup(cmd: &Cmd) -> Option<&'static CommandSpec> {
    let name = cmd.name();
    if !may_match(name, NAME_LENGTHS) {
        return None;
    }
    TABLE.iter().find(|spec| {
        spec.words.len() <= cmd.len()
            && spec
                .words
                .iter()
                .zip(cmd.args())
                .all(|(w, a)| a.eq_ignore_ascii_case(w.as_bytes()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::cmd;

    #[test]
    fn rows_are_upper_case_and_specific_rows_come_first() {
        for (i, spec) in TABLE.iter().enumerate() {
            for w in spec.words {
                assert_eq!(*w, w.to_ascii_uppercase(), "{spec:?}");
            }
            // A row is never shadowed by an earlier, shorter row of the same words.
            for earlier in &TABLE[..i] {
                let prefix = earlier.words.len() <= spec.words.len()
                    && earlier.words.iter().zip(spec.words).all(|(a, b)| a == b);
                assert!(!prefix, "{earlier:?} shadows {spec:?}");
            }
        }
    }

    #[test]
    fn lookup_matches_name_and_subcommands_in_any_case() {
        let row = |c: &Cmd| lookup(c).map(|s| s.words);
        assert_eq!(row(&cmd("auth").arg("pw")), Some(&["AUTH"][..]));
        assert_eq!(
            row(&cmd("Config").arg("set").arg("x").arg("y")),
            Some(&["CONFIG", "SET"][..])
        );
        assert_eq!(row(&cmd("CONFIG").arg("GET").arg("x")), None);
        assert_eq!(row(&cmd("CONFIG")), None);
        assert_eq!(
            row(&cmd("sentinel").arg("config").arg("set")),
            Some(&["SENTINEL", "CONFIG", "SET"][..])
        );
        assert_eq!(row(&cmd("GET").arg("AUTH")), None);
        assert_eq!(row(&cmd("ACL").arg("LIST")), None);
        assert_eq!(row(&cmd("subscribe").arg("c")), Some(&["SUBSCRIBE"][..]));
        assert_eq!(row(&crate::cmd::Cmd::new()), None);
    }
}
