//! State shared between instances through Redis: key and deployment limits checked atomically,
//! cooldowns and key changes broadcast, with local state whenever Redis is unreachable.

pub mod events;
pub mod limits;
pub mod redis;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ::redis::Script;

pub use self::limits::{Checks, Remaining, Ticket, Verdict};
pub use self::redis::{Redis, Unavailable};

/// Limits, cooldowns and key changes shared through one Redis; cheap to clone.
#[derive(Clone)]
pub struct Shared {
    /// The connection.
    pub redis: Redis,
    admit: Arc<Script>,
    settle: Arc<Script>,
    /// This process, in slot ids and in the events it sends (so it ignores its own).
    instance: Arc<str>,
    next_slot: Arc<AtomicU64>,
    /// How long a parallel-request slot outlives an instance that died holding it.
    pub slot_lifetime: Duration,
}

impl Shared {
    /// Shared state on `redis`, slots held at most `slot_lifetime`.
    pub fn new(redis: Redis, slot_lifetime: Duration) -> Self {
        Self {
            redis,
            admit: Arc::new(Script::new(include_str!("lua/admit.lua"))),
            settle: Arc::new(Script::new(include_str!("lua/settle.lua"))),
            instance: Arc::from(crate::providers::random_uuid().simple().to_string()),
            next_slot: Arc::new(AtomicU64::new(0)),
            slot_lifetime,
        }
    }

    /// This instance's id.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The namespace every key is under.
    pub fn ns(&self) -> String {
        self.redis.key("").trim_end_matches(':').to_owned()
    }

    /// A new slot id, unique across instances.
    pub fn slot_id(&self) -> String {
        let n = self.next_slot.fetch_add(1, Ordering::Relaxed);
        format!("{}:{n}", self.instance)
    }

    /// Asks Redis to admit a request against `checks` (one round trip). `Err` means Redis is
    /// unreachable: the caller goes on with local state.
    pub async fn admit(&self, checks: &Checks, slot: &str) -> Result<Verdict, Unavailable> {
        let mut invocation = self.admit.prepare_invoke();
        invocation.arg(now_millis()).arg(slot);
        for k in checks.keys() {
            invocation.key(k);
        }
        for a in checks.args() {
            invocation.arg(a);
        }
        let reply: Vec<String> = self
            .redis
            .run("admit", |mut conn| async move {
                invocation.invoke_async(&mut conn).await
            })
            .await?;
        checks.verdict(&reply).ok_or_else(|| {
            self.redis.mark_down("admit", "unexpected reply");
            Unavailable
        })
    }

    /// Ends a request admitted with `ticket` (its slot `slot`), which used `tokens` and cost
    /// `cost`, without waiting: nothing is awaited on the request's way out. If Redis is
    /// unreachable the slot frees itself at its expiry.
    pub fn settle(&self, ticket: Ticket, slot: String, tokens: u64, cost: f64) {
        if ticket.is_empty() {
            return;
        }
        let (keys, args) = ticket.settlement(tokens, cost);
        let (redis, script) = (self.redis.clone(), self.settle.clone());
        actix_rt::spawn(async move {
            let mut invocation = script.prepare_invoke();
            invocation.arg(now_millis()).arg(slot);
            for k in &keys {
                invocation.key(k);
            }
            for a in &args {
                invocation.arg(a);
            }
            let _ = redis
                .run("settle", |mut conn| async move {
                    invocation.invoke_async::<i64>(&mut conn).await
                })
                .await;
        });
    }
}

impl Shared {
    /// Drops the shared spend counter of `token`'s budget period ending at `period` (an admin
    /// set its spend): the next admission starts it again from the database's figure.
    pub fn forget_spend(&self, token: &str, period: Option<chrono::DateTime<chrono::Utc>>) {
        let key = self.redis.key(&format!(
            "key:{token}:spend:{}",
            limits::period_name(period)
        ));
        let redis = self.redis.clone();
        actix_rt::spawn(async move {
            let _ = redis
                .run("forget spend", |mut conn| async move {
                    ::redis::cmd("DEL")
                        .arg(key)
                        .query_async::<i64>(&mut conn)
                        .await
                })
                .await;
        });
    }
}

/// Milliseconds since the Unix epoch: every instance's clock, which Redis windows compare.
pub fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
