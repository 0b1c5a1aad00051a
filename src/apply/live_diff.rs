//! `pitrix diff`: what apply would change in the live cluster. Each object that is not already
//! as compiled is server-side applied in dry-run mode; the live objects and the dry-run results
//! are normalised (server-set metadata, controller-owned fields and status other than the
//! review state dropped, reference §10) into typed objects and compared with the same diff as
//! `compile --diff` — packages file by file, releases one line each, review states.

use std::collections::BTreeMap;

use kube::api::{Patch, PatchParams};
use serde_json::Value;

use super::{
    Clusters, DIGEST_ANNOTATION, Desired, FIELD_MANAGER, Listing, Live, contains, inventory,
    list_live,
    live::{member_clusters, scan_foreign},
};
use crate::cluster::ObjectRef;
use crate::cluster::{api, describe, is_not_found, retry};
use crate::compile::{Compiled, Object, StatusIntent};
use crate::diagnostics::Code;
use crate::diff::{self, Diff, DiffError, Side};
use crate::error::Error;
use crate::objects::{ReviewState, labels};

/// Annotations others write that are no difference of the catalog's.
const FOREIGN_ANNOTATIONS: &[&str] = &[
    DIGEST_ANNOTATION,
    labels::TIMEOUT_RECHECK,
    "kubectl.kubernetes.io/last-applied-configuration",
];

/// The object as pitrix compares it: identity, labels, annotations and content.
fn normalise(mut v: Value) -> Value {
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.retain(|k, _| matches!(k.as_str(), "name" | "namespace" | "labels" | "annotations"));
        if let Some(annotations) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
            annotations.retain(|k, _| !FOREIGN_ANNOTATIONS.contains(&k.as_str()));
        }
    }
    if let Some(o) = v.as_object_mut() {
        o.remove("status");
        if o.get("kind").and_then(Value::as_str) == Some("Namespace") {
            o.remove("spec");
        }
    }
    v
}

fn typed(v: Value) -> Result<Object, Error> {
    let kind = v["kind"].as_str().unwrap_or_default().to_string();
    let err = |e: serde_json::Error| Error::Corrupt(format!("live {kind} does not decode: {e}"));
    Ok(match kind.as_str() {
        "Namespace" => Object::Namespace(serde_json::from_value(v).map_err(err)?),
        "Category" => Object::Category(serde_json::from_value(v).map_err(err)?),
        "Repo" => Object::Repo(serde_json::from_value(v).map_err(err)?),
        "ConfigMap" => Object::ConfigMap(serde_json::from_value(v).map_err(err)?),
        "Application" => Object::Application(serde_json::from_value(v).map_err(err)?),
        "ApplicationVersion" => Object::ApplicationVersion(serde_json::from_value(v).map_err(err)?),
        "ApplicationRelease" => Object::ApplicationRelease(serde_json::from_value(v).map_err(err)?),
        "Job" => Object::Job(Box::new(serde_json::from_value(v).map_err(err)?)),
        "HelmCategory" => Object::HelmCategory(serde_json::from_value(v).map_err(err)?),
        "HelmRepo" => Object::HelmRepo(serde_json::from_value(v).map_err(err)?),
        "HelmApplication" => Object::HelmApplication(serde_json::from_value(v).map_err(err)?),
        "HelmApplicationVersion" => {
            Object::HelmApplicationVersion(serde_json::from_value(v).map_err(err)?)
        }
        "HelmRelease" => Object::HelmRelease(serde_json::from_value(v).map_err(err)?),
        "S3Object" => {
            use base64::Engine as _;
            let data = v["data"].as_str().unwrap_or_default();
            Object::Stored(crate::compile::Stored {
                metadata: serde_json::from_value(v["metadata"].clone()).map_err(err)?,
                bytes: base64::engine::general_purpose::STANDARD
                    .decode(data)
                    .map_err(|e| Error::Corrupt(format!("S3 object does not decode: {e}")))?,
            })
        }
        other => return Err(Error::Corrupt(format!("unknown kind {other}"))),
    })
}

/// Review states as they are live.
fn live_states(live: &Live) -> Vec<StatusIntent> {
    live.iter()
        .filter_map(|(r, v)| {
            let kind = match r.kind.as_str() {
                "Application" => "Application",
                "ApplicationVersion" => "ApplicationVersion",
                "HelmApplicationVersion" => "HelmApplicationVersion",
                _ => return None,
            };
            let state: ReviewState = v.pointer("/status/state")?.as_str()?.parse().ok()?;
            Some(StatusIntent {
                kind,
                name: r.name.clone(),
                state,
                // 3.x keeps it in the newest audit entry.
                message: v
                    .pointer("/status/message")
                    .or_else(|| v.pointer("/status/audit/0/message"))
                    .and_then(Value::as_str)
                    .map(str::to_string),
            })
        })
        .collect()
}

fn compiled(catalog: &str, objects: Vec<Object>, mut status: Vec<StatusIntent>) -> Compiled {
    let mut objects = objects;
    objects.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    status.sort_by(|a, b| (a.order(), &a.name).cmp(&(b.order(), &b.name)));
    Compiled {
        catalog: catalog.to_string(),
        objects,
        status,
        standalone: None,
        environment: None,
        contexts: Default::default(),
        status_image: None,
        object_store: None,
    }
}

/// Compares the cluster with `desired`: the cluster is the base, the catalog the head.
pub async fn live_diff(
    clusters: &Clusters,
    desired: &Compiled,
    inventory_namespace: &str,
    cluster_label: &str,
) -> Result<Diff, Error> {
    let catalog = &desired.catalog;
    let (previous, _) = inventory::read(clusters.host(), inventory_namespace, catalog).await?;
    let want = Desired::from_compiled(desired);
    let members = member_clusters(&previous, &want);
    let kinds = super::live::kinds_of(&want, &previous);
    let mut live = list_live(clusters, catalog, &kinds, None, &members, Listing::Full).await?;
    scan_foreign(clusters, &want, &mut live).await?;
    // What adopting changes: objects without this catalog's mark are compared in full.
    let live = super::stored::with_foreign(clusters, &want, &live, None).await?;
    // Versions stored by an earlier pack format keep their packages (see `stored`).
    let want = super::stored::keep_stored(&want, &live).unwrap_or(want);

    let mut old = Vec::new();
    let mut new = Vec::new();
    let mut desired_refs: BTreeMap<ObjectRef, ()> = BTreeMap::new();
    let mut params = PatchParams::apply(FIELD_MANAGER);
    params.dry_run = true;
    params.force = true;
    let stored = super::upload::stored_keys(&want).await?;
    for o in &want.objects {
        desired_refs.insert(o.r.clone(), ());
        // An S3 object is there or not: its bytes are never overwritten.
        if o.kind.write.in_object_store {
            let object = typed(o.to_body()?)?;
            if stored.contains(&o.r.name) {
                old.push(object.clone());
            }
            new.push(object);
            continue;
        }
        // Apply uses a borrowed object that exists as it is: no change to show.
        if live.foreign(&o.r).is_some() && super::plan::borrowed(o) {
            continue;
        }
        let body = o.to_applied()?;
        let current = live.get(&o.r);
        if let Some(l) = current {
            old.push(typed(normalise(l.clone()))?);
            if contains(l, &body) {
                new.push(typed(normalise(l.clone()))?);
                continue;
            }
        }
        let client = clusters.client(o.r.cluster.as_deref()).await?;
        let api = api(&client, o.kind, o.r.namespace.as_deref());
        let patch = Patch::Apply(&body);
        let after = match retry(5, || api.patch(&o.r.name, &params, &patch)).await {
            Ok(result) => serde_json::to_value(&result).unwrap_or_default(),
            // Its namespace comes with this apply: the dry run cannot see it yet.
            Err(e) if is_not_found(&e) && current.is_none() => body,
            Err(e) => {
                return Err(Error::Cluster(format!(
                    "dry-run of {} {}: {}",
                    o.r.kind,
                    o.r.name,
                    describe(&e)
                )));
            }
        };
        new.push(typed(normalise(after))?);
    }
    // What apply would prune: tracked before, live now, no longer in the catalog.
    for key in previous.objects.keys() {
        if !desired_refs.contains_key(&key.0)
            && let Some(l) = live.get(&key.0)
        {
            old.push(typed(normalise(l.clone()))?);
        }
    }

    let old = compiled(catalog, old, live_states(&live));
    let new = compiled(catalog, new, desired.status.clone());
    let mut d = diff::diff(&old, &new);
    for m in super::prereq::check(clusters, &want).await? {
        d.errors.push(DiffError {
            code: Code::MissingPrerequisite.as_str().into(),
            message: m.what,
            file: None,
            hint: Some(format!("{}; apply refuses until then", m.fix)),
            app: None,
            version: None,
        });
    }
    for o in &want.objects {
        if let Some(f) = live.foreign(&o.r)
            && !super::plan::borrowed(o)
        {
            d.errors.push(DiffError {
                code: Code::NotOwned.as_str().into(),
                message: format!(
                    "{} exists and is not this catalog's: {}",
                    o.r.display_name(),
                    f.describe()
                ),
                file: None,
                hint: Some("apply refuses it; `pitrix apply --adopt` takes it over".into()),
                app: None,
                version: None,
            });
        }
    }
    d.base = Some(Side {
        label: cluster_label.to_string(),
        commit: None,
    });
    d.head = Some(Side {
        label: "catalog".into(),
        commit: None,
    });
    Ok(d)
}
