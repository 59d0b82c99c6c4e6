//! Finding a command name's row in [`TABLE`] without allocating: one hash of the name
//! packed into a `u128` and, almost always, one or two probes. This runs once per command,
//! when its name is added to the `Cmd`.

use super::TABLE;

/// The longest name in [`TABLE`]: longer names are not looked up.
const MAX_LEN: usize = max_len();

const fn max_len() -> usize {
    let mut max = 0;
    let mut k = 0;
    while k < TABLE.len() {
        if TABLE[k].name.len() > max {
            max = TABLE[k].name.len();
        }
        k += 1;
    }
    max
}

/// The row of `name` (upper case) in [`TABLE`]; a compile-time error when missing.
pub(crate) const fn index_of(name: &str) -> usize {
    let mut k = 0;
    while k < TABLE.len() {
        let (a, b) = (TABLE[k].name.as_bytes(), name.as_bytes());
        if a.len() == b.len() {
            let mut j = 0;
            while j < a.len() && a[j] == b[j] {
                j += 1;
            }
            if j == a.len() {
                return k;
            }
        }
        k += 1;
    }
    panic!("not a command of the table")
}

/// Every name of [`TABLE`] packed into one `u128` (see [`pack`]), in the same order: a
/// lookup hashes and compares integers, not strings.
pub(super) const PACKED: [u128; TABLE.len()] = packed();

const _: () = assert!(MAX_LEN <= 16, "names are packed into 16 bytes");

const fn packed() -> [u128; TABLE.len()] {
    let mut out = [0; TABLE.len()];
    let mut k = 0;
    while k < TABLE.len() {
        let name = TABLE[k].name.as_bytes();
        let mut key = 0u128;
        let mut j = 0;
        while j < 16 {
            let b = if j < name.len() { name[j] } else { 0 };
            key = (key << 8) | b as u128;
            j += 1;
        }
        out[k] = key;
        k += 1;
    }
    out
}

/// A name of 1 to 16 bytes, ASCII upper-cased, as a big-endian `u128` padded with zero
/// bytes: packed names order as the names do. `None` for other lengths. (A name holding a
/// zero byte packs like a shorter name: [`index_of_name`] compares lengths too.) The bytes
/// are read with at most two overlapping loads per half and upper-cased eight at a time.
#[inline]
fn pack(name: &[u8]) -> Option<u128> {
    let n = name.len();
    let be64 = |b: &[u8]| u64::from_be_bytes(b.try_into().unwrap_or([0; 8]));
    let be32 = |b: &[u8]| u64::from(u32::from_be_bytes(b.try_into().unwrap_or([0; 4])));
    let (hi, lo) = if n >= 8 {
        if n > 16 {
            return None;
        }
        let lo = if n > 8 {
            upper(be64(&name[n - 8..]) << (8 * (16 - n)))
        } else {
            0
        };
        (be64(&name[..8]), lo)
    } else if n >= 4 {
        (
            be32(&name[..4]) << 32 | be32(&name[n - 4..]) << (8 * (8 - n)),
            0,
        )
    } else if n > 0 {
        let at = |i: usize| u64::from(name[i]) << (56 - 8 * i);
        (at(0) | at(n / 2) | at(n - 1), 0)
    } else {
        return None;
    };
    Some(u128::from(upper(hi)) << 64 | u128::from(lo))
}

/// `x` with every byte from `a` to `z` upper-cased (other bytes, zero and non-ASCII ones
/// included, unchanged).
#[inline]
const fn upper(x: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let low7 = x & (0x7F * ONES);
    // Per byte (no carry crosses a byte): the top bit is set when low7 >= 'a' (> 'z').
    let from_a = low7 + (0x80 - b'a' as u64) * ONES;
    let past_z = low7 + (0x80 - b'z' as u64 - 1) * ONES;
    let lower = from_a & !past_z & !x & (0x80 * ONES);
    x ^ (lower >> 2)
}

/// The length of every name of [`TABLE`], in the same order.
const LENS: [u8; TABLE.len()] = lens();

const fn lens() -> [u8; TABLE.len()] {
    let mut out = [0; TABLE.len()];
    let mut k = 0;
    while k < TABLE.len() {
        out[k] = TABLE[k].name.len() as u8;
        k += 1;
    }
    out
}

/// Slots of the open-addressing table over [`PACKED`] (a power of two, under half full).
const SLOTS: usize = 512;

const _: () = assert!(TABLE.len() * 2 < SLOTS && TABLE.len() < u16::MAX as usize);

/// Row + 1 of [`TABLE`] at each slot (0: empty), placed by [`slot`] with linear probing.
const INDEX: [u16; SLOTS] = index();

/// Where a packed name's probe sequence starts.
#[inline]
const fn slot(key: u128) -> usize {
    let x = (key as u64) ^ ((key >> 64) as u64);
    (x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - SLOTS.trailing_zeros())) as usize
}

const fn index() -> [u16; SLOTS] {
    let mut t = [0u16; SLOTS];
    let mut k = 0;
    while k < TABLE.len() {
        let mut s = slot(PACKED[k]);
        while t[s] != 0 {
            s = (s + 1) % SLOTS;
        }
        t[s] = (k + 1) as u16;
        k += 1;
    }
    t
}

/// The row of a command name (any case) in [`TABLE`], without allocating.
#[inline]
pub(crate) fn index_of_name(name: &[u8]) -> Option<usize> {
    if name.len() > MAX_LEN {
        return None;
    }
    let key = pack(name)?;
    debug_assert_eq!(Some(key), pack_slowly(name));
    let mut s = slot(key);
    loop {
        let row = usize::from(INDEX[s]);
        if row == 0 {
            return None;
        }
        if PACKED[row - 1] == key && usize::from(LENS[row - 1]) == name.len() {
            return Some(row - 1);
        }
        s = (s + 1) % SLOTS;
    }
}

/// Set in what a `Cmd` keeps ([`row_of_name`]) when the row has a session effect, a
/// refusal or subcommand rows: the connection's checks before each send test this bit and
/// go no further for GET, SET and most commands.
pub(crate) const EFFECTS: u16 = 0x8000;

const _: () = assert!(TABLE.len() < EFFECTS as usize);

/// [`EFFECTS`] for each row of [`TABLE`], in the same order.
const ROW_EFFECTS: [u16; TABLE.len()] = row_effects();

const fn row_effects() -> [u16; TABLE.len()] {
    let mut out = [0; TABLE.len()];
    let mut k = 0;
    while k < TABLE.len() {
        let row = &TABLE[k];
        if row.session.is_some() || row.refusal.is_some() || !row.subcommands.is_empty() {
            out[k] = EFFECTS;
        }
        k += 1;
    }
    out
}

/// Row + 1 of a command name in [`TABLE`] (0: not in the table), with [`EFFECTS`] set
/// for a row that has them: what a `Cmd` keeps (set by `cmd(name)` and by the first
/// `Cmd::add_arg`).
#[inline(never)]
pub(crate) fn row_of_name(name: &[u8]) -> u16 {
    index_of_name(name).map_or(0, |k| (k as u16 + 1) | ROW_EFFECTS[k])
}

/// [`row_of_name`] for a name the table holds (upper case), found by the compiler: a
/// compile-time error when missing.
pub(crate) const fn row_of_known(name: &str) -> u16 {
    let k = index_of(name);
    (k as u16 + 1) | ROW_EFFECTS[k]
}

/// [`pack`], one byte at a time (what it must equal; checked in debug builds).
fn pack_slowly(name: &[u8]) -> Option<u128> {
    if name.is_empty() || name.len() > 16 {
        return None;
    }
    let mut key = 0u128;
    for &b in name {
        key = (key << 8) | u128::from(b.to_ascii_uppercase());
    }
    Some(key << (8 * (16 - name.len())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_reads_every_length_and_upper_cases_ascii_only() {
        let bytes: Vec<u8> = (0u8..=255).collect();
        for n in 0..=18 {
            for start in (0..bytes.len() - n).step_by(7) {
                let name = &bytes[start..start + n];
                assert_eq!(pack(name), pack_slowly(name), "{name:?}");
            }
            let name = &b"zrevrangebyscore_x"[..n];
            assert_eq!(pack(name), pack_slowly(name), "{name:?}");
        }
        assert_eq!(
            upper(u64::from_be_bytes(*b"`az{@AZ\xe1")),
            u64::from_be_bytes(*b"`AZ{@AZ\xe1")
        );
        // A zero byte packs like a shorter name, but is not that name.
        assert_eq!(pack(b"GET\0"), pack(b"GET"));
        assert_eq!(index_of_name(b"GET\0"), None);
        assert_eq!(index_of_name(b"get"), Some(index_of("GET")));
        for name in ["GET", "SET", "CLIENT", "SUBSCRIBE", "SELECT", "XREADGROUP"] {
            assert_eq!(row_of_known(name), row_of_name(name.as_bytes()), "{name}");
        }
    }
}
