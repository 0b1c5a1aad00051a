//! `pitrix apply --sync-repos`: ask KubeSphere to sync every repo this apply created or
//! changed, now. KubeSphere's repo controller always syncs a Repo whose `status.state` is
//! `manualTrigger` (reference §7), which is also what the console's "sync" button does; a repo
//! with `syncPeriod: 0` would otherwise never sync.

use kube::Client;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use super::client::{api, describe, retry};
use super::{ApplyOptions, ApplyReport, Desired, Outcome};

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
    let Some(kind) = crate::compile::KindInfo::of("Repo") else {
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
