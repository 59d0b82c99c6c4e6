//! Where a command's keys are: the key positions of the command table ([`super::spec`],
//! [`KeySpec`]), walked here for cluster routing (which slot a command goes to) and for the
//! client-side cross-slot check.
//!
//! Positions count the command name as argument 0. Commands the table does not name take
//! their first argument as their only key (most module commands); keyless commands (PING,
//! INFO, SCRIPT, ...) are rows with no key.

use super::slot::key_slot;
use super::spec::{self, KeySpec};
use super::Cmd;

/// The key spec of `cmd`, from the command table.
pub(crate) fn key_spec(cmd: &Cmd) -> KeySpec {
    spec::keys(cmd)
}

fn parse_usize(b: &[u8]) -> Option<usize> {
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// Call `f` with every key of `cmd`, in order.
pub(crate) fn for_each_key<'a>(cmd: &'a Cmd, mut f: impl FnMut(&'a [u8])) {
    let n = cmd.len();
    match key_spec(cmd) {
        KeySpec::None => {}
        KeySpec::Fixed { first, last } => {
            // Stops at the last key: arguments after it are not even parsed.
            cmd.args()
                .skip(first)
                .take(last.saturating_add(1).saturating_sub(first))
                .for_each(f);
        }
        KeySpec::Range {
            first,
            step,
            trailing,
        } => {
            let end = n.saturating_sub(trailing);
            cmd.args()
                .enumerate()
                .take(end)
                .filter(|(i, _)| *i >= first && (i - first) % step == 0)
                .for_each(|(_, a)| f(a));
        }
        KeySpec::NumKeys { at, extra } => {
            let mut numkeys = None;
            for (i, a) in cmd.args().enumerate() {
                if extra > 0 && i == 1 {
                    f(a);
                }
                if i == at {
                    numkeys = parse_usize(a);
                } else if let Some(k) = numkeys {
                    if i > at && i <= at + k {
                        f(a);
                    }
                }
            }
        }
        KeySpec::Streams => {
            let Some(pos) = cmd.args().position(|a| a.eq_ignore_ascii_case(b"STREAMS")) else {
                return;
            };
            let rest = n - pos - 1;
            cmd.args().skip(pos + 1).take(rest / 2).for_each(f);
        }
    }
}

/// The keys of `cmd`, in order.
#[cfg(test)]
pub(crate) fn keys(cmd: &Cmd) -> Vec<&[u8]> {
    let mut out = Vec::new();
    for_each_key(cmd, |k| out.push(k));
    out
}

/// Which slot a command (or a group of commands) needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SlotOf {
    /// No key: any node will do.
    Any,
    /// Every key hashes to this slot.
    Slot(u16),
    /// Keys in two different slots (the two given).
    Cross(u16, u16),
}

impl SlotOf {
    /// Combine with another command's slot (a transaction, a script's keys).
    pub(crate) fn merge(self, other: SlotOf) -> SlotOf {
        match (self, other) {
            (SlotOf::Any, o) | (o, SlotOf::Any) => o,
            (c @ SlotOf::Cross(..), _) | (_, c @ SlotOf::Cross(..)) => c,
            (SlotOf::Slot(a), SlotOf::Slot(b)) if a == b => SlotOf::Slot(a),
            (SlotOf::Slot(a), SlotOf::Slot(b)) => SlotOf::Cross(a, b),
        }
    }

    /// The slot of one key.
    pub(crate) fn of_key(key: &[u8]) -> SlotOf {
        SlotOf::Slot(key_slot(key))
    }
}

/// For `SCAN ... MATCH pattern`: the pattern's hash tag when it is a literal (no glob
/// character before or inside it), so that a scan of one `{tag}`'s keys goes to the node
/// of that slot.
fn scan_tag(cmd: &Cmd) -> Option<&[u8]> {
    // The row found when the name was added says it (no name to parse); an unknown name is
    // not SCAN.
    const SCAN: usize = spec::index_of("SCAN");
    if cmd.spec_index() != Some(SCAN) {
        return None;
    }
    let mut args = cmd.args().skip(2);
    let pattern = loop {
        let a = args.next()?;
        if a.eq_ignore_ascii_case(b"MATCH") {
            break args.next()?;
        }
    };
    let open = pattern.iter().position(|&b| b == b'{')?;
    let len = pattern[open + 1..].iter().position(|&b| b == b'}')?;
    let literal = |b: &[u8]| !b.iter().any(|c| matches!(c, b'*' | b'?' | b'[' | b'\\'));
    (len > 0 && literal(&pattern[..open + 1 + len])).then_some(pattern)
}

/// Per row of the command table: whether the command's one key is its first argument,
/// whatever the other arguments (`Fixed { first: 1, last: 1 }`, no subcommand rows): GET,
/// SET, INCR, HGET, ... the commands routed most.
const FIRST_ARG_KEY: [bool; spec::TABLE.len()] = first_arg_key();

const fn first_arg_key() -> [bool; spec::TABLE.len()] {
    let mut out = [false; spec::TABLE.len()];
    let mut k = 0;
    while k < out.len() {
        let row = &spec::TABLE[k];
        out[k] =
            row.subcommands.is_empty() && matches!(row.keys, KeySpec::Fixed { first: 1, last: 1 });
        k += 1;
    }
    out
}

/// The argument whose RESP header starts at `at` in a command's encoded arguments, and
/// where the next header starts; `None` past the end. (The buffer is the command's own
/// encoding, `$<len>\r\n<bytes>\r\n` back to back, so nothing is validated beyond
/// staying in bounds.)
#[inline(always)]
fn encoded_arg(data: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let mut i = at + 1;
    let mut len = 0usize;
    while let Some(&d) = data.get(i) {
        if !d.is_ascii_digit() {
            break;
        }
        len = len * 10 + usize::from(d - b'0');
        i += 1;
    }
    let start = i + 2;
    let end = start.checked_add(len)?;
    Some((data.get(start..end)?, end + 2))
}

/// The slot of a command whose one key is its first argument (see [`FIRST_ARG_KEY`]),
/// read straight from the command's encoded buffer: no iterator over the arguments, no
/// key-spec match. `None` when the command is not of that kind, or keeps a large argument
/// aside (the general path reads those).
#[inline(always)]
fn first_arg_slot(cmd: &Cmd) -> Option<SlotOf> {
    // A command the table does not know takes its first argument as its only key too.
    let first_arg_key = cmd.spec_index().map_or(true, |k| FIRST_ARG_KEY[k]);
    if !first_arg_key || cmd.large.is_some() {
        return None;
    }
    if cmd.argc < 2 {
        return Some(SlotOf::Any);
    }
    let data = cmd.data.as_slice();
    let (_name, next) = encoded_arg(data, 0)?;
    let (key, _) = encoded_arg(data, next)?;
    Some(SlotOf::of_key(key))
}

/// The slot every key of `cmd` hashes to.
#[inline]
pub(crate) fn slot_of(cmd: &Cmd) -> SlotOf {
    match first_arg_slot(cmd) {
        Some(s) => s,
        None => slot_of_keys(cmd),
    }
}

/// [`slot_of`] through the key spec: every key walked.
#[inline(never)]
fn slot_of_keys(cmd: &Cmd) -> SlotOf {
    if let Some(pattern) = scan_tag(cmd) {
        return SlotOf::of_key(pattern);
    }
    let mut out = SlotOf::Any;
    for_each_key(cmd, |k| out = out.merge(SlotOf::of_key(k)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::cmd;

    fn k(c: Cmd) -> Vec<String> {
        keys(&c)
            .into_iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect()
    }

    #[test]
    fn key_positions() {
        assert_eq!(k(cmd("GET").arg("a")), ["a"]);
        assert_eq!(k(cmd("set").arg("a").arg("v").arg("EX").arg(1)), ["a"]);
        assert_eq!(k(cmd("PING")), Vec::<String>::new());
        assert_eq!(k(cmd("GET")), Vec::<String>::new());
        assert_eq!(k(cmd("MGET").arg("a").arg("b")), ["a", "b"]);
        assert_eq!(k(cmd("MSET").arg("a").arg(1).arg("b").arg(2)), ["a", "b"]);
        assert_eq!(k(cmd("BLPOP").arg("a").arg("b").arg(0)), ["a", "b"]);
        assert_eq!(
            k(cmd("LMOVE").arg("a").arg("b").arg("LEFT").arg("RIGHT")),
            ["a", "b"]
        );
        assert_eq!(
            k(cmd("EVALSHA").arg("sha").arg(2).arg("a").arg("b").arg("x")),
            ["a", "b"]
        );
        assert_eq!(
            k(cmd("EVAL").arg("s").arg(0).arg("x")),
            Vec::<String>::new()
        );
        assert_eq!(k(cmd("FCALL").arg("f").arg(1).arg("a").arg("x")), ["a"]);
        assert_eq!(
            k(cmd("ZUNIONSTORE")
                .arg("d")
                .arg(2)
                .arg("a")
                .arg("b")
                .arg("WEIGHTS")
                .arg(1)
                .arg(2)),
            ["d", "a", "b"]
        );
        assert_eq!(
            k(cmd("ZINTER").arg(2).arg("a").arg("b").arg("WITHSCORES")),
            ["a", "b"]
        );
        assert_eq!(
            k(cmd("BLMPOP").arg(0).arg(2).arg("a").arg("b").arg("LEFT")),
            ["a", "b"]
        );
        assert_eq!(
            k(cmd("XREAD")
                .arg("COUNT")
                .arg(2)
                .arg("STREAMS")
                .arg("a")
                .arg("b")
                .arg(0)
                .arg(0)),
            ["a", "b"]
        );
        assert_eq!(
            k(cmd("XREADGROUP")
                .arg("GROUP")
                .arg("g")
                .arg("c")
                .arg("STREAMS")
                .arg("s")
                .arg(">")),
            ["s"]
        );
        assert_eq!(k(cmd("OBJECT").arg("ENCODING").arg("a")), ["a"]);
        assert_eq!(
            k(cmd("XGROUP").arg("CREATE").arg("s").arg("g").arg("$")),
            ["s"]
        );
        assert_eq!(k(cmd("SCRIPT").arg("LOAD").arg("x")), Vec::<String>::new());
    }

    #[test]
    fn the_first_argument_shortcut_agrees_with_the_key_walk() {
        let big = vec![b'k'; crate::cmd::LARGE_ARG];
        let cases = [
            cmd("GET").arg("a"),
            cmd("get").arg("{user:1}:x"),
            cmd("GET"),
            cmd("GET").arg(""),
            cmd("SET").arg("k").arg("v").arg("EX").arg(1),
            cmd("SET").arg("k".repeat(200)).arg("v".repeat(300)),
            cmd("SET").arg(&big[..]).arg("v"),
            cmd("SET").arg("k").arg(&big[..]),
            cmd("HGET").arg("h").arg("f"),
            cmd("MY.MODULECMD").arg("mk").arg("x"),
            cmd("MGET").arg("{a}1").arg("{a}2"),
            cmd("OBJECT").arg("ENCODING").arg("a"),
            cmd("PING"),
            Cmd::new(),
            Cmd::new().arg("GET").arg("b"),
        ];
        for c in &cases {
            let walked = slot_of_keys(c);
            assert_eq!(
                slot_of(c),
                walked,
                "{:?}",
                c.name().escape_ascii().to_string()
            );
            if let Some(s) = first_arg_slot(c) {
                assert_eq!(s, walked);
            }
        }
        assert!(first_arg_slot(&cmd("GET").arg("a")).is_some());
        assert!(first_arg_slot(&cmd("SET").arg(&big[..]).arg("v")).is_none());
        assert!(first_arg_slot(&cmd("MGET").arg("a")).is_none());
        assert!(first_arg_slot(&cmd("SCAN").arg(0)).is_none());
        // Keys long enough for multi-digit length headers.
        for n in [0, 1, 9, 10, 99, 100, 1000, 70_000] {
            let key = "x".repeat(n);
            let c = cmd("GET").arg(&key);
            assert_eq!(slot_of(&c), SlotOf::Slot(key_slot(key.as_bytes())));
        }
    }

    #[test]
    fn slots_merge() {
        assert_eq!(slot_of(&cmd("PING")), SlotOf::Any);
        assert_eq!(
            slot_of(&cmd("MGET").arg("{a}1").arg("{a}2")),
            SlotOf::Slot(key_slot(b"a"))
        );
        assert!(matches!(
            slot_of(&cmd("MGET").arg("a").arg("b")),
            SlotOf::Cross(..)
        ));
        let scan = |p: &str| slot_of(&cmd("SCAN").arg(0).arg("MATCH").arg(p).arg("COUNT").arg(10));
        assert_eq!(scan("{ns}:v1:*"), SlotOf::Slot(key_slot(b"ns")));
        assert_eq!(scan("*{ns}:*"), SlotOf::Any);
        assert_eq!(scan("{n*}:x"), SlotOf::Any);
        assert_eq!(scan("plain*"), SlotOf::Any);
        assert_eq!(slot_of(&cmd("SCAN").arg(0)), SlotOf::Any);
        assert_eq!(
            SlotOf::Any.merge(SlotOf::Slot(3)).merge(SlotOf::Any),
            SlotOf::Slot(3)
        );
    }
}
