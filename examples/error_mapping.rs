//! Turning valkit errors into HTTP responses with `Error::class()`: a toy handler for
//! `GET /counter/<name>` against a throwaway server, then the same handler after the
//! server is gone.
//!
//! ```text
//! cargo run --example error_mapping --features testkit
//! ```

use std::time::Duration;

use valkit::testkit::{Server, ServerKind};
use valkit::{Client, Commands, ErrorClass, PoolOptions, RetryPolicy};

/// A response: status and body.
struct Response {
    status: u16,
    body: String,
}

/// The mapping of docs/errors.md: 503 (with Retry-After) when the server cannot serve,
/// 400 when the request was wrong, 500 for everything else.
fn error_response(e: &valkit::Error) -> Response {
    let status = match e.class() {
        ErrorClass::Unavailable => 503,
        ErrorClass::Caller => 400,
        _ => 500,
    };
    // Log the detail; send the client only the class.
    eprintln!("  (log) {status}: {e}");
    let body = match status {
        503 => "try again later".to_string(),
        400 => "bad request".to_string(),
        _ => "internal error".to_string(),
    };
    Response { status, body }
}

/// `GET /counter/<name>`: the counter's value, or 0 when it was never incremented.
fn get_counter(client: &Client, name: &str) -> Response {
    match client.get::<_, Option<i64>>(format!("counter:{name}")) {
        Ok(n) => Response {
            status: 200,
            body: n.unwrap_or(0).to_string(),
        },
        Err(e) => error_response(&e),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = Server::start(ServerKind::Valkey)?;
    let mut config = server.config();
    config.connect_timeout = Duration::from_millis(300);
    let client = Client::builder()
        .config(config)
        .pool(PoolOptions::default().checkout_timeout(Duration::from_millis(500)))
        .retry(RetryPolicy::none())
        .build()?;
    client.incr_by("counter:visits", 3)?;
    client.set("counter:broken", "not a number")?;

    for name in ["visits", "never", "broken"] {
        let r = get_counter(&client, name);
        println!("GET /counter/{name:<8} -> {} {}", r.status, r.body);
    }
    assert_eq!(get_counter(&client, "visits").status, 200);
    assert_eq!(get_counter(&client, "broken").status, 400);

    drop(server); // the server stops
    let r = get_counter(&client, "visits");
    println!(
        "server stopped: GET /counter/visits -> {} {}",
        r.status, r.body
    );
    assert_eq!(r.status, 503);
    Ok(())
}

/// `cargo test` runs this example (`test = true` in Cargo.toml).
#[test]
fn error_mapping_runs() {
    main().unwrap();
}
