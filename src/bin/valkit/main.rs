//! `valkit`: the operator's command-line tool (health, info, stats, bigkeys, slowlog,
//! queues and dead letters, limiters, locks, backup, bench). See `valkit --help` and
//! `docs/operations.md`.
//!
//! Hand-written argument parsing (no dependencies beyond the crate's own). Exit codes:
//! 0 success, 1 the operation failed or found a problem, 2 bad usage.

mod args;
mod bench;
mod ops;
mod out;
mod patterns;

use std::process::ExitCode;

use args::{Args, Failure};
use valkit::{Connection, ConnectionConfig};

pub(crate) const MAIN_HELP: &str = "\
valkit: operate Valkey/Redis servers and valkit's patterns

USAGE:
    valkit [--url URL] [--json] <COMMAND> [ARGS]

COMMANDS:
    health      Is the server up and well? (exit 1 when not)
    info        INFO sections, typed (or raw with --raw)
    stats       Server counters (ops/s, hit rate, evictions) + valkit metrics
    bigkeys     Sample the keyspace for the biggest keys, bounded in time and rate
    slowlog     SLOWLOG get / len / reset
    queue       Queue depths, oldest age, dead letters (list, requeue, purge)
    limit       limit check <limiter> <key>: a rate limiter's state for one key
    lock        lock status <name>: who holds a lock, for how long
    backup      BGSAVE (or BGREWRITEAOF with --aof), waited for to the end
    bench       GET/SET load like redis-benchmark: ops/s and latency percentiles

GLOBAL OPTIONS:
    --url URL   Server URL (redis://, valkey://, rediss://, unix://). Default: the
                environment, as the library reads it (VALKEY_URL, REDIS_URL, or
                VALKEY_HOST, VALKEY_PORT, VALKEY_USER, VALKEY_PASSWORD, VALKEY_DB, ...)
    --json      Machine-readable output on stdout
    -h, --help  Help (also `valkit <COMMAND> --help`)
    --version   Print the version

Exit codes: 0 ok, 1 failed (or unhealthy), 2 bad usage.
";

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    match run(argv) {
        Ok(code) => code,
        Err(Failure::Usage(msg)) => {
            eprintln!("valkit: {msg}\n(see `valkit --help`)");
            ExitCode::from(2)
        }
        Err(Failure::Help(text)) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(Failure::Failed(msg)) => {
            eprintln!("valkit: error: {msg}");
            ExitCode::from(1)
        }
    }
}

/// Global options and the connection they describe.
pub(crate) struct Global {
    pub json: bool,
    url: Option<String>,
}

impl Global {
    /// The connection configuration: `--url`, else the environment.
    pub fn config(&self) -> Result<ConnectionConfig, Failure> {
        let cfg = match &self.url {
            Some(u) => ConnectionConfig::from_url(u),
            None => ConnectionConfig::from_env(),
        };
        cfg.map_err(|e| Failure::Usage(e.to_string()))
    }

    /// One connection, with a clear message when the server cannot be reached.
    pub fn connect(&self) -> Result<Connection, Failure> {
        let cfg = self.config()?;
        Connection::open(&cfg).map_err(|e| connect_failure(&cfg, &e))
    }
}

/// Turn a connect error into what an operator can act on (never the password).
pub(crate) fn connect_failure(cfg: &ConnectionConfig, e: &valkit::Error) -> Failure {
    let hint = match e.kind() {
        valkit::ErrorKind::Auth => {
            "check the user and password (--url redis://USER:PASSWORD@HOST:PORT or VALKEY_USER / VALKEY_PASSWORD)"
        }
        valkit::ErrorKind::Connect | valkit::ErrorKind::Timeout | valkit::ErrorKind::Io => {
            "is the server running and reachable? (--url or VALKEY_URL)"
        }
        valkit::ErrorKind::Tls => "check the TLS settings (CA file, server name)",
        _ => "",
    };
    let mut msg = format!("cannot use the server at {cfg}: {e}");
    if !hint.is_empty() {
        msg.push_str("\n  hint: ");
        msg.push_str(hint);
    }
    Failure::Failed(msg)
}

fn run(argv: Vec<String>) -> Result<ExitCode, Failure> {
    let mut a = Args::new(argv);
    let json = a.flag("--json");
    let url = a.value("--url")?;
    if a.flag("--version") {
        println!("valkit {}", env!("CARGO_PKG_VERSION"));
        return Ok(ExitCode::SUCCESS);
    }
    let Some(command) = a.positional() else {
        if a.flag("--help") || a.flag("-h") {
            return Err(Failure::Help(MAIN_HELP.into()));
        }
        return Err(Failure::Usage("no command given".into()));
    };
    let g = Global { json, url };
    match command.as_str() {
        "help" => Err(Failure::Help(MAIN_HELP.into())),
        "health" => ops::health(&g, a),
        "info" => ops::info(&g, a),
        "stats" => ops::stats(&g, a),
        "bigkeys" => ops::bigkeys(&g, a),
        "slowlog" => ops::slowlog(&g, a),
        "backup" => ops::backup(&g, a),
        "queue" => patterns::queue(&g, a),
        "limit" => patterns::limit(&g, a),
        "lock" => patterns::lock(&g, a),
        "bench" => bench::bench(&g, a),
        other => {
            if other.starts_with('-') {
                if a.flag("--help") || a.flag("-h") || other == "--help" || other == "-h" {
                    return Err(Failure::Help(MAIN_HELP.into()));
                }
                return Err(Failure::Usage(format!("unknown option `{other}`")));
            }
            Err(Failure::Usage(format!("unknown command `{other}`")))
        }
    }
}
