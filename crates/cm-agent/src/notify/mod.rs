//! Notifications for alerts: where they go (routes of target URLs, the
//! `[notify]` section), what they say ([`message`]), and how each kind of
//! target is sent to ([`send`], blocking, for the notifier's thread).
//!
//! ```toml
//! [notify]
//! default_route = "ops"      # default: the first route
//! group_wait = "30s"         # changes this soon after a message's first join it
//!
//! [[notify.routes]]
//! name = "ops"
//! urls = ["smtp://cm@mail.example.org/?to=ops@example.org&password_file=/run/secrets/smtp"]
//! repeat = "4h"              # reminders while firing; "0s": never
//! send_resolved = true
//! ```

pub mod message;
pub mod send;
pub mod url;

use std::time::Duration;

use serde::Deserialize;

pub use self::message::{compose, test_message, Item, Kind, Message};
pub use self::send::{send, SendError, Sent};
pub use self::url::Target;

/// The `[notify]` section as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// Route used by rules that name none; default: the first route.
    pub default_route: Option<String>,
    /// Alerts that change within this of a message's first go into it (default "30s").
    pub group_wait: String,
    pub routes: Vec<RouteConfig>,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig { default_route: None, group_wait: "30s".into(), routes: Vec::new() }
    }
}

/// One `[[notify.routes]]` entry as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RouteConfig {
    pub name: String,
    /// Target URLs (see [`url`]); every one gets every message of the route.
    pub urls: Vec<String>,
    /// Reminders while an alert stays firing (default "4h"); "0s": never.
    pub repeat: String,
    /// Whether a resolved alert is notified (default true).
    pub send_resolved: bool,
}

impl Default for RouteConfig {
    fn default() -> Self {
        RouteConfig { name: String::new(), urls: Vec::new(), repeat: "4h".into(), send_resolved: true }
    }
}

/// The routes, checked and parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Routes {
    pub group_wait: Duration,
    pub routes: Vec<Route>,
    /// Index into `routes` of the default route.
    default: usize,
}

/// One route, checked: its targets parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub name: String,
    pub targets: Vec<Target>,
    /// `None`: no reminders.
    pub repeat: Option<Duration>,
    pub send_resolved: bool,
}

impl NotifyConfig {
    /// Checks the section and parses its URLs; errors name the key
    /// (`notify.routes[1] (ops).urls[0]: ...`).
    pub fn validate(&self) -> Result<Routes, String> {
        let group_wait = span(&self.group_wait).map_err(|e| format!("notify.group_wait: {e}"))?;
        let Some(group_wait) = group_wait else {
            return Err("notify.group_wait: expected a span above zero, such as 30s".into());
        };
        let mut routes: Vec<Route> = Vec::new();
        for (i, rc) in self.routes.iter().enumerate() {
            let key = format!("notify.routes[{i}]");
            if rc.name.trim().is_empty() {
                return Err(format!("{key}: no name: each route needs name = \"...\""));
            }
            let key = format!("{key} ({})", rc.name);
            if routes.iter().any(|r| r.name == rc.name) {
                return Err(format!("{key}: a second route of this name"));
            }
            if rc.urls.is_empty() {
                return Err(format!("{key}.urls: empty: a route needs at least one target URL"));
            }
            let targets = rc
                .urls
                .iter()
                .enumerate()
                .map(|(j, u)| Target::parse(u).map_err(|e| format!("{key}.urls[{j}]: {e}")))
                .collect::<Result<Vec<_>, _>>()?;
            let repeat = span(&rc.repeat).map_err(|e| format!("{key}.repeat: {e}"))?;
            routes.push(Route { name: rc.name.clone(), targets, repeat, send_resolved: rc.send_resolved });
        }
        let default = match &self.default_route {
            None => 0,
            Some(name) => routes.iter().position(|r| &r.name == name).ok_or_else(|| {
                let names: Vec<&str> = routes.iter().map(|r| r.name.as_str()).collect();
                if names.is_empty() {
                    format!("notify.default_route = {name:?}: no [[notify.routes]] are configured")
                } else {
                    format!("notify.default_route = {name:?}: no route has this name (routes: {})", names.join(", "))
                }
            })?,
        };
        Ok(Routes { group_wait, routes, default })
    }
}

impl Routes {
    /// The route called `name`, or the default route for `None`.
    pub fn route(&self, name: Option<&str>) -> Option<&Route> {
        match name {
            Some(name) => self.routes.iter().find(|r| r.name == name),
            None => self.routes.get(self.default),
        }
    }

    /// The default route's name, when there are routes.
    pub fn default_route(&self) -> Option<&str> {
        self.routes.get(self.default).map(|r| r.name.as_str())
    }

    /// What the alert engine needs to know of the routes.
    pub fn delivery(&self) -> crate::alerts::Delivery {
        crate::alerts::Delivery {
            routes: self
                .routes
                .iter()
                .map(|r| {
                    let timing = crate::alerts::RouteTiming {
                        repeat_ms: r.repeat.map(|d| d.as_millis() as u64),
                        send_resolved: r.send_resolved,
                    };
                    (r.name.clone(), timing)
                })
                .collect(),
            default_route: self.default_route().map(str::to_string),
        }
    }
}

/// A span such as `30s` or `4h`; `0`, `0s`: `None` (never).
fn span(text: &str) -> Result<Option<Duration>, String> {
    let t = text.trim();
    let unit = t.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.');
    let number = &t[..t.len() - unit.len()];
    if number.parse::<f64>() == Ok(0.0)
        && (unit.is_empty() || cm_history::time::parse_span(&format!("1{unit}")).is_ok())
    {
        return Ok(None);
    }
    let ms = cm_history::time::parse_span(t)?;
    Ok(Some(Duration::from_millis(ms as u64)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Result<NotifyConfig, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    fn routes(text: &str) -> Result<Routes, String> {
        config(text)?.validate()
    }

    const OPS: &str = "[[routes]]\nname = \"ops\"\nurls = [\"smtp://h/?to=a@x.org\"]\n";

    #[test]
    fn defaults_are_thirty_seconds_four_hours_and_resolved_sent() {
        let r = routes(OPS).unwrap();
        assert_eq!(r.group_wait, Duration::from_secs(30));
        let ops = r.route(None).unwrap();
        assert_eq!(
            (ops.name.as_str(), ops.repeat, ops.send_resolved),
            ("ops", Some(Duration::from_secs(14_400)), true)
        );
        assert_eq!(ops.targets.len(), 1);
        assert_eq!(routes("").unwrap().route(None), None);
    }

    #[test]
    fn the_default_route_is_the_first_unless_named() {
        let two = format!("{OPS}[[routes]]\nname = \"pager\"\nurls = [\"ntfy://ntfy.sh/x\"]\nrepeat = \"0s\"\n");
        let r = routes(&two).unwrap();
        assert_eq!(r.default_route(), Some("ops"));
        assert_eq!(r.route(Some("pager")).unwrap().repeat, None);
        assert_eq!(r.route(Some("nope")), None);
        let r = routes(&format!("default_route = \"pager\"\n{two}")).unwrap();
        assert_eq!(r.route(None).unwrap().name, "pager");
        let d = r.delivery();
        assert_eq!(d.default_route.as_deref(), Some("pager"));
        assert_eq!(d.routes["ops"].repeat_ms, Some(14_400_000));
        assert_eq!(d.routes["pager"].repeat_ms, None);
    }

    #[test]
    fn errors_name_the_key() {
        let bad_url = format!("{OPS}[[routes]]\nname = \"pager\"\nurls = [\"ntfy://h/t\", \"smtp://h/\"]\n");
        let e = routes(&bad_url).unwrap_err();
        assert!(e.starts_with("notify.routes[1] (pager).urls[1]: no recipient"), "{e}");
        let e = routes(&format!("{OPS}{OPS}")).unwrap_err();
        assert!(e.contains("notify.routes[1] (ops): a second route"), "{e}");
        let e = routes("[[routes]]\nurls = [\"ntfy://h/t\"]\n").unwrap_err();
        assert!(e.contains("notify.routes[0]: no name"), "{e}");
        let e = routes("[[routes]]\nname = \"ops\"\n").unwrap_err();
        assert!(e.contains("notify.routes[0] (ops).urls: empty"), "{e}");
        let e = routes(&format!("default_route = \"pager\"\n{OPS}")).unwrap_err();
        assert!(e.contains("notify.default_route = \"pager\": no route has this name (routes: ops)"), "{e}");
        let e = routes(&format!("group_wait = \"soon\"\n{OPS}")).unwrap_err();
        assert!(e.starts_with("notify.group_wait: "), "{e}");
        let e = routes(&OPS.replace("\"]\n", "\"]\nrepeat = \"4 hours\"\n")).unwrap_err();
        assert!(e.starts_with("notify.routes[0] (ops).repeat: "), "{e}");
        assert!(config("typo = 1").unwrap_err().contains("unknown field"));
        assert!(config("[[routes]]\nname = \"x\"\nurl = []").unwrap_err().contains("unknown field"));
    }
}
