//! Logging callbacks: Langfuse and a generic webhook hear of each request (successes and
//! failures, prompts only when allowed, never a secret), and a dead receiver slows nothing.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use llmgate::config::{CliOverrides, Settings};
use serde_json::{json, Value};

use crate::support::binary::free_port;
use crate::support::upstream::Recorded;
use crate::support::{chat_body, eventually, Behavior, Gateway, MockUpstream};

const MASTER: &str = "sk-master-CALLBACKCANARY";
const PROVIDER_KEY: &str = "sk-provider-CALLBACKCANARY";
const PROMPT: &str = "hello there";
const REPLY: &str = "mock says hi";

/// A receiver on a random port that records every request and answers 200.
struct Receiver {
    base: String,
    calls: Arc<Mutex<Vec<Recorded>>>,
}

impl Receiver {
    async fn start() -> Self {
        let calls: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let base = crate::support::serve(calls.clone(), |c| {
            c.default_service(web::to(record));
        });
        Self { base, calls }
    }

    fn calls(&self) -> Vec<Recorded> {
        self.calls.lock().unwrap().clone()
    }

    /// Every Langfuse ingestion event received, in order.
    fn langfuse_events(&self) -> Vec<Value> {
        self.calls()
            .iter()
            .flat_map(|c| c.body["batch"].as_array().cloned().unwrap_or_default())
            .collect()
    }

    /// Every generic payload received, in order.
    fn payloads(&self) -> Vec<Value> {
        self.calls()
            .iter()
            .flat_map(|c| c.body.as_array().cloned().unwrap_or_default())
            .collect()
    }

    /// Everything received, as text.
    fn text(&self) -> String {
        self.calls()
            .iter()
            .map(|c| c.body.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

async fn record(
    req: HttpRequest,
    body: Bytes,
    calls: web::Data<Mutex<Vec<Recorded>>>,
) -> HttpResponse {
    calls.lock().unwrap().push(Recorded {
        path: req.path().to_owned(),
        query: req.query_string().to_owned(),
        headers: req
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
            .collect(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    HttpResponse::Ok().json(json!({"ok": true}))
}

/// A port that accepts connections and never answers on them.
fn silent_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    port
}

/// One priced deployment on `mock`, a master key, and `extra` YAML after `litellm_settings:`.
fn config(mock: &MockUpstream, litellm: &str, env: &[(&str, String)]) -> String {
    let env: String = env.iter().map(|(k, v)| format!("  {k}: '{v}'\n")).collect();
    format!(
        "model_list:\n  - model_name: g\n    litellm_params: {{model: openai/gpt-4o-mini, api_base: '{}', api_key: {PROVIDER_KEY}, input_cost_per_token: 0.001, output_cost_per_token: 0.002}}\n\
         litellm_settings:\n  num_retries: 0\n{litellm}\n\
         general_settings:\n  master_key: {MASTER}\n\
         environment_variables:\n{env}",
        mock.v1()
    )
}

fn langfuse_env(receiver: &Receiver) -> Vec<(&'static str, String)> {
    vec![
        ("LANGFUSE_PUBLIC_KEY", "pk-lf-test".into()),
        ("LANGFUSE_SECRET_KEY", "sk-lf-test".into()),
        ("LANGFUSE_HOST", receiver.base.clone()),
    ]
}

fn of_type<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == kind).collect()
}

/// A virtual key with an alias.
async fn aliased_key(gw: &Gateway) -> String {
    let r = gw
        .post(
            "/key/generate",
            Some(MASTER),
            &json!({"key_alias": "cb-team-key", "user_id": "owner-7"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()["key"].as_str().unwrap().to_owned()
}

#[actix_rt::test]
async fn langfuse_hears_of_successes_and_failures_with_basic_auth() {
    let mock = MockUpstream::start().await;
    let receiver = Receiver::start().await;
    let yaml = config(
        &mock,
        "  success_callback: [langfuse]\n  failure_callback: [langfuse]",
        &langfuse_env(&receiver),
    );
    let gw = Gateway::start(&yaml).await;
    let key = aliased_key(&gw).await;

    let mut body = chat_body("g");
    body["user"] = json!("end-user-1");
    body["metadata"] = json!({"tags": ["nightly"], "session_id": "sess-1"});
    let r = gw.post("/v1/chat/completions", Some(&key), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let call_id = r.header("x-litellm-call-id").unwrap().to_owned();
    mock.set(Behavior::Fail(
        500,
        r#"{"error":{"message":"the upstream melted","type":"server_error"}}"#.into(),
    ));
    let r = gw
        .post("/v1/chat/completions", Some(&key), &chat_body("g"))
        .await;
    assert_eq!(r.status, 500, "{}", r.text);
    gw.state.callbacks.flush().await;

    let calls = receiver.calls();
    assert!(!calls.is_empty());
    for call in &calls {
        assert_eq!(call.path, "/api/public/ingestion");
        // base64("pk-lf-test:sk-lf-test")
        assert_eq!(
            call.headers["authorization"],
            "Basic cGstbGYtdGVzdDpzay1sZi10ZXN0"
        );
    }
    let events = receiver.langfuse_events();
    let traces = of_type(&events, "trace-create");
    let generations = of_type(&events, "generation-create");
    assert_eq!((traces.len(), generations.len()), (2, 2), "{events:#?}");

    let ok = generations
        .iter()
        .map(|g| &g["body"])
        .find(|g| g["traceId"] == call_id.as_str())
        .expect("the success's generation");
    assert_eq!(ok["model"], "gpt-4o-mini");
    assert_eq!(ok["usage"]["input"], 7);
    assert_eq!(ok["usage"]["output"], 3);
    assert_eq!(ok["usage"]["total"], 10);
    let cost = ok["usage"]["totalCost"].as_f64().unwrap();
    assert!((cost - 0.013).abs() < 1e-9, "{cost}");
    assert_eq!(ok["level"], "DEFAULT");
    assert_eq!(ok["input"][0]["content"], PROMPT);
    assert_eq!(ok["output"]["content"], REPLY);
    assert_eq!(ok["metadata"]["user_api_key_alias"], "cb-team-key");
    assert_eq!(ok["metadata"]["model_group"], "g");
    let trace = traces
        .iter()
        .map(|t| &t["body"])
        .find(|t| t["id"] == call_id.as_str())
        .unwrap();
    assert_eq!(trace["userId"], "end-user-1");
    assert_eq!(trace["sessionId"], "sess-1");
    assert_eq!(trace["tags"], json!(["nightly"]));

    let failed = generations
        .iter()
        .map(|g| &g["body"])
        .find(|g| g["traceId"] != call_id.as_str())
        .unwrap();
    assert_eq!(failed["level"], "ERROR");
    assert!(
        failed["statusMessage"]
            .as_str()
            .is_some_and(|m| m.contains("the upstream melted")),
        "{failed}"
    );
    assert_eq!(failed["metadata"]["status_code"], 500);

    let text = receiver.text();
    for secret in [MASTER, PROVIDER_KEY, key.as_str(), "sk-lf-test"] {
        assert!(!text.contains(secret), "{secret} was sent: {text}");
    }
    let stats = gw.state.callbacks.stats().totals();
    assert_eq!((stats.sent, stats.dropped, stats.failed), (2, 0, 0));
}

#[actix_rt::test]
async fn failures_alone_go_to_a_failure_only_callback() {
    let mock = MockUpstream::start().await;
    let receiver = Receiver::start().await;
    let yaml = config(
        &mock,
        "  failure_callback: [langfuse]",
        &langfuse_env(&receiver),
    );
    let gw = Gateway::start(&yaml).await;
    let r = gw
        .post("/v1/chat/completions", Some(MASTER), &chat_body("g"))
        .await;
    assert_eq!(r.status, 200);
    mock.set(Behavior::Fail(
        503,
        r#"{"error":{"message":"busy"}}"#.into(),
    ));
    let r = gw
        .post("/v1/chat/completions", Some(MASTER), &chat_body("g"))
        .await;
    assert_eq!(r.status, 503);
    gw.state.callbacks.flush().await;

    let events = receiver.langfuse_events();
    let generations = of_type(&events, "generation-create");
    assert_eq!(generations.len(), 1, "{events:#?}");
    assert_eq!(generations[0]["body"]["level"], "ERROR");
}

#[actix_rt::test]
async fn turned_off_message_logging_keeps_prompts_and_replies_out() {
    let mock = MockUpstream::start().await;
    let receiver = Receiver::start().await;
    let yaml = config(
        &mock,
        "  success_callback: [langfuse, generic_api]\n  turn_off_message_logging: true",
        &[
            langfuse_env(&receiver),
            vec![("GENERIC_LOGGER_ENDPOINT", format!("{}/hook", receiver.base))],
        ]
        .concat(),
    );
    let gw = Gateway::start(&yaml).await;
    let r = gw
        .post("/v1/chat/completions", Some(MASTER), &chat_body("g"))
        .await;
    assert_eq!(r.status, 200);
    let mut streamed = chat_body("g");
    streamed["stream"] = json!(true);
    let r = gw
        .post("/v1/chat/completions", Some(MASTER), &streamed)
        .await;
    assert_eq!(r.status, 200);
    gw.state.callbacks.flush().await;

    assert_eq!(
        of_type(&receiver.langfuse_events(), "generation-create").len(),
        2
    );
    assert_eq!(receiver.payloads().len(), 2);
    let text = receiver.text();
    for private in [PROMPT, REPLY, "piece0"] {
        assert!(!text.contains(private), "{private} was sent: {text}");
    }
    assert!(text.contains("redacted-by-litellm"));
}

#[actix_rt::test]
async fn the_generic_api_gets_standard_payloads_with_its_headers() {
    let mock = MockUpstream::start().await;
    let receiver = Receiver::start().await;
    let yaml = config(
        &mock,
        "  success_callback: [generic_api]\n  failure_callback: [generic_api]",
        &[
            (
                "GENERIC_LOGGER_ENDPOINT",
                format!("{}/logs?source=llmgate", receiver.base),
            ),
            (
                "GENERIC_LOGGER_HEADERS",
                "x-team=llm-platform,authorization=Bearer hook-token".into(),
            ),
        ],
    );
    let gw = Gateway::start(&yaml).await;
    let key = aliased_key(&gw).await;
    let r = gw
        .post("/v1/chat/completions", Some(&key), &chat_body("g"))
        .await;
    assert_eq!(r.status, 200);
    let mut streamed = chat_body("g");
    streamed["stream"] = json!(true);
    streamed["stream_options"] = json!({"include_usage": true});
    let r = gw.post("/v1/chat/completions", Some(&key), &streamed).await;
    assert_eq!(r.status, 200);

    // Without a flush, the batch goes out within about a second.
    let arrived = eventually(Duration::from_secs(5), async || {
        receiver.payloads().len() == 2
    })
    .await;
    assert!(arrived, "{:#?}", receiver.calls());
    for call in receiver.calls() {
        assert_eq!(call.path, "/logs");
        assert_eq!(call.query, "source=llmgate");
        assert_eq!(call.headers["x-team"], "llm-platform");
        assert_eq!(call.headers["authorization"], "Bearer hook-token");
        assert_eq!(call.headers["content-type"], "application/json");
    }
    let payloads = receiver.payloads();
    let plain = payloads.iter().find(|p| p["stream"] == false).unwrap();
    assert_eq!(plain["status"], "success");
    assert_eq!(plain["call_type"], "acompletion");
    assert_eq!(plain["model"], "gpt-4o-mini");
    assert_eq!(plain["model_group"], "g");
    assert_eq!(plain["custom_llm_provider"], "openai");
    assert_eq!(plain["prompt_tokens"], 7);
    assert_eq!(plain["completion_tokens"], 3);
    assert_eq!(plain["total_tokens"], 10);
    assert!((plain["response_cost"].as_f64().unwrap() - 0.013).abs() < 1e-9);
    assert!(plain["startTime"].as_f64().unwrap() <= plain["endTime"].as_f64().unwrap());
    assert_eq!(plain["cache_hit"], false);
    assert_eq!(plain["metadata"]["user_api_key_alias"], "cb-team-key");
    assert_eq!(plain["metadata"]["user_api_key_user_id"], "owner-7");
    assert_eq!(plain["messages"][0]["content"], PROMPT);
    assert_eq!(plain["response"]["choices"][0]["message"]["content"], REPLY);
    let stream = payloads.iter().find(|p| p["stream"] == true).unwrap();
    assert_eq!(
        stream["response"]["choices"][0]["message"]["content"],
        "piece0 piece1 piece2 "
    );

    mock.set(Behavior::Fail(
        500,
        r#"{"error":{"message":"kaput"}}"#.into(),
    ));
    let r = gw
        .post("/v1/chat/completions", Some(&key), &chat_body("g"))
        .await;
    assert_eq!(r.status, 500);
    gw.state.callbacks.flush().await;
    let payloads = receiver.payloads();
    let failure = payloads.iter().find(|p| p["status"] == "failure").unwrap();
    assert!(failure["error_str"].as_str().unwrap().contains("kaput"));
    assert_eq!(failure["error_information"]["error_code"], "500");
    let text = receiver.text();
    for secret in [MASTER, PROVIDER_KEY, key.as_str()] {
        assert!(!text.contains(secret), "{secret} was sent");
    }
}

#[actix_rt::test]
async fn a_dead_or_silent_receiver_does_not_slow_requests() {
    let mock = MockUpstream::start().await;
    let refused = free_port();
    let silent = silent_port();
    let yaml = config(
        &mock,
        "  success_callback: [langfuse, generic_api]",
        &[
            ("LANGFUSE_PUBLIC_KEY", "pk-lf-test".into()),
            ("LANGFUSE_SECRET_KEY", "sk-lf-test".into()),
            ("LANGFUSE_HOST", format!("http://127.0.0.1:{silent}")),
            (
                "GENERIC_LOGGER_ENDPOINT",
                format!("http://127.0.0.1:{refused}/logs"),
            ),
        ],
    );
    let mut settings = Settings::from_yaml(&yaml, &CliOverrides::default()).unwrap();
    settings.callbacks.queue_capacity = 5;
    settings.callbacks.batch_size = 2;
    let gw = Gateway::start_with(settings).await;

    // The first request starts the gateway's actors: it is not measured.
    let r = gw
        .post("/v1/chat/completions", Some(MASTER), &chat_body("g"))
        .await;
    assert_eq!(r.status, 200);
    const N: usize = 20;
    let started = Instant::now();
    for _ in 0..N {
        let r = gw
            .post("/v1/chat/completions", Some(MASTER), &chat_body("g"))
            .await;
        assert_eq!(r.status, 200);
    }
    let took = started.elapsed();
    // A request waiting on either receiver would take seconds (connect retries, 10 s timeout).
    assert!(took < Duration::from_secs(1), "{N} requests took {took:?}");

    // The queue held 5 events; the rest were dropped and counted, per callback.
    let stats = gw.state.callbacks.stats();
    for sink in stats.sinks() {
        let dropped = sink.dropped.load(std::sync::atomic::Ordering::Relaxed);
        assert!(dropped >= (N + 1 - 5) as u64, "{}: {dropped}", sink.name);
    }
    // The refused receiver's batches are given up after their retries.
    let generic = stats
        .sinks()
        .iter()
        .find(|s| s.name == "generic_api")
        .unwrap();
    let gave_up = eventually(Duration::from_secs(15), async || {
        generic.failed.load(std::sync::atomic::Ordering::Relaxed) >= 2
    })
    .await;
    assert!(gave_up, "{stats:?}");
    assert_eq!(stats.totals().sent, 0);
    // /metrics shows the same counts.
    let metrics = gw.get("/metrics", None).await.text;
    let line = |callback: &str, outcome: &str| {
        let prefix = format!(
            "llmgate_callback_events_total{{callback=\"{callback}\",outcome=\"{outcome}\"}} "
        );
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&prefix)?.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no {prefix} in {metrics}"))
    };
    for sink in stats.sinks() {
        let dropped = sink.dropped.load(std::sync::atomic::Ordering::Relaxed);
        assert!(line(sink.name, "dropped") >= dropped, "{metrics}");
    }
    assert!(line("generic_api", "failed") >= 2, "{metrics}");
    assert_eq!(line("generic_api", "sent"), 0);
}
