//! Application state and the one place it changes: [`App::update`].
//!
//! Everything here is pure: messages in, state and an [`Action`] out. The event
//! loop in `main.rs` does the I/O.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde::Serialize;

use cm_proto::{HostSnapshot, Status};

/// How the dashboard reaches a host.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Connection {
    /// The in-process agent of local mode.
    Local,
}

impl Connection {
    /// Short words for the title bar.
    pub fn label(&self) -> String {
        match self {
            Connection::Local => "local".into(),
        }
    }
}

/// One monitored host as the dashboard knows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostEntry {
    pub name: String,
    pub connection: Connection,
    /// When the latest snapshot arrived, milliseconds since the Unix epoch.
    pub received_ms: Option<u64>,
    pub snapshot: Option<HostSnapshot>,
}

impl HostEntry {
    /// The host's worst status; unknown while nothing has arrived.
    pub fn status(&self) -> Status {
        self.snapshot.as_ref().map_or(Status::Unknown, HostSnapshot::worst_status)
    }
}

/// Things the user can ask for; keys map onto these through [`KEYS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Quit,
    Help,
    Refresh,
    CloseOverlay,
}

/// The key bindings, as data: the help screen and the key bar are drawn from this.
pub const KEYS: &[(KeyCode, Command, &str, &str)] = &[
    (KeyCode::Char('q'), Command::Quit, "q", "quit"),
    (KeyCode::Char('?'), Command::Help, "?", "help"),
    (KeyCode::Char('r'), Command::Refresh, "r", "refresh now"),
    (KeyCode::Esc, Command::CloseOverlay, "Esc", "close help"),
];

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    Key(KeyEvent),
    /// The clock moved on (milliseconds since the Unix epoch).
    Tick(u64),
    /// A snapshot arrived, stamped with when it arrived.
    Snapshot {
        snapshot: Box<HostSnapshot>,
        received_ms: u64,
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
    /// `local`: this machine through the in-process agent.
    pub mode: &'static str,
    pub hosts: Vec<HostEntry>,
    pub selected: usize,
    pub show_help: bool,
    /// The latest clock tick, milliseconds since the Unix epoch.
    pub now_ms: u64,
}

impl App {
    /// Local mode: one host, served by the in-process agent.
    pub fn local(now_ms: u64) -> Self {
        let host =
            HostEntry { name: "localhost".into(), connection: Connection::Local, received_ms: None, snapshot: None };
        Self { mode: "local", hosts: vec![host], selected: 0, show_help: false, now_ms }
    }

    /// The host shown in the host view.
    pub fn selected_host(&self) -> Option<&HostEntry> {
        self.hosts.get(self.selected)
    }

    /// Applies one message.
    pub fn update(&mut self, msg: Msg) -> Action {
        match msg {
            Msg::Key(key) => self.on_key(key),
            Msg::Tick(now) => {
                self.now_ms = now;
                Action::None
            }
            Msg::Snapshot { snapshot, received_ms } => {
                self.now_ms = self.now_ms.max(received_ms);
                // Local mode has one host: the in-process agent, whatever it calls itself.
                if let Some(host) = self.hosts.first_mut() {
                    host.name = snapshot.host.clone();
                    host.received_ms = Some(received_ms);
                    host.snapshot = Some(*snapshot);
                }
                Action::None
            }
            Msg::Resize => Action::None,
            Msg::Terminate => Action::Quit,
        }
    }

    fn on_key(&mut self, key: KeyEvent) -> Action {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return Action::Quit;
        }
        let Some(&(_, command, _, _)) = KEYS.iter().find(|(code, ..)| *code == key.code) else {
            return Action::None;
        };
        match command {
            Command::Quit => Action::Quit,
            Command::Help => {
                self.show_help = !self.show_help;
                Action::None
            }
            Command::CloseOverlay => {
                self.show_help = false;
                Action::None
            }
            Command::Refresh => Action::Refresh,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: char) -> Msg {
        Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
    }

    #[test]
    fn keys_quit_toggle_help_and_refresh() {
        let mut app = App::local(0);
        assert_eq!(app.update(key('?')), Action::None);
        assert!(app.show_help);
        assert_eq!(app.update(Msg::Key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE))), Action::None);
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
        assert_eq!(app.hosts[0].status(), Status::Unknown);
        let snap = HostSnapshot { host: "srv01".into(), seq: 1, ..Default::default() };
        app.update(Msg::Snapshot { snapshot: Box::new(snap), received_ms: 1_500 });
        let host = app.selected_host().unwrap();
        assert_eq!(host.name, "srv01");
        assert_eq!(host.received_ms, Some(1_500));
        assert_eq!(host.snapshot.as_ref().unwrap().seq, 1);
        assert_eq!(app.now_ms, 1_500);
        app.update(Msg::Tick(2_000));
        assert_eq!(app.now_ms, 2_000);
    }
}
