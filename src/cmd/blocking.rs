//! Which blocking commands can be re-issued with a shorter server-side timeout, and how.
//!
//! A connection never waits on the server for longer than one *slice* (see
//! `ConnectionConfig::blocking_slice`): a command that may block for ever (`BLPOP k 0`) or
//! longer than the slice is sent with the slice as its timeout, and sent again each time the
//! server answers "nothing yet", until a real reply arrives or the caller's own timeout is
//! spent. A dead or frozen server is then found within one slice plus the read timeout,
//! without TCP keepalive.
//!
//! Only commands for which a "nothing yet" reply proves that nothing happened, and for which
//! sending the command again asks exactly the same question, are re-issued; the command
//! table ([`super::spec`], its `blocking` field: [`Timeout`]) says which commands block and
//! where their timeout is:
//!
//! | command | timeout argument | "nothing yet" |
//! |---|---|---|
//! | `BLPOP`, `BRPOP`, `BRPOPLPUSH`, `BLMOVE`, `BZPOPMIN`, `BZPOPMAX` | last, seconds | nil |
//! | `BLMPOP`, `BZMPOP` | first, seconds | nil |
//! | `XREAD ... BLOCK ms ... STREAMS` (no `$` id) | after `BLOCK`, milliseconds | nil |
//! | `XREADGROUP GROUP g c ... BLOCK ms ... STREAMS` | after `BLOCK`, milliseconds | nil |
//! | `WAIT numreplicas timeout` | last, milliseconds | fewer than `numreplicas` acknowledged |
//!
//! Not re-issued: `XREAD` with a `$` id (`$` means "after the last entry *when the command
//! runs*": an entry added between two slices would be skipped), `WAITAOF`
//! ([`Timeout::NotReissued`]), and any command that does not block in the table (the connection then waits without a read timeout, as asked).

use std::time::Duration;

use super::spec::{self, Timeout};
use super::{Blocking, Cmd};
use crate::resp::{Frame, Value};

/// The unit of a timeout argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    /// Decimal seconds (`0.5`), as the list and sorted-set commands read it.
    Seconds,
    /// Whole milliseconds, as `XREAD BLOCK` and `WAIT` read it.
    Millis,
}

/// What a reply that means "nothing happened yet" looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Nothing {
    /// A nil reply (null bulk, null array or RESP3 null).
    Nil,
    /// An integer below this (WAIT's count of acknowledging replicas).
    Below(i64),
}

/// How to re-issue one blocking command with a shorter timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reissue {
    /// Index of the timeout argument (the command name is 0).
    index: usize,
    unit: Unit,
    nothing: Nothing,
}

impl Reissue {
    /// The plan for `cmd`, when it is a blocking command of the table above.
    pub(crate) fn plan(cmd: &Cmd) -> Option<Reissue> {
        let n = cmd.len();
        let nil = |index, unit| {
            Some(Reissue {
                index,
                unit,
                nothing: Nothing::Nil,
            })
        };
        match spec::blocking(cmd)? {
            Timeout::LastSeconds if n >= 3 => nil(n - 1, Unit::Seconds),
            Timeout::FirstSeconds if n >= 4 => nil(1, Unit::Seconds),
            Timeout::Block { group } => {
                xread_block_index(cmd, group).and_then(|i| nil(i, Unit::Millis))
            }
            Timeout::Wait if n == 3 => {
                let wanted = std::str::from_utf8(cmd.args().nth(1)?)
                    .ok()?
                    .parse::<i64>()
                    .ok()?;
                Some(Reissue {
                    index: 2,
                    unit: Unit::Millis,
                    nothing: Nothing::Below(wanted),
                })
            }
            _ => None,
        }
    }

    /// `cmd` with its timeout argument replaced by `wait` (rounded up to the unit, never
    /// zero, which would mean "for ever"), marked as blocking for `wait`.
    pub(crate) fn with_wait(&self, cmd: &Cmd, wait: Duration) -> Cmd {
        let ms = wait.as_nanos().div_ceil(1_000_000).max(1);
        let text = match self.unit {
            Unit::Millis => ms.to_string(),
            Unit::Seconds if ms % 1000 == 0 => (ms / 1000).to_string(),
            Unit::Seconds => format!("{}.{:03}", ms / 1000, ms % 1000),
        };
        let mut out = Cmd::new();
        out.idempotent = cmd.idempotent;
        out.read_from = cmd.read_from;
        for (i, a) in cmd.args().enumerate() {
            if i == self.index {
                out.push_arg(text.as_bytes());
            } else {
                out.push_arg(a);
            }
        }
        out.spec = cmd.spec;
        out.blocking(Blocking::For(wait))
    }

    /// True when `reply` means "nothing happened yet": sending the command again is safe.
    pub(crate) fn is_nothing_yet(&self, reply: &Value) -> bool {
        match self.nothing {
            Nothing::Nil => reply.is_nil(),
            Nothing::Below(n) => matches!(reply, Value::Int(i) if *i < n),
        }
    }

    /// As [`Reissue::is_nothing_yet`], for a reply read in place.
    pub(crate) fn is_nothing_yet_frame(&self, reply: &Frame<'_>) -> bool {
        match self.nothing {
            Nothing::Nil => reply.is_nil(),
            Nothing::Below(n) => reply.as_int().is_some_and(|i| i < n),
        }
    }
}

/// The index of the `BLOCK` value of an `XREAD`/`XREADGROUP`, walking its options (a group
/// or consumer called `BLOCK` is not mistaken for the option). `None` when it does not
/// block, has an option this walk does not know, or (`XREAD`) reads from a `$` id.
fn xread_block_index(cmd: &Cmd, group: bool) -> Option<usize> {
    let args: Vec<&[u8]> = cmd.args().collect();
    let mut i = 1;
    let mut block = None;
    loop {
        let a = *args.get(i)?;
        let is = |s: &str| a.eq_ignore_ascii_case(s.as_bytes());
        if group && is("GROUP") {
            i += 3;
        } else if is("COUNT") {
            i += 2;
        } else if is("BLOCK") {
            block = Some(i + 1);
            i += 2;
        } else if group && is("NOACK") {
            i += 1;
        } else if is("STREAMS") {
            break;
        } else {
            return None;
        }
    }
    let block = block?;
    let streams = &args[i + 1..];
    if streams.is_empty() || streams.len() % 2 != 0 {
        return None;
    }
    let ids = &streams[streams.len() / 2..];
    if !group && ids.iter().any(|id| *id == b"$") {
        return None;
    }
    Some(block)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::cmd;

    fn text(c: &Cmd) -> String {
        c.args()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn sliced(c: Cmd, wait: Duration) -> Option<String> {
        Reissue::plan(&c).map(|p| {
            let s = p.with_wait(&c, wait);
            assert_eq!(s.blocking_mode(), Blocking::For(wait));
            text(&s)
        })
    }

    #[test]
    fn rewrites_the_timeout_of_every_listed_command() {
        let two = Duration::from_secs(2);
        let cases = [
            (cmd("BLPOP").arg("a").arg("b").arg(0), "BLPOP a b 2"),
            (cmd("brpop").arg("a").arg(0), "brpop a 2"),
            (
                cmd("BRPOPLPUSH").arg("s").arg("d").arg(0),
                "BRPOPLPUSH s d 2",
            ),
            (
                cmd("BLMOVE")
                    .arg("s")
                    .arg("d")
                    .arg("LEFT")
                    .arg("RIGHT")
                    .arg(0),
                "BLMOVE s d LEFT RIGHT 2",
            ),
            (cmd("BZPOPMIN").arg("z").arg(0), "BZPOPMIN z 2"),
            (cmd("BZPOPMAX").arg("z").arg(0), "BZPOPMAX z 2"),
            (
                cmd("BLMPOP").arg(0).arg(1).arg("l").arg("LEFT"),
                "BLMPOP 2 1 l LEFT",
            ),
            (
                cmd("BZMPOP").arg(0).arg(1).arg("z").arg("MIN"),
                "BZMPOP 2 1 z MIN",
            ),
            (
                cmd("XREAD")
                    .arg("COUNT")
                    .arg(5)
                    .arg("BLOCK")
                    .arg(0)
                    .arg("STREAMS")
                    .arg("s")
                    .arg("0-0"),
                "XREAD COUNT 5 BLOCK 2000 STREAMS s 0-0",
            ),
            (
                cmd("XREADGROUP")
                    .arg("GROUP")
                    .arg("BLOCK")
                    .arg("c")
                    .arg("BLOCK")
                    .arg(0)
                    .arg("NOACK")
                    .arg("STREAMS")
                    .arg("s")
                    .arg(">"),
                "XREADGROUP GROUP BLOCK c BLOCK 2000 NOACK STREAMS s >",
            ),
            (cmd("WAIT").arg(1).arg(0), "WAIT 1 2000"),
        ];
        for (c, want) in cases {
            assert_eq!(sliced(c, two).as_deref(), Some(want));
        }
    }

    #[test]
    fn waits_are_rounded_up_and_never_zero() {
        let c = cmd("BLPOP").arg("a").arg(0);
        assert_eq!(
            sliced(c.clone(), Duration::from_millis(250)).unwrap(),
            "BLPOP a 0.250"
        );
        assert_eq!(
            sliced(c.clone(), Duration::from_micros(10)).unwrap(),
            "BLPOP a 0.001"
        );
        assert_eq!(sliced(c.clone(), Duration::ZERO).unwrap(), "BLPOP a 0.001");
        assert_eq!(
            sliced(c, Duration::from_micros(1500)).unwrap(),
            "BLPOP a 0.002"
        );
        let x = cmd("XREAD")
            .arg("BLOCK")
            .arg(0)
            .arg("STREAMS")
            .arg("s")
            .arg("0");
        assert_eq!(
            sliced(x, Duration::ZERO).unwrap(),
            "XREAD BLOCK 1 STREAMS s 0"
        );
    }

    #[test]
    fn unsafe_or_unknown_forms_are_not_reissued() {
        let none = [
            // `$` would skip entries added between two slices.
            cmd("XREAD")
                .arg("BLOCK")
                .arg(0)
                .arg("STREAMS")
                .arg("a")
                .arg("b")
                .arg("0")
                .arg("$"),
            // Not blocking, unknown option, malformed.
            cmd("XREAD").arg("STREAMS").arg("s").arg("0"),
            cmd("XREAD")
                .arg("BLOCK")
                .arg(0)
                .arg("FOO")
                .arg("STREAMS")
                .arg("s")
                .arg("0"),
            cmd("XREAD").arg("BLOCK").arg(0).arg("STREAMS").arg("s"),
            cmd("XREAD").arg("BLOCK"),
            cmd("BLPOP").arg(0),
            cmd("BLMPOP").arg(0).arg(1),
            cmd("WAITAOF").arg(1).arg(0).arg(0),
            cmd("WAIT").arg("x").arg(0),
            cmd("GET").arg("k"),
            Cmd::new(),
        ];
        for c in none {
            assert_eq!(Reissue::plan(&c), None, "{c:?}");
        }
    }

    #[test]
    fn nothing_yet_is_nil_or_too_few_replicas() {
        let p = Reissue::plan(&cmd("BLPOP").arg("a").arg(0)).unwrap();
        assert!(p.is_nothing_yet(&Value::Nil));
        assert!(!p.is_nothing_yet(&Value::Array(vec![])));
        let w = Reissue::plan(&cmd("WAIT").arg(2).arg(0)).unwrap();
        assert!(w.is_nothing_yet(&Value::Int(1)));
        assert!(!w.is_nothing_yet(&Value::Int(2)));
        assert!(!w.is_nothing_yet(&Value::Nil));
    }

    #[test]
    fn keeps_the_idempotency_declaration() {
        let c = cmd("BLPOP").arg("a").arg(0).idempotent(true);
        let p = Reissue::plan(&c).unwrap();
        assert_eq!(
            p.with_wait(&c, Duration::from_secs(1)).idempotent_hint(),
            Some(true)
        );
    }
}
