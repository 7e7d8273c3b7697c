//! `GET /global/spend/report` (master key): spend per day by team, customer or model group,
//! or per key over the whole period, in LiteLLM's shapes.

use std::collections::{BTreeMap, HashMap};

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{NaiveDate, NaiveDateTime};
use serde::Deserialize;
use serde_json::{json, Value as Json};

use super::access::{access, require_view_all};
use crate::actors::Flush;
use crate::db::report::DailySpend;
use crate::db::DbError;
use crate::error::ApiError;
use crate::keys;
use crate::state::AppState;

#[derive(Deserialize)]
/// `?start_date=&end_date=&group_by=&api_key=`.
pub struct ReportQuery {
    start_date: Option<String>,
    end_date: Option<String>,
    group_by: Option<String>,
    api_key: Option<String>,
}

/// How the report groups spend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GroupBy {
    /// LiteLLM's default: per day, per the key's `team_id`.
    Team,
    /// Per day, per end user (the request's `user`).
    Customer,
    /// Per day, per model group (an llmgate addition, for the admin UI's charts).
    Model,
    /// Per key over the whole period, with a breakdown per model (not per day, as LiteLLM).
    ApiKey,
}

impl GroupBy {
    fn parse(text: Option<&str>) -> Result<Self, ApiError> {
        match text.unwrap_or("team") {
            "team" => Ok(Self::Team),
            "customer" => Ok(Self::Customer),
            "model" => Ok(Self::Model),
            "api_key" => Ok(Self::ApiKey),
            other => Err(ApiError::bad_request(
                format!("Invalid value for 'group_by': {other:?} (use team, customer, api_key or model)"),
                Some("group_by"),
            )),
        }
    }
}

fn day(field: &str, text: Option<&str>) -> Result<NaiveDate, ApiError> {
    let text = text.ok_or_else(|| {
        ApiError::bad_request("Please provide start_date and end_date", Some(field))
    })?;
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        ApiError::bad_request(
            format!("Invalid value for '{field}': expected YYYY-MM-DD"),
            Some(field),
        )
    })
}

/// The period: from the start day's midnight to the end of the end day (UTC).
fn period(q: &ReportQuery) -> Result<(NaiveDateTime, NaiveDateTime), ApiError> {
    let start = day("start_date", q.start_date.as_deref())?;
    let end = day("end_date", q.end_date.as_deref())?;
    if end < start {
        return Err(ApiError::bad_request(
            "Invalid value for 'end_date': it is before start_date",
            Some("end_date"),
        ));
    }
    let after_end = end.succ_opt().unwrap_or(end);
    Ok((
        start.and_time(Default::default()),
        after_end.and_time(Default::default()),
    ))
}

fn unavailable(e: DbError) -> ApiError {
    log::warn!("spend report read failed: {e}");
    ApiError::Unavailable("database".into())
}

/// `GET /global/spend/report`.
pub async fn report(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<ReportQuery>,
) -> Result<HttpResponse, ApiError> {
    require_view_all(&access(&state, &req).await?, &req)?;
    let (start, end) = period(&q)?;
    let group_by = GroupBy::parse(q.group_by.as_deref())?;
    // Requests still in the spend batch belong in the report.
    if let Err(e) = state
        .spend()
        .send(Flush)
        .await
        .map_err(|_| ApiError::Internal)?
    {
        log::warn!("spend flush before a report failed: {e}");
        return Err(ApiError::Unavailable("database".into()));
    }
    let want_teams = group_by == GroupBy::Team && q.api_key.is_none();
    let (mut rows, teams) = state
        .db
        .run(move |db| async move {
            let rows = db.daily_spend(start, end).await?;
            let teams = if want_teams {
                db.key_teams().await?
            } else {
                HashMap::new()
            };
            Ok((rows, teams))
        })
        .await
        .map_err(unavailable)?;
    // A report for one key is LiteLLM's per-key shape, whatever `group_by` says.
    let body = if let Some(key) = &q.api_key {
        let token = keys::token_of(key);
        rows.retain(|r| r.api_key == token);
        per_key(&rows)
    } else {
        match group_by {
            GroupBy::Team => daily(&rows, "teams", "team_name", |r| {
                Some(
                    teams
                        .get(&r.api_key)
                        .cloned()
                        .unwrap_or_else(|| "Unassigned Team".into()),
                )
            }),
            GroupBy::Customer => daily(&rows, "customers", "customer", |r| r.end_user.clone()),
            GroupBy::Model => daily(&rows, "models", "model", |r| Some(r.model_group.clone())),
            GroupBy::ApiKey => per_key(&rows),
        }
    };
    Ok(HttpResponse::Ok().json(body))
}

#[derive(Default)]
struct Group {
    total_spend: f64,
    /// (model, model group, key) to (spend, tokens).
    parts: BTreeMap<(String, String, String), (f64, i64)>,
}

fn by_spend_desc(a: f64, b: f64) -> std::cmp::Ordering {
    b.total_cmp(&a)
}

/// `[{"group_by_day", <list>: [{<name>, "total_spend", "metadata": [{model, model_group,
/// api_key, spend, total_tokens}]}]}]`, days in order, the biggest spenders first.
fn daily(
    rows: &[DailySpend],
    list: &str,
    name: &str,
    group_of: impl Fn(&DailySpend) -> Option<String>,
) -> Json {
    let mut days: BTreeMap<NaiveDate, BTreeMap<Option<String>, Group>> = BTreeMap::new();
    for r in rows {
        let group = days
            .entry(r.day)
            .or_default()
            .entry(group_of(r))
            .or_default();
        group.total_spend += r.spend;
        let part = group
            .parts
            .entry((r.model.clone(), r.model_group.clone(), r.api_key.clone()))
            .or_default();
        part.0 += r.spend;
        part.1 += r.total_tokens;
    }
    let out: Vec<Json> = days
        .into_iter()
        .map(|(day, groups)| {
            let mut groups: Vec<(Option<String>, Group)> = groups.into_iter().collect();
            groups.sort_by(|a, b| by_spend_desc(a.1.total_spend, b.1.total_spend));
            let groups: Vec<Json> = groups
                .into_iter()
                .map(|(group_name, g)| {
                    let mut parts: Vec<_> = g.parts.into_iter().collect();
                    parts.sort_by(|a, b| by_spend_desc(a.1 .0, b.1 .0));
                    let metadata: Vec<Json> = parts
                        .into_iter()
                        .map(|((model, model_group, api_key), (spend, tokens))| {
                            json!({"model": model, "model_group": model_group, "api_key": api_key,
                                   "spend": spend, "total_tokens": tokens})
                        })
                        .collect();
                    let mut entry = serde_json::Map::new();
                    entry.insert(name.into(), json!(group_name));
                    entry.insert("total_spend".into(), json!(g.total_spend));
                    entry.insert("metadata".into(), Json::Array(metadata));
                    Json::Object(entry)
                })
                .collect();
            json!({"group_by_day": format!("{day}T00:00:00+00:00"), list: groups})
        })
        .collect();
    Json::Array(out)
}

#[derive(Default)]
struct Usage {
    cost: f64,
    input: i64,
    output: i64,
}

impl Usage {
    fn add(&mut self, r: &DailySpend) {
        self.cost += r.spend;
        self.input += r.prompt_tokens;
        self.output += r.completion_tokens;
    }
}

/// `[{"api_key", "total_cost", "total_input_tokens", "total_output_tokens", "model_details":
/// [{"model", "total_cost", "total_input_tokens", "total_output_tokens"}]}]`, biggest first.
fn per_key(rows: &[DailySpend]) -> Json {
    let mut keys: BTreeMap<&str, (Usage, BTreeMap<&str, Usage>)> = BTreeMap::new();
    for r in rows {
        let (total, models) = keys.entry(&r.api_key).or_default();
        total.add(r);
        models.entry(&r.model).or_default().add(r);
    }
    let mut keys: Vec<_> = keys.into_iter().collect();
    keys.sort_by(|a, b| by_spend_desc(a.1 .0.cost, b.1 .0.cost));
    let out: Vec<Json> = keys
        .into_iter()
        .map(|(api_key, (total, models))| {
            let mut models: Vec<_> = models.into_iter().collect();
            models.sort_by(|a, b| by_spend_desc(a.1.cost, b.1.cost));
            let details: Vec<Json> = models
                .into_iter()
                .map(|(model, u)| {
                    json!({"model": model, "total_cost": u.cost,
                           "total_input_tokens": u.input, "total_output_tokens": u.output})
                })
                .collect();
            json!({
                "api_key": api_key,
                "total_cost": total.cost,
                "total_input_tokens": total.input,
                "total_output_tokens": total.output,
                "model_details": details,
            })
        })
        .collect();
    Json::Array(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(day: &str, key: &str, group: &str, user: Option<&str>, spend: f64) -> DailySpend {
        DailySpend {
            day: day.parse().unwrap(),
            api_key: key.into(),
            model: format!("{group}-deployment"),
            model_group: group.into(),
            end_user: user.map(str::to_owned),
            spend,
            prompt_tokens: 10,
            completion_tokens: 20,
            total_tokens: 30,
        }
    }

    #[test]
    fn daily_groups_are_ordered_by_day_then_spend_and_merge_the_same_part() {
        let rows = [
            row("2026-11-23", "k1", "a", None, 1.0),
            row("2026-11-22", "k1", "a", Some("u1"), 1.0),
            row("2026-11-22", "k1", "a", Some("u2"), 2.0),
            row("2026-11-22", "k2", "b", None, 5.0),
        ];
        let out = daily(&rows, "models", "model", |r| Some(r.model_group.clone()));
        assert_eq!(out[0]["group_by_day"], "2026-11-22T00:00:00+00:00");
        assert_eq!(out[1]["group_by_day"], "2026-11-23T00:00:00+00:00");
        let first = &out[0]["models"];
        assert_eq!(first[0]["model"], "b");
        assert_eq!(first[1]["model"], "a");
        assert_eq!(first[1]["total_spend"], 3.0);
        // Two users' rows for the same key and model are one metadata entry.
        assert_eq!(first[1]["metadata"].as_array().unwrap().len(), 1);
        assert_eq!(first[1]["metadata"][0]["total_tokens"], 60);
        assert_eq!(first[1]["metadata"][0]["api_key"], "k1");
    }

    #[test]
    fn a_missing_customer_is_null() {
        let out = daily(
            &[row("2026-11-22", "k", "a", None, 1.0)],
            "customers",
            "customer",
            |r| r.end_user.clone(),
        );
        assert_eq!(out[0]["customers"][0]["customer"], Json::Null);
    }

    #[test]
    fn per_key_totals_cover_the_whole_period_with_a_breakdown_per_model() {
        let rows = [
            row("2026-11-22", "k1", "a", None, 1.0),
            row("2026-11-23", "k1", "b", None, 2.0),
            row("2026-11-23", "k2", "a", None, 0.5),
        ];
        let out = per_key(&rows);
        assert_eq!(out[0]["api_key"], "k1");
        assert_eq!(out[0]["total_cost"], 3.0);
        assert_eq!(out[0]["total_input_tokens"], 20);
        assert_eq!(out[0]["total_output_tokens"], 40);
        assert_eq!(out[0]["model_details"][0]["model"], "b-deployment");
        assert_eq!(out[1]["api_key"], "k2");
    }

    #[test]
    fn the_period_includes_the_whole_end_day_and_dates_are_checked() {
        let q = |s: &str, e: &str| ReportQuery {
            start_date: Some(s.into()),
            end_date: Some(e.into()),
            group_by: None,
            api_key: None,
        };
        let (start, end) = period(&q("2026-11-01", "2026-11-01")).unwrap();
        assert_eq!(end - start, chrono::Duration::days(1));
        assert!(period(&q("2026-11-02", "2026-11-01")).is_err());
        assert!(period(&q("11/01/2026", "2026-11-01")).is_err());
        assert!(GroupBy::parse(Some("team")).is_ok());
        assert!(GroupBy::parse(Some("teams")).is_err());
    }
}
