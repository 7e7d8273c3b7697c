//! `Redis`: a bb8 pool of multiplexed connections with a bounded wait on every command, and a
//! breaker that sends callers back to their local state while Redis is unreachable.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bb8::{ManageConnection, Pool};
use bb8_redis::RedisConnectionManager;
use redis::aio::MultiplexedConnection;
use redis::{RedisError, RedisResult};

use crate::config::RedisTarget;

/// The longest any command may take before the caller goes on without Redis.
pub const COMMAND_TIMEOUT: Duration = Duration::from_millis(250);

/// How long Redis is left alone after a failure before it is tried again.
pub const RETRY_EVERY: Duration = Duration::from_secs(1);

/// A pooled connection that remembers whether it broke, so the pool replaces it. Commands run
/// on a clone of the multiplexed connection, so the pool slot is not held for a round trip.
pub struct Conn {
    inner: MultiplexedConnection,
    broken: Arc<AtomicBool>,
}

/// bb8-redis's manager, with broken connections dropped instead of handed out again.
#[derive(Debug, Clone)]
pub struct Manager(RedisConnectionManager);

impl ManageConnection for Manager {
    type Connection = Conn;
    type Error = RedisError;

    async fn connect(&self) -> Result<Conn, RedisError> {
        Ok(Conn {
            inner: self.0.connect().await?,
            broken: Arc::new(AtomicBool::new(false)),
        })
    }

    async fn is_valid(&self, conn: &mut Conn) -> Result<(), RedisError> {
        self.0.is_valid(&mut conn.inner).await
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        conn.broken.load(Ordering::Relaxed)
    }
}

/// Whether Redis answers, shared by every clone of the handle.
#[derive(Debug)]
struct Health {
    epoch: Instant,
    /// Milliseconds after `epoch` before which Redis is not tried.
    down_until: AtomicU64,
    down: AtomicBool,
    /// Commands that failed or timed out (each one fell back to local state).
    failures: AtomicU64,
}

/// A handle on the shared Redis; cheap to clone.
#[derive(Clone)]
pub struct Redis {
    pool: Pool<Manager>,
    client: redis::Client,
    namespace: Arc<str>,
    shown: Arc<str>,
    health: Arc<Health>,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis").field("at", &self.shown).finish()
    }
}

/// Why a command did not run: Redis is down (or was just now), so use local state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unavailable;

impl Redis {
    /// A handle on `target`. Nothing connects yet: a Redis that is down at startup is only a
    /// warning, and connections are made on first use.
    pub fn new(target: &RedisTarget, pool_size: u32) -> Result<Self, RedisError> {
        let client = redis::Client::open(target.url.expose())?;
        let manager = Manager(RedisConnectionManager::new(target.url.expose())?);
        let pool = Pool::builder()
            .max_size(pool_size.max(1))
            .min_idle(None)
            .test_on_check_out(false)
            .connection_timeout(COMMAND_TIMEOUT)
            .retry_connection(false)
            .build_unchecked(manager);
        Ok(Self {
            pool,
            client,
            namespace: Arc::from(target.namespace.as_str()),
            shown: Arc::from(target.shown.as_str()),
            health: Arc::new(Health {
                epoch: Instant::now(),
                down_until: AtomicU64::new(0),
                down: AtomicBool::new(false),
                failures: AtomicU64::new(0),
            }),
        })
    }

    /// `namespace:` followed by `rest`: every key llmgate writes.
    pub fn key(&self, rest: &str) -> String {
        let mut k = String::with_capacity(self.namespace.len() + 1 + rest.len());
        k.push_str(&self.namespace);
        k.push(':');
        k.push_str(rest);
        k
    }

    /// `host:port`, for logs.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// The client, for the one connection that subscribes to events.
    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    /// Whether commands are being sent (Redis answered last time, or the pause is over).
    pub fn is_up(&self) -> bool {
        self.millis_now() >= self.health.down_until.load(Ordering::Relaxed)
    }

    /// Commands that fell back to local state since start.
    pub fn failures(&self) -> u64 {
        self.health.failures.load(Ordering::Relaxed)
    }

    /// Runs `command` on a pooled connection within `COMMAND_TIMEOUT`. While Redis is down
    /// this returns at once; a failure or timeout marks it down for `RETRY_EVERY`.
    pub async fn run<T, F, Fut>(&self, what: &str, command: F) -> Result<T, Unavailable>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        if !self.is_up() {
            return Err(Unavailable);
        }
        let attempt = async {
            // A connection seen broken is dropped here (the pool then discards it).
            let (connection, broken) = loop {
                let pooled = self.pool.get().await.map_err(|e| match e {
                    bb8::RunError::User(e) => e.to_string(),
                    bb8::RunError::TimedOut => "timed out connecting".to_owned(),
                })?;
                if !pooled.broken.load(Ordering::Relaxed) {
                    break (pooled.inner.clone(), pooled.broken.clone());
                }
            };
            let result = command(connection).await;
            if let Err(e) = &result {
                if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() {
                    broken.store(true, Ordering::Relaxed);
                }
            }
            result.map_err(|e| e.to_string())
        };
        match actix_rt::time::timeout(COMMAND_TIMEOUT, attempt).await {
            Ok(Ok(value)) => {
                self.mark_up();
                Ok(value)
            }
            Ok(Err(e)) => {
                self.mark_down(what, &e);
                Err(Unavailable)
            }
            Err(_) => {
                self.mark_down(what, "timed out");
                Err(Unavailable)
            }
        }
    }

    fn millis_now(&self) -> u64 {
        self.health.epoch.elapsed().as_millis() as u64
    }

    fn mark_up(&self) {
        if self.health.down.swap(false, Ordering::Relaxed) {
            log::warn!(
                "redis at {} answers again: shared state resumes",
                self.shown
            );
        }
    }

    /// Notes a failure; logged once per outage (not per command).
    pub fn mark_down(&self, what: &str, why: &str) {
        self.health.failures.fetch_add(1, Ordering::Relaxed);
        let until = self.millis_now() + RETRY_EVERY.as_millis() as u64;
        self.health.down_until.store(until, Ordering::Relaxed);
        if !self.health.down.swap(true, Ordering::Relaxed) {
            log::warn!(
                "redis at {} failed ({what}: {why}); using this instance's local state until it answers",
                self.shown
            );
        }
    }
}
