//! `CLIENT LIST`, parsed.

use std::collections::BTreeMap;

use crate::cmd::{cmd, Execute, FromValue};
use crate::error::Result;

/// One connection as `CLIENT LIST` describes it. The common fields are typed; every
/// field the server sent is in [`ClientInfo::fields`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "json", derive(serde::Serialize))]
#[non_exhaustive]
pub struct ClientInfo {
    /// `id`.
    pub id: u64,
    /// `addr`: the client's `ip:port`.
    pub addr: String,
    /// `name` (`CLIENT SETNAME`); empty when unset.
    pub name: String,
    /// `user`: the ACL user it authenticated as.
    pub user: String,
    /// `age`: seconds since it connected.
    pub age_secs: u64,
    /// `idle`: seconds since its last command.
    pub idle_secs: u64,
    /// `db`.
    pub db: u32,
    /// `cmd`: its last command (`client|list`, `blpop`, ...).
    pub cmd: String,
    /// `flags` (`N` normal, `b` blocked, `S` replica, `M` primary, `P` pub/sub, `t`
    /// tracking, `x` in MULTI, ...).
    pub flags: String,
    /// `omem`: bytes in its output buffer (a slow reader shows here first).
    pub output_memory: u64,
    /// `tot-mem`: all memory the connection uses (0 when not reported).
    pub total_memory: u64,
    /// Every `name=value` field as sent.
    pub fields: BTreeMap<String, String>,
}

/// `CLIENT LIST`: every connection to the server.
pub fn client_list<E: Execute + ?Sized>(ex: &E) -> Result<Vec<ClientInfo>> {
    let text = String::from_value(ex.exec(&cmd("CLIENT").arg("LIST"))?)?;
    Ok(parse_client_list(&text))
}

/// Parse the text of a `CLIENT LIST` reply (one line per client, `name=value` pairs
/// separated by spaces; a value never holds a space).
///
/// ```
/// let list = valkit::admin::parse_client_list(
///     "id=3 addr=127.0.0.1:5000 name=app age=10 idle=2 flags=N db=0 omem=0 tot-mem=2000 cmd=get user=default\n",
/// );
/// assert_eq!(list[0].name, "app");
/// assert_eq!(list[0].total_memory, 2000);
/// ```
pub fn parse_client_list(text: &str) -> Vec<ClientInfo> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let fields: BTreeMap<String, String> = line
                .split(' ')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            let s = |k: &str| fields.get(k).cloned().unwrap_or_default();
            let n = |k: &str| fields.get(k).and_then(|v| v.parse().ok()).unwrap_or(0);
            ClientInfo {
                id: n("id"),
                addr: s("addr"),
                name: s("name"),
                user: s("user"),
                age_secs: n("age"),
                idle_secs: n("idle"),
                db: n("db") as u32,
                cmd: s("cmd"),
                flags: s("flags"),
                output_memory: n("omem"),
                total_memory: n("tot-mem"),
                fields,
            }
        })
        .collect()
}
