//! Bedrock deployments end to end: OpenAI requests in, SigV4-signed Converse and InvokeModel
//! calls on the wire (checked at a mock that recomputes the signature with `aws-sigv4` and
//! answers from recorded fixtures, streams as binary event-stream frames), OpenAI replies out.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use actix_web::{web, HttpRequest, HttpResponse};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use bytes::Bytes;
use serde_json::{json, Value};

use crate::support::gateway::sse_events;
use crate::support::wire::fixture;
use crate::support::Gateway;

const KEY_ID: &str = "AKIDBEDROCKTEST";
const SECRET: &str = "bedrock-test-secret-canary";
const TOKEN: &str = "bedrock-session-canary";
const REGION: &str = "eu-west-3";
const MODEL: &str = "anthropic.claude-3-haiku-20240307-v1:0";

/// One call the mock received, and whether its signature matched.
#[derive(Debug, Clone)]
struct Call {
    path: String,
    body: Value,
    signed: bool,
    authorization: String,
}

#[derive(Default)]
struct Shared {
    calls: Mutex<Vec<Call>>,
}

struct BedrockMock {
    base: String,
    shared: Arc<Shared>,
}

impl BedrockMock {
    async fn start() -> Self {
        let shared = Arc::new(Shared::default());
        let base = crate::support::serve(shared.clone(), |c| {
            c.default_service(web::to(answer));
        });
        Self { base, shared }
    }

    fn calls(&self) -> Vec<Call> {
        self.shared.calls.lock().unwrap().clone()
    }
}

fn header<'r>(req: &'r HttpRequest, name: &str) -> &'r str {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// The `Authorization` header AWS would expect for this request, recomputed from what was
/// received: method, path, `host`, `content-type`, `x-amz-date`, the session token and body.
fn expected_authorization(req: &HttpRequest, body: &[u8]) -> Option<String> {
    let date =
        chrono::NaiveDateTime::parse_from_str(header(req, "x-amz-date"), "%Y%m%dT%H%M%SZ").ok()?;
    let time = SystemTime::UNIX_EPOCH + Duration::from_secs(date.and_utc().timestamp() as u64);
    let identity = Credentials::new(KEY_ID, SECRET, Some(TOKEN.to_owned()), None, "test").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name("bedrock")
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .ok()?
        .into();
    let host = header(req, "host");
    let url = format!("http://{host}{}", req.uri().path());
    let headers = [
        ("host", host),
        ("content-type", header(req, "content-type")),
    ];
    let request = SignableRequest::new(
        req.method().as_str(),
        url,
        headers.into_iter(),
        SignableBody::Bytes(body),
    )
    .ok()?;
    let (instructions, _) = sign(request, &params).ok()?.into_parts();
    let authorization = instructions
        .headers()
        .find(|(k, _)| *k == "authorization")
        .map(|(_, v)| v.to_owned());
    authorization
}

fn stream_frames() -> Vec<u8> {
    let case: Value = serde_json::from_str(&fixture("bedrock/stream_tool_use.json")).unwrap();
    let mut out = Vec::new();
    for e in case["events"].as_array().unwrap() {
        let message = Message::new(serde_json::to_vec(&e[1]).unwrap())
            .add_header(Header::new(
                ":event-type",
                HeaderValue::String(e[0].as_str().unwrap().to_owned().into()),
            ))
            .add_header(Header::new(
                ":message-type",
                HeaderValue::String("event".into()),
            ))
            .add_header(Header::new(
                ":content-type",
                HeaderValue::String("application/json".into()),
            ));
        aws_smithy_eventstream::frame::write_message_to(&message, &mut out).unwrap();
    }
    out
}

async fn answer(req: HttpRequest, body: Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let authorization = header(&req, "authorization").to_owned();
    let signed = header(&req, "x-amz-security-token") == TOKEN
        && expected_authorization(&req, &body).as_deref() == Some(authorization.as_str());
    let path = req.uri().path().to_owned();
    shared.calls.lock().unwrap().push(Call {
        path: path.clone(),
        body: serde_json::from_slice(&body).unwrap_or_default(),
        signed,
        authorization,
    });
    if !signed {
        return HttpResponse::Forbidden().json(json!({"message": "The request signature we calculated does not match the signature you provided."}));
    }
    if path.ends_with("/converse-stream") {
        // Frames split across writes, as the network may deliver them.
        let pieces: Vec<Result<Bytes, actix_web::Error>> = stream_frames()
            .chunks(37)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        return HttpResponse::Ok()
            .content_type("application/vnd.amazon.eventstream")
            .streaming(futures_util::stream::iter(pieces));
    }
    if path.ends_with("/converse") {
        let case: Value = serde_json::from_str(&fixture("bedrock/reply_tool_use.json")).unwrap();
        return HttpResponse::Ok().json(&case["bedrock"]);
    }
    if path.ends_with("/invoke") {
        let text = serde_json::from_slice::<Value>(&body).unwrap_or_default()["inputText"]
            .as_str()
            .map_or(0, str::len);
        return HttpResponse::Ok()
            .json(json!({"embedding": [0.5, -0.25, text as f64], "inputTextTokenCount": 2}));
    }
    HttpResponse::NotFound().finish()
}

fn config(base: &str) -> String {
    format!(
        "model_list:
  - model_name: haiku
    litellm_params:
      model: bedrock/converse/{MODEL}
      aws_bedrock_runtime_endpoint: '{base}'
      aws_access_key_id: {KEY_ID}
      aws_secret_access_key: {SECRET}
      aws_session_token: {TOKEN}
      aws_region_name: {REGION}
  - model_name: titan
    litellm_params:
      model: bedrock/amazon.titan-embed-text-v2:0
      api_base: '{base}'
      aws_access_key_id: {KEY_ID}
      aws_secret_access_key: {SECRET}
      aws_session_token: {TOKEN}
      aws_region_name: {REGION}
"
    )
}

fn weather_request() -> Value {
    json!({
        "model": "haiku",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather in Paris?"}
        ],
        "max_tokens": 50,
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
    })
}

#[actix_rt::test]
async fn a_chat_request_is_a_signed_converse_call_and_comes_back_in_openai_shape() {
    let mock = BedrockMock::start().await;
    let gw = Gateway::start(&config(&mock.base)).await;

    let r = gw
        .post("/v1/chat/completions", None, &weather_request())
        .await;

    assert_eq!(r.status, 200, "{}", r.text);
    let got = r.json();
    let message = &got["choices"][0]["message"];
    assert_eq!(message["content"], "Let me check the weather.");
    assert_eq!(
        message["tool_calls"][0]["id"],
        "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q"
    );
    assert_eq!(
        message["tool_calls"][0]["function"]["arguments"],
        r#"{"city":"Paris"}"#
    );
    assert_eq!(got["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(got["usage"]["prompt_tokens"], 412);
    let call = &mock.calls()[0];
    assert!(call.signed, "signature mismatch: {}", call.authorization);
    assert!(call
        .authorization
        .starts_with(&format!("AWS4-HMAC-SHA256 Credential={KEY_ID}/")));
    assert!(call
        .authorization
        .contains("/eu-west-3/bedrock/aws4_request"));
    assert_eq!(
        call.path,
        "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"
    );
    assert_eq!(
        call.body,
        json!({
            "messages": [{"role": "user", "content": [{"text": "Weather in Paris?"}]}],
            "system": [{"text": "Be brief."}],
            "inferenceConfig": {"maxTokens": 50},
            "toolConfig": {"tools": [{"toolSpec": {"name": "get_weather", "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}}}}}}]},
        })
    );

    for path in ["/model/info", "/v1/model/info"] {
        let info = gw.get(path, None).await;
        assert!(!info.text.contains("canary"), "{}", info.text);
    }
}

#[actix_rt::test]
async fn a_stream_decodes_event_stream_frames_into_chunks_and_usage() {
    let mock = BedrockMock::start().await;
    let gw = Gateway::start(&config(&mock.base)).await;
    let mut body = weather_request();
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});

    let r = gw.post("/v1/chat/completions", None, &body).await;

    assert_eq!(r.status, 200, "{}", r.text);
    let call = &mock.calls()[0];
    assert!(call.signed, "signature mismatch: {}", call.authorization);
    assert_eq!(
        call.path,
        "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream"
    );
    let events = sse_events(&r.text);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Let me check.");
    let arguments: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    assert_eq!(arguments, r#"{"city": "Paris"}"#);
    assert!(chunks
        .iter()
        .any(|c| c["choices"][0]["delta"]["tool_calls"][0]["id"] == "tooluse_Qx1"));
    assert!(chunks
        .iter()
        .any(|c| c["choices"][0]["finish_reason"] == "tool_calls"));
    assert_eq!(chunks.last().unwrap()["usage"]["total_tokens"], 469);
}

#[actix_rt::test]
async fn titan_embeddings_are_one_signed_invoke_call_per_input() {
    let mock = BedrockMock::start().await;
    let gw = Gateway::start(&config(&mock.base)).await;

    let r = gw
        .post(
            "/v1/embeddings",
            None,
            &json!({"model": "titan", "input": ["hello world", "hi"]}),
        )
        .await;

    assert_eq!(r.status, 200, "{}", r.text);
    let got = r.json();
    assert_eq!(got["object"], "list");
    assert_eq!(got["data"][0]["embedding"], json!([0.5, -0.25, 11.0]));
    assert_eq!(got["data"][1]["index"], 1);
    assert_eq!(got["data"][1]["embedding"], json!([0.5, -0.25, 2.0]));
    assert_eq!(got["usage"]["prompt_tokens"], 4);
    let calls = mock.calls();
    assert_eq!(calls.len(), 2);
    for (call, text) in calls.iter().zip(["hello world", "hi"]) {
        assert!(call.signed, "signature mismatch: {}", call.authorization);
        assert_eq!(call.path, "/model/amazon.titan-embed-text-v2%3A0/invoke");
        assert_eq!(call.body, json!({ "inputText": text }));
    }
}

#[actix_rt::test]
async fn unsupported_parameters_are_refused_before_any_call() {
    let mock = BedrockMock::start().await;
    let gw = Gateway::start(&config(&mock.base)).await;
    let mut body = weather_request();
    body["logit_bias"] = json!({"1": 2});

    let r = gw.post("/v1/chat/completions", None, &body).await;

    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.json()["error"]["param"], "logit_bias");
    assert!(mock.calls().is_empty());
}

#[actix_rt::test]
async fn a_wrong_secret_fails_the_signature_check_as_a_bedrock_error() {
    let mock = BedrockMock::start().await;
    let gw = Gateway::start(&config(&mock.base).replace(SECRET, "not-the-secret")).await;

    let r = gw
        .post("/v1/chat/completions", None, &weather_request())
        .await;

    assert_eq!(r.status, 403, "{}", r.text);
    let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("BedrockException - The request signature we calculated does not match"),
        "{message}"
    );
    assert!(!mock.calls()[0].signed);
}
