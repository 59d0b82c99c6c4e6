//! [`ConnectionConfig`]: everything needed to open one connection, its defaults, and its
//! `Debug` / `Display` (a URL with the password redacted).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::duration::format_duration;
use super::percent::{percent_encode, percent_encode_path};
use super::url::url_parse;
use super::{Addr, Protocol, Secret, TlsConfig};
use crate::error::{Error, Result};
use crate::resp::Limits;

pub(super) const DEFAULT_PORT: u16 = 6379;
pub(super) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub(super) const DEFAULT_IO_TIMEOUT: Duration = Duration::from_secs(10);
pub(super) const DEFAULT_BLOCKING_SLICE: Duration = Duration::from_secs(5);

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
    /// With [`Protocol::Resp3`]: when the server does not know `HELLO` (Redis before 6, HELLO
    /// renamed or disabled, some proxies), authenticate with `AUTH` and speak RESP2 on the
    /// same connection instead of failing. Default true; a URL that asks for a protocol
    /// (`protocol=resp3`) sets it to false, so that an explicit RESP3 is RESP3 or an error.
    pub resp2_fallback: bool,
    /// `CLIENT SETNAME` value sent during the handshake.
    pub client_name: Option<String>,
    /// Timeout for establishing the socket (and TLS). Default 5 s.
    pub connect_timeout: Duration,
    /// The longest wait for one whole reply, counted from when the command was written (in
    /// a pipeline, each reply from when the previous one was complete): a server that
    /// trickles a reply byte by byte cannot hold a call longer. `None` waits for ever (not
    /// recommended). Default 10 s. Blocking commands (BLPOP, ...) extend it by their own
    /// timeout (by one [`blocking_slice`](ConnectionConfig::blocking_slice) at most).
    /// URL: `read_timeout=`.
    pub read_timeout: Option<Duration>,
    /// Timeout for each write; `None` waits for ever (not recommended). Default 10 s.
    pub write_timeout: Option<Duration>,
    /// Decoder limits for replies.
    pub limits: Limits,
    /// The longest server-side wait of one blocking command (see [`Blocking`]): a command
    /// that may block longer (`BLPOP key 0`) is sent with this timeout and re-issued until
    /// an answer comes, so a dead or frozen server is noticed within this plus the read
    /// timeout. `None` sends blocking commands as given (a for-ever wait then has no read
    /// timeout at all). Default 5 s. URL: `blocking_slice=2s` (`none` or `0` for `None`).
    ///
    /// [`Blocking`]: crate::Blocking
    pub blocking_slice: Option<Duration>,
    /// Send `READONLY` during the handshake: a cluster replica then serves reads of the
    /// slots its primary owns (set by the cluster client on replica connections). Default
    /// false.
    pub cluster_read_only: bool,
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
            resp2_fallback: true,
            client_name: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            read_timeout: Some(DEFAULT_IO_TIMEOUT),
            write_timeout: Some(DEFAULT_IO_TIMEOUT),
            limits: Limits::default(),
            blocking_slice: Some(DEFAULT_BLOCKING_SLICE),
            cluster_read_only: false,
        }
    }

    /// Defaults for a connection to the Unix domain socket at `path`.
    ///
    /// ```
    /// use valkit::{Addr, ConnectionConfig};
    /// let cfg = ConnectionConfig::unix("/run/valkey/valkey.sock");
    /// assert_eq!(cfg.addr, Addr::Unix("/run/valkey/valkey.sock".into()));
    /// ```
    pub fn unix(path: impl Into<PathBuf>) -> ConnectionConfig {
        ConnectionConfig::with_addr(Addr::Unix(path.into()))
    }

    /// Parse a connection URL. Parsing does no I/O (files named in it are read when connecting).
    ///
    /// Forms:
    ///
    /// * `redis://[[user][:password]@]host[:port][/db][?query][#insecure]`, and the same with
    ///   `valkey://`; `rediss://` and `valkeys://` add TLS (with verification on). The host may be
    ///   a name, an IPv4 address or a bracketed IPv6 address (`[::1]`). The port defaults to 6379.
    /// * `unix://[[user][:password]@]/path/to/socket[?query]`, and the same with `redis+unix://`
    ///   or `valkey+unix://`. The database is given by `?db=N`.
    ///
    /// Schemes are lowercase only. The user name, password, socket path and query values are
    /// percent-decoded exactly once (`%2540` gives `%40`); `+` is kept as is. `user@host` sets
    /// only the user name, `:password@host` only the password; an empty password is no password.
    /// The database is `/0` or `/[1-9][0-9]*` in the path, or `?db=N`, not both; an empty path or
    /// `/` means 0.
    ///
    /// Query parameters (each at most once; any other is an error):
    ///
    /// | parameter | value |
    /// |---|---|
    /// | `db` | database index |
    /// | `protocol` | `resp2`, `resp3`, `2` or `3`; without it, RESP3 falling back to RESP2 when the server does not know `HELLO` (see [`ConnectionConfig::resp2_fallback`]) |
    /// | `client_name` (alias `name`) | name sent with `CLIENT SETNAME` (printable ASCII, no spaces) |
    /// | `connect_timeout` | a duration with a unit: `250ms`, `2s`, `1.5s`, `1m` |
    /// | `read_timeout`, `write_timeout` | a duration, or `0`/`none` for no timeout (a zero duration also means none) |
    /// | `blocking_slice` | a duration, or `0`/`none` to send blocking commands unsliced (see [`ConnectionConfig::blocking_slice`]) |
    /// | `tls_ca_file` | path of a PEM file of extra root certificates (TLS schemes only) |
    /// | `tls_client_cert_file`, `tls_client_key_file` | PEM files for mutual TLS, both or neither (TLS schemes only) |
    /// | `tls_server_name` | name to verify the certificate against and send as SNI (TLS schemes only) |
    /// | `tls_insecure` | `true` or `false`: **danger**, skip certificate and host-name checks (TLS schemes only) |
    /// | `max_bulk_len`, `max_aggregate_len`, `max_depth`, `max_line_len` | decoder [`Limits`] (a positive whole number; `max_bulk_len` also bounds each command argument) |
    ///
    /// The fragment `#insecure` (as in redis-rs) is the same as `tls_insecure=true`; any other
    /// fragment is an error.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config), with a message naming the offending part
    /// of the URL. The message never contains the password, nor anything that may be one: a
    /// URL without `@` whose "port" is not a number (`redis://default:secret`) gets a message
    /// that does not quote it.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use valkit::{Addr, ConnectionConfig, ErrorKind, Protocol};
    ///
    /// let cfg = ConnectionConfig::from_url(
    ///     "rediss://app:s%3Acret@cache.example:6380/2?protocol=resp2&read_timeout=1.5s",
    /// )?;
    /// assert_eq!(cfg.addr, Addr::Tcp { host: "cache.example".into(), port: 6380 });
    /// assert_eq!(cfg.username.as_deref(), Some("app"));
    /// assert_eq!(cfg.password.as_ref().map(|p| p.expose()), Some("s:cret"));
    /// assert_eq!(cfg.db, 2);
    /// assert!(cfg.tls.is_some());
    /// assert_eq!(cfg.protocol, Protocol::Resp2);
    /// assert_eq!(cfg.read_timeout, Some(Duration::from_millis(1500)));
    /// // Display masks the password.
    /// assert!(cfg.to_string().starts_with("rediss://app:<redacted>@cache.example:6380/2?"));
    ///
    /// let err = ConnectionConfig::from_url("redis://u:pw@localhost:abc").unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::Config);
    /// assert!(err.to_string().contains("invalid port 'abc'"));
    /// // Without an '@', "default:secret" could be a user and password: nothing is quoted.
    /// let err = ConnectionConfig::from_url("redis://default:secret").unwrap_err();
    /// assert!(err.to_string().contains("invalid port in URL"));
    /// assert!(!err.to_string().contains("secret"));
    /// # Ok::<(), valkit::Error>(())
    /// ```
    pub fn from_url(url: &str) -> Result<ConnectionConfig> {
        url_parse(url).map_err(Error::config)
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
            .field("resp2_fallback", &self.resp2_fallback)
            .field("client_name", &self.client_name)
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("write_timeout", &self.write_timeout)
            .field("limits", &self.limits)
            .field("blocking_slice", &self.blocking_slice)
            .field("cluster_read_only", &self.cluster_read_only)
            .finish()
    }
}

impl std::str::FromStr for ConnectionConfig {
    type Err = Error;

    /// Same as [`ConnectionConfig::from_url`].
    fn from_str(url: &str) -> Result<ConnectionConfig> {
        ConnectionConfig::from_url(url)
    }
}

/// A URL for logs: the password is replaced by `<redacted>`, default settings are left out.
///
/// For configurations parsed from a URL (without a password) the output parses back to an
/// equal configuration. Settings that a URL cannot carry (in-memory PEM certificates) are
/// not shown; decoder limits are shown when not the default; if either danger flag of
/// [`TlsConfig`] is set, `#insecure` is appended.
impl fmt::Display for ConnectionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match (&self.addr, &self.tls) {
            (Addr::Unix(_), _) => "unix",
            (_, Some(_)) => "rediss",
            (_, None) => "redis",
        };
        write!(f, "{scheme}://")?;
        if self.username.is_some() || self.password.is_some() {
            if let Some(user) = &self.username {
                f.write_str(&percent_encode(user))?;
            }
            if self.password.is_some() {
                f.write_str(":<redacted>")?;
            }
            f.write_str("@")?;
        }
        let mut query: Vec<(&str, String)> = Vec::new();
        match &self.addr {
            Addr::Tcp { .. } => {
                write!(f, "{}", self.addr)?;
                if self.db != 0 {
                    write!(f, "/{}", self.db)?;
                }
            }
            Addr::Unix(path) => {
                f.write_str(&percent_encode_path(&path.to_string_lossy()))?;
                if self.db != 0 {
                    query.push(("db", self.db.to_string()));
                }
            }
        }
        if self.protocol == Protocol::Resp2 {
            query.push(("protocol", "resp2".to_owned()));
        } else if !self.resp2_fallback {
            query.push(("protocol", "resp3".to_owned()));
        }
        if let Some(name) = &self.client_name {
            query.push(("client_name", percent_encode(name)));
        }
        if self.connect_timeout != DEFAULT_CONNECT_TIMEOUT {
            query.push(("connect_timeout", format_duration(self.connect_timeout)));
        }
        for (name, value) in [
            ("read_timeout", self.read_timeout),
            ("write_timeout", self.write_timeout),
        ] {
            if value != Some(DEFAULT_IO_TIMEOUT) {
                query.push((name, value.map_or("none".to_owned(), format_duration)));
            }
        }
        if self.blocking_slice != Some(DEFAULT_BLOCKING_SLICE) {
            let slice = self
                .blocking_slice
                .map_or("none".to_owned(), format_duration);
            query.push(("blocking_slice", slice));
        }
        let d = Limits::default();
        for (name, value, default) in [
            ("max_bulk_len", self.limits.max_bulk_len, d.max_bulk_len),
            (
                "max_aggregate_len",
                self.limits.max_aggregate_len,
                d.max_aggregate_len,
            ),
            ("max_depth", self.limits.max_depth, d.max_depth),
            ("max_line_len", self.limits.max_line_len, d.max_line_len),
        ] {
            if value != default {
                query.push((name, value.to_string()));
            }
        }
        let mut insecure = false;
        if let Some(tls) = &self.tls {
            if let Some(name) = &tls.server_name {
                query.push(("tls_server_name", percent_encode(name)));
            }
            for (name, path) in [
                ("tls_ca_file", &tls.ca_file),
                ("tls_client_cert_file", &tls.client_cert_file),
                ("tls_client_key_file", &tls.client_key_file),
            ] {
                if let Some(path) = path {
                    query.push((name, percent_encode(&path.to_string_lossy())));
                }
            }
            insecure = tls.danger_accept_invalid_certs || tls.danger_accept_invalid_hostnames;
        }
        for (i, (name, value)) in query.iter().enumerate() {
            let sep = if i == 0 { '?' } else { '&' };
            write!(f, "{sep}{name}={value}")?;
        }
        if insecure {
            f.write_str("#insecure")?;
        }
        Ok(())
    }
}
