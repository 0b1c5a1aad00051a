//! Stage 3, compile: a valid catalog into the typed objects KubeSphere's controllers consume
//! (reference §10 B), plus the review states the applier writes to the status subresource.
//! Pure and deterministic: no clock, no environment, sorted everywhere.

mod app;
pub mod executor;
mod meta;
mod object;
mod release;
pub mod size;
mod store;
pub mod v3;

use std::collections::BTreeMap;

use rayon::prelude::*;

use crate::catalog::Catalog;

pub use app::attachment_id;
pub use object::{Object, StatusIntent, Stored};
pub(crate) use release::manifests_in_namespace;

/// What a catalog compiles to.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// The catalog's name, which labels every object.
    pub catalog: String,
    /// In apply order (dependencies first), then by namespace and name.
    pub objects: Vec<Object>,
    /// Desired review states, written through `/status` after the objects are applied.
    pub status: Vec<StatusIntent>,
    /// Set for the `standalone` target: pitrix runs the Helm executor Jobs itself.
    pub standalone: Option<executor::Standalone>,
    /// The environment (`--env`) it was built for.
    pub environment: Option<String>,
    /// The kubeconfig context of each catalog cluster that names one (apply's routing).
    pub contexts: BTreeMap<String, String>,
    /// The status Job's image for Argo CD and Flux (pitrix.toml `statusImage`), when set.
    pub status_image: Option<String>,
    /// Where the S3 objects go (pitrix.toml `[storage.s3]`).
    pub object_store: Option<crate::catalog::S3Location>,
}

/// Compiles a catalog that validated without errors.
pub fn compile(catalog: &Catalog) -> Compiled {
    let name = catalog.settings.catalog.name.get_ref().clone();
    let meta = meta::MetaFactory::new(&name);
    let mut objects = Vec::new();
    let mut status = Vec::new();

    if catalog.settings.target() == crate::catalog::Target::KubesphereV3 {
        (objects, status) = v3::compile(catalog, &meta);
        objects.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        status.sort_by(|a, b| (a.order(), &a.name).cmp(&(b.order(), &b.name)));
        return Compiled {
            catalog: name,
            objects,
            status,
            standalone: None,
            environment: catalog.environment.clone(),
            contexts: catalog.cluster_contexts(),
            status_image: None,
            object_store: object_store(catalog),
        };
    }
    objects.extend(store::storage_namespace(catalog, &meta));
    objects.extend(store::categories(catalog, &meta));
    objects.extend(store::repos(catalog, &meta));
    // In parallel: each app copies its packages into storage ConfigMaps.
    let apps: Vec<app::CompiledApp> = catalog
        .apps
        .par_iter()
        .map(|a| app::compile_app(catalog, a, &meta))
        .collect();
    for compiled in apps {
        objects.extend(compiled.objects);
        status.extend(compiled.status);
    }
    let standalone = executor::Standalone::of(catalog);
    for r in &catalog.releases {
        let release = release::compile_release(catalog, r, &meta);
        if let Some(standalone) = &standalone
            && let Object::ApplicationRelease(ar) = &release
            && let Some(payload) = release::executor_payload(catalog, r)
            // Validation reported any template error; a valid catalog renders.
            && let Ok((job, config_map)) = standalone.install(r, &ar.spec, payload, &meta)
        {
            objects.push(Object::ConfigMap(config_map));
            objects.push(Object::Job(Box::new(job)));
        }
        objects.push(release);
    }

    objects.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    status.sort_by(|a, b| (a.order(), &a.name).cmp(&(b.order(), &b.name)));
    Compiled {
        catalog: name,
        objects,
        status,
        standalone,
        environment: catalog.environment.clone(),
        contexts: catalog.cluster_contexts(),
        status_image: catalog
            .settings
            .catalog
            .status_image
            .as_ref()
            .map(|i| i.get_ref().clone()),
        object_store: object_store(catalog),
    }
}

fn object_store(catalog: &Catalog) -> Option<crate::catalog::S3Location> {
    catalog.settings.storage.s3.as_ref().map(|s| s.location())
}

/// For the `standalone` target: why a release cannot get its executor Job — a synced-repo
/// chart pitrix does not hold, or an executor template that does not give a valid Job.
/// Validation reports these, so that a catalog that validates compiles completely.
pub fn standalone_problems(catalog: &Catalog) -> Vec<crate::diagnostics::Diagnostic> {
    use crate::catalog::AppRef;
    use crate::diagnostics::{Code, Diagnostic};
    let Some(standalone) = executor::Standalone::of(catalog) else {
        return Vec::new();
    };
    let meta = meta::MetaFactory::new(catalog.settings.catalog.name.get_ref());
    let mut problems = Vec::new();
    for r in &catalog.releases {
        if let AppRef::Repo { repo, chart } = r.app_ref() {
            problems.push(
                Diagnostic::error(
                    Code::Standalone,
                    format!("release `{}` installs `{repo}/{chart}`, whose chart the standalone target does not hold", r.name),
                )
                .in_file(&r.file)
                .at(r.spec.app.pos)
                .hint("import the chart into the catalog (`pitrix import`), or use target `kubesphere`, whose controllers fetch it"),
            );
            continue;
        }
        let Object::ApplicationRelease(ar) = release::compile_release(catalog, r, &meta) else {
            continue;
        };
        if let Some(payload) = release::executor_payload(catalog, r)
            && let Err(d) = standalone.install(r, &ar.spec, payload, &meta)
        {
            problems.push(d);
        }
        // The template's uninstall branch too: it runs when the release is long gone.
        if let Err(d) = standalone.uninstall(catalog.settings.catalog.name.get_ref(), &ar) {
            problems.push(d);
        }
    }
    problems.sort_by(|a, b| (&a.file, a.pos, &a.message).cmp(&(&b.file, b.pos, &b.message)));
    problems.dedup();
    problems
}
