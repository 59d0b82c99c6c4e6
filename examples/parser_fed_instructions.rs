//! Deterministic cost per reply of the parser corpora of `benches/parser_rounds.rs`, fed
//! alike, for `valgrind --tool=callgrind`:
//!
//! ```sh
//! cargo build --profile bench --all-features --example parser_fed_instructions
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/parser_fed_instructions reply bulk_16B 1   # then 3
//! ```
//!
//! Arguments: the variant (`reply`: `feed` + `next_reply`, as `reply_fed`; `values`: `feed` +
//! `next_value`; `redis`: the `redis` crate's `Parser`; `memcpy`), a corpus name from
//! `benches/common/corpora.rs` (`small_1M`, `bulk_16B`, `bulk_1KiB`, `bulk_64KiB`,
//! `mget_100x32`, `map3_resp3`) and a number of passes over it. (total at 3 passes - total
//! at 1 pass) / (2 x frames) = instructions per reply, the setup (building the corpora)
//! cancelled. The loops are the benchmark's own (`corpora::valkit_reply_fed` ...).
use std::hint::black_box;

#[path = "../benches/common/corpora.rs"]
mod corpora;

fn main() {
    let mut args = std::env::args().skip(1);
    let variant = args.next().unwrap_or_else(|| "reply".into());
    let name = args.next().unwrap_or_else(|| "bulk_16B".into());
    let passes: usize = args.next().map_or(1, |a| a.parse().expect("passes"));
    let corpus = corpora::all()
        .into_iter()
        .find(|c| c.name == name)
        .expect("corpus name");
    let mut dec = valkit::resp::__internals::Decoder::new();
    let mut dst = vec![0u8; corpus.bytes.len()];
    for _ in 0..passes {
        let n = match variant.as_str() {
            "reply" => corpora::valkit_reply_fed(&mut dec, &corpus),
            "values" => corpora::valkit_decoder(&mut dec, &corpus),
            "redis" => corpora::redis_parser(&corpus),
            "memcpy" => {
                dst.copy_from_slice(black_box(&corpus.bytes));
                black_box(&mut dst);
                corpus.frames
            }
            other => panic!("unknown variant {other}"),
        };
        assert_eq!(n, corpus.frames);
    }
    println!("{} frames per pass", corpus.frames);
}
