//! Stage 3, compile: a valid catalog into the typed objects KubeSphere's controllers consume
//! (reference §10 B), plus the review states the applier writes to the status subresource.
//! Pure and deterministic: no clock, no environment, sorted everywhere.

mod app;
mod meta;
mod object;
mod release;
mod store;

use crate::catalog::Catalog;

pub use object::{KINDS, KindInfo, Object, ObjectRef, StatusIntent};

/// What a catalog compiles to.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// The catalog's name, which labels every object.
    pub catalog: String,
    /// In apply order (dependencies first), then by namespace and name.
    pub objects: Vec<Object>,
    /// Desired review states, written through `/status` after the objects are applied.
    pub status: Vec<StatusIntent>,
}

/// Compiles a catalog that validated without errors.
pub fn compile(catalog: &Catalog) -> Compiled {
    let name = catalog.settings.catalog.name.get_ref().clone();
    let meta = meta::MetaFactory::new(&name);
    let mut objects = Vec::new();
    let mut status = Vec::new();

    objects.extend(store::storage_namespace(catalog, &meta));
    objects.extend(store::categories(catalog, &meta));
    objects.extend(store::repos(catalog, &meta));
    for a in &catalog.apps {
        let compiled = app::compile_app(catalog, a, &meta);
        objects.extend(compiled.objects);
        status.extend(compiled.status);
    }
    for r in &catalog.releases {
        objects.push(release::compile_release(catalog, r, &meta));
    }

    objects.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    status.sort_by(|a, b| (a.order(), &a.name).cmp(&(b.order(), &b.name)));
    Compiled {
        catalog: name,
        objects,
        status,
    }
}
