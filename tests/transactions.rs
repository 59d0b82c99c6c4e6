//! WATCH transactions with typed results, the same on a `Connection`, a `Pool` and a
//! `Client`, against real servers (Valkey 9.1 and Redis 7.0, RESP2 and RESP3).

mod support;

use support::{combos, key, shared};
use valkit::{
    pipe, Client, Commands, Connection, ErrorKind, FromValue, Pipeline, Pool, PoolOptions, Result,
    ServerErrorKind, Transaction, TxOutcome,
};

/// The one call the three executors share, so each check runs on all of them.
trait Watch {
    fn watch<T: FromValue>(
        &self,
        keys: &[String],
        build: impl FnOnce(&Transaction<'_>) -> Result<Pipeline>,
    ) -> Result<TxOutcome<T>>;
}

impl Watch for Connection {
    fn watch<T: FromValue>(
        &self,
        keys: &[String],
        build: impl FnOnce(&Transaction<'_>) -> Result<Pipeline>,
    ) -> Result<TxOutcome<T>> {
        self.transaction(keys, build)
    }
}

impl Watch for Pool {
    fn watch<T: FromValue>(
        &self,
        keys: &[String],
        build: impl FnOnce(&Transaction<'_>) -> Result<Pipeline>,
    ) -> Result<TxOutcome<T>> {
        self.transaction(keys, build)
    }
}

impl Watch for Client {
    fn watch<T: FromValue>(
        &self,
        keys: &[String],
        build: impl FnOnce(&Transaction<'_>) -> Result<Pipeline>,
    ) -> Result<TxOutcome<T>> {
        self.transaction(keys, build)
    }
}

/// Every transaction behaviour on one executor; `other` is a separate connection that
/// plays the concurrent writer.
fn check(name: &str, ex: &impl Watch, other: &Connection, prefix: &str) {
    let a = format!("{prefix}:{{acct}}:a");
    let b = format!("{prefix}:{{acct}}:b");
    other.set(&a, 100).unwrap();
    other.set(&b, 0).unwrap();
    let keys = [a.clone(), b.clone()];

    // Committed: typed replies, the ignored one left out, reads inside the closure typed.
    let outcome: TxOutcome<(i64, String)> = ex
        .watch(&keys, |tx| {
            let balance: Option<i64> = tx.get(&a)?;
            assert_eq!(balance, Some(100), "{name}");
            let balance = balance.unwrap_or(0);
            Ok(pipe()
                .set(&a, balance - 10)
                .ignore()
                .incr_by(&b, 10)
                .get(&a))
        })
        .unwrap();
    assert_eq!(
        outcome,
        TxOutcome::Committed((10, "90".to_string())),
        "{name}"
    );
    assert_eq!(other.get::<_, Option<i64>>(&a).unwrap(), Some(90), "{name}");

    // Aborted: a watched key changes between WATCH and EXEC; nothing is applied.
    let outcome: TxOutcome<Vec<i64>> = ex
        .watch(&keys, |tx| {
            let balance: Option<i64> = tx.get(&a)?;
            let balance = balance.unwrap_or(0);
            other.set(&b, 500)?; // the concurrent writer
            Ok(pipe().set(&a, balance - 10).ignore().incr_by(&b, 10))
        })
        .unwrap();
    assert_eq!(outcome, TxOutcome::Aborted, "{name}");
    assert!(
        outcome.is_aborted() && outcome.committed().is_none(),
        "{name}"
    );
    assert_eq!(other.get::<_, Option<i64>>(&a).unwrap(), Some(90), "{name}");
    assert_eq!(
        other.get::<_, Option<i64>>(&b).unwrap(),
        Some(500),
        "{name}"
    );

    // `Vec<T>` and `()` results; no keys watched at all is a plain MULTI/EXEC.
    let outcome: TxOutcome<Vec<i64>> = ex.watch(&[], |_| Ok(pipe().incr(&b).incr(&b))).unwrap();
    assert_eq!(outcome.committed(), Some(vec![501, 502]), "{name}");
    let outcome: TxOutcome<()> = ex.watch(&keys, |_| Ok(pipe().set(&a, 1))).unwrap();
    assert!(outcome.is_committed(), "{name}");

    // A command failing inside EXEC: the error comes back (its kind intact), and the
    // other commands were applied, as with an atomic pipeline's `query`.
    let err = ex
        .watch::<(i64, i64)>(&keys, |_| Ok(pipe().incr(&a).lpop(&a).ignore().incr(&a)))
        .unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Server(ServerErrorKind::WrongType),
        "{name}: {err}"
    );
    assert_eq!(other.get::<_, Option<i64>>(&a).unwrap(), Some(3), "{name}");

    // A reply that does not convert into the type asked for is a conversion error.
    let err = ex
        .watch::<(i64,)>(&keys, |_| Ok(pipe().get(format!("{prefix}:nothing"))))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conversion, "{name}: {err}");

    // An error from the closure is returned as it is; nothing is sent after it, the keys
    // are unwatched and the executor stays usable.
    let err = ex
        .watch::<()>(&keys, |_| {
            Err(valkit::Error::new(ErrorKind::Conversion, "mine"))
        })
        .unwrap_err();
    assert_eq!(err.detail(), "mine", "{name}");
    let outcome: TxOutcome<(i64,)> = ex.watch(&keys, |_| Ok(pipe().incr(&a))).unwrap();
    assert_eq!(outcome, TxOutcome::Committed((4,)), "{name}");
}

#[test]
fn typed_watch_transactions_on_connection_pool_and_client() {
    for (kind, proto) in combos() {
        let mut cfg = shared(kind).config();
        cfg.protocol = proto;
        let other = Connection::open(&cfg).unwrap();
        let label = format!("{}:{proto:?}", kind.name());
        eprintln!("-- {label}");

        let conn = Connection::open(&cfg).unwrap();
        check(
            &format!("connection {label}"),
            &conn,
            &other,
            &key(&format!("tx:conn:{label}")),
        );
        assert!(
            conn.session_state().is_clean(),
            "{label}: {:?}",
            conn.session_state()
        );

        let pool = Pool::new(cfg.clone(), PoolOptions::new().max_size(2)).unwrap();
        check(
            &format!("pool {label}"),
            &pool,
            &other,
            &key(&format!("tx:pool:{label}")),
        );
        // The connection went back to the pool, not closed.
        let stats = pool.stats();
        assert_eq!(stats.open, 1, "{label}: {stats:?}");
        // EXEC ended each WATCH, so no connection needed a RESET on its way back.
        assert_eq!(stats.resets, 0, "{label}: {stats:?}");

        let client = Client::builder().config(cfg.clone()).build().unwrap();
        check(
            &format!("client {label}"),
            &client,
            &other,
            &key(&format!("tx:client:{label}")),
        );
    }
}
