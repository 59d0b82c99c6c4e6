//! The stored forms: a record `<seq>:<ms>:<key length>:<key><value>` (written by
//! `put.lua`) and a dead-letter entry `<error length>:<error><record>`.

use super::origin::Write;

fn field(rest: &mut &[u8]) -> Option<u64> {
    let i = rest.iter().position(|&b| b == b':')?;
    let n = std::str::from_utf8(&rest[..i]).ok()?.parse().ok()?;
    *rest = &rest[i + 1..];
    Some(n)
}

/// Parse a record; `None` for bytes that are not one.
pub(crate) fn parse(raw: &[u8]) -> Option<Write> {
    let mut rest = raw;
    let seq = field(&mut rest)?;
    let at_ms = field(&mut rest)?;
    let klen = usize::try_from(field(&mut rest)?).ok()?;
    if rest.len() < klen {
        return None;
    }
    let key = String::from_utf8(rest[..klen].to_vec()).ok()?;
    Some(Write {
        seq,
        at_ms,
        key,
        value: rest[klen..].to_vec(),
    })
}

#[cfg(test)]
/// The record of a write (the inverse of [`parse`]).
pub(crate) fn encode(w: &Write) -> Vec<u8> {
    let mut out = format!("{}:{}:{}:{}", w.seq, w.at_ms, w.key.len(), w.key).into_bytes();
    out.extend_from_slice(&w.value);
    out
}

/// A dead-letter entry for a record (kept as stored, even when it does not parse).
pub(crate) fn dead_entry(error: &str, record: &[u8]) -> Vec<u8> {
    let mut out = format!("{}:{error}", error.len()).into_bytes();
    out.extend_from_slice(record);
    out
}

/// A write in the dead-letter list, with the error that put it there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadWrite {
    write: Option<Write>,
    error: String,
    record: Vec<u8>,
}

impl DeadWrite {
    pub(crate) fn decode(entry: &[u8]) -> DeadWrite {
        let mut rest = entry;
        let parsed = field(&mut rest).and_then(|n| {
            let n = usize::try_from(n).ok()?;
            let err = std::str::from_utf8(rest.get(..n)?).ok()?.to_owned();
            Some((err, rest[n..].to_vec()))
        });
        match parsed {
            Some((error, record)) => DeadWrite {
                write: parse(&record),
                error,
                record,
            },
            None => DeadWrite {
                write: None,
                error: "unreadable dead-letter entry".into(),
                record: entry.to_vec(),
            },
        }
    }

    /// The write (`None` when the stored record does not parse).
    pub fn write(&self) -> Option<&Write> {
        self.write.as_ref()
    }

    /// The origin's last error for it.
    pub fn error(&self) -> &str {
        &self.error
    }

    /// The record as stored.
    pub fn record(&self) -> &[u8] {
        &self.record
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_dead_entries_round_trip() {
        let w = Write {
            seq: 12,
            at_ms: 1_700_000_000_123,
            key: "user:1:name".into(),
            value: b"A:d\r\na\xff".to_vec(),
        };
        assert_eq!(parse(&encode(&w)), Some(w.clone()));
        let d = DeadWrite::decode(&dead_entry("db said: no", &encode(&w)));
        assert_eq!(d.write(), Some(&w));
        assert_eq!(d.error(), "db said: no");
        for bad in [&b""[..], b"1:2", b"x:2:1:k", b"1:2:9:short"] {
            assert_eq!(parse(bad), None);
        }
        assert!(DeadWrite::decode(b"junk").write().is_none());
    }
}
