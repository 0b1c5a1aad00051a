//! Talking to the cluster: a client configured like kubectl's, typed API handles for the kinds
//! pitrix emits, and retries with backoff for the failures that pass.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, DynamicObject, PartialObjectMeta, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::Request;
use kube::discovery::ApiResource;
use kube::{Client, Config};

use super::KindInfo;
use super::protobuf;
use crate::error::Error;
use crate::objects::labels;

/// Where the cluster is: like kubectl, `--kubeconfig`, else `KUBECONFIG`, else
/// `~/.kube/config`, else the in-cluster service account; `--context` picks a context.
#[derive(Debug, Clone, Default)]
pub struct ClusterOptions {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    /// The kubeconfig with the member clusters' contexts, when not `kubeconfig` (e.g. pitrix
    /// running in the host cluster, reaching the others through a mounted Secret).
    pub member_kubeconfig: Option<PathBuf>,
}

/// A client for `opts`; a configuration that does not give one is an [`Error::Cluster`].
pub async fn client(opts: &ClusterOptions) -> Result<Client, Error> {
    let kc_opts = KubeConfigOptions {
        context: opts.context.clone(),
        ..KubeConfigOptions::default()
    };
    let config = match &opts.kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path).map_err(|e| {
                Error::Cluster(format!("cannot read kubeconfig {}: {e}", path.display()))
            })?;
            Config::from_custom_kubeconfig(kc, &kc_opts)
                .await
                .map_err(|e| Error::Cluster(format!("kubeconfig {}: {e}", path.display())))?
        }
        None if opts.context.is_some() => Config::from_kubeconfig(&kc_opts)
            .await
            .map_err(|e| Error::Cluster(format!("kubeconfig: {e}")))?,
        None => Config::infer().await.map_err(|e| {
            Error::Cluster(format!(
                "no cluster configured (kubeconfig or in-cluster): {e}"
            ))
        })?,
    };
    Client::try_from(config)
        .map_err(|e| Error::Cluster(format!("cannot create a Kubernetes client: {e}")))
}

/// The clusters one apply talks to. The host holds the App Store's objects, the inventory and
/// every status pitrix writes; in `standalone`, each release's executor Job and ConfigMap go to
/// its catalog cluster (`releases/<cluster>/`), reached through the kubeconfig context
/// pitrix.toml maps it to (`[clusters.<name>] context`, `[env.<env>.clusters.<name>]` over it).
/// Member clients are made on first use: a catalog needs only the contexts it really uses.
#[derive(Clone)]
pub struct Clusters {
    host: Client,
    /// `--context`, else the host's mapped context (`None`: the kubeconfig's current one).
    host_context: Option<String>,
    /// Where member contexts are looked up.
    member_kubeconfig: Option<PathBuf>,
    /// Catalog cluster → kubeconfig context.
    contexts: BTreeMap<String, String>,
    /// Clients made so far, by context.
    members: Arc<tokio::sync::Mutex<BTreeMap<String, Client>>>,
}

impl Clusters {
    /// Connects to the host: `--context` wins (as with kubectl), then the catalog's mapping of
    /// the `host` cluster, then the kubeconfig's current context or the in-cluster account.
    pub async fn connect(
        opts: &ClusterOptions,
        contexts: &BTreeMap<String, String>,
    ) -> Result<Clusters, Error> {
        let host_context = opts
            .context
            .clone()
            .or_else(|| contexts.get(labels::DEFAULT_CLUSTER).cloned());
        let host = client(&ClusterOptions {
            kubeconfig: opts.kubeconfig.clone(),
            context: host_context.clone(),
            member_kubeconfig: None,
        })
        .await
        .map_err(|e| match (&opts.context, &host_context) {
            (None, Some(context)) => Error::Cluster(format!(
                "{e}\n  (the host's context `{context}` comes from [clusters.{}] in pitrix.toml; pass --context to use another)",
                labels::DEFAULT_CLUSTER
            )),
            _ => e,
        })?;
        Ok(Clusters {
            host,
            host_context,
            member_kubeconfig: opts
                .member_kubeconfig
                .clone()
                .or_else(|| opts.kubeconfig.clone()),
            contexts: contexts.clone(),
            members: Arc::default(),
        })
    }

    /// Only the host (a catalog without member clusters, and tests).
    pub fn host_only(host: Client) -> Clusters {
        Clusters {
            host,
            host_context: None,
            member_kubeconfig: None,
            contexts: BTreeMap::new(),
            members: Arc::default(),
        }
    }

    /// The same connections with another catalog's mapping (a new revision's, in reconcile).
    pub fn with_contexts(&self, contexts: &BTreeMap<String, String>) -> Clusters {
        Clusters {
            contexts: contexts.clone(),
            ..self.clone()
        }
    }

    pub fn host(&self) -> &Client {
        &self.host
    }

    /// Whether a catalog cluster is reached through the host's client.
    pub fn is_host(&self, cluster: &str) -> bool {
        cluster == labels::DEFAULT_CLUSTER
            || self
                .contexts
                .get(cluster)
                .is_some_and(|c| self.host_context.as_ref() == Some(c))
    }

    /// The client of a catalog cluster (`None`: the host).
    pub async fn client(&self, cluster: Option<&str>) -> Result<Client, Error> {
        let Some(cluster) = cluster.filter(|c| !self.is_host(c)) else {
            return Ok(self.host.clone());
        };
        let Some(context) = self.contexts.get(cluster) else {
            return Err(Error::Cluster(format!(
                "cluster `{cluster}` has no kubeconfig context: add [clusters.{cluster}] context = \"...\" to pitrix.toml"
            )));
        };
        let mut members = self.members.lock().await;
        if let Some(c) = members.get(context) {
            return Ok(c.clone());
        }
        let c = client(&ClusterOptions {
            kubeconfig: self.member_kubeconfig.clone(),
            context: Some(context.clone()),
            member_kubeconfig: None,
        })
        .await
        .map_err(|e| Error::Cluster(format!("cluster `{cluster}` (context `{context}`): {e}")))?;
        members.insert(context.clone(), c.clone());
        Ok(c)
    }
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

/// Creates `body` in `api`'s collection with pitrix as its field manager, answered with
/// metadata only (as an `Api<PartialObjectMeta<_>>` asks); `None` when the object exists
/// already. A ConfigMap goes in protobuf (see [`protobuf`]), anything else as JSON.
pub async fn create_for_metadata(
    client: &Client,
    api: &Api<DynamicObject>,
    body: &serde_json::Value,
    field_manager: &str,
) -> Result<Option<PartialObjectMeta<DynamicObject>>, kube::Error> {
    let (bytes, content_type) = match protobuf::encode(body) {
        Some(bytes) => (bytes, protobuf::CONTENT_TYPE),
        None => (
            serde_json::to_vec(body).map_err(kube::Error::SerdeError)?,
            "application/json",
        ),
    };
    let params = PostParams {
        field_manager: Some(field_manager.to_string()),
        ..PostParams::default()
    };
    retry(5, || async {
        let request = Request::new(api.resource_url())
            .create(&params, bytes.clone())
            .map(|mut request| {
                request.headers_mut().insert(
                    hyper::header::CONTENT_TYPE,
                    hyper::header::HeaderValue::from_static(content_type),
                );
                request
            });
        match send_for_metadata(client, request).await {
            Err(kube::Error::Api(s)) if s.reason == "AlreadyExists" => Ok(None),
            other => other.map(Some),
        }
    })
    .await
}

/// Merge-patches the status of `name`, answered with metadata only (kube-rs's
/// `patch_status` would have the whole object encoded back).
pub async fn patch_status_for_metadata(
    client: &Client,
    api: &Api<DynamicObject>,
    name: &str,
    status: &serde_json::Value,
) -> Result<PartialObjectMeta<DynamicObject>, kube::Error> {
    let body = serde_json::json!({ "status": status });
    let patch = Patch::Merge(&body);
    retry(5, || {
        let request = Request::new(api.resource_url()).patch_subresource(
            "status",
            name,
            &PatchParams::default(),
            &patch,
        );
        send_for_metadata(client, request)
    })
    .await
}

/// Sends a built write request asking for the result as `PartialObjectMetadata`, as kube-rs
/// does in its own metadata-only calls.
async fn send_for_metadata(
    client: &Client,
    request: Result<hyper::Request<Vec<u8>>, kube::core::request::Error>,
) -> Result<PartialObjectMeta<DynamicObject>, kube::Error> {
    let mut request = request.map_err(kube::Error::BuildRequest)?;
    request.headers_mut().insert(
        "accept",
        hyper::header::HeaderValue::from_static(
            "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
        ),
    );
    client.request(request).await
}

/// The API of `kind`, in `namespace` for namespaced kinds.
pub fn api(client: &Client, kind: &KindInfo, namespace: Option<&str>) -> Api<DynamicObject> {
    api_as(client, kind, namespace)
}

/// [`api`] with objects read as `K`: `PartialObjectMeta<DynamicObject>` for metadata only.
pub fn api_as<K>(client: &Client, kind: &KindInfo, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<DynamicType = ApiResource, Scope = kube::core::DynamicResourceScope>,
{
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
