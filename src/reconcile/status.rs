//! Status in the cluster: the outcome of the last sync as annotations on the catalog's
//! inventory ConfigMap (written with their own field manager, so apply's inventory writes and
//! these never take each other's fields), and Kubernetes Events (events.k8s.io/v1) about that
//! ConfigMap for every sync, drift correction and failure.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::sync::Mutex;

use crate::apply::{ClusterInventory, InventoryWriteError, inventory_name};
use crate::cluster::ObjectRef;
use crate::cluster::{describe, is_not_found, retry};
use crate::error::Error;

pub const FIELD_MANAGER: &str = "pitrix-reconcile";
pub const SOURCE: &str = "pitrix.io/source";
pub const LAST_SYNC_REVISION: &str = "pitrix.io/last-sync-revision";
pub const LAST_SYNC_TIME: &str = "pitrix.io/last-sync-time";
pub const LAST_SYNC_RESULT: &str = "pitrix.io/last-sync-result";
pub const LAST_SYNC_MESSAGE: &str = "pitrix.io/last-sync-message";
pub const APPLIED_REVISION: &str = "pitrix.io/applied-revision";
pub const APPLIED_TIME: &str = "pitrix.io/applied-time";

/// Identical events within this window are sent once.
const EVENT_DEDUP: Duration = Duration::from_secs(600);
const REPORTING_CONTROLLER: &str = "pitrix.io/reconcile";

/// How a sync ended: recorded on the inventory ConfigMap, the reason of its Event, and the
/// label of its metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncResult {
    Synced,
    FetchFailed,
    CompileFailed,
    /// The revision could not be checked out, or its compiled objects not stored: the
    /// controller's disk, not the catalog. Nothing applied; the next poll tries it again.
    BuildFailed,
    /// Nothing applied: the apply refused before writing (ownership, prerequisites, the prune
    /// guard, the lock).
    Refused,
    /// Applied in part.
    ApplyFailed,
}

impl SyncResult {
    /// As recorded in the inventory's `lastSyncResult` annotation.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncResult::Synced => "Synced",
            SyncResult::FetchFailed => "FetchFailed",
            SyncResult::CompileFailed => "CompileFailed",
            SyncResult::BuildFailed => "BuildFailed",
            SyncResult::Refused => "Refused",
            SyncResult::ApplyFailed => "ApplyFailed",
        }
    }

    /// The reason of the Event that reports it.
    pub fn reason(self) -> &'static str {
        match self {
            SyncResult::Refused => "SyncRefused",
            other => other.as_str(),
        }
    }

    /// The `result` label of `pitrix_sync_total` and friends.
    pub fn metric(self) -> &'static str {
        match self {
            SyncResult::Synced => "synced",
            SyncResult::FetchFailed => "fetch_failed",
            SyncResult::CompileFailed => "compile_failed",
            SyncResult::BuildFailed => "build_failed",
            SyncResult::Refused => "refused",
            SyncResult::ApplyFailed => "apply_failed",
        }
    }

    /// Whether the same revision is worth no second attempt: applied, or cannot compile (a
    /// failure of the controller's own checkout or store is worth one).
    pub fn settled(self) -> bool {
        matches!(self, SyncResult::Synced | SyncResult::CompileFailed)
    }
}

/// The outcome of a sync, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncStatus {
    /// The revision this sync worked on.
    pub revision: String,
    pub result: SyncResult,
    pub message: String,
    /// The revision the cluster holds (the last one applied without failure), and when.
    pub applied: Option<(String, String)>,
}

pub struct Reporter {
    client: Client,
    namespace: String,
    identity: String,
    source: String,
    last_status: Mutex<Option<(String, SyncStatus)>>,
    recent_events: Mutex<HashMap<(String, String, String), Instant>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

/// Cuts `s` to at most `max` bytes on a character boundary, marking the cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max.saturating_sub(3);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

impl Reporter {
    pub fn new(client: Client, namespace: &str, identity: &str, source: &str) -> Reporter {
        Reporter {
            client,
            namespace: namespace.to_string(),
            identity: identity.to_string(),
            source: source.to_string(),
            last_status: Mutex::new(None),
            recent_events: Mutex::new(HashMap::new()),
        }
    }

    /// Records `status` on the catalog's inventory (created empty if there is none yet, the
    /// way apply creates it). Identical consecutive records are written once.
    pub async fn record(&self, catalog: &str, status: &SyncStatus) -> Result<(), Error> {
        let mut last = self.last_status.lock().await;
        if last
            .as_ref()
            .is_some_and(|(c, s)| c == catalog && s == status)
        {
            return Ok(());
        }
        let name = inventory_name(catalog);
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.namespace);
        match retry(3, || api.get_metadata(&name)).await {
            Ok(_) => {}
            // Created only if there is still none: an apply that created it meanwhile keeps
            // its entries.
            Err(e) if is_not_found(&e) => match crate::apply::write_inventory(
                &self.client,
                &self.namespace,
                catalog,
                &ClusterInventory::default(),
                None,
            )
            .await
            {
                Ok(_) | Err(InventoryWriteError::Conflict(_)) => {}
                Err(InventoryWriteError::Failed(why)) => return Err(Error::Status(why)),
            },
            Err(e) => {
                return Err(Error::Status(format!(
                    "cannot read inventory: {}",
                    describe(&e)
                )));
            }
        }
        let now = Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
        let mut annotations = json!({
            SOURCE: self.source,
            LAST_SYNC_REVISION: status.revision,
            LAST_SYNC_TIME: now,
            LAST_SYNC_RESULT: status.result.as_str(),
            LAST_SYNC_MESSAGE: truncate(&crate::redact::text(&status.message), 4000),
        });
        if let Some((revision, time)) = &status.applied {
            annotations[APPLIED_REVISION] = revision.clone().into();
            annotations[APPLIED_TIME] = time.clone().into();
        }
        let body = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": self.namespace, "annotations": annotations},
        });
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let patch = Patch::Apply(&body);
        retry(3, || api.patch(&name, &params, &patch))
            .await
            .map_err(|e| {
                Error::Status(format!("cannot record the sync status: {}", describe(&e)))
            })?;
        *last = Some((catalog.to_string(), status.clone()));
        Ok(())
    }

    /// Publishes an Event about the catalog's inventory; the same event again within ten
    /// minutes is not repeated.
    pub async fn event(
        &self,
        catalog: &str,
        type_: EventType,
        reason: &str,
        action: &str,
        note: &str,
        related: Option<&ObjectRef>,
    ) -> Result<(), Error> {
        let note = truncate(&crate::redact::text(note), 1000);
        {
            let mut recent = self.recent_events.lock().await;
            recent.retain(|_, t| t.elapsed() < EVENT_DEDUP);
            let key = (catalog.to_string(), reason.to_string(), note.clone());
            if recent.contains_key(&key) {
                return Ok(());
            }
            recent.insert(key, Instant::now());
        }
        let name = inventory_name(catalog);
        let now = Timestamp::now();
        let event = Event {
            metadata: ObjectMeta {
                name: Some(format!(
                    "{name}.{:x}{:04x}",
                    now.as_nanosecond(),
                    super::random_u64() as u16
                )),
                namespace: Some(self.namespace.clone()),
                ..ObjectMeta::default()
            },
            event_time: Some(MicroTime(now)),
            action: Some(truncate(action, 128)),
            reason: Some(truncate(reason, 128)),
            note: Some(note),
            type_: Some(
                match type_ {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .into(),
            ),
            regarding: Some(ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("ConfigMap".into()),
                name: Some(name),
                namespace: Some(self.namespace.clone()),
                ..ObjectReference::default()
            }),
            related: related.map(|r| ObjectReference {
                api_version: Some(r.api_version.clone()),
                kind: Some(r.kind.clone()),
                name: Some(r.name.clone()),
                namespace: r.namespace.clone(),
                ..ObjectReference::default()
            }),
            reporting_controller: Some(REPORTING_CONTROLLER.into()),
            reporting_instance: Some(truncate(&self.identity, 128)),
            ..Event::default()
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), &self.namespace);
        let params = PostParams::default();
        retry(3, || api.create(&params, &event))
            .await
            .map(|_| ())
            .map_err(|e| Error::Status(format!("cannot publish an event: {}", describe(&e))))
    }
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn truncation_keeps_characters_whole() {
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("abcdefghijk", 8), "abcde...");
        let s = "ééééé";
        let t = truncate(s, 6);
        assert!(t.len() <= 6 && t.ends_with("..."), "{t}");
    }
}
