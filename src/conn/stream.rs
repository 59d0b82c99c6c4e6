//! The byte stream under a connection: TCP, Unix socket, or TLS over TCP.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use crate::config::{Addr, ConnectionConfig};
use crate::error::{Error, ErrorKind, Result};

/// One open socket.
pub(crate) enum Stream {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(UnixStream),
    #[cfg(feature = "tls")]
    Tls(Box<native_tls::TlsStream<TcpStream>>),
}

impl Stream {
    /// Open the socket (and TLS session) described by `config`, within its connect timeout.
    pub(crate) fn connect(config: &ConnectionConfig) -> Result<Stream> {
        let deadline = Instant::now() + config.connect_timeout;
        match &config.addr {
            Addr::Tcp { host, port } => {
                let tcp = connect_tcp(host, *port, deadline)?;
                match &config.tls {
                    None => Ok(Stream::Tcp(tcp)),
                    Some(tls) => {
                        // The TLS handshake must finish by the same deadline.
                        let left = remaining(deadline)?;
                        set_timeouts(&tcp, Some(left), Some(left))?;
                        super::tls::wrap(tcp, host, tls)
                    }
                }
            }
            #[cfg(unix)]
            Addr::Unix(path) => {
                if config.tls.is_some() {
                    return Err(Error::config("TLS over a Unix socket is not supported"));
                }
                let s = UnixStream::connect(path).map_err(|e| {
                    Error::io(
                        ErrorKind::Connect,
                        &format!("connect to unix:{}", path.display()),
                        e,
                    )
                })?;
                Ok(Stream::Unix(s))
            }
            #[cfg(not(unix))]
            Addr::Unix(_) => Err(Error::config("Unix sockets are not supported here")),
        }
    }

    /// Set the read timeout (`None`: block for ever).
    pub(crate) fn set_read_timeout(&self, t: Option<Duration>) -> Result<()> {
        let t = t.map(nonzero);
        let r = match self {
            Stream::Tcp(s) => s.set_read_timeout(t),
            #[cfg(unix)]
            Stream::Unix(s) => s.set_read_timeout(t),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.get_ref().set_read_timeout(t),
        };
        r.map_err(|e| Error::io(ErrorKind::Io, "set read timeout", e))
    }

    /// Set the write timeout (`None`: block for ever).
    pub(crate) fn set_write_timeout(&self, t: Option<Duration>) -> Result<()> {
        let t = t.map(nonzero);
        let r = match self {
            Stream::Tcp(s) => s.set_write_timeout(t),
            #[cfg(unix)]
            Stream::Unix(s) => s.set_write_timeout(t),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.get_ref().set_write_timeout(t),
        };
        r.map_err(|e| Error::io(ErrorKind::Io, "set write timeout", e))
    }

    /// Look at the socket without blocking and without consuming anything.
    pub(crate) fn peer_state(&self) -> PeerState {
        match self {
            Stream::Tcp(s) => peek_tcp(s),
            // TLS 1.3 servers send session tickets after the handshake, so pending bytes
            // prove nothing: only "closed" is conclusive.
            #[cfg(feature = "tls")]
            Stream::Tls(s) => match peek_tcp(s.get_ref()) {
                PeerState::Closed => PeerState::Closed,
                PeerState::Open => PeerState::Open,
                PeerState::DataPending | PeerState::Unknown => PeerState::Unknown,
            },
            #[cfg(unix)]
            Stream::Unix(_) => PeerState::Unknown,
        }
    }

    /// Close both directions now (best effort).
    pub(crate) fn shutdown(&mut self) {
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(std::net::Shutdown::Both),
            #[cfg(unix)]
            Stream::Unix(s) => s.shutdown(std::net::Shutdown::Both),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.get_ref().shutdown(std::net::Shutdown::Both),
        };
    }
}

/// What a non-blocking look at the socket shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerState {
    /// Open, nothing unread: the connection is alive as far as the socket can tell.
    Open,
    /// The peer closed (FIN/RST): the connection is dead.
    Closed,
    /// Bytes arrived that nobody asked for.
    DataPending,
    /// The socket cannot tell cheaply; a round trip (PING) is needed to know.
    Unknown,
}

fn peek_tcp(s: &TcpStream) -> PeerState {
    if s.set_nonblocking(true).is_err() {
        return PeerState::Unknown;
    }
    let mut byte = [0u8; 1];
    let state = match s.peek(&mut byte) {
        Ok(0) => PeerState::Closed,
        Ok(_) => PeerState::DataPending,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => PeerState::Open,
        Err(e) if e.kind() == io::ErrorKind::Interrupted => PeerState::Unknown,
        Err(_) => PeerState::Closed,
    };
    if s.set_nonblocking(false).is_err() {
        return PeerState::Closed;
    }
    state
}

/// A zero duration means "no timeout" to the OS API and is rejected; use the smallest one.
fn nonzero(d: Duration) -> Duration {
    d.max(Duration::from_millis(1))
}

fn remaining(deadline: Instant) -> Result<Duration> {
    let now = Instant::now();
    if now >= deadline {
        return Err(Error::new(ErrorKind::Timeout, "connect timeout expired"));
    }
    Ok(deadline - now)
}

fn set_timeouts(s: &TcpStream, r: Option<Duration>, w: Option<Duration>) -> Result<()> {
    s.set_read_timeout(r.map(nonzero))
        .and_then(|_| s.set_write_timeout(w.map(nonzero)))
        .map_err(|e| Error::io(ErrorKind::Connect, "set socket timeouts", e))
}

fn connect_tcp(host: &str, port: u16, deadline: Instant) -> Result<TcpStream> {
    let addrs: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(|e| Error::io(ErrorKind::Connect, &format!("resolve {host}"), e))?
        .collect();
    if addrs.is_empty() {
        return Err(Error::new(
            ErrorKind::Connect,
            format!("{host} resolved to no address"),
        ));
    }
    let mut last = None;
    for addr in addrs {
        let left = remaining(deadline)?;
        match TcpStream::connect_timeout(&addr, left) {
            Ok(s) => {
                s.set_nodelay(true)
                    .map_err(|e| Error::io(ErrorKind::Connect, "set TCP_NODELAY", e))?;
                return Ok(s);
            }
            Err(e) => last = Some((addr, e)),
        }
    }
    let Some((addr, e)) = last else {
        return Err(Error::new(
            ErrorKind::Connect,
            format!("no address for {host}"),
        ));
    };
    let kind = if e.kind() == io::ErrorKind::TimedOut {
        ErrorKind::Timeout
    } else {
        ErrorKind::Connect
    };
    Err(Error::new(kind, format!("connect to {addr}: {e}")).with_source(e))
}

impl Stream {
    /// Append at most `max` bytes (`max` no more than `buf`'s spare capacity) to `buf`,
    /// waiting as a `read` does (up to the socket's read timeout) for the first one and
    /// taking only what has already arrived after it. `Ok(0)` (with `max` > 0): the peer
    /// closed the stream.
    ///
    /// Over TCP the bytes land in `buf`'s spare capacity without being zero-filled first
    /// (std's `read_to_end` reads a `TcpStream` into uninitialised memory; nothing unsafe
    /// here): wait with a one-byte `peek`, then drain without blocking. Over a Unix socket
    /// or TLS the room is zero-filled and read into, as `Read::read` needs.
    pub(crate) fn read_append(&mut self, buf: &mut Vec<u8>, max: usize) -> io::Result<usize> {
        let max = max.min(buf.capacity().saturating_sub(buf.len()));
        if max == 0 {
            return Ok(0);
        }
        match self {
            Stream::Tcp(s) => {
                if s.peek(&mut [0u8; 1])? == 0 {
                    return Ok(0);
                }
                s.set_nonblocking(true)?;
                let before = buf.len();
                let r = Read::take(&*s, max as u64).read_to_end(buf);
                let restored = s.set_nonblocking(false);
                let got = buf.len().saturating_sub(before);
                match r {
                    Ok(_) => {}
                    // Drained: everything that had arrived is in `buf`.
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    // The error comes again on the next read, if it matters.
                    Err(_) if got != 0 => {}
                    Err(e) => return Err(e),
                }
                restored?;
                Ok(got)
            }
            _ => {
                let before = buf.len();
                buf.resize(before.saturating_add(max.min(READ_APPEND_CHUNK)), 0);
                let r = self.read(buf.get_mut(before..).unwrap_or_default());
                let got = *r.as_ref().unwrap_or(&0);
                buf.truncate(before.saturating_add(got));
                r
            }
        }
    }
}

/// Most bytes [`Stream::read_append`] zero-fills and reads at once when it must (Unix, TLS).
const READ_APPEND_CHUNK: usize = 64 * 1024;

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            #[cfg(unix)]
            Stream::Unix(s) => s.read(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            #[cfg(unix)]
            Stream::Unix(s) => s.write(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.flush(),
            #[cfg(unix)]
            Stream::Unix(s) => s.flush(),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.flush(),
        }
    }
}
