//! `BGSAVE` / `BGREWRITEAOF`, polled to completion.

use std::time::{Duration, Instant};

use super::info::PersistenceSection;
use crate::cmd::{cmd, Execute, FromValue};
use crate::commands::Info;
use crate::error::{Error, ErrorKind, Result};

/// Which background job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "json", derive(serde::Serialize))]
#[non_exhaustive]
pub enum BackgroundJob {
    /// `BGSAVE`: an RDB snapshot (`dump.rdb` in the server's `dir`).
    Snapshot,
    /// `BGREWRITEAOF`: a compacted append-only file.
    AofRewrite,
}

/// How a background save or rewrite ended.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "json", derive(serde::Serialize))]
#[non_exhaustive]
pub struct BackupReport {
    /// What ran.
    pub job: BackgroundJob,
    /// The server's last status for it (`ok`); anything else is returned as an error.
    pub status: String,
    /// Time from the request to the job's end, as polled (seconds).
    pub elapsed_secs: f64,
    /// For a snapshot: `rdb_last_save_time` after it (Unix seconds).
    pub last_save_time: u64,
    /// The server's `dir` and file name of the result (`CONFIG GET dir` / `dbfilename`
    /// or `appenddirname`), when the user may read the config.
    pub path: Option<String>,
}

/// `INFO persistence`, typed.
pub fn persistence_status<E: Execute + ?Sized>(ex: &E) -> Result<PersistenceSection> {
    let raw = Info::from_value(ex.exec(&cmd("INFO").arg("persistence"))?)?;
    Ok(super::info::InfoReport::from_info(raw).persistence)
}

/// How often the status is polled.
const POLL: Duration = Duration::from_millis(50);

/// `BGSAVE`, then poll `INFO persistence` until the snapshot is written, at most `wait`.
/// A snapshot already running (started by someone else, or a scheduled one) is waited for
/// and then a new one is started, so the file holds the data as of this call.
/// `progress` gets the elapsed time at every poll.
///
/// # Errors
/// [`ErrorKind::Timeout`] when it has not finished within `wait` (it goes on on the
/// server); a server error when the snapshot failed (`rdb_last_bgsave_status:err`).
pub fn bgsave<E: Execute + ?Sized>(
    ex: &E,
    wait: Duration,
    progress: &mut dyn FnMut(Duration),
) -> Result<BackupReport> {
    let start = Instant::now();
    let deadline = start + wait;
    wait_idle(ex, deadline, start, progress, |p| {
        p.rdb_bgsave_in_progress || p.aof_rewrite_in_progress
    })?;
    ex.exec(&cmd("BGSAVE"))?;
    let p = wait_idle(ex, deadline, start, progress, |p| p.rdb_bgsave_in_progress)?;
    finish(
        ex,
        BackgroundJob::Snapshot,
        p.rdb_last_bgsave_status.clone(),
        p.rdb_last_save_time,
        start,
    )
}

/// `BGREWRITEAOF`, then poll until the rewrite is done (a rewrite scheduled behind a
/// running snapshot included), at most `wait`. See [`bgsave`] for errors.
pub fn bgrewriteaof<E: Execute + ?Sized>(
    ex: &E,
    wait: Duration,
    progress: &mut dyn FnMut(Duration),
) -> Result<BackupReport> {
    let start = Instant::now();
    let deadline = start + wait;
    wait_idle(ex, deadline, start, progress, |p| p.aof_rewrite_in_progress)?;
    ex.exec(&cmd("BGREWRITEAOF"))?;
    let p = wait_idle(ex, deadline, start, progress, |p| {
        p.aof_rewrite_in_progress || p.aof_rewrite_scheduled
    })?;
    finish(
        ex,
        BackgroundJob::AofRewrite,
        p.aof_last_bgrewrite_status.clone(),
        p.rdb_last_save_time,
        start,
    )
}

fn wait_idle<E: Execute + ?Sized>(
    ex: &E,
    deadline: Instant,
    start: Instant,
    progress: &mut dyn FnMut(Duration),
    busy: impl Fn(&PersistenceSection) -> bool,
) -> Result<PersistenceSection> {
    loop {
        let p = persistence_status(ex)?;
        if !busy(&p) {
            return Ok(p);
        }
        progress(start.elapsed());
        let now = Instant::now();
        if now >= deadline {
            return Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "the background job is still running after {:?} (it goes on on the server; \
                     check INFO persistence)",
                    start.elapsed()
                ),
            ));
        }
        std::thread::sleep(POLL.min(deadline - now));
    }
}

fn finish<E: Execute + ?Sized>(
    ex: &E,
    job: BackgroundJob,
    status: String,
    last_save_time: u64,
    start: Instant,
) -> Result<BackupReport> {
    if status != "ok" {
        return Err(Error::new(
            ErrorKind::Server(crate::error::ServerErrorKind::Other),
            format!("{job:?} failed on the server (last status `{status}`); see its log"),
        ));
    }
    let path = file_path(ex, job);
    Ok(BackupReport {
        job,
        status,
        elapsed_secs: start.elapsed().as_secs_f64(),
        last_save_time,
        path,
    })
}

/// Where the result lives, when `CONFIG GET` is allowed.
fn file_path<E: Execute + ?Sized>(ex: &E, job: BackgroundJob) -> Option<String> {
    let get = |name: &str| -> Option<String> {
        super::memory::config_get(ex, name)
            .ok()?
            .remove(name)
            .filter(|v| !v.is_empty())
    };
    let dir = get("dir")?;
    let file = match job {
        BackgroundJob::Snapshot => get("dbfilename")?,
        BackgroundJob::AofRewrite => get("appenddirname").unwrap_or_else(|| "appendonlydir".into()),
    };
    Some(format!("{dir}/{file}"))
}
