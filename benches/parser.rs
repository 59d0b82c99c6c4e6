//! Parser benchmarks, no network: valkit's decoder vs the `redis` crate's `Parser` vs
//! redis-protocol's owned, range (zero-copy) and `Bytes` (zero-copy) decoders, with a bare
//! frame walker and a memcpy of the same bytes as ceilings.
//!
//! `cargo bench --bench parser` (criterion flags after `--`). Throughput is in bytes; the
//! frame count of every corpus is written to `target/criterion/parser-corpora.json` so that
//! `scripts/bench.sh` can report frames/s too. Allocation counts: `benches/allocs.rs`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput};

#[path = "common/corpora.rs"]
mod corpora;

fn main() {
    let corpora = corpora::all();
    write_metadata(&corpora);
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    let lim = valkit::resp::Limits::default();
    for corpus in &corpora {
        let mut g = c.benchmark_group(format!("parse_{}", corpus.name));
        g.sampling_mode(SamplingMode::Flat);
        g.throughput(Throughput::Bytes(corpus.bytes.len() as u64));
        let frames = corpus.frames;
        let mut dec = valkit::resp::__internals::Decoder::new();
        g.bench_function("valkit_decoder", |b| {
            b.iter(|| assert_eq!(corpora::valkit_decoder(&mut dec, corpus), frames))
        });
        let vshared = valkit::Bytes::from(corpus.bytes.clone());
        g.bench_function("valkit_decoder_shared", |b| {
            b.iter(|| {
                assert_eq!(
                    corpora::valkit_decoder_shared(&mut dec, &vshared, frames),
                    frames
                )
            })
        });
        g.bench_function("valkit_reply", |b| {
            b.iter(|| assert_eq!(corpora::valkit_reply(&mut dec, &vshared, frames), frames))
        });
        g.bench_function("valkit_reply_fed", |b| {
            b.iter(|| assert_eq!(corpora::valkit_reply_fed(&mut dec, corpus), frames))
        });
        g.bench_function("valkit_decode", |b| {
            b.iter(|| assert_eq!(corpora::valkit_decode(&lim, corpus), frames))
        });
        g.bench_function("redis_parser", |b| {
            b.iter(|| assert_eq!(corpora::redis_parser(corpus), frames))
        });
        g.bench_function("rp_owned", |b| {
            b.iter(|| assert_eq!(corpora::rp_owned(corpus), frames))
        });
        g.bench_function("rp_range", |b| {
            b.iter(|| assert_eq!(corpora::rp_range(corpus), frames))
        });
        let shared = bytes::Bytes::from(corpus.bytes.clone());
        g.bench_function("rp_bytes", |b| {
            b.iter(|| assert_eq!(corpora::rp_bytes(&shared, corpus.resp3), frames))
        });
        g.bench_function("walker", |b| {
            b.iter(|| assert_eq!(corpora::walk(&corpus.bytes), frames))
        });
        let mut dst = vec![0u8; corpus.bytes.len()];
        g.bench_function("memcpy", |b| {
            b.iter(|| {
                dst.copy_from_slice(black_box(&corpus.bytes));
                black_box(&mut dst);
            })
        });
        g.finish();
    }
    c.final_summary();
}

/// `{"small_1M": {"frames": 1000000, "bytes": 6500000}, ...}` next to criterion's output.
fn write_metadata(corpora: &[corpora::Corpus]) {
    let dir = criterion_dir();
    let _ = std::fs::create_dir_all(&dir);
    let body: Vec<String> = corpora
        .iter()
        .map(|c| {
            format!(
                "\"{}\": {{\"frames\": {}, \"bytes\": {}}}",
                c.name,
                c.frames,
                c.bytes.len()
            )
        })
        .collect();
    let _ = std::fs::write(
        dir.join("parser-corpora.json"),
        format!("{{{}}}\n", body.join(", ")),
    );
}

fn criterion_dir() -> std::path::PathBuf {
    std::env::var_os("CRITERION_HOME")
        .map(Into::into)
        .unwrap_or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR")
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/target").into())
                .join("criterion")
        })
}
