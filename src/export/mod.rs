//! `pitrix export`: a live KubeSphere App Store as a catalog that compiles back to it.
//!
//! Reading needs list rights on the five App Store kinds and on ConfigMaps in the storage
//! namespace, nothing else ([`CLUSTER_ROLE`]). What was read is rendered by a pure function
//! ([`render::render`]), so exporting twice gives byte-identical files; the files are written
//! into a temporary directory beside DIR and moved into place at the end, so a failure leaves
//! no partial catalog. Secrets (repo credentials, secret-looking release values) are never
//! written: the catalog names environment variables instead, and export prints their names.

pub mod read;
pub mod render;
pub mod write;

use std::path::PathBuf;
use std::process::ExitCode;

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

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The catalog directory to write: new, empty, or a catalog of the same name.
    #[arg(required_unless_present = "print_cluster_role")]
    pub dir: Option<PathBuf>,
    /// kubeconfig file (default: $KUBECONFIG, ~/.kube/config, then in-cluster).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// kubeconfig context of the host cluster (the one holding the App Store).
    #[arg(long)]
    pub context: Option<String>,
    /// The catalog's name (default: that of DIR's pitrix.toml, else DIR's own name).
    #[arg(long)]
    pub name: Option<String>,
    /// Prefix of the environment variables that replace repo credentials and secret-looking
    /// release values (`<PREFIX>_<REPO>_USERNAME`, `<PREFIX>_<RELEASE>_<KEY>`…).
    #[arg(long, value_name = "PREFIX", default_value = "PITRIX")]
    pub credentials_env_prefix: String,
    /// Namespace of KubeSphere's package storage.
    #[arg(long, default_value = crate::objects::labels::STORAGE_NAMESPACE)]
    pub storage_namespace: String,
    /// Write each package as a chart directory (apps/<app>/<version>/) where re-packing it
    /// loses nothing (pitrix's packer gives the same files back); else as the stored .tgz.
    #[arg(long)]
    pub unpack: bool,
    /// Show which files would change; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the read-only ClusterRole export needs, and exit.
    #[arg(long, exclusive = true)]
    pub print_cluster_role: bool,
}

/// The catalog name: `--name`, else DIR's pitrix.toml's, else DIR's own name.
fn catalog_name(args: &ExportArgs) -> Result<String, String> {
    if let Some(n) = &args.name {
        crate::names::dns1123_label(n).map_err(|why| format!("--name {n}: {why}"))?;
        return Ok(n.clone());
    }
    if let Some(n) = write::existing_name(dir(args)) {
        return Ok(n);
    }
    crate::scaffold::name_for(dir(args))
}

fn dir(args: &ExportArgs) -> &std::path::Path {
    args.dir.as_deref().unwrap_or(std::path::Path::new("."))
}

/// `pitrix export`.
pub fn main(args: ExportArgs) -> Result<ExitCode, String> {
    if args.print_cluster_role {
        print!("{CLUSTER_ROLE}");
        return Ok(ExitCode::SUCCESS);
    }
    let name = catalog_name(&args)?;
    let dir = dir(&args);
    write::check_target(dir, &name)?;
    let cluster = crate::cluster::ClusterOptions {
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
        member_kubeconfig: None,
    };
    let live = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?
        .block_on(async {
            let client = crate::cluster::client(&cluster).await?;
            read::read(&client, &args.storage_namespace).await
        })?;
    let opts = Options {
        name,
        prefix: args.credentials_env_prefix.clone(),
        unpack: args.unpack,
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
    Ok(ExitCode::SUCCESS)
}
