//! TLS over TCP with native-tls: verification on by default, TLS 1.2 minimum, SNI, custom CA.

use std::net::TcpStream;

use super::stream::Stream;
use crate::config::TlsConfig;
use crate::error::{Error, ErrorKind, Result};

/// Run the TLS handshake on `tcp` for `host`.
#[cfg(feature = "tls")]
pub(crate) fn wrap(tcp: TcpStream, host: &str, tls: &TlsConfig) -> Result<Stream> {
    let connector = connector(tls)?;
    let name = tls.server_name.as_deref().unwrap_or(host);
    match connector.connect(name, tcp) {
        Ok(s) => Ok(Stream::Tls(Box::new(s))),
        Err(native_tls::HandshakeError::Failure(e)) => Err(Error::new(
            ErrorKind::Tls,
            format!("TLS handshake with {name} failed: {e}"),
        )
        .with_source(e)),
        Err(native_tls::HandshakeError::WouldBlock(_)) => Err(Error::new(
            ErrorKind::Timeout,
            format!("TLS handshake with {name} timed out"),
        )),
    }
}

#[cfg(feature = "tls")]
fn connector(tls: &TlsConfig) -> Result<native_tls::TlsConnector> {
    let mut b = native_tls::TlsConnector::builder();
    b.min_protocol_version(Some(native_tls::Protocol::Tlsv12));
    for pem in &tls.ca_certs_pem {
        let cert = native_tls::Certificate::from_pem(pem)
            .map_err(|e| tls_config_error("CA certificate", e))?;
        b.add_root_certificate(cert);
    }
    if let Some(path) = &tls.ca_file {
        let pem = read_file("CA file", path)?;
        let cert = native_tls::Certificate::from_pem(&pem)
            .map_err(|e| tls_config_error("CA certificate", e))?;
        b.add_root_certificate(cert);
    }
    let identity = match (&tls.client_cert_file, &tls.client_key_file) {
        (Some(c), Some(k)) => Some((
            read_file("client certificate", c)?,
            read_file("client key", k)?,
        )),
        (None, None) => None,
        _ => {
            return Err(Error::new(
                ErrorKind::Config,
                "a TLS client certificate and key must be given together",
            ))
        }
    };
    let identity = identity.or_else(|| {
        tls.client_identity_pem
            .as_ref()
            .map(|(c, k)| (c.clone(), k.expose().as_bytes().to_vec()))
    });
    if let Some((cert, key)) = identity {
        let id = native_tls::Identity::from_pkcs8(&cert, &key)
            .map_err(|e| tls_config_error("client identity", e))?;
        b.identity(id);
    }
    if tls.danger_accept_invalid_certs {
        log::warn!("TLS certificate verification is disabled (danger_accept_invalid_certs)");
        b.danger_accept_invalid_certs(true);
    }
    if tls.danger_accept_invalid_hostnames {
        log::warn!("TLS host name verification is disabled (danger_accept_invalid_hostnames)");
        b.danger_accept_invalid_hostnames(true);
    }
    b.build().map_err(|e| tls_config_error("TLS connector", e))
}

#[cfg(feature = "tls")]
fn read_file(what: &str, path: &std::path::Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        Error::new(
            ErrorKind::Config,
            format!("read {what} {}: {e}", path.display()),
        )
        .with_source(e)
    })
}

#[cfg(feature = "tls")]
fn tls_config_error(what: &str, e: native_tls::Error) -> Error {
    Error::new(ErrorKind::Tls, format!("invalid {what}: {e}")).with_source(e)
}

/// Without the `tls` feature, a TLS configuration is an error, never a silent downgrade.
#[cfg(not(feature = "tls"))]
pub(crate) fn wrap(_tcp: TcpStream, _host: &str, _tls: &TlsConfig) -> Result<Stream> {
    Err(Error::new(
        ErrorKind::Tls,
        "TLS requested but valkit was built without the `tls` feature",
    ))
}
