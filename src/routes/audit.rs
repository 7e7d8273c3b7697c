//! `GET /audit/logs` (master key): who changed which key, how and when, newest first, in
//! LiteLLM's shape.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value as Json};

use super::access::{access, require_view_all};
use super::spend::date;
use crate::db::audit::AuditFilter;
use crate::db::models::AuditLogRow;
use crate::error::ApiError;
use crate::keys;
use crate::state::AppState;

/// The largest page.
const MAX_PAGE_SIZE: i64 = 500;

#[derive(Deserialize)]
/// The filters and the page.
pub struct AuditQuery {
    action: Option<String>,
    table_name: Option<String>,
    object_id: Option<String>,
    changed_by: Option<String>,
    start_date: Option<String>,
    end_date: Option<String>,
    page: Option<i64>,
    page_size: Option<i64>,
}

fn json_or_null(text: Option<&str>) -> Json {
    text.and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(Json::Null)
}

fn shown(row: &AuditLogRow) -> Json {
    json!({
        "id": row.id,
        "updated_at": keys::record::utc(row.updated_at)
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "changed_by": row.changed_by,
        "changed_by_api_key": row.changed_by_api_key,
        "action": row.action,
        "table_name": row.table_name,
        "object_id": row.object_id,
        "before_value": json_or_null(row.before_value.as_deref()),
        "updated_values": json_or_null(row.updated_values.as_deref()),
    })
}

/// `GET /audit/logs?action=&table_name=&object_id=&changed_by=&start_date=&end_date=&page=&page_size=`
/// answers `{"data": [..], "total", "page", "page_size", "total_pages"}`. `object_id` may be a
/// key's token or the key itself, or with `table_name=LiteLLM_ProxyModelTable` a model's id.
pub async fn logs(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    require_view_all(&access(&state, &req).await?, &req)?;
    let page = q.page.unwrap_or(1);
    let page_size = q.page_size.unwrap_or(50);
    if page < 1 {
        return Err(ApiError::bad_request(
            "Invalid value for 'page': expected an integer of at least 1",
            Some("page"),
        ));
    }
    if !(1..=MAX_PAGE_SIZE).contains(&page_size) {
        return Err(ApiError::bad_request(
            format!("Invalid value for 'page_size': expected an integer from 1 to {MAX_PAGE_SIZE}"),
            Some("page_size"),
        ));
    }
    let filter = AuditFilter {
        action: q.action.clone(),
        table_name: q.table_name.clone(),
        // A model's id is its own; a key is found by its token, or by itself hashed.
        object_id: q.object_id.as_deref().map(|id| {
            if q.table_name.as_deref() == Some(crate::modeldb::MODEL_TABLE) {
                id.to_owned()
            } else {
                keys::token_of(id)
            }
        }),
        changed_by: q.changed_by.clone(),
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
    };
    let (rows, total) = state
        .db
        .run(move |db| async move { db.audit_logs(&filter, page, page_size).await })
        .await
        .map_err(|e| {
            log::warn!("audit log read failed: {e}");
            ApiError::Unavailable("database".into())
        })?;
    Ok(HttpResponse::Ok().json(json!({
        "data": rows.iter().map(shown).collect::<Vec<_>>(),
        "total": total,
        "page": page,
        "page_size": page_size,
        "total_pages": (total + page_size - 1) / page_size,
    })))
}
