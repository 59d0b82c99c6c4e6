//! The caching-patterns service on valkit: a small HTTP service that shows cache-aside,
//! singleflight, stale-while-revalidate, negative caching, write-through, write-behind,
//! batch reads, invalidation, rate limiting and a distributed lock end to end.
//!
//! ```sh
//! cargo run --example service --features testkit,json     # throwaway server, port 8000
//! curl -s localhost:8000/users/1?strategy=swr
//! ```
//!
//! Configuration (environment): `VALKEY_WRITER_ENDPOINT`, `VALKEY_WRITER_PORT`,
//! `VALKEY_READER_ENDPOINT`, `VALKEY_READER_PORT`, `VALKEY_USER`, `VALKEY_PASSWORD`,
//! `VALKEY_TLS`, `VALKEY_DB`, `CACHE_VER`, `RATE_MAX_TOKENS`, `RATE_WINDOW_SEC`, `HOST`,
//! `PORT`; see `docs/service.md`. Ctrl-C (or SIGTERM) stops taking requests, finishes the
//! ones in progress and flushes the write-behind.

mod app;

use std::time::Duration;

fn main() {
    let config = match app::Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("service: configuration: {e}");
            std::process::exit(2);
        }
    };
    let throwaway = config.writer.is_none();
    let running = match app::Service::start(config) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("service: {e}");
            std::process::exit(1);
        }
    };
    if throwaway {
        if let Some(s) = &running.service.throwaway {
            eprintln!(
                "service: no VALKEY_WRITER_ENDPOINT: using a throwaway {} at {}",
                s.kind().name(),
                s.url()
            );
        }
    }
    // Printed on stdout so scripts (and tests) can wait for it.
    println!("listening on {}", running.url());
    let (tx, rx) = crossbeam_channel::bounded::<()>(1);
    if let Err(e) = ctrlc::set_handler(move || {
        let _ = tx.try_send(());
    }) {
        eprintln!("service: no Ctrl-C handler ({e}); stop it with SIGKILL");
    }
    let _ = rx.recv();
    eprintln!("service: shutting down: finishing requests, flushing write-behind");
    match running.shutdown(Duration::from_secs(10)) {
        Ok(0) => eprintln!("service: stopped, write-behind drained"),
        Ok(n) => eprintln!(
            "service: stopped, {n} writes still pending in Valkey (the next start drains them)"
        ),
        // Ctrl-C in a terminal reaches the whole process group, so a throwaway server
        // stops at the same moment and its pending writes go with it.
        Err(e) if throwaway => eprintln!("service: {e} (the throwaway server was stopped too)"),
        Err(e) => {
            eprintln!("service: {e}");
            std::process::exit(1);
        }
    }
}
