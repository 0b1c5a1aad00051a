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
use crate::error::Error;

pub use app::attachment_id;
pub use object::{Object, StatusIntent, Stored};
pub(crate) use release::manifests_in_namespace;

/// What a catalog compiles to: its objects ([`Object`]s, or what [`compile_each`] made of each).
#[derive(Debug, Clone)]
pub struct Compiled<T = Object> {
    /// The catalog's name, which labels every object.
    pub catalog: String,
    /// In apply order (dependencies first), then by namespace and name.
    pub objects: Vec<T>,
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

/// The objects and review states of one part of a catalog: what apps share, one app, the
/// releases.
#[derive(Debug, Default)]
pub(crate) struct Part {
    pub objects: Vec<Object>,
    pub status: Vec<StatusIntent>,
}

/// An object's place in apply order, owned (the object itself is handed on).
type Place = (u8, Option<String>, String);

/// A part's objects, each with its place, and its review states.
type Placed<T> = (Vec<(Place, T)>, Vec<StatusIntent>);

/// Compiles a catalog that validated without errors. It fails only when a spooled package
/// cannot be read back.
pub fn compile(catalog: &Catalog) -> Result<Compiled, Error> {
    compile_each(catalog, Ok)
}

/// [`compile`], handing each object to `each` as soon as it is made, in parallel, and keeping
/// what `each` returns: a controller stores each body and keeps a handle, so that no more
/// than a few apps' packages are in memory at once.
pub fn compile_each<T: Send>(
    catalog: &Catalog,
    each: impl Fn(Object) -> Result<T, Error> + Sync,
) -> Result<Compiled<T>, Error> {
    let name = catalog.settings.catalog.name.get_ref().clone();
    let meta = meta::MetaFactory::new(&name);
    let v3 = catalog.settings.target() == crate::catalog::Target::KubesphereV3;
    let standalone = (!v3).then(|| executor::Standalone::of(catalog)).flatten();
    let placed = |part: Part| -> Result<Placed<T>, Error> {
        let objects = part
            .objects
            .into_iter()
            .map(|o| {
                let (stage, namespace, name) = o.sort_key();
                let place = (stage, namespace.map(str::to_string), name.to_string());
                Ok((place, each(o)?))
            })
            .collect::<Result<_, Error>>()?;
        Ok((objects, part.status))
    };
    let shared = if v3 {
        v3::shared(catalog, &meta)
    } else {
        let mut objects: Vec<Object> = store::storage_namespace(catalog, &meta)
            .into_iter()
            .collect();
        objects.extend(store::categories(catalog, &meta));
        objects.extend(store::repos(catalog, &meta));
        Part {
            objects,
            status: Vec::new(),
        }
    };
    let mut parts = vec![placed(shared)?];
    // In parallel: each app copies its packages into storage objects.
    let apps = catalog
        .apps
        .par_iter()
        .map(|a| match v3 {
            true => v3::app(catalog, a, &meta),
            false => app::compile_app(catalog, a, &meta),
        })
        .map(|part| placed(part?))
        .collect::<Result<Vec<_>, Error>>()?;
    parts.extend(apps);
    let releases = match v3 {
        true => v3::releases(catalog, &meta),
        false => releases(catalog, &meta, standalone.as_ref())?,
    };
    parts.push(placed(releases)?);

    let (mut objects, mut status): (Vec<(Place, T)>, Vec<StatusIntent>) = (Vec::new(), Vec::new());
    for (o, s) in parts {
        objects.extend(o);
        status.extend(s);
    }
    objects.sort_by(|a, b| a.0.cmp(&b.0));
    status.sort_by(|a, b| (a.order(), &a.name).cmp(&(b.order(), &b.name)));
    Ok(Compiled {
        catalog: name,
        objects: objects.into_iter().map(|(_, o)| o).collect(),
        status,
        standalone,
        environment: catalog.environment.clone(),
        contexts: catalog.cluster_contexts(),
        status_image: (!v3)
            .then_some(catalog.settings.catalog.status_image.as_ref())
            .flatten()
            .map(|i| i.get_ref().clone()),
        object_store: object_store(catalog),
    })
}

/// KubeSphere 4's releases, and with the `standalone` target the executor Job and ConfigMap
/// of each.
fn releases(
    catalog: &Catalog,
    meta: &meta::MetaFactory,
    standalone: Option<&executor::Standalone>,
) -> Result<Part, Error> {
    let mut objects = Vec::new();
    for r in &catalog.releases {
        let release = release::compile_release(catalog, r, meta)?;
        if let Some(standalone) = standalone
            && let Object::ApplicationRelease(ar) = &release
            && let Some(payload) = release::executor_payload(catalog, r)?
            // Validation reported any template error; a valid catalog renders.
            && let Ok((job, config_map)) = standalone.install(r, &ar.spec, payload, meta)
        {
            objects.push(Object::ConfigMap(config_map));
            objects.push(Object::Job(Box::new(job)));
        }
        objects.push(release);
    }
    Ok(Part {
        objects,
        status: Vec::new(),
    })
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
        let (release, payload) = match (
            release::compile_release(catalog, r, &meta),
            release::executor_payload(catalog, r),
        ) {
            (Ok(release), Ok(payload)) => (release, payload),
            (Err(e), _) | (_, Err(e)) => {
                problems.push(crate::catalog::spool_error(&e, Some(&r.file)));
                continue;
            }
        };
        let Object::ApplicationRelease(ar) = release else {
            continue;
        };
        if let Some(payload) = payload
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
