//! Keeping secrets out of logs, `Debug` output and errors: which arguments of a command are
//! secret (from the command table, [`super::spec`]), and scrubbing a server's error reply to
//! such a command (servers echo arguments back: `ERR unknown command 'HELLO', with args
//! beginning with: '3' 'AUTH' 'default' '<password>'`).

use super::spec::{self, Secrets};
use super::Cmd;
use crate::error::{Error, ServerError};
use crate::resp::Value;

/// What replaces a secret.
pub(crate) const REDACTED: &str = "<redacted>";

/// The positions (0 = the command name) of `cmd`'s secret arguments, in order.
pub(crate) fn secret_positions(cmd: &Cmd) -> Vec<usize> {
    let Some(rule) = spec::secrets(cmd) else {
        return Vec::new();
    };
    let args: Vec<&[u8]> = cmd.args().collect();
    let mut out = Vec::new();
    match rule {
        Secrets::From(from) => out.extend(from..args.len()),
        Secrets::AfterKeyword { from, keywords } => {
            let mut i = from;
            while i < args.len() {
                let n = keywords
                    .iter()
                    .find(|(k, _)| args[i].eq_ignore_ascii_case(k.as_bytes()))
                    .map_or(0, |(_, n)| *n);
                out.extend((i + 1..=i + n).take_while(|&j| j < args.len()));
                i += 1 + n;
            }
        }
        Secrets::AclRules { from } => out.extend(
            (from..args.len())
                .filter(|&i| matches!(args[i].first(), Some(b'>' | b'<' | b'#' | b'!'))),
        ),
        Secrets::Pairs { from, names } => {
            let mut i = from;
            while i + 1 < args.len() {
                if names
                    .iter()
                    .any(|n| args[i].eq_ignore_ascii_case(n.as_bytes()))
                {
                    out.push(i + 1);
                }
                i += 2;
            }
        }
    }
    out
}

/// The secret arguments of `cmd` as text, for scrubbing replies (empty ones left out).
fn secret_texts(cmd: &Cmd) -> Vec<String> {
    let positions = secret_positions(cmd);
    let mut out = Vec::new();
    for (i, a) in cmd.args().enumerate() {
        if !positions.contains(&i) {
            continue;
        }
        // An ACL rule's secret follows its one-character prefix; the whole rule is
        // scrubbed too (below), so a server quoting either form shows neither.
        let mut forms = vec![String::from_utf8_lossy(a).into_owned()];
        if matches!(a.first(), Some(b'>' | b'<' | b'#' | b'!')) && a.len() > 1 {
            forms.push(String::from_utf8_lossy(&a[1..]).into_owned());
        }
        for f in forms {
            // Servers replace CR and LF in error text with spaces.
            let spaced = f.replace(['\r', '\n'], " ");
            for s in [f, spaced] {
                if !s.is_empty() && !out.contains(&s) {
                    out.push(s);
                }
            }
        }
    }
    // Longest first, so that a secret containing another is replaced whole.
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out
}

/// The marker after which servers echo a rejected command's arguments (cut at 128 bytes,
/// possibly in the middle of a secret).
const ECHO_MARKER: &str = "with args beginning with:";

/// `e` with every trace of `cmd`'s secrets removed: the echoed argument list is cut off and
/// any remaining copy of a secret replaced. `None` when `cmd` carries no secret.
pub(crate) fn scrub_server_error(cmd: &Cmd, e: &ServerError) -> Option<ServerError> {
    let secrets = secret_texts(cmd);
    if secrets.is_empty() {
        return None;
    }
    let mut text = e.text().to_owned();
    if let Some(i) = text.find(ECHO_MARKER) {
        text.truncate(i + ECHO_MARKER.len());
        text.push(' ');
        text.push_str(REDACTED);
    }
    for s in &secrets {
        if text.contains(s.as_str()) {
            text = replace_whole(&text, s);
        }
    }
    Some(ServerError::new(text))
}

/// `text` with each copy of `secret` that stands on its own (not inside a longer word:
/// the bytes around it are not letters, digits or `_`) replaced by [`REDACTED`]. Servers
/// quote or space-separate the arguments they echo; a short user name such as `u` must not
/// turn "username" into "<redacted>sername".
fn replace_whole(text: &str, secret: &str) -> String {
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(secret) {
        let end = i + secret.len();
        let before = rest[..i].chars().next_back();
        let after = rest[end..].chars().next();
        let inside = (word(before) && word(secret.chars().next()))
            || (word(after) && word(secret.chars().next_back()));
        out.push_str(&rest[..i]);
        if inside {
            out.push_str(secret);
        } else {
            out.push_str(REDACTED);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// A reply to `cmd`, scrubbed when it is an error reply and `cmd` carries secrets. Costs
/// one comparison for any other reply (this runs for every reply).
#[inline]
pub(crate) fn scrub_reply(cmd: &Cmd, reply: &mut Value) {
    if let Value::Error(e) = reply {
        if let Some(clean) = scrub_server_error(cmd, e) {
            *e = clean;
        }
    }
}

/// An error from running `cmd`, scrubbed when it is a server error reply and `cmd` carries
/// secrets.
pub(crate) fn scrub_error(cmd: &Cmd, e: Error) -> Error {
    match e.server_error().and_then(|s| scrub_server_error(cmd, s)) {
        Some(clean) => Error::from(clean),
        None => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::cmd;

    #[test]
    fn unknown_command_echo_is_cut_and_secrets_replaced() {
        let hello = cmd("HELLO")
            .arg(3)
            .arg("AUTH")
            .arg("default")
            .arg("hunter2");
        let e = ServerError::new(
            "ERR unknown command 'HELLO', with args beginning with: '3' 'AUTH' 'default' 'hunt",
        );
        let clean = scrub_server_error(&hello, &e).expect("HELLO AUTH carries a secret");
        assert_eq!(
            clean.text(),
            "ERR unknown command 'HELLO', with args beginning with: <redacted>"
        );
        let e = ServerError::new("ERR Error in ACL SETUSER modifier '>hunter2': Syntax error");
        let acl = cmd("ACL").arg("SETUSER").arg("u").arg(">hunter2");
        let clean = scrub_server_error(&acl, &e).expect("ACL SETUSER >pw carries a secret");
        assert!(!clean.text().contains("hunter2"), "{clean}");
        assert_eq!(clean.code(), "ERR");
        // The password with CR LF turned into spaces by the server.
        let auth = cmd("AUTH").arg("a\r\nb");
        let e = ServerError::new("ERR something about 'a  b'");
        let clean = scrub_server_error(&auth, &e).unwrap();
        assert!(!clean.text().contains("a  b"), "{clean}");
        // A short user name is replaced where it stands alone, never inside words
        // (regression: "WRONGPASS invalid <redacted>sername-password pair").
        let auth_user = cmd("AUTH").arg("u").arg("pw");
        let e = ServerError::new(
            "WRONGPASS invalid username-password pair or user is disabled. user 'u', pw",
        );
        let clean = scrub_server_error(&auth_user, &e).unwrap();
        assert_eq!(
            clean.text(),
            "WRONGPASS invalid username-password pair or user is disabled. \
             user '<redacted>', <redacted>"
        );
        // No secret: nothing to scrub.
        assert!(scrub_server_error(&cmd("GET").arg("k"), &e).is_none());
        assert!(scrub_server_error(&cmd("HELLO").arg(3), &e).is_none());
        // A reply that is not an error passes through; an error one is scrubbed in place.
        let mut v = Value::Int(1);
        scrub_reply(&auth, &mut v);
        assert_eq!(v, Value::Int(1));
        let mut v = Value::Error(ServerError::new("ERR no 'a\r\nb' here"));
        scrub_reply(&auth, &mut v);
        assert_eq!(
            v,
            Value::Error(ServerError::new("ERR no '<redacted>' here"))
        );
    }
}
