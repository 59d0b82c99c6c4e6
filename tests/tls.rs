//! TLS against real servers: Redis 7.0 with its built-in TLS, Valkey 9.1 behind stunnel.
//! Verification on by default, unknown CA refused, host-name mismatch refused, the explicit
//! insecure opt-out, TLS 1.2 as the minimum, custom CA from a file, and rediss:// URLs.
#![cfg(all(feature = "testkit", feature = "tls"))]

mod support;

use valkit::testkit::{Server, ServerOptions, TestCerts, TlsFront};
use valkit::{cmd, Connection, ConnectionConfig, ErrorKind, Execute, TlsConfig, Value};

fn tls_server(kind: valkit::testkit::ServerKind) -> Server {
    ServerOptions::new(kind).tls(true).start().unwrap()
}

fn ping(cfg: &ConnectionConfig) -> valkit::Result<Value> {
    Connection::open(cfg)?.exec(&cmd("PING"))
}

#[test]
fn verified_connection_works_for_both_servers_and_protocols() {
    for (kind, proto) in support::combos() {
        let server = tls_server(kind);
        let mut cfg = server.tls_config().unwrap();
        cfg.protocol = proto;
        assert_eq!(
            ping(&cfg).unwrap(),
            Value::Simple("PONG".into()),
            "{kind:?} {proto:?}"
        );
        // A large value over TLS: the rest of its body read straight into its own buffer
        // (zero-filled chunks here, no uninitialised reads through TLS).
        let conn = Connection::open(&cfg).unwrap();
        let big: Vec<u8> = (0..300_000u32).map(|i| (i % 249) as u8).collect();
        conn.exec(&cmd("SET").arg("tls:big").arg(big.as_slice()))
            .unwrap();
        let got: Option<Vec<u8>> =
            valkit::Commands::query(&conn, &cmd("GET").arg("tls:big")).unwrap();
        assert!(
            got.as_deref() == Some(&big[..]),
            "{kind:?} {proto:?}: typed"
        );
        let got = conn.exec(&cmd("GET").arg("tls:big")).unwrap();
        assert!(got == Value::Bulk(big.clone().into()), "{kind:?} {proto:?}");
        assert_eq!(
            conn.exec(&cmd("PING")).unwrap(),
            Value::Simple("PONG".into())
        );
    }
}

#[test]
fn unknown_ca_wrong_host_and_insecure_opt_out() {
    let certs = TestCerts::get().unwrap();
    for kind in support::kinds() {
        let server = tls_server(kind);
        let good = server.tls_config().unwrap();

        // Trusting only an unrelated CA: refused.
        let mut cfg = good.clone();
        cfg.tls = Some(TlsConfig::new().with_ca_pem(certs.other_ca_pem()));
        let err = ping(&cfg).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Tls, "{kind:?}: {err}");

        // No extra CA at all (system store only): refused too.
        let mut cfg = good.clone();
        cfg.tls = Some(TlsConfig::default());
        assert_eq!(ping(&cfg).unwrap_err().kind(), ErrorKind::Tls);

        // The right CA but a name the certificate does not carry: refused.
        let mut cfg = good.clone();
        if let Some(t) = cfg.tls.as_mut() {
            t.server_name = Some("wrong.example".into());
        }
        let err = ping(&cfg).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Tls, "{kind:?}: {err}");

        // The explicit opt-out accepts the unknown CA.
        let mut cfg = good.clone();
        cfg.tls = Some(TlsConfig::new().danger_accept_invalid());
        assert_eq!(ping(&cfg).unwrap(), Value::Simple("PONG".into()));

        // A plain-text client on the TLS port fails cleanly (no hang, no panic).
        let mut cfg = good.clone();
        cfg.tls = None;
        cfg.connect_timeout = std::time::Duration::from_secs(2);
        assert!(ping(&cfg).is_err());
    }
}

#[test]
fn ca_file_from_a_url_and_ip_literal_host() {
    let certs = TestCerts::get().unwrap();
    for kind in support::kinds() {
        let server = tls_server(kind);
        let port = server.tls_port().unwrap();
        let ca = certs.ca_cert_path();
        let url = format!("rediss://localhost:{port}/?tls_ca_file={}", ca.display());
        let cfg = ConnectionConfig::from_url(&url).unwrap();
        assert_eq!(ping(&cfg).unwrap(), Value::Simple("PONG".into()));
        // valkeys:// is the same thing; an IP literal is verified against the IP SAN.
        let url = format!("valkeys://127.0.0.1:{port}?tls_ca_file={}", ca.display());
        let cfg = ConnectionConfig::from_url(&url).unwrap();
        assert_eq!(ping(&cfg).unwrap(), Value::Simple("PONG".into()));
        // #insecure needs no CA.
        let cfg =
            ConnectionConfig::from_url(&format!("rediss://localhost:{port}#insecure")).unwrap();
        assert_eq!(ping(&cfg).unwrap(), Value::Simple("PONG".into()));
    }
}

/// `VALKEY_TLS=1` and a private CA through the environment: no URL written.
#[test]
fn tls_with_a_private_ca_from_environment_variables() {
    let certs = TestCerts::get().unwrap();
    for kind in support::kinds() {
        let server = tls_server(kind);
        let port = server.tls_port().unwrap().to_string();
        let ca = certs.ca_cert_path().display().to_string();
        let vars = |with_ca: bool| {
            let (port, ca) = (port.clone(), ca.clone());
            move |name: &str| match name {
                "VALKEY_HOST" => Some("localhost".to_owned()),
                "VALKEY_PORT" => Some(port.clone()),
                "VALKEY_TLS" => Some("1".to_owned()),
                "VALKEY_TLS_CA_FILE" if with_ca => Some(ca.clone()),
                _ => None,
            }
        };
        let cfg = ConnectionConfig::from_env_vars(vars(true)).unwrap();
        assert_eq!(ping(&cfg).unwrap(), Value::Simple("PONG".into()));
        // Without the CA variable the private certificate is not trusted.
        let cfg = ConnectionConfig::from_env_vars(vars(false)).unwrap();
        assert_eq!(ping(&cfg).unwrap_err().kind(), ErrorKind::Tls);
    }
}

/// A server that offers only TLS 1.1 must be refused: the minimum is TLS 1.2.
#[test]
fn tls_below_1_2_is_refused() {
    let upstream = support::shared(valkit::testkit::ServerKind::Valkey);
    let front = TlsFront::builder(upstream.port())
        .max_tls_version(Some("TLSv1.1"))
        .start()
        .unwrap();
    let mut cfg = ConnectionConfig::new("localhost", front.port());
    cfg.tls = Some(TlsConfig::new().with_ca_pem(TestCerts::get().unwrap().ca_pem()));
    let err = ping(&cfg).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");

    // The same front with TLS 1.2 allowed works, so the refusal above is about the version.
    let front = TlsFront::start(upstream.port()).unwrap();
    let mut ok = cfg.clone();
    ok.addr = valkit::Addr::Tcp {
        host: "localhost".into(),
        port: front.port(),
    };
    assert_eq!(ping(&ok).unwrap(), Value::Simple("PONG".into()));
}

/// Mutual TLS (Redis 7.0's built-in TLS with `tls-auth-clients yes`; the Valkey build has
/// no TLS and its stunnel front does not ask for client certificates): a client
/// certificate signed by the server's CA is accepted, no certificate is refused.
#[test]
fn mutual_tls_with_a_client_certificate() {
    let certs = TestCerts::get().unwrap();
    let server = ServerOptions::new(valkit::testkit::ServerKind::Redis)
        .tls(true)
        .arg("tls-auth-clients", "yes")
        .start()
        .unwrap();
    let mut with_cert = server.tls_config().unwrap();
    if let Some(t) = with_cert.tls.as_mut() {
        t.client_cert_file = Some(certs.client_cert_path());
        t.client_key_file = Some(certs.client_key_path());
    }
    assert_eq!(ping(&with_cert).unwrap(), Value::Simple("PONG".into()));

    // The same identity given as PEM bytes instead of files.
    let mut pem = server.tls_config().unwrap();
    if let Some(t) = pem.tls.as_mut() {
        t.client_identity_pem = Some((
            certs.client_cert_pem().to_vec(),
            String::from_utf8(certs.client_key_pem().to_vec())
                .unwrap()
                .into(),
        ));
    }
    assert_eq!(ping(&pem).unwrap(), Value::Simple("PONG".into()));

    // The same identity from the environment.
    let port = server.tls_port().unwrap().to_string();
    let (ca, cert, key) = (
        certs.ca_cert_path().display().to_string(),
        certs.client_cert_path().display().to_string(),
        certs.client_key_path().display().to_string(),
    );
    let from_env = ConnectionConfig::from_env_vars(|name| match name {
        "VALKEY_HOST" => Some("localhost".to_owned()),
        "VALKEY_PORT" => Some(port.clone()),
        "VALKEY_TLS" => Some("on".to_owned()),
        "VALKEY_TLS_CA_FILE" => Some(ca.clone()),
        "VALKEY_TLS_CLIENT_CERT_FILE" => Some(cert.clone()),
        "VALKEY_TLS_CLIENT_KEY_FILE" => Some(key.clone()),
        _ => None,
    })
    .unwrap();
    assert_eq!(ping(&from_env).unwrap(), Value::Simple("PONG".into()));

    // Without a client certificate the server ends the handshake or the connection.
    let without = server.tls_config().unwrap();
    let err = ping(&without).unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Tls | ErrorKind::Io),
        "{err}"
    );

    // A certificate and no key is a configuration error, caught before connecting.
    let mut half = server.tls_config().unwrap();
    if let Some(t) = half.tls.as_mut() {
        t.client_cert_file = Some(certs.client_cert_path());
    }
    assert_eq!(ping(&half).unwrap_err().kind(), ErrorKind::Config);
}
