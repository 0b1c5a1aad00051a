//! Talking to the cluster: a client configured like kubectl's, typed API handles for the kinds
//! pitrix emits, and retries with backoff for the failures that pass.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use kube::api::{Api, DynamicObject};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::discovery::ApiResource;
use kube::{Client, Config};

use crate::compile::KindInfo;

/// Where the cluster is: like kubectl, `--kubeconfig`, else `KUBECONFIG`, else
/// `~/.kube/config`, else the in-cluster service account; `--context` picks a context.
#[derive(Debug, Clone, Default)]
pub struct ClusterOptions {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
}

pub async fn client(opts: &ClusterOptions) -> Result<Client, String> {
    let kc_opts = KubeConfigOptions {
        context: opts.context.clone(),
        ..KubeConfigOptions::default()
    };
    let config = match &opts.kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path)
                .map_err(|e| format!("cannot read kubeconfig {}: {e}", path.display()))?;
            Config::from_custom_kubeconfig(kc, &kc_opts)
                .await
                .map_err(|e| format!("kubeconfig {}: {e}", path.display()))?
        }
        None if opts.context.is_some() => Config::from_kubeconfig(&kc_opts)
            .await
            .map_err(|e| format!("kubeconfig: {e}"))?,
        None => Config::infer()
            .await
            .map_err(|e| format!("no cluster configured (kubeconfig or in-cluster): {e}"))?,
    };
    Client::try_from(config).map_err(|e| format!("cannot create a Kubernetes client: {e}"))
}

pub fn api_resource(kind: &KindInfo) -> ApiResource {
    let (group, version) = kind.group_version();
    ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: kind.api_version.into(),
        kind: kind.kind.into(),
        plural: kind.plural.into(),
    }
}

/// The API of `kind`, in `namespace` for namespaced kinds.
pub fn api(client: &Client, kind: &KindInfo, namespace: Option<&str>) -> Api<DynamicObject> {
    let ar = api_resource(kind);
    match (kind.namespaced, namespace) {
        (true, Some(ns)) => Api::namespaced_with(client.clone(), ns, &ar),
        _ => Api::all_with(client.clone(), &ar),
    }
}

/// Whether an error may pass on its own: throttling, server trouble, a lost connection, an
/// optimistic-lock conflict (but not a field-ownership conflict, which needs a decision).
pub fn is_transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(status) => {
            let code = status.code;
            code == 429
                || code >= 500
                || (code == 409 && !status.message.starts_with("Apply failed with"))
        }
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

pub fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// Runs `op` until it succeeds, fails for good, or `attempts` run out; backoff doubles from
/// 100 ms up to 3 s.
pub async fn retry<T, F, Fut>(attempts: u32, mut op: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let mut delay = Duration::from_millis(100);
    let mut attempt = 1;
    loop {
        match op().await {
            Err(e) if attempt < attempts && is_transient(&e) => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(3));
                attempt += 1;
            }
            result => return result,
        }
    }
}

/// A failure as one line: the API's message where there is one.
pub fn describe(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("{} ({}): {}", s.reason, s.code, s.message),
        other => other.to_string(),
    }
}
