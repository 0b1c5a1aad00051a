//! The reconcile soak (run by `bench/soak.sh`, ignored by `cargo test`): `pitrix reconcile`
//! managing the synthetic 1,000 apps × 5 versions catalog (pitrix_testkit::synth) on the real test
//! API server. Measures the first sync, steady-state resident memory, idle CPU, and the
//! drift-correction latency of out-of-band edits (from the edit being live to the watch event
//! of the object restored).
//!
//! Environment: PITRIX_SOAK_APPS (1000), PITRIX_SOAK_VERSIONS (5), PITRIX_SOAK_EDITS (100),
//! PITRIX_SOAK_IDLE_SECS (60), PITRIX_SOAK_SETTLE_SECS (120: from the first sync to the idle
//! window), PITRIX_SOAK_SYNC_TIMEOUT_SECS (1800), PITRIX_SOAK_JSON (a file
//! for the figures), PITRIX_SOAK_WORK (work directory, default a temp dir).

use crate::cluster;
use crate::reconcile_support;
#[allow(dead_code)]
use crate::synth;

use std::time::{Duration, Instant};

use futures::{StreamExt as _, TryStreamExt as _};
use kube::api::{ListParams, Patch, PatchParams, WatchEvent, WatchParams};
use pitrix::cluster::KindInfo;
use reconcile_support::{Reconciler, git, metric, wait_for};
use serde_json::{Value, json};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// VmRSS and VmHWM (KiB) and CPU ticks (user + system) of a process.
fn usage(pid: u32) -> (u64, u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rfind(')').map_or("", |i| &stat[i + 2..]);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    (kib("VmRSS:"), kib("VmHWM:"), ticks)
}

/// RssAnon and RssFile (KiB): the heap versus mapped files (the binary, the git cache).
fn rss_parts(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0u64)
    };
    (kib("RssAnon:"), kib("RssFile:"))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// An object to edit: its kind, namespace, name and the field (a JSON pointer).
type Target = (&'static KindInfo, Option<String>, String, &'static str);

/// A JSON merge patch setting the value at a JSON pointer.
fn merge_patch(pointer: &str, value: Value) -> Value {
    let mut patch = value;
    for part in pointer.trim_start_matches('/').split('/').rev() {
        let key = part.replace("~1", "/").replace("~0", "~");
        patch = json!({ key: patch });
    }
    patch
}

#[test]
#[ignore = "a soak benchmark: run bench/soak.sh"]
fn soak() {
    let apps = env("PITRIX_SOAK_APPS", 1000) as usize;
    let versions = env("PITRIX_SOAK_VERSIONS", 5) as usize;
    let edits = env("PITRIX_SOAK_EDITS", 100) as usize;
    let idle_secs = env("PITRIX_SOAK_IDLE_SECS", 60);
    let settle_secs = env("PITRIX_SOAK_SETTLE_SECS", 120);
    let sync_timeout = Duration::from_secs(env("PITRIX_SOAK_SYNC_TIMEOUT_SECS", 1800));
    let work = match std::env::var_os("PITRIX_SOAK_WORK") {
        Some(d) => {
            let d = std::path::PathBuf::from(d);
            std::fs::create_dir_all(&d).unwrap();
            tempfile::tempdir_in(d).unwrap()
        }
        None => tempfile::tempdir().unwrap(),
    };

    let k = cluster::TestCluster::start();
    k.install_crds(std::path::Path::new(env!("CARGO_BIN_EXE_pitrix")));

    let repo = work.path().join("catalog");
    let t = Instant::now();
    let summary = synth::generate(&repo, &synth::Spec::new(apps, versions)).unwrap();
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "synthetic catalog"]);
    let head = git(&repo, &["rev-parse", "HEAD"]);
    eprintln!(
        "[soak] generated {} apps, {} versions, {} files ({:.0} MiB) and committed in {:.1}s",
        summary.apps,
        summary.versions,
        summary.files,
        summary.bytes as f64 / 1048576.0,
        t.elapsed().as_secs_f64()
    );

    // Default settings but the address: a 1-minute interval, leader election on.
    let started = Instant::now();
    let r = Reconciler::start(
        "soak",
        &k.kubeconfig,
        repo.to_str().unwrap(),
        &["--interval", "1m", "--jitter", "0.1"],
    );
    let catalog = synth::CATALOG_NAME;
    let inventory = format!("pitrix-inventory-{catalog}");
    let mut last_note = Instant::now();
    wait_for(sync_timeout, "the first sync", || {
        if last_note.elapsed() > Duration::from_secs(30) {
            last_note = Instant::now();
            let (rss, hwm, _) = usage(r.pid());
            eprintln!(
                "[soak] syncing for {:.0}s, RSS {} MiB (peak {} MiB)",
                started.elapsed().as_secs_f64(),
                rss / 1024,
                hwm / 1024
            );
        }
        let out = k.kubectl(&[
            "get",
            "configmap",
            &inventory,
            "-n",
            "pitrix-system",
            "-o",
            "jsonpath={.metadata.annotations}",
        ]);
        let a: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        if a["pitrix.io/last-sync-revision"] == head.as_str()
            && a["pitrix.io/last-sync-result"] != "Synced"
        {
            panic!("the first sync failed: {a:#}\n{}", r.log_text());
        }
        (a["pitrix.io/applied-revision"] == head.as_str()).then_some(())
    });
    let first_sync = started.elapsed();
    let m = r.metrics();
    let managed: f64 = m
        .lines()
        .filter(|l| l.starts_with("pitrix_managed_objects{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    let (_, peak_kib, _) = usage(r.pid());
    eprintln!(
        "[soak] first sync of {managed} objects in {:.1}s, peak RSS {} MiB",
        first_sync.as_secs_f64(),
        peak_kib / 1024
    );

    // Let things settle (the watches' first lists, the apply's pooled connections closing
    // after 90 s idle), then measure.
    std::thread::sleep(Duration::from_secs(settle_secs));
    let (_, _, cpu0) = usage(r.pid());
    let t0 = Instant::now();
    let mut samples = Vec::new();
    while t0.elapsed() < Duration::from_secs(idle_secs) {
        samples.push(usage(r.pid()).0);
        std::thread::sleep(Duration::from_secs(1));
    }
    let (_, _, cpu1) = usage(r.pid());
    let idle_cpu = (cpu1 - cpu0) as f64 / 100.0 / t0.elapsed().as_secs_f64() * 100.0;
    let rss_mean = samples.iter().sum::<u64>() as f64 / samples.len().max(1) as f64 / 1024.0;
    let rss_max = samples.iter().copied().max().unwrap_or(0) as f64 / 1024.0;
    let (anon, file) = rss_parts(r.pid());
    eprintln!(
        "[soak] idle {idle_secs}s: RSS mean {rss_mean:.1} MiB, max {rss_max:.1} MiB (now {} MiB heap + {} MiB mapped files); CPU {idle_cpu:.2} % of a core",
        anon / 1024,
        file / 1024
    );

    // Out-of-band edits, one at a time, each timed until the watch shows it undone.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let latencies: Vec<f64> = rt.block_on(async {
        let client = kube::Client::try_from(
            kube::Config::from_custom_kubeconfig(
                kube::config::Kubeconfig::read_from(&k.kubeconfig).unwrap(),
                &kube::config::KubeConfigOptions::default(),
            )
            .await
            .unwrap(),
        )
        .unwrap();
        let selector = format!("pitrix.io/catalog={catalog}");
        let lp = ListParams::default().labels(&selector);
        // Up to `edits` objects of each kind, taken in turn (a kind with fewer objects, like
        // the handful of categories, is edited again).
        let mut per_kind: Vec<Vec<Target>> = Vec::new();
        for (kind, pointer) in [
            (
                "Application",
                "/metadata/annotations/kubesphere.io~1description",
            ),
            (
                "ApplicationVersion",
                "/metadata/annotations/kubesphere.io~1alias-name",
            ),
            ("Category", "/spec/icon"),
            ("ConfigMap", "/metadata/annotations/pitrix.io~1digest"),
        ] {
            let info = KindInfo::of(kind).unwrap();
            let ns = info.namespaced.then(|| "extension-openpitrix".to_string());
            let api = pitrix::cluster::api(&client, info, ns.as_deref());
            let list = api.list_metadata(&lp).await.unwrap();
            let mut targets = Vec::new();
            for o in &list.items {
                if targets.len() == edits.div_ceil(4) {
                    break;
                }
                // Only fields pitrix sets (KubeSphere's built-in category has no icon).
                let name = o.metadata.name.clone().unwrap();
                let full = serde_json::to_value(api.get(&name).await.unwrap()).unwrap();
                if full.pointer(pointer).is_some() {
                    targets.push((info, ns.clone(), name, pointer));
                }
            }
            assert!(!targets.is_empty(), "no {kind} to edit");
            per_kind.push(targets);
        }
        let order: Vec<_> = (0..edits)
            .map(|n| {
                let kind = &per_kind[n % per_kind.len()];
                kind[(n / per_kind.len()) % kind.len()].clone()
            })
            .collect();
        let mut latencies = Vec::new();
        let pp = PatchParams {
            field_manager: Some("soak-editor".into()),
            ..PatchParams::default()
        };
        for (n, (info, ns, name, pointer)) in order.iter().enumerate() {
            let api = pitrix::cluster::api(&client, info, ns.as_deref());
            let original = serde_json::to_value(api.get(name).await.unwrap())
                .unwrap()
                .pointer(pointer)
                .cloned()
                .unwrap_or(Value::Null);
            let patch = merge_patch(pointer, json!(format!("soak-edit-{n}")));
            let edited = api.patch(name, &pp, &Patch::Merge(&patch)).await.unwrap();
            let live_at = Instant::now();
            let rv = edited.metadata.resource_version.clone().unwrap();
            let wp = WatchParams::default()
                .fields(&format!("metadata.name={name}"))
                .timeout(30);
            let mut events = api.watch(&wp, &rv).await.unwrap().boxed();
            let mut restored = None;
            while let Some(ev) = events.try_next().await.unwrap() {
                if let WatchEvent::Modified(o) | WatchEvent::Added(o) = ev {
                    let v = serde_json::to_value(o).unwrap();
                    if v.pointer(pointer) == Some(&original) {
                        restored = Some(live_at.elapsed());
                        break;
                    }
                }
            }
            let took =
                restored.unwrap_or_else(|| panic!("{} {name} not restored within 30s", info.kind));
            latencies.push(took.as_secs_f64());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        latencies
    });
    let mut sorted = latencies.clone();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let (p50, p95, max) = (
        percentile(&sorted, 50.0),
        percentile(&sorted, 95.0),
        sorted.last().copied().unwrap_or(f64::NAN),
    );
    eprintln!(
        "[soak] {} drift corrections: p50 {:.3}s, p95 {:.3}s, max {:.3}s",
        latencies.len(),
        p50,
        p95,
        max
    );
    std::thread::sleep(Duration::from_secs(10));
    let (rss_after, hwm, _) = usage(r.pid());
    let corrected = metric(
        &r.metrics(),
        "pitrix_drift_correction_duration_seconds_count",
    );
    eprintln!(
        "[soak] after the edits: RSS {} MiB (peak over the run {} MiB), {corrected:?} corrections counted",
        rss_after / 1024,
        hwm / 1024
    );
    let figures = json!({
        "apps": apps,
        "versions": versions,
        "managed_objects": managed,
        "first_sync_s": first_sync.as_secs_f64(),
        "peak_rss_mib": hwm as f64 / 1024.0,
        "steady_rss_mean_mib": rss_mean,
        "steady_rss_max_mib": rss_max,
        "steady_rss_anon_mib": anon as f64 / 1024.0,
        "steady_rss_file_mib": file as f64 / 1024.0,
        "rss_after_edits_mib": rss_after as f64 / 1024.0,
        "idle_cpu_percent": idle_cpu,
        "idle_secs": idle_secs,
        "settle_secs": settle_secs,
        "edits": latencies.len(),
        "drift_p50_s": p50,
        "drift_p95_s": p95,
        "drift_max_s": max,
    });
    println!("{}", serde_json::to_string_pretty(&figures).unwrap());
    if let Some(path) = std::env::var_os("PITRIX_SOAK_JSON") {
        std::fs::write(path, serde_json::to_string_pretty(&figures).unwrap()).unwrap();
    }
    assert_eq!(latencies.len(), edits);
}
