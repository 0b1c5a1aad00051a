//! pitrix: the KubeSphere App Store as code.
//!
//! The pipeline, one module per stage, data flowing one way:
//! [`load`] (walk + parse into a typed [`catalog`]) → [`validate`] (rules → [`diagnostics`]) →
//! [`compile`] (catalog → typed [`objects`]) → [`emit`] (files, inventory).

pub mod apply;
pub mod catalog;
pub mod chart;
pub mod cluster;
pub mod compile;
pub mod confine;
pub mod diagnostics;
pub mod diff;
pub mod duration;
pub mod emit;
pub mod error;
pub mod export;
pub mod git;
pub mod gitops;
pub mod import;
pub mod load;
pub mod lock;
pub mod names;
pub mod objects;
pub mod pipeline;
pub mod publish;
pub mod reconcile;
pub mod redact;
pub mod repo;
pub mod scaffold;
pub mod schema;
pub mod site;
pub mod storage;
pub mod template;
pub mod validate;
pub mod yaml;

pub use error::Error;
