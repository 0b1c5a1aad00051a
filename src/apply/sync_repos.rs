//! `pitrix apply --sync-repos`: ask KubeSphere to sync every repo this apply created or
//! changed, now. KubeSphere's repo controller always syncs a Repo whose `status.state` is
//! `manualTrigger` (reference §7), which is also what the console's "sync" button does; a repo
//! with `syncPeriod: 0` would otherwise never sync. The releases of a synced repo's charts
//! then wait for the sync to make their ApplicationVersions: KubeSphere's admission webhook
//! refuses a release of a version that does not exist yet.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use kube::Client;
use kube::api::{ListParams, Patch, PatchParams};
use serde_json::json;

use super::{ApplyOptions, ApplyReport, Desired, Outcome};
use crate::cluster::ObjectRef;
use crate::cluster::{api, describe, retry};
use crate::objects::labels;

/// How long releases wait for a sync without `--wait`'s own timeout.
const SYNC_WAIT: Duration = Duration::from_secs(120);

/// The state that makes KubeSphere's repo controller sync at once.
pub const MANUAL_TRIGGER: &str = "manualTrigger";

/// When `--sync-repos` is on: sets `status.state=manualTrigger` on the repos the report shows
/// as created or updated (in a dry run, on those it would create or update).
pub async fn trigger_if(
    opts: &ApplyOptions,
    client: &Client,
    desired: &Desired,
    report: &mut ApplyReport,
) {
    if !opts.sync_repos {
        return;
    }
    let changed: Vec<_> = report
        .results
        .iter()
        .filter(|r| r.object.kind == "Repo")
        .filter(|r| {
            matches!(
                r.outcome,
                Outcome::Created
                    | Outcome::Updated
                    | Outcome::Replaced
                    | Outcome::WouldCreate
                    | Outcome::WouldUpdate
            )
        })
        .map(|r| r.object.clone())
        .filter(|r| desired.objects.iter().any(|o| &o.r == r))
        .collect();
    let Some(kind) = crate::cluster::KindInfo::of("Repo") else {
        return;
    };
    let repos = api(client, kind, None);
    let body = json!({ "status": { "state": MANUAL_TRIGGER } });
    let params = PatchParams::default();
    for r in changed {
        if opts.dry_run {
            report.push(r, Outcome::WouldWriteStatus);
            continue;
        }
        let patch = Patch::Merge(&body);
        let outcome = match retry(5, || repos.patch_status(&r.name, &params, &patch)).await {
            Ok(_) => Outcome::StatusWritten,
            Err(e) => Outcome::Failed(format!("cannot trigger its sync: {}", describe(&e))),
        };
        report.push(r, outcome);
    }
}

/// Waits until the ApplicationVersions that the catalog's releases of synced-repo charts name
/// exist (KubeSphere's sync makes them), up to `--timeout` with `--wait`, else two minutes.
/// Returns the releases whose version did not appear, each reported failed: they are not sent
/// to the webhook.
pub async fn wait_for_versions(
    client: &Client,
    desired: &Desired,
    opts: &ApplyOptions,
    report: &mut ApplyReport,
) -> BTreeSet<ObjectRef> {
    // A release of a version the catalog does not hold is of a synced repo's chart: its app
    // ID is `<repo>-<chart>`.
    let of_kind = |kind: &'static str| {
        desired
            .objects
            .iter()
            .filter(move |o| o.kind.kind == kind)
            .map(|o| o.r.name.as_str())
    };
    let uploaded: BTreeSet<&str> = of_kind("ApplicationVersion").collect();
    let repos: Vec<&str> = of_kind("Repo").collect();
    // Version ID → (repo, releases of it).
    let mut wanted: BTreeMap<String, (String, Vec<ObjectRef>)> = BTreeMap::new();
    for o in desired
        .objects
        .iter()
        .filter(|o| o.kind.kind == "ApplicationRelease")
    {
        let Ok(body) = o.to_applied() else { continue };
        let label = |key: &str| labels::label(&body, key).map(str::to_string);
        let (Some(app), Some(version)) = (label(labels::APP_ID), label(labels::APP_VERSION_ID))
        else {
            continue;
        };
        if uploaded.contains(version.as_str()) {
            continue;
        }
        let repo = repos
            .iter()
            .filter(|r| app.starts_with(&format!("{r}-")))
            .max_by_key(|r| r.len())
            .map_or_else(|| "?".to_string(), |r| r.to_string());
        wanted
            .entry(version)
            .or_insert_with(|| (repo, Vec::new()))
            .1
            .push(o.r.clone());
    }
    if wanted.is_empty() || opts.dry_run {
        return BTreeSet::new();
    }
    let Some(kind) = crate::cluster::KindInfo::of("ApplicationVersion") else {
        return BTreeSet::new();
    };
    let versions = api(client, kind, None);
    let timeout = opts.wait.unwrap_or(SYNC_WAIT);
    let deadline = tokio::time::Instant::now() + timeout;
    let mut said = false;
    let params = ListParams::default();
    loop {
        if let Ok(list) = retry(5, || versions.list_metadata(&params)).await {
            for item in list.items {
                if let Some(name) = item.metadata.name {
                    wanted.remove(&name);
                }
            }
        }
        if wanted.is_empty() || tokio::time::Instant::now() >= deadline {
            break;
        }
        if !said && opts.progress {
            eprintln!(
                "pitrix: waiting for KubeSphere to sync {} version(s) of synced repos",
                wanted.len()
            );
        }
        said = true;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let mut unsynced = BTreeSet::new();
    for (version, (repo, releases)) in wanted {
        for r in releases {
            report.push(
                r.clone(),
                Outcome::Failed(format!(
                    "ApplicationVersion `{version}` does not exist: KubeSphere's sync of repo `{repo}` did not make it within {}s (does the repo's index have this chart version? see `kubectl get repos.application.kubesphere.io {repo} -o yaml`)",
                    timeout.as_secs()
                )),
            );
            unsynced.insert(r);
        }
    }
    unsynced
}
