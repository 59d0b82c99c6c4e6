//! `SLOWLOG GET / LEN / RESET`.

use std::time::Duration;

use crate::cmd::{cmd, Execute, FromValue};
use crate::error::{Error, Result};
use crate::resp::Value;

/// One slow-log entry: a command that took longer than `slowlog-log-slower-than`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "json", derive(serde::Serialize))]
#[non_exhaustive]
pub struct SlowlogEntry {
    /// The entry's id (increasing).
    pub id: u64,
    /// When it ran (Unix seconds).
    pub timestamp: u64,
    /// How long it ran on the server (execution only, no I/O).
    #[cfg_attr(feature = "json", serde(serialize_with = "micros"))]
    pub duration: Duration,
    /// The command and its arguments, as the server logged them (it truncates long ones
    /// and never logs secrets such as AUTH's).
    pub args: Vec<String>,
    /// The client's `ip:port`, when the server reports it.
    pub client_addr: Option<String>,
    /// The client's name (`CLIENT SETNAME`), when set.
    pub client_name: Option<String>,
}

#[cfg(feature = "json")]
fn micros<S: serde::Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_micros() as u64)
}

/// `SLOWLOG GET [count]`: the newest entries first (`None`: the server's default of 10).
pub fn slowlog_get<E: Execute + ?Sized>(ex: &E, count: Option<u64>) -> Result<Vec<SlowlogEntry>> {
    let mut c = cmd("SLOWLOG").arg("GET");
    if let Some(n) = count {
        c = c.arg(n);
    }
    let items = Vec::<Value>::from_value(ex.exec(&c)?)?;
    items.into_iter().map(parse_entry).collect()
}

/// `SLOWLOG LEN`.
pub fn slowlog_len<E: Execute + ?Sized>(ex: &E) -> Result<u64> {
    u64::from_value(ex.exec(&cmd("SLOWLOG").arg("LEN"))?)
}

/// `SLOWLOG RESET`: forget every entry.
pub fn slowlog_reset<E: Execute + ?Sized>(ex: &E) -> Result<()> {
    <()>::from_value(ex.exec(&cmd("SLOWLOG").arg("RESET"))?)
}

fn parse_entry(v: Value) -> Result<SlowlogEntry> {
    let fields = Vec::<Value>::from_value(v)?;
    if fields.len() < 4 {
        return Err(Error::conversion(format!(
            "SLOWLOG entry with {} fields, expected at least 4",
            fields.len()
        )));
    }
    let mut it = fields.into_iter();
    let mut next = || it.next().unwrap_or(Value::Nil);
    let id = u64::from_value(next())?;
    let timestamp = u64::from_value(next())?;
    let micros = u64::from_value(next())?;
    let args = Vec::<Vec<u8>>::from_value(next())?
        .into_iter()
        .map(|a| String::from_utf8_lossy(&a).into_owned())
        .collect();
    let opt = |v: Value| -> Result<Option<String>> {
        Ok(Option::<String>::from_value(v)?.filter(|s| !s.is_empty()))
    };
    Ok(SlowlogEntry {
        id,
        timestamp,
        duration: Duration::from_micros(micros),
        args,
        client_addr: opt(next())?,
        client_name: opt(next())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::Bytes;

    fn bulk(s: &str) -> Value {
        Value::Bulk(Bytes::from(s.as_bytes().to_vec()))
    }

    #[test]
    fn entries_parse_with_and_without_client_fields() {
        let full = Value::Array(vec![
            Value::Int(7),
            Value::Int(1_700_000_000),
            Value::Int(1500),
            Value::Array(vec![bulk("KEYS"), bulk("*")]),
            bulk("127.0.0.1:5000"),
            bulk(""),
        ]);
        let e = parse_entry(full).unwrap();
        assert_eq!(e.id, 7);
        assert_eq!(e.duration, Duration::from_micros(1500));
        assert_eq!(e.args, ["KEYS", "*"]);
        assert_eq!(e.client_addr.as_deref(), Some("127.0.0.1:5000"));
        assert_eq!(e.client_name, None);
        let old = Value::Array(vec![
            Value::Int(1),
            Value::Int(2),
            Value::Int(3),
            Value::Array(vec![bulk("GET")]),
        ]);
        assert_eq!(parse_entry(old).unwrap().client_addr, None);
        assert!(parse_entry(Value::Array(vec![Value::Int(1)])).is_err());
    }
}
