//! [`TlsConfig`]: TLS settings (certificates, server name, danger flags).

use std::fmt;
use std::path::PathBuf;

use super::Secret;

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
