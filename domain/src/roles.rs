//! Roles. A user may hold several; a guest is someone without an account.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Bidder,
    /// Donor or host: offers items and hosts events.
    Donor,
    /// Auction manager: runs the auction's lifecycle.
    Manager,
    Admin,
    Finance,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Bidder,
        Role::Donor,
        Role::Manager,
        Role::Admin,
        Role::Finance,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Bidder => "bidder",
            Role::Donor => "donor",
            Role::Manager => "manager",
            Role::Admin => "admin",
            Role::Finance => "finance",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }

    /// A label for people, used on pages.
    pub fn label(self) -> &'static str {
        match self {
            Role::Bidder => "Bidder",
            Role::Donor => "Donor / host",
            Role::Manager => "Auction manager",
            Role::Admin => "Administrator",
            Role::Finance => "Finance",
        }
    }
}

/// The set of roles a user holds, with the one question every route asks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Roles(Vec<Role>);

impl Roles {
    /// Builds a role set from stored text, ignoring unknown entries (the database's CHECK
    /// constraint keeps them out anyway). Sorted and deduplicated.
    pub fn from_strings<S: AsRef<str>>(names: &[S]) -> Roles {
        let mut roles: Vec<Role> = names
            .iter()
            .filter_map(|n| Role::parse(n.as_ref()))
            .collect();
        roles.sort();
        roles.dedup();
        Roles(roles)
    }

    pub fn new(mut roles: Vec<Role>) -> Roles {
        roles.sort();
        roles.dedup();
        Roles(roles)
    }

    pub fn has(&self, role: Role) -> bool {
        self.0.contains(&role)
    }

    /// Admins may do whatever any other role may: one place says so.
    pub fn has_any(&self, wanted: &[Role]) -> bool {
        self.has(Role::Admin) || wanted.iter().any(|r| self.has(*r))
    }

    pub fn as_strings(&self) -> Vec<String> {
        self.0.iter().map(|r| r.as_str().to_string()).collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = Role> + '_ {
        self.0.iter().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_passes_every_role_check() {
        let admin = Roles::new(vec![Role::Admin]);
        assert!(admin.has_any(&[Role::Finance]));
        assert!(admin.has_any(&[Role::Manager]));
        let bidder = Roles::from_strings(&["bidder", "bidder", "nonsense"]);
        assert_eq!(bidder.as_strings(), vec!["bidder"]);
        assert!(!bidder.has_any(&[Role::Manager, Role::Finance]));
        assert!(bidder.has_any(&[Role::Bidder]));
    }
}
