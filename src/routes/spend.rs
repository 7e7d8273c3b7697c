//! Spend reads: `/spend/logs` and `/global/spend`.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{NaiveDate, NaiveDateTime};
use serde::Deserialize;
use serde_json::json;

use super::access::{access, denied, require_view_all};
use crate::actors::spend::UnwrittenProxySpend;
use crate::db::spend::LogFilter;
use crate::error::ApiError;
use crate::keys;
use crate::state::AppState;

#[derive(Deserialize)]
/// The filters.
pub struct LogsQuery {
    api_key: Option<String>,
    request_id: Option<String>,
    user_id: Option<String>,
    team_id: Option<String>,
    start_date: Option<String>,
    end_date: Option<String>,
    limit: Option<i64>,
}

/// A query date: RFC 3339, `YYYY-MM-DD HH:MM:SS` (UTC) or a day (an end day counts whole).
pub(super) fn date(field: &str, text: &str, end: bool) -> Result<NaiveDateTime, ApiError> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.naive_utc());
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S") {
        return Ok(t);
    }
    let day = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        ApiError::bad_request(
            format!("Invalid value for '{field}': expected YYYY-MM-DD or an RFC 3339 time"),
            Some(field),
        )
    })?;
    // An end date includes its whole day.
    let day = if end {
        day.succ_opt().unwrap_or(day)
    } else {
        day
    };
    Ok(day.and_hms_opt(0, 0, 0).unwrap_or_default())
}

/// `GET /spend/logs`: admins and viewers read every row; a user with a role reads their own
/// (the rows of their keys).
pub async fn logs(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<LogsQuery>,
) -> Result<HttpResponse, ApiError> {
    let access = access(&state, &req).await?;
    let user_id = if access.sees_all() {
        q.user_id.clone()
    } else {
        match (access.role, access.user_id()) {
            (Some(_), Some(me)) if q.user_id.as_deref().is_none_or(|u| u == me) => {
                Some(me.to_owned())
            }
            _ => return Err(denied(&access, "read these spend logs")),
        }
    };
    let filter = LogFilter {
        api_key: q.api_key.as_deref().map(keys::token_of),
        request_id: q.request_id.clone(),
        user_id,
        team_id: q.team_id.clone(),
        start: q
            .start_date
            .as_deref()
            .map(|d| date("start_date", d, false))
            .transpose()?,
        end: q
            .end_date
            .as_deref()
            .map(|d| date("end_date", d, true))
            .transpose()?,
        limit: q.limit.unwrap_or(1000).clamp(1, 100_000),
    };
    let rows = state
        .db
        .run(move |db| async move { db.spend_logs(&filter).await })
        .await
        .map_err(|e| {
            log::warn!("spend log read failed: {e}");
            ApiError::Unavailable("database".into())
        })?;
    let out: Vec<_> = rows
        .into_iter()
        .map(|r| {
            json!({
                "request_id": r.request_id,
                "api_key": r.api_key,
                "model": r.model,
                "model_group": r.model_group,
                "model_id": r.model_id,
                "api_base": r.api_base,
                "custom_llm_provider": r.provider,
                "prompt_tokens": r.prompt_tokens,
                "completion_tokens": r.completion_tokens,
                "total_tokens": r.total_tokens,
                "spend": r.spend,
                "startTime": r.start_time.and_utc().to_rfc3339(),
                "endTime": r.end_time.and_utc().to_rfc3339(),
                "status": r.status,
                "cache_hit": r.cache_hit,
                "user": r.user_id,
                "team_id": r.team_id,
                "end_user": r.end_user,
                "request_tags": serde_json::from_str::<serde_json::Value>(&r.request_tags).unwrap_or_default(),
                "metadata": serde_json::from_str::<serde_json::Value>(&r.metadata).unwrap_or_default(),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(out))
}

/// `GET /global/spend`: the proxy-wide spend (stored plus not yet written) and budget.
pub async fn global(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    require_view_all(&access(&state, &req).await?, &req)?;
    let unwritten = state
        .spend()
        .send(UnwrittenProxySpend)
        .await
        .map_err(|_| ApiError::Internal)?;
    let (stored, _) = state
        .db
        .run(|db| async move { db.proxy_spend().await })
        .await
        .map_err(|e| {
            log::warn!("proxy spend read failed: {e}");
            ApiError::Unavailable("database".into())
        })?;
    let spend = stored + unwritten;
    Ok(HttpResponse::Ok().json(json!({"spend": spend, "max_budget": state.settings.max_budget})))
}
