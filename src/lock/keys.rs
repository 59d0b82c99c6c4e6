//! Key layout: every key one lock touches shares one hash tag, so the scripts run
//! unchanged on Valkey Cluster.

use super::error::LockError;

/// The keys of one lock named `name` under `prefix`:
///
/// | key | holds |
/// | --- | --- |
/// | `<prefix>{<name>}` | the owner's token, with the lease as its TTL |
/// | `<prefix>{<name>}:fence` | the last fencing token issued |
/// | `<prefix>{<name>}:waiters` | set while someone waits (short TTL) |
/// | `<prefix>{<name>}:wake` | a one-item list a release pushes to; waiters `BLPOP` it |
///
/// The hash tag is the first `{...}` of the key: the name's, or the prefix's when the
/// prefix carries one (the cache puts its locks in its namespace slot that way).
#[derive(Debug, Clone)]
pub(crate) struct LockKeys {
    pub(crate) lock: String,
    pub(crate) fence: String,
    pub(crate) waiters: String,
    pub(crate) wake: String,
}

/// Longest lock name accepted (bytes).
const MAX_NAME: usize = 4096;

impl LockKeys {
    pub(crate) fn new(prefix: &str, name: &str) -> Result<LockKeys, LockError> {
        if name.is_empty() {
            return Err(LockError::invalid("the lock name is empty"));
        }
        if name.len() > MAX_NAME {
            return Err(LockError::invalid(format!(
                "the lock name is {} bytes long (at most {MAX_NAME})",
                name.len()
            )));
        }
        // A prefix whose first `{` is followed at once by `}` makes every key hash whole
        // (`{}` is no tag): the lock, its fence, waiters and wake keys would land in
        // different cluster slots and every script would fail with CROSSSLOT.
        if let Some(i) = prefix.find('{') {
            if prefix[i + 1..].starts_with('}') {
                return Err(LockError::invalid(format!(
                    "the lock prefix {prefix:?} opens an empty hash tag `{{}}`: a lock's keys \
                     would not share a cluster slot (drop the `{{}}` or put a tag in it)"
                )));
            }
        }
        // Braces in the name would move the hash tag: replace them.
        let name: String = name
            .chars()
            .map(|c| if c == '{' || c == '}' { '_' } else { c })
            .collect();
        let lock = format!("{prefix}{{{name}}}");
        Ok(LockKeys {
            fence: format!("{lock}:fence"),
            waiters: format!("{lock}:waiters"),
            wake: format!("{lock}:wake"),
            lock,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_the_name_tag() {
        let k = LockKeys::new("lock:", "orders").unwrap();
        assert_eq!(k.lock, "lock:{orders}");
        assert_eq!(k.fence, "lock:{orders}:fence");
        assert_eq!(k.waiters, "lock:{orders}:waiters");
        assert_eq!(k.wake, "lock:{orders}:wake");
    }

    #[test]
    fn braces_in_names_cannot_move_the_tag() {
        let k = LockKeys::new("lock:", "a}{b").unwrap();
        assert_eq!(k.lock, "lock:{a__b}");
    }

    #[test]
    fn a_prefix_may_carry_the_tag_but_not_an_empty_one() {
        let k = LockKeys::new("app{locks}:", "orders").unwrap();
        assert_eq!(k.lock, "app{locks}:{orders}");
        assert_eq!(k.fence, "app{locks}:{orders}:fence");
        // An unclosed `{` in the prefix makes the tag run to the name's `}`: still shared.
        assert!(LockKeys::new("app{", "orders").is_ok());
        for bad in ["{}", "app{}:", "app:{}{x}"] {
            let e = LockKeys::new(bad, "orders").unwrap_err();
            assert_eq!(
                e.kind(),
                crate::lock::LockErrorKind::InvalidArgument,
                "{bad}"
            );
        }
    }

    #[test]
    fn bad_names_are_typed_errors() {
        assert!(LockKeys::new("p:", "").is_err());
        assert!(LockKeys::new("p:", &"x".repeat(MAX_NAME + 1)).is_err());
    }
}
