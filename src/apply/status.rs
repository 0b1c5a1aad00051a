//! Review states: KubeSphere has no controller for them (reference §6), so pitrix writes the
//! desired state to the status subresource itself — versions first, then apps — with the
//! timestamps the CRDs require, and only where the live state differs.

use serde_json::Value;

use super::{ApplyOptions, ApplyReport, Live, Outcome};
use crate::cluster::{KindInfo, ObjectRef};
use crate::cluster::{api, describe, patch_status_for_metadata};
use std::future::Future;

use futures::stream::{self, StreamExt};
use kube::Client;

/// RFC 3339 "now", as Kubernetes writes times.
pub fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Writes the review states that differ from the live ones: each kind's in one concurrent
/// wave, in the order given (versions before apps).
pub async fn write_all(
    client: &Client,
    intents: &[Value],
    live: &Live,
    opts: &ApplyOptions,
    report: &mut ApplyReport,
) {
    for wave in intents.chunk_by(|a, b| a["kind"] == b["kind"]) {
        let writes = wave.iter().filter_map(|i| write_one(client, i, live, opts));
        let mut results: Vec<(ObjectRef, Outcome)> = stream::iter(writes)
            .buffer_unordered(opts.concurrency.max(1))
            .collect()
            .await;
        results.sort_by(|a, b| a.0.cmp(&b.0));
        for (r, outcome) in results {
            report.push(r, outcome);
        }
    }
}

/// A 3.x version's status as its REST API writes a review action: the state, and an audit
/// entry for it before the earlier ones (at most ten kept).
fn audited(mut status: Value, previous: Vec<Value>) -> Value {
    let state = status["state"].clone();
    let mut entry = serde_json::json!({
        "state": state,
        "operator": "pitrix",
        "time": now(),
    });
    if let Some(message) = status.as_object_mut().and_then(|s| s.remove("message")) {
        entry["message"] = message;
    }
    let mut audit = vec![entry];
    audit.extend(previous.into_iter().take(9));
    status["audit"] = audit.into();
    status
}

/// The write of one review state: `None` where the live one is already it.
fn write_one(
    client: &Client,
    intent: &Value,
    live: &Live,
    opts: &ApplyOptions,
) -> Option<impl Future<Output = (ObjectRef, Outcome)>> {
    let r = ObjectRef::of_json(intent);
    let desired = &intent["status"];
    let current = live.get(&r).map(|l| &l["status"]);
    let same = current.is_some_and(|c| {
        // 3.x keeps the message in the newest audit entry.
        let message = c.get("message").or_else(|| c.pointer("/audit/0/message"));
        c.get("state") == desired.get("state")
            && desired.get("message").is_none_or(|m| message == Some(m))
    });
    if same {
        return None;
    }
    let kind = KindInfo::of(&r.kind)?;
    let dry_run = opts.dry_run;
    let previous_audit = current
        .and_then(|c| c.get("audit"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut status = desired.clone();
    let client = client.clone();
    Some(async move {
        if dry_run {
            return (r, Outcome::WouldWriteStatus);
        }
        // Application requires updateTime; versions record `updated` and who acted; 3.x keeps
        // an audit trail, newest first, ten entries (docs/kubesphere-v3.md §5.1).
        match r.kind.as_str() {
            "Application" => status["updateTime"] = now().into(),
            "HelmApplicationVersion" => status = audited(status, previous_audit),
            _ => {
                status["updated"] = now().into();
                status["userName"] = "pitrix".into();
            }
        }
        // Answered with metadata only: the server need not encode the object back.
        let api = api(&client, kind, None);
        let written = patch_status_for_metadata(&client, &api, &r.name, &status);
        let outcome = match written.await {
            Ok(_) => Outcome::StatusWritten,
            Err(e) => Outcome::Failed(format!("cannot write its review state: {}", describe(&e))),
        };
        (r, outcome)
    })
}
