//! Entry points for the fuzz targets in `fuzz/`: untrusted bytes through the config parser, the
//! request parsers and translators, and the stream decoders, exactly as the gateway runs them.
//! Not an API: hidden from the docs and free to change with the targets.

use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;

use crate::actors::Lease;
use crate::cache::assemble::Assembler;
use crate::config::{CliOverrides, Deployment, Settings};
use crate::providers::anthropic::stream::AnthropicStream;
use crate::providers::bedrock::stream::BedrockStream;
use crate::providers::chunks::Chunks;
use crate::providers::client::UpstreamBody;
use crate::providers::cohere::stream::CohereStream;
use crate::providers::gemini::stream::GeminiStream;
use crate::providers::huggingface::stream::HuggingFaceStream;
use crate::providers::ollama::stream::OllamaStream;
use crate::providers::request::{prepare, DropPolicy, Reshape};
use crate::providers::stream::Passthrough as _;
use crate::providers::stream::{Dialect, RelayOptions, SseRelay, Step, StreamTap};
use crate::providers::{Operation, ProviderKind, Usage};
use crate::responses::events::{EventWriter, ResponsesEvents};
use crate::responses::ids::Scope;
use crate::responses::native::NativeEvents;
use crate::routes::messages::AnthropicEvents;
use crate::routes::model_request::ModelRequest;
use crate::routing::Reservation;

/// `config.yaml` text through [`Settings::from_yaml`], as the binary loads it, then the model
/// catalog the server builds from it.
pub fn config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(settings) = Settings::from_yaml(&text, &CliOverrides::default()) else {
        return;
    };
    let _ = settings.warnings();
    let catalog = crate::catalog::Catalog::new(&settings.deployments, settings.serve_any_model)
        .with_aliases(&settings.model_group_alias);
    for d in &settings.deployments {
        let _ = catalog.resolve(&d.model_name);
    }
}

/// A client's request body, its route chosen by the first byte: OpenAI chat, completion or
/// embedding, or Anthropic's `/v1/messages`. What parses is then prepared for every kind of
/// deployment, so each provider's request translation runs on it too. Any body is also read as
/// a `/v1/responses` request, translated to chat and prepared the same way. Returns how many
/// deployments took it (as the route's request, else as a Responses request).
pub fn chat_request(data: &[u8]) -> usize {
    let Some((&choice, body)) = data.split_first() else {
        return 0;
    };
    let as_responses = responses_request(choice, body);
    let op = match choice % 4 {
        0 | 3 => Operation::Chat,
        1 => Operation::Completion,
        _ => Operation::Embedding,
    };
    let translated;
    let body = if choice % 4 == 3 {
        let Ok(fields) = crate::routes::messages::parse_request(body) else {
            return 0;
        };
        let _ = crate::tokens::prompt_tokens(&fields);
        let Ok(bytes) = serde_json::to_vec(&fields) else {
            return 0;
        };
        translated = bytes;
        &translated[..]
    } else {
        body
    };
    let Ok(request) = ModelRequest::parse(op, body, None) else {
        return as_responses;
    };
    let _ = crate::tokens::prompt_tokens(&request.fields);
    let _ = crate::cache::key::reply_key(Some("ns"), op, &request.model, &request.fields);
    if let Some(mock) = &request.gateway.mock_response {
        let _ = crate::providers::mock::interpret(mock);
    }
    let drop = DropPolicy {
        unsupported: choice & 0x10 != 0,
        always: &request.gateway.additional_drop_params,
        functions_to_prompt: choice & 0x20 != 0,
    };
    deployments()
        .iter()
        .filter(|d| {
            prepare(
                op,
                d,
                &d.upstream_model,
                &request.fields,
                request.stream,
                &drop,
            )
            .is_ok()
        })
        .count()
}

/// `body` as a `/v1/responses` request: translated to chat and prepared for every deployment
/// (or passed through, for those with the Responses API). Returns how many took it.
fn responses_request(choice: u8, body: &[u8]) -> usize {
    let Ok(request) = ModelRequest::parse(Operation::Responses, body, None) else {
        return 0;
    };
    let _ = crate::responses::request::prompt_tokens(&request.fields);
    let options = crate::responses::request::Options {
        drop_unsupported: choice & 0x10 != 0,
    };
    let Ok(chat) = crate::responses::request::to_chat(&request.fields, &[], options) else {
        return 0;
    };
    let drop = DropPolicy {
        unsupported: options.drop_unsupported,
        always: &request.gateway.additional_drop_params,
        functions_to_prompt: choice & 0x20 != 0,
    };
    deployments()
        .iter()
        .filter(|d| {
            if crate::responses::native::serves_responses(d) {
                return crate::responses::native::call(
                    d,
                    &d.upstream_model,
                    &request.fields,
                    drop.always,
                )
                .is_ok();
            }
            prepare(
                Operation::Chat,
                d,
                &d.upstream_model,
                &chat,
                request.stream,
                &drop,
            )
            .is_ok()
        })
        .count()
}

/// One deployment of every kind the request builder tells apart.
const DEPLOYMENTS: &str = "model_list:
  - {model_name: a, litellm_params: {model: openai/gpt-4o, api_key: k}}
  - {model_name: b, litellm_params: {model: azure/gpt-4o, api_key: k, api_base: 'https://x.openai.azure.com', api_version: '2024-10-21'}}
  - {model_name: c, litellm_params: {model: text-completion-openai/gpt-3.5-turbo-instruct, api_key: k}}
  - {model_name: d, litellm_params: {model: anthropic/claude-sonnet-4, api_key: k, max_tokens: 64}}
  - {model_name: e, litellm_params: {model: gemini/gemini-2.0-flash, api_key: k}}
  - {model_name: f, litellm_params: {model: gemini/text-embedding-004, api_key: k}}
  - {model_name: g, litellm_params: {model: ollama/llama3, api_base: 'http://o'}}
  - {model_name: h, litellm_params: {model: ollama_chat/llava, api_base: 'http://o'}}
  - {model_name: i, litellm_params: {model: cohere/command-r, api_key: k}}
  - {model_name: j, litellm_params: {model: cohere/embed-english-v3.0, api_key: k}}
  - {model_name: k, litellm_params: {model: huggingface/m, api_base: 'http://tgi', bos_token: '<s>', roles: {user: {pre_message: '[U]', post_message: '[/U]'}}}}
  - {model_name: l, litellm_params: {model: huggingface/meta-llama/Llama-3.1-8B-Instruct, api_key: k}}
  - {model_name: m, litellm_params: {model: bedrock/anthropic.claude-3-haiku-20240307-v1:0, aws_access_key_id: AKID, aws_secret_access_key: s, aws_region_name: us-east-1}}
  - {model_name: n, litellm_params: {model: bedrock/amazon.titan-embed-text-v2:0, aws_access_key_id: AKID, aws_secret_access_key: s, aws_region_name: us-east-1}}
  - {model_name: o, litellm_params: {model: bedrock/cohere.embed-english-v3, api_key: k, aws_region_name: us-east-1}}
  - {model_name: p, litellm_params: {model: mistral/mistral-small, api_key: k}}
  - {model_name: q, litellm_params: {model: vertex_ai/gemini-2.0-flash, vertex_project: p, vertex_credentials: VERTEX_KEY}}
  - {model_name: r, litellm_params: {model: vertex_ai/claude-sonnet-4@20250514, vertex_project: p, vertex_credentials: VERTEX_KEY}}
  - {model_name: s, litellm_params: {model: vertex_ai/text-embedding-005, vertex_project: p, vertex_credentials: VERTEX_KEY}}
";

/// The deployments of [`DEPLOYMENTS`], built once.
fn deployments() -> &'static [Deployment] {
    static BUILT: OnceLock<Vec<Deployment>> = OnceLock::new();
    BUILT.get_or_init(|| {
        let key = service_account_key();
        let text = DEPLOYMENTS.replace("VERTEX_KEY", &format!("'{key}'"));
        Settings::from_yaml(&text, &CliOverrides::default())
            .expect("the fuzzing deployments are a valid config")
            .deployments
    })
}

/// A throwaway service-account key, for the Vertex AI deployments (nothing is signed).
fn service_account_key() -> String {
    let rsa = openssl::rsa::Rsa::generate(2048).expect("an RSA key");
    let pem = openssl::pkey::PKey::from_rsa(rsa)
        .and_then(|k| k.private_key_to_pem_pkcs8())
        .expect("a PEM key");
    serde_json::json!({
        "type": "service_account",
        "client_email": "fuzz@p.iam.gserviceaccount.com",
        "private_key": String::from_utf8_lossy(&pem),
    })
    .to_string()
}

/// An upstream stream through the relay, in the dialect the first byte picks (OpenAI's SSE,
/// Anthropic's, Gemini's, Cohere's, TGI's, Ollama's NDJSON, Bedrock's frames), split into reads
/// where the next bytes say (see [`split`]). The relay's output, and the raw input, then go
/// through the `/v1/messages` and `/v1/responses` rewriters in the same reads, and the raw input
/// through the Responses API's passthrough reader line by line. Returns the relay's events.
pub fn sse(data: &[u8]) -> Vec<Bytes> {
    let Some((&choice, rest)) = data.split_first() else {
        return Vec::new();
    };
    let (reads, _) = split(rest);
    let dialect = match choice % 7 {
        0 => Dialect::OpenAi,
        1 => Dialect::Anthropic(Box::new(AnthropicStream::new(1))),
        2 => Dialect::Gemini(Box::new(GeminiStream::new("m", 1))),
        3 => Dialect::Cohere(Box::new(CohereStream::new("m", 1))),
        4 => Dialect::HuggingFace(Box::new(HuggingFaceStream::new(
            "id".into(),
            "m",
            1,
            Some(3),
        ))),
        5 => Dialect::Ollama(Box::new(OllamaStream::new("id".into(), 1))),
        _ => Dialect::Bedrock(Box::new(BedrockStream::new("m", 1))),
    };
    let reshape = match (choice >> 3) % 3 {
        0 => Reshape::None,
        1 => Reshape::CompletionFromChat,
        _ => Reshape::ChatFromCompletion,
    };
    let options = RelayOptions {
        client_wants_usage: choice & 0x40 != 0,
        reshape,
        deadline: Duration::from_secs(3600),
        provider: ProviderKind::OpenAi(&crate::providers::kind::FLAVORS[0]),
        dialect,
        prompt_tokens: Box::new(|| 7),
        price: Some(crate::pricing::Price {
            input_cost_per_token: 1e-6,
            output_cost_per_token: 2e-6,
        }),
        charge: None,
        tap: Some(Box::new(AssemblerTap(Assembler::new(Operation::Chat)))),
    };
    let upstream: UpstreamBody = Box::pin(futures_util::stream::iter(
        reads.clone().into_iter().map(Ok),
    ));
    let sent = runtime().block_on(async {
        use futures_util::StreamExt;
        SseRelay::new(upstream, detached_lease(), options)
            .collect::<Vec<_>>()
            .await
    });
    let sent: Vec<Bytes> = sent.into_iter().flatten().collect();
    let mut events = AnthropicEvents::new(actix_web::body::BoxBody::new(()));
    for bytes in &sent {
        let _ = events.feed(bytes);
    }
    let mut events = AnthropicEvents::new(actix_web::body::BoxBody::new(()));
    for bytes in &reads {
        let _ = events.feed(bytes);
    }
    for input in [&sent, &reads] {
        let writer = EventWriter::new(
            crate::responses::reply::skeleton(&Default::default(), None),
            "resp_f",
            1,
            "m",
        );
        let mut events = ResponsesEvents::new(
            futures_util::stream::empty::<Result<Bytes, actix_web::Error>>(),
            writer,
            None,
        );
        for bytes in input {
            let _ = events.feed(bytes);
        }
    }
    let mut native = NativeEvents::new(Scope {
        provider: "openai",
        deployment_id: "d".into(),
        owner: None,
    });
    let (mut out, mut text) = (std::collections::VecDeque::new(), String::new());
    for line in reads.concat().split(|&b| b == b'\n') {
        let _ = native.line(line, &mut out, &mut text);
    }
    let _ = native.ending(0.5);
    sent
}

/// Bedrock's binary event stream through its frame decoder and translator, split into reads
/// where the first bytes say (see [`split`]), until it ends or fails.
pub fn bedrock_eventstream(data: &[u8]) {
    let (reads, _) = split(data);
    let mut stream = BedrockStream::new("m", 1);
    let mut out = Chunks::default();
    for bytes in &reads {
        if stream.feed(bytes, &mut out) != Step::More {
            break;
        }
        out.clear();
    }
}

/// Cuts `data` into reads: its first byte `n` (mod 8) says how many of the next bytes are read
/// lengths (each plus one), used in turn; with none, the rest is one read. Returns the reads
/// and the lengths.
pub fn split(data: &[u8]) -> (Vec<Bytes>, Vec<usize>) {
    let Some((&n, rest)) = data.split_first() else {
        return (Vec::new(), Vec::new());
    };
    let n = usize::from(n % 8).min(rest.len());
    let (lens, mut body) = rest.split_at(n);
    let lens: Vec<usize> = lens.iter().map(|&l| usize::from(l) + 1).collect();
    if lens.is_empty() {
        return (vec![Bytes::copy_from_slice(body)], lens);
    }
    let mut reads = Vec::new();
    for len in lens.iter().cycle() {
        if body.is_empty() {
            break;
        }
        let (head, tail) = body.split_at((*len).min(body.len()));
        reads.push(Bytes::copy_from_slice(head));
        body = tail;
    }
    (reads, lens)
}

/// Keeps the reply the relay streams, as the response cache does.
struct AssemblerTap(Assembler);

impl StreamTap for AssemblerTap {
    fn chunk(&mut self, data: &[u8]) {
        self.0.chunk(data);
    }

    fn finished(self: Box<Self>, usage: Usage) {
        let _ = self.0.finish(usage);
    }
}

/// A lease whose reports go nowhere: its deployment's mailbox is already closed.
fn detached_lease() -> Lease {
    let (tx, _closed) = actix::dev::channel::channel(1);
    let held = Reservation {
        at: std::time::Instant::now(),
        tokens: 0,
    };
    Lease::new(0, actix::Addr::new(tx), held)
}

/// The runtime the relay's timers need, one per thread.
fn runtime() -> &'static actix_rt::Runtime {
    thread_local! {
        static RUNTIME: &'static actix_rt::Runtime =
            Box::leak(Box::new(actix_rt::Runtime::new().expect("a runtime")));
    }
    RUNTIME.with(|r| *r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seeds(target: &str) -> Vec<Vec<u8>> {
        let dir = format!("{}/fuzz/seeds/{target}", env!("CARGO_MANIFEST_DIR"));
        let mut out: Vec<Vec<u8>> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .collect();
        out.sort();
        assert!(!out.is_empty(), "no seeds in {dir}");
        out
    }

    #[test]
    fn split_cuts_the_body_at_the_lengths_given_in_turn() {
        let (reads, lens) = split(b"\x02\x00\x02abcdefghij");
        assert_eq!(lens, [1, 3]);
        let reads: Vec<&[u8]> = reads.iter().map(|b| &b[..]).collect();
        assert_eq!(reads, [&b"a"[..], b"bcd", b"e", b"fgh", b"i", b"j"]);
        let (reads, _) = split(b"\x00whole");
        assert_eq!(reads, [Bytes::from_static(b"whole")]);
    }

    #[test]
    fn every_fuzzing_deployment_is_built() {
        assert_eq!(deployments().len(), 19);
        assert!(deployments()
            .iter()
            .all(|d| d.vertex.is_some() || !matches!(d.provider, ProviderKind::VertexAi(_))));
    }

    #[test]
    fn the_seed_corpora_run_through_their_entry_points() {
        for seed in seeds("config") {
            config(&seed);
        }
        for seed in seeds("chat_request") {
            let taken = chat_request(&seed);
            assert!(taken >= 5, "{taken}: {}", String::from_utf8_lossy(&seed));
        }
        for seed in seeds("sse") {
            let sent = sse(&seed);
            assert!(
                sent.last().is_some_and(|e| e.starts_with(b"data: [DONE]"))
                    || sent.iter().any(|e| e.windows(5).any(|w| w == b"error")),
                "{sent:?}"
            );
        }
        for seed in seeds("bedrock_eventstream") {
            bedrock_eventstream(&seed);
        }
    }

    #[test]
    fn the_bedrock_seed_is_a_whole_stream() {
        let seed = std::fs::read(format!(
            "{}/fuzz/seeds/bedrock_eventstream/tool_use_cut",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let (reads, _) = split(&seed);
        let mut stream = BedrockStream::new("m", 1);
        let mut out = Chunks::default();
        let steps: Vec<Step> = reads.iter().map(|r| stream.feed(r, &mut out)).collect();
        assert_eq!(steps.last(), Some(&Step::Done));
        assert!(out.json().len() > 3);
    }

    #[test]
    fn the_config_seeds_are_valid_configs() {
        for seed in seeds("config") {
            let text = String::from_utf8(seed).unwrap();
            if let Err(e) = Settings::from_yaml(&text, &CliOverrides::default()) {
                panic!("{e}\n{text}");
            }
        }
    }
}
