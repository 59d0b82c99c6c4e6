//! Commands: the [`Cmd`] builder, argument and reply conversions, pipelines, and the
//! [`Execute`] trait that every way of talking to a server implements.
//!
//! This layer sits below the connection: it knows RESP values and errors, never a socket.

mod args;
mod blocking;
mod buf;
mod execute;
mod from_value;
pub(crate) mod keys;
mod pipeline;
mod read_from;
#[cfg(test)]
pub(crate) mod recorder;
pub(crate) mod secrets;
pub(crate) mod server_clock;
mod slot;
pub(crate) mod spec;

use std::time::Duration;

pub use args::{ArgWriter, ToArgs};
pub(crate) use blocking::Reissue;
pub(crate) use execute::BuildReplies;
pub use execute::Execute;
pub use from_value::FromValue;
pub(crate) use pipeline::Share;
pub use pipeline::{pipe, Pipeline};
pub use read_from::ReadFrom;
pub use slot::{hash_tag, key_slot, SLOTS};

use crate::error::{Error, Limit, Result};
use crate::resp::Bytes;

/// Arguments this long or longer are not copied into a command's buffer: they are kept
/// as shared [`Bytes`] (moved in without a copy when passed as an owned `Vec<u8>`,
/// `String` or `Bytes`) and written to the socket straight from there.
pub const LARGE_ARG: usize = 64 * 1024;

/// How long a command may legitimately block on the server (BLPOP, BLMOVE, ...).
///
/// The connection extends its read timeout by this much for that one command. A known
/// blocking command (BLPOP, BRPOP, BLMOVE, BLMPOP, BZPOPMIN, BZMPOP, XREAD/XREADGROUP
/// BLOCK, WAIT) that may block for ever or longer than the connection's
/// [`blocking_slice`](crate::ConnectionConfig::blocking_slice) is sent with the slice as
/// its server-side timeout and sent again, transparently, each time the server answers
/// "nothing yet": a dead server is then found within one slice plus the read timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Blocking {
    /// Not a blocking command: the normal read timeout applies.
    #[default]
    No,
    /// The server may hold the reply for up to this long.
    For(Duration),
    /// The server may hold the reply for ever (a blocking timeout of 0).
    Forever,
}

/// One command and its arguments, built with [`cmd`] and [`Cmd::arg`].
///
/// Arguments are stored back to back in one buffer, already in their wire form (each a RESP
/// bulk string, `$<len>\r\n<bytes>\r\n`), so building a command costs no allocation
/// while they fit in 56 bytes (kept inside the `Cmd`: a `GET` of a key up to 40 bytes),
/// one buffer after that, and sending it is the array header plus one copy.
///
/// Arguments of [`LARGE_ARG`] bytes or more are the exception: they are kept aside as
/// [`Bytes`] and written to the socket from there, so a large value is never copied into a
/// command buffer. Passed by value (`Vec<u8>`, `String`, [`Bytes`]) it is not copied at
/// all: `conn.set("k", big_vec)` sends `big_vec`'s own memory; passed by reference
/// (`&big_vec`) it is copied once.
///
/// ```
/// use valkit::cmd;
/// let c = cmd("SET").arg("key").arg(42).arg("EX").arg(10);
/// assert_eq!(c.name(), b"SET");
/// assert_eq!(c.args().collect::<Vec<_>>(), [&b"SET"[..], b"key", b"42", b"EX", b"10"]);
/// ```
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Cmd {
    /// The arguments, each encoded as a RESP bulk string, back to back (inline while
    /// short: building a short command allocates nothing).
    data: buf::CmdBuf,
    /// Number of arguments in `data`.
    argc: usize,
    blocking: Blocking,
    idempotent: Option<bool>,
    /// Where a read may go (`None`: the executor's default).
    read_from: Option<ReadFrom>,
    /// Arguments of [`LARGE_ARG`] bytes or more, not in `data`: each with the offset in
    /// `data` where its bytes belong (after its header, before its CRLF).
    /// (Boxed and absent in the usual command: one word to move instead of a `Vec`'s
    /// three, nothing to drop.)
    #[allow(clippy::box_collection)]
    large: Option<Box<Vec<(usize, Bytes)>>>,
    /// The name's row in the command table ([`spec::TABLE`]) + 1, or 0 when the table
    /// does not know it (or there is no name yet), with `spec::EFFECTS` set for a row with
    /// a session effect, a refusal or subcommand rows: looked up once, when the name is added
    /// (by [`cmd`] or by the first [`Cmd::add_arg`]).
    spec: u16,
}

/// `cmd(name)` for a name of the command table (upper case), built by the compiler: the
/// name encoded and its table row found at compile time (the typed commands use it).
macro_rules! known_cmd {
    ($name:literal) => {{
        const KNOWN: $crate::cmd::Cmd = $crate::cmd::Cmd::known($name);
        KNOWN
    }};
}
pub(crate) use known_cmd;

/// Start a command: `cmd("GET").arg("key")`. The name is sent as given.
pub fn cmd(name: &str) -> Cmd {
    // The two most used names, as the typed commands build them (no table lookup).
    match name.as_bytes() {
        b"GET" => return known_cmd!("GET"),
        b"SET" => return known_cmd!("SET"),
        _ => {}
    }
    let mut c = Cmd {
        data: buf::CmdBuf::default(),
        argc: 0,
        blocking: Blocking::No,
        idempotent: None,
        read_from: None,
        large: None,
        spec: 0,
    };
    c.push_arg(name.as_bytes());
    c.spec = spec::row_of_name(name.as_bytes());
    c
}

impl Cmd {
    /// What [`cmd`]`(name)` builds, for a name the command table holds (see `known_cmd!`).
    pub(crate) const fn known(name: &'static str) -> Cmd {
        Cmd {
            data: buf::CmdBuf::bulk(name.as_bytes()),
            argc: 1,
            blocking: Blocking::No,
            idempotent: None,
            read_from: None,
            large: None,
            spec: spec::row_of_known(name),
        }
    }

    /// An empty command; add the name with [`Cmd::arg`].
    pub fn new() -> Cmd {
        Cmd::default()
    }

    /// Append an argument (or several, for collections and tuples).
    #[allow(clippy::should_implement_trait)]
    pub fn arg<A: ToArgs>(mut self, arg: A) -> Cmd {
        self.add_arg(arg);
        self
    }

    /// Append an argument in place.
    pub fn add_arg<A: ToArgs>(&mut self, arg: A) -> &mut Cmd {
        let unnamed = self.argc == 0;
        arg.write_args_owned(&mut ArgWriter { cmd: self });
        if unnamed {
            self.named();
        }
        self
    }

    /// The name was just added (`Cmd::new().arg(name)`): find its row in the command table.
    #[cold]
    fn named(&mut self) {
        self.spec = if self.argc == 0 {
            0
        } else {
            spec::row_of_name(self.name())
        };
    }

    /// Mark this command as one that may block on the server for `blocking`.
    pub fn blocking(mut self, blocking: Blocking) -> Cmd {
        self.blocking = blocking;
        self
    }

    /// Declare whether running this command twice has the same effect as once. The retry
    /// layer resends idempotent commands after an ambiguous failure (a timeout or I/O error
    /// after the write). Without a declaration, a built-in table of read-only and
    /// idempotent commands decides.
    pub fn idempotent(mut self, idempotent: bool) -> Cmd {
        self.idempotent = Some(idempotent);
        self
    }

    /// The caller's idempotency declaration, if any.
    pub fn idempotent_hint(&self) -> Option<bool> {
        self.idempotent
    }

    /// Where this command may be read from when it is read-only (see [`ReadFrom`]);
    /// without it, a [`Client`](crate::Client) sends read-only commands to its reader.
    ///
    /// ```
    /// use valkit::{cmd, ReadFrom};
    /// let c = cmd("GET").arg("k").read_from(ReadFrom::Writer);
    /// assert_eq!(c.read_from_hint(), Some(ReadFrom::Writer));
    /// ```
    pub fn read_from(mut self, read_from: ReadFrom) -> Cmd {
        self.read_from = Some(read_from);
        self
    }

    /// The caller's [`ReadFrom`] choice, if any.
    pub fn read_from_hint(&self) -> Option<ReadFrom> {
        self.read_from
    }

    /// How long the server may hold the reply.
    pub fn blocking_mode(&self) -> Blocking {
        self.blocking
    }

    /// The row of this command's name in the command table ([`spec::TABLE`]), if the
    /// table knows it (found once, when the name was added).
    #[inline(always)]
    pub(crate) fn spec_index(&self) -> Option<usize> {
        usize::from(self.spec & !spec::EFFECTS).checked_sub(1)
    }

    /// False when the command table says this command has no session effect, no refusal
    /// and no subcommand rows (or does not know it): checked before every send.
    #[inline(always)]
    pub(crate) fn has_effects(&self) -> bool {
        self.spec & spec::EFFECTS != 0
    }

    /// The first argument (the command name), or empty for an empty command.
    #[inline(always)]
    pub fn name(&self) -> &[u8] {
        if self.argc == 0 {
            return &[];
        }
        // The first `$<len>\r\n<bytes>\r\n` of `data` (a name of LARGE_ARG bytes or more
        // is kept aside: the general reader finds it).
        let mut len = 0usize;
        let mut i = 1;
        let data = self.data.as_slice();
        while let Some(&d) = data.get(i).filter(|d| d.is_ascii_digit()) {
            len = len * 10 + usize::from(d - b'0');
            i += 1;
        }
        if len >= LARGE_ARG {
            return self.args().next().unwrap_or(&[]);
        }
        data.get(i + 2..i + 2 + len).unwrap_or(&[])
    }

    /// All arguments, the name first.
    #[inline]
    pub fn args(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        Args {
            rest: self.data.as_slice(),
            left: self.argc,
            large: &self.large,
            taken: 0,
        }
    }

    /// Number of arguments, the name included.
    pub fn len(&self) -> usize {
        self.argc
    }

    /// True when not even a name was added.
    pub fn is_empty(&self) -> bool {
        self.argc == 0
    }

    /// Append this command's RESP encoding to `out`: the array header, then the arguments
    /// as they are stored (already encoded).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let large: usize = self.large_args().iter().map(|(_, b)| b.len()).sum();
        out.reserve(self.data.len() + large + 24);
        header(out, b'*', self.argc);
        let mut from = 0;
        for (at, bytes) in self.large_args() {
            out.extend_from_slice(&self.data.as_slice()[from..*at]);
            out.extend_from_slice(bytes);
            from = *at;
        }
        out.extend_from_slice(&self.data.as_slice()[from..]);
    }

    /// As [`Cmd::encode`], except that large arguments are not copied: their bytes are
    /// recorded in `parts` (with the offset in `out` where they belong) for the writer to
    /// send from where they are.
    #[inline]
    pub(crate) fn encode_parts(&self, out: &mut Vec<u8>, parts: &mut Vec<(usize, Bytes)>) {
        out.reserve(self.data.len() + 24);
        header(out, b'*', self.argc);
        let base = out.len();
        out.extend_from_slice(self.data.as_slice());
        if self.large.is_some() {
            self.large_parts(base, parts);
        }
    }

    /// [`Cmd::encode_parts`] for a command that needs no look before it is sent: named,
    /// under 10 arguments, none of them large or over `max_bulk_len`, no session effect,
    /// refusal or subcommand row (see [`Cmd::has_effects`]). False (nothing written) for
    /// any other command.
    #[inline(always)]
    pub(crate) fn encode_plain(&self, out: &mut Vec<u8>, max_bulk_len: usize) -> bool {
        let data = self.data.as_slice();
        if self.argc == 0
            || self.argc >= 10
            || self.large.is_some()
            || self.has_effects()
            || data.len() > max_bulk_len
        {
            return false;
        }
        out.extend_from_slice(&[b'*', b'0' + self.argc as u8, b'\r', b'\n']);
        out.extend_from_slice(data);
        true
    }

    #[cold]
    fn large_parts(&self, base: usize, parts: &mut Vec<(usize, Bytes)>) {
        for (at, bytes) in self.large_args() {
            parts.push((base + at, bytes.clone()));
        }
    }

    /// Refuse a command that must not be sent: one without a name (the server would wait
    /// for it silently, and so would the caller for its reply), or one with an argument
    /// longer than `max_bulk_len` (the server's `proto-max-bulk-len` refuses it too, after
    /// reading it all).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidCommand`](crate::ErrorKind::InvalidCommand), with
    /// [`Error::limit`] `Some(Limit::BulkLen)` for the too-long argument.
    #[inline]
    pub(crate) fn check_sendable(&self, max_bulk_len: usize) -> Result<()> {
        // No argument can be longer than the encoded small ones together (large ones are
        // kept aside), so the usual command needs no look at its arguments.
        if self.argc != 0 && self.large.is_none() && self.data.len() <= max_bulk_len {
            return Ok(());
        }
        self.refuse(max_bulk_len)
    }

    #[cold]
    fn refuse(&self, max_bulk_len: usize) -> Result<()> {
        if self.argc == 0 {
            return Err(Error::invalid_command(
                None,
                "empty command (no name): nothing was sent",
            ));
        }
        let longest = self.args().map(<[u8]>::len).max().unwrap_or(0);
        if longest > max_bulk_len {
            let name = self.name();
            return Err(Error::invalid_command(
                Some(Limit::BulkLen),
                format!(
                    "an argument of {} is {} bytes, over max_bulk_len {max_bulk_len}: \
                     nothing was sent",
                    name[..name.len().min(32)].escape_ascii(),
                    longest
                ),
            ));
        }
        Ok(())
    }

    /// True for commands whose arguments hold secrets (AUTH, HELLO ... AUTH, ACL SETUSER with
    /// a password rule, CONFIG SET requirepass, MIGRATE ... AUTH, SENTINEL SET auth-pass, ...;
    /// the command table in `cmd/spec` lists them): those arguments are never logged, and
    /// the server's error replies to such a command are scrubbed of them.
    pub fn is_sensitive(&self) -> bool {
        !secrets::secret_positions(self).is_empty()
    }

    /// Why `exec` and pipelines must not send this command (SUBSCRIBE, MONITOR, RESET,
    /// CLIENT REPLY): a typed [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported)
    /// error naming the API to use instead, or `None` for every other command.
    #[inline]
    pub(crate) fn refusal(&self) -> Option<crate::error::Error> {
        let why = spec::refusal(self)?;
        Some(Self::refused(self, why))
    }

    #[cold]
    fn refused(&self, why: spec::Refusal) -> crate::error::Error {
        let name = String::from_utf8_lossy(self.name()).to_ascii_uppercase();
        crate::error::Error::new(crate::error::ErrorKind::Unsupported, why.explain(&name))
    }

    #[inline]
    pub(crate) fn push_arg(&mut self, bytes: &[u8]) {
        if self.data.push_short_bulk(bytes) {
            self.argc += 1;
            return;
        }
        self.push_arg_slow(bytes);
    }

    /// [`Cmd::push_arg`] for an argument of 100 bytes or more, or one that does not fit
    /// inline.
    fn push_arg_slow(&mut self, bytes: &[u8]) {
        if bytes.len() >= LARGE_ARG {
            self.push_large_copy(bytes);
            return;
        }
        // One reservation for the header, the bytes and CRLF (exact for lengths below 100,
        // so that a short command stays within `cmd`'s first 64 bytes).
        let n = bytes.len();
        let head = if n < 10 {
            4
        } else if n < 100 {
            5
        } else {
            23
        };
        self.data.reserve(head + n + 2);
        header(&mut self.data, b'$', n);
        self.data.extend_from_slice(bytes);
        self.data.extend_from_slice(b"\r\n");
        self.argc += 1;
    }

    /// Append an argument held in `bytes`: kept aside, without a copy, when it is large.
    pub(crate) fn push_shared(&mut self, bytes: Bytes) {
        if bytes.len() >= LARGE_ARG {
            self.push_large(bytes);
        } else {
            self.push_arg(&bytes);
        }
    }

    /// The large arguments, in order (see `large`).
    fn large_args(&self) -> &[(usize, Bytes)] {
        self.large.as_deref().map_or(&[], Vec::as_slice)
    }

    #[cold]
    fn push_large_copy(&mut self, bytes: &[u8]) {
        self.push_large(Bytes::from(bytes));
    }

    #[cold]
    fn push_large(&mut self, bytes: Bytes) {
        let n = bytes.len();
        header(&mut self.data, b'$', n);
        let at = self.data.len();
        self.large
            .get_or_insert_with(Box::default)
            .push((at, bytes));
        self.data.extend_from_slice(b"\r\n");
        self.argc += 1;
    }
}

/// Where a RESP header can be written: a socket's write buffer, or a command's own.
trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl Sink for buf::CmdBuf {
    #[inline(always)]
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// Append `prefix`, `n` in decimal and CRLF (a RESP array or bulk string header), with
/// straight-line code for the usual one- and two-digit counts and lengths.
#[inline(always)]
fn header(out: &mut impl Sink, prefix: u8, n: usize) {
    if n < 10 {
        out.put(&[prefix, b'0' + n as u8, b'\r', b'\n']);
    } else if n < 100 {
        out.put(&[
            prefix,
            b'0' + (n / 10) as u8,
            b'0' + (n % 10) as u8,
            b'\r',
            b'\n',
        ]);
    } else {
        long_header(out, prefix, n);
    }
}

/// [`header`] for three digits or more.
fn long_header(out: &mut impl Sink, prefix: u8, mut n: usize) {
    // The prefix, up to 20 digits, CRLF, written from the end.
    let mut buf = [0u8; 23];
    let mut at = buf.len() - 2;
    buf[at..].copy_from_slice(b"\r\n");
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    at -= 1;
    buf[at] = prefix;
    out.put(&buf[at..]);
}

/// The arguments of a [`Cmd`], read back from their encoded form.
struct Args<'a> {
    /// What is left of `Cmd::data`: `left` encoded bulk strings.
    rest: &'a [u8],
    left: usize,
    /// The large arguments not yet reached (their bytes are not in `rest`).
    #[allow(clippy::box_collection)]
    large: &'a Option<Box<Vec<(usize, Bytes)>>>,
    /// How many of `large` were reached.
    taken: usize,
}

impl<'a> Iterator for Args<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // `$<len>\r\n<bytes>\r\n`, written by `push_arg`: well-formed by construction.
        let mut len = 0usize;
        let mut i = 1;
        while let Some(&d) = self.rest.get(i).filter(|d| d.is_ascii_digit()) {
            len = len * 10 + usize::from(d - b'0');
            i += 1;
        }
        let start = i + 2;
        if len >= LARGE_ARG {
            return self.large_arg(start);
        }
        let arg = &self.rest[start..start + len];
        self.rest = &self.rest[start + len + 2..];
        Some(arg)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Args<'_> {}

impl<'a> Args<'a> {
    /// The next large argument, whose header ends at `start` in `rest` (its bytes are in
    /// `large`, only its CRLF is in `rest`).
    #[cold]
    fn large_arg(&mut self, start: usize) -> Option<&'a [u8]> {
        let (_, bytes) = self.large.as_deref()?.get(self.taken)?;
        self.taken += 1;
        self.rest = &self.rest[start + 2..];
        Some(bytes)
    }
}

impl std::fmt::Debug for Cmd {
    /// Shows the arguments truncated to 64 bytes each, with every secret argument (per the
    /// command table) replaced by `<redacted>`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = secrets::secret_positions(self);
        let mut list = f.debug_list();
        for (i, a) in self.args().enumerate() {
            if hidden.contains(&i) {
                list.entry(&secrets::REDACTED);
                continue;
            }
            let cut = &a[..a.len().min(64)];
            let mut s = String::from_utf8_lossy(cut).into_owned();
            if a.len() > 64 {
                s.push_str(&format!("...({} bytes)", a.len()));
            }
            list.entry(&s);
        }
        list.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_as_resp_array() {
        let mut out = Vec::new();
        cmd("SET").arg("k").arg(&b"a\r\nb"[..]).encode(&mut out);
        assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\na\r\nb\r\n");
    }

    #[test]
    fn args_read_back_from_the_encoded_form() {
        let long = vec![b'z'; 12345];
        let c = cmd("SET")
            .arg("")
            .arg(&b"a\r\nb$3\r\n"[..])
            .arg(&long[..])
            .arg(&[b'q'; 99][..])
            .arg(&[b'r'; 100][..]);
        let args: Vec<&[u8]> = c.args().collect();
        assert_eq!(
            args,
            [
                &b"SET"[..],
                b"",
                b"a\r\nb$3\r\n",
                &long[..],
                &[b'q'; 99][..],
                &[b'r'; 100][..]
            ]
        );
        assert_eq!(c.len(), 6);
        assert_eq!(c.args().len(), 6);
        assert_eq!(c.name(), b"SET");
        let mut out = Vec::new();
        c.encode(&mut out);
        let mut expected = Vec::new();
        crate::resp::encode_command(&mut expected, args.iter().copied());
        assert_eq!(out, expected);
        assert!(Cmd::new().is_empty());
        assert_eq!(Cmd::new().name(), b"");
        let mut out = Vec::new();
        Cmd::new().encode(&mut out);
        assert_eq!(out, b"*0\r\n");
        let mut many = cmd("DEL");
        for i in 0..150 {
            many.add_arg(i);
        }
        let mut out = Vec::new();
        many.encode(&mut out);
        let mut expected = Vec::new();
        crate::resp::encode_command(&mut expected, many.args());
        assert_eq!(out, expected);
        assert!(out.starts_with(b"*151\r\n$3\r\nDEL\r\n$1\r\n0\r\n"));
    }

    /// `c`'s Debug hides every argument equal to `secret`, shows every other argument, and
    /// `is_sensitive` says so.
    fn assert_redacts(c: Cmd, secrets: &[&str]) {
        let shown = format!("{c:?}");
        for s in secrets {
            assert!(!shown.contains(s), "{s:?} visible in {shown}");
        }
        assert!(c.is_sensitive(), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
        // Everything that is not a secret stays readable.
        for a in c.args() {
            let a = String::from_utf8_lossy(a);
            if !secrets.iter().any(|s| a.contains(s)) {
                assert!(shown.contains(&*a), "{a:?} hidden in {shown}");
            }
        }
    }

    // One test per row of the command table (cmd/spec) that carries secrets.

    #[test]
    fn redacts_auth() {
        assert_redacts(cmd("AUTH").arg("hunter2"), &["hunter2"]);
        assert_redacts(cmd("auth").arg("app").arg("hunter2"), &["app", "hunter2"]);
    }

    #[test]
    fn redacts_hello_auth() {
        assert_redacts(
            cmd("HELLO").arg(3).arg("AUTH").arg("app").arg("hunter2"),
            &["app", "hunter2"],
        );
        assert_redacts(
            cmd("hello")
                .arg(3)
                .arg("auth")
                .arg("app")
                .arg("hunter2")
                .arg("SETNAME")
                .arg("n"),
            &["app", "hunter2"],
        );
        assert!(!cmd("HELLO").arg(3).is_sensitive());
        assert!(!cmd("HELLO").arg(3).arg("SETNAME").arg("n").is_sensitive());
    }

    #[test]
    fn redacts_acl_setuser_password_rules() {
        assert_redacts(
            cmd("ACL")
                .arg("SETUSER")
                .arg("alice")
                .arg("on")
                .arg(">hunter2")
                .arg("<oldpass")
                .arg("~*")
                .arg("+@all"),
            &["hunter2", "oldpass"],
        );
        let hash = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8";
        assert_redacts(
            cmd("acl")
                .arg("setuser")
                .arg("bob")
                .arg(format!("#{hash}"))
                .arg(format!("!{hash}")),
            &[hash],
        );
        assert!(!cmd("ACL")
            .arg("SETUSER")
            .arg("carol")
            .arg("on")
            .arg("nopass")
            .is_sensitive());
    }

    #[test]
    fn redacts_config_set_secrets() {
        for name in [
            "requirepass",
            "masterauth",
            "masteruser",
            "primaryauth",
            "primaryuser",
            "tls-key-file-pass",
            "tls-client-key-file-pass",
        ] {
            assert_redacts(
                cmd("CONFIG").arg("SET").arg(name).arg("hunter2"),
                &["hunter2"],
            );
            // Several pairs in one CONFIG SET (Redis 7+), any case.
            assert_redacts(
                cmd("config")
                    .arg("set")
                    .arg("maxmemory")
                    .arg("10mb")
                    .arg(name.to_uppercase())
                    .arg("hunter2"),
                &["hunter2"],
            );
        }
        assert!(!cmd("CONFIG")
            .arg("SET")
            .arg("maxmemory")
            .arg("1mb")
            .is_sensitive());
        assert!(!cmd("CONFIG").arg("GET").arg("requirepass").is_sensitive());
    }

    #[test]
    fn redacts_migrate_auth_and_auth2() {
        let base = || {
            cmd("MIGRATE")
                .arg("10.0.0.2")
                .arg(6379)
                .arg("")
                .arg(0)
                .arg(5000)
        };
        assert_redacts(
            base()
                .arg("COPY")
                .arg("AUTH")
                .arg("hunter2")
                .arg("KEYS")
                .arg("a")
                .arg("b"),
            &["hunter2"],
        );
        assert_redacts(
            base()
                .arg("REPLACE")
                .arg("auth2")
                .arg("app")
                .arg("hunter2")
                .arg("KEYS")
                .arg("a"),
            &["app", "hunter2"],
        );
        assert!(!base().arg("KEYS").arg("a").is_sensitive());
    }

    #[test]
    fn redacts_sentinel_set_auth() {
        assert_redacts(
            cmd("SENTINEL")
                .arg("SET")
                .arg("mymaster")
                .arg("auth-pass")
                .arg("hunter2"),
            &["hunter2"],
        );
        assert_redacts(
            cmd("sentinel")
                .arg("set")
                .arg("mymaster")
                .arg("quorum")
                .arg(2)
                .arg("AUTH-USER")
                .arg("app")
                .arg("auth-pass")
                .arg("hunter2"),
            &["app", "hunter2"],
        );
        assert!(!cmd("SENTINEL")
            .arg("SET")
            .arg("m")
            .arg("quorum")
            .arg(2)
            .is_sensitive());
    }

    #[test]
    fn redacts_sentinel_config_set_pass() {
        assert_redacts(
            cmd("SENTINEL")
                .arg("CONFIG")
                .arg("SET")
                .arg("sentinel-pass")
                .arg("hunter2"),
            &["hunter2"],
        );
        assert_redacts(
            cmd("SENTINEL")
                .arg("CONFIG")
                .arg("SET")
                .arg("sentinel-user")
                .arg("app")
                .arg("sentinel-pass")
                .arg("hunter2"),
            &["app", "hunter2"],
        );
        assert!(!cmd("SENTINEL")
            .arg("CONFIG")
            .arg("SET")
            .arg("resolve-hostnames")
            .arg("yes")
            .is_sensitive());
    }

    #[test]
    fn redacts_module_load_arguments() {
        assert_redacts(
            cmd("MODULE")
                .arg("LOAD")
                .arg("/m.so")
                .arg("password")
                .arg("hunter2"),
            &["password", "hunter2"],
        );
        assert_redacts(
            cmd("MODULE")
                .arg("LOADEX")
                .arg("/m.so")
                .arg("CONFIG")
                .arg("m.secret")
                .arg("hunter2"),
            &["CONFIG", "m.secret", "hunter2"],
        );
        assert!(!cmd("MODULE").arg("LOAD").arg("/m.so").is_sensitive());
    }

    #[test]
    fn other_commands_show_every_argument() {
        let c = cmd("GET").arg("visible");
        assert!(format!("{c:?}").contains("visible"));
        assert!(!c.is_sensitive());
        // A key named like a keyword is not a secret's neighbour outside its command.
        let c = cmd("SET").arg("AUTH").arg("value");
        assert_eq!(format!("{c:?}"), r#"["SET", "AUTH", "value"]"#);
    }

    #[test]
    fn push_mode_commands_are_refused() {
        for name in [
            "SUBSCRIBE",
            "psubscribe",
            "SSUBSCRIBE",
            "UNSUBSCRIBE",
            "PUNSUBSCRIBE",
            "SUNSUBSCRIBE",
            "MONITOR",
            "RESET",
        ] {
            let e = cmd(name).arg("c").refusal().expect(name);
            assert_eq!(e.kind(), crate::ErrorKind::Unsupported, "{name}");
            assert!(e.detail().contains(&name.to_uppercase()), "{e}");
        }
        let e = cmd("CLIENT")
            .arg("REPLY")
            .arg("OFF")
            .refusal()
            .expect("CLIENT REPLY");
        assert!(e.detail().contains("CLIENT"), "{e}");
        assert!(cmd("SUBSCRIBE")
            .refusal()
            .unwrap()
            .detail()
            .contains("pub/sub API"));
        assert!(cmd("PUBLISH").arg("c").arg("m").refusal().is_none());
        assert!(cmd("CLIENT").arg("ID").refusal().is_none());
        assert!(cmd("GET").arg("SUBSCRIBE").refusal().is_none());
    }

    #[test]
    fn debug_truncates_long_args() {
        let c = cmd("SET").arg("k").arg(vec![b'x'; 1000]);
        let s = format!("{c:?}");
        assert!(s.len() < 200, "{s}");
        assert!(s.contains("1000 bytes"));
    }
}
