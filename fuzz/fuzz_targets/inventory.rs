#![no_main]
//! The inventory ConfigMap decoder, and compile output read back as `apply --from` does
//! (`emit::render` → `Desired::from_output_dir`).
//! Input: `%%% cm/…`, `%%% object` and `%%% out/<path>` sections (see `fuzz_harness::inventory`).

#[allow(dead_code)]
#[path = "../../tests/integration/fuzz_harness/mod.rs"]
mod fuzz_harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_harness::inventory(data));
