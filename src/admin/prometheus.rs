//! Prometheus text for queues: the gauges a dashboard and `ops/alerts.yml` read.

use std::fmt::Write;

use crate::cmd::Execute;
use crate::queue::{Priority, Queue, QueueError};

/// The Prometheus text (exposition format 0.0.4) for one queue: its depths from
/// [`Queue::stats`] (one script, read now) and its handle's counters
/// ([`Queue::metrics`]). Families, all labelled `queue="<name>"`:
/// `valkit_queue_waiting{priority}`, `valkit_queue_in_flight`, `valkit_queue_delayed`,
/// `valkit_queue_dead_letters`, `valkit_queue_oldest_age_seconds` (gauges),
/// `valkit_queue_dead_lettered_total`, `valkit_queue_lease_lost_total`,
/// `valkit_queue_retried_total`, `valkit_queue_acked_total` (counters).
pub fn queue_metrics_text<E: Execute>(queue: &Queue<E>) -> Result<String, QueueError> {
    let stats = queue.stats()?;
    let m = queue.metrics();
    let name = queue
        .keys()
        .name()
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n");
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP valkit_queue_waiting Jobs waiting, by priority."
    );
    let _ = writeln!(out, "# TYPE valkit_queue_waiting gauge");
    for p in Priority::ALL {
        let _ = writeln!(
            out,
            "valkit_queue_waiting{{queue=\"{name}\",priority=\"{}\"}} {}",
            p.name(),
            stats.len(p)
        );
    }
    let rows: [(&str, &str, &str, String); 8] = [
        (
            "valkit_queue_in_flight",
            "gauge",
            "Jobs leased to a worker.",
            stats.in_flight.to_string(),
        ),
        (
            "valkit_queue_delayed",
            "gauge",
            "Jobs scheduled for later.",
            stats.delayed.to_string(),
        ),
        (
            "valkit_queue_dead_letters",
            "gauge",
            "Entries in the dead-letter list.",
            stats.dead_lettered.to_string(),
        ),
        (
            "valkit_queue_oldest_age_seconds",
            "gauge",
            "Age of the oldest waiting job (0 when none waits).",
            stats
                .oldest_age
                .map_or(0.0, |d| d.as_secs_f64())
                .to_string(),
        ),
        (
            "valkit_queue_acked_total",
            "counter",
            "Jobs acked by this process.",
            m.acked.to_string(),
        ),
        (
            "valkit_queue_retried_total",
            "counter",
            "Jobs given back for another attempt by this process.",
            m.retried.to_string(),
        ),
        (
            "valkit_queue_dead_lettered_total",
            "counter",
            "Jobs this process moved to the dead-letter list.",
            m.dead_lettered.to_string(),
        ),
        (
            "valkit_queue_lease_lost_total",
            "counter",
            "Acks, nacks and extensions refused because the lease was gone.",
            m.lease_lost.to_string(),
        ),
    ];
    for (metric, kind, help, value) in rows {
        let _ = writeln!(out, "# HELP {metric} {help}");
        let _ = writeln!(out, "# TYPE {metric} {kind}");
        let _ = writeln!(out, "{metric}{{queue=\"{name}\"}} {value}");
    }
    Ok(out)
}
