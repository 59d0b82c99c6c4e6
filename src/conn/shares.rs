//! The shares of a pipeline a cluster client splits: one per connection (node), every
//! share sent before any reply is read, so the nodes work at the same time without a
//! thread per node; then each share's replies read in turn, in place or as values.

use parking_lot::MutexGuard;

use super::{Connection, Inner};
use crate::cmd::secrets::{scrub_error, scrub_reply};
use crate::cmd::Share;
use crate::error::{Error, Result};
use crate::resp::{Frame, Value};

/// Shares sent, each on its own connection, held (locked) until every reply is read.
///
/// Dropping it reads and drops whatever replies are left (or leaves a connection broken),
/// so no connection goes back to its pool with replies pending.
pub(crate) struct SentShares<'a> {
    shares: Vec<Sent<'a>>,
}

struct Sent<'a> {
    inner: MutexGuard<'a, Inner>,
    share: Share<'a>,
    /// Replies read so far (a share that could not be sent has none to read: `len`).
    read: usize,
}

impl<'a> SentShares<'a> {
    /// Send every share on its connection. The second value says, per share, whether it
    /// was sent; one that was not has nothing to read.
    pub(crate) fn send(jobs: &[(&'a Connection, Share<'a>)]) -> (SentShares<'a>, Vec<Result<()>>) {
        let mut shares = Vec::with_capacity(jobs.len());
        let mut sent = Vec::with_capacity(jobs.len());
        for &(conn, share) in jobs {
            let mut inner = conn.inner.lock();
            let r = inner.send_share(share);
            let read = if r.is_ok() { 0 } else { share.len() };
            shares.push(Sent { inner, share, read });
            sent.push(r);
        }
        (SentShares { shares }, sent)
    }

    /// Read the next reply of share `g` in place into `read` (as `Execute::exec_frame`
    /// does): a server error reply is returned as `Err` and `read` is not called.
    pub(crate) fn read_next(
        &mut self,
        g: usize,
        read: &mut dyn FnMut(Frame<'_>) -> Result<()>,
    ) -> Result<()> {
        let s = &mut self.shares[g];
        if s.read >= s.share.len() {
            return Err(Error::conversion("more replies read than commands sent"));
        }
        s.inner.check_usable()?;
        let c = s.share.command(s.read);
        s.read += 1;
        let mut called = false;
        let r = s.inner.read_frame(&mut |f| {
            called = true;
            read(f)
        });
        match r {
            Err(e) if !called && s.inner.broken.is_none() => Err(scrub_error(c, e)),
            r => r,
        }
    }

    /// Whether share `g`'s connection failed (its remaining replies cannot be read).
    pub(crate) fn is_broken(&self, g: usize) -> bool {
        self.shares[g].inner.broken.is_some()
    }

    /// The replies of share `g` not read yet, as values, one per command.
    pub(crate) fn read_rest(&mut self, g: usize) -> Result<Vec<Value>> {
        let s = &mut self.shares[g];
        let mut out = Vec::with_capacity(s.share.len() - s.read);
        while s.read < s.share.len() {
            s.inner.check_usable()?;
            let c = s.share.command(s.read);
            s.read += 1;
            let mut reply = s.inner.read_reply()?;
            scrub_reply(c, &mut reply);
            out.push(reply);
        }
        Ok(out)
    }
}

impl Drop for SentShares<'_> {
    fn drop(&mut self) {
        for s in &mut self.shares {
            // Replies nobody asked for: read and dropped, to keep the connection in step
            // (a failure breaks it, and its pool then drops it).
            while s.read < s.share.len() && s.inner.broken.is_none() {
                s.read += 1;
                let _ = s.inner.read_frame(&mut |_| Ok(()));
            }
            s.inner.reply_timeout = s.inner.read_timeout;
            s.inner.decoder.compact();
        }
    }
}
