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

/// A name of 1 to 16 bytes, upper-cased, as a big-endian `u128` padded with zero bytes:
/// packed names order as the names do. `None` for other lengths and for names holding a
/// zero byte (which would pack like a shorter name).
#[inline]
fn pack(name: &[u8]) -> Option<u128> {
    if name.is_empty() || name.len() > 16 {
        return None;
    }
    let mut key = 0u128;
    for &b in name {
        if b == 0 {
            return None;
        }
        key = (key << 8) | u128::from(b.to_ascii_uppercase());
    }
    Some(key << (8 * (16 - name.len())))
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
    let mut s = slot(key);
    loop {
        let row = usize::from(INDEX[s]);
        if row == 0 {
            return None;
        }
        if PACKED[row - 1] == key {
            return Some(row - 1);
        }
        s = (s + 1) % SLOTS;
    }
}
