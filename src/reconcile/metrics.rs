//! What the controller has done, for `/metrics` (Prometheus text format 0.0.4, every name
//! prefixed `pitrix_`) and for `/healthz` and `/readyz`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use super::status::SyncResult;

/// Seconds since the Unix epoch.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

#[derive(Debug, Clone)]
struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    fn observe(&mut self, v: f64) {
        for (i, b) in self.bounds.iter().enumerate() {
            if v <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {c}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum {}", self.sum);
        let _ = writeln!(out, "{name}_count {}", self.count);
    }
}

const SYNC_BUCKETS: &[f64] = &[
    0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];
const CORRECTION_BUCKETS: &[f64] = &[0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0];

#[derive(Debug)]
struct Inner {
    leader: bool,
    ready: Result<(), String>,
    fatal: Option<String>,
    last_sync: Option<f64>,
    last_success: Option<f64>,
    last_sync_ok: Option<bool>,
    last_sync_duration: Option<f64>,
    /// The revision the cluster was last synced to (applied without a failure).
    applied_revision: Option<String>,
    /// The revision last fetched (none: no fetch has succeeded since start).
    fetched_revision: Option<String>,
    /// Why the last fetch failed, while none has succeeded.
    fetch_error: Option<String>,
    managed: BTreeMap<String, usize>,
    syncs: BTreeMap<String, u64>,
    errors: BTreeMap<String, u64>,
    drift_detected: BTreeMap<String, u64>,
    drift_corrected: BTreeMap<String, u64>,
    sync_duration: Histogram,
    correction_duration: Histogram,
}

/// Shared between the controller and the HTTP server.
#[derive(Debug)]
pub struct Metrics {
    source: String,
    inner: Mutex<Inner>,
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
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

impl Metrics {
    pub fn new(source: &str) -> Metrics {
        Metrics {
            source: source.to_string(),
            inner: Mutex::new(Inner {
                leader: false,
                ready: Err("starting".into()),
                fatal: None,
                last_sync: None,
                last_success: None,
                last_sync_ok: None,
                last_sync_duration: None,
                applied_revision: None,
                fetched_revision: None,
                fetch_error: None,
                managed: BTreeMap::new(),
                syncs: BTreeMap::new(),
                errors: BTreeMap::new(),
                drift_detected: BTreeMap::new(),
                drift_corrected: BTreeMap::new(),
                sync_duration: Histogram::new(SYNC_BUCKETS),
                correction_duration: Histogram::new(CORRECTION_BUCKETS),
            }),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }

    pub fn set_leader(&self, leader: bool) {
        self.with(|i| i.leader = leader);
    }

    pub fn set_ready(&self, ready: Result<(), String>) {
        self.with(|i| i.ready = ready);
    }

    pub fn set_fatal(&self, why: String) {
        self.with(|i| i.fatal = Some(why));
    }

    pub fn error(&self, stage: &str) {
        self.with(|i| *i.errors.entry(stage.into()).or_default() += 1);
    }

    pub fn fetched(&self, revision: &str) {
        self.with(|i| {
            i.fetched_revision = Some(revision.into());
            i.fetch_error = None;
        });
    }

    /// A fetch failed: the reason `/readyz` gives while none has succeeded since start.
    pub fn fetch_failed(&self, why: &str) {
        self.with(|i| i.fetch_error = Some(why.into()));
    }

    /// A sync ended with `result` (`synced`, `compile_failed`, `apply_failed`, `refused`).
    pub fn sync(&self, result: SyncResult, seconds: f64, applied_revision: Option<&str>) {
        let now = unix_now();
        let ok = result == SyncResult::Synced;
        self.with(|i| {
            *i.syncs.entry(result.metric().into()).or_default() += 1;
            i.last_sync = Some(now);
            i.last_sync_ok = Some(ok);
            i.last_sync_duration = Some(seconds);
            i.sync_duration.observe(seconds);
            if ok {
                i.last_success = Some(now);
            }
            if let Some(r) = applied_revision {
                i.applied_revision = Some(r.into());
            }
        });
    }

    pub fn managed(&self, by_kind: BTreeMap<String, usize>) {
        self.with(|i| i.managed = by_kind);
    }

    pub fn drift_detected(&self, kind: &str) {
        self.with(|i| *i.drift_detected.entry(kind.into()).or_default() += 1);
    }

    pub fn drift_corrected(&self, kind: &str, seconds: f64) {
        self.with(|i| {
            *i.drift_corrected.entry(kind.into()).or_default() += 1;
            i.correction_duration.observe(seconds);
        });
    }

    /// `/healthz`: failing only when the controller can no longer work.
    pub fn health(&self) -> Result<(), String> {
        self.with(|i| i.fatal.clone().map_or(Ok(()), Err))
    }

    /// `/readyz`: failing (with the reason) while the leader has not fetched its source
    /// successfully since start — later failures are the status's and the metrics' to report,
    /// and a standby is ready (it only waits for the lease; an unready standby would stall a
    /// rolling update, whose new Pods stand by until the old leader goes).
    pub fn readiness(&self) -> Result<(), String> {
        self.with(|i| match &i.fatal {
            Some(f) => Err(f.clone()),
            None if i.leader && i.fetched_revision.is_none() => Err(match &i.fetch_error {
                Some(why) => format!(
                    "the source {} has not been fetched since start: {why}",
                    self.source
                ),
                None => format!("the source {} is not fetched yet", self.source),
            }),
            None => i.ready.clone(),
        })
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let gauge = |out: &mut String, name: &str, help: &str, v: f64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        let labelled = |out: &mut String,
                        name: &str,
                        kind: &str,
                        help: &str,
                        label: &str,
                        values: &BTreeMap<String, u64>| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (k, v) in values {
                let _ = writeln!(out, "{name}{{{label}=\"{}\"}} {v}", escape(k));
            }
        };
        self.with(|i| {
            let _ = writeln!(
                out,
                "# HELP pitrix_build_info The running pitrix.\n# TYPE pitrix_build_info gauge\npitrix_build_info{{version=\"{}\",source=\"{}\"}} 1",
                env!("CARGO_PKG_VERSION"),
                escape(&self.source)
            );
            gauge(
                &mut out,
                "pitrix_leader",
                "1 when this replica holds the lease and reconciles.",
                if i.leader { 1.0 } else { 0.0 },
            );
            if let Some(t) = i.last_sync {
                gauge(&mut out, "pitrix_last_sync_timestamp_seconds", "When the last sync ended (Unix time).", t);
            }
            if let Some(t) = i.last_success {
                gauge(&mut out, "pitrix_last_successful_sync_timestamp_seconds", "When the last sync that applied everything ended (Unix time).", t);
            }
            if let Some(ok) = i.last_sync_ok {
                gauge(&mut out, "pitrix_last_sync_success", "1 when the last sync applied its revision completely.", if ok { 1.0 } else { 0.0 });
            }
            if let Some(d) = i.last_sync_duration {
                gauge(&mut out, "pitrix_last_sync_duration_seconds", "How long the last sync took.", d);
            }
            let _ = writeln!(out, "# HELP pitrix_sync_revision_info The git revision last applied to the cluster, and the one last fetched.\n# TYPE pitrix_sync_revision_info gauge");
            if let Some(r) = &i.applied_revision {
                let _ = writeln!(out, "pitrix_sync_revision_info{{revision=\"{}\",state=\"applied\"}} 1", escape(r));
            }
            if let Some(r) = &i.fetched_revision {
                let _ = writeln!(out, "pitrix_sync_revision_info{{revision=\"{}\",state=\"fetched\"}} 1", escape(r));
            }
            let managed: BTreeMap<String, u64> =
                i.managed.iter().map(|(k, v)| (k.clone(), *v as u64)).collect();
            labelled(&mut out, "pitrix_managed_objects", "gauge", "Objects the applied revision holds, by kind.", "kind", &managed);
            labelled(&mut out, "pitrix_syncs_total", "counter", "Syncs by result.", "result", &i.syncs);
            labelled(&mut out, "pitrix_errors_total", "counter", "Failures by stage (fetch, compile, apply, drift, watch, lease, status).", "stage", &i.errors);
            labelled(&mut out, "pitrix_drift_detected_total", "counter", "Managed objects found changed or deleted out of band, by kind.", "kind", &i.drift_detected);
            labelled(&mut out, "pitrix_drift_corrections_total", "counter", "Out-of-band changes undone, by kind.", "kind", &i.drift_corrected);
            i.sync_duration.render(&mut out, "pitrix_sync_duration_seconds", "Duration of syncs (fetch, compile, apply, prune).");
            i.correction_duration.render(&mut out, "pitrix_drift_correction_duration_seconds", "From the out-of-band change (its own time, from managedFields) to the object corrected.");
        });
        if let Some((rss, cpu)) = process_usage() {
            gauge(
                &mut out,
                "pitrix_process_resident_memory_bytes",
                "Resident memory of the process.",
                rss as f64,
            );
            let _ = writeln!(
                out,
                "# HELP pitrix_process_cpu_seconds_total CPU time of the process.\n# TYPE pitrix_process_cpu_seconds_total counter\npitrix_process_cpu_seconds_total {cpu}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::new("https://git.example/catalog.git");
        m.set_leader(true);
        m.sync(SyncResult::Synced, 1.5, Some("abc123"));
        m.sync(SyncResult::CompileFailed, 0.2, None);
        m.error("compile");
        m.drift_detected("Category");
        m.drift_corrected("Category", 0.3);
        m.managed([("Category".to_string(), 3)].into());
        let text = m.render();
        for line in [
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
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
        }
        // Every sample line is a pitrix_ name; every family has HELP and TYPE.
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(l.starts_with("pitrix_"), "{l}");
        }
        assert!(text.contains("# TYPE pitrix_errors_total counter"));
    }

    #[test]
    fn readiness_and_health() {
        let m = Metrics::new("x");
        assert!(m.readiness().is_err());
        m.set_ready(Ok(()));
        assert!(m.readiness().is_ok());
        assert!(m.health().is_ok());
        m.set_fatal("boom".into());
        assert_eq!(m.health(), Err("boom".into()));
        assert!(m.readiness().is_err());
    }

    #[test]
    fn a_leader_is_ready_once_it_has_fetched() {
        let m = Metrics::new("https://git.example/c.git (branch main)");
        m.set_ready(Ok(()));
        assert!(m.readiness().is_ok(), "a standby is ready");
        m.set_leader(true);
        let not_yet = m.readiness().unwrap_err();
        assert!(not_yet.contains("not fetched yet"), "{not_yet}");
        m.fetch_failed("cannot fetch https://git.example/c.git: connection refused");
        let why = m.readiness().unwrap_err();
        assert!(
            why.contains("has not been fetched since start") && why.contains("connection refused"),
            "{why}"
        );
        m.fetched("0123abcd");
        assert!(m.readiness().is_ok());
        // A later failure leaves it ready: the status and the metrics report it.
        m.fetch_failed("timed out");
        assert!(m.readiness().is_ok());
    }
}
