//! Metrics: command counters, errors by kind, retries, a latency histogram with fixed
//! buckets, and the Prometheus text exposition of them plus pool and breaker gauges.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use super::observer::{CommandEvent, Observer};
use super::routing::CommandName;
use super::Endpoint;
use crate::cmd::spec::{self, TABLE};
use crate::error::{Error, ErrorKind, ServerErrorKind};

/// The error a command counts as: none for `NOSCRIPT`, the expected first step of a
/// script's EVALSHA -> EVAL fallback (after a restart or `SCRIPT FLUSH`), answered by the
/// server as asked: not a failure.
fn counted_error(error: Option<&Error>) -> Option<&Error> {
    error.filter(|err| err.kind() != ErrorKind::Server(ServerErrorKind::NoScript))
}

/// Upper bounds of the latency histogram buckets, in seconds.
pub const LATENCY_BUCKETS: [f64; 16] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// [`LATENCY_BUCKETS`] in nanoseconds (checked against it in a test).
const LATENCY_BUCKETS_NANOS: [u64; LATENCY_BUCKETS.len()] = [
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

#[derive(Default)]
struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Histogram {
    #[inline]
    fn observe(&self, d: Duration) {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        if let Some(i) = LATENCY_BUCKETS_NANOS.iter().position(|&b| nanos <= b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

/// Something that appends its own metrics (Prometheus text) to the client's, e.g. a
/// cache's counters. Installed with [`Client::add_metrics_source`](crate::Client::add_metrics_source).
pub type MetricsSource = Box<dyn Fn(&mut String) + Send + Sync>;

/// Counters kept by the client; itself an [`Observer`].
///
/// Counting a command takes no lock and allocates nothing when the client knows its name
/// (the common commands, found once per call in a fixed table): a fixed slot of atomic
/// counters per name, endpoint and outcome. Other names are counted under a lock.
pub struct Metrics {
    sources: Mutex<Vec<MetricsSource>>,
    /// Per row of the known-command table: [endpoint (writer, reader)][outcome (error, ok)].
    known: Box<[[[AtomicU64; 2]; 2]]>,
    /// Names the table does not know, with the same slots as `known`.
    other: Mutex<BTreeMap<String, [[u64; 2]; 2]>>,
    errors: Mutex<BTreeMap<String, u64>>,
    retries: AtomicU64,
    latency: [Histogram; 2],
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            sources: Mutex::default(),
            known: TABLE.iter().map(|_| Default::default()).collect(),
            other: Mutex::default(),
            errors: Mutex::default(),
            retries: AtomicU64::new(0),
            latency: Default::default(),
        }
    }
}

/// A point-in-time copy of gauges that live elsewhere (pools, breakers), rendered along
/// with the counters.
#[derive(Debug, Clone, Default)]
pub(crate) struct Gauges {
    pub(crate) endpoints: Vec<EndpointGauges>,
}

#[derive(Debug, Clone)]
pub(crate) struct EndpointGauges {
    pub(crate) endpoint: &'static str,
    pub(crate) breaker_state: u8,
    pub(crate) breaker_transitions: [u64; 3],
    pub(crate) breaker_rejected: u64,
    pub(crate) pool_open: u64,
    pub(crate) pool_idle: u64,
    pub(crate) pool_in_use: u64,
    pub(crate) pool_max: u64,
    pub(crate) pool_waits: u64,
    pub(crate) pool_wait_seconds: f64,
    pub(crate) pool_timeouts: u64,
    pub(crate) pool_created: u64,
    pub(crate) pool_closed: u64,
}

fn endpoint_index(endpoint: Endpoint) -> usize {
    usize::from(endpoint == Endpoint::Reader)
}

fn endpoint_named(endpoint: &str) -> Endpoint {
    if endpoint == "reader" {
        Endpoint::Reader
    } else {
        Endpoint::Writer
    }
}

/// A stable label for an error kind (`connect`, `timeout`, `server_wrongtype`, ...).
pub fn error_label(e: &Error) -> String {
    let k = e.kind();
    match k {
        ErrorKind::Server(s) => format!("server_{}", format!("{s:?}").to_lowercase()),
        other => {
            let mut out = String::new();
            for (i, c) in format!("{other:?}").chars().enumerate() {
                if c.is_uppercase() && i > 0 {
                    out.push('_');
                }
                out.push(c.to_ascii_lowercase());
            }
            out
        }
    }
}

impl Observer for Metrics {
    fn on_command(&self, e: &CommandEvent<'_>) {
        let error = counted_error(e.error);
        let endpoint = endpoint_named(e.endpoint);
        match spec::index_of_name(e.command.as_bytes()) {
            Some(k) => self.count_known(k, endpoint, error.is_none()),
            None => self.count_other(e.command, endpoint, error.is_none()),
        }
        self.count_outcome(endpoint, error, e.duration);
    }

    fn on_retry(&self, _command: &str, _error: &Error, _delay: Duration) {
        self.count_retry();
    }
}

impl Metrics {
    /// Count one command (or batch) the client ran: what the [`Observer`] impl does, with
    /// the name already found (the client's path: no allocation, no lock for a known name).
    #[inline(always)]
    pub(crate) fn record(
        &self,
        name: CommandName<'_>,
        endpoint: Endpoint,
        error: Option<&Error>,
        duration: Duration,
    ) {
        let error = counted_error(error);
        let ok = error.is_none();
        match name {
            CommandName::Known(k) => self.count_known(k, endpoint, ok),
            CommandName::Other(_) => self.count_other(&name.label(), endpoint, ok),
        }
        self.count_outcome(endpoint, error, duration);
    }

    pub(crate) fn count_retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    #[inline(always)]
    fn count_known(&self, k: usize, endpoint: Endpoint, ok: bool) {
        self.known[k][endpoint_index(endpoint)][usize::from(ok)].fetch_add(1, Ordering::Relaxed);
    }

    #[cold]
    fn count_other(&self, label: &str, endpoint: Endpoint, ok: bool) {
        let mut other = self.other.lock();
        // Looked up by the borrowed label: a String only for a name seen the first time.
        let slots = match other.get_mut(label) {
            Some(slots) => slots,
            None => other.entry(label.to_owned()).or_default(),
        };
        slots[endpoint_index(endpoint)][usize::from(ok)] += 1;
    }

    #[inline(always)]
    fn count_outcome(&self, endpoint: Endpoint, error: Option<&Error>, duration: Duration) {
        if let Some(err) = error {
            self.count_error(err);
        }
        self.latency[endpoint_index(endpoint)].observe(duration);
    }

    #[cold]
    fn count_error(&self, err: &Error) {
        *self.errors.lock().entry(error_label(err)).or_insert(0) += 1;
    }

    /// (command, endpoint, ok) -> count, known and other names together, sorted.
    fn command_counts(&self) -> BTreeMap<(String, &'static str, bool), u64> {
        let other = self.other.lock();
        let known = self.known.iter().enumerate().map(|(k, slots)| {
            let load = |e: usize, o: usize| slots[e][o].load(Ordering::Relaxed);
            let counts = [[load(0, 0), load(0, 1)], [load(1, 0), load(1, 1)]];
            (TABLE[k].name, counts)
        });
        let mut all = BTreeMap::new();
        for (name, counts) in known.chain(other.iter().map(|(n, c)| (n.as_str(), *c))) {
            for (e, endpoint) in [Endpoint::Writer, Endpoint::Reader].into_iter().enumerate() {
                for (o, ok) in [false, true].into_iter().enumerate() {
                    if counts[e][o] > 0 {
                        all.insert((name.to_owned(), endpoint.name(), ok), counts[e][o]);
                    }
                }
            }
        }
        all
    }

    /// Commands counted so far (all endpoints, all outcomes).
    pub fn commands_total(&self) -> u64 {
        let known: u64 = self
            .known
            .iter()
            .flatten()
            .flatten()
            .map(|n| n.load(Ordering::Relaxed))
            .sum();
        let other: u64 = self.other.lock().values().flatten().flatten().sum();
        known + other
    }

    /// Retries made so far.
    pub fn retries_total(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// Errors counted for a label from [`error_label`].
    pub fn errors_for(&self, label: &str) -> u64 {
        self.errors.lock().get(label).copied().unwrap_or(0)
    }

    pub(crate) fn add_source(&self, source: MetricsSource) {
        self.sources.lock().push(source);
    }

    pub(crate) fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::with_capacity(4096);
        family(
            &mut out,
            "valkit_commands_total",
            "counter",
            "Commands and pipelines run, by command, endpoint and outcome.",
        );
        for ((cmd, ep, ok), n) in &self.command_counts() {
            let outcome = if *ok { "ok" } else { "error" };
            let _ = writeln!(
                out,
                "valkit_commands_total{{command=\"{}\",endpoint=\"{ep}\",outcome=\"{outcome}\"}} {n}",
                escape(cmd)
            );
        }
        family(
            &mut out,
            "valkit_errors_total",
            "counter",
            "Failed commands by error kind.",
        );
        for (kind, n) in self.errors.lock().iter() {
            let _ = writeln!(out, "valkit_errors_total{{kind=\"{kind}\"}} {n}");
        }
        family(
            &mut out,
            "valkit_retries_total",
            "counter",
            "Attempts retried after a failure.",
        );
        let _ = writeln!(out, "valkit_retries_total {}", self.retries_total());

        family(
            &mut out,
            "valkit_command_duration_seconds",
            "histogram",
            "Command latency including retries, by endpoint.",
        );
        for (i, ep) in ["writer", "reader"].iter().enumerate() {
            let h = &self.latency[i];
            let mut cumulative = 0;
            for (b, le) in LATENCY_BUCKETS.iter().enumerate() {
                cumulative += h.buckets[b].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "valkit_command_duration_seconds_bucket{{endpoint=\"{ep}\",le=\"{le}\"}} {cumulative}"
                );
            }
            let count = h.count.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "valkit_command_duration_seconds_bucket{{endpoint=\"{ep}\",le=\"+Inf\"}} {count}"
            );
            let sum = h.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
            let _ = writeln!(
                out,
                "valkit_command_duration_seconds_sum{{endpoint=\"{ep}\"}} {sum}"
            );
            let _ = writeln!(
                out,
                "valkit_command_duration_seconds_count{{endpoint=\"{ep}\"}} {count}"
            );
        }

        let g = &gauges.endpoints;
        gauge_family(
            &mut out,
            "valkit_breaker_state",
            "Circuit breaker state: 0 closed, 1 open, 2 half-open.",
            g,
            |e| e.breaker_state as f64,
        );
        family(
            &mut out,
            "valkit_breaker_transitions_total",
            "counter",
            "Circuit breaker transitions, by target state.",
        );
        for e in g {
            for (i, to) in ["closed", "open", "half_open"].iter().enumerate() {
                let _ = writeln!(
                    out,
                    "valkit_breaker_transitions_total{{endpoint=\"{}\",to=\"{to}\"}} {}",
                    e.endpoint, e.breaker_transitions[i]
                );
            }
        }
        counter_family(
            &mut out,
            "valkit_breaker_rejected_total",
            "Calls failed fast while the circuit was open.",
            g,
            |e| e.breaker_rejected,
        );
        family(
            &mut out,
            "valkit_pool_connections",
            "gauge",
            "Pooled connections by state.",
        );
        for e in g {
            let _ = writeln!(
                out,
                "valkit_pool_connections{{endpoint=\"{}\",state=\"idle\"}} {}",
                e.endpoint, e.pool_idle
            );
            let _ = writeln!(
                out,
                "valkit_pool_connections{{endpoint=\"{}\",state=\"in_use\"}} {}",
                e.endpoint, e.pool_in_use
            );
        }
        gauge_family(
            &mut out,
            "valkit_pool_open_connections",
            "Open pooled connections.",
            g,
            |e| e.pool_open as f64,
        );
        gauge_family(
            &mut out,
            "valkit_pool_max_connections",
            "Configured pool size.",
            g,
            |e| e.pool_max as f64,
        );
        counter_family(
            &mut out,
            "valkit_pool_waits_total",
            "Checkouts that had to wait for a connection.",
            g,
            |e| e.pool_waits,
        );
        family(
            &mut out,
            "valkit_pool_wait_seconds_total",
            "counter",
            "Time spent waiting for a connection.",
        );
        for e in g {
            let _ = writeln!(
                out,
                "valkit_pool_wait_seconds_total{{endpoint=\"{}\"}} {}",
                e.endpoint, e.pool_wait_seconds
            );
        }
        counter_family(
            &mut out,
            "valkit_pool_timeouts_total",
            "Checkouts that timed out.",
            g,
            |e| e.pool_timeouts,
        );
        counter_family(
            &mut out,
            "valkit_pool_created_total",
            "Connections opened.",
            g,
            |e| e.pool_created,
        );
        counter_family(
            &mut out,
            "valkit_pool_closed_total",
            "Connections closed.",
            g,
            |e| e.pool_closed,
        );
        for source in self.sources.lock().iter() {
            source(&mut out);
        }
        out
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn gauge_family(
    out: &mut String,
    name: &str,
    help: &str,
    g: &[EndpointGauges],
    f: impl Fn(&EndpointGauges) -> f64,
) {
    family(out, name, "gauge", help);
    for e in g {
        let _ = writeln!(out, "{name}{{endpoint=\"{}\"}} {}", e.endpoint, f(e));
    }
}

fn counter_family(
    out: &mut String,
    name: &str,
    help: &str,
    g: &[EndpointGauges],
    f: impl Fn(&EndpointGauges) -> u64,
) {
    family(out, name, "counter", help);
    for e in g {
        let _ = writeln!(out, "{name}{{endpoint=\"{}\"}} {}", e.endpoint, f(e));
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    /// Issue 11: the client's path counts known names in their fixed slots and unknown
    /// ones under their upper-cased label; both render as before, sorted together.
    #[test]
    fn known_and_unknown_names_render_together_sorted() {
        use crate::cmd::cmd;
        let m = Metrics::default();
        let err = Error::new(ErrorKind::Timeout, "slow");
        let d = Duration::from_micros(300);
        let (get, odd) = (cmd("get").arg("k"), cmd("my.Cmd"));
        m.record(CommandName::of(&get), Endpoint::Reader, None, d);
        m.record(CommandName::of(&get), Endpoint::Reader, None, d);
        m.record(CommandName::of(&get), Endpoint::Writer, Some(&err), d);
        m.record(CommandName::of(&odd), Endpoint::Writer, None, d);
        m.record(CommandName::of(&odd), Endpoint::Writer, None, d);
        m.record(CommandName::PIPELINE, Endpoint::Writer, None, d);
        assert!(matches!(CommandName::of(&get), CommandName::Known(_)));
        assert_eq!(m.commands_total(), 6);
        assert_eq!(m.errors_for("timeout"), 1);
        let text = m.render(&Gauges::default());
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("valkit_commands_total{"))
            .collect();
        assert_eq!(
            lines,
            [
                r#"valkit_commands_total{command="GET",endpoint="reader",outcome="ok"} 2"#,
                r#"valkit_commands_total{command="GET",endpoint="writer",outcome="error"} 1"#,
                r#"valkit_commands_total{command="MY.CMD",endpoint="writer",outcome="ok"} 2"#,
                r#"valkit_commands_total{command="PIPELINE",endpoint="writer",outcome="ok"} 1"#,
            ]
        );
        assert!(text.contains("valkit_command_duration_seconds_count{endpoint=\"reader\"} 2"));
    }

    #[test]
    fn latency_bounds_in_nanos_match_the_seconds() {
        for (s, n) in LATENCY_BUCKETS.iter().zip(LATENCY_BUCKETS_NANOS) {
            assert_eq!((s * 1e9).round() as u64, n);
        }
    }

    #[test]
    fn counts_and_renders() {
        let m = Metrics::default();
        let err = Error::from(crate::error::ServerError::new("WRONGTYPE x"));
        for (cmd, ep, e) in [
            ("GET", "writer", None),
            ("GET", "reader", None),
            ("INCR", "writer", Some(&err)),
        ] {
            m.on_command(&CommandEvent {
                command: cmd,
                endpoint: ep,
                commands: 1,
                started: SystemTime::now(),
                duration: Duration::from_micros(300),
                attempts: 1,
                error: e,
            });
        }
        m.on_retry("GET", &err, Duration::ZERO);
        assert_eq!(m.commands_total(), 3);
        assert_eq!(m.errors_for("server_wrongtype"), 1);
        let text = m.render(&Gauges::default());
        assert!(
            text.contains(
                "valkit_commands_total{command=\"INCR\",endpoint=\"writer\",outcome=\"error\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "valkit_command_duration_seconds_bucket{endpoint=\"writer\",le=\"0.0005\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "valkit_command_duration_seconds_bucket{endpoint=\"writer\",le=\"0.00025\"} 0"
            ),
            "{text}"
        );
        assert!(text.contains("valkit_retries_total 1"));
        assert_eq!(
            error_label(&Error::new(ErrorKind::PoolExhausted, "x")),
            "pool_exhausted"
        );
    }
}
