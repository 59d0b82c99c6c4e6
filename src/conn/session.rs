//! What a connection's user changed on the server side of the session, so that a pool
//! never hands a connection to the next user in MULTI, WATCH, subscribed, in another
//! database, with tracking on, or otherwise altered.

use crate::cmd::spec::{self, Session};
use crate::cmd::Cmd;

/// Session state changed by commands sent on a connection, as far as the client can tell
/// from the command names (the command table's `session` effects, `cmd/spec`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionState {
    /// MULTI was sent and neither EXEC nor DISCARD followed.
    pub in_multi: bool,
    /// WATCH was sent and no EXEC, DISCARD or UNWATCH followed.
    pub watching: bool,
    /// SUBSCRIBE / PSUBSCRIBE / SSUBSCRIBE was sent.
    pub subscribed: bool,
    /// SELECT chose another database than the configured one.
    pub db_changed: bool,
    /// CLIENT TRACKING ON was sent.
    pub tracking: bool,
    /// Something else that outlives the command changed: HELLO, AUTH, RESET, CLIENT REPLY,
    /// CLIENT SETNAME, READONLY/READWRITE, MONITOR.
    pub other: bool,
}

impl SessionState {
    /// True when the session is as the handshake left it.
    pub fn is_clean(&self) -> bool {
        *self == SessionState::default()
    }

    /// Account for `cmd` being sent.
    #[inline]
    pub(crate) fn observe(&mut self, cmd: &Cmd, configured_db: u32) {
        if let Some(effect) = spec::session(cmd) {
            self.apply(effect, cmd, configured_db);
        }
    }

    /// Account for `cmd`, whose session effect is `effect`, being sent.
    #[inline(never)]
    fn apply(&mut self, effect: Session, cmd: &Cmd, configured_db: u32) {
        let arg = |i: usize| cmd.args().nth(i).unwrap_or(&[]);
        match effect {
            Session::Multi => self.in_multi = true,
            Session::EndTransaction => {
                self.in_multi = false;
                self.watching = false;
            }
            Session::Watch => self.watching = true,
            Session::Unwatch => self.watching = false,
            Session::Select => {
                let db = std::str::from_utf8(arg(1))
                    .ok()
                    .and_then(|s| s.parse::<u32>().ok());
                self.db_changed = db != Some(configured_db);
            }
            Session::Subscribe => self.subscribed = true,
            Session::Tracking => self.tracking = !arg(2).eq_ignore_ascii_case(b"OFF"),
            Session::Other => self.other = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::cmd;

    fn after(cmds: &[Cmd]) -> SessionState {
        let mut s = SessionState::default();
        cmds.iter().for_each(|c| s.observe(c, 0));
        s
    }

    #[test]
    fn tracks_state_changes() {
        assert!(after(&[cmd("GET").arg("k")]).is_clean());
        assert!(after(&[cmd("multi")]).in_multi);
        assert!(after(&[cmd("MULTI"), cmd("SET"), cmd("EXEC")]).is_clean());
        assert!(after(&[cmd("WATCH").arg("k")]).watching);
        assert!(after(&[cmd("WATCH").arg("k"), cmd("UNWATCH")]).is_clean());
        assert!(after(&[cmd("SELECT").arg(2)]).db_changed);
        assert!(after(&[cmd("SELECT").arg(2), cmd("SELECT").arg(0)]).is_clean());
        assert!(after(&[cmd("SUBSCRIBE").arg("c")]).subscribed);
        assert!(after(&[cmd("CLIENT").arg("TRACKING").arg("on")]).tracking);
        assert!(after(&[
            cmd("CLIENT").arg("TRACKING").arg("on"),
            cmd("CLIENT").arg("TRACKING").arg("off")
        ])
        .is_clean());
        assert!(after(&[cmd("CLIENT").arg("REPLY").arg("OFF")]).other);
        assert!(after(&[cmd("HELLO").arg(2)]).other);
        assert!(after(&[cmd("CLIENT").arg("GETNAME")]).is_clean());
    }
}
