//! Sessions: random 128-bit ids, values through a codec, sliding expiration with `GETEX`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::codec::{Codec, DefaultCodec};
use super::error::{CacheError, CacheErrorKind};
use crate::cmd::{cmd, Execute, FromValue};

/// A session id: 128 random bits from the OS-seeded generator, as 32 lower-case hex
/// digits. Parse one from a cookie with `"…".parse::<SessionId>()`; anything else than 32
/// hex digits is rejected before it reaches the server.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionId(String);

impl SessionId {
    /// A fresh random id.
    pub fn random() -> SessionId {
        SessionId(format!("{:032x}", rand::random::<u128>()))
    }

    /// The 32 hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SessionId {
    /// Only the first 6 digits: a session id is a bearer secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({}…)", &self.0[..6.min(self.0.len())])
    }
}

impl FromStr for SessionId {
    type Err = CacheError;
    fn from_str(s: &str) -> Result<SessionId, CacheError> {
        if s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(SessionId(s.to_ascii_lowercase()))
        } else {
            Err(CacheError::new(
                CacheErrorKind::InvalidInput,
                "a session id is 32 hex digits",
                None,
            ))
        }
    }
}

/// Sessions with sliding expiration: every [`get`](SessionStore::get) and
/// [`touch`](SessionStore::touch) pushes the expiry back to `idle` from now (`GETEX ... PX`,
/// one round trip), so a session ends after `idle` without use.
///
/// Keys are `<namespace>:session:<id>` with no hash tag, so sessions spread over a cluster.
///
/// ```no_run
/// # use std::{sync::Arc, time::Duration};
/// # use valkit::{cache::SessionStore, Connection};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let conn = Arc::new(Connection::open_url("redis://127.0.0.1:6379")?);
/// let sessions = SessionStore::new(conn, "web", Duration::from_secs(30 * 60));
/// let id = sessions.create(&vec!["cart:1".to_string()])?;
/// let cart: Option<Vec<String>> = sessions.get(&id)?; // and the session lives 30 more minutes
/// sessions.destroy(&id)?;
/// # let _ = cart; Ok(()) }
/// ```
#[derive(Clone)]
pub struct SessionStore<E, C = DefaultCodec> {
    ex: E,
    codec: C,
    prefix: String,
    idle: Duration,
}

impl<E: Execute + Clone + Send + Sync + 'static> SessionStore<E> {
    /// Sessions under `<namespace>:session:` that expire after `idle` without use.
    pub fn new(ex: E, namespace: &str, idle: Duration) -> SessionStore<E> {
        SessionStore {
            ex,
            codec: DefaultCodec::default(),
            prefix: format!("{namespace}:session:"),
            idle: idle.max(Duration::from_millis(1)),
        }
    }
}

impl<E: Execute + Clone + Send + Sync + 'static, C> SessionStore<E, C> {
    /// The same store with another codec.
    pub fn with_codec<C2>(self, codec: C2) -> SessionStore<E, C2> {
        SessionStore {
            ex: self.ex,
            codec,
            prefix: self.prefix,
            idle: self.idle,
        }
    }

    /// The idle timeout.
    pub fn idle(&self) -> Duration {
        self.idle
    }

    /// The server key of a session.
    pub fn key(&self, id: &SessionId) -> String {
        format!("{}{}", self.prefix, id.0)
    }

    fn idle_ms(&self) -> u64 {
        self.idle.as_millis().max(1) as u64
    }

    fn run<T: FromValue>(&self, c: &crate::Cmd) -> Result<T, CacheError> {
        self.ex
            .exec(c)
            .and_then(T::from_value)
            .map_err(CacheError::server)
    }

    /// Store `data` under a new random id (`SET ... NX PX idle`; a collision, which 128
    /// random bits make practically impossible, draws another id).
    pub fn create<T>(&self, data: &T) -> Result<SessionId, CacheError>
    where
        C: Codec<T>,
    {
        let mut bytes = Vec::new();
        self.codec
            .encode(data, &mut bytes)
            .map_err(|e| CacheError::codec("encoding a session", e))?;
        loop {
            let id = SessionId::random();
            let c = cmd("SET")
                .arg(self.key(&id))
                .arg(&bytes[..])
                .arg("NX")
                .arg("PX")
                .arg(self.idle_ms());
            let written: Option<()> = self.run(&c)?;
            if written.is_some() {
                return Ok(id);
            }
        }
    }

    /// The session's data, sliding its expiry (`GETEX key PX idle`); `None` when it does
    /// not exist (expired or destroyed).
    pub fn get<T>(&self, id: &SessionId) -> Result<Option<T>, CacheError>
    where
        C: Codec<T>,
    {
        let c = cmd("GETEX").arg(self.key(id)).arg("PX").arg(self.idle_ms());
        let bytes: Option<Vec<u8>> = self.run(&c)?;
        bytes
            .map(|b| self.codec.decode(&b))
            .transpose()
            .map_err(|e| CacheError::codec("decoding a session", e))
    }

    /// Slide the expiry without reading (`PEXPIRE`); false when the session does not exist.
    pub fn touch(&self, id: &SessionId) -> Result<bool, CacheError> {
        self.run(&cmd("PEXPIRE").arg(self.key(id)).arg(self.idle_ms()))
    }

    /// Replace the data of an existing session and slide its expiry (`SET ... XX PX`);
    /// false (and nothing written) when it does not exist.
    pub fn update<T>(&self, id: &SessionId, data: &T) -> Result<bool, CacheError>
    where
        C: Codec<T>,
    {
        let mut bytes = Vec::new();
        self.codec
            .encode(data, &mut bytes)
            .map_err(|e| CacheError::codec("encoding a session", e))?;
        let c = cmd("SET")
            .arg(self.key(id))
            .arg(bytes)
            .arg("XX")
            .arg("PX")
            .arg(self.idle_ms());
        let written: Option<()> = self.run(&c)?;
        Ok(written.is_some())
    }

    /// Delete the session; true when it existed.
    pub fn destroy(&self, id: &SessionId) -> Result<bool, CacheError> {
        let n: u64 = self.run(&cmd("DEL").arg(self.key(id)))?;
        Ok(n > 0)
    }
}

impl<E, C> fmt::Debug for SessionStore<E, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionStore")
            .field("prefix", &self.prefix)
            .field("idle", &self.idle)
            .finish()
    }
}
