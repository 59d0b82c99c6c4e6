//! Maps keyed by a node's address (`host:port`), looked up on every cluster command (its
//! pool, its breaker): hashed with FNV-1a instead of the standard SipHash, which cost about
//! 170 instructions per lookup of a 15-byte address. The keys are the addresses of the
//! cluster's own nodes, a handful, so a hash chosen for speed rather than resistance to
//! crafted collisions costs nothing in safety.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A map from a node address to `V`, with [`AddrHasher`].
pub(crate) type AddrMap<V> = HashMap<String, V, BuildHasherDefault<AddrHasher>>;

/// FNV-1a, 64 bits.
#[derive(Debug)]
pub(crate) struct AddrHasher(u64);

impl Default for AddrHasher {
    fn default() -> AddrHasher {
        AddrHasher(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for AddrHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_reference_values_and_lookups() {
        let h = |s: &[u8]| {
            let mut x = AddrHasher::default();
            x.write(s);
            x.finish()
        };
        // The published FNV-1a 64 test vectors.
        assert_eq!(h(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(h(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(h(b"foobar"), 0x8594_4171_f739_67e8);
        let mut m: AddrMap<u16> = AddrMap::default();
        for port in 7000..7100u16 {
            m.insert(format!("127.0.0.1:{port}"), port);
        }
        for port in 7000..7100u16 {
            assert_eq!(m.get(format!("127.0.0.1:{port}").as_str()), Some(&port));
        }
        assert_eq!(m.get("127.0.0.1:7100"), None);
    }
}
