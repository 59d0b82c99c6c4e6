//! Does CPU placement explain the bimodal loopback round trips? One throwaway Valkey, one
//! connection per client (valkit `GET` and a raw socket writing the pre-encoded `GET`), and
//! for each round, in rotating order, one slice per placement:
//!
//! - `free`:  no pinning (client and server may run on any CPU: the scheduler decides);
//! - `split01` / `split10`: client on CPU 0 and every server thread on CPU 1, or the reverse;
//! - `same0` / `same1`: client and server both on CPU 0, or both on CPU 1.
//!
//! Placement is changed between slices with `taskset -a -p` (all threads of both
//! processes), so all placements see the same background load. Prints every slice's
//! rate (ops/s) and, per placement and client, the rates sorted, so that a bimodal
//! distribution is visible.
//!
//! ```text
//! cargo run --profile bench --all-features --example rt_pinning [ROUNDS] [SLICE_MS]
//! ```
//! Needs `taskset` (util-linux) and at least 2 CPUs.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use valkit::Execute;

fn taskset(pid: u32, cpus: &str) {
    let ok = Command::new("taskset")
        .args(["-a", "-p", "-c", cpus, &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "taskset -a -p -c {cpus} {pid} failed");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rounds: usize = args.first().and_then(|s| s.parse().ok()).unwrap_or(15);
    let slice = Duration::from_millis(args.get(1).and_then(|s| s.parse().ok()).unwrap_or(120));
    let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert!(ncpu >= 2, "needs 2 CPUs");
    let all = format!("0-{}", ncpu - 1);

    let server =
        valkit::testkit::Server::start(valkit::testkit::ServerKind::Valkey).expect("start valkey");
    let spid = server.pid().expect("server pid");
    let me = std::process::id();
    let conn = valkit::Connection::open(&server.config()).expect("connect");
    conn.exec(&valkit::cmd("SET").arg("bench:k16").arg([b'x'; 16]))
        .expect("set");
    let mut sock = TcpStream::connect(("127.0.0.1", server.port())).expect("raw connect");
    sock.set_nodelay(true).expect("nodelay");
    let req = b"*2\r\n$3\r\nGET\r\n$9\r\nbench:k16\r\n";
    let reply_len = b"$16\r\n".len() + 16 + 2;
    let mut buf = vec![0u8; 4096];

    let placements: [(&str, &str, &str); 5] = [
        ("free", &all, &all),
        ("split01", "0", "1"),
        ("split10", "1", "0"),
        ("same0", "0", "0"),
        ("same1", "1", "1"),
    ];
    // rates[placement][client] = per-slice ops/s
    let mut rates = vec![vec![Vec::new(), Vec::new()]; placements.len()];
    for round in 0..rounds {
        for k in 0..placements.len() {
            let p = (k + round) % placements.len();
            let (_, client_cpus, server_cpus) = placements[p];
            taskset(me, client_cpus);
            taskset(spid, server_cpus);
            std::thread::sleep(Duration::from_millis(5));
            for who in [round % 2, 1 - round % 2] {
                let t0 = Instant::now();
                let mut n = 0u64;
                while t0.elapsed() < slice {
                    if who == 0 {
                        let v = conn
                            .exec(&valkit::cmd("GET").arg("bench:k16"))
                            .expect("GET");
                        std::hint::black_box(v);
                    } else {
                        sock.write_all(req).expect("write");
                        let mut got = 0;
                        while got < reply_len {
                            let r = sock.read(&mut buf[got..]).expect("read");
                            assert!(r != 0, "closed");
                            got += r;
                        }
                    }
                    n += 1;
                }
                let rate = n as f64 / t0.elapsed().as_secs_f64();
                rates[p][who].push(rate);
                println!(
                    "round {round:>2} {:<7} {:<6} {:>8.0} ops/s",
                    placements[p].0,
                    ["valkit", "raw"][who],
                    rate
                );
            }
        }
    }
    taskset(me, &all);
    println!();
    for (p, (name, _, _)) in placements.iter().enumerate() {
        for who in 0..2 {
            let mut v = rates[p][who].clone();
            v.sort_by(f64::total_cmp);
            let k: Vec<String> = v.iter().map(|r| format!("{:.1}", r / 1000.0)).collect();
            println!(
                "{name:<7} {:<6} median {:>6.1}k  min {:>6.1}k  max {:>6.1}k  sorted (k ops/s): {}",
                ["valkit", "raw"][who],
                v[v.len() / 2] / 1000.0,
                v[0] / 1000.0,
                v[v.len() - 1] / 1000.0,
                k.join(" ")
            );
        }
    }
}
