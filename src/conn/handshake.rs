//! The handshake after the socket opens: HELLO (RESP3) or AUTH (RESP2), CLIENT SETNAME, SELECT.
//!
//! All handshake commands go out in one write; the replies are checked in order. Nothing
//! here ever puts the password into an error, a log line or a `Debug` output.

use crate::cmd::{cmd, Cmd};
use crate::config::{ConnectionConfig, Protocol};
use crate::error::{Error, ErrorKind, Result, ServerError, ServerErrorKind};
use crate::resp::Value;

/// What the server told us during the handshake.
#[derive(Debug, Clone, Default)]
pub(crate) struct Hello {
    pub(crate) version: Option<String>,
    pub(crate) server: Option<String>,
}

/// Which reply is which, so that an error names the step that failed.
#[derive(Clone, Copy)]
pub(crate) enum Step {
    /// `auth`: the HELLO carries AUTH credentials.
    Hello {
        auth: bool,
    },
    Auth,
    SetName,
    Select,
    ReadOnly,
}

/// The commands to send, each with the step it belongs to.
pub(crate) fn commands(config: &ConnectionConfig) -> Vec<(Step, Cmd)> {
    let mut out = Vec::with_capacity(3);
    match config.protocol {
        Protocol::Resp3 => {
            let mut hello = cmd("HELLO").arg(3);
            if let Some(pass) = &config.password {
                let user = config.username.as_deref().unwrap_or("default");
                hello = hello.arg("AUTH").arg(user).arg(pass.expose());
            }
            if let Some(name) = &config.client_name {
                hello = hello.arg("SETNAME").arg(name.as_str());
            }
            let auth = config.password.is_some();
            out.push((Step::Hello { auth }, hello));
        }
        Protocol::Resp2 => {
            if let Some(pass) = &config.password {
                let auth = match &config.username {
                    Some(user) => cmd("AUTH").arg(user.as_str()).arg(pass.expose()),
                    None => cmd("AUTH").arg(pass.expose()),
                };
                out.push((Step::Auth, auth));
            }
            if let Some(name) = &config.client_name {
                out.push((
                    Step::SetName,
                    cmd("CLIENT").arg("SETNAME").arg(name.as_str()),
                ));
            }
        }
    }
    if config.db != 0 {
        out.push((Step::Select, cmd("SELECT").arg(config.db)));
    }
    if config.cluster_read_only {
        out.push((Step::ReadOnly, cmd("READONLY")));
    }
    out
}

/// Check one handshake reply; returns what HELLO told us.
pub(crate) fn check(step: Step, reply: Value, hello: &mut Hello) -> Result<()> {
    let reply = reply.strip_attributes();
    if let Value::Error(e) = reply {
        return Err(step_error(step, e));
    }
    if let (Step::Hello { .. }, Value::Map(pairs)) = (step, &reply) {
        for (k, v) in pairs {
            let val = v
                .as_bytes()
                .map(|b| String::from_utf8_lossy(b).into_owned());
            match k.as_bytes() {
                Some(b"version") => hello.version = val,
                Some(b"server") => hello.server = val,
                _ => {}
            }
        }
    }
    Ok(())
}

fn is_auth_failure(e: &ServerError) -> bool {
    matches!(
        e.kind(),
        ServerErrorKind::WrongPass | ServerErrorKind::NoAuth
    ) || e.text().starts_with("ERR AUTH")
        || e.text().starts_with("ERR invalid password")
        || e.text().starts_with("ERR Client sent AUTH")
}

/// The server does not know the command (`ERR unknown command 'HELLO', ...`).
fn is_unknown_command(e: &ServerError) -> bool {
    e.text().starts_with("ERR unknown command")
}

/// True when the handshake failed only because the server does not know HELLO and the
/// configuration lets the connection fall back to AUTH and RESP2 (no protocol was asked
/// for explicitly).
pub(crate) fn may_fall_back(config: &ConnectionConfig, e: &Error) -> bool {
    config.protocol == Protocol::Resp3
        && config.resp2_fallback
        && e.detail().starts_with(HELLO_UNKNOWN)
}

/// How the detail of a "HELLO is an unknown command" error starts.
const HELLO_UNKNOWN: &str = "the server does not know HELLO";

fn step_error(step: Step, e: ServerError) -> Error {
    // A HELLO with credentials that the server answers with NOAUTH did not run: Valkey
    // answers an unknown (renamed, disabled) command so before authentication.
    if let Step::Hello { auth: true } = step {
        if e.kind() == ServerErrorKind::NoAuth {
            let detail = format!(
                "{HELLO_UNKNOWN} (it answered HELLO 3 AUTH with: {}; HELLO may be renamed or \
                 disabled); connect with protocol=resp2",
                e.text()
            );
            let mut err = Error::from(e);
            err.set_detail(detail);
            return err;
        }
    }
    if is_auth_failure(&e) {
        let hint = if e.kind() == ServerErrorKind::NoAuth {
            " (the server requires a password: set one in the URL or VALKEY_PASSWORD)"
        } else {
            ""
        };
        return Error::new(ErrorKind::Auth, format!("{}{hint}", e.text())).with_source(e);
    }
    let detail = match step {
        // The server turned the connection away (it closes it): not a protocol matter.
        _ if e.kind() == ServerErrorKind::MaxClients => {
            format!("the server refused the connection: {}", e.text())
        }
        Step::Hello { .. } if is_unknown_command(&e) => format!(
            "{HELLO_UNKNOWN} (Redis before 6, HELLO renamed or disabled, or a proxy): {}; \
             connect with protocol=resp2",
            e.text()
        ),
        Step::Hello { .. } if e.kind() == ServerErrorKind::NoProto => format!(
            "the server refused HELLO 3 (RESP3): {}; connect with protocol=resp2",
            e.text()
        ),
        Step::Hello { .. } => format!("HELLO failed: {}", e.text()),
        Step::Auth => format!("AUTH failed: {}", e.text()),
        Step::SetName => format!("CLIENT SETNAME failed: {}", e.text()),
        Step::Select => format!("SELECT failed: {}", e.text()),
        Step::ReadOnly => format!("READONLY failed: {}", e.text()),
    };
    let mut err = Error::from(e);
    err.set_detail(detail);
    err
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(step: Step, text: &str) -> Error {
        check(
            step,
            Value::Error(ServerError::new(text)),
            &mut Hello::default(),
        )
        .expect_err("an error reply")
    }

    #[test]
    fn maxclients_is_a_server_condition_without_protocol_advice() {
        let steps = [
            Step::Hello { auth: true },
            Step::Hello { auth: false },
            Step::Auth,
            Step::SetName,
            Step::Select,
        ];
        for step in steps {
            let e = err(step, "ERR max number of clients reached");
            assert_eq!(e.kind(), ErrorKind::Server(ServerErrorKind::MaxClients));
            assert!(e.is_retryable());
            assert!(!e.detail().contains("resp2"), "{e}");
        }
    }

    #[test]
    fn only_an_unknown_hello_falls_back_and_only_when_allowed() {
        let auto = ConnectionConfig::new("127.0.0.1", 6379);
        let mut explicit = auto.clone();
        explicit.resp2_fallback = false;
        let unknown = "ERR unknown command 'HELLO', with args beginning with: '3' ";
        let falls_back = |cfg: &ConnectionConfig, step, text| may_fall_back(cfg, &err(step, text));
        assert!(falls_back(&auto, Step::Hello { auth: false }, unknown));
        assert!(!falls_back(&explicit, Step::Hello { auth: false }, unknown));
        // Valkey answers an unknown command with NOAUTH before authentication.
        let noauth = "NOAUTH Authentication required.";
        assert!(falls_back(&auto, Step::Hello { auth: true }, noauth));
        // Without credentials in HELLO, NOAUTH means "a password is needed".
        let e = err(Step::Hello { auth: false }, noauth);
        assert_eq!(e.kind(), ErrorKind::Auth);
        assert!(!may_fall_back(&auto, &e));
        for text in [
            "WRONGPASS invalid username-password pair or user is disabled.",
            "NOPROTO unsupported protocol version",
            "ERR max number of clients reached",
        ] {
            assert!(
                !falls_back(&auto, Step::Hello { auth: true }, text),
                "{text}"
            );
        }
        // Not HELLO's reply: no fallback.
        assert!(!falls_back(&auto, Step::Select, unknown));
        let mut resp2 = auto.clone();
        resp2.protocol = Protocol::Resp2;
        assert!(!falls_back(&resp2, Step::Hello { auth: false }, unknown));
    }
}
