//! The command table's behaviour, pinned: for every command name the client knows (and
//! a few it does not), a set of probe commands and what routing (read-only, idempotent,
//! label), cluster key positions, the session tracker, redaction, refusals and blocking
//! re-issue make of each. The expected text (`command_table.golden`) was written from the
//! per-module lists that existed before the one command table (`cmd/spec`), so this test
//! proves that moving them into the table changed nothing.
//!
//! To rewrite the file after an intended change: `VALKIT_BLESS=1 cargo test --lib golden`.

use std::fmt::Write;
use std::time::Duration;

use super::routing::{is_idempotent, is_read_only, CommandName};
use crate::cmd::keys::keys;
use crate::cmd::secrets::secret_positions;
use crate::cmd::spec::tests::OLD_NAMES;
use crate::cmd::{cmd, Cmd, Reissue};
use crate::conn::SessionState;

/// Names no list knew: they must keep the defaults (first argument the key, a write).
const UNKNOWN: &[&str] = &["MYMODULE.CMD", "GETT", "ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ"];

/// Container commands: probed with each of these subcommand forms.
const CONTAINERS: &[&str] = &[
    "ACL", "CLIENT", "CONFIG", "MEMORY", "MODULE", "OBJECT", "SENTINEL", "XGROUP", "XINFO",
    "SCRIPT", "FUNCTION", "CLUSTER", "COMMAND",
];

const SUBS: &[&[&str]] = &[
    &["HELP"],
    &["help"],
    &["STATS"],
    &[
        "SET",
        "requirepass",
        "pw",
        "maxmemory",
        "1",
        "masterauth",
        "x",
    ],
    &["set", "sentinel-pass", "pw", "auth-pass", "p2"],
    &["GET", "k"],
    &["SETUSER", "u", "on", ">pw", "#hash", "~*", "<old", "!h"],
    &["CONFIG", "SET", "sentinel-pass", "pw", "sentinel-user", "u"],
    &["LOAD", "/m.so", "secret"],
    &["LOADEX", "/m.so", "CONFIG", "a", "b"],
    &["REPLY", "OFF"],
    &["TRACKING", "on"],
    &["TRACKING", "off"],
    &["SETNAME", "n"],
    &["GETNAME"],
    &["ENCODING", "k"],
    &["CREATE", "s", "g", "$"],
    &["USAGE", "k"],
];

/// Argument shapes every name is probed with (after the name).
const SHAPES: &[&[&str]] = &[
    &[],
    &["a"],
    &["a", "b", "c", "d", "e", "f"],
    &["2", "a", "b", "c", "d", "e"],
    &["0", "2", "a", "b", "LEFT"],
    &["d", "2", "a", "b", "WEIGHTS", "1", "2"],
    &["COUNT", "2", "BLOCK", "0", "STREAMS", "a", "b", "0", "0"],
    &["BLOCK", "0", "STREAMS", "a", "$"],
    &[
        "GROUP", "g", "c", "BLOCK", "0", "NOACK", "STREAMS", "s", ">",
    ],
    &["1", "0"],
    &["k", "v", "NX"],
    &["k", "v", "EX", "10"],
    &["k", "v", "get"],
    &["0", "MATCH", "{ns}:*", "COUNT", "10"],
    &["AUTH", "user", "pw"],
    &["3", "AUTH", "user", "pw", "SETNAME", "n"],
    &[
        "h", "6379", "k", "0", "5000", "AUTH2", "u", "pw", "KEYS", "a",
    ],
    &["h", "6379", "", "0", "5000", "AUTH", "pw", "KEYS", "a", "b"],
];

fn text(c: &Cmd) -> String {
    c.args()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// One line: what every reader of the command table makes of `c`.
fn describe(c: &Cmd, out: &mut String) {
    let name = CommandName::of(c);
    let keys: Vec<String> = keys(c)
        .into_iter()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect();
    let mut session = SessionState::default();
    session.observe(c, 0);
    let mut session1 = SessionState::default();
    session1.observe(c, 2);
    let reissue = Reissue::plan(c).map(|p| {
        let s = p.with_wait(c, Duration::from_millis(1500));
        format!(
            "{} nil={} one={}",
            text(&s),
            p.is_nothing_yet(&crate::resp::Value::Nil),
            p.is_nothing_yet(&crate::resp::Value::Int(1))
        )
    });
    // The reason's first words tell which refusal it is.
    let refusal = c
        .refusal()
        .map(|e| e.to_string().chars().take(60).collect::<String>());
    let _ = writeln!(
        out,
        "{} | label={} ro={} idem={} keys={:?} slot={:?} session={}/{} secrets={:?} \
         refused={:?} reissue={:?}",
        text(c),
        name.label(),
        is_read_only(c),
        is_idempotent(c),
        keys,
        crate::cmd::keys::slot_of(c),
        flags(&session),
        flags(&session1),
        secret_positions(c),
        refusal,
        reissue,
    );
}

/// The session flags set, as one short word (`-` when clean).
fn flags(s: &SessionState) -> String {
    let all = [
        (s.in_multi, "multi"),
        (s.watching, "watch"),
        (s.subscribed, "sub"),
        (s.db_changed, "db"),
        (s.tracking, "track"),
        (s.other, "other"),
    ];
    let set: Vec<&str> = all.iter().filter(|(on, _)| *on).map(|(_, n)| *n).collect();
    if set.is_empty() {
        "-".into()
    } else {
        set.join("+")
    }
}

fn with(name: &str, args: &[&str]) -> Cmd {
    let mut c = cmd(name);
    for a in args {
        c = c.arg(*a);
    }
    c
}

fn render() -> String {
    let mut out = String::new();
    for name in OLD_NAMES.iter().chain(UNKNOWN) {
        for shape in SHAPES {
            describe(&with(name, shape), &mut out);
        }
        describe(&with(&name.to_lowercase(), &["a", "b", "0"]), &mut out);
    }
    for name in CONTAINERS {
        for sub in SUBS {
            describe(&with(name, sub), &mut out);
        }
    }
    describe(&Cmd::new(), &mut out);
    out
}

#[test]
fn golden_command_table_behaviour() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/client/command_table.golden"
    );
    let now = render();
    if std::env::var_os("VALKIT_BLESS").is_some() {
        std::fs::write(path, &now).unwrap();
        return;
    }
    let want = std::fs::read_to_string(path).expect("command_table.golden");
    for (i, (a, b)) in want.lines().zip(now.lines()).enumerate() {
        assert_eq!(a, b, "line {} of command_table.golden", i + 1);
    }
    assert_eq!(want.lines().count(), now.lines().count());
}
