//! The apply lock: one coordination.k8s.io/v1 Lease per catalog, `pitrix-apply-<catalog>` in
//! the inventory namespace, held while an apply writes — so that two applies of a catalog (two
//! CI jobs, `pitrix apply` beside `pitrix reconcile`) never interleave their writes, prunes and
//! inventory updates. It is taken with the [`Elector`] of leader election (compare-and-swap on
//! the Lease's resourceVersion, expiry judged by the waiter's own clock): the holder renews it
//! in the background while the apply runs and releases it at the end; a crashed holder's lock
//! is free once it has gone unrenewed for [`LOCK_DURATION`]. A waiter gives up after
//! `ApplyOptions::lock_timeout`, naming the holder.
//!
//! Reconcile's leader election uses another Lease (`--lease-name`, never `pitrix-apply-*`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use kube::Client;
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;

use super::ApplyOptions;
use crate::cluster::ObjectRef;
use crate::cluster::lease::{Elector, LeaseConfig, Observation, host_name};
use crate::error::Error;

/// How long a holder that stopped renewing keeps the lock.
/// (client-go's default for leader election.)
pub const LOCK_DURATION: Duration = Duration::from_secs(15);
/// How often the holder renews it.
const RENEW_EVERY: Duration = Duration::from_secs(3);
/// How long the holder may fail to renew before it counts the lock as lost (< duration); also
/// the bound on each call to the API server.
const RENEW_DEADLINE: Duration = Duration::from_secs(10);
/// How often a waiter looks again.
const POLL: Duration = Duration::from_secs(1);

/// The Lease that is the apply lock of `catalog`.
pub fn lock_name(catalog: &str) -> String {
    format!("pitrix-apply-{catalog}")
}

/// Who holds a lock, as the Lease says it: the host (or Pod) name, the process id and the role
/// (`apply`, `reconcile`): `pitrix apply on ci-runner-3 (pid 4242)`.
pub fn holder_identity(role: &str) -> String {
    format!(
        "pitrix {role} on {} (pid {})",
        host_name(),
        std::process::id()
    )
}

/// The lock's Lease as a report line's object.
pub fn lease_ref(namespace: &str, catalog: &str) -> ObjectRef {
    ObjectRef {
        api_version: "coordination.k8s.io/v1".into(),
        kind: "Lease".into(),
        namespace: Some(namespace.into()),
        name: lock_name(catalog),
        cluster: None,
    }
}

/// What this process saw of each lock (by `namespace/name`): a reconcile that waits a short
/// while at each sync still sees a crashed holder's lock expire across syncs.
fn observations() -> &'static StdMutex<BTreeMap<String, Observation>> {
    static SEEN: std::sync::OnceLock<StdMutex<BTreeMap<String, Observation>>> =
        std::sync::OnceLock::new();
    SEEN.get_or_init(Default::default)
}

/// A held apply lock: renewed in the background until [`ApplyLock::release`] (or drop).
pub struct ApplyLock {
    elector: Arc<Mutex<Elector>>,
    stop: watch::Sender<bool>,
    renewer: Option<JoinHandle<Option<String>>>,
}

/// Takes the apply lock of `catalog` for `opts.lock_holder`, waiting up to `opts.lock_timeout`
/// while someone else holds it (saying so once on stderr when `opts.lock_notice`).
pub async fn acquire(
    client: &Client,
    catalog: &str,
    opts: &ApplyOptions,
) -> Result<ApplyLock, Error> {
    let cfg = LeaseConfig {
        name: lock_name(catalog),
        namespace: opts.inventory_namespace.clone(),
        identity: opts.lock_holder.clone(),
        duration: LOCK_DURATION,
        renew_deadline: RENEW_DEADLINE,
        retry_period: RENEW_EVERY,
    };
    let key = format!("{}/{}", cfg.namespace, cfg.name);
    let seen = observations()
        .lock()
        .ok()
        .and_then(|m| m.get(&key).cloned());
    let mut elector = Elector::new(client.clone(), cfg).with_observation(seen);
    let started = Instant::now();
    let mut told = false;
    let mut errors = 0;
    let mut quick = 0;
    loop {
        let attempt = elector.try_acquire_or_renew().await;
        if let Ok(mut m) = observations().lock()
            && let Some(o) = elector.observation()
        {
            m.insert(key.clone(), o);
        }
        let waited = started.elapsed();
        match attempt {
            Ok(true) => break,
            Ok(false) => {
                errors = 0;
                let Some(holder) = elector.holder().map(str::to_string) else {
                    // Free, but another candidate came first, or the namespace was just
                    // created: try again at once (a few times).
                    if quick < 5 {
                        quick += 1;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                    if waited >= opts.lock_timeout {
                        return Err(Error::Lease(format!(
                            "could not take the apply lock of catalog {catalog} (Lease {}/{}) within {}",
                            opts.inventory_namespace,
                            lock_name(catalog),
                            seconds(opts.lock_timeout)
                        )));
                    }
                    tokio::time::sleep(POLL.min(opts.lock_timeout - waited)).await;
                    continue;
                };
                let since = elector
                    .held_since()
                    .unwrap_or("an unknown time")
                    .to_string();
                if waited >= opts.lock_timeout {
                    return Err(Error::Lease(format!(
                        "the apply lock of catalog {catalog} is held by {holder} since {since} (Lease {}/{}); waited {} (--lock-timeout)",
                        opts.inventory_namespace,
                        lock_name(catalog),
                        seconds(opts.lock_timeout)
                    )));
                }
                if !told && opts.lock_notice {
                    eprintln!(
                        "pitrix: waiting for the apply lock of catalog {catalog}, held by {holder} since {since} (up to {})",
                        seconds(opts.lock_timeout)
                    );
                    told = true;
                }
            }
            Err(e) => {
                errors += 1;
                if errors >= 3 || waited >= opts.lock_timeout {
                    return Err(Error::Lease(format!(
                        "cannot take the apply lock of catalog {catalog} (Lease {}/{}): {e}",
                        opts.inventory_namespace,
                        lock_name(catalog)
                    )));
                }
            }
        }
        tokio::time::sleep(POLL.min(opts.lock_timeout.saturating_sub(waited))).await;
    }
    let elector = Arc::new(Mutex::new(elector));
    let (stop, stopped) = watch::channel(false);
    let renewer = tokio::spawn(renew(elector.clone(), stopped));
    Ok(ApplyLock {
        elector,
        stop,
        renewer: Some(renewer),
    })
}

fn seconds(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

/// Renews the lock until told to stop; the reason when it was lost.
async fn renew(elector: Arc<Mutex<Elector>>, mut stopped: watch::Receiver<bool>) -> Option<String> {
    let mut renewed = Instant::now();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(RENEW_EVERY) => {}
            _ = stopped.wait_for(|s| *s) => return None,
        }
        let mut e = elector.lock().await;
        match e.try_acquire_or_renew().await {
            Ok(true) => renewed = Instant::now(),
            Ok(false) => {
                return Some(format!(
                    "the apply lock was taken over by {} while this apply ran; re-run it",
                    e.holder().unwrap_or("another writer")
                ));
            }
            Err(why) if renewed.elapsed() >= RENEW_DEADLINE => {
                return Some(format!(
                    "the apply lock could not be renewed for {}s ({why}); another apply may have run at the same time: re-run it",
                    RENEW_DEADLINE.as_secs()
                ));
            }
            Err(_) => {}
        }
    }
}

impl ApplyLock {
    /// Stops renewing and frees the lock; an error when it was lost meanwhile (the apply ran
    /// partly unprotected) or cannot be freed (it then expires after [`LOCK_DURATION`]).
    pub async fn release(mut self) -> Result<(), Error> {
        let _ = self.stop.send(true);
        let lost = match self.renewer.take() {
            Some(task) => task.await.unwrap_or(None),
            None => None,
        };
        let freed = self.elector.lock().await.release().await;
        match (lost, freed) {
            (Some(why), _) => Err(Error::Lease(why)),
            (None, Err(why)) => Err(Error::Lease(format!(
                "cannot release the apply lock: {why}"
            ))),
            (None, Ok(())) => Ok(()),
        }
    }
}

impl Drop for ApplyLock {
    /// An apply dropped midway (reconcile stops a sync that way): stop renewing. The lock is
    /// not freed from here — a release in the background could land after this process took
    /// the lock again for its next sync (same holder) — so others see it expire after
    /// [`LOCK_DURATION`]; this process takes it back at once.
    fn drop(&mut self) {
        if let Some(task) = self.renewer.take() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_holders() {
        assert_eq!(lock_name("demo"), "pitrix-apply-demo");
        let me = holder_identity("apply");
        assert!(me.starts_with("pitrix apply on "), "{me}");
        assert!(
            me.ends_with(&format!("(pid {})", std::process::id())),
            "{me}"
        );
        // Never the leader-election Lease of reconcile.
        assert_ne!(lock_name("reconcile"), "pitrix-reconcile");
    }
}
