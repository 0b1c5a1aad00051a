//! What an apply did, object by object, for people (text) and machines (JSON).

use serde::Serialize;

use crate::cluster::ObjectRef;
use crate::redact;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "outcome", content = "detail")]
pub enum Outcome {
    Created,
    Updated,
    Unchanged,
    /// A storage ConfigMap deleted and created again (`--replace-changed-packages`).
    Replaced,
    /// An object that existed without this catalog's mark, taken over (`--adopt`).
    Adopted,
    /// The review state written to the status subresource.
    StatusWritten,
    Pruned,
    /// Deleted, but held by a finalizer (KubeSphere uninstalling a release), with the state.
    Deleting(String),
    /// Left alone, with the reason (e.g. not labelled as this catalog's).
    Skipped(String),
    Failed(String),
    /// `--wait`: the release reached `active`.
    Ready,
    /// `--dry-run`: what would happen.
    WouldCreate,
    WouldUpdate,
    WouldAdopt,
    WouldPrune,
    WouldWriteStatus,
}

#[derive(Debug, Clone, Serialize)]
pub struct ObjectResult {
    pub object: ObjectRef,
    #[serde(flatten)]
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyReport {
    pub catalog: String,
    pub dry_run: bool,
    /// Why nothing was done, when a guard refused the apply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    pub results: Vec<ObjectResult>,
}

impl ApplyReport {
    pub fn push(&mut self, object: ObjectRef, outcome: Outcome) {
        self.results.push(ObjectResult { object, outcome });
    }

    /// The objects this apply holds: applied or found as compiled, not refused, failed or
    /// skipped (so their review states may be written).
    pub fn held(&self) -> std::collections::BTreeSet<&ObjectRef> {
        self.results
            .iter()
            .filter(|x| {
                matches!(
                    x.outcome,
                    Outcome::Created
                        | Outcome::Updated
                        | Outcome::Unchanged
                        | Outcome::Replaced
                        | Outcome::Adopted
                        | Outcome::WouldCreate
                        | Outcome::WouldUpdate
                        | Outcome::WouldAdopt
                )
            })
            .map(|x| &x.object)
            .collect()
    }

    pub fn failed(&self) -> bool {
        self.refused.is_some()
            || self
                .results
                .iter()
                .any(|r| matches!(r.outcome, Outcome::Failed(_)))
    }

    pub fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.results.iter().filter(|r| f(&r.outcome)).count()
    }

    pub fn to_json(&self) -> String {
        let mut s = redact::text(&serde_json::to_string_pretty(self).unwrap_or_default());
        s.push('\n');
        s
    }

    pub fn to_text(&self) -> String {
        let mut out = String::new();
        if let Some(why) = &self.refused {
            out.push_str(&format!("refused: {}\n", redact::text(why)));
            return out;
        }
        for r in &self.results {
            let name = r.object.display_name();
            let line = match &r.outcome {
                Outcome::Unchanged => continue,
                Outcome::Created => format!("created   {name}"),
                Outcome::Updated => format!("updated   {name}"),
                Outcome::Replaced => format!("replaced  {name}"),
                Outcome::Adopted => format!("adopted   {name}"),
                Outcome::StatusWritten => format!("status    {name}"),
                Outcome::Pruned => format!("pruned    {name}"),
                Outcome::Deleting(why) => format!("deleting  {name}: {why}"),
                Outcome::Ready => format!("ready     {name}"),
                Outcome::Skipped(why) => format!("skipped   {name}: {why}"),
                Outcome::Failed(why) => format!("FAILED    {name}: {why}"),
                Outcome::WouldCreate => format!("would create  {name}"),
                Outcome::WouldUpdate => format!("would update  {name}"),
                Outcome::WouldAdopt => format!("would adopt   {name}"),
                Outcome::WouldPrune => format!("would prune   {name}"),
                Outcome::WouldWriteStatus => format!("would write status of {name}"),
            };
            out.push_str(&redact::text(&line));
            out.push('\n');
        }
        let failed = self.count(|o| matches!(o, Outcome::Failed(_)));
        out.push_str(&format!(
            "{}{} created, {} updated, {} unchanged, {} pruned, {} review states written, {} failed\n",
            if self.dry_run { "dry run: " } else { "" },
            self.count(|o| matches!(o, Outcome::Created | Outcome::WouldCreate)),
            self.count(|o| matches!(o, Outcome::Updated | Outcome::Replaced | Outcome::Adopted | Outcome::WouldUpdate | Outcome::WouldAdopt)),
            self.count(|o| matches!(o, Outcome::Unchanged)),
            self.count(|o| matches!(o, Outcome::Pruned | Outcome::WouldPrune)),
            self.count(|o| matches!(o, Outcome::StatusWritten | Outcome::WouldWriteStatus)),
            failed
        ));
        out
    }
}
