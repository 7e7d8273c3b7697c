//! Spend rolled up from each finished request to its user, team, team member, end user and
//! tags, and to each day's activity: buffered with the spend batch, written in its transaction.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Utc};

use crate::db::models::{DailySpendRow, SpendLogRow};

/// An entity as stored: `(kind, scope, id)`.
pub type EntityKey = (String, String, String);

/// The dimensions of one day's activity row: kind, entity id, day, key, model, group, provider.
type DayKey = (&'static str, String, String, String, String, String, String);

/// What one day's activity row adds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct DayCounts {
    prompt_tokens: i64,
    completion_tokens: i64,
    spend: f64,
    requests: i64,
    succeeded: i64,
    failed: i64,
}

/// Entity spend waiting to be written.
#[derive(Debug, Default)]
pub struct EntitySpend {
    deltas: BTreeMap<EntityKey, f64>,
    resets: BTreeMap<EntityKey, Option<DateTime<Utc>>>,
    days: BTreeMap<DayKey, DayCounts>,
}

/// What a spend batch writes for entities.
#[derive(Debug, Default, Clone)]
pub struct EntityBatch {
    /// Spend to add per entity, sorted (end users are created by their first spend).
    pub deltas: Vec<(EntityKey, f64)>,
    /// Budget windows that rolled over: `(entity, next reset)`, applied before the deltas.
    pub resets: Vec<(EntityKey, Option<NaiveDateTime>)>,
    /// Daily activity to add.
    pub days: Vec<DailySpendRow>,
}

impl EntityBatch {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.deltas.is_empty() && self.resets.is_empty() && self.days.is_empty()
    }
}

/// The request's tags, from the row's JSON list.
pub fn row_tags(row: &SpendLogRow) -> Vec<String> {
    serde_json::from_str(&row.request_tags).unwrap_or_default()
}

impl EntitySpend {
    /// Charges `cost` to the row's user, team, team member, end user and tags, and counts the
    /// request in each one's day. Requests without a user or team count under "" (LiteLLM's
    /// daily tables do the same), so an admin's daily view covers every request.
    pub fn record(&mut self, row: &SpendLogRow, cost: f64) {
        let tags = row_tags(row);
        if cost != 0.0 {
            let mut add = |kind: &str, scope: &str, id: &str| {
                *self
                    .deltas
                    .entry((kind.to_owned(), scope.to_owned(), id.to_owned()))
                    .or_default() += cost;
            };
            if let Some(user) = &row.user_id {
                add("user", "", user);
            }
            if let Some(team) = &row.team_id {
                add("team", "", team);
                if let Some(user) = &row.user_id {
                    add("member", team, user);
                }
            }
            if let Some(end_user) = &row.end_user {
                add("end_user", "", end_user);
            }
            for tag in &tags {
                add("tag", "", tag);
            }
        }
        let day = row.start_time.format("%Y-%m-%d").to_string();
        let ok = matches!(row.status.as_str(), "success");
        let counts = DayCounts {
            prompt_tokens: row.prompt_tokens,
            completion_tokens: row.completion_tokens,
            spend: cost,
            requests: 1,
            succeeded: i64::from(ok),
            failed: i64::from(!ok),
        };
        let mut count = |kind: &'static str, id: &str| {
            let key = (
                kind,
                id.to_owned(),
                day.clone(),
                row.api_key.clone(),
                row.model.clone(),
                row.model_group.clone(),
                row.provider.clone(),
            );
            let c = self.days.entry(key).or_default();
            c.prompt_tokens += counts.prompt_tokens;
            c.completion_tokens += counts.completion_tokens;
            c.spend += counts.spend;
            c.requests += counts.requests;
            c.succeeded += counts.succeeded;
            c.failed += counts.failed;
        };
        count("user", row.user_id.as_deref().unwrap_or(""));
        count("team", row.team_id.as_deref().unwrap_or(""));
        if let Some(end_user) = &row.end_user {
            count("end_user", end_user);
        }
        for tag in &tags {
            count("tag", tag);
        }
    }

    /// An entity's budget window rolled over: what it spent before no longer counts.
    pub fn reset(&mut self, entity: EntityKey, next: Option<DateTime<Utc>>) {
        self.deltas.remove(&entity);
        self.resets.insert(entity, next);
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.deltas.is_empty() && self.resets.is_empty() && self.days.is_empty()
    }

    /// Everything waiting, as a batch.
    pub fn take(self) -> EntityBatch {
        EntityBatch {
            deltas: self.deltas.into_iter().collect(),
            resets: self
                .resets
                .into_iter()
                .map(|(e, next)| (e, next.map(|n| n.naive_utc())))
                .collect(),
            days: self
                .days
                .into_iter()
                .map(
                    |((kind, entity_id, date, api_key, model, model_group, provider), c)| {
                        DailySpendRow {
                            kind: kind.to_owned(),
                            entity_id,
                            date,
                            api_key,
                            model,
                            model_group,
                            provider,
                            prompt_tokens: c.prompt_tokens,
                            completion_tokens: c.completion_tokens,
                            spend: c.spend,
                            api_requests: c.requests,
                            successful_requests: c.succeeded,
                            failed_requests: c.failed,
                        }
                    },
                )
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(status: &str) -> SpendLogRow {
        let at = chrono::NaiveDate::from_ymd_opt(2026, 12, 7)
            .unwrap()
            .and_hms_opt(10, 0, 0)
            .unwrap();
        SpendLogRow {
            request_id: "r".into(),
            api_key: "k".into(),
            model: "gpt".into(),
            model_group: "g".into(),
            model_id: "d".into(),
            api_base: "b".into(),
            provider: "openai".into(),
            prompt_tokens: 3,
            completion_tokens: 4,
            total_tokens: 7,
            spend: 0.5,
            start_time: at,
            end_time: at,
            status: status.into(),
            cache_hit: false,
            user_id: Some("u1".into()),
            metadata: "{}".into(),
            team_id: Some("t1".into()),
            end_user: Some("c1".into()),
            request_tags: r#"["prod","eu"]"#.into(),
        }
    }

    fn key(kind: &str, scope: &str, id: &str) -> EntityKey {
        (kind.into(), scope.into(), id.into())
    }

    #[test]
    fn a_request_is_charged_to_every_entity_it_names_and_counted_per_day() {
        let mut s = EntitySpend::default();
        s.record(&row("success"), 0.5);
        s.record(&row("failure"), 0.0);
        let batch = s.take();
        let deltas: BTreeMap<_, _> = batch.deltas.into_iter().collect();
        for k in [
            key("user", "", "u1"),
            key("team", "", "t1"),
            key("member", "t1", "u1"),
            key("end_user", "", "c1"),
            key("tag", "", "prod"),
            key("tag", "", "eu"),
        ] {
            assert_eq!(deltas.get(&k), Some(&0.5), "{k:?}");
        }
        assert_eq!(batch.days.len(), 5, "user, team, end user and two tags");
        let team_day = batch.days.iter().find(|d| d.kind == "team").unwrap();
        assert_eq!(team_day.date, "2026-12-07");
        assert_eq!(team_day.api_requests, 2);
        assert_eq!(team_day.successful_requests, 1);
        assert_eq!(team_day.failed_requests, 1);
        assert_eq!(team_day.prompt_tokens, 6);
        assert_eq!(team_day.spend, 0.5);
    }

    #[test]
    fn a_reset_drops_what_was_buffered_before_it() {
        let mut s = EntitySpend::default();
        s.record(&row("success"), 0.5);
        s.reset(key("team", "", "t1"), None);
        s.record(&row("success"), 0.25);
        let batch = s.take();
        let deltas: BTreeMap<_, _> = batch.deltas.into_iter().collect();
        assert_eq!(deltas[&key("team", "", "t1")], 0.25);
        assert_eq!(deltas[&key("user", "", "u1")], 0.75);
        assert_eq!(batch.resets, vec![(key("team", "", "t1"), None)]);
    }
}
