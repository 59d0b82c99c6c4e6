//! The parser figures of issue 11, like for like: every decoder is **fed the same way**
//! (the corpus copied into the parser's own buffer, as a socket read does) and they run in
//! interleaved rounds, so all of them see the same background load.
//!
//! ```sh
//! cargo bench --all-features --bench parser_rounds                 # 9 rounds of 60 ms slices
//! PARSER_ROUNDS=15 PARSER_SLICE_MS=100 cargo bench --all-features --bench parser_rounds
//! taskset -c 1 cargo bench --all-features --bench parser_rounds     # pinned
//! ```
//!
//! Per corpus, each round runs every variant for one slice (the starting variant rotates
//! every round) and the ratios are taken within the round; the table shows the median of
//! the per-round ratios and their spread (min-max).
//!
//! Variants:
//! - `reply_fed`: valkit's `Decoder::feed` (one copy into its buffer) then `next_reply`
//!   (validated and indexed in place: what every typed command reads).
//! - `values_fed`: `feed` then `next_value` (a `Value` per reply: `Execute::exec`, pipelines).
//! - `redis`: the `redis` crate's `Parser::parse_value` over the bytes (it copies them into
//!   its own buffer and builds its `Value`s: what its sync client does).
//! - `memcpy`: a copy of the same bytes into a ready buffer, the physical floor for large
//!   bulk strings.
use std::hint::black_box;
use std::time::{Duration, Instant};

#[path = "common/corpora.rs"]
mod corpora;

const VARIANTS: [&str; 4] = ["reply_fed", "values_fed", "redis", "memcpy"];

fn main() {
    let rounds: usize = env_or("PARSER_ROUNDS", 9);
    let slice = Duration::from_millis(env_or("PARSER_SLICE_MS", 60));
    println!(
        "parser_rounds: {rounds} rounds, {} ms slices; fed alike (valkit copies into its \
         decoder, the redis crate into its own buffer)",
        slice.as_millis()
    );
    println!(
        "\n| corpus | reply_fed / redis | values_fed / redis | reply_fed / memcpy (bytes/s) | \
         reply_fed Mframes/s | redis Mframes/s |"
    );
    println!("|---|---|---|---|---|---|");
    for corpus in corpora::all() {
        let mut dec = valkit::resp::__internals::Decoder::new();
        let mut dst = vec![0u8; corpus.bytes.len()];
        let mut per_round: Vec<[f64; 4]> = Vec::with_capacity(rounds);
        // One untimed pass of each, so buffers are grown and code is warm.
        for v in 0..VARIANTS.len() {
            run(v, &corpus, &mut dec, &mut dst);
        }
        for r in 0..rounds {
            let mut rate = [0f64; 4];
            for k in 0..VARIANTS.len() {
                let v = (k + r) % VARIANTS.len();
                let t0 = Instant::now();
                let mut passes = 0u64;
                while t0.elapsed() < slice {
                    run(v, &corpus, &mut dec, &mut dst);
                    passes += 1;
                }
                // Passes per second: every variant handles the whole corpus per pass.
                rate[v] = passes as f64 / t0.elapsed().as_secs_f64();
            }
            per_round.push(rate);
        }
        let ratio = |a: usize, b: usize| spread(per_round.iter().map(|x| x[a] / x[b]).collect());
        let mframes = |a: usize| {
            median(
                per_round
                    .iter()
                    .map(|x| x[a] * corpus.frames as f64 / 1e6)
                    .collect(),
            )
        };
        println!(
            "| {} | {} | {} | {} | {:.3} | {:.3} |",
            corpus.name,
            ratio(0, 2),
            ratio(1, 2),
            ratio(0, 3),
            mframes(0),
            mframes(2)
        );
    }
}

/// One pass of variant `v` over the whole corpus.
fn run(
    v: usize,
    c: &corpora::Corpus,
    dec: &mut valkit::resp::__internals::Decoder,
    dst: &mut [u8],
) {
    match v {
        0 => assert_eq!(corpora::valkit_reply_fed(dec, c), c.frames),
        1 => assert_eq!(corpora::valkit_decoder(dec, c), c.frames),
        2 => assert_eq!(corpora::redis_parser(c), c.frames),
        _ => {
            dst.copy_from_slice(black_box(&c.bytes));
            black_box(&mut *dst);
        }
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `median (min-max)`.
fn spread(mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    format!("{:.2} ({:.2}-{:.2})", v[v.len() / 2], v[0], v[v.len() - 1])
}
