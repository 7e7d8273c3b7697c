//! Governance beyond keys: users, teams, team members, end users and tags, their limits and
//! live state, and the roles that decide who may manage what.

pub mod entity;
pub mod ledger;
pub mod roles;
pub mod rollup;

pub use entity::{EntityKind, EntityRecord, EntityRef, Limits};
pub use ledger::{rolled_over, Checked, EntityLedger, Held};
pub use roles::{Access, Role, Who};

use std::sync::Arc;

use crate::keys::KeyRecord;

/// The most tags a request is charged to; more are ignored (a client cannot make one request
/// fan out to any number of budgets).
pub const MAX_TAGS: usize = 32;

/// Who a request names besides its key: its end user (`user`) and its tags (`metadata.tags`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Principals {
    /// The request's `user`.
    pub end_user: Option<Arc<str>>,
    /// The request's tags.
    pub tags: Vec<Arc<str>>,
}

impl Principals {
    /// Every entity a request of `key` (if any) is charged to: the key's user, team and team
    /// member, the request's end user, then its tags and the key's, each once.
    pub fn entities(&self, key: Option<&KeyRecord>) -> Vec<EntityRef> {
        let owners = key.map_or(&[][..], |k| &k.owners[..]);
        if owners.is_empty() && self.end_user.is_none() && self.tags.is_empty() {
            return Vec::new();
        }
        let mut out: Vec<EntityRef> = owners.to_vec();
        if let Some(end_user) = &self.end_user {
            out.push(EntityRef::unscoped(EntityKind::EndUser, end_user.clone()));
        }
        for tag in &self.tags {
            let tag = EntityRef::unscoped(EntityKind::Tag, tag.clone());
            if !out.contains(&tag) {
                out.push(tag);
            }
        }
        let tags = out.iter().filter(|e| e.kind == EntityKind::Tag).count();
        if tags > MAX_TAGS {
            let mut seen = 0;
            out.retain(|e| {
                if e.kind != EntityKind::Tag {
                    return true;
                }
                seen += 1;
                seen <= MAX_TAGS
            });
        }
        out
    }
}
