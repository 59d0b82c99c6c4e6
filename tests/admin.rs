//! The typed admin helpers (`valkit::admin`) against real servers (Valkey and Redis):
//! INFO sections, SLOWLOG, MEMORY, CLIENT LIST, CONFIG, the bounded big-key sampler,
//! BGSAVE / BGREWRITEAOF polled to completion, LATENCY DOCTOR, and the queue's
//! Prometheus text checked by `promtool check metrics`.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{key, kinds, shared};
use valkit::admin::{self, BigKeyOptions};
use valkit::testkit::{Server, ServerKind};
use valkit::{cmd, Commands, Connection, Execute};

fn own_server(kind: ServerKind) -> (Server, Connection) {
    let server = Server::start(kind).unwrap();
    let conn = Connection::open(&server.config()).unwrap();
    (server, conn)
}

#[test]
fn info_sections_are_typed() {
    for kind in kinds() {
        let conn = Connection::open(&shared(kind).config()).unwrap();
        let k = key("info");
        conn.set(&k, "v").unwrap();
        let _: Option<String> = conn.get(&k).unwrap();
        let r = admin::info(&conn).unwrap();
        assert_eq!(r.server.product, kind.name(), "{kind:?}");
        assert!(!r.server.version.is_empty());
        assert_eq!(r.server.tcp_port, shared(kind).port());
        assert_eq!(r.server.mode, "standalone");
        assert!(r.clients.connected_clients >= 1);
        assert!(r.memory.used_memory > 0);
        assert!(!r.memory.maxmemory_policy.is_empty());
        assert!(r.stats.total_commands_processed > 0);
        assert!(r.stats.keyspace_hits >= 1);
        assert!(r.stats.hit_rate().is_some());
        assert_eq!(r.replication.role, "master");
        assert!(!r.persistence.loading);
        let db0 = r.keyspace.iter().find(|d| d.db == 0).expect("db0 listed");
        assert!(db0.keys >= 1);
        assert!(r.raw.get("server", "process_id").is_some());
    }
}

#[test]
fn slowlog_get_len_reset() {
    for kind in kinds() {
        let (_server, conn) = own_server(kind);
        admin::config_set(&conn, "slowlog-log-slower-than", "0").unwrap();
        let marker = key("slow-marker");
        conn.set(&marker, "x").unwrap();
        let entries = admin::slowlog_get(&conn, Some(128)).unwrap();
        let hit = entries
            .iter()
            .find(|e| e.args.iter().any(|a| a == &marker))
            .unwrap_or_else(|| panic!("{kind:?}: SET {marker} not in {entries:?}"));
        assert_eq!(hit.args[0].to_ascii_uppercase(), "SET");
        assert!(hit.timestamp > 1_600_000_000);
        assert!(hit
            .client_addr
            .as_deref()
            .unwrap_or("")
            .contains("127.0.0.1"));
        assert!(admin::slowlog_len(&conn).unwrap() >= 2);
        admin::slowlog_reset(&conn).unwrap();
        let after = admin::slowlog_get(&conn, Some(128)).unwrap();
        assert!(
            after.iter().all(|e| !e.args.iter().any(|a| a == &marker)),
            "{kind:?}: reset left {after:?}"
        );
    }
}

#[test]
fn memory_helpers() {
    for kind in kinds() {
        let conn = Connection::open(&shared(kind).config()).unwrap();
        let k = key("mem");
        conn.set(&k, vec![b'x'; 10_000]).unwrap();
        let used = admin::memory_usage(&conn, &k, None).unwrap().unwrap();
        assert!(used >= 10_000, "{kind:?}: {used}");
        assert_eq!(
            admin::memory_usage(&conn, key("missing"), Some(0)).unwrap(),
            None
        );
        assert!(!admin::memory_doctor(&conn).unwrap().is_empty());
        let stats = admin::memory_stats(&conn).unwrap();
        assert!(
            stats.total_allocated > 0 && stats.peak_allocated > 0,
            "{stats:?}"
        );
        assert!(stats.keys_count >= 1);
        assert!(stats.fields.contains_key("dataset.bytes"));
        // LATENCY DOCTOR answers (with nothing to report on a quiet server).
        assert!(!admin::latency_doctor(&conn).unwrap().is_empty());
    }
}

#[test]
fn client_list_and_config() {
    for kind in kinds() {
        let (_server, conn) = own_server(kind);
        conn.exec(&cmd("CLIENT").arg("SETNAME").arg("admin-test"))
            .unwrap();
        let list = admin::client_list(&conn).unwrap();
        let me = list
            .iter()
            .find(|c| c.name == "admin-test")
            .unwrap_or_else(|| panic!("{kind:?}: not in {list:?}"));
        assert!(me.addr.starts_with("127.0.0.1:"));
        assert_eq!(me.user, "default");
        assert!(me.cmd.starts_with("client"), "{}", me.cmd);
        assert!(me.id > 0);

        admin::config_set(&conn, "maxmemory-samples", "7").unwrap();
        let got = admin::config_get(&conn, "maxmemory-samples").unwrap();
        assert_eq!(got.get("maxmemory-samples").map(String::as_str), Some("7"));
        let many = admin::config_get(&conn, "maxmemory*").unwrap();
        assert!(
            many.len() >= 3 && many.contains_key("maxmemory-policy"),
            "{many:?}"
        );
        let err = admin::config_set(&conn, "no-such-parameter", "1").unwrap_err();
        assert!(matches!(err.kind(), valkit::ErrorKind::Server(_)), "{err}");
    }
}

fn fill_big_keys(conn: &Connection, prefix: &str) {
    conn.set(format!("{prefix}:str:big"), vec![b'a'; 20_000])
        .unwrap();
    conn.exec(
        &cmd("RPUSH")
            .arg(format!("{prefix}:list:big"))
            .arg((0..500).map(|i| i.to_string()).collect::<Vec<_>>()),
    )
    .unwrap();
    conn.exec(&cmd("RPUSH").arg(format!("{prefix}:list:small")).arg("x"))
        .unwrap();
    let mut hset = cmd("HSET").arg(format!("{prefix}:hash:big"));
    for i in 0..300 {
        hset = hset.arg(format!("f{i}")).arg(i);
    }
    conn.exec(&hset).unwrap();
    conn.exec(
        &cmd("SADD")
            .arg(format!("{prefix}:set:big"))
            .arg((0..200).map(|i| i.to_string()).collect::<Vec<_>>()),
    )
    .unwrap();
    let mut zadd = cmd("ZADD").arg(format!("{prefix}:zset:big"));
    for i in 0..100 {
        zadd = zadd.arg(i).arg(format!("m{i}"));
    }
    conn.exec(&zadd).unwrap();
    for i in 0..50 {
        conn.exec(
            &cmd("XADD")
                .arg(format!("{prefix}:stream:big"))
                .arg("*")
                .arg("n")
                .arg(i),
        )
        .unwrap();
    }
    let mut p = valkit::pipe();
    for i in 0..400 {
        p.add(cmd("SET").arg(format!("{prefix}:small:{i}")).arg(i));
    }
    conn.exec_pipeline(&p).unwrap();
}

#[test]
fn big_keys_finds_the_biggest_of_each_type() {
    for kind in kinds() {
        let (_server, conn) = own_server(kind);
        fill_big_keys(&conn, "bk");
        let mut calls = 0;
        let report = admin::big_keys(&conn, &BigKeyOptions::new().max_rate(0), &mut |p| {
            calls += 1;
            assert_eq!(p.dbsize, 407);
        })
        .unwrap();
        assert!(report.complete, "{kind:?}");
        assert!(calls >= 1);
        assert!(report.scanned >= 407, "{}", report.scanned);
        let top = |t: &str| {
            let s = &report.by_type[t];
            (s.biggest[0].key.clone(), s.biggest[0].size)
        };
        assert_eq!(top("string"), ("bk:str:big".into(), 20_000));
        assert_eq!(top("list"), ("bk:list:big".into(), 500));
        assert_eq!(top("hash"), ("bk:hash:big".into(), 300));
        assert_eq!(top("set"), ("bk:set:big".into(), 200));
        assert_eq!(top("zset"), ("bk:zset:big".into(), 100));
        assert_eq!(top("stream"), ("bk:stream:big".into(), 50));
        assert_eq!(report.by_type["list"].keys, 2);
        assert_eq!(report.by_type["string"].biggest.len(), 5);
        let big = &report.by_type["string"].biggest[0];
        assert_eq!(big.unit(), "bytes");
        assert!(big.memory.unwrap() >= 20_000);
        // Sorted biggest first.
        let sizes: Vec<u64> = report.by_type["string"]
            .biggest
            .iter()
            .map(|b| b.size)
            .collect();
        assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "{sizes:?}");
    }
}

#[test]
fn big_keys_stays_within_its_budgets() {
    let kind = kinds()[0];
    let (_server, conn) = own_server(kind);
    fill_big_keys(&conn, "bb");
    // A key budget stops early and says so.
    let opts = BigKeyOptions::new()
        .max_keys(50)
        .batch(10)
        .memory_usage(false);
    let r = admin::big_keys(&conn, &opts, &mut |_| {}).unwrap();
    assert!(!r.complete);
    assert!(r.scanned <= 50 && r.scanned >= 40, "{}", r.scanned);
    assert!(r
        .by_type
        .values()
        .flat_map(|s| &s.biggest)
        .all(|b| b.memory.is_none()));
    // Regression: a key budget that cuts the scan's last batch short is not complete
    // (a small keyspace comes back in one batch, with cursor 0).
    let r = admin::big_keys(
        &conn,
        &BigKeyOptions::new().batch(1000).max_keys(5),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(r.scanned, 5);
    assert!(!r.complete);
    // The rate: 200 keys/s over 407 keys needs ~2 s; a 600 ms budget stops it.
    let opts = BigKeyOptions::new()
        .max_rate(200)
        .batch(20)
        .max_duration(Duration::from_millis(600));
    let t = Instant::now();
    let r = admin::big_keys(&conn, &opts, &mut |_| {}).unwrap();
    let took = t.elapsed();
    assert!(!r.complete);
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(took >= Duration::from_millis(400), "{took:?}");
    // 200 keys/s for ~0.6 s, plus the one batch that may run before the first pause.
    assert!(r.scanned <= 160, "{} keys in {took:?}", r.scanned);
    // A pattern narrows it.
    let r = admin::big_keys(
        &conn,
        &BigKeyOptions::new().pattern("bb:list:*").max_rate(0),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(r.scanned, 2);
}

#[test]
fn bgsave_and_bgrewriteaof_run_to_completion() {
    for kind in kinds() {
        let (server, conn) = own_server(kind);
        conn.set("persist-me", "1").unwrap();
        let mut polls = 0;
        let r = admin::bgsave(&conn, Duration::from_secs(30), &mut |_| polls += 1).unwrap();
        assert_eq!(r.status, "ok");
        assert!(r.last_save_time > 1_600_000_000);
        let path = r.path.clone().expect("CONFIG GET allowed");
        assert!(path.ends_with("dump.rdb"), "{path}");
        assert!(
            server.dir().join("dump.rdb").exists(),
            "{kind:?}: no dump.rdb"
        );
        let status = admin::persistence_status(&conn).unwrap();
        assert!(!status.rdb_bgsave_in_progress);
        assert_eq!(status.rdb_changes_since_last_save, 0);

        let r = admin::bgrewriteaof(&conn, Duration::from_secs(30), &mut |_| {}).unwrap();
        assert_eq!(r.status, "ok", "{kind:?}");
        let status = admin::persistence_status(&conn).unwrap();
        assert!(!status.aof_rewrite_in_progress && !status.aof_rewrite_scheduled);
    }
}

#[test]
fn bgsave_times_out_with_a_typed_error() {
    let kind = kinds()[0];
    let (_server, conn) = own_server(kind);
    // A zero budget cannot see the save finish: a Timeout, not a hang or a panic.
    conn.exec(&cmd("DEBUG").arg("POPULATE").arg(200_000))
        .unwrap();
    let err = admin::bgsave(&conn, Duration::ZERO, &mut |_| {});
    match err {
        Err(e) => assert!(e.is_timeout(), "{e}"),
        // The child may have finished before the first poll on a fast machine.
        Ok(r) => assert_eq!(r.status, "ok"),
    }
}

#[test]
fn queue_and_lock_metrics_pass_promtool() {
    use valkit::queue::{Job, Priority, Queue};
    let kind = kinds()[0];
    let conn = Connection::open(&shared(kind).config()).unwrap();
    let q = Queue::new(conn, &key("promq")).unwrap();
    q.push(Priority::High, &Job::new("t", serde_json::json!(1)))
        .unwrap();
    q.push(Priority::Low, &Job::new("t", serde_json::json!(2)))
        .unwrap();
    let mut text = admin::queue_metrics_text(&q).unwrap();
    text.push_str(&valkit::lock::metrics_text());
    assert!(text.contains("priority=\"high\"} 1"), "{text}");
    assert!(text.contains("valkit_queue_dead_letters{"), "{text}");
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; scripts/provision.sh installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
