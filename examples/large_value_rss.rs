//! Peak RSS of a process that sends or receives one large value (issue 9, item 14).
//!
//! ```text
//! large_value_rss [MB...]                  # default: 100 500; starts a throwaway Valkey
//! large_value_rss child OP MB PORT         # one measurement (run by the above)
//! ```
//! Each measurement runs in a fresh child process, so its high-water mark (`VmHWM` in
//! /proc/self/status) is its own. `set`: the value is allocated and filled, then sent with
//! `conn.set(key, value)` (moved in); `set_ref`: sent as `conn.set(key, &value)` (copied
//! once); `get`: `conn.get(key)` returns it as a `Vec<u8>`. Printed: the value's size, the
//! baseline (after connecting, before the value exists), the peak, and
//! (peak - baseline) / size: 1.0 means the value was held once.

use valkit::testkit::{Server, ServerKind};
use valkit::{Commands, Connection, ConnectionConfig};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("child") {
        let mb: usize = args[2].parse().expect("MB");
        let port: u16 = args[3].parse().expect("port");
        child(&args[1], mb * 1_000_000, port);
        return;
    }
    let sizes: Vec<usize> = if args.is_empty() {
        vec![100, 500]
    } else {
        args.iter().map(|a| a.parse().expect("MB")).collect()
    };
    let server = Server::start(ServerKind::Valkey).expect("start valkey");
    let port = server.port().to_string();
    println!("| value | operation | baseline VmHWM | peak VmHWM | (peak - baseline) / value |");
    println!("|---|---|---|---|---|");
    for mb in sizes {
        for op in ["set", "set_ref", "get"] {
            let exe = std::env::current_exe().expect("current exe");
            let out = std::process::Command::new(exe)
                .args(["child", op, &mb.to_string(), &port])
                .output()
                .expect("run child");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            print!("{}", String::from_utf8_lossy(&out.stdout));
        }
    }
}

fn child(op: &str, n: usize, port: u16) {
    let conn = Connection::open(&ConnectionConfig::new("127.0.0.1", port)).expect("connect");
    let key = "large_value_rss";
    let base = vm_kib("VmHWM:");
    match op {
        "set" => {
            let value = vec![b'v'; n];
            conn.set(key, value).expect("set");
        }
        "set_ref" => {
            let value = vec![b'v'; n];
            conn.set(key, &value).expect("set");
        }
        "get" => {
            let got = conn
                .get::<_, Option<Vec<u8>>>(key)
                .expect("get")
                .expect("the key is set");
            assert_eq!(got.len(), n);
        }
        other => panic!("unknown op {other}"),
    }
    let peak = vm_kib("VmHWM:");
    let ratio = (peak - base) as f64 * 1024.0 / n as f64;
    println!(
        "| {} MB | {op} | {:.1} MB | {:.1} MB | {ratio:.2} |",
        n / 1_000_000,
        base as f64 * 1024.0 / 1e6,
        peak as f64 * 1024.0 / 1e6
    );
}

/// A `kB` field of /proc/self/status.
fn vm_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("field in /proc/self/status")
}
