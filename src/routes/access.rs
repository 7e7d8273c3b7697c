//! Who called a management route: the master key, or a valid virtual key with its user's role
//! and team memberships, read from the router's cache or the database.

use std::sync::Arc;

use actix_web::HttpRequest;
use chrono::Utc;

use super::pipeline::load_key;
use crate::actors::CachedKey;
use crate::auth::{authenticate, Caller};
use crate::error::ApiError;
use crate::governance::roles::TEAM_ADMIN;
use crate::governance::{Access, Role, Who};
use crate::keys::record::utc;
use crate::keys::{KeyRecord, Rejection};
use crate::state::AppState;

/// A key and its live spend (`None` when it is not cached here), from the router's cache or
/// else the database; `None` when no such key exists.
pub async fn key_record(
    state: &AppState,
    token: &str,
) -> Result<Option<(Arc<KeyRecord>, Option<f64>)>, ApiError> {
    let cached = state
        .actors()
        .router
        .send(CachedKey(token.to_owned()))
        .await
        .map_err(|_| ApiError::Internal)?;
    if let Some((record, spend)) = cached {
        return Ok(Some((record, Some(spend))));
    }
    Ok(load_key(state, token).await?.map(|r| (Arc::new(r), None)))
}

/// The caller of a management route. A virtual key must exist, be unblocked and unexpired;
/// its user's role and teams come from the database.
pub async fn access(state: &AppState, req: &HttpRequest) -> Result<Access, ApiError> {
    let (token, shown) = match authenticate(state, req)? {
        Caller::Open => return Ok(Access::open()),
        Caller::Master => return Ok(Access::master()),
        Caller::Key { token, shown } => (token, shown),
    };
    let Some((record, _)) = key_record(state, &token).await? else {
        return Err(ApiError::InvalidKey(shown));
    };
    let row = &record.row;
    if row.blocked {
        return Err(ApiError::Key(Rejection::Blocked));
    }
    if let Some(expired) = row.expires.map(utc).filter(|e| *e <= Utc::now()) {
        return Err(ApiError::Key(Rejection::Expired(expired)));
    }
    let user_id = row.user_id.clone();
    let (role, memberships) = match &user_id {
        None => (None, Vec::new()),
        Some(uid) => {
            let uid = uid.clone();
            state
                .db
                .run(move |db| async move {
                    let user = db.entity("user", "", &uid).await?;
                    let teams = db.memberships(&uid).await?;
                    Ok((user, teams))
                })
                .await
                .map(|(user, teams)| {
                    let role = user.and_then(|u| u.role.as_deref().and_then(Role::parse));
                    (role, teams)
                })
                .map_err(|e| {
                    log::warn!("user lookup failed: {e}");
                    ApiError::Unavailable("database".into())
                })?
        }
    };
    let admin_of = memberships
        .iter()
        .filter(|m| m.role.as_deref() == Some(TEAM_ADMIN))
        .map(|m| m.scope.clone())
        .collect();
    let member_of = memberships.into_iter().map(|m| m.scope).collect();
    Ok(Access {
        who: Who::Key {
            token,
            user_id,
            team_id: row.team_id.clone(),
        },
        role,
        admin_of,
        member_of,
    })
}

/// The refusal of `action` (`call /user/new`) to the caller.
pub fn denied(access: &Access, action: impl Into<String>) -> ApiError {
    ApiError::NotAllowed {
        role: access.role_name().to_owned(),
        action: action.into(),
    }
}

/// Admits only admins (the master key, or a proxy admin's key).
pub fn require_admin(access: &Access, req: &HttpRequest) -> Result<(), ApiError> {
    if access.is_admin() {
        Ok(())
    } else {
        Err(denied(access, format!("call {}", req.path())))
    }
}

/// Admits admins and admin viewers.
pub fn require_view_all(access: &Access, req: &HttpRequest) -> Result<(), ApiError> {
    if access.sees_all() {
        Ok(())
    } else {
        Err(denied(access, format!("call {}", req.path())))
    }
}
