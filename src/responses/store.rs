//! Recent translated conversations, kept per instance so `previous_response_id` works for
//! deployments served through chat: each finished response's conversation (the earlier turns,
//! its input and its output, as Responses items) under its id, the oldest forgotten first.
//!
//! Only translated responses are kept (a native one lives at its provider). A response is kept
//! unless the request said `store: false`; the store holds at most [`MAX_ENTRIES`]
//! conversations and [`MAX_BYTES`] of them. It is touched once when a translated response
//! finishes and once when a request names an earlier one, never on the chat path; the lock is
//! held for a map insert or lookup only.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde_json::Value as Json;

/// Conversations kept at most.
pub const MAX_ENTRIES: usize = 1000;

/// Bytes of conversations (serialized JSON) kept at most.
pub const MAX_BYTES: usize = 64 * 1024 * 1024;

/// One finished response's conversation.
#[derive(Debug, Clone)]
pub struct Conversation {
    /// The SHA-256 hex of the virtual key that made it (`None`: the master key or no auth).
    pub owner: Option<String>,
    /// The items, a JSON array.
    items: Bytes,
}

impl Conversation {
    /// The items of the conversation, oldest first.
    pub fn items(&self) -> Vec<Json> {
        serde_json::from_slice(&self.items).unwrap_or_default()
    }

    /// Whether the caller whose key hash is `token` may continue it: the master key any, a
    /// virtual key only its own.
    pub fn allows(&self, token: Option<&str>) -> bool {
        match (&self.owner, token) {
            (_, None) => true,
            (Some(owner), Some(token)) => owner == token,
            (None, Some(_)) => false,
        }
    }
}

#[derive(Default)]
struct Inner {
    by_id: HashMap<String, Conversation>,
    order: VecDeque<String>,
    bytes: usize,
}

/// The store; cheap to clone.
#[derive(Clone, Default)]
pub struct ConversationStore {
    inner: Arc<Mutex<Inner>>,
}

impl ConversationStore {
    /// Keeps `items` as the conversation of response `id`.
    pub fn insert(&self, id: &str, owner: Option<&str>, items: &[Json]) {
        let Ok(items) = serde_json::to_vec(items) else {
            return;
        };
        if items.len() > MAX_BYTES {
            return;
        }
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        inner.bytes += items.len();
        let conversation = Conversation {
            owner: owner.map(str::to_owned),
            items: Bytes::from(items),
        };
        if let Some(old) = inner.by_id.insert(id.to_owned(), conversation) {
            inner.bytes -= old.items.len();
        } else {
            inner.order.push_back(id.to_owned());
        }
        while inner.order.len() > MAX_ENTRIES || inner.bytes > MAX_BYTES {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            if let Some(gone) = inner.by_id.remove(&oldest) {
                inner.bytes -= gone.items.len();
            }
        }
    }

    /// The conversation of response `id`, if it is still kept.
    pub fn get(&self, id: &str) -> Option<Conversation> {
        self.inner.lock().ok()?.by_id.get(id).cloned()
    }

    /// How many conversations are kept.
    pub fn len(&self) -> usize {
        self.inner.lock().map_or(0, |i| i.by_id.len())
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a translated response remembers once it finishes: where, under which id, for whom,
/// and the conversation up to its output.
#[derive(Debug)]
pub struct Keep {
    store: ConversationStore,
    id: String,
    owner: Option<String>,
    items: Vec<Json>,
}

impl std::fmt::Debug for ConversationStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConversationStore")
            .field("conversations", &self.len())
            .finish()
    }
}

impl Keep {
    /// Keeps the conversation `items` (earlier turns and this input) as response `id`'s once
    /// its output is known.
    pub fn new(
        store: ConversationStore,
        id: String,
        owner: Option<String>,
        items: Vec<Json>,
    ) -> Self {
        Self {
            store,
            id,
            owner,
            items,
        }
    }

    /// Adds the finished `response`'s output and stores the conversation.
    pub fn remember(mut self, response: &Json) {
        self.items
            .extend(response["output"].as_array().into_iter().flatten().cloned());
        self.store
            .insert(&self.id, self.owner.as_deref(), &self.items);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_kept_conversation_comes_back_for_its_owner_only() {
        let store = ConversationStore::default();
        store.insert(
            "resp_1",
            Some("abc"),
            &[json!({"role": "user", "content": "hi"})],
        );
        let c = store.get("resp_1").unwrap();
        assert_eq!(c.items(), vec![json!({"role": "user", "content": "hi"})]);
        assert!(c.allows(Some("abc")));
        assert!(c.allows(None), "the master key may continue any");
        assert!(!c.allows(Some("other")));
        assert!(store.get("resp_2").is_none());
    }

    #[test]
    fn the_oldest_conversations_are_forgotten_past_the_bound() {
        let store = ConversationStore::default();
        for i in 0..MAX_ENTRIES + 5 {
            store.insert(&format!("resp_{i}"), None, &[json!(i)]);
        }
        assert_eq!(store.len(), MAX_ENTRIES);
        assert!(store.get("resp_0").is_none());
        assert!(store.get("resp_4").is_none());
        assert!(store.get("resp_5").is_some());
    }

    #[test]
    fn keep_adds_the_output_to_the_conversation() {
        let store = ConversationStore::default();
        let keep = Keep::new(
            store.clone(),
            "resp_k".into(),
            None,
            vec![json!({"role": "user", "content": "q"})],
        );
        keep.remember(
            &json!({"output": [{"type": "message", "role": "assistant", "content": []}]}),
        );
        assert_eq!(store.get("resp_k").unwrap().items().len(), 2);
    }
}
