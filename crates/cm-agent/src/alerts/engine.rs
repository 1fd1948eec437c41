//! The alert engine: rules in, snapshots in, alert states and notices out.
//!
//! No clock and no I/O: each [`Engine::evaluate`] is given the time, so
//! tests drive it on a simulated clock. One alert is kept per rule and
//! instance; its life is idle → pending (`for`) → firing → resolved (past
//! `keep_firing_for`), and an alert that fires and resolves too often in the
//! flap window is flapping: told once, and held until it settles. What a
//! person is told follows what they were last told, so a restart, a flap or
//! a rule that escalates never tells the same thing twice.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

pub use cm_history::BackupClock;
use cm_proto::series::{self, Sample, Unit};
use cm_proto::{Alert, AlertEvent, AlertState, HostSnapshot, Status};

use super::{Kind, Rule, Rules};

/// How long a resolved alert stays in the snapshot.
pub const RESOLVED_SHOWN_MS: u64 = 3_600_000;
/// An instance its rule has not read for this long is gone, and clears like
/// any other. A shorter gap (a collector that missed its deadline, the first
/// round after a start, before every source answered) holds it as it was.
pub const GONE_AFTER_MS: u64 = 5 * 60_000;
/// Every backup job's clock is handed out to be stored this often.
const CLOCKS_AGAIN_MS: u64 = 3_600_000;

/// One evaluation's input.
pub struct Input<'a> {
    pub now_ms: u64,
    pub snapshot: &'a HostSnapshot,
    /// The snapshot's series (`series::flatten`).
    pub samples: &'a [Sample],
}

/// Why a notice is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    /// A transition someone must hear of: firing, escalated, flapping, resolved.
    Alert,
    /// A reminder of an alert that stays firing.
    Repeat,
}

/// A notification to send on a route.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub route: String,
    pub kind: NoticeKind,
    pub event: AlertEvent,
}

/// What one evaluation decided.
#[derive(Debug, Default, PartialEq)]
pub struct Output {
    /// Transitions, to be stored.
    pub events: Vec<AlertEvent>,
    pub notices: Vec<Notice>,
    /// Backup jobs whose dead-man's clock moved, to be stored so that a
    /// restart does not set it back.
    pub clocks: Vec<BackupClock>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inner {
    Idle,
    Pending,
    Firing,
    Resolved,
}

/// One alert's state.
#[derive(Debug, Clone)]
struct Track {
    inner: Inner,
    flapping: bool,
    severity: Status,
    value: Option<f64>,
    reason: String,
    since_ms: u64,
    started_ms: u64,
    clear_since: Option<u64>,
    /// When it last fired or resolved, within the flap window.
    changes: VecDeque<u64>,
    /// What a person was last told, and when.
    told: Option<AlertState>,
    told_ms: u64,
    /// When its rule last read it.
    seen_ms: u64,
}

impl Track {
    fn idle(now: u64) -> Track {
        Track {
            inner: Inner::Idle,
            flapping: false,
            severity: Status::Warning,
            value: None,
            reason: String::new(),
            since_ms: now,
            started_ms: now,
            clear_since: None,
            changes: VecDeque::new(),
            told: None,
            told_ms: 0,
            seen_ms: now,
        }
    }

    fn visible(&self) -> Option<AlertState> {
        if self.flapping {
            return Some(AlertState::Flapping);
        }
        match self.inner {
            Inner::Idle => None,
            Inner::Pending => Some(AlertState::Pending),
            Inner::Firing => Some(AlertState::Firing),
            Inner::Resolved => Some(AlertState::Resolved),
        }
    }
}

/// What a rule's check says of one instance now.
#[derive(Debug, Clone)]
struct Reading {
    /// `None`: it cannot be told now (an unknown status); the alert holds its state.
    holds: Option<bool>,
    severity: Status,
    value: Option<f64>,
    reason: String,
}

/// Timing and delivery of the rule being stepped.
struct Policy {
    for_ms: u64,
    keep_ms: u64,
    route: Option<String>,
    notify: bool,
}

impl Policy {
    fn of(rule: &Rule) -> Policy {
        Policy { for_ms: rule.for_ms, keep_ms: rule.keep_ms, route: rule.route.clone(), notify: rule.notify }
    }
}

/// The alert engine of one agent.
#[derive(Debug)]
pub struct Engine {
    rules: Rules,
    tracks: BTreeMap<(String, String), Track>,
    /// When each series an absence rule watches last reported.
    last_seen: HashMap<String, u64>,
    /// For an absence rule whose series never reported: since when that is
    /// so, when it was so before a restart (else the agent's start).
    never_since: HashMap<String, u64>,
    /// When each backup job last finished a successful run.
    last_success: HashMap<String, u64>,
    /// When each backup job was first seen: a job with no successful run
    /// known counts from here.
    watched_since: HashMap<String, u64>,
    /// Jobs whose clock moved since the last evaluation.
    clocks_moved: BTreeSet<String>,
    /// When every job's clock was last handed out to be stored (again, in
    /// case one was lost on the way).
    clocks_told_ms: u64,
    started_ms: u64,
}

impl Engine {
    pub fn new(rules: Rules, now_ms: u64) -> Engine {
        Engine {
            rules,
            tracks: BTreeMap::new(),
            last_seen: HashMap::new(),
            never_since: HashMap::new(),
            last_success: HashMap::new(),
            watched_since: HashMap::new(),
            clocks_moved: BTreeSet::new(),
            clocks_told_ms: now_ms,
            started_ms: now_ms,
        }
    }

    /// Takes up the backup jobs' clocks as stored before a restart.
    pub fn restore_clocks(&mut self, clocks: &[BackupClock]) {
        for c in clocks {
            self.watched_since.insert(c.job.clone(), c.since_ms);
            if let Some(at) = c.success_ms {
                self.last_success.insert(c.job.clone(), at);
            }
        }
    }

    /// Takes up the alerts that were firing or flapping when the agent
    /// stopped (their last stored events), as already told, so a restart
    /// notifies nothing that was notified before: no reminder before a
    /// repeat interval from the start, a flapping alert held as flapping
    /// for its window, and an absent series still absent since it last was.
    pub fn restore(&mut self, latest: &[AlertEvent]) {
        for e in latest.iter().filter(|e| e.state.is_active()) {
            let rule = self.rules.rules.iter().find(|r| r.name == e.rule);
            let known = rule.is_some() || (self.rules.builtin.is_some() && super::BUILTIN.contains(&e.rule.as_str()));
            if !known {
                continue;
            }
            if let Some(Kind::Absent { after_ms, .. }) = rule.map(|r| &r.kind) {
                // It fired after the series had been quiet that long.
                let quiet_since = e.ts_ms.saturating_sub(*after_ms);
                if e.instance.is_empty() {
                    self.never_since.insert(e.rule.clone(), quiet_since);
                } else {
                    self.last_seen.entry(e.instance.clone()).or_insert(quiet_since);
                }
            }
            let mut t = Track::idle(e.ts_ms);
            t.inner = Inner::Firing;
            t.flapping = e.state == AlertState::Flapping;
            if t.flapping {
                // Its changes were not stored: it flaps on for a window from the start.
                let at = e.ts_ms.max(self.started_ms);
                t.changes = std::iter::repeat_n(at, self.rules.flap_changes as usize).collect();
            }
            (t.severity, t.value, t.reason) = (e.severity, e.value, e.reason.clone());
            (t.told, t.told_ms) = (Some(e.state), e.ts_ms.max(self.started_ms));
            t.seen_ms = self.started_ms;
            self.tracks.insert((e.rule.clone(), e.instance.clone()), t);
        }
    }

    /// The alerts to show: pending, firing, flapping, and resolved within the last hour.
    pub fn alerts(&self) -> Vec<Alert> {
        let mut out: Vec<Alert> = self
            .tracks
            .iter()
            .filter_map(|((rule, instance), t)| {
                Some(Alert {
                    rule: rule.clone(),
                    instance: instance.clone(),
                    state: t.visible()?,
                    severity: t.severity,
                    since_ms: t.since_ms,
                    started_ms: t.started_ms,
                    value: t.value,
                    reason: t.reason.clone(),
                })
            })
            .collect();
        let rank = |s: AlertState| match s {
            AlertState::Firing | AlertState::Flapping => 0,
            AlertState::Pending => 1,
            _ => 2,
        };
        out.sort_by(|a, b| {
            rank(a.state).cmp(&rank(b.state)).then(b.severity.cmp(&a.severity)).then(a.started_ms.cmp(&b.started_ms))
        });
        out
    }

    /// Evaluates every rule on one snapshot.
    pub fn evaluate(&mut self, input: &Input) -> Output {
        let now = input.now_ms;
        let mut out = Output::default();
        let rules = std::mem::take(&mut self.rules.rules);
        if let Some((for_ms, keep_ms, route)) = self.rules.builtin.clone() {
            let policy = Policy { for_ms, keep_ms, route, notify: true };
            for (rule, instance, reading) in builtin_readings(input.snapshot) {
                self.step(rule, instance, reading, &policy, now, &mut out);
            }
        }
        for rule in &rules {
            let policy = Policy::of(rule);
            for (instance, reading) in self.readings(rule, input) {
                self.step(&rule.name, instance, reading, &policy, now, &mut out);
            }
        }
        // An instance that is no longer reported (an unmounted filesystem, a
        // removed unit) clears like any other, once it has been gone a while.
        let gone: Vec<(String, String)> = self
            .tracks
            .iter()
            .filter(|(_, t)| now.saturating_sub(t.seen_ms) >= GONE_AFTER_MS)
            .map(|(k, _)| k.clone())
            .collect();
        for (rule_name, instance) in gone {
            let gone =
                Reading { holds: Some(false), severity: Status::Ok, value: None, reason: "no longer reported".into() };
            let policy = match rules.iter().find(|r| r.name == rule_name) {
                Some(r) => Policy::of(r),
                None => {
                    let (for_ms, keep_ms, route) = self.rules.builtin.clone().unwrap_or((0, 0, None));
                    Policy { for_ms, keep_ms, route, notify: true }
                }
            };
            let key = (rule_name, instance);
            let seen = self.tracks.get(&key).map_or(now, |t| t.seen_ms);
            self.step(&key.0, key.1.clone(), gone, &policy, now, &mut out);
            // Stepped, not read: it stays gone since it was last read.
            if let Some(t) = self.tracks.get_mut(&key) {
                t.seen_ms = seen;
            }
        }
        self.repeat(&rules, now, &mut out);
        self.rules.rules = rules;
        if now.saturating_sub(self.clocks_told_ms) >= CLOCKS_AGAIN_MS {
            self.clocks_told_ms = now;
            self.clocks_moved.extend(self.watched_since.keys().cloned());
        }
        for job in std::mem::take(&mut self.clocks_moved) {
            let since_ms = self.watched_since.get(&job).copied().unwrap_or(now);
            out.clocks.push(BackupClock { success_ms: self.last_success.get(&job).copied(), since_ms, job });
        }
        self.tracks.retain(|_, t| match t.inner {
            Inner::Idle => t.flapping || !t.changes.is_empty(),
            Inner::Resolved => t.flapping || now.saturating_sub(t.since_ms) < RESOLVED_SHOWN_MS,
            Inner::Pending | Inner::Firing => true,
        });
        out
    }

    /// Whether rule `name` has an alert firing or flapping now.
    fn active(&self, name: &str) -> bool {
        self.tracks.iter().any(|((r, _), t)| r == name && t.visible().is_some_and(AlertState::is_active))
    }

    fn firing(&self, rule: &str, instance: &str) -> bool {
        self.tracks.get(&(rule.to_string(), instance.to_string())).is_some_and(|t| t.inner == Inner::Firing)
    }

    /// One reading per instance of a configured rule.
    fn readings(&mut self, rule: &Rule, input: &Input) -> Vec<(String, Reading)> {
        let now = input.now_ms;
        match &rule.kind {
            Kind::Threshold { series, warn, crit, clear, below, all } => {
                let matched: Vec<&Sample> = input.samples.iter().filter(|s| series::selects(series, &s.name)).collect();
                let level = Levels { warn: *warn, crit: *crit, clear: *clear, below: *below };
                if !*all {
                    return matched
                        .iter()
                        .map(|s| {
                            let firing = self.firing(&rule.name, &s.name);
                            (s.name.clone(), level.read(s.value, firing, &s.name))
                        })
                        .collect();
                }
                let firing = self.firing(&rule.name, "");
                if matched.is_empty() {
                    let reason = format!("no series matches {series}");
                    return vec![(
                        String::new(),
                        Reading { holds: Some(false), severity: Status::Ok, value: None, reason },
                    )];
                }
                // All of them over: the least bad one decides.
                let least = matched
                    .iter()
                    .min_by(|a, b| {
                        let (a, b) = if *below { (-a.value, -b.value) } else { (a.value, b.value) };
                        a.total_cmp(&b)
                    })
                    .expect("not empty");
                let mut r = level.read(least.value, firing, &least.name);
                r.reason = format!("all {} of {series}: the least, {}", matched.len(), r.reason);
                vec![(String::new(), r)]
            }
            Kind::Forecast { series, within_ms, severity } => {
                let snap = input.snapshot;
                let fs = snap.filesystems.iter().map(|f| (series::filesystem(&f.mount_point, "used_percent"), &f.full));
                let drives = snap.drives.iter().map(|d| (series::drive(&d.name, "wear_percent"), &d.worn_out));
                fs.chain(drives)
                    .filter(|(name, _)| series::selects(series, name))
                    .map(|(name, forecast)| {
                        let reading = match forecast {
                            Some(f) => {
                                let days = (f.at_ms as f64 - now as f64) / 86_400_000.0;
                                let what = if name.starts_with("fs.") { "full" } else { "worn out" };
                                Reading {
                                    holds: Some(f.at_ms <= now + within_ms),
                                    severity: *severity,
                                    value: Some(days),
                                    reason: format!(
                                        "{what} around {} (between {} and {}), {:+.2} points a day",
                                        cm_history::time::date(f.at_ms as i64),
                                        cm_history::time::date(f.earliest_ms as i64),
                                        cm_history::time::date(f.latest_ms as i64),
                                        f.per_day
                                    ),
                                }
                            }
                            None => Reading {
                                holds: Some(false),
                                severity: *severity,
                                value: None,
                                reason: "no forecast".into(),
                            },
                        };
                        (name, reading)
                    })
                    .collect()
            }
            Kind::Absent { series, after_ms, severity } => {
                for s in input.samples.iter().filter(|s| series::selects(series, &s.name)) {
                    self.last_seen.insert(s.name.clone(), now);
                }
                let mut out: Vec<(String, Reading)> = self
                    .last_seen
                    .iter()
                    .filter(|(name, _)| series::selects(series, name))
                    .map(|(name, &seen)| {
                        let quiet = now.saturating_sub(seen);
                        let reason = if quiet == 0 {
                            "reporting".to_string()
                        } else {
                            format!("not reported since {}", cm_history::time::rfc3339(seen as i64))
                        };
                        (
                            name.clone(),
                            Reading { holds: Some(quiet >= *after_ms), severity: *severity, value: None, reason },
                        )
                    })
                    .collect();
                if !out.is_empty() && self.tracks.contains_key(&(rule.name.clone(), String::new())) {
                    // "None ever reported" is over: one does.
                    let reason = "a matching series reports".to_string();
                    out.push((String::new(), Reading { holds: Some(false), severity: *severity, value: None, reason }));
                }
                if out.is_empty() {
                    let since = self.never_since.get(&rule.name).map_or(self.started_ms, |&s| s.min(self.started_ms));
                    let quiet = now.saturating_sub(since);
                    let reason = format!(
                        "no series matching {series} reported since {}",
                        cm_history::time::rfc3339(since as i64)
                    );
                    out.push((
                        String::new(),
                        Reading { holds: Some(quiet >= *after_ms), severity: *severity, value: None, reason },
                    ));
                }
                out
            }
            Kind::Backup { jobs, after_ms, severity } => {
                let mut out = Vec::new();
                for b in input.snapshot.backups.iter().flatten().filter(|b| series::selects(jobs, &b.name)) {
                    let since = match self.watched_since.get(&b.name) {
                        Some(&since) => since,
                        None => {
                            self.watched_since.insert(b.name.clone(), now);
                            self.clocks_moved.insert(b.name.clone());
                            now
                        }
                    };
                    if b.result.as_deref() == Some("success") {
                        if let Some(start) = b.last_run_ms {
                            let end = start + b.duration_seconds.unwrap_or(0) * 1000;
                            if self.last_success.get(&b.name).is_none_or(|&best| end > best) {
                                self.last_success.insert(b.name.clone(), end);
                                self.clocks_moved.insert(b.name.clone());
                            }
                        }
                    }
                    let (base, reason) = match self.last_success.get(&b.name) {
                        Some(&at) => {
                            (at, format!("last successful run ended {}", cm_history::time::rfc3339(at as i64)))
                        }
                        None => (
                            since,
                            format!(
                                "no successful run seen since the job was first seen at {}",
                                cm_history::time::rfc3339(since as i64)
                            ),
                        ),
                    };
                    let age = now.saturating_sub(base);
                    let reading = Reading {
                        holds: Some(age >= *after_ms),
                        severity: *severity,
                        value: Some(age as f64 / 3_600_000.0),
                        reason: format!("{reason} ({} allowed)", span_words(*after_ms)),
                    };
                    out.push((b.name.clone(), reading));
                }
                out
            }
            Kind::Condition { expr, severity } => {
                let holds = expr.eval(&|n| self.active(n));
                let on: Vec<&str> = expr.names().into_iter().filter(|n| self.active(n)).collect();
                let reason = if on.is_empty() {
                    "no rule it reads is firing".into()
                } else {
                    format!("firing: {}", on.join(", "))
                };
                vec![(String::new(), Reading { holds: Some(holds), severity: *severity, value: None, reason })]
            }
        }
    }

    /// Moves one alert on by one reading.
    fn step(&mut self, rule: &str, instance: String, r: Reading, p: &Policy, now: u64, out: &mut Output) {
        let window = self.rules.flap_window_ms;
        let flap_changes = self.rules.flap_changes as usize;
        let route = p.route.clone().or_else(|| self.rules.delivery.default_route.clone()).filter(|_| p.notify);
        let send_resolved =
            route.as_ref().and_then(|r| self.rules.delivery.routes.get(r)).is_none_or(|t| t.send_resolved);
        let key = (rule.to_string(), instance);
        // Most instances of most rules are fine and have no alert: nothing to keep.
        if r.holds != Some(true) && !self.tracks.contains_key(&key) {
            return;
        }
        let t = self.tracks.entry(key.clone()).or_insert_with(|| Track::idle(now));
        t.seen_ms = now;
        let before = t.visible();
        if let Some(holds) = r.holds {
            // What cleared (or never held) keeps the words it was told with.
            if holds || t.inner == Inner::Pending {
                (t.value, t.reason) = (r.value, r.reason.clone());
            }
            match t.inner {
                Inner::Idle | Inner::Resolved if holds => {
                    (t.inner, t.started_ms, t.since_ms, t.severity, t.clear_since) =
                        (Inner::Pending, now, now, r.severity, None);
                }
                Inner::Pending if !holds => {
                    (t.inner, t.since_ms) = (Inner::Idle, now);
                }
                Inner::Firing if holds => {
                    t.clear_since = None;
                    if r.severity > t.severity {
                        t.severity = r.severity;
                        // An escalation is news: stored and told as a new firing.
                        if !t.flapping {
                            out.events.push(event(&key, t, AlertState::Firing, now));
                            push(out, &key, t, AlertState::Firing, route.as_deref(), NoticeKind::Alert, now);
                        }
                    }
                }
                Inner::Firing => {
                    t.value = r.value.or(t.value);
                    let cleared = *t.clear_since.get_or_insert(now);
                    if now.saturating_sub(cleared) >= p.keep_ms {
                        (t.inner, t.since_ms, t.clear_since) = (Inner::Resolved, now, None);
                        t.reason = format!("cleared: {}", r.reason);
                        t.changes.push_back(now);
                    }
                }
                _ => {}
            }
            if t.inner == Inner::Pending && holds && now.saturating_sub(t.started_ms) >= p.for_ms {
                (t.inner, t.since_ms) = (Inner::Firing, now);
                t.severity = t.severity.max(r.severity);
                t.changes.push_back(now);
            }
        }
        while t.changes.front().is_some_and(|&c| now.saturating_sub(c) > window) {
            t.changes.pop_front();
        }
        if !t.flapping && t.changes.len() >= flap_changes {
            t.flapping = true;
            t.since_ms = now;
            t.reason =
                format!("{} changes of state within {}; held until it settles", t.changes.len(), span_words(window));
        } else if t.flapping && t.changes.len() < flap_changes.div_ceil(2) {
            t.flapping = false;
            t.since_ms = now;
        }
        let after = t.visible();
        if after == before {
            return;
        }
        let state = match after {
            Some(s) => s,
            // A pending alert whose condition went away: the episode is over.
            None => AlertState::Resolved,
        };
        if after.is_none() {
            t.reason = format!("cleared before firing: {}", r.reason);
        }
        out.events.push(event(&key, t, state, now));
        let tell = match state {
            AlertState::Firing | AlertState::Flapping => t.told != Some(state),
            AlertState::Resolved => t.told.is_some_and(AlertState::is_active) && send_resolved,
            _ => false,
        };
        if tell {
            push(out, &key, t, state, route.as_deref(), NoticeKind::Alert, now);
        } else if state == AlertState::Resolved && t.told.is_some_and(AlertState::is_active) {
            t.told = Some(AlertState::Resolved);
        }
    }

    /// Reminders of alerts that stay firing, on routes with a repeat interval.
    fn repeat(&mut self, rules: &[Rule], now: u64, out: &mut Output) {
        let builtin_route = self.rules.builtin.as_ref().and_then(|b| b.2.clone());
        for (key, t) in self.tracks.iter_mut() {
            // A flapping alert is told once, until it settles.
            if t.visible() != Some(AlertState::Firing) || !t.told.is_some_and(AlertState::is_active) {
                continue;
            }
            let (route, notify) = match rules.iter().find(|r| r.name == key.0) {
                Some(r) => (r.route.clone(), r.notify),
                None => (builtin_route.clone(), true),
            };
            let Some(route) = route.or_else(|| self.rules.delivery.default_route.clone()).filter(|_| notify) else {
                continue;
            };
            let Some(every) = self.rules.delivery.routes.get(&route).and_then(|r| r.repeat_ms) else { continue };
            if every > 0 && now.saturating_sub(t.told_ms) >= every {
                push(out, key, t, AlertState::Firing, Some(&route), NoticeKind::Repeat, now);
            }
        }
    }
}

fn event(key: &(String, String), t: &Track, state: AlertState, now: u64) -> AlertEvent {
    AlertEvent {
        ts_ms: now,
        rule: key.0.clone(),
        instance: key.1.clone(),
        state,
        severity: t.severity,
        value: t.value,
        reason: t.reason.clone(),
    }
}

fn push(
    out: &mut Output,
    key: &(String, String),
    t: &mut Track,
    state: AlertState,
    route: Option<&str>,
    kind: NoticeKind,
    now: u64,
) {
    (t.told, t.told_ms) = (Some(state), now);
    if let Some(route) = route {
        // A reminder is of the state the alert entered, when it entered it.
        let at = if kind == NoticeKind::Repeat { t.since_ms } else { now };
        out.notices.push(Notice { route: route.to_string(), kind, event: event(key, t, state, at) });
    }
}

/// A threshold rule's levels.
struct Levels {
    warn: Option<f64>,
    crit: Option<f64>,
    clear: f64,
    below: bool,
}

impl Levels {
    fn read(&self, value: f64, firing: bool, name: &str) -> Reading {
        if value.is_nan() {
            return Reading {
                holds: None,
                severity: Status::Unknown,
                value: None,
                reason: format!("{name} is not a number"),
            };
        }
        let beyond = |level: f64| if self.below { value <= level } else { value >= level };
        let severity = match (self.crit, self.warn) {
            (Some(c), _) if beyond(c) => Status::Critical,
            (_, Some(w)) if beyond(w) => Status::Warning,
            (Some(_), None) | (None, Some(_)) | (Some(_), Some(_)) => Status::Ok,
            (None, None) => Status::Ok,
        };
        let cleared = if self.below { value > self.clear } else { value < self.clear };
        let holds = if firing { !cleared } else { severity != Status::Ok };
        if !holds && !firing {
            // Nothing to say of a value that is fine and was fine.
            return Reading { holds: Some(false), severity: Status::Ok, value: Some(value), reason: String::new() };
        }
        let unit = series::unit_of(name);
        let mut levels = Vec::new();
        if let Some(c) = self.crit {
            levels.push(format!("critical at {}", show(c, unit)));
        }
        if let Some(w) = self.warn {
            levels.push(format!("warning at {}", show(w, unit)));
        }
        let fire = self.warn.or(self.crit).unwrap_or(self.clear);
        if self.clear != fire {
            levels.push(format!("clears {} {}", if self.below { "above" } else { "below" }, show(self.clear, unit)));
        }
        Reading {
            holds: Some(holds),
            severity: if severity == Status::Ok { Status::Warning } else { severity },
            value: Some(value),
            reason: format!("{name} = {} ({})", show(value, unit), levels.join(", ")),
        }
    }
}

/// A value in its unit, for a person.
fn show(value: f64, unit: Unit) -> String {
    match unit {
        Unit::Percent => format!("{value:.1}%"),
        Unit::Celsius => format!("{value:.1} C"),
        Unit::Bytes => {
            let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
            let mut v = value;
            let mut i = 0;
            while v.abs() >= 1024.0 && i + 1 < units.len() {
                v /= 1024.0;
                i += 1;
            }
            if i == 0 {
                format!("{v:.0} B")
            } else {
                format!("{v:.1} {}", units[i])
            }
        }
        Unit::Watts => format!("{value:.1} W"),
        Unit::Hertz => format!("{:.2} GHz", value / 1e9),
        Unit::Seconds => format!("{value:.0} s"),
        _ => {
            if value.fract() == 0.0 {
                format!("{value:.0}")
            } else {
                format!("{value:.2}")
            }
        }
    }
}

/// `10 min`, `26 h`, `7 d`.
fn span_words(ms: u64) -> String {
    let s = ms / 1000;
    if s % 86_400 == 0 && s >= 86_400 {
        format!("{} d", s / 86_400)
    } else if s % 3600 == 0 && s >= 3600 {
        format!("{} h", s / 3600)
    } else if s % 60 == 0 && s >= 60 {
        format!("{} min", s / 60)
    } else {
        format!("{s} s")
    }
}

/// The built-in status rules' readings: one per judged item.
fn builtin_readings(s: &HostSnapshot) -> Vec<(&'static str, String, Reading)> {
    let read = |status: Status, reason: String, value: Option<f64>| Reading {
        holds: match status {
            Status::Warning | Status::Critical => Some(true),
            Status::Ok => Some(false),
            Status::Unknown => None,
        },
        severity: status,
        value,
        reason,
    };
    let mut out = Vec::new();
    if let Some(c) = &s.cpu {
        let t = c.temperature_celsius;
        out.push(("cpu", String::new(), read(c.status, t.map_or_else(String::new, |t| format!("CPU at {t:.0} C")), t)));
    }
    if let Some(m) = &s.memory {
        let pct = m.used_percent();
        // Most items are fine most of the time: a reason nobody sees is not made.
        let why = if m.status == Status::Ok { String::new() } else { format!("memory {pct:.0}% used") };
        out.push(("memory", String::new(), read(m.status, why, Some(pct))));
    }
    for g in &s.gpus {
        let t = g.temperature_celsius;
        let why = t.map_or_else(String::new, |t| format!("{} at {t:.0} C", g.name));
        out.push(("gpu", g.id.clone(), read(g.status, why, t)));
    }
    for d in &s.drives {
        let finding =
            d.health.as_ref().and_then(|h| h.findings.iter().max_by_key(|f| f.status)).map(|f| f.text.clone());
        let why = match (finding, d.health.as_ref().map(|h| h.verdict)) {
            (Some(f), Some(v)) if v == d.status => f,
            _ => d.used_percent().map_or_else(String::new, |p| format!("its filesystems are {p:.0}% full")),
        };
        out.push(("drive", d.name.clone(), read(d.status, why, None)));
    }
    for f in &s.filesystems {
        let pct = f.used_percent();
        let why = if f.status == Status::Ok { String::new() } else { format!("{} {pct:.0}% full", f.mount_point) };
        out.push(("filesystem", f.mount_point.clone(), read(f.status, why, Some(pct))));
    }
    for svc in s.services.iter().flatten() {
        let why = if svc.status == Status::Ok { String::new() } else { svc.reason.clone().unwrap_or_default() };
        out.push(("service", svc.name.clone(), read(svc.status, why, None)));
    }
    for b in s.backups.iter().flatten() {
        // A job that has not run yet is unknown, not an alert.
        out.push(("backup", b.name.clone(), read(b.status, b.reason.clone().unwrap_or_default(), None)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::{AlertsConfig, Delivery, RouteTiming};
    use cm_proto::{Backup, Filesystem, Forecast, Service};

    const S: u64 = 1000;
    const MIN: u64 = 60 * S;
    const T0: u64 = 1_764_000_000_000;

    fn engine(toml_text: &str) -> Engine {
        engine_started(toml_text, 0)
    }

    /// An engine whose agent started at `T0 + at`.
    fn engine_started(toml_text: &str, at: u64) -> Engine {
        let cfg: AlertsConfig = toml::from_str(toml_text).unwrap();
        let delivery = Delivery {
            routes: [
                ("ops".to_string(), RouteTiming { repeat_ms: Some(4 * 60 * MIN), send_resolved: true }),
                ("quiet".to_string(), RouteTiming { repeat_ms: None, send_resolved: false }),
            ]
            .into(),
            default_route: Some("ops".into()),
        };
        Engine::new(cfg.rules(delivery).unwrap(), T0 + at)
    }

    /// Evaluates a snapshot made of `samples` at `T0 + at`.
    fn at(e: &mut Engine, at: u64, samples: &[(&str, f64)]) -> Output {
        let samples: Vec<Sample> = samples.iter().map(|(n, v)| Sample { name: n.to_string(), value: *v }).collect();
        let snap = HostSnapshot::default();
        e.evaluate(&Input { now_ms: T0 + at, snapshot: &snap, samples: &samples })
    }

    fn snap_at(e: &mut Engine, at: u64, snap: &HostSnapshot) -> Output {
        let samples = series::flatten(snap);
        e.evaluate(&Input { now_ms: T0 + at, snapshot: snap, samples: &samples })
    }

    fn states(out: &Output) -> Vec<(String, AlertState)> {
        out.events.iter().map(|e| (format!("{} {}", e.rule, e.instance).trim().to_string(), e.state)).collect()
    }

    fn told(out: &Output) -> Vec<(AlertState, NoticeKind)> {
        out.notices.iter().map(|n| (n.event.state, n.kind)).collect()
    }

    const SCRATCH: &str = r#"
        [builtin]
        enable = false
        [[rules]]
        name = "scratch-full"
        series = "fs./srv/scratch.used_percent"
        warn = 50
        crit = 90
        clear = 40
        for = "30s"
        keep_firing_for = "1m"
    "#;
    const FS: &str = "fs./srv/scratch.used_percent";

    #[test]
    fn pending_then_firing_after_for() {
        let mut e = engine(SCRATCH);
        assert_eq!(
            states(&at(&mut e, 0, &[(FS, 60.0)])),
            [("scratch-full fs./srv/scratch.used_percent".into(), AlertState::Pending)]
        );
        assert!(at(&mut e, 20 * S, &[(FS, 60.0)]).events.is_empty(), "still pending inside `for`");
        assert_eq!(e.alerts()[0].state, AlertState::Pending);
        let out = at(&mut e, 30 * S, &[(FS, 60.0)]);
        assert_eq!(told(&out), [(AlertState::Firing, NoticeKind::Alert)]);
        assert_eq!(out.notices[0].route, "ops");
        let a = &e.alerts()[0];
        assert_eq!(
            (a.state, a.severity, a.started_ms, a.since_ms),
            (AlertState::Firing, Status::Warning, T0, T0 + 30 * S)
        );
        assert_eq!(
            a.reason,
            "fs./srv/scratch.used_percent = 60.0% (critical at 90.0%, warning at 50.0%, clears below 40.0%)"
        );
    }

    #[test]
    fn a_condition_that_goes_away_while_pending_never_fires() {
        let mut e = engine(SCRATCH);
        at(&mut e, 0, &[(FS, 60.0)]);
        let out = at(&mut e, 10 * S, &[(FS, 30.0)]);
        assert_eq!(states(&out), [("scratch-full fs./srv/scratch.used_percent".into(), AlertState::Resolved)]);
        assert!(out.notices.is_empty(), "nobody was told it fired");
        assert!(e.alerts().is_empty());
    }

    #[test]
    fn no_resolve_inside_keep_firing_for_and_none_across_the_clear_band() {
        let mut e = engine(SCRATCH);
        at(&mut e, 0, &[(FS, 60.0)]);
        at(&mut e, 30 * S, &[(FS, 60.0)]);
        // Between clear (40) and warn (50): still firing, however long.
        for i in 0..60 {
            let v = if i % 2 == 0 { 45.0 } else { 55.0 };
            let out = at(&mut e, 40 * S + i * 10 * S, &[(FS, v)]);
            assert!(out.events.is_empty() && out.notices.is_empty(), "no flapping across the clear band: {out:?}");
        }
        // Below clear, for less than keep_firing_for: held.
        let base = 11 * MIN;
        at(&mut e, base, &[(FS, 30.0)]);
        assert!(at(&mut e, base + 50 * S, &[(FS, 30.0)]).events.is_empty(), "held inside keep_firing_for");
        // Back over clear inside the hold: the hold starts again.
        at(&mut e, base + 55 * S, &[(FS, 45.0)]);
        assert!(at(&mut e, base + 100 * S, &[(FS, 30.0)]).events.is_empty());
        let out = at(&mut e, base + 160 * S, &[(FS, 30.0)]);
        assert_eq!(told(&out), [(AlertState::Resolved, NoticeKind::Alert)]);
        assert_eq!(e.alerts()[0].state, AlertState::Resolved, "shown resolved for an hour");
        assert!(at(&mut e, base + 160 * S + 61 * MIN, &[(FS, 30.0)]).events.is_empty());
        assert!(e.alerts().is_empty(), "then gone");
    }

    #[test]
    fn escalation_to_critical_is_told_once_and_severity_never_drops_while_firing() {
        let mut e = engine(SCRATCH);
        at(&mut e, 0, &[(FS, 60.0)]);
        at(&mut e, 30 * S, &[(FS, 60.0)]);
        let out = at(&mut e, 40 * S, &[(FS, 95.0)]);
        assert_eq!(told(&out), [(AlertState::Firing, NoticeKind::Alert)]);
        assert_eq!(out.notices[0].event.severity, Status::Critical);
        assert!(at(&mut e, 50 * S, &[(FS, 60.0)]).notices.is_empty());
        assert!(at(&mut e, 60 * S, &[(FS, 95.0)]).notices.is_empty(), "no second escalation");
        assert_eq!(e.alerts()[0].severity, Status::Critical);
    }

    #[test]
    fn a_flapping_alert_is_told_once_and_then_once_more_when_it_settles() {
        let mut e = engine(
            r#"
            [builtin]
            enable = false
            [[rules]]
            name = "hot"
            series = "cpu.temperature_celsius"
            warn = 80
            "#,
        );
        let mut notices = Vec::new();
        // A value that crosses the threshold every 20 s, for 10 minutes.
        for i in 0..30 {
            let v = if i % 2 == 0 { 85.0 } else { 75.0 };
            notices.extend(at(&mut e, i * 20 * S, &[("cpu.temperature_celsius", v)]).notices);
        }
        let kinds: Vec<AlertState> = notices.iter().map(|n| n.event.state).collect();
        use AlertState::*;
        assert_eq!(kinds, [Firing, Resolved, Firing, Flapping], "three changes told, then flapping once");
        assert_eq!(e.alerts()[0].state, Flapping);
        // It settles over the threshold: after the window, it is firing, and told so.
        let mut settle = Vec::new();
        for i in 0..40 {
            settle.extend(at(&mut e, 10 * MIN + i * 20 * S, &[("cpu.temperature_celsius", 90.0)]).notices);
        }
        let kinds: Vec<AlertState> = settle.iter().map(|n| n.event.state).collect();
        assert_eq!(kinds, [Firing]);
        assert_eq!(e.alerts()[0].state, Firing);
    }

    #[test]
    fn any_is_one_alert_per_instance_and_all_is_one_alert_while_every_instance_is_over() {
        let rules = r#"
            [builtin]
            enable = false
            [[rules]]
            name = "full"
            series = "fs.*.used_percent"
            crit = 90
            [[rules]]
            name = "all-full"
            series = "fs.*.used_percent"
            crit = 90
            match = "all"
        "#;
        let mut e = engine(rules);
        let out = at(&mut e, 0, &[("fs./a.used_percent", 95.0), ("fs./b.used_percent", 50.0)]);
        assert_eq!(states(&out), [("full fs./a.used_percent".into(), AlertState::Firing)]);
        let out = at(&mut e, 10 * S, &[("fs./a.used_percent", 95.0), ("fs./b.used_percent", 92.0)]);
        assert_eq!(
            states(&out),
            [("full fs./b.used_percent".into(), AlertState::Firing), ("all-full".into(), AlertState::Firing)]
        );
        let all = e.alerts().into_iter().find(|a| a.rule == "all-full").unwrap();
        assert_eq!(all.reason, "all 2 of fs.*.used_percent: the least, fs./b.used_percent = 92.0% (critical at 90.0%)");
        let out = at(&mut e, 20 * S, &[("fs./a.used_percent", 95.0), ("fs./b.used_percent", 10.0)]);
        assert_eq!(
            states(&out),
            [("full fs./b.used_percent".into(), AlertState::Resolved), ("all-full".into(), AlertState::Resolved)]
        );
    }

    #[test]
    fn conditions_combine_rules_with_and_or_not() {
        let mut e = engine(
            r#"
            [builtin]
            enable = false
            [[rules]]
            name = "busy"
            series = "cpu.load1"
            warn = 4
            notify = false
            [[rules]]
            name = "swapping"
            series = "memory.swap_used_percent"
            warn = 50
            notify = false
            [[rules]]
            name = "maintenance"
            series = "nixos.reboot_needed"
            warn = 1
            notify = false
            [[rules]]
            name = "struggling"
            condition = "(busy or swapping) and not maintenance"
            severity = "critical"
            "#,
        );
        let names = |out: &Output| out.notices.iter().map(|n| n.event.rule.clone()).collect::<Vec<_>>();
        let out = at(&mut e, 0, &[("cpu.load1", 8.0), ("memory.swap_used_percent", 0.0), ("nixos.reboot_needed", 1.0)]);
        assert!(names(&out).is_empty(), "busy but in maintenance; the parts are not notified");
        let out =
            at(&mut e, 10 * S, &[("cpu.load1", 8.0), ("memory.swap_used_percent", 0.0), ("nixos.reboot_needed", 0.0)]);
        assert_eq!(names(&out), ["struggling"]);
        assert_eq!(out.notices[0].event.severity, Status::Critical);
        assert_eq!(out.notices[0].event.reason, "firing: busy");
        let out =
            at(&mut e, 20 * S, &[("cpu.load1", 1.0), ("memory.swap_used_percent", 60.0), ("nixos.reboot_needed", 0.0)]);
        assert!(names(&out).is_empty(), "swapping instead of busy: still struggling, nothing new");
        let out =
            at(&mut e, 30 * S, &[("cpu.load1", 1.0), ("memory.swap_used_percent", 0.0), ("nixos.reboot_needed", 0.0)]);
        assert_eq!(told(&out), [(AlertState::Resolved, NoticeKind::Alert)]);
    }

    #[test]
    fn absence_fires_when_a_series_stops_reporting_and_when_it_never_did() {
        let mut e = engine(
            r#"
            [builtin]
            enable = false
            [[rules]]
            name = "gpu-gone"
            series = "gpu.*.temperature_celsius"
            absent_for = "5m"
            [[rules]]
            name = "no-zram"
            series = "zram.*.original_bytes"
            absent_for = "10m"
            "#,
        );
        let gpu = "gpu.card0.temperature_celsius";
        assert!(at(&mut e, 0, &[(gpu, 50.0)]).events.is_empty());
        assert!(at(&mut e, 4 * MIN, &[]).events.is_empty());
        let out = at(&mut e, 5 * MIN, &[]);
        assert_eq!(states(&out), [("gpu-gone gpu.card0.temperature_celsius".into(), AlertState::Firing)]);
        let out = at(&mut e, 10 * MIN, &[]);
        assert_eq!(states(&out), [("no-zram".into(), AlertState::Firing)], "never reported since the start");
        assert!(out.notices[0].event.reason.starts_with("no series matching zram.*.original_bytes reported since"));
        let out = at(&mut e, 11 * MIN, &[(gpu, 50.0)]);
        assert_eq!(states(&out), [("gpu-gone gpu.card0.temperature_celsius".into(), AlertState::Resolved)]);
        // The first zram device reports: "none ever did" resolves at once.
        let out = at(&mut e, 12 * MIN, &[("zram.zram0.original_bytes", 1.0)]);
        assert_eq!(states(&out), [("no-zram".into(), AlertState::Resolved)]);
    }

    fn backup(result: &str, last_run_ms: u64) -> HostSnapshot {
        HostSnapshot {
            backups: Some(vec![Backup {
                name: "restic-b2".into(),
                result: Some(result.into()),
                last_run_ms: Some(last_run_ms),
                duration_seconds: Some(600),
                ..Default::default()
            }]),
            ..Default::default()
        }
    }

    #[test]
    fn a_backup_with_no_successful_run_for_too_long_fires() {
        let mut e = engine(
            r#"
            [builtin]
            enable = false
            [[rules]]
            name = "stale-backup"
            backup = "restic-*"
            no_success_for = "26h"
            severity = "critical"
            "#,
        );
        let h = 3_600_000;
        let out = snap_at(&mut e, 0, &backup("success", T0 - h));
        assert!(out.events.is_empty());
        let clock = BackupClock { job: "restic-b2".into(), since_ms: T0, success_ms: Some(T0 - h + 600_000) };
        assert_eq!(out.clocks, [clock], "a clock to store when it moves");
        assert!(snap_at(&mut e, MIN, &backup("success", T0 - h)).clocks.is_empty(), "and only then");
        // The next night's run fails; 26 h after the last success ended, it fires.
        assert!(snap_at(&mut e, 24 * h, &backup("exit-code", T0 + 23 * h)).events.is_empty());
        let out = snap_at(&mut e, 25 * h + 10 * MIN, &backup("exit-code", T0 + 23 * h));
        assert_eq!(states(&out), [("stale-backup restic-b2".into(), AlertState::Firing)]);
        assert!(
            out.notices[0].event.reason.starts_with("last successful run ended"),
            "{}",
            out.notices[0].event.reason
        );
        let out = snap_at(&mut e, 26 * h, &backup("success", T0 + 25 * h + 30 * MIN));
        assert_eq!(states(&out), [("stale-backup restic-b2".into(), AlertState::Resolved)]);
    }

    #[test]
    fn a_forecast_rule_fires_when_the_date_is_near() {
        let mut e = engine(
            r#"
            [builtin]
            enable = false
            [[rules]]
            name = "full-soon"
            series = "fs.*.used_percent"
            full_within = "7d"
            "#,
        );
        let day = 86_400_000;
        let fs = |days: u64| HostSnapshot {
            filesystems: vec![Filesystem {
                mount_point: "/var".into(),
                used_bytes: 80,
                available_bytes: 20,
                full: Some(Forecast {
                    at_ms: T0 + days * day,
                    earliest_ms: T0 + (days - 1) * day,
                    latest_ms: T0 + (days + 2) * day,
                    per_day: 1.5,
                    days: 20.0,
                }),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert!(snap_at(&mut e, 0, &fs(30)).events.is_empty());
        let out = snap_at(&mut e, MIN, &fs(6));
        assert_eq!(states(&out), [("full-soon fs./var.used_percent".into(), AlertState::Firing)]);
        assert!(out.notices[0].event.reason.starts_with("full around"), "{}", out.notices[0].event.reason);
    }

    fn failed(name: &str) -> Service {
        Service {
            name: name.into(),
            active_state: "failed".into(),
            status: Status::Critical,
            reason: Some("failed (exit-code)".into()),
            ..Default::default()
        }
    }

    #[test]
    fn built_in_status_rules_alert_with_no_configuration() {
        let mut e = engine("[builtin]\nfor = \"1m\"\nkeep_firing_for = \"0s\"");
        let mut snap = HostSnapshot { services: Some(vec![failed("vaultwarden.service")]), ..Default::default() };
        let out = snap_at(&mut e, 0, &snap);
        assert_eq!(states(&out), [("service vaultwarden.service".into(), AlertState::Pending)]);
        let out = snap_at(&mut e, MIN, &snap);
        assert_eq!(told(&out), [(AlertState::Firing, NoticeKind::Alert)]);
        assert_eq!(out.notices[0].event.reason, "failed (exit-code)");
        assert_eq!(out.notices[0].event.severity, Status::Critical);
        // A status that cannot be told holds the alert where it is.
        snap.services.as_mut().unwrap()[0].status = Status::Unknown;
        assert!(snap_at(&mut e, 2 * MIN, &snap).events.is_empty());
        // Not reported for a round or two (systemd missed its deadline, or
        // the unit left the watch list): held as it was.
        let mut gone = HostSnapshot { services: None, ..Default::default() };
        assert!(snap_at(&mut e, 3 * MIN, &gone).events.is_empty());
        gone.services = Some(vec![]);
        assert!(snap_at(&mut e, 6 * MIN, &gone).events.is_empty());
        assert_eq!(e.alerts()[0].state, AlertState::Firing);
        // Gone for GONE_AFTER_MS: it resolves.
        let out = snap_at(&mut e, 2 * MIN + GONE_AFTER_MS, &gone);
        assert_eq!(told(&out), [(AlertState::Resolved, NoticeKind::Alert)]);
        assert_eq!(out.notices[0].event.reason, "cleared: no longer reported");
        assert!(snap_at(&mut e, 3 * MIN + GONE_AFTER_MS, &gone).events.is_empty(), "told once");
    }

    #[test]
    fn reminders_follow_the_route_and_resolved_messages_can_be_off() {
        let mut e = engine(
            r#"
            [builtin]
            enable = false
            [[rules]]
            name = "load"
            series = "cpu.load1"
            warn = 4
            [[rules]]
            name = "load-quiet"
            series = "cpu.load1"
            warn = 4
            route = "quiet"
            "#,
        );
        let h = 60 * MIN;
        at(&mut e, 0, &[("cpu.load1", 9.0)]);
        let mut reminders = Vec::new();
        for i in 1..=9 {
            reminders.extend(at(&mut e, i * h, &[("cpu.load1", 9.0)]).notices);
        }
        let r: Vec<(&str, NoticeKind)> = reminders.iter().map(|n| (n.event.rule.as_str(), n.kind)).collect();
        assert_eq!(r, [("load", NoticeKind::Repeat), ("load", NoticeKind::Repeat)], "every 4 h on ops, never on quiet");
        let out = at(&mut e, 10 * h, &[("cpu.load1", 1.0)]);
        let r: Vec<(&str, AlertState)> = out.notices.iter().map(|n| (n.event.rule.as_str(), n.event.state)).collect();
        assert_eq!(r, [("load", AlertState::Resolved)], "quiet has send_resolved = false");
    }

    #[test]
    fn a_restart_tells_nothing_that_was_told_and_resolves_what_cleared() {
        let mut e = engine(SCRATCH);
        at(&mut e, 0, &[(FS, 95.0)]);
        let fired = at(&mut e, 30 * S, &[(FS, 95.0)]);
        assert_eq!(fired.notices.len(), 1);
        // The agent restarts; it takes up the stored firing event.
        let mut again = engine(SCRATCH);
        again.restore(&fired.events);
        assert_eq!(again.alerts()[0].state, AlertState::Firing);
        assert!(at(&mut again, 5 * MIN, &[(FS, 95.0)]).notices.is_empty(), "still firing: nothing new to tell");
        at(&mut again, 6 * MIN, &[(FS, 10.0)]);
        let out = at(&mut again, 7 * MIN, &[(FS, 10.0)]);
        assert_eq!(told(&out), [(AlertState::Resolved, NoticeKind::Alert)]);
    }

    #[test]
    fn a_restart_does_not_remind_at_once_and_a_reminder_says_since_when() {
        let h = 60 * MIN;
        let mut e = engine(SCRATCH);
        at(&mut e, 0, &[(FS, 95.0)]);
        let fired = at(&mut e, 30 * S, &[(FS, 95.0)]);
        // Restarted 5 h later: a reminder (4 h on ops) is due 4 h after the start.
        let mut again = engine_started(SCRATCH, 5 * h);
        again.restore(&fired.events);
        assert!(at(&mut again, 5 * h, &[(FS, 95.0)]).notices.is_empty(), "no reminder at the restart");
        assert!(at(&mut again, 8 * h, &[(FS, 95.0)]).notices.is_empty());
        let out = at(&mut again, 9 * h, &[(FS, 95.0)]);
        assert_eq!(told(&out), [(AlertState::Firing, NoticeKind::Repeat)]);
        assert_eq!(out.notices[0].event.ts_ms, T0 + 30 * S, "firing since it fired, not since the reminder");
    }

    #[test]
    fn a_restart_keeps_a_flapping_alert_flapping_and_an_absent_series_absent() {
        let config = r#"
            [builtin]
            enable = false
            [[rules]]
            name = "flappy"
            series = "cpu.load1"
            warn = 4
            [[rules]]
            name = "gpu-gone"
            series = "gpu.*.temperature_celsius"
            absent_for = "5m"
        "#;
        let mut e = engine(config);
        let mut stored = Vec::new();
        let gpu = "gpu.card0.temperature_celsius";
        for i in 0..8 {
            let load = if i % 2 == 0 { 8.0 } else { 1.0 };
            let samples: &[(&str, f64)] =
                if i == 0 { &[("cpu.load1", load), (gpu, 50.0)] } else { &[("cpu.load1", load)] };
            stored.extend(at(&mut e, i * 20 * S, samples).events);
        }
        stored.extend(at(&mut e, 6 * MIN, &[("cpu.load1", 8.0)]).events);
        let state = |e: &Engine, rule: &str| e.alerts().iter().find(|a| a.rule == rule).map(|a| a.state);
        assert_eq!(state(&e, "flappy"), Some(AlertState::Flapping));
        assert_eq!(state(&e, "gpu-gone"), Some(AlertState::Firing));
        // The journal's restore: the last event of each alert.
        let mut latest: Vec<AlertEvent> = Vec::new();
        for ev in stored {
            latest.retain(|l| (&l.rule, &l.instance) != (&ev.rule, &ev.instance));
            latest.push(ev);
        }
        // Restarted two hours later, far past the flap window.
        let mut again = engine_started(config, 120 * MIN);
        again.restore(&latest);
        let out = at(&mut again, 120 * MIN, &[("cpu.load1", 8.0)]);
        assert!(out.events.is_empty() && out.notices.is_empty(), "{out:?}");
        assert_eq!(state(&again, "flappy"), Some(AlertState::Flapping));
        assert_eq!(state(&again, "gpu-gone"), Some(AlertState::Firing), "still absent since it last reported");
        let out = at(&mut again, 121 * MIN, &[("cpu.load1", 8.0), (gpu, 50.0)]);
        assert_eq!(states(&out), [(format!("gpu-gone {gpu}"), AlertState::Resolved)]);
    }
}
