//! Deterministic cost of `Decoder::next_reply` per reply, for `valgrind --tool=callgrind`:
//!
//! ```sh
//! cargo build --profile bench --all-features --example scan_instructions
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/scan_instructions 2 ok
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/scan_instructions 4 ok
//! ```
//!
//! (total at 4 passes - total at 2 passes) / 400,000 = instructions per reply, setup cancelled.
//! Corpora: `ok` (`+OK`), `int` (`:12345`), `bulk` (16-byte bulk strings), anything else the
//! small corpus of the parser bench (`+OK` and `:12345` alternating).
use std::hint::black_box;
fn main() {
    let passes: usize = std::env::args().nth(1).map_or(2, |a| a.parse().unwrap());
    let kind = std::env::args().nth(2).unwrap_or_default();
    let mut bytes = Vec::new();
    for i in 0..200_000 {
        match kind.as_str() {
            "ok" => bytes.extend_from_slice(b"+OK\r\n"),
            "int" => bytes.extend_from_slice(b":12345\r\n"),
            "bulk" => bytes.extend_from_slice(b"$16\r\nabcdefghijklmnop\r\n"),
            _ => {
                if i % 2 == 0 {
                    bytes.extend_from_slice(b"+OK\r\n")
                } else {
                    bytes.extend_from_slice(b":12345\r\n")
                }
            }
        }
    }
    let shared = valkit::Bytes::from(bytes);
    let mut d = valkit::resp::__internals::Decoder::new();
    for _ in 0..passes {
        d.feed_bytes(shared.clone());
        let mut n = 0;
        while let Some(r) = d.next_reply().unwrap() {
            black_box(r);
            n += 1;
        }
        assert_eq!(n, 200_000);
    }
}
