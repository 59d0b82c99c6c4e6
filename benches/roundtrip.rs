//! Round trips on one connection to a throwaway Valkey (loopback), side by side in one
//! run: valkit vs the `redis` crate's sync client vs a raw-socket loop (write the request
//! bytes, read until the known reply length is in: the ceiling), then `redis-benchmark`
//! (C, `-c 1`) against the same server for the same commands.
//!
//! `cargo bench --all-features --bench roundtrip` (criterion flags after `--`).
//! redis-benchmark figures go to `target/criterion/redis-benchmark.json`.
//!
//! CPU placement (`VALKIT_RT_PIN`, needs `taskset`): by default the bench process (all its
//! threads, and the redis-benchmark it starts) and every server thread are pinned to one
//! CPU (`same`, CPU `VALKIT_RT_CPU`, default 0). Unpinned, loopback round trips on this
//! 2-vCPU VM are bimodal: ~7x slower whenever the scheduler puts client and server on
//! different CPUs, because every wake-up then crosses vCPUs through the hypervisor (see
//! docs/benchmarks.md, "Round-trip noise", and `examples/rt_pinning.rs`). `split` pins the
//! client to CPU 0 and the server to CPU 1 (the slow, cross-CPU mode, every time); `off`
//! leaves placement to the scheduler.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use valkit::testkit::{Server, ServerKind};
use valkit::{cmd, pipe, Execute};

/// One benchmarked operation: the arguments of each command it sends.
struct Op {
    name: &'static str,
    cmds: Vec<Vec<Vec<u8>>>,
}

fn v(parts: &[&[u8]]) -> Vec<Vec<u8>> {
    parts.iter().map(|p| p.to_vec()).collect()
}

fn ops() -> Vec<Op> {
    let v16 = vec![b'x'; 16];
    let v1k = vec![b'y'; 1024];
    let mget: Vec<Vec<u8>> = std::iter::once(b"MGET".to_vec())
        .chain((0..100).map(|i| format!("bench:m{i}").into_bytes()))
        .collect();
    vec![
        Op {
            name: "get_16B",
            cmds: vec![v(&[b"GET", b"bench:k16"])],
        },
        Op {
            name: "get_1KiB",
            cmds: vec![v(&[b"GET", b"bench:k1k"])],
        },
        Op {
            name: "set_16B",
            cmds: vec![v(&[b"SET", b"bench:s16", &v16])],
        },
        Op {
            name: "set_1KiB",
            cmds: vec![v(&[b"SET", b"bench:s1k", &v1k])],
        },
        Op {
            name: "pipe64_get_16B",
            cmds: vec![v(&[b"GET", b"bench:k16"]); 64],
        },
        Op {
            name: "pipe64_set_16B",
            cmds: vec![v(&[b"SET", b"bench:s16", &v16]); 64],
        },
        Op {
            name: "mget_100",
            cmds: vec![mget],
        },
    ]
}

fn encode(args: &[Vec<u8>], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// The raw-socket ceiling: one write, then reads until exactly `reply_len` bytes are in.
struct Raw {
    sock: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    fn roundtrip(&mut self, req: &[u8], reply_len: usize) {
        self.sock.write_all(req).expect("raw write");
        let mut got = 0;
        while got < reply_len {
            let n = self.sock.read(&mut self.buf[got..]).expect("raw read");
            assert!(n != 0, "server closed");
            got += n;
        }
        assert_eq!(got, reply_len, "raw: unexpected reply length");
    }
}

/// Pin this process and the server as `VALKIT_RT_PIN` says; returns what was done.
fn place(server_pid: Option<u32>) -> String {
    let mode = std::env::var("VALKIT_RT_PIN").unwrap_or_else(|_| "same".to_owned());
    let cpu = std::env::var("VALKIT_RT_CPU").unwrap_or_else(|_| "0".to_owned());
    let (client, server) = match mode.as_str() {
        "off" => return "unpinned".to_owned(),
        "same" => (cpu.clone(), cpu),
        "split" => ("0".to_owned(), "1".to_owned()),
        other => panic!("VALKIT_RT_PIN={other}: expected same, split or off"),
    };
    let Some(server_pid) = server_pid else {
        return "unpinned (no server pid)".to_owned();
    };
    let taskset = |cpus: &str, pid: u32| {
        Command::new("taskset")
            .args(["-a", "-p", "-c", cpus, &pid.to_string()])
            .stdout(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if taskset(&client, std::process::id()) && taskset(&server, server_pid) {
        format!("{mode}: client on CPU {client}, server on CPU {server}")
    } else {
        eprintln!("taskset failed: round trips run unpinned (bimodal on this machine)");
        "unpinned (taskset failed)".to_owned()
    }
}

fn main() {
    let server = Server::start(ServerKind::Valkey).expect("start valkey (see testkit docs)");
    let port = server.port();
    let placement = place(server.pid());
    println!("placement: {placement}");
    let ops = ops();

    // Data for the reads.
    let setup = valkit::Connection::open(&server.config()).expect("valkit connect");
    setup
        .exec(&cmd("SET").arg("bench:k16").arg(vec![b'x'; 16]))
        .expect("set");
    setup
        .exec(&cmd("SET").arg("bench:k1k").arg(vec![b'y'; 1024]))
        .expect("set");
    for i in 0..100 {
        setup
            .exec(&cmd("SET").arg(format!("bench:m{i}")).arg(vec![b'z'; 32]))
            .expect("set");
    }

    let conn = valkit::Connection::open(&server.config()).expect("valkit connect");
    let client = redis::Client::open(server.url().as_str()).expect("redis client");
    let mut rconn = client.get_connection().expect("redis connect");
    let sock = TcpStream::connect(("127.0.0.1", port)).expect("raw connect");
    sock.set_nodelay(true).expect("nodelay");
    let mut raw = Raw {
        sock,
        buf: vec![0u8; 1 << 20],
    };

    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();

    for op in &ops {
        let mut req = Vec::new();
        for a in &op.cmds {
            encode(a, &mut req);
        }
        // The exact reply length, learned once.
        let reply_len = {
            let mut s = TcpStream::connect(("127.0.0.1", port)).expect("probe connect");
            s.write_all(&req).expect("probe write");
            s.set_read_timeout(Some(Duration::from_millis(300)))
                .expect("timeout");
            let mut all = Vec::new();
            let mut buf = [0u8; 65536];
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 {
                    break;
                }
                all.extend_from_slice(&buf[..n]);
            }
            all.len()
        };
        let n_cmds = op.cmds.len();
        let mut g = c.benchmark_group(format!("rt_{}", op.name));
        g.throughput(Throughput::Elements(n_cmds as u64));
        g.bench_function("valkit", |b| b.iter(|| valkit_op(&conn, op)));
        g.bench_function("redis", |b| b.iter(|| redis_op(&mut rconn, op)));
        g.bench_function("raw", |b| b.iter(|| raw.roundtrip(&req, reply_len)));
        g.finish();
    }
    c.final_summary();
    let vclient = valkit::Client::builder()
        .config(server.config())
        .build()
        .expect("valkit client");
    interleaved(
        port, &ops, &conn, &vclient, &mut rconn, &mut raw, &placement,
    );
    redis_benchmark(port, &ops);
    drop(server);
}

/// Built the way a user writes it: `cmd(name).arg(..)` (pre-sized buffers).
fn valkit_cmd(args: &[Vec<u8>]) -> valkit::Cmd {
    let name = std::str::from_utf8(&args[0]).expect("ASCII command name");
    let mut k = cmd(name);
    for a in &args[1..] {
        k.add_arg(&a[..]);
    }
    k
}

fn valkit_op(conn: &impl Execute, op: &Op) {
    if op.cmds.len() == 1 {
        let v = conn.exec(&valkit_cmd(&op.cmds[0])).expect("valkit exec");
        std::hint::black_box(v);
    } else {
        let mut p = pipe();
        for args in &op.cmds {
            p.add(valkit_cmd(args));
        }
        let v = conn.exec_pipeline(&p).expect("valkit pipeline");
        assert_eq!(v.len(), op.cmds.len());
        std::hint::black_box(v);
    }
}

fn redis_op(rconn: &mut redis::Connection, op: &Op) {
    if op.cmds.len() == 1 {
        let mut k = redis::Cmd::new();
        for a in &op.cmds[0] {
            k.arg(&a[..]);
        }
        let v: redis::Value = k.query(rconn).expect("redis query");
        std::hint::black_box(v);
    } else {
        let mut p = redis::pipe();
        for args in &op.cmds {
            let mut k = redis::Cmd::new();
            for a in args {
                k.arg(&a[..]);
            }
            p.add_command(k);
        }
        let v: Vec<redis::Value> = p.query(rconn).expect("redis pipeline");
        assert_eq!(v.len(), op.cmds.len());
        std::hint::black_box(v);
    }
}

/// The noise-resistant comparison: short slices of each client in turn (the starting client
/// rotates every round), so that all of them see the same background load; the ratio is
/// taken within each round and the median over rounds is reported. redis-benchmark takes
/// part as a fourth client when installed, and a `valkit::Client` (default settings: pool,
/// retry, breaker, metrics) as a fifth. Writes `target/criterion/rt-interleaved.json`.
fn interleaved(
    port: u16,
    ops: &[Op],
    conn: &valkit::Connection,
    vclient: &valkit::Client,
    rconn: &mut redis::Connection,
    raw: &mut Raw,
    placement: &str,
) {
    let rounds: usize = std::env::var("VALKIT_RT_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let slice = Duration::from_millis(
        std::env::var("VALKIT_RT_SLICE_MS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(120),
    );
    let rb = which("redis-benchmark").ok();
    let mut json = Vec::new();
    for op in ops {
        let mut req = Vec::new();
        for a in &op.cmds {
            encode(a, &mut req);
        }
        let reply_len = {
            let mut probe = Raw {
                sock: TcpStream::connect(("127.0.0.1", port)).expect("probe"),
                buf: vec![0u8; 1 << 20],
            };
            probe.sock.write_all(&req).expect("probe write");
            probe
                .sock
                .set_read_timeout(Some(Duration::from_millis(300)))
                .expect("timeout");
            let mut got = 0;
            while let Ok(n) = probe.sock.read(&mut probe.buf[got..]) {
                if n == 0 {
                    break;
                }
                got += n;
            }
            got
        };
        let per = op.cmds.len() as f64;
        let timed = |f: &mut dyn FnMut()| -> f64 {
            let t0 = std::time::Instant::now();
            let mut n = 0u64;
            while t0.elapsed() < slice {
                f();
                n += 1;
            }
            n as f64 * per / t0.elapsed().as_secs_f64()
        };
        let mut samples: Vec<[Option<f64>; 5]> = Vec::new();
        for round in 0..rounds {
            let mut s = [None; 5];
            for k in 0..5 {
                let who = (k + round) % 5;
                s[who] = match who {
                    0 => Some(timed(&mut || valkit_op(conn, op))),
                    1 => Some(timed(&mut || redis_op(rconn, op))),
                    2 => Some(timed(&mut || raw.roundtrip(&req, reply_len))),
                    4 => Some(timed(&mut || valkit_op(vclient, op))),
                    _ => rb.as_ref().and_then(|bin| {
                        let n = if op.cmds.len() > 1 { 64_000 } else { 3_000 };
                        run_redis_benchmark(bin, port, op, n)
                    }),
                };
            }
            samples.push(s);
        }
        let med = |mut v: Vec<f64>| -> Option<f64> {
            if v.is_empty() {
                return None;
            }
            v.sort_by(f64::total_cmp);
            Some(v[v.len() / 2])
        };
        let col = |i: usize| med(samples.iter().filter_map(|s| s[i]).collect());
        let ratio_of =
            |a: usize, i: usize| med(samples.iter().filter_map(|s| Some(s[a]? / s[i]?)).collect());
        let ratio = |i: usize| ratio_of(0, i);
        let f = |x: Option<f64>| x.map_or("null".to_owned(), |x| format!("{x:.4}"));
        println!(
            "interleaved {:<16} valkit {:>10.0}  client {:>10.0}  redis {:>10.0}  raw {:>10.0}  redis-benchmark {:>10}  | valkit/raw {} valkit/redis {} valkit/redis-benchmark {} client/raw {} client/redis {}",
            op.name,
            col(0).unwrap_or(0.0),
            col(4).unwrap_or(0.0),
            col(1).unwrap_or(0.0),
            col(2).unwrap_or(0.0),
            f(col(3)),
            f(ratio(2)),
            f(ratio(1)),
            f(ratio(3)),
            f(ratio_of(4, 2)),
            f(ratio_of(4, 1)),
        );
        // Every round's rates, so that a bimodal distribution shows in the results.
        let per_round = samples
            .iter()
            .map(|s| format!("[{}]", s.map(f).join(", ")))
            .collect::<Vec<_>>()
            .join(", ");
        json.push(format!(
            "\"{}\": {{\"valkit\": {}, \"redis\": {}, \"raw\": {}, \"redis_benchmark\": {}, \"client\": {}, \"valkit_over_raw\": {}, \"valkit_over_redis\": {}, \"valkit_over_redis_benchmark\": {}, \"client_over_raw\": {}, \"client_over_redis\": {}, \"rounds\": {rounds}, \"per_round\": [{per_round}]}}",
            op.name,
            f(col(0)),
            f(col(1)),
            f(col(2)),
            f(col(3)),
            f(col(4)),
            f(ratio(2)),
            f(ratio(1)),
            f(ratio(3)),
            f(ratio_of(4, 2)),
            f(ratio_of(4, 1)),
        ));
    }
    let _ = std::fs::write(
        criterion_dir().join("rt-interleaved.json"),
        format!(
            "{{\n\"placement\": \"{placement}\",\n{}\n}}\n",
            json.join(",\n")
        ),
    );
}

fn criterion_dir() -> std::path::PathBuf {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/target").into())
        .join("criterion");
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// One `redis-benchmark -c 1` run of `op` (`-P` = the op's pipeline depth): requests/s.
fn run_redis_benchmark(bin: &std::path::Path, port: u16, op: &Op, n: u32) -> Option<f64> {
    let mut cmd_line = Command::new(bin);
    cmd_line.args([
        "-h",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-c",
        "1",
        "--csv",
    ]);
    cmd_line.args(["-n", &n.to_string()]);
    if op.cmds.len() > 1 {
        cmd_line.args(["-P", &op.cmds.len().to_string()]);
    }
    for a in &op.cmds[0] {
        cmd_line.arg(String::from_utf8_lossy(a).into_owned());
    }
    let out = cmd_line.output().ok().filter(|o| o.status.success())?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "test","rps",... then one data line: "<command>","<rps>",...
    text.lines()
        .nth(1)
        .and_then(|l| l.split(',').nth(1))
        .and_then(|f| f.trim_matches('"').parse::<f64>().ok())
}

/// Run `redis-benchmark -c 1` (and `-P 64` for the pipelined ops) on the same server for
/// the same commands; write requests/s per op to `target/criterion/redis-benchmark.json`.
fn redis_benchmark(port: u16, ops: &[Op]) {
    let Ok(bin) = which("redis-benchmark") else {
        eprintln!("redis-benchmark not found: skipped (apt-get install redis-tools)");
        return;
    };
    let mut rows = Vec::new();
    for op in ops {
        let n: u32 = if op.cmds.len() > 1 { 320_000 } else { 20_000 };
        match run_redis_benchmark(&bin, port, op, n) {
            Some(rps) => {
                println!("redis-benchmark {:<16} {:>12.0} ops/s", op.name, rps);
                rows.push(format!("\"{}\": {rps:.1}", op.name));
            }
            None => eprintln!("redis-benchmark failed for {}", op.name),
        }
    }
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/target").into())
        .join("criterion");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(
        dir.join("redis-benchmark.json"),
        format!("{{{}}}\n", rows.join(", ")),
    );
}

fn which(name: &str) -> Result<std::path::PathBuf, ()> {
    let path = std::env::var_os("PATH").ok_or(())?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or(())
}
