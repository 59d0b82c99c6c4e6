//! The scripted fake server (documented on [`FakeServer`]).

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::testkit_error;
use crate::config::{ConnectionConfig, Protocol};
use crate::error::Result;
use crate::resp::{Decoder, Value};

const POLL: Duration = Duration::from_millis(20);
/// Most connections served at once; more are closed on accept.
const MAX_CONNECTIONS: usize = 64;

/// One step of a per-connection script.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// Read one request frame (a RESP array of bulk strings) and record it. The script
    /// ends if the client closes first.
    Read,
    /// Write these bytes.
    Reply(Vec<u8>),
    /// Write these bytes in pieces of `piece` bytes, sleeping `delay` between pieces.
    ReplySliced {
        /// The bytes.
        bytes: Vec<u8>,
        /// Piece size (at least 1).
        piece: usize,
        /// Pause between pieces.
        delay: Duration,
    },
    /// Sleep (the connection stays open, nothing is read).
    Sleep(Duration),
    /// Close the connection both ways.
    Close,
    /// Keep the connection open and silent until the client closes or the server stops.
    Hang,
    /// Start the script over (only after at least one [`Step::Read`], so it cannot spin).
    Repeat,
}

struct Shared {
    stop: AtomicBool,
    requests: Mutex<Vec<Vec<Vec<u8>>>>,
    accepted: AtomicU64,
    conns: Mutex<Vec<(TcpStream, JoinHandle<()>)>>,
}

/// A scripted fake server: accepts connections on `127.0.0.1:<free port>` and runs a list
/// of [`Step`]s on each, for protocol-level faults no real server produces on demand
/// (hostile lengths, garbage, half frames, never answering, replies in pieces).
///
/// ```no_run
/// use valkit::testkit::{FakeServer, Step};
/// use valkit::{cmd, Connection, Execute};
///
/// # fn main() -> valkit::Result<()> {
/// // Answer every request with +OK.
/// let fake = FakeServer::replying(b"+OK\r\n")?;
/// let conn = Connection::open(&fake.config())?; // RESP2: no handshake to script
/// conn.exec(&cmd("PING"))?;
/// assert_eq!(fake.requests()[0], vec![b"PING".to_vec()]);
///
/// // Read one request, send half a bulk string, close.
/// let fake = FakeServer::start(vec![Step::Read, Step::Reply(b"$10\r\nabc".to_vec()), Step::Close])?;
/// # let _ = fake; Ok(()) }
/// ```
///
/// Requests are decoded with the crate's own decoder (so pipelined requests are read one
/// frame at a time) and recorded for assertions. Threads: one acceptor (`vk-fake-acc`) and
/// one per connection (`vk-fake-conn`), all stopped and joined on drop; sockets poll with
/// 20 ms timeouts.
pub struct FakeServer {
    port: u16,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl FakeServer {
    /// Run `script` on every connection. When the script ends, the connection is closed.
    ///
    /// # Errors
    /// [`crate::ErrorKind::Testkit`] when no port can be bound or no thread spawned.
    pub fn start(script: Vec<Step>) -> Result<FakeServer> {
        FakeServer::start_each(vec![script])
    }

    /// The `n`th connection runs `scripts[n]`; connections after the last script run the
    /// last one again.
    ///
    /// # Errors
    /// As [`FakeServer::start`]; also when `scripts` is empty.
    pub fn start_each(scripts: Vec<Vec<Step>>) -> Result<FakeServer> {
        if scripts.is_empty() {
            return Err(testkit_error("fake server: no script"));
        }
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(|e| testkit_error(format!("fake server: bind: {e}")))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| testkit_error(format!("fake server: set_nonblocking: {e}")))?;
        let port = listener
            .local_addr()
            .map_err(|e| testkit_error(format!("fake server: local_addr: {e}")))?
            .port();
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            requests: Mutex::new(Vec::new()),
            accepted: AtomicU64::new(0),
            conns: Mutex::new(Vec::new()),
        });
        let sh = Arc::clone(&shared);
        let acceptor = thread::Builder::new()
            .name(format!("vk-fake-acc-{port}"))
            .spawn(move || accept_loop(&listener, &scripts, &sh))
            .map_err(|e| testkit_error(format!("fake server: spawn: {e}")))?;
        Ok(FakeServer {
            port,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// Answer every request on every connection with `reply`.
    ///
    /// # Errors
    /// As [`FakeServer::start`].
    pub fn replying(reply: &[u8]) -> Result<FakeServer> {
        FakeServer::start(vec![Step::Read, Step::Reply(reply.to_vec()), Step::Repeat])
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A config for `127.0.0.1:<port>` speaking RESP2 with no credentials, name or
    /// database, so the connection sends no handshake and the script sees only the
    /// test's own commands.
    pub fn config(&self) -> ConnectionConfig {
        let mut c = ConnectionConfig::new("127.0.0.1", self.port);
        c.protocol = Protocol::Resp2;
        c
    }

    /// Every request read so far, over all connections, as argument lists.
    pub fn requests(&self) -> Vec<Vec<Vec<u8>>> {
        self.shared.requests.lock().clone()
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }
}

impl std::fmt::Debug for FakeServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeServer")
            .field("port", &self.port)
            .field("accepted", &self.accepted())
            .finish()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
        let conns = std::mem::take(&mut *self.shared.conns.lock());
        for (s, _) in &conns {
            let _ = s.shutdown(Shutdown::Both);
        }
        for (_, h) in conns {
            let _ = h.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, scripts: &[Vec<Step>], sh: &Arc<Shared>) {
    let mut n = 0usize;
    while !sh.stop.load(Ordering::SeqCst) {
        {
            // Join connections that ended.
            let mut conns = sh.conns.lock();
            let (done, live): (Vec<_>, Vec<_>) = std::mem::take(&mut *conns)
                .into_iter()
                .partition(|c| c.1.is_finished());
            *conns = live;
            drop(conns);
            for (_, h) in done {
                let _ = h.join();
            }
        }
        match listener.accept() {
            Ok((s, _)) => {
                sh.accepted.fetch_add(1, Ordering::SeqCst);
                let script = scripts[n.min(scripts.len() - 1)].clone();
                n += 1;
                if sh.conns.lock().len() >= MAX_CONNECTIONS {
                    let _ = s.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(handle) = s.try_clone() else {
                    let _ = s.shutdown(Shutdown::Both);
                    continue;
                };
                let sh2 = Arc::clone(sh);
                let spawned = thread::Builder::new()
                    .name(format!("vk-fake-conn-{n}"))
                    .spawn(move || serve(s, &script, &sh2));
                match spawned {
                    Ok(h) => sh.conns.lock().push((handle, h)),
                    Err(_) => {
                        let _ = handle.shutdown(Shutdown::Both);
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(2));
            }
            Err(_) => thread::sleep(POLL),
        }
    }
}

fn serve(mut s: TcpStream, script: &[Step], sh: &Shared) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(POLL));
    let _ = s.set_write_timeout(Some(POLL));
    let mut decoder = Decoder::new();
    let mut buf = vec![0u8; 16 * 1024];
    let stopped = || sh.stop.load(Ordering::SeqCst);
    let mut i = 0;
    let mut read_since_start = false;
    'script: while let Some(step) = script.get(i) {
        i += 1;
        match step {
            Step::Read => {
                read_since_start = true;
                let req = loop {
                    match decoder.next_value() {
                        Ok(Some(v)) => break v,
                        Ok(None) => {}
                        Err(_) => break 'script,
                    }
                    if stopped() {
                        break 'script;
                    }
                    match s.read(&mut buf) {
                        Ok(0) => break 'script,
                        Ok(n) => decoder.feed(&buf[..n]),
                        Err(e) if is_timeout(&e) => {}
                        Err(_) => break 'script,
                    }
                };
                sh.requests.lock().push(args_of(req));
            }
            Step::Reply(bytes) => {
                if !write_all(&mut s, bytes, &stopped) {
                    break;
                }
            }
            Step::ReplySliced {
                bytes,
                piece,
                delay,
            } => {
                for p in bytes.chunks((*piece).max(1)) {
                    if !write_all(&mut s, p, &stopped) || !nap(*delay, &stopped) {
                        break 'script;
                    }
                }
            }
            Step::Sleep(d) => {
                if !nap(*d, &stopped) {
                    break;
                }
            }
            Step::Close => break,
            Step::Hang => {
                // Read and discard until the client closes: never answer.
                loop {
                    if stopped() {
                        break 'script;
                    }
                    match s.read(&mut buf) {
                        Ok(0) => break 'script,
                        Ok(_) => {}
                        Err(e) if is_timeout(&e) => {}
                        Err(_) => break 'script,
                    }
                }
            }
            Step::Repeat => {
                if read_since_start {
                    i = 0;
                    read_since_start = false;
                }
            }
        }
    }
    let _ = s.shutdown(Shutdown::Both);
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

fn write_all(s: &mut TcpStream, mut data: &[u8], stopped: &impl Fn() -> bool) -> bool {
    while !data.is_empty() {
        if stopped() {
            return false;
        }
        match s.write(data) {
            Ok(0) => return false,
            Ok(n) => data = &data[n..],
            Err(e) if is_timeout(&e) => {}
            Err(_) => return false,
        }
    }
    true
}

fn nap(d: Duration, stopped: &impl Fn() -> bool) -> bool {
    let until = Instant::now() + d;
    loop {
        if stopped() {
            return false;
        }
        let now = Instant::now();
        if now >= until {
            return true;
        }
        thread::sleep((until - now).min(POLL));
    }
}

/// A request as its arguments (bulk strings; anything else in its text form).
fn args_of(v: Value) -> Vec<Vec<u8>> {
    match v {
        Value::Array(items) => items
            .into_iter()
            .map(|a| match a {
                Value::Bulk(b) => b.into_vec(),
                other => format!("{other:?}").into_bytes(),
            })
            .collect(),
        other => vec![format!("{other:?}").into_bytes()],
    }
}
