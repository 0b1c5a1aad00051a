//! The leader's work: on an interval (with jitter) fetch the source, and for each new revision
//! compile → apply → prune with apply's guards; between syncs, correct (or report) drift the
//! watchers find. A revision that does not compile changes nothing; the last good one stays
//! applied and watched.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::watch;

use super::index::{Drift, Index};
use super::log;
use super::metrics::Metrics;
use super::source::{Commit, Source};
use super::status::{EventType, Reporter, SyncResult, SyncStatus};
use super::store::Store;
use super::watch::{SharedIndex, Suspects, Watchers, current};
use crate::apply::{self, ApplyOptions, Desired, DesiredObject, Live, Outcome};
use crate::cluster::Clusters;
use crate::cluster::{KindInfo, ObjectRef};
use crate::cluster::{api, describe, is_not_found, retry};
use crate::diagnostics::{Diagnostic, Format};
use crate::error::Error;
use crate::objects::labels;

/// What `--drift` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DriftMode {
    /// Undo out-of-band changes and re-create deleted objects.
    #[default]
    Correct,
    /// Only report them (log, Event, metrics).
    Warn,
}

impl DriftMode {
    pub const ALL: [DriftMode; 2] = [DriftMode::Correct, DriftMode::Warn];

    /// The name `--drift` takes.
    pub fn name(self) -> &'static str {
        match self {
            DriftMode::Correct => "correct",
            DriftMode::Warn => "warn",
        }
    }
}

super::named_enum!(DriftMode, "a drift mode");

#[derive(Debug, Clone)]
pub struct Settings {
    pub interval: Duration,
    /// Fraction of the interval added at random (0.1: up to 10 % later).
    pub jitter: f64,
    pub drift: DriftMode,
    pub apply: ApplyOptions,
    /// A sync taking longer is abandoned (at a safe point) and retried.
    pub sync_timeout: Duration,
    /// On SIGTERM, how long an in-flight sync may run on.
    pub shutdown_grace: Duration,
    /// Re-apply the current revision this often even when nothing changed (None: never).
    pub resync: Option<Duration>,
    pub work_dir: PathBuf,
    /// The environment of pitrix.toml to build for (`--env`).
    pub env: Option<String>,
}

/// Why the controller must stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Run,
    /// SIGTERM: finish or stop the sync at a safe point, then return.
    Shutdown,
    /// The lease is lost: another replica may start any moment; stop now.
    Lost,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Attempt {
    revision: String,
    result: SyncResult,
    at: Instant,
}

pub struct Controller {
    /// The host for watches, status and drift; member clusters for executor Jobs.
    clusters: Clusters,
    settings: Settings,
    source: Arc<Source>,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    reporter: Reporter,
    index: SharedIndex,
    suspects: Arc<Suspects>,
    watchers: Option<Watchers>,
    last: Option<Attempt>,
    /// The revision last applied without failure, and when (RFC 3339).
    applied: Option<(String, String)>,
    /// Drift already reported in `--drift warn` mode.
    warned: HashSet<ObjectRef>,
    /// The catalog's name as last seen (for status when a revision does not compile).
    catalog: Option<String>,
    /// Whether the first sync ran (readiness without leader election).
    first_done: bool,
    /// S3 objects found deleted out of band, re-uploaded by the sync in flight, and when.
    s3_missing: Vec<String>,
    /// The last failure to check the S3 objects (logged once until it changes).
    s3_check_failed: Option<String>,
}

/// Resolves once the lease is lost.
async fn wait_lost(mut stop: watch::Receiver<Stop>) {
    let _ = stop.wait_for(|s| *s == Stop::Lost).await;
}

/// Returns freed heap to the operating system after a sync: the compiled catalog and the
/// cluster listing are large and short-lived, and glibc keeps freed memory otherwise.
fn trim_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            fn malloc_trim(pad: usize) -> i32;
        }
        // SAFETY: malloc_trim only releases free memory; it is safe to call at any time.
        unsafe {
            malloc_trim(0);
        }
    }
}

fn rfc3339_now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The interval with up to `jitter` of it added at random.
pub fn jittered(interval: Duration, jitter: f64) -> Duration {
    let r = super::random_u64() as f64 / u64::MAX as f64;
    interval.mul_f64(1.0 + jitter.clamp(0.0, 1.0) * r)
}

/// `[catalog] name` of a pitrix.toml, for status when the catalog does not compile.
fn catalog_name(dir: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("pitrix.toml")).ok()?;
    let value: toml::Value = toml::from_str(&text).ok()?;
    let name = value.get("catalog")?.get("name")?.as_str()?;
    crate::names::dns1123_label(name)
        .is_ok()
        .then(|| name.to_string())
}

enum Built {
    Ok(Box<Desired>, usize),
    /// The catalog's name when it was read, why, and whose fault: the catalog's
    /// (`CompileFailed`, settled) or the controller's checkout or store (`BuildFailed`, tried
    /// again).
    Failed(Option<String>, String, SyncResult),
}

/// Whose fault a failed build is: a `cache-io` diagnostic is the controller's (its spool or
/// store could not be written or read back), everything else — an `io` one included, a file of
/// the catalog that cannot be read, such as a committed link loop — the catalog's.
fn build_failure(diags: &[Diagnostic]) -> SyncResult {
    let cache = diags
        .iter()
        .any(|d| d.is_error() && d.code == crate::diagnostics::Code::CacheIo);
    match cache {
        true => SyncResult::BuildFailed,
        false => SyncResult::CompileFailed,
    }
}

/// A summary of diagnostics: the errors first, at most `max` lines.
fn summarise(diags: &[Diagnostic], root: &std::path::Path, max: usize) -> String {
    let errors: Vec<Diagnostic> = diags.iter().filter(|d| d.is_error()).cloned().collect();
    let text = crate::diagnostics::render(&errors, root, Format::Text);
    let root_text = format!("{}/", root.display());
    let lines: Vec<String> = text.lines().map(|l| l.replace(&root_text, "")).collect();
    let mut out = format!("{} error(s):\n", errors.len());
    out.push_str(&lines[..lines.len().min(max)].join("\n"));
    if lines.len() > max {
        out.push_str("\n...");
    }
    out
}

fn failures(report: &apply::ApplyReport, max: usize) -> String {
    let failed: Vec<String> = report
        .results
        .iter()
        .filter_map(|r| match &r.outcome {
            Outcome::Failed(why) => Some(format!("{} {}: {why}", r.object.kind, r.object.name)),
            _ => None,
        })
        .collect();
    let mut out = format!("{} object(s) failed:\n", failed.len());
    out.push_str(&failed[..failed.len().min(max)].join("\n"));
    if failed.len() > max {
        out.push_str("\n...");
    }
    out
}

/// Apply's outcome for one object as the drift correction's error: apply reports a message per
/// object, so its kind is told by the outcome — a write it left alone (an object not this
/// catalog's, a guard) is refused, any other failure a request to the cluster that failed.
fn not_applied(outcome: Outcome) -> Result<(), Error> {
    match outcome {
        Outcome::Skipped(why) => Err(Error::Refused(why)),
        Outcome::Failed(why) => Err(Error::Cluster(why)),
        _ => Ok(()),
    }
}

impl Controller {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        clusters: Clusters,
        settings: Settings,
        source: Arc<Source>,
        store: Arc<Store>,
        metrics: Arc<Metrics>,
        reporter: Reporter,
    ) -> Controller {
        Controller {
            clusters,
            settings,
            source,
            store,
            metrics,
            reporter,
            index: SharedIndex::default(),
            suspects: Arc::default(),
            watchers: None,
            last: None,
            applied: None,
            warned: HashSet::new(),
            catalog: None,
            first_done: false,
            s3_missing: Vec::new(),
            s3_check_failed: None,
        }
    }

    pub fn first_sync_done(&self) -> bool {
        self.first_done
    }

    /// Works until `stop` leaves [`Stop::Run`]; then stops watching and returns. Leaves the
    /// controller ready to run again (as a new leader: it re-applies from scratch).
    pub async fn run(&mut self, mut stop: watch::Receiver<Stop>) {
        let mut next = tokio::time::Instant::now();
        while *stop.borrow() == Stop::Run {
            tokio::select! {
                _ = tokio::time::sleep_until(next) => {
                    self.sync_guarded(&mut stop).await;
                    // Also after a sync that found nothing new: memory freed since (an idle
                    // connection closed, a watch relisted) goes back too.
                    trim_memory();
                    next = tokio::time::Instant::now()
                        + jittered(self.settings.interval, self.settings.jitter);
                }
                _ = self.suspects.notified() => {
                    // Let a burst of events land, then handle them together — given up at once
                    // when the lease is lost (each write is atomic; the next term re-syncs).
                    let lost = stop.clone();
                    let handle = async {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        let batch = self.suspects.take();
                        if !batch.is_empty() {
                            self.correct(batch).await;
                        }
                        if self.suspects.take_jobs() {
                            self.track_releases().await;
                        }
                    };
                    tokio::select! {
                        () = handle => {}
                        _ = wait_lost(lost) => log::warn("lease lost: drift correction in flight is stopped"),
                    }
                }
                _ = stop.changed() => {}
            }
        }
        // Stop watching; forget the revision so that a new term starts with a full apply.
        self.watchers = None;
        *self.index.write().unwrap_or_else(|p| p.into_inner()) = None;
        self.suspects.take();
        self.last = None;
        self.warned.clear();
    }

    /// A sync that yields to `stop`: dropped at once when the lease is lost, given the grace
    /// period on shutdown, abandoned after the sync timeout. Dropping it is safe at any await
    /// point: each object write is atomic, and apply widens the inventory before it writes,
    /// so an interrupted sync leaves nothing untracked and the next one converges.
    async fn sync_guarded(&mut self, stop: &mut watch::Receiver<Stop>) {
        let timeout = self.settings.sync_timeout;
        let grace = self.settings.shutdown_grace;
        let metrics = self.metrics.clone();
        let sync = tokio::time::timeout(timeout, self.sync());
        tokio::pin!(sync);
        let finished = tokio::select! {
            r = &mut sync => Some(r),
            _ = stop.wait_for(|s| *s != Stop::Run) => None,
        };
        let result = match finished {
            Some(r) => Some(r),
            None if *stop.borrow() == Stop::Lost => {
                log::warn("lease lost: the sync in flight is stopped");
                None
            }
            None => {
                log::info(format!(
                    "shutting down: letting the sync in flight finish (up to {}s)",
                    grace.as_secs()
                ));
                tokio::select! {
                    r = tokio::time::timeout(grace, &mut sync) => match r {
                        Ok(r) => Some(r),
                        Err(_) => {
                            log::warn("shutdown grace period over: the sync in flight is stopped at a safe point");
                            None
                        }
                    },
                    _ = stop.wait_for(|s| *s == Stop::Lost) => None,
                }
            }
        };
        if let Some(Err(_)) = result {
            metrics.error("apply");
            log::error(format!(
                "sync took longer than {}s and was stopped; retrying at the next interval",
                timeout.as_secs()
            ));
        }
    }

    fn inventory_catalog(&self) -> Option<String> {
        current(&self.index)
            .map(|i| i.catalog.clone())
            .or_else(|| self.catalog.clone())
    }

    async fn record(&self, catalog: Option<&str>, status: SyncStatus) {
        let Some(catalog) = catalog else {
            return;
        };
        if let Err(e) = self.reporter.record(catalog, &status).await {
            self.metrics.error(e.metric_label());
            log::warn(e);
        }
    }

    async fn event(
        &self,
        catalog: Option<&str>,
        type_: EventType,
        reason: &str,
        action: &str,
        note: &str,
        related: Option<&ObjectRef>,
    ) {
        let Some(catalog) = catalog else {
            return;
        };
        if let Err(e) = self
            .reporter
            .event(catalog, type_, reason, action, note, related)
            .await
        {
            self.metrics.error(e.metric_label());
            log::warn(e);
        }
    }

    /// Fetch, and if the revision is new (or its last apply failed, or a resync is due):
    /// compile, apply, prune, record.
    pub async fn sync(&mut self) {
        let started = Instant::now();
        let source = self.source.clone();
        let fetched = tokio::task::spawn_blocking(move || source.fetch_revision())
            .await
            .unwrap_or_else(|e| Err(Error::Runtime(format!("fetch task failed: {e}"))));
        let commit = match fetched {
            Ok(c) => c,
            Err(e) => {
                self.metrics.error(e.metric_label());
                let why = e.to_string();
                self.metrics.fetch_failed(Arc::new(e));
                let kept = match &self.applied {
                    Some((r, _)) => format!("; the cluster stays at {}", &r[..r.len().min(12)]),
                    None => String::new(),
                };
                log::warn(format!("{why}{kept}"));
                let catalog = self.inventory_catalog();
                let revision = self
                    .last
                    .as_ref()
                    .map(|a| a.revision.clone())
                    .unwrap_or_default();
                self.record(
                    catalog.as_deref(),
                    SyncStatus {
                        revision,
                        result: SyncResult::FetchFailed,
                        message: why.clone(),
                        applied: self.applied.clone(),
                    },
                )
                .await;
                self.event(
                    catalog.as_deref(),
                    EventType::Warning,
                    SyncResult::FetchFailed.reason(),
                    "Fetch",
                    &why,
                    None,
                )
                .await;
                self.first_done = true;
                self.metrics.set_ready(Ok(()));
                return;
            }
        };
        self.metrics.fetched(&commit.id);
        let resync_due = self
            .settings
            .resync
            .zip(self.last.as_ref())
            .is_some_and(|(every, last)| last.at.elapsed() >= every);
        if let Some(last) = &self.last
            && last.revision == commit.id
            && last.result.settled()
            && !resync_due
        {
            let synced = last.result == SyncResult::Synced;
            log::debug(format!(
                "{} unchanged ({})",
                commit.short(),
                last.result.as_str()
            ));
            // S3 objects have no watch: a package deleted from the bucket is looked for here,
            // and re-uploaded by a sync of the same revision (which uploads only what is missing).
            if !synced || !self.s3_objects_missing().await {
                return;
            }
        }
        log::info(format!(
            "syncing {} \"{}\" from {}",
            commit.short(),
            commit.summary,
            self.source.describe()
        ));
        let result = self.sync_revision(&commit, started).await;
        for key in std::mem::take(&mut self.s3_missing) {
            if result == SyncResult::Synced {
                self.metrics
                    .drift_corrected("S3Object", started.elapsed().as_secs_f64());
                log::info(format!(
                    "drift corrected: S3Object {key} was deleted out of band"
                ));
            }
        }
        self.last = Some(Attempt {
            revision: commit.id.clone(),
            result,
            at: Instant::now(),
        });
        self.first_done = true;
        self.metrics.set_ready(Ok(()));
    }

    /// Whether an S3 object of the applied revision is gone from its store (listed by prefix,
    /// off the async threads); those found are kept for the sync that re-uploads them.
    async fn s3_objects_missing(&mut self) -> bool {
        let Some(index) = current(&self.index) else {
            return false;
        };
        if index.s3_keys.is_empty() {
            return false;
        }
        let Some(store) = index.object_store.clone() else {
            return false;
        };
        let checked = tokio::task::spawn_blocking(move || {
            super::index::missing_s3_objects(&store, &index.s3_keys)
        })
        .await
        .unwrap_or_else(|e| Err(Error::Runtime(format!("the S3 check stopped: {e}"))));
        match checked {
            Ok(missing) => {
                self.s3_check_failed = None;
                for key in &missing {
                    self.metrics.drift_detected("S3Object");
                    log::warn(format!(
                        "drift: S3Object {key} was deleted out of band; uploading it again"
                    ));
                }
                self.s3_missing = missing;
                !self.s3_missing.is_empty()
            }
            Err(why) => {
                self.metrics.error("drift");
                let why = format!("cannot check the S3 objects: {why}");
                if self.s3_check_failed.as_deref() != Some(why.as_str()) {
                    log::warn(&why);
                    self.s3_check_failed = Some(why);
                }
                false
            }
        }
    }

    /// Checkout and compile, off the async threads (they keep the lease renewed meanwhile).
    async fn build(&self, commit: &Commit) -> Built {
        let source = self.source.clone();
        let store = self.store.clone();
        let dir = self.settings.work_dir.join(&commit.id);
        let spool = self
            .settings
            .work_dir
            .join(format!("{}.packages", commit.id));
        let id = commit.id.clone();
        let check = crate::pipeline::CheckOptions {
            online: None,
            env: self.settings.env.clone(),
            // Packages wait on disk, and each compiled body goes straight to the store: a sync
            // holds a few apps' packages at a time, not the catalog's (issue #20).
            spool: Some(spool.clone()),
            ..Default::default()
        };
        tokio::task::spawn_blocking(move || {
            let clean = || {
                let _ = std::fs::remove_dir_all(&dir);
                let _ = std::fs::remove_dir_all(&spool);
            };
            clean();
            if let Err(e) = source.checkout(&id, &dir) {
                clean();
                return Built::Failed(None, e.to_string(), SyncResult::BuildFailed);
            }
            let name = catalog_name(&dir);
            let stored = |o: crate::compile::Object| {
                let o = DesiredObject::compiled(&o);
                let file = store.put(o.body()?, &o.digest)?;
                Ok(o.stored_at(file))
            };
            let built = match crate::pipeline::build_each(&dir, &check, stored) {
                Err(diags) => {
                    Built::Failed(name, summarise(&diags, &dir, 30), build_failure(&diags))
                }
                Ok((_, compiled, warnings)) => {
                    Built::Ok(Box::new(Desired::of(compiled)), warnings.len())
                }
            };
            clean();
            built
        })
        .await
        .unwrap_or_else(|e| {
            let why = format!("compile task failed: {e}");
            Built::Failed(None, why, SyncResult::BuildFailed)
        })
    }

    async fn sync_revision(&mut self, commit: &Commit, started: Instant) -> SyncResult {
        let short = commit.short().to_string();
        let (desired, warnings) = match self.build(commit).await {
            Built::Ok(d, w) => (*d, w),
            Built::Failed(name, why, result) => {
                if name.is_some() {
                    self.catalog = name;
                }
                let (stage, failed) = match result {
                    SyncResult::BuildFailed => ("build", "could not be built"),
                    _ => ("compile", "does not compile"),
                };
                self.metrics.error(stage);
                self.metrics
                    .sync(result, started.elapsed().as_secs_f64(), None);
                let kept = match &self.applied {
                    Some((r, _)) => format!(
                        "nothing applied; the cluster stays at {}",
                        &r[..r.len().min(12)]
                    ),
                    None => "nothing applied".into(),
                };
                let retry = match result {
                    SyncResult::BuildFailed => "; tried again at the next poll",
                    _ => "",
                };
                log::error(format!("revision {short} {failed} ({kept}{retry}):\n{why}"));
                let catalog = self.inventory_catalog();
                let message = format!("revision {short} {failed}, {kept}{retry}.\n{why}");
                self.record(
                    catalog.as_deref(),
                    SyncStatus {
                        revision: commit.id.clone(),
                        result,
                        message: message.clone(),
                        applied: self.applied.clone(),
                    },
                )
                .await;
                self.event(
                    catalog.as_deref(),
                    EventType::Warning,
                    result.reason(),
                    "Compile",
                    &message,
                    None,
                )
                .await;
                return result;
            }
        };
        if let Some(old) = current(&self.index)
            && old.catalog != desired.catalog
        {
            log::warn(format!(
                "the catalog's name changed from {} to {}: objects of {} are no longer managed (nor pruned)",
                old.catalog, desired.catalog, old.catalog
            ));
        }
        self.catalog = Some(desired.catalog.clone());
        let catalog = desired.catalog.clone();
        // List only where the catalog's namespaced objects live: no cluster-wide ConfigMap rights.
        let mut opts = self.settings.apply.clone();
        let mut namespaces: Vec<(String, String)> = desired
            .objects
            .iter()
            .filter_map(|o| Some((o.r.kind.clone(), o.r.namespace.clone()?)))
            .collect();
        namespaces.sort();
        namespaces.dedup();
        opts.live_namespaces = Some(namespaces);
        self.clusters = self.clusters.with_contexts(&desired.contexts);
        let report = apply::apply(&self.clusters, &desired, &opts).await;
        let (result, note, event_type) = if let Some(why) = &report.refused {
            (
                SyncResult::Refused,
                format!("revision {short} was not applied: {why}"),
                EventType::Warning,
            )
        } else if report.failed() {
            (
                SyncResult::ApplyFailed,
                format!(
                    "revision {short} was applied in part; retrying at the next interval. {}",
                    failures(&report, 20)
                ),
                EventType::Warning,
            )
        } else {
            let count = |f: fn(&Outcome) -> bool| report.count(f);
            (
                SyncResult::Synced,
                format!(
                    "revision {short} applied: {} created, {} updated, {} unchanged, {} pruned, {} review states written{}",
                    count(|o| matches!(o, Outcome::Created)),
                    count(|o| matches!(o, Outcome::Updated | Outcome::Replaced)),
                    count(|o| matches!(o, Outcome::Unchanged)),
                    count(|o| matches!(o, Outcome::Pruned)),
                    count(|o| matches!(o, Outcome::StatusWritten)),
                    if warnings > 0 {
                        format!(", {warnings} warning(s)")
                    } else {
                        String::new()
                    }
                ),
                EventType::Normal,
            )
        };
        if result == SyncResult::Refused {
            // Nothing was applied: the previous revision's objects are still the ones to watch.
            self.metrics.error("apply");
        } else {
            if result == SyncResult::ApplyFailed {
                self.metrics.error("apply");
            }
            let index = Index::new(&desired, &commit.id);
            let mut by_kind: BTreeMap<String, usize> = BTreeMap::new();
            for r in index.objects.keys() {
                *by_kind.entry(r.kind.clone()).or_default() += 1;
            }
            self.metrics.managed(by_kind);
            let keep: HashSet<&str> = index.objects.values().map(|e| &*e.digest).collect();
            self.store.retain(&keep);
            let scopes = index.scopes();
            *self.index.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(index));
            let restart = self
                .watchers
                .as_ref()
                .is_none_or(|w| w.catalog != catalog || w.scopes != scopes);
            if restart {
                self.watchers = Some(Watchers::start(
                    &self.clusters,
                    &catalog,
                    scopes,
                    &self.index,
                    &self.suspects,
                    &self.metrics,
                ));
            }
        }
        drop(desired);
        if result == SyncResult::Synced {
            self.applied = Some((commit.id.clone(), rfc3339_now()));
            self.warned.clear();
        }
        let seconds = started.elapsed().as_secs_f64();
        self.metrics.sync(
            result,
            seconds,
            (result == SyncResult::Synced).then_some(commit.id.as_str()),
        );
        match event_type {
            EventType::Normal => log::info(format!("{note} ({seconds:.1}s)")),
            EventType::Warning => log::error(&note),
        }
        self.record(
            Some(&catalog),
            SyncStatus {
                revision: commit.id.clone(),
                result,
                message: note.clone(),
                applied: self.applied.clone(),
            },
        )
        .await;
        self.event(
            Some(&catalog),
            event_type,
            result.reason(),
            "Sync",
            &note,
            None,
        )
        .await;
        result
    }

    /// `standalone` target: each release's status follows its executor Job, as KubeSphere's
    /// release controller would have it (apply's own tracking, run on Job events).
    async fn track_releases(&mut self) {
        let Some(index) = current(&self.index) else {
            return;
        };
        if index.jobs.is_empty() {
            return;
        }
        let jobs = Desired {
            catalog: index.catalog.clone(),
            objects: index.jobs.clone(),
            status: Vec::new(),
            standalone: None,
            contexts: BTreeMap::new(),
            object_store: None,
        };
        let mut report = apply::ApplyReport::default();
        apply::sync_release_status(&self.clusters, &jobs, &mut report).await;
        for r in &report.results {
            match &r.outcome {
                Outcome::StatusWritten => log::info(format!(
                    "release {}: status follows its executor Job",
                    r.object.name
                )),
                Outcome::Failed(why) => {
                    self.metrics.error("status");
                    log::warn(format!("release {}: {why}", r.object.name));
                }
                _ => {}
            }
        }
    }

    /// Checks each suspect again with a fresh read and corrects (or reports) real drift, in
    /// apply order (apps before their versions, versions before releases).
    async fn correct(&mut self, batch: BTreeMap<ObjectRef, Instant>) {
        let Some(index) = current(&self.index) else {
            return;
        };
        let stage = |r: &ObjectRef| KindInfo::of(&r.kind).map_or(u8::MAX, |k| k.stage);
        let mut batch: Vec<(ObjectRef, Instant)> = batch.into_iter().collect();
        batch.sort_by(|a, b| (stage(&a.0), &a.0).cmp(&(stage(&b.0), &b.0)));
        let mut app_uids: BTreeMap<String, String> = BTreeMap::new();
        for (r, since) in batch {
            let Some(expected) = index.objects.get(&r) else {
                continue;
            };
            let client = match self.clusters.client(r.cluster.as_deref()).await {
                Ok(client) => client,
                Err(why) => {
                    self.metrics.error("drift");
                    log::warn(format!("drift check of {} {}: {why}", r.kind, r.name));
                    continue;
                }
            };
            let api = api(&client, expected.kind, r.namespace.as_deref());
            let live = match retry(3, || api.get(&r.name)).await {
                Ok(o) => {
                    let mut v = serde_json::to_value(&o).unwrap_or_default();
                    v["apiVersion"] = expected.kind.api_version.into();
                    v["kind"] = expected.kind.kind.into();
                    Some(v)
                }
                Err(e) if is_not_found(&e) => None,
                Err(e) => {
                    self.metrics.error("drift");
                    log::warn(format!(
                        "drift check of {} {}: {}",
                        r.kind,
                        r.name,
                        describe(&e)
                    ));
                    continue;
                }
            };
            let Some(drift) = index.drift(&r, live.as_ref()) else {
                self.warned.remove(&r);
                continue;
            };
            self.metrics.drift_detected(&r.kind);
            let what = format!("{} {} was {} out of band", r.kind, r.name, drift.as_str());
            if self.settings.drift == DriftMode::Warn {
                if self.warned.insert(r.clone()) {
                    log::warn(format!("drift: {what} (--drift warn: not corrected)"));
                    self.event(
                        Some(&index.catalog),
                        EventType::Warning,
                        "DriftDetected",
                        "DetectDrift",
                        &what,
                        Some(&r),
                    )
                    .await;
                }
                continue;
            }
            match self
                .correct_one(&index, &r, drift, live, &mut app_uids)
                .await
            {
                Ok(()) => {
                    self.metrics
                        .drift_corrected(&r.kind, since.elapsed().as_secs_f64());
                    log::info(format!("drift corrected: {what}"));
                    self.event(
                        Some(&index.catalog),
                        EventType::Normal,
                        "DriftCorrected",
                        "CorrectDrift",
                        &what,
                        Some(&r),
                    )
                    .await;
                }
                Err(why) => {
                    self.metrics.error("drift");
                    let note = format!("{what}; correcting it failed: {why}");
                    log::error(&note);
                    self.event(
                        Some(&index.catalog),
                        EventType::Warning,
                        "DriftCorrectionFailed",
                        "CorrectDrift",
                        &note,
                        Some(&r),
                    )
                    .await;
                }
            }
        }
    }

    async fn correct_one(
        &self,
        index: &Index,
        r: &ObjectRef,
        drift: Drift,
        live: Option<Value>,
        app_uids: &mut BTreeMap<String, String>,
    ) -> Result<(), Error> {
        let expected = &index.objects[r];
        let mut live_map = Live::new();
        if let Some(l) = &live {
            live_map.insert(r.clone(), l.clone());
        }
        if drift != Drift::State {
            let body = self.store.get(&expected.digest)?;
            // A version's owner (4.x Application, 3.x HelmApplication) by its UID, as apply sets it.
            if let Some(owner_kind) = expected.kind.write.owner {
                let app = body
                    .pointer(&super::index::label_pointer(labels::APP_ID))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                if let std::collections::btree_map::Entry::Vacant(slot) = app_uids.entry(app) {
                    let kind = KindInfo::of(owner_kind).expect("a known kind");
                    let apps = api(self.clusters.host(), kind, None);
                    let name = slot.key().clone();
                    let uid = retry(3, || apps.get(&name))
                        .await
                        .map_err(|e| {
                            Error::Cluster(format!("its {owner_kind} {name}: {}", describe(&e)))
                        })?
                        .metadata
                        .uid
                        .unwrap_or_default();
                    slot.insert(uid);
                }
            }
            let o = DesiredObject::new(r.clone(), expected.kind, body, expected.digest.to_string());
            let outcome = apply::apply_object(
                &self.clusters,
                &o,
                &live_map,
                app_uids,
                &self.settings.apply,
            )
            .await;
            not_applied(outcome)?;
        }
        // The review state: wrong, or gone with the object it belonged to.
        if let Some(state) = index.state_of(r)
            && (drift == Drift::Missing || live.as_ref().is_none_or(|l| !state.matches(l)))
        {
            if drift == Drift::Missing {
                live_map = Live::new();
            }
            let intent = state.intent(&r.kind, &r.name);
            let mut report = apply::ApplyReport::default();
            apply::write_review_states(
                self.clusters.host(),
                &[intent],
                &live_map,
                &self.settings.apply,
                &mut report,
            )
            .await;
            if report.failed() {
                return Err(Error::Cluster(failures(&report, 1)));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostics::Code;

    #[test]
    fn only_the_controllers_own_cache_failures_are_tried_again() {
        let spool = Diagnostic::error(Code::CacheIo, "No space left on device");
        // A file of the catalog that cannot be read (a committed link loop, say) is the
        // catalog's: retrying the same revision every poll would fail the same way.
        let catalog = Diagnostic::error(Code::Io, "more than 40 symbolic links on the way");
        let invalid = Diagnostic::error(Code::UnknownKey, "unknown key `foo`");
        assert_eq!(
            build_failure(&[invalid.clone(), spool.clone()]),
            SyncResult::BuildFailed
        );
        assert_eq!(
            build_failure(&[catalog, invalid]),
            SyncResult::CompileFailed
        );
        assert_eq!(
            build_failure(&[Diagnostic::warning(Code::CacheIo, "slow disk")]),
            SyncResult::CompileFailed
        );
        assert!(!SyncResult::BuildFailed.settled() && SyncResult::CompileFailed.settled());
    }
}
