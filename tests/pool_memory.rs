//! Process-level pool measurements, alone in their own test binary so that no other test
//! allocates or starts threads meanwhile: the memory of an idle pool of 50 connections,
//! and the maintenance thread going away with the pool. Each server kind is measured in a
//! fresh child process (this binary run again on the ignored `measure_one_kind`), so the
//! second kind does not reuse memory the first one freed.
#![cfg(feature = "testkit")]

mod support;

use std::time::{Duration, Instant};

use support::{key, kinds, shared};
use valkit::{cmd, Execute, Pool, PoolOptions};

/// Resident set size of this process, from `/proc/self/status` (Linux).
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024
}

/// Threads of this process named like the pool's maintenance thread (the kernel keeps
/// the first 15 bytes of a thread name).
fn reaper_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| "valkit-pool-reaper".starts_with(name.trim()))
        .count()
}

/// The number of reaper threads once it equals `want`, or whatever it is after 5 s. A new
/// thread takes its name only once it first runs, and a pool's drop waits at most 250 ms
/// for its thread: on a loaded machine either can lag behind the code that caused it.
fn reaper_threads_settled(want: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let n = reaper_threads();
        if n == want || Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

const MIB: u64 = 1024 * 1024;

#[test]
fn idle_pool_of_50_is_small_and_its_thread_stops_with_it() {
    for kind in kinds() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "measure_one_kind",
                "--exact",
                "--include-ignored",
                "--nocapture",
            ])
            .env("VALKIT_ONLY", kind.name())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        eprint!("{stderr}");
        assert!(
            out.status.success(),
            "{kind:?}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(
            stderr.contains("idle pool of 50"),
            "the child measured nothing"
        );
    }
}

#[test]
#[ignore = "run in a child process by idle_pool_of_50_is_small_and_its_thread_stops_with_it"]
fn measure_one_kind() {
    for kind in kinds() {
        let server = shared(kind);
        // Warm up the allocator, the test kit and the lazily built statics first.
        drop(Pool::new(server.config(), PoolOptions::new().connect_on_build(true)).unwrap());
        // The warm-up pool's thread is gone (this child process runs nothing else).
        let threads_before = reaper_threads_settled(0);
        assert_eq!(threads_before, 0, "the warm-up pool's thread outlived it");

        let rss0 = rss_bytes();
        let opts = PoolOptions::new()
            .max_size(50)
            .min_idle(50)
            .connect_on_build(true);
        let pool = Pool::new(server.config(), opts).unwrap();
        assert_eq!(pool.stats().idle, 50);
        // Use every connection once, as a busy moment would.
        let held: Vec<_> = (0..50).map(|_| pool.get().unwrap()).collect();
        for c in &held {
            c.exec(&cmd("PING")).unwrap();
        }
        drop(held);
        let typical = rss_bytes().saturating_sub(rss0);

        // Worst case: a 60 KiB reply through every connection.
        let k = key("big");
        pool.exec(&cmd("SET").arg(&k).arg(vec![b'x'; 60 * 1024]))
            .unwrap();
        let held: Vec<_> = (0..50).map(|_| pool.get().unwrap()).collect();
        for c in &held {
            c.exec(&cmd("GET").arg(&k)).unwrap();
        }
        drop(held);
        let worst = rss_bytes().saturating_sub(rss0);
        eprintln!(
            "{kind:?}: idle pool of 50: +{} KiB RSS after PING on each, +{} KiB after a \
             60 KiB reply on each",
            typical / 1024,
            worst / 1024
        );
        // Deep pipelines through every connection: each keeps its grown write and read
        // buffers for the next batch (at most 256 KiB each; let go after 16 small calls).
        let small = key("small");
        pool.exec(&cmd("SET").arg(&small).arg("v")).unwrap();
        let held: Vec<_> = (0..50).map(|_| pool.get().unwrap()).collect();
        for c in &held {
            let mut p = valkit::pipe();
            for _ in 0..4096 {
                p = p.cmd(cmd("GET").arg(&small));
            }
            assert_eq!(c.exec_pipeline(&p).unwrap().len(), 4096);
        }
        drop(held);
        let deep = rss_bytes().saturating_sub(rss0);
        eprintln!(
            "{kind:?}: idle pool of 50: +{} KiB RSS after a pipeline of 4096 GETs on each",
            deep / 1024
        );
        assert!(deep < 50 * 512 * 1024 + 5 * MIB, "{} KiB", deep / 1024);

        assert_eq!(pool.stats().open, 50);
        assert!(typical < 5 * MIB, "{} KiB", typical / 1024);
        // Replies are read straight into the decoder, which releases buffers over 32 KiB
        // once drained: big replies do not stay resident on idle connections.
        assert!(worst < 5 * MIB, "after big replies: {} KiB", worst / 1024);

        assert_eq!(
            reaper_threads_settled(threads_before + 1),
            threads_before + 1
        );
        let t = Instant::now();
        drop(pool);
        assert!(
            t.elapsed() < Duration::from_millis(300),
            "{:?}",
            t.elapsed()
        );
        assert_eq!(reaper_threads(), threads_before, "joined on drop");
    }
}
