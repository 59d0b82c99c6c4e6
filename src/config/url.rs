//! URL parsing: scheme, user info, host and port, database, query parameters, fragment.
//! Messages are plain strings; callers wrap them into `Error::config`. No message may
//! contain the password.

use std::path::PathBuf;

use super::connection::DEFAULT_PORT;
use super::duration::parse_duration;
use super::limits::set_limit;
use super::percent::percent_decode;
use super::{ConnectionConfig, Msg, Protocol, Secret, TlsConfig};

const SCHEMES: &str =
    "redis://, rediss://, valkey://, valkeys://, unix://, redis+unix://, valkey+unix://";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Transport {
    Tcp { tls: bool },
    Unix,
}

pub(super) fn url_parse(url: &str) -> Msg<ConnectionConfig> {
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
pub(super) fn check_host(host: &str) -> Msg<()> {
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
pub(super) fn parse_port(s: &str, ctx: &str) -> Msg<u16> {
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
pub(super) fn parse_db(s: &str, ctx: &str) -> Msg<u32> {
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

pub(super) fn apply_query(
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
