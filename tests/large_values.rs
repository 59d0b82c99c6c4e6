//! Memory for large values (issue 9, item 14): sending or receiving a value must not hold
//! it more than once (at most 1.25x its size plus a constant). Measured by counting the
//! bytes this thread has allocated and not freed (the connection does its I/O on the
//! calling thread), so the figure is exact and other tests cannot disturb it. Peak RSS
//! for 100 MB and 500 MB values: `examples/large_value_rss.rs`, figures in
//! docs/benchmarks.md.
#![cfg(feature = "testkit")]

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use support::{key, kinds, shared};
use valkit::{cmd, Commands, Connection, Execute, FromValue};

struct Counting;

thread_local! {
    /// Bytes allocated by this thread and not freed yet, and the most seen since reset.
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        System.alloc_zeroed(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Run `f`; return its result and the most this thread held during it beyond what it held
/// before (bytes).
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(before));
    let out = f();
    let peak = PEAK.with(Cell::get);
    (out, (peak - before).max(0) as usize)
}

const N: usize = 100_000_000;
/// The constant part: command and read buffers, the pool of small allocations.
const SLACK: usize = 2 * 1024 * 1024;

fn within(peak: usize, times_quarter: usize, what: &str) {
    let bound = N / 4 * times_quarter + SLACK;
    eprintln!(
        "{what}: peak {:.1} MB beyond the baseline ({:.2}x the value)",
        peak as f64 / 1e6,
        peak as f64 / N as f64
    );
    assert!(
        peak <= bound,
        "{what}: {peak} bytes at the peak, over {bound} ({}x the value + 2 MiB)",
        times_quarter as f64 / 4.0
    );
}

#[test]
fn a_100_mb_value_is_held_once_when_sent_and_when_received() {
    for kind in kinds() {
        let conn = Connection::open(&shared(kind).config()).unwrap();
        let k = key("large_value");
        let value = vec![b'v'; N];
        let sample =
            |v: &[u8]| v.len() == N && v[0] == b'v' && v[N / 2] == b'v' && v[N - 1] == b'v';

        // Sent by value: the command takes the vector itself; nothing more than a constant.
        let (r, peak) = peak_during(|| conn.set(&k, value));
        r.unwrap();
        within(peak, 0, &format!("{kind:?} set (owned value)"));

        // Received as a `Vec<u8>`: the read buffer becomes the vector.
        let (got, peak) = peak_during(|| conn.get::<_, Option<Vec<u8>>>(&k).unwrap().unwrap());
        within(peak, 5, &format!("{kind:?} get"));
        assert!(sample(&got), "{kind:?}: value intact");

        // Sent by reference: one copy (into the command), none into the write buffer.
        let (r, peak) = peak_during(|| conn.set(&k, &got));
        r.unwrap();
        within(peak, 5, &format!("{kind:?} set (borrowed value)"));
        drop(got);

        // Received as a `Value`, then converted: no copy either.
        let (got, peak) =
            peak_during(|| Vec::<u8>::from_value(conn.exec(&cmd("GET").arg(&k)).unwrap()).unwrap());
        within(peak, 5, &format!("{kind:?} exec GET + from_value"));
        assert!(sample(&got), "{kind:?}: value intact");
        drop(got);
        conn.del(&k).unwrap();
        assert!(!conn.is_broken());
    }
}

/// Large bulk strings read straight into their own buffers (past the first reads), over
/// RESP2 and RESP3: alone, in pipelines (typed and raw, between small replies) and inside
/// an array (MGET, which takes the ordinary path); every value intact and the connection
/// in step. Receiving a 1 MiB value as a `Vec<u8>` holds it once.
#[test]
fn large_bulks_alone_in_pipelines_and_in_arrays_over_both_protocols() {
    use valkit::{pipe, Protocol, Value};
    let sizes = [16 * 1024 - 9, 16 * 1024, 64 * 1024 + 1, 300_000, 1 << 20];
    for kind in kinds() {
        for protocol in [Protocol::Resp2, Protocol::Resp3] {
            let mut cfg = shared(kind).config();
            cfg.protocol = protocol;
            let conn = Connection::open(&cfg).unwrap();
            let keys: Vec<String> = sizes.iter().map(|n| key(&format!("big{n}"))).collect();
            let values: Vec<Vec<u8>> = sizes
                .iter()
                .map(|&n| (0..n).map(|i| (i % 253) as u8).collect())
                .collect();
            for (k, v) in keys.iter().zip(&values) {
                conn.set(k, v.as_slice()).unwrap();
            }
            let small = key("small");
            conn.set(&small, "s").unwrap();
            for (k, v) in keys.iter().zip(&values) {
                let (got, peak) = peak_during(|| conn.get::<_, Option<Vec<u8>>>(k).unwrap());
                assert!(
                    got.as_ref() == Some(v),
                    "{kind:?} {protocol:?}: GET {}",
                    v.len()
                );
                if v.len() == 1 << 20 {
                    assert!(
                        peak < v.len() + v.len() / 4 + 64 * 1024,
                        "{kind:?} {protocol:?}: 1 MiB GET held {peak} bytes at the peak"
                    );
                }
                let got = conn.exec(&cmd("GET").arg(k)).unwrap();
                assert!(got == Value::Bulk(v.clone().into()), "{kind:?}: exec GET");
            }
            // A pipeline: large, small, large ... typed and raw.
            let mut p = pipe();
            for k in &keys {
                p = p.get(k).get(&small);
            }
            let typed: Vec<Option<Vec<u8>>> = p.query(&conn).unwrap();
            let raw = conn.exec_pipeline(&p).unwrap();
            assert_eq!(typed.len(), 2 * keys.len());
            for (i, v) in values.iter().enumerate() {
                assert!(
                    typed[2 * i].as_ref() == Some(v),
                    "{kind:?}: typed pipeline {i}"
                );
                assert_eq!(typed[2 * i + 1].as_deref(), Some(&b"s"[..]));
                assert!(
                    raw[2 * i] == Value::Bulk(v.clone().into()),
                    "raw pipeline {i}"
                );
            }
            // Inside an array.
            let mut mget = cmd("MGET");
            for k in &keys {
                mget = mget.arg(k);
            }
            let got: Vec<Option<Vec<u8>>> = conn.query(&mget).unwrap();
            assert_eq!(got.len(), values.len());
            for (g, v) in got.iter().zip(&values) {
                assert!(g.as_ref() == Some(v), "{kind:?}: MGET");
            }
            assert_eq!(
                conn.exec(&cmd("PING")).unwrap(),
                Value::Simple("PONG".into())
            );
            for k in keys.iter().chain([&small]) {
                conn.del(k).unwrap();
            }
            assert!(!conn.is_broken());
        }
    }
}
