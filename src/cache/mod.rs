//! The response cache (LiteLLM's `cache`): whole replies kept under a key of what decides them,
//! in this process's memory or in Redis, used as each request's controls allow.

pub mod assemble;
pub mod controls;
pub mod entry;
pub mod key;
pub mod local;
pub mod redis;
pub mod replay;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Map, Value as Json};

pub use controls::Controls;
pub use entry::{Entry, MAX_ENTRY_BYTES};

use self::assemble::Assembler;
use self::local::{LocalStore, MAX_TOTAL_BYTES};
use self::redis::RedisStore;
use crate::config::{CacheSettings, CacheStore};
use crate::providers::stream::StreamTap;
use crate::providers::{Operation, Usage};

enum Store {
    Local(LocalStore),
    Redis(RedisStore),
}

struct Inner {
    store: Store,
    ttl: Duration,
    namespace: Option<String>,
    /// Chat, completion, embedding: which are cached (`supported_call_types`).
    ops: [bool; 3],
    default_off: bool,
}

/// The response cache; cheap to clone.
#[derive(Clone)]
pub struct ResponseCache {
    inner: Arc<Inner>,
}

/// How one request uses the cache.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan<'a> {
    /// Look for a cached reply.
    pub read: bool,
    /// Accept only an entry at most this old (`s-maxage`).
    pub max_age: Option<Duration>,
    /// Store the reply for this long (`None`: do not store).
    pub store_ttl: Option<Duration>,
    /// The key's prefix.
    pub namespace: Option<&'a str>,
}

/// Where a miss's reply is to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreAs {
    /// The cache key.
    pub key: Arc<str>,
    /// How long it lives.
    pub ttl: Duration,
}

/// The slot of a cached operation; images, audio, moderations, rerank and Responses (not
/// chat-shaped: the cache's replay writes chat) are never cached.
fn op_slot(op: Operation) -> Option<usize> {
    match op {
        Operation::Chat => Some(0),
        Operation::Completion => Some(1),
        Operation::Embedding => Some(2),
        _ => None,
    }
}

/// The operations LiteLLM's `supported_call_types` names; an empty list means all.
fn cached_ops(call_types: &[String]) -> [bool; 3] {
    if call_types.is_empty() {
        return [true; 3];
    }
    let mut ops = [false; 3];
    for name in call_types {
        let op = match name.as_str() {
            "completion" | "acompletion" => Operation::Chat,
            "text_completion" | "atext_completion" => Operation::Completion,
            "embedding" | "aembedding" => Operation::Embedding,
            _ => continue,
        };
        if let Some(slot) = op_slot(op) {
            ops[slot] = true;
        }
    }
    ops
}

impl ResponseCache {
    /// The cache `settings` describe; a Redis cache connects on first use.
    pub fn new(settings: &CacheSettings) -> Result<Self, ::redis::RedisError> {
        let store = match &settings.store {
            CacheStore::Local => {
                Store::Local(LocalStore::new(settings.max_entries, MAX_TOTAL_BYTES))
            }
            CacheStore::Redis(target) => Store::Redis(RedisStore::new(target)?),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                ttl: settings.ttl,
                namespace: settings.namespace.clone(),
                ops: cached_ops(&settings.call_types),
                default_off: settings.default_off,
            }),
        })
    }

    /// The cache's type as `/health/readiness` reports it: `local` or `redis`.
    pub fn kind(&self) -> &'static str {
        match self.inner.store {
            Store::Local(_) => "local",
            Store::Redis(_) => "redis",
        }
    }

    /// How a request of `op` with `controls` uses the cache, or `None` when it does not: the
    /// call type is not cached, it sent `caching: false`, or the cache is `default_off` and it
    /// did not ask (`caching: true` or `cache: {"use-cache": true}`).
    pub fn plan<'a>(&'a self, op: Operation, controls: &'a Controls) -> Option<Plan<'a>> {
        let inner = &*self.inner;
        if !op_slot(op).is_some_and(|slot| inner.ops[slot])
            || controls.caching == Some(false)
            || controls.use_cache == Some(false)
        {
            return None;
        }
        let asked = controls.caching == Some(true) || controls.use_cache == Some(true);
        if inner.default_off && !asked {
            return None;
        }
        let store_ttl = match controls.ttl {
            _ if controls.no_store => None,
            Some(ttl) if ttl.is_zero() => None,
            Some(ttl) => Some(ttl),
            None => Some(inner.ttl),
        };
        Some(Plan {
            read: !controls.no_cache,
            max_age: controls.s_maxage,
            store_ttl,
            namespace: controls.namespace.as_deref().or(inner.namespace.as_deref()),
        })
    }

    /// The cached reply under `key`, unless older than `max_age`. A Redis fault is a miss.
    pub async fn get(&self, key: &str, max_age: Option<Duration>) -> Option<Entry> {
        match &self.inner.store {
            Store::Local(local) => local.get(key, max_age, Instant::now()),
            Store::Redis(redis) => redis.get(key, max_age).await,
        }
    }

    /// Stores a reply (never one over `MAX_ENTRY_BYTES`); a Redis write runs in the background.
    pub fn put(&self, to: &StoreAs, body: Bytes, usage: Usage) {
        if body.len() > MAX_ENTRY_BYTES {
            return;
        }
        let entry = Entry::new(body, usage);
        match &self.inner.store {
            Store::Local(local) => local.put(to.key.clone(), entry, to.ttl, Instant::now()),
            Store::Redis(redis) => redis.put(&to.key, &entry, to.ttl),
        }
    }

    /// A tap for a streamed miss: it rebuilds the reply from the chunks sent and stores it once
    /// the stream ends well.
    pub fn recorder(&self, to: StoreAs, op: Operation) -> Box<dyn StreamTap> {
        Box::new(Recorder {
            cache: self.clone(),
            to,
            assembler: Assembler::new(op),
        })
    }

    /// Entries in the local store (0 for Redis): for tests and metrics.
    pub fn local_len(&self) -> usize {
        match &self.inner.store {
            Store::Local(local) => local.len(),
            Store::Redis(_) => 0,
        }
    }
}

/// The cache key of a request (see [`key::reply_key`]).
pub fn key_of(plan: &Plan<'_>, op: Operation, model: &str, fields: &Map<String, Json>) -> Arc<str> {
    key::reply_key(plan.namespace, op, model, fields)
}

struct Recorder {
    cache: ResponseCache,
    to: StoreAs,
    assembler: Assembler,
}

impl StreamTap for Recorder {
    fn chunk(&mut self, data: &[u8]) {
        self.assembler.chunk(data);
    }

    fn finished(self: Box<Self>, usage: Usage) {
        let Recorder {
            cache,
            to,
            assembler,
        } = *self;
        // After `[DONE]` is queued: building and storing the reply never delays the client.
        actix_rt::spawn(async move {
            if let Some(body) = assembler.finish(usage) {
                cache.put(&to, body, usage);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(default_off: bool, call_types: &[&str]) -> ResponseCache {
        ResponseCache::new(&CacheSettings {
            store: CacheStore::Local,
            ttl: Duration::from_secs(600),
            namespace: Some("ns".into()),
            call_types: call_types.iter().map(|s| s.to_string()).collect(),
            default_off,
            max_entries: 10,
        })
        .unwrap()
    }

    fn controls(caching: Option<bool>, cache: serde_json::Value) -> Controls {
        let mut c = Controls {
            caching,
            ..Controls::default()
        };
        c.set_cache(&cache).unwrap();
        c
    }

    #[test]
    fn requests_opt_out_or_in_as_the_mode_says() {
        let on = cache(false, &[]);
        let none = controls(None, serde_json::json!({}));
        assert!(on.plan(Operation::Chat, &none).is_some());
        assert!(on
            .plan(
                Operation::Chat,
                &controls(Some(false), serde_json::json!({}))
            )
            .is_none());
        let off = cache(true, &[]);
        assert!(off.plan(Operation::Chat, &none).is_none());
        assert!(off
            .plan(
                Operation::Chat,
                &controls(Some(true), serde_json::json!({}))
            )
            .is_some());
        assert!(off
            .plan(
                Operation::Chat,
                &controls(None, serde_json::json!({"use-cache": true}))
            )
            .is_some());
    }

    #[test]
    fn controls_shape_the_plan() {
        let c = cache(false, &[]);
        let asked = controls(
            None,
            serde_json::json!({"no-cache": true, "ttl": 5, "s-maxage": 2, "namespace": "mine"}),
        );
        let plan = c.plan(Operation::Chat, &asked).unwrap();
        assert_eq!(
            plan,
            Plan {
                read: false,
                max_age: Some(Duration::from_secs(2)),
                store_ttl: Some(Duration::from_secs(5)),
                namespace: Some("mine"),
            }
        );
        let no_store = controls(None, serde_json::json!({"no-store": true}));
        let plan = c.plan(Operation::Chat, &no_store).unwrap();
        assert!(plan.read && plan.store_ttl.is_none() && plan.namespace == Some("ns"));
    }

    #[test]
    fn only_the_supported_call_types_are_cached() {
        let c = cache(false, &["aembedding"]);
        let none = Controls::default();
        assert!(c.plan(Operation::Embedding, &none).is_some());
        assert!(c.plan(Operation::Chat, &none).is_none());
        assert!(c.plan(Operation::Completion, &none).is_none());
    }

    #[test]
    fn a_reply_over_the_entry_limit_is_not_kept() {
        let c = cache(false, &[]);
        let to = StoreAs {
            key: "k".into(),
            ttl: Duration::from_secs(60),
        };
        c.put(
            &to,
            Bytes::from(vec![b' '; MAX_ENTRY_BYTES + 1]),
            Usage::default(),
        );
        assert_eq!(c.local_len(), 0);
        c.put(&to, Bytes::from_static(b"{}"), Usage::default());
        assert_eq!(c.local_len(), 1);
    }
}
