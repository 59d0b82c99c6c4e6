//! `Script` against real servers: EVALSHA, the NOSCRIPT fallback to EVAL after
//! `SCRIPT FLUSH`, `SCRIPT LOAD`, KEYS/ARGV, errors. Valkey 9.1 and Redis 7.0, RESP2 and
//! RESP3.
#![cfg(feature = "testkit")]

mod support;

use support::each_combo;
use valkit::{cmd, Connection, ErrorKind, Execute, Script, ServerErrorKind, Value};

fn cached(c: &Connection, script: &Script) -> bool {
    let exists: Vec<bool> = valkit::FromValue::from_value(
        c.exec(&cmd("SCRIPT").arg("EXISTS").arg(script.sha1_hex()))
            .unwrap(),
    )
    .unwrap();
    exists == [true]
}

const ECHO: &str = "return {KEYS[1], KEYS[2], ARGV[1], ARGV[2], #KEYS, #ARGV}";

#[test]
fn keys_and_argv_reach_the_script() {
    each_combo("echo", |c, p, _, _| {
        let script = Script::new(ECHO);
        let (k1, k2) = (format!("{p}:k1"), format!("{p}:k2"));
        let reply = script.invoke(c, [&k1, &k2], ("a\r\n\0", 42)).unwrap();
        let want = Value::Array(vec![
            Value::Bulk(k1.clone().into()),
            Value::Bulk(k2.clone().into()),
            Value::Bulk(b"a\r\n\0".into()),
            Value::Bulk(b"42".into()),
            Value::Int(2),
            Value::Int(2),
        ]);
        assert_eq!(reply, want);

        // The builder form gives the same call.
        let same = script
            .key(&k1)
            .key(&k2)
            .arg("a\r\n\0")
            .arg(42)
            .invoke(c)
            .unwrap();
        assert_eq!(same, want);

        // No keys, only arguments.
        let only_args: (i64, i64) = Script::new("return {#KEYS, #ARGV}")
            .arg(["x", "y", "z"])
            .invoke_as(c)
            .unwrap();
        assert_eq!(only_args, (0, 3));
    });
}

#[test]
fn script_writes_through_keys() {
    each_combo("write", |c, p, _, _| {
        let capped = Script::new(
            "local n = redis.call('INCRBY', KEYS[1], ARGV[1])
             if n > tonumber(ARGV[2]) then
                 redis.call('SET', KEYS[1], ARGV[2])
                 return tonumber(ARGV[2])
             end
             return n",
        );
        let k = format!("{p}:counter");
        let mut last = 0;
        for _ in 0..5 {
            last = capped
                .key(&k)
                .arg(4)
                .arg(10)
                .invoke_as::<i64, _>(c)
                .unwrap();
        }
        assert_eq!(last, 10);
        let stored: i64 =
            valkit::FromValue::from_value(c.exec(&cmd("GET").arg(&k)).unwrap()).unwrap();
        assert_eq!(stored, 10);
    });
}

#[test]
fn keeps_working_after_script_flush() {
    each_combo("flush", |c, p, _, _| {
        // A source unique to this run, so no other test has cached it.
        let src = format!("return {{'{p}', ARGV[1]}}");
        let script = Script::new(src.clone());
        c.exec(&cmd("SCRIPT").arg("FLUSH")).unwrap();
        assert!(!cached(c, &script));

        // First call: EVALSHA misses, EVAL runs and caches it.
        let first: Vec<String> = script.arg("one").invoke_as(c).unwrap();
        assert_eq!(first, [p.to_owned(), "one".to_owned()]);
        assert!(cached(c, &script));

        // Cached: EVALSHA alone works.
        let reply = c.exec(&script.arg("two").evalsha_cmd()).unwrap();
        assert_eq!(reply.as_slice().map(|s| s.len()), Some(2));

        // Flushed again (as after a restart): still works, and caches it again.
        c.exec(&cmd("SCRIPT").arg("FLUSH")).unwrap();
        let err = c.exec(&script.arg("x").evalsha_cmd()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Server(ServerErrorKind::NoScript));
        let again: Vec<String> = script.arg("three").invoke_as(c).unwrap();
        assert_eq!(again, [p.to_owned(), "three".to_owned()]);
        assert!(cached(c, &script));
    });
}

#[test]
fn script_load_agrees_with_our_sha1() {
    each_combo("load", |c, p, _, _| {
        // Multi-byte UTF-8 and a long source exercise the hash beyond one block.
        let src = format!("-- {p} ünïcödé ✓ {}\nreturn 'loaded'", "x".repeat(300));
        let script = Script::new(src);
        script.script_load(c).unwrap();
        assert!(cached(c, &script));
        let sha: String = valkit::FromValue::from_value(
            c.exec(&cmd("SCRIPT").arg("LOAD").arg(script.source()))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(sha, script.sha1_hex());
        let reply: String = c
            .exec(&script.prepare_invoke().evalsha_cmd())
            .and_then(valkit::FromValue::from_value)
            .unwrap();
        assert_eq!(reply, "loaded");
    });
}

#[test]
fn script_errors_are_server_errors() {
    each_combo("errors", |c, p, _, _| {
        let raising = Script::new("return redis.error_reply('MYERR custom failure')");
        let err = raising.prepare_invoke().invoke(c).unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::Server(_)), "{err:?}");
        assert!(err.to_string().contains("custom failure"), "{err}");

        let k = format!("{p}:s");
        c.exec(&cmd("SET").arg(&k).arg("v")).unwrap();
        let wrong = Script::new("return redis.call('LPUSH', KEYS[1], 'x')");
        let err = wrong.key(&k).invoke(c).unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::Server(_)), "{err:?}");

        let broken = Script::new("this is not lua");
        let err = broken.prepare_invoke().invoke(c).unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::Server(_)), "{err:?}");
        assert!(broken.script_load(c).is_err());

        // The connection is fine afterwards, and Lua types map as documented.
        let types = Script::new("return {1, 'two', {3}, false, redis.status_reply('FINE')}");
        let reply = types.prepare_invoke().invoke(c).unwrap();
        let items = reply.as_slice().unwrap();
        assert_eq!(items[0], Value::Int(1));
        assert_eq!(items[1], Value::Bulk(b"two".into()));
        assert_eq!(items[2], Value::Array(vec![Value::Int(3)]));
        assert!(
            matches!(items[3], Value::Nil | Value::Bool(false)),
            "{:?}",
            items[3]
        );
        assert_eq!(items[4].as_bytes(), Some(&b"FINE"[..]));
    });
}
