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
    /// A PEM file of extra root certificates (URL parameter `tls_ca_file`). Parsing a URL
    /// does no I/O: the connection reads this file when it connects, and trusts its
    /// certificates in addition to [`TlsConfig::ca_certs_pem`] and the system store.
    pub ca_file: Option<PathBuf>,
    /// A PEM file holding the client certificate chain for mutual TLS (URL parameter
    /// `tls_client_cert_file`). Read by the connection when it connects; always set together
    /// with [`TlsConfig::client_key_file`].
    pub client_cert_file: Option<PathBuf>,
    /// A PEM file holding the PKCS#8 client key for mutual TLS (URL parameter
    /// `tls_client_key_file`). Read by the connection when it connects; always set together
    /// with [`TlsConfig::client_cert_file`].
    pub client_key_file: Option<PathBuf>,
}

impl TlsConfig {
    /// Defaults: verify against the system roots, TLS 1.2 or newer.
    pub fn new() -> TlsConfig {
        TlsConfig::default()
    }

    /// Also trust this CA certificate (PEM).
    pub fn with_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> TlsConfig {
        self.ca_certs_pem.push(pem.into());
        self
    }

    /// Verify the certificate against `name` (and send it as SNI) instead of the host.
    pub fn with_server_name(mut self, name: impl Into<String>) -> TlsConfig {
        self.server_name = Some(name.into());
        self
    }

    /// **Danger**: accept any certificate and any host name. For tests and throwaway
    /// setups only; a warning is logged on every connection made this way.
    pub fn danger_accept_invalid(mut self) -> TlsConfig {
        self.danger_accept_invalid_certs = true;
        self.danger_accept_invalid_hostnames = true;
        self
    }
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
            .field("ca_file", &self.ca_file)
            .field("client_cert_file", &self.client_cert_file)
            .field("client_key_file", &self.client_key_file)
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

    /// Build a configuration from the process environment; see
    /// [`ConnectionConfig::from_env_vars`] for the variables read.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) naming the variable with a bad value
    /// (including one that is not valid UTF-8).
    pub fn from_env() -> Result<ConnectionConfig> {
        check_env_unicode(ENV_VARS)?;
        ConnectionConfig::from_env_vars(|name| std::env::var(name).ok())
    }

    /// Build a configuration from environment variables looked up through `get` (which
    /// returns `None` for an unset variable), so that it can be tested without touching the
    /// process environment.
    ///
    /// * `VALKEY_URL`: when set and non-empty, the whole configuration comes from this URL
    ///   (see [`ConnectionConfig::from_url`]) and **all the other variables below are ignored**:
    ///   the URL wins.
    /// * Otherwise: `VALKEY_HOST` (default `127.0.0.1`; an IPv6 address may be bracketed or
    ///   not), `VALKEY_PORT` (default 6379), `VALKEY_USER`, `VALKEY_PASSWORD`, `VALKEY_DB`
    ///   (default 0) and `VALKEY_TLS` (`1`/`true`/`yes`/`on` or `0`/`false`/`no`/`off`, any case;
    ///   default off). These values are taken literally (no percent-decoding).
    ///   `VALKEY_MAX_BULK_LEN`, `VALKEY_MAX_AGGREGATE_LEN`, `VALKEY_MAX_DEPTH` and
    ///   `VALKEY_MAX_LINE_LEN` set the decoder [`Limits`] (positive whole numbers; the URL
    ///   form is the query parameter of the same name in lower case).
    ///
    /// An empty variable counts as unset.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config); the message starts with the name of the
    /// variable (e.g. `VALKEY_PORT: invalid port 'x'`) and never contains the password.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use valkit::{Addr, ConnectionConfig, ErrorKind};
    ///
    /// let env: HashMap<&str, &str> =
    ///     [("VALKEY_HOST", "cache.internal"), ("VALKEY_DB", "3"), ("VALKEY_TLS", "yes")].into();
    /// let cfg = ConnectionConfig::from_env_vars(|k| env.get(k).map(|v| v.to_string()))?;
    /// assert_eq!(cfg.addr, Addr::Tcp { host: "cache.internal".into(), port: 6379 });
    /// assert_eq!(cfg.db, 3);
    /// assert!(cfg.tls.is_some());
    ///
    /// let env: HashMap<&str, &str> = [("VALKEY_PORT", "x")].into();
    /// let err = ConnectionConfig::from_env_vars(|k| env.get(k).map(|v| v.to_string()))
    ///     .unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::Config);
    /// assert!(err.to_string().contains("VALKEY_PORT: invalid port 'x'"));
    /// # Ok::<(), valkit::Error>(())
    /// ```
    pub fn from_env_vars<F: Fn(&str) -> Option<String>>(get: F) -> Result<ConnectionConfig> {
        let var = |name: &str| get(name).filter(|v| !v.is_empty());
        if let Some(url) = var("VALKEY_URL") {
            return url_parse(&url).map_err(|m| Error::config(format!("VALKEY_URL: {m}")));
        }
        let env_err = |name: &str, m: String| Error::config(format!("{name}: {m}"));
        let host = match var("VALKEY_HOST") {
            Some(h) => {
                let h = match h.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
                    // Brackets only around an IPv6 address.
                    Some(inner) if inner.parse::<std::net::Ipv6Addr>().is_ok() => inner.to_owned(),
                    Some(_) => {
                        return Err(env_err(
                            "VALKEY_HOST",
                            format!("invalid host '{}'", h.escape_debug()),
                        ))
                    }
                    None => h,
                };
                check_host(&h).map_err(|m| env_err("VALKEY_HOST", m))?;
                h
            }
            None => "127.0.0.1".to_owned(),
        };
        let port = match var("VALKEY_PORT") {
            Some(p) => parse_port(&p, "").map_err(|m| env_err("VALKEY_PORT", m))?,
            None => DEFAULT_PORT,
        };
        let mut cfg = ConnectionConfig::new(host, port);
        cfg.username = var("VALKEY_USER");
        cfg.password = var("VALKEY_PASSWORD").map(Secret::from);
        if let Some(db) = var("VALKEY_DB") {
            cfg.db = parse_db(&db, "").map_err(|m| env_err("VALKEY_DB", m))?;
        }
        for (name, limit) in LIMIT_ENV_VARS {
            if let Some(value) = var(name) {
                set_limit(&mut cfg.limits, limit, &value).map_err(|m| env_err(name, m))?;
            }
        }
        if let Some(tls) = var("VALKEY_TLS") {
            let on = match tls.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" => false,
                _ => {
                    return Err(env_err(
                        "VALKEY_TLS",
                        format!(
                            "invalid value '{}' (expected 1/true/yes/on or 0/false/no/off)",
                            tls.escape_debug()
                        ),
                    ))
                }
            };
            if on {
                cfg.tls = Some(TlsConfig::default());
            }
        }
        Ok(cfg)
    }

    /// The configuration of a separate reader endpoint (e.g. a replica or a managed
    /// service's reader address) from `VALKEY_READER_URL` in the process environment;
    /// `None` when the variable is unset or empty. See
    /// [`ConnectionConfig::reader_from_env_vars`].
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) starting with `VALKEY_READER_URL:`.
    pub fn reader_from_env() -> Result<Option<ConnectionConfig>> {
        check_env_unicode(&["VALKEY_READER_URL"])?;
        ConnectionConfig::reader_from_env_vars(|name| std::env::var(name).ok())
    }

    /// Like [`ConnectionConfig::reader_from_env`], looking variables up through `get`.
    ///
    /// ```
    /// use valkit::ConnectionConfig;
    /// let none = ConnectionConfig::reader_from_env_vars(|_| None)?;
    /// assert!(none.is_none());
    /// let get = |k: &str| (k == "VALKEY_READER_URL").then(|| "redis://replica:6380".to_string());
    /// let reader = ConnectionConfig::reader_from_env_vars(get)?.expect("set");
    /// assert_eq!(reader.to_string(), "redis://replica:6380");
    /// # Ok::<(), valkit::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) starting with `VALKEY_READER_URL:`.
    pub fn reader_from_env_vars<F: Fn(&str) -> Option<String>>(
        get: F,
    ) -> Result<Option<ConnectionConfig>> {
        match get("VALKEY_READER_URL").filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(url) => url_parse(&url)
                .map(Some)
                .map_err(|m| Error::config(format!("VALKEY_READER_URL: {m}"))),
        }
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

// ---------------------------------------------------------------------------------------
// Parsing helpers. They return plain messages; callers wrap them into `Error::config`.
// No message may contain the password.

const DEFAULT_PORT: u16 = 6379;
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_IO_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_BLOCKING_SLICE: Duration = Duration::from_secs(5);
const SCHEMES: &str =
    "redis://, rediss://, valkey://, valkeys://, unix://, redis+unix://, valkey+unix://";
const ENV_VARS: &[&str] = &[
    "VALKEY_URL",
    "VALKEY_HOST",
    "VALKEY_PORT",
    "VALKEY_USER",
    "VALKEY_PASSWORD",
    "VALKEY_DB",
    "VALKEY_TLS",
    "VALKEY_MAX_BULK_LEN",
    "VALKEY_MAX_AGGREGATE_LEN",
    "VALKEY_MAX_DEPTH",
    "VALKEY_MAX_LINE_LEN",
];

/// The environment variables for the decoder limits, with their URL parameter names.
const LIMIT_ENV_VARS: [(&str, &str); 4] = [
    ("VALKEY_MAX_BULK_LEN", "max_bulk_len"),
    ("VALKEY_MAX_AGGREGATE_LEN", "max_aggregate_len"),
    ("VALKEY_MAX_DEPTH", "max_depth"),
    ("VALKEY_MAX_LINE_LEN", "max_line_len"),
];

/// Set the limit `name` (a URL parameter name) from `value`: a positive whole number
/// without sign or leading zeros.
fn set_limit(limits: &mut Limits, name: &str, value: &str) -> Msg<()> {
    let n: usize = match value.parse() {
        Ok(n) if n > 0 && !value.starts_with(['0', '+']) => n,
        _ => {
            return Err(format!(
                "invalid value '{}' (expected a positive whole number)",
                value.escape_debug()
            ))
        }
    };
    match name {
        "max_bulk_len" => limits.max_bulk_len = n,
        "max_aggregate_len" => limits.max_aggregate_len = n,
        "max_depth" => limits.max_depth = n,
        _ => limits.max_line_len = n,
    }
    Ok(())
}

type Msg<T> = std::result::Result<T, String>;

/// Reject environment variables that are set but not valid UTF-8 (instead of silently
/// treating them as unset).
fn check_env_unicode(names: &[&str]) -> Result<()> {
    for name in names {
        if let Err(std::env::VarError::NotUnicode(_)) = std::env::var(name) {
            return Err(Error::config(format!("{name}: not valid UTF-8")));
        }
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Transport {
    Tcp { tls: bool },
    Unix,
}

fn url_parse(url: &str) -> Msg<ConnectionConfig> {
    url_parse_inner(url).map_err(|msg| {
        // A password holding an unescaped '/', '?' or '#' moves its tail (and the '@') out
        // of the authority, into the host, port, path, query or fragment that messages
        // echo. When the URL looks like that, say so instead of showing any part of it.
        let after_scheme = url.split_once("//").map_or("", |(_, rest)| rest);
        let end = after_scheme
            .find(['/', '?', '#'])
            .unwrap_or(after_scheme.len());
        let (authority, after) = after_scheme.split_at(end);
        if !authority.contains('@') && after.contains('@') {
            "invalid URL; details are not shown because an '@' after the host suggests an \
             unescaped character in the password: percent-encode '/', '?', '#' and '@' in \
             the user name and password (%2F, %3F, %23, %40)"
                .to_owned()
        } else {
            msg
        }
    })
}

fn url_parse_inner(url: &str) -> Msg<ConnectionConfig> {
    let (transport, rest) = split_scheme(url)?;
    let tls = transport == Transport::Tcp { tls: true };

    // RFC 3986 order: the fragment starts at the first '#', the query at the first '?'
    // before it, the path at the first '/' of what remains after "//".
    let (rest, fragment) = match rest.split_once('#') {
        Some((r, frag)) => (r, Some(frag)),
        None => (rest, None),
    };
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };

    let (userinfo, hostport) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };

    // Without an '@', `user:password` has the shape of `host:port`: what would be the port
    // may be a password, and is never quoted in a message.
    let may_be_userinfo = userinfo.is_none() && hostport.contains(':');
    let mut cfg = match transport {
        Transport::Tcp { .. } => {
            let (host, port) = split_host_port(hostport, may_be_userinfo)?;
            ConnectionConfig::new(host, port)
        }
        Transport::Unix => {
            if may_be_userinfo {
                return Err(format!(
                    "unexpected host in a Unix socket URL (not shown: {NO_AT}; use \
                     unix://[user:password@]/path/to/socket)"
                ));
            }
            if !hostport.is_empty() {
                return Err(format!(
                    "unexpected host '{}' in a Unix socket URL (use unix:///path/to/socket)",
                    hostport.escape_debug()
                ));
            }
            let decoded = percent_decode(path)
                .ok_or_else(|| "invalid percent-encoding in the socket path in URL".to_owned())?;
            if decoded.is_empty() || decoded == "/" {
                return Err("missing socket path in URL (use unix:///path/to/socket)".to_owned());
            }
            ConnectionConfig::unix(decoded)
        }
    };
    if tls {
        cfg.tls = Some(TlsConfig::default());
    }

    if let Some(userinfo) = userinfo {
        let (user, password) = match userinfo.split_once(':') {
            Some((u, p)) => (u, Some(p)),
            None => (userinfo, None),
        };
        if !user.is_empty() {
            let user = percent_decode(user)
                .ok_or_else(|| "invalid percent-encoding in the user name in URL".to_owned())?;
            cfg.username = Some(user);
        }
        if let Some(password) = password.filter(|p| !p.is_empty()) {
            let password = percent_decode(password).ok_or_else(|| {
                "invalid percent-encoding in the password in URL (not shown)".to_owned()
            })?;
            cfg.password = Some(Secret::new(password));
        }
    }

    let mut path_db = false;
    if let Transport::Tcp { .. } = transport {
        if let Some(db) = path.strip_prefix('/').filter(|db| !db.is_empty()) {
            cfg.db = parse_db(db, " in URL path")?;
            path_db = true;
        }
    }

    let mut insecure = None;
    if let Some(query) = query {
        apply_query(&mut cfg, query, path_db, tls, &mut insecure)?;
    }

    match fragment {
        None => {}
        Some("insecure") => {
            if !tls {
                return Err(
                    "the '#insecure' fragment requires a TLS scheme (rediss:// or valkeys://)"
                        .to_owned(),
                );
            }
            if insecure == Some(false) {
                return Err("conflicting '#insecure' fragment and 'tls_insecure=false'".to_owned());
            }
            insecure = Some(true);
        }
        Some(other) => {
            return Err(format!(
                "unknown URL fragment '#{}' (only '#insecure' is supported)",
                other.escape_debug()
            ))
        }
    }
    if let (Some(tls), Some(insecure)) = (cfg.tls.as_mut(), insecure) {
        tls.danger_accept_invalid_certs = insecure;
        tls.danger_accept_invalid_hostnames = insecure;
    }
    Ok(cfg)
}

fn split_scheme(url: &str) -> Msg<(Transport, &str)> {
    let Some((scheme, rest)) = url.split_once(':') else {
        return Err(format!("missing scheme in URL (expected one of {SCHEMES})"));
    };
    // Echo the scheme only when it looks like one: whatever precedes a stray ':' could be
    // anything (even a password in a malformed URL).
    let looks_like_scheme = !scheme.is_empty()
        && scheme.len() <= 32
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.');
    let transport = match scheme {
        "redis" | "valkey" => Transport::Tcp { tls: false },
        "rediss" | "valkeys" => Transport::Tcp { tls: true },
        "unix" | "redis+unix" | "valkey+unix" => Transport::Unix,
        _ if looks_like_scheme => {
            let hint = if scheme.bytes().any(|b| b.is_ascii_uppercase()) {
                " (schemes are lowercase)"
            } else {
                ""
            };
            return Err(format!(
                "unsupported URL scheme '{scheme}'{hint}; expected one of {SCHEMES}"
            ));
        }
        _ => return Err(format!("missing scheme in URL (expected one of {SCHEMES})")),
    };
    match rest.strip_prefix("//") {
        Some(rest) => Ok((transport, rest)),
        None => Err(format!("expected '//' after '{scheme}:' in URL")),
    }
}

/// Why a value that may be a password is not shown.
const NO_AT: &str =
    "without an '@' after it, 'user:password' reads as 'host:port', so it may be a password";

/// `hide_port`: the port may be a password (see `may_be_userinfo`); a bad one is not quoted.
fn split_host_port(hostport: &str, hide_port: bool) -> Msg<(String, u16)> {
    let (host, port) = if let Some(bracketed) = hostport.strip_prefix('[') {
        let Some((inner, after)) = bracketed.split_once(']') else {
            return Err(format!(
                "unclosed '[' in host '{}' in URL",
                hostport.escape_debug()
            ));
        };
        if inner.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!(
                "invalid IPv6 address '[{}]' in URL",
                inner.escape_debug()
            ));
        }
        let port = match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(p) => Some(p),
                None => {
                    return Err(format!(
                        "unexpected '{}' after IPv6 address in URL",
                        after.escape_debug()
                    ))
                }
            },
        };
        (inner, port)
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err("missing host in URL".to_owned());
    }
    if !hostport.starts_with('[') {
        check_host(host).map_err(|m| format!("{m} in URL"))?;
    }
    let port = match port {
        None => DEFAULT_PORT,
        // A bracketed IPv6 host is no user name: its port is only a port.
        Some(p) if hide_port && !hostport.starts_with('[') => parse_port(p, " in URL")
            .map_err(|_| format!("invalid port in URL (expected 1..=65535; not shown: {NO_AT})"))?,
        Some(p) => parse_port(p, " in URL")?,
    };
    Ok((host.to_owned(), port))
}

/// A host name, an IPv4 address or an unbracketed IPv6 address.
fn check_host(host: &str) -> Msg<()> {
    if host.is_empty() {
        return Err("missing host".to_owned());
    }
    if host.contains(':') {
        return match host.parse::<std::net::Ipv6Addr>() {
            Ok(_) => Ok(()),
            Err(_) => Err(format!("invalid host '{}'", host.escape_debug())),
        };
    }
    let ok = host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!("invalid host '{}'", host.escape_debug()))
    }
}

/// `ctx` (e.g. `" in URL"`) follows the quoted value in the message.
fn parse_port(s: &str, ctx: &str) -> Msg<u16> {
    let bad = || {
        format!(
            "invalid port '{}'{ctx} (expected 1..=65535)",
            s.escape_debug()
        )
    };
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match s.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(bad()),
    }
}

/// `0` or `[1-9][0-9]*` within `u32`. `ctx` follows the quoted value in the message.
fn parse_db(s: &str, ctx: &str) -> Msg<u32> {
    let digits = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if digits && (s == "0" || !s.starts_with('0')) {
        if let Ok(db) = s.parse::<u32>() {
            return Ok(db);
        }
    }
    Err(format!(
        "invalid db '{}'{ctx} (expected 0 or a number without leading zeros, at most {})",
        s.escape_debug(),
        u32::MAX
    ))
}

fn apply_query(
    cfg: &mut ConnectionConfig,
    query: &str,
    path_db: bool,
    tls: bool,
    insecure: &mut Option<bool>,
) -> Msg<()> {
    let mut seen: Vec<&'static str> = Vec::new();
    let mut cert = None;
    let mut key = None;
    for segment in query.split('&').filter(|s| !s.is_empty()) {
        let (name, raw) = segment.split_once('=').unwrap_or((segment, ""));
        let canonical = match name {
            "db" => "db",
            "protocol" => "protocol",
            "client_name" | "name" => "client_name",
            "connect_timeout" => "connect_timeout",
            "read_timeout" => "read_timeout",
            "write_timeout" => "write_timeout",
            "blocking_slice" => "blocking_slice",
            "tls_ca_file" => "tls_ca_file",
            "tls_client_cert_file" => "tls_client_cert_file",
            "tls_client_key_file" => "tls_client_key_file",
            "tls_server_name" => "tls_server_name",
            "tls_insecure" => "tls_insecure",
            "max_bulk_len" => "max_bulk_len",
            "max_aggregate_len" => "max_aggregate_len",
            "max_depth" => "max_depth",
            "max_line_len" => "max_line_len",
            _ => {
                return Err(format!(
                    "unknown query parameter '{}' in URL",
                    name.escape_debug()
                ))
            }
        };
        if seen.contains(&canonical) {
            return Err(format!("duplicate query parameter '{name}' in URL"));
        }
        seen.push(canonical);
        if canonical.starts_with("tls_") && !tls {
            return Err(format!(
                "query parameter '{name}' requires a TLS scheme (rediss:// or valkeys://)"
            ));
        }
        let value = percent_decode(raw).ok_or_else(|| {
            format!("invalid percent-encoding in the value of query parameter '{name}'")
        })?;
        if value.is_empty() {
            return Err(format!("empty value for query parameter '{name}' in URL"));
        }
        let bad = |expected: &str| {
            format!(
                "invalid value '{}' for query parameter '{name}' (expected {expected})",
                value.escape_debug()
            )
        };
        match canonical {
            "db" => {
                if path_db {
                    return Err(
                        "db given twice in URL: in the path and as query parameter 'db'".to_owned(),
                    );
                }
                cfg.db = parse_db(&value, " in query parameter 'db'")?;
            }
            "protocol" => {
                cfg.protocol = match value.as_str() {
                    "resp2" | "2" => Protocol::Resp2,
                    "resp3" | "3" => {
                        // Asked for explicitly: no silent fallback to RESP2.
                        cfg.resp2_fallback = false;
                        Protocol::Resp3
                    }
                    _ => return Err(bad("resp2, resp3, 2 or 3")),
                }
            }
            "client_name" => {
                if !value.bytes().all(|b| (b'!'..=b'~').contains(&b)) {
                    return Err(bad("printable ASCII without spaces"));
                }
                cfg.client_name = Some(value);
            }
            "connect_timeout" => {
                let d = parse_duration(&value, name)?;
                match d {
                    Some(d) if !d.is_zero() => cfg.connect_timeout = d,
                    _ => {
                        return Err(format!(
                            "query parameter 'connect_timeout' must be greater than zero, got '{}'",
                            value.escape_debug()
                        ))
                    }
                }
            }
            "read_timeout" => {
                cfg.read_timeout = parse_duration(&value, name)?.filter(|d| !d.is_zero())
            }
            "write_timeout" => {
                cfg.write_timeout = parse_duration(&value, name)?.filter(|d| !d.is_zero())
            }
            "blocking_slice" => {
                cfg.blocking_slice = parse_duration(&value, name)?.filter(|d| !d.is_zero())
            }
            "max_bulk_len" | "max_aggregate_len" | "max_depth" | "max_line_len" => {
                set_limit(&mut cfg.limits, canonical, &value)
                    .map_err(|m| format!("{m} for query parameter '{name}'"))?;
            }
            "tls_insecure" => {
                *insecure = Some(match value.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(bad("true or false")),
                })
            }
            _ => {
                let Some(tls_cfg) = cfg.tls.as_mut() else {
                    return Err(format!("query parameter '{name}' requires a TLS scheme"));
                };
                match canonical {
                    "tls_ca_file" => tls_cfg.ca_file = Some(PathBuf::from(value)),
                    "tls_client_cert_file" => cert = Some(PathBuf::from(value)),
                    "tls_client_key_file" => key = Some(PathBuf::from(value)),
                    _ => {
                        if value
                            .bytes()
                            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
                        {
                            return Err(bad("a host name"));
                        }
                        tls_cfg.server_name = Some(value);
                    }
                }
            }
        }
    }
    match (cert, key) {
        (None, None) => {}
        (Some(cert), Some(key)) => {
            if let Some(tls_cfg) = cfg.tls.as_mut() {
                tls_cfg.client_cert_file = Some(cert);
                tls_cfg.client_key_file = Some(key);
            }
        }
        (Some(_), None) => {
            return Err(
                "query parameter 'tls_client_cert_file' requires 'tls_client_key_file'".to_owned(),
            )
        }
        (None, Some(_)) => {
            return Err(
                "query parameter 'tls_client_key_file' requires 'tls_client_cert_file'".to_owned(),
            )
        }
    }
    Ok(())
}

/// `250ms`, `2s`, `1.5s`, `1m`; `0` and `none` give `None`. A bare number is an error.
/// The longest duration a URL or environment value may give.
const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

fn parse_duration(value: &str, name: &str) -> Msg<Option<Duration>> {
    if value == "0" || value == "none" {
        return Ok(None);
    }
    let bad = |why: &str| {
        format!(
            "invalid duration '{}' for query parameter '{name}': {why}",
            value.escape_debug()
        )
    };
    let split = value
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let unit_nanos: u128 = match unit {
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "" => return Err(bad("use a unit: ms, s, m (e.g. 250ms, 2s, 1.5s, 1m)")),
        _ => return Err(bad("unknown unit; use a unit: ms, s, m")),
    };
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    let valid = !int.is_empty()
        && int.len() <= 19
        && !(number.contains('.') && frac.is_empty())
        && frac.len() <= 9
        && !frac.contains('.');
    if !valid {
        return Err(bad("expected a number followed by ms, s or m"));
    }
    let int: u128 = int
        .parse()
        .map_err(|_| bad("expected a number followed by ms, s or m"))?;
    let frac_value: u128 = if frac.is_empty() {
        0
    } else {
        frac.parse()
            .map_err(|_| bad("expected a number followed by ms, s or m"))?
    };
    let nanos = int * unit_nanos + frac_value * unit_nanos / 10u128.pow(frac.len() as u32);
    // Anything longer than a year is a typo, and bounding it keeps every accepted value
    // printable and parseable again by `Display` (found by the `url` fuzz target).
    if nanos > MAX_DURATION.as_nanos() {
        return Err(bad("too large: at most 365 days"));
    }
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| bad("too large"))?;
    Ok(Some(Duration::new(secs, (nanos % 1_000_000_000) as u32)))
}

/// The shortest form that [`parse_duration`] reads back to the same value.
fn format_duration(d: Duration) -> String {
    let nanos = d.subsec_nanos();
    if nanos == 0 {
        format!("{}s", d.as_secs())
    } else if nanos % 1_000_000 == 0 {
        format!("{}ms", d.as_millis())
    } else {
        let frac = format!("{nanos:09}");
        format!("{}.{}s", d.as_secs(), frac.trim_end_matches('0'))
    }
}

/// Decode `%XX` escapes exactly once. `None` for a bad escape or a result that is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hi = (hex[0] as char).to_digit(16)?;
            let lo = (hex[1] as char).to_digit(16)?;
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Escape everything but RFC 3986 unreserved characters.
fn percent_encode(s: &str) -> String {
    encode_except(s, b"-._~")
}

/// Like [`percent_encode`] but keeps `/`.
fn percent_encode_path(s: &str) -> String {
    encode_except(s, b"-._~/")
}

fn encode_except(s: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || keep.contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
