//! The cluster-wide `SCAN` as an iterator: every primary in turn, one batch in memory at a
//! time ([`Client::scan_cluster_iter`]).

use crate::cmd::{cmd, Cmd, Execute, FromValue, Pipeline};
use crate::commands::{ScanOptions, ScanWalk};
use crate::error::{Error, ErrorKind, Result};
use crate::resp::Value;

use super::Client;

/// The keys of every primary of a cluster (or of the one server of a client that is not a
/// cluster client), fetched batch by batch as the iterator advances: at most one `SCAN`
/// reply is held at a time, however many keys the cluster has.
///
/// Made by [`Client::scan_cluster_iter`]. The primaries are those of the slot map when
/// the scan starts, scanned one after another, each through its own pool and circuit
/// breaker with the client's retry policy. `SCAN`'s guarantees hold per node: a key present
/// for the whole scan (and not moved between nodes meanwhile) is returned at least once,
/// possibly more than once. After an error (a primary lost mid-scan, for example) the
/// iterator yields that error once and then ends.
pub struct ClusterScan<'a, T> {
    client: &'a Client,
    /// The primaries not started yet; `None` when the client is not a cluster client.
    pending: Option<std::vec::IntoIter<String>>,
    /// The primary being scanned (unused when not a cluster client).
    node: String,
    walk: ScanWalk<T>,
    opts: ScanOptions,
    done: bool,
}

/// One node of the cluster, as an executor for its scan.
struct OnNode<'a> {
    client: &'a Client,
    addr: &'a str,
}

impl Execute for OnNode<'_> {
    fn exec(&self, c: &Cmd) -> Result<Value> {
        self.client.on_node(self.addr, c)
    }

    fn exec_pipeline(&self, _: &Pipeline) -> Result<Vec<Value>> {
        Err(Error::new(
            ErrorKind::Unsupported,
            "a cluster scan runs single commands only",
        ))
    }
}

impl Client {
    /// Every key matching `opts` on every primary of the cluster, as an iterator that holds
    /// one `SCAN` batch at a time (see [`ClusterScan`]); on a client that is not a cluster
    /// client, the keys of its one server. Each item converts into `T` (`Vec<u8>`,
    /// `String`, ...).
    ///
    /// ```no_run
    /// use valkit::{Client, ScanOptions};
    /// # fn main() -> valkit::Result<()> {
    /// let client = Client::from_env()?;
    /// let mut stale = 0;
    /// for key in client.scan_cluster_iter::<String>(ScanOptions::new().pattern("tmp:*").count(500)) {
    ///     let _key = key?;
    ///     stale += 1;
    /// }
    /// # let _ = stale;
    /// # Ok(()) }
    /// ```
    pub fn scan_cluster_iter<T: FromValue>(&self, opts: ScanOptions) -> ClusterScan<'_, T> {
        let (pending, node, done) = match self.shared.shape.cluster() {
            Some(_) => {
                let mut primaries = self.primaries().into_iter();
                let first = primaries.next();
                let done = first.is_none();
                (Some(primaries), first.unwrap_or_default(), done)
            }
            None => (None, String::new(), false),
        };
        ClusterScan {
            client: self,
            pending,
            node,
            walk: ScanWalk::new(cmd("SCAN"), opts.clone()),
            opts,
            done,
        }
    }
}

impl<T: FromValue> Iterator for ClusterScan<'_, T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        while !self.done {
            let item = match &self.pending {
                None => self.walk.next(self.client),
                Some(_) => self.walk.next(&OnNode {
                    client: self.client,
                    addr: &self.node,
                }),
            };
            match item {
                Some(Ok(k)) => return Some(Ok(k)),
                Some(Err(e)) => {
                    self.done = true;
                    return Some(Err(e));
                }
                // This node is scanned: the next one, if any.
                None => match self.pending.as_mut().and_then(Iterator::next) {
                    Some(addr) => {
                        self.node = addr;
                        self.walk = ScanWalk::new(cmd("SCAN"), self.opts.clone());
                    }
                    None => self.done = true,
                },
            }
        }
        None
    }
}

impl<T: FromValue> std::iter::FusedIterator for ClusterScan<'_, T> {}

impl<T> std::fmt::Debug for ClusterScan<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterScan")
            .field("node", &self.node)
            .field("nodes_left", &self.pending.as_ref().map_or(0, |p| p.len()))
            .field("walk", &self.walk)
            .field("done", &self.done)
            .finish()
    }
}
