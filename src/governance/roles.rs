//! Who may manage what: LiteLLM's user roles and team admins, and the caller of a management
//! route with the rights they give (pure: the route layer reads the records).

use crate::db::models::KeyRow;

/// A user's role on the proxy (LiteLLM's `user_role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything, like the master key.
    ProxyAdmin,
    /// Sees every key, user, team and all spend; changes nothing.
    ProxyAdminViewer,
    /// Creates, changes and deletes their own keys; sees their own keys and spend.
    InternalUser,
    /// Sees their own keys and spend; changes nothing.
    InternalUserViewer,
}

impl Role {
    /// Every role, by its stored name.
    pub const ALL: [Role; 4] = [
        Role::ProxyAdmin,
        Role::ProxyAdminViewer,
        Role::InternalUser,
        Role::InternalUserViewer,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ProxyAdmin => "proxy_admin",
            Self::ProxyAdminViewer => "proxy_admin_viewer",
            Self::InternalUser => "internal_user",
            Self::InternalUserViewer => "internal_user_viewer",
        }
    }

    /// The role a stored name means.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// A member's role in a team.
pub const TEAM_ADMIN: &str = "admin";
/// The default role of a team member.
pub const TEAM_USER: &str = "user";

/// Who called a management route.
#[derive(Debug, Clone, PartialEq)]
pub enum Who {
    /// No master key is configured: everyone is an admin.
    Open,
    /// The master key.
    Master,
    /// A virtual key, valid (not blocked, not expired).
    Key {
        /// Its token.
        token: String,
        /// Its user, if any.
        user_id: Option<String>,
        /// Its team, if any.
        team_id: Option<String>,
    },
}

/// The caller of a management route and the rights their key's user has.
#[derive(Debug, Clone, PartialEq)]
pub struct Access {
    /// Who.
    pub who: Who,
    /// The key's user's role (`None`: a key without a user, or a user without a row).
    pub role: Option<Role>,
    /// The teams the key's user administers.
    pub admin_of: Vec<String>,
    /// The teams the key's user belongs to (admins included).
    pub member_of: Vec<String>,
}

impl Access {
    /// The caller when no master key is configured.
    pub fn open() -> Self {
        Self::of(Who::Open)
    }

    /// The master key.
    pub fn master() -> Self {
        Self::of(Who::Master)
    }

    fn of(who: Who) -> Self {
        Self {
            who,
            role: None,
            admin_of: Vec::new(),
            member_of: Vec::new(),
        }
    }

    /// The caller's key's token, when a virtual key called.
    pub fn token(&self) -> Option<&str> {
        match &self.who {
            Who::Key { token, .. } => Some(token),
            _ => None,
        }
    }

    /// The caller's key's user, when a virtual key of a user called.
    pub fn user_id(&self) -> Option<&str> {
        match &self.who {
            Who::Key { user_id, .. } => user_id.as_deref(),
            _ => None,
        }
    }

    /// The master key, or a proxy admin: may do everything.
    pub fn is_admin(&self) -> bool {
        matches!(self.who, Who::Open | Who::Master) || self.role == Some(Role::ProxyAdmin)
    }

    /// May see everything (admins and admin viewers).
    pub fn sees_all(&self) -> bool {
        self.is_admin() || self.role == Some(Role::ProxyAdminViewer)
    }

    /// How errors name the caller's role.
    pub fn role_name(&self) -> &'static str {
        match (&self.who, self.role) {
            (Who::Open | Who::Master, _) => "proxy_admin",
            (_, Some(role)) => role.as_str(),
            (_, None) => "virtual key",
        }
    }

    /// Whether the caller is `user_id` with a role that manages their own keys.
    fn is_self(&self, user_id: Option<&str>) -> bool {
        self.role.is_some() && user_id.is_some() && user_id == self.user_id()
    }

    /// Administers team `team_id`.
    pub fn admins_team(&self, team_id: Option<&str>) -> bool {
        team_id.is_some_and(|t| self.admin_of.iter().any(|a| a == t))
    }

    /// May read key `key`: admins and viewers, the key itself, its user, its team's admins.
    pub fn may_view_key(&self, key: &KeyRow) -> bool {
        self.sees_all()
            || self.token() == Some(key.token.as_str())
            || self.is_self(key.user_id.as_deref())
            || self.admins_team(key.team_id.as_deref())
    }

    /// May change or delete key `key`: admins, its user when an internal user, its team's
    /// admins.
    pub fn may_edit_key(&self, key: &KeyRow) -> bool {
        self.is_admin()
            || (self.role == Some(Role::InternalUser) && self.is_self(key.user_id.as_deref()))
            || self.admins_team(key.team_id.as_deref())
    }

    /// May make a key for `user_id` in `team_id`: admins any; a team's admins one of their
    /// team; an internal user one of their own, in no team or one they belong to.
    pub fn may_create_key(&self, user_id: Option<&str>, team_id: Option<&str>) -> bool {
        if self.is_admin() || self.admins_team(team_id) {
            return true;
        }
        self.role == Some(Role::InternalUser)
            && self.is_self(user_id)
            && team_id.is_none_or(|t| self.member_of.iter().any(|m| m == t))
    }

    /// May read user `user_id`: admins and viewers, and the user themself.
    pub fn may_view_user(&self, user_id: &str) -> bool {
        self.sees_all() || self.is_self(Some(user_id))
    }

    /// May read team `team_id`: admins and viewers, and its members.
    pub fn may_view_team(&self, team_id: &str) -> bool {
        self.sees_all()
            || self.member_of.iter().any(|m| m == team_id)
            || self.admins_team(Some(team_id))
    }

    /// May change team `team_id` and its members: admins and the team's admins.
    pub fn may_manage_team(&self, team_id: &str) -> bool {
        self.is_admin() || self.admins_team(Some(team_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_of(user: Option<&str>, team: Option<&str>) -> KeyRow {
        let mut row = KeyRow::blank(
            "t".into(),
            "sk-...abcd".into(),
            chrono::Utc::now().naive_utc(),
        );
        row.user_id = user.map(str::to_owned);
        row.team_id = team.map(str::to_owned);
        row
    }

    fn user(role: Option<Role>, admin_of: &[&str], member_of: &[&str]) -> Access {
        Access {
            who: Who::Key {
                token: "mine".into(),
                user_id: Some("u1".into()),
                team_id: None,
            },
            role,
            admin_of: admin_of.iter().map(|s| s.to_string()).collect(),
            member_of: member_of.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn roles_round_trip_through_their_names() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("admin"), None);
    }

    #[test]
    fn an_internal_user_manages_only_their_own_keys() {
        let a = user(Some(Role::InternalUser), &[], &["t1"]);
        assert!(a.may_edit_key(&key_of(Some("u1"), None)));
        assert!(!a.may_edit_key(&key_of(Some("u2"), None)));
        assert!(a.may_create_key(Some("u1"), Some("t1")));
        assert!(
            !a.may_create_key(Some("u1"), Some("t2")),
            "not a member of t2"
        );
        assert!(!a.may_create_key(Some("u2"), None));
        assert!(!a.sees_all());
        assert!(a.may_view_user("u1") && !a.may_view_user("u2"));
    }

    #[test]
    fn viewers_read_but_never_write() {
        let viewer = user(Some(Role::InternalUserViewer), &[], &[]);
        assert!(viewer.may_view_key(&key_of(Some("u1"), None)));
        assert!(!viewer.may_edit_key(&key_of(Some("u1"), None)));
        assert!(!viewer.may_create_key(Some("u1"), None));
        let admin_viewer = user(Some(Role::ProxyAdminViewer), &[], &[]);
        assert!(admin_viewer.sees_all() && !admin_viewer.is_admin());
        assert!(admin_viewer.may_view_key(&key_of(Some("u9"), None)));
        assert!(!admin_viewer.may_edit_key(&key_of(Some("u9"), None)));
    }

    #[test]
    fn a_team_admin_manages_the_teams_keys_and_members() {
        let a = user(Some(Role::InternalUserViewer), &["t1"], &["t1"]);
        assert!(a.may_edit_key(&key_of(Some("u7"), Some("t1"))));
        assert!(!a.may_edit_key(&key_of(Some("u7"), Some("t2"))));
        assert!(a.may_create_key(Some("u7"), Some("t1")));
        assert!(a.may_manage_team("t1") && !a.may_manage_team("t2"));
        assert!(a.may_view_team("t1") && !a.may_view_team("t2"));
    }

    #[test]
    fn a_key_without_a_user_sees_only_itself() {
        let a = Access {
            who: Who::Key {
                token: "mine".into(),
                user_id: None,
                team_id: None,
            },
            role: None,
            admin_of: Vec::new(),
            member_of: Vec::new(),
        };
        let mut own = key_of(None, None);
        own.token = "mine".into();
        assert!(a.may_view_key(&own));
        assert!(!a.may_edit_key(&own));
        assert!(!a.may_view_key(&key_of(None, None)));
        assert!(!a.may_create_key(None, None));
        assert!(Access::master().is_admin() && Access::open().sees_all());
    }
}
