//! Cluster hash slots: CRC16 (XMODEM) of the key, or of its hash tag, modulo 16384.
//!
//! Keys that must live together (a cache entry and its tag set, a queue's lists) share a
//! hash tag: the part between the first `{` and the first `}` after it, when not empty.

/// Number of hash slots in a Valkey/Redis cluster.
pub const SLOTS: u16 = 16384;

/// The cluster hash slot of `key` (0..16384), honouring hash tags.
///
/// ```
/// use valkit::key_slot;
/// assert_eq!(key_slot(b"123456789"), 0x31C3 % 16384);
/// // Keys with the same hash tag share a slot.
/// assert_eq!(key_slot(b"{user:1}:profile"), key_slot(b"{user:1}:sessions"));
/// ```
pub fn key_slot(key: &[u8]) -> u16 {
    if has_open_brace(key) {
        return tagged_slot(key);
    }
    crc16(key) % SLOTS
}

/// Whether `key` has a `{`, looked for 8 bytes at a time.
#[inline]
fn has_open_brace(key: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let mut chunks = key.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        // A zero byte in `x` where the chunk has a `{` (the classic "has a zero byte" test:
        // exact as a yes/no answer).
        let x = u64::from_le_bytes(word) ^ (u64::from(b'{') * ONES);
        if x.wrapping_sub(ONES) & !x & (0x80 * ONES) != 0 {
            return true;
        }
    }
    chunks.remainder().contains(&b'{')
}

/// [`key_slot`] of a key with a `{`: of its hash tag when there is one.
#[inline(never)]
fn tagged_slot(key: &[u8]) -> u16 {
    crc16(hash_tag(key)) % SLOTS
}

/// The part of `key` that is hashed: the hash tag when there is a non-empty one, else
/// the whole key.
pub fn hash_tag(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|&b| b == b'{') {
        if let Some(len) = key[open + 1..].iter().position(|&b| b == b'}') {
            if len > 0 {
                return &key[open + 1..open + 1 + len];
            }
        }
    }
    key
}

/// CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0, as the cluster specification
/// defines it (a byte at a time through a 256-entry table).
pub fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in bytes {
        crc = (crc << 8) ^ CRC16_TABLE[usize::from((crc >> 8) as u8 ^ b)];
    }
    crc
}

/// The CRC of each byte value, as [`crc16_bitwise`] computes it.
const CRC16_TABLE: [u16; 256] = crc16_table();

const fn crc16_table() -> [u16; 256] {
    let mut table = [0u16; 256];
    let mut b = 0;
    while b < 256 {
        let mut crc = (b as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
            bit += 1;
        }
        table[b] = crc;
        b += 1;
    }
    table
}

/// The bit-at-a-time definition the table is built from (kept to check it).
#[cfg(test)]
fn crc16_bitwise(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in bytes {
        crc ^= (b as u16) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_matches_the_specification_check_value() {
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(key_slot(b"123456789"), 0x31C3);
        assert_eq!(crc16(b""), 0);
    }

    #[test]
    fn the_table_matches_the_bitwise_definition() {
        let mut bytes = Vec::new();
        for i in 0..2000u32 {
            bytes.push((i.wrapping_mul(2_654_435_761) >> 13) as u8);
            assert_eq!(crc16(&bytes), crc16_bitwise(&bytes));
        }
        for b in 0..=255u8 {
            assert_eq!(crc16(&[b]), crc16_bitwise(&[b]));
        }
    }

    #[test]
    fn hash_tag_rules() {
        // The first `{` and the first `}` after it.
        assert_eq!(hash_tag(b"{user1000}.following"), b"user1000");
        assert_eq!(hash_tag(b"foo{bar}{zap}"), b"bar");
        assert_eq!(hash_tag(b"foo{{bar}}zap"), b"{bar");
        // An empty tag, or none closed: the whole key.
        assert_eq!(hash_tag(b"foo{}{bar}"), b"foo{}{bar}");
        assert_eq!(hash_tag(b"foo{bar"), b"foo{bar");
        assert_eq!(hash_tag(b"plain"), b"plain");
        assert_eq!(
            key_slot(b"{user1000}.following"),
            key_slot(b"{user1000}.followers")
        );
    }

    #[test]
    fn the_brace_search_finds_every_position() {
        for len in 0..40 {
            let plain = vec![b'z'; len];
            assert!(!has_open_brace(&plain));
            // Bytes next to `{` (0x7b) must not be taken for it.
            let near: Vec<u8> = (0..len).map(|i| [0x7a, 0x7c, 0xfb, 0x00][i % 4]).collect();
            assert!(!has_open_brace(&near));
            for at in 0..len {
                let mut k = plain.clone();
                k[at] = b'{';
                assert!(has_open_brace(&k), "len {len} at {at}");
            }
        }
    }

    #[test]
    fn the_one_pass_slot_is_the_crc_of_the_hash_tag() {
        for key in [
            &b""[..],
            b"plain",
            b"{",
            b"}",
            b"{}",
            b"a{b",
            b"a{}b{c}",
            b"{user1000}.following",
            b"x{y}z",
            b"foo{{bar}}zap",
        ] {
            assert_eq!(key_slot(key), crc16(hash_tag(key)) % SLOTS, "{key:?}");
        }
    }

    #[test]
    fn slots_stay_in_range() {
        for i in 0..10_000u32 {
            assert!(key_slot(format!("key:{i}").as_bytes()) < SLOTS);
        }
    }
}
