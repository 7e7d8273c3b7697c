//! Who a request is charged to besides its key: users, teams, team members, end users and tags,
//! each named by an `EntityRef` and held to the limits of its `EntityRecord`.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{json, Value as Json};

use crate::db::models::EntityRow;
use crate::keys::record::utc;

/// The kinds of entity, as stored in `llmgate_entities.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntityKind {
    /// An internal user (a key's `user_id`).
    User,
    /// A team (a key's `team_id`).
    Team,
    /// A user within a team (their budget and limits there).
    Member,
    /// The request's `user`: a customer of the proxy's clients.
    EndUser,
    /// One of the request's tags.
    Tag,
}

impl EntityKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Team => "team",
            Self::Member => "member",
            Self::EndUser => "end_user",
            Self::Tag => "tag",
        }
    }

    /// The kind a stored name means.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "user" => Self::User,
            "team" => Self::Team,
            "member" => Self::Member,
            "end_user" => Self::EndUser,
            "tag" => Self::Tag,
            _ => return None,
        })
    }

    /// How errors name the kind.
    pub fn label(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Team => "team",
            Self::Member => "team member",
            Self::EndUser => "end user",
            Self::Tag => "tag",
        }
    }
}

/// One entity: its kind, its scope (a member's team, else empty) and its id. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntityRef {
    /// The kind.
    pub kind: EntityKind,
    /// A member's team; empty for every other kind.
    pub scope: Arc<str>,
    /// The id (user id, team id, end user id, tag name).
    pub id: Arc<str>,
}

/// The empty scope every kind but members has, shared so naming an entity allocates only its id.
pub fn unscoped() -> Arc<str> {
    static EMPTY: std::sync::OnceLock<Arc<str>> = std::sync::OnceLock::new();
    EMPTY.get_or_init(|| Arc::from("")).clone()
}

impl EntityRef {
    /// An entity of a kind without a scope.
    pub fn new(kind: EntityKind, id: &str) -> Self {
        Self::unscoped(kind, Arc::from(id))
    }

    /// An entity of a kind without a scope, from a shared id.
    pub fn unscoped(kind: EntityKind, id: Arc<str>) -> Self {
        Self {
            kind,
            scope: unscoped(),
            id,
        }
    }

    /// User `user` in team `team`.
    pub fn member(team: &str, user: &str) -> Self {
        Self {
            kind: EntityKind::Member,
            scope: Arc::from(team),
            id: Arc::from(user),
        }
    }
}

impl fmt::Display for EntityRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            EntityKind::Member => write!(f, "team member {} of team {}", self.id, self.scope),
            kind => write!(f, "{} {}", kind.label(), self.id),
        }
    }
}

/// Budget and rate limits, the same for every kind of entity.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits {
    /// USD per budget period.
    pub max_budget: Option<f64>,
    /// Requests per minute.
    pub rpm_limit: Option<u64>,
    /// Tokens per minute.
    pub tpm_limit: Option<u64>,
    /// Requests at once.
    pub max_parallel_requests: Option<u64>,
}

impl Limits {
    /// Whether any rate or parallel limit is set (counted in windows).
    pub fn has_rates(&self) -> bool {
        self.rpm_limit.is_some() || self.tpm_limit.is_some() || self.max_parallel_requests.is_some()
    }
}

/// A stored entity as the gateway uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityRecord {
    /// The stored row.
    pub row: EntityRow,
    /// Which entity.
    pub entity: EntityRef,
    /// Allowed models, groups or access groups (empty = all).
    pub models: Vec<String>,
    /// Its limits.
    pub limits: Limits,
}

fn count(v: Option<i64>) -> Option<u64> {
    v.and_then(|n| u64::try_from(n).ok())
}

fn iso(t: Option<chrono::NaiveDateTime>) -> Json {
    t.map_or(Json::Null, |t| {
        Json::String(utc(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    })
}

/// Parses a stored JSON text, falling back to the type's default.
pub fn parse_text<T: serde::de::DeserializeOwned + Default>(text: &str) -> T {
    serde_json::from_str(text).unwrap_or_default()
}

impl EntityRecord {
    /// Parses a stored row; `None` for a row of an unknown kind.
    pub fn new(row: EntityRow) -> Option<Self> {
        let kind = EntityKind::parse(&row.kind)?;
        let entity = EntityRef {
            kind,
            scope: Arc::from(row.scope.as_str()),
            id: Arc::from(row.id.as_str()),
        };
        Some(Self {
            models: parse_text(&row.models),
            limits: Limits {
                max_budget: row.max_budget,
                rpm_limit: count(row.rpm_limit),
                tpm_limit: count(row.tpm_limit),
                max_parallel_requests: count(row.max_parallel_requests),
            },
            entity,
            row,
        })
    }

    /// When its budget next resets.
    pub fn reset_at(&self) -> Option<DateTime<Utc>> {
        self.row.budget_reset_at.map(utc)
    }

    /// The fields every kind shows, with `spend` as given (the live figure when known).
    pub fn common_fields(&self, spend: f64) -> serde_json::Map<String, Json> {
        let r = &self.row;
        let text = |t: &str| serde_json::from_str::<Json>(t).unwrap_or(Json::Null);
        let Json::Object(m) = json!({
            "spend": spend,
            "max_budget": r.max_budget,
            "budget_duration": r.budget_duration,
            "budget_reset_at": iso(r.budget_reset_at),
            "models": text(&r.models),
            "metadata": text(&r.metadata),
            "tpm_limit": r.tpm_limit,
            "rpm_limit": r.rpm_limit,
            "max_parallel_requests": r.max_parallel_requests,
            "blocked": r.blocked,
            "created_at": iso(Some(r.created_at)),
            "updated_at": iso(Some(r.updated_at)),
        }) else {
            return serde_json::Map::new();
        };
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_stored_names() {
        for kind in [
            EntityKind::User,
            EntityKind::Team,
            EntityKind::Member,
            EntityKind::EndUser,
            EntityKind::Tag,
        ] {
            assert_eq!(EntityKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(EntityKind::parse("organization"), None);
    }

    #[test]
    fn a_row_parses_into_limits_and_names_itself() {
        let mut row = EntityRow::blank("member", "t1", "u1", Utc::now().naive_utc());
        row.rpm_limit = Some(5);
        row.tpm_limit = Some(-1);
        row.models = r#"["gpt-4o"]"#.into();
        let r = EntityRecord::new(row).unwrap();
        assert_eq!(r.limits.rpm_limit, Some(5));
        assert_eq!(r.limits.tpm_limit, None, "a negative limit is no limit");
        assert_eq!(r.models, vec!["gpt-4o".to_owned()]);
        assert_eq!(r.entity.to_string(), "team member u1 of team t1");
        assert_eq!(
            EntityRef::new(EntityKind::Tag, "prod").to_string(),
            "tag prod"
        );
    }
}
