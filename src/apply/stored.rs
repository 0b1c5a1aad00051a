//! Packages stored by an earlier pack format.
//!
//! KubeSphere never overwrites a stored package, and a new pack format (`chart::pack`) gives
//! other bytes for the same chart. A version stored before is the same version as long as its
//! chart's files are the same: the desired objects keep the stored package (its bytes in the
//! storage ConfigMap, its digest in the ApplicationVersion's `spec.digest`), so that apply and
//! `pitrix diff` see nothing to change, never `package-changed`, never a replaced package.

use base64::Engine as _;
use futures::stream::{self, StreamExt, TryStreamExt};
use kube::api::DynamicObject;
use serde_json::Value;

use super::desired::Desired;
use super::live::{Live, applied_as_is};
use crate::cluster::{Clusters, ObjectRef, api, describe, retry};
use crate::error::Error;
use crate::objects::labels;

/// The package a storage ConfigMap (desired or live) holds, base64 as in its JSON.
fn stored_b64(body: &Value) -> Option<&str> {
    body.get("binaryData")?.get(labels::STORAGE_KEY)?.as_str()
}

fn decode(b64: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

/// An object read by GET as the listings hold it: JSON with its `apiVersion` and `kind`.
fn typed(r: &ObjectRef, o: &DynamicObject) -> Value {
    let mut v = serde_json::to_value(o).unwrap_or_default();
    v["apiVersion"] = r.api_version.clone().into();
    v["kind"] = r.kind.clone().into();
    v
}

/// Fetches in full the live storage ConfigMaps held by metadata only that were not applied as
/// compiled now: [`keep_stored`] needs their packages.
pub async fn fetch_packages(
    clusters: &Clusters,
    desired: &Desired,
    live: &mut Live,
) -> Result<(), Error> {
    let wanted: Vec<_> = desired
        .objects
        .iter()
        .filter(|o| o.kind.kind == "ConfigMap" && live.is_metadata_only(&o.r))
        .filter(|o| live.get(&o.r).is_some_and(|l| !applied_as_is(l, &o.digest)))
        .map(|o| (o.r.clone(), o.kind))
        .collect();
    let fetched: Vec<_> = stream::iter(wanted)
        .map(|(r, kind)| async move {
            let client = clusters.client(r.cluster.as_deref()).await?;
            let api = api(&client, kind, r.namespace.as_deref());
            let o = retry(5, || api.get(&r.name)).await.map_err(|e| {
                Error::Cluster(format!(
                    "cannot read {}: {}",
                    r.display_name(),
                    describe(&e)
                ))
            })?;
            Ok::<_, Error>((typed(&r, &o), r))
        })
        .buffer_unordered(16)
        .try_collect()
        .await?;
    for (v, r) in fetched {
        live.insert(r, v);
    }
    Ok(())
}

/// `live` with the objects of `desired` that exist without this catalog's mark (held by
/// [`Live::foreign`] only) read in full, those of `kinds` only when given: what they hold
/// decides what adopting them changes.
pub async fn with_foreign(
    clusters: &Clusters,
    desired: &Desired,
    live: &Live,
    kinds: Option<&[&str]>,
) -> Result<Live, Error> {
    let mut out = live.clone();
    let wanted: Vec<_> = desired
        .objects
        .iter()
        .filter(|o| live.get(&o.r).is_none() && live.foreign(&o.r).is_some())
        .filter(|o| kinds.is_none_or(|k| k.contains(&o.kind.kind)))
        .map(|o| (o.r.clone(), o.kind))
        .collect();
    for (r, kind) in wanted {
        let client = clusters.client(r.cluster.as_deref()).await?;
        let api = api(&client, kind, r.namespace.as_deref());
        let o = match retry(5, || api.get(&r.name)).await {
            Ok(o) => o,
            Err(e) if crate::cluster::is_not_found(&e) => continue,
            Err(e) => {
                return Err(Error::Cluster(format!(
                    "cannot read {}: {}",
                    r.display_name(),
                    describe(&e)
                )));
            }
        };
        out.insert(r.clone(), typed(&r, &o));
    }
    Ok(out)
}

/// `desired` with every stored package that holds the same chart as the compiled one kept
/// (see the module's docs), or `None` when there is none. Live ConfigMaps held by metadata
/// only are not looked at ([`fetch_packages`] first).
pub fn keep_stored(desired: &Desired, live: &Live) -> Option<Desired> {
    let mut kept = Vec::new();
    let mut foreign = Vec::new();
    for (i, o) in desired.objects.iter().enumerate() {
        // A package in S3 (KubeSphere 4's S3 mode) whose version exists without a digest: the
        // console stored it, and adopting it adds nothing KubeSphere looks at (apply refuses
        // other bytes under its key, so the package itself is the compiled one or refused).
        if o.kind.kind == "S3Object" && console_version(desired, live, &o.r.name) {
            foreign.push(i);
            continue;
        }
        if o.kind.kind != "ConfigMap" || live.is_metadata_only(&o.r) {
            continue;
        }
        let Some(l) = live.get(&o.r) else { continue };
        let Some(old) = stored_b64(l) else { continue };
        let Ok(body) = o.to_body() else { continue };
        let Some(new) = stored_b64(&body) else {
            continue;
        };
        if old == new {
            // Stored by someone else (the console, before an export): kept as it is.
            if l.get("immutable") != Some(&Value::Bool(true)) {
                foreign.push(i);
            }
            continue;
        }
        let (Some(old_bytes), Some(new_bytes)) = (decode(old), decode(new)) else {
            continue;
        };
        if crate::chart::same_chart(&old_bytes, &new_bytes) {
            // Stored by someone else, and unpacked by `pitrix export --unpack`.
            if l.get("immutable") != Some(&Value::Bool(true)) {
                foreign.push(i);
            }
            kept.push((i, old.to_string(), crate::chart::digest(&old_bytes)));
        }
    }
    if kept.is_empty() && foreign.is_empty() {
        return None;
    }
    let mut out = desired.clone();
    keep_foreign_stored(&mut out, live, &foreign);
    for (i, b64, digest) in kept {
        let Some(cm) = out.objects.get_mut(i) else {
            continue;
        };
        let Ok(mut body) = cm.to_body() else { continue };
        body["binaryData"][labels::STORAGE_KEY] = b64.into();
        cm.set_body(body);
        let id = cm.r.name.clone();
        // The version whose package this is: named as its storage ConfigMap.
        for v in out
            .objects
            .iter_mut()
            .filter(|v| v.kind.kind == "ApplicationVersion" && v.r.name == id)
        {
            let Ok(mut body) = v.to_body() else { continue };
            if body.pointer("/spec/digest").is_some() {
                body["spec"]["digest"] = digest.clone().into();
                v.set_body(body);
            }
        }
    }
    Some(out)
}

/// A package KubeSphere's console stored (`pitrix export` reads stores made that way) holds
/// the compiled bytes, but neither `immutable` nor a digest in its version's `spec.digest`:
/// adopting it writes neither, so that no spec changes (`foreign`: indices of such storage
/// ConfigMaps in `out`).
/// Whether the version `id` of `desired` exists live without a `spec.digest` (made by the
/// console, not by pitrix, which always writes one).
fn console_version(desired: &Desired, live: &Live, id: &str) -> bool {
    desired
        .objects
        .iter()
        .filter(|v| v.kind.kind == "ApplicationVersion" && v.r.name == id)
        .any(|v| {
            live.get(&v.r).is_some_and(|l| {
                l.pointer("/spec/digest")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .is_empty()
            })
        })
}

fn keep_foreign_stored(out: &mut Desired, live: &Live, foreign: &[usize]) {
    for &i in foreign {
        let Some(cm) = out.objects.get_mut(i) else {
            continue;
        };
        let Ok(mut body) = cm.to_body() else { continue };
        if let Some(o) = body.as_object_mut() {
            o.remove("immutable");
        }
        cm.set_body(body);
        let id = cm.r.name.clone();
        for v in out
            .objects
            .iter_mut()
            .filter(|v| v.kind.kind == "ApplicationVersion" && v.r.name == id)
        {
            let live_digest = live
                .get(&v.r)
                .and_then(|l| l.pointer("/spec/digest"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            let Ok(mut body) = v.to_body() else { continue };
            if live.get(&v.r).is_some()
                && live_digest.is_empty()
                && let Some(spec) = body.get_mut("spec").and_then(Value::as_object_mut)
                && spec.remove("digest").is_some()
            {
                v.set_body(body);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::apply::desired::DesiredObject;
    use crate::chart::{ChartFiles, digest, pack, pack_with_level};
    use crate::cluster::ObjectRef;

    fn chart(replicas: u32) -> ChartFiles {
        let mut files = ChartFiles::new();
        files
            .insert(
                "Chart.yaml",
                b"apiVersion: v2\nname: demo\nversion: 1.0.0\n".to_vec(),
            )
            .unwrap();
        files
            .insert(
                "values.yaml",
                format!("replicas: {replicas}\n").repeat(50).into_bytes(),
            )
            .unwrap();
        files
    }

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    fn objects(package: &[u8]) -> (Value, Value) {
        let cm = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "demo-1.0.0", "namespace": "extension-openpitrix"},
            "binaryData": {"BinaryKey": b64(package)},
            "immutable": true,
        });
        let version = json!({
            "apiVersion": "application.kubesphere.io/v2", "kind": "ApplicationVersion",
            "metadata": {"name": "demo-1.0.0"},
            "spec": {"versionName": "1.0.0", "digest": digest(package)},
        });
        (cm, version)
    }

    fn desired(package: &[u8]) -> Desired {
        let (cm, version) = objects(package);
        Desired {
            catalog: "test".into(),
            objects: vec![
                DesiredObject::of(version).unwrap(),
                DesiredObject::of(cm).unwrap(),
            ],
            object_store: None,
            status: Vec::new(),
            standalone: None,
            contexts: Default::default(),
        }
    }

    fn live(package: &[u8]) -> Live {
        let mut live = Live::new();
        let (cm, version) = objects(package);
        for o in [cm, version] {
            live.insert(ObjectRef::of_json(&o), o);
        }
        live
    }

    #[test]
    fn a_package_of_an_earlier_format_is_kept_with_its_digest() {
        let old = pack_with_level("demo", &chart(1), 1);
        let new = pack("demo", &chart(1));
        assert_ne!(old, new);
        let kept = keep_stored(&desired(&new), &live(&old)).expect("kept");
        let want = desired(&old);
        for (k, w) in kept.objects.iter().zip(&want.objects) {
            assert_eq!(k.to_body().unwrap(), w.to_body().unwrap());
            // The digest apply compares with the live object's annotation.
            assert_eq!(k.digest, w.digest);
        }
    }

    #[test]
    fn a_changed_chart_or_the_same_bytes_keep_nothing() {
        let new = pack("demo", &chart(1));
        assert!(keep_stored(&desired(&new), &live(&new)).is_none());
        let other = pack_with_level("demo", &chart(2), 1);
        assert!(keep_stored(&desired(&new), &live(&other)).is_none());
        assert!(keep_stored(&desired(&new), &Live::new()).is_none());
    }
}
