//! Audit rows for key changes: who made the change, what changed (the fields, never a
//! plaintext key), and when, in the shape of LiteLLM's `LiteLLM_AuditLog`.

use actix_web::HttpRequest;
use chrono::{NaiveDateTime, Utc};
use serde_json::{Map, Value as Json};

use super::record::utc;
use crate::db::models::{AuditLogRow, KeyRow};
use crate::governance::{Access, Who};

/// The table name LiteLLM's audit log gives virtual keys.
pub const KEY_TABLE: &str = "LiteLLM_VerificationToken";

/// The header LiteLLM reads to attribute a management call to a person.
pub const CHANGED_BY_HEADER: &str = "litellm-changed-by";

/// The longest `litellm-changed-by` value kept.
const MAX_CHANGED_BY: usize = 256;

/// What was done to a key (LiteLLM's `AUDIT_ACTIONS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    /// `/key/generate`.
    Created,
    /// `/key/update`, `/key/unblock`.
    Updated,
    /// `/key/block`.
    Blocked,
    /// `/key/regenerate`.
    Rotated,
    /// `/key/delete`.
    Deleted,
}

impl AuditAction {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Blocked => "blocked",
            Self::Rotated => "rotated",
            Self::Deleted => "deleted",
        }
    }
}

/// Who made a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The `litellm-changed-by` header, else `master_key` (`anonymous` with no master key).
    pub changed_by: String,
    /// `master_key` when the master key was used, else empty; never a key or its hash.
    pub api_key: String,
}

impl Actor {
    /// The caller of a management route: the master key, anyone with none configured, or a
    /// virtual key's user (named by their user id, never by the key or its hash).
    pub fn of(access: &Access, req: &HttpRequest) -> Self {
        let (label, api_key) = match &access.who {
            Who::Master => ("master_key", "master_key"),
            Who::Open => ("anonymous", ""),
            Who::Key { user_id, .. } => (user_id.as_deref().unwrap_or("virtual_key"), ""),
        };
        let named = req
            .headers()
            .get(CHANGED_BY_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(|v| v.chars().take(MAX_CHANGED_BY).collect::<String>());
        Self {
            changed_by: named.unwrap_or_else(|| label.to_owned()),
            api_key: api_key.to_owned(),
        }
    }
}

fn json_text(text: &str) -> Json {
    serde_json::from_str(text).unwrap_or_else(|_| Json::String(text.to_owned()))
}

fn time(t: Option<NaiveDateTime>) -> Json {
    t.map_or(Json::Null, |t| {
        Json::String(utc(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    })
}

/// Every field of a key as JSON, keyed by its LiteLLM name. The row holds no secret: the key
/// itself is stored only as its hash (`token`), and `key_name` is the abbreviated `sk-...XXXX`.
pub fn key_fields(row: &KeyRow) -> Map<String, Json> {
    let mut m = Map::new();
    let mut put = |k: &str, v: Json| {
        m.insert(k.to_owned(), v);
    };
    put("token", Json::from(row.token.clone()));
    put("key_name", Json::from(row.key_name.clone()));
    put("key_alias", Json::from(row.key_alias.clone()));
    put("spend", Json::from(row.spend));
    put("max_budget", Json::from(row.max_budget));
    put("budget_duration", Json::from(row.budget_duration.clone()));
    put("budget_reset_at", time(row.budget_reset_at));
    put("expires", time(row.expires));
    put("models", json_text(&row.models));
    put("aliases", json_text(&row.aliases));
    put("config", json_text(&row.config));
    put("metadata", json_text(&row.metadata));
    put("model_max_budget", json_text(&row.model_max_budget));
    put("model_rpm_limit", json_text(&row.model_rpm_limit));
    put("model_tpm_limit", json_text(&row.model_tpm_limit));
    put("tpm_limit", Json::from(row.tpm_limit));
    put("rpm_limit", Json::from(row.rpm_limit));
    put(
        "max_parallel_requests",
        Json::from(row.max_parallel_requests),
    );
    put("user_id", Json::from(row.user_id.clone()));
    put("team_id", Json::from(row.team_id.clone()));
    put("tags", json_text(&row.tags));
    put("blocked", Json::from(row.blocked));
    put(
        "allowed_cache_controls",
        json_text(&row.allowed_cache_controls),
    );
    put("created_at", time(Some(row.created_at)));
    m
}

fn row(
    actor: &Actor,
    action: AuditAction,
    object_id: &str,
    before: Option<Map<String, Json>>,
    after: Option<Map<String, Json>>,
) -> AuditLogRow {
    entry(actor, action, KEY_TABLE, object_id, before, after)
}

/// An audit row of `action` on `object_id` in `table` (by LiteLLM's table name).
pub fn entry(
    actor: &Actor,
    action: AuditAction,
    table: &str,
    object_id: &str,
    before: Option<Map<String, Json>>,
    after: Option<Map<String, Json>>,
) -> AuditLogRow {
    AuditLogRow {
        id: uuid::Uuid::new_v4().to_string(),
        updated_at: Utc::now().naive_utc(),
        changed_by: actor.changed_by.clone(),
        changed_by_api_key: actor.api_key.clone(),
        action: action.as_str().to_owned(),
        table_name: table.to_owned(),
        object_id: object_id.to_owned(),
        before_value: before.map(|m| Json::Object(m).to_string()),
        updated_values: after.map(|m| Json::Object(m).to_string()),
    }
}

/// The fields that differ between `old` and `new`: their values before, and after.
pub fn diff(
    old: &Map<String, Json>,
    new: Map<String, Json>,
) -> (Map<String, Json>, Map<String, Json>) {
    let mut was = Map::new();
    let mut now = Map::new();
    for (field, value) in new {
        let previous = old.get(&field).cloned().unwrap_or(Json::Null);
        if previous != value {
            was.insert(field.clone(), previous);
            now.insert(field, value);
        }
    }
    (was, now)
}

/// A new key: every field it was created with.
pub fn created(actor: &Actor, key: &KeyRow) -> AuditLogRow {
    row(
        actor,
        AuditAction::Created,
        &key.token,
        None,
        Some(key_fields(key)),
    )
}

/// A changed key: the fields that differ, before and after.
pub fn changed(actor: &Actor, action: AuditAction, before: &KeyRow, after: &KeyRow) -> AuditLogRow {
    let (was, now) = diff(&key_fields(before), key_fields(after));
    row(actor, action, &after.token, Some(was), Some(now))
}

/// A regenerated key: its old token and name, and its new ones (never the new key itself).
pub fn rotated(
    actor: &Actor,
    old_token: &str,
    old_name: Option<&str>,
    new_token: &str,
    new_name: &str,
) -> AuditLogRow {
    let mut was = Map::new();
    was.insert("token".into(), Json::from(old_token));
    if let Some(name) = old_name {
        was.insert("key_name".into(), Json::from(name));
    }
    let mut now = Map::new();
    now.insert("token".into(), Json::from(new_token));
    now.insert("key_name".into(), Json::from(new_name));
    row(actor, AuditAction::Rotated, old_token, Some(was), Some(now))
}

/// A deleted key: all it was.
pub fn deleted(actor: &Actor, key: &KeyRow) -> AuditLogRow {
    row(
        actor,
        AuditAction::Deleted,
        &key.token,
        Some(key_fields(key)),
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> KeyRow {
        KeyRow::blank("ab".repeat(32), "sk-...wxyz".into(), Utc::now().naive_utc())
    }

    fn actor() -> Actor {
        Actor {
            changed_by: "master_key".into(),
            api_key: "master_key".into(),
        }
    }

    #[test]
    fn a_change_records_only_the_fields_that_differ() {
        let before = key();
        let mut after = before.clone();
        after.max_budget = Some(5.0);
        after.models = r#"["gpt"]"#.into();
        after.updated_at += chrono::Duration::seconds(5);

        let row = changed(&actor(), AuditAction::Updated, &before, &after);

        let was: Json = serde_json::from_str(row.before_value.as_deref().unwrap()).unwrap();
        let now: Json = serde_json::from_str(row.updated_values.as_deref().unwrap()).unwrap();
        assert_eq!(was, serde_json::json!({"max_budget": null, "models": []}));
        assert_eq!(
            now,
            serde_json::json!({"max_budget": 5.0, "models": ["gpt"]})
        );
        assert_eq!(row.action, "updated");
        assert_eq!(row.table_name, KEY_TABLE);
        assert_eq!(row.object_id, before.token);
    }

    #[test]
    fn creation_and_deletion_keep_the_whole_key() {
        let k = key();
        let made = created(&actor(), &k);
        let gone = deleted(&actor(), &k);
        assert!(made.before_value.is_none());
        assert!(made
            .updated_values
            .unwrap()
            .contains("\"key_name\":\"sk-...wxyz\""));
        assert!(gone.updated_values.is_none());
        assert!(gone.before_value.unwrap().contains(&k.token));
    }
}
