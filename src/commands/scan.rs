//! `SCAN` as an iterator: [`ScanOptions`] and [`ScanIter`].

use std::collections::VecDeque;
use std::iter::FusedIterator;

use crate::cmd::{cmd, Execute, FromValue};
use crate::error::{Error, Result};
use crate::resp::Value;

/// Filters and batch size of a `SCAN`.
///
/// ```
/// use valkit::ScanOptions;
/// let opts = ScanOptions::new().pattern("user:*").count(100).type_("hash");
/// assert_eq!(opts.pattern.as_deref(), Some(&b"user:*"[..]));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScanOptions {
    /// `MATCH pattern`: only keys matching this glob-style pattern.
    pub pattern: Option<Vec<u8>>,
    /// `COUNT n`: a hint of how much work each round trip does (default 10 on the server).
    pub count: Option<u64>,
    /// `TYPE name`: only keys of this type (`string`, `hash`, `zset`, ...).
    pub type_: Option<String>,
}

impl ScanOptions {
    /// Scan everything, with the server's default batch size.
    pub fn new() -> ScanOptions {
        ScanOptions::default()
    }

    /// Only keys matching `pattern` (`MATCH`).
    pub fn pattern(mut self, pattern: impl AsRef<[u8]>) -> ScanOptions {
        self.pattern = Some(pattern.as_ref().to_vec());
        self
    }

    /// Ask for about `count` keys per round trip (`COUNT`).
    pub fn count(mut self, count: u64) -> ScanOptions {
        self.count = Some(count);
        self
    }

    /// Only keys holding this type (`TYPE`, Redis 6+).
    pub fn type_(mut self, type_: impl Into<String>) -> ScanOptions {
        self.type_ = Some(type_.into());
        self
    }
}

/// The keys of a `SCAN`, fetched batch by batch as the iterator advances.
///
/// Made by [`Commands::scan`](crate::Commands::scan). It follows the cursor until the server
/// returns cursor `0`. `SCAN`'s guarantees apply: every key present for the whole scan is
/// returned at least once, but a key may be returned more than once. After an error the
/// iterator yields that error once and then ends.
pub struct ScanIter<'a, E: ?Sized> {
    ex: &'a E,
    opts: ScanOptions,
    cursor: Vec<u8>,
    buffered: VecDeque<Vec<u8>>,
    done: bool,
}

impl<'a, E: Execute + ?Sized> ScanIter<'a, E> {
    pub(crate) fn new(ex: &'a E, opts: ScanOptions) -> ScanIter<'a, E> {
        ScanIter {
            ex,
            opts,
            cursor: b"0".to_vec(),
            buffered: VecDeque::new(),
            done: false,
        }
    }

    /// Fetch the next batch into the buffer.
    fn fetch(&mut self) -> Result<()> {
        let mut c = cmd("SCAN").arg(&self.cursor);
        if let Some(p) = &self.opts.pattern {
            c = c.arg("MATCH").arg(p);
        }
        if let Some(n) = self.opts.count {
            c = c.arg("COUNT").arg(n);
        }
        if let Some(t) = &self.opts.type_ {
            c = c.arg("TYPE").arg(t);
        }
        let (cursor, keys) = parse_scan_reply(self.ex.exec(&c)?)?;
        if cursor == b"0" {
            self.done = true;
        }
        self.cursor = cursor;
        self.buffered.extend(keys);
        Ok(())
    }
}

/// A `SCAN`-family reply: `[cursor, [items...]]`.
pub(crate) fn parse_scan_reply(v: Value) -> Result<(Vec<u8>, Vec<Vec<u8>>)> {
    let (cursor, keys): (Vec<u8>, Vec<Vec<u8>>) = FromValue::from_value(v)?;
    if cursor.is_empty() || !cursor.iter().all(u8::is_ascii_digit) {
        return Err(Error::conversion(format!(
            "bad SCAN cursor {:?}",
            String::from_utf8_lossy(&cursor)
        )));
    }
    Ok((cursor, keys))
}

impl<E: Execute + ?Sized> Iterator for ScanIter<'_, E> {
    type Item = Result<Vec<u8>>;

    fn next(&mut self) -> Option<Result<Vec<u8>>> {
        loop {
            if let Some(k) = self.buffered.pop_front() {
                return Some(Ok(k));
            }
            if self.done {
                return None;
            }
            if let Err(e) = self.fetch() {
                self.done = true;
                return Some(Err(e));
            }
        }
    }
}

impl<E: Execute + ?Sized> FusedIterator for ScanIter<'_, E> {}

impl<E: ?Sized> std::fmt::Debug for ScanIter<'_, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScanIter")
            .field("opts", &self.opts)
            .field("cursor", &String::from_utf8_lossy(&self.cursor))
            .field("buffered", &self.buffered.len())
            .field("done", &self.done)
            .finish()
    }
}
