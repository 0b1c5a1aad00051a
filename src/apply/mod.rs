//! Stage 5, apply: the compiled objects to a cluster with server-side apply, in dependency
//! order and knowing KubeSphere's rules (reference §4, §5.1, §6, §10): storage before
//! versions, versions owned by their live Application, review states written to the status
//! subresource before the releases the admission webhook checks, immutable packages never
//! silently replaced, and prune of what the inventory no longer holds — behind a guard.

mod compare;
mod desired;
mod inventory;
mod live;
mod live_diff;
mod lock;
mod plan;
pub mod prereq;
mod prune;
mod report;
mod standalone;
mod status;
mod stored;
mod sync_repos;
mod upload;

use std::collections::BTreeMap;
use std::io::IsTerminal;

use futures::stream::{self, StreamExt};
use kube::Api;
use kube::api::{DeleteParams, DynamicObject, ListParams, PartialObjectMeta, Patch, PatchParams};
use serde_json::{Value, json};

use crate::cluster::{KINDS, ObjectRef};
use crate::objects::labels;

pub use compare::contains;
pub use desired::{Desired, DesiredObject, read_stored};
pub use inventory::{ClusterInventory, ObjectKey, decode as decode_inventory, inventory_name};
pub use live::{Foreign, Listing, Live, list_live};
use live::{member_clusters, scan_foreign};
pub use live_diff::live_diff;
pub use plan::{Seen, Step, Write};
pub use report::{ApplyReport, ObjectResult, Outcome};
// For `pitrix reconcile` (src/reconcile): drift correction and status.
// The inventory's compare-and-set and apply's two merges (reconcile, tests).
pub use inventory::{
    UPDATE_ATTEMPTS as INVENTORY_UPDATE_ATTEMPTS, WriteError as InventoryWriteError,
    read as read_inventory, settled as settled_inventory, update as update_inventory,
    widened as widened_inventory, write as write_inventory,
};
pub use lock::{holder_identity, lock_name};
pub use standalone::sync_release_status;
pub use status::write_all as write_review_states;
// For reconcile: which S3 objects the store still holds, between syncs.
pub use upload::{held_keys as held_s3_keys, list_prefix as s3_list_prefix};

use crate::cluster::{Clusters, api, api_as, create_for_metadata, describe, is_not_found, retry};
use crate::error::Error;

/// Annotation on every applied object: the digest of the compiled object it was applied from.
pub const DIGEST_ANNOTATION: &str = "pitrix.io/digest";
pub const FIELD_MANAGER: &str = "pitrix";

#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Take over fields other managers own.
    pub force_conflicts: bool,
    /// Delete orphans: live objects with this catalog's mark that no inventory lists.
    pub prune_orphans: bool,
    /// Take over objects that exist without this catalog's mark (made in the console, by
    /// another tool, or another catalog's): without it they are a conflict and nothing is
    /// applied.
    pub adopt: bool,
    /// Delete and re-create storage ConfigMaps whose package changed.
    pub replace_changed_packages: bool,
    /// Allow prune beyond the guard.
    pub allow_mass_prune: bool,
    /// Plan only: read the cluster, write nothing.
    pub dry_run: bool,
    /// Namespace of the inventory ConfigMap.
    pub inventory_namespace: String,
    /// Objects applied at once within a stage.
    pub concurrency: usize,
    /// Print progress to stderr.
    pub progress: bool,
    /// Wait this long for every release to become `active` (KubeSphere's controller installs).
    pub wait: Option<std::time::Duration>,
    pub sync_repos: bool, // `--sync-repos`: status.state=manualTrigger on new or changed repos
    /// List namespaced kinds only in these (kind, namespace) pairs (None: everywhere, which
    /// needs cluster-wide list rights; `pitrix reconcile` names the few its catalog uses).
    pub live_namespaces: Option<Vec<(String, String)>>,
    /// How long to wait for the catalog's apply lock (a Lease another apply or reconcile
    /// holds) before refusing.
    pub lock_timeout: std::time::Duration,
    /// Who takes the lock, as the Lease names its holder ([`holder_identity`]).
    pub lock_holder: String,
    /// Say on stderr, once, that the apply waits for the lock.
    pub lock_notice: bool,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            force_conflicts: false,
            adopt: false,
            prune_orphans: false,
            replace_changed_packages: false,
            allow_mass_prune: false,
            dry_run: false,
            inventory_namespace: "pitrix-system".into(),
            concurrency: 16,
            progress: std::io::stderr().is_terminal(),
            wait: None,
            sync_repos: false,
            live_namespaces: None,
            lock_timeout: std::time::Duration::from_secs(60),
            lock_holder: holder_identity("apply"),
            lock_notice: true,
        }
    }
}

/// Applies `desired`: the App Store's objects to the host cluster, `standalone` executor
/// objects to their catalog clusters. Unless it is a dry run, it holds the catalog's apply
/// lock (a Lease, see [`lock`]) from before it reads the inventory until it is done, so two
/// applies of one catalog never interleave.
pub async fn apply(clusters: &Clusters, desired: &Desired, opts: &ApplyOptions) -> ApplyReport {
    if opts.dry_run {
        return apply_held(clusters, desired, opts).await;
    }
    let held = match lock::acquire(clusters.host(), &desired.catalog, opts).await {
        Ok(l) => l,
        Err(why) => {
            return ApplyReport {
                catalog: desired.catalog.clone(),
                dry_run: opts.dry_run,
                refused: Some(why.to_string()),
                ..ApplyReport::default()
            };
        }
    };
    let mut report = apply_held(clusters, desired, opts).await;
    if let Err(why) = held.release().await {
        report.push(
            lock::lease_ref(&opts.inventory_namespace, &desired.catalog),
            Outcome::Failed(why.to_string()),
        );
    }
    report
}

/// [`apply`], the lock held (or a dry run).
async fn apply_held(clusters: &Clusters, desired: &Desired, opts: &ApplyOptions) -> ApplyReport {
    let client = clusters.host();
    let mut report = ApplyReport {
        catalog: desired.catalog.clone(),
        dry_run: opts.dry_run,
        ..ApplyReport::default()
    };
    fn fail_all(report: &mut ApplyReport, why: impl ToString) {
        report.refused = Some(why.to_string());
    }

    let (previous, previous_version) =
        match inventory::read(client, &opts.inventory_namespace, &desired.catalog).await {
            Ok(p) => p,
            Err(e) => {
                fail_all(&mut report, e);
                return report;
            }
        };
    // The cluster inventory tracks identities; digests live on the objects themselves.
    let current: BTreeMap<ObjectKey, String> = desired
        .objects
        .iter()
        .map(|o| (ObjectKey(o.r.clone()), String::new()))
        .collect();
    let mut to_prune: Vec<ObjectRef> = previous
        .objects
        .keys()
        .filter(|k| !current.contains_key(k))
        .map(|k| k.0.clone())
        .collect();
    if let Err(why) = prune::guard(
        previous.objects.len(),
        desired.objects.len(),
        to_prune.len(),
        opts,
    ) {
        fail_all(&mut report, why);
        return report;
    }
    let members = member_clusters(&previous, desired);
    let kinds = live::kinds_of(desired, &previous);
    let mut live = match list_live(
        clusters,
        &desired.catalog,
        &kinds,
        opts.live_namespaces.as_deref(),
        &members,
        Listing::Lean,
    )
    .await
    {
        Ok(l) => l,
        Err(e) => {
            fail_all(&mut report, e);
            return report;
        }
    };
    // Ownership is checked before anything is written: an object that exists without this
    // catalog's mark is someone else's, and applying over it would take it over silently.
    if let Err(e) = scan_foreign(clusters, desired, &mut live).await {
        fail_all(&mut report, e);
        return report;
    }
    // Versions stored by an earlier pack format keep their packages (see [`stored`]).
    if let Err(e) = stored::fetch_packages(clusters, desired, &mut live).await {
        fail_all(&mut report, e);
        return report;
    }
    // Packages stored by someone else are adopted as they are (see [`stored`]).
    let seen = if opts.adopt {
        match stored::with_foreign(
            clusters,
            desired,
            &live,
            Some(&["ConfigMap", "ApplicationVersion"]),
        )
        .await
        {
            Ok(seen) => Some(seen),
            Err(e) => {
                fail_all(&mut report, e);
                return report;
            }
        }
    } else {
        None
    };
    let kept = stored::keep_stored(desired, seen.as_ref().unwrap_or(&live));
    let desired = kept.as_ref().unwrap_or(desired);
    let conflicts = ownership_conflicts(desired, &live);
    if !conflicts.is_empty() && !opts.adopt {
        fail_all(&mut report, refusal(&desired.catalog, &conflicts));
        return report;
    }
    // KubeSphere's prerequisites, before anything is written (see [`prereq`]).
    match prereq::check(clusters, desired).await {
        Ok(missing) if missing.is_empty() => {}
        Ok(missing) => {
            fail_all(&mut report, prereq::refusal(&missing));
            return report;
        }
        Err(e) => {
            fail_all(&mut report, e);
            return report;
        }
    }
    // Orphans: live objects with this catalog's mark that no inventory lists (the inventory
    // ConfigMap was lost or edited). Reported; deleted only when asked, behind the same guard.
    let orphans = orphans(&live, &previous, &current);
    if opts.prune_orphans && !orphans.is_empty() {
        to_prune.extend(orphans.iter().cloned());
        if let Err(why) = prune::guard(
            previous.objects.len() + orphans.len(),
            desired.objects.len(),
            to_prune.len(),
            opts,
        ) {
            fail_all(&mut report, why);
            return report;
        }
    } else {
        for r in orphans {
            report.push(
                r,
                Outcome::Skipped(format!(
                    "orphan: it carries catalog `{}`'s mark but no inventory lists it; --prune-orphans deletes it",
                    desired.catalog
                )),
            );
        }
    }

    // Track everything before touching anything: an interrupted apply leaves nothing untracked.
    // Compare-and-set: had another writer changed it since the read, its entries are kept.
    if !opts.dry_run
        && let Err(e) = inventory::update(
            client,
            &opts.inventory_namespace,
            &desired.catalog,
            Some((previous.clone(), previous_version)),
            |live| inventory::widened(live, &current),
        )
        .await
    {
        fail_all(&mut report, e);
        return report;
    }

    // The S3 objects (`kubesphere-v3`) before any object that names them; all or nothing.
    progress(opts, "uploads");
    let uploads = desired
        .objects
        .iter()
        .filter(|o| o.kind.write.in_object_store)
        .collect();
    if let Err(why) = upload::upload_all(desired, uploads, opts, &mut report).await {
        fail_all(&mut report, why.to_string());
        return report;
    }

    let mut app_uids: BTreeMap<String, String> = BTreeMap::new();
    for kind in KINDS.iter().filter(|k| !k.write.in_object_store) {
        // Review states go before the releases: KubeSphere 4's webhook wants active versions.
        if matches!(kind.kind, "ApplicationRelease" | "HelmRelease") {
            progress(opts, "review states");
            // Only onto objects this apply holds: applied (or unchanged), never one that failed.
            let held: Vec<Value> = {
                let held = report.held();
                desired
                    .status
                    .iter()
                    .filter(|i| i["apiVersion"] == kind.api_version)
                    .filter(|i| held.contains(&ObjectRef::of_json(i)))
                    .cloned()
                    .collect()
            };
            status::write_all(client, &held, &live, opts, &mut report).await;
            // Synced repos are triggered before the releases of their charts, which
            // KubeSphere's webhook refuses until the sync has made their versions.
            if kind.kind == "ApplicationRelease" {
                sync_repos::trigger_if(opts, client, desired, &mut report).await;
            }
        }
        let unsynced = match kind.kind == "ApplicationRelease" && opts.sync_repos {
            true => sync_repos::wait_for_versions(client, desired, opts, &mut report).await,
            false => Default::default(),
        };
        let batch: Vec<&DesiredObject> = desired
            .objects
            .iter()
            .filter(|o| o.kind.kind == kind.kind && !unsynced.contains(&o.r))
            .collect();
        if batch.is_empty() {
            continue;
        }
        let total = batch.len();
        let mut done = 0;
        let ctx = Ctx {
            clusters,
            live: &live,
            opts,
            app_uids: &app_uids,
        };
        let mut results: Vec<(ObjectRef, Outcome, Option<String>)> = stream::iter(batch)
            .map(|o| async { ctx.apply_one(o).await })
            .buffer_unordered(opts.concurrency.max(1))
            .inspect(|_| {
                done += 1;
                progress_count(opts, kind.plural, done, total);
            })
            .collect()
            .await;
        results.sort_by(|a, b| a.0.cmp(&b.0));
        for (r, outcome, uid) in results {
            if matches!(kind.kind, "Application" | "HelmApplication")
                && let Some(uid) = uid
            {
                app_uids.insert(r.name.clone(), uid);
            }
            report.push(r, outcome);
        }
    }

    if desired.standalone.is_some() && !opts.dry_run {
        standalone::sync_release_status(clusters, desired, &mut report).await;
    }
    if let Some(timeout) = opts.wait.filter(|_| !opts.dry_run) {
        progress(opts, "waiting for releases");
        wait_for_releases(clusters, desired, timeout, &mut report).await;
    }

    progress(opts, "prune");
    let candidates: Vec<ObjectKey> = to_prune.iter().cloned().map(ObjectKey).collect();
    let not_pruned = prune::prune(clusters, desired, to_prune, opts, &mut report).await;

    if !opts.dry_run {
        // The final inventory: what the catalog holds, plus what could not be pruned yet...
        let mut tracked = current;
        for r in &not_pruned {
            let digest = previous
                .objects
                .get(&ObjectKey(r.clone()))
                .cloned()
                .unwrap_or_default();
            tracked.insert(ObjectKey(r.clone()), digest);
        }
        let pruned: std::collections::BTreeSet<ObjectKey> = candidates
            .into_iter()
            .filter(|k| !tracked.contains_key(k))
            .collect();
        // ... written over a fresh read, removing only what this apply pruned: an entry
        // another writer added meanwhile stays.
        if let Err(e) = inventory::update(
            client,
            &opts.inventory_namespace,
            &desired.catalog,
            None,
            |live| inventory::settled(live, &pruned, &tracked),
        )
        .await
        {
            report.push(
                ObjectRef {
                    api_version: "v1".into(),
                    kind: "ConfigMap".into(),
                    namespace: Some(opts.inventory_namespace.clone()),
                    name: inventory_name(&desired.catalog),
                    cluster: None,
                },
                Outcome::Failed(e.to_string()),
            );
        }
    }
    report
}

/// One object applied exactly as [`apply`] applies it, without the inventory and without
/// prune: `pitrix reconcile`'s drift correction. `live` holds the object if it exists;
/// `app_uids` the UIDs of live Applications by name (a version's owner).
pub async fn apply_object(
    clusters: &Clusters,
    o: &DesiredObject,
    live: &Live,
    app_uids: &BTreeMap<String, String>,
    opts: &ApplyOptions,
) -> Outcome {
    // The caller's view may lack it (a watch filtered by the catalog's mark): look first.
    let mut checked;
    let mut live = live;
    if live.get(&o.r).is_none() {
        let client = match clusters.client(o.r.cluster.as_deref()).await {
            Ok(c) => c,
            Err(why) => return Outcome::Failed(why.to_string()),
        };
        let api = api(&client, o.kind, o.r.namespace.as_deref());
        match retry(5, || api.get_metadata_opt(&o.r.name)).await {
            Ok(Some(meta)) => {
                let v = json!({ "metadata": meta.metadata });
                if !Foreign::owned_by(&v, &desired_catalog(o)) {
                    checked = live.clone();
                    checked.insert_foreign(o.r.clone(), Foreign::of(&v));
                    live = &checked;
                }
            }
            Ok(None) => {}
            Err(e) => return Outcome::Failed(describe(&e)),
        }
    }
    let ctx = Ctx {
        clusters,
        live,
        opts,
        app_uids,
    };
    ctx.apply_one(o).await.1
}

/// The catalog a compiled object belongs to (its `pitrix.io/catalog` label).
fn desired_catalog(o: &DesiredObject) -> String {
    o.to_applied()
        .ok()
        .and_then(|b| Foreign::of(&b).catalog)
        .unwrap_or_default()
}

/// Live objects carrying the catalog's mark that neither the inventory nor the catalog lists;
/// uninstall Jobs (and their ConfigMaps) of pruned releases are pitrix's own leftovers, not
/// orphans.
fn orphans(
    live: &Live,
    previous: &ClusterInventory,
    current: &BTreeMap<ObjectKey, String>,
) -> Vec<ObjectRef> {
    live.iter()
        .filter(|(r, v)| {
            let key = ObjectKey((*r).clone());
            !current.contains_key(&key)
                && !previous.objects.contains_key(&key)
                && labels::label(v, labels::EXECUTOR_ACTION) != Some("uninstall")
        })
        .map(|(r, _)| r.clone())
        .collect()
}

/// The objects the catalog wants that someone else has, with who.
fn ownership_conflicts<'a>(
    desired: &'a Desired,
    live: &'a Live,
) -> Vec<(&'a ObjectRef, &'a Foreign)> {
    desired
        .objects
        .iter()
        .filter_map(|o| live.foreign(&o.r).map(|f| (o, f)))
        .filter(|(o, _)| !plan::borrowed(o))
        .map(|(o, f)| (&o.r, f))
        .collect()
}

/// Why nothing was applied: each object that is not the catalog's, and who has it.
fn refusal(catalog: &str, conflicts: &[(&ObjectRef, &Foreign)]) -> String {
    const SHOWN: usize = 20;
    let mut text = format!(
        "{} object(s) exist that catalog `{catalog}` does not own; nothing was applied. Check that they are the ones this catalog means, then pass --adopt to take them over:",
        conflicts.len()
    );
    for (r, f) in conflicts.iter().take(SHOWN) {
        text.push_str(&format!("\n  {}: {}", r.display_name(), f.describe()));
    }
    if conflicts.len() > SHOWN {
        text.push_str(&format!("\n  … and {} more", conflicts.len() - SHOWN));
    }
    text
}

/// Waits until every release of the catalog is `active` (reference §5.3), failing those that
/// end `failed`/`deployFailed`, with KubeSphere's message, or are not active in time.
async fn wait_for_releases(
    clusters: &Clusters,
    desired: &Desired,
    timeout: std::time::Duration,
    report: &mut ApplyReport,
) {
    let kind = crate::cluster::KindInfo::of("ApplicationRelease").expect("a known kind");
    let mut pending: Vec<&ObjectRef> = desired
        .objects
        .iter()
        .filter(|o| o.kind.kind == "ApplicationRelease")
        .map(|o| &o.r)
        .collect();
    let api = api(clusters.host(), kind, None);
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last_state: BTreeMap<String, String> = BTreeMap::new();
    while !pending.is_empty() {
        if desired.standalone.is_some() {
            standalone::sync_release_status(clusters, desired, report).await;
        }
        let selector = format!("{}={}", labels::PITRIX_CATALOG, desired.catalog);
        let params = ListParams::default().labels(&selector);
        if let Ok(list) = retry(5, || api.list(&params)).await {
            for item in list.items {
                let v = serde_json::to_value(&item).unwrap_or_default();
                let name = item.metadata.name.unwrap_or_default();
                let state = v
                    .pointer("/status/state")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let message = v
                    .pointer("/status/message")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                last_state.insert(name.clone(), state.to_string());
                let Some(i) = pending.iter().position(|r| r.name == name) else {
                    continue;
                };
                match state {
                    "active" => report.push(pending.remove(i).clone(), Outcome::Ready),
                    "failed" | "deployFailed" => report.push(
                        pending.remove(i).clone(),
                        Outcome::Failed(format!("KubeSphere reports `{state}`: {message}")),
                    ),
                    _ => {}
                }
            }
        }
        if pending.is_empty() || tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    for r in pending {
        let state = last_state
            .get(&r.name)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or("none yet");
        report.push(
            r.clone(),
            Outcome::Failed(format!(
                "not active after {}s (state: {state})",
                timeout.as_secs()
            )),
        );
    }
}

/// Whether every field manager a conflict names wrote with `Update` (an edit, or pitrix's own
/// creation of a package or Job), not `Apply`.
fn only_imperative_managers(live: &Value, conflict: &str) -> bool {
    // One conflict reads `conflict with "m" using v1: .path`; several, one line per manager:
    // `conflicts with "m" using v1:` and the paths below it.
    let managers: Vec<&str> = conflict
        .split(" with \"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect();
    let entries = live
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array);
    !managers.is_empty()
        && managers.iter().all(|m| {
            entries.is_some_and(|entries| {
                entries
                    .iter()
                    .filter(|e| e["manager"] == *m)
                    .all(|e| e["operation"] == "Update")
            })
        })
}

fn progress(opts: &ApplyOptions, what: &str) {
    if opts.progress {
        eprintln!("pitrix: applying {what}");
    }
}

/// `pitrix: applying configmaps 1234/5000`, rewritten in place on the terminal.
fn progress_count(opts: &ApplyOptions, plural: &str, done: usize, total: usize) {
    if !opts.progress {
        return;
    }
    // Redrawing every object would flood a slow terminal: every 1 %, and the last one.
    let step = (total / 100).max(1);
    if done.is_multiple_of(step) || done == total {
        let end = if done == total { "\n" } else { "" };
        eprint!("\r\x1b[2Kpitrix: applying {plural} {done}/{total}{end}");
    }
}

struct Ctx<'a> {
    clusters: &'a Clusters,
    live: &'a Live,
    opts: &'a ApplyOptions,
    app_uids: &'a BTreeMap<String, String>,
}

impl Ctx<'_> {
    /// The body pitrix sends: the compiled object plus what only the cluster can supply.
    fn body(&self, o: &DesiredObject) -> Result<Value, Error> {
        let mut body = o.to_applied()?;
        let rules = &o.kind.write;
        // KubeSphere's helper makes each version a controller-owned child of its app.
        if let Some(owner_kind) = rules.owner {
            let app = labels::label(&body, labels::APP_ID)
                .unwrap_or_default()
                .to_string();
            match self.app_uids.get(&app) {
                Some(uid) => {
                    let api_version = crate::cluster::KindInfo::of(owner_kind)
                        .map(|k| k.api_version)
                        .unwrap_or(crate::objects::API_VERSION);
                    body["metadata"]["ownerReferences"] = json!([{
                        "apiVersion": api_version,
                        "kind": owner_kind,
                        "name": app,
                        "uid": uid,
                        "controller": true,
                        "blockOwnerDeletion": true,
                    }]);
                }
                None if self.opts.dry_run => {}
                None => {
                    return Err(Error::Cluster(format!(
                        "its {owner_kind} `{app}` was not applied"
                    )));
                }
            }
        }
        // Credentials come from the environment at apply time, never from the output.
        if rules.credentials_from_env
            && let (Some(user_var), Some(pass_var)) = (
                labels::annotation(&body, labels::PITRIX_USERNAME_ENV).map(str::to_string),
                labels::annotation(&body, labels::PITRIX_PASSWORD_ENV).map(str::to_string),
            )
        {
            let read = |var: &str| {
                std::env::var(var).map_err(|_| {
                    Error::InvalidValue(format!(
                        "environment variable {var} (repo credentials) is not set"
                    ))
                })
            };
            body["spec"]["credential"] = json!({
                "username": read(&user_var)?,
                "password": read(&pass_var)?,
            });
        }
        Ok(body)
    }

    /// Plans one object ([`plan`]) and carries the step out.
    async fn apply_one(&self, o: &DesiredObject) -> (ObjectRef, Outcome, Option<String>) {
        let r = o.r.clone();
        let seen = Seen {
            live: self.live.get(&r),
            foreign: self.live.foreign(&r),
            metadata_only: self.live.is_metadata_only(&r),
        };
        let live_uid = seen
            .live
            .and_then(|l| l.pointer("/metadata/uid"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let first = plan::before_body(o, seen, self.opts);
        match first {
            Some(Step::Unchanged) => return (r, Outcome::Unchanged, live_uid),
            Some(Step::Skip(why)) => return (r, Outcome::Skipped(why), None),
            Some(Step::Refuse(why)) => return (r, Outcome::Failed(why), None),
            Some(Step::Fetch | Step::Write(_)) | None => {}
        }
        let client = match self.clusters.client(r.cluster.as_deref()).await {
            Ok(c) => c,
            Err(why) => return (r, Outcome::Failed(why.to_string()), None),
        };
        let api = api(&client, o.kind, r.namespace.as_deref());
        let mut live = seen.live;
        let fetched;
        if first == Some(Step::Fetch) {
            fetched = match retry(5, || api.get(&r.name)).await {
                Ok(full) => serde_json::to_value(&full).unwrap_or_default(),
                Err(e) => return (r, Outcome::Failed(describe(&e)), None),
            };
            live = Some(&fetched);
        }
        let body = match self.body(o) {
            Ok(b) => b,
            Err(why) => return (r, Outcome::Failed(why.to_string()), None),
        };
        let write = match plan::with_body(o, &body, live, seen.foreign.is_some(), self.opts) {
            Step::Write(w) => w,
            Step::Unchanged => return (r, Outcome::Unchanged, live_uid),
            Step::Skip(why) => return (r, Outcome::Skipped(why), None),
            Step::Refuse(why) => return (r, Outcome::Failed(why), None),
            Step::Fetch => unreachable!("with_body plans on the whole object"),
        };
        if self.opts.dry_run {
            let outcome = write.dry_run_outcome(live.is_some());
            return (r, outcome, live_uid.or(Some(String::new())));
        }
        self.write(o, &client, &api, &body, live, write).await
    }

    /// Carries out one planned write.
    async fn write(
        &self,
        o: &DesiredObject,
        client: &kube::Client,
        api: &Api<DynamicObject>,
        body: &Value,
        live: Option<&Value>,
        write: Write,
    ) -> (ObjectRef, Outcome, Option<String>) {
        let r = o.r.clone();
        let delete = DeleteParams::default();
        if write.replace
            && let Err(e) = retry(5, || api.delete(&r.name, &delete)).await
            && !is_not_found(&e)
        {
            return (r, Outcome::Failed(describe(&e)), None);
        }
        // A new package or executor object is created in protobuf: the API server parses an
        // apply patch as YAML, which was its biggest cost for ~50 KiB of base64 per package.
        if write.create {
            match create_for_metadata(client, api, body, FIELD_MANAGER).await {
                Ok(Some(created)) => return (r, write.outcome(false), created.metadata.uid),
                // Created by someone else since the listing: applied over below.
                Ok(None) => {}
                Err(e) => return (r, Outcome::Failed(describe(&e)), None),
            }
        }
        let mut params = PatchParams::apply(FIELD_MANAGER);
        params.force = write.force;
        let patch = Patch::Apply(body);
        let attempts = o.kind.write.write_attempts;
        // Writes answered with the object's metadata only (`as=PartialObjectMetadata`): the
        // server need not encode, nor pitrix parse, a package of ~50 KiB back; only the UID
        // is read.
        let writes: Api<PartialObjectMeta<DynamicObject>> =
            api_as(client, o.kind, r.namespace.as_deref());
        let mut result = retry(attempts, || writes.patch(&r.name, &params, &patch)).await;
        // The webhook reads a cache that may lag the version's new status: retry its refusals.
        for _ in 0..attempts {
            match &result {
                Err(kube::Error::Api(s)) if s.message.contains("admission webhook") => {
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                    result = retry(attempts, || writes.patch(&r.name, &params, &patch)).await;
                }
                _ => break,
            }
        }
        // Fields taken by imperative edits (kubectl edit/patch, the console) are drift, and
        // drift is restored; fields another applier declares are a conflict to report.
        if let Err(kube::Error::Api(st)) = &result
            && st.code == 409
            && !params.force
            && live.is_some_and(|l| only_imperative_managers(l, &st.message))
        {
            params.force = true;
            result = retry(attempts, || writes.patch(&r.name, &params, &patch)).await;
        }
        match result {
            Ok(applied) => (r, write.outcome(live.is_some()), applied.metadata.uid),
            Err(kube::Error::Api(s)) if s.code == 409 => (
                r,
                Outcome::Failed(format!(
                    "{} — another field manager owns these fields; pass --force-conflicts to take them over",
                    s.message
                )),
                None,
            ),
            Err(e) => (r, Outcome::Failed(describe(&e)), None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn managed(entries: &[(&str, &str)]) -> Value {
        let entries: Vec<Value> = entries
            .iter()
            .map(|(m, op)| json!({"manager": m, "operation": op}))
            .collect();
        json!({"metadata": {"managedFields": entries}})
    }

    #[test]
    fn conflicts_with_edits_only_are_imperative() {
        let live = managed(&[("pitrix", "Update"), ("kubectl-annotate", "Update")]);
        let one = "Apply failed with 1 conflict: conflict with \"kubectl-annotate\" using v1: .metadata.annotations.a";
        assert!(only_imperative_managers(&live, one));
        let two = "Apply failed with 2 conflicts: conflicts with \"kubectl-annotate\" using v1:\n- .metadata.annotations.a\nconflicts with \"pitrix\" using v1:\n- .metadata.annotations.b";
        assert!(only_imperative_managers(&live, two));

        let applied = managed(&[("pitrix", "Update"), ("argocd", "Apply")]);
        let other_applier = "Apply failed with 2 conflicts: conflicts with \"argocd\" using v1:\n- .data.a\nconflicts with \"pitrix\" using v1:\n- .data.b";
        assert!(!only_imperative_managers(&applied, other_applier));
        assert!(!only_imperative_managers(
            &live,
            "Apply failed: no managers named"
        ));
    }
}
