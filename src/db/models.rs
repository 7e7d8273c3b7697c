//! Rows as Rust structs: what is read from and written to each table.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{
    llmgate_audit_logs, llmgate_daily_spend, llmgate_entities, llmgate_keys, llmgate_spend_logs,
};

/// One virtual key; JSON-valued fields are JSON text.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = llmgate_keys)]
pub struct KeyRow {
    /// SHA-256 hex of the key.
    pub token: String,
    /// `sk-...XXXX`.
    pub key_name: String,
    /// A unique human name.
    pub key_alias: Option<String>,
    /// USD spent (as of the last flush).
    pub spend: f64,
    /// Spend limit in USD.
    pub max_budget: Option<f64>,
    /// How often spend resets (`30d`).
    pub budget_duration: Option<String>,
    /// When spend next resets.
    pub budget_reset_at: Option<NaiveDateTime>,
    /// When the key stops working.
    pub expires: Option<NaiveDateTime>,
    /// JSON list of allowed models (empty = all).
    pub models: String,
    /// JSON map of public name to model group.
    pub aliases: String,
    /// JSON object.
    pub config: String,
    /// JSON object.
    pub metadata: String,
    /// JSON map of model to USD limit.
    pub model_max_budget: String,
    /// JSON map of model to requests per minute.
    pub model_rpm_limit: String,
    /// JSON map of model to tokens per minute.
    pub model_tpm_limit: String,
    /// Tokens per minute.
    pub tpm_limit: Option<i64>,
    /// Requests per minute.
    pub rpm_limit: Option<i64>,
    /// Requests at once.
    pub max_parallel_requests: Option<i64>,
    /// Owner.
    pub user_id: Option<String>,
    /// Team.
    pub team_id: Option<String>,
    /// JSON list of tags.
    pub tags: String,
    /// Refused while true.
    pub blocked: bool,
    /// Creation time (UTC).
    pub created_at: NaiveDateTime,
    /// Last change (UTC).
    pub updated_at: NaiveDateTime,
    /// JSON list of the cache controls requests may set (empty = all).
    pub allowed_cache_controls: String,
}

impl KeyRow {
    /// A new key with no limits, no spend and empty JSON fields.
    pub fn blank(token: String, key_name: String, now: NaiveDateTime) -> Self {
        Self {
            token,
            key_name,
            key_alias: None,
            spend: 0.0,
            max_budget: None,
            budget_duration: None,
            budget_reset_at: None,
            expires: None,
            models: "[]".into(),
            aliases: "{}".into(),
            config: "{}".into(),
            metadata: "{}".into(),
            model_max_budget: "{}".into(),
            model_rpm_limit: "{}".into(),
            model_tpm_limit: "{}".into(),
            tpm_limit: None,
            rpm_limit: None,
            max_parallel_requests: None,
            user_id: None,
            team_id: None,
            tags: "[]".into(),
            blocked: false,
            created_at: now,
            updated_at: now,
            allowed_cache_controls: "[]".into(),
        }
    }
}

/// Everything an admin may change on a key, except its spend: saving settings never
/// overwrites spend that was counted since the key was read.
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = llmgate_keys, treat_none_as_null = true)]
pub struct KeySettings {
    /// See [`KeyRow`].
    pub key_alias: Option<String>,
    /// See [`KeyRow`].
    pub max_budget: Option<f64>,
    /// See [`KeyRow`].
    pub budget_duration: Option<String>,
    /// See [`KeyRow`].
    pub budget_reset_at: Option<NaiveDateTime>,
    /// See [`KeyRow`].
    pub expires: Option<NaiveDateTime>,
    /// See [`KeyRow`].
    pub models: String,
    /// See [`KeyRow`].
    pub aliases: String,
    /// See [`KeyRow`].
    pub config: String,
    /// See [`KeyRow`].
    pub metadata: String,
    /// See [`KeyRow`].
    pub model_max_budget: String,
    /// See [`KeyRow`].
    pub model_rpm_limit: String,
    /// See [`KeyRow`].
    pub model_tpm_limit: String,
    /// See [`KeyRow`].
    pub tpm_limit: Option<i64>,
    /// See [`KeyRow`].
    pub rpm_limit: Option<i64>,
    /// See [`KeyRow`].
    pub max_parallel_requests: Option<i64>,
    /// See [`KeyRow`].
    pub user_id: Option<String>,
    /// See [`KeyRow`].
    pub team_id: Option<String>,
    /// See [`KeyRow`].
    pub tags: String,
    /// See [`KeyRow`].
    pub blocked: bool,
    /// See [`KeyRow`].
    pub updated_at: NaiveDateTime,
    /// See [`KeyRow`].
    pub allowed_cache_controls: String,
}

impl From<&KeyRow> for KeySettings {
    fn from(r: &KeyRow) -> Self {
        Self {
            key_alias: r.key_alias.clone(),
            max_budget: r.max_budget,
            budget_duration: r.budget_duration.clone(),
            budget_reset_at: r.budget_reset_at,
            expires: r.expires,
            models: r.models.clone(),
            aliases: r.aliases.clone(),
            config: r.config.clone(),
            metadata: r.metadata.clone(),
            model_max_budget: r.model_max_budget.clone(),
            model_rpm_limit: r.model_rpm_limit.clone(),
            model_tpm_limit: r.model_tpm_limit.clone(),
            tpm_limit: r.tpm_limit,
            rpm_limit: r.rpm_limit,
            max_parallel_requests: r.max_parallel_requests,
            user_id: r.user_id.clone(),
            team_id: r.team_id.clone(),
            tags: r.tags.clone(),
            blocked: r.blocked,
            updated_at: r.updated_at,
            allowed_cache_controls: r.allowed_cache_controls.clone(),
        }
    }
}

/// One finished request, as written to the spend log (and to the spend journal).
#[derive(
    Debug, Clone, PartialEq, Queryable, Selectable, Insertable, serde::Serialize, serde::Deserialize,
)]
#[diesel(table_name = llmgate_spend_logs, treat_none_as_default_value = false)]
pub struct SpendLogRow {
    /// The call id.
    pub request_id: String,
    /// SHA-256 hex of the key ("" when no key).
    pub api_key: String,
    /// The model sent upstream.
    pub model: String,
    /// The public group.
    pub model_group: String,
    /// The deployment id.
    pub model_id: String,
    /// The deployment's base URL (no credentials).
    pub api_base: String,
    /// The provider.
    pub provider: String,
    /// Prompt tokens.
    pub prompt_tokens: i64,
    /// Completion tokens.
    pub completion_tokens: i64,
    /// Their sum.
    pub total_tokens: i64,
    /// USD.
    pub spend: f64,
    /// When the request started (UTC).
    pub start_time: NaiveDateTime,
    /// When it ended (UTC).
    pub end_time: NaiveDateTime,
    /// `success` or `failure`.
    pub status: String,
    /// Served from the cache.
    pub cache_hit: bool,
    /// The key's user.
    pub user_id: Option<String>,
    /// JSON object from the request's `metadata`.
    pub metadata: String,
    /// The key's team.
    // Journal lines leave out what is empty: most requests have none of these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_id: Option<String>,
    /// The request's end user (its `user`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_user: Option<String>,
    /// JSON list of the request's tags (its `metadata.tags` and the key's).
    #[serde(default = "empty_list", skip_serializing_if = "is_empty_list")]
    pub request_tags: String,
}

fn empty_list() -> String {
    "[]".to_owned()
}

fn is_empty_list(text: &str) -> bool {
    text == "[]"
}

/// One change to a key, as the audit log keeps it (LiteLLM's `LiteLLM_AuditLog`).
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = llmgate_audit_logs, treat_none_as_default_value = false)]
pub struct AuditLogRow {
    /// A UUID.
    pub id: String,
    /// When the change was made (UTC).
    pub updated_at: NaiveDateTime,
    /// Who made it: the `litellm-changed-by` header, else `master_key` (or `anonymous` when no
    /// master key is configured).
    pub changed_by: String,
    /// Which credential made it: `master_key`, or empty with no master key; never a key or its hash.
    pub changed_by_api_key: String,
    /// `created`, `updated`, `blocked`, `rotated` or `deleted`.
    pub action: String,
    /// The table changed, by LiteLLM's name (`LiteLLM_VerificationToken` for keys).
    pub table_name: String,
    /// The changed key's token (SHA-256 hex).
    pub object_id: String,
    /// JSON object of the changed fields before the change (the whole key when deleted).
    pub before_value: Option<String>,
    /// JSON object of the changed fields after the change (the whole key when created).
    pub updated_values: Option<String>,
}

/// A user, team, team member, end user or tag: who spends, with the limits that hold them.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = llmgate_entities, treat_none_as_null = true)]
pub struct EntityRow {
    /// `user`, `team`, `member`, `end_user` or `tag`.
    pub kind: String,
    /// A member's team ("" for every other kind).
    pub scope: String,
    /// The user, team, end user id or tag name.
    pub id: String,
    /// `user_alias`, `team_alias`, an end user's `alias`, a tag's `description`.
    pub alias: Option<String>,
    /// A user's `user_email`.
    pub email: Option<String>,
    /// A user's `user_role`; a member's role in its team (`admin` or `user`).
    pub role: Option<String>,
    /// JSON list of allowed models (empty = all).
    pub models: String,
    /// JSON object.
    pub metadata: String,
    /// JSON object of the kind's other fields (an end user's `allowed_model_region`, ...).
    pub details: String,
    /// USD spent (as of the last flush).
    pub spend: f64,
    /// Spend limit in USD.
    pub max_budget: Option<f64>,
    /// How often spend resets (`30d`).
    pub budget_duration: Option<String>,
    /// When spend next resets.
    pub budget_reset_at: Option<NaiveDateTime>,
    /// Tokens per minute.
    pub tpm_limit: Option<i64>,
    /// Requests per minute.
    pub rpm_limit: Option<i64>,
    /// Requests at once.
    pub max_parallel_requests: Option<i64>,
    /// Refused while true (teams and end users).
    pub blocked: bool,
    /// Creation time (UTC).
    pub created_at: NaiveDateTime,
    /// Last change (UTC).
    pub updated_at: NaiveDateTime,
}

impl EntityRow {
    /// A new entity with no limits, no spend and empty JSON fields.
    pub fn blank(kind: &str, scope: &str, id: &str, now: NaiveDateTime) -> Self {
        Self {
            kind: kind.to_owned(),
            scope: scope.to_owned(),
            id: id.to_owned(),
            alias: None,
            email: None,
            role: None,
            models: "[]".into(),
            metadata: "{}".into(),
            details: "{}".into(),
            spend: 0.0,
            max_budget: None,
            budget_duration: None,
            budget_reset_at: None,
            tpm_limit: None,
            rpm_limit: None,
            max_parallel_requests: None,
            blocked: false,
            created_at: now,
            updated_at: now,
        }
    }
}

/// One day of an entity's spend on one key, model and provider.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = llmgate_daily_spend)]
pub struct DailySpendRow {
    /// `user`, `team`, `end_user` or `tag`.
    pub kind: String,
    /// The entity's id.
    pub entity_id: String,
    /// The UTC day, `YYYY-MM-DD`.
    pub date: String,
    /// The hashed key ("" when none).
    pub api_key: String,
    /// The model sent upstream.
    pub model: String,
    /// The public group.
    pub model_group: String,
    /// The provider.
    pub provider: String,
    /// Prompt tokens.
    pub prompt_tokens: i64,
    /// Completion tokens.
    pub completion_tokens: i64,
    /// USD.
    pub spend: f64,
    /// Requests.
    pub api_requests: i64,
    /// Requests that succeeded.
    pub successful_requests: i64,
    /// Requests that failed.
    pub failed_requests: i64,
}
