//! Typed KubeSphere 4.x App Store objects (`application.kubesphere.io/v2`) and their CRDs.
//!
//! Each kind is a kube-derive [`CustomResource`](kube::CustomResource): cluster-scoped, one
//! served+storage version `v2`, status subresource on. Schemas are generated from the Rust types
//! and shaped like KubeSphere's own (controller-gen) CRDs: same properties, types, formats and
//! required lists, no `nullable`, no `$ref`, no `anyOf`.
//!
//! Optional fields are `Option`/`Vec` and are left out of the JSON when unset, so emitted
//! objects are minimal and deterministic. Struct fields are declared in the order of
//! KubeSphere's Go types, which fixes the JSON key order.
//!
//! Take CRDs from [`crds`], not from `Kind::crd()`: only [`crds`] adds `listKind` and drops the
//! root `title` that schemars inserts.

pub mod application;
pub mod category;
pub mod labels;
pub mod release;
pub mod repo;
mod schema;
pub mod states;
pub mod v1alpha1;
pub mod version;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{CustomResourceExt, Resource};

pub use application::{Application, ApplicationSpec, ApplicationStatus, GroupVersionResource};
pub use category::{Category, CategorySpec, CategoryStatus};
pub use release::{ApplicationRelease, ApplicationReleaseSpec, ApplicationReleaseStatus};
pub use repo::{Repo, RepoCredential, RepoSpec, RepoStatus};
pub use states::{AppType, ParseStateError, ReleaseState, RepoState, ReviewState};
pub use version::{
    ApplicationVersion, ApplicationVersionSpec, ApplicationVersionStatus, Maintainer,
};

/// API group of every App Store kind.
pub const GROUP: &str = "application.kubesphere.io";

/// The only version of the group.
pub const VERSION: &str = "v2";

/// `apiVersion` of every App Store object.
pub const API_VERSION: &str = "application.kubesphere.io/v2";

/// The five CRDs, in a fixed order: categories, repos, applications, applicationversions,
/// applicationreleases (each kind before the kinds that refer to it).
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![
        crd::<Category>(),
        crd::<Repo>(),
        crd::<Application>(),
        crd::<ApplicationVersion>(),
        crd::<ApplicationRelease>(),
    ]
}

/// [`crds`] as one YAML stream: each document starts with `---`. Deterministic.
pub fn crds_yaml() -> String {
    let mut out = String::new();
    for crd in crds() {
        out.push_str("---\n");
        // A CRD is plain data (strings, maps, sequences); serialising it cannot fail.
        out.push_str(&serde_yaml::to_string(&crd).expect("a CRD serialises to YAML"));
    }
    out
}

/// kube-derive's CRD plus what its attributes cannot express: `listKind`, and no root `title`
/// (schemars adds one; controller-gen does not).
fn crd<K: CustomResourceExt + Resource<DynamicType = ()>>() -> CustomResourceDefinition {
    let mut crd = K::crd();
    crd.spec.names.list_kind = Some(format!("{}List", K::kind(&())));
    for version in &mut crd.spec.versions {
        if let Some(root) = version
            .schema
            .as_mut()
            .and_then(|v| v.open_api_v3_schema.as_mut())
        {
            root.title = None;
        }
    }
    crd
}

#[cfg(test)]
mod tests;
