//! Events every instance hears through Redis pub/sub: a deployment started a cooldown, a key
//! changed. Sent without waiting; heard by one listener per instance, which
//! subscribes again after a Redis outage.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::Shared;

/// What one instance tells the others.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// Deployment `deployment` (its id) is cooling down for `millis` from now.
    Cooldown {
        /// The deployment's id (the same on every instance with the same config).
        deployment: String,
        /// How long.
        millis: u64,
    },
    /// A model was added, changed or removed in the database (`/model/*`): read them again.
    Models,
    /// A key was updated, blocked, unblocked, deleted or regenerated: forget the cached copy
    /// (the next request reads it again from the database).
    Key {
        /// The hashed key.
        token: String,
        /// The key is gone (deleted, or regenerated under a new hash): its metrics go too.
        #[serde(default)]
        removed: bool,
    },
    /// A user, team, member, end user or tag was created, changed or deleted: forget the
    /// cached copy.
    Entity {
        /// Its kind, as stored.
        kind: String,
        /// A member's team ("" for other kinds).
        scope: String,
        /// Its id.
        id: String,
    },
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    from: String,
    #[serde(flatten)]
    event: Event,
}

/// Cooldowns heard before this instance's actors started, applied when they start.
#[derive(Debug, Default)]
pub struct Pending(Mutex<Vec<(String, Instant)>>);

impl Pending {
    /// Keeps a cooldown for later.
    pub fn add(&self, deployment: String, until: Instant) {
        if let Ok(mut list) = self.0.lock() {
            list.push((deployment, until));
        }
    }

    /// The cooldowns kept so far (emptied).
    pub fn take(&self) -> Vec<(String, Instant)> {
        self.0
            .lock()
            .map(|mut list| std::mem::take(&mut *list))
            .unwrap_or_default()
    }
}

impl Shared {
    /// The channel every instance listens on.
    pub fn channel(&self) -> String {
        self.redis.key("events")
    }

    /// Tells the other instances, without waiting. Lost if Redis is unreachable.
    pub fn publish(&self, event: Event) {
        let envelope = Envelope {
            from: self.instance().to_owned(),
            event,
        };
        let Ok(text) = serde_json::to_string(&envelope) else {
            return;
        };
        let (redis, channel) = (self.redis.clone(), self.channel());
        actix_rt::spawn(async move {
            let _ = redis
                .run("publish", |mut conn| async move {
                    redis::cmd("PUBLISH")
                        .arg(channel)
                        .arg(text)
                        .query_async::<i64>(&mut conn)
                        .await
                })
                .await;
        });
    }

    /// Hears the other instances' events for ever, handing each to `on_event`; reconnects
    /// (once a second) whenever the subscription drops.
    pub async fn listen(self, mut on_event: impl FnMut(Event)) {
        let channel = self.channel();
        let mut was_connected = false;
        loop {
            let subscribed = match self.redis.client().get_async_pubsub().await {
                Ok(mut pubsub) => match pubsub.subscribe(&channel).await {
                    Ok(()) => Some(pubsub),
                    Err(_) => None,
                },
                Err(_) => None,
            };
            if let Some(mut pubsub) = subscribed {
                if was_connected {
                    log::info!("listening to other instances' events again");
                }
                was_connected = true;
                let mut messages = pubsub.on_message();
                while let Some(message) = messages.next().await {
                    let Ok(payload) = message.get_payload::<String>() else {
                        continue;
                    };
                    match serde_json::from_str::<Envelope>(&payload) {
                        Ok(e) if e.from != self.instance() => on_event(e.event),
                        Ok(_) => {}
                        Err(e) => log::warn!("ignoring an event that does not parse: {e}"),
                    }
                }
                log::warn!("lost the subscription to other instances' events; retrying");
            }
            actix_rt::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_read_back_as_sent() {
        let e = Envelope {
            from: "a".into(),
            event: Event::Cooldown {
                deployment: "d".into(),
                millis: 5000,
            },
        };
        let text = serde_json::to_string(&e).unwrap();
        assert_eq!(
            text,
            r#"{"from":"a","event":"cooldown","deployment":"d","millis":5000}"#
        );
        let back: Envelope = serde_json::from_str(&text).unwrap();
        assert_eq!(back.event, e.event);
    }
}
