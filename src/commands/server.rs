//! The server and connection commands: `PING`, `INFO`, `TIME`, `PUBLISH`, `OBJECT
//! ENCODING`, `MEMORY USAGE`, ...

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};

/// A `TIME` reply `(seconds, microseconds)` as an instant.
pub(crate) fn time_from_reply((secs, micros): (u64, u64)) -> Result<SystemTime> {
    if micros >= 1_000_000 {
        return Err(Error::conversion(format!(
            "TIME microseconds out of range: {micros}"
        )));
    }
    UNIX_EPOCH
        .checked_add(Duration::from_secs(secs) + Duration::from_micros(micros))
        .ok_or_else(|| Error::conversion(format!("TIME seconds out of range: {secs}")))
}

/// The server commands (see `define.rs` for the form).
macro_rules! server_commands {
    ($out:ident) => {
        $out! {
        /// `PING`: succeeds when the server answers.
        fn ping<>() -> () { known_cmd!("PING") }

        /// `PING message`: the server echoes the message.
        fn ping_message<M: ToArgs>(message: M) -> RV { known_cmd!("PING").arg(message) }

        /// `INFO`: the default sections, parsed.
        ///
        /// ```no_run
        /// # use valkit::{Commands, Connection};
        /// # fn main() -> valkit::Result<()> {
        /// # let conn = Connection::open_url("redis://127.0.0.1:6379")?;
        /// let info = conn.info()?;
        /// println!("version {:?}", info.server_version());
        /// println!("clients {:?}", info.get("clients", "connected_clients"));
        /// # Ok(()) }
        /// ```
        fn info<>() -> Info { known_cmd!("INFO") }

        /// `INFO section...`: the named sections (or `all`, `everything`), parsed.
        fn info_sections<S: ToArgs>(sections: S) -> Info { known_cmd!("INFO").arg(sections) }

        /// `TIME`: the server's clock.
        fn time<>() -> SystemTime = time_from_reply; { known_cmd!("TIME") }

        /// `DBSIZE`: the number of keys in the selected database.
        fn dbsize<>() -> u64 { known_cmd!("DBSIZE") }

        /// `FLUSHDB`: delete every key of the selected database. Irreversible.
        fn flushdb<>() -> () { known_cmd!("FLUSHDB") }

        /// `PUBLISH channel message`: how many subscribers received the message (on a
        /// cluster: those connected to the node that took it).
        fn publish<C: ToArgs, M: ToArgs>(channel: C, message: M) -> u64 {
            known_cmd!("PUBLISH").arg(channel).arg(message)
        }

        /// `OBJECT ENCODING key`: how the server stores the value (`listpack`, `hashtable`,
        /// `embstr`, `int`, ...); `None` for a missing key.
        fn object_encoding<K: ToArgs>(key: K) -> Option<String> {
            known_cmd!("OBJECT").arg("ENCODING").arg(key)
        }

        /// `MEMORY USAGE key`: the bytes the key and its value take on the server, `None` for a
        /// missing key. Large aggregates are sampled (the server's default of 5 elements).
        fn memory_usage<K: ToArgs>(key: K) -> Option<u64> { known_cmd!("MEMORY").arg("USAGE").arg(key) }
        }
    };
}
