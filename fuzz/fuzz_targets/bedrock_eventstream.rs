//! Fuzz target: Bedrock's binary event stream, cut into arbitrary reads, through the frame
//! decoder and the ConverseStream translator.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| llmgate::fuzzing::bedrock_eventstream(data));
