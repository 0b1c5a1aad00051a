//! Leader election with a coordination.k8s.io/v1 Lease, the way client-go's leaderelection
//! does it: a candidate takes the lease when it is free or when its record has not changed for
//! a whole lease duration *as measured by the candidate's own clock* (so clock skew between
//! replicas does not matter); writes carry the resourceVersion they read, so two candidates
//! never both win; the holder renews every retry period and gives up when it has not managed
//! to for the renew deadline; on shutdown it releases the lease so another replica takes over
//! at once. `pitrix reconcile`'s leader election and the per-catalog apply lock
//! ([`crate::apply`]'s lock) are both built on it.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, PostParams};

use crate::cluster::{describe, is_not_found};
use crate::error::Error;

#[derive(Debug, Clone)]
pub struct LeaseConfig {
    pub name: String,
    pub namespace: String,
    /// This replica's identity (the Pod name, made unique).
    pub identity: String,
    /// How long a silent holder keeps the lease.
    pub duration: Duration,
    /// How long the holder keeps trying to renew before it steps down (< duration).
    pub renew_deadline: Duration,
    /// How often candidates try and the holder renews.
    pub retry_period: Duration,
}

/// What a Lease says, compared between observations.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    holder: Option<String>,
    renew: Option<String>,
    transitions: i32,
    duration: i32,
    /// When the holder took it (`acquireTime`).
    acquired: Option<String>,
}

impl Record {
    fn of(spec: &LeaseSpec) -> Record {
        Record {
            holder: spec.holder_identity.clone().filter(|h| !h.is_empty()),
            renew: spec.renew_time.as_ref().map(|t| t.0.to_string()),
            transitions: spec.lease_transitions.unwrap_or(0),
            duration: spec.lease_duration_seconds.unwrap_or(0),
            acquired: spec.acquire_time.as_ref().map(|t| t.0.to_string()),
        }
    }
}

/// What a candidate saw of a Lease and when (by its own clock): carried from one [`Elector`]
/// to the next, so that waits spread over several short tries (one per reconcile sync) still
/// add up to the lease duration of a crashed holder.
#[derive(Debug, Clone)]
pub struct Observation(Record, Instant);

pub struct Elector {
    api: Api<Lease>,
    cfg: LeaseConfig,
    /// The last record seen and when (by our clock) it was first seen.
    observed: Option<(Record, Instant)>,
}

fn now() -> MicroTime {
    MicroTime(Timestamp::now())
}

fn secs(d: Duration) -> i32 {
    d.as_secs().clamp(1, i32::MAX as u64) as i32
}

impl Elector {
    pub fn new(client: Client, cfg: LeaseConfig) -> Elector {
        Elector {
            api: Api::namespaced(client, &cfg.namespace),
            cfg,
            observed: None,
        }
    }

    pub fn config(&self) -> &LeaseConfig {
        &self.cfg
    }

    /// The holder last seen (None: free or not read yet).
    pub fn holder(&self) -> Option<&str> {
        self.observed
            .as_ref()
            .and_then(|(r, _)| r.holder.as_deref())
    }

    /// Since when the holder last seen holds the lease: its `acquireTime`, else its last
    /// `renewTime`.
    pub fn held_since(&self) -> Option<&str> {
        self.observed
            .as_ref()
            .and_then(|(r, _)| r.acquired.as_deref().or(r.renew.as_deref()))
    }

    /// What this candidate saw last, to seed another elector of the same lease.
    pub fn observation(&self) -> Option<Observation> {
        self.observed.clone().map(|(r, t)| Observation(r, t))
    }

    /// Starts from what an earlier elector of the same lease saw.
    pub fn with_observation(mut self, seen: Option<Observation>) -> Elector {
        self.observed = seen.map(|Observation(r, t)| (r, t));
        self
    }

    async fn call<T>(
        &self,
        what: &str,
        f: impl std::future::Future<Output = Result<T, kube::Error>>,
    ) -> Result<Result<T, kube::Error>, Error> {
        tokio::time::timeout(self.cfg.renew_deadline, f)
            .await
            .map_err(|_| {
                Error::Lease(format!(
                    "lease {what}: no answer within {:?}",
                    self.cfg.renew_deadline
                ))
            })
    }

    /// One attempt to take or keep the lease: Ok(true) when this replica holds it now.
    pub async fn try_acquire_or_renew(&mut self) -> Result<bool, Error> {
        let me = self.cfg.identity.clone();
        let current = match self.call("read", self.api.get(&self.cfg.name)).await? {
            Ok(l) => l,
            Err(e) if is_not_found(&e) => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.cfg.name.clone()),
                        namespace: Some(self.cfg.namespace.clone()),
                        labels: Some(
                            [(
                                crate::objects::labels::MANAGED_BY.to_string(),
                                crate::objects::labels::MANAGED_BY_PITRIX.to_string(),
                            )]
                            .into(),
                        ),
                        ..ObjectMeta::default()
                    },
                    spec: Some(LeaseSpec {
                        holder_identity: Some(me),
                        lease_duration_seconds: Some(secs(self.cfg.duration)),
                        acquire_time: Some(now()),
                        renew_time: Some(now()),
                        lease_transitions: Some(0),
                        ..LeaseSpec::default()
                    }),
                };
                return match self
                    .call("create", self.api.create(&PostParams::default(), &lease))
                    .await?
                {
                    Ok(created) => {
                        self.observe(&created);
                        Ok(true)
                    }
                    // Another candidate created it first.
                    Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                    // Its namespace is missing (outside a cluster install): create it, try again.
                    Err(e) if is_not_found(&e) => {
                        self.create_namespace().await?;
                        Ok(false)
                    }
                    Err(e) => Err(Error::Lease(format!(
                        "cannot create lease: {}",
                        describe(&e)
                    ))),
                };
            }
            Err(e) => return Err(Error::Lease(format!("cannot read lease: {}", describe(&e)))),
        };
        let spec = current.spec.clone().unwrap_or_default();
        let record = Record::of(&spec);
        let changed = self.observed.as_ref().is_none_or(|(r, _)| *r != record);
        if changed {
            self.observed = Some((record.clone(), Instant::now()));
        }
        let observed_at = self
            .observed
            .as_ref()
            .map(|(_, t)| *t)
            .unwrap_or_else(Instant::now);
        let duration = Duration::from_secs(record.duration.max(1) as u64);
        let mine = record.holder.as_deref() == Some(me.as_str());
        if record.holder.is_some() && !mine && observed_at.elapsed() < duration {
            return Ok(false);
        }
        let mut lease = current;
        let mut next = spec;
        if !mine {
            next.acquire_time = Some(now());
            next.lease_transitions = Some(record.transitions + 1);
        }
        next.holder_identity = Some(me);
        next.renew_time = Some(now());
        next.lease_duration_seconds = Some(secs(self.cfg.duration));
        lease.spec = Some(next);
        // The resourceVersion read above makes this a compare-and-swap.
        match self
            .call(
                "update",
                self.api
                    .replace(&self.cfg.name, &PostParams::default(), &lease),
            )
            .await?
        {
            Ok(updated) => {
                self.observe(&updated);
                Ok(true)
            }
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(Error::Lease(format!(
                "cannot update lease: {}",
                describe(&e)
            ))),
        }
    }

    async fn create_namespace(&self) -> Result<(), Error> {
        let api: Api<Namespace> = Api::all(self.api.clone().into_client());
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(self.cfg.namespace.clone()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        match self
            .call("namespace", api.create(&PostParams::default(), &ns))
            .await?
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
            Err(e) => Err(Error::Lease(format!(
                "cannot create namespace {} for the lease: {}",
                self.cfg.namespace,
                describe(&e)
            ))),
        }
    }

    fn observe(&mut self, lease: &Lease) {
        let record = Record::of(&lease.spec.clone().unwrap_or_default());
        self.observed = Some((record, Instant::now()));
    }

    /// Gives the lease up, if this replica holds it: the holder is cleared and the duration
    /// set to one second, so a waiting replica takes over at its next try.
    pub async fn release(&mut self) -> Result<(), Error> {
        let mut lease = match self.call("read", self.api.get(&self.cfg.name)).await? {
            Ok(l) => l,
            Err(e) if is_not_found(&e) => return Ok(()),
            Err(e) => return Err(Error::Lease(format!("cannot read lease: {}", describe(&e)))),
        };
        let mut spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.cfg.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(now());
        lease.spec = Some(spec);
        match self
            .call(
                "release",
                self.api
                    .replace(&self.cfg.name, &PostParams::default(), &lease),
            )
            .await?
        {
            Ok(updated) => {
                self.observe(&updated);
                Ok(())
            }
            Err(e) => Err(Error::Lease(format!(
                "cannot release lease: {}",
                describe(&e)
            ))),
        }
    }
}

/// A unique identity for this replica: `$POD_NAME` or the host name, plus a random suffix so
/// that a restarted replica is a new candidate.
pub fn default_identity() -> String {
    format!("{}_{:08x}", host_name(), random_u32())
}

/// `$POD_NAME`, else the host name, else `pitrix`.
pub fn host_name() -> String {
    std::env::var("POD_NAME")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|s| s.trim().to_string())
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "pitrix".into())
}

/// A random number for unique names; not for cryptography.
fn random_u32() -> u32 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.finish() as u32
}
