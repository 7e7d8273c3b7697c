//! One attempt of a Responses request: passed through to a deployment with the Responses API,
//! or translated to chat (and its reply or stream back) for any other, or for a mock.
//! `previous_response_id` is resolved here: a translated response's conversation comes from the
//! instance's [`ConversationStore`], a native one's id is decoded for its provider.

use std::borrow::Cow;

use bytes::Bytes;
use futures_util::future::Either;
use serde_json::{Map, Value as Json};

use super::events::{EventWriter, ResponsesEvents};
use super::ids::{self, Scope};
use super::store::{ConversationStore, Keep};
use super::{native, reply, request};
use crate::config::{Deployment, Settings};
use crate::providers::request::{bad_request, prepare, DropPolicy, PreparedCall};
use crate::providers::stream::Dialect;
use crate::providers::{usage_of, Operation, ProviderError, Usage};
use crate::routes::model_request::ModelRequest;
use crate::topology::Topology;

/// How one attempt sends its request and reads its reply.
pub enum Wire<'a> {
    /// Not a Responses request: the request's own operation, as always.
    Plain,
    /// Sent as is to a deployment with the Responses API.
    Native {
        /// The request's fields, `previous_response_id` resolved.
        fields: Cow<'a, Map<String, Json>>,
        /// Where its response lives, for the ids the client sees.
        scope: Scope,
    },
    /// Translated to chat; the reply translated back.
    Chat(Box<Translated>),
}

/// A Responses request served as chat.
pub struct Translated {
    /// The chat request's fields.
    pub fields: Map<String, Json>,
    id: String,
    skeleton: Map<String, Json>,
    keep: Option<Keep>,
}

/// Who is asking, and where the translated conversations are kept.
#[derive(Clone, Copy)]
pub struct Asker<'a> {
    /// The SHA-256 hex of the caller's virtual key (`None`: the master key, or no auth).
    pub owner: Option<&'a str>,
    /// The instance's conversations.
    pub store: &'a ConversationStore,
    /// The settings (for `drop_params`).
    pub settings: &'a Settings,
}

fn unknown_previous(id: &str, why: &str) -> ProviderError {
    bad_request(
        format!("previous_response_id '{id}' {why}"),
        "previous_response_id",
    )
}

impl<'a> Wire<'a> {
    /// The way `request` (of `op`) goes to `deployment`; `mocked` when a `mock_response` answers
    /// it (mocks reply as chat).
    pub fn plan(
        op: Operation,
        deployment: &Deployment,
        request: &'a ModelRequest,
        asker: Asker<'_>,
        mocked: bool,
    ) -> Result<Self, ProviderError> {
        if op != Operation::Responses {
            return Ok(Self::Plain);
        }
        let fields = &request.fields;
        let previous = fields.get("previous_response_id").and_then(Json::as_str);
        let kept = match previous.map(|id| (id, asker.store.get(id))) {
            Some((id, Some(c))) if !c.allows(asker.owner) => {
                return Err(unknown_previous(id, "was not found"));
            }
            Some((_, kept)) => kept,
            None => None,
        };
        if !mocked && native::serves_responses(deployment) {
            let scope = Scope {
                provider: deployment.provider.name(),
                deployment_id: deployment.id.clone(),
                owner: asker.owner.map(str::to_owned),
            };
            let fields = match (previous, kept) {
                (Some(_), Some(conversation)) => {
                    // The earlier turns were served through chat by this instance: they go
                    // as input items (without reasoning, which only its maker can read).
                    let mut f = fields.clone();
                    f.shift_remove("previous_response_id");
                    let mut items: Vec<Json> = conversation
                        .items()
                        .into_iter()
                        .filter(|i| i["type"] != "reasoning")
                        .collect();
                    items.extend(request::input_items(fields));
                    f.insert("input".into(), Json::Array(items));
                    Cow::Owned(f)
                }
                (Some(id), None) => match ids::decode(id) {
                    Some(decoded) if !decoded.allows(asker.owner) => {
                        return Err(unknown_previous(id, "was not found"));
                    }
                    Some(decoded) => {
                        let mut f = fields.clone();
                        f.insert(
                            "previous_response_id".into(),
                            Json::from(decoded.upstream_id),
                        );
                        Cow::Owned(f)
                    }
                    // The provider's own id, passed on as it is.
                    None => Cow::Borrowed(fields),
                },
                _ => Cow::Borrowed(fields),
            };
            return Ok(Self::Native { fields, scope });
        }
        let history = match (previous, kept) {
            (None, _) => Vec::new(),
            (Some(_), Some(conversation)) => conversation.items(),
            (Some(id), None) => {
                let why = match ids::decode(id) {
                    Some(d) => format!(
                        "belongs to deployment {} (the Responses API); deployment {} serves this model through chat completions and cannot continue it",
                        d.deployment_id, deployment.id
                    ),
                    None => format!(
                        "was not found: llmgate keeps the last {} responses it served through chat completions, per instance",
                        super::store::MAX_ENTRIES
                    ),
                };
                return Err(unknown_previous(id, &why));
            }
        };
        let drop_unsupported = request
            .gateway
            .drop_params
            .or(deployment.drop_params)
            .unwrap_or(asker.settings.drop_params);
        let chat = request::to_chat(fields, &history, request::Options { drop_unsupported })?;
        let id = ids::translated();
        let keep = (fields.get("store") != Some(&Json::Bool(false))).then(|| {
            let mut items = history;
            items.extend(request::input_items(fields));
            Keep::new(
                asker.store.clone(),
                id.clone(),
                asker.owner.map(str::to_owned),
                items,
            )
        });
        Ok(Self::Chat(Box::new(Translated {
            fields: chat,
            id,
            skeleton: reply::skeleton(fields, request.gateway.metadata.as_ref()),
            keep,
        })))
    }

    /// Whether the attempt speaks the Responses API upstream.
    pub fn is_native(&self) -> bool {
        matches!(self, Self::Native { .. })
    }

    /// The operation on the wire.
    pub fn op(&self, op: Operation) -> Operation {
        match self {
            Self::Plain | Self::Native { .. } => op,
            Self::Chat(_) => Operation::Chat,
        }
    }

    /// The fields the attempt sends (and counts a prompt from).
    pub fn fields<'b>(&'b self, request_fields: &'b Map<String, Json>) -> &'b Map<String, Json> {
        match self {
            Self::Plain => request_fields,
            Self::Native { fields, .. } => fields,
            Self::Chat(t) => &t.fields,
        }
    }

    /// The upstream call.
    pub fn prepare(
        &self,
        op: Operation,
        deployment: &Deployment,
        model: &str,
        request_fields: &Map<String, Json>,
        stream: bool,
        drop: &DropPolicy<'_>,
    ) -> Result<PreparedCall, ProviderError> {
        match self {
            Self::Native { fields, .. } => native::call(deployment, model, fields, drop.always),
            _ => prepare(
                self.op(op),
                deployment,
                model,
                self.fields(request_fields),
                stream,
                drop,
            ),
        }
    }

    /// How the upstream's stream is read.
    pub fn dialect(
        &self,
        deployment: &Deployment,
        model: &str,
        prompt_tokens: Option<u64>,
    ) -> Dialect {
        match self {
            Self::Native { scope, .. } => {
                Dialect::Passthrough(Box::new(native::NativeEvents::new(scope.clone())))
            }
            _ => Dialect::of(deployment.provider, model, prompt_tokens),
        }
    }

    /// A whole reply (in OpenAI's shape) as relayed, and its usage: a native Response gets its
    /// routable id; chat is translated later (after any reshaping), by [`Self::finish_reply`].
    pub fn read_reply(
        &self,
        body: Bytes,
        deployment: &Deployment,
    ) -> Result<(Bytes, Option<Usage>), ProviderError> {
        match self {
            Self::Native { scope, .. } => native::reply(&body, scope).map_err(|e| {
                ProviderError::connection(deployment.provider, format!("unreadable reply: {e}"))
            }),
            _ => {
                let usage = usage_of(&body);
                Ok((body, usage))
            }
        }
    }

    /// The reply the client gets: a translated chat reply as a Response (remembered for
    /// `previous_response_id`); any other as it is.
    pub fn finish_reply(&mut self, body: Bytes) -> Bytes {
        let Self::Chat(t) = self else {
            return body;
        };
        let Ok(chat) = serde_json::from_slice::<Json>(&body) else {
            return body;
        };
        let response = reply::from_chat(&chat, std::mem::take(&mut t.skeleton), &t.id);
        if let Some(keep) = t.keep.take() {
            keep.remember(&response);
        }
        serde_json::to_vec(&response).map_or(body, Bytes::from)
    }

    /// The stream the client gets: a translated chat stream as Responses events; any other as
    /// it is. `model` is the model called (a chunk's own wins).
    pub fn stream<S>(self, inner: S, model: &str) -> Either<S, ResponsesEvents<S>> {
        match self {
            Self::Chat(t) => {
                let t = *t;
                let writer =
                    EventWriter::new(t.skeleton, &t.id, crate::providers::unix_now(), model);
                Either::Right(ResponsesEvents::new(inner, writer, t.keep))
            }
            _ => Either::Left(inner),
        }
    }
}

/// The deployment a follow-up must go to: the one holding the response `previous_response_id`
/// names, when it is one of `group`'s members.
pub fn pinned(fields: &Map<String, Json>, topology: &Topology, group: usize) -> Option<usize> {
    let id = fields.get("previous_response_id")?.as_str()?;
    let decoded = ids::decode(id)?;
    let members = topology.catalog.members().get(group)?;
    members.iter().copied().find(|&m| {
        topology
            .get(m)
            .is_some_and(|d| d.id == decoded.deployment_id)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CliOverrides;
    use serde_json::json;

    fn settings() -> Settings {
        Settings::from_yaml(
            "model_list:\n  - model_name: g\n    litellm_params: {model: openai/gpt-4o, api_key: k}\n    model_info: {id: native-1}\n  - model_name: g\n    litellm_params: {model: anthropic/claude-x, api_key: k}\n    model_info: {id: claude-1}\n",
            &CliOverrides::default(),
        )
        .unwrap()
    }

    fn request(body: Json) -> ModelRequest {
        ModelRequest::parse(Operation::Responses, body.to_string().as_bytes(), None).unwrap()
    }

    fn asker<'a>(
        s: &'a Settings,
        store: &'a ConversationStore,
        owner: Option<&'a str>,
    ) -> Asker<'a> {
        Asker {
            owner,
            store,
            settings: s,
        }
    }

    #[test]
    fn a_native_deployment_gets_the_fields_as_sent_and_others_get_chat() {
        let s = settings();
        let store = ConversationStore::default();
        let r = request(json!({"model": "g", "input": "hi"}));
        let native = Wire::plan(
            Operation::Responses,
            &s.deployments[0],
            &r,
            asker(&s, &store, None),
            false,
        )
        .unwrap();
        assert!(native.is_native());
        assert_eq!(native.fields(&r.fields)["input"], "hi");
        let chat = Wire::plan(
            Operation::Responses,
            &s.deployments[1],
            &r,
            asker(&s, &store, None),
            false,
        )
        .unwrap();
        assert_eq!(chat.op(Operation::Responses), Operation::Chat);
        assert_eq!(
            chat.fields(&r.fields)["messages"],
            json!([{"role": "user", "content": "hi"}])
        );
        let mocked = Wire::plan(
            Operation::Responses,
            &s.deployments[0],
            &r,
            asker(&s, &store, None),
            true,
        )
        .unwrap();
        assert!(!mocked.is_native(), "a mock answers as chat");
    }

    #[test]
    fn a_native_previous_id_is_decoded_for_its_provider_and_pins_its_deployment() {
        let s = settings();
        let store = ConversationStore::default();
        let scope = Scope {
            provider: "openai",
            deployment_id: "native-1".into(),
            owner: Some("a".repeat(64)),
        };
        let id = scope.encode("resp_up1");
        let r = request(json!({"model": "g", "input": "more", "previous_response_id": id}));
        let owner = "a".repeat(64);
        let wire = Wire::plan(
            Operation::Responses,
            &s.deployments[0],
            &r,
            asker(&s, &store, Some(&owner)),
            false,
        )
        .unwrap();
        assert_eq!(wire.fields(&r.fields)["previous_response_id"], "resp_up1");
        let topology = Topology::initial(crate::topology::Wanted::from_config(&s), &s);
        assert_eq!(pinned(&r.fields, &topology, 0), Some(0));
        let other = "b".repeat(64);
        let err = Wire::plan(
            Operation::Responses,
            &s.deployments[0],
            &r,
            asker(&s, &store, Some(&other)),
            false,
        )
        .err()
        .unwrap();
        assert_eq!(err.param.as_deref(), Some("previous_response_id"));
        let err = Wire::plan(
            Operation::Responses,
            &s.deployments[1],
            &r,
            asker(&s, &store, Some(&owner)),
            false,
        )
        .err()
        .unwrap();
        assert!(err.message.contains("native-1"), "{}", err.message);
    }

    #[test]
    fn a_translated_reply_is_remembered_and_continues_on_either_kind_of_deployment() {
        let s = settings();
        let store = ConversationStore::default();
        let r = request(json!({"model": "g", "input": "first", "instructions": "Be brief."}));
        let mut wire = Wire::plan(
            Operation::Responses,
            &s.deployments[1],
            &r,
            asker(&s, &store, None),
            false,
        )
        .unwrap();
        let chat = json!({"id": "c", "created": 1, "model": "claude-x", "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "one"}}]});
        let body = wire.finish_reply(Bytes::from(chat.to_string()));
        let response: Json = serde_json::from_slice(&body).unwrap();
        let id = response["id"].as_str().unwrap();
        assert_eq!(response["output"][0]["content"][0]["text"], "one");

        let follow = request(json!({"model": "g", "input": "second", "previous_response_id": id}));
        let chat = Wire::plan(
            Operation::Responses,
            &s.deployments[1],
            &follow,
            asker(&s, &store, None),
            false,
        )
        .unwrap();
        assert_eq!(
            chat.fields(&follow.fields)["messages"],
            json!([
                {"role": "user", "content": "first"},
                {"role": "assistant", "content": "one"},
                {"role": "user", "content": "second"},
            ])
        );
        let native = Wire::plan(
            Operation::Responses,
            &s.deployments[0],
            &follow,
            asker(&s, &store, None),
            false,
        )
        .unwrap();
        let fields = native.fields(&follow.fields);
        assert!(!fields.contains_key("previous_response_id"));
        assert_eq!(fields["input"].as_array().unwrap().len(), 3);

        let unknown =
            request(json!({"model": "g", "input": "x", "previous_response_id": "resp_nowhere"}));
        let err = Wire::plan(
            Operation::Responses,
            &s.deployments[1],
            &unknown,
            asker(&s, &store, None),
            false,
        )
        .err()
        .unwrap();
        assert_eq!(
            (err.status, err.param.as_deref()),
            (400, Some("previous_response_id"))
        );
    }

    #[test]
    fn store_false_keeps_nothing() {
        let s = settings();
        let store = ConversationStore::default();
        let r = request(json!({"model": "g", "input": "x", "store": false}));
        let mut wire = Wire::plan(
            Operation::Responses,
            &s.deployments[1],
            &r,
            asker(&s, &store, None),
            false,
        )
        .unwrap();
        let chat = json!({"choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "y"}}]});
        wire.finish_reply(Bytes::from(chat.to_string()));
        assert!(store.is_empty());
    }
}
