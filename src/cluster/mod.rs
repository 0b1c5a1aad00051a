//! The cluster layer: clients for the host and member clusters, retries and error text, the
//! kind table, object identities, and Leases. apply, live diff and reconcile talk to the API
//! server through it and through nothing of each other's.

mod client;
mod kind;
pub mod lease;
mod protobuf;

pub use client::{
    ClusterOptions, Clusters, api, api_as, api_resource, client, create_for_metadata, describe,
    is_not_found, is_transient, patch_status_for_metadata, retry,
};
pub(crate) use kind::member_cluster;
pub use kind::{KINDS, KindInfo, ObjectRef, WriteRules};
