//! Where packages and icons are stored outside the cluster: an S3-compatible object store
//! (`[storage.s3]` of pitrix.toml). KubeSphere 3.x keeps every uploaded package and icon there
//! (MinIO in a default install); KubeSphere 4.x reads packages from it when it is configured.

pub mod s3;
mod sigv4;

pub use s3::{PutOutcome, S3Client, S3Error, StoredObject};
