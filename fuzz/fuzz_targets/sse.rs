//! Fuzz target: an upstream stream, cut into arbitrary reads, through the stream relay and each
//! provider's chunk translator, then the `/v1/messages` event rewriter.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    llmgate::fuzzing::sse(data);
});
