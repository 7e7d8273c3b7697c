//! Spend rolled up from each finished request to its user, team, team member, end user and
//! tags, and to each day's activity: summed from a spend batch's rows when the batch is taken
//! (so a request costs nothing here but its row), written in the batch's transaction.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use crate::db::models::{DailySpendRow, SpendLogRow};

/// An entity as stored: `(kind, scope, id)`.
pub type EntityKey = (String, String, String);

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

/// A budget window that rolled over while a batch was filling: the entity, its next reset, and
/// how many of the batch's rows came before it (their spend belongs to the old window).
#[derive(Debug, Clone, PartialEq)]
pub struct Reset {
    /// Which entity.
    pub entity: EntityKey,
    /// When it next resets.
    pub next: Option<DateTime<Utc>>,
    /// The batch's rows before the reset.
    pub after_rows: usize,
}

/// One day's counts of one entity on one key, model and provider.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct DayCounts {
    prompt_tokens: i64,
    completion_tokens: i64,
    spend: f64,
    requests: i64,
    succeeded: i64,
    failed: i64,
}

/// A day row's dimensions, borrowed from the batch's rows: kind, entity id, day, key, model,
/// group, provider.
type DayKey<'a> = (
    &'static str,
    &'a str,
    NaiveDate,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
);

/// The request's tags, from the row's JSON list (none for the common `[]`).
fn row_tags(row: &SpendLogRow) -> Vec<String> {
    if row.request_tags == "[]" || row.request_tags.is_empty() {
        return Vec::new();
    }
    serde_json::from_str(&row.request_tags).unwrap_or_default()
}

/// The entities a row charges: its user, team, team member, end user and tags.
fn charged<'a>(row: &'a SpendLogRow, tags: &'a [String]) -> Vec<(&'static str, &'a str, &'a str)> {
    let mut out = Vec::new();
    if let Some(user) = &row.user_id {
        out.push(("user", "", user.as_str()));
    }
    if let Some(team) = &row.team_id {
        out.push(("team", "", team.as_str()));
        if let Some(user) = &row.user_id {
            out.push(("member", team.as_str(), user.as_str()));
        }
    }
    if let Some(end_user) = &row.end_user {
        out.push(("end_user", "", end_user.as_str()));
    }
    out.extend(tags.iter().map(|t| ("tag", "", t.as_str())));
    out
}

/// Counts `row` in the day of entity `id` of `kind`.
fn count_day<'a>(
    days: &mut BTreeMap<DayKey<'a>, DayCounts>,
    row: &'a SpendLogRow,
    kind: &'static str,
    id: &'a str,
) {
    let key = (
        kind,
        id,
        row.start_time.date(),
        row.api_key.as_str(),
        row.model.as_str(),
        row.model_group.as_str(),
        row.provider.as_str(),
    );
    let ok = row.status == "success";
    let c = days.entry(key).or_default();
    c.prompt_tokens += row.prompt_tokens;
    c.completion_tokens += row.completion_tokens;
    c.spend += row.spend;
    c.requests += 1;
    c.succeeded += i64::from(ok);
    c.failed += i64::from(!ok);
}

/// The entity part of a batch of `rows` (in the order they were recorded) with the budget
/// `resets` that happened among them: each row's cost is added to the entities it charges,
/// unless a later reset of one dropped it; each row counts in its entities' day (requests with
/// no user or no team count under "", as LiteLLM's daily tables do, so an admin's daily view
/// covers every request).
pub fn summarize(rows: &[SpendLogRow], resets: Vec<Reset>) -> EntityBatch {
    let tags: Vec<Vec<String>> = rows.iter().map(row_tags).collect();
    // Spend before an entity's last reset belongs to the window that ended.
    let mut counts_from: HashMap<(&str, &str, &str), usize> = HashMap::new();
    for r in &resets {
        let (kind, scope, id) = &r.entity;
        counts_from.insert((kind.as_str(), scope.as_str(), id.as_str()), r.after_rows);
    }
    let mut deltas: BTreeMap<(&str, &str, &str), f64> = BTreeMap::new();
    let mut days: BTreeMap<DayKey<'_>, DayCounts> = BTreeMap::new();
    for (i, (row, tags)) in rows.iter().zip(&tags).enumerate() {
        let entities = charged(row, tags);
        if row.spend != 0.0 {
            for &e in &entities {
                if counts_from.get(&e).is_none_or(|&from| i >= from) {
                    *deltas.entry(e).or_default() += row.spend;
                }
            }
        }
        count_day(&mut days, row, "user", row.user_id.as_deref().unwrap_or(""));
        count_day(&mut days, row, "team", row.team_id.as_deref().unwrap_or(""));
        for &(kind, _, id) in &entities {
            if matches!(kind, "end_user" | "tag") {
                count_day(&mut days, row, kind, id);
            }
        }
    }
    let owned = |(kind, scope, id): (&str, &str, &str)| -> EntityKey {
        (kind.to_owned(), scope.to_owned(), id.to_owned())
    };
    EntityBatch {
        deltas: deltas.into_iter().map(|(e, d)| (owned(e), d)).collect(),
        resets: resets
            .into_iter()
            .map(|r| (r.entity, r.next.map(|n| n.naive_utc())))
            .collect(),
        days: days
            .into_iter()
            .map(
                |((kind, entity_id, date, api_key, model, model_group, provider), c)| {
                    DailySpendRow {
                        kind: kind.to_owned(),
                        entity_id: entity_id.to_owned(),
                        date: date.format("%Y-%m-%d").to_string(),
                        api_key: api_key.to_owned(),
                        model: model.to_owned(),
                        model_group: model_group.to_owned(),
                        provider: provider.to_owned(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn row(status: &str, spend: f64) -> SpendLogRow {
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
            spend,
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
        let batch = summarize(&[row("success", 0.5), row("failure", 0.0)], Vec::new());
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
    fn a_reset_drops_the_spend_of_the_rows_before_it() {
        let reset = Reset {
            entity: key("team", "", "t1"),
            next: None,
            after_rows: 1,
        };
        let batch = summarize(&[row("success", 0.5), row("success", 0.25)], vec![reset]);
        let deltas: BTreeMap<_, _> = batch.deltas.into_iter().collect();
        assert_eq!(deltas[&key("team", "", "t1")], 0.25);
        assert_eq!(deltas[&key("user", "", "u1")], 0.75);
        assert_eq!(batch.resets, vec![(key("team", "", "t1"), None)]);
        let team_day = batch.days.iter().find(|d| d.kind == "team").unwrap();
        assert_eq!(team_day.api_requests, 2, "activity counts every request");
    }

    #[test]
    fn requests_without_a_user_or_team_count_under_an_empty_id() {
        let mut r = row("success", 1.0);
        r.user_id = None;
        r.team_id = None;
        r.end_user = None;
        r.request_tags = "[]".into();
        let batch = summarize(&[r], Vec::new());
        assert!(batch.deltas.is_empty());
        let ids: Vec<(&str, &str)> = batch
            .days
            .iter()
            .map(|d| (d.kind.as_str(), d.entity_id.as_str()))
            .collect();
        assert_eq!(ids, [("team", ""), ("user", "")]);
    }
}
