//! Allocations per reply, per corpus and parser, counted by a global allocator.
//!
//! `cargo bench --bench allocs`. A separate binary so the counting allocator never sits
//! under the timed benchmarks in `benches/parser.rs`. Prints a table and writes
//! `target/criterion/parser-allocs.json`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[path = "common/corpora.rs"]
mod corpora;

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static REALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY-free: only forwards to the system allocator and counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(l.size() as u64, Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(l.size() as u64, Relaxed);
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        REALLOCS.fetch_add(1, Relaxed);
        unsafe { System.realloc(p, l, new) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn count(f: impl FnOnce() -> usize) -> (u64, u64, usize) {
    let (a, r) = (ALLOCS.load(Relaxed), REALLOCS.load(Relaxed));
    let n = f();
    (ALLOCS.load(Relaxed) - a, REALLOCS.load(Relaxed) - r, n)
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let corpora = corpora::all();
    let lim = valkit::resp::Limits::default();
    let mut json = Vec::new();
    println!(
        "{:<12} {:<22} {:>14} {:>14}",
        "corpus", "parser", "allocs/reply", "reallocs/reply"
    );
    for c in &corpora {
        let shared = bytes::Bytes::from(c.bytes.clone());
        let vshared = valkit::Bytes::from(c.bytes.clone());
        let mut dec = valkit::resp::__internals::Decoder::new();
        // Warm the decoder once (its buffer is reused by a connection).
        corpora::valkit_decoder(&mut dec, c);
        let runs: Vec<(&str, (u64, u64, usize))> = vec![
            (
                "valkit_decoder",
                count(|| corpora::valkit_decoder(&mut dec, c)),
            ),
            (
                "valkit_decoder_shared",
                count(|| corpora::valkit_decoder_shared(&mut dec, &vshared, c.frames)),
            ),
            (
                "valkit_reply",
                count(|| corpora::valkit_reply(&mut dec, &vshared, c.frames)),
            ),
            (
                "valkit_reply_fed",
                count(|| corpora::valkit_reply_fed(&mut dec, c)),
            ),
            ("valkit_decode", count(|| corpora::valkit_decode(&lim, c))),
            ("redis_parser", count(|| corpora::redis_parser(c))),
            ("rp_owned", count(|| corpora::rp_owned(c))),
            ("rp_range", count(|| corpora::rp_range(c))),
            ("rp_bytes", count(|| corpora::rp_bytes(&shared, c.resp3))),
            ("walker", count(|| corpora::walk(&c.bytes))),
        ];
        for (name, (allocs, reallocs, n)) in runs {
            assert_eq!(n, c.frames, "{name} on {}", c.name);
            let per = allocs as f64 / n as f64;
            let rper = reallocs as f64 / n as f64;
            println!("{:<12} {:<22} {:>14.3} {:>14.3}", c.name, name, per, rper);
            json.push(format!(
                "\"{}/{}\": {{\"allocs_per_reply\": {per:.4}, \"reallocs_per_reply\": {rper:.4}}}",
                c.name, name
            ));
        }
    }
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/target").into())
        .join("criterion");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(
        dir.join("parser-allocs.json"),
        format!("{{\n{}\n}}\n", json.join(",\n")),
    );
}
