//! [`Job`] and [`Priority`]: what a queue holds, and its JSON envelope.
//!
//! The envelope is a JSON object, the format of the runbook's producers:
//! `{"id": "...", "type": "...", "payload": <any JSON>, "attempts": 0,
//! "enqueued_at": <ms>, "error": null}`. Only `id` (a string) is required; `type`
//! defaults to `""`, `payload` to `null`, `attempts` to 0. Fields valkit does not know are
//! kept and written back. A byte payload that is not UTF-8 is stored as base64 text with
//! `"encoding": "base64"`.

use std::borrow::Cow;

use serde_json::{Map, Value as Json};

use super::base64;
use super::error::{QueueError, QueueErrorKind};

/// A queue's priority level. Higher levels are always served first: a steady stream of
/// `High` jobs starves `Low` ones (strict priority; no aging). Within one level jobs are
/// served first in, first out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Priority {
    /// Served first (list `<queue>:high`).
    High,
    /// Served when no high job waits (list `<queue>:medium`).
    Medium,
    /// Served when no high or medium job waits (list `<queue>:low`).
    Low,
}

impl Priority {
    /// All levels, highest first.
    pub const ALL: [Priority; 3] = [Priority::High, Priority::Medium, Priority::Low];

    /// The list suffix: `high`, `medium` or `low`.
    pub fn name(self) -> &'static str {
        match self {
            Priority::High => "high",
            Priority::Medium => "medium",
            Priority::Low => "low",
        }
    }

    /// The letter the scripts use.
    pub(crate) fn letter(self) -> &'static str {
        match self {
            Priority::High => "h",
            Priority::Medium => "m",
            Priority::Low => "l",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    pub(crate) fn from_index(i: i64) -> Option<Priority> {
        match i {
            1 => Some(Priority::High),
            2 => Some(Priority::Medium),
            3 => Some(Priority::Low),
            _ => None,
        }
    }

    pub(crate) fn from_name(s: &str) -> Option<Priority> {
        Priority::ALL.into_iter().find(|p| p.name() == s)
    }
}

/// One job: an id, a type, a payload (any JSON, or bytes), how often it failed, when it
/// was first enqueued and the last error.
///
/// ```
/// use valkit::queue::Job;
/// let job = Job::new("email", serde_json::json!({"to": "ada@example.com"}));
/// assert_eq!(job.kind(), "email");
/// assert_eq!(job.attempts(), 0);
/// let raw = Job::bytes("blob", vec![0xff, 0x00]);
/// assert_eq!(raw.payload_bytes().unwrap().as_ref(), &[0xff, 0x00]);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    id: String,
    kind: String,
    payload: Json,
    base64: bool,
    attempts: u32,
    enqueued_at: Option<u64>,
    error: Option<String>,
    /// Fields of the envelope that valkit does not know, kept as they came.
    extra: Map<String, Json>,
}

impl Job {
    /// A job of type `kind` with a JSON payload and a random id (128 bits, hex).
    pub fn new(kind: impl Into<String>, payload: Json) -> Job {
        Job {
            id: format!("{:032x}", rand::random::<u128>()),
            kind: kind.into(),
            payload,
            base64: false,
            attempts: 0,
            enqueued_at: None,
            error: None,
            extra: Map::new(),
        }
    }

    /// A job whose payload is any serializable value.
    ///
    /// # Errors
    /// [`QueueErrorKind::Encode`] when the value does not serialize.
    pub fn json<T: serde::Serialize>(
        kind: impl Into<String>,
        payload: &T,
    ) -> Result<Job, QueueError> {
        let payload = serde_json::to_value(payload)
            .map_err(|e| QueueError::new(QueueErrorKind::Encode, e.to_string()))?;
        Ok(Job::new(kind, payload))
    }

    /// A job with a byte payload: stored as a JSON string when it is UTF-8, as base64
    /// otherwise (with `"encoding": "base64"`).
    pub fn bytes(kind: impl Into<String>, payload: impl Into<Vec<u8>>) -> Job {
        match String::from_utf8(payload.into()) {
            Ok(s) => Job::new(kind, Json::String(s)),
            Err(e) => {
                let mut job = Job::new(kind, Json::String(base64::encode(e.as_bytes())));
                job.base64 = true;
                job
            }
        }
    }

    /// Use this id instead of the random one (e.g. an id the producer already has).
    pub fn with_id(mut self, id: impl Into<String>) -> Job {
        self.id = id.into();
        self
    }

    /// The id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The type (`"type"` in the envelope).
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The payload as JSON (for a base64 byte payload: the base64 text).
    pub fn payload(&self) -> &Json {
        &self.payload
    }

    /// The payload decoded into `T`.
    ///
    /// # Errors
    /// [`QueueErrorKind::Decode`] when it does not fit `T`.
    pub fn payload_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, QueueError> {
        T::deserialize(&self.payload)
            .map_err(|e| QueueError::new(QueueErrorKind::Decode, format!("payload: {e}")))
    }

    /// The payload as bytes: a string payload's bytes (base64 decoded when so marked), or
    /// the JSON text of any other payload. `None` for bad base64.
    pub fn payload_bytes(&self) -> Option<Cow<'_, [u8]>> {
        match &self.payload {
            Json::String(s) if self.base64 => base64::decode(s).map(Cow::Owned),
            Json::String(s) => Some(Cow::Borrowed(s.as_bytes())),
            other => Some(Cow::Owned(other.to_string().into_bytes())),
        }
    }

    /// How many times the job failed so far: handler errors and panics, and leases that
    /// ran out (a worker that crashed or took too long).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// When the job was first pushed, in server milliseconds since the Unix epoch (`None`
    /// for a job pushed by a producer that did not set `enqueued_at`).
    pub fn enqueued_at(&self) -> Option<u64> {
        self.enqueued_at
    }

    /// The error of the last failed attempt.
    pub fn last_error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    pub(crate) fn set_enqueued_at(&mut self, ms: u64) {
        if self.enqueued_at.is_none() {
            self.enqueued_at = Some(ms);
        }
    }

    pub(crate) fn failed(&mut self, error: &str, attempts: u32) {
        self.attempts = attempts;
        self.error = Some(error.to_owned());
    }

    pub(crate) fn add_attempts(&mut self, n: u32) {
        self.attempts = self.attempts.saturating_add(n);
    }

    pub(crate) fn reset_attempts(&mut self) {
        self.attempts = 0;
    }

    /// The envelope as a JSON object.
    pub(crate) fn to_json(&self) -> Json {
        let mut m = self.extra.clone();
        m.insert("id".into(), Json::String(self.id.clone()));
        m.insert("type".into(), Json::String(self.kind.clone()));
        m.insert("payload".into(), self.payload.clone());
        m.insert("attempts".into(), Json::from(self.attempts));
        if let Some(t) = self.enqueued_at {
            m.insert("enqueued_at".into(), Json::from(t));
        }
        m.insert(
            "error".into(),
            self.error.clone().map(Json::String).unwrap_or(Json::Null),
        );
        if self.base64 {
            m.insert("encoding".into(), Json::String("base64".into()));
        }
        Json::Object(m)
    }

    /// The envelope's bytes, as stored.
    pub(crate) fn encode(&self) -> Vec<u8> {
        // Serializing a `serde_json::Value` cannot fail (string keys, finite numbers).
        serde_json::to_vec(&self.to_json()).unwrap_or_default()
    }

    /// Decode an envelope; a typed error for anything that is not one.
    pub(crate) fn decode(raw: &[u8]) -> Result<Job, QueueError> {
        let v: Json = serde_json::from_slice(raw)
            .map_err(|e| QueueError::new(QueueErrorKind::Decode, format!("not JSON: {e}")))?;
        Job::from_json(v)
    }

    pub(crate) fn from_json(v: Json) -> Result<Job, QueueError> {
        let bad = |what: &str| QueueError::new(QueueErrorKind::Decode, what.to_owned());
        let Json::Object(mut m) = v else {
            return Err(bad("not a JSON object"));
        };
        let id = match m.remove("id") {
            Some(Json::String(s)) if !s.is_empty() => s,
            Some(_) => return Err(bad("\"id\" is not a non-empty string")),
            None => return Err(bad("no \"id\"")),
        };
        let kind = match m.remove("type") {
            Some(Json::String(s)) => s,
            None | Some(Json::Null) => String::new(),
            Some(_) => return Err(bad("\"type\" is not a string")),
        };
        let payload = m.remove("payload").unwrap_or(Json::Null);
        let attempts = match m.remove("attempts") {
            None | Some(Json::Null) => 0,
            Some(Json::Number(n)) => n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| bad("\"attempts\" is not a small non-negative integer"))?,
            Some(_) => return Err(bad("\"attempts\" is not a number")),
        };
        let enqueued_at = match m.remove("enqueued_at") {
            None | Some(Json::Null) => None,
            Some(Json::Number(n)) => Some(
                n.as_u64()
                    .ok_or_else(|| bad("\"enqueued_at\" is not a non-negative integer"))?,
            ),
            Some(_) => return Err(bad("\"enqueued_at\" is not a number")),
        };
        let error = match m.remove("error") {
            None | Some(Json::Null) => None,
            Some(Json::String(s)) => Some(s),
            Some(_) => return Err(bad("\"error\" is not a string")),
        };
        let base64 = match m.remove("encoding") {
            None | Some(Json::Null) => false,
            Some(Json::String(s)) if s == "base64" => true,
            Some(_) => return Err(bad("\"encoding\" is not \"base64\"")),
        };
        if base64 && !matches!(payload, Json::String(_)) {
            return Err(bad("a base64 payload must be a string"));
        }
        Ok(Job {
            id,
            kind,
            payload,
            base64,
            attempts,
            enqueued_at,
            error,
            extra: m,
        })
    }
}

/// A dead-letter entry: `{"id", "error", "original"}` (the runbook's format), plus the
/// priority the job came from and when it died.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    id: Option<String>,
    error: String,
    original: Json,
    priority: Priority,
    failed_at: Option<u64>,
    /// The entry exactly as stored (what requeue removes).
    pub(crate) stored: Vec<u8>,
}

impl DeadLetter {
    pub(crate) fn new(
        id: Option<&str>,
        error: &str,
        original: Json,
        priority: Priority,
        failed_at: u64,
    ) -> DeadLetter {
        let mut d = DeadLetter {
            id: id.map(str::to_owned),
            error: error.to_owned(),
            original,
            priority,
            failed_at: Some(failed_at),
            stored: Vec::new(),
        };
        let mut m = Map::new();
        m.insert(
            "id".into(),
            d.id.clone().map(Json::String).unwrap_or(Json::Null),
        );
        m.insert("error".into(), Json::String(d.error.clone()));
        m.insert("original".into(), d.original.clone());
        m.insert("priority".into(), Json::String(priority.name().into()));
        m.insert("failed_at".into(), Json::from(failed_at));
        d.stored = serde_json::to_vec(&Json::Object(m)).unwrap_or_default();
        d
    }

    /// For a malformed entry: the original is kept as a JSON value when it parses, as a
    /// string (lossy UTF-8) when it does not.
    pub(crate) fn original_of(raw: &[u8]) -> Json {
        serde_json::from_slice(raw)
            .unwrap_or_else(|_| Json::String(String::from_utf8_lossy(raw).into_owned()))
    }

    pub(crate) fn decode(stored: Vec<u8>) -> DeadLetter {
        let v: Option<Map<String, Json>> = match serde_json::from_slice(&stored) {
            Ok(Json::Object(m)) => Some(m),
            _ => None,
        };
        let Some(mut m) = v else {
            // Not ours (someone pushed garbage to the dead-letter list): show it as is.
            return DeadLetter {
                id: None,
                error: "unreadable dead-letter entry".into(),
                original: DeadLetter::original_of(&stored),
                priority: Priority::Low,
                failed_at: None,
                stored,
            };
        };
        let text = |v: Option<Json>| match v {
            Some(Json::String(s)) => Some(s),
            _ => None,
        };
        DeadLetter {
            id: text(m.remove("id")),
            error: text(m.remove("error")).unwrap_or_default(),
            original: m.remove("original").unwrap_or(Json::Null),
            priority: text(m.remove("priority"))
                .and_then(|p| Priority::from_name(&p))
                .unwrap_or(Priority::Low),
            failed_at: m.remove("failed_at").and_then(|v| v.as_u64()),
            stored,
        }
    }

    /// The job's id (`None` when the entry had none: a malformed job).
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// Why it died: the handler's last error, or the decode error of a malformed entry.
    pub fn error(&self) -> &str {
        &self.error
    }

    /// The job as it was (a JSON object), or the malformed entry (any JSON, or a string).
    pub fn original(&self) -> &Json {
        &self.original
    }

    /// The job, when the original is a well-formed envelope.
    pub fn job(&self) -> Option<Job> {
        Job::from_json(self.original.clone()).ok()
    }

    /// The priority it was taken from (`Low` when unknown).
    pub fn priority(&self) -> Priority {
        self.priority
    }

    /// When it died, in server milliseconds since the Unix epoch.
    pub fn failed_at(&self) -> Option<u64> {
        self.failed_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_round_trips_and_keeps_unknown_fields() {
        let raw = br#"{"id":"7","type":"email","payload":{"to":"a"},"trace":"x1"}"#;
        let job = Job::decode(raw).unwrap();
        assert_eq!((job.id(), job.kind(), job.attempts()), ("7", "email", 0));
        let back: Json = serde_json::from_slice(&job.encode()).unwrap();
        assert_eq!(back["trace"], "x1");
        assert_eq!(back["payload"]["to"], "a");
        assert_eq!(Job::decode(&job.encode()).unwrap(), job);
    }

    #[test]
    fn malformed_envelopes_are_typed_errors() {
        for raw in [
            &b"not json"[..],
            b"[1,2]",
            br#"{"type":"x"}"#,
            br#"{"id":5}"#,
            br#"{"id":""}"#,
            br#"{"id":"a","attempts":-1}"#,
            br#"{"id":"a","attempts":"3"}"#,
            br#"{"id":"a","type":7}"#,
            br#"{"id":"a","encoding":"base64","payload":1}"#,
        ] {
            let e = Job::decode(raw).unwrap_err();
            assert_eq!(
                e.kind(),
                QueueErrorKind::Decode,
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn byte_payloads_survive() {
        let bytes: Vec<u8> = (0..=255).collect();
        let job = Job::bytes("b", bytes.clone());
        let back = Job::decode(&job.encode()).unwrap();
        assert_eq!(back.payload_bytes().unwrap().as_ref(), &bytes[..]);
        let text = Job::bytes("t", "héllo");
        assert_eq!(text.payload(), &Json::String("héllo".into()));
    }

    #[test]
    fn dead_letters_round_trip() {
        let d = DeadLetter::new(
            Some("9"),
            "boom",
            serde_json::json!({"id":"9"}),
            Priority::Medium,
            5,
        );
        let back = DeadLetter::decode(d.stored.clone());
        assert_eq!(back, d);
        let junk = DeadLetter::decode(b"junk".to_vec());
        assert_eq!(junk.original(), &Json::String("junk".into()));
    }
}
