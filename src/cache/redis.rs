//! `RedisStore`: cached replies in Redis, shared by every instance (`SET .. PX ttl`, `GET`).
//! Redis being slow or down is a miss and a skipped write, never a failed request.

use std::time::Duration;

use bytes::Bytes;

use super::entry::Entry;
use crate::config::RedisTarget;
use crate::shared::Redis;

/// Connections kept to the cache's Redis (each one multiplexes many commands).
const POOL_SIZE: u32 = 4;

/// A handle on the cache's Redis; cheap to clone.
#[derive(Clone, Debug)]
pub struct RedisStore {
    redis: Redis,
}

impl RedisStore {
    /// A store on `target`; nothing connects until first used.
    pub fn new(target: &RedisTarget) -> Result<Self, redis::RedisError> {
        Ok(Self {
            redis: Redis::new(target, POOL_SIZE)?,
        })
    }

    fn redis_key(&self, key: &str) -> String {
        let mut rest = String::with_capacity(6 + key.len());
        rest.push_str("cache:");
        rest.push_str(key);
        self.redis.key(&rest)
    }

    /// The entry under `key`, unless older than `max_age`; `None` also when Redis fails.
    pub async fn get(&self, key: &str, max_age: Option<Duration>) -> Option<Entry> {
        let k = self.redis_key(key);
        let stored: Option<Vec<u8>> = self
            .redis
            .run("cache get", |mut conn| async move {
                redis::cmd("GET").arg(&k).query_async(&mut conn).await
            })
            .await
            .ok()?;
        let entry = Entry::decode(Bytes::from(stored?))?;
        match max_age {
            Some(max) if entry.age_ms(super::entry::now_ms()) > max.as_millis() as u64 => None,
            _ => Some(entry),
        }
    }

    /// Writes `entry` under `key` for `ttl` in the background: the reply never waits for it.
    pub fn put(&self, key: &str, entry: &Entry, ttl: Duration) {
        let k = self.redis_key(key);
        let value = entry.encode();
        let ttl_ms = ttl.as_millis().max(1) as u64;
        let redis = self.redis.clone();
        actix_rt::spawn(async move {
            let _ = redis
                .run("cache set", |mut conn| async move {
                    redis::cmd("SET")
                        .arg(&k)
                        .arg(value)
                        .arg("PX")
                        .arg(ttl_ms)
                        .query_async::<()>(&mut conn)
                        .await
                })
                .await;
        });
    }

    /// Whether Redis answered last time (or is due to be tried again).
    pub fn is_up(&self) -> bool {
        self.redis.is_up()
    }
}
