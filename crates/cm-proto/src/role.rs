//! Roles: what a certificate allows its holder to do. The agent decides from
//! the role in the peer's certificate, never from what the peer claims.

use thiserror::Error;

/// What a certificate allows its holder to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A host's agent: serves its snapshots.
    Agent,
    /// A read-only dashboard.
    Dashboard,
    /// A dashboard that may also acknowledge and silence alerts.
    Operator,
}

/// A role name that is none of the known roles.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("unknown role {0:?}: expected agent, dashboard or operator")]
pub struct UnknownRole(pub String);

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Dashboard => "dashboard",
            Role::Operator => "operator",
        }
    }

    /// Whether a client with this role may subscribe to snapshots.
    pub fn may_subscribe(self) -> bool {
        matches!(self, Role::Dashboard | Role::Operator)
    }
}

impl std::str::FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, UnknownRole> {
        match s {
            "agent" => Ok(Role::Agent),
            "dashboard" => Ok(Role::Dashboard),
            "operator" => Ok(Role::Operator),
            other => Err(UnknownRole(other.to_owned())),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
