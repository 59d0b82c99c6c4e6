//! A pipeline on a cluster client: split by the node that owns each command's slot, every
//! node's share sent before any is read, replies put back in the caller's order; MOVED/ASK
//! replies inside are followed per command, failed shares run again through the cluster
//! topology's retry path.

use std::time::{Duration, Instant, SystemTime};

use super::retry::is_availability_failure;
use super::routing::{self, CommandName};
use super::topology::{cross_slot, no_owner, one_node_scan, slot_or_cross, Reads};
use super::{Client, Retry};
use crate::cmd::keys::{slot_of, SlotOf};
use crate::cmd::{Execute, Pipeline};
use crate::conn::Connection;
use crate::error::{Error, ErrorKind, Result, ServerErrorKind};
use crate::resp::Value;

/// How the first attempt of one node's share of a split pipeline ended.
enum First {
    /// Settled: the replies, or an error the retry policy must not repeat.
    Done(Result<Vec<Value>>),
    /// To run again through the per-group path (redirect, retry).
    Again(Error),
}

impl Client {
    /// A pipeline on a cluster: split by node, sent to each node (in parallel when there
    /// are several), replies put back in the caller's order; a MOVED/ASK reply inside is
    /// followed for that command alone. An atomic pipeline (MULTI/EXEC) must stay in one
    /// slot.
    pub(super) fn cluster_pipeline(&self, p: &Pipeline) -> Result<Vec<Value>> {
        let mut slot = SlotOf::Any;
        let mut slots = Vec::with_capacity(p.len());
        for c in p.commands() {
            let s = slot_of(c);
            if let SlotOf::Cross(a, b) = s {
                return Err(cross_slot(a, b));
            }
            if s == SlotOf::Any {
                one_node_scan(c, None)?;
            }
            slots.push(s);
            slot = slot.merge(s);
        }
        let name = if p.is_atomic() {
            CommandName::MULTI
        } else {
            CommandName::PIPELINE
        };
        if p.is_atomic() || !matches!(slot, SlotOf::Cross(..)) {
            // One slot (or none): one node, one round trip.
            let slot = slot_or_cross(slot)?;
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
            let r = r.and_then(|replies| self.follow_redirects(p, replies));
            self.observe_cluster(
                name,
                replica,
                p.len(),
                (started, t0),
                attempts,
                r.as_ref().err(),
            );
            return r;
        }
        // Several slots: group by the primary that owns each (keyless commands join the
        // first group).
        let map = self.cluster().nodes.map();
        // Addresses borrowed from the map snapshot: no allocation per command.
        let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
        let mut keyless = Vec::new();
        for (i, s) in slots.iter().enumerate() {
            let SlotOf::Slot(s) = *s else {
                keyless.push(i);
                continue;
            };
            let addr = match map.shard(s) {
                Some(sh) => sh.primary.as_str(),
                None => return Err(no_owner(s)),
            };
            match groups.iter_mut().find(|(a, _)| *a == addr) {
                Some((_, idx)) => idx.push(i),
                None => groups.push((addr, vec![i])),
            }
        }
        if let Some(first) = groups.first_mut() {
            first.1.extend(keyless);
            first.1.sort_unstable();
        }
        let subs: Vec<Pipeline> = groups
            .iter()
            .map(|(_, idx)| {
                let mut sub = Pipeline::new();
                for &i in idx {
                    sub.add(p.commands()[i].clone());
                }
                sub
            })
            .collect();
        let started = (!self.shared.observers.is_empty()).then(SystemTime::now);
        let t0 = Instant::now();
        // First attempt: every group sent before any is read (the nodes work at the same
        // time, no thread per node). A group that could not be checked out, or whose
        // attempt failed in a way the retry policy may repeat (or was redirected as a
        // whole), goes through the full per-group path below: redirects, retries, breaker.
        let firsts = self.send_groups_together(&groups, &subs);
        // The per-group path has the attempts the first one left, after one backoff pause.
        let mut rest = self.shared.retry.clone();
        rest.attempts = rest.attempts.saturating_sub(1).max(1);
        let mut paused = false;
        let mut results = Vec::with_capacity(groups.len());
        for (g, ((_, idx), first)) in groups.iter().zip(firsts).enumerate() {
            let e = match first {
                First::Done(r) => {
                    results.push(r);
                    continue;
                }
                First::Again(e) => e,
            };
            let sub = &subs[g];
            if !paused && e.redirect().is_none() {
                paused = true;
                let delay = rest.backoff.delay(1, Duration::ZERO, rand::random());
                self.retry_hook(CommandName::PIPELINE)(&e, delay);
                std::thread::sleep(delay);
            }
            let gslot = idx.iter().find_map(|&i| match slots[i] {
                SlotOf::Slot(s) => Some(s),
                _ => None,
            });
            let retry = Retry::from_idempotent(routing::pipeline_is_idempotent(sub));
            let (r, _, _) = self.cluster().run(
                gslot,
                Reads::Primary,
                retry,
                &rest,
                &mut self.retry_hook(CommandName::PIPELINE),
                |conn| conn.exec_pipeline(sub),
            );
            results.push(r.and_then(|replies| self.follow_redirects(sub, replies)));
        }
        let mut replies: Vec<Option<Value>> = vec![None; p.len()];
        let mut failure = None;
        for ((_, idx), r) in groups.iter().zip(results) {
            match r {
                Ok(vals) => {
                    for (&i, v) in idx.iter().zip(vals) {
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
        self.observe_cluster(name, false, p.len(), (started, t0), 1, r.as_ref().err());
        r
    }

    /// The first attempt of a pipeline split over several nodes: one connection per group
    /// from its primary's pool, every group sent, then every group read
    /// ([`Connection::exec_pipelines`]). Per group: [`First::Done`] when settled (its
    /// replies, with redirects inside followed, or an error the retry policy must not
    /// repeat), [`First::Again`] when the full per-group path must run (redirected as a
    /// whole, or a failure the policy may retry: not checked out, breaker open, ...).
    fn send_groups_together(&self, groups: &[(&str, Vec<usize>)], subs: &[Pipeline]) -> Vec<First> {
        let topo = self.cluster();
        let policy = &self.shared.retry;
        let settle = |e: Error, sub: &Pipeline| -> First {
            let again = e.redirect().is_some()
                || (policy.attempts > 1
                    && policy.may_retry(&e, routing::pipeline_is_idempotent(sub)));
            if again {
                First::Again(e)
            } else {
                First::Done(Err(e))
            }
        };
        let mut out: Vec<Option<First>> = (0..groups.len()).map(|_| None).collect();
        let mut held = Vec::with_capacity(groups.len());
        for (g, (addr, _)) in groups.iter().enumerate() {
            let breaker = topo.breaker(addr);
            let checkout = breaker.acquire().and_then(|permit| {
                match topo.nodes.pool(addr, false).and_then(|p| p.get()) {
                    Ok(conn) => Ok((permit, conn)),
                    Err(e) => {
                        breaker.record(permit, is_availability_failure(&e));
                        Err(e)
                    }
                }
            });
            match checkout {
                Ok((permit, conn)) => held.push((g, breaker, permit, conn)),
                Err(e) => out[g] = Some(settle(e, &subs[g])),
            }
        }
        let jobs: Vec<(&Connection, &Pipeline)> = held
            .iter()
            .map(|(g, _, _, conn)| (&**conn, &subs[*g]))
            .collect();
        let replies = Connection::exec_pipelines(&jobs);
        drop(jobs);
        for ((g, breaker, permit, conn), r) in held.into_iter().zip(replies) {
            let failed = r
                .as_ref()
                .err()
                .is_some_and(|e| is_availability_failure(e) && e.redirect().is_none());
            breaker.record(permit, failed);
            out[g] = Some(match r {
                Ok(v) => First::Done(self.follow_redirects(&subs[g], v)),
                Err(e) => {
                    if e.kind() == ErrorKind::Server(ServerErrorKind::ReadOnly) {
                        conn.close("READONLY: the node is a replica now");
                    }
                    settle(e, &subs[g])
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

    /// Replace MOVED/ASK error replies of a (non-atomic) pipeline with the result of the
    /// command run again on its own (which follows the redirect).
    fn follow_redirects(&self, p: &Pipeline, mut replies: Vec<Value>) -> Result<Vec<Value>> {
        if p.is_atomic() {
            return Ok(replies);
        }
        for (i, v) in replies.iter_mut().enumerate() {
            let redirected = matches!(v, Value::Error(e) if e.redirect().is_some());
            if redirected {
                let c = &p.commands()[i];
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
