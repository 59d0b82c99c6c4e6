//! Rate limiters (`valkit::limit`) against real Valkey and Redis servers.
//!
//! Most tests replay scripted request times through the [`Limiter::check_at`] testing hook
//! (the script uses the given time instead of `TIME`), starting from the server's own clock;
//! the real-time tests (`real_time_*`, `keys_*`, `skewed_handles_*`) use `TIME` itself.
//!
//! Every test runs on each of [`support::targets`] (the shared Valkey and Redis servers and
//! the shared Valkey cluster through a cluster `Client`), except
//! `decisions_read_the_same_over_resp2_and_resp3`, which is about the protocol of one
//! connection to one server (a connection per (server kind, protocol)).

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use valkit::limit::{Algorithm, Clock, Decision, Limiter, Outcome};
use valkit::{cmd, Client, Execute, FromValue, Pipeline, PoolOptions, Value};

use support::{key, shared, targets, Exec, Target};

const SEC: u64 = 1_000_000;

/// A connection on a single server, a cluster client on the cluster.
fn conn(t: Target) -> Exec {
    t.conn()
}

/// Run a command and convert its reply.
fn q<T: FromValue, E: Execute + ?Sized>(ex: &E, c: valkit::Cmd) -> T {
    T::from_value(ex.exec(&c).unwrap()).unwrap()
}

/// The server's clock in microseconds.
fn server_us<E: Execute + ?Sized>(ex: &E) -> u64 {
    let (secs, micros): (u64, u64) = q(ex, cmd("TIME"));
    secs * SEC + micros
}

fn exists<E: Execute + ?Sized>(ex: &E, k: &str) -> bool {
    q::<i64, E>(ex, cmd("EXISTS").arg(k)) == 1
}

fn at(us: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(us)
}

/// The first multiple of `w` after the server's clock: scripted times start on a window edge.
fn aligned_base<E: Execute + ?Sized>(ex: &E, w: u64) -> u64 {
    (server_us(ex) / w + 1) * w
}

/// Limit 100 (within one window), and how long after the first request it is full again.
fn hundred() -> Vec<(Algorithm, u64)> {
    let min = Duration::from_secs(60);
    let hour = Duration::from_secs(3600);
    vec![
        (Algorithm::sliding_log(100, min), 60 * SEC),
        (Algorithm::fixed_window(100, min), 60 * SEC),
        // The previous window still weighs during the next one: back to full after two.
        (Algorithm::sliding_counter(100, min), 120 * SEC),
        // "Without refill" within the test: 100 tokens an hour, at one pinned instant.
        (Algorithm::token_bucket(100, 100, hour), 3600 * SEC),
        (Algorithm::gcra(99, 100, hour), 3600 * SEC),
    ]
}

/// 8 threads send 125 requests each through `ex`, all at server time `at_us` (pinned) or
/// on the server's clock (`None`). Returns how many were allowed.
fn eight_threads<E: Execute + Sync>(ex: &E, l: &Limiter, id: &str, at_us: Option<u64>) -> usize {
    let allowed = AtomicUsize::new(0);
    let start = Barrier::new(8);
    thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                start.wait();
                for _ in 0..125 {
                    let d = match at_us {
                        Some(t) => l.check_at(ex, id, 1, at(t)).unwrap(),
                        None => l.check(ex, id).unwrap(),
                    };
                    if d.allowed {
                        allowed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    allowed.into_inner()
}

#[test]
fn exactly_100_of_1000_from_8_threads_in_one_window_then_allowed_again() {
    for t in targets() {
        let client = match t {
            Target::Single(kind) => Client::builder()
                .config(shared(kind).config())
                .pool(PoolOptions::default().max_size(8))
                .build()
                .unwrap(),
            Target::Cluster => t.client(),
        };
        for (algo, full_after) in hundred() {
            let l = Limiter::new(&key("hundred"), algo).unwrap();
            let t0 = aligned_base(&client, 60 * SEC);
            let n = eight_threads(&client, &l, "user", Some(t0));
            assert_eq!(n, 100, "{t:?} {algo:?}");
            let s = l.stats();
            assert_eq!((s.allowed, s.limited), (100, 900), "{t:?} {algo:?}");
            let d = l.check_at(&client, "user", 1, at(t0 + 1)).unwrap();
            assert_eq!(d.outcome, Outcome::Limited, "{t:?} {algo:?}");
            // After the window (the bucket and GCRA: after the refill) the limit is whole again.
            let after = t0 + full_after;
            let d = l.check_at(&client, "user", 100, at(after)).unwrap();
            assert!(d.allowed, "{t:?} {algo:?}: {d:?}");
            assert_eq!(d.remaining, 0, "{t:?} {algo:?}");
        }
    }
}

#[test]
fn exactly_100_of_1000_from_8_threads_on_the_server_clock() {
    for t in targets() {
        let c = conn(t);
        let pool = t.pool(8);
        for (algo, _) in hundred() {
            let window = 3600 * SEC;
            let l = Limiter::new(&key("hundred-rt"), algo).unwrap();
            let before = server_us(&c);
            let n = eight_threads(&pool, &l, "user", None);
            let after = server_us(&c);
            if matches!(algo.name(), "fixed" | "counter") && before / window != after / window {
                // The run crossed an aligned window edge (a one-in-hours chance): the second
                // window may admit its own 100.
                assert!((100..=200).contains(&n), "{t:?} {algo:?}: {n}");
            } else {
                assert_eq!(n, 100, "{t:?} {algo:?}");
            }
        }
    }
}

#[test]
fn cost_above_one_is_counted_and_above_the_limit_refused_outright() {
    let min = Duration::from_secs(60);
    let hour = Duration::from_secs(3600);
    let algos = [
        Algorithm::sliding_log(10, min),
        Algorithm::sliding_counter(10, min),
        Algorithm::fixed_window(10, min),
        Algorithm::token_bucket(10, 10, hour),
        Algorithm::gcra(9, 10, hour),
    ];
    for t in targets() {
        let c = conn(t);
        for algo in algos {
            let l = Limiter::new(&key("cost"), algo).unwrap();
            let base = aligned_base(&c, 60 * SEC);
            let step = |cost: u64| l.check_at(&c, "u", cost, at(base)).unwrap();
            for remaining in [7, 4, 1] {
                let d = step(3);
                assert!(d.allowed, "{t:?} {algo:?}");
                assert_eq!((d.limit, d.remaining), (10, remaining), "{t:?} {algo:?}");
            }
            let d = step(3);
            assert_eq!(d.outcome, Outcome::Limited, "{t:?} {algo:?}");
            assert_eq!(d.remaining, 1, "{t:?} {algo:?}");
            assert!(d.retry_after.unwrap() > Duration::ZERO, "{t:?} {algo:?}");
            let d = step(1);
            assert!(d.allowed && d.remaining == 0, "{t:?} {algo:?}: {d:?}");
            // Cost 0 reports without counting; a cost above the limit can never pass.
            let d = step(0);
            assert!(d.allowed && d.remaining == 0, "{t:?} {algo:?}: {d:?}");
            let d = step(11);
            assert_eq!(d.outcome, Outcome::CostExceedsLimit, "{t:?} {algo:?}");
            assert!(!d.allowed && d.retry_after.is_none(), "{t:?} {algo:?}");
            assert!(!d.headers().iter().any(|(h, _)| *h == "Retry-After"));
            let d = step(u64::MAX);
            assert_eq!(d.outcome, Outcome::CostExceedsLimit, "{t:?} {algo:?}");
            // Refused outright even on a fresh id with the whole limit free.
            let d = l.check_at(&c, "fresh", 11, at(base)).unwrap();
            assert_eq!(d.outcome, Outcome::CostExceedsLimit, "{t:?} {algo:?}");
            assert_eq!(d.remaining, 10, "{t:?} {algo:?}");
            assert!(!exists(&c, &l.key("fresh")), "nothing counted");
            let s = l.stats();
            assert_eq!((s.allowed, s.limited, s.cost_exceeds_limit), (5, 1, 3));
        }
    }
}

/// One scripted request: when (µs after the base) and its cost.
#[derive(Clone, Copy, Debug)]
struct Req {
    t: u64,
    cost: u64,
}

/// Scripted times over about `span` windows of `w`: runs at one instant, small gaps, and
/// jumps to just before or after window edges, where fixed windows are weakest.
///
/// `tail`: no request in the last `tail` µs of an aligned window (moved just past the edge).
/// Scripted times still set real TTLs; a fixed window's key lives only until its window's
/// end, which must not pass in real time while the script is still inside that window.
fn scripted(rng: &mut StdRng, n: usize, w: u64, span: u64, max_cost: u64, tail: u64) -> Vec<Req> {
    // Start one window in, so every window (t - w, t] lies after time 0.
    let mut t = w;
    let mut out = Vec::with_capacity(n);
    while out.len() < n && t < (span + 1) * w {
        match rng.gen_range(0..10) {
            0..=2 => {}                                                 // same instant
            3..=5 => t += rng.gen_range(1..w / 20),                     // a little later
            6 => t += rng.gen_range(w / 4..w),                          // a long gap
            7 => t = t.max((t / w + 1) * w - rng.gen_range(1..w / 50)), // just before an edge
            8 => t = (t / w + 1) * w + rng.gen_range(0..w / 50),        // just after one
            _ => t += rng.gen_range(0..3),                              // microseconds apart
        }
        if t % w >= w - tail {
            t = (t / w + 1) * w + rng.gen_range(0..3);
        }
        let cost = if rng.gen_bool(0.8) {
            1
        } else {
            rng.gen_range(1..=max_cost)
        };
        out.push(Req { t, cost });
    }
    out
}

/// Run `reqs` through `l` (times after `base`); the decisions in order.
fn replay<E: Execute>(ex: &E, l: &Limiter, id: &str, base: u64, reqs: &[Req]) -> Vec<Decision> {
    reqs.iter()
        .map(|r| l.check_at(ex, id, r.cost, at(base + r.t)).unwrap())
        .collect()
}

/// Units admitted in [from, to).
fn admitted_between(adm: &[Req], from: u64, to: u64) -> u64 {
    adm.iter()
        .filter(|r| r.t >= from && r.t < to)
        .map(|r| r.cost)
        .sum()
}

/// Units admitted in (from_excl, to_incl].
fn admitted_in(adm: &[Req], from_excl: u64, to_incl: u64) -> u64 {
    adm.iter()
        .filter(|r| r.t > from_excl && r.t <= to_incl)
        .map(|r| r.cost)
        .sum()
}

const SEEDS: u64 = 6;

fn seeds() -> impl Iterator<Item = u64> {
    let base: u64 = std::env::var("LIMIT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed);
    (0..SEEDS).map(move |i| base + i)
}

#[test]
fn property_sliding_log_is_exact_in_every_window() {
    let (limit, w) = (5u64, 60 * SEC);
    for t in targets() {
        let c = conn(t);
        for seed in seeds() {
            let mut rng = StdRng::seed_from_u64(seed);
            let reqs = scripted(&mut rng, 120, w, 40, 3, 0);
            let l = Limiter::new(
                &key("prop-log"),
                Algorithm::sliding_log(limit, Duration::from_micros(w)),
            )
            .unwrap();
            let base = aligned_base(&c, w);
            let ds = replay(&c, &l, "p", base, &reqs);
            let mut adm: Vec<Req> = Vec::new();
            for (r, d) in reqs.iter().zip(&ds) {
                // Exact both ways: admitted iff the last window holds room for the cost.
                let used = admitted_in(&adm, r.t - w, r.t);
                let fits = used + r.cost <= limit;
                assert_eq!(
                    d.allowed, fits,
                    "{t:?} seed {seed}: {r:?} used {used}: {d:?}"
                );
                if d.allowed {
                    adm.push(*r);
                    assert_eq!(d.remaining, limit - used - r.cost, "{t:?} seed {seed}");
                }
            }
            for a in &adm {
                let in_window = admitted_in(&adm, a.t - w, a.t);
                assert!(
                    in_window <= limit,
                    "{t:?} seed {seed}: {in_window} in the window ending {}",
                    a.t
                );
            }
            assert!(
                adm.len() > 10 && adm.len() < reqs.len(),
                "the script exercises both outcomes"
            );
        }
    }
}

#[test]
fn property_fixed_window_exact_per_aligned_window_at_most_double_across_an_edge() {
    let (limit, w) = (5u64, 60 * SEC);
    for t in targets() {
        let c = conn(t);
        for seed in seeds() {
            let mut rng = StdRng::seed_from_u64(seed);
            let reqs = scripted(&mut rng, 120, w, 40, 3, 5 * SEC);
            let algo = Algorithm::fixed_window(limit, Duration::from_micros(w));
            let l = Limiter::new(&key("prop-fixed"), algo).unwrap();
            let base = aligned_base(&c, w);
            let ds = replay(&c, &l, "p", base, &reqs);
            let mut per_window: BTreeMap<u64, u64> = BTreeMap::new();
            let mut adm = Vec::new();
            for (r, d) in reqs.iter().zip(&ds) {
                let used = per_window.get(&(r.t / w)).copied().unwrap_or(0);
                assert_eq!(
                    d.allowed,
                    used + r.cost <= limit,
                    "{t:?} seed {seed}: {r:?}"
                );
                if d.allowed {
                    *per_window.entry(r.t / w).or_default() += r.cost;
                    adm.push(*r);
                } else {
                    let edge = (r.t / w + 1) * w;
                    assert_eq!(d.retry_after, Some(Duration::from_micros(edge - r.t)));
                }
            }
            assert!(per_window.values().all(|&n| n <= limit));
            for a in &adm {
                assert!(
                    admitted_in(&adm, a.t - w, a.t) <= 2 * limit,
                    "{t:?} seed {seed}"
                );
            }
        }
    }
}

/// The sliding counter, simulated in integers: (window start, current count, previous count).
struct CounterRef {
    limit: u64,
    w: u64,
    state: Option<(u64, u64, u64)>,
}

impl CounterRef {
    /// Admit or not at `t`; also returns (previous count, elapsed) used for the bound.
    fn step(&mut self, t: u64, cost: u64) -> (bool, u64, u64) {
        let start = t / self.w * self.w;
        let (cur, prev) = match self.state {
            Some((s, c, p)) if s == start => (c, p),
            Some((s, c, _)) if s + self.w == start => (0, c),
            _ => (0, 0),
        };
        let elapsed = t - start;
        let ok = prev * (self.w - elapsed) + (cur + cost) * self.w <= self.limit * self.w;
        self.state = Some((start, if ok { cur + cost } else { cur }, prev));
        (ok, prev, elapsed)
    }
}

#[test]
fn property_sliding_counter_within_its_stated_bound() {
    let (limit, w) = (5u64, 60 * SEC);
    for t in targets() {
        let c = conn(t);
        for seed in seeds() {
            let mut rng = StdRng::seed_from_u64(seed);
            let reqs = scripted(&mut rng, 120, w, 40, 3, 0);
            let algo = Algorithm::sliding_counter(limit, Duration::from_micros(w));
            let l = Limiter::new(&key("prop-counter"), algo).unwrap();
            let base = aligned_base(&c, w);
            let ds = replay(&c, &l, "p", base, &reqs);
            let mut reference = CounterRef {
                limit,
                w,
                state: None,
            };
            let mut adm: Vec<Req> = Vec::new();
            for (r, d) in reqs.iter().zip(&ds) {
                let (ok, _, _) = reference.step(r.t, r.cost);
                assert_eq!(d.allowed, ok, "{t:?} seed {seed}: {r:?}");
                if d.allowed {
                    adm.push(*r);
                }
            }
            // The stated bound: each aligned window admits at most `limit`; a sliding window
            // ending `e` into aligned window k admits at most limit + prev_k * e / w (< 2 limit).
            for a in &adm {
                let start = a.t / w * w;
                let aligned = admitted_between(&adm, start, start + w);
                assert!(aligned <= limit, "{t:?} seed {seed}");
                let prev = admitted_between(&adm, start - w, start);
                let sliding = admitted_in(&adm, a.t - w, a.t);
                assert!(
                    sliding * w <= limit * w + prev * (a.t - start),
                    "{t:?} seed {seed}: {sliding} in the window ending {} (prev {prev})",
                    a.t
                );
                assert!(sliding < 2 * limit);
            }
        }
    }
}

/// The token bucket, simulated in integers: tokens scaled by `per`.
struct BucketRef {
    capacity: u64,
    refill: u64,
    per: u64,
    state: Option<(u64, u64)>, // (scaled tokens, time)
}

impl BucketRef {
    fn step(&mut self, t: u64, cost: u64) -> (bool, u64) {
        let full = self.capacity * self.per;
        let tokens = match self.state {
            None => full,
            Some((tk, ts)) => (tk + t.saturating_sub(ts) * self.refill).min(full),
        };
        let need = cost * self.per;
        if tokens >= need {
            self.state = Some((tokens - need, t));
            (true, (tokens - need) / self.per)
        } else {
            (false, tokens / self.per)
        }
    }
}

#[test]
fn property_token_bucket_keeps_the_burst_rule() {
    let w = 60 * SEC;
    let (capacity, refill) = (5u64, 3u64); // 3 tokens a minute: 20 s per token
    for t in targets() {
        let c = conn(t);
        for seed in seeds() {
            let mut rng = StdRng::seed_from_u64(seed);
            let reqs = scripted(&mut rng, 120, w, 40, 3, 0);
            let algo = Algorithm::token_bucket(capacity, refill, Duration::from_micros(w));
            let l = Limiter::new(&key("prop-bucket"), algo).unwrap();
            let base = aligned_base(&c, w);
            let ds = replay(&c, &l, "p", base, &reqs);
            let mut reference = BucketRef {
                capacity,
                refill,
                per: w,
                state: None,
            };
            let mut adm: Vec<Req> = Vec::new();
            for (r, d) in reqs.iter().zip(&ds) {
                let (ok, remaining) = reference.step(r.t, r.cost);
                assert_eq!(
                    (d.allowed, d.remaining),
                    (ok, remaining),
                    "{t:?} seed {seed}: {r:?}"
                );
                if ok {
                    adm.push(*r);
                }
            }
            // Burst rule: over any [a, b], at most capacity + refill * (b - a) / per.
            for (i, a) in adm.iter().enumerate() {
                for b in &adm[i..] {
                    let n = admitted_in(&adm, a.t - 1, b.t);
                    assert!(
                        n <= capacity + refill * (b.t - a.t) / w,
                        "{t:?} seed {seed}"
                    );
                }
            }
        }
    }
}

/// GCRA as redis-cell defines it, in integer microseconds: each step's five fields.
struct GcraRef {
    burst: u64,
    interval: u64,
    tat: Option<u64>,
}

#[derive(Debug, PartialEq, Eq)]
struct Fields {
    outcome: Outcome,
    limit: u64,
    remaining: u64,
    reset_after_us: u64,
    retry_after_us: Option<u64>,
}

impl GcraRef {
    fn step(&mut self, now: u64, cost: u64) -> Fields {
        let limit = self.burst + 1;
        let tolerance = self.interval * limit;
        let tat = self.tat.unwrap_or(now).max(now);
        let new_tat = tat + self.interval * cost;
        let (outcome, retry, ttl) = if cost > limit {
            (Outcome::CostExceedsLimit, None, tat - now)
        } else if new_tat > now + tolerance {
            (Outcome::Limited, Some(new_tat - tolerance - now), tat - now)
        } else {
            if cost > 0 {
                self.tat = Some(new_tat);
            }
            (Outcome::Allowed, None, new_tat - now)
        };
        Fields {
            outcome,
            limit,
            remaining: (tolerance - ttl) / self.interval,
            reset_after_us: ttl,
            retry_after_us: retry,
        }
    }
}

fn fields(d: &Decision) -> Fields {
    Fields {
        outcome: d.outcome,
        limit: d.limit,
        remaining: d.remaining,
        reset_after_us: d.reset_after.as_micros() as u64,
        retry_after_us: d.retry_after.map(|r| r.as_micros() as u64),
    }
}

#[test]
fn gcra_matches_a_reference_simulation_field_by_field() {
    let w = 60 * SEC;
    // Rate 7 per minute: an interval of 8,571,428.57 µs, kept as 8,571,428.
    let (burst, rate) = (4u64, 7u64);
    for t in targets() {
        let c = conn(t);
        for seed in seeds() {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut reqs = scripted(&mut rng, 120, w, 40, 3, 0);
            // Costs the scripted mix lacks: zero and above the limit.
            reqs[10].cost = 0;
            reqs[20].cost = 6;
            reqs[30].cost = 5;
            let algo = Algorithm::gcra(burst, rate, Duration::from_micros(w));
            let l = Limiter::new(&key("gcra-ref"), algo).unwrap();
            let base = aligned_base(&c, w);
            let mut reference = GcraRef {
                burst,
                interval: w / rate,
                tat: None,
            };
            let (mut allowed, mut limited) = (0, 0);
            for r in &reqs {
                let d = l.check_at(&c, "p", r.cost, at(base + r.t)).unwrap();
                let want = reference.step(base + r.t, r.cost);
                assert_eq!(fields(&d), want, "{t:?} seed {seed}: {r:?}");
                // The stored TAT is the exact integer (no %.14g rounding of a Lua number).
                if let Some(tat) = reference.tat {
                    let stored: String = q(&c, cmd("GET").arg(l.key("p")));
                    assert_eq!(stored, tat.to_string(), "{t:?} seed {seed}");
                }
                let tr = d.throttle_reply();
                assert_eq!(tr[0], i64::from(!d.allowed));
                assert_eq!(tr[1], 5);
                if d.allowed {
                    allowed += 1;
                    assert_eq!(tr[3], -1);
                } else {
                    limited += 1;
                }
            }
            assert!(allowed > 10 && limited > 10, "both outcomes exercised");
        }
    }
}

#[test]
fn property_gcra_keeps_the_burst_rule() {
    let w = 60 * SEC;
    let (burst, rate) = (4u64, 3u64);
    for t in targets() {
        let c = conn(t);
        for seed in seeds() {
            let mut rng = StdRng::seed_from_u64(seed);
            let reqs = scripted(&mut rng, 120, w, 40, 3, 0);
            let l = Limiter::new(
                &key("prop-gcra"),
                Algorithm::gcra(burst, rate, Duration::from_micros(w)),
            )
            .unwrap();
            let base = aligned_base(&c, w);
            let ds = replay(&c, &l, "p", base, &reqs);
            let adm: Vec<Req> = reqs
                .iter()
                .zip(&ds)
                .filter(|(_, d)| d.allowed)
                .map(|(r, _)| *r)
                .collect();
            let interval = w / rate;
            for (i, a) in adm.iter().enumerate() {
                for b in &adm[i..] {
                    let n = admitted_in(&adm, a.t - 1, b.t);
                    assert!(n <= burst + 1 + (b.t - a.t) / interval, "{t:?} seed {seed}");
                }
            }
            assert!(adm.len() > 10 && adm.len() < reqs.len());
        }
    }
}

/// A clock the test moves by hand, offset by a fixed skew (±5 s) from the others.
#[derive(Debug)]
struct SkewedClock {
    now: Mutex<Duration>,
    skew: i64,
}

impl SkewedClock {
    fn new(skew_secs: i64) -> Arc<SkewedClock> {
        Arc::new(SkewedClock {
            now: Mutex::new(Duration::ZERO),
            skew: skew_secs,
        })
    }
    /// Set to `t` µs (a scripted time) plus the skew; 10 s keeps a -5 s skew non-negative.
    fn set(&self, t_us: u64) {
        let us = (t_us as i64 + 10 * SEC as i64 + self.skew * SEC as i64) as u64;
        *self.now.lock() = Duration::from_micros(us);
    }
}

impl Clock for SkewedClock {
    fn now(&self) -> Duration {
        *self.now.lock()
    }
}

fn five_algorithms(w: u64) -> Vec<Algorithm> {
    let w = Duration::from_micros(w);
    vec![
        Algorithm::sliding_log(5, w),
        Algorithm::sliding_counter(5, w),
        Algorithm::fixed_window(5, w),
        Algorithm::token_bucket(5, 3, w),
        Algorithm::gcra(4, 3, w),
    ]
}

/// The limiter's only client-side time is the memo's clock (decisions use the server's
/// `TIME`, or here the scripted time standing in for it). Three handles whose clocks are
/// 5 s ahead, in step, and 5 s behind replay the same requests with the memo on: every
/// decision, including those the memo answers, is identical field by field.
#[test]
fn client_clock_skewed_by_five_seconds_changes_no_decision() {
    let w = 60 * SEC;
    for t in targets() {
        let c = conn(t);
        for algo in five_algorithms(w) {
            let mut rng = StdRng::seed_from_u64(7);
            let reqs = scripted(&mut rng, 80, w, 40, 2, 5 * SEC);
            let base = aligned_base(&c, w);
            let handles: Vec<(Arc<SkewedClock>, Limiter)> = [-5, 0, 5]
                .into_iter()
                .map(|skew| {
                    let clock = SkewedClock::new(skew);
                    let l = Limiter::builder(&key("skew"), algo)
                        .memo(100)
                        .clock(clock.clone())
                        .build()
                        .unwrap();
                    (clock, l)
                })
                .collect();
            for r in &reqs {
                let ds: Vec<Decision> = handles
                    .iter()
                    .map(|(clock, l)| {
                        clock.set(r.t);
                        l.check_at(&c, "u", r.cost, at(base + r.t)).unwrap()
                    })
                    .collect();
                assert_eq!(ds[0], ds[1], "{t:?} {algo:?} {r:?}");
                assert_eq!(ds[1], ds[2], "{t:?} {algo:?} {r:?}");
            }
            let stats: Vec<_> = handles.iter().map(|(_, l)| l.stats()).collect();
            assert!(stats[0].memo_hits > 0, "{t:?} {algo:?}: the memo was used");
            assert!(
                stats.iter().all(|s| *s == stats[0]),
                "{t:?} {algo:?}: {stats:?}"
            );
        }
    }
}

/// On the real server clock: two handles with clocks 5 s apart share one id; together they
/// admit exactly the limit, and both refuse afterwards.
#[test]
fn skewed_handles_share_one_limit_on_the_server_clock() {
    for t in targets() {
        let c = conn(t);
        for algo in five_algorithms(3600 * SEC) {
            let name = key("skew-rt");
            let mk = |skew: i64| {
                let clock = SkewedClock::new(skew);
                clock.set(0);
                Limiter::builder(&name, algo)
                    .memo(10)
                    .clock(clock)
                    .build()
                    .unwrap()
            };
            let (ahead, behind) = (mk(5), mk(-5));
            let t0 = server_us(&c);
            let mut allowed = 0;
            for i in 0..40 {
                let l = if i % 2 == 0 { &ahead } else { &behind };
                allowed += usize::from(l.check(&c, "u").unwrap().allowed);
            }
            let t1 = server_us(&c);
            if algo.name() == "fixed" && t0 / (3600 * SEC) != t1 / (3600 * SEC) {
                assert!((5..=10).contains(&allowed)); // crossed an hour edge
            } else {
                assert_eq!(allowed, 5, "{t:?} {algo:?}");
            }
            assert!(!ahead.check(&c, "u").unwrap().allowed);
            assert!(!behind.check(&c, "u").unwrap().allowed);
        }
    }
}

#[test]
fn keys_carry_a_ttl_and_an_idle_limiter_leaves_none() {
    let w = Duration::from_secs(1);
    let algos = [
        (Algorithm::sliding_log(3, w), 1000),
        (Algorithm::sliding_counter(3, w), 2000),
        (Algorithm::fixed_window(3, w), 1000),
        (Algorithm::token_bucket(3, 3, w), 1000),
        (Algorithm::gcra(2, 3, w), 1000),
    ];
    for t in targets() {
        let c = conn(t);
        let limiters: Vec<(Limiter, i64)> = algos
            .iter()
            .map(|&(a, max_ms)| (Limiter::new(&key("ttl"), a).unwrap(), max_ms))
            .collect();
        for (l, max_ms) in &limiters {
            for id in ["a", "b"] {
                let k = l.key(id);
                let mut pttl = -2;
                // A fixed window's key lives until its window ends: a request in the last
                // milliseconds of one may see it gone already (-2); the retry lands in the
                // next window. Never -1: no key without a TTL.
                for _ in 0..3 {
                    assert!(l.check_n(&c, id, 2).unwrap().allowed, "{t:?} {l:?}");
                    pttl = q(&c, cmd("PTTL").arg(&k));
                    if pttl != -2 {
                        break;
                    }
                }
                assert!(pttl > 0 && pttl <= *max_ms, "{t:?} {l:?}: PTTL {pttl}");
            }
        }
        let deadline = Instant::now() + Duration::from_secs(8);
        loop {
            let left: Vec<String> = limiters
                .iter()
                .flat_map(|(l, _)| [l.key("a"), l.key("b")])
                .filter(|k| exists(&c, k))
                .collect();
            if left.is_empty() {
                break;
            }
            assert!(Instant::now() < deadline, "{t:?}: still there: {left:?}");
            thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn real_time_allowed_again_after_retry_after() {
    let w = Duration::from_millis(300);
    for t in targets() {
        let c = conn(t);
        for algo in five_algorithms(w.as_micros() as u64) {
            let l = Limiter::new(&key("rt"), algo).unwrap();
            let mut last = None;
            for _ in 0..20 {
                let d = l.check(&c, "u").unwrap();
                if !d.allowed {
                    last = Some(d);
                    break;
                }
            }
            let d = last.expect("limited within 20 requests");
            let retry = d.retry_after.unwrap();
            assert!(retry <= 2 * w, "{t:?} {algo:?}: {d:?}");
            thread::sleep(retry + Duration::from_millis(5));
            assert!(l.check(&c, "u").unwrap().allowed, "{t:?} {algo:?}");
        }
    }
}

#[test]
fn shadow_mode_decides_and_counts_but_never_refuses() {
    for t in targets() {
        let c = conn(t);
        let l = Limiter::builder(
            &key("shadow"),
            Algorithm::sliding_log(3, Duration::from_secs(60)),
        )
        .shadow(true)
        .build()
        .unwrap();
        let ds: Vec<Decision> = (0..5).map(|_| l.check(&c, "u").unwrap()).collect();
        assert!(ds.iter().all(|d| d.allowed));
        let outcomes: Vec<Outcome> = ds.iter().map(|d| d.outcome).collect();
        assert_eq!(
            outcomes[2..],
            [Outcome::Allowed, Outcome::Limited, Outcome::Limited]
        );
        let s = l.stats();
        assert_eq!((s.allowed, s.limited, s.shadowed), (3, 2, 2));
        let members: i64 = q(&c, cmd("ZCARD").arg(l.key("u")));
        assert_eq!(members, 3, "refusals are not recorded, as when enforcing");
    }
}

/// An `Execute` that counts the commands it passes on.
struct Counting<'a> {
    inner: &'a Exec,
    sent: AtomicU64,
}

impl Execute for Counting<'_> {
    fn exec(&self, c: &valkit::Cmd) -> valkit::Result<Value> {
        self.sent.fetch_add(1, Ordering::Relaxed);
        self.inner.exec(c)
    }
    fn exec_pipeline(&self, p: &Pipeline) -> valkit::Result<Vec<Value>> {
        self.sent.fetch_add(1, Ordering::Relaxed);
        self.inner.exec_pipeline(p)
    }
}

#[test]
fn memo_answers_limited_ids_without_a_round_trip() {
    for t in targets() {
        let conn = conn(t);
        let c = Counting {
            inner: &conn,
            sent: AtomicU64::new(0),
        };
        let clock = SkewedClock::new(0);
        clock.set(0);
        let l = Limiter::builder(
            &key("memo"),
            Algorithm::fixed_window(2, Duration::from_secs(3600)),
        )
        .memo(10)
        .clock(clock.clone())
        .build()
        .unwrap();
        l.preload(&c).unwrap();
        let base = aligned_base(&c, 3600 * SEC);
        for _ in 0..3 {
            l.check_at(&c, "u", 1, at(base)).unwrap();
        }
        let before = c.sent.load(Ordering::Relaxed);
        for _ in 0..10 {
            let d = l.check_at(&c, "u", 1, at(base)).unwrap();
            assert!(!d.allowed);
            assert_eq!(d.retry_after, Some(Duration::from_secs(3600)));
        }
        assert_eq!(
            c.sent.load(Ordering::Relaxed),
            before,
            "{t:?}: only the memo answered"
        );
        assert_eq!(l.stats().memo_hits, 10);
        // Once the clock passes the retry-after, the server is asked again.
        clock.set(3600 * SEC);
        assert!(
            l.check_at(&c, "u", 1, at(base + 3600 * SEC))
                .unwrap()
                .allowed
        );
        assert_eq!(c.sent.load(Ordering::Relaxed), before + 1, "{t:?}");
    }
}

#[test]
fn survives_script_flush_and_runs_through_a_pool() {
    for t in targets() {
        let pool = t.pool(2);
        let l = Limiter::new(
            &key("flush"),
            Algorithm::gcra(1, 1, Duration::from_secs(60)),
        )
        .unwrap();
        assert!(l.check(&pool, "u").unwrap().allowed);
        pool.exec(&cmd("SCRIPT").arg("FLUSH")).unwrap();
        assert!(l.check(&pool, "u").unwrap().allowed);
        let d = l.check(&pool, "u").unwrap();
        assert_eq!(d.outcome, Outcome::Limited);
        assert_eq!(d.throttle_reply()[..3], [1, 2, 0]);
    }
}

#[test]
fn decisions_render_rate_limit_headers() {
    for t in targets() {
        let c = conn(t);
        let l = Limiter::new(
            &key("headers"),
            Algorithm::fixed_window(2, Duration::from_secs(60)),
        )
        .unwrap();
        let base = aligned_base(&c, 60 * SEC);
        let d = l.check_at(&c, "u", 1, at(base + 15 * SEC + 1)).unwrap();
        assert_eq!(
            d.headers(),
            vec![
                ("RateLimit-Limit", "2".to_owned()),
                ("RateLimit-Remaining", "1".to_owned()),
                ("RateLimit-Reset", "45".to_owned()),
            ]
        );
        l.check_at(&c, "u", 1, at(base + 15 * SEC + 1)).unwrap();
        let d = l.check_at(&c, "u", 1, at(base + 20 * SEC)).unwrap();
        assert_eq!(
            d.headers(),
            vec![
                ("RateLimit-Limit", "2".to_owned()),
                ("RateLimit-Remaining", "0".to_owned()),
                ("RateLimit-Reset", "40".to_owned()),
                ("Retry-After", "40".to_owned()),
            ]
        );
    }
}

#[test]
fn foreign_state_in_a_key_is_a_typed_error() {
    for t in targets() {
        let c = conn(t);
        for algo in five_algorithms(60 * SEC) {
            let l = Limiter::new(&key("foreign"), algo).unwrap();
            let k = l.key("u");
            // A value of the wrong type, then (for the string keys) one of the wrong shape.
            q::<i64, _>(&c, cmd("RPUSH").arg(&k).arg("x"));
            let e = l.check(&c, "u").unwrap_err();
            assert!(
                matches!(e.kind(), valkit::ErrorKind::Server(_)),
                "{t:?} {algo:?}: {e:?}"
            );
            q::<i64, _>(&c, cmd("DEL").arg(&k));
            if algo.name() != "log" {
                q::<(), _>(&c, cmd("SET").arg(&k).arg("not a limiter"));
                let e = l.check(&c, "u").unwrap_err();
                assert!(
                    matches!(e.kind(), valkit::ErrorKind::Server(_)),
                    "{t:?} {algo:?}: {e:?}"
                );
            }
            assert_eq!(l.stats().errors, if algo.name() == "log" { 1 } else { 2 });
        }
    }
}

#[test]
fn sliding_log_records_one_unique_member_per_unit_even_at_one_instant() {
    for t in targets() {
        let c = conn(t);
        let l = Limiter::new(
            &key("log-units"),
            Algorithm::sliding_log(1000, Duration::from_secs(60)),
        )
        .unwrap();
        let base = aligned_base(&c, 60 * SEC);
        for remaining in [750, 500, 250, 0] {
            let d = l.check_at(&c, "u", 250, at(base)).unwrap();
            assert!(d.allowed && d.remaining == remaining, "{t:?}: {d:?}");
        }
        let members: i64 = q(&c, cmd("ZCARD").arg(l.key("u")));
        assert_eq!(members, 1000, "{t:?}: equal timestamps never collide");
        assert!(!l.check_at(&c, "u", 1, at(base)).unwrap().allowed);
    }
}

#[test]
fn client_metrics_include_decisions_by_outcome() {
    for t in targets() {
        let client = t.client();
        let name = key("metrics");
        let l = Limiter::new(&name, Algorithm::fixed_window(1, Duration::from_secs(60))).unwrap();
        client.add_metrics_source(l.metrics_source());
        let base = aligned_base(&client, 60 * SEC);
        for cost in [1, 1, 1, 2] {
            l.check_at(&client, "u", cost, at(base)).unwrap();
        }
        let text = client.metrics_text();
        for (outcome, n) in [("allowed", 1), ("limited", 2), ("cost_exceeds_limit", 1)] {
            let line = format!(
                "valkit_limit_decisions_total{{limiter=\"{name}\",algorithm=\"fixed\",outcome=\"{outcome}\"}} {n}"
            );
            assert!(text.contains(&line), "{t:?}: no {line:?} in\n{text}");
        }
        drop(l);
        assert!(!client.metrics_text().contains(&name), "held weakly");
    }
}

#[test]
fn decisions_read_the_same_over_resp2_and_resp3() {
    support::each_combo("limit-proto", |c, prefix, kind, proto| {
        let l = Limiter::new(
            prefix,
            Algorithm::token_bucket(2, 1, Duration::from_secs(10)),
        )
        .unwrap();
        let t = aligned_base(c, 10 * SEC);
        let d = l.check_at(c, "u", 2, at(t)).unwrap();
        assert_eq!((d.allowed, d.remaining), (true, 0), "{kind:?} {proto:?}");
        assert_eq!(d.reset_after, Duration::from_secs(20), "{kind:?} {proto:?}");
        let d = l.check_at(c, "u", 1, at(t + 5 * SEC)).unwrap();
        assert_eq!(
            d.retry_after,
            Some(Duration::from_secs(5)),
            "{kind:?} {proto:?}"
        );
        assert_eq!(d.throttle_reply(), [1, 2, 0, 5, 15], "{kind:?} {proto:?}");
    });
}
