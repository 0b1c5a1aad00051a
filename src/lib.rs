//! pitrix: the KubeSphere App Store as code.
//!
//! The pipeline, one module per stage, data flowing one way:
//! load → validate → compile → emit.
