//! Connection configuration: types, URL parsing and the environment. No I/O.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::resp::Limits;

/// A secret (a password): never printed by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret string.
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The secret itself. Call only to send it to the server.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Secret {
        Secret::new(s)
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Secret {
        Secret(s)
    }
}

/// Where the server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Addr {
    /// A TCP host (name or IP literal) and port.
    Tcp {
        /// Host name or IP address (IPv6 without brackets).
        host: String,
        /// Port.
        port: u16,
    },
    /// A Unix domain socket path.
    Unix(PathBuf),
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Addr::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Addr::Tcp { host, port } => write!(f, "{host}:{port}"),
            Addr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// The RESP protocol version to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Protocol {
    /// RESP2: no HELLO is sent; AUTH and SELECT as separate commands.
    Resp2,
    /// RESP3 through `HELLO 3` (Redis 6+, every Valkey). The default.
    #[default]
    Resp3,
}

/// TLS settings. Certificate and host-name verification are on unless explicitly disabled.
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsConfig {
    /// Extra root certificates (PEM), trusted in addition to the system store.
    pub ca_certs_pem: Vec<Vec<u8>>,
    /// Client certificate chain and PKCS#8 key (both PEM) for mutual TLS.
    pub client_identity_pem: Option<(Vec<u8>, Secret)>,
    /// The name to verify the certificate against and send as SNI. Default: the host.
    /// For IP-literal hosts no SNI is sent and the certificate must carry an IP SAN.
    pub server_name: Option<String>,
    /// **Danger**: accept any certificate (self-signed, expired, unknown CA).
    pub danger_accept_invalid_certs: bool,
    /// **Danger**: accept a certificate whose names do not match the host.
    pub danger_accept_invalid_hostnames: bool,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("ca_certs", &self.ca_certs_pem.len())
            .field("client_identity", &self.client_identity_pem.is_some())
            .field("server_name", &self.server_name)
            .field(
                "danger_accept_invalid_certs",
                &self.danger_accept_invalid_certs,
            )
            .field(
                "danger_accept_invalid_hostnames",
                &self.danger_accept_invalid_hostnames,
            )
            .finish()
    }
}

/// Everything needed to open and set up one connection.
///
/// Build it from a URL ([`ConnectionConfig::from_url`]), the environment
/// ([`ConnectionConfig::from_env`]), or start from [`ConnectionConfig::new`] and set fields.
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub struct ConnectionConfig {
    /// Where to connect.
    pub addr: Addr,
    /// TLS settings; `None` for plain TCP or Unix sockets.
    pub tls: Option<TlsConfig>,
    /// ACL user name; `None` means `default`.
    pub username: Option<String>,
    /// Password; `None` sends no AUTH.
    pub password: Option<Secret>,
    /// Database index selected after connecting (0 sends no SELECT).
    pub db: u32,
    /// RESP version. Default RESP3.
    pub protocol: Protocol,
    /// `CLIENT SETNAME` value sent during the handshake.
    pub client_name: Option<String>,
    /// Timeout for establishing the socket (and TLS). Default 5 s.
    pub connect_timeout: Duration,
    /// Timeout for each read of a reply; `None` waits for ever (not recommended). Default 10 s.
    /// Blocking commands (BLPOP, ...) extend it by their own timeout.
    pub read_timeout: Option<Duration>,
    /// Timeout for each write; `None` waits for ever (not recommended). Default 10 s.
    pub write_timeout: Option<Duration>,
    /// Decoder limits for replies.
    pub limits: Limits,
}

impl ConnectionConfig {
    /// Defaults for a plain TCP connection to `host:port`.
    pub fn new(host: impl Into<String>, port: u16) -> ConnectionConfig {
        ConnectionConfig::with_addr(Addr::Tcp {
            host: host.into(),
            port,
        })
    }

    /// Defaults for a connection to `addr`.
    pub fn with_addr(addr: Addr) -> ConnectionConfig {
        ConnectionConfig {
            addr,
            tls: None,
            username: None,
            password: None,
            db: 0,
            protocol: Protocol::Resp3,
            client_name: None,
            connect_timeout: Duration::from_secs(5),
            read_timeout: Some(Duration::from_secs(10)),
            write_timeout: Some(Duration::from_secs(10)),
            limits: Limits::default(),
        }
    }

    /// Parse a `redis://`, `rediss://`, `valkey://`, `valkeys://` or `unix://` URL.
    pub fn from_url(url: &str) -> Result<ConnectionConfig> {
        let _ = url;
        Err(Error::config("URL parsing not implemented yet"))
    }
}

impl fmt::Debug for ConnectionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionConfig")
            .field("addr", &self.addr)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password)
            .field("db", &self.db)
            .field("protocol", &self.protocol)
            .field("client_name", &self.client_name)
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("write_timeout", &self.write_timeout)
            .field("limits", &self.limits)
            .finish()
    }
}
