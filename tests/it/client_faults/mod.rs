//! Client faults, one file per class: slow clients, oversized requests, clients that hang up.

mod disconnect;
mod oversized;
mod slowloris;

use crate::support::MockUpstream;

/// One model group `g` on `mock`, no retries, with `general` as `general_settings`.
fn config(mock: &MockUpstream, general: &str) -> String {
    format!(
        "model_list:\n  - model_name: g\n    litellm_params: {{model: openai/m, api_base: '{}'}}\nlitellm_settings: {{num_retries: 0}}\ngeneral_settings: {{{general}}}\n",
        mock.v1()
    )
}

/// A small chat body, as bytes.
fn chat_bytes(stream: bool) -> Vec<u8> {
    let mut body = crate::support::chat_body("g");
    body["stream"] = stream.into();
    serde_json::to_vec(&body).unwrap()
}

/// Asserts `body` is the contract's error body for `status` and `kind`.
fn assert_error(body: &serde_json::Value, status: u16, kind: &str) {
    crate::support::assert_error_body(body, status, kind);
}
