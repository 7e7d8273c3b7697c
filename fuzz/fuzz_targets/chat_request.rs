//! Fuzz target: a chat, completion, embedding or `/v1/messages` body through the request
//! parsers, then every provider's request translation.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    llmgate::fuzzing::chat_request(data);
});
