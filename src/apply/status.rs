//! Review states: KubeSphere has no controller for them (reference §6), so pitrix writes the
//! desired state to the status subresource itself — versions first, then apps — with the
//! timestamps the CRDs require, and only where the live state differs.

use serde_json::{Value, json};

use super::client::{api, describe, retry};
use super::{ApplyOptions, ApplyReport, Live, Outcome};
use crate::compile::{KindInfo, ObjectRef};
use kube::Client;
use kube::api::{Patch, PatchParams};

/// RFC 3339 "now", as Kubernetes writes times.
pub fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

pub async fn write_all(
    client: &Client,
    intents: &[Value],
    live: &Live,
    opts: &ApplyOptions,
    report: &mut ApplyReport,
) {
    for intent in intents {
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
            continue;
        }
        if opts.dry_run {
            report.push(r, Outcome::WouldWriteStatus);
            continue;
        }
        let Some(kind) = KindInfo::of(&r.kind) else {
            continue;
        };
        let mut status = desired.clone();
        // Application requires updateTime; versions record `updated` and who acted.
        match r.kind.as_str() {
            "Application" => status["updateTime"] = now().into(),
            _ => {
                status["updated"] = now().into();
                status["userName"] = "pitrix".into();
            }
        }
        let body = json!({ "status": status });
        let api = api(client, kind, None);
        let params = PatchParams::default();
        let patch = Patch::Merge(&body);
        let outcome = match retry(5, || api.patch_status(&r.name, &params, &patch)).await {
            Ok(_) => Outcome::StatusWritten,
            Err(e) => Outcome::Failed(format!("cannot write its review state: {}", describe(&e))),
        };
        report.push(r, outcome);
    }
}
