//! Vertex AI deployments end to end: a service account's signed JWT traded for an OAuth token
//! at a mock token endpoint, then Gemini and Anthropic wire formats at the same mock, checked
//! for path, token and body, with OpenAI replies and streams out.

use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Public};
use openssl::rsa::Rsa;
use openssl::sign::Verifier;
use serde_json::{json, Value};

use crate::support::gateway::sse_events;
use crate::support::wire::fixture;
use crate::support::Gateway;

const CLIENT_EMAIL: &str = "llmgate-it@proj-it.iam.gserviceaccount.com";

/// One call the mock saw at a Vertex endpoint.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    query: String,
    authorization: String,
    body: Value,
}

struct Shared {
    public_key: PKey<Public>,
    token_uri: Mutex<String>,
    token_status: AtomicU16,
    token_calls: AtomicUsize,
    /// Why a token request was refused, if the assertion was wrong.
    bad_assertions: Mutex<Vec<String>>,
    calls: Mutex<Vec<Seen>>,
}

/// The mock: Google's token endpoint at `/token`, Vertex's model endpoints everywhere else.
struct VertexMock {
    base: String,
    shared: Arc<Shared>,
    /// The service account key the gateway is configured with (JSON text).
    key_json: String,
}

impl VertexMock {
    async fn start() -> Self {
        let rsa = Rsa::generate(2048).unwrap();
        let pem = String::from_utf8(rsa.private_key_to_pem().unwrap()).unwrap();
        let shared = Arc::new(Shared {
            public_key: PKey::public_key_from_pem(&rsa.public_key_to_pem().unwrap()).unwrap(),
            token_uri: Mutex::new(String::new()),
            token_status: AtomicU16::new(200),
            token_calls: AtomicUsize::new(0),
            bad_assertions: Mutex::new(Vec::new()),
            calls: Mutex::new(Vec::new()),
        });
        let base = crate::support::serve(shared.clone(), |c| {
            c.route("/token", web::post().to(token))
                .default_service(web::to(vertex));
        });
        let token_uri = format!("{base}/token");
        shared.token_uri.lock().unwrap().clone_from(&token_uri);
        let key_json = json!({
            "type": "service_account",
            "project_id": "proj-from-key",
            "private_key_id": "k1",
            "private_key": pem,
            "client_email": CLIENT_EMAIL,
            "token_uri": token_uri,
        })
        .to_string();
        Self {
            base,
            shared,
            key_json,
        }
    }

    fn token_calls(&self) -> usize {
        self.shared.token_calls.load(Ordering::SeqCst)
    }

    fn calls(&self) -> Vec<Seen> {
        self.shared.calls.lock().unwrap().clone()
    }

    fn bad_assertions(&self) -> Vec<String> {
        self.shared.bad_assertions.lock().unwrap().clone()
    }

    /// A config with a Gemini, an Anthropic and an embedding deployment on this mock.
    fn config(&self) -> String {
        let params = format!(
            "api_base: '{}', vertex_project: proj-it, vertex_location: europe-west4, vertex_credentials: '{}'",
            self.base, self.key_json
        );
        format!(
            "model_list:\n  - model_name: flash\n    litellm_params: {{model: vertex_ai/gemini-2.5-flash, {params}}}\n  - model_name: claude\n    litellm_params: {{model: vertex_ai/claude-sonnet-4@20250514, {params}}}\n  - model_name: embed\n    litellm_params: {{model: vertex_ai/text-embedding-005, {params}}}\n"
        )
    }
}

/// Checks the JWT assertion (signature and claims) before answering with a token.
async fn token(
    form: web::Form<std::collections::HashMap<String, String>>,
    shared: web::Data<Shared>,
) -> HttpResponse {
    shared.token_calls.fetch_add(1, Ordering::SeqCst);
    // A slow endpoint, so that concurrent requests overlap while the token is fetched.
    actix_rt::time::sleep(Duration::from_millis(150)).await;
    if let Err(why) = check_assertion(&form, &shared) {
        shared.bad_assertions.lock().unwrap().push(why);
        return HttpResponse::BadRequest().json(json!({"error": "invalid_grant"}));
    }
    let status = shared.token_status.load(Ordering::SeqCst);
    if status != 200 {
        return HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).json(
            json!({"error": "invalid_grant", "error_description": "Invalid JWT Signature."}),
        );
    }
    HttpResponse::Ok()
        .json(json!({"access_token": "ya29.test", "expires_in": 3600, "token_type": "Bearer"}))
}

fn check_assertion(
    form: &std::collections::HashMap<String, String>,
    shared: &Shared,
) -> Result<(), String> {
    if form.get("grant_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    {
        return Err(format!("grant_type: {:?}", form.get("grant_type")));
    }
    let jwt = form.get("assertion").ok_or("no assertion")?;
    let parts: Vec<&str> = jwt.split('.').collect();
    let [header, claims, signature] = parts[..] else {
        return Err("not three parts".into());
    };
    let mut verifier = Verifier::new(MessageDigest::sha256(), &shared.public_key).unwrap();
    verifier
        .update(format!("{header}.{claims}").as_bytes())
        .unwrap();
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|e| e.to_string())?;
    if !verifier.verify(&signature).unwrap_or(false) {
        return Err("bad signature".into());
    }
    let decode = |p: &str| -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap_or_default()).unwrap_or_default()
    };
    if decode(header)["alg"] != "RS256" {
        return Err("not RS256".into());
    }
    let claims = decode(claims);
    let token_uri = shared.token_uri.lock().unwrap().clone();
    let iat = claims["iat"].as_u64().unwrap_or_default();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if claims["iss"] != CLIENT_EMAIL
        || claims["scope"] != "https://www.googleapis.com/auth/cloud-platform"
        || claims["aud"] != token_uri.as_str()
        || claims["exp"].as_u64() != Some(iat + 3600)
        || iat.abs_diff(now) > 60
    {
        return Err(format!("claims: {claims}"));
    }
    Ok(())
}

/// Answers Vertex's model methods with recorded Gemini and Anthropic replies, for the token
/// the token endpoint gave out.
async fn vertex(req: HttpRequest, body: Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let authorization = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let path = req.path().to_owned();
    shared.calls.lock().unwrap().push(Seen {
        path: path.clone(),
        query: req.query_string().to_owned(),
        authorization: authorization.clone(),
        body: serde_json::from_slice(&body).unwrap_or_default(),
    });
    if authorization != "Bearer ya29.test" {
        return HttpResponse::Unauthorized().json(json!({"error": {"code": 401, "message": "Request had invalid authentication credentials.", "status": "UNAUTHENTICATED"}}));
    }
    let sse = |text: String| {
        let events: Vec<Result<Bytes, actix_web::Error>> = text
            .split_inclusive("\n\n")
            .map(|e| Ok(Bytes::from(e.to_owned())))
            .collect();
        HttpResponse::Ok()
            .content_type("text/event-stream")
            .streaming(futures_util::stream::iter(events))
    };
    let json_fixture = |name: &str, side: &str| -> String {
        let case: Value = serde_json::from_str(&fixture(name)).unwrap();
        case[side].to_string()
    };
    let (_, method) = path.rsplit_once(':').unwrap_or_default();
    match method {
        "generateContent" => HttpResponse::Ok()
            .content_type("application/json")
            .body(json_fixture("gemini/reply_function_call.json", "gemini")),
        "streamGenerateContent" => sse(fixture("gemini/stream_function_call.sse")),
        "rawPredict" => HttpResponse::Ok()
            .content_type("application/json")
            .body(json_fixture("anthropic/reply_tool_use.json", "anthropic")),
        "streamRawPredict" => sse(fixture("anthropic/stream_tool_use.sse")),
        "predict" => HttpResponse::Ok().json(json!({"predictions": [
            {"embeddings": {"values": [0.5, -0.25], "statistics": {"token_count": 2, "truncated": false}}},
            {"embeddings": {"values": [1.0, 0.0], "statistics": {"token_count": 3, "truncated": false}}}
        ]})),
        _ => HttpResponse::NotFound().finish(),
    }
}

fn weather_request(model: &str) -> Value {
    json!({
        "model": model,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather in Paris?"}
        ],
        "max_tokens": 50,
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
    })
}

const MODELS: &str = "/v1/projects/proj-it/locations/europe-west4/publishers";

#[actix_rt::test]
async fn a_gemini_chat_goes_to_generate_content_with_a_service_account_token() {
    let mock = VertexMock::start().await;
    let gw = Gateway::start(&mock.config()).await;

    let r = gw
        .post("/v1/chat/completions", None, &weather_request("flash"))
        .await;

    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(mock.bad_assertions(), Vec::<String>::new());
    let got = r.json();
    let message = &got["choices"][0]["message"];
    assert_eq!(message["content"], "Let me check.");
    assert_eq!(message["tool_calls"][0]["function"]["name"], "get_weather");
    assert_eq!(got["usage"]["completion_tokens"], 65);
    let call = &mock.calls()[0];
    assert_eq!(
        call.path,
        format!("{MODELS}/google/models/gemini-2.5-flash:generateContent")
    );
    assert_eq!(call.authorization, "Bearer ya29.test");
    assert_eq!(
        call.body["systemInstruction"],
        json!({"parts": [{"text": "Be brief."}]})
    );
    assert_eq!(
        call.body["generationConfig"],
        json!({"maxOutputTokens": 50})
    );
}

#[actix_rt::test]
async fn a_gemini_stream_uses_stream_generate_content_and_ends_with_usage() {
    let mock = VertexMock::start().await;
    let gw = Gateway::start(&mock.config()).await;
    let mut body = weather_request("flash");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});

    let r = gw.post("/v1/chat/completions", None, &body).await;

    assert_eq!(r.status, 200, "{}", r.text);
    let call = &mock.calls()[0];
    assert_eq!(
        call.path,
        format!("{MODELS}/google/models/gemini-2.5-flash:streamGenerateContent")
    );
    assert_eq!(call.query, "alt=sse");
    assert_eq!(call.authorization, "Bearer ya29.test");
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
    assert_eq!(text, "The sky is clear.");
    assert_eq!(chunks.last().unwrap()["usage"]["total_tokens"], 26);
}

#[actix_rt::test]
async fn an_anthropic_model_goes_to_raw_predict_with_the_vertex_anthropic_version() {
    let mock = VertexMock::start().await;
    let gw = Gateway::start(&mock.config()).await;

    let r = gw
        .post("/v1/chat/completions", None, &weather_request("claude"))
        .await;

    assert_eq!(r.status, 200, "{}", r.text);
    let got = r.json();
    assert_eq!(
        got["choices"][0]["message"]["content"],
        "I'll look that up."
    );
    assert_eq!(got["choices"][0]["finish_reason"], "tool_calls");
    let call = &mock.calls()[0];
    assert_eq!(
        call.path,
        format!("{MODELS}/anthropic/models/claude-sonnet-4@20250514:rawPredict")
    );
    assert_eq!(call.authorization, "Bearer ya29.test");
    assert_eq!(call.body["anthropic_version"], "vertex-2023-10-16");
    assert!(call.body.get("model").is_none(), "{}", call.body);
    assert_eq!(call.body["max_tokens"], 50);
    assert_eq!(call.body["system"][0]["text"], "Be brief.");

    let mut body = weather_request("claude");
    body["stream"] = json!(true);
    let r = gw.post("/v1/chat/completions", None, &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        mock.calls()[1].path,
        format!("{MODELS}/anthropic/models/claude-sonnet-4@20250514:streamRawPredict")
    );
    assert_eq!(mock.calls()[1].body["stream"], true);
    let events = sse_events(&r.text);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    assert!(events.iter().any(|e| e.contains("\"tool_calls\"")));
}

#[actix_rt::test]
async fn embeddings_use_predict_and_report_the_counted_tokens() {
    let mock = VertexMock::start().await;
    let gw = Gateway::start(&mock.config()).await;

    let r = gw
        .post(
            "/v1/embeddings",
            None,
            &json!({"model": "embed", "input": ["hello", "world"]}),
        )
        .await;

    assert_eq!(r.status, 200, "{}", r.text);
    let got = r.json();
    assert_eq!(got["data"][0]["embedding"], json!([0.5, -0.25]));
    assert_eq!(got["data"][1]["index"], 1);
    assert_eq!(got["usage"]["prompt_tokens"], 5);
    let call = &mock.calls()[0];
    assert_eq!(
        call.path,
        format!("{MODELS}/google/models/text-embedding-005:predict")
    );
    assert_eq!(
        call.body,
        json!({"instances": [{"content": "hello"}, {"content": "world"}]})
    );
}

#[actix_rt::test]
async fn concurrent_requests_share_one_token_fetch() {
    let mock = VertexMock::start().await;
    let gw = Gateway::start(&mock.config()).await;
    let body = weather_request("flash");

    let replies = futures_util::future::join_all(
        (0..6).map(|_| gw.post("/v1/chat/completions", None, &body)),
    )
    .await;
    let later = gw
        .post("/v1/chat/completions", None, &weather_request("claude"))
        .await;

    for r in replies.iter().chain([&later]) {
        assert_eq!(r.status, 200, "{}", r.text);
    }
    assert_eq!(mock.token_calls(), 1);
    assert_eq!(mock.calls().len(), 7);
}

#[actix_rt::test]
async fn a_refused_token_request_is_a_clean_401_that_reveals_no_key() {
    let mock = VertexMock::start().await;
    mock.shared.token_status.store(400, Ordering::SeqCst);
    let gw = Gateway::start(&mock.config()).await;

    let r = gw
        .post("/v1/chat/completions", None, &weather_request("flash"))
        .await;

    assert_eq!(r.status, 401, "{}", r.text);
    let error = &r.json()["error"];
    let message = error["message"].as_str().unwrap();
    assert!(
        message.starts_with("litellm.AuthenticationError: VertexAIException - "),
        "{message}"
    );
    assert!(
        message.contains("invalid_grant: Invalid JWT Signature."),
        "{message}"
    );
    assert!(!r.text.contains("PRIVATE KEY") && !r.text.contains("assertion"));
    assert!(mock.calls().is_empty(), "no model call without a token");
}
