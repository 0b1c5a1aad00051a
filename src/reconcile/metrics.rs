//! What the controller has done, for `/metrics` (every name prefixed `pitrix_`) and for
//! `/healthz` and `/readyz`.
//!
//! The exposition is prometheus-client's: counters, the managed-objects gauge and the duration
//! histograms are its metrics in a registry; what is read from the controller's state at scrape
//! time (leadership, the last sync, the revisions, the process's own usage) is a collector over
//! that state, so that a value not known yet (no sync so far) is absent rather than 0.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use super::status::SyncResult;
use crate::error::Error;

/// Seconds since the Unix epoch.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

const SYNC_BUCKETS: &[f64] = &[
    0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];
const CORRECTION_BUCKETS: &[f64] = &[0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0];

/// Why `/readyz` answers 503.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NotReady {
    /// Neither a sync nor leader election has run yet.
    #[error("starting")]
    Starting,
    /// Leader election cannot read or write its Lease.
    #[error("cannot reach the API server: {0}")]
    ApiServer(Arc<Error>),
    /// The leader has not fetched its source since start, and no fetch has failed yet.
    #[error("the source {git_source} is not fetched yet")]
    NotFetched { git_source: String },
    /// The leader's fetches have all failed since start: the last one's error.
    #[error("the source {git_source} has not been fetched since start: {why}")]
    FetchFailing { git_source: String, why: Arc<Error> },
}

/// The controller's state that metrics read at scrape time and readiness is decided on.
#[derive(Debug, Clone)]
struct State {
    leader: bool,
    ready: Result<(), NotReady>,
    last_sync: Option<f64>,
    last_success: Option<f64>,
    last_sync_ok: Option<bool>,
    last_sync_duration: Option<f64>,
    /// The revision the cluster was last synced to (applied without a failure).
    applied_revision: Option<String>,
    /// The revision last fetched (none: no fetch has succeeded since start).
    fetched_revision: Option<String>,
    /// Why the last fetch failed, while none has succeeded.
    fetch_error: Option<Arc<Error>>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabel {
    stage: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

/// Shared between the controller and the HTTP server.
#[derive(Debug)]
pub struct Metrics {
    source: String,
    state: Arc<Mutex<State>>,
    registry: Registry,
    syncs: Family<ResultLabel, Counter>,
    errors: Family<StageLabel, Counter>,
    drift_detected: Family<KindLabel, Counter>,
    drift_corrected: Family<KindLabel, Counter>,
    managed: Family<KindLabel, Gauge>,
    sync_duration: Histogram,
    correction_duration: Histogram,
}

/// Resident memory (bytes) and CPU time (seconds) of this process, from /proc.
pub fn process_usage() -> Option<(u64, f64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let rss_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // USER_HZ is 100 on every Linux ABI Kubernetes runs on.
    Some((rss_kib * 1024, ticks / 100.0))
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// The metrics read from [`State`] and from /proc at each scrape.
#[derive(Debug)]
struct StateCollector(Arc<Mutex<State>>);

/// One family of one unlabelled sample.
fn encode_one(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<Unit>,
    metric: impl EncodeMetric,
) -> std::fmt::Result {
    let family = encoder.encode_descriptor(name, help, unit.as_ref(), metric.metric_type())?;
    metric.encode(family)
}

impl Collector for StateCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let s = lock(&self.0).clone();
        let e = &mut encoder;
        encode_one(
            e,
            "leader",
            "1 when this replica holds the lease and reconciles.",
            None,
            ConstGauge::new(i64::from(s.leader)),
        )?;
        if let Some(ok) = s.last_sync_ok {
            encode_one(
                e,
                "last_sync_success",
                "1 when the last sync applied its revision completely.",
                None,
                ConstGauge::new(i64::from(ok)),
            )?;
        }
        for (name, help, seconds) in [
            (
                "last_sync_timestamp",
                "When the last sync ended (Unix time).",
                s.last_sync,
            ),
            (
                "last_successful_sync_timestamp",
                "When the last sync that applied everything ended (Unix time).",
                s.last_success,
            ),
            (
                "last_sync_duration",
                "How long the last sync took.",
                s.last_sync_duration,
            ),
        ] {
            if let Some(v) = seconds {
                encode_one(e, name, help, Some(Unit::Seconds), ConstGauge::new(v))?;
            }
        }
        let one = ConstGauge::new(1);
        let mut family = e.encode_descriptor(
            "sync_revision_info",
            "The git revision last applied to the cluster, and the one last fetched.",
            None,
            one.metric_type(),
        )?;
        for (state, revision) in [
            ("applied", &s.applied_revision),
            ("fetched", &s.fetched_revision),
        ] {
            if let Some(r) = revision {
                one.encode(family.encode_family(&[("revision", r.as_str()), ("state", state)])?)?;
            }
        }
        if let Some((rss, cpu)) = process_usage() {
            encode_one(
                e,
                "process_resident_memory",
                "Resident memory of the process.",
                Some(Unit::Bytes),
                ConstGauge::new(rss),
            )?;
            encode_one(
                e,
                "process_cpu",
                "CPU time of the process.",
                Some(Unit::Seconds),
                ConstCounter::new(cpu),
            )?;
        }
        Ok(())
    }
}

/// The two text expositions `/metrics` serves: OpenMetrics to a scraper that asks for it
/// (Prometheus does), Prometheus text 0.0.4 to everyone else, as Prometheus's Go client does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exposition {
    OpenMetrics,
    PrometheusText,
}

impl Exposition {
    /// By the request's `Accept` header.
    pub fn negotiate(accept: Option<&str>) -> Exposition {
        let asks = accept.is_some_and(|a| {
            a.split(',').any(|r| {
                let mut params = r.split(';').map(str::trim);
                params.next() == Some("application/openmetrics-text")
                    && !params.any(|p| p.replace(' ', "") == "q=0")
            })
        });
        if asks {
            Exposition::OpenMetrics
        } else {
            Exposition::PrometheusText
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Exposition::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Exposition::PrometheusText => {
                prometheus_client::encoding::prometheus_text::CONTENT_TYPE
            }
        }
    }
}

impl Metrics {
    pub fn new(source: &str) -> Metrics {
        let state = Arc::new(Mutex::new(State {
            leader: false,
            ready: Err(NotReady::Starting),
            last_sync: None,
            last_success: None,
            last_sync_ok: None,
            last_sync_duration: None,
            applied_revision: None,
            fetched_revision: None,
            fetch_error: None,
        }));
        let syncs = Family::<ResultLabel, Counter>::default();
        let errors = Family::<StageLabel, Counter>::default();
        let drift_detected = Family::<KindLabel, Counter>::default();
        let drift_corrected = Family::<KindLabel, Counter>::default();
        let managed = Family::<KindLabel, Gauge>::default();
        let sync_duration = Histogram::new(SYNC_BUCKETS.iter().copied());
        let correction_duration = Histogram::new(CORRECTION_BUCKETS.iter().copied());
        let mut registry = Registry::with_prefix("pitrix");
        // Help texts without their full stop: the registry adds one.
        registry.register(
            "build",
            "The running pitrix",
            Info::new(vec![
                ("version".to_string(), env!("CARGO_PKG_VERSION").to_string()),
                ("source".to_string(), source.to_string()),
            ]),
        );
        registry.register(
            "managed_objects",
            "Objects the applied revision holds, by kind",
            managed.clone(),
        );
        registry.register("syncs", "Syncs by result", syncs.clone());
        registry.register(
            "errors",
            "Failures by stage (fetch, compile, build, apply, drift, watch, lease, status; a fetch \
             that fails outside git by its kind of error: io, invalid_value, runtime)",
            errors.clone(),
        );
        registry.register(
            "drift_detected",
            "Managed objects found changed or deleted out of band, by kind",
            drift_detected.clone(),
        );
        registry.register(
            "drift_corrections",
            "Out-of-band changes undone, by kind",
            drift_corrected.clone(),
        );
        registry.register_with_unit(
            "sync_duration",
            "Duration of syncs (fetch, compile, apply, prune)",
            Unit::Seconds,
            sync_duration.clone(),
        );
        registry.register_with_unit(
            "drift_correction_duration",
            "From the out-of-band change (its own time, from managedFields) to the object corrected",
            Unit::Seconds,
            correction_duration.clone(),
        );
        registry.register_collector(Box::new(StateCollector(state.clone())));
        Metrics {
            source: source.to_string(),
            state,
            registry,
            syncs,
            errors,
            drift_detected,
            drift_corrected,
            managed,
            sync_duration,
            correction_duration,
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut lock(&self.state))
    }

    pub fn set_leader(&self, leader: bool) {
        self.with(|s| s.leader = leader);
    }

    pub fn set_ready(&self, ready: Result<(), NotReady>) {
        self.with(|s| s.ready = ready);
    }

    /// A failure at `stage`: the part of the controller's work that failed (`apply`, `drift`,
    /// `watch`, ...), or [`Error::metric_label`] where that names it (a fetch's git error is
    /// `fetch`, a lease's `lease`). A drift correction or a watch that meets an [`Error`] is
    /// still counted as `drift` or `watch`: the error's kind (`cluster`, `io`) would hide which
    /// work failed, and its message is in the log and the Event.
    pub fn error(&self, stage: &'static str) {
        self.errors.get_or_create(&StageLabel { stage }).inc();
    }

    pub fn fetched(&self, revision: &str) {
        self.with(|s| {
            s.fetched_revision = Some(revision.into());
            s.fetch_error = None;
        });
    }

    /// A fetch failed: the reason `/readyz` gives while none has succeeded since start.
    pub fn fetch_failed(&self, why: Arc<Error>) {
        self.with(|s| s.fetch_error = Some(why));
    }

    /// A sync ended with `result` (its `result` label: [`SyncResult::metric`]).
    pub fn sync(&self, result: SyncResult, seconds: f64, applied_revision: Option<&str>) {
        let now = unix_now();
        let ok = result == SyncResult::Synced;
        self.syncs
            .get_or_create(&ResultLabel {
                result: result.metric(),
            })
            .inc();
        self.sync_duration.observe(seconds);
        self.with(|s| {
            s.last_sync = Some(now);
            s.last_sync_ok = Some(ok);
            s.last_sync_duration = Some(seconds);
            if ok {
                s.last_success = Some(now);
            }
            if let Some(r) = applied_revision {
                s.applied_revision = Some(r.into());
            }
        });
    }

    pub fn managed(&self, by_kind: BTreeMap<String, usize>) {
        self.managed.clear();
        for (kind, count) in by_kind {
            let count = i64::try_from(count).unwrap_or(i64::MAX);
            self.managed.get_or_create(&KindLabel { kind }).set(count);
        }
    }

    pub fn drift_detected(&self, kind: &str) {
        self.drift_detected
            .get_or_create(&KindLabel { kind: kind.into() })
            .inc();
    }

    pub fn drift_corrected(&self, kind: &str, seconds: f64) {
        self.drift_corrected
            .get_or_create(&KindLabel { kind: kind.into() })
            .inc();
        self.correction_duration.observe(seconds);
    }

    /// `/readyz`: failing (with the reason) while the leader has not fetched its source
    /// successfully since start — later failures are the status's and the metrics' to report,
    /// and a standby is ready (it only waits for the lease; an unready standby would stall a
    /// rolling update, whose new Pods stand by until the old leader goes).
    pub fn readiness(&self) -> Result<(), NotReady> {
        self.with(|s| {
            if !s.leader || s.fetched_revision.is_some() {
                return s.ready.clone();
            }
            let git_source = self.source.clone();
            Err(match &s.fetch_error {
                Some(why) => NotReady::FetchFailing {
                    git_source,
                    why: why.clone(),
                },
                None => NotReady::NotFetched { git_source },
            })
        })
    }

    /// The exposition of every metric.
    pub fn render(&self, exposition: Exposition) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = match exposition {
            Exposition::OpenMetrics => {
                prometheus_client::encoding::text::encode(&mut out, &self.registry)
            }
            Exposition::PrometheusText => {
                prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
            }
        };
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Metrics {
        let m = Metrics::new("https://git.example/catalog.git");
        m.set_leader(true);
        m.sync(SyncResult::Synced, 1.5, Some("abc123"));
        m.sync(SyncResult::CompileFailed, 0.2, None);
        m.error("compile");
        m.drift_detected("Category");
        m.drift_corrected("Category", 0.3);
        m.managed([("Category".to_string(), 3)].into());
        m
    }

    /// The sample lines both expositions share.
    const SAMPLES: &[&str] = &[
        "pitrix_leader 1",
        "pitrix_last_sync_success 0",
        "pitrix_sync_revision_info{revision=\"abc123\",state=\"applied\"} 1",
        "pitrix_managed_objects{kind=\"Category\"} 3",
        "pitrix_syncs_total{result=\"synced\"} 1",
        "pitrix_syncs_total{result=\"compile_failed\"} 1",
        "pitrix_errors_total{stage=\"compile\"} 1",
        "pitrix_drift_corrections_total{kind=\"Category\"} 1",
        "pitrix_sync_duration_seconds_bucket{le=\"2.5\"} 2",
        "pitrix_sync_duration_seconds_count 2",
        "pitrix_drift_correction_duration_seconds_bucket{le=\"0.5\"} 1",
    ];

    #[test]
    fn renders_prometheus_text() {
        let text = sample().render(Exposition::PrometheusText);
        for line in SAMPLES {
            assert!(text.lines().any(|l| l == *line), "no `{line}` in:\n{text}");
        }
        // Every sample line is a pitrix_ name; every family has HELP and TYPE.
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(l.starts_with("pitrix_"), "{l}");
        }
        assert!(text.contains("# TYPE pitrix_errors_total counter"));
        assert!(text.contains(&format!(
            "pitrix_build_info{{version=\"{}\",source=\"https://git.example/catalog.git\"}} 1",
            env!("CARGO_PKG_VERSION")
        )));
        assert!(text.contains(
            "# HELP pitrix_leader 1 when this replica holds the lease and reconciles.\n"
        ));
        assert!(text.contains("# HELP pitrix_syncs_total Syncs by result.\n"));
    }

    #[test]
    fn renders_openmetrics() {
        let text = sample().render(Exposition::OpenMetrics);
        for line in SAMPLES {
            assert!(text.lines().any(|l| l == *line), "no `{line}` in:\n{text}");
        }
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(l.starts_with("pitrix_"), "{l}");
        }
        // OpenMetrics names a counter's family without `_total`, its samples with it.
        assert!(text.contains("# TYPE pitrix_errors counter"));
        assert!(text.contains("# TYPE pitrix_build info"));
        assert!(text.contains("# UNIT pitrix_sync_duration_seconds seconds"));
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn what_is_not_known_yet_is_absent() {
        let m = Metrics::new("x");
        let text = m.render(Exposition::PrometheusText);
        assert!(text.lines().any(|l| l == "pitrix_leader 0"), "{text}");
        for absent in [
            "pitrix_last_sync",
            "pitrix_syncs_total",
            "pitrix_sync_revision_info{",
        ] {
            assert!(
                !text.lines().any(|l| l.starts_with(absent)),
                "{absent} in:\n{text}"
            );
        }
        // A kind no longer managed is gone, not left at its last count.
        m.managed([("Category".to_string(), 3)].into());
        m.managed([("Repo".to_string(), 1)].into());
        let text = m.render(Exposition::PrometheusText);
        assert!(!text.contains("kind=\"Category\""), "{text}");
        assert!(
            text.lines()
                .any(|l| l == "pitrix_managed_objects{kind=\"Repo\"} 1")
        );
    }

    #[test]
    fn openmetrics_only_to_who_asks() {
        let asks = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Exposition::negotiate(Some(asks)), Exposition::OpenMetrics);
        for other in [
            None,
            Some("*/*"),
            Some("text/plain"),
            Some("application/openmetrics-text; q=0"),
        ] {
            assert_eq!(
                Exposition::negotiate(other),
                Exposition::PrometheusText,
                "{other:?}"
            );
        }
        assert_eq!(
            Exposition::OpenMetrics.content_type(),
            "application/openmetrics-text; version=1.0.0; charset=utf-8"
        );
        assert_eq!(
            Exposition::PrometheusText.content_type(),
            "text/plain; version=0.0.4; charset=utf-8"
        );
    }

    #[test]
    fn readiness() {
        let m = Metrics::new("x");
        assert!(matches!(m.readiness(), Err(NotReady::Starting)));
        m.set_ready(Ok(()));
        assert!(m.readiness().is_ok());
        m.set_ready(Err(NotReady::ApiServer(Arc::new(Error::Lease(
            "forbidden".into(),
        )))));
        let why = m.readiness().unwrap_err().to_string();
        assert_eq!(why, "cannot reach the API server: forbidden");
    }

    #[test]
    fn a_leader_is_ready_once_it_has_fetched() {
        let m = Metrics::new("https://git.example/c.git (branch main)");
        m.set_ready(Ok(()));
        assert!(m.readiness().is_ok(), "a standby is ready");
        m.set_leader(true);
        let not_yet = m.readiness().unwrap_err().to_string();
        assert!(not_yet.contains("not fetched yet"), "{not_yet}");
        m.fetch_failed(Arc::new(Error::Git(
            "cannot fetch https://git.example/c.git: connection refused".into(),
        )));
        let why = m.readiness().unwrap_err().to_string();
        assert!(
            why.contains("has not been fetched since start") && why.contains("connection refused"),
            "{why}"
        );
        m.fetched("0123abcd");
        assert!(m.readiness().is_ok());
        // A later failure leaves it ready: the status and the metrics report it.
        m.fetch_failed(Arc::new(Error::Git("timed out".into())));
        assert!(m.readiness().is_ok());
    }
}
