//! Configuration from environment variables.

use super::connection::DEFAULT_PORT;
use super::limits::set_limit;
use super::percent::percent_encode;
use super::url::{apply_query, check_host, parse_db, parse_port, url_parse};
use super::{ConnectionConfig, Secret, TlsConfig};
use crate::error::{Error, Result};

const ENV_VARS: &[&str] = &[
    "VALKEY_URL",
    "REDIS_URL",
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

/// The environment variables for the other URL query parameters, with their parameter
/// names. Their values are checked exactly as the URL's (without percent-decoding).
const PARAM_ENV_VARS: [(&str, &str); 11] = [
    ("VALKEY_PROTOCOL", "protocol"),
    ("VALKEY_CLIENT_NAME", "client_name"),
    ("VALKEY_CONNECT_TIMEOUT", "connect_timeout"),
    ("VALKEY_READ_TIMEOUT", "read_timeout"),
    ("VALKEY_WRITE_TIMEOUT", "write_timeout"),
    ("VALKEY_BLOCKING_SLICE", "blocking_slice"),
    ("VALKEY_TLS_CA_FILE", "tls_ca_file"),
    ("VALKEY_TLS_SERVER_NAME", "tls_server_name"),
    ("VALKEY_TLS_INSECURE", "tls_insecure"),
    ("VALKEY_TLS_CLIENT_CERT_FILE", "tls_client_cert_file"),
    ("VALKEY_TLS_CLIENT_KEY_FILE", "tls_client_key_file"),
];

/// `1`/`true`/`yes`/`on` or `0`/`false`/`no`/`off`, any case.
fn parse_bool_env(name: &str, value: &str) -> Result<bool> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(Error::config(format!(
            "{name}: invalid value '{}' (expected 1/true/yes/on or 0/false/no/off)",
            value.escape_debug()
        ))),
    }
}

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

impl ConnectionConfig {
    /// Build a configuration from the process environment; see
    /// [`ConnectionConfig::from_env_vars`] for the variables read.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) naming the variable with a bad value
    /// (including one that is not valid UTF-8).
    pub fn from_env() -> Result<ConnectionConfig> {
        check_env_unicode(ENV_VARS)?;
        check_env_unicode(&PARAM_ENV_VARS.map(|(name, _)| name))?;
        ConnectionConfig::from_env_vars(|name| std::env::var(name).ok())
    }

    /// Build a configuration from environment variables looked up through `get` (which
    /// returns `None` for an unset variable), so that it can be tested without touching the
    /// process environment.
    ///
    /// * `VALKEY_URL`, or when it is unset `REDIS_URL`: when set and non-empty, the whole
    ///   configuration comes from this URL (see [`ConnectionConfig::from_url`]) and **all the
    ///   other variables below are ignored**: the URL wins.
    /// * Otherwise: `VALKEY_HOST` (default `127.0.0.1`; an IPv6 address may be bracketed or
    ///   not), `VALKEY_PORT` (default 6379), `VALKEY_USER`, `VALKEY_PASSWORD`, `VALKEY_DB`
    ///   (default 0) and `VALKEY_TLS` (`1`/`true`/`yes`/`on` or `0`/`false`/`no`/`off`, any case;
    ///   default off). These values are taken literally (no percent-decoding).
    ///   `VALKEY_MAX_BULK_LEN`, `VALKEY_MAX_AGGREGATE_LEN`, `VALKEY_MAX_DEPTH` and
    ///   `VALKEY_MAX_LINE_LEN` set the decoder [`Limits`](crate::resp::Limits) (positive whole numbers; the URL
    ///   form is the query parameter of the same name in lower case).
    ///   Every other URL query parameter has a variable too, read by the URL's rules (values
    ///   taken literally): `VALKEY_PROTOCOL`, `VALKEY_CLIENT_NAME`, `VALKEY_CONNECT_TIMEOUT`,
    ///   `VALKEY_READ_TIMEOUT`, `VALKEY_WRITE_TIMEOUT`, `VALKEY_BLOCKING_SLICE`, and with
    ///   `VALKEY_TLS` on (otherwise they are an error): `VALKEY_TLS_CA_FILE`,
    ///   `VALKEY_TLS_CLIENT_CERT_FILE` with `VALKEY_TLS_CLIENT_KEY_FILE` (both or neither),
    ///   `VALKEY_TLS_SERVER_NAME` and `VALKEY_TLS_INSECURE` (a yes/no value as for
    ///   `VALKEY_TLS`; **danger**).
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
        for name in ["VALKEY_URL", "REDIS_URL"] {
            if let Some(url) = var(name) {
                return url_parse(&url).map_err(|m| Error::config(format!("{name}: {m}")));
            }
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
            if parse_bool_env("VALKEY_TLS", &tls)? {
                cfg.tls = Some(TlsConfig::default());
            }
        }
        let mut insecure = None;
        for (name, param) in PARAM_ENV_VARS {
            let Some(value) = var(name) else { continue };
            if param.starts_with("tls_") && cfg.tls.is_none() {
                return Err(env_err(name, "requires VALKEY_TLS=1".to_owned()));
            }
            let value = match param {
                "tls_insecure" => parse_bool_env(name, &value)?.to_string(),
                _ => value,
            };
            // The pair is checked together (both or neither), by the URL's rules.
            if param == "tls_client_key_file" && var("VALKEY_TLS_CLIENT_CERT_FILE").is_some() {
                continue; // applied with the certificate
            }
            let mut query = format!("{param}={}", percent_encode(&value));
            if param == "tls_client_cert_file" {
                if let Some(key) = var("VALKEY_TLS_CLIENT_KEY_FILE") {
                    query.push_str(&format!("&tls_client_key_file={}", percent_encode(&key)));
                }
            }
            let tls = cfg.tls.is_some();
            apply_query(&mut cfg, &query, false, tls, &mut insecure).map_err(|m| {
                let m = m
                    .replace("'tls_client_key_file'", "'VALKEY_TLS_CLIENT_KEY_FILE'")
                    .replace("'tls_client_cert_file'", "'VALKEY_TLS_CLIENT_CERT_FILE'");
                env_err(name, m)
            })?;
        }
        if let (Some(tls), Some(insecure)) = (cfg.tls.as_mut(), insecure) {
            tls.danger_accept_invalid_certs = insecure;
            tls.danger_accept_invalid_hostnames = insecure;
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
