//! The parser corpora, shared by `benches/parser.rs` and `benches/allocs.rs`, plus the
//! peers' decode loops and a bare frame walker, so both binaries measure the same code.
//!
//! Each corpus is one buffer of back-to-back complete replies; every decoder is asked for
//! them one by one, as a client reading a stream would.
#![allow(dead_code)]

use std::hint::black_box;

/// One corpus: a name, the bytes, how many top-level frames they hold, RESP3 or not.
pub struct Corpus {
    pub name: &'static str,
    pub bytes: Vec<u8>,
    pub frames: usize,
    pub resp3: bool,
}

fn bulk(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(format!("${}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Deterministic filler bytes (no CR/LF needed: bulk strings are binary safe anyway).
fn filler(len: usize, seed: usize) -> Vec<u8> {
    (0..len).map(|i| b'a' + ((i + seed) % 26) as u8).collect()
}

fn small(n: usize) -> Corpus {
    let mut bytes = Vec::with_capacity(n * 7);
    for i in 0..n {
        if i % 2 == 0 {
            bytes.extend_from_slice(b"+OK\r\n");
        } else {
            bytes.extend_from_slice(b":12345\r\n");
        }
    }
    Corpus {
        name: "small_1M",
        bytes,
        frames: n,
        resp3: false,
    }
}

fn bulks(name: &'static str, size: usize, n: usize) -> Corpus {
    let mut bytes = Vec::new();
    for i in 0..n {
        bulk(&mut bytes, &filler(size, i));
    }
    Corpus {
        name,
        bytes,
        frames: n,
        resp3: false,
    }
}

fn mget(n: usize) -> Corpus {
    let mut bytes = Vec::new();
    for f in 0..n {
        bytes.extend_from_slice(b"*100\r\n");
        for i in 0..100 {
            bulk(&mut bytes, &filler(32, f + i));
        }
    }
    Corpus {
        name: "mget_100x32",
        bytes,
        frames: n,
        resp3: false,
    }
}

/// `%4` of `%4` of `%4` whose leaves alternate a 12-byte bulk string and an integer:
/// 64 leaves, 84 keys, 21 maps per frame.
fn maps(n: usize) -> Corpus {
    fn level(out: &mut Vec<u8>, depth: usize, seed: usize) {
        out.extend_from_slice(b"%4\r\n");
        for k in 0..4 {
            bulk(out, format!("field:{depth}:{k}").as_bytes());
            if depth == 1 {
                if k % 2 == 0 {
                    bulk(out, &filler(12, seed + k));
                } else {
                    out.extend_from_slice(format!(":{}\r\n", 1000 + seed + k).as_bytes());
                }
            } else {
                level(out, depth - 1, seed + k);
            }
        }
    }
    let mut bytes = Vec::new();
    for f in 0..n {
        level(&mut bytes, 3, f);
    }
    Corpus {
        name: "map3_resp3",
        bytes,
        frames: n,
        resp3: true,
    }
}

/// All corpora, each a few MB.
pub fn all() -> Vec<Corpus> {
    vec![
        small(1_000_000),
        bulks("bulk_16B", 16, 200_000),
        bulks("bulk_1KiB", 1024, 8_000),
        bulks("bulk_64KiB", 64 * 1024, 128),
        mget(2_000),
        maps(4_000),
    ]
}

// ---------------------------------------------------------------------------------------
// The decode loops. Each decodes every frame of `c` one by one and returns the count (and
// passes every value through `black_box` so nothing is optimised away).

/// Every complete value the decoder holds, built as `Value`s.
#[inline(always)]
fn drain_values(d: &mut valkit::resp::__internals::Decoder) -> usize {
    let mut n = 0;
    while let Some(v) = d.next_value().expect("valkit decoder") {
        black_box(v);
        n += 1;
    }
    n
}

/// Every complete reply the decoder holds, read in place (`next_reply`).
#[inline(always)]
fn drain_replies(d: &mut valkit::resp::__internals::Decoder) -> usize {
    let mut n = 0;
    while let Some(r) = d.next_reply().expect("valkit decoder") {
        black_box(r);
        n += 1;
    }
    n
}

/// valkit's incremental `Decoder` (what a `Connection` uses for raw replies and pipelines),
/// fed the whole buffer, building `Value`s.
#[inline(never)]
pub fn valkit_decoder(d: &mut valkit::resp::__internals::Decoder, c: &Corpus) -> usize {
    d.feed(&c.bytes);
    drain_values(d)
}

/// valkit's `Decoder` handed the buffer as a shared `valkit::Bytes` (built outside
/// the timed loop, like `rp_bytes`'s `bytes::Bytes`): no copy into the decoder, so this is
/// the parse alone, the bulk strings being views of that buffer.
#[inline(never)]
pub fn valkit_decoder_shared(
    d: &mut valkit::resp::__internals::Decoder,
    shared: &valkit::Bytes,
    frames: usize,
) -> usize {
    d.feed_bytes(shared.clone());
    let n = drain_values(d);
    assert_eq!(n, frames);
    n
}

/// valkit's `Decoder::next_reply` (what the connection uses for typed commands): each reply
/// validated and indexed in place, nothing built; handed the buffer as `valkit_decoder_shared`
/// is (no copy: the parse alone).
#[inline(never)]
pub fn valkit_reply(
    d: &mut valkit::resp::__internals::Decoder,
    shared: &valkit::Bytes,
    frames: usize,
) -> usize {
    d.feed_bytes(shared.clone());
    let n = drain_replies(d);
    assert_eq!(n, frames);
    n
}

/// `valkit_reply` fed by copying the corpus into the decoder's buffer first (as `feed`
/// does; a socket read does the same copy in the kernel).
#[inline(never)]
pub fn valkit_reply_fed(d: &mut valkit::resp::__internals::Decoder, c: &Corpus) -> usize {
    d.feed(&c.bytes);
    drain_replies(d)
}

/// valkit's one-shot `decode`, advancing through the buffer.
#[inline(never)]
pub fn valkit_decode(lim: &valkit::resp::Limits, c: &Corpus) -> usize {
    let mut pos = 0;
    let mut n = 0;
    while pos < c.bytes.len() {
        let (v, used) = valkit::resp::__internals::decode(&c.bytes[pos..], lim)
            .expect("valkit decode")
            .expect("complete");
        black_box(v);
        pos += used;
        n += 1;
    }
    n
}

/// The `redis` crate's `Parser` reading the buffer as a stream (what its sync client does).
#[inline(never)]
pub fn redis_parser(c: &Corpus) -> usize {
    let mut p = redis::Parser::new();
    let mut r: &[u8] = &c.bytes;
    for _ in 0..c.frames {
        black_box(p.parse_value(&mut r).expect("redis parser"));
    }
    c.frames
}

/// redis-protocol's owned decoder (`OwnedFrame`).
#[inline(never)]
pub fn rp_owned(c: &Corpus) -> usize {
    let mut pos = 0;
    let mut n = 0;
    while pos < c.bytes.len() {
        let used = if c.resp3 {
            let (f, used) = redis_protocol::resp3::decode::complete::decode(&c.bytes[pos..])
                .expect("rp3")
                .expect("complete");
            black_box(f);
            used
        } else {
            let (f, used) = redis_protocol::resp2::decode::decode(&c.bytes[pos..])
                .expect("rp2")
                .expect("complete");
            black_box(f);
            used
        };
        pos += used;
        n += 1;
    }
    n
}

/// redis-protocol's zero-copy range decoder (`RangeFrame`: offsets into the buffer).
#[inline(never)]
pub fn rp_range(c: &Corpus) -> usize {
    let mut pos = 0;
    let mut n = 0;
    while pos < c.bytes.len() {
        let used = if c.resp3 {
            let (f, used) = redis_protocol::resp3::decode::complete::decode_range(&c.bytes[pos..])
                .expect("rp3")
                .expect("complete");
            black_box(f);
            used
        } else {
            let (f, used) = redis_protocol::resp2::decode::decode_range(&c.bytes[pos..])
                .expect("rp2")
                .expect("complete");
            black_box(f);
            used
        };
        pos += used;
        n += 1;
    }
    n
}

/// redis-protocol's zero-copy `Bytes` decoder (`BytesFrame`: slices sharing the buffer).
#[inline(never)]
pub fn rp_bytes(buf: &bytes::Bytes, resp3: bool) -> usize {
    let mut pos = 0;
    let mut n = 0;
    while pos < buf.len() {
        let rest = buf.slice(pos..);
        let used = if resp3 {
            let (f, used) = redis_protocol::resp3::decode::complete::decode_bytes(&rest)
                .expect("rp3")
                .expect("complete");
            black_box(f);
            used
        } else {
            let (f, used) = redis_protocol::resp2::decode::decode_bytes(&rest)
                .expect("rp2")
                .expect("complete");
            black_box(f);
            used
        };
        pos += used;
        n += 1;
    }
    n
}

/// A bare frame walker: finds where each frame ends, builds nothing, allocates nothing.
/// Trusts its input (benchmark corpora only). A ceiling for any decoder.
#[inline(never)]
pub fn walk(buf: &[u8]) -> usize {
    let mut pos = 0;
    let mut n = 0;
    while pos < buf.len() {
        pos = skip_frame(buf, pos);
        n += 1;
    }
    black_box(n)
}

fn skip_frame(buf: &[u8], mut i: usize) -> usize {
    // Items still to skip: aggregates add their children.
    let mut need = 1usize;
    while need > 0 {
        need -= 1;
        let t = buf[i];
        let mut cr = i + 1;
        while buf[cr] != b'\r' {
            cr += 1;
        }
        let line = &buf[i + 1..cr];
        i = cr + 2;
        let len = || -> i64 {
            if line.first() == Some(&b'-') {
                return -1;
            }
            line.iter()
                .fold(0i64, |acc, &d| acc * 10 + i64::from(d - b'0'))
        };
        match t {
            b'$' | b'!' | b'=' => {
                let n = len();
                if n >= 0 {
                    i += n as usize + 2;
                }
            }
            b'*' | b'~' | b'>' => need += len().max(0) as usize,
            b'%' => need += 2 * len().max(0) as usize,
            b'|' => need += 2 * len().max(0) as usize + 1,
            _ => {}
        }
    }
    i
}
