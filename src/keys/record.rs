//! `KeyRecord`: a stored key with its JSON fields parsed, and how it is shown by the key API.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{json, Value as Json};

use crate::db::models::KeyRow;
use crate::governance::{EntityKind, EntityRef};
pub use crate::shared::Headroom;

/// A key as the gateway uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyRecord {
    /// The stored row.
    pub row: KeyRow,
    /// Allowed models, groups or access groups (empty = all).
    pub models: Vec<String>,
    /// Public name to model group.
    pub aliases: HashMap<String, String>,
    /// USD limit per model group.
    pub model_max_budget: HashMap<String, f64>,
    /// Requests per minute per model group.
    pub model_rpm_limit: HashMap<String, u64>,
    /// Tokens per minute per model group.
    pub model_tpm_limit: HashMap<String, u64>,
    /// Spend per model group, as stored.
    pub model_spend: HashMap<String, f64>,
    /// What Redis last said about the key's room under its limits, and its lease.
    pub headroom: Headroom,
    /// Who the key's requests are charged to besides it: its user, team, membership of that
    /// team, and its tags.
    pub owners: Vec<EntityRef>,
}

/// The user, team, team member and tags a key's requests are charged to.
fn owners_of(row: &KeyRow) -> Vec<EntityRef> {
    let mut out = Vec::new();
    if let Some(user) = &row.user_id {
        out.push(EntityRef::new(EntityKind::User, user));
    }
    if let Some(team) = &row.team_id {
        out.push(EntityRef::new(EntityKind::Team, team));
        if let Some(user) = &row.user_id {
            out.push(EntityRef::member(team, user));
        }
    }
    let tags: Vec<String> = parse(&row.tags);
    for tag in tags.iter().take(crate::governance::MAX_TAGS) {
        out.push(EntityRef::new(EntityKind::Tag, tag));
    }
    out
}

fn parse<T: serde::de::DeserializeOwned + Default>(text: &str) -> T {
    serde_json::from_str(text).unwrap_or_default()
}

/// `model_max_budget` values are a number or LiteLLM's `{"budget_limit": n, ...}`.
fn budget_limits(text: &str) -> HashMap<String, f64> {
    let raw: HashMap<String, Json> = parse(text);
    raw.into_iter()
        .filter_map(|(model, v)| {
            let limit = v
                .as_f64()
                .or_else(|| v.get("budget_limit").and_then(Json::as_f64))?;
            Some((model, limit))
        })
        .collect()
}

/// A stored timestamp as UTC.
pub fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    DateTime::from_naive_utc_and_offset(t, Utc)
}

fn iso(t: Option<NaiveDateTime>) -> Json {
    t.map_or(Json::Null, |t| {
        Json::String(utc(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    })
}

impl KeyRecord {
    /// Parses a stored row and its per-model spend.
    pub fn new(row: KeyRow, model_spend: HashMap<String, f64>) -> Self {
        Self {
            models: parse(&row.models),
            aliases: parse(&row.aliases),
            model_max_budget: budget_limits(&row.model_max_budget),
            model_rpm_limit: parse(&row.model_rpm_limit),
            model_tpm_limit: parse(&row.model_tpm_limit),
            model_spend,
            owners: owners_of(&row),
            row,
            headroom: Headroom::default(),
        }
    }

    /// The key's fields as `/key/info` and `/key/generate` show them (never the plaintext key).
    pub fn info(&self, live_spend: Option<f64>) -> Json {
        let r = &self.row;
        let text = |t: &str| serde_json::from_str::<Json>(t).unwrap_or(Json::Null);
        json!({
            "token": r.token,
            "key_name": r.key_name,
            "key_alias": r.key_alias,
            "spend": live_spend.unwrap_or(r.spend),
            "max_budget": r.max_budget,
            "budget_duration": r.budget_duration,
            "budget_reset_at": iso(r.budget_reset_at),
            "expires": iso(r.expires),
            "models": text(&r.models),
            "aliases": text(&r.aliases),
            "config": text(&r.config),
            "metadata": text(&r.metadata),
            "model_max_budget": text(&r.model_max_budget),
            "model_rpm_limit": text(&r.model_rpm_limit),
            "model_tpm_limit": text(&r.model_tpm_limit),
            "model_spend": self.model_spend,
            "tpm_limit": r.tpm_limit,
            "rpm_limit": r.rpm_limit,
            "max_parallel_requests": r.max_parallel_requests,
            "user_id": r.user_id,
            "team_id": r.team_id,
            "tags": text(&r.tags),
            "blocked": r.blocked,
            "allowed_cache_controls": text(&r.allowed_cache_controls),
            "created_at": iso(Some(r.created_at)),
            "updated_at": iso(Some(r.updated_at)),
        })
    }

    /// Whether the key has any rate limit (then the `x-ratelimit-*` headers are sent).
    pub fn has_limits(&self) -> bool {
        self.row.rpm_limit.is_some() || self.row.tpm_limit.is_some()
    }
}
