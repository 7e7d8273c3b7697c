//! Rows as Rust structs: what is read from and written to each table.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{llmgate_keys, llmgate_spend_logs};

/// One virtual key; JSON-valued fields are JSON text.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = llmgate_keys, treat_none_as_null = true)]
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
}

/// One finished request, as written to the spend log.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
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
}
