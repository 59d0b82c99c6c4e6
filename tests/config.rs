//! URL and environment parsing of `ConnectionConfig`, through the public API only.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use valkit::{Addr, ConnectionConfig, ErrorKind, Protocol, Secret, TlsConfig};

/// The password used in every URL that carries one; it must never be printed.
const PW: &str = "Hunter2Secret";

fn tcp(host: &str, port: u16) -> ConnectionConfig {
    ConnectionConfig::new(host, port)
}

fn with(mut cfg: ConnectionConfig, f: impl FnOnce(&mut ConnectionConfig)) -> ConnectionConfig {
    f(&mut cfg);
    cfg
}

fn tls(cfg: ConnectionConfig) -> ConnectionConfig {
    with(cfg, |c| c.tls = Some(TlsConfig::default()))
}

fn tls_with(cfg: ConnectionConfig, f: impl FnOnce(&mut TlsConfig)) -> ConnectionConfig {
    let mut t = TlsConfig::default();
    f(&mut t);
    with(cfg, |c| c.tls = Some(t))
}

fn parse(url: &str) -> ConnectionConfig {
    match ConnectionConfig::from_url(url) {
        Ok(cfg) => cfg,
        Err(e) => panic!("{url}: unexpected error {e}"),
    }
}

#[test]
fn valid_urls() {
    let local = || tcp("localhost", 6379);
    let cases: Vec<(&str, ConnectionConfig)> = vec![
        // Schemes.
        ("redis://localhost", local()),
        ("valkey://localhost", local()),
        ("rediss://localhost", tls(local())),
        ("valkeys://localhost", tls(local())),
        ("redis://localhost:6380", tcp("localhost", 6380)),
        ("redis://localhost:1", tcp("localhost", 1)),
        ("redis://localhost:65535", tcp("localhost", 65535)),
        ("redis://10.0.0.7:7000", tcp("10.0.0.7", 7000)),
        ("redis://my_host.example-1.com", tcp("my_host.example-1.com", 6379)),
        // IPv6.
        ("redis://[::1]:6380", tcp("::1", 6380)),
        ("redis://[::1]", tcp("::1", 6379)),
        ("rediss://[2001:db8::1]:7000/3", {
            with(tls(tcp("2001:db8::1", 7000)), |c| c.db = 3)
        }),
        // User and password.
        ("redis://user@localhost", with(local(), |c| c.username = Some("user".into()))),
        ("redis://:pw@localhost", with(local(), |c| c.password = Some("pw".into()))),
        ("redis://user:pw@localhost", {
            with(local(), |c| {
                c.username = Some("user".into());
                c.password = Some(Secret::new("pw"));
            })
        }),
        ("redis://user:@localhost", with(local(), |c| c.username = Some("user".into()))),
        ("redis://@localhost", local()),
        ("redis://:@localhost", local()),
        // Password with ':' and an unescaped '@' (the last '@' ends the user info).
        ("redis://u:a:b@localhost", {
            with(local(), |c| {
                c.username = Some("u".into());
                c.password = Some("a:b".into());
            })
        }),
        ("redis://u:p@ss@localhost", {
            with(local(), |c| {
                c.username = Some("u".into());
                c.password = Some("p@ss".into());
            })
        }),
        // Percent-decoding exactly once.
        ("redis://us%40er:p%2540w%3A%2F%3F%23@localhost", {
            with(local(), |c| {
                c.username = Some("us@er".into());
                c.password = Some("p%40w:/?#".into());
            })
        }),
        ("redis://%C3%A9t%C3%A9:%20@localhost", {
            with(local(), |c| {
                c.username = Some("été".into());
                c.password = Some(" ".into());
            })
        }),
        ("redis://u:a+b@localhost", {
            with(local(), |c| {
                c.username = Some("u".into());
                c.password = Some("a+b".into());
            })
        }),
        // Database.
        ("redis://localhost/", local()),
        ("redis://localhost/0", local()),
        ("redis://localhost/15", with(local(), |c| c.db = 15)),
        ("redis://localhost:6379/4294967295", with(local(), |c| c.db = u32::MAX)),
        ("redis://localhost?db=7", with(local(), |c| c.db = 7)),
        ("redis://localhost/?db=7", with(local(), |c| c.db = 7)),
        ("redis://localhost?db=0", local()),
        // Query parameters.
        ("redis://localhost?protocol=resp2", with(local(), |c| c.protocol = Protocol::Resp2)),
        ("redis://localhost?protocol=2", with(local(), |c| c.protocol = Protocol::Resp2)),
        // An explicit RESP3 does not fall back to RESP2 when the server lacks HELLO.
        (
            "redis://localhost?protocol=resp3",
            with(local(), |c| c.resp2_fallback = false),
        ),
        (
            "redis://localhost?protocol=3",
            with(local(), |c| c.resp2_fallback = false),
        ),
        ("redis://localhost?client_name=app-1", {
            with(local(), |c| c.client_name = Some("app-1".into()))
        }),
        ("redis://localhost?name=w%2Fx", with(local(), |c| c.client_name = Some("w/x".into()))),
        ("redis://localhost?name=%2541", with(local(), |c| c.client_name = Some("%41".into()))),
        ("redis://localhost?connect_timeout=250ms", {
            with(local(), |c| c.connect_timeout = Duration::from_millis(250))
        }),
        ("redis://localhost?connect_timeout=1m", {
            with(local(), |c| c.connect_timeout = Duration::from_secs(60))
        }),
        ("redis://localhost?read_timeout=2s", {
            with(local(), |c| c.read_timeout = Some(Duration::from_secs(2)))
        }),
        ("redis://localhost?read_timeout=1.5s", {
            with(local(), |c| c.read_timeout = Some(Duration::from_millis(1500)))
        }),
        ("redis://localhost?read_timeout=0.25ms", {
            with(local(), |c| c.read_timeout = Some(Duration::from_micros(250)))
        }),
        ("redis://localhost?read_timeout=0", with(local(), |c| c.read_timeout = None)),
        ("redis://localhost?read_timeout=none", with(local(), |c| c.read_timeout = None)),
        ("redis://localhost?read_timeout=0s", with(local(), |c| c.read_timeout = None)),
        ("redis://localhost?write_timeout=none", with(local(), |c| c.write_timeout = None)),
        ("redis://localhost?write_timeout=100ms", {
            with(local(), |c| c.write_timeout = Some(Duration::from_millis(100)))
        }),
        ("redis://localhost?blocking_slice=250ms", {
            with(local(), |c| c.blocking_slice = Some(Duration::from_millis(250)))
        }),
        ("redis://localhost?blocking_slice=none", with(local(), |c| c.blocking_slice = None)),
        ("redis://localhost?blocking_slice=0", with(local(), |c| c.blocking_slice = None)),
        ("redis://localhost?&db=1&", with(local(), |c| c.db = 1)),
        (
            "redis://u:pw@localhost:7/3?protocol=resp2&client_name=x&connect_timeout=1s&read_timeout=none&write_timeout=3s",
            with(tcp("localhost", 7), |c| {
                c.username = Some("u".into());
                c.password = Some("pw".into());
                c.db = 3;
                c.protocol = Protocol::Resp2;
                c.client_name = Some("x".into());
                c.connect_timeout = Duration::from_secs(1);
                c.read_timeout = None;
                c.write_timeout = Some(Duration::from_secs(3));
            }),
        ),
        // TLS options.
        ("rediss://localhost?tls_ca_file=%2Fetc%2Fca.pem", {
            tls_with(local(), |t| t.ca_file = Some("/etc/ca.pem".into()))
        }),
        ("rediss://localhost?tls_ca_file=/etc/ca.pem", {
            tls_with(local(), |t| t.ca_file = Some("/etc/ca.pem".into()))
        }),
        ("valkeys://localhost?tls_server_name=cache.example", {
            tls_with(local(), |t| t.server_name = Some("cache.example".into()))
        }),
        ("rediss://localhost?tls_client_cert_file=c.pem&tls_client_key_file=k.pem", {
            tls_with(local(), |t| {
                t.client_cert_file = Some("c.pem".into());
                t.client_key_file = Some("k.pem".into());
            })
        }),
        ("rediss://localhost?tls_insecure=true", {
            tls_with(local(), |t| {
                t.danger_accept_invalid_certs = true;
                t.danger_accept_invalid_hostnames = true;
            })
        }),
        ("rediss://localhost?tls_insecure=false", tls(local())),
        ("rediss://localhost#insecure", {
            tls_with(local(), |t| {
                t.danger_accept_invalid_certs = true;
                t.danger_accept_invalid_hostnames = true;
            })
        }),
        ("rediss://u:pw@localhost:6380/2?tls_insecure=true#insecure", {
            let c = with(tcp("localhost", 6380), |c| {
                c.username = Some("u".into());
                c.password = Some("pw".into());
                c.db = 2;
            });
            tls_with(c, |t| {
                t.danger_accept_invalid_certs = true;
                t.danger_accept_invalid_hostnames = true;
            })
        }),
        // Unix sockets.
        ("unix:///tmp/valkey.sock", ConnectionConfig::unix("/tmp/valkey.sock")),
        ("redis+unix:///tmp/valkey.sock", ConnectionConfig::unix("/tmp/valkey.sock")),
        ("valkey+unix:///run/v/s.sock?db=2", {
            with(ConnectionConfig::unix("/run/v/s.sock"), |c| c.db = 2)
        }),
        ("unix:///tmp/my%20dir/s.sock", ConnectionConfig::unix("/tmp/my dir/s.sock")),
        ("unix:///tmp/a@b.sock", ConnectionConfig::unix("/tmp/a@b.sock")),
        ("redis://localhost?client_name=a@b", {
            with(local(), |c| c.client_name = Some("a@b".into()))
        }),
        ("unix://u:pw@/tmp/s.sock?protocol=resp2", {
            with(ConnectionConfig::unix("/tmp/s.sock"), |c| {
                c.username = Some("u".into());
                c.password = Some("pw".into());
                c.protocol = Protocol::Resp2;
            })
        }),
    ];
    for (url, expected) in cases {
        let got = parse(url);
        assert_eq!(got, expected, "{url}");
        // FromStr is the same parser.
        let via_from_str: ConnectionConfig = url.parse().expect(url);
        assert_eq!(via_from_str, expected, "{url} via FromStr");
    }
}

#[test]
fn addr_variants() {
    assert_eq!(
        parse("redis://[::1]:6380").addr,
        Addr::Tcp {
            host: "::1".into(),
            port: 6380
        }
    );
    assert_eq!(
        parse("unix:///tmp/s.sock").addr,
        Addr::Unix(PathBuf::from("/tmp/s.sock"))
    );
}

#[test]
fn invalid_urls() {
    // (url, text the message must contain). Every URL with a password uses PW.
    let cases: &[(&str, &str)] = &[
        // Schemes.
        ("http://localhost", "scheme 'http'"),
        ("REDIS://localhost", "scheme 'REDIS'"),
        ("Redis://localhost", "lowercase"),
        ("redis+tcp://localhost", "scheme 'redis+tcp'"),
        ("localhost", "missing scheme"),
        ("", "missing scheme"),
        ("redis:localhost", "'//'"),
        ("redis:/localhost", "'//'"),
        // Host and port.
        ("redis://", "missing host"),
        ("redis://:6379", "missing host"),
        ("redis://u:Hunter2Secret@", "missing host"),
        ("redis://u:Hunter2Secret@:6379/1", "missing host"),
        // Without an '@', "host:port" may be "user:password": the port is never quoted
        // (issue 9, item 2: `redis://default:secret` said "invalid port 'secret'").
        (
            "redis://localhost:abc",
            "invalid port in URL (expected 1..=65535",
        ),
        ("redis://default:Hunter2Secret", "invalid port in URL"),
        ("redis://default:Hunter2Secret/0", "invalid port in URL"),
        ("redis://default:Hunter2Secret?db=1", "invalid port in URL"),
        (
            "valkeys://default:Hunter2Secret#insecure",
            "invalid port in URL",
        ),
        ("redis://:Hunter2Secret", "missing host"),
        ("redis://default:Hunter2:Secret", "invalid port in URL"),
        (
            "unix://default:Hunter2Secret",
            "unexpected host in a Unix socket URL",
        ),
        (
            "unix://default:Hunter2Secret/tmp/s.sock",
            "unexpected host in a Unix socket URL",
        ),
        (
            "redis://u:Hunter2Secret@localhost:abc",
            "invalid port 'abc' in URL",
        ),
        ("redis://localhost:", "invalid port in URL"),
        ("redis://localhost:0", "invalid port in URL"),
        ("redis://localhost:65536", "invalid port in URL"),
        (
            "redis://u:Hunter2Secret@localhost:65536",
            "invalid port '65536'",
        ),
        ("redis://localhost:+80", "invalid port in URL"),
        ("redis://localhost:-1", "invalid port in URL"),
        ("redis://loc alhost", "invalid host 'loc alhost'"),
        ("redis://[::1", "unclosed '['"),
        ("redis://[nothex]:1", "invalid IPv6 address '[nothex]'"),
        ("redis://[::1]x", "unexpected 'x' after IPv6"),
        ("redis://[::1]:99999", "invalid port '99999'"),
        // User info.
        (
            "redis://u%zz:Hunter2Secret@localhost",
            "percent-encoding in the user name",
        ),
        (
            "redis://u:Hunter2Secret%zz@localhost",
            "percent-encoding in the password",
        ),
        (
            "redis://u:Hunter2Secret%4@localhost",
            "percent-encoding in the password",
        ),
        (
            "redis://u:Hunter2Secret%ff@localhost",
            "percent-encoding in the password",
        ),
        // Unescaped '/', '?', '#' in a password push it out of the authority.
        (
            "redis://u:Hunter2/Secret@localhost",
            "unescaped character in the password",
        ),
        (
            "redis://u:Hunter2?Secret@localhost",
            "unescaped character in the password",
        ),
        (
            "redis://u:Hunter2#Secret@localhost",
            "unescaped character in the password",
        ),
        (
            "redis://u:Hunter2?x=Secret@localhost",
            "unescaped character in the password",
        ),
        (
            "redis://u:Hunter2?Secret=x@localhost",
            "unescaped character in the password",
        ),
        (
            "redis://u:Hunter2?db=1&Secret=x@localhost",
            "unescaped character in the password",
        ),
        (
            "redis://Hunter2/Secret@localhost",
            "unescaped character in the password",
        ),
        (
            "unix://u:Hunter2/Secret@/tmp/s.sock",
            "unescaped character in the password",
        ),
        // Database.
        ("redis://localhost/abc", "invalid db 'abc'"),
        ("redis://localhost/01", "invalid db '01'"),
        ("redis://localhost/00", "invalid db '00'"),
        ("redis://localhost/-1", "invalid db '-1'"),
        ("redis://localhost/1/2", "invalid db '1/2'"),
        ("redis://localhost/4294967296", "invalid db '4294967296'"),
        ("redis://localhost?db=x", "invalid db 'x'"),
        ("redis://u:Hunter2Secret@localhost/1?db=1", "db given twice"),
        ("redis://localhost/0?db=2", "db given twice"),
        // Query parameters.
        ("redis://localhost?foo=1", "unknown query parameter 'foo'"),
        (
            "redis://u:Hunter2Secret@localhost?password=x",
            "unknown query parameter 'password'",
        ),
        ("redis://localhost?DB=1", "unknown query parameter 'DB'"),
        (
            "redis://localhost?db=1&db=2",
            "duplicate query parameter 'db'",
        ),
        (
            "redis://localhost?name=a&client_name=b",
            "duplicate query parameter 'client_name'",
        ),
        (
            "redis://localhost?db",
            "empty value for query parameter 'db'",
        ),
        (
            "redis://localhost?client_name=",
            "empty value for query parameter 'client_name'",
        ),
        (
            "redis://localhost?client_name=a%20b",
            "query parameter 'client_name'",
        ),
        (
            "redis://localhost?client_name=%zz",
            "percent-encoding in the value of query parameter 'client_name'",
        ),
        (
            "redis://localhost?protocol=resp4",
            "invalid value 'resp4' for query parameter 'protocol'",
        ),
        ("redis://localhost?protocol=RESP3", "invalid value 'RESP3'"),
        ("redis://localhost?read_timeout=5", "use a unit: ms, s, m"),
        ("redis://localhost?read_timeout=1.5", "use a unit: ms, s, m"),
        (
            "redis://localhost?write_timeout=5h",
            "invalid duration '5h' for query parameter 'write_timeout'",
        ),
        (
            "redis://localhost?read_timeout=-1s",
            "invalid duration '-1s'",
        ),
        (
            "redis://localhost?read_timeout=1.s",
            "invalid duration '1.s'",
        ),
        (
            "redis://localhost?read_timeout=.5s",
            "invalid duration '.5s'",
        ),
        (
            "redis://localhost?read_timeout=1..5s",
            "invalid duration '1..5s'",
        ),
        ("redis://localhost?read_timeout=s", "invalid duration 's'"),
        (
            "redis://localhost?connect_timeout=0",
            "'connect_timeout' must be greater than zero",
        ),
        (
            "redis://localhost?connect_timeout=none",
            "'connect_timeout' must be greater than zero",
        ),
        (
            "redis://localhost?connect_timeout=0ms",
            "'connect_timeout' must be greater than zero",
        ),
        (
            "redis://localhost?connect_timeout=99999999999999999999m",
            "invalid duration",
        ),
        // TLS options need a TLS scheme.
        (
            "redis://localhost?tls_ca_file=/ca.pem",
            "'tls_ca_file' requires a TLS scheme",
        ),
        (
            "valkey://localhost?tls_server_name=x",
            "'tls_server_name' requires a TLS scheme",
        ),
        (
            "redis://localhost?tls_insecure=true",
            "'tls_insecure' requires a TLS scheme",
        ),
        (
            "unix:///s.sock?tls_insecure=true",
            "'tls_insecure' requires a TLS scheme",
        ),
        (
            "rediss://localhost?tls_insecure=yes",
            "invalid value 'yes' for query parameter 'tls_insecure'",
        ),
        (
            "rediss://localhost?tls_client_cert_file=c.pem",
            "requires 'tls_client_key_file'",
        ),
        (
            "rediss://localhost?tls_client_key_file=k.pem",
            "requires 'tls_client_cert_file'",
        ),
        (
            "rediss://localhost?tls_server_name=a%20b",
            "query parameter 'tls_server_name'",
        ),
        // Fragments.
        (
            "redis://localhost#insecure",
            "'#insecure' fragment requires a TLS scheme",
        ),
        ("rediss://localhost#secure", "fragment '#secure'"),
        ("rediss://localhost#", "fragment '#'"),
        ("rediss://localhost#INSECURE", "fragment '#INSECURE'"),
        (
            "rediss://localhost?tls_insecure=false#insecure",
            "conflicting",
        ),
        // Unix sockets.
        ("unix://", "missing socket path"),
        ("unix:///", "missing socket path"),
        ("unix://localhost/tmp/s.sock", "unexpected host 'localhost'"),
        (
            "unix:///tmp/s%zz.sock",
            "percent-encoding in the socket path",
        ),
        ("unix:///tmp/s.sock?db=x", "invalid db 'x'"),
        ("unix:tmp/s.sock", "'//'"),
    ];
    for (url, needle) in cases {
        let err = match ConnectionConfig::from_url(url) {
            Ok(cfg) => panic!("{url}: expected an error, got {cfg:?}"),
            Err(e) => e,
        };
        assert_eq!(err.kind(), ErrorKind::Config, "{url}: {err}");
        let display = err.to_string();
        let debug = format!("{err:?}");
        assert!(
            display.contains(needle),
            "{url}: message {display:?} should mention {needle:?}"
        );
        for text in [&display, &debug] {
            for fragment in [PW, "Hunter2", "Secret"] {
                assert!(
                    !text.contains(fragment),
                    "{url}: message {text:?} leaks the password"
                );
            }
        }
        // FromStr fails the same way.
        assert!(url.parse::<ConnectionConfig>().is_err(), "{url}");
    }
}

#[test]
fn display_masks_the_password() {
    let cases = [
        (
            "redis://user:Hunter2Secret@localhost:6379/2",
            "redis://user:<redacted>@localhost:6379/2",
        ),
        (
            "rediss://:Hunter2Secret@[::1]:6380",
            "rediss://:<redacted>@[::1]:6380",
        ),
        ("valkey://user@host", "redis://user@host:6379"),
        (
            "unix://u:Hunter2Secret@/tmp/s.sock?db=3",
            "unix://u:<redacted>@/tmp/s.sock?db=3",
        ),
        (
            "redis://us%40er:Hunter2%40Secret@h/1?protocol=2&name=n&connect_timeout=250ms&read_timeout=none&write_timeout=1.5s",
            "redis://us%40er:<redacted>@h:6379/1?protocol=resp2&client_name=n&connect_timeout=250ms&read_timeout=none&write_timeout=1500ms",
        ),
        (
            "rediss://h?tls_server_name=s.example&tls_ca_file=/ca.pem#insecure",
            "rediss://h:6379?tls_server_name=s.example&tls_ca_file=%2Fca.pem#insecure",
        ),
    ];
    for (url, expected) in cases {
        let cfg = parse(url);
        let shown = cfg.to_string();
        assert_eq!(shown, expected, "{url}");
        let debug = format!("{cfg:?}");
        let pretty = format!("{cfg:#?}");
        for text in [&shown, &debug, &pretty] {
            assert!(!text.contains("Hunter2"), "{url}: {text}");
            assert!(!text.contains("Secret\""), "{url}: {text}");
        }
        if cfg.password.is_some() {
            assert!(debug.contains("<redacted>"), "{debug}");
        }
    }
    // A password that looks like other fields is still hidden.
    let mut cfg = ConnectionConfig::new("h", 1);
    cfg.password = Some(Secret::new("zz-top-secret-zz"));
    cfg.tls = Some(TlsConfig::default());
    for text in [
        cfg.to_string(),
        format!("{cfg:?}"),
        format!("{:?}", cfg.password),
    ] {
        assert!(!text.contains("zz-top-secret-zz"), "{text}");
    }
    assert_eq!(
        cfg.password.as_ref().map(Secret::expose),
        Some("zz-top-secret-zz")
    );
}

#[test]
fn display_round_trips_without_password() {
    let urls = [
        "redis://localhost",
        "rediss://[::1]:6380/5",
        "redis://%C3%A9t%C3%A9@h:1/4294967295?client_name=a%2Fb",
        "redis://h?protocol=resp2&connect_timeout=2m&read_timeout=0.25ms&write_timeout=none",
        "rediss://h?tls_ca_file=%2Fa%20b%2Fca.pem&tls_client_cert_file=c.pem&tls_client_key_file=k.pem&tls_server_name=n#insecure",
        "unix:///tmp/a%20b%3Fc.sock?db=9&read_timeout=1s",
        "valkey+unix://u@/tmp/s.sock",
        "redis://h?blocking_slice=750ms",
        "redis://h?blocking_slice=none",
    ];
    for url in urls {
        let cfg = parse(url);
        let again = parse(&cfg.to_string());
        assert_eq!(again, cfg, "{url} -> {cfg}");
    }
}

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}

#[test]
fn env_defaults_and_values() {
    let cfg = ConnectionConfig::from_env_vars(env(&[])).unwrap();
    assert_eq!(cfg, tcp("127.0.0.1", 6379));

    let cases: Vec<(Vec<(&str, &str)>, ConnectionConfig)> = vec![
        (vec![("VALKEY_HOST", "cache")], tcp("cache", 6379)),
        (vec![("VALKEY_HOST", "::1")], tcp("::1", 6379)),
        (vec![("VALKEY_HOST", "[::1]")], tcp("::1", 6379)),
        (vec![("VALKEY_PORT", "7000")], tcp("127.0.0.1", 7000)),
        (
            vec![
                ("VALKEY_USER", "app"),
                ("VALKEY_PASSWORD", "p%40ss word"),
                ("VALKEY_DB", "4"),
            ],
            with(tcp("127.0.0.1", 6379), |c| {
                c.username = Some("app".into());
                c.password = Some("p%40ss word".into());
                c.db = 4;
            }),
        ),
        (vec![("VALKEY_TLS", "1")], tls(tcp("127.0.0.1", 6379))),
        (vec![("VALKEY_TLS", "true")], tls(tcp("127.0.0.1", 6379))),
        (vec![("VALKEY_TLS", "YES")], tls(tcp("127.0.0.1", 6379))),
        (vec![("VALKEY_TLS", "on")], tls(tcp("127.0.0.1", 6379))),
        (vec![("VALKEY_TLS", "0")], tcp("127.0.0.1", 6379)),
        (vec![("VALKEY_TLS", "false")], tcp("127.0.0.1", 6379)),
        (vec![("VALKEY_TLS", "no")], tcp("127.0.0.1", 6379)),
        (vec![("VALKEY_TLS", "Off")], tcp("127.0.0.1", 6379)),
        // Empty variables count as unset.
        (
            vec![("VALKEY_URL", ""), ("VALKEY_HOST", ""), ("VALKEY_PORT", "")],
            tcp("127.0.0.1", 6379),
        ),
        // The URL wins over every other variable.
        (
            vec![
                ("VALKEY_URL", "rediss://u:pw@from-url:6380/2"),
                ("VALKEY_HOST", "ignored"),
                ("VALKEY_PORT", "not-a-port"),
                ("VALKEY_USER", "ignored"),
                ("VALKEY_PASSWORD", "ignored"),
                ("VALKEY_DB", "9"),
                ("VALKEY_TLS", "off"),
            ],
            with(tls(tcp("from-url", 6380)), |c| {
                c.username = Some("u".into());
                c.password = Some("pw".into());
                c.db = 2;
            }),
        ),
    ];
    for (vars, expected) in cases {
        let got = ConnectionConfig::from_env_vars(env(&vars)).unwrap();
        assert_eq!(got, expected, "{vars:?}");
    }
}

#[test]
fn env_bad_values_name_the_variable() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("VALKEY_PORT", "x")], "VALKEY_PORT: invalid port 'x'"),
        (&[("VALKEY_PORT", "0")], "VALKEY_PORT: invalid port '0'"),
        (
            &[("VALKEY_PORT", "70000")],
            "VALKEY_PORT: invalid port '70000'",
        ),
        (&[("VALKEY_DB", "-1")], "VALKEY_DB: invalid db '-1'"),
        (&[("VALKEY_DB", "01")], "VALKEY_DB: invalid db '01'"),
        (
            &[("VALKEY_TLS", "maybe")],
            "VALKEY_TLS: invalid value 'maybe'",
        ),
        (&[("VALKEY_HOST", "a b")], "VALKEY_HOST: invalid host 'a b'"),
        (
            &[("VALKEY_HOST", "[zz]")],
            "VALKEY_HOST: invalid host '[zz]'",
        ),
        (
            &[("VALKEY_URL", "http://x")],
            "VALKEY_URL: unsupported URL scheme 'http'",
        ),
        (
            &[("VALKEY_URL", "redis://u:Hunter2Secret@h:abc")],
            "VALKEY_URL: invalid port 'abc'",
        ),
        (
            &[("VALKEY_URL", "redis://default:Hunter2Secret")],
            "VALKEY_URL: invalid port in URL",
        ),
    ];
    for (vars, needle) in cases {
        let mut vars = vars.to_vec();
        vars.push(("VALKEY_PASSWORD", PW));
        let err = ConnectionConfig::from_env_vars(env(&vars)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{vars:?}");
        let msg = err.to_string();
        assert!(msg.contains(needle), "{msg:?} should contain {needle:?}");
        assert!(!msg.contains("Hunter2"), "{msg:?} leaks the password");
        assert!(!format!("{err:?}").contains("Hunter2"));
    }
}

#[test]
fn reader_env() {
    assert_eq!(
        ConnectionConfig::reader_from_env_vars(env(&[("VALKEY_URL", "redis://x")])).unwrap(),
        None
    );
    assert_eq!(
        ConnectionConfig::reader_from_env_vars(env(&[("VALKEY_READER_URL", "")])).unwrap(),
        None
    );
    let reader = ConnectionConfig::reader_from_env_vars(env(&[(
        "VALKEY_READER_URL",
        "valkeys://ro:pw@replica:6380/1",
    )]))
    .unwrap()
    .unwrap();
    let expected = with(tls(tcp("replica", 6380)), |c| {
        c.username = Some("ro".into());
        c.password = Some("pw".into());
        c.db = 1;
    });
    assert_eq!(reader, expected);

    let err = ConnectionConfig::reader_from_env_vars(env(&[(
        "VALKEY_READER_URL",
        "redis://u:Hunter2Secret@replica?foo=1",
    )]))
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    let msg = err.to_string();
    assert!(
        msg.contains("VALKEY_READER_URL: unknown query parameter 'foo'"),
        "{msg}"
    );
    assert!(!msg.contains("Hunter2"));
}

#[test]
fn unix_constructor_defaults() {
    let cfg = ConnectionConfig::unix("/tmp/v.sock");
    assert_eq!(cfg.addr, Addr::Unix("/tmp/v.sock".into()));
    assert_eq!(cfg.tls, None);
    assert_eq!(cfg.db, 0);
    assert_eq!(cfg.protocol, Protocol::Resp3);
    assert_eq!(cfg.connect_timeout, Duration::from_secs(5));
    assert_eq!(cfg.read_timeout, Some(Duration::from_secs(10)));
    assert_eq!(cfg.to_string(), "unix:///tmp/v.sock");
}

/// Issue 9, item 14: the decoder limits come from the URL and the environment too.
#[test]
fn limits_from_url_and_env() {
    let cfg = parse(
        "redis://h/?max_bulk_len=1048576&max_aggregate_len=1000&max_depth=16&max_line_len=4096",
    );
    assert_eq!(cfg.limits.max_bulk_len, 1_048_576);
    assert_eq!(cfg.limits.max_aggregate_len, 1000);
    assert_eq!(cfg.limits.max_depth, 16);
    assert_eq!(cfg.limits.max_line_len, 4096);
    // Display carries them (only when not the default) and parses back to the same.
    let shown = cfg.to_string();
    assert!(shown.contains("max_bulk_len=1048576"), "{shown}");
    assert_eq!(parse(&shown), cfg);
    assert!(!parse("redis://h").to_string().contains("max_"));
    for bad in [
        "0",
        "-1",
        "012",
        "+5",
        "x",
        "1.5",
        "99999999999999999999999",
    ] {
        let url = format!("redis://h/?max_bulk_len={bad}");
        let err = ConnectionConfig::from_url(&url).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{url}");
        assert!(err.to_string().contains("max_bulk_len"), "{err}");
    }
    let cfg = ConnectionConfig::from_env_vars(env(&[
        ("VALKEY_MAX_BULK_LEN", "2048"),
        ("VALKEY_MAX_DEPTH", "8"),
    ]))
    .unwrap();
    assert_eq!(cfg.limits.max_bulk_len, 2048);
    assert_eq!(cfg.limits.max_depth, 8);
    assert_eq!(
        cfg.limits.max_line_len,
        valkit::resp::Limits::default().max_line_len
    );
    let err = ConnectionConfig::from_env_vars(env(&[("VALKEY_MAX_LINE_LEN", "big")])).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("configuration error: VALKEY_MAX_LINE_LEN:"),
        "{err}"
    );
}

#[test]
fn redis_url_is_the_fallback_for_valkey_url() {
    let from = |vars: &[(&str, &str)]| ConnectionConfig::from_env_vars(env(vars)).unwrap();
    assert_eq!(
        from(&[("REDIS_URL", "redis://legacy:7001/3")]),
        with(tcp("legacy", 7001), |c| c.db = 3)
    );
    // VALKEY_URL wins; an empty VALKEY_URL counts as unset.
    assert_eq!(
        from(&[
            ("VALKEY_URL", "redis://new:7002"),
            ("REDIS_URL", "redis://legacy:7001")
        ]),
        tcp("new", 7002)
    );
    assert_eq!(
        from(&[("VALKEY_URL", ""), ("REDIS_URL", "redis://legacy:7001")]),
        tcp("legacy", 7001)
    );
    // Like VALKEY_URL, REDIS_URL wins over the single variables.
    assert_eq!(
        from(&[("REDIS_URL", "redis://legacy:7001"), ("VALKEY_HOST", "x")]),
        tcp("legacy", 7001)
    );
    let err =
        ConnectionConfig::from_env_vars(env(&[("REDIS_URL", "redis://u:Hunter2Secret@h:abc")]))
            .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(
        err.to_string().contains("REDIS_URL: invalid port 'abc'"),
        "{err}"
    );
    assert!(!err.to_string().contains("Hunter2"));
}

/// Every URL query parameter has a variable, and the variable gives the same configuration
/// as the parameter in a URL.
#[test]
fn every_url_parameter_has_an_environment_variable() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("VALKEY_PROTOCOL", "resp2")], "protocol=resp2"),
        (&[("VALKEY_PROTOCOL", "3")], "protocol=3"),
        (&[("VALKEY_CLIENT_NAME", "billing")], "client_name=billing"),
        (
            &[("VALKEY_CONNECT_TIMEOUT", "250ms")],
            "connect_timeout=250ms",
        ),
        (&[("VALKEY_READ_TIMEOUT", "1.5s")], "read_timeout=1.5s"),
        (&[("VALKEY_READ_TIMEOUT", "none")], "read_timeout=none"),
        (&[("VALKEY_WRITE_TIMEOUT", "2s")], "write_timeout=2s"),
        (&[("VALKEY_BLOCKING_SLICE", "0")], "blocking_slice=0"),
        (&[("VALKEY_BLOCKING_SLICE", "1m")], "blocking_slice=1m"),
        (&[("VALKEY_MAX_DEPTH", "16")], "max_depth=16"),
        (
            &[("VALKEY_TLS_CA_FILE", "/etc/ssl/my ca.pem")],
            "tls_ca_file=/etc/ssl/my%20ca.pem",
        ),
        (
            &[("VALKEY_TLS_SERVER_NAME", "cache.internal")],
            "tls_server_name=cache.internal",
        ),
        (&[("VALKEY_TLS_INSECURE", "yes")], "tls_insecure=true"),
        (&[("VALKEY_TLS_INSECURE", "0")], "tls_insecure=false"),
        (
            &[
                ("VALKEY_TLS_CLIENT_CERT_FILE", "/c.pem"),
                ("VALKEY_TLS_CLIENT_KEY_FILE", "/k.pem"),
            ],
            "tls_client_cert_file=/c.pem&tls_client_key_file=/k.pem",
        ),
    ];
    for (vars, query) in cases {
        let mut vars = vars.to_vec();
        vars.push(("VALKEY_TLS", "1"));
        let got = ConnectionConfig::from_env_vars(env(&vars)).unwrap();
        let expected = parse(&format!("rediss://127.0.0.1?{query}"));
        assert_eq!(got, expected, "{vars:?}");
        if !query.ends_with("=false") {
            assert_ne!(got, parse("rediss://127.0.0.1"), "{vars:?} changed nothing");
        }
    }
    // VALKEY_TLS=1 with a private CA and a server name: no URL needed.
    let cfg = ConnectionConfig::from_env_vars(env(&[
        ("VALKEY_HOST", "10.0.0.7"),
        ("VALKEY_TLS", "1"),
        ("VALKEY_TLS_CA_FILE", "/etc/valkey/ca.pem"),
        ("VALKEY_TLS_SERVER_NAME", "cache.internal"),
    ]))
    .unwrap();
    let tls = cfg.tls.expect("tls on");
    assert_eq!(tls.ca_file, Some(PathBuf::from("/etc/valkey/ca.pem")));
    assert_eq!(tls.server_name.as_deref(), Some("cache.internal"));
    assert!(!tls.danger_accept_invalid_certs);
}

#[test]
fn parameter_variables_with_bad_values_name_the_variable() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("VALKEY_PROTOCOL", "4")],
            "VALKEY_PROTOCOL: invalid value '4'",
        ),
        (
            &[("VALKEY_CLIENT_NAME", "a b")],
            "VALKEY_CLIENT_NAME: invalid value 'a b'",
        ),
        (
            &[("VALKEY_READ_TIMEOUT", "3")],
            "VALKEY_READ_TIMEOUT: invalid duration '3'",
        ),
        (
            &[("VALKEY_CONNECT_TIMEOUT", "0")],
            "VALKEY_CONNECT_TIMEOUT: query parameter 'connect_timeout' must be greater than zero",
        ),
        // TLS settings without TLS are a mistake, not ignored.
        (
            &[("VALKEY_TLS_CA_FILE", "/ca.pem")],
            "VALKEY_TLS_CA_FILE: requires VALKEY_TLS=1",
        ),
        (
            &[("VALKEY_TLS", "0"), ("VALKEY_TLS_SERVER_NAME", "x")],
            "VALKEY_TLS_SERVER_NAME: requires VALKEY_TLS=1",
        ),
        (
            &[("VALKEY_TLS", "1"), ("VALKEY_TLS_INSECURE", "sure")],
            "VALKEY_TLS_INSECURE: invalid value 'sure'",
        ),
        (
            &[("VALKEY_TLS", "1"), ("VALKEY_TLS_CLIENT_CERT_FILE", "/c.pem")],
            "VALKEY_TLS_CLIENT_CERT_FILE: query parameter 'VALKEY_TLS_CLIENT_CERT_FILE' requires 'VALKEY_TLS_CLIENT_KEY_FILE'",
        ),
        (
            &[("VALKEY_TLS", "1"), ("VALKEY_TLS_CLIENT_KEY_FILE", "/k.pem")],
            "VALKEY_TLS_CLIENT_KEY_FILE: query parameter 'VALKEY_TLS_CLIENT_KEY_FILE' requires 'VALKEY_TLS_CLIENT_CERT_FILE'",
        ),
    ];
    for (vars, needle) in cases {
        let mut vars = vars.to_vec();
        vars.push(("VALKEY_PASSWORD", PW));
        let err = ConnectionConfig::from_env_vars(env(&vars)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{vars:?}");
        let msg = err.to_string();
        assert!(msg.contains(needle), "{msg:?} should contain {needle:?}");
        assert!(!msg.contains("Hunter2"), "{msg:?} leaks the password");
    }
}
