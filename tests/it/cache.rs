//! The response cache against a real mock upstream that counts calls: hits and misses, every
//! per-request control, streams replayed and stored, TTLs, no charge on a hit, the key's
//! `allowed_cache_controls`, the local bound; the core tests run on the local store and on the
//! machine's Redis (each test with its own namespace), and an unreachable Redis fails nothing.

use std::time::{Duration, Instant};

use llmgate::actors::Flush;
use serde_json::{json, Value};

use crate::support::binary::free_port;
use crate::support::gateway::{sse_events, Reply};
use crate::support::{eventually, Behavior, Gateway, MockUpstream};

const MASTER: &str = "sk-master";
const IN_PRICE: f64 = 0.000001;
const OUT_PRICE: f64 = 0.000002;
/// The mock upstream's usage (7 prompt and 3 completion tokens) at the group's prices.
const COST: f64 = 7.0 * IN_PRICE + 3.0 * OUT_PRICE;

/// Where a test's cache lives.
#[derive(Clone)]
enum Store {
    Local,
    /// The machine's Redis, under a namespace no other test or run uses.
    Redis(String),
}

impl Store {
    fn redis() -> Self {
        Self::Redis(format!("it-{}", uuid::Uuid::new_v4().simple()))
    }

    fn params(&self) -> String {
        match self {
            Self::Local => "type: local".into(),
            Self::Redis(ns) => {
                format!("type: redis, host: 127.0.0.1, port: 6379, namespace: {ns}")
            }
        }
    }

    /// Entries stored so far.
    async fn entries(&self, gw: &Gateway) -> usize {
        match self {
            Self::Local => gw
                .state
                .cache
                .as_ref()
                .expect("the cache is on")
                .local_len(),
            Self::Redis(ns) => {
                let client = ::redis::Client::open("redis://127.0.0.1:6379/").unwrap();
                let mut conn = client.get_multiplexed_async_connection().await.unwrap();
                let keys: Vec<String> = ::redis::cmd("KEYS")
                    .arg(format!("*:cache:{ns}:*"))
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                keys.len()
            }
        }
    }

    /// Waits until `n` entries are stored (Redis writes, and streamed replies, land in the
    /// background).
    async fn stored(&self, gw: &Gateway, n: usize) {
        let landed = eventually(Duration::from_secs(5), async || self.entries(gw).await >= n).await;
        assert!(landed, "{n} entries were not stored in time");
    }
}

/// A gateway with a priced group `g` and an embedding group `e` on `mock`, a master key, and the
/// cache on `store` with `params` added to its `cache_params`.
async fn gateway(mock: &MockUpstream, store: &Store, params: &str) -> Gateway {
    let yaml = format!(
        "model_list:
  - model_name: g
    litellm_params: {{model: openai/m, api_base: '{base}', input_cost_per_token: {IN_PRICE}, output_cost_per_token: {OUT_PRICE}}}
  - model_name: e
    litellm_params: {{model: openai/text-embedding-3-small, api_base: '{base}'}}
litellm_settings:
  num_retries: 0
  cache: true
  cache_params: {{{store}, ttl: 120{params}}}
general_settings: {{master_key: {MASTER}}}
",
        base = mock.v1(),
        store = store.params(),
    );
    Gateway::start(&yaml).await
}

fn chat(content: &str) -> Value {
    json!({"model": "g", "messages": [{"role": "user", "content": content}], "temperature": 0.2})
}

fn with(mut body: Value, field: &str, value: Value) -> Value {
    body[field] = value;
    body
}

async fn ask(gw: &Gateway, body: &Value) -> Reply {
    let r = gw.post("/v1/chat/completions", Some(MASTER), body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r
}

fn is_hit(r: &Reply) -> bool {
    r.header("x-litellm-cache-key").is_some()
}

/// The SSE body's chunks, checked well-formed: every event a JSON chunk (of `object`, unless
/// empty), the last `[DONE]`.
fn chunks(r: &Reply, object: &str) -> Vec<Value> {
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    let events = sse_events(&r.text);
    assert_eq!(
        events.last().map(String::as_str),
        Some("[DONE]"),
        "{}",
        r.text
    );
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap_or_else(|_| panic!("not a JSON chunk: {e}")))
        .collect();
    for c in &chunks {
        assert!(object.is_empty() || c["object"] == object, "{c}");
        assert!(c["choices"].is_array() && c["id"].is_string(), "{c}");
    }
    chunks
}

fn streamed_content(chunks: &[Value]) -> String {
    chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect()
}

async fn a_repeated_request_is_answered_from_the_cache_without_the_upstream(store: Store) {
    let mock = MockUpstream::start().await;
    let gw = gateway(&mock, &store, "").await;
    let first = ask(&gw, &chat("hello")).await;
    assert!(!is_hit(&first));
    assert_eq!(mock.call_count(), 1);
    store.stored(&gw, 1).await;
    // Same request: other field order, gateway-only fields, `stream: false` and `/chat/completions`
    // without `/v1` change nothing.
    let again = json!({"temperature": 0.2, "metadata": {"run": 2}, "stream": false,
        "messages": [{"content": "hello", "role": "user"}], "model": "g"});
    let second = gw.post("/chat/completions", Some(MASTER), &again).await;
    assert_eq!(second.status, 200, "{}", second.text);
    assert_eq!(mock.call_count(), 1, "a hit must not reach the upstream");
    let key = second
        .header("x-litellm-cache-key")
        .expect("the hit names its key");
    let hex = match &store {
        Store::Local => key,
        Store::Redis(ns) => key.strip_prefix(&format!("{ns}:")).expect("namespaced"),
    };
    assert!(
        hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        "{key}"
    );
    assert_eq!(second.header("x-litellm-response-cost"), Some("0"));
    assert_eq!(second.json(), first.json());
    // A different temperature is a different request.
    let hotter = ask(&gw, &with(chat("hello"), "temperature", json!(0.9))).await;
    assert!(!is_hit(&hotter));
    assert_eq!(mock.call_count(), 2);
}

async fn completions_and_embeddings_are_cached_too(store: Store) {
    let mock = MockUpstream::start().await;
    let gw = gateway(&mock, &store, "").await;
    let text = json!({"model": "g", "prompt": "once upon a time", "max_tokens": 5});
    let emb = json!({"model": "e", "input": ["a", "b"]});
    for (path, body) in [("/v1/completions", &text), ("/v1/embeddings", &emb)] {
        let r = gw.post(path, Some(MASTER), body).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        assert!(!is_hit(&r));
    }
    assert_eq!(mock.call_count(), 2);
    store.stored(&gw, 2).await;
    for (path, body) in [("/completions", &text), ("/embeddings", &emb)] {
        let r = gw.post(path, Some(MASTER), body).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        assert!(is_hit(&r), "{path} was not a hit");
    }
    assert_eq!(mock.call_count(), 2);
}

async fn no_cache_skips_the_lookup_but_still_stores(store: Store) {
    let mock = MockUpstream::start().await;
    let gw = gateway(&mock, &store, "").await;
    let no_cache = with(chat("fresh please"), "cache", json!({"no-cache": true}));
    assert!(!is_hit(&ask(&gw, &no_cache).await));
    store.stored(&gw, 1).await;
    // What it stored answers a plain request...
    assert!(is_hit(&ask(&gw, &chat("fresh please")).await));
    assert_eq!(mock.call_count(), 1);
    // ...but never a `no-cache` one.
    assert!(!is_hit(&ask(&gw, &no_cache).await));
    assert_eq!(mock.call_count(), 2);
}

async fn no_store_keeps_nothing(store: Store) {
    let mock = MockUpstream::start().await;
    let gw = gateway(&mock, &store, "").await;
    let no_store = with(chat("forget me"), "cache", json!({"no-store": true}));
    ask(&gw, &no_store).await;
    assert!(!is_hit(&ask(&gw, &chat("forget me")).await));
    assert_eq!(mock.call_count(), 2, "no-store kept the reply");
    store.stored(&gw, 1).await;
    // A stored reply is still served to a no-store request.
    assert!(is_hit(&ask(&gw, &no_store).await));
    assert_eq!(mock.call_count(), 2);
    assert_eq!(store.entries(&gw).await, 1);
}

async fn an_entry_expires_after_its_ttl(store: Store) {
    let mock = MockUpstream::start().await;
    // The configured TTL is 120 s; this request asks for 1 s.
    let gw = gateway(&mock, &store, "").await;
    let short = with(chat("brief"), "cache", json!({"ttl": 1}));
    ask(&gw, &short).await;
    store.stored(&gw, 1).await;
    let stored_at = Instant::now();
    assert!(is_hit(&ask(&gw, &chat("brief")).await));
    let expired = eventually(Duration::from_secs(5), async || {
        !is_hit(&ask(&gw, &chat("brief")).await)
    })
    .await;
    assert!(expired, "the entry outlived its 1 s TTL");
    assert!(stored_at.elapsed() >= Duration::from_millis(700));
    assert_eq!(mock.call_count(), 2);
}

async fn the_configured_ttl_applies_when_the_request_names_none(store: Store) {
    let mock = MockUpstream::start().await;
    let store_params = store.params();
    let yaml = format!(
        "model_list:\n  - model_name: g\n    litellm_params: {{model: openai/m, api_base: '{}'}}\nlitellm_settings:\n  cache: true\n  cache_params: {{{store_params}, ttl: 1}}\n",
        mock.v1()
    );
    let gw = Gateway::start(&yaml).await;
    let body = chat("short lived");
    let first = gw.post("/chat/completions", None, &body).await;
    assert_eq!(first.status, 200, "{}", first.text);
    store.stored(&gw, 1).await;
    let expired = eventually(Duration::from_secs(5), async || {
        !is_hit(&gw.post("/chat/completions", None, &body).await)
    })
    .await;
    assert!(expired, "the entry outlived the configured 1 s TTL");
    assert_eq!(mock.call_count(), 2);
}

async fn s_maxage_refuses_an_entry_older_than_asked(store: Store) {
    let mock = MockUpstream::start().await;
    let gw = gateway(&mock, &store, "").await;
    ask(&gw, &chat("how old")).await;
    store.stored(&gw, 1).await;
    let within = |secs: f64| with(chat("how old"), "cache", json!({"s-maxage": secs}));
    assert!(is_hit(&ask(&gw, &within(60.0)).await));
    assert_eq!(mock.call_count(), 1);
    // As the entry ages past 0.3 s, a request accepting only 0.3 s goes to the upstream.
    let refused = eventually(Duration::from_secs(5), async || {
        !is_hit(&ask(&gw, &within(0.3)).await)
    })
    .await;
    assert!(refused, "an entry older than s-maxage was served");
    assert_eq!(mock.call_count(), 2);
}

async fn caching_false_skips_the_cache_entirely(store: Store) {
    let mock = MockUpstream::start().await;
    let gw = gateway(&mock, &store, "").await;
    let off = with(chat("no cache"), "caching", json!(false));
    ask(&gw, &off).await;
    assert!(!is_hit(&ask(&gw, &chat("no cache")).await));
    assert_eq!(mock.call_count(), 2, "caching: false stored its reply");
    store.stored(&gw, 1).await;
    assert!(
        !is_hit(&ask(&gw, &off).await),
        "caching: false read the cache"
    );
    assert_eq!(mock.call_count(), 3);
}

async fn default_off_caches_only_requests_that_ask(store: Store) {
    let mock = MockUpstream::start().await;
    let gw = gateway(&mock, &store, ", mode: default_off").await;
    ask(&gw, &chat("opt in")).await;
    assert!(!is_hit(&ask(&gw, &chat("opt in")).await));
    assert_eq!(mock.call_count(), 2);
    let asked = with(chat("opt in"), "caching", json!(true));
    assert!(!is_hit(&ask(&gw, &asked).await));
    store.stored(&gw, 1).await;
    assert!(is_hit(&ask(&gw, &asked).await));
    let use_cache = with(chat("opt in"), "cache", json!({"use-cache": true}));
    assert!(is_hit(&ask(&gw, &use_cache).await));
    assert!(!is_hit(&ask(&gw, &chat("opt in")).await));
    assert_eq!(mock.call_count(), 4);
}

async fn a_stream_after_a_plain_request_is_replayed_from_the_cache(store: Store) {
    let mock = MockUpstream::start().await;
    let gw = gateway(&mock, &store, "").await;
    let plain = ask(&gw, &chat("stream it")).await;
    store.stored(&gw, 1).await;
    let body = with(
        with(chat("stream it"), "stream", json!(true)),
        "stream_options",
        json!({"include_usage": true}),
    );
    let r = ask(&gw, &body).await;
    assert!(is_hit(&r));
    assert_eq!(mock.call_count(), 1);
    let replayed = chunks(&r, "chat.completion.chunk");
    assert_eq!(replayed[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(
        streamed_content(&replayed),
        plain.json()["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
    );
    let finish = &replayed[replayed.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    let usage = replayed.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["total_tokens"], 10);
    assert_eq!(usage["usage"]["cost"], 0.0);
    // Without `include_usage`, no usage chunk.
    let r = ask(&gw, &with(chat("stream it"), "stream", json!(true))).await;
    assert!(chunks(&r, "chat.completion.chunk")
        .iter()
        .all(|c| c.get("usage").is_none()));
    assert_eq!(mock.call_count(), 1);
}

async fn a_streamed_reply_is_stored_and_serves_plain_and_streamed_requests(store: Store) {
    let mock = MockUpstream::start().await;
    let gw = gateway(&mock, &store, "").await;
    let streamed = with(chat("pieces"), "stream", json!(true));
    let first = ask(&gw, &streamed).await;
    assert!(!is_hit(&first));
    let relayed = streamed_content(&chunks(&first, "chat.completion.chunk"));
    assert_eq!(relayed, "piece0 piece1 piece2 ");
    store.stored(&gw, 1).await;
    let plain = ask(&gw, &chat("pieces")).await;
    assert!(is_hit(&plain));
    let reply = plain.json();
    assert_eq!(reply["object"], "chat.completion");
    assert_eq!(reply["choices"][0]["message"]["content"], relayed);
    assert_eq!(reply["choices"][0]["finish_reason"], "stop");
    assert!(reply["usage"]["total_tokens"].as_u64().unwrap() > 0);
    let again = ask(&gw, &streamed).await;
    assert!(is_hit(&again));
    assert_eq!(
        streamed_content(&chunks(&again, "chat.completion.chunk")),
        relayed
    );
    // Text completions stream and replay as `text_completion` chunks.
    let text = json!({"model": "g", "prompt": "tell", "stream": true});
    let r = gw.post("/v1/completions", Some(MASTER), &text).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // (The mock upstream closes a text stream with a chat-shaped finish chunk.)
    let relayed: String = chunks(&r, "")
        .iter()
        .filter_map(|c| c["choices"][0]["text"].as_str())
        .collect();
    store.stored(&gw, 2).await;
    let r = gw.post("/v1/completions", Some(MASTER), &text).await;
    assert!(is_hit(&r));
    let replayed: String = chunks(&r, "text_completion")
        .iter()
        .filter_map(|c| c["choices"][0]["text"].as_str())
        .collect();
    assert_eq!(replayed, relayed);
    assert_eq!(mock.call_count(), 2);
}

async fn an_upstream_error_is_never_cached(store: Store) {
    let mock = MockUpstream::start().await;
    let gw = gateway(&mock, &store, "").await;
    mock.set(Behavior::Fail(
        500,
        r#"{"error":{"message":"boom"}}"#.into(),
    ));
    let failed = gw
        .post("/v1/chat/completions", Some(MASTER), &chat("err"))
        .await;
    assert_eq!(failed.status, 500, "{}", failed.text);
    let failed_stream = gw
        .post(
            "/v1/chat/completions",
            Some(MASTER),
            &with(chat("err"), "stream", json!(true)),
        )
        .await;
    assert_ne!(failed_stream.status, 200);
    mock.set(Behavior::default());
    let ok = ask(&gw, &chat("err")).await;
    assert!(!is_hit(&ok));
    assert_eq!(mock.call_count(), 3);
}

async fn a_hit_is_charged_nothing_and_logged_as_a_cache_hit(store: Store) {
    let mock = MockUpstream::start().await;
    let gw = gateway(&mock, &store, "").await;
    let key = gw
        .post("/key/generate", Some(MASTER), &json!({"duration": null}))
        .await
        .json()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let spend = async || {
        gw.get(&format!("/key/info?key={key}"), Some(MASTER))
            .await
            .json()["info"]["spend"]
            .as_f64()
            .unwrap()
    };
    let call = |id: &'static str| {
        let body = chat("priced");
        let (gw, key) = (&gw, &key);
        async move {
            let auth = format!("Bearer {key}");
            let headers = [("authorization", auth.as_str()), ("x-litellm-call-id", id)];
            gw.post_with("/v1/chat/completions", &headers, &body).await
        }
    };
    let miss = call("cache-miss-1").await;
    assert_eq!(miss.status, 200, "{}", miss.text);
    assert!(!is_hit(&miss));
    assert!((spend().await - COST).abs() < 1e-12);
    store.stored(&gw, 1).await;
    let hit = call("cache-hit-1").await;
    assert_eq!(hit.status, 200, "{}", hit.text);
    assert!(is_hit(&hit));
    assert_eq!(hit.header("x-litellm-response-cost"), Some("0"));
    let shown: f64 = hit.header("x-litellm-key-spend").unwrap().parse().unwrap();
    assert!((shown - COST).abs() < 1e-12, "{shown}");
    assert_eq!(mock.call_count(), 1);
    gw.state.spend().send(Flush).await.unwrap().unwrap();
    assert!(
        (spend().await - COST).abs() < 1e-12,
        "a hit changed the key's spend"
    );
    let rows = gw
        .get("/spend/logs?request_id=cache-hit-1", Some(MASTER))
        .await
        .json();
    let row = &rows[0];
    assert_eq!(row["cache_hit"], true, "{rows}");
    assert_eq!(row["spend"], 0.0);
    assert_eq!(row["status"], "success");
    assert_eq!(row["model_group"], "g");
    assert_eq!(row["total_tokens"], 10);
    let rows = gw
        .get("/spend/logs?request_id=cache-miss-1", Some(MASTER))
        .await
        .json();
    assert_eq!(rows[0]["cache_hit"], false, "{rows}");
}

/// One test per store for each of the core tests.
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod local {
            $(
                #[actix_rt::test]
                async fn $name() {
                    super::$name(super::Store::Local).await
                }
            )*
        }
        mod redis {
            $(
                #[actix_rt::test]
                async fn $name() {
                    super::$name(super::Store::redis()).await
                }
            )*
        }
    };
}

on_both_stores!(
    a_repeated_request_is_answered_from_the_cache_without_the_upstream,
    completions_and_embeddings_are_cached_too,
    no_cache_skips_the_lookup_but_still_stores,
    no_store_keeps_nothing,
    an_entry_expires_after_its_ttl,
    the_configured_ttl_applies_when_the_request_names_none,
    s_maxage_refuses_an_entry_older_than_asked,
    caching_false_skips_the_cache_entirely,
    default_off_caches_only_requests_that_ask,
    a_stream_after_a_plain_request_is_replayed_from_the_cache,
    a_streamed_reply_is_stored_and_serves_plain_and_streamed_requests,
    an_upstream_error_is_never_cached,
    a_hit_is_charged_nothing_and_logged_as_a_cache_hit,
);

async fn new_key(gw: &Gateway, fields: Value) -> String {
    let mut body = json!({"duration": null});
    for (k, v) in fields.as_object().unwrap() {
        body[k] = v.clone();
    }
    let r = gw.post("/key/generate", Some(MASTER), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()["key"].as_str().unwrap().to_owned()
}

#[actix_rt::test]
async fn allowed_cache_controls_refuse_any_other_control_with_403() {
    let mock = MockUpstream::start().await;
    let gw = gateway(&mock, &Store::Local, "").await;
    let limited = new_key(&gw, json!({"allowed_cache_controls": ["no-cache"]})).await;
    let info = gw
        .get(&format!("/key/info?key={limited}"), Some(MASTER))
        .await
        .json();
    assert_eq!(info["info"]["allowed_cache_controls"], json!(["no-cache"]));
    let no_store = with(chat("ctl"), "cache", json!({"no-store": true}));
    let r = gw
        .post("/v1/chat/completions", Some(&limited), &no_store)
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(
        r.json()["error"]["message"],
        "Not allowed to set no-store as a cache control. Contact admin to change permissions."
    );
    assert_eq!(mock.call_count(), 0);
    let no_cache = with(chat("ctl"), "cache", json!({"no-cache": true}));
    let r = gw
        .post("/v1/chat/completions", Some(&limited), &no_cache)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // The master key, and a key with no list, may set any control.
    assert_eq!(ask(&gw, &no_store).await.status, 200);
    let open = new_key(&gw, json!({})).await;
    let r = gw
        .post("/v1/chat/completions", Some(&open), &no_store)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // /key/update changes the list.
    let r = gw
        .post(
            "/key/update",
            Some(MASTER),
            &json!({"key": limited, "allowed_cache_controls": ["no-store"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["allowed_cache_controls"], json!(["no-store"]));
    let r = gw
        .post("/v1/chat/completions", Some(&limited), &no_cache)
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    let r = gw
        .post("/v1/chat/completions", Some(&limited), &no_store)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[actix_rt::test]
async fn a_key_must_be_valid_and_allowed_the_model_to_read_a_cached_reply() {
    let mock = MockUpstream::start().await;
    let gw = gateway(&mock, &Store::Local, "").await;
    ask(&gw, &chat("secret")).await;
    assert!(is_hit(&ask(&gw, &chat("secret")).await));
    let other = new_key(&gw, json!({"models": ["e"]})).await;
    let r = gw
        .post("/v1/chat/completions", Some(&other), &chat("secret"))
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(r.json()["error"]["type"], "key_model_access_denied");
    let r = gw
        .post(
            "/v1/chat/completions",
            Some("sk-not-a-key"),
            &chat("secret"),
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.text);
    let r = gw.post("/v1/chat/completions", None, &chat("secret")).await;
    assert_eq!(r.status, 401, "{}", r.text);
    let blocked = new_key(&gw, json!({"blocked": true})).await;
    let r = gw
        .post("/v1/chat/completions", Some(&blocked), &chat("secret"))
        .await;
    assert_eq!(r.status, 401, "{}", r.text);
    let allowed = new_key(&gw, json!({"models": ["g"]})).await;
    let r = gw
        .post("/v1/chat/completions", Some(&allowed), &chat("secret"))
        .await;
    assert!(is_hit(&r), "{}", r.text);
    assert_eq!(mock.call_count(), 1);
}

#[actix_rt::test]
async fn the_local_store_keeps_at_most_max_size_in_memory_entries() {
    let mock = MockUpstream::start().await;
    let gw = gateway(&mock, &Store::Local, ", max_size_in_memory: 2").await;
    for n in 0..3 {
        ask(&gw, &chat(&format!("q{n}"))).await;
    }
    assert_eq!(Store::Local.entries(&gw).await, 2);
    // The oldest went; the newest stayed.
    assert!(is_hit(&ask(&gw, &chat("q2")).await));
    assert!(!is_hit(&ask(&gw, &chat("q0")).await));
    assert_eq!(mock.call_count(), 4);
    assert_eq!(Store::Local.entries(&gw).await, 2);
}

#[actix_rt::test]
async fn readiness_reports_the_cache_type() {
    let mock = MockUpstream::start().await;
    for (store, kind) in [
        (Store::Local, json!("local")),
        (Store::redis(), json!("redis")),
    ] {
        let gw = gateway(&mock, &store, "").await;
        let r = gw.get("/health/readiness", None).await.json();
        assert_eq!(r["cache"], kind);
    }
    let off = format!(
        "model_list:\n  - model_name: g\n    litellm_params: {{model: openai/m, api_base: '{}'}}\n",
        mock.v1()
    );
    let gw = Gateway::start(&off).await;
    assert_eq!(
        gw.get("/health/readiness", None).await.json()["cache"],
        Value::Null
    );
}

#[actix_rt::test]
async fn an_unreachable_redis_never_fails_a_request() {
    let mock = MockUpstream::start().await;
    let yaml = format!(
        "model_list:\n  - model_name: g\n    litellm_params: {{model: openai/m, api_base: '{}'}}\nlitellm_settings:\n  cache: true\n  cache_params: {{type: redis, host: 127.0.0.1, port: {}, namespace: nobody}}\n",
        mock.v1(),
        free_port()
    );
    let gw = Gateway::start(&yaml).await;
    for n in 0..3 {
        let started = Instant::now();
        let r = gw.post("/v1/chat/completions", None, &chat("anyone")).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(!is_hit(&r));
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "request {n} stalled"
        );
        let s = gw
            .post(
                "/v1/chat/completions",
                None,
                &with(chat("anyone"), "stream", json!(true)),
            )
            .await;
        assert_eq!(s.status, 200, "{}", s.text);
        chunks(&s, "chat.completion.chunk");
    }
    assert_eq!(mock.call_count(), 6);
}

#[actix_rt::test]
async fn a_hit_counts_against_the_keys_rate_limits() {
    let mock = MockUpstream::start().await;
    let gw = gateway(&mock, &Store::Local, "").await;
    let key = new_key(&gw, json!({"rpm_limit": 3})).await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let r = gw
            .post("/v1/chat/completions", Some(&key), &chat("counted"))
            .await;
        statuses.push((r.status, is_hit(&r)));
    }
    assert_eq!(
        statuses,
        [
            (200, false),
            (200, true),
            (200, true),
            (429, false),
            (429, false)
        ]
    );
    assert_eq!(mock.call_count(), 1);
}
