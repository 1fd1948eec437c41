//! Alerts as they travel: each alert's state in the snapshot, every
//! transition as an event, and how each notification target is doing.
//!
//! The agent evaluates the rules; these types only carry the outcome, so a
//! dashboard of any version shows what the agent decided.

use serde::{Deserialize, Serialize};

use crate::status::Status;

/// Where an alert is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// Its condition holds, for less than the rule's `for`.
    #[default]
    Pending,
    /// Its condition held for the rule's `for`: notified.
    Firing,
    /// It fired and its condition has cleared (past `keep_firing_for`).
    Resolved,
    /// It changed state too often in the flap window: notified once, held
    /// until it settles.
    Flapping,
    /// A state this version does not know.
    #[serde(other)]
    Unknown,
}

impl AlertState {
    pub fn label(self) -> &'static str {
        match self {
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
            AlertState::Flapping => "flapping",
            AlertState::Unknown => "unknown",
        }
    }

    /// Parses a label written by [`AlertState::label`].
    pub fn parse(s: &str) -> AlertState {
        match s {
            "pending" => AlertState::Pending,
            "firing" => AlertState::Firing,
            "resolved" => AlertState::Resolved,
            "flapping" => AlertState::Flapping,
            _ => AlertState::Unknown,
        }
    }

    /// Whether someone has been (or is being) told: firing or flapping.
    pub fn is_active(self) -> bool {
        matches!(self, AlertState::Firing | AlertState::Flapping)
    }
}

/// One alert: a rule, and the instance it is about.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Alert {
    /// The rule's name: a configured rule's, or a built-in status rule's
    /// (`service`, `filesystem`, `memory`, `drive`, ...).
    pub rule: String,
    /// What it is about: a series (`fs./srv.used_percent`) or an item
    /// (`service.nginx.service`); empty for a rule that is one alert.
    pub instance: String,
    pub state: AlertState,
    /// Warning or critical: the worst it reached while firing.
    pub severity: Status,
    /// When it entered its state, milliseconds since the Unix epoch.
    pub since_ms: u64,
    /// When its condition first held in this episode (the alert's age).
    pub started_ms: u64,
    /// The value that decided it, in its series' unit, when there is one.
    pub value: Option<f64>,
    /// Why, in words: `used 92% (critical at 90%, clears below 40%)`.
    pub reason: String,
}

impl Alert {
    /// `rule` or `rule instance`, to name the alert to a person.
    pub fn title(&self) -> String {
        if self.instance.is_empty() {
            self.rule.clone()
        } else {
            format!("{} {}", self.rule, self.instance)
        }
    }
}

/// A transition of one alert, as stored and as read back over the wire.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AlertEvent {
    pub ts_ms: u64,
    pub rule: String,
    pub instance: String,
    /// The state it entered.
    pub state: AlertState,
    pub severity: Status,
    pub value: Option<f64>,
    pub reason: String,
}

impl AlertEvent {
    /// The event of `alert` entering its present state.
    pub fn of(alert: &Alert) -> AlertEvent {
        AlertEvent {
            ts_ms: alert.since_ms,
            rule: alert.rule.clone(),
            instance: alert.instance.clone(),
            state: alert.state,
            severity: alert.severity,
            value: alert.value,
            reason: alert.reason.clone(),
        }
    }
}

/// How one notification target of a route is doing.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NotifierStatus {
    /// The route's name.
    pub route: String,
    /// The target's URL with any secret left out.
    pub target: String,
    /// Notifications waiting to be sent to it.
    pub queued: u32,
    /// When a message last reached it.
    pub last_sent_ms: Option<u64>,
    /// Why the last try failed, while the target is failing.
    pub error: Option<String>,
    /// When the next try is due, while it is failing.
    pub retry_ms: Option<u64>,
}
