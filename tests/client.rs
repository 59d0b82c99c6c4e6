//! The Client against real servers: reader/writer routing (a real primary + replica),
//! retry (never twice for a non-idempotent command whose reply was lost), the circuit
//! breaker through a server kill and restart, metrics validated by promtool, health.
#![cfg(feature = "testkit")]

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use valkit::testkit::{Direction, FaultProxy, Server, ServerKind, ServerOptions};
use valkit::{
    cmd, Backoff, BreakerOptions, BreakerState, Client, CommandEvent, Commands, Connection,
    Endpoint, ErrorKind, Info, Observer, PoolOptions, RetryPolicy, ServerErrorKind,
};

fn quick_pool() -> PoolOptions {
    PoolOptions::default()
        .max_size(4)
        .checkout_timeout(Duration::from_millis(500))
}

fn commandstat(conn: &Connection, command: &str) -> u64 {
    let info: Info = conn.info_sections("commandstats").unwrap();
    info.field(&format!("cmdstat_{command}"))
        .and_then(|v| v.split(',').next())
        .and_then(|calls| calls.strip_prefix("calls="))
        .map_or(0, |n| n.parse().unwrap())
}

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn reads_go_to_the_reader_writes_to_the_writer() {
    for kind in support::kinds() {
        let primary = Server::start(kind).unwrap();
        let replica = ServerOptions::new(kind)
            .replica_of(primary.port())
            .start()
            .unwrap();
        let replica_admin = Connection::open(&replica.config()).unwrap();
        let primary_admin = Connection::open(&primary.config()).unwrap();
        wait_until("replication link", Duration::from_secs(10), || {
            let info: Info = replica_admin.info_sections("replication").unwrap();
            info.field("master_link_status") == Some("up")
        });

        let client = Client::builder()
            .config(primary.config())
            .reader_config(replica.config())
            .pool(quick_pool())
            .build()
            .unwrap();
        assert!(client.has_reader());
        let gets_before = (
            commandstat(&primary_admin, "get"),
            commandstat(&replica_admin, "get"),
        );
        for i in 0..20 {
            client.set(format!("rw:{i}"), i).unwrap();
        }
        wait_until("the replica to catch up", Duration::from_secs(5), || {
            replica_admin.get_string("rw:19").unwrap().as_deref() == Some("19")
        });
        for i in 0..20 {
            assert_eq!(
                client.get_string(format!("rw:{i}")).unwrap(),
                Some(i.to_string())
            );
        }
        let gets_after = (
            commandstat(&primary_admin, "get"),
            commandstat(&replica_admin, "get"),
        );
        // The admin connection's own GETs above ran on the replica too; count only ours.
        assert_eq!(
            gets_after.0, gets_before.0,
            "{kind:?}: no GET reached the primary"
        );
        assert!(
            gets_after.1 >= gets_before.1 + 20,
            "{kind:?}: GETs hit the replica"
        );
        // (The replica also counts the SETs it applies from the replication stream, so
        // commandstats cannot show where writes were sent; the READONLY case below does.)
        assert!(
            commandstat(&primary_admin, "set") >= 20,
            "writes went to the primary"
        );

        // A writer endpoint that is really a replica (after a failover): READONLY is a
        // routing error; the connection is dropped, not reused.
        let wrong = Client::builder()
            .config(replica.config())
            .pool(quick_pool())
            .retry(RetryPolicy::new(
                2,
                Backoff::Constant(Duration::from_millis(5)),
            ))
            .build()
            .unwrap();
        let err = wrong.set("rw:x", 1).unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::Server(ServerErrorKind::ReadOnly),
            "{err}"
        );
        let stats = wrong.pool_stats(Endpoint::Writer).unwrap();
        assert_eq!(
            stats.idle, 0,
            "READONLY connections are not returned: {stats:?}"
        );
        assert_eq!(wrong.metrics().retries_total(), 1);
    }
}

/// `ReadFrom::ReaderWhenInSync`: a replica whose primary is unreachable serves none of
/// these reads (they go to the writer and see its data); once its link is up, they go to
/// the replica. `ReadFrom::Reader` uses the replica either way.
#[test]
fn reader_when_in_sync_avoids_a_replica_that_lost_its_primary() {
    for kind in support::kinds() {
        let primary = Server::start(kind).unwrap();
        // A replica of a port where nothing listens: its link stays down.
        let replica = ServerOptions::new(kind)
            .replica_of(valkit::testkit::free_port())
            .start()
            .unwrap();
        let replica_admin = Connection::open(&replica.config()).unwrap();
        let primary_admin = Connection::open(&primary.config()).unwrap();
        let client = Client::builder()
            .config(primary.config())
            .reader_config(replica.config())
            .pool(quick_pool())
            .build()
            .unwrap();
        client.set("sync:k", "from-primary").unwrap();
        let in_sync_get = || {
            client
                .query::<Option<String>>(
                    &cmd("GET")
                        .arg("sync:k")
                        .read_from(valkit::ReadFrom::ReaderWhenInSync),
                )
                .unwrap()
        };
        let reader_get = || {
            client
                .query::<Option<String>>(
                    &cmd("GET").arg("sync:k").read_from(valkit::ReadFrom::Reader),
                )
                .unwrap()
        };
        let replica_gets = commandstat(&replica_admin, "get");
        for _ in 0..5 {
            assert_eq!(in_sync_get().as_deref(), Some("from-primary"), "{kind:?}");
        }
        assert_eq!(
            commandstat(&replica_admin, "get"),
            replica_gets,
            "{kind:?}: no GET reached the out-of-sync replica"
        );
        // A plain reader read goes to the replica, which has nothing.
        assert_eq!(reader_get(), None, "{kind:?}");
        // A pipeline with one in-sync hint follows the same rule.
        let (a, b): (Option<String>, Option<String>) = valkit::pipe()
            .cmd(cmd("GET").arg("sync:k"))
            .cmd(
                cmd("GET")
                    .arg("sync:k")
                    .read_from(valkit::ReadFrom::ReaderWhenInSync),
            )
            .query(&client)
            .unwrap();
        assert_eq!(
            (a.as_deref(), b.as_deref()),
            (Some("from-primary"), Some("from-primary"))
        );

        // Point the replica at the real primary: once the link is up (and the one-second
        // answer expires), in-sync reads go to the replica.
        replica_admin
            .query::<()>(&cmd("REPLICAOF").arg("127.0.0.1").arg(primary.port()))
            .unwrap();
        wait_until("replication link", Duration::from_secs(10), || {
            let info: Info = replica_admin.info_sections("replication").unwrap();
            info.field("master_link_status") == Some("up")
        });
        let before = commandstat(&replica_admin, "get");
        wait_until(
            "in-sync reads to reach the replica",
            Duration::from_secs(5),
            || {
                assert_eq!(in_sync_get().as_deref(), Some("from-primary"));
                commandstat(&replica_admin, "get") > before + 1
            },
        );
        let primary_gets = commandstat(&primary_admin, "get");
        for _ in 0..5 {
            assert_eq!(in_sync_get().as_deref(), Some("from-primary"));
        }
        assert_eq!(commandstat(&primary_admin, "get"), primary_gets, "{kind:?}");
    }
}

/// Clears the proxy's toxics when the client schedules its first retry, so that only the
/// first attempt loses its reply.
struct HealOnRetry {
    proxy: Arc<FaultProxy>,
    retries: AtomicU64,
}

impl Observer for HealOnRetry {
    fn on_command(&self, _: &CommandEvent<'_>) {}
    fn on_retry(&self, _: &str, _: &valkit::Error, _: Duration) {
        self.retries.fetch_add(1, Ordering::SeqCst);
        self.proxy.clear();
    }
}

#[test]
fn a_lost_reply_never_applies_incr_twice_but_get_is_retried() {
    for kind in support::kinds() {
        let server = support::shared(kind);
        let proxy = Arc::new(FaultProxy::start(server.port()).unwrap());
        let direct = Connection::open(&server.config()).unwrap();
        let key = support::key("incr-once");
        let client = Client::builder()
            .config(proxy.config())
            .pool(quick_pool())
            .retry(RetryPolicy::new(
                3,
                Backoff::Constant(Duration::from_millis(10)),
            ))
            .observer(HealOnRetry {
                proxy: proxy.clone(),
                retries: AtomicU64::new(0),
            })
            .build()
            .unwrap();
        client.ping().unwrap();

        // The request reaches the server; the reply is cut before it reaches us.
        proxy.limit_data(Direction::Downstream, Some(0));
        let err = client.incr(&key).unwrap_err();
        assert!(err.is_ambiguous(), "{err}");
        assert_eq!(
            client.metrics().retries_total(),
            0,
            "INCR must not be resent"
        );
        assert_eq!(
            direct.get_string(&key).unwrap().as_deref(),
            Some("1"),
            "applied once"
        );

        // The same fault on an idempotent GET: retried on a fresh connection, succeeds.
        // (A healthy idle connection first: the pool retries failed connects itself.)
        proxy.clear();
        direct.set(&key, "value").unwrap();
        client.ping().unwrap();
        proxy.limit_data(Direction::Downstream, Some(0));
        assert_eq!(client.get_string(&key).unwrap().as_deref(), Some("value"));
        assert_eq!(client.metrics().retries_total(), 1);

        // Opting in resends even non-idempotent commands.
        let opt_in = Client::builder()
            .config(proxy.config())
            .pool(quick_pool())
            .retry(
                RetryPolicy::new(3, Backoff::Constant(Duration::from_millis(10)))
                    .retry_ambiguous(true),
            )
            .observer(HealOnRetry {
                proxy: proxy.clone(),
                retries: AtomicU64::new(0),
            })
            .build()
            .unwrap();
        opt_in.ping().unwrap();
        proxy.limit_data(Direction::Downstream, Some(0));
        let n = opt_in.incr(key.replace("incr-once", "incr-twice")).unwrap();
        assert_eq!(n, 2, "applied twice: once lost, once answered");
    }
}

#[test]
fn breaker_opens_fails_fast_and_closes_after_one_probe() {
    for kind in support::kinds() {
        let mut server = Server::start(kind).unwrap();
        let client = Client::builder()
            .config(server.config())
            .pool(quick_pool().checkout_timeout(Duration::from_millis(200)))
            .retry(RetryPolicy::none())
            .breaker(
                BreakerOptions::default()
                    .failure_threshold(3)
                    .recovery_timeout(Duration::from_millis(600)),
            )
            .build()
            .unwrap();
        client.ping().unwrap();
        server.kill();
        for i in 0..3 {
            let err = client.ping().unwrap_err();
            assert_ne!(err.kind(), ErrorKind::CircuitOpen, "failure {i}: {err}");
        }
        assert_eq!(
            client.breaker_state(Endpoint::Writer),
            Some(BreakerState::Open)
        );
        let t0 = Instant::now();
        let err = client.ping().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::CircuitOpen, "{err}");
        assert!(
            t0.elapsed() < Duration::from_millis(50),
            "fails fast: {:?}",
            t0.elapsed()
        );

        server.restart().unwrap();
        std::thread::sleep(Duration::from_millis(650));
        client.ping().expect("the probe goes through and succeeds");
        assert_eq!(
            client.breaker_state(Endpoint::Writer),
            Some(BreakerState::Closed)
        );
        let text = client.metrics_text();
        assert!(
            text.contains(r#"valkit_breaker_transitions_total{endpoint="writer",to="open"} 1"#),
            "{text}"
        );
        assert!(text
            .contains(r#"valkit_breaker_transitions_total{endpoint="writer",to="half_open"} 1"#));
        assert!(
            text.contains(r#"valkit_breaker_transitions_total{endpoint="writer",to="closed"} 1"#)
        );
        assert!(text.contains(r#"valkit_breaker_rejected_total{endpoint="writer"} 1"#));
    }
}

#[test]
fn metrics_text_passes_promtool() {
    let kind = support::kinds()[0];
    let client = Client::builder()
        .config(support::shared(kind).config())
        .pool(quick_pool())
        .build()
        .unwrap();
    let key = support::key("metrics");
    client.set(&key, "x").unwrap();
    let _: Option<String> = client.get(&key).unwrap();
    let _ = client.incr(&key); // a WRONGTYPE-style error, counted by kind
    valkit::pipe()
        .cmd(cmd("GET").arg(&key))
        .run(&client)
        .unwrap();
    // A cache's counters join the client's exposition.
    let cache: valkit::cache::Cache<Client> = valkit::cache::Cache::builder(client.clone())
        .namespace(support::key("metrics-ns").trim_end_matches(':'))
        .build()
        .unwrap();
    client.add_metrics_source(cache.metrics_source());
    for _ in 0..2 {
        let _: String = cache
            .get_or_load("k", Duration::from_secs(60), || Ok::<_, String>("v".into()))
            .unwrap();
    }
    let text = client.metrics_text();
    assert!(
        text.contains("# TYPE valkit_cache_hits_total counter"),
        "{text}"
    );
    assert!(
        text.contains("valkit_cache_loads_total{namespace="),
        "{text}"
    );
    drop(cache);
    assert!(
        !client.metrics_text().contains("valkit_cache_"),
        "the source holds the cache weakly"
    );
    assert!(
        text.contains(r#"valkit_errors_total{kind="server_other"} 1"#),
        "{text}"
    );
    assert!(text
        .contains(r#"valkit_commands_total{command="PIPELINE",endpoint="writer",outcome="ok"} 1"#));

    let promtool = ["/usr/bin/promtool", "promtool"]
        .into_iter()
        .find(|p| {
            std::process::Command::new(p)
                .arg("--version")
                .output()
                .is_ok()
        })
        .expect("promtool is installed by scripts/provision.sh (Debian package prometheus)");
    let mut child = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && report.trim().is_empty(),
        "promtool: {report}\n{text}"
    );
}

#[test]
fn health_reflects_the_server_and_a_kill() {
    for kind in support::kinds() {
        let mut server = Server::start(kind).unwrap();
        let client = Client::builder()
            .config(server.config())
            .pool(quick_pool().checkout_timeout(Duration::from_millis(200)))
            .build()
            .unwrap();
        client.set("h:k", 1).unwrap();
        let _: Option<String> = client.get("h:k").unwrap();
        let _: Option<String> = client.get("h:missing").unwrap();
        let h = client.health();
        assert!(h.is_ready(), "{h:?}");
        assert!(client.ready());
        let w = &h.endpoints[0];
        assert_eq!(w.role.as_deref(), Some("master"));
        let expected = match kind {
            ServerKind::Valkey => "valkey 9.",
            _ => "redis 7.",
        };
        assert!(
            w.version.as_deref().unwrap_or("").starts_with(expected),
            "{w:?}"
        );
        assert!(w.used_memory.unwrap() > 0);
        assert_eq!(w.hit_rate, Some(0.5));
        assert_eq!(w.evicted_keys, Some(0));
        assert!(w.ping.unwrap() < Duration::from_secs(1));

        server.kill();
        let h = client.health();
        assert!(!h.is_ready(), "{h:?}");
        assert!(h.endpoints[0].error.is_some());
        assert!(!client.ready());
    }
}

#[test]
fn client_is_cheap_to_clone_and_shared_across_threads() {
    let kind = support::kinds()[0];
    let client = Client::builder()
        .config(support::shared(kind).config())
        .pool(quick_pool())
        .build()
        .unwrap();
    let prefix = support::key("threads");
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let c = client.clone();
            let prefix = prefix.clone();
            std::thread::spawn(move || {
                for i in 0..200 {
                    let k = format!("{prefix}{t}:{i}");
                    c.set(&k, i).unwrap();
                    assert_eq!(c.get_string(&k).unwrap(), Some(i.to_string()));
                }
            })
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());
    assert_eq!(client.metrics().commands_total(), 1600);
    let stats = client.pool_stats(Endpoint::Writer).unwrap();
    assert!(stats.open <= 4, "{stats:?}");
}

/// Issue 11, item 2: a call the client may resend (idempotent, retries left) takes a
/// connection returned moments ago without looking at its socket (two system calls per
/// GET instead of five); when the server closed it meanwhile, the call is resent on a
/// checked connection and the caller sees the answer. A call that may not be resent
/// (DECR) still gets a checked connection: never sent on a dead one, applied once.
#[test]
fn resendable_calls_skip_the_socket_check_and_survive_a_closed_connection() {
    for kind in support::kinds() {
        let server = ServerOptions::new(kind).start().unwrap();
        let admin = Connection::open(&server.config()).unwrap();
        let kill_others = || {
            let n: i64 = admin
                .query(
                    &cmd("CLIENT")
                        .arg("KILL")
                        .arg("TYPE")
                        .arg("normal")
                        .arg("SKIPME")
                        .arg("yes"),
                )
                .unwrap();
            assert_eq!(n, 1, "{kind:?}: the client's one pooled connection");
            // Let the FIN reach the client's socket.
            std::thread::sleep(Duration::from_millis(20));
        };
        let client = Client::builder()
            .config(server.config())
            // No maintenance thread: it would notice the closed connection first.
            .pool(
                PoolOptions::new()
                    .max_size(1)
                    .max_idle_time(None)
                    .max_lifetime(None),
            )
            .build()
            .unwrap();
        client.set("k", 5).unwrap();
        kill_others();
        let before = client.metrics().retries_total();
        let v: Option<i64> = client.get("k").unwrap();
        assert_eq!(v, Some(5), "{kind:?}");
        assert_eq!(
            client.metrics().retries_total(),
            before + 1,
            "{kind:?}: the GET went out unchecked on the closed connection, then again"
        );
        kill_others();
        let before = client.metrics().retries_total();
        let n: i64 = client.decr("k").unwrap();
        assert_eq!(n, 4, "{kind:?}: applied once");
        assert_eq!(
            client.metrics().retries_total(),
            before,
            "{kind:?}: the DECR got a checked connection (nothing to retry)"
        );

        // Turned off: every checkout looks at the socket, no resend needed.
        let checked = Client::builder()
            .config(server.config())
            .pool(
                PoolOptions::new()
                    .max_size(1)
                    .max_idle_time(None)
                    .max_lifetime(None)
                    .skip_check_when_resendable(Duration::ZERO),
            )
            .build()
            .unwrap();
        drop(client);
        checked.get::<_, Option<i64>>("k").unwrap();
        kill_others();
        let before = checked.metrics().retries_total();
        let v: Option<i64> = checked.get("k").unwrap();
        assert_eq!(v, Some(4), "{kind:?}");
        assert_eq!(checked.metrics().retries_total(), before, "{kind:?}");
    }
}
