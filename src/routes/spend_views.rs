//! Spend by key, model, team and tag (`/global/spend/keys`, `/global/spend/models`,
//! `/global/spend/teams`, `/spend/tags`, `/global/spend/tags`), and daily activity per user,
//! team, end user and tag (`/user/daily/activity`, ...), in LiteLLM's shapes. Spend still in the
//! write batch is written first.

use std::collections::{BTreeMap, HashMap};

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{Duration, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::{json, Map, Value as Json};

use super::access::{access, denied, require_view_all};
use crate::actors::Flush;
use crate::db::models::DailySpendRow;
use crate::db::views::DayFilter;
use crate::error::ApiError;
use crate::governance::Access;
use crate::keys;
use crate::state::AppState;

type State = web::Data<AppState>;

/// How far back the top-keys, top-models and team views look (LiteLLM's 30 days).
const LOOKBACK_DAYS: i64 = 30;

fn unavailable(e: crate::db::DbError) -> ApiError {
    log::warn!("spend read failed: {e}");
    ApiError::Unavailable("database".into())
}

/// Writes what the spend batch holds, so a view counts every finished request.
async fn flush(state: &AppState) -> Result<(), ApiError> {
    state
        .spend()
        .send(Flush)
        .await
        .map_err(|_| ApiError::Internal)?
        .map_err(|e| {
            log::warn!("spend flush before a view failed: {e}");
            ApiError::Unavailable("database".into())
        })
}

/// Whose spend a caller who is not an admin or viewer may see: their own user's.
fn own_user(access: &Access, what: &str) -> Result<Option<String>, ApiError> {
    if access.sees_all() {
        return Ok(None);
    }
    match (access.role, access.user_id()) {
        (Some(_), Some(me)) => Ok(Some(me.to_owned())),
        _ => Err(denied(access, what)),
    }
}

#[derive(Deserialize)]
/// `?limit=`.
pub struct LimitQuery {
    limit: Option<i64>,
}

fn limit_of(q: &LimitQuery, default: i64) -> Result<i64, ApiError> {
    let limit = q.limit.unwrap_or(default);
    if limit < 1 {
        return Err(super::fields::bad("limit", "an integer of at least 1"));
    }
    Ok(limit.min(1000))
}

fn since() -> chrono::NaiveDateTime {
    (Utc::now() - Duration::days(LOOKBACK_DAYS)).naive_utc()
}

/// `GET /global/spend/keys?limit=`: the keys that spent most in the last 30 days
/// (`api_key`, `key_alias`, `key_name`, `total_spend`); a user sees their own keys.
pub async fn keys(
    state: State,
    req: HttpRequest,
    q: web::Query<LimitQuery>,
) -> Result<HttpResponse, ApiError> {
    let access = access(&state, &req).await?;
    let user = own_user(&access, "read spend per key")?;
    let limit = limit_of(&q, 1000)?;
    flush(&state).await?;
    let (top, named) = state
        .db
        .run(move |db| async move {
            let top = db.top_keys(since(), user, limit).await?;
            let tokens: Vec<String> = top.iter().map(|(t, _)| t.clone()).collect();
            let named = db.keys_by_token(&tokens).await?;
            Ok((top, named))
        })
        .await
        .map_err(unavailable)?;
    let names: HashMap<&str, _> = named.iter().map(|k| (k.token.as_str(), k)).collect();
    let out: Vec<Json> = top
        .iter()
        .map(|(token, spend)| {
            let key = names.get(token.as_str());
            json!({
                "api_key": token,
                "key_alias": key.and_then(|k| k.key_alias.clone()),
                "key_name": key.map(|k| k.key_name.clone()),
                "total_spend": spend.unwrap_or(0.0),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(out))
}

/// `GET /global/spend/models?limit=`: the models that cost most in the last 30 days (`model`,
/// `total_spend`, `total_tokens`); a user sees their own spend.
pub async fn models(
    state: State,
    req: HttpRequest,
    q: web::Query<LimitQuery>,
) -> Result<HttpResponse, ApiError> {
    let access = access(&state, &req).await?;
    let user = own_user(&access, "read spend per model")?;
    let limit = limit_of(&q, 10)?;
    flush(&state).await?;
    let top = state
        .db
        .run(move |db| async move { db.top_models(since(), user, limit).await })
        .await
        .map_err(unavailable)?;
    let out: Vec<Json> = top
        .into_iter()
        .map(|(model, spend, tokens)| {
            json!({"model": model, "total_spend": spend.unwrap_or(0.0), "total_tokens": tokens.unwrap_or(0)})
        })
        .collect();
    Ok(HttpResponse::Ok().json(out))
}

/// `GET /global/spend/teams` (admins and viewers): each team's spend per day over the last 30
/// days, by team alias (`Unassigned` for keys without a team): `daily_spend`, `teams`, and the
/// ten teams that spent most (`total_spend_per_team`).
pub async fn teams(state: State, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    require_view_all(&access(&state, &req).await?, &req)?;
    flush(&state).await?;
    let (days, aliases) = state
        .db
        .run(|db| async move {
            let days = db.team_days(since()).await?;
            let filter = crate::db::entities::EntityFilter {
                kind: "team".into(),
                ..Default::default()
            };
            let (teams, _) = db.list_entities(&filter, 1, 10_000).await?;
            Ok((days, teams))
        })
        .await
        .map_err(unavailable)?;
    let alias: HashMap<&str, &str> = aliases
        .iter()
        .map(|t| (t.id.as_str(), t.alias.as_deref().unwrap_or(t.id.as_str())))
        .collect();
    let name = |team: &Option<String>| -> String {
        team.as_deref()
            .map_or("Unassigned", |t| alias.get(t).copied().unwrap_or(t))
            .to_owned()
    };
    let mut by_day: BTreeMap<NaiveDate, Map<String, Json>> = BTreeMap::new();
    let mut totals: BTreeMap<String, f64> = BTreeMap::new();
    for d in &days {
        let team = name(&d.team_id);
        let spent = by_day.entry(d.day).or_default();
        let before = spent.get(&team).and_then(Json::as_f64).unwrap_or(0.0);
        spent.insert(team.clone(), json!(before + d.spend));
        *totals.entry(team).or_default() += d.spend;
    }
    let daily: Vec<Json> = by_day
        .into_iter()
        .map(|(day, mut spent)| {
            spent.insert("date".into(), json!(day.to_string()));
            Json::Object(spent)
        })
        .collect();
    let mut ranked: Vec<(String, f64)> = totals.into_iter().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    let teams: Vec<&String> = ranked.iter().map(|(t, _)| t).collect();
    let top: Vec<Json> = ranked
        .iter()
        .take(10)
        .map(|(t, s)| json!({"team_id": t, "total_spend": s}))
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "daily_spend": daily,
        "teams": teams,
        "total_spend_per_team": top,
    })))
}

#[derive(Deserialize)]
/// `?start_date=&end_date=&tags=`.
pub struct TagQuery {
    start_date: Option<String>,
    end_date: Option<String>,
    tags: Option<String>,
}

/// A day from a query (`YYYY-MM-DD`), else `default`.
fn day(field: &str, given: Option<&str>, default: NaiveDate) -> Result<String, ApiError> {
    match given {
        None => Ok(default.to_string()),
        Some(text) => NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map(|d| d.to_string())
            .map_err(|_| super::fields::bad(field, "a day as YYYY-MM-DD")),
    }
}

fn period(start: Option<&str>, end: Option<&str>) -> Result<(String, String), ApiError> {
    let today = Utc::now().date_naive();
    let start = day("start_date", start, today - Duration::days(LOOKBACK_DAYS))?;
    let end = day("end_date", end, today)?;
    Ok((start, end))
}

fn list_param(text: Option<&str>) -> Option<Vec<String>> {
    text.map(|t| {
        t.split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    })
    .filter(|v: &Vec<String>| !v.is_empty())
}

async fn tag_totals(state: &AppState, q: &TagQuery) -> Result<Vec<(String, f64, i64)>, ApiError> {
    let (start, end) = period(q.start_date.as_deref(), q.end_date.as_deref())?;
    let only = list_param(q.tags.as_deref()).filter(|t| !t.iter().any(|t| t == "all-tags"));
    flush(state).await?;
    let rows = state
        .db
        .run(move |db| async move { db.tag_totals(start, end, only).await })
        .await
        .map_err(unavailable)?;
    Ok(rows
        .into_iter()
        .map(|(tag, spend, count)| (tag, spend.unwrap_or(0.0), count.unwrap_or(0)))
        .collect())
}

/// `GET /spend/tags?start_date=&end_date=` (admins and viewers): each request tag's requests and
/// spend (`individual_request_tag`, `log_count`, `total_spend`).
pub async fn spend_tags(
    state: State,
    req: HttpRequest,
    q: web::Query<TagQuery>,
) -> Result<HttpResponse, ApiError> {
    require_view_all(&access(&state, &req).await?, &req)?;
    let out: Vec<Json> = tag_totals(&state, &q)
        .await?
        .into_iter()
        .map(|(tag, spend, count)| json!({"individual_request_tag": tag, "log_count": count, "total_spend": spend}))
        .collect();
    Ok(HttpResponse::Ok().json(out))
}

/// `GET /global/spend/tags?start_date=&end_date=&tags=` (admins and viewers):
/// `{"spend_per_tag": [{"name", "spend", "log_count"}]}`.
pub async fn global_tags(
    state: State,
    req: HttpRequest,
    q: web::Query<TagQuery>,
) -> Result<HttpResponse, ApiError> {
    require_view_all(&access(&state, &req).await?, &req)?;
    let out: Vec<Json> = tag_totals(&state, &q)
        .await?
        .into_iter()
        .map(|(tag, spend, count)| json!({"name": tag, "spend": spend, "log_count": count}))
        .collect();
    Ok(HttpResponse::Ok().json(json!({"spend_per_tag": out})))
}

#[derive(Deserialize)]
/// The filters of the daily activity routes.
pub struct ActivityQuery {
    start_date: Option<String>,
    end_date: Option<String>,
    model: Option<String>,
    api_key: Option<String>,
    page: Option<i64>,
    page_size: Option<i64>,
    user_id: Option<String>,
    team_ids: Option<String>,
    end_user_ids: Option<String>,
    tags: Option<String>,
}

/// One day, model, key... total: LiteLLM's `SpendMetrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Metrics {
    spend: f64,
    prompt_tokens: i64,
    completion_tokens: i64,
    api_requests: i64,
    successful_requests: i64,
    failed_requests: i64,
}

impl Metrics {
    fn add(&mut self, r: &DailySpendRow) {
        self.spend += r.spend;
        self.prompt_tokens += r.prompt_tokens;
        self.completion_tokens += r.completion_tokens;
        self.api_requests += r.api_requests;
        self.successful_requests += r.successful_requests;
        self.failed_requests += r.failed_requests;
    }

    fn json(&self) -> Json {
        json!({
            "spend": self.spend,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 0,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "successful_requests": self.successful_requests,
            "failed_requests": self.failed_requests,
            "api_requests": self.api_requests,
        })
    }
}

/// One day's totals and breakdowns.
#[derive(Default)]
struct Day {
    metrics: Metrics,
    models: BTreeMap<String, Metrics>,
    model_groups: BTreeMap<String, Metrics>,
    providers: BTreeMap<String, Metrics>,
    api_keys: BTreeMap<String, Metrics>,
    entities: BTreeMap<String, Metrics>,
}

fn breakdown(parts: &BTreeMap<String, Metrics>, metadata: impl Fn(&str) -> Json) -> Json {
    let m: Map<String, Json> = parts
        .iter()
        .map(|(name, metrics)| {
            (
                name.clone(),
                json!({"metrics": metrics.json(), "metadata": metadata(name)}),
            )
        })
        .collect();
    Json::Object(m)
}

/// Daily activity in LiteLLM's `SpendAnalyticsPaginatedResponse` shape: per day, the totals
/// and their breakdown by model, model group, provider, key and entity; then the totals.
async fn activity(
    state: &AppState,
    filter: DayFilter,
    page: Option<i64>,
    size: Option<i64>,
) -> Result<Json, ApiError> {
    let (page, size) = (page.unwrap_or(1), size.unwrap_or(1000));
    if page < 1 {
        return Err(super::fields::bad("page", "an integer of at least 1"));
    }
    if !(1..=10_000).contains(&size) {
        return Err(super::fields::bad(
            "page_size",
            "an integer from 1 to 10000",
        ));
    }
    flush(state).await?;
    let (rows, total, named) = state
        .db
        .run(move |db| async move {
            let (rows, total) = db.daily_activity(&filter, page, size).await?;
            let mut tokens: Vec<String> = rows.iter().map(|r| r.api_key.clone()).collect();
            tokens.sort();
            tokens.dedup();
            let named = db.keys_by_token(&tokens).await?;
            Ok((rows, total, named))
        })
        .await
        .map_err(unavailable)?;
    let keys: HashMap<&str, _> = named.iter().map(|k| (k.token.as_str(), k)).collect();
    let mut days: BTreeMap<&str, Day> = BTreeMap::new();
    let mut totals = Metrics::default();
    for r in &rows {
        totals.add(r);
        let d = days.entry(r.date.as_str()).or_default();
        d.metrics.add(r);
        d.models.entry(r.model.clone()).or_default().add(r);
        d.model_groups
            .entry(r.model_group.clone())
            .or_default()
            .add(r);
        d.providers.entry(r.provider.clone()).or_default().add(r);
        d.api_keys.entry(r.api_key.clone()).or_default().add(r);
        d.entities.entry(r.entity_id.clone()).or_default().add(r);
    }
    let none = |_: &str| json!({});
    let results: Vec<Json> = days
        .iter()
        .map(|(date, d)| {
            json!({
                "date": date,
                "metrics": d.metrics.json(),
                "breakdown": {
                    "models": breakdown(&d.models, none),
                    "model_groups": breakdown(&d.model_groups, none),
                    "providers": breakdown(&d.providers, none),
                    "api_keys": breakdown(&d.api_keys, |token| {
                        let key = keys.get(token);
                        json!({
                            "key_alias": key.and_then(|k| k.key_alias.clone()),
                            "team_id": key.and_then(|k| k.team_id.clone()),
                            "user_id": key.and_then(|k| k.user_id.clone()),
                            "key_exists": key.is_some(),
                        })
                    }),
                    "entities": breakdown(&d.entities, none),
                },
            })
        })
        .collect();
    let total_pages = (total + size - 1) / size;
    Ok(json!({
        "results": results,
        "metadata": {
            "total_spend": totals.spend,
            "total_prompt_tokens": totals.prompt_tokens,
            "total_completion_tokens": totals.completion_tokens,
            "total_tokens": totals.prompt_tokens + totals.completion_tokens,
            "total_api_requests": totals.api_requests,
            "total_successful_requests": totals.successful_requests,
            "total_failed_requests": totals.failed_requests,
            "total_cache_read_input_tokens": 0,
            "total_cache_creation_input_tokens": 0,
            "page": page,
            "total_pages": total_pages.max(1),
            "has_more": page < total_pages,
        },
    }))
}

fn day_filter(
    kind: &str,
    ids: Option<Vec<String>>,
    q: &ActivityQuery,
) -> Result<DayFilter, ApiError> {
    let (start, end) = period(q.start_date.as_deref(), q.end_date.as_deref())?;
    Ok(DayFilter {
        kind: kind.to_owned(),
        ids,
        start,
        end,
        model: q.model.clone(),
        api_key: q.api_key.as_deref().map(keys::token_of),
    })
}

/// `GET /user/daily/activity`: admins and viewers see every user's (or `user_id`'s); a user
/// sees their own.
pub async fn user_activity(
    state: State,
    req: HttpRequest,
    q: web::Query<ActivityQuery>,
) -> Result<HttpResponse, ApiError> {
    let access = access(&state, &req).await?;
    let ids = match own_user(&access, "read other users' activity")? {
        None => q.user_id.clone().map(|u| vec![u]),
        Some(me) if q.user_id.as_deref().is_none_or(|u| u == me) => Some(vec![me]),
        Some(_) => return Err(denied(&access, "read other users' activity")),
    };
    let filter = day_filter("user", ids, &q)?;
    Ok(HttpResponse::Ok().json(activity(&state, filter, q.page, q.page_size).await?))
}

/// `GET /team/daily/activity?team_ids=`: admins and viewers see every team's; a member sees
/// their teams'.
pub async fn team_activity(
    state: State,
    req: HttpRequest,
    q: web::Query<ActivityQuery>,
) -> Result<HttpResponse, ApiError> {
    let access = access(&state, &req).await?;
    let asked = list_param(q.team_ids.as_deref());
    let ids = if access.sees_all() {
        asked
    } else {
        let mine = &access.member_of;
        match asked {
            Some(teams) if teams.iter().all(|t| mine.contains(t)) => Some(teams),
            None if !mine.is_empty() => Some(mine.clone()),
            _ => return Err(denied(&access, "read these teams' activity")),
        }
    };
    let filter = day_filter("team", ids, &q)?;
    Ok(HttpResponse::Ok().json(activity(&state, filter, q.page, q.page_size).await?))
}

/// `GET /end_user/daily/activity?end_user_ids=` (admins and viewers).
pub async fn end_user_activity(
    state: State,
    req: HttpRequest,
    q: web::Query<ActivityQuery>,
) -> Result<HttpResponse, ApiError> {
    require_view_all(&access(&state, &req).await?, &req)?;
    let filter = day_filter("end_user", list_param(q.end_user_ids.as_deref()), &q)?;
    Ok(HttpResponse::Ok().json(activity(&state, filter, q.page, q.page_size).await?))
}

/// `GET /tag/daily/activity?tags=` (admins and viewers).
pub async fn tag_activity(
    state: State,
    req: HttpRequest,
    q: web::Query<ActivityQuery>,
) -> Result<HttpResponse, ApiError> {
    require_view_all(&access(&state, &req).await?, &req)?;
    let filter = day_filter("tag", list_param(q.tags.as_deref()), &q)?;
    Ok(HttpResponse::Ok().json(activity(&state, filter, q.page, q.page_size).await?))
}
