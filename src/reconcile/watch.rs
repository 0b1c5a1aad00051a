//! Drift detection: a kube-runtime watcher per managed kind (per namespace for namespaced
//! kinds), selecting the catalog's label. Each event is checked against the resident
//! [`Index`]; an object that differs, or that is deleted, or that a fresh list no longer shows,
//! becomes a suspect for the controller, which reads it again before it corrects anything.
//! Storage ConfigMaps are immutable and large, so they are watched as metadata only.
//!
//! Nothing is cached: a watcher holds no store, and a list is paged, so memory stays flat
//! however many objects the catalog manages.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::api::{Api, DynamicObject};
use kube::core::PartialObjectMeta;
use kube::runtime::watcher::{self, Event};
use serde_json::Value;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::index::{Index, Scope};
use super::log;
use super::metrics::Metrics;
use crate::cluster::Clusters;
use crate::cluster::api;
use crate::cluster::{KindInfo, ObjectRef};
use crate::objects::labels;

/// The index drift is checked against; replaced whole after each sync.
pub type SharedIndex = Arc<RwLock<Option<Arc<Index>>>>;

pub fn current(index: &SharedIndex) -> Option<Arc<Index>> {
    index.read().unwrap_or_else(|p| p.into_inner()).clone()
}

/// Objects a watcher saw drift on, with when it was first seen; drained by the controller.
#[derive(Default)]
pub struct Suspects {
    set: std::sync::Mutex<BTreeMap<ObjectRef, Instant>>,
    /// An executor Job changed (`standalone` target): the releases' status may follow.
    jobs: std::sync::atomic::AtomicBool,
    notify: Notify,
}

impl Suspects {
    pub fn job_changed(&self) {
        self.jobs.store(true, std::sync::atomic::Ordering::Relaxed);
        self.notify.notify_one();
    }

    pub fn take_jobs(&self) -> bool {
        self.jobs.swap(false, std::sync::atomic::Ordering::Relaxed)
    }

    pub fn add(&self, r: ObjectRef) {
        self.add_since(r, Instant::now());
    }

    /// A suspect whose change happened at `since` (the drift latency is measured from it).
    pub fn add_since(&self, r: ObjectRef, since: Instant) {
        self.set
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(r)
            .or_insert(since);
        self.notify.notify_one();
    }

    pub fn take(&self) -> BTreeMap<ObjectRef, Instant> {
        std::mem::take(&mut *self.set.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub async fn notified(&self) {
        self.notify.notified().await;
    }
}

pub struct Watchers {
    pub catalog: String,
    pub scopes: BTreeSet<Scope>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Watchers {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

struct Ctx {
    cluster: Option<String>,
    kind: &'static KindInfo,
    namespace: Option<String>,
    index: SharedIndex,
    suspects: Arc<Suspects>,
    metrics: Arc<Metrics>,
}

impl Ctx {
    fn object_ref(&self, name: String, namespace: Option<String>) -> ObjectRef {
        ObjectRef {
            api_version: self.kind.api_version.into(),
            kind: self.kind.kind.into(),
            namespace: if self.kind.namespaced {
                namespace
            } else {
                None
            },
            cluster: self.cluster.clone(),
            name,
        }
    }

    /// An object as a watch shows it: a suspect when it differs from the index.
    fn check(&self, r: ObjectRef, live: &Value, metadata_only: bool) {
        let Some(index) = current(&self.index) else {
            return;
        };
        let Some(expected) = index.objects.get(&r) else {
            return;
        };
        if self.kind.kind == "Job" && !index.jobs.is_empty() {
            self.suspects.job_changed();
        }
        let drifted = if metadata_only {
            // A mutable ConfigMap may have changed beyond its metadata: read it again.
            !expected.immutable() || !expected.metadata_matches(live)
        } else {
            !expected.matches(live) || index.state_of(&r).is_some_and(|s| !s.matches(live))
        };
        if drifted {
            self.suspects.add_since(r, changed_at(live));
        }
    }

    fn deleted(&self, r: ObjectRef) {
        if current(&self.index).is_some_and(|i| i.objects.contains_key(&r)) {
            self.suspects.add(r);
        }
    }

    /// After a (re)list: what the index holds in this scope and the list did not show.
    fn missing(&self, seen: &HashSet<String>) {
        let Some(index) = current(&self.index) else {
            return;
        };
        for r in index.objects.keys() {
            if r.kind == self.kind.kind
                && r.namespace == self.namespace
                && r.cluster == self.cluster
                && !seen.contains(&r.name)
            {
                self.suspects.add(r.clone());
            }
        }
    }

    fn error(&self, e: &watcher::Error, last: &mut Option<Instant>) {
        self.metrics.error("watch");
        // A broken connection shows on every retry: log it once a minute.
        if last.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
            *last = Some(Instant::now());
            let mut scope = match &self.namespace {
                Some(ns) => format!("{} in {ns}", self.kind.plural),
                None => self.kind.plural.to_string(),
            };
            if let Some(cluster) = &self.cluster {
                scope.push_str(&format!(" of cluster `{cluster}`"));
            }
            log::warn(format!(
                "watch of {scope}: {e} (starting again with a fresh list)"
            ));
        }
    }
}

/// When the change an event shows was made, as an [`Instant`]: the newest write time its
/// managedFields record (a deletion: its deletionTimestamp). An event that arrives late (a
/// watch that was down) then counts its whole delay into the drift latency, not only the time
/// since it arrived. Times are whole seconds; one in the future, or older than an hour (a
/// clock far off), counts from now.
pub fn changed_at(live: &Value) -> Instant {
    let now = Instant::now();
    let mut times: Vec<&str> = live
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| e["time"].as_str())
        .collect();
    times.extend(
        live.pointer("/metadata/deletionTimestamp")
            .and_then(Value::as_str),
    );
    let newest = times
        .into_iter()
        .filter_map(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok())
        .max();
    let Some(newest) = newest else {
        return now;
    };
    let ago = k8s_openapi::jiff::Timestamp::now().duration_since(newest);
    match Duration::try_from(ago) {
        Ok(ago) if ago <= Duration::from_secs(3600) => now.checked_sub(ago).unwrap_or(now),
        _ => now,
    }
}

/// How long a broken watch waits before it starts again with a fresh list: short and capped,
/// so drift is not left unwatched for long after an API server restart.
fn restart_delay(failures: u32) -> Duration {
    Duration::from_millis(250u64 << failures.min(4)).min(Duration::from_secs(4))
}

fn config(catalog: &str, page_size: u32) -> watcher::Config {
    watcher::Config::default()
        .labels(&format!("{}={catalog}", labels::PITRIX_CATALOG))
        .page_size(page_size)
}

/// A watch of one scope: after any error it starts again with a fresh list (never resumes
/// from an old resourceVersion), so what changed or vanished while it was down is found by
/// the list itself, at once. `value` gives what [`Ctx::check`] compares (`metadata_only`: the
/// object's metadata alone).
async fn watch_scope<K>(
    ctx: Ctx,
    api: impl Fn() -> Api<K>,
    config: watcher::Config,
    value: fn(&K) -> Value,
    metadata_only: bool,
) where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let mut failures = 0;
    let mut last_error = None;
    loop {
        let stream = watcher::watcher(api(), config.clone()).boxed();
        match watch_once(&ctx, stream, &mut last_error, value, metadata_only).await {
            true => failures = 0,
            false => failures += 1,
        }
        tokio::time::sleep(restart_delay(failures)).await;
    }
}

/// One watch until its first error; whether it had listed everything before that.
async fn watch_once<K: kube::Resource>(
    ctx: &Ctx,
    mut stream: futures::stream::BoxStream<'_, watcher::Result<Event<K>>>,
    last_error: &mut Option<Instant>,
    value: fn(&K) -> Value,
    metadata_only: bool,
) -> bool {
    let mut seen = HashSet::new();
    let mut listed = false;
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::Init) => seen.clear(),
            Ok(Event::InitApply(o)) => {
                seen.insert(o.name_any());
                let r = ctx.object_ref(o.name_any(), o.namespace());
                ctx.check(r, &value(&o), metadata_only);
            }
            Ok(Event::InitDone) => {
                ctx.missing(&seen);
                seen = HashSet::new();
                *last_error = None;
                listed = true;
            }
            Ok(Event::Apply(o)) => {
                let r = ctx.object_ref(o.name_any(), o.namespace());
                ctx.check(r, &value(&o), metadata_only);
            }
            Ok(Event::Delete(o)) => ctx.deleted(ctx.object_ref(o.name_any(), o.namespace())),
            Err(e) => {
                ctx.error(&e, last_error);
                return listed;
            }
        }
    }
    listed
}

impl Watchers {
    /// One watch per scope, each on its catalog cluster (member clients are made on first
    /// use, so a member is reached only when the catalog has objects there).
    pub fn start(
        clusters: &Clusters,
        catalog: &str,
        scopes: BTreeSet<Scope>,
        index: &SharedIndex,
        suspects: &Arc<Suspects>,
        metrics: &Arc<Metrics>,
    ) -> Watchers {
        let mut tasks = Vec::new();
        for Scope {
            cluster,
            kind,
            namespace,
        } in &scopes
        {
            let Some(info) = KindInfo::of(kind) else {
                continue;
            };
            let ctx = Ctx {
                cluster: cluster.clone(),
                kind: info,
                namespace: namespace.clone(),
                index: index.clone(),
                suspects: suspects.clone(),
                metrics: metrics.clone(),
            };
            let (clusters, catalog) = (clusters.clone(), catalog.to_string());
            tasks.push(tokio::spawn(async move {
                let client = match clusters.client(ctx.cluster.as_deref()).await {
                    Ok(client) => client,
                    Err(why) => {
                        ctx.metrics.error("watch");
                        return log::warn(format!("no drift watch of {}: {why}", info.plural));
                    }
                };
                if info.kind == "ConfigMap" && ctx.namespace.is_some() {
                    // Metadata-only requests: the packages' bytes never cross the wire.
                    let ns = ctx.namespace.clone().unwrap_or_default();
                    let api = move || -> Api<PartialObjectMeta<ConfigMap>> {
                        Api::namespaced(client.clone(), &ns)
                    };
                    let meta = |o: &PartialObjectMeta<ConfigMap>| {
                        serde_json::to_value(&o.metadata).unwrap_or_default()
                    };
                    watch_scope(ctx, api, config(&catalog, 500), meta, true).await
                } else {
                    let (kind, ns) = (ctx.kind, ctx.namespace.clone());
                    let objects = move || api(&client, kind, ns.as_deref());
                    let full = |o: &DynamicObject| serde_json::to_value(o).unwrap_or_default();
                    watch_scope(ctx, objects, config(&catalog, 200), full, false).await
                }
            }));
        }
        Watchers {
            catalog: catalog.to_string(),
            scopes,
            tasks,
        }
    }
}
