//! The shipped server configs (`ops/valkey-cache.conf`, `ops/valkey-queue.conf`) on real
//! servers (Valkey 9.1 and Redis 7.0): each starts, its settings are in force, and
//! valkit's patterns run as the least-privilege `valkit-app` ACL user. A command or key
//! the ACL forgot fails here (the message carries the server's ACL LOG); commands the app
//! must not have are refused.

mod support;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::kinds;
use valkit::admin;
use valkit::cache::Cache;
use valkit::limit::{Algorithm, Limiter};
use valkit::lock::Locks;
use valkit::queue::{Job, Nacked, Priority, Queue, QueueOptions};
use valkit::testkit::{Server, ServerKind, ServerOptions};
use valkit::write_behind::{OriginError, Write, WriteBehind};
use valkit::{cmd, Client, Connection, Execute, Secret, ServerErrorKind};

/// A config file as an operator would deploy it: placeholders replaced by real
/// passwords, and for Redis 7.0 the one documented edit (no `+delifeq`).
struct Deployed {
    path: PathBuf,
    admin_pw: String,
    app_pw: String,
}

impl Drop for Deployed {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn deploy(file: &str, kind: ServerKind) -> Deployed {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("ops").join(file);
    let text = std::fs::read_to_string(&src).unwrap();
    let tag = valkit::testkit::unique_prefix("pw").replace(':', "-");
    let admin_pw = format!("admin-{tag}");
    let app_pw = format!("app-{tag}");
    let mut text = text
        .replace("CHANGE-ME-admin", &admin_pw)
        .replace("CHANGE-ME-app", &app_pw)
        .replace("CHANGE-ME-exporter", &format!("exporter-{tag}"));
    assert!(
        !text
            .lines()
            .any(|l| !l.starts_with('#') && l.contains("CHANGE-ME")),
        "{file}: a placeholder is left"
    );
    if kind == ServerKind::Redis {
        assert!(
            text.contains(" +delifeq"),
            "{file}: the documented Redis edit no longer applies"
        );
        text = text.replace(" +delifeq", "");
    }
    let path = std::env::temp_dir().join(format!("valkit-{tag}-{file}"));
    std::fs::write(&path, text).unwrap();
    Deployed {
        path,
        admin_pw,
        app_pw,
    }
}

fn start(file: &str, kind: ServerKind) -> (Server, Deployed) {
    let d = deploy(file, kind);
    let server = ServerOptions::new(kind)
        .config_file(&d.path)
        .user("admin")
        .password(Some(&d.admin_pw))
        .start()
        .unwrap_or_else(|e| panic!("{kind:?} with {file}: {e}"));
    (server, d)
}

fn app_client(server: &Server, d: &Deployed) -> Client {
    let mut cfg = server.config();
    cfg.username = Some("valkit-app".into());
    cfg.password = Some(Secret::new(d.app_pw.clone()));
    Client::builder().config(cfg).build().unwrap()
}

fn acl_log(admin: &Connection) -> String {
    match admin.exec(&cmd("ACL").arg("LOG").arg(10)) {
        Ok(v) => format!("{v:?}"),
        Err(e) => format!("(ACL LOG failed: {e})"),
    }
}

/// What a least-privilege user must not do: refused with NOPERM.
fn assert_denied(app: &Client, c: valkit::Cmd, what: &str) {
    let err = app.exec(&c).expect_err(what);
    assert_eq!(
        err.kind(),
        valkit::ErrorKind::Server(ServerErrorKind::NoPerm),
        "{what}: {err}"
    );
}

/// The monitoring user can run `valkit health` and `valkit info` (PING, INFO), nothing
/// that changes or reads data.
fn exporter_checks(server: &Server, d: &Deployed) {
    let tag = d.app_pw.trim_start_matches("app-");
    let url = format!(
        "redis://exporter:exporter-{tag}@127.0.0.1:{}",
        server.port()
    );
    for args in [&["health"][..], &["info"], &["slowlog", "len"]] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_valkit"))
            .arg("--url")
            .arg(&url)
            .args(args)
            .env_remove("VALKEY_URL")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "valkit {args:?} as exporter: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut cfg = server.config();
    cfg.username = Some("exporter".into());
    cfg.password = Some(Secret::new(format!("exporter-{tag}")));
    let conn = Connection::open(&cfg).unwrap();
    let err = conn.exec(&cmd("GET").arg("app.x")).unwrap_err();
    assert_eq!(
        err.kind(),
        valkit::ErrorKind::Server(ServerErrorKind::NoPerm),
        "{err}"
    );
}

fn common_checks(server: &Server, app: &Client, admin: &Connection) {
    let c = admin::config_get(admin, "*").unwrap();
    assert_eq!(c["io-threads"], "2");
    assert_eq!(c["tcp-keepalive"], "60");
    assert_eq!(c["timeout"], "600");
    assert!(
        c["client-output-buffer-limit"].contains("pubsub 33554432 8388608 60"),
        "{}",
        c["client-output-buffer-limit"]
    );
    // The anonymous default user is off.
    let mut anon = server.config();
    anon.password = None;
    anon.username = None;
    let conn = Connection::open(&anon).and_then(|c| c.exec(&cmd("GET").arg("app.x")).map(|_| c));
    assert!(conn.is_err(), "the default user still works");
    // Least privilege.
    assert_denied(app, cmd("FLUSHALL"), "FLUSHALL");
    assert_denied(app, cmd("CONFIG").arg("GET").arg("maxmemory"), "CONFIG GET");
    assert_denied(app, cmd("KEYS").arg("*"), "KEYS");
    assert_denied(app, cmd("DEBUG").arg("SLEEP").arg(0), "DEBUG");
    assert_denied(app, cmd("GET").arg("other:key"), "a key outside app.*");
    assert_denied(app, cmd("SHUTDOWN"), "SHUTDOWN");
}

fn run_locks_and_limiters(app: &Client) -> Result<(), String> {
    let locks = Locks::new(app.clone());
    let g = locks
        .try_acquire("app.orders", Duration::from_secs(5))
        .map_err(|e| format!("lock acquire: {e}"))?
        .ok_or("lock was not free")?;
    if locks
        .try_acquire("app.orders", Duration::from_secs(5))
        .map_err(|e| format!("lock second acquire: {e}"))?
        .is_some()
    {
        return Err("lock taken twice".into());
    }
    g.release().map_err(|e| format!("lock release: {e}"))?;
    let g = locks
        .acquire_within("app.orders", Duration::from_secs(5), Duration::from_secs(1))
        .map_err(|e| format!("lock reacquire: {e}"))?;
    g.release().map_err(|e| format!("lock release 2: {e}"))?;

    let limiter = Limiter::new(
        "app.rl",
        Algorithm::token_bucket(3, 1, Duration::from_secs(10)),
    )
    .map_err(|e| e.to_string())?;
    let mut allowed = 0;
    for _ in 0..4 {
        if limiter
            .check(app, "user-1")
            .map_err(|e| format!("limiter: {e}"))?
            .allowed
        {
            allowed += 1;
        }
    }
    if allowed != 3 {
        return Err(format!("limiter allowed {allowed} of 4, expected 3"));
    }
    let gcra = Limiter::new("app.rl2", Algorithm::gcra(1, 10, Duration::from_secs(1)))
        .map_err(|e| e.to_string())?;
    gcra.check(app, "user-1")
        .map_err(|e| format!("gcra: {e}"))?;
    let log = Limiter::new("app.rl3", Algorithm::sliding_log(2, Duration::from_secs(1)))
        .map_err(|e| e.to_string())?;
    log.check(app, "user-1")
        .map_err(|e| format!("sliding log: {e}"))?;
    Ok(())
}

fn run_cache(app: &Client) -> Result<(), String> {
    let cache = Cache::new(app.clone(), "app.cache").map_err(|e| e.to_string())?;
    let calls = Arc::new(Mutex::new(0));
    for _ in 0..2 {
        let calls = calls.clone();
        let v: String = cache
            .get_or_load("user:1", Duration::from_secs(60), move || {
                *calls.lock().unwrap() += 1;
                Ok::<_, String>("Ada".to_owned())
            })
            .map_err(|e| format!("cache get_or_load: {e}"))?;
        if v != "Ada" {
            return Err(format!("cache returned {v}"));
        }
    }
    if *calls.lock().unwrap() != 1 {
        return Err("the loader ran twice: the first load was not cached".into());
    }
    cache
        .put("user:2", Duration::from_secs(60), &"Grace".to_owned())
        .map_err(|e| format!("cache put: {e}"))?;
    cache
        .invalidate("user:1")
        .map_err(|e| format!("cache invalidate: {e}"))?;
    cache
        .invalidate_tag("users")
        .map_err(|e| format!("cache invalidate_tag: {e}"))?;
    cache
        .invalidate_pattern("user:*")
        .map_err(|e| format!("cache invalidate_pattern: {e}"))?;
    Ok(())
}

fn run_queue_and_write_behind(app: &Client) -> Result<(), String> {
    let e =
        |what: &'static str| move |err: valkit::queue::QueueError| format!("queue {what}: {err}");
    let q = Queue::with_options(app.clone(), "app.jobs", QueueOptions::new().max_attempts(1))
        .map_err(e("new"))?;
    q.push(
        Priority::High,
        &Job::new("email", serde_json::json!({"to": "ada"})),
    )
    .map_err(e("push"))?;
    q.push_delayed(
        Priority::Low,
        &Job::new("later", serde_json::json!(1)),
        Duration::from_secs(60),
    )
    .map_err(e("push_delayed"))?;
    let r = q
        .reserve(Duration::from_secs(1))
        .map_err(e("reserve"))?
        .ok_or("no job")?;
    q.ack(&r).map_err(e("ack"))?;
    q.push(Priority::Medium, &Job::new("fails", serde_json::json!(2)))
        .map_err(e("push 2"))?;
    let r = q
        .try_reserve()
        .map_err(e("try_reserve"))?
        .ok_or("no job 2")?;
    if !matches!(q.nack(r, "boom").map_err(e("nack"))?, Nacked::DeadLettered) {
        return Err("expected a dead letter".into());
    }
    q.reap().map_err(e("reap"))?;
    let s = q.stats().map_err(e("stats"))?;
    if s.dead_lettered != 1 || s.delayed != 1 {
        return Err(format!("queue stats {s:?}"));
    }
    q.dead_letters(0, 10).map_err(e("dead_letters"))?;
    q.requeue_all_dead(10).map_err(e("requeue"))?;
    q.purge_dead().map_err(e("purge"))?;

    let applied = Arc::new(Mutex::new(Vec::new()));
    let sink = applied.clone();
    let wb = WriteBehind::builder(app.clone(), "app.wb")
        .origin(move |batch: &[Write]| {
            for w in batch {
                sink.lock().unwrap().push(w.key().to_owned());
            }
            Ok::<(), OriginError>(())
        })
        .start()
        .map_err(|err| format!("write-behind start: {err}"))?;
    wb.put("user:1", b"{}")
        .map_err(|err| format!("write-behind put: {err}"))?;
    if wb
        .get("user:1")
        .map_err(|err| format!("write-behind get: {err}"))?
        != Some(b"{}".to_vec())
    {
        return Err("write-behind get".into());
    }
    wb.flush(Duration::from_secs(10))
        .map_err(|err| format!("write-behind flush: {err}"))?;
    wb.shutdown(Duration::from_secs(5))
        .map_err(|err| format!("write-behind shutdown: {err}"))?;
    if applied.lock().unwrap().as_slice() != ["user:1"] {
        return Err(format!(
            "write-behind applied {:?}",
            applied.lock().unwrap()
        ));
    }
    Ok(())
}

#[test]
fn cache_config_runs_the_cache_patterns_as_the_app_user() {
    for kind in kinds() {
        let (server, d) = start("valkey-cache.conf", kind);
        let admin = Connection::open(&server.config()).unwrap();
        let c = admin::config_get(&admin, "*").unwrap();
        assert_eq!(c["maxmemory-policy"], "allkeys-lfu");
        assert_eq!(c["maxmemory"], (2u64 << 30).to_string());
        assert_eq!(c["appendonly"], "no");
        assert_eq!(c["save"], "");
        assert_eq!(c["lazyfree-lazy-eviction"], "yes");
        let app = app_client(&server, &d);
        run_cache(&app)
            .and_then(|()| run_locks_and_limiters(&app))
            .unwrap_or_else(|e| panic!("{kind:?} cache config: {e}\nACL LOG: {}", acl_log(&admin)));
        common_checks(&server, &app, &admin);
        exporter_checks(&server, &d);
    }
}

#[test]
fn queue_config_runs_the_durable_patterns_as_the_app_user() {
    for kind in kinds() {
        let (server, d) = start("valkey-queue.conf", kind);
        let admin = Connection::open(&server.config()).unwrap();
        let c = admin::config_get(&admin, "*").unwrap();
        assert_eq!(c["maxmemory-policy"], "noeviction");
        assert_eq!(c["appendonly"], "yes");
        assert_eq!(c["appendfsync"], "everysec");
        let app = app_client(&server, &d);
        run_queue_and_write_behind(&app)
            .and_then(|()| run_locks_and_limiters(&app))
            .unwrap_or_else(|e| panic!("{kind:?} queue config: {e}\nACL LOG: {}", acl_log(&admin)));
        common_checks(&server, &app, &admin);
        // The admin user can back it up (the CLI's `backup`).
        let r = admin::bgrewriteaof(&admin, Duration::from_secs(30), &mut |_| {}).unwrap();
        assert_eq!(r.status, "ok");
        let r = admin::bgsave(&admin, Duration::from_secs(30), &mut |_| {}).unwrap();
        assert_eq!(r.status, "ok");
        assert!(server.dir().join("dump.rdb").exists());
    }
}
