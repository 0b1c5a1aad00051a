#![no_main]
//! Kubeconfig files through `pitrix::apply::client` (made safe: no exec plugins, commands or
//! file references), connecting to nothing: no panic, no planted credential in an error.
//! Input: a kubeconfig (YAML) (see `fuzz_harness::kubeconfig`).

#[allow(dead_code)]
#[path = "../../tests/integration/fuzz_harness/mod.rs"]
mod fuzz_harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_harness::kubeconfig(data));
