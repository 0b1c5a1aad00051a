//! The `standalone` target: pitrix plays KubeSphere's release controller (reference §5.3) —
//! each release's status follows its Helm executor Job, and a release removed from the catalog
//! gets its uninstall Job (§5.7).

use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

use super::{ApplyReport, Clusters, Desired, FIELD_MANAGER, Outcome};
use crate::cluster::{KindInfo, ObjectRef};
use crate::cluster::{api, describe, is_not_found, retry};
use crate::objects::labels;

/// The release state a Job stands for: `active` once it succeeded, `failed` with its message
/// once it failed, `creating` while it runs.
pub fn release_state(job: &Job) -> (&'static str, String) {
    let status = job.status.clone().unwrap_or_default();
    if status.succeeded.unwrap_or(0) > 0 {
        return ("active", "Install complete".into());
    }
    if status.failed.unwrap_or(0) > 0 {
        let message = status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "Failed")
            .and_then(|c| c.message.clone().or(c.reason.clone()))
            .unwrap_or_else(|| "the Helm executor Job failed".into());
        return ("failed", message);
    }
    ("creating", "Deploying".into())
}

/// Writes each release's status (on the host) from its current executor Job (in the
/// release's cluster), where it changed.
pub async fn sync_release_status(clusters: &Clusters, desired: &Desired, report: &mut ApplyReport) {
    let releases_kind = KindInfo::of("ApplicationRelease").expect("a known kind");
    let releases = api(clusters.host(), releases_kind, None);
    for o in desired.objects.iter().filter(|o| o.kind.kind == "Job") {
        let Some(release) = o
            .body()
            .ok()
            .and_then(|body| {
                body.pointer(&format!(
                    "/metadata/labels/{}",
                    labels::APP_RELEASE_NAME.replace('/', "~1")
                ))
            })
            .and_then(Value::as_str)
        else {
            continue;
        };
        let client = match clusters.client(o.r.cluster.as_deref()).await {
            Ok(c) => c,
            Err(why) => {
                report.push(o.r.clone(), Outcome::Failed(why.to_string()));
                continue;
            }
        };
        let jobs: Api<Job> = Api::namespaced(client, o.r.namespace.as_deref().unwrap_or("default"));
        let job = match retry(5, || jobs.get(&o.r.name)).await {
            Ok(j) => j,
            Err(e) if is_not_found(&e) => continue,
            Err(e) => {
                report.push(o.r.clone(), Outcome::Failed(describe(&e)));
                continue;
            }
        };
        let (state, message) = release_state(&job);
        let live = match retry(5, || releases.get(release)).await {
            Ok(l) => serde_json::to_value(&l).unwrap_or_default(),
            Err(_) => continue,
        };
        let same = live.pointer("/status/state").and_then(Value::as_str) == Some(state)
            && live
                .pointer("/status/installJobName")
                .and_then(Value::as_str)
                == Some(o.r.name.as_str());
        if same {
            continue;
        }
        let body = json!({"status": {
            "state": state,
            "message": message,
            "installJobName": o.r.name,
            "lastUpdate": super::status::now(),
        }});
        let params = PatchParams::default();
        let patch = Patch::Merge(&body);
        let r = ObjectRef {
            api_version: releases_kind.api_version.into(),
            kind: "ApplicationRelease".into(),
            namespace: None,
            name: release.to_string(),
            cluster: None,
        };
        match retry(5, || releases.patch_status(release, &params, &patch)).await {
            Ok(_) => report.push(r, Outcome::StatusWritten),
            Err(e) => report.push(
                r,
                Outcome::Failed(format!("cannot write its status: {}", describe(&e))),
            ),
        }
    }
}

/// Creates the uninstall Job of a pruned release in its target cluster and namespace.
pub async fn uninstall(
    clusters: &Clusters,
    desired: &Desired,
    release: &Value,
    report: &mut ApplyReport,
) {
    let Some(standalone) = &desired.standalone else {
        return;
    };
    let name = release
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let failed = |why: String| Outcome::Failed(format!("uninstall of release `{name}`: {why}"));
    let release_ref = ObjectRef::of_json(release);
    let (config_map, job) = match serde_json::from_value(release.clone())
        .map_err(|e| e.to_string())
        .and_then(|r| {
            standalone
                .uninstall(&desired.catalog, &r)
                .map_err(|d| format!("{}: {}", d.message, d.hint.unwrap_or_default()))
        }) {
        Ok(pair) => pair,
        Err(why) => return report.push(release_ref, failed(why)),
    };
    let bodies = [
        serde_json::to_value(&config_map).unwrap_or_default(),
        serde_json::to_value(&job).unwrap_or_default(),
    ];
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for body in bodies {
        let r = ObjectRef::of_json(&body);
        let client = match clusters.client(r.cluster.as_deref()).await {
            Ok(c) => c,
            Err(why) => return report.push(r, failed(why.to_string())),
        };
        let kind = KindInfo::of(&r.kind).expect("ConfigMap and Job are known");
        let api = api(&client, kind, r.namespace.as_deref());
        let patch = Patch::Apply(&body);
        match retry(5, || api.patch(&r.name, &params, &patch)).await {
            Ok(_) => report.push(r, Outcome::Created),
            Err(e) => report.push(r, failed(describe(&e))),
        }
    }
}
