//! `SCAN`, `HSCAN`, `SSCAN` and `ZSCAN` as iterators: [`ScanOptions`] and [`ScanIter`].

use std::collections::VecDeque;
use std::iter::FusedIterator;

use crate::cmd::{Cmd, Execute, FromValue};
use crate::error::{Error, Result};

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

/// The items of a `SCAN`-family command, fetched batch by batch as the iterator advances.
///
/// Made by [`Commands::scan`](crate::Commands::scan) (keys),
/// [`hscan`](crate::Commands::hscan) (`(field, value)` pairs),
/// [`sscan`](crate::Commands::sscan) (members) and [`zscan`](crate::Commands::zscan)
/// (`(member, score)` pairs); each item converts into `T` (any [`FromValue`] type). It
/// follows the cursor until the server returns cursor `0`. `SCAN`'s guarantees apply: every
/// item present for the whole scan is returned at least once, but an item may be returned
/// more than once. After an error the iterator yields that error once and then ends.
pub struct ScanIter<'a, E: ?Sized, T> {
    ex: &'a E,
    walk: ScanWalk<T>,
}

impl<'a, E: Execute + ?Sized, T: FromValue> ScanIter<'a, E, T> {
    pub(crate) fn new(ex: &'a E, base: Cmd, opts: ScanOptions) -> ScanIter<'a, E, T> {
        ScanIter {
            ex,
            walk: ScanWalk::new(base, opts),
        }
    }
}

/// One cursor walk of a `SCAN`-family command, apart from what runs its commands: a
/// [`ScanIter`] walks one executor; the cluster-wide scan walks each primary in turn.
pub(crate) struct ScanWalk<T> {
    /// The command up to the cursor: `SCAN`, or `HSCAN key`, ...
    base: Cmd,
    opts: ScanOptions,
    cursor: Vec<u8>,
    buffered: VecDeque<T>,
    done: bool,
}

impl<T: FromValue> ScanWalk<T> {
    /// A walk from cursor `0`.
    pub(crate) fn new(base: Cmd, opts: ScanOptions) -> ScanWalk<T> {
        ScanWalk {
            base,
            opts,
            cursor: b"0".to_vec(),
            buffered: VecDeque::new(),
            done: false,
        }
    }

    /// The next item, fetching the next batch through `ex` when none is buffered; `None`
    /// once the server returned cursor `0` and the batch is drained, or after an error
    /// (returned once).
    pub(crate) fn next<E: Execute + ?Sized>(&mut self, ex: &E) -> Option<Result<T>> {
        loop {
            if let Some(k) = self.buffered.pop_front() {
                return Some(Ok(k));
            }
            if self.done {
                return None;
            }
            if let Err(e) = self.fetch(ex) {
                self.done = true;
                return Some(Err(e));
            }
        }
    }

    /// Fetch the next batch into the buffer.
    fn fetch<E: Execute + ?Sized>(&mut self, ex: &E) -> Result<()> {
        let mut c = self.base.clone().arg(&self.cursor);
        if let Some(p) = &self.opts.pattern {
            c = c.arg("MATCH").arg(p);
        }
        if let Some(n) = self.opts.count {
            c = c.arg("COUNT").arg(n);
        }
        if let Some(t) = &self.opts.type_ {
            c = c.arg("TYPE").arg(t);
        }
        // `[cursor, [items...]]`; pair items (HSCAN, ZSCAN) come flat in both protocols.
        let (cursor, items): (Vec<u8>, Vec<T>) = super::run(ex, &c)?;
        check_cursor(&cursor)?;
        if cursor == b"0" {
            self.done = true;
        }
        self.cursor = cursor;
        self.buffered.extend(items);
        Ok(())
    }
}

impl<T> std::fmt::Debug for ScanWalk<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScanWalk")
            .field("command", &self.base)
            .field("opts", &self.opts)
            .field("cursor", &String::from_utf8_lossy(&self.cursor))
            .field("buffered", &self.buffered.len())
            .field("done", &self.done)
            .finish()
    }
}

/// A cursor is a decimal number; anything else would be sent back as garbage.
fn check_cursor(cursor: &[u8]) -> Result<()> {
    if cursor.is_empty() || !cursor.iter().all(u8::is_ascii_digit) {
        return Err(Error::conversion(format!(
            "bad SCAN cursor {:?}",
            String::from_utf8_lossy(cursor)
        )));
    }
    Ok(())
}

impl<E: Execute + ?Sized, T: FromValue> Iterator for ScanIter<'_, E, T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        self.walk.next(self.ex)
    }
}

impl<E: Execute + ?Sized, T: FromValue> FusedIterator for ScanIter<'_, E, T> {}

impl<E: ?Sized, T> std::fmt::Debug for ScanIter<'_, E, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.walk, f)
    }
}
