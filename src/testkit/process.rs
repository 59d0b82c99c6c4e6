//! Child-process plumbing shared by servers and TLS fronts: signals through the `kill`
//! command (no libc), waiting with a deadline, and the orphan watchdog.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// Send `signal` (e.g. `"TERM"`, `"STOP"`, `"CONT"`) to `pid` with the shell's `kill`
/// builtin (always there, unlike `/usr/bin/kill`; and no libc needed).
pub(crate) fn signal(pid: u32, signal: &str) -> io::Result<()> {
    let status = Command::new("sh")
        .args(["-c", "kill -s \"$1\" \"$2\"", "valkit-kill", signal])
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "kill -s {signal} {pid} failed ({status})"
        )))
    }
}

/// Wait for `child` to exit, polling until `deadline` passes. True when it exited.
pub(crate) fn wait_until(child: &mut Child, deadline: Instant) -> bool {
    let mut pause = Duration::from_millis(2);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return true,
            Ok(None) => {}
            Err(_) => return false,
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// SIGKILL and reap. Ignores "already exited".
pub(crate) fn kill_and_wait(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Backoff for readiness polls: 2 ms doubling up to 50 ms. Not a fixed startup sleep;
/// every step re-checks the condition.
pub(crate) struct Backoff(Duration);

impl Backoff {
    pub(crate) fn new() -> Backoff {
        Backoff(Duration::from_millis(2))
    }

    /// Sleep one step, but never past `deadline`.
    pub(crate) fn pause(&mut self, deadline: Instant) {
        let left = deadline.saturating_duration_since(Instant::now());
        std::thread::sleep(self.0.min(left));
        self.0 = (self.0 * 2).min(Duration::from_millis(50));
    }
}

/// Kills processes (and removes a directory) when **this test process** dies, however it
/// dies: normal exit with `static` servers that are never dropped, a panic with
/// `panic = "abort"`, SIGKILL, Ctrl-C.
///
/// It is a tiny `sh` whose stdin is a pipe from us. Nothing is ever written; when our
/// process goes away the kernel closes the write end, `read` returns, and the shell runs
/// `kill -9 <pids>; rm -rf <dir>`. The pipe is close-on-exec on our side, so other
/// children never hold it open. Event-driven: no polling, no sleep loop.
///
/// Dropping the watchdog (the normal path) SIGKILLs the shell first, so it does nothing.
pub(crate) struct Watchdog {
    child: Child,
    _stdin: Option<ChildStdin>,
}

const WATCHDOG_SCRIPT: &str = r#"trap '' INT HUP TERM QUIT
d=$1; shift
read -r _ || :
[ $# -gt 0 ] && kill -9 "$@" 2>/dev/null
[ -n "$d" ] && rm -rf -- "$d"
exit 0"#;

impl Watchdog {
    /// Guard `pids` and (optionally) `dir`. `None` when `sh` cannot be started; the
    /// caller then still cleans up on drop, just not after a crash.
    pub(crate) fn spawn(pids: &[u32], dir: Option<&Path>) -> Option<Watchdog> {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(WATCHDOG_SCRIPT)
            .arg("valkit-watchdog")
            .arg(dir.map(|d| d.as_os_str()).unwrap_or_default());
        for pid in pids {
            cmd.arg(pid.to_string());
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let stdin = child.stdin.take();
        Some(Watchdog {
            child,
            _stdin: stdin,
        })
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        // Kill before closing the pipe, or the shell would run its cleanup.
        kill_and_wait(&mut self.child);
    }
}

/// Connect to `127.0.0.1:port` with short timeouts.
pub(crate) fn connect(port: u16, timeout: Duration) -> io::Result<TcpStream> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// Encode a command as a RESP array of bulk strings.
pub(crate) fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Read one reply that is a simple string, error, integer, null or bulk string, and
/// return its raw bytes (type byte and CRLFs included). Aggregates are not supported.
pub(crate) fn read_reply(r: &mut BufReader<TcpStream>) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line)?;
    if !line.ends_with(b"\r\n") {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    if line.first() == Some(&b'$') {
        let len: i64 = std::str::from_utf8(&line[1..line.len() - 2])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad bulk length"))?;
        if len >= 0 {
            let len = usize::try_from(len)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad bulk length"))?;
            if len > 64 << 20 {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "bulk too large"));
            }
            let start = line.len();
            line.resize(start + len + 2, 0);
            r.read_exact(&mut line[start..])?;
        }
    }
    Ok(line)
}

/// Send commands on one connection and return the raw replies.
pub(crate) fn roundtrip(
    port: u16,
    commands: &[&[&[u8]]],
    timeout: Duration,
) -> io::Result<Vec<Vec<u8>>> {
    let mut s = connect(port, timeout)?;
    let mut buf = Vec::new();
    for c in commands {
        buf.extend_from_slice(&encode(c));
    }
    s.write_all(&buf)?;
    let mut r = BufReader::new(s);
    commands.iter().map(|_| read_reply(&mut r)).collect()
}
