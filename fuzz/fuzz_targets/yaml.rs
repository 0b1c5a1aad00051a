#![no_main]
//! `pitrix::yaml::parse` / `parse_stream` and `from_node` into the catalog file types.
//! Input: YAML text.

#[allow(dead_code)]
#[path = "../../tests/integration/fuzz_harness/mod.rs"]
mod fuzz_harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_harness::yaml(data));
