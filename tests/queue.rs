//! Reliable queues against real servers (Valkey and Redis): priority order, FIFO ties,
//! delayed jobs, leases and the reaper, dead letters and requeue, malformed entries, the
//! worker pool, and a consumer process SIGKILLed mid-job.
//!
//! Every test runs on each of [`support::targets`] (the shared Valkey and Redis servers and
//! the shared Valkey cluster through a cluster `Client`), except
//! `runs_unchanged_on_a_pool_and_a_client`, which is about the executor types over one
//! server (a cluster has only the client, which every other test here uses).

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use support::{key, kinds, shared, targets, thread_names, Exec, Target};
use valkit::queue::{Job, Nacked, Priority, Queue, QueueErrorKind, QueueOptions, WorkerPool};
use valkit::{cmd, Client, Execute, FromValue, Pool, PoolOptions};

/// A connection on a single server, a cluster client on the cluster.
type Conn = Exec;

fn conn(t: Target) -> Conn {
    t.conn()
}

fn queue(t: Target, name: &str, opts: QueueOptions) -> Queue<Conn> {
    let name = key(&format!("q-{name}-{}", t.label()));
    Queue::with_options(conn(t), &name, opts).unwrap()
}

fn fast() -> QueueOptions {
    QueueOptions::new()
        .backoff(Duration::ZERO, Duration::ZERO)
        .poll_interval(Duration::from_millis(5))
}

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let until = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn priority_order_and_fifo_ties() {
    for t in targets() {
        let q = queue(t, "order", fast());
        for id in ["l1", "l2"] {
            q.push(Priority::Low, &Job::new("t", json!(id)).with_id(id))
                .unwrap();
        }
        for id in ["h1", "h2", "h3"] {
            q.push(Priority::High, &Job::new("t", json!(id)).with_id(id))
                .unwrap();
        }
        let batch: Vec<Job> = (1..=3)
            .map(|i| Job::new("t", json!(i)).with_id(format!("m{i}")))
            .collect();
        assert_eq!(q.push_many(Priority::Medium, &batch).unwrap(), 3);
        let stats = q.stats().unwrap();
        assert_eq!(stats.waiting, [3, 3, 2], "{t:?}");
        assert!(stats.oldest_age.is_some());
        let mut got = Vec::new();
        while let Some(r) = q.try_reserve().unwrap() {
            got.push(r.job().id().to_owned());
            q.ack(&r).unwrap();
        }
        assert_eq!(
            got,
            ["h1", "h2", "h3", "m1", "m2", "m3", "l1", "l2"],
            "{t:?}"
        );
        assert!(q.stats().unwrap().is_idle());
    }
}

#[test]
fn runbook_producers_plain_lpush_is_understood() {
    for t in targets() {
        let q = queue(t, "runbook", fast());
        let raw = r#"{"id":"job-1","type":"send_email","payload":{"to":"a@b.c"},"extra":[1,2]}"#;
        q.executor()
            .exec(&cmd("LPUSH").arg(q.keys().list(Priority::Medium)).arg(raw))
            .unwrap();
        let r = q.reserve(Duration::from_secs(1)).unwrap().expect("a job");
        assert_eq!(r.job().id(), "job-1");
        assert_eq!(r.job().kind(), "send_email");
        assert_eq!(r.job().payload()["to"], "a@b.c");
        assert_eq!(r.priority(), Priority::Medium);
        // Unknown fields survive a retry.
        assert!(matches!(
            q.nack(r, "try again").unwrap(),
            Nacked::Retry { attempts: 1, .. }
        ));
        let r = q
            .reserve(Duration::from_secs(1))
            .unwrap()
            .expect("the retry");
        assert_eq!(r.job().attempts(), 1);
        assert_eq!(r.job().last_error(), Some("try again"));
        let text = String::from_utf8(r.job().payload_bytes().unwrap().to_vec()).unwrap();
        assert!(text.contains("a@b.c"));
        q.ack(&r).unwrap();
    }
}

#[test]
fn delayed_jobs_never_early_and_in_due_order() {
    for t in targets() {
        let q = queue(t, "delayed", fast());
        let plan = [
            ("d300", 300u64),
            ("d100", 100),
            ("d200a", 200),
            ("d200b", 200),
            ("d0", 0),
        ];
        let mut due = HashMap::new();
        for (id, ms) in plan {
            let job = Job::new("t", json!(null)).with_id(id);
            due.insert(
                id,
                q.push_delayed(Priority::Low, &job, Duration::from_millis(ms))
                    .unwrap(),
            );
        }
        assert_eq!(q.stats().unwrap().delayed, 5);
        let mut order = Vec::new();
        let started = Instant::now();
        while order.len() < plan.len() {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{t:?}: stuck at {order:?}"
            );
            if let Some(r) = q.reserve(Duration::from_millis(500)).unwrap() {
                let id = r.job().id().to_owned();
                let at = r.reserved_at_ms();
                assert!(
                    at >= due[id.as_str()],
                    "{t:?}: {id} reserved at {at}, due {}",
                    due[id.as_str()]
                );
                q.ack(&r).unwrap();
                order.push(id);
            }
        }
        assert_eq!(order, ["d0", "d100", "d200a", "d200b", "d300"], "{t:?}");
    }
}

#[test]
fn malformed_entries_are_dead_lettered_and_never_block() {
    for t in targets() {
        let q = queue(t, "malformed", fast());
        let list = q.keys().list(Priority::High).to_owned();
        let good = Job::new("t", json!(1)).with_id("good");
        q.push(Priority::High, &good).unwrap();
        for junk in [
            "not json",
            r#"{"type":"x"}"#,
            r#"{"id":5}"#,
            r#"{"id":"a","attempts":"x"}"#,
        ] {
            q.executor()
                .exec(&cmd("LPUSH").arg(&list).arg(junk))
                .unwrap();
        }
        q.executor()
            .exec(&cmd("LPUSH").arg(&list).arg(&[0xffu8, 0xfe][..]))
            .unwrap();
        let r = q
            .reserve(Duration::from_secs(1))
            .unwrap()
            .expect("the good job");
        assert_eq!(r.job().id(), "good");
        q.ack(&r).unwrap();
        assert!(q.try_reserve().unwrap().is_none());
        let dead = q.dead_letters(0, 10).unwrap();
        assert_eq!(dead.len(), 5, "{t:?}");
        for d in &dead {
            assert!(d.id().is_none());
            assert!(!d.error().is_empty());
            assert!(d.job().is_none());
            assert!(
                !q.requeue_dead(d).unwrap(),
                "a malformed entry cannot be requeued"
            );
        }
        assert!(dead
            .iter()
            .any(|d| d.original() == "not json" && d.error().contains("not JSON")));
        assert!(dead.iter().any(|d| d.error().contains("no \"id\"")));
        assert_eq!(q.metrics().malformed, 5);
        assert_eq!(q.purge_dead().unwrap(), 5);
        assert_eq!(q.stats().unwrap().dead_lettered, 0);
    }
}

#[test]
fn max_attempts_dead_letter_with_error_then_requeue() {
    for t in targets() {
        let q = queue(t, "attempts", fast().max_attempts(3));
        q.push(
            Priority::Medium,
            &Job::new("charge", json!({"n": 1})).with_id("j"),
        )
        .unwrap();
        for attempt in 1..=3u32 {
            let r = q.reserve(Duration::from_secs(1)).unwrap().expect("job");
            assert_eq!(r.job().attempts(), attempt - 1);
            let out = q.nack(r, &format!("card declined #{attempt}")).unwrap();
            if attempt < 3 {
                assert_eq!(
                    out,
                    Nacked::Retry {
                        attempts: attempt,
                        after: Duration::ZERO
                    }
                );
            } else {
                assert_eq!(out, Nacked::DeadLettered, "{t:?}");
            }
        }
        assert!(q.try_reserve().unwrap().is_none());
        let stats = q.stats().unwrap();
        assert_eq!(
            (stats.dead_lettered, stats.in_flight, stats.waiting_total()),
            (1, 0, 0)
        );
        let dead = q.dead_letters(0, 10).unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].id(), Some("j"));
        assert_eq!(dead[0].error(), "card declined #3");
        assert_eq!(dead[0].priority(), Priority::Medium);
        assert_eq!(dead[0].job().unwrap().attempts(), 3);
        // The runbook's shape: {"id", "error", "original"}.
        let raw: Vec<Vec<u8>> = FromValue::from_value(
            q.executor()
                .exec(&cmd("LRANGE").arg(q.keys().dead_letter()).arg(0).arg(-1))
                .unwrap(),
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&raw[0]).unwrap();
        assert_eq!(v["id"], "j");
        assert_eq!(v["error"], "card declined #3");
        assert_eq!(v["original"]["type"], "charge");
        // Requeue: back on its list with fresh attempts; a second requeue finds nothing.
        assert!(q.requeue_dead(&dead[0]).unwrap());
        assert!(!q.requeue_dead(&dead[0]).unwrap());
        let r = q
            .reserve(Duration::from_secs(1))
            .unwrap()
            .expect("requeued job");
        assert_eq!((r.job().id(), r.job().attempts()), ("j", 0));
        assert_eq!(r.priority(), Priority::Medium);
        q.ack(&r).unwrap();
        assert!(q.stats().unwrap().is_idle());
    }
}

#[test]
fn expired_lease_returns_the_job_and_the_old_holder_cannot_ack() {
    for t in targets() {
        let q = queue(t, "lease", fast().lease(Duration::from_millis(200)));
        q.push(Priority::High, &Job::new("t", json!(0)).with_id("x"))
            .unwrap();
        let mut first = q.reserve(Duration::from_secs(1)).unwrap().unwrap();
        q.extend(&mut first, Duration::from_millis(300)).unwrap();
        assert!(q.try_reserve().unwrap().is_none(), "leased: invisible");
        std::thread::sleep(Duration::from_millis(450));
        assert_eq!(q.reap().unwrap(), 1, "{t:?}");
        assert_eq!(q.reap().unwrap(), 0);
        let second = q
            .reserve(Duration::from_secs(1))
            .unwrap()
            .expect("handed out again");
        assert_eq!(second.job().id(), "x");
        assert_eq!(second.job().attempts(), 1, "an expiry counts as an attempt");
        assert_ne!(second.token(), first.token());
        let late = q.ack(&first).unwrap_err();
        assert_eq!(late.kind(), QueueErrorKind::LeaseLost);
        assert_eq!(
            q.nack(first.clone(), "late").unwrap_err().kind(),
            QueueErrorKind::LeaseLost
        );
        assert_eq!(
            q.extend(&mut first, Duration::from_secs(1))
                .unwrap_err()
                .kind(),
            QueueErrorKind::LeaseLost
        );
        q.ack(&second).unwrap();
        assert!(q.stats().unwrap().is_idle());
        assert_eq!(q.metrics().lease_lost, 3);
    }
}

#[test]
fn concurrent_reapers_never_requeue_a_job_twice() {
    for t in targets() {
        let q = queue(
            t,
            "reapers",
            fast().lease(Duration::from_millis(100)).move_limit(7),
        );
        let jobs: Vec<Job> = (0..60).map(|i| Job::new("t", json!(i))).collect();
        q.push_many(Priority::Low, &jobs).unwrap();
        for _ in 0..60 {
            q.try_reserve().unwrap().expect("job");
        }
        assert_eq!(q.stats().unwrap().in_flight, 60);
        std::thread::sleep(Duration::from_millis(200));
        let total = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                let q = Queue::with_options(conn(t), q.keys().name(), q.options().clone()).unwrap();
                let total = &total;
                s.spawn(move || {
                    for _ in 0..20 {
                        total.fetch_add(q.reap().unwrap(), SeqCst);
                    }
                });
            }
        });
        assert_eq!(total.load(SeqCst), 60, "{t:?}");
        let stats = q.stats().unwrap();
        assert_eq!((stats.waiting[2], stats.in_flight), (60, 0), "{t:?}");
        let mut seen = HashSet::new();
        while let Some(r) = q.try_reserve().unwrap() {
            assert!(
                seen.insert(r.job().id().to_owned()),
                "duplicate {}",
                r.job().id()
            );
            q.ack(&r).unwrap();
        }
        assert_eq!(seen.len(), 60);
    }
}

#[test]
fn worker_pool_acks_retries_dead_letters_and_joins() {
    for t in targets() {
        let q = queue(t, "pool", fast().max_attempts(2));
        let ok = Arc::new(AtomicUsize::new(0));
        let mut jobs = vec![
            Job::new("fail", json!(0)).with_id("f"),
            Job::new("panic", json!(0)).with_id("p"),
        ];
        jobs.extend((0..40).map(|i| Job::new("ok", json!(i))));
        q.push_many(Priority::Medium, &jobs).unwrap();
        let counter = ok.clone();
        let mut pool = WorkerPool::builder(q.clone())
            .workers(3)
            .name("pooltest")
            .reserve_wait(Duration::from_millis(20))
            .start(move |job| match job.kind() {
                "fail" => Err("always fails".into()),
                "panic" => panic!("boom in handler"),
                _ => {
                    counter.fetch_add(1, SeqCst);
                    Ok(())
                }
            })
            .unwrap();
        wait_until("the queue to drain", Duration::from_secs(10), || {
            let s = q.stats().unwrap();
            s.is_idle() && s.dead_lettered == 2
        });
        let report = pool.shutdown(Duration::from_secs(5));
        assert_eq!((report.stopped_in_time, report.handed_back), (3, 0));
        assert_eq!(ok.load(SeqCst), 40);
        let dead = q.dead_letters(0, 10).unwrap();
        let errors: HashMap<_, _> = dead
            .iter()
            .map(|d| (d.id().unwrap().to_owned(), d.error().to_owned()))
            .collect();
        assert_eq!(errors["f"], "always fails");
        assert!(errors["p"].contains("boom in handler"), "{errors:?}");
        let m = q.metrics();
        assert_eq!(
            (m.handler_ok, m.handler_err, m.handler_panic),
            (40, 2, 2),
            "{m:?}"
        );
        assert_eq!(m.acked, 40);
        assert!(m.reserve_calls > 0);
        // No thread of the pool is left.
        let names = thread_names();
        assert!(
            !names.iter().any(|n| n.contains("valkit-queue-pooltest")),
            "{names:?}"
        );
    }
}

#[test]
fn shutdown_hands_back_jobs_of_overrunning_handlers() {
    for t in targets() {
        let q = queue(t, "overrun", fast());
        q.push(Priority::High, &Job::new("slow", json!(0)).with_id("slow"))
            .unwrap();
        let started = Arc::new(AtomicUsize::new(0));
        let s2 = started.clone();
        let mut pool = WorkerPool::builder(q.clone())
            .workers(1)
            .reserve_wait(Duration::from_millis(20))
            .start(move |_| {
                s2.fetch_add(1, SeqCst);
                std::thread::sleep(Duration::from_millis(700));
                Ok(())
            })
            .unwrap();
        wait_until("the handler to start", Duration::from_secs(5), || {
            started.load(SeqCst) == 1
        });
        let report = pool.shutdown(Duration::from_millis(100));
        assert_eq!(
            (report.stopped_in_time, report.handed_back),
            (0, 1),
            "{t:?}"
        );
        assert!(
            report.took >= Duration::from_millis(400),
            "joined the running handler"
        );
        let stats = q.stats().unwrap();
        assert_eq!(
            (stats.waiting[0], stats.in_flight),
            (1, 0),
            "{t:?}: handed back, not acked"
        );
        let r = q.try_reserve().unwrap().unwrap();
        assert_eq!((r.job().id(), r.job().attempts()), ("slow", 0));
        q.ack(&r).unwrap();
    }
}

#[test]
fn runs_unchanged_on_a_pool_and_a_client() {
    for kind in kinds() {
        let server = shared(kind);
        let name = key(&format!("q-exec-{}", kind.name()));
        let pool = Pool::new(server.config(), PoolOptions::default()).unwrap();
        let client = Client::open(&server.url()).unwrap();
        let on_pool = Queue::new(pool, &name).unwrap();
        let on_client = Queue::new(client, &name).unwrap();
        on_pool
            .push(Priority::Low, &Job::new("t", json!("a")).with_id("a"))
            .unwrap();
        let r = on_client.reserve(Duration::from_secs(1)).unwrap().unwrap();
        assert_eq!(r.job().id(), "a");
        on_pool.ack(&r).unwrap();
        assert!(on_client.stats().unwrap().is_idle());
    }
}

// ---- a consumer process SIGKILLed mid-job ----

const CHILD_URL: &str = "VALKIT_QUEUE_CHILD_URL";
const CHILD_QUEUE: &str = "VALKIT_QUEUE_CHILD_QUEUE";

/// The consumer process of [`killed_consumer_jobs_reappear_after_the_lease`]; does
/// nothing in a normal run. Two workers; the first 5 jobs finish, the rest hang.
#[test]
fn queue_child_role() {
    let (Ok(url), Ok(name)) = (std::env::var(CHILD_URL), std::env::var(CHILD_QUEUE)) else {
        return;
    };
    let c = support::child_conn(&url);
    let q = Queue::with_options(
        c.clone(),
        &name,
        QueueOptions::new().lease(Duration::from_secs(1)),
    )
    .unwrap();
    let done = format!("{{{name}}}:done");
    let started = format!("{{{name}}}:started");
    let n = Arc::new(AtomicUsize::new(0));
    let _pool = WorkerPool::builder(q)
        .workers(2)
        .start(move |job| {
            c.exec(&cmd("SADD").arg(&started).arg(job.id()))?;
            if n.fetch_add(1, SeqCst) < 5 {
                c.exec(&cmd("SADD").arg(&done).arg(job.id()))?;
                c.exec(
                    &cmd("HINCRBY")
                        .arg(format!("{done}:runs"))
                        .arg(job.id())
                        .arg(1),
                )?;
                Ok(())
            } else {
                std::thread::sleep(Duration::from_secs(60));
                Ok(())
            }
        })
        .unwrap();
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn killed_consumer_jobs_reappear_after_the_lease() {
    for t in targets() {
        let name = key(&format!("q-kill-{}", t.label()));
        let c = conn(t);
        let opts = QueueOptions::new()
            .lease(Duration::from_secs(1))
            .poll_interval(Duration::from_millis(10));
        let q = Queue::with_options(c.clone(), &name, opts).unwrap();
        let jobs: Vec<Job> = (0..30)
            .map(|i| Job::new("t", json!(i)).with_id(format!("j{i:02}")))
            .collect();
        q.push_many(Priority::Medium, &jobs).unwrap();
        let done = format!("{{{name}}}:done");
        let started = format!("{{{name}}}:started");
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "queue_child_role", "--test-threads=1"])
            .env(CHILD_URL, t.child_url())
            .env(CHILD_QUEUE, &name)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let scard = |k: &str| -> i64 {
            FromValue::from_value(c.exec(&cmd("SCARD").arg(k)).unwrap()).unwrap()
        };
        wait_until("the child to be mid-job", Duration::from_secs(20), || {
            scard(&started) >= 7
        });
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let stats = q.stats().unwrap();
        assert_eq!(
            stats.in_flight, 2,
            "{t:?}: the two hung jobs are leased by a dead process"
        );
        let killed_at = Instant::now();
        let c2 = c.clone();
        let done2 = done.clone();
        let mut pool = WorkerPool::builder(q.clone())
            .workers(2)
            .reserve_wait(Duration::from_millis(20))
            .reap_every(Duration::from_millis(100))
            .start(move |job| {
                // Idempotent: a set member and a run counter.
                c2.exec(&cmd("SADD").arg(&done2).arg(job.id()))?;
                c2.exec(
                    &cmd("HINCRBY")
                        .arg(format!("{done2}:runs"))
                        .arg(job.id())
                        .arg(1),
                )?;
                Ok(())
            })
            .unwrap();
        wait_until("every job done", Duration::from_secs(20), || {
            scard(&done) == 30 && q.stats().unwrap().is_idle()
        });
        let recovered_after = killed_at.elapsed();
        pool.shutdown(Duration::from_secs(5));
        let runs: HashMap<String, i64> =
            FromValue::from_value(c.exec(&cmd("HGETALL").arg(format!("{done}:runs"))).unwrap())
                .unwrap();
        assert_eq!(runs.len(), 30, "{t:?}: none lost");
        assert!(
            runs.values().all(|&n| n == 1),
            "{t:?}: every job completed exactly once: {runs:?}"
        );
        let stats = q.stats().unwrap();
        assert_eq!(
            (stats.dead_lettered, stats.in_flight, stats.waiting_total()),
            (0, 0, 0)
        );
        // The two hung jobs came back only after the lease, with the expiry counted.
        let hung: Vec<String> =
            FromValue::from_value(c.exec(&cmd("SDIFF").arg(&started).arg(&done)).unwrap()).unwrap();
        assert!(hung.is_empty());
        eprintln!("{t:?}: consumer killed with 2 jobs in flight; all 30 done {recovered_after:?} after the kill");
        assert!(
            recovered_after >= Duration::from_millis(300),
            "not before the lease ran out"
        );
    }
}

#[test]
fn a_job_whose_leases_keep_expiring_is_dead_lettered() {
    for t in targets() {
        let q = queue(
            t,
            "expiries",
            fast().lease(Duration::from_millis(100)).max_attempts(2),
        );
        q.push(Priority::Low, &Job::new("crashy", json!(0)).with_id("c"))
            .unwrap();
        for expected_attempts in 0..2 {
            let r = q
                .reserve(Duration::from_secs(1))
                .unwrap()
                .expect("handed out");
            assert_eq!(r.job().attempts(), expected_attempts);
            // The "worker" dies: no ack, no nack.
            std::thread::sleep(Duration::from_millis(200));
        }
        // The next reserve returns the second expired lease and finds the attempts used up.
        assert!(
            q.reserve(Duration::from_millis(100)).unwrap().is_none(),
            "{t:?}"
        );
        let dead = q.dead_letters(0, 10).unwrap();
        assert_eq!(dead.len(), 1, "{t:?}");
        assert_eq!(dead[0].id(), Some("c"));
        assert!(
            dead[0].error().contains("lease expired 2 time(s)"),
            "{}",
            dead[0].error()
        );
        assert!(q.stats().unwrap().is_idle());
    }
}
