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
        c.get("state") == desired.get("state")
            && desired
                .get("message")
                .is_none_or(|m| c.get("message") == Some(m))
    });
    if same {
        return None;
    }
    let kind = KindInfo::of(&r.kind)?;
    let dry_run = opts.dry_run;
    let mut status = desired.clone();
    let client = client.clone();
    Some(async move {
        if dry_run {
            return (r, Outcome::WouldWriteStatus);
        }
        // Application requires updateTime; versions record `updated` and who acted.
        match r.kind.as_str() {
            "Application" => status["updateTime"] = now().into(),
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
