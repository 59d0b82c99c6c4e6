//! A pipeline on a cluster client: split by the node that owns each command's slot, every
//! node's share sent before any is read, replies put back in the caller's order; MOVED/ASK
//! replies inside are followed per command, failed shares run again through the cluster
//! topology's retry path.
//!
//! A share is sent and read straight from the caller's [`Pipeline`] (a [`Share`]: the
//! commands' indexes, nothing copied). `Pipeline::query` reads each reply where it lies,
//! into its place in the result, whichever node it comes from (see
//! [`Client::cluster_pipeline_replies`]).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::breaker::{Breaker, Permit};
use super::retry::{is_availability_failure, RetryPolicy};
use super::routing::{self, CommandName};
use super::topology::{cross_slot, no_owner, one_node_scan, slot_or_cross, Reads};
use super::{Client, Retry};
use crate::cluster::SlotMap;
use crate::cmd::keys::{slot_of, SlotOf};
use crate::cmd::{BuildReplies, Cmd, Execute, Pipeline, Share};
use crate::conn::{Connection, SentShares};
use crate::error::{Error, ErrorKind, Result, ServerErrorKind};
use crate::pool::PooledConnection;
use crate::resp::{Frame, Value};

/// Where a pipeline runs on a cluster.
enum Plan<'m> {
    /// On one node: one slot (the slot), no key (`None`), or a transaction.
    One(Option<u16>),
    /// Split by node, in the order the nodes first appear in the pipeline.
    Split(Split<'m>),
}

/// A pipeline split by node: every command's index in one vector, group after group (three
/// allocations per pipeline however many commands and groups).
struct Split<'m> {
    /// The slot map snapshot planned against.
    map: &'m SlotMap,
    groups: Vec<Group<'m>>,
    /// The commands' indexes in the pipeline, group after group, ascending within a group.
    order: Vec<usize>,
    /// The group of each command.
    group_of: Vec<usize>,
}

/// One node's share of a split pipeline.
struct Group<'m> {
    /// The primary that owns the share's slots (borrowed from the slot map snapshot).
    addr: &'m str,
    /// The share's commands: `order[start..end]`.
    start: usize,
    end: usize,
    /// A slot of the share (to route it again).
    slot: Option<u16>,
    /// The share's shard in the slot map snapshot (its primary's pool, cached there).
    shard: usize,
    /// Every command of the share is idempotent.
    idempotent: bool,
}

impl Split<'_> {
    /// Group `g`'s commands, as a share of `p`.
    fn share<'p>(&'p self, p: &'p Pipeline, g: usize) -> Share<'p> {
        let group = &self.groups[g];
        p.share(&self.order[group.start..group.end])
    }

    /// Every group's share of `p`, in group order.
    fn shares<'p>(&'p self, p: &'p Pipeline) -> Vec<Share<'p>> {
        (0..self.groups.len()).map(|g| self.share(p, g)).collect()
    }
}

/// `Split::group_of` while planning: a command with no key (any group will do).
const KEYLESS: usize = usize::MAX;

/// How the first attempt of one node's share of a split pipeline ended.
enum First {
    /// Settled: the replies, or an error the retry policy must not repeat.
    Done(Result<Vec<Value>>),
    /// To run again through the per-group path (redirect, retry).
    Again(Error),
}

/// A connection checked out for one group's first attempt.
struct Held {
    /// The group's index.
    g: usize,
    breaker: Arc<Breaker>,
    permit: Permit,
    conn: PooledConnection,
}

/// Plan `p` against the slot map `map`: one node, or a split by the primary that owns
/// each command's slot (keyless commands join the first group). Each command's slot is
/// computed once.
fn plan<'m>(p: &Pipeline, map: &'m SlotMap) -> Result<Plan<'m>> {
    let cmds = p.commands();
    let mut slot = SlotOf::Any;
    // Each command's slot (KEYLESS: none), turned into its group below.
    let mut group_of = Vec::with_capacity(cmds.len());
    for c in cmds {
        let s = slot_of(c);
        group_of.push(match s {
            SlotOf::Slot(s) => usize::from(s),
            SlotOf::Any => {
                one_node_scan(c, None)?;
                KEYLESS
            }
            SlotOf::Cross(a, b) => return Err(cross_slot(a, b)),
        });
        slot = slot.merge(s);
    }
    if p.is_atomic() || !matches!(slot, SlotOf::Cross(..)) {
        return Ok(Plan::One(slot_or_cross(slot)?));
    }
    // Addresses borrowed from the map snapshot: no allocation per command. A group's `end`
    // counts its commands until the offsets are laid out.
    let mut groups: Vec<Group<'m>> = Vec::new();
    // Each shard's group (NO_GROUP: none yet).
    const NO_GROUP: usize = usize::MAX;
    let mut by_shard = vec![NO_GROUP; map.shards().len()];
    let mut keyless = 0;
    let mut keyless_idempotent = true;
    for (g, c) in group_of.iter_mut().zip(cmds) {
        if *g == KEYLESS {
            keyless += 1;
            keyless_idempotent &= routing::is_idempotent(c);
            continue;
        }
        // (A slot: below SLOTS.)
        let s = *g as u16;
        let Some(shard) = map.shard_index(s) else {
            return Err(no_owner(s));
        };
        let k = &mut by_shard[shard];
        if *k == NO_GROUP {
            *k = groups.len();
            groups.push(Group {
                addr: map.shards()[shard].primary.as_str(),
                start: 0,
                end: 0,
                slot: Some(s),
                shard,
                idempotent: true,
            });
        }
        *g = *k;
        let group = &mut groups[*k];
        group.end += 1;
        group.idempotent = group.idempotent && routing::is_idempotent(c);
    }
    // A cross-slot pipeline has keyed commands: there is a first group.
    if keyless > 0 {
        for g in group_of.iter_mut().filter(|g| **g == KEYLESS) {
            *g = 0;
        }
        groups[0].end += keyless;
        groups[0].idempotent &= keyless_idempotent;
    }
    let mut at = 0;
    for g in &mut groups {
        let n = g.end;
        g.start = at;
        g.end = at;
        at += n;
    }
    let mut order = vec![0; cmds.len()];
    for (i, &g) in group_of.iter().enumerate() {
        let group = &mut groups[g];
        order[group.end] = i;
        group.end += 1;
    }
    Ok(Plan::Split(Split {
        map,
        groups,
        order,
        group_of,
    }))
}

/// True when running the share twice is the same as running it once.
fn share_is_idempotent(share: Share<'_>) -> bool {
    share.commands().all(routing::is_idempotent)
}

impl Client {
    /// A pipeline on a cluster: split by node, sent to each node (in parallel when there
    /// are several), replies put back in the caller's order; a MOVED/ASK reply inside is
    /// followed for that command alone. An atomic pipeline (MULTI/EXEC) must stay in one
    /// slot.
    pub(super) fn cluster_pipeline(&self, p: &Pipeline) -> Result<Vec<Value>> {
        let map = self.cluster().nodes.map();
        let split = match plan(p, &map)? {
            Plan::One(slot) => return self.one_node_pipeline(p, slot),
            Plan::Split(split) => split,
        };
        let started = (!self.shared.observers.is_empty()).then(SystemTime::now);
        let t0 = Instant::now();
        // First attempt: every group sent before any is read (the nodes work at the same
        // time, no thread per node). A group that could not be checked out, or whose
        // attempt failed in a way the retry policy may repeat (or was redirected as a
        // whole), goes through the full per-group path below: redirects, retries, breaker.
        let firsts = self.send_groups_together(p, &split);
        let rest = self.rest_policy();
        let mut paused = false;
        let mut results = Vec::with_capacity(split.groups.len());
        for (g, first) in firsts.into_iter().enumerate() {
            results.push(match first {
                First::Done(r) => r,
                First::Again(e) => {
                    let slot = split.groups[g].slot;
                    self.share_again(split.share(p, g), slot, e, &rest, &mut paused)
                }
            });
        }
        let mut replies: Vec<Option<Value>> = vec![None; p.len()];
        let mut failure = None;
        for (g, r) in results.into_iter().enumerate() {
            match r {
                Ok(vals) => {
                    for (&i, v) in split.share(p, g).indexes().iter().zip(vals) {
                        replies[i] = Some(v);
                    }
                }
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
        let r = match failure {
            Some(e) => Err(e),
            None => Ok(replies
                .into_iter()
                .map(|v| v.unwrap_or(Value::Nil))
                .collect()),
        };
        let name = CommandName::PIPELINE;
        self.observe_cluster(name, false, p.len(), (started, t0), 1, r.as_ref().err());
        r
    }

    /// A (non-atomic) pipeline on a cluster with its replies read in place by `build`
    /// (see `Execute::exec_pipeline_replies`): for a pipeline split over several nodes,
    /// each reply is read from its node's connection, in the caller's order, into its
    /// place in the result; nothing is copied into a [`Value`] on the way unless a share
    /// had to run again (its replies are then values, read as frames). `None` for a
    /// pipeline on one node (one slot, no key): `Pipeline::query` converts what
    /// [`Client::cluster_pipeline`] returns.
    ///
    /// The same outcome as the value path: every share sent before any is read; a MOVED or
    /// ASK reply followed for its command alone (that reply read in place from the node it
    /// points to); a share that could not be sent, or whose connection failed, run again
    /// through the per-group path when the retry policy allows (a failure mid-share runs
    /// again only the commands not answered yet); a failed share wins over reply errors,
    /// the first server error reply (in order) over a conversion error; every reply is
    /// read, so every connection stays in step.
    pub(super) fn cluster_pipeline_replies(
        &self,
        p: &Pipeline,
        build: &mut BuildReplies<'_>,
    ) -> Option<Result<()>> {
        debug_assert!(!p.is_atomic());
        let map = self.cluster().nodes.map();
        let split = match plan(p, &map) {
            Err(e) => return Some(Err(e)),
            Ok(Plan::One(_)) => return None,
            Ok(Plan::Split(split)) => split,
        };
        let started = (!self.shared.observers.is_empty()).then(SystemTime::now);
        let t0 = Instant::now();
        let r = self.split_in_place(p, &split, build);
        let name = CommandName::PIPELINE;
        self.observe_cluster(name, false, p.len(), (started, t0), 1, r.as_ref().err());
        Some(r)
    }

    /// A pipeline on one node (one slot, no key, or a transaction): one round trip through
    /// the topology's retry path.
    fn one_node_pipeline(&self, p: &Pipeline, slot: Option<u16>) -> Result<Vec<Value>> {
        let name = if p.is_atomic() {
            CommandName::MULTI
        } else {
            CommandName::PIPELINE
        };
        let started = (!self.shared.observers.is_empty()).then(SystemTime::now);
        let t0 = Instant::now();
        let read = Reads::of(
            routing::pipeline_is_read_only(p),
            routing::pipeline_read_from(p),
        );
        let retry = Retry::from_idempotent(routing::pipeline_is_idempotent(p));
        let (r, attempts, replica) = self.cluster().run(
            slot,
            read,
            retry,
            &self.shared.retry,
            &mut self.retry_hook(name),
            |conn| conn.exec_pipeline(p),
        );
        let r = r.and_then(|replies| {
            if p.is_atomic() {
                return Ok(replies);
            }
            self.follow_redirects(|k| &p.commands()[k], replies)
        });
        self.observe_cluster(
            name,
            replica,
            p.len(),
            (started, t0),
            attempts,
            r.as_ref().err(),
        );
        r
    }

    /// The retry policy of a share's run after the first attempt: the attempts the first
    /// one left.
    fn rest_policy(&self) -> RetryPolicy {
        let mut rest = self.shared.retry.clone();
        rest.attempts = rest.attempts.saturating_sub(1).max(1);
        rest
    }

    /// Run `share` again through the per-group path (redirects, retries, breaker) after
    /// its first attempt failed with `e`: after one backoff pause for the whole pipeline
    /// (`paused`; none for a redirect), with `rest`'s attempts. Its replies, with
    /// redirects inside followed.
    fn share_again(
        &self,
        share: Share<'_>,
        slot: Option<u16>,
        e: Error,
        rest: &RetryPolicy,
        paused: &mut bool,
    ) -> Result<Vec<Value>> {
        if !*paused && e.redirect().is_none() {
            *paused = true;
            let delay = rest.backoff.delay(1, Duration::ZERO, rand::random());
            self.retry_hook(CommandName::PIPELINE)(&e, delay);
            std::thread::sleep(delay);
        }
        let retry = Retry::from_idempotent(share_is_idempotent(share));
        let (r, _, _) = self.cluster().run(
            slot,
            Reads::Primary,
            retry,
            rest,
            &mut self.retry_hook(CommandName::PIPELINE),
            |conn| conn.exec_share(share),
        );
        r.and_then(|replies| self.follow_redirects(|k| share.command(k), replies))
    }

    /// How a first attempt's failure `e` is settled: run the share again (a redirect, or a
    /// failure the retry policy may repeat), or give up.
    fn settle(&self, e: Error, share: Share<'_>) -> First {
        let policy = &self.shared.retry;
        let again = e.redirect().is_some()
            || (policy.attempts > 1 && policy.may_retry(&e, share_is_idempotent(share)));
        if again {
            First::Again(e)
        } else {
            First::Done(Err(e))
        }
    }

    /// One connection per group from its primary's pool, breaker permitting: those
    /// checked out, and per group the error of one that could not be.
    ///
    /// A share that runs again if its first attempt fails (idempotent, retries left) takes
    /// a recently returned connection without the socket check, as the single-node
    /// `Client` does (`PoolOptions::skip_check_when_resendable`): if the server closed it,
    /// the share fails on it and runs again through the per-group path, on checked
    /// connections. Other shares are checked.
    fn check_out(&self, split: &Split<'_>) -> (Vec<Held>, Vec<Option<Error>>) {
        let topo = self.cluster();
        let retries = self.shared.retry.attempts > 1;
        let start = Instant::now();
        let groups = &split.groups;
        let mut failed: Vec<Option<Error>> = (0..groups.len()).map(|_| None).collect();
        let mut held = Vec::with_capacity(groups.len());
        for (g, group) in groups.iter().enumerate() {
            let breaker = topo.breaker(group.addr);
            let checkout = breaker.acquire().and_then(|permit| {
                let conn = topo
                    .nodes
                    .primary_pool(split.map, group.shard)
                    .and_then(|pool| {
                        let unchecked = retries && pool.trusts_resendable() && group.idempotent;
                        pool.get_since(start, unchecked)
                    });
                match conn {
                    Ok(conn) => Ok((permit, conn)),
                    Err(e) => {
                        breaker.record(permit, is_availability_failure(&e));
                        Err(e)
                    }
                }
            });
            match checkout {
                Ok((permit, conn)) => held.push(Held {
                    g,
                    breaker,
                    permit,
                    conn,
                }),
                Err(e) => failed[g] = Some(e),
            }
        }
        (held, failed)
    }

    /// The first attempt of a pipeline split over several nodes: one connection per group
    /// from its primary's pool, every group sent, then every group read
    /// ([`Connection::exec_shares`]). Per group: [`First::Done`] when settled (its
    /// replies, with redirects inside followed, or an error the retry policy must not
    /// repeat), [`First::Again`] when the full per-group path must run (redirected as a
    /// whole, or a failure the policy may retry: not checked out, breaker open, ...).
    fn send_groups_together(&self, p: &Pipeline, split: &Split<'_>) -> Vec<First> {
        let shares = split.shares(p);
        let (held, failed) = self.check_out(split);
        let mut out: Vec<Option<First>> = failed
            .into_iter()
            .zip(&shares)
            .map(|(e, &share)| e.map(|e| self.settle(e, share)))
            .collect();
        let jobs: Vec<(&Connection, Share<'_>)> =
            held.iter().map(|h| (&*h.conn, shares[h.g])).collect();
        let replies = Connection::exec_shares(&jobs);
        drop(jobs);
        for (h, r) in held.into_iter().zip(replies) {
            let failed = r
                .as_ref()
                .err()
                .is_some_and(|e| is_availability_failure(e) && e.redirect().is_none());
            h.breaker.record(h.permit, failed);
            out[h.g] = Some(match r {
                Ok(v) => First::Done(self.follow_redirects(|k| shares[h.g].command(k), v)),
                Err(e) => {
                    if e.kind() == ErrorKind::Server(ServerErrorKind::ReadOnly) {
                        h.conn.close("READONLY: the node is a replica now");
                    }
                    self.settle(e, shares[h.g])
                }
            });
        }
        out.into_iter()
            .map(|f| {
                f.unwrap_or_else(|| {
                    First::Done(Err(Error::new(
                        ErrorKind::Aborted,
                        "a pipeline group was not run",
                    )))
                })
            })
            .collect()
    }

    /// [`Client::cluster_pipeline_replies`] for a pipeline split into `groups`.
    fn split_in_place(
        &self,
        p: &Pipeline,
        split: &Split<'_>,
        build: &mut BuildReplies<'_>,
    ) -> Result<()> {
        let shares = split.shares(p);
        let (held, failed) = self.check_out(split);
        let (r, share_failed) = self.read_in_place(p, split, shares, &held, failed, build);
        for h in held {
            h.breaker.record(h.permit, share_failed[h.g]);
        }
        r
    }

    /// [`Client::split_in_place`] with a connection checked out per group (`held`; `failed`:
    /// why not, per group): the result, and per group whether its connection failed.
    fn read_in_place<'p>(
        &self,
        p: &'p Pipeline,
        split: &'p Split<'p>,
        shares: Vec<Share<'p>>,
        held: &[Held],
        failed: Vec<Option<Error>>,
        build: &mut BuildReplies<'_>,
    ) -> (Result<()>, Vec<bool>) {
        let groups = &split.groups;
        let jobs: Vec<(&Connection, Share<'_>)> =
            held.iter().map(|h| (&*h.conn, shares[h.g])).collect();
        let (sent, sent_results) = SentShares::send(&jobs);
        let mut failures: Vec<Option<Error>> = (0..groups.len()).map(|_| None).collect();
        let mut sources: Vec<Source> = failed
            .into_iter()
            .zip(&shares)
            .zip(&mut failures)
            .map(|((e, &share), failure)| match e {
                Some(e) => Source::first(self.settle(e, share), failure),
                None => Source::Failed,
            })
            .collect();
        let mut share_failed = vec![false; groups.len()];
        for (k, (h, r)) in held.iter().zip(sent_results).enumerate() {
            sources[h.g] = match r {
                Ok(()) => Source::Live(k),
                Err(e) => {
                    share_failed[h.g] = is_availability_failure(&e);
                    Source::first(self.settle(e, shares[h.g]), &mut failures[h.g])
                }
            };
        }
        let mut run = InPlace {
            client: self,
            cmds: p.commands(),
            groups,
            shares,
            group_of: &split.group_of,
            sent,
            sources,
            failures,
            share_failed,
            rest: self.rest_policy(),
            paused: false,
        };
        let cmds = p.commands();
        let ignored = p.ignored();
        let mut at = 0;
        let mut skipped = 0;
        // Set when the error `next` returns is a server error reply (not a conversion one).
        let mut server_error = false;
        let built = {
            let mut next = |read: &mut dyn FnMut(Frame<'_>) -> Result<()>| -> Result<()> {
                loop {
                    if at >= cmds.len() {
                        return Err(Error::conversion("more replies read than commands sent"));
                    }
                    let skip = ignored.get(skipped) == Some(&at);
                    let i = at;
                    at += 1;
                    let r = if skip {
                        skipped += 1;
                        run.reply(i, &mut |_| Ok(()))
                    } else {
                        run.reply(i, read)
                    };
                    match r {
                        Ok(()) if skip => continue,
                        Ok(()) => return Ok(()),
                        Err(Fail::Read(e)) => return Err(e),
                        Err(Fail::Reply(e)) => {
                            server_error = true;
                            return Err(e);
                        }
                        Err(Fail::Share) => {
                            return Err(Error::new(ErrorKind::Aborted, "a pipeline share failed"))
                        }
                    }
                }
            };
            build(&mut next)
        };
        // What `build` left unread (replies after a failure, ignored ones at the end).
        let mut later = None;
        while at < cmds.len() {
            if let Err(Fail::Reply(e)) = run.reply(at, &mut |_| Ok(())) {
                later.get_or_insert(e);
            }
            at += 1;
        }
        let InPlace {
            sent,
            failures,
            share_failed,
            ..
        } = run;
        drop(sent);
        let r = match (failures.into_iter().flatten().next(), built) {
            (Some(e), _) => Err(e),
            (None, Err(e)) if server_error => Err(e),
            // Any server error reply wins over a conversion error.
            (None, Err(e)) => Err(later.unwrap_or(e)),
            (None, Ok(())) => later.map_or(Ok(()), Err),
        };
        (r, share_failed)
    }

    /// Replace MOVED/ASK error replies of a share with the result of the command run again
    /// on its own (which follows the redirect).
    fn follow_redirects<'c>(
        &self,
        command: impl Fn(usize) -> &'c Cmd,
        mut replies: Vec<Value>,
    ) -> Result<Vec<Value>> {
        for (k, v) in replies.iter_mut().enumerate() {
            let redirected = matches!(v, Value::Error(e) if e.redirect().is_some());
            if redirected {
                let c = command(k);
                *v = match self.cluster_command(c, |conn| conn.exec(c)) {
                    Ok(v) => v,
                    Err(e) => match e.server_error() {
                        Some(se) => Value::Error(se.clone()),
                        None => return Err(e),
                    },
                };
            }
        }
        Ok(replies)
    }
}

/// Where the replies of one group of a split pipeline read in place come from.
enum Source {
    /// Its connection (the index among the shares sent), read in place.
    Live(usize),
    /// To run again (from the next reply on) through the per-group path, after this error.
    Again(Error),
    /// The replies of a run through the per-group path, as values.
    Values(std::vec::IntoIter<Value>),
    /// The group failed (its error is kept in `InPlace::failures`, or it has not been
    /// settled yet).
    Failed,
}

impl Source {
    /// Where the rest of a group's replies come from after its first attempt ended as
    /// `first` (an error that settles it goes to `failure`).
    fn first(first: First, failure: &mut Option<Error>) -> Source {
        match first {
            First::Again(e) => Source::Again(e),
            First::Done(Ok(v)) => Source::Values(v.into_iter()),
            First::Done(Err(e)) => {
                failure.get_or_insert(e);
                Source::Failed
            }
        }
    }
}

/// Why a reply of a split pipeline read in place was not read.
enum Fail {
    /// A server error reply (for this command alone).
    Reply(Error),
    /// The reader's own error (a conversion error).
    Read(Error),
    /// The command's share failed as a whole (`InPlace::failures` holds why).
    Share,
}

/// The state of a split pipeline read in place ([`Client::split_in_place`]).
struct InPlace<'c, 'p, 'a> {
    client: &'c Client,
    /// The pipeline's commands.
    cmds: &'p [Cmd],
    groups: &'p [Group<'p>],
    shares: Vec<Share<'p>>,
    /// Each command's group.
    group_of: &'p [usize],
    sent: SentShares<'a>,
    sources: Vec<Source>,
    /// Per group, why it failed as a whole.
    failures: Vec<Option<Error>>,
    /// Per group, whether its first attempt failed the node (for its breaker).
    share_failed: Vec<bool>,
    rest: RetryPolicy,
    paused: bool,
}

impl InPlace<'_, '_, '_> {
    /// Read reply `i` (the next of its group: replies are asked for in order) into `read`.
    fn reply(
        &mut self,
        i: usize,
        read: &mut dyn FnMut(Frame<'_>) -> Result<()>,
    ) -> std::result::Result<(), Fail> {
        let g = self.group_of[i];
        let share = self.shares[g];
        loop {
            match &mut self.sources[g] {
                Source::Failed => {
                    self.failures[g].get_or_insert_with(|| {
                        Error::new(ErrorKind::Aborted, "a pipeline share was not run")
                    });
                    return Err(Fail::Share);
                }
                Source::Values(replies) => {
                    return match replies.next().unwrap_or(Value::Nil) {
                        Value::Error(e) => Err(Fail::Reply(e.into())),
                        v => crate::resp::with_value_frame(&v, read).map_err(Fail::Read),
                    };
                }
                Source::Again(e) => {
                    let e = std::mem::replace(
                        e,
                        Error::new(ErrorKind::Aborted, "a pipeline share was not run"),
                    );
                    // The commands of the share not answered yet, from this one on.
                    let k = share.indexes().partition_point(|&j| j < i);
                    let slot = self.groups[g].slot;
                    let rest = &self.rest;
                    self.sources[g] = match self.client.share_again(
                        share.from(k),
                        slot,
                        e,
                        rest,
                        &mut self.paused,
                    ) {
                        Ok(v) => Source::Values(v.into_iter()),
                        Err(e) => {
                            self.failures[g] = Some(e);
                            Source::Failed
                        }
                    };
                }
                Source::Live(s) => {
                    let s = *s;
                    let mut called = false;
                    let r = self.sent.read_next(s, &mut |f| {
                        called = true;
                        read(f)
                    });
                    let e = match r {
                        Ok(()) => return Ok(()),
                        Err(e) if called => return Err(Fail::Read(e)),
                        Err(e) => e,
                    };
                    if self.sent.is_broken(s) {
                        // The connection failed: the rest of the share is settled as a
                        // failed first attempt.
                        self.share_failed[g] =
                            is_availability_failure(&e) && e.redirect().is_none();
                        let first = self.client.settle(e, share);
                        self.sources[g] = Source::first(first, &mut self.failures[g]);
                        continue;
                    }
                    if e.redirect().is_none() {
                        return Err(Fail::Reply(e));
                    }
                    // MOVED/ASK: this command alone, where the redirect points (its reply
                    // read in place there).
                    let c = &self.cmds[i];
                    let mut called = false;
                    let r = self.client.cluster_command(c, |conn| {
                        conn.exec_frame(c, &mut |f| {
                            called = true;
                            read(f)
                        })
                    });
                    return match r {
                        Ok(()) => Ok(()),
                        Err(e) if called => Err(Fail::Read(e)),
                        Err(e) if e.server_error().is_some() => Err(Fail::Reply(e)),
                        Err(e) => {
                            self.failures[g].get_or_insert(e);
                            Err(Fail::Share)
                        }
                    };
                }
            }
        }
    }
}
