//! Shared helpers for the integration tests: which servers and protocols to run against,
//! one shared server per kind per test binary, and unique key names.
#![allow(dead_code)]

use valkit::testkit::{self, Server, ServerKind};
use valkit::{Connection, Protocol};

/// The server kinds every test runs against: both Valkey and Redis. A missing binary is a
/// test failure with instructions, never a silent skip. `VALKIT_ONLY=valkey|redis`
/// narrows the run for local debugging.
pub fn kinds() -> Vec<ServerKind> {
    match std::env::var("VALKIT_ONLY").ok().as_deref() {
        Some("valkey") => vec![ServerKind::Valkey],
        Some("redis") => vec![ServerKind::Redis],
        _ => vec![ServerKind::Valkey, ServerKind::Redis],
    }
}

/// Every (server kind, protocol) pair.
pub fn combos() -> Vec<(ServerKind, Protocol)> {
    kinds()
        .into_iter()
        .flat_map(|k| [(k, Protocol::Resp3), (k, Protocol::Resp2)])
        .collect()
}

/// The server of this kind shared by the tests of this binary.
pub fn shared(kind: ServerKind) -> &'static Server {
    match testkit::shared(kind) {
        Ok(s) => s,
        Err(e) => panic!("cannot start a shared {kind:?} server: {e}"),
    }
}

/// A key name no other test uses.
pub fn key(name: &str) -> String {
    testkit::unique_prefix(name)
}

/// Run `test` once per (server kind, protocol), with a fresh connection and a key prefix
/// no other test (or combination) uses.
pub fn each_combo(name: &str, test: impl Fn(&Connection, &str, ServerKind, Protocol)) {
    for (kind, proto) in combos() {
        let mut cfg = shared(kind).config();
        cfg.protocol = proto;
        let conn = Connection::open(&cfg).unwrap();
        let prefix = key(&format!("{name}:{}:{proto:?}", kind.name()));
        eprintln!("-- {name} on {kind:?} {proto:?}, prefix {prefix}");
        test(&conn, &prefix, kind, proto);
    }
}

/// The names of this process's threads (Linux: `/proc/self/task/*/comm`, 15 bytes at most).
pub fn thread_names() -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
        for e in dir.flatten() {
            if let Ok(n) = std::fs::read_to_string(e.path().join("comm")) {
                out.push(n.trim().to_owned());
            }
        }
    }
    out
}
