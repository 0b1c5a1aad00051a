//! `Category` (`categories.application.kubesphere.io`, reference §1.5): an App Store category.
//! Its display name and description live in the [`ALIAS_NAME`](super::labels::ALIAS_NAME) and
//! [`DESCRIPTION`](super::labels::DESCRIPTION) annotations.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::schema;

/// CategorySpec is the desired state of a Category.
#[derive(
    CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema,
)]
#[kube(
    group = "application.kubesphere.io",
    version = "v2",
    kind = "Category",
    plural = "categories",
    singular = "category",
    shortname = "appctg",
    status = "CategoryStatus",
    schema = "manual",
    derive = "PartialEq",
    printcolumn(name = "total", type_ = "string", json_path = ".status.total"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = schema::structural)]
pub struct CategorySpec {
    /// Icon name from the console's fixed icon set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
}

/// CategoryStatus is maintained by the category controller.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = schema::structural)]
pub struct CategoryStatus {
    /// Number of Applications in the category. Required whenever status is written.
    #[schemars(schema_with = "schema::integer")]
    pub total: i64,
}

schema::root_schema!(
    Category,
    CategorySpec,
    CategoryStatus,
    "Category is an App Store category."
);
