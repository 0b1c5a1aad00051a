//! The apply planner: what to do with one compiled object, decided from the object, what the
//! cluster shows of it and the options alone — no I/O. The per-kind rules are data on the kind
//! table ([`crate::cluster::WriteRules`]). The shape is Argo CD's gitops-engine `pkg/sync`:
//! each stage is planned, then carried out (`apply`'s executor, and reconcile's drift
//! correction through [`super::apply_object`]).

use serde_json::Value;

use super::live::{Foreign, applied_as_is};
use super::report::Outcome;
use super::{ApplyOptions, DIGEST_ANNOTATION, DesiredObject, contains};
use crate::objects::labels;

/// What the cluster shows of one object when it is planned.
#[derive(Debug, Clone, Copy, Default)]
pub struct Seen<'a> {
    /// The live object: whole, or its metadata only when it was listed lean.
    pub live: Option<&'a Value>,
    /// Set when it exists without this catalog's mark.
    pub foreign: Option<&'a Foreign>,
    /// `live` holds metadata only.
    pub metadata_only: bool,
}

/// One object's step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The live object already is what the catalog says.
    Unchanged,
    /// Left as it is, and why: an object the catalog borrows and does not own.
    Skip(String),
    /// Not written, and why.
    Refuse(String),
    /// Listed by metadata only and compiled differently since: read it whole, then plan
    /// again with [`with_body`].
    Fetch,
    /// Written.
    Write(Write),
}

/// How an object is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Write {
    /// Deleted first: an immutable object that differs, or a stored package replaced on
    /// request.
    pub replace: bool,
    /// Created by a protobuf POST answered with metadata ([`crate::cluster::WriteRules`]'s
    /// `created_as_protobuf`); otherwise a server-side apply patch.
    pub create: bool,
    /// Take over fields other managers own: `--force-conflicts`, or adopting.
    pub force: bool,
    /// The object exists without this catalog's mark and the user said to take it over.
    pub adopting: bool,
}

impl Write {
    /// What a dry run reports for this write.
    pub fn dry_run_outcome(&self, exists: bool) -> Outcome {
        if self.adopting {
            Outcome::WouldAdopt
        } else if exists {
            Outcome::WouldUpdate
        } else {
            Outcome::WouldCreate
        }
    }

    /// What a successful write reports.
    pub fn outcome(&self, existed: bool) -> Outcome {
        if self.adopting {
            Outcome::Adopted
        } else if self.replace {
            Outcome::Replaced
        } else if existed {
            Outcome::Updated
        } else {
            Outcome::Created
        }
    }
}

/// The step decided before the body pitrix would send is made: ownership, and an unchanged
/// digest. `None`: the body decides ([`with_body`]).
pub fn before_body(o: &DesiredObject, seen: Seen, opts: &ApplyOptions) -> Option<Step> {
    if let Some(foreign) = seen.foreign {
        if borrowed(o) {
            return Some(Step::Skip(format!(
                "exists and is not this catalog's; used as it is ({})",
                foreign.describe()
            )));
        }
        if !opts.adopt {
            return Some(Step::Refuse(format!(
                "exists and is not this catalog's: {}; pass --adopt to take it over",
                foreign.describe()
            )));
        }
    }
    let rules = &o.kind.write;
    if !rules.compared_in_full && seen.live.is_some_and(|l| applied_as_is(l, &o.digest)) {
        return Some(Step::Unchanged);
    }
    if seen.live.is_some() && seen.metadata_only {
        return Some(Step::Fetch);
    }
    None
}

/// The step for `body` (what pitrix sends) against the whole live object, if any.
pub fn with_body(
    o: &DesiredObject,
    body: &Value,
    live: Option<&Value>,
    adopting: bool,
    opts: &ApplyOptions,
) -> Step {
    if live.is_some_and(|l| contains(l, body) || synced_by_another_applier(l, body)) {
        return Step::Unchanged;
    }
    let rules = &o.kind.write;
    let mut replace = rules.immutable && live.is_some();
    if rules.stored_bytes
        && let Some(l) = live
        && l.pointer("/binaryData") != body.pointer("/binaryData")
    {
        if !opts.replace_changed_packages {
            return Step::Refuse(format!(
                "the stored package `{}` holds other bytes; KubeSphere never overwrites a stored package, so bump the version (or pass --replace-changed-packages)",
                o.r.name
            ));
        }
        replace = true;
    }
    Step::Write(Write {
        replace,
        create: rules.created_as_protobuf && (live.is_none() || replace) && !adopting,
        force: opts.force_conflicts || adopting,
        adopting,
    })
}

/// Applied by another applier from the same output (Argo CD, Flux): everything pitrix would
/// send is there but what only pitrix can write — the digest annotation, and a version's owner
/// reference (it needs the app's UID; the engine prunes versions itself). Writing those alone
/// would make each switch between pitrix and the engine an update of every object.
fn synced_by_another_applier(live: &Value, body: &Value) -> bool {
    if labels::annotation(live, DIGEST_ANNOTATION).is_some() {
        return false;
    }
    let mut body = body.clone();
    if live.pointer("/metadata/ownerReferences").is_none()
        && let Some(metadata) = body.get_mut("metadata").and_then(Value::as_object_mut)
    {
        metadata.remove("ownerReferences");
    }
    if let Some(metadata) = body.get_mut("metadata").and_then(Value::as_object_mut)
        && let Some(annotations) = metadata
            .get_mut("annotations")
            .and_then(Value::as_object_mut)
    {
        annotations.remove(DIGEST_ANNOTATION);
        if annotations.is_empty() {
            metadata.remove("annotations");
        }
    }
    contains(live, &body)
}

/// Objects pitrix only borrows (the storage namespace, KubeSphere's built-in category): used
/// as they are when they exist, never taken over, never pruned.
pub fn borrowed(o: &DesiredObject) -> bool {
    o.to_applied()
        .is_ok_and(|b| labels::annotation(&b, labels::PITRIX_PRUNE) == Some("disabled"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(body: Value) -> DesiredObject {
        DesiredObject::of(body).expect("a known kind")
    }

    fn package(name: &str, bytes: &str) -> DesiredObject {
        object(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "extension-openpitrix",
                         "labels": {"pitrix.io/catalog": "store"}},
            "binaryData": {"package": bytes},
        }))
    }

    fn job(image: &str) -> DesiredObject {
        object(json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "helm-install", "namespace": "shop",
                         "labels": {"pitrix.io/catalog": "store"}},
            "spec": {"template": {"spec": {"containers": [{"name": "helm", "image": image}]}}},
        }))
    }

    fn category() -> DesiredObject {
        object(json!({
            "apiVersion": "application.kubesphere.io/v2", "kind": "Category",
            "metadata": {"name": "web", "labels": {"pitrix.io/catalog": "store"}},
            "spec": {"icon": "globe"},
        }))
    }

    /// The object as a cluster would hold it after pitrix applied it.
    fn applied(o: &DesiredObject) -> Value {
        let mut live = o.to_applied().unwrap();
        live["metadata"]["uid"] = "u-1".into();
        live["metadata"]["managedFields"] = json!([{"manager": "pitrix", "operation": "Apply"}]);
        live
    }

    fn opts() -> ApplyOptions {
        ApplyOptions {
            progress: false,
            ..ApplyOptions::default()
        }
    }

    fn plan(o: &DesiredObject, live: Option<&Value>, opts: &ApplyOptions) -> Step {
        let seen = Seen {
            live,
            ..Seen::default()
        };
        before_body(o, seen, opts).unwrap_or_else(|| {
            let body = o.to_applied().unwrap();
            with_body(o, &body, live, false, opts)
        })
    }

    #[test]
    fn a_new_object_is_created_the_way_its_kind_says() {
        let created = plan(&package("nginx-1.0.0", "AAA="), None, &opts());
        assert_eq!(
            created,
            Step::Write(Write {
                replace: false,
                create: true,
                force: false,
                adopting: false
            }),
            "packages are created in protobuf"
        );
        let Step::Write(w) = plan(&category(), None, &opts()) else {
            panic!("a new category is written");
        };
        assert!(
            !w.create && !w.replace,
            "everything else is server-side applied"
        );
        assert_eq!(w.outcome(false), Outcome::Created);
        assert_eq!(w.dry_run_outcome(false), Outcome::WouldCreate);
    }

    #[test]
    fn an_object_applied_as_compiled_is_unchanged() {
        let o = category();
        assert_eq!(plan(&o, Some(&applied(&o)), &opts()), Step::Unchanged);
        // Another writer touched it: the digest no longer vouches, the content decides.
        let mut edited = applied(&o);
        edited["metadata"]["managedFields"] =
            json!([{"manager": "kubectl-edit", "operation": "Update"}]);
        let seen = Seen {
            live: Some(&edited),
            ..Seen::default()
        };
        assert_eq!(before_body(&o, seen, &opts()), None);
        // Listed by metadata only: the digest annotation alone says so, nothing is fetched.
        let meta = json!({"metadata": applied(&o)["metadata"].clone()});
        let seen = Seen {
            live: Some(&meta),
            foreign: None,
            metadata_only: true,
        };
        assert_eq!(before_body(&o, seen, &opts()), Some(Step::Unchanged));
    }

    #[test]
    fn a_metadata_only_listing_with_another_digest_is_fetched_first() {
        let o = category();
        let mut live = applied(&o);
        live["metadata"]["annotations"]["pitrix.io/digest"] = "sha256:old".into();
        let meta = json!({"metadata": live["metadata"].clone()});
        let seen = Seen {
            live: Some(&meta),
            foreign: None,
            metadata_only: true,
        };
        assert_eq!(before_body(&o, seen, &opts()), Some(Step::Fetch));
    }

    #[test]
    fn a_stored_package_with_other_bytes_is_refused_unless_replacement_is_asked() {
        let live = applied(&package("nginx-1.0.0", "AAA="));
        let changed = package("nginx-1.0.0", "BBB=");
        let Step::Refuse(why) = plan(&changed, Some(&live), &opts()) else {
            panic!("refused");
        };
        assert!(why.contains("--replace-changed-packages"), "{why}");

        let replace = ApplyOptions {
            replace_changed_packages: true,
            ..opts()
        };
        let Step::Write(w) = plan(&changed, Some(&live), &replace) else {
            panic!("replaced on request");
        };
        assert!(w.replace && w.create, "{w:?}");
        assert_eq!(w.outcome(true), Outcome::Replaced);
    }

    #[test]
    fn an_immutable_job_that_differs_is_replaced_never_patched() {
        let live = applied(&job("helm:1"));
        let Step::Write(w) = plan(&job("helm:2"), Some(&live), &opts()) else {
            panic!("written");
        };
        assert!(w.replace && w.create, "{w:?}");
        // A category that differs is patched in place.
        let mut old = applied(&category());
        old["spec"]["icon"] = "old".into();
        old["metadata"]["annotations"]["pitrix.io/digest"] = "sha256:old".into();
        let Step::Write(w) = plan(&category(), Some(&old), &opts()) else {
            panic!("written");
        };
        assert!(!w.replace && !w.create, "{w:?}");
        assert_eq!(w.outcome(true), Outcome::Updated);
    }

    #[test]
    fn a_foreign_object_is_refused_adopted_on_request_or_borrowed() {
        let o = category();
        let foreign = Foreign::of(&json!({"metadata": {"name": "web"}}));
        let seen = Seen {
            live: None,
            foreign: Some(&foreign),
            metadata_only: false,
        };
        let Some(Step::Refuse(why)) = before_body(&o, seen, &opts()) else {
            panic!("refused");
        };
        assert!(why.contains("--adopt"), "{why}");

        let adopt = ApplyOptions {
            adopt: true,
            ..opts()
        };
        assert_eq!(before_body(&o, seen, &adopt), None);
        let body = o.to_applied().unwrap();
        let Step::Write(w) = with_body(&o, &body, None, true, &adopt) else {
            panic!("adopted");
        };
        assert!(
            w.adopting && w.force,
            "adopting takes the fields over: {w:?}"
        );
        assert_eq!(w.dry_run_outcome(true), Outcome::WouldAdopt);

        let namespace = object(json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "extension-openpitrix",
                         "annotations": {"pitrix.io/prune": "disabled"}},
        }));
        let Some(Step::Skip(_)) = before_body(&namespace, seen, &adopt) else {
            panic!("a borrowed object is used as it is, even with --adopt");
        };
    }

    #[test]
    fn an_object_an_engine_applied_from_the_same_output_is_unchanged() {
        let o = category();
        let mut by_engine = o.to_body().unwrap();
        by_engine["metadata"]["managedFields"] =
            json!([{"manager": "argocd-controller", "operation": "Apply"}]);
        assert_eq!(plan(&o, Some(&by_engine), &opts()), Step::Unchanged);
        // A version's owner reference needs the app's UID, which an engine cannot write.
        let mut with_owner = o.to_applied().unwrap();
        with_owner["metadata"]["ownerReferences"] = json!([{"kind": "Application", "uid": "u"}]);
        assert_eq!(
            with_body(&o, &with_owner, Some(&by_engine), false, &opts()),
            Step::Unchanged
        );
        // Content the engine did not apply is still written.
        by_engine["spec"]["icon"] = "other".into();
        assert!(matches!(
            plan(&o, Some(&by_engine), &opts()),
            Step::Write(_)
        ));
        // An object pitrix applied under another digest is compared as always.
        let mut stale = applied(&o);
        stale["metadata"]["annotations"]["pitrix.io/digest"] = "sha256:old".into();
        stale["metadata"]["managedFields"] = json!([{"manager": "pitrix", "operation": "Apply"}]);
        assert!(matches!(plan(&o, Some(&stale), &opts()), Step::Write(_)));
    }

    #[test]
    fn force_conflicts_forces_every_patch() {
        let force = ApplyOptions {
            force_conflicts: true,
            ..opts()
        };
        let Step::Write(w) = plan(&category(), None, &force) else {
            panic!("written");
        };
        assert!(w.force);
    }
}
