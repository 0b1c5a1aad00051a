#![no_main]
//! Release values templates (minijinja) through `pitrix::load::load`: every template must
//! finish (libFuzzer's `-timeout` reports one that does not) without a panic.
//! Input: a template, used as an inline value and as a `.j2` values file (see `fuzz_harness::values_template`).

#[allow(dead_code)]
#[path = "../../tests/integration/fuzz_harness/mod.rs"]
mod fuzz_harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_harness::values_template(data));
