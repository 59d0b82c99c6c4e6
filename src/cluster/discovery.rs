//! Reading the cluster's own description of itself: `CLUSTER SHARDS` (Valkey, Redis 7+)
//! and `CLUSTER SLOTS` (older servers) into a [`SlotMap`].

use super::{Shard, SlotMap};
use crate::error::{Error, ErrorKind, Result};
use crate::resp::Value;

fn bad(what: &str) -> Error {
    Error::new(
        ErrorKind::Protocol,
        format!("cluster: unexpected topology reply: {what}"),
    )
}

/// A field of a RESP3 map, or of a RESP2 flat `[name, value, ...]` array.
fn field<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    match v {
        Value::Map(pairs) => pairs
            .iter()
            .find(|(k, _)| k.as_bytes() == Some(name.as_bytes()))
            .map(|(_, v)| v),
        Value::Array(items) => items
            .chunks(2)
            .find(|kv| kv[0].as_bytes() == Some(name.as_bytes()))
            .and_then(|kv| kv.get(1)),
        _ => None,
    }
}

fn text(v: &Value) -> Option<String> {
    v.as_bytes()
        .map(|b| String::from_utf8_lossy(b).into_owned())
}

fn int(v: &Value) -> Option<i64> {
    v.as_int().or_else(|| text(v)?.parse().ok())
}

fn items(v: &Value) -> Option<&[Value]> {
    match v {
        Value::Array(a) | Value::Set(a) => Some(a),
        _ => None,
    }
}

fn host_of(node: &Value) -> Option<String> {
    // `endpoint` is what clients are told to use (`?` when unknown, empty when hidden);
    // `ip` is the address.
    let endpoint = field(node, "endpoint").and_then(text);
    match endpoint {
        Some(e) if !e.is_empty() && e != "?" => Some(e),
        _ => field(node, "ip").and_then(text),
    }
}

fn addr(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Parse a `CLUSTER SHARDS` reply.
pub(crate) fn parse_shards(v: &Value) -> Result<SlotMap> {
    let shards_v = items(v).ok_or_else(|| bad("CLUSTER SHARDS is not an array"))?;
    let mut shards = Vec::new();
    let mut ranges = Vec::new();
    for s in shards_v {
        let slots = field(s, "slots")
            .and_then(items)
            .ok_or_else(|| bad("a shard without slots"))?;
        if slots.is_empty() {
            continue;
        }
        let nodes = field(s, "nodes")
            .and_then(items)
            .ok_or_else(|| bad("a shard without nodes"))?;
        let mut primary = None;
        let mut replicas = Vec::new();
        for n in nodes {
            let role = field(n, "role").and_then(text).unwrap_or_default();
            let health = field(n, "health").and_then(text).unwrap_or_default();
            let port = field(n, "port").and_then(int).unwrap_or(0);
            let (Some(host), true) = (host_of(n), port > 0) else {
                continue;
            };
            if role == "master" || role == "primary" {
                if health != "fail" {
                    primary = Some(addr(&host, port));
                }
            } else if health != "fail" {
                // `loading` also means "replication offset not yet seen in gossip", which
                // a freshly joined replica of an idle primary shows for a while; one that
                // is really loading answers LOADING, which the retry rule handles.
                replicas.push(addr(&host, port));
            }
        }
        let Some(primary) = primary else { continue };
        let index = shards.len();
        shards.push(Shard { primary, replicas });
        for pair in slots.chunks(2) {
            let (Some(a), Some(b)) = (pair.first().and_then(int), pair.get(1).and_then(int)) else {
                return Err(bad("a slot range that is not two integers"));
            };
            if !(0..16384).contains(&a) || !(a..16384).contains(&b) {
                return Err(bad("a slot out of range"));
            }
            ranges.push((a as u16, b as u16, index));
        }
    }
    Ok(SlotMap::new(shards, &ranges))
}

/// Parse a `CLUSTER SLOTS` reply: `[[start, end, [host, port, id, ...], replicas...], ...]`.
pub(crate) fn parse_slots(v: &Value) -> Result<SlotMap> {
    let rows = items(v).ok_or_else(|| bad("CLUSTER SLOTS is not an array"))?;
    let mut shards: Vec<Shard> = Vec::new();
    let mut ranges = Vec::new();
    for row in rows {
        let row = items(row).ok_or_else(|| bad("a CLUSTER SLOTS row is not an array"))?;
        let (Some(a), Some(b)) = (row.first().and_then(int), row.get(1).and_then(int)) else {
            return Err(bad("a slot range that is not two integers"));
        };
        if !(0..16384).contains(&a) || !(a..16384).contains(&b) {
            return Err(bad("a slot out of range"));
        }
        let mut node_addrs = row[2..].iter().filter_map(|n| {
            let n = items(n)?;
            let host = text(n.first()?)?;
            let port = int(n.get(1)?)?;
            (!host.is_empty() && port > 0).then(|| addr(&host, port))
        });
        let Some(primary) = node_addrs.next() else {
            continue;
        };
        let replicas: Vec<String> = node_addrs.collect();
        let index = match shards.iter().position(|s| s.primary == primary) {
            Some(i) => i,
            None => {
                shards.push(Shard { primary, replicas });
                shards.len() - 1
            }
        };
        ranges.push((a as u16, b as u16, index));
    }
    Ok(SlotMap::new(shards, &ranges))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Value {
        Value::Bulk(s.as_bytes().to_vec().into())
    }

    #[test]
    fn shards_resp2_flat_arrays() {
        let node = |port: i64, role: &str, health: &str| {
            Value::Array(vec![
                b("id"),
                b("x"),
                b("port"),
                Value::Int(port),
                b("ip"),
                b("127.0.0.1"),
                b("endpoint"),
                b("127.0.0.1"),
                b("role"),
                b(role),
                b("health"),
                b(health),
            ])
        };
        let shard = Value::Array(vec![
            b("slots"),
            Value::Array(vec![Value::Int(0), Value::Int(16383)]),
            b("nodes"),
            Value::Array(vec![
                node(7000, "master", "online"),
                node(7001, "replica", "online"),
                node(7002, "replica", "fail"),
            ]),
        ]);
        let m = parse_shards(&Value::Array(vec![shard])).unwrap();
        assert_eq!(m.uncovered(), 0);
        let s = m.shard(5000).unwrap();
        assert_eq!(s.primary, "127.0.0.1:7000");
        assert_eq!(s.replicas, vec!["127.0.0.1:7001".to_owned()]);
        assert!(parse_shards(&Value::Int(1)).is_err());
    }

    #[test]
    fn slots_fallback() {
        let v = Value::Array(vec![Value::Array(vec![
            Value::Int(0),
            Value::Int(99),
            Value::Array(vec![b("127.0.0.1"), Value::Int(7000), b("id")]),
            Value::Array(vec![b("127.0.0.1"), Value::Int(7001), b("id2")]),
        ])]);
        let m = parse_slots(&v).unwrap();
        assert_eq!(m.uncovered(), 16384 - 100);
        assert_eq!(m.shard(50).unwrap().replicas, vec!["127.0.0.1:7001"]);
        assert!(m.shard(100).is_none());
    }
}
