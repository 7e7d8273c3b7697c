//! Fuzz target: `config.yaml` text through the config parser the binary loads it with.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| llmgate::fuzzing::config(data));
