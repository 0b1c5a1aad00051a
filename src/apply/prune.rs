//! Prune: what the previous inventory tracked and the catalog no longer holds is deleted, in
//! reverse apply order (releases first, so the webhook never sees a release whose version is
//! gone). Never an object without this catalog's label; never past the guard.

use kube::api::DeleteParams;
use serde_json::Value;

use super::{ApplyOptions, ApplyReport, Clusters, Desired, Outcome};
use crate::cluster::{KindInfo, ObjectRef};
use crate::cluster::{api, describe, is_not_found, retry};
use crate::error::Error;
use crate::objects::labels;

/// Refuses to delete more than max(5, 25 %) of what the inventory tracks, or anything when
/// the catalog compiled to nothing — unless `--allow-mass-prune`.
pub fn guard(
    tracked: usize,
    desired: usize,
    to_prune: usize,
    opts: &ApplyOptions,
) -> Result<(), Error> {
    if opts.allow_mass_prune || to_prune == 0 {
        return Ok(());
    }
    if desired == 0 {
        return Err(Error::Refused(format!(
            "the catalog compiled to no objects and {to_prune} would be deleted; pass --allow-mass-prune if that is really wanted"
        )));
    }
    let limit = 5.max(tracked / 4);
    if to_prune > limit {
        return Err(Error::Refused(format!(
            "{to_prune} of {tracked} tracked objects would be deleted (the limit is {limit}); pass --allow-mass-prune if that is really wanted"
        )));
    }
    Ok(())
}

/// Deletes `candidates`; returns those that still exist (to stay in the inventory).
pub async fn prune(
    clusters: &Clusters,
    desired: &Desired,
    mut candidates: Vec<ObjectRef>,
    opts: &ApplyOptions,
    report: &mut ApplyReport,
) -> Vec<ObjectRef> {
    let catalog = desired.catalog.as_str();
    let stage = |r: &ObjectRef| KindInfo::of(&r.kind).map(|k| k.stage).unwrap_or(0);
    candidates.sort_by(|a, b| stage(b).cmp(&stage(a)).then(a.cmp(b)));
    let mut kept = Vec::new();
    for r in candidates {
        let Some(kind) = KindInfo::of(&r.kind) else {
            report.push(r.clone(), Outcome::Skipped("unknown kind".into()));
            continue;
        };
        // A version, and its package, go only once no release names it: KubeSphere 4's webhook
        // refuses every update of a release whose version is gone — the one that removes its
        // finalizer included — so the release would stay `deleting` for good.
        if let Some(version) = version_of(&r) {
            match releases_naming(clusters, version).await {
                Ok(names) if names.is_empty() => {}
                Ok(names) => {
                    report.push(
                        r.clone(),
                        Outcome::Deleting(format!(
                            "kept until release {} (being uninstalled) is gone; the next apply prunes it",
                            names.join(", ")
                        )),
                    );
                    kept.push(r);
                    continue;
                }
                Err(why) => {
                    report.push(r.clone(), Outcome::Failed(why.to_string()));
                    kept.push(r);
                    continue;
                }
            }
        }
        // After the versions that named it (reverse stage order): nothing else deletes it.
        if kind.write.in_object_store {
            let outcome =
                super::upload::delete(desired.object_store.as_ref(), &r.name, opts.dry_run).await;
            if matches!(outcome, Outcome::Failed(_)) {
                kept.push(r.clone());
            }
            report.push(r, outcome);
            continue;
        }
        let client = match clusters.client(r.cluster.as_deref()).await {
            Ok(c) => c,
            Err(why) => {
                report.push(r.clone(), Outcome::Failed(why.to_string()));
                kept.push(r);
                continue;
            }
        };
        let api = api(&client, kind, r.namespace.as_deref());
        let live = match retry(5, || api.get(&r.name)).await {
            Ok(l) => serde_json::to_value(&l).unwrap_or_default(),
            Err(e) if is_not_found(&e) => continue,
            Err(e) => {
                report.push(r.clone(), Outcome::Failed(describe(&e)));
                kept.push(r);
                continue;
            }
        };
        let annotation = labels::annotation(&live, labels::PITRIX_PRUNE);
        if labels::label(&live, labels::PITRIX_CATALOG) != Some(catalog) {
            report.push(
                r,
                Outcome::Skipped(format!("not labelled {}={catalog}", labels::PITRIX_CATALOG)),
            );
            continue;
        }
        if annotation == Some("disabled") {
            report.push(
                r,
                Outcome::Skipped(format!("{} is disabled", labels::PITRIX_PRUNE)),
            );
            continue;
        }
        // An executor Job of an older spec goes once it has finished, not while Helm runs.
        if r.kind == "Job"
            && live
                .pointer("/status/active")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                > 0
        {
            report.push(
                r.clone(),
                Outcome::Skipped("the Job is still running".into()),
            );
            kept.push(r);
            continue;
        }
        if opts.dry_run {
            report.push(r, Outcome::WouldPrune);
            continue;
        }
        let params = DeleteParams::background();
        match retry(5, || api.delete(&r.name, &params)).await {
            Ok(_) if r.kind == "ApplicationRelease" && desired.standalone.is_some() => {
                report.push(r, Outcome::Pruned);
                super::standalone::uninstall(clusters, desired, &live, report).await;
            }
            // KubeSphere holds a release with its finalizer while its executor uninstalls it:
            // reported as such (and waited for with --wait), kept in the inventory until gone.
            Ok(_) if matches!(r.kind.as_str(), "ApplicationRelease" | "HelmRelease") => {
                match wait_gone(&api, &r.name, opts.wait).await {
                    None => report.push(r, Outcome::Pruned),
                    Some(state) => {
                        report.push(
                            r.clone(),
                            Outcome::Deleting(format!(
                                "KubeSphere is uninstalling it (finalizer kept, state: {state}); the next apply checks again{}",
                                match opts.wait {
                                    Some(t) => format!(" (still there after --wait {}s)", t.as_secs()),
                                    None => ", `--wait` waits for it".into(),
                                }
                            )),
                        );
                        kept.push(r);
                    }
                }
            }
            Ok(_) => report.push(r, Outcome::Pruned),
            Err(e) if is_not_found(&e) => report.push(r, Outcome::Pruned),
            Err(e) => {
                report.push(r.clone(), Outcome::Failed(describe(&e)));
                kept.push(r);
            }
        }
    }
    kept
}

/// The version ID a pruned object of KubeSphere 4 stands for, if it is a version or a stored
/// package (a storage ConfigMap or an S3 object, named by its version's ID). KubeSphere 3
/// uninstalls in process and needs neither.
fn version_of(r: &ObjectRef) -> Option<&str> {
    match r.kind.as_str() {
        "ApplicationVersion" | "ConfigMap" => Some(&r.name),
        "S3Object" if !r.name.contains('/') => Some(&r.name),
        _ => None,
    }
}

/// The ApplicationReleases whose version label names `version`.
async fn releases_naming(clusters: &Clusters, version: &str) -> Result<Vec<String>, Error> {
    let kind = KindInfo::of("ApplicationRelease").expect("a known kind");
    let params =
        kube::api::ListParams::default().labels(&format!("{}={version}", labels::APP_VERSION_ID));
    let list_api = api(clusters.host(), kind, None);
    match retry(5, || list_api.list_metadata(&params)).await {
        Ok(list) => Ok(list
            .items
            .into_iter()
            .filter_map(|i| i.metadata.name)
            .collect()),
        // No KubeSphere 4 here (a 3.x cluster): no releases of it.
        Err(e) if is_not_found(&e) => Ok(Vec::new()),
        Err(e) => Err(Error::Cluster(format!(
            "cannot list {}: {}",
            kind.plural,
            describe(&e)
        ))),
    }
}

/// Waits up to `wait` (once, without it) for a deleted object to be gone; `None` when it is,
/// else its `status.state` (or `none`).
async fn wait_gone(
    api: &kube::Api<kube::api::DynamicObject>,
    name: &str,
    wait: Option<std::time::Duration>,
) -> Option<String> {
    let deadline = tokio::time::Instant::now() + wait.unwrap_or_default();
    loop {
        let state = match retry(5, || api.get_opt(name)).await {
            Ok(None) => return None,
            Ok(Some(o)) => serde_json::to_value(&o)
                .ok()
                .and_then(|v| {
                    v.pointer("/status/state")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "none".into()),
            Err(_) => "unknown".into(),
        };
        if tokio::time::Instant::now() >= deadline {
            return Some(state);
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard() {
        let opts = ApplyOptions {
            progress: false,
            ..ApplyOptions::default()
        };
        assert!(guard(100, 90, 25, &opts).is_ok());
        assert!(guard(100, 70, 26, &opts).is_err());
        assert!(guard(8, 3, 5, &opts).is_ok());
        assert!(guard(8, 2, 6, &opts).is_err());
        assert!(guard(3, 0, 1, &opts).is_err());
        assert!(guard(3, 0, 0, &opts).is_ok());
        let allow = ApplyOptions {
            allow_mass_prune: true,
            ..opts
        };
        assert!(guard(100, 0, 100, &allow).is_ok());
    }
}
