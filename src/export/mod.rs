//! `pitrix export`: a live KubeSphere App Store as a catalog that compiles back to it.
//!
//! Reading needs list rights on the five App Store kinds and on ConfigMaps in the storage
//! namespace, nothing else ([`CLUSTER_ROLE`]); where KubeSphere keeps packages in S3
//! (`--s3-endpoint`), read access to its bucket too, with the credentials taken from the
//! environment variables `[storage.s3]` names, never from the command line. What was read is
//! rendered by a pure function ([`render::render`]), so exporting twice gives byte-identical
//! files; the files are written into a temporary directory beside DIR and moved into place at
//! the end, so a failure leaves no partial catalog. Secrets (repo credentials, secret-looking
//! release values) are never written: the catalog names environment variables instead, and
//! export prints their names.

pub mod read;
pub mod render;
pub mod write;

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::catalog::S3Location;
use crate::error::Error;
use crate::storage::s3::S3Client;

pub use render::{Export, Live, Options, Skipped, Variable, render};
pub use write::{Change, write_catalog};

/// The ClusterRole export needs: read-only.
pub const CLUSTER_ROLE: &str = "\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: pitrix-export
rules:
  - apiGroups: [application.kubesphere.io]
    resources: [categories, repos, applications, applicationversions, applicationreleases]
    verbs: [list, watch]
  - apiGroups: [\"\"]
    resources: [configmaps]   # the package storage: bind it in extension-openpitrix only
    verbs: [list, watch]
";

/// `pitrix export`.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// The catalog directory to write: new, empty, or a catalog of the same name.
    pub dir: PathBuf,
    /// The host cluster (the one holding the App Store).
    pub cluster: crate::cluster::ClusterOptions,
    /// The catalog's name (default: that of DIR's pitrix.toml, else DIR's own name).
    pub name: Option<String>,
    /// Prefix of the environment variables that replace repo credentials and secret-looking
    /// release values (`<PREFIX>_<REPO>_USERNAME`, `<PREFIX>_<RELEASE>_<KEY>`…).
    pub credentials_env_prefix: String,
    /// Namespace of KubeSphere's package storage.
    pub storage_namespace: String,
    /// Each package as a chart directory where re-packing it loses nothing.
    pub unpack: bool,
    /// Show which files would change; write nothing.
    pub dry_run: bool,
    /// KubeSphere's S3 store (its kubesphere.yaml `s3:`), when it has one: packages and
    /// attachments are read there first, the storage ConfigMaps only as fallback, and the
    /// catalog gets `[storage.s3]` (where, and the names of the credential variables).
    pub s3: Option<S3Location>,
}

/// The context names of the kubeconfig export connects with (none in-cluster).
fn kubeconfig_contexts(cluster: &crate::cluster::ClusterOptions) -> BTreeSet<String> {
    use kube::config::Kubeconfig;
    let config = match &cluster.kubeconfig {
        Some(path) => Kubeconfig::read_from(path),
        None => Kubeconfig::read(),
    };
    config
        .map(|c| c.contexts.into_iter().map(|c| c.name).collect())
        .unwrap_or_default()
}

/// The catalog name: `--name`, else DIR's pitrix.toml's, else DIR's own name.
fn catalog_name(args: &ExportOptions) -> Result<String, Error> {
    if let Some(n) = &args.name {
        crate::names::dns1123_label(n)
            .map_err(|why| Error::InvalidValue(format!("--name {n}: {why}")))?;
        return Ok(n.clone());
    }
    if let Some(n) = write::existing_name(&args.dir) {
        return Ok(n);
    }
    crate::scaffold::name_for(&args.dir)
}

/// `pitrix export`: reads the store, writes the catalog and prints what changed, the variables
/// to set, and what to do next.
pub fn run(args: &ExportOptions) -> Result<(), Error> {
    let name = catalog_name(args)?;
    let dir = args.dir.as_path();
    write::check_target(dir, &name)?;
    let cluster = &args.cluster;
    // Exporting again over a catalog with [storage.s3]: its packages are there, so read them
    // there (else every one would look gone).
    let s3 = args.s3.clone().or_else(|| {
        let store = write::existing_store(dir)?;
        eprintln!(
            "reading packages from S3 as {}'s pitrix.toml says ([storage.s3]: {}, bucket {})",
            dir.display(),
            store.endpoint,
            store.bucket
        );
        Some(store)
    });
    // Before any request: a missing credential variable is a usage error.
    let store = s3
        .as_ref()
        .map(|s3| S3Client::from_location(s3, |var| std::env::var(var).ok()))
        .transpose()
        .map_err(|e| Error::InvalidValue(e.to_string()))?;
    let live = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Runtime(format!("cannot start the async runtime: {e}")))?
        .block_on(async {
            let client = crate::cluster::client(cluster).await?;
            read::read(&client, &args.storage_namespace, store).await
        })?;
    let opts = Options {
        name,
        prefix: args.credentials_env_prefix.clone(),
        unpack: args.unpack,
        s3,
        host_context: cluster.context.clone(),
        contexts: kubeconfig_contexts(cluster),
    };
    let export = render(&live, &opts);
    if !export.skipped.is_empty() {
        eprintln!("what the catalog cannot express (the export completes without it):");
        for s in &export.skipped {
            eprintln!("  {}: {}", s.object, s.reason);
        }
    }
    let changes = write_catalog(dir, &export.files, args.dry_run)?;
    for c in &changes {
        println!("{c}");
    }
    if args.dry_run {
        println!(
            "dry run: {} file(s) would change in {}; nothing written",
            changes.len(),
            dir.display()
        );
    } else {
        println!(
            "exported {} object file(s) into {} ({} changed)",
            export.files.len(),
            dir.display(),
            changes.len()
        );
    }
    if !export.variables.is_empty() {
        println!(
            "set these variables (with the values the store holds now) before validate, diff or apply:"
        );
        for v in &export.variables {
            println!("  {}  ({})", v.name, v.holds);
        }
    }
    if !args.dry_run {
        println!(
            "next: review it, `pitrix diff {0}` (only ownership should change), then `pitrix apply --adopt {0}`",
            dir.display()
        );
    }
    Ok(())
}
