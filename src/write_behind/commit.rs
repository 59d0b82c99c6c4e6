//! Group commit: puts from many threads handed (crossbeam channel) to one committer
//! thread, which runs them as one `put.lua` call and answers each. The durability rule
//! is unchanged: a put returns `Ok` only after the server ran the script that recorded it.

use crossbeam_channel::{select, Receiver};

use super::error::WriteBehindError;
use super::{scripts, Shared};
use crate::cmd::Execute;
use crate::error::Error;

/// Largest group: bounds the script's run time (and so the server's latency for others).
const MAX_GROUP: usize = 64;

pub(crate) struct PutRequest {
    pub(crate) key: String,
    pub(crate) value: Vec<u8>,
    pub(crate) reply: crossbeam_channel::Sender<Result<i64, WriteBehindError>>,
}

/// Run `writes` (key, value) through `put.lua` in one call: per write its seq or -1.
pub(crate) fn put_group<E: Execute>(
    sh: &Shared<E>,
    writes: &[(&str, &[u8])],
) -> Result<Vec<i64>, Error> {
    let ttl = sh.s.cache_ttl.map_or(0, |d| d.as_millis().max(1) as u64);
    let mut inv = scripts().put.key(&sh.keys.seq).key(&sh.keys.pending);
    for (key, _) in writes {
        inv = inv
            .key(sh.keys.cache(key))
            .key(&sh.keys.parts[sh.keys.partition(key)][0]);
    }
    inv = inv.arg(ttl).arg(sh.s.backlog_limit);
    for (key, value) in writes {
        inv = inv.arg(*key).arg(*value);
    }
    let seqs: Vec<i64> = inv.invoke_as(&sh.ex)?;
    if seqs.len() != writes.len() {
        return Err(Error::new(
            crate::error::ErrorKind::Protocol,
            format!(
                "put script answered {} results for {} writes",
                seqs.len(),
                writes.len()
            ),
        ));
    }
    Ok(seqs)
}

/// A copy of `e` for each waiter of a failed group (the server error text and kind kept).
fn copy_error(e: &Error) -> Error {
    match e.server_error() {
        Some(s) => Error::from(s.clone()),
        None => Error::new(e.kind(), e.detail()),
    }
}

/// The committer thread's body: until `stop` disconnects, take one request, add whatever
/// else is waiting (up to 64), run them as one script, answer each. Requests left when it
/// stops are dropped unrun: their callers get a disconnect, reported as shut down.
pub(crate) fn committer<E: Execute>(
    sh: std::sync::Arc<Shared<E>>,
    rx: Receiver<PutRequest>,
    stop: Receiver<()>,
) {
    loop {
        let first = select! {
            recv(stop) -> _ => return,
            recv(rx) -> r => match r { Ok(r) => r, Err(_) => return },
        };
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(r) => group.push(r),
                Err(_) => break,
            }
        }
        let writes: Vec<(&str, &[u8])> = group
            .iter()
            .map(|r| (r.key.as_str(), r.value.as_slice()))
            .collect();
        match put_group(&sh, &writes) {
            Ok(seqs) => {
                for (r, seq) in group.iter().zip(seqs) {
                    let _ = r.reply.send(Ok(seq));
                }
            }
            Err(e) => {
                for r in &group {
                    let _ = r.reply.send(Err(WriteBehindError::from(copy_error(&e))));
                }
            }
        }
    }
}
