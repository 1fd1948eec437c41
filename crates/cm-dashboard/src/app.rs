//! Application state and the one place it changes: [`App::update`].
//!
//! Everything here is pure: messages in, state and an [`Action`] out. The event
//! loop in `main.rs` does the I/O.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde::Serialize;

use cm_proto::history::Answer;
use cm_proto::{HostSnapshot, Status};

use crate::alerts::{AlertLog, MinSeverity};
use crate::history::{self, Fetch, HostHistory, Range, Source, Timeline};
use crate::summary::Summary;

/// How the dashboard reaches a host.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Connection {
    /// The in-process agent of local mode.
    Local,
    /// Dialling, before the first answer.
    Connecting,
    /// Subscribed and receiving snapshots.
    Connected,
    /// Not reachable, with the reason; the pool keeps retrying.
    Unreachable { reason: String },
}

impl Connection {
    /// One word for the title bar and the tables; the reason of an
    /// unreachable host goes where it has room ([`HostEntry::headline`]).
    pub fn label(&self) -> &'static str {
        match self {
            Connection::Local => "local",
            Connection::Connecting => "connecting",
            Connection::Connected => "connected",
            Connection::Unreachable { .. } => "unreachable",
        }
    }

    /// Why the host cannot be reached, if it cannot.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Connection::Unreachable { reason } => Some(reason),
            _ => None,
        }
    }
}

/// One monitored host as the dashboard knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct HostEntry {
    pub name: String,
    /// The group the fleet config puts it in (server, workstation, lab...).
    pub role: String,
    pub connection: Connection,
    /// When `connection` last changed, milliseconds since the Unix epoch.
    pub connection_since_ms: u64,
    /// The status the dashboard last gave the host ([`HostEntry::status`]),
    /// and since when: the dashboard's start, or the last change.
    pub last_status: Status,
    pub status_since_ms: u64,
    /// When the latest snapshot arrived, milliseconds since the Unix epoch.
    pub received_ms: Option<u64>,
    /// The agent's collection interval, from its Welcome.
    pub interval_ms: Option<u64>,
    pub snapshot: Option<HostSnapshot>,
    /// What the overview shows of `snapshot`, worked out when it arrived.
    pub summary: Option<Summary>,
    /// The series the views draw, over time.
    pub history: HostHistory,
    /// The alert transitions of the last day, for the alerts view.
    pub alerts: AlertLog,
}

/// How long a connected host may stay silent before it is stale: three of
/// its intervals, and never less than this (an agent that sees no change
/// sends a heartbeat after 5 s of silence, docs/PROTOCOL.md).
pub const STALE_AFTER_MS: u64 = 10_000;

impl HostEntry {
    pub fn new(name: &str, role: &str, connection: Connection) -> Self {
        Self {
            name: name.into(),
            role: role.into(),
            connection,
            connection_since_ms: 0,
            last_status: Status::Unknown,
            status_since_ms: 0,
            received_ms: None,
            interval_ms: None,
            snapshot: None,
            summary: None,
            history: HostHistory::default(),
            alerts: AlertLog::default(),
        }
    }

    /// Takes `snapshot` as the host's latest, with its summary, and adds its
    /// values to the history. Returns the values, for the chart.
    fn set_snapshot(&mut self, snapshot: HostSnapshot, received_ms: u64) -> Vec<cm_proto::series::Sample> {
        self.summary = Some(Summary::of(&snapshot));
        let samples = self.history.observe(&snapshot, received_ms);
        self.snapshot = Some(snapshot);
        self.received_ms = Some(received_ms);
        samples
    }

    /// True when the host is connected but its latest snapshot is older than
    /// three intervals (at least [`STALE_AFTER_MS`]): the connection lives,
    /// the agent says nothing. A host whose connection is gone is
    /// unreachable instead; either way its values are old ([`HostEntry::is_old`]).
    pub fn is_stale(&self, now_ms: u64) -> bool {
        let Some(at) = self.received_ms else { return false };
        if matches!(self.connection, Connection::Unreachable { .. }) {
            return false;
        }
        let limit = self.interval_ms.map_or(STALE_AFTER_MS, |i| (3 * i).max(STALE_AFTER_MS));
        now_ms.saturating_sub(at) > limit
    }

    /// True when the values on screen are not live: the host is stale, or
    /// unreachable (or reconnecting) with the snapshot from before.
    pub fn is_old(&self, now_ms: u64) -> bool {
        self.snapshot.is_some()
            && (self.is_stale(now_ms) || !matches!(self.connection, Connection::Connected | Connection::Local))
    }

    /// The one thing a person should know about the host: why it cannot be
    /// reached, that it is stale, or the worst reason in its snapshot.
    /// `None` while all is well.
    pub fn headline(&self, now_ms: u64) -> Option<String> {
        if let Connection::Unreachable { reason } = &self.connection {
            return Some(format!("unreachable: {reason}"));
        }
        if self.is_stale(now_ms) {
            let age = self.received_ms.map(|at| crate::format::age(now_ms.saturating_sub(at))).unwrap_or_default();
            let source =
                if self.connection == Connection::Local { "the in-process agent's" } else { "connected, but the" };
            return Some(format!("stale: {source} last snapshot came {age}"));
        }
        match (&self.connection, &self.summary) {
            (Connection::Connecting, _) => Some("connecting: no answer yet".into()),
            (_, Some(summary)) => summary.reason.clone(),
            (_, None) => None,
        }
    }

    /// The host's worst status: an unreachable host is critical, a stale one
    /// a warning at least; unknown while nothing has arrived.
    pub fn status(&self, now_ms: u64) -> Status {
        if matches!(self.connection, Connection::Unreachable { .. }) {
            return Status::Critical;
        }
        let own = self.summary.as_ref().map_or(Status::Unknown, |s| s.worst);
        if self.is_stale(now_ms) {
            own.max(Status::Warning)
        } else {
            own
        }
    }
}

/// Where the hosts come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// This machine, through the in-process agent.
    Local,
    /// The fleet of the configuration file, over the network.
    Fleet,
}

/// Which screen is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum View {
    Overview,
    Host,
    /// One series of the selected host over time.
    Chart,
    /// The alerts of every host: active ones, then the last day's transitions.
    Alerts,
}

/// The overview's sort order (`s` cycles).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SortKey {
    /// Worst first, then by name.
    Status,
    Name,
    Cpu,
    Ram,
}

impl SortKey {
    fn next(self) -> Self {
        match self {
            SortKey::Status => SortKey::Name,
            SortKey::Name => SortKey::Cpu,
            SortKey::Cpu => SortKey::Ram,
            SortKey::Ram => SortKey::Status,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            SortKey::Status => "status",
            SortKey::Name => "name",
            SortKey::Cpu => "cpu",
            SortKey::Ram => "ram",
        }
    }
}

/// Things the user can ask for; keys map onto these through [`KEYS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Quit,
    Help,
    Refresh,
    Back,
    Open,
    Up,
    Down,
    PrevHost,
    NextHost,
    ToggleView,
    Sort,
    Filter,
    Group,
    /// The host view's row cursor, or the chart's series.
    PrevRow,
    NextRow,
    /// The chart of the row under the cursor.
    Chart,
    /// Choose any series of the host to chart, by typing part of its name.
    Pick,
    ShowRange(Range),
    /// Scrolls the help by this many rows (a large number: to an end).
    ScrollHelp(i32),
    /// Opens the alerts view, or goes back from it.
    Alerts,
    /// Cycles the least severity the alerts view lists.
    MinSeverity,
    /// Scrolls the alerts view by this many rows (a large number: to an end).
    ScrollAlerts(i32),
}

/// Where a binding applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Everywhere,
    Overview,
    Host,
    Chart,
    Alerts,
    /// While the help is open.
    Help,
}

/// The key bindings, as data: the help screen and the key bar are drawn from this.
/// `ScrollAlerts` by a page of the screen, down or up.
const PAGE_DOWN: i32 = i32::MAX - 1;
const PAGE_UP: i32 = i32::MIN + 1;

pub const KEYS: &[(KeyCode, Command, Scope, &str, &str)] = &[
    (KeyCode::Char('q'), Command::Quit, Scope::Everywhere, "q", "quit"),
    (KeyCode::Char('?'), Command::Help, Scope::Everywhere, "?", "help"),
    (KeyCode::Char('r'), Command::Refresh, Scope::Everywhere, "r", "refresh now"),
    (KeyCode::Esc, Command::Back, Scope::Everywhere, "Esc", "close help / back"),
    (KeyCode::Tab, Command::ToggleView, Scope::Everywhere, "Tab", "overview / host"),
    (KeyCode::Char('a'), Command::Alerts, Scope::Everywhere, "a", "alerts of every host"),
    (KeyCode::Enter, Command::Open, Scope::Overview, "Enter", "open host"),
    (KeyCode::Up, Command::Up, Scope::Overview, "↑/k", "select"),
    (KeyCode::Char('k'), Command::Up, Scope::Overview, "", ""),
    (KeyCode::Down, Command::Down, Scope::Overview, "↓/j", "select"),
    (KeyCode::Char('j'), Command::Down, Scope::Overview, "", ""),
    (KeyCode::Char('s'), Command::Sort, Scope::Overview, "s", "sort"),
    (KeyCode::Char('f'), Command::Filter, Scope::Overview, "f or /", "filter"),
    (KeyCode::Char('/'), Command::Filter, Scope::Overview, "", ""),
    (KeyCode::Char('g'), Command::Group, Scope::Overview, "g", "group by role"),
    (KeyCode::Left, Command::PrevHost, Scope::Host, "←/h", "previous host"),
    (KeyCode::Char('h'), Command::PrevHost, Scope::Host, "", ""),
    (KeyCode::Right, Command::NextHost, Scope::Host, "→/l", "next host"),
    (KeyCode::Char('l'), Command::NextHost, Scope::Host, "", ""),
    (KeyCode::Up, Command::PrevRow, Scope::Host, "↑/↓", "select a row"),
    (KeyCode::Char('k'), Command::PrevRow, Scope::Host, "", ""),
    (KeyCode::Down, Command::NextRow, Scope::Host, "", ""),
    (KeyCode::Char('j'), Command::NextRow, Scope::Host, "", ""),
    (KeyCode::Enter, Command::Chart, Scope::Host, "Enter", "chart the selected row"),
    (KeyCode::Char('g'), Command::Pick, Scope::Host, "g", "find any series to chart"),
    (KeyCode::Char('1'), Command::ShowRange(Range::Hour), Scope::Chart, "1", "1h (the last hour)"),
    (KeyCode::Char('2'), Command::ShowRange(Range::Day), Scope::Chart, "2", "24h (the last day)"),
    (KeyCode::Char('3'), Command::ShowRange(Range::Week), Scope::Chart, "3", "7d (the last week)"),
    (KeyCode::Char('4'), Command::ShowRange(Range::Month), Scope::Chart, "4", "30d (the last 30 days)"),
    (KeyCode::Up, Command::PrevRow, Scope::Chart, "↑/↓", "series (previous / next row)"),
    (KeyCode::Char('k'), Command::PrevRow, Scope::Chart, "", ""),
    (KeyCode::Down, Command::NextRow, Scope::Chart, "", ""),
    (KeyCode::Char('j'), Command::NextRow, Scope::Chart, "", ""),
    (KeyCode::Char('g'), Command::Pick, Scope::Chart, "g", "find another series to chart"),
    (KeyCode::Esc, Command::Back, Scope::Chart, "Esc", "back to the host"),
    (KeyCode::Esc, Command::Back, Scope::Alerts, "Esc/Tab/a", "back to the view before"),
    (KeyCode::Tab, Command::Back, Scope::Alerts, "", ""),
    (KeyCode::Char('a'), Command::Back, Scope::Alerts, "", ""),
    (KeyCode::Char('s'), Command::MinSeverity, Scope::Alerts, "s", "severity shown: all, warning+, critical"),
    (KeyCode::Char('f'), Command::Filter, Scope::Alerts, "f or /", "filter by host, rule or instance"),
    (KeyCode::Char('/'), Command::Filter, Scope::Alerts, "", ""),
    (KeyCode::Up, Command::ScrollAlerts(-1), Scope::Alerts, "↑/↓", "scroll"),
    (KeyCode::Char('k'), Command::ScrollAlerts(-1), Scope::Alerts, "", ""),
    (KeyCode::Down, Command::ScrollAlerts(1), Scope::Alerts, "", ""),
    (KeyCode::Char('j'), Command::ScrollAlerts(1), Scope::Alerts, "", ""),
    (KeyCode::PageUp, Command::ScrollAlerts(PAGE_UP), Scope::Alerts, "PgUp/PgDn", "scroll a page"),
    (KeyCode::PageDown, Command::ScrollAlerts(PAGE_DOWN), Scope::Alerts, "", ""),
    (KeyCode::Home, Command::ScrollAlerts(i32::MIN), Scope::Alerts, "Home/End", "to the top / the end"),
    (KeyCode::End, Command::ScrollAlerts(i32::MAX), Scope::Alerts, "", ""),
    (KeyCode::Up, Command::ScrollHelp(-1), Scope::Help, "↑/↓", "scroll the help"),
    (KeyCode::Char('k'), Command::ScrollHelp(-1), Scope::Help, "", ""),
    (KeyCode::Down, Command::ScrollHelp(1), Scope::Help, "", ""),
    (KeyCode::Char('j'), Command::ScrollHelp(1), Scope::Help, "", ""),
    (KeyCode::PageUp, Command::ScrollHelp(-10), Scope::Help, "PgUp/PgDn", "scroll the help a page"),
    (KeyCode::PageDown, Command::ScrollHelp(10), Scope::Help, "", ""),
    (KeyCode::Home, Command::ScrollHelp(i32::MIN), Scope::Help, "", ""),
    (KeyCode::End, Command::ScrollHelp(i32::MAX), Scope::Help, "", ""),
];

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    Key(KeyEvent),
    /// The clock moved on (milliseconds since the Unix epoch).
    Tick(u64),
    /// A snapshot arrived on the connection to host number `host`, stamped with
    /// when it arrived. The host is the one dialled, never read from the snapshot.
    Snapshot {
        host: usize,
        snapshot: Box<HostSnapshot>,
        received_ms: u64,
    },
    /// The connection to host number `host` changed.
    Connection {
        host: usize,
        connection: Connection,
        interval_ms: Option<u64>,
    },
    /// The terminal has this size now (at the start, and after each resize).
    Resize {
        cols: u16,
        rows: u16,
    },
    /// A signal asked the dashboard to stop.
    Terminate,
    /// Whether host number `host` can answer history requests (sent each
    /// time a connection comes up), and if not, why.
    HistorySource {
        host: usize,
        available: Result<(), String>,
    },
    /// Whether host number `host` can answer with alert events (protocol
    /// 1.3, or the local store), sent each time a connection comes up.
    EventSource {
        host: usize,
        available: Result<(), String>,
    },
    /// The answer to `fetch`, or why there is none.
    HistoryAnswer {
        fetch: Fetch,
        answer: Result<Answer, String>,
    },
}

/// What the event loop should do after an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    None,
    Quit,
    /// Ask the sources for fresh data now.
    Refresh,
}

/// The chart view's state: one series of one host over a range.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    pub host: usize,
    pub series: String,
    pub range: Range,
    pub timeline: Timeline,
    /// Why the last fetch failed.
    pub error: Option<String>,
    /// The host came back: ask for what it missed at the next chance.
    backfill: bool,
}

impl Chart {
    fn new(host: usize, series: String, range: Range) -> Self {
        Chart { host, series, range, timeline: Timeline::new(range.window()), error: None, backfill: false }
    }
}

/// The series picker: what was typed and which match is selected.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Picker {
    pub query: String,
    pub selected: usize,
}

/// The whole dashboard state.
#[derive(Debug, Clone, PartialEq)]
pub struct App {
    pub mode: Mode,
    pub hosts: Vec<HostEntry>,
    /// Index into `hosts` of the host the cursor is on.
    pub selected: usize,
    pub view: View,
    pub sort: SortKey,
    /// Shows only hosts whose name or role contains this text.
    pub filter: String,
    /// Keys are typed into the filter.
    pub filtering: bool,
    pub group_by_role: bool,
    pub show_help: bool,
    /// The help's first row shown, when it is longer than the screen.
    pub help_scroll: u16,
    /// The terminal's size, columns and rows, as last reported.
    pub screen: (u16, u16),
    /// The latest clock tick, milliseconds since the Unix epoch.
    pub now_ms: u64,
    /// Something on screen changed since the last frame; the event loop draws
    /// and clears it. The clock alone does not set it.
    pub dirty: bool,
    /// The host view's row cursor: a series name (the first row when unset
    /// or gone).
    pub row: Option<String>,
    pub chart: Option<Chart>,
    pub picker: Option<Picker>,
    /// The least severity the alerts view lists.
    pub min_severity: MinSeverity,
    /// The alerts view's own filter: host, rule or instance (the overview's
    /// `filter` is of hosts and roles).
    pub alerts_filter: String,
    /// The alerts view's first row shown, when it is longer than the screen.
    pub alerts_scroll: u16,
    /// The view the alerts view goes back to.
    alerts_from: View,
    /// History requests for the event loop to send ([`App::take_fetches`]).
    fetches: Vec<Fetch>,
    last_fetch_id: u64,
}

impl App {
    /// Local mode: one host, served by the in-process agent, called "this
    /// machine" until its first snapshot names it ([`App::local_named`]).
    pub fn local(now_ms: u64) -> Self {
        Self::local_named("this machine", now_ms)
    }

    /// Local mode for a machine whose name is known before its first snapshot.
    pub fn local_named(name: &str, now_ms: u64) -> Self {
        Self::with_hosts(Mode::Local, vec![HostEntry::new(name, "", Connection::Local)], View::Host, now_ms)
    }

    /// Fleet mode: the hosts from the config, starting on the overview.
    pub fn remote(hosts: Vec<HostEntry>, now_ms: u64) -> Self {
        Self::with_hosts(Mode::Fleet, hosts, View::Overview, now_ms)
    }

    fn with_hosts(mode: Mode, mut hosts: Vec<HostEntry>, view: View, now_ms: u64) -> Self {
        for h in &mut hosts {
            h.connection_since_ms = now_ms;
            h.status_since_ms = now_ms;
        }
        let mut app = Self {
            mode,
            hosts,
            selected: 0,
            view,
            sort: SortKey::Status,
            filter: String::new(),
            filtering: false,
            group_by_role: false,
            show_help: false,
            help_scroll: 0,
            screen: (100, 30),
            now_ms,
            dirty: true,
            row: None,
            chart: None,
            picker: None,
            min_severity: MinSeverity::All,
            alerts_filter: String::new(),
            alerts_scroll: 0,
            alerts_from: view,
            fetches: Vec::new(),
            last_fetch_id: 0,
        };
        app.selected = app.order().first().copied().unwrap_or(0);
        app
    }

    /// The host shown in the host view.
    pub fn selected_host(&self) -> Option<&HostEntry> {
        self.hosts.get(self.selected)
    }

    /// Indices of the hosts the overview shows, in its order.
    pub fn order(&self) -> Vec<usize> {
        let needle = self.filter.to_lowercase();
        let mut idx: Vec<usize> = (0..self.hosts.len())
            .filter(|&i| {
                let h = &self.hosts[i];
                needle.is_empty() || h.name.to_lowercase().contains(&needle) || h.role.to_lowercase().contains(&needle)
            })
            .collect();
        let now = self.now_ms;
        let cpu = |h: &HostEntry| h.summary.as_ref().and_then(|s| s.cpu_percent).unwrap_or(-1.0);
        let ram = |h: &HostEntry| h.summary.as_ref().and_then(|s| s.ram_percent).unwrap_or(-1.0);
        idx.sort_by(|&a, &b| {
            let (a, b) = (&self.hosts[a], &self.hosts[b]);
            let group = if self.group_by_role { a.role.cmp(&b.role) } else { std::cmp::Ordering::Equal };
            let key = match self.sort {
                SortKey::Status => b.status(now).cmp(&a.status(now)),
                SortKey::Name => std::cmp::Ordering::Equal,
                SortKey::Cpu => cpu(b).total_cmp(&cpu(a)),
                SortKey::Ram => ram(b).total_cmp(&ram(a)),
            };
            group.then(key).then_with(|| a.name.cmp(&b.name))
        });
        idx
    }

    /// The history requests that became due, for the event loop to send.
    pub fn take_fetches(&mut self) -> Vec<Fetch> {
        std::mem::take(&mut self.fetches)
    }

    /// The series of the host view's rows, top to bottom.
    pub fn rows(&self) -> Vec<String> {
        let snap = self.selected_host().and_then(|h| h.snapshot.as_ref());
        snap.map(|s| history::charted(s).into_iter().map(|(name, _)| name).collect()).unwrap_or_default()
    }

    /// The row under the host view's cursor.
    pub fn selected_row(&self) -> Option<String> {
        let rows = self.rows();
        match &self.row {
            Some(r) if rows.contains(r) => Some(r.clone()),
            _ => rows.into_iter().next(),
        }
    }

    /// The series the picker offers: every series of the host that contains
    /// what was typed.
    pub fn picker_matches(&self) -> Vec<String> {
        let (Some(picker), Some(snap)) = (&self.picker, self.selected_host().and_then(|h| h.snapshot.as_ref())) else {
            return Vec::new();
        };
        let needle = picker.query.to_lowercase();
        cm_proto::series::flatten(snap)
            .into_iter()
            .map(|s| s.name)
            .filter(|n| n.to_lowercase().contains(&needle))
            .collect()
    }

    /// Applies one message, then notes status changes and works out which
    /// history requests are due.
    pub fn update(&mut self, msg: Msg) -> Action {
        let action = self.apply(msg);
        self.note_status_changes();
        self.plan_fetches();
        action
    }

    /// Stamps each host whose status changed with the time it did.
    fn note_status_changes(&mut self) {
        let now = self.now_ms;
        for h in &mut self.hosts {
            let status = h.status(now);
            if status != h.last_status {
                h.last_status = status;
                h.status_since_ms = now;
                self.dirty = true;
            }
        }
    }

    /// Whether this is local mode.
    pub fn is_local(&self) -> bool {
        self.mode == Mode::Local
    }

    fn apply(&mut self, msg: Msg) -> Action {
        match msg {
            Msg::Key(key) => self.on_key(key),
            Msg::Tick(now) => {
                self.now_ms = now;
                Action::None
            }
            Msg::Snapshot { host, snapshot, received_ms } => {
                self.now_ms = self.now_ms.max(received_ms);
                let local = self.is_local();
                if let Some(h) = self.hosts.get_mut(host) {
                    if local {
                        // The in-process agent is this machine, whatever it calls itself.
                        h.name = snapshot.host.clone();
                    } else {
                        h.connection = Connection::Connected;
                    }
                    let samples = h.set_snapshot(*snapshot, received_ms);
                    let latest = h.history.latest_ms;
                    if let (Some(chart), Some(ts)) = (self.chart.as_mut().filter(|c| c.host == host), latest) {
                        if let Some(s) = samples.iter().find(|s| s.name == chart.series) {
                            chart.timeline.sample(ts, s.value);
                        }
                    }
                    self.dirty = true;
                }
                Action::None
            }
            Msg::Connection { host, connection, interval_ms } => {
                if let Some(h) = self.hosts.get_mut(host) {
                    let interval_ms = interval_ms.or(h.interval_ms);
                    // A host that stays unreachable for the same reason changes nothing on screen.
                    self.dirty |= h.connection != connection || h.interval_ms != interval_ms;
                    if connection != Connection::Connected && h.history.source == Source::Available {
                        // Nothing is asked of it until a connection says it can answer again.
                        h.history.set_source(Source::Unknown);
                    }
                    if connection != Connection::Connected && h.alerts.source == Source::Available {
                        h.alerts.set_source(Source::Unknown);
                    }
                    if std::mem::discriminant(&h.connection) != std::mem::discriminant(&connection) {
                        h.connection_since_ms = self.now_ms;
                    }
                    h.connection = connection;
                    h.interval_ms = interval_ms;
                }
                Action::None
            }
            Msg::HistorySource { host, available } => {
                if let Some(h) = self.hosts.get_mut(host) {
                    let source = match available {
                        Ok(()) => Source::Available,
                        Err(why) => Source::Unavailable(why),
                    };
                    self.dirty |= h.history.source != source;
                    if source == Source::Available {
                        if let Some(chart) = self.chart.as_mut().filter(|c| c.host == host) {
                            chart.backfill = true;
                        }
                    }
                    h.history.set_source(source);
                }
                Action::None
            }
            Msg::EventSource { host, available } => {
                if let Some(h) = self.hosts.get_mut(host) {
                    let source = match available {
                        Ok(()) => Source::Available,
                        Err(why) => Source::Unavailable(why),
                    };
                    self.dirty |= h.alerts.source != source;
                    h.alerts.set_source(source);
                }
                Action::None
            }
            Msg::HistoryAnswer { fetch, answer } => {
                // An agent that could not answer says why in the answer's end.
                let answer = answer.and_then(|a| match a.end.error {
                    Some(why) => Err(why),
                    None => Ok(a),
                });
                let now = self.now_ms;
                if let Some(h) = self.hosts.get_mut(fetch.host) {
                    if fetch.request.events {
                        self.dirty |= h.alerts.answer(fetch.id, &answer, now);
                    } else {
                        self.dirty |= h.history.answer(fetch.id, &fetch.request, &answer, now);
                    }
                }
                if let Some(chart) = self.chart.as_mut().filter(|c| c.host == fetch.host) {
                    if history::awaits(&chart.timeline, fetch.id) {
                        history::take_answer(&mut chart.timeline, &chart.series, &fetch.request, &answer, now);
                        chart.error = answer.err();
                        self.dirty = true;
                    }
                }
                Action::None
            }
            Msg::Resize { cols, rows } => {
                self.screen = (cols, rows);
                self.help_scroll = self.help_scroll.min(crate::ui::help_scroll_limit(self));
                self.dirty = true;
                Action::None
            }
            Msg::Terminate => Action::Quit,
        }
    }

    /// Queues the history requests that are due: the sparklines' of every
    /// host, and the open chart's.
    fn plan_fetches(&mut self) {
        let now = self.now_ms;
        for (i, h) in self.hosts.iter_mut().enumerate() {
            self.fetches.extend(h.history.plan(i, now, &mut self.last_fetch_id));
            // The transitions are asked for only while someone looks at them.
            let live = matches!(h.connection, Connection::Connected | Connection::Local);
            if self.view == View::Alerts && live {
                let to = h.history.clock().map_or(now, |c| now.max(c.max(0) as u64));
                self.fetches.extend(h.alerts.plan(i, now, to, &mut self.last_fetch_id));
            }
        }
        if let Some(chart) = &mut self.chart {
            let Some(h) = self.hosts.get(chart.host).filter(|h| h.history.source == Source::Available) else {
                return;
            };
            let backfill = std::mem::take(&mut chart.backfill);
            let latest = h.history.clock();
            let fetch = history::plan_chart(
                &mut chart.timeline,
                &chart.series,
                chart.host,
                latest,
                now,
                backfill,
                &mut self.last_fetch_id,
            );
            self.fetches.extend(fetch);
        }
    }

    fn open_chart(&mut self, series: String) {
        let window = self.selected_host().and_then(|h| h.history.tracks.get(&series)).map(|t| t.window);
        let range = match (&self.chart, window) {
            (Some(c), _) => c.range,
            (None, Some(w)) => Range::like(w),
            (None, None) => Range::Hour,
        };
        self.row = Some(series.clone());
        self.chart = Some(self.new_chart(series, range));
        self.view = View::Chart;
    }

    /// A chart of `series` of the selected host, holding the value shown now
    /// until its store answers and the next snapshot comes.
    fn new_chart(&self, series: String, range: Range) -> Chart {
        let mut chart = Chart::new(self.selected, series, range);
        if let Some((h, snap)) = self.selected_host().and_then(|h| Some((h, h.snapshot.as_ref()?))) {
            let now = cm_proto::series::flatten(snap).into_iter().find(|s| s.name == chart.series);
            if let (Some(s), Some(ts)) = (now, h.history.latest_ms) {
                chart.timeline.sample(ts, s.value);
            }
        }
        chart
    }

    /// Keys typed into the series picker.
    fn on_picker_key(&mut self, key: KeyEvent) {
        let matches = self.picker_matches();
        let Some(picker) = self.picker.as_mut() else { return };
        match key.code {
            KeyCode::Char(c) => {
                picker.query.push(c);
                picker.selected = 0;
            }
            KeyCode::Backspace => {
                picker.query.pop();
                picker.selected = 0;
            }
            KeyCode::Up => picker.selected = picker.selected.saturating_sub(1),
            KeyCode::Down => picker.selected = (picker.selected + 1).min(matches.len().saturating_sub(1)),
            KeyCode::Esc => self.picker = None,
            KeyCode::Enter => {
                if let Some(series) = matches.get(picker.selected).cloned() {
                    self.picker = None;
                    self.open_chart(series);
                }
            }
            _ => {}
        }
        self.dirty = true;
    }

    /// Moves the row cursor (or the chart's series) by `by` rows, wrapping around.
    fn step_row(&mut self, by: isize) {
        let rows = self.rows();
        if rows.is_empty() {
            return;
        }
        let current = match (&self.view, &self.chart) {
            (View::Chart, Some(c)) => Some(c.series.clone()),
            _ => self.selected_row(),
        };
        let at = current.and_then(|c| rows.iter().position(|r| *r == c));
        let next = match at {
            Some(at) => (at as isize + by).rem_euclid(rows.len() as isize) as usize,
            None => 0,
        };
        let series = rows[next].clone();
        if self.view == View::Chart {
            self.open_chart(series);
        } else {
            self.row = Some(series);
        }
    }

    /// Applies a key; one bound to nothing here changes nothing on screen.
    fn on_key(&mut self, key: KeyEvent) -> Action {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return Action::Quit;
        }
        if self.picker.is_some() {
            self.on_picker_key(key);
            return Action::None;
        }
        if self.filtering {
            let alerts = self.view == View::Alerts;
            let filter = if alerts { &mut self.alerts_filter } else { &mut self.filter };
            match key.code {
                KeyCode::Char(c) => filter.push(c),
                KeyCode::Backspace => {
                    filter.pop();
                }
                KeyCode::Esc => {
                    filter.clear();
                    self.filtering = false;
                }
                KeyCode::Enter => self.filtering = false,
                _ => {}
            }
            if alerts {
                self.alerts_scroll = 0;
            } else {
                self.keep_selection_visible();
            }
            self.dirty = true;
            return Action::None;
        }
        // While the help is open, its own keys and those of every view apply.
        let scope = if self.show_help { Scope::Help } else { self.scope() };
        // A view's own binding of a key comes before the one of every view.
        let bound = |wanted: Scope| KEYS.iter().find(|(code, _, s, ..)| *code == key.code && *s == wanted);
        let Some(&(_, command, ..)) = bound(scope).or_else(|| bound(Scope::Everywhere)) else {
            return Action::None;
        };
        match command {
            Command::Quit => return Action::Quit,
            Command::Help => {
                self.show_help = !self.show_help;
                self.help_scroll = 0;
            }
            // The fleet's protocol has no way to ask an agent for a snapshot now.
            Command::Refresh if !self.is_local() => return Action::None,
            Command::Refresh => return Action::Refresh,
            Command::ScrollHelp(by) => {
                let limit = crate::ui::help_scroll_limit(self);
                let to = (i64::from(self.help_scroll) + i64::from(by)).clamp(0, i64::from(limit)) as u16;
                if to == self.help_scroll {
                    return Action::None;
                }
                self.help_scroll = to;
            }
            Command::Back => {
                if self.show_help {
                    self.show_help = false;
                } else if self.view == View::Alerts {
                    self.view = self.alerts_from;
                } else if self.view == View::Chart {
                    self.chart = None;
                    self.view = View::Host;
                } else if !self.is_local() {
                    self.view = View::Overview;
                }
            }
            // A filter that matches nothing leaves no host to open.
            Command::ToggleView | Command::Open if self.view == View::Overview && !self.shows_selected() => {
                return Action::None;
            }
            Command::ToggleView if !self.is_local() => {
                self.chart = None;
                self.view = if self.view == View::Overview { View::Host } else { View::Overview };
            }
            Command::ToggleView => {}
            Command::Open => self.view = View::Host,
            Command::Up => self.step(-1),
            Command::Down | Command::NextHost => self.step(1),
            Command::PrevHost => self.step(-1),
            Command::Sort => self.sort = self.sort.next(),
            Command::Filter => self.filtering = true,
            Command::Group => self.group_by_role = !self.group_by_role,
            Command::PrevRow => self.step_row(-1),
            Command::NextRow => self.step_row(1),
            Command::Chart => match self.selected_row() {
                Some(series) => self.open_chart(series),
                None => return Action::None,
            },
            Command::Pick => self.picker = Some(Picker::default()),
            // Pressed in the alerts view (its help open): back, as `a` is there.
            Command::Alerts if self.view == View::Alerts => {
                self.show_help = false;
                self.view = self.alerts_from;
            }
            Command::Alerts => {
                self.alerts_from = self.view;
                self.view = View::Alerts;
                self.alerts_scroll = 0;
                for h in &mut self.hosts {
                    h.alerts.ask_now();
                }
            }
            Command::MinSeverity => {
                self.min_severity = self.min_severity.next();
                self.alerts_scroll = 0;
            }
            Command::ScrollAlerts(by) => {
                let limit = crate::ui::alerts_scroll_limit(self);
                // From where the screen is: the list may have shrunk since.
                let from = self.alerts_scroll.min(limit);
                let by = match by {
                    PAGE_DOWN => crate::ui::alerts_page(self),
                    PAGE_UP => -crate::ui::alerts_page(self),
                    by => by,
                };
                let to = (i64::from(from) + i64::from(by)).clamp(0, i64::from(limit)) as u16;
                if to == self.alerts_scroll {
                    return Action::None;
                }
                self.alerts_scroll = to;
            }
            Command::ShowRange(range) => {
                let Some(chart) = self.chart.as_ref().filter(|c| c.range != range) else { return Action::None };
                self.chart = Some(self.new_chart(chart.series.clone(), range));
            }
        }
        self.dirty = true;
        Action::None
    }

    /// Where the keys apply now.
    pub fn scope(&self) -> Scope {
        match self.view {
            View::Overview => Scope::Overview,
            View::Host => Scope::Host,
            View::Chart => Scope::Chart,
            View::Alerts => Scope::Alerts,
        }
    }

    /// Moves the selection through the overview's order, wrapping around.
    fn step(&mut self, by: isize) {
        let order = self.order();
        if order.is_empty() {
            return;
        }
        let at = order.iter().position(|&i| i == self.selected).unwrap_or(0) as isize;
        let next = (at + by).rem_euclid(order.len() as isize) as usize;
        self.selected = order[next];
    }

    /// Whether the overview lists the selected host (a filter may hide it).
    pub fn shows_selected(&self) -> bool {
        self.order().contains(&self.selected)
    }

    fn keep_selection_visible(&mut self) {
        let order = self.order();
        if !order.contains(&self.selected) {
            if let Some(&first) = order.first() {
                self.selected = first;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cm_proto::{Cpu, Memory};

    fn key(c: char) -> Msg {
        Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
    }

    fn code(c: KeyCode) -> Msg {
        Msg::Key(KeyEvent::new(c, KeyModifiers::NONE))
    }

    #[test]
    fn keys_quit_toggle_help_and_refresh() {
        let mut app = App::local(0);
        assert_eq!(app.update(key('?')), Action::None);
        assert!(app.show_help);
        assert_eq!(app.update(code(KeyCode::Esc)), Action::None);
        assert!(!app.show_help);
        assert_eq!(app.update(key('r')), Action::Refresh);
        assert_eq!(app.update(key('x')), Action::None);
        assert_eq!(app.update(key('q')), Action::Quit);
        assert_eq!(app.update(Msg::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL))), Action::Quit);
        assert_eq!(app.update(Msg::Terminate), Action::Quit);
    }

    #[test]
    fn local_snapshot_names_the_host_and_stamps_its_arrival() {
        let mut app = App::local(1_000);
        assert_eq!(app.hosts[0].status(1_000), Status::Unknown);
        let snap = HostSnapshot { host: "srv01".into(), seq: 1, ..Default::default() };
        app.update(Msg::Snapshot { host: 0, snapshot: Box::new(snap), received_ms: 1_500 });
        let host = app.selected_host().unwrap();
        assert_eq!(host.name, "srv01");
        assert_eq!(host.received_ms, Some(1_500));
        assert_eq!(app.now_ms, 1_500);
    }

    fn fleet() -> App {
        let snap = |host: &str, cpu: f64, ram: u64, status: Status| HostSnapshot {
            host: host.into(),
            cpu: Some(Cpu { utilisation_percent: Some(cpu), ..Default::default() }),
            memory: Some(Memory { total_bytes: 100, used_bytes: ram, status, ..Default::default() }),
            ..Default::default()
        };
        let hosts = vec![
            HostEntry::new("srv01", "server", Connection::Connecting),
            HostEntry::new("steambox", "workstation", Connection::Connecting),
            HostEntry::new("simonbox", "workstation", Connection::Connecting),
            HostEntry::new("labbox", "lab", Connection::Connecting),
        ];
        let mut app = App::remote(hosts, 1_000);
        app.update(Msg::Snapshot {
            host: 0,
            snapshot: Box::new(snap("srv01", 8.0, 32, Status::Ok)),
            received_ms: 1_000,
        });
        app.update(Msg::Snapshot {
            host: 1,
            snapshot: Box::new(snap("steambox", 12.0, 85, Status::Warning)),
            received_ms: 1_000,
        });
        app.update(Msg::Snapshot {
            host: 2,
            snapshot: Box::new(snap("simonbox", 3.0, 67, Status::Ok)),
            received_ms: 1_000,
        });
        app.update(Msg::Connection {
            host: 3,
            connection: Connection::Unreachable { reason: "timed out".into() },
            interval_ms: None,
        });
        app
    }

    fn names(app: &App) -> Vec<&str> {
        app.order().iter().map(|&i| app.hosts[i].name.as_str()).collect()
    }

    #[test]
    fn the_overview_puts_the_worst_first_and_sorts_on_request() {
        let mut app = fleet();
        assert_eq!(names(&app), ["labbox", "steambox", "simonbox", "srv01"]);
        app.update(key('s'));
        assert_eq!(names(&app), ["labbox", "simonbox", "srv01", "steambox"], "by name");
        app.update(key('s'));
        assert_eq!(names(&app), ["steambox", "srv01", "simonbox", "labbox"], "by cpu");
        app.update(key('g'));
        assert_eq!(names(&app), ["labbox", "srv01", "steambox", "simonbox"], "grouped by role, then cpu");
    }

    #[test]
    fn filtering_by_typing() {
        let mut app = fleet();
        app.update(key('/'));
        for c in "box".chars() {
            app.update(key(c));
        }
        app.update(code(KeyCode::Enter));
        assert_eq!(names(&app), ["labbox", "steambox", "simonbox"]);
        app.update(key('f'));
        app.update(code(KeyCode::Esc));
        assert_eq!(names(&app).len(), 4, "Esc clears the filter");
        app.update(key('f'));
        for c in "work".chars() {
            app.update(key(c));
        }
        assert_eq!(names(&app), ["steambox", "simonbox"], "roles match too");
        assert!(["steambox", "simonbox"].contains(&app.selected_host().unwrap().name.as_str()));
    }

    #[test]
    fn enter_opens_the_selected_host_and_arrows_move_between_hosts() {
        let mut app = fleet();
        assert_eq!(app.view, View::Overview);
        app.update(code(KeyCode::Down));
        assert_eq!(app.selected_host().unwrap().name, "steambox");
        app.update(code(KeyCode::Enter));
        assert_eq!(app.view, View::Host);
        app.update(code(KeyCode::Right));
        assert_eq!(app.selected_host().unwrap().name, "simonbox");
        app.update(key('h'));
        app.update(key('h'));
        assert_eq!(app.selected_host().unwrap().name, "labbox");
        app.update(key('h'));
        assert_eq!(app.selected_host().unwrap().name, "srv01", "wraps around");
        app.update(code(KeyCode::Tab));
        assert_eq!(app.view, View::Overview);
    }

    /// 2025-11-24 16:00 UTC.
    const T0: u64 = 1_764_000_000_000;

    /// A host with a CPU, memory, an SSD with wear and temperature, `/` on it and a tmpfs.
    fn host_snapshot(at_ms: u64, memory_used: u64) -> HostSnapshot {
        use cm_proto::{Drive, DriveHealth, Filesystem, Tmpfs};
        HostSnapshot {
            host: "srv01".into(),
            timestamp_ms: at_ms,
            cpu: Some(Cpu { utilisation_percent: Some(12.0), ..Default::default() }),
            memory: Some(Memory {
                total_bytes: 100,
                used_bytes: memory_used,
                tmpfs: vec![Tmpfs { mount_point: "/tmp".into(), size_bytes: 100, used_bytes: 25 }],
                ..Default::default()
            }),
            drives: vec![Drive {
                name: "nvme0n1".into(),
                health: Some(DriveHealth {
                    wear_percent: Some(4.0),
                    temperature_celsius: Some(40.0),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            filesystems: vec![Filesystem {
                mount_point: "/".into(),
                drive: Some("nvme0n1".into()),
                used_bytes: 40,
                available_bytes: 60,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    /// A local app whose store answers, with one snapshot in.
    fn with_history() -> App {
        let mut app = App::local(T0);
        app.update(Msg::HistorySource { host: 0, available: Ok(()) });
        app.update(Msg::Snapshot { host: 0, snapshot: Box::new(host_snapshot(T0, 40)), received_ms: T0 });
        app
    }

    /// Answers every fetch waiting with what `value` says the store holds.
    fn answer_all(app: &mut App, value: impl Fn(&str, i64) -> f64) -> Vec<Fetch> {
        let fetches = app.take_fetches();
        for fetch in &fetches {
            let answer = Ok(history::synthetic_answer(&fetch.request, &value));
            app.update(Msg::HistoryAnswer { fetch: fetch.clone(), answer });
        }
        fetches
    }

    #[test]
    fn the_first_snapshot_with_history_asks_for_each_sparkline_window() {
        let mut app = with_history();
        let fetches = app.take_fetches();
        let asked: Vec<(Vec<&str>, i64)> = fetches
            .iter()
            .map(|f| (f.request.series.iter().map(String::as_str).collect(), T0 as i64 + 1 - f.request.from_ms))
            .collect();
        assert_eq!(
            asked,
            [
                (
                    vec!["cpu.utilisation_percent", "drive.nvme0n1.temperature_celsius", "memory.used_percent"],
                    3_600_001
                ),
                (vec!["fs./.used_percent"], 86_400_001),
                // 30 days back, to the start of a 6-hour bucket.
                (vec!["drive.nvme0n1.wear_percent"], 30 * 86_400_000 + 4 * 3_600_000 + 1),
            ]
        );
        assert!(app.take_fetches().is_empty(), "asked once");
        let mut local_only = App::local(T0);
        local_only.update(Msg::Snapshot { host: 0, snapshot: Box::new(host_snapshot(T0, 40)), received_ms: T0 });
        assert!(local_only.take_fetches().is_empty(), "no store said it can answer: nothing asked");
    }

    #[test]
    fn enter_charts_the_row_and_number_keys_switch_its_range() {
        let mut app = with_history();
        answer_all(&mut app, |_, _| 30.0);
        assert_eq!(
            app.rows(),
            [
                "cpu.utilisation_percent",
                "memory.used_percent",
                "drive.nvme0n1.wear_percent",
                "drive.nvme0n1.temperature_celsius",
                "fs./.used_percent"
            ]
        );
        assert_eq!(app.selected_row().as_deref(), Some("cpu.utilisation_percent"));
        for _ in 0..4 {
            app.update(code(KeyCode::Down));
        }
        app.update(code(KeyCode::Enter));
        assert_eq!(app.view, View::Chart);
        let chart = app.chart.as_ref().unwrap();
        assert_eq!((chart.series.as_str(), chart.range), ("fs./.used_percent", Range::Day), "the sparkline's own span");
        let fetched = answer_all(&mut app, |_, ts| (ts % 100) as f64);
        assert_eq!(fetched.len(), 1);
        assert_eq!(fetched[0].request.resolution, cm_proto::history::Resolution::Minute);
        assert!(app.chart.as_ref().unwrap().timeline.has_stored());

        app.update(key('1'));
        let chart = app.chart.as_ref().unwrap();
        assert_eq!(chart.range, Range::Hour);
        assert!(!chart.timeline.has_stored(), "a new range starts empty");
        let fetched = app.take_fetches();
        assert_eq!(fetched[0].request.resolution, cm_proto::history::Resolution::Raw, "an hour of raw samples");
        assert_eq!(fetched[0].request.from_ms, T0 as i64 - 3_600_000);
        app.dirty = false;
        app.update(key('1'));
        assert!(!app.dirty && app.take_fetches().is_empty(), "the range shown already: nothing to do");
        app.update(key('4'));
        assert_eq!(app.chart.as_ref().unwrap().range, Range::Month);
        assert_eq!(app.take_fetches()[0].request.resolution, cm_proto::history::Resolution::Hour);

        app.update(code(KeyCode::Down));
        let chart = app.chart.as_ref().unwrap();
        assert_eq!(
            (chart.series.as_str(), chart.range),
            ("cpu.utilisation_percent", Range::Month),
            "the next row, wrapping, same range"
        );
        app.update(code(KeyCode::Esc));
        assert_eq!((app.view, app.chart.is_none()), (View::Host, true));
        assert_eq!(app.selected_row().as_deref(), Some("cpu.utilisation_percent"), "the cursor follows the chart");
        app.update(key('1'));
        assert_eq!(app.view, View::Host, "range keys mean nothing outside the chart");
    }

    #[test]
    fn the_picker_charts_any_series_by_part_of_its_name() {
        let mut app = with_history();
        app.update(key('g'));
        for c in "tmp.used".chars() {
            app.update(key(c));
        }
        assert_eq!(app.picker_matches(), ["fs./tmp.used_bytes", "fs./tmp.used_percent"]);
        app.update(code(KeyCode::Down));
        app.update(code(KeyCode::Down));
        assert_eq!(app.picker.as_ref().unwrap().selected, 1, "stops at the last match");
        app.update(key('q'));
        assert!(app.picker.is_some(), "q is a letter while typing, not quit");
        app.update(code(KeyCode::Backspace));
        assert_eq!(app.picker.as_ref().unwrap().selected, 0, "typing starts at the first match again");
        app.update(code(KeyCode::Down));
        app.update(code(KeyCode::Enter));
        assert_eq!(app.view, View::Chart);
        assert_eq!(app.chart.as_ref().unwrap().series, "fs./tmp.used_percent");
        assert_eq!(app.chart.as_ref().unwrap().range, Range::Hour, "a series without a sparkline starts at an hour");
        app.update(key('g'));
        app.update(code(KeyCode::Esc));
        assert!(app.picker.is_none() && app.view == View::Chart, "Esc leaves the picker only");
    }

    #[test]
    fn the_chart_takes_its_answers_and_the_live_samples_after_them() {
        let mut app = with_history();
        app.take_fetches();
        app.update(key('g'));
        for c in "memory.used_percent".chars() {
            app.update(key(c));
        }
        app.update(code(KeyCode::Enter));
        let fetch = app.take_fetches().pop().unwrap();
        let unknown = Fetch { id: 999, ..fetch.clone() };
        app.update(Msg::HistoryAnswer {
            answer: Ok(history::synthetic_answer(&unknown.request, |_, _| 1.0)),
            fetch: unknown,
        });
        assert!(!app.chart.as_ref().unwrap().timeline.has_stored(), "an answer to nothing asked is ignored");
        let answer = history::synthetic_answer(&fetch.request, |_, _| 20.0);
        app.update(Msg::HistoryAnswer { fetch, answer: Ok(answer) });
        app.update(Msg::Snapshot {
            host: 0,
            snapshot: Box::new(host_snapshot(T0 + 2_000, 90)),
            received_ms: T0 + 2_000,
        });
        let chart = app.chart.as_ref().unwrap();
        let figures = chart.timeline.summary(T0 as i64 + 2_000).unwrap();
        assert_eq!((figures.min, figures.max), (20.0, 90.0));
        assert_eq!(chart.timeline.last, Some((T0 as i64 + 2_000, 90.0)));
        let failed = {
            app.update(key('2'));
            app.take_fetches().pop().unwrap()
        };
        app.update(Msg::HistoryAnswer { fetch: failed, answer: Err("the store is locked".into()) });
        assert_eq!(app.chart.as_ref().unwrap().error.as_deref(), Some("the store is locked"));
        // An agent that keeps no history answers, with the reason in the end.
        app.update(Msg::Tick(T0 + 60_000));
        let refused = app.take_fetches().into_iter().find(|f| f.request.series == ["memory.used_percent"]).unwrap();
        let mut answer = history::synthetic_answer(&refused.request, |_, _| 0.0);
        answer.end.error = Some("this agent keeps no history".into());
        app.update(Msg::HistoryAnswer { fetch: refused, answer: Ok(answer) });
        let chart = app.chart.as_ref().unwrap();
        assert_eq!(chart.error.as_deref(), Some("this agent keeps no history"));
        assert!(!chart.timeline.has_stored(), "an answer with an error holds no points to take");
    }

    #[test]
    fn a_host_that_comes_back_is_asked_for_what_it_missed() {
        let mut app = App::remote(vec![HostEntry::new("srv01", "server", Connection::Connecting)], T0);
        let connected = || Msg::Connection { host: 0, connection: Connection::Connected, interval_ms: Some(2000) };
        app.update(connected());
        app.update(Msg::HistorySource { host: 0, available: Ok(()) });
        app.update(Msg::Snapshot { host: 0, snapshot: Box::new(host_snapshot(T0, 40)), received_ms: T0 });
        answer_all(&mut app, |_, _| 40.0);
        let down = Connection::Unreachable { reason: "timed out".into() };
        app.update(Msg::Connection { host: 0, connection: down, interval_ms: None });
        app.update(Msg::Tick(T0 + 600_000));
        assert!(app.take_fetches().is_empty(), "nothing is asked of a host that is away");
        // Back 20 minutes later; its first snapshot moves its clock on.
        let back = T0 + 1_200_000;
        app.update(Msg::Tick(back));
        app.update(connected());
        app.update(Msg::HistorySource { host: 0, available: Ok(()) });
        assert!(app.take_fetches().is_empty(), "the host's clock is not known until it sends");
        app.update(Msg::Snapshot { host: 0, snapshot: Box::new(host_snapshot(back, 40)), received_ms: back });
        let fetches = app.take_fetches();
        assert_eq!(fetches.len(), 3, "every window, at once");
        for f in &fetches {
            assert_eq!(f.request.to_ms, back as i64 + 1);
            let bucket = if f.request.series[0].contains("wear") {
                21_600_000
            } else if f.request.series[0].starts_with("fs.") {
                900_000
            } else {
                60_000
            };
            assert_eq!(
                f.request.from_ms,
                (T0 as i64).div_euclid(bucket) * bucket,
                "from the bucket the last answer ended in: {f:?}"
            );
        }
    }

    #[test]
    fn an_agent_without_history_is_never_asked() {
        let mut app = App::remote(vec![HostEntry::new("srv01", "server", Connection::Connecting)], T0);
        app.update(Msg::HistorySource { host: 0, available: Err("agent 0.1.0 speaks protocol 1.1".into()) });
        app.update(Msg::Snapshot { host: 0, snapshot: Box::new(host_snapshot(T0, 40)), received_ms: T0 });
        app.update(Msg::Tick(T0 + 3_600_000));
        assert!(app.take_fetches().is_empty());
        assert_eq!(app.hosts[0].history.source, Source::Unavailable("agent 0.1.0 speaks protocol 1.1".into()));
        let samples = app.hosts[0].history.tracks["memory.used_percent"].points().len();
        assert_eq!(samples, 1, "the sparklines still take live samples");
    }

    #[test]
    fn enter_with_a_filter_that_matches_nothing_opens_nothing() {
        let mut app = fleet();
        app.update(key('/'));
        for c in "nosuchhost".chars() {
            app.update(key(c));
        }
        app.update(code(KeyCode::Enter)); // keeps the filter
        assert!(app.order().is_empty());
        app.dirty = false;
        assert_eq!(app.update(code(KeyCode::Enter)), Action::None);
        assert_eq!((app.view, app.dirty), (View::Overview, false), "no host matches: nothing opens");
        app.update(code(KeyCode::Tab));
        assert_eq!(app.view, View::Overview, "nor with Tab");
        app.update(key('f'));
        app.update(code(KeyCode::Esc));
        app.update(code(KeyCode::Enter));
        assert_eq!(app.view, View::Host, "with the filter gone, Enter opens the selected host");
    }

    #[test]
    fn refresh_is_for_the_local_agent_only() {
        let mut app = fleet();
        app.dirty = false;
        assert_eq!(app.update(key('r')), Action::None, "the fleet's protocol has no refresh request");
        assert!(!app.dirty);
        assert_eq!(App::local(0).update(key('r')), Action::Refresh);
    }

    #[test]
    fn the_help_scrolls_as_far_as_it_is_long_and_no_further() {
        let mut app = fleet();
        app.update(Msg::Resize { cols: 40, rows: 12 });
        app.update(key('?'));
        let limit = crate::ui::help_scroll_limit(&app);
        assert!(limit > 5, "the help is taller than 12 rows: {limit}");
        app.update(code(KeyCode::Down));
        assert_eq!(app.help_scroll, 1);
        app.update(code(KeyCode::PageDown));
        assert_eq!(app.help_scroll, 11.min(limit));
        app.update(code(KeyCode::End));
        assert_eq!(app.help_scroll, limit);
        app.dirty = false;
        app.update(code(KeyCode::Down));
        assert_eq!((app.help_scroll, app.dirty), (limit, false), "the end is the end");
        app.update(code(KeyCode::Home));
        assert_eq!(app.help_scroll, 0);
        assert_eq!(app.selected_host().unwrap().name, "labbox", "arrows scroll the help, not the selection");
        app.update(Msg::Resize { cols: 200, rows: 80 });
        assert_eq!(crate::ui::help_scroll_limit(&app), 0, "all of it fits");
        app.update(code(KeyCode::Esc));
        assert!(!app.show_help);
    }

    #[test]
    fn each_host_says_since_when_it_has_its_status() {
        let mut app = fleet();
        let since = |app: &App, i: usize| (app.hosts[i].last_status, app.hosts[i].status_since_ms);
        assert_eq!(since(&app, 3), (Status::Critical, 1_000), "unreachable since the start");
        app.hosts[0].interval_ms = Some(2_000);
        app.update(Msg::Tick(5_000));
        assert_eq!(since(&app, 0), (Status::Ok, 1_000), "a tick that changes nothing keeps the time");
        app.update(Msg::Tick(12_000));
        assert_eq!(since(&app, 0), (Status::Warning, 12_000), "stale from the tick that saw it");
        let snap = HostSnapshot {
            host: "srv01".into(),
            cpu: Some(Cpu { utilisation_percent: Some(8.0), ..Default::default() }),
            ..Default::default()
        };
        app.update(Msg::Snapshot { host: 0, snapshot: Box::new(snap), received_ms: 13_000 });
        assert_eq!(since(&app, 0), (Status::Ok, 13_000), "live again");
        assert_eq!(app.hosts[3].connection_since_ms, 1_000);
        app.update(Msg::Connection { host: 3, connection: Connection::Connected, interval_ms: None });
        assert_eq!(app.hosts[3].connection_since_ms, 13_000);
    }

    #[test]
    fn an_unreachable_host_is_not_stale_but_its_values_are_old() {
        let mut app = fleet();
        app.update(Msg::Connection {
            host: 0,
            connection: Connection::Unreachable { reason: "timed out".into() },
            interval_ms: None,
        });
        let srv = &app.hosts[0];
        assert!(!srv.is_stale(60_000), "unreachable, not stale: the connection is gone");
        assert!(srv.is_old(1_000), "its last values are not live");
        assert_eq!(srv.headline(1_000).as_deref(), Some("unreachable: timed out"));
        assert!(!app.hosts[1].is_old(1_000));
        assert!(app.hosts[1].is_old(20_000), "silent for 19 s: stale, old");
    }

    #[test]
    fn unreachable_is_critical_and_silence_goes_stale() {
        let mut app = fleet();
        assert_eq!(app.hosts[3].status(1_000), Status::Critical);
        app.hosts[0].interval_ms = Some(2_000);
        assert!(!app.hosts[0].is_stale(9_000));
        assert!(app.hosts[0].is_stale(12_000));
        assert_eq!(app.hosts[0].status(12_000), Status::Warning);
        app.update(Msg::Connection { host: 9, connection: Connection::Connected, interval_ms: None });
    }
}
