//! Key layout: a namespace, a version segment, and helpers for common key shapes.

use std::fmt::Write as _;

/// Where a cache's keys live: `{namespace}:v<version>:<key>`.
///
/// * The namespace sits in a hash tag, so every key of one cache (entries, tag sets,
///   locks) lands in one Valkey Cluster slot: `MGET` in [`get_many`](super::Cache::get_many)
///   and the tag scripts run unchanged on a cluster. Spread load over several namespaces.
/// * The version segment is a setting (think `CACHE_VER`): a cache built with another
///   version sees none of the old entries, which expire by their TTL (or are removed with
///   [`Cache::invalidate_pattern`](super::Cache::invalidate_pattern) on the old version).
///
/// ```
/// use valkit::cache::Keyspace;
/// let ks = Keyspace::new("shop", 3);
/// assert_eq!(ks.entry("user:42"), "{shop}:v3:user:42");
/// assert_eq!(ks.tag("users"), "{shop}:v3#tag:users");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyspace {
    namespace: String,
    version: u32,
    /// `{namespace}:v<version>`, precomputed.
    prefix: String,
    /// With slot groups (see [`Keyspace::with_slot_groups`]): `{namespace:g}:v<version>`
    /// for each group `g`; empty for one group.
    group_prefixes: Vec<String>,
}

impl Keyspace {
    /// A keyspace for `namespace` at `version`. Braces in the namespace are replaced by
    /// `_` so they cannot break the hash tag.
    pub fn new(namespace: &str, version: u32) -> Keyspace {
        let namespace: String = namespace
            .chars()
            .map(|c| if c == '{' || c == '}' { '_' } else { c })
            .collect();
        let prefix = format!("{{{namespace}}}:v{version}");
        Keyspace {
            namespace,
            version,
            prefix,
            group_prefixes: Vec::new(),
        }
    }

    /// Spread entries over `groups` hash tags (`{namespace:0}` ... `{namespace:<n-1>}`,
    /// chosen by the key's own CRC16 slot), so that on Valkey Cluster one namespace's
    /// entries land on every shard instead of one. 1 (the default) keeps the single
    /// `{namespace}` tag. Each group has its own tag sets, so tag writes stay atomic in
    /// one slot; [`Cache::invalidate_tag`](super::Cache::invalidate_tag) and
    /// [`Cache::invalidate_pattern`](super::Cache::invalidate_pattern) visit every group,
    /// and [`get_many`](super::Cache::get_many) sends a pipeline instead of one `MGET`.
    /// Clamped to 1..=1024. Changing it moves every key (like a version change).
    ///
    /// ```
    /// use valkit::cache::Keyspace;
    /// let ks = Keyspace::new("shop", 3).with_slot_groups(16);
    /// let e = ks.entry("user:42");
    /// assert!(e.starts_with("{shop:") && e.ends_with("}:v3:user:42"), "{e}");
    /// assert_eq!(ks.tag_for("users", "user:42"), format!("{}#tag:users", &e[..e.len() - 8]));
    /// ```
    pub fn with_slot_groups(mut self, groups: u16) -> Keyspace {
        let groups = groups.clamp(1, 1024);
        self.group_prefixes = if groups == 1 {
            Vec::new()
        } else {
            (0..groups)
                .map(|g| format!("{{{}:{g}}}:v{}", self.namespace, self.version))
                .collect()
        };
        self
    }

    /// The number of slot groups (1 unless [`Keyspace::with_slot_groups`] set more).
    pub fn slot_groups(&self) -> u16 {
        self.group_prefixes.len().max(1) as u16
    }

    /// The prefix of `key`'s group.
    fn prefix_of(&self, key: &str) -> &str {
        if self.group_prefixes.is_empty() {
            return &self.prefix;
        }
        let g = usize::from(crate::cmd::key_slot(key.as_bytes())) % self.group_prefixes.len();
        &self.group_prefixes[g]
    }

    /// Every group's prefix.
    fn prefixes(&self) -> Vec<&str> {
        if self.group_prefixes.is_empty() {
            vec![&self.prefix]
        } else {
            self.group_prefixes.iter().map(String::as_str).collect()
        }
    }

    /// The tag set of `tag` for the group of `key` (the set a tagged write of `key`
    /// records it in). With one group, the same as [`Keyspace::tag`].
    pub fn tag_for(&self, tag: &str, key: &str) -> String {
        format!("{}#tag:{tag}", self.prefix_of(key))
    }

    /// The tag sets of `tag`, one per group.
    pub(crate) fn tag_sets(&self, tag: &str) -> Vec<String> {
        self.prefixes()
            .into_iter()
            .map(|p| format!("{p}#tag:{tag}"))
            .collect()
    }

    /// `SCAN MATCH` patterns for `pattern`, one per group (see [`Keyspace::entry_pattern`]).
    pub(crate) fn entry_patterns(&self, pattern: &str) -> Vec<String> {
        self.prefixes()
            .into_iter()
            .map(|p| escaped_pattern(p, pattern))
            .collect()
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The version segment.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The same namespace at another version.
    pub fn with_version(&self, version: u32) -> Keyspace {
        Keyspace::new(&self.namespace, version).with_slot_groups(self.slot_groups())
    }

    /// The server key of the entry for `key`.
    pub fn entry(&self, key: &str) -> String {
        let prefix = self.prefix_of(key);
        let mut s = String::with_capacity(prefix.len() + 1 + key.len());
        s.push_str(prefix);
        s.push(':');
        s.push_str(key);
        s
    }

    /// The set holding the entry keys written with `tag` (with slot groups: group 0's; see
    /// [`Keyspace::tag_for`]).
    pub fn tag(&self, tag: &str) -> String {
        format!("{}#tag:{tag}", self.prefixes()[0])
    }

    /// The cross-process load lock for `key` (a [`crate::lock`] lock named `key` under
    /// [`lock_prefix`](Keyspace::lock_prefix); braces in `key` become `_`).
    ///
    /// ```
    /// use valkit::cache::Keyspace;
    /// assert_eq!(Keyspace::new("shop", 3).lock("user:42"), "{shop}:v3#lock:{user:42}");
    /// ```
    pub fn lock(&self, key: &str) -> String {
        let key: String = key
            .chars()
            .map(|c| if c == '{' || c == '}' { '_' } else { c })
            .collect();
        format!("{}{{{key}}}", self.lock_prefix())
    }

    /// The prefix of this cache's load locks: their keys keep the namespace's hash tag.
    pub fn lock_prefix(&self) -> String {
        format!("{}#lock:", self.prefix)
    }

    /// A `SCAN MATCH` pattern for entries whose key matches the glob `pattern`: the
    /// prefix is escaped, the pattern is used as given.
    /// With slot groups, group 0's pattern (the cache scans every group's).
    pub fn entry_pattern(&self, pattern: &str) -> String {
        escaped_pattern(self.prefixes()[0], pattern)
    }

    /// The channel invalidation events are published on: `valkit:cache:<namespace>`.
    pub fn channel(&self) -> String {
        format!("valkit:cache:{}", self.namespace)
    }
}

/// `prefix` with glob characters escaped, `:`, then `pattern` as given.
fn escaped_pattern(prefix: &str, pattern: &str) -> String {
    let mut s = String::new();
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            s.push('\\');
        }
        s.push(c);
    }
    s.push(':');
    s.push_str(pattern);
    s
}

/// `user:<id>`.
///
/// ```
/// assert_eq!(valkit::cache::user_key(42), "user:42");
/// ```
pub fn user_key(id: impl std::fmt::Display) -> String {
    format!("user:{id}")
}

/// `api:<endpoint>:<16 hex digits>`, the digits being [`stable_hash`] of the parameters.
///
/// The parameters are sorted first, so their order does not matter; each name and value is
/// length-prefixed before hashing, so `("a", "bc")` and `("ab", "c")` differ.
///
/// ```
/// use valkit::cache::api_key;
/// let a = api_key("search", &[("q", "rust"), ("page", "2")]);
/// let b = api_key("search", &[("page", "2"), ("q", "rust")]);
/// assert_eq!(a, b);
/// assert_eq!(a, "api:search:b08d05aa3ef40acf");
/// ```
pub fn api_key(endpoint: &str, params: &[(&str, &str)]) -> String {
    let mut sorted: Vec<&(&str, &str)> = params.iter().collect();
    sorted.sort();
    let mut h = Fnv1a64::new();
    for (name, value) in sorted {
        h.write_framed(name.as_bytes());
        h.write_framed(value.as_bytes());
    }
    let mut s = format!("api:{endpoint}:");
    let _ = write!(s, "{:016x}", h.finish());
    s
}

/// FNV-1a, 64 bits: a small hash whose output is fixed by its definition (offset basis
/// `0xcbf29ce484222325`, prime `0x100000001b3`), so keys built from it stay the same
/// across valkit versions, Rust versions, platforms and processes. Not for untrusted
/// input where collisions matter (it is not keyed).
///
/// ```
/// use valkit::cache::stable_hash;
/// assert_eq!(stable_hash(b""), 0xcbf29ce484222325);
/// assert_eq!(stable_hash(b"a"), 0xaf63dc4c8601ec8c);
/// ```
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h = Fnv1a64::new();
    h.write(bytes);
    h.finish()
}

struct Fnv1a64(u64);

impl Fnv1a64 {
    fn new() -> Self {
        Fnv1a64(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    /// The length (8 bytes, little endian) then the bytes.
    fn write_framed(&mut self, bytes: &[u8]) {
        self.write(&(bytes.len() as u64).to_le_bytes());
        self.write(bytes);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_reference_vectors() {
        // Published FNV-1a 64 test vectors.
        assert_eq!(stable_hash(b"foobar"), 0x85944171f73967e8);
        assert_eq!(stable_hash(b"a"), 0xaf63dc4c8601ec8c);
    }

    #[test]
    fn braces_cannot_escape_the_hash_tag() {
        let ks = Keyspace::new("a}b{", 1);
        assert_eq!(ks.entry("k"), "{a_b_}:v1:k");
    }

    #[test]
    fn pattern_escapes_the_prefix() {
        let ks = Keyspace::new("we*ird", 2);
        assert_eq!(ks.entry_pattern("user:*"), "{we\\*ird}:v2:user:*");
    }
}
