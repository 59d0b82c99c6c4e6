//! The fault-injecting proxy (documented on [`FaultProxy`]).

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::testkit_error;
use crate::config::{Addr, ConnectionConfig};
use crate::error::Result;

/// Most connections open through one proxy at a time; more are closed on accept.
pub const MAX_CONNECTIONS: usize = 128;
/// How often blocked pumps and the acceptor look at their flags.
const POLL: Duration = Duration::from_millis(20);
/// Size of one pump read.
const CHUNK: usize = 16 * 1024;
/// How long the proxy waits for the upstream connect.
const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Which way bytes flow through the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client → server (requests).
    Upstream,
    /// Server → client (replies).
    Downstream,
    /// Both ways (for setters: apply to both; for counters: the sum).
    Both,
}

impl Direction {
    fn includes(self, d: Direction) -> bool {
        self == Direction::Both || self == d
    }
}

/// The faults applied to one direction. All off by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Toxics {
    /// Sleep this long before forwarding each chunk.
    pub latency: Duration,
    /// Forward at most this many bytes per second (`None`: unlimited).
    pub bandwidth: Option<u64>,
    /// Forward this many more bytes on each connection, then close it both ways
    /// (`None`: no limit). Counted from when the limit was set (or from the start of
    /// connections opened later).
    pub limit_data: Option<u64>,
    /// Write each chunk in pieces of this many bytes (`0` means off), sleeping
    /// [`Toxics::slice_delay`] between pieces.
    pub slice: usize,
    /// Pause between slices.
    pub slice_delay: Duration,
    /// Stop forwarding (keep the sockets open) until cleared: a black hole.
    pub hold: bool,
}

#[derive(Default)]
struct ToxicState {
    up: Toxics,
    down: Toxics,
    /// Bumped whenever a `limit_data` is set, so pumps restart their counts.
    limit_epoch: u64,
    down_flag: bool,
}

impl ToxicState {
    fn get(&self, d: Direction) -> &Toxics {
        match d {
            Direction::Downstream => &self.down,
            _ => &self.up,
        }
    }
}

struct ConnEntry {
    id: u64,
    client: TcpStream,
    server: TcpStream,
    closed: Arc<AtomicBool>,
    pumps: Vec<JoinHandle<()>>,
}

impl ConnEntry {
    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let _ = self.client.shutdown(Shutdown::Both);
        let _ = self.server.shutdown(Shutdown::Both);
    }
}

struct Shared {
    toxics: Mutex<ToxicState>,
    stop: AtomicBool,
    /// True while the acceptor holds a listener (not "down").
    listening: AtomicBool,
    conns: Mutex<Vec<ConnEntry>>,
    accepted: AtomicU64,
    refused: AtomicU64,
    open: AtomicUsize,
    /// Connections beyond this many open are closed at once (see
    /// [`FaultProxy::max_connections`]); at most [`MAX_CONNECTIONS`].
    cap: AtomicUsize,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
}

/// A fault-injecting TCP proxy on `127.0.0.1:<free port>` in front of
/// `127.0.0.1:<upstream port>`.
///
/// An in-process, loopback-only TCP proxy that injects faults (the toxiproxy model).
///
/// For each accepted client the proxy connects to the upstream port and runs two named
/// pump threads: `vk-proxy-up` (client → server) and `vk-proxy-down` (server → client).
/// Every chunk a pump reads is checked against the current [`Toxics`] of its direction,
/// so faults can be switched on and off while connections are open.
///
/// ```no_run
/// use std::time::Duration;
/// use valkit::testkit::{Direction, FaultProxy, Server, ServerKind};
///
/// # fn main() -> valkit::Result<()> {
/// let server = Server::start(ServerKind::from_env())?;
/// let proxy = FaultProxy::start(server.port())?;
/// let config = proxy.config(); // 127.0.0.1:<proxy port>
/// proxy.latency(Direction::Downstream, Duration::from_millis(20));
/// proxy.limit_data(Direction::Downstream, Some(100)); // "killed mid-reply"
/// proxy.cut(); // close every current connection, both ways
/// proxy.set_down(true); // new connections are refused
/// # let _ = config; Ok(()) }
/// ```
///
/// # Limits of the model
///
/// * "Cut" and "limit data" close with `shutdown(Both)`, so the client sees a FIN (EOF),
///   or a reset only if it writes afterwards. A true RST on close needs `SO_LINGER=0`,
///   which stable `std` does not offer (`TcpStream::set_linger` is unstable) and the crate
///   forbids `unsafe`.
/// * Latency is applied per chunk, one chunk after another (not pipelined).
/// * While a direction is held, its pump stops reading: bytes pile up in kernel buffers
///   and are forwarded, in order, once the hold is released.
///
/// Threads: one acceptor plus two per open connection (at most [`MAX_CONNECTIONS`]
/// connections; more are closed at once). Pumps poll with 20 ms socket timeouts, so a
/// toxic change, [`FaultProxy::cut`] or the drop of the proxy is seen within about that
/// long. Dropping the proxy closes everything and joins every thread.
pub struct FaultProxy {
    port: u16,
    upstream: u16,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Listen on a free loopback port and forward every connection to
    /// `127.0.0.1:upstream_port`, with no toxics.
    ///
    /// # Errors
    /// [`crate::ErrorKind::Testkit`] when the listener cannot be bound or the thread not
    /// spawned.
    pub fn start(upstream_port: u16) -> Result<FaultProxy> {
        let listener = bind(0)?;
        let port = listener
            .local_addr()
            .map_err(|e| testkit_error(format!("fault proxy: local_addr: {e}")))?
            .port();
        let shared = Arc::new(Shared {
            toxics: Mutex::new(ToxicState::default()),
            stop: AtomicBool::new(false),
            listening: AtomicBool::new(true),
            conns: Mutex::new(Vec::new()),
            accepted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            open: AtomicUsize::new(0),
            cap: AtomicUsize::new(MAX_CONNECTIONS),
            bytes_up: AtomicU64::new(0),
            bytes_down: AtomicU64::new(0),
        });
        let sh = Arc::clone(&shared);
        let acceptor = thread::Builder::new()
            .name(format!("vk-proxy-acc-{port}"))
            .spawn(move || accept_loop(listener, port, upstream_port, &sh))
            .map_err(|e| testkit_error(format!("fault proxy: spawn: {e}")))?;
        Ok(FaultProxy {
            port,
            upstream: upstream_port,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// The port the proxy listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The upstream port it forwards to.
    pub fn upstream_port(&self) -> u16 {
        self.upstream
    }

    /// A default [`ConnectionConfig`] for `127.0.0.1:<proxy port>`.
    pub fn config(&self) -> ConnectionConfig {
        ConnectionConfig::new("127.0.0.1", self.port)
    }

    /// `base` (credentials, protocol, timeouts ...) pointed at the proxy instead.
    pub fn config_for(&self, base: &ConnectionConfig) -> ConnectionConfig {
        let mut c = base.clone();
        c.addr = Addr::Tcp {
            host: "127.0.0.1".into(),
            port: self.port,
        };
        c.tls = None;
        c
    }

    /// The toxics of one direction now (`Both` reads upstream's).
    pub fn toxics(&self, dir: Direction) -> Toxics {
        self.shared.toxics.lock().get(dir).clone()
    }

    /// Change the toxics of `dir` (both directions for [`Direction::Both`]).
    pub fn update(&self, dir: Direction, f: impl Fn(&mut Toxics)) {
        let mut t = self.shared.toxics.lock();
        let before = (t.up.limit_data, t.down.limit_data);
        if dir.includes(Direction::Upstream) {
            f(&mut t.up);
        }
        if dir.includes(Direction::Downstream) {
            f(&mut t.down);
        }
        if (t.up.limit_data, t.down.limit_data) != before {
            t.limit_epoch = t.limit_epoch.wrapping_add(1);
        }
    }

    /// Sleep `d` before forwarding each chunk (`Duration::ZERO`: off).
    pub fn latency(&self, dir: Direction, d: Duration) {
        self.update(dir, |t| t.latency = d);
    }

    /// Limit throughput to `bytes_per_sec` (`None`: unlimited).
    pub fn bandwidth(&self, dir: Direction, bytes_per_sec: Option<u64>) {
        self.update(dir, |t| t.bandwidth = bytes_per_sec.filter(|b| *b > 0));
    }

    /// After `bytes` more bytes in `dir` on a connection, close it both ways (`None`: off).
    /// `limit_data(Downstream, Some(n))` is "the server was killed mid-reply".
    pub fn limit_data(&self, dir: Direction, bytes: Option<u64>) {
        self.update(dir, |t| t.limit_data = bytes);
        // Setting the same limit again also restarts the counts.
        let mut t = self.shared.toxics.lock();
        t.limit_epoch = t.limit_epoch.wrapping_add(1);
    }

    /// Write in pieces of `piece` bytes with `delay` between them (`piece == 0`: off).
    pub fn slicer(&self, dir: Direction, piece: usize, delay: Duration) {
        self.update(dir, |t| {
            t.slice = piece;
            t.slice_delay = delay;
        });
    }

    /// Stop (`true`) or resume (`false`) forwarding, keeping the sockets open.
    pub fn hold(&self, dir: Direction, on: bool) {
        self.update(dir, |t| t.hold = on);
    }

    /// Remove every toxic in both directions and accept connections again.
    /// Waits for the listener to be back when the proxy was down.
    pub fn clear(&self) {
        let was_down = {
            let mut t = self.shared.toxics.lock();
            t.up = Toxics::default();
            t.down = Toxics::default();
            t.limit_epoch = t.limit_epoch.wrapping_add(1);
            t.down_flag
        };
        if was_down {
            self.set_down(false);
        }
    }

    /// "Down": close the listener so new connects are refused (`ECONNREFUSED`), or bind
    /// it again on the same port. Open connections are left alone (see [`FaultProxy::cut`]).
    /// Takes effect within about 20 ms; this call waits for that.
    pub fn set_down(&self, down: bool) {
        self.shared.toxics.lock().down_flag = down;
        self.wait_listening(!down);
    }

    /// Wait (up to 2 s) for the acceptor to have bound or dropped its listener.
    fn wait_listening(&self, up: bool) {
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.shared.listening.load(Ordering::SeqCst) != up && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(1));
        }
    }

    /// Close every current connection both ways, now (the client sees EOF; a write after
    /// that gets a reset). New connections are still accepted.
    pub fn cut(&self) {
        for c in self.shared.conns.lock().iter() {
            c.close();
        }
    }

    /// "Full, and rude about it": while `cap` connections are open, close every new
    /// connection at once, before a byte is exchanged (the client's handshake sees EOF or
    /// a reset, not a server's "max number of clients" reply). `None` restores the
    /// default, [`MAX_CONNECTIONS`]. Open connections are left alone.
    pub fn max_connections(&self, cap: Option<usize>) {
        let cap = cap.unwrap_or(MAX_CONNECTIONS).min(MAX_CONNECTIONS);
        self.shared.cap.store(cap, Ordering::SeqCst);
    }

    /// Connections open through the proxy now.
    pub fn connections(&self) -> usize {
        self.shared.open.load(Ordering::SeqCst)
    }

    /// Connections accepted since the start (including ones closed since).
    pub fn accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Connections closed at once because the cap was reached (see
    /// [`FaultProxy::max_connections`]) or the upstream
    /// could not be reached.
    pub fn rejected(&self) -> u64 {
        self.shared.refused.load(Ordering::SeqCst)
    }

    /// Bytes forwarded in `dir` since the start, over all connections.
    pub fn bytes_forwarded(&self, dir: Direction) -> u64 {
        let up = self.shared.bytes_up.load(Ordering::SeqCst);
        let down = self.shared.bytes_down.load(Ordering::SeqCst);
        match dir {
            Direction::Upstream => up,
            Direction::Downstream => down,
            Direction::Both => up + down,
        }
    }
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("port", &self.port)
            .field("upstream", &self.upstream)
            .field("connections", &self.connections())
            .finish()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
        let conns: Vec<ConnEntry> = std::mem::take(&mut *self.shared.conns.lock());
        for c in &conns {
            c.close();
        }
        for c in conns {
            for p in c.pumps {
                let _ = p.join();
            }
        }
    }
}

fn bind(port: u16) -> Result<TcpListener> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
        .map_err(|e| testkit_error(format!("fault proxy: bind 127.0.0.1:{port}: {e}")))?;
    l.set_nonblocking(true)
        .map_err(|e| testkit_error(format!("fault proxy: set_nonblocking: {e}")))?;
    Ok(l)
}

fn accept_loop(listener: TcpListener, port: u16, upstream: u16, sh: &Arc<Shared>) {
    let mut listener = Some(listener);
    let mut next_id = 0u64;
    while !sh.stop.load(Ordering::SeqCst) {
        reap(sh);
        let down = sh.toxics.lock().down_flag;
        if down {
            // Dropping the listener makes the port refuse connections.
            listener = None;
            sh.listening.store(false, Ordering::SeqCst);
            thread::sleep(Duration::from_millis(2));
            continue;
        }
        let Some(l) = listener.as_ref() else {
            // Back up: std sets SO_REUSEADDR, so the same port can be bound again.
            match bind(port) {
                Ok(l) => {
                    listener = Some(l);
                    sh.listening.store(true, Ordering::SeqCst);
                }
                Err(e) => {
                    log::warn!("{e}");
                    thread::sleep(POLL);
                }
            }
            continue;
        };
        match l.accept() {
            Ok((client, _)) => {
                next_id += 1;
                sh.accepted.fetch_add(1, Ordering::SeqCst);
                open_conn(sh, client, upstream, next_id);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(2));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                log::debug!("fault proxy accept: {e}");
                thread::sleep(POLL);
            }
        }
    }
}

/// Join the pumps of connections that ended.
fn reap(sh: &Shared) {
    let mut conns = sh.conns.lock();
    let mut i = 0;
    while i < conns.len() {
        if conns[i].pumps.iter().all(|p| p.is_finished()) {
            let c = conns.swap_remove(i);
            for p in c.pumps {
                let _ = p.join();
            }
        } else {
            i += 1;
        }
    }
}

fn open_conn(sh: &Arc<Shared>, client: TcpStream, upstream: u16, id: u64) {
    let reject = |client: &TcpStream| {
        sh.refused.fetch_add(1, Ordering::SeqCst);
        let _ = client.shutdown(Shutdown::Both);
    };
    if sh.open.load(Ordering::SeqCst) >= sh.cap.load(Ordering::SeqCst) {
        return reject(&client);
    }
    let _ = client.set_nonblocking(false);
    let server = match TcpStream::connect_timeout(
        &SocketAddr::from((Ipv4Addr::LOCALHOST, upstream)),
        UPSTREAM_CONNECT_TIMEOUT,
    ) {
        Ok(s) => s,
        Err(e) => {
            log::debug!("fault proxy: upstream {upstream}: {e}");
            return reject(&client);
        }
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let clones = (|| {
        Ok::<_, io::Error>((
            client.try_clone()?,
            client.try_clone()?,
            server.try_clone()?,
            server.try_clone()?,
        ))
    })();
    let Ok((c_read, c_write, s_read, s_write)) = clones else {
        return reject(&client);
    };
    let closed = Arc::new(AtomicBool::new(false));
    sh.open.fetch_add(1, Ordering::SeqCst);
    // The last pump to finish counts the connection as closed.
    let live = Arc::new(AtomicUsize::new(2));
    let mut pumps = Vec::with_capacity(2);
    for (dir, src, dst, name) in [
        (Direction::Upstream, c_read, s_write, "up"),
        (Direction::Downstream, s_read, c_write, "down"),
    ] {
        let p = Pump {
            dir,
            src,
            dst,
            sh: Arc::clone(sh),
            closed: Arc::clone(&closed),
        };
        let live2 = Arc::clone(&live);
        let sh2 = Arc::clone(sh);
        let spawned = thread::Builder::new()
            .name(format!("vk-proxy-{name}-{id}"))
            .spawn(move || {
                p.run();
                if live2.fetch_sub(1, Ordering::SeqCst) == 1 {
                    sh2.open.fetch_sub(1, Ordering::SeqCst);
                }
            });
        match spawned {
            Ok(h) => pumps.push(h),
            Err(e) => {
                log::warn!("fault proxy: spawn pump: {e}");
                closed.store(true, Ordering::SeqCst);
                let _ = client.shutdown(Shutdown::Both);
                let _ = server.shutdown(Shutdown::Both);
                if live.fetch_sub(1, Ordering::SeqCst) == 1 {
                    sh.open.fetch_sub(1, Ordering::SeqCst);
                }
            }
        }
    }
    sh.conns.lock().push(ConnEntry {
        id,
        client,
        server,
        closed,
        pumps,
    });
}

struct Pump {
    dir: Direction,
    src: TcpStream,
    dst: TcpStream,
    sh: Arc<Shared>,
    closed: Arc<AtomicBool>,
}

impl Pump {
    fn alive(&self) -> bool {
        !self.sh.stop.load(Ordering::SeqCst) && !self.closed.load(Ordering::SeqCst)
    }

    /// Close the whole connection, both sockets both ways.
    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let _ = self.src.shutdown(Shutdown::Both);
        let _ = self.dst.shutdown(Shutdown::Both);
    }

    /// Sleep up to `d`, waking early when the connection ends. False if it ended.
    fn nap(&self, d: Duration) -> bool {
        let until = Instant::now() + d;
        loop {
            if !self.alive() {
                return false;
            }
            let now = Instant::now();
            if now >= until {
                return true;
            }
            thread::sleep((until - now).min(POLL));
        }
    }

    fn toxics(&self) -> (Toxics, u64) {
        let t = self.sh.toxics.lock();
        (t.get(self.dir).clone(), t.limit_epoch)
    }

    fn counter(&self) -> &AtomicU64 {
        match self.dir {
            Direction::Downstream => &self.sh.bytes_down,
            _ => &self.sh.bytes_up,
        }
    }

    fn run(self) {
        let _ = self.src.set_read_timeout(Some(POLL));
        let _ = self.dst.set_write_timeout(Some(POLL));
        let mut buf = vec![0u8; CHUNK];
        // Bytes forwarded since the limit epoch `epoch`.
        let mut epoch = self.toxics().1;
        let mut since_limit = 0u64;
        while self.alive() {
            if self.toxics().0.hold {
                thread::sleep(Duration::from_millis(2));
                continue;
            }
            let n = match (&self.src).read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) =>
                {
                    continue
                }
                Err(_) => break,
            };
            // A hold set while the read was pending keeps this chunk until released.
            let mut t = loop {
                let (t, e) = self.toxics();
                if e != epoch {
                    epoch = e;
                    since_limit = 0;
                }
                if !t.hold || !self.alive() {
                    break t;
                }
                thread::sleep(Duration::from_millis(2));
            };
            if !t.latency.is_zero() && !self.nap(t.latency) {
                break;
            }
            let mut chunk = &buf[..n];
            let mut cut_after = false;
            if let Some(limit) = t.limit_data {
                let left = limit.saturating_sub(since_limit);
                if (chunk.len() as u64) >= left {
                    chunk = &chunk[..left as usize];
                    cut_after = true;
                }
            }
            if t.slice == 0 && t.bandwidth.is_none() {
                if !self.write(chunk) {
                    break;
                }
                since_limit += chunk.len() as u64;
            } else {
                // Pieces: the slicer's size, or for bandwidth alone about 1/50 s of data.
                let piece = match (t.slice, t.bandwidth) {
                    (0, Some(bw)) => (bw / 50).max(1) as usize,
                    (s, _) => s,
                };
                let mut ok = true;
                for p in chunk.chunks(piece) {
                    let started = Instant::now();
                    if !self.write(p) {
                        ok = false;
                        break;
                    }
                    since_limit += p.len() as u64;
                    let mut wait = t.slice_delay;
                    if let Some(bw) = t.bandwidth {
                        let due = Duration::from_secs_f64(p.len() as f64 / bw as f64);
                        wait = wait.max(due.saturating_sub(started.elapsed()));
                    }
                    if !wait.is_zero() && !self.nap(wait) {
                        ok = false;
                        break;
                    }
                    // Toxics may change mid-chunk (e.g. the slicer switched off).
                    t = self.toxics().0;
                }
                if !ok {
                    break;
                }
            }
            if cut_after {
                break;
            }
        }
        self.close();
    }

    /// Write all of `data`, giving up when the connection ends. The bytes are counted
    /// before they are written (and uncounted if the write fails), so whoever has
    /// received them also sees them in [`FaultProxy::bytes_forwarded`].
    fn write(&self, mut data: &[u8]) -> bool {
        self.counter()
            .fetch_add(data.len() as u64, Ordering::SeqCst);
        while !data.is_empty() {
            if !self.alive() {
                break;
            }
            match (&self.dst).write(data) {
                Ok(0) => break,
                Ok(n) => data = &data[n..],
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(_) => break,
            }
        }
        self.counter()
            .fetch_sub(data.len() as u64, Ordering::SeqCst);
        data.is_empty()
    }
}

impl std::fmt::Debug for ConnEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyConn").field("id", &self.id).finish()
    }
}
