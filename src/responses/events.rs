//! A chat stream rewritten as the Responses event sequence as it flows: `response.created`,
//! `response.in_progress`, then per output item `response.output_item.added`, its content
//! part, text, reasoning or function-argument deltas and their `.done` events,
//! `response.output_item.done`, and last `response.completed` (or `response.incomplete`) with
//! the usage and its cost. An in-band error becomes the `error` event, and the stream ends.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use serde_json::{json, Map, Value as Json};

use super::reply::{self, call_item, message_item, reasoning_item, text_part};
use super::store::Keep;

/// One output item as it is being written.
#[derive(Debug)]
enum Item {
    Reasoning {
        id: String,
        text: String,
    },
    Message {
        id: String,
        text: String,
    },
    Call {
        id: String,
        call_id: String,
        name: String,
        arguments: String,
        /// The chat stream's `tool_calls[].index`.
        index: u64,
    },
}

impl Item {
    fn id(&self) -> &str {
        match self {
            Self::Reasoning { id, .. } | Self::Message { id, .. } | Self::Call { id, .. } => id,
        }
    }

    /// The item as finished.
    fn done(&self) -> Json {
        match self {
            Self::Reasoning { id, text } => reasoning_item(id, text),
            Self::Message { id, text } => message_item(id, "completed", vec![text_part(text)]),
            Self::Call {
                id,
                call_id,
                name,
                arguments,
                ..
            } => call_item(id, "completed", call_id, name, arguments),
        }
    }
}

/// Writes the Responses events for a chat stream, chunk by chunk.
#[derive(Debug)]
pub struct EventWriter {
    response: Map<String, Json>,
    seq: u64,
    started: bool,
    items: Vec<Item>,
    /// The output index of the item deltas go to, while one is open.
    open: Option<usize>,
    finish_reason: Option<String>,
    usage: Option<Json>,
    ended: bool,
}

fn event(kind: &str, data: &Json, out: &mut String) {
    out.push_str("event: ");
    out.push_str(kind);
    out.push_str("\ndata: ");
    out.push_str(&data.to_string());
    out.push_str("\n\n");
}

impl EventWriter {
    /// A writer for the Response `id` on `skeleton` (see [`reply::skeleton`]), created at
    /// `created_at` by `model` (a chunk's own `model` wins).
    pub fn new(mut skeleton: Map<String, Json>, id: &str, created_at: u64, model: &str) -> Self {
        skeleton.insert("id".into(), json!(id));
        skeleton.insert("created_at".into(), json!(created_at));
        skeleton.insert("model".into(), json!(model));
        Self {
            response: skeleton,
            seq: 0,
            started: false,
            items: Vec::new(),
            open: None,
            finish_reason: None,
            usage: None,
            ended: false,
        }
    }

    /// Whether the stream has had its last event.
    pub fn ended(&self) -> bool {
        self.ended
    }

    fn emit(&mut self, kind: &str, mut data: Json, out: &mut String) {
        if let Some(map) = data.as_object_mut() {
            // `type` and `sequence_number` first, as OpenAI writes them.
            let mut ordered = Map::with_capacity(map.len() + 2);
            ordered.insert("type".into(), json!(kind));
            ordered.insert("sequence_number".into(), json!(self.seq));
            ordered.append(map);
            data = Json::Object(ordered);
        }
        self.seq += 1;
        event(kind, &data, out);
    }

    /// The Response as it stands, with `status`.
    fn snapshot(&self, status: &str, output: Vec<Json>) -> Json {
        let mut r = self.response.clone();
        r.insert("status".into(), json!(status));
        r.insert("output".into(), Json::Array(output));
        Json::Object(r)
    }

    fn start(&mut self, out: &mut String) {
        if self.started {
            return;
        }
        self.started = true;
        let created = self.snapshot("in_progress", Vec::new());
        self.emit("response.created", json!({"response": created}), out);
        let progress = self.snapshot("in_progress", Vec::new());
        self.emit("response.in_progress", json!({"response": progress}), out);
    }

    /// Writes the events for one chat chunk (or the relay's in-band error) to `out`.
    pub fn chunk(&mut self, chunk: &Json, out: &mut String) {
        if self.ended {
            return;
        }
        if chunk.get("error").is_some() && chunk.get("choices").is_none() {
            self.error(chunk, out);
            return;
        }
        if !self.started {
            if let Some(model) = chunk.get("model").filter(|m| m.is_string()) {
                self.response.insert("model".into(), model.clone());
            }
        }
        self.start(out);
        if chunk["usage"].is_object() {
            self.usage = Some(reply::usage(&chunk["usage"]));
        }
        let Some(choice) = chunk["choices"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["index"].as_u64().unwrap_or(0) == 0))
        else {
            return;
        };
        let delta = &choice["delta"];
        if let Some(text) = delta["reasoning_content"]
            .as_str()
            .filter(|t| !t.is_empty())
        {
            self.reasoning(text, out);
        }
        if let Some(text) = delta["content"].as_str().filter(|t| !t.is_empty()) {
            self.text(text, out);
        }
        for (position, call) in delta["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            self.call(call, position as u64, out);
        }
        if let Some(reason) = choice["finish_reason"].as_str() {
            self.finish_reason = Some(reason.to_owned());
        }
    }

    fn open_item(&mut self, item: Item, out: &mut String) -> usize {
        self.close(out);
        let index = self.items.len();
        let added = match &item {
            Item::Reasoning { id, .. } => json!({"id": id, "type": "reasoning", "summary": []}),
            Item::Message { id, .. } => message_item(id, "in_progress", Vec::new()),
            Item::Call {
                id, call_id, name, ..
            } => call_item(id, "in_progress", call_id, name, ""),
        };
        let id = item.id().to_owned();
        let is_message = matches!(item, Item::Message { .. });
        let is_reasoning = matches!(item, Item::Reasoning { .. });
        self.items.push(item);
        self.open = Some(index);
        self.emit(
            "response.output_item.added",
            json!({"output_index": index, "item": added}),
            out,
        );
        if is_message {
            self.emit(
                "response.content_part.added",
                json!({"item_id": id, "output_index": index, "content_index": 0, "part": text_part("")}),
                out,
            );
        } else if is_reasoning {
            self.emit(
                "response.reasoning_summary_part.added",
                json!({"item_id": id, "output_index": index, "summary_index": 0, "part": {"type": "summary_text", "text": ""}}),
                out,
            );
        }
        index
    }

    /// Closes the open item, with its `.done` events.
    fn close(&mut self, out: &mut String) {
        let Some(index) = self.open.take() else {
            return;
        };
        let Some(item) = self.items.get(index) else {
            return;
        };
        let done = item.done();
        let mut events = Vec::with_capacity(3);
        match item {
            Item::Reasoning { id, text } => {
                events.push((
                    "response.reasoning_summary_text.done",
                    json!({"item_id": id, "output_index": index, "summary_index": 0, "text": text}),
                ));
                events.push(("response.reasoning_summary_part.done", json!({"item_id": id, "output_index": index, "summary_index": 0, "part": {"type": "summary_text", "text": text}})));
            }
            Item::Message { id, text } => {
                events.push(("response.output_text.done", json!({"item_id": id, "output_index": index, "content_index": 0, "text": text, "logprobs": []})));
                events.push(("response.content_part.done", json!({"item_id": id, "output_index": index, "content_index": 0, "part": text_part(text)})));
            }
            Item::Call {
                id,
                name,
                arguments,
                ..
            } => {
                events.push(("response.function_call_arguments.done", json!({"item_id": id, "output_index": index, "name": name, "arguments": arguments})));
            }
        }
        events.push((
            "response.output_item.done",
            json!({"output_index": index, "item": done}),
        ));
        for (kind, data) in events {
            self.emit(kind, data, out);
        }
    }

    fn open_kind(&self) -> Option<&Item> {
        self.open.and_then(|i| self.items.get(i))
    }

    fn reasoning(&mut self, text: &str, out: &mut String) {
        let index = match self.open_kind() {
            Some(Item::Reasoning { .. }) => self.open.unwrap_or_default(),
            _ => self.open_item(
                Item::Reasoning {
                    id: super::ids::item("rs"),
                    text: String::new(),
                },
                out,
            ),
        };
        let Some(Item::Reasoning { id, text: all }) = self.items.get_mut(index) else {
            return;
        };
        all.push_str(text);
        let id = id.clone();
        self.emit(
            "response.reasoning_summary_text.delta",
            json!({"item_id": id, "output_index": index, "summary_index": 0, "delta": text}),
            out,
        );
    }

    fn text(&mut self, text: &str, out: &mut String) {
        let index = match self.open_kind() {
            Some(Item::Message { .. }) => self.open.unwrap_or_default(),
            _ => self.open_item(
                Item::Message {
                    id: super::ids::item("msg"),
                    text: String::new(),
                },
                out,
            ),
        };
        let Some(Item::Message { id, text: all }) = self.items.get_mut(index) else {
            return;
        };
        all.push_str(text);
        let id = id.clone();
        self.emit(
            "response.output_text.delta",
            json!({"item_id": id, "output_index": index, "content_index": 0, "delta": text, "logprobs": []}),
            out,
        );
    }

    fn call(&mut self, call: &Json, position: u64, out: &mut String) {
        let chat_index = call["index"].as_u64().unwrap_or(position);
        let open_here =
            matches!(self.open_kind(), Some(Item::Call { index, .. }) if *index == chat_index);
        let index = if open_here {
            self.open.unwrap_or_default()
        } else {
            if self
                .items
                .iter()
                .any(|i| matches!(i, Item::Call { index, .. } if *index == chat_index))
            {
                // A late piece of a call already finished: chat providers stream one call
                // after another, so this does not happen in practice.
                log::debug!("dropping a late delta of tool call {chat_index}");
                return;
            }
            self.open_item(
                Item::Call {
                    id: super::ids::item("fc"),
                    call_id: call["id"]
                        .as_str()
                        .map_or_else(|| super::ids::item("call"), str::to_owned),
                    name: call["function"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    arguments: String::new(),
                    index: chat_index,
                },
                out,
            )
        };
        let Some(piece) = call["function"]["arguments"]
            .as_str()
            .filter(|a| !a.is_empty())
        else {
            return;
        };
        let Some(Item::Call { id, arguments, .. }) = self.items.get_mut(index) else {
            return;
        };
        arguments.push_str(piece);
        let id = id.clone();
        self.emit(
            "response.function_call_arguments.delta",
            json!({"item_id": id, "output_index": index, "delta": piece}),
            out,
        );
    }

    /// The chat stream ended well (`[DONE]`): closes what is open and writes the final event.
    /// Returns the finished Response.
    pub fn finish(&mut self, out: &mut String) -> Json {
        self.start(out);
        self.close(out);
        if self.items.is_empty() {
            // A reply with nothing in it still has its (empty) message, as a whole reply does.
            self.text_item_empty(out);
        }
        let (status, incomplete) = reply::status_of(self.finish_reason.as_deref());
        let output = self.items.iter().map(Item::done).collect();
        let mut response = self.snapshot(status, output);
        response["incomplete_details"] = incomplete;
        if let Some(usage) = self.usage.take() {
            response["usage"] = usage;
        }
        let kind = if status == "completed" {
            "response.completed"
        } else {
            "response.incomplete"
        };
        self.emit(kind, json!({"response": response}), out);
        self.ended = true;
        response
    }

    fn text_item_empty(&mut self, out: &mut String) {
        self.open_item(
            Item::Message {
                id: super::ids::item("msg"),
                text: String::new(),
            },
            out,
        );
        self.close(out);
    }

    /// The `error` event for an error body (`{"error": {...}}`), after the start events when
    /// nothing was sent yet; the stream ends with it.
    pub fn error(&mut self, body: &Json, out: &mut String) {
        if self.ended {
            return;
        }
        self.start(out);
        let e = &body["error"];
        let code = e["type"]
            .as_str()
            .or_else(|| e["code"].as_str())
            .unwrap_or("api_error");
        self.emit(
            "error",
            json!({"code": code, "message": e["message"].as_str().unwrap_or("stream failed"), "param": e["param"]}),
            out,
        );
        self.ended = true;
    }
}

/// A chat SSE stream (the pipeline's, or a mock's), rewritten as Responses events.
pub struct ResponsesEvents<S> {
    inner: S,
    line: BytesMut,
    writer: EventWriter,
    keep: Option<Keep>,
    inner_done: bool,
}

impl<S> ResponsesEvents<S> {
    /// Rewrites `inner` with `writer`; `keep` remembers the finished conversation.
    pub fn new(inner: S, writer: EventWriter, keep: Option<Keep>) -> Self {
        Self {
            inner,
            line: BytesMut::new(),
            writer,
            keep,
            inner_done: false,
        }
    }

    /// Translates every complete line in `bytes`; returns the events written.
    pub fn feed(&mut self, bytes: &[u8]) -> String {
        let mut out = String::new();
        self.line.extend_from_slice(bytes);
        while let Some(at) = self.line.iter().position(|&b| b == b'\n') {
            let line = self.line.split_to(at + 1);
            if self.writer.ended() {
                continue;
            }
            let Some(data) = line.strip_prefix(b"data:") else {
                continue;
            };
            let data = data.trim_ascii();
            if data == b"[DONE]" {
                let response = self.writer.finish(&mut out);
                if let Some(keep) = self.keep.take() {
                    keep.remember(&response);
                }
            } else if let Ok(chunk) = serde_json::from_slice::<Json>(data) {
                self.writer.chunk(&chunk, &mut out);
            }
        }
        out
    }

    fn cut_short(&mut self) -> String {
        let mut out = String::new();
        if !self.writer.ended() {
            let body = json!({"error": {"message": "the stream ended before the reply was complete", "type": "api_connection_error", "param": null, "code": "502"}});
            self.writer.error(&body, &mut out);
        }
        out
    }
}

impl<S> Stream for ResponsesEvents<S>
where
    S: Stream<Item = Result<Bytes, actix_web::Error>> + Unpin,
{
    type Item = Result<Bytes, actix_web::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.inner_done {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.inner).poll_next(cx) {
                // After the last event the inner stream is read to its end (the relay drains
                // its upstream so the connection can be reused), and nothing more is sent.
                Poll::Ready(Some(Ok(_))) if this.writer.ended() => {}
                Poll::Ready(Some(Err(_))) if this.writer.ended() => {
                    this.inner_done = true;
                }
                Poll::Ready(Some(Ok(bytes))) => {
                    let out = this.feed(&bytes);
                    if !out.is_empty() {
                        return Poll::Ready(Some(Ok(Bytes::from(out))));
                    }
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => {
                    this.inner_done = true;
                    let out = this.cut_short();
                    return Poll::Ready((!out.is_empty()).then(|| Ok(Bytes::from(out))));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(text: &str) -> Vec<Json> {
        text.split("\n\n")
            .filter(|e| !e.trim().is_empty())
            .map(|e| {
                let mut lines = e.lines();
                let kind = lines.next().unwrap().strip_prefix("event: ").unwrap();
                let data: Json =
                    serde_json::from_str(lines.next().unwrap().strip_prefix("data: ").unwrap())
                        .unwrap();
                assert_eq!(data["type"], kind, "the event line names the data's type");
                data
            })
            .collect()
    }

    fn writer() -> EventWriter {
        EventWriter::new(reply::skeleton(&Map::new(), None), "resp_t", 7, "m")
    }

    /// Random item ids replaced, for comparing with the recorded sequence.
    fn stable(mut v: Json) -> Json {
        fn walk(v: &mut Json) {
            match v {
                Json::Object(m) => {
                    for (k, x) in m.iter_mut() {
                        if (k == "id" || k == "item_id")
                            && x.as_str().is_some_and(|s| {
                                s.starts_with("msg_")
                                    || s.starts_with("fc_")
                                    || s.starts_with("rs_")
                            })
                        {
                            *x = json!("ID");
                        } else {
                            walk(x);
                        }
                    }
                }
                Json::Array(a) => a.iter_mut().for_each(walk),
                _ => {}
            }
        }
        walk(&mut v);
        v
    }

    #[test]
    fn the_recorded_chat_stream_becomes_the_recorded_event_sequence() {
        let chunks =
            include_str!("../../tests/fixtures/openai/responses_stream_from_chat.openai.jsonl");
        let want = include_str!("../../tests/fixtures/openai/responses_stream_from_chat.sse");
        let mut stream = ResponsesEvents::new(
            futures_util::stream::empty::<Result<Bytes, actix_web::Error>>(),
            writer(),
            None,
        );
        let mut got = String::new();
        for line in chunks.lines().filter(|l| !l.is_empty()) {
            got.push_str(&stream.feed(format!("data: {line}\n\n").as_bytes()));
        }
        got.push_str(&stream.feed(b"data: [DONE]\n\n"));
        let got: Vec<Json> = events(&got).into_iter().map(stable).collect();
        let want: Vec<Json> = events(want);
        assert_eq!(got.len(), want.len(), "{got:#?}");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g, w);
        }
        let numbers: Vec<u64> = got
            .iter()
            .map(|e| e["sequence_number"].as_u64().unwrap())
            .collect();
        assert_eq!(numbers, (0..got.len() as u64).collect::<Vec<_>>());
    }

    #[test]
    fn an_error_before_any_chunk_still_opens_the_response_then_ends() {
        let mut w = writer();
        let mut out = String::new();
        w.chunk(
            &json!({"error": {"message": "boom", "type": "api_connection_error", "param": null, "code": "502"}}),
            &mut out,
        );
        let kinds: Vec<String> = events(&out)
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(kinds, ["response.created", "response.in_progress", "error"]);
        assert_eq!(events(&out)[2]["code"], "api_connection_error");
        assert!(w.ended());
        w.chunk(
            &json!({"choices": [{"index": 0, "delta": {"content": "late"}}]}),
            &mut out,
        );
        assert_eq!(events(&out).len(), 3, "nothing follows the error");
    }

    #[test]
    fn a_length_stop_ends_with_response_incomplete() {
        let mut w = writer();
        let mut out = String::new();
        w.chunk(&json!({"choices": [{"index": 0, "delta": {"content": "cut"}, "finish_reason": "length"}]}), &mut out);
        let r = w.finish(&mut out);
        assert_eq!(r["status"], "incomplete");
        assert_eq!(events(&out).last().unwrap()["type"], "response.incomplete");
    }

    #[test]
    fn a_stream_cut_short_ends_with_an_error_event() {
        let mut stream = ResponsesEvents::new(
            futures_util::stream::empty::<Result<Bytes, actix_web::Error>>(),
            writer(),
            None,
        );
        let mut out =
            stream.feed(b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"he\"}}]}\n\n");
        out.push_str(&stream.cut_short());
        assert_eq!(events(&out).last().unwrap()["type"], "error");
    }
}
