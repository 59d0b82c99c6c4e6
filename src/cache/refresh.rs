//! Background refreshes: stale-while-revalidate and XFetch early refresh, queued on the
//! refresher threads (one per key at a time).

use rand::Rng;

use super::codec::Codec;
use super::entry::Header;
use super::error::CacheError;
use super::refresher::Scheduled;
use super::stats::Counters;
use super::{BoxError, Cache, Core, Spec};
use crate::cmd::Execute;

impl<E: Execute, C> Core<E, C> {
    /// A background refresh: load and store; a failure keeps the stale value.
    pub(crate) fn refresh<T, F>(&self, spec: &Spec, loader: F)
    where
        C: Codec<T>,
        F: FnOnce() -> Result<Option<T>, BoxError>,
    {
        Counters::add(&self.stats.refreshes, 1);
        let mut guard = None;
        if let Some(cp) = self.settings.cross_process {
            // One try: if another process holds the lock, it is refreshing this key.
            match self.locks.try_acquire(&spec.key, cp.lock_ttl) {
                Ok(Some(g)) => guard = Some(g),
                _ => return,
            }
        }
        let ok = self.run_loader(loader).and_then(|(value, delta)| {
            if !self.stores(value.as_ref()) {
                return Ok(());
            }
            let (bytes, px) = self.build_entry(spec, value.as_ref(), delta)?;
            self.store(spec, &bytes, px).map_err(CacheError::server)
        });
        if let Err(e) = ok {
            Counters::add(&self.stats.refresh_errors, 1);
            log::debug!("background refresh of {} failed: {e}", spec.key);
        }
        if let Some(g) = guard {
            self.release(spec, g);
        }
    }

    /// XFetch: refresh early with probability growing toward fresh-until.
    pub(crate) fn xfetch_due(&self, header: &Header, now: u64) -> bool {
        let beta = self.settings.xfetch_beta;
        if beta <= 0.0 || header.fresh_until == u64::MAX {
            return false;
        }
        // rand() in (0, 1]: ln is then finite and <= 0.
        let r: f64 = 1.0 - rand::thread_rng().gen::<f64>();
        let gap = f64::from(header.delta_ms) * beta * -r.ln();
        now as f64 + gap >= header.fresh_until as f64
    }
}

impl<E, C> Cache<E, C>
where
    E: Execute + Clone + Send + Sync + 'static,
    C: Send + Sync + 'static,
{
    pub(crate) fn refresh_in_background<T, F>(&self, spec: Spec, loader: F, early: bool)
    where
        C: Codec<T>,
        T: Send + 'static,
        F: FnOnce() -> Result<Option<T>, BoxError> + Send + 'static,
    {
        let core = self.core.clone();
        let full = spec.full.clone();
        let job = Box::new(move || core.refresh(&spec, loader));
        match self.refresher.schedule(&full, job) {
            Scheduled::Queued if early => Counters::add(&self.core.stats.early_refreshes, 1),
            Scheduled::Queued | Scheduled::AlreadyPending => {}
            Scheduled::Dropped => Counters::add(&self.core.stats.refreshes_dropped, 1),
        }
    }
}
