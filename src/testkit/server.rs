//! Throwaway `valkey-server` / `redis-server` processes.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::binaries::ServerKind;
use super::process::{self, kill_and_wait, Backoff, Watchdog};
use super::tempdir::TempDir;
use super::tls::{StartError, TestCerts, TlsFront};
use super::{free_ports, log_tail_of, testkit_error};
use crate::config::{Addr, ConnectionConfig, Secret, TlsConfig};
use crate::error::Result;

/// How long a server gets to answer `PING` after it was started.
const READY_DEADLINE: Duration = Duration::from_secs(10);
/// How often a start is retried on a new port when the chosen one was taken meanwhile.
const ATTEMPTS: usize = 5;
/// How long [`Server::stop`] waits after SIGTERM before it kills.
const STOP_DEADLINE: Duration = Duration::from_secs(10);

/// How to start a [`Server`]. Build with [`ServerOptions::new`] and the setters, then
/// [`ServerOptions::start`].
#[derive(Debug, Clone)]
pub struct ServerOptions {
    kind: ServerKind,
    password: Option<String>,
    unix_socket: bool,
    tls: bool,
    args: Vec<(String, Vec<String>)>,
    replica_of: Option<u16>,
    config_file: Option<PathBuf>,
    user: Option<String>,
}

impl ServerOptions {
    /// Defaults: plain TCP on a free loopback port, no password, no persistence.
    pub fn new(kind: ServerKind) -> ServerOptions {
        ServerOptions {
            kind,
            password: None,
            unix_socket: false,
            tls: false,
            args: Vec::new(),
            replica_of: None,
            config_file: None,
            user: None,
        }
    }

    /// Which server to run.
    pub fn kind(mut self, kind: ServerKind) -> Self {
        self.kind = kind;
        self
    }

    /// Require this password (`requirepass`); `None` for none (the default).
    pub fn password(mut self, password: Option<&str>) -> Self {
        self.password = password.map(str::to_owned);
        self
    }

    /// Also listen on a Unix socket `server.sock` in the server's directory.
    pub fn unix_socket(mut self, on: bool) -> Self {
        self.unix_socket = on;
        self
    }

    /// Also listen with TLS on a second port, with the certificates of
    /// [`TestCerts::get`]. Redis serves TLS itself (`--tls-port`, client certificates
    /// not required); Valkey gets a stunnel [`TlsFront`], because the bundled binary is
    /// built without TLS.
    pub fn tls(mut self, on: bool) -> Self {
        self.tls = on;
        self
    }

    /// An extra configuration directive, passed as `--name value`
    /// (e.g. `arg("maxmemory", "10mb")`).
    pub fn arg(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.args.push((name.into(), vec![value.into()]));
        self
    }

    /// An extra directive with several values, each its own command-line argument:
    /// `--name v1 v2 ...` (e.g. `arg_values("rename-command", ["HELLO", ""])` to disable
    /// HELLO; an empty value is passed as an empty argument).
    pub fn arg_values<V: Into<String>>(
        mut self,
        name: impl Into<String>,
        values: impl IntoIterator<Item = V>,
    ) -> Self {
        let values = values.into_iter().map(Into::into).collect();
        self.args.push((name.into(), values));
        self
    }

    /// Start as a replica of `127.0.0.1:port` (`--replicaof`). Add
    /// `arg("masterauth", ..)` when the primary has a password.
    pub fn replica_of(mut self, port: u16) -> Self {
        self.replica_of = Some(port);
        self
    }

    /// Start from this configuration file (passed first, so the test kit's own directives
    /// and [`ServerOptions::arg`]s still override it: port, bind, dir, logfile). With a
    /// file, persistence (`save`, `appendonly`) is left to the file.
    pub fn config_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.config_file = Some(path.into());
        self
    }

    /// Authenticate as this ACL user, with the [`ServerOptions::password`], instead of the
    /// `default` user: for servers whose users come from a [`ServerOptions::config_file`]
    /// (or `arg_values("user", ..)`). `requirepass` is then not set; the readiness check,
    /// [`Server::url`] and [`Server::config`] use `AUTH user password`.
    pub fn user(mut self, user: &str) -> Self {
        self.user = Some(user.to_owned());
        self
    }

    /// Start the server and wait until it answers.
    pub fn start(self) -> Result<Server> {
        Server::start_with(self)
    }
}

/// A server process on `127.0.0.1`, with its own temp dir (working dir, log, socket).
///
/// Started with `--save "" --appendonly no` (no persistence), `--protected-mode no`,
/// `--enable-debug-command yes`, logging to `server.log` in its dir. Ready means it
/// answered `INFO server` with its own `process_id` (so a stray server that grabbed the
/// port is never mistaken for ours).
///
/// Drop kills the process (and the TLS front), waits for them, and removes the dir.
/// If the test process dies without dropping it, a watchdog does the same (see
/// [`shared`]).
#[derive(Debug)]
pub struct Server {
    opts: ServerOptions,
    binary: PathBuf,
    port: u16,
    tls_port: Option<u16>,
    certs: Option<&'static TestCerts>,
    proc: Mutex<Option<ServerProc>>,
    front: Option<TlsFront>,
    dir: TempDir,
}

#[derive(Debug)]
struct ServerProc {
    child: Child,
    watchdog: Option<WatchdogDebug>,
}

struct WatchdogDebug(#[allow(dead_code)] Watchdog);

impl std::fmt::Debug for WatchdogDebug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Watchdog")
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        // Watchdog first: once it is gone nothing else will signal the pid.
        drop(self.watchdog.take());
        kill_and_wait(&mut self.child);
    }
}

impl Server {
    /// Start a default server of `kind` (see [`ServerOptions::new`]).
    pub fn start(kind: ServerKind) -> Result<Server> {
        ServerOptions::new(kind).start()
    }

    fn start_with(opts: ServerOptions) -> Result<Server> {
        let binary = opts.kind.binary()?;
        let certs = if opts.tls {
            Some(TestCerts::get()?)
        } else {
            None
        };
        let native_tls = opts.tls && opts.kind.native_tls();
        let mut last = None;
        for _ in 0..ATTEMPTS {
            // A fresh dir per attempt: a failed attempt's dir goes with it.
            let dir = TempDir::new(opts.kind.name())?;
            let ports = free_ports(if native_tls { 2 } else { 1 });
            let mut server = Server {
                opts: opts.clone(),
                binary: binary.clone(),
                port: ports[0],
                tls_port: ports.get(1).copied(),
                certs,
                proc: Mutex::new(None),
                front: None,
                dir,
            };
            match server.spawn_and_wait() {
                Ok(()) => {
                    if opts.tls && !native_tls {
                        let front = TlsFront::start(server.port)?;
                        server.tls_port = Some(front.port());
                        server.front = Some(front);
                    }
                    return Ok(server);
                }
                Err(e) if e.retry => last = Some(e.error),
                Err(e) => return Err(e.error),
            }
        }
        Err(last.unwrap_or_else(|| testkit_error("server did not start")))
    }

    fn args(&self) -> Vec<OsString> {
        let d = self.dir.path();
        let mut a: Vec<OsString> = Vec::new();
        if let Some(f) = &self.opts.config_file {
            a.push(f.clone().into_os_string());
        }
        let mut kv = |k: &str, v: &std::ffi::OsStr| {
            a.push(format!("--{k}").into());
            a.push(v.to_owned());
        };
        kv("port", self.port.to_string().as_ref());
        kv("bind", "127.0.0.1".as_ref());
        kv("dir", d.as_os_str());
        if self.opts.config_file.is_none() {
            kv("save", "".as_ref());
            kv("appendonly", "no".as_ref());
        }
        kv("daemonize", "no".as_ref());
        kv("protected-mode", "no".as_ref());
        kv("enable-debug-command", "yes".as_ref());
        kv("logfile", d.join("server.log").as_os_str());
        if self.opts.unix_socket {
            kv("unixsocket", d.join("server.sock").as_os_str());
            kv("unixsocketperm", "700".as_ref());
        }
        if let (Some(pw), None) = (&self.opts.password, &self.opts.user) {
            kv("requirepass", pw.as_ref());
        }
        if let (Some(tp), Some(c)) = (self.tls_port, self.certs) {
            if self.opts.kind.native_tls() {
                kv("tls-port", tp.to_string().as_ref());
                kv("tls-cert-file", c.server_cert_path().as_os_str());
                kv("tls-key-file", c.server_key_path().as_os_str());
                kv("tls-ca-cert-file", c.ca_cert_path().as_os_str());
                kv("tls-auth-clients", "no".as_ref());
            }
        }
        for (k, values) in &self.opts.args {
            a.push(format!("--{k}").into());
            a.extend(values.iter().map(OsString::from));
        }
        if let Some(p) = self.opts.replica_of {
            a.push("--replicaof".into());
            a.push("127.0.0.1".into());
            a.push(p.to_string().into());
        }
        a
    }

    /// Spawn the process and poll until it answers as itself. `retry` in the error means
    /// the port was taken (bind failure): try another one.
    fn spawn_and_wait(&mut self) -> std::result::Result<(), StartError> {
        let log_path = self.dir.path().join("server.log");
        let open = || {
            fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .map_err(|e| StartError::fatal(format!("open {}: {e}", log_path.display())))
        };
        let child = Command::new(&self.binary)
            .args(self.args())
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(open()?)
            .stderr(open()?)
            .spawn()
            .map_err(|e| StartError::fatal(format!("cannot run {}: {e}", self.binary.display())))?;
        let pid = child.id();
        let watchdog = Watchdog::spawn(&[pid], Some(self.dir.path())).map(WatchdogDebug);
        let mut guard = self.proc.lock();
        let p = guard.insert(ServerProc { child, watchdog });
        let deadline = Instant::now() + READY_DEADLINE;
        let mut backoff = Backoff::new();
        let marker = format!("process_id:{pid}\r\n");
        loop {
            if let Ok(Some(status)) = p.child.try_wait() {
                *guard = None;
                let tail = log_tail_of(&log_path, 20);
                return Err(StartError {
                    retry: tail.contains("in use") || tail.contains("bind:"),
                    error: testkit_error(format!(
                        "{} on 127.0.0.1:{} exited during startup ({status}); tail of {}:\n{tail}",
                        self.binary.display(),
                        self.port,
                        log_path.display()
                    )),
                });
            }
            if self.info_matches(&marker) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                *guard = None;
                let tail = log_tail_of(&log_path, 20);
                return Err(StartError::fatal(format!(
                    "{} on 127.0.0.1:{} did not answer PING within {READY_DEADLINE:?}; tail of {}:\n{tail}",
                    self.binary.display(),
                    self.port,
                    log_path.display()
                )));
            }
            backoff.pause(deadline);
        }
    }

    fn info_matches(&self, marker: &str) -> bool {
        let timeout = Duration::from_millis(500);
        let replies = match (&self.opts.password, &self.opts.user) {
            (Some(pw), Some(user)) => process::roundtrip(
                self.port,
                &[
                    &[b"AUTH", user.as_bytes(), pw.as_bytes()],
                    &[b"INFO", b"server"],
                ],
                timeout,
            ),
            (Some(pw), None) => process::roundtrip(
                self.port,
                &[&[b"AUTH", pw.as_bytes()], &[b"INFO", b"server"]],
                timeout,
            ),
            (None, _) => process::roundtrip(self.port, &[&[b"INFO", b"server"]], timeout),
        };
        match replies {
            Ok(r) => r
                .last()
                .map(|info| String::from_utf8_lossy(info).contains(marker))
                .unwrap_or(false),
            Err(_) => false,
        }
    }

    /// The server kind.
    pub fn kind(&self) -> ServerKind {
        self.opts.kind
    }

    /// The binary this server runs.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// `"127.0.0.1"`.
    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    /// The plain TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The password (`requirepass`), if any.
    pub fn password(&self) -> Option<&str> {
        self.opts.password.as_deref()
    }

    /// `redis://127.0.0.1:<port>`, with `:<password>@` (percent-encoded) when the server
    /// has a password.
    pub fn url(&self) -> String {
        format!("redis://{}127.0.0.1:{}", self.userinfo(), self.port)
    }

    /// `rediss://localhost:<tls_port>` (with the password like [`Server::url`]) when TLS
    /// is on. Clients must trust [`Server::ca_cert_pem`].
    pub fn tls_url(&self) -> Option<String> {
        self.tls_port
            .map(|p| format!("rediss://{}localhost:{p}", self.userinfo()))
    }

    fn userinfo(&self) -> String {
        match (&self.opts.password, &self.opts.user) {
            (Some(pw), Some(user)) => {
                format!("{}:{}@", percent_encode(user), percent_encode(pw))
            }
            (Some(pw), None) => format!(":{}@", percent_encode(pw)),
            (None, _) => String::new(),
        }
    }

    fn with_password(&self, mut c: ConnectionConfig) -> ConnectionConfig {
        c.password = self.opts.password.as_deref().map(Secret::new);
        if c.password.is_some() {
            c.username = self.opts.user.clone();
        }
        c
    }

    /// A plain TCP configuration for this server (password set when it has one).
    pub fn config(&self) -> ConnectionConfig {
        self.with_password(ConnectionConfig::new("127.0.0.1", self.port))
    }

    /// A configuration for the Unix socket, when started with `unix_socket(true)`.
    pub fn unix_config(&self) -> Option<ConnectionConfig> {
        let path = self.unix_socket_path()?;
        Some(self.with_password(ConnectionConfig::with_addr(Addr::Unix(path))))
    }

    /// The Unix socket path, when started with `unix_socket(true)`.
    pub fn unix_socket_path(&self) -> Option<PathBuf> {
        self.opts
            .unix_socket
            .then(|| self.dir.path().join("server.sock"))
    }

    /// A TLS configuration (`localhost:<tls_port>`, trusting the test CA) when started
    /// with `tls(true)`.
    pub fn tls_config(&self) -> Option<ConnectionConfig> {
        let port = self.tls_port?;
        let certs = self.certs?;
        let mut c = self.with_password(ConnectionConfig::new("localhost", port));
        c.tls = Some(TlsConfig {
            ca_certs_pem: vec![certs.ca_pem().to_vec()],
            ..Default::default()
        });
        Some(c)
    }

    /// The TLS port, when started with `tls(true)`.
    pub fn tls_port(&self) -> Option<u16> {
        self.tls_port
    }

    /// The CA certificate (PEM) that signed the server certificate, when TLS is on.
    pub fn ca_cert_pem(&self) -> Option<Vec<u8>> {
        self.certs.map(|c| c.ca_pem().to_vec())
    }

    /// The certificates in use, when TLS is on.
    pub fn certs(&self) -> Option<&'static TestCerts> {
        self.certs
    }

    /// The stunnel front, for Valkey with TLS.
    pub fn tls_front(&self) -> Option<&TlsFront> {
        self.front.as_ref()
    }

    /// The server's directory (working dir, `server.log`, `server.sock`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The process id, while a process is running (or dead but not yet reaped by `kill`).
    pub fn pid(&self) -> Option<u32> {
        self.proc.lock().as_ref().map(|p| p.child.id())
    }

    /// Whether the server process is alive (a paused one is alive).
    pub fn is_running(&self) -> bool {
        match self.proc.lock().as_mut() {
            Some(p) => matches!(p.child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// SIGKILL the server (and its TLS front) and wait for them: a crash.
    pub fn kill(&mut self) {
        *self.proc.get_mut() = None;
        if let Some(f) = self.front.as_mut() {
            f.kill();
        }
    }

    /// Graceful stop: SIGTERM, then wait up to 10 s (SIGKILL after that, reported as an
    /// error). Also stops the TLS front.
    pub fn stop(&mut self) -> Result<()> {
        let mut result = Ok(());
        if let Some(mut p) = self.proc.get_mut().take() {
            let pid = p.child.id();
            if matches!(p.child.try_wait(), Ok(None)) {
                let _ = process::signal(pid, "TERM");
                // A paused server would never see the TERM.
                let _ = process::signal(pid, "CONT");
                if !process::wait_until(&mut p.child, Instant::now() + STOP_DEADLINE) {
                    result = Err(testkit_error(format!(
                        "server pid {pid} ignored SIGTERM for {STOP_DEADLINE:?}; killed it"
                    )));
                }
            }
            drop(p);
        }
        if let Some(f) = self.front.as_mut() {
            f.kill();
        }
        result
    }

    /// Start the server again on the same port and directory (killing it first if it is
    /// running), wait until it answers, then restart the TLS front if there is one.
    /// Data is gone: there is no persistence.
    pub fn restart(&mut self) -> Result<()> {
        *self.proc.get_mut() = None;
        let deadline = Instant::now() + READY_DEADLINE;
        let mut backoff = Backoff::new();
        loop {
            match self.spawn_and_wait() {
                Ok(()) => break,
                // The port may be held for a moment by someone else; wait for it.
                Err(e) if e.retry && Instant::now() < deadline => backoff.pause(deadline),
                Err(e) => return Err(e.error),
            }
        }
        if let Some(f) = self.front.as_mut() {
            f.restart()?;
        }
        Ok(())
    }

    /// Freeze the server (SIGSTOP): connections stay open but nothing is answered.
    pub fn pause(&self) -> Result<()> {
        self.signal("STOP")
    }

    /// Thaw a paused server (SIGCONT).
    pub fn resume(&self) -> Result<()> {
        self.signal("CONT")
    }

    fn signal(&self, sig: &str) -> Result<()> {
        let pid = self
            .pid()
            .ok_or_else(|| testkit_error(format!("SIG{sig}: the server is not running")))?;
        process::signal(pid, sig).map_err(|e| testkit_error(format!("SIG{sig} to {pid}: {e}")))
    }

    /// The last `n` lines of `server.log`.
    pub fn log_tail(&self, n: usize) -> String {
        log_tail_of(&self.dir.path().join("server.log"), n)
    }

    /// Keep the directory after drop (to read logs of a failed test). The process is
    /// still killed.
    pub fn keep_dir(&mut self) {
        self.dir.keep();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        *self.proc.get_mut() = None;
        self.front = None;
        // `dir` is removed when the field drops, after the processes are gone.
    }
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One server of `kind` per test process, started on first use and shared by all tests
/// in that process. Use it for tests that only need *a* server; give keys a
/// [`unique_prefix`](super::unique_prefix) and never flush, kill or reconfigure it.
///
/// Cleanup: a `static` is never dropped, so each server process is paired with a
/// watchdog shell whose stdin is a pipe from the test process. When the test process
/// exits (or crashes), the pipe closes, and the watchdog SIGKILLs the server and removes
/// its temp dir. Nothing polls.
pub fn shared(kind: ServerKind) -> Result<&'static Server> {
    static SHARED: [OnceLock<std::result::Result<Server, String>>; 2] =
        [OnceLock::new(), OnceLock::new()];
    SHARED[kind as usize]
        .get_or_init(|| Server::start(kind).map_err(|e| e.detail().to_owned()))
        .as_ref()
        .map_err(|d| testkit_error(format!("shared {kind} server: {d}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding() {
        assert_eq!(percent_encode("a-b_c.d~"), "a-b_c.d~");
        assert_eq!(percent_encode("p@ss:w/rd"), "p%40ss%3Aw%2Frd");
    }
}
