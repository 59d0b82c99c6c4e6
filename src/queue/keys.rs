//! Key layout of one queue: every key carries the queue's name as a hash tag, so a queue
//! lives in one cluster slot and its scripts run unchanged on a cluster.

/// The keys of a queue named `name`: `{name}:high`, `{name}:medium`, `{name}:low` (lists:
/// producers `LPUSH`, consumers take from the right), `{name}:dead-letter` (list, newest
/// first), and the bookkeeping keys `{name}:inflight`, `{name}:leases`, `{name}:delayed`,
/// `{name}:expired`, `{name}:seq`.
///
/// ```
/// use valkit::queue::QueueKeys;
/// let k = QueueKeys::new("jobs");
/// assert_eq!(k.list(valkit::queue::Priority::High), "{jobs}:high");
/// assert_eq!(k.dead_letter(), "{jobs}:dead-letter");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueKeys {
    name: String,
    /// In script order: high, medium, low, inflight, leases, delayed, dead, expired, seq.
    all: [String; 9],
}

impl QueueKeys {
    /// The keys of queue `name`. Braces in the name become `_` (they would break the tag).
    pub fn new(name: &str) -> QueueKeys {
        let name: String = name
            .chars()
            .map(|c| if c == '{' || c == '}' { '_' } else { c })
            .collect();
        let k = |s: &str| format!("{{{name}}}:{s}");
        QueueKeys {
            all: [
                k("high"),
                k("medium"),
                k("low"),
                k("inflight"),
                k("leases"),
                k("delayed"),
                k("dead-letter"),
                k("expired"),
                k("seq"),
            ],
            name,
        }
    }

    /// The queue's name (the hash tag).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The list of one priority.
    pub fn list(&self, p: super::Priority) -> &str {
        &self.all[p.index()]
    }

    /// The dead-letter list.
    pub fn dead_letter(&self) -> &str {
        &self.all[6]
    }

    /// The delayed set (a sorted set by due time).
    pub fn delayed(&self) -> &str {
        &self.all[5]
    }

    /// The in-flight set (a sorted set of lease tokens by lease deadline).
    pub fn inflight(&self) -> &str {
        &self.all[3]
    }

    /// All keys, in the order the scripts take them.
    pub(crate) fn all(&self) -> &[String; 9] {
        &self.all
    }
}
