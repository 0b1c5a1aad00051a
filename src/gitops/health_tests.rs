//! The health checks shipped in examples/ (Argo CD's Lua in argocd-cm.yaml, Flux's CEL in
//! kustomizations.yaml), run in a real Lua 5.4 and a CEL interpreter on the statuses
//! KubeSphere's controllers write (apprelease_controller.go's updateStatus: `state`, `message`,
//! `lastUpdate`, the executor Job's name; pitrix's status writer for versions and apps).

use serde_json::{Value, json};

const ARGOCD_CM: &str = include_str!("../../examples/argocd/argocd-cm.yaml");
const FLUX: &str = include_str!("../../examples/flux/kustomizations.yaml");

/// Argo CD's health of `obj` by the script for `kind`: (status, message).
fn argocd_health(kind: &str, obj: &Value) -> (String, String) {
    let cm: Value = serde_yaml::from_str(ARGOCD_CM).unwrap();
    let key = format!("resource.customizations.health.application.kubesphere.io_{kind}");
    let script = cm["data"][&key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key}"));
    let lua = mlua::Lua::new();
    use mlua::LuaSerdeExt;
    lua.globals()
        .set("obj", lua.to_value(obj).unwrap())
        .unwrap();
    let hs: mlua::Table = lua.load(script).eval().unwrap();
    let status: String = hs.get("status").unwrap();
    let message: Option<String> = hs.get("message").unwrap();
    (status, message.unwrap_or_default())
}

fn release(status: Option<Value>) -> Value {
    let mut r = json!({
        "apiVersion": "application.kubesphere.io/v2",
        "kind": "ApplicationRelease",
        "metadata": {"name": "storefront", "generation": 1},
        "spec": {"appID": "nginx", "appVersionID": "nginx-1.1.0"},
    });
    if let Some(s) = status {
        r["status"] = s;
    }
    r
}

/// The statuses KubeSphere's release controller writes, with the health each must get.
fn samples() -> Vec<(Value, &'static str, &'static str)> {
    let at = "2026-12-04T10:00:00Z";
    vec![
        (release(None), "Progressing", "Waiting"),
        (
            release(Some(json!({"state": "creating", "lastUpdate": at}))),
            "Progressing",
            "creating",
        ),
        (
            release(Some(json!({
                "state": "created", "message": "Deploying", "specHash": "5f6c1a",
                "installJobName": "storefront-install-x7k2p", "lastUpdate": at,
            }))),
            "Healthy",
            "created: Deploying",
        ),
        (
            release(Some(
                json!({"state": "upgrading", "message": "Deploying", "lastUpdate": at}),
            )),
            "Progressing",
            "upgrading",
        ),
        (
            release(Some(
                json!({"state": "upgraded", "message": "Deploying", "lastUpdate": at}),
            )),
            "Healthy",
            "upgraded",
        ),
        (
            release(Some(
                json!({"state": "active", "message": "Install complete", "lastUpdate": at}),
            )),
            "Healthy",
            "active: Install complete",
        ),
        (
            release(Some(
                json!({"state": "timeout", "message": "Installation timeout", "lastUpdate": at}),
            )),
            "Progressing",
            "Installation timeout",
        ),
        (
            release(Some(json!({
                "state": "failed",
                "message": "storefront helm create job failed err: chart requires kubeVersion >=1.30",
                "lastUpdate": at,
            }))),
            "Degraded",
            "failed: storefront helm create job failed err: chart requires kubeVersion >=1.30",
        ),
        (
            release(Some(
                json!({"state": "clusterDeleted", "message": "cluster edge-eu has been deleted"}),
            )),
            "Degraded",
            "cluster edge-eu has been deleted",
        ),
    ]
}

#[test]
fn argocd_release_health_follows_kubesphere_s_states() {
    for (obj, want, message) in samples() {
        let (status, got) = argocd_health("ApplicationRelease", &obj);
        assert_eq!(status, want, "{}", obj["status"]);
        assert!(got.contains(message), "{got:?} for {}", obj["status"]);
    }
}

#[test]
fn argocd_versions_and_apps_never_hold_the_sync_before_the_status_hook() {
    for kind in ["ApplicationVersion", "Application"] {
        let bare = json!({"apiVersion": "application.kubesphere.io/v2", "kind": kind, "metadata": {"name": "nginx-1.1.0"}});
        let (status, message) = argocd_health(kind, &bare);
        assert_eq!(
            (status.as_str(), message.contains("no review state")),
            ("Healthy", true)
        );
        let mut written = bare.clone();
        written["status"] = json!({
            "state": "suspended", "message": "Suspended: see 1.1.0",
            "updated": "2026-12-04T10:00:00Z", "userName": "pitrix", "updateTime": "2026-12-04T10:00:00Z",
        });
        let (status, message) = argocd_health(kind, &written);
        assert_eq!(status, "Healthy");
        assert!(message.contains("suspended"), "{message}");
    }
}

/// Flux's verdict on `obj` by `healthCheckExprs` (RFC-0009: inProgress, failed, current, the
/// first true wins, none: in progress), the object's top-level fields as variables.
fn flux_health(obj: &Value) -> &'static str {
    let docs: Vec<Value> = serde_yaml::Deserializer::from_str(FLUX)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    let check = docs
        .iter()
        .flat_map(|d| {
            d["spec"]["healthCheckExprs"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .find(|c| c["kind"] == obj["kind"])
        .expect("a check for the kind");
    let mut ctx = cel::Context::default();
    for field in ["apiVersion", "kind", "metadata", "spec", "status"] {
        // An object without a status is taken to have an empty one (see the README's limits).
        let v = obj.get(field).cloned().unwrap_or(json!({}));
        ctx.add_variable(field, v).unwrap();
    }
    for (expr, verdict) in [
        ("inProgress", "InProgress"),
        ("failed", "Failed"),
        ("current", "Current"),
    ] {
        let Some(text) = check[expr].as_str() else {
            continue;
        };
        let program = cel::Program::compile(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        match program
            .execute(&ctx)
            .unwrap_or_else(|e| panic!("{text}: {e}"))
        {
            cel::Value::Bool(true) => return verdict,
            cel::Value::Bool(false) => {}
            other => panic!("{text} gave {other:?}"),
        }
    }
    "InProgress"
}

#[test]
fn flux_release_health_follows_kubesphere_s_states() {
    for (obj, argo, _) in samples() {
        let want = match argo {
            "Healthy" => "Current",
            "Degraded" => "Failed",
            _ => "InProgress",
        };
        assert_eq!(flux_health(&obj), want, "{}", obj["status"]);
    }
}
