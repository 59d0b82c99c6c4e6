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
    Hello,
    Auth,
    SetName,
    Select,
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
            out.push((Step::Hello, hello));
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
    out
}

/// Check one handshake reply; returns what HELLO told us.
pub(crate) fn check(step: Step, reply: Value, hello: &mut Hello) -> Result<()> {
    let reply = reply.strip_attributes();
    if let Value::Error(e) = reply {
        return Err(step_error(step, e));
    }
    if let (Step::Hello, Value::Map(pairs)) = (step, &reply) {
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

fn step_error(step: Step, e: ServerError) -> Error {
    if is_auth_failure(&e) {
        let hint = if e.kind() == ServerErrorKind::NoAuth {
            " (the server requires a password: set one in the URL or VALKEY_PASSWORD)"
        } else {
            ""
        };
        return Error::new(ErrorKind::Auth, format!("{}{hint}", e.text())).with_source(e);
    }
    let detail = match step {
        Step::Hello => format!(
            "the server refused HELLO 3 (RESP3): {}; connect with protocol=resp2 for servers before Redis 6",
            e.text()
        ),
        Step::Auth => format!("AUTH failed: {}", e.text()),
        Step::SetName => format!("CLIENT SETNAME failed: {}", e.text()),
        Step::Select => format!("SELECT failed: {}", e.text()),
    };
    let mut err = Error::from(e);
    err.set_detail(detail);
    err
}
