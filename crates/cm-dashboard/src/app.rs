//! Application state and the one place it changes: [`App::update`].
//!
//! Everything here is pure: messages in, state and an [`Action`] out. The event
//! loop in `main.rs` does the I/O.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde::Serialize;

use cm_proto::{HostSnapshot, Status};

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
    /// Short words for the title bar.
    pub fn label(&self) -> String {
        match self {
            Connection::Local => "local".into(),
            Connection::Connecting => "connecting".into(),
            Connection::Connected => "connected".into(),
            Connection::Unreachable { reason } => format!("unreachable: {reason}"),
        }
    }
}

/// One monitored host as the dashboard knows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostEntry {
    pub name: String,
    /// The group the fleet config puts it in (server, workstation, lab...).
    pub role: String,
    pub connection: Connection,
    /// When the latest snapshot arrived, milliseconds since the Unix epoch.
    pub received_ms: Option<u64>,
    /// The agent's collection interval, from its Welcome.
    pub interval_ms: Option<u64>,
    pub snapshot: Option<HostSnapshot>,
    /// What the overview shows of `snapshot`, worked out when it arrived.
    #[serde(skip)]
    pub summary: Option<Summary>,
}

impl HostEntry {
    pub fn new(name: &str, role: &str, connection: Connection) -> Self {
        Self {
            name: name.into(),
            role: role.into(),
            connection,
            received_ms: None,
            interval_ms: None,
            snapshot: None,
            summary: None,
        }
    }

    /// Takes `snapshot` as the host's latest, with its summary.
    fn set_snapshot(&mut self, snapshot: HostSnapshot, received_ms: u64) {
        self.summary = Some(Summary::of(&snapshot));
        self.snapshot = Some(snapshot);
        self.received_ms = Some(received_ms);
    }

    /// True when the latest snapshot is older than three intervals (at least 10 s).
    pub fn is_stale(&self, now_ms: u64) -> bool {
        let Some(at) = self.received_ms else { return false };
        let limit = self.interval_ms.map_or(10_000, |i| (3 * i).max(10_000));
        now_ms.saturating_sub(at) > limit
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

/// Which screen is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum View {
    Overview,
    Host,
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
}

/// Where a binding applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Everywhere,
    Overview,
    Host,
}

/// The key bindings, as data: the help screen and the key bar are drawn from this.
pub const KEYS: &[(KeyCode, Command, Scope, &str, &str)] = &[
    (KeyCode::Char('q'), Command::Quit, Scope::Everywhere, "q", "quit"),
    (KeyCode::Char('?'), Command::Help, Scope::Everywhere, "?", "help"),
    (KeyCode::Char('r'), Command::Refresh, Scope::Everywhere, "r", "refresh now"),
    (KeyCode::Esc, Command::Back, Scope::Everywhere, "Esc", "close help / back"),
    (KeyCode::Tab, Command::ToggleView, Scope::Everywhere, "Tab", "overview / host"),
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
    /// The terminal was resized; the next draw uses the new size.
    Resize,
    /// A signal asked the dashboard to stop.
    Terminate,
}

/// What the event loop should do after an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    None,
    Quit,
    /// Ask the sources for fresh data now.
    Refresh,
}

/// The whole dashboard state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct App {
    /// `local` (this machine through the in-process agent) or `remote` (a fleet).
    pub mode: &'static str,
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
    /// The latest clock tick, milliseconds since the Unix epoch.
    pub now_ms: u64,
    /// Something on screen changed since the last frame; the event loop draws
    /// and clears it. The clock alone does not set it.
    #[serde(skip)]
    pub dirty: bool,
}

impl App {
    /// Local mode: one host, served by the in-process agent.
    pub fn local(now_ms: u64) -> Self {
        Self::with_hosts("local", vec![HostEntry::new("localhost", "", Connection::Local)], View::Host, now_ms)
    }

    /// Remote mode: the fleet from the config, starting on the overview.
    pub fn remote(hosts: Vec<HostEntry>, now_ms: u64) -> Self {
        Self::with_hosts("remote", hosts, View::Overview, now_ms)
    }

    fn with_hosts(mode: &'static str, hosts: Vec<HostEntry>, view: View, now_ms: u64) -> Self {
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
            now_ms,
            dirty: true,
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

    /// Applies one message.
    pub fn update(&mut self, msg: Msg) -> Action {
        match msg {
            Msg::Key(key) => self.on_key(key),
            Msg::Tick(now) => {
                self.now_ms = now;
                Action::None
            }
            Msg::Snapshot { host, snapshot, received_ms } => {
                self.now_ms = self.now_ms.max(received_ms);
                let local = self.mode == "local";
                if let Some(h) = self.hosts.get_mut(host) {
                    if local {
                        // The in-process agent is this machine, whatever it calls itself.
                        h.name = snapshot.host.clone();
                    } else {
                        h.connection = Connection::Connected;
                    }
                    h.set_snapshot(*snapshot, received_ms);
                    self.dirty = true;
                }
                Action::None
            }
            Msg::Connection { host, connection, interval_ms } => {
                if let Some(h) = self.hosts.get_mut(host) {
                    let interval_ms = interval_ms.or(h.interval_ms);
                    // A host that stays unreachable for the same reason changes nothing on screen.
                    self.dirty |= h.connection != connection || h.interval_ms != interval_ms;
                    h.connection = connection;
                    h.interval_ms = interval_ms;
                }
                Action::None
            }
            Msg::Resize => {
                self.dirty = true;
                Action::None
            }
            Msg::Terminate => Action::Quit,
        }
    }

    /// Applies a key; one bound to nothing here changes nothing on screen.
    fn on_key(&mut self, key: KeyEvent) -> Action {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return Action::Quit;
        }
        if self.filtering {
            match key.code {
                KeyCode::Char(c) => self.filter.push(c),
                KeyCode::Backspace => {
                    self.filter.pop();
                }
                KeyCode::Esc => {
                    self.filter.clear();
                    self.filtering = false;
                }
                KeyCode::Enter => self.filtering = false,
                _ => {}
            }
            self.keep_selection_visible();
            self.dirty = true;
            return Action::None;
        }
        let scope = match self.view {
            View::Overview => Scope::Overview,
            View::Host => Scope::Host,
        };
        let Some(&(_, command, ..)) =
            KEYS.iter().find(|(code, _, s, ..)| *code == key.code && (*s == scope || *s == Scope::Everywhere))
        else {
            return Action::None;
        };
        match command {
            Command::Quit => return Action::Quit,
            Command::Help => self.show_help = !self.show_help,
            Command::Refresh => return Action::Refresh,
            Command::Back => {
                if self.show_help {
                    self.show_help = false;
                } else if self.mode == "remote" {
                    self.view = View::Overview;
                }
            }
            Command::ToggleView if self.mode == "remote" => {
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
        }
        self.dirty = true;
        Action::None
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
