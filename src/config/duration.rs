//! Durations given as text: `250ms`, `2s`, `1.5s`, `1m`, `0` / `none`.

use std::time::Duration;

use super::Msg;

/// `250ms`, `2s`, `1.5s`, `1m`; `0` and `none` give `None`. A bare number is an error.
/// The longest duration a URL or environment value may give.
const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

pub(super) fn parse_duration(value: &str, name: &str) -> Msg<Option<Duration>> {
    if value == "0" || value == "none" {
        return Ok(None);
    }
    let bad = |why: &str| {
        format!(
            "invalid duration '{}' for query parameter '{name}': {why}",
            value.escape_debug()
        )
    };
    let split = value
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let unit_nanos: u128 = match unit {
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "" => return Err(bad("use a unit: ms, s, m (e.g. 250ms, 2s, 1.5s, 1m)")),
        _ => return Err(bad("unknown unit; use a unit: ms, s, m")),
    };
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    let valid = !int.is_empty()
        && int.len() <= 19
        && !(number.contains('.') && frac.is_empty())
        && frac.len() <= 9
        && !frac.contains('.');
    if !valid {
        return Err(bad("expected a number followed by ms, s or m"));
    }
    let int: u128 = int
        .parse()
        .map_err(|_| bad("expected a number followed by ms, s or m"))?;
    let frac_value: u128 = if frac.is_empty() {
        0
    } else {
        frac.parse()
            .map_err(|_| bad("expected a number followed by ms, s or m"))?
    };
    let nanos = int * unit_nanos + frac_value * unit_nanos / 10u128.pow(frac.len() as u32);
    // Anything longer than a year is a typo, and bounding it keeps every accepted value
    // printable and parseable again by `Display` (found by the `url` fuzz target).
    if nanos > MAX_DURATION.as_nanos() {
        return Err(bad("too large: at most 365 days"));
    }
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| bad("too large"))?;
    Ok(Some(Duration::new(secs, (nanos % 1_000_000_000) as u32)))
}

/// The shortest form that [`parse_duration`] reads back to the same value.
pub(super) fn format_duration(d: Duration) -> String {
    let nanos = d.subsec_nanos();
    if nanos == 0 {
        format!("{}s", d.as_secs())
    } else if nanos % 1_000_000 == 0 {
        format!("{}ms", d.as_millis())
    } else {
        let frac = format!("{nanos:09}");
        format!("{}.{}s", d.as_secs(), frac.trim_end_matches('0'))
    }
}
