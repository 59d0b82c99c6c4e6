//! Lua scripts run by `EVALSHA`, falling back to `EVAL` when the server lacks them.

mod sha1;

use std::borrow::Cow;
use std::fmt;

use crate::cmd::{cmd, Cmd, Execute, FromValue, ToArgs};
use crate::error::{Error, ErrorKind, Result};
use crate::resp::Value;
use crate::ServerErrorKind;

/// A Lua script, named by the SHA-1 of its source.
///
/// The SHA-1 is computed client-side when the script is made, so the first call is one
/// `EVALSHA`. When the server answers `NOSCRIPT` (it never saw the script, or lost it to
/// `SCRIPT FLUSH` or a restart), the call is resent once as `EVAL`, which also caches the
/// script on the server for the next `EVALSHA`.
///
/// Keys go to `KEYS[]` and arguments to `ARGV[]`; keeping them apart matters on a cluster,
/// where keys pick the node.
///
/// ```no_run
/// use valkit::{Connection, Script};
/// # fn main() -> valkit::Result<()> {
/// static INCR_CAPPED: &str = r"
///     local n = redis.call('INCR', KEYS[1])
///     if n > tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) return tonumber(ARGV[1]) end
///     return n
/// ";
/// let conn = Connection::open_url("redis://127.0.0.1:6379")?;
/// let script = Script::new(INCR_CAPPED);
/// let n: i64 = script.key("counter").arg(10).invoke_as(&conn)?;
/// assert!(n <= 10);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Script {
    source: Cow<'static, str>,
    sha1: String,
}

impl Script {
    /// A script with this Lua source; computes its SHA-1.
    ///
    /// ```
    /// let s = valkit::Script::new("return 1");
    /// assert_eq!(s.sha1_hex(), "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
    /// ```
    pub fn new(source: impl Into<Cow<'static, str>>) -> Script {
        let source = source.into();
        let sha1 = sha1::hex(&sha1::sha1(source.as_bytes()));
        Script { source, sha1 }
    }

    /// The Lua source.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The SHA-1 of the source in lower-case hex, as `SCRIPT LOAD` returns it.
    pub fn sha1_hex(&self) -> &str {
        &self.sha1
    }

    /// Start an invocation with one key; add more with [`ScriptInvocation::key`] and
    /// [`ScriptInvocation::arg`].
    pub fn key<K: ToArgs>(&self, key: K) -> ScriptInvocation<'_> {
        self.prepare_invoke().key(key)
    }

    /// Start an invocation with one argument.
    pub fn arg<A: ToArgs>(&self, arg: A) -> ScriptInvocation<'_> {
        self.prepare_invoke().arg(arg)
    }

    /// Start an invocation without keys or arguments.
    pub fn prepare_invoke(&self) -> ScriptInvocation<'_> {
        ScriptInvocation {
            script: self,
            keys: Cmd::new(),
            args: Cmd::new(),
        }
    }

    /// Run the script with `keys` as `KEYS[]` and `args` as `ARGV[]` (each one value or a
    /// collection; no keys is `&[] as &[&str]`, or use [`Script::prepare_invoke`]).
    ///
    /// ```no_run
    /// # use valkit::{Connection, Script, Value};
    /// # fn main() -> valkit::Result<()> {
    /// # let conn = Connection::open_url("redis://127.0.0.1:6379")?;
    /// let script = Script::new("return redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])");
    /// let reply = script.invoke(&conn, "some-key", ("value", 5000))?;
    /// assert_eq!(reply, Value::Simple("OK".into()));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// Errors the script raises (`redis.error_reply`, a failed `redis.call`) come back as
    /// server errors, like any command's.
    pub fn invoke<E, K, A>(&self, ex: &E, keys: K, args: A) -> Result<Value>
    where
        E: Execute + ?Sized,
        K: ToArgs,
        A: ToArgs,
    {
        ScriptInvocation {
            script: self,
            keys: Cmd::new().arg(keys),
            args: Cmd::new().arg(args),
        }
        .invoke(ex)
    }

    /// `SCRIPT LOAD`: cache the script on the server now (e.g. at start-up, to fail fast on
    /// a syntax error). Checks that the server's SHA-1 equals ours.
    pub fn script_load<E: Execute + ?Sized>(&self, ex: &E) -> Result<()> {
        let sha: String =
            FromValue::from_value(ex.exec(&cmd("SCRIPT").arg("LOAD").arg(&*self.source))?)?;
        if !sha.eq_ignore_ascii_case(&self.sha1) {
            return Err(Error::protocol(format!(
                "SCRIPT LOAD returned {sha}, expected {}",
                self.sha1
            )));
        }
        Ok(())
    }
}

impl fmt::Debug for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Script")
            .field("sha1", &self.sha1)
            .field("source_len", &self.source.len())
            .finish()
    }
}

/// One call of a [`Script`]: its keys and arguments, built up before running it.
#[derive(Clone)]
pub struct ScriptInvocation<'a> {
    script: &'a Script,
    /// `KEYS[]` and `ARGV[]`, each kept as a bare argument list.
    keys: Cmd,
    args: Cmd,
}

impl ScriptInvocation<'_> {
    /// Add a key (or several, from a collection) to `KEYS[]`.
    pub fn key<K: ToArgs>(mut self, key: K) -> Self {
        self.keys.add_arg(key);
        self
    }

    /// Add an argument (or several) to `ARGV[]`.
    pub fn arg<A: ToArgs>(mut self, arg: A) -> Self {
        self.args.add_arg(arg);
        self
    }

    /// The `EVALSHA sha numkeys keys... args...` command, e.g. to queue in a pipeline
    /// (where no `NOSCRIPT` fallback happens: [`Script::script_load`] first).
    pub fn evalsha_cmd(&self) -> Cmd {
        self.build("EVALSHA", self.script.sha1_hex())
    }

    /// The `EVAL source numkeys keys... args...` command.
    pub fn eval_cmd(&self) -> Cmd {
        self.build("EVAL", self.script.source())
    }

    fn build(&self, name: &str, first: &str) -> Cmd {
        let mut c = cmd(name).arg(first).arg(self.keys.len());
        for a in self.keys.args().chain(self.args.args()) {
            c.add_arg(a);
        }
        c
    }

    /// Run it: `EVALSHA`, and `EVAL` once if the server answers `NOSCRIPT`.
    pub fn invoke<E: Execute + ?Sized>(&self, ex: &E) -> Result<Value> {
        match ex.exec(&self.evalsha_cmd()) {
            Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                log::debug!(
                    "script {} not cached on the server, sending EVAL",
                    self.script.sha1_hex()
                );
                ex.exec(&self.eval_cmd())
            }
            other => other,
        }
    }

    /// Run it and convert the reply.
    pub fn invoke_as<T: FromValue, E: Execute + ?Sized>(&self, ex: &E) -> Result<T> {
        T::from_value(self.invoke(ex)?)
    }
}

impl fmt::Debug for ScriptInvocation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScriptInvocation")
            .field("sha1", &self.script.sha1)
            .field("keys", &self.keys.len())
            .field("args", &self.args.len())
            .finish()
    }
}

#[cfg(test)]
mod tests;
