//! Errors classified for responses (`Error::class`, `CacheError::class`) as real servers
//! and real failures produce them: Valkey 9.1 and Redis 7.0.
#![cfg(feature = "testkit")]

mod support;

use std::time::Duration;

use support::{each_combo, kinds, shared};
use valkit::cache::SessionId;
use valkit::{
    cmd, Commands, Connection, ConnectionConfig, ErrorClass, ErrorKind, Execute, Pool, PoolOptions,
};

#[test]
fn wrong_requests_are_the_callers_mistake() {
    each_combo("errors_caller", |c, p, _, _| {
        let k = format!("{p}:list");
        c.rpush(&k, "x").unwrap();
        let wrongtype = c.incr(&k).unwrap_err();
        let syntax = c.exec(&cmd("SET").arg(&k)).unwrap_err();
        let unknown_option = c
            .exec(&cmd("SET").arg(&k).arg("v").arg("BOGUS"))
            .unwrap_err();
        let conversion = c.lindex::<_, Option<i64>>(&k, 0).unwrap_err();
        for e in [&wrongtype, &syntax, &unknown_option, &conversion] {
            assert_eq!(e.class(), ErrorClass::Caller, "{e}");
            assert!(e.is_caller_error() && !e.is_unavailable(), "{e}");
            assert_eq!(e.class().http_status(), 400);
        }
        assert_eq!(conversion.kind(), ErrorKind::Conversion);
        // The connection is fine afterwards.
        c.ping().unwrap();
    });
}

#[test]
fn a_server_that_is_gone_is_unavailable() {
    // A port nothing listens on: bind, note the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cfg = ConnectionConfig::new("127.0.0.1", port);
    cfg.connect_timeout = Duration::from_millis(500);
    let err = Connection::open(&cfg).unwrap_err();
    assert_eq!(err.class(), ErrorClass::Unavailable, "{err}");
    assert_eq!(err.class().http_status(), 503);
}

#[test]
fn an_exhausted_pool_is_unavailable() {
    for kind in kinds() {
        let pool = Pool::new(
            shared(kind).config(),
            PoolOptions::new()
                .max_size(1)
                .checkout_timeout(Duration::from_millis(50)),
        )
        .unwrap();
        let held = pool.get().unwrap();
        let err = pool.get().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PoolExhausted);
        assert!(err.is_unavailable(), "{err}");
        drop(held);
        pool.get().unwrap().ping().unwrap();
    }
}

#[test]
fn a_bad_session_id_is_the_callers_mistake() {
    for bad in [
        "",
        "nope",
        "0123456789abcdef0123456789abcdeg",
        "../../etc/passwd",
    ] {
        let err = bad.parse::<SessionId>().unwrap_err();
        assert_eq!(err.kind(), valkit::cache::CacheErrorKind::InvalidInput);
        assert_eq!(err.class(), ErrorClass::Caller, "{bad:?}");
    }
    assert!(SessionId::random().as_str().parse::<SessionId>().is_ok());
}
