//! `pitrix write-status`: the review states of a compiled catalog, read from its status
//! ConfigMap through the API, written to the status subresource of its apps and versions —
//! by `pitrix apply`'s own writer ([`crate::apply::write_review_states`]): only where the live
//! state differs, versions before apps, with the timestamps the CRDs require. What the status
//! Job of the output runs under Argo CD or Flux; needs no checkout and no volume.

use futures::stream::{self, StreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use serde_json::Value;

use crate::apply::{ApplyOptions, ApplyReport, Live, Outcome, write_review_states};
use crate::cluster::{ClusterOptions, KindInfo, ObjectRef, api, client, describe, retry};

use super::STATES_KEY;
use crate::error::Error;

#[derive(Debug, Clone)]
pub struct WriteStatusOptions {
    pub catalog: String,
    /// The namespace of the status ConfigMap (the storage namespace).
    pub namespace: String,
    /// Its name (default `pitrix-status-<catalog>`).
    pub config_map: Option<String>,
    pub cluster: ClusterOptions,
    pub concurrency: usize,
    pub dry_run: bool,
}

/// Reads the desired states and writes those that differ. An object that does not exist (yet)
/// is a failure in the report: the engine applies apps and versions before it runs the Job,
/// and the Job's retries cover a slow API server.
pub async fn write_status(opts: &WriteStatusOptions) -> Result<ApplyReport, Error> {
    let client = client(&opts.cluster).await?;
    let name = opts
        .config_map
        .clone()
        .unwrap_or_else(|| super::status_name(&opts.catalog));
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &opts.namespace);
    let cm = retry(5, || config_maps.get(&name)).await.map_err(|e| {
        Error::Cluster(format!(
            "cannot read the states (ConfigMap {}/{name}): {}",
            opts.namespace,
            describe(&e)
        ))
    })?;
    let text = cm
        .data
        .as_ref()
        .and_then(|d| d.get(STATES_KEY))
        .ok_or_else(|| {
            Error::Corrupt(format!(
                "ConfigMap {}/{name} has no `{STATES_KEY}`",
                opts.namespace
            ))
        })?;
    let intents = parse_states(text)?;

    let mut report = ApplyReport {
        catalog: opts.catalog.clone(),
        dry_run: opts.dry_run,
        ..ApplyReport::default()
    };
    // One GET per object, a few at once and reported in order: the Job's rights name each
    // object, so it cannot list them.
    let concurrency = opts.concurrency.max(1);
    let read: Vec<(Value, ObjectRef, Result<Value, Error>)> = stream::iter(intents)
        .map(|intent| {
            let client = client.clone();
            async move {
                let r = ObjectRef::of_json(&intent);
                let got = match KindInfo::of(&r.kind) {
                    None => Err(Error::InvalidValue("not an app or a version".to_string())),
                    Some(kind) => {
                        let api = api(&client, kind, None);
                        retry(5, || api.get(&r.name))
                            .await
                            .map(|o| serde_json::to_value(&o).unwrap_or_default())
                            .map_err(|e| Error::Cluster(describe(&e)))
                    }
                };
                (intent, r, got)
            }
        })
        .buffered(concurrency)
        .collect()
        .await;
    let mut live = Live::new();
    let mut present = Vec::new();
    for (intent, r, got) in read {
        match got {
            Ok(o) => {
                live.insert(r, o);
                present.push(intent);
            }
            Err(why) => report.push(r, Outcome::Failed(why.to_string())),
        }
    }
    let apply = ApplyOptions {
        dry_run: opts.dry_run,
        concurrency,
        progress: false,
        ..ApplyOptions::default()
    };
    let before = report.results.len();
    write_review_states(&client, &present, &live, &apply, &mut report).await;
    // The states already as desired: reported, so the log says what was checked.
    let written: std::collections::BTreeSet<ObjectRef> = report.results[before..]
        .iter()
        .map(|r| r.object.clone())
        .collect();
    for intent in &present {
        let r = ObjectRef::of_json(intent);
        if !written.contains(&r) {
            report.push(r, Outcome::Unchanged);
        }
    }
    Ok(report)
}

/// The status bodies of [`STATES_KEY`], in the order written (versions first): only apps and
/// versions, each named, each with a `status.state`.
pub fn parse_states(text: &str) -> Result<Vec<Value>, Error> {
    let states: Vec<Value> = serde_json::from_str(text)
        .map_err(|e| Error::Corrupt(format!("`{STATES_KEY}` is not JSON: {e}")))?;
    for s in &states {
        let kind = s["kind"].as_str().unwrap_or_default();
        let ok = matches!(kind, "Application" | "ApplicationVersion")
            && s.pointer("/metadata/name")
                .and_then(Value::as_str)
                .is_some()
            && s.pointer("/status/state").and_then(Value::as_str).is_some();
        if !ok {
            return Err(Error::Corrupt(format!(
                "`{STATES_KEY}` holds something else than a review state: {s}"
            )));
        }
    }
    Ok(states)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_only_review_states() {
        let ok = r#"[{"apiVersion":"application.kubesphere.io/v2","kind":"ApplicationVersion","metadata":{"name":"a-1"},"status":{"state":"active"}}]"#;
        assert_eq!(parse_states(ok).unwrap().len(), 1);
        let bad = r#"[{"apiVersion":"v1","kind":"Secret","metadata":{"name":"x"},"status":{"state":"active"}}]"#;
        assert!(parse_states(bad).is_err());
        assert!(parse_states("{").is_err());
    }
}
