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
    // FILES: read tls.ca_file / client cert files here once config has them.
    if let Some((cert, key)) = &tls.client_identity_pem {
        let id = native_tls::Identity::from_pkcs8(cert, key.expose().as_bytes())
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
