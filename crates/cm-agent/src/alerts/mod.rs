//! Alerts: the rules the agent evaluates on every snapshot, so that alerts
//! fire with no dashboard open.
//!
//! Every built-in status judgement (a failed unit, a drive's verdict,
//! memory, filesystems, temperatures, backups) is an alert with no
//! configuration. `[[alerts.rules]]` adds rules over series names: a
//! threshold with a separate clear level, a forecast, an absence, a
//! backup's dead-man's switch, or a condition over other rules. The
//! [`engine`] is a state machine with time as an argument; the agent's
//! notifier turns what it decides into messages.

pub mod engine;
pub mod expr;

use std::collections::{HashMap, HashSet};

use serde::Deserialize;

use cm_proto::Status;

pub use engine::{Engine, Input, Notice, NoticeKind, Output};
use expr::Expr;

/// `[alerts]` in the agent's config.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    pub builtin: BuiltinConfig,
    /// The window in which state changes are counted for flap detection.
    pub flap_window: String,
    /// State changes within `flap_window` from which an alert is flapping.
    pub flap_changes: u32,
    pub rules: Vec<RuleConfig>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self { builtin: BuiltinConfig::default(), flap_window: "10m".into(), flap_changes: 4, rules: Vec::new() }
    }
}

/// `[alerts.builtin]`: the built-in status rules.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BuiltinConfig {
    pub enable: bool,
    /// Pending this long before firing.
    #[serde(rename = "for")]
    pub for_: String,
    /// Held this long after clearing.
    pub keep_firing_for: String,
    pub route: Option<String>,
}

impl Default for BuiltinConfig {
    fn default() -> Self {
        Self { enable: true, for_: "1m".into(), keep_firing_for: "2m".into(), route: None }
    }
}

/// Over the instances a glob matches: one alert per instance over its
/// threshold, or one alert while all of them are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Match {
    #[default]
    Any,
    All,
}

/// The severity of a rule that has no thresholds of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    #[default]
    Warning,
    Critical,
}

impl Severity {
    fn status(self) -> Status {
        match self {
            Severity::Warning => Status::Warning,
            Severity::Critical => Status::Critical,
        }
    }
}

/// One `[[alerts.rules]]` entry, as written.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub name: String,
    /// A series name or glob (`fs.*.used_percent`).
    pub series: Option<String>,
    pub warn: Option<f64>,
    pub crit: Option<f64>,
    /// Resolves below this (above it with `below`); default: the firing threshold.
    pub clear: Option<f64>,
    /// Fire when the value is below the thresholds rather than above.
    #[serde(default)]
    pub below: bool,
    #[serde(rename = "for")]
    pub for_: Option<String>,
    pub keep_firing_for: Option<String>,
    #[serde(rename = "match", default)]
    pub match_: Match,
    pub route: Option<String>,
    pub notify: Option<bool>,
    pub severity: Option<Severity>,
    /// Other rules combined with and/or/not.
    pub condition: Option<String>,
    /// Fires when the series' forecast date is within this span.
    pub full_within: Option<String>,
    /// Fires when no series matching `series` reported for this span.
    pub absent_for: Option<String>,
    /// Backup jobs (a name or glob) watched by a dead-man's switch.
    pub backup: Option<String>,
    /// Fires when a watched backup job had no successful run for this span.
    pub no_success_for: Option<String>,
}

/// What a rule watches.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Threshold { series: String, warn: Option<f64>, crit: Option<f64>, clear: f64, below: bool, all: bool },
    Forecast { series: String, within_ms: u64, severity: Status },
    Absent { series: String, after_ms: u64, severity: Status },
    Backup { jobs: String, after_ms: u64, severity: Status },
    Condition { expr: Expr, severity: Status },
}

/// A rule, checked and ready to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    pub kind: Kind,
    pub for_ms: u64,
    pub keep_ms: u64,
    /// The route its notifications take; `None`: the default route.
    pub route: Option<String>,
    pub notify: bool,
}

/// How a route treats alerts once they fired.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteTiming {
    /// Reminders for alerts that stay firing; `None`: never.
    pub repeat_ms: Option<u64>,
    pub send_resolved: bool,
}

/// Where notifications go: each route's timing, and the default route.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Delivery {
    pub routes: HashMap<String, RouteTiming>,
    pub default_route: Option<String>,
}

/// Every rule of the agent, in an order where a condition comes after the
/// rules it reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    /// The built-in status rules' timing and route, when they are on.
    pub builtin: Option<(u64, u64, Option<String>)>,
    pub rules: Vec<Rule>,
    pub flap_window_ms: u64,
    pub flap_changes: u32,
    pub delivery: Delivery,
}

/// The names the built-in status rules have: one per kind of judged item.
pub const BUILTIN: [&str; 7] = ["cpu", "memory", "gpu", "drive", "filesystem", "service", "backup"];

/// A span such as `30s`, `5m`, `26h` or `7d`; `0s` (or `0`) is none.
pub fn span(key: &str, text: &str) -> Result<u64, String> {
    let t = text.trim();
    if t.trim_end_matches(|c: char| c.is_ascii_alphabetic()).parse::<f64>() == Ok(0.0) {
        return Ok(0);
    }
    cm_history::time::parse_span(t).map(|ms| ms.max(0) as u64).map_err(|e| format!("{key} = {e}"))
}

impl AlertsConfig {
    /// Checks every rule and orders them; an error names the rule and the key.
    /// `delivery` names the routes a rule may take.
    pub fn rules(&self, delivery: Delivery) -> Result<Rules, String> {
        let builtin = if self.builtin.enable {
            let for_ms = span("alerts.builtin.for", &self.builtin.for_)?;
            let keep = span("alerts.builtin.keep_firing_for", &self.builtin.keep_firing_for)?;
            if let Some(r) = &self.builtin.route {
                check_route(&delivery, r).map_err(|e| format!("alerts.builtin.route = {r:?}: {e}"))?;
            }
            Some((for_ms, keep, self.builtin.route.clone()))
        } else {
            None
        };
        let flap_window_ms = span("alerts.flap_window", &self.flap_window)?;
        if self.flap_changes < 2 {
            return Err(format!("alerts.flap_changes = {}: expected at least 2", self.flap_changes));
        }
        let mut names = HashSet::new();
        let mut rules = Vec::new();
        for (i, rc) in self.rules.iter().enumerate() {
            let at = if rc.name.is_empty() {
                format!("alerts.rules[{i}]")
            } else {
                format!("alerts.rules[{i}] ({})", rc.name)
            };
            let rule = compile(rc, &delivery).map_err(|e| format!("{at}: {e}"))?;
            if BUILTIN.contains(&rule.name.as_str()) {
                return Err(format!("{at}: name {:?} is a built-in rule's; choose another", rule.name));
            }
            if !names.insert(rule.name.clone()) {
                return Err(format!("{at}: another rule is called {:?}", rule.name));
            }
            rules.push(rule);
        }
        let rules = order(rules, &names)?;
        Ok(Rules { builtin, rules, flap_window_ms, flap_changes: self.flap_changes, delivery })
    }
}

fn check_route(delivery: &Delivery, route: &str) -> Result<(), String> {
    if delivery.routes.contains_key(route) {
        return Ok(());
    }
    let mut known: Vec<&str> = delivery.routes.keys().map(String::as_str).collect();
    known.sort_unstable();
    if known.is_empty() {
        Err("no [[notify.routes]] are configured".into())
    } else {
        Err(format!("no route has this name (routes: {})", known.join(", ")))
    }
}

fn compile(rc: &RuleConfig, delivery: &Delivery) -> Result<Rule, String> {
    if rc.name.is_empty()
        || !rc.name.chars().all(expr::is_name_char)
        || ["and", "or", "not"].contains(&rc.name.as_str())
    {
        return Err(format!(
            "name = {:?}: expected letters, digits and - _ . : / (and not and/or/not), as conditions name rules",
            rc.name
        ));
    }
    if let Some(r) = &rc.route {
        check_route(delivery, r).map_err(|e| format!("route = {r:?}: {e}"))?;
    }
    let severity = rc.severity.unwrap_or_default().status();
    let given = |present: bool, key: &'static str| present.then_some(key);
    let thresholds =
        [given(rc.warn.is_some(), "warn"), given(rc.crit.is_some(), "crit"), given(rc.clear.is_some(), "clear")];
    let thresholds: Vec<&str> = thresholds.into_iter().flatten().collect();
    let no = |kind: &str, keys: &[&str]| -> Result<(), String> {
        match keys.first() {
            Some(k) => Err(format!("{k} does not apply to a {kind} rule")),
            None => Ok(()),
        }
    };
    let series_glob = |kind: &str| -> Result<String, String> {
        let s = rc.series.clone().ok_or_else(|| format!("a {kind} rule needs series (a series name or glob)"))?;
        if !s.contains('*') && cm_proto::series::shape_of(&s).is_none() {
            return Err(format!(
                "series = {s:?}: no series has this name (docs/SERIES.md lists them; a glob such as fs.*.used_percent selects several)"
            ));
        }
        Ok(s)
    };
    let kind = if let Some(c) = &rc.condition {
        let expr = Expr::parse(c).map_err(|e| format!("condition = {c:?}: {e}"))?;
        if rc.series.is_some() || rc.backup.is_some() {
            return Err("a condition rule combines other rules: it takes no series or backup".into());
        }
        no("condition", &thresholds)?;
        Kind::Condition { expr, severity }
    } else if let Some(jobs) = &rc.backup {
        let after = rc.no_success_for.as_deref().ok_or("a backup rule needs no_success_for (e.g. \"26h\")")?;
        no("backup", &thresholds)?;
        Kind::Backup { jobs: jobs.clone(), after_ms: span("no_success_for", after)?, severity }
    } else if let Some(after) = &rc.absent_for {
        no("absence", &thresholds)?;
        Kind::Absent { series: series_glob("absence")?, after_ms: span("absent_for", after)?, severity }
    } else if let Some(within) = &rc.full_within {
        no("forecast", &thresholds)?;
        let series = series_glob("forecast")?;
        let forecastable = ["fs.*.used_percent", "drive.*.wear_percent"];
        if !forecastable.iter().any(|f| cm_proto::series::selects(f, &series) || f == &series) {
            return Err(format!(
                "series = {series:?}: forecasts are made for fs.<mount>.used_percent and drive.<name>.wear_percent"
            ));
        }
        Kind::Forecast { series, within_ms: span("full_within", within)?, severity }
    } else {
        let series = series_glob("threshold")?;
        if rc.severity.is_some() {
            return Err(
                "severity applies to condition, forecast, absence and backup rules; a threshold rule has warn and crit"
                    .into(),
            );
        }
        let fire = match (rc.warn, rc.crit) {
            (None, None) => return Err("a threshold rule needs warn, crit or both".into()),
            (Some(w), Some(c)) if !rc.below && w > c => {
                return Err(format!("warn = {w} is above crit = {c}: with below = false, crit is the higher level"))
            }
            (Some(w), Some(c)) if rc.below && w < c => {
                return Err(format!("warn = {w} is below crit = {c}: with below = true, crit is the lower level"))
            }
            (Some(w), _) => w,
            (None, Some(c)) => c,
        };
        let clear = rc.clear.unwrap_or(fire);
        if !rc.below && clear > fire {
            return Err(format!("clear = {clear} is above the firing level {fire}: it must be at or below it"));
        }
        if rc.below && clear < fire {
            return Err(format!(
                "clear = {clear} is below the firing level {fire}: with below = true it must be at or above it"
            ));
        }
        Kind::Threshold { series, warn: rc.warn, crit: rc.crit, clear, below: rc.below, all: rc.match_ == Match::All }
    };
    if rc.match_ == Match::All && !matches!(kind, Kind::Threshold { .. }) {
        return Err("match = \"all\" applies to threshold rules".into());
    }
    let stray = [
        (rc.no_success_for.is_some() && rc.backup.is_none(), "no_success_for needs backup"),
        (rc.below && !matches!(kind, Kind::Threshold { .. }), "below applies to threshold rules"),
    ];
    if let Some((_, why)) = stray.iter().find(|(bad, _)| *bad) {
        return Err((*why).into());
    }
    Ok(Rule {
        name: rc.name.clone(),
        kind,
        for_ms: rc.for_.as_deref().map(|s| span("for", s)).transpose()?.unwrap_or(0),
        keep_ms: rc.keep_firing_for.as_deref().map(|s| span("keep_firing_for", s)).transpose()?.unwrap_or(0),
        route: rc.route.clone(),
        notify: rc.notify.unwrap_or(true),
    })
}

/// Orders rules so that each condition follows the rules it reads; a
/// condition that names no rule, or rules that read each other, are errors.
fn order(rules: Vec<Rule>, names: &HashSet<String>) -> Result<Vec<Rule>, String> {
    for r in &rules {
        if let Kind::Condition { expr, .. } = &r.kind {
            for n in expr.names() {
                if !names.contains(n) && !BUILTIN.contains(&n) {
                    return Err(format!("alerts.rules ({}): condition names {n:?}, which is no rule", r.name));
                }
            }
        }
    }
    let mut done: HashSet<String> = HashSet::new();
    let mut out = Vec::with_capacity(rules.len());
    let mut left = rules;
    while !left.is_empty() {
        let (ready, waiting): (Vec<Rule>, Vec<Rule>) = left.into_iter().partition(|r| match &r.kind {
            Kind::Condition { expr, .. } => expr.names().iter().all(|n| done.contains(*n) || BUILTIN.contains(n)),
            _ => true,
        });
        if ready.is_empty() {
            let names: Vec<&str> = waiting.iter().map(|r| r.name.as_str()).collect();
            return Err(format!("alerts.rules: the conditions of {} read each other in a circle", names.join(", ")));
        }
        done.extend(ready.iter().map(|r| r.name.clone()));
        out.extend(ready);
        left = waiting;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<Rules, String> {
        let cfg: AlertsConfig = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        let delivery = Delivery {
            routes: [("ops".to_string(), RouteTiming { repeat_ms: None, send_resolved: true })].into(),
            default_route: Some("ops".into()),
        };
        cfg.rules(delivery)
    }

    #[test]
    fn the_issue_example_parses_with_its_hysteresis() {
        let rules = parse(
            r#"
            [[rules]]
            name = "scratch-full"
            series = "fs./srv/scratch.used_percent"
            warn = 50
            crit = 90
            clear = 40
            for = "30s"
            keep_firing_for = "1m"
            match = "any"
            route = "ops"
            "#,
        )
        .unwrap();
        let r = &rules.rules[0];
        assert_eq!((r.for_ms, r.keep_ms, r.route.as_deref()), (30_000, 60_000, Some("ops")));
        assert_eq!(
            r.kind,
            Kind::Threshold {
                series: "fs./srv/scratch.used_percent".into(),
                warn: Some(50.0),
                crit: Some(90.0),
                clear: 40.0,
                below: false,
                all: false
            }
        );
        assert_eq!(rules.builtin, Some((60_000, 120_000, None)));
    }

    #[test]
    fn conditions_come_after_the_rules_they_read() {
        let rules = parse(
            r#"
            [[rules]]
            name = "both"
            condition = "hot and not service"
            [[rules]]
            name = "hot"
            series = "cpu.temperature_celsius"
            crit = 90
            "#,
        )
        .unwrap();
        let order: Vec<&str> = rules.rules.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(order, ["hot", "both"]);
    }

    #[test]
    fn bad_rules_name_the_rule_and_the_key() {
        let err = |t: &str| parse(t).unwrap_err();
        assert_eq!(
            err("[[rules]]\nname = \"x\"\nseries = \"fs./.used_pct\"\nwarn = 1"),
            "alerts.rules[0] (x): series = \"fs./.used_pct\": no series has this name (docs/SERIES.md lists them; a glob such as fs.*.used_percent selects several)"
        );
        assert!(err("[[rules]]\nname = \"x\"\nseries = \"cpu.load1\"\nwarn = 5\nclear = 6")
            .contains("clear = 6 is above the firing level 5"));
        assert!(err("[[rules]]\nname = \"x\"\nseries = \"cpu.load1\"").contains("needs warn, crit or both"));
        assert!(err("[[rules]]\nname = \"x\"\nseries = \"cpu.load1\"\nwarn = 1\nroute = \"pager\"")
            .contains("route = \"pager\": no route has this name (routes: ops)"));
        assert!(err("[[rules]]\nname = \"a\"\ncondition = \"b\"\n[[rules]]\nname = \"b\"\ncondition = \"a\"")
            .contains("read each other in a circle"));
        assert!(
            err("[[rules]]\nname = \"a\"\ncondition = \"nope\"").contains("condition names \"nope\", which is no rule")
        );
        assert!(err("[[rules]]\nname = \"memory\"\nseries = \"cpu.load1\"\nwarn = 1").contains("built-in rule's"));
        assert!(err("[[rules]]\nname = \"x\"\nseries = \"cpu.load1\"\nwarn = 1\n[[rules]]\nname = \"x\"\nseries = \"cpu.load5\"\nwarn = 1")
            .contains("another rule is called \"x\""));
        assert!(err("[[rules]]\nname = \"x\"\nseries = \"cpu.load1\"\nfull_within = \"7d\"")
            .contains("forecasts are made for"));
        assert!(err("[[rules]]\nname = \"x\"\nbackup = \"*\"").contains("needs no_success_for"));
        assert!(err("[[rules]]\nname = \"x\"\nseries = \"cpu.load1\"\nwarn = 1\nfor = \"soon\"").contains("for = "));
        assert!(err("[[rules]]\nname = \"x\"\nserie = \"cpu.load1\"").contains("unknown field `serie`"));
    }
}
