//! Rendering: a pure function of [`App`] into a frame. No I/O, no mutation.
//!
//! Every screen is a title row, the view, the selected host's detail (its
//! whole reason, wrapped, when it has one to give) and, in the terminal, the
//! key bar. What each size shows is decided in the views: see
//! `overview.rs` and `host.rs`.

mod alerts;
mod chart;
mod help;
mod host;
mod overview;
mod picker;
mod spark;
mod wrapped;

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::app::{App, Command, Connection, HostEntry, Scope, View, KEYS};
use crate::{format, theme};
use wrapped::Wrapped;

pub use alerts::{page as alerts_page, scroll_limit as alerts_scroll_limit};
pub use help::scroll_limit as help_scroll_limit;

/// Smallest terminal that gets the full layout.
pub const MIN_WIDTH: u16 = 40;
pub const MIN_HEIGHT: u16 = 10;

/// Where a frame goes: the terminal has a key bar; a printed screen
/// (`--once`) has no keys to press and leaves it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chrome {
    Interactive,
    Printed,
}

/// Draws the whole screen, for the terminal.
pub fn render(app: &App, frame: &mut Frame) {
    render_as(app, frame, Chrome::Interactive);
}

/// Draws the whole screen, with or without the key bar.
pub fn render_as(app: &App, frame: &mut Frame, chrome: Chrome) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        render_tiny(app, frame, area);
        return;
    }
    let keys_height = u16::from(chrome == Chrome::Interactive);
    let title = Rect { height: 1, ..area };
    let keys = Rect { y: area.bottom() - keys_height, height: keys_height, ..area };
    let rest = area.height - 1 - keys_height;
    // A long reason is there to be read whole: the detail may take all but
    // three rows of the view (a header, the selected row, a line of what is
    // off screen).
    let detail = detail_line(app).map(|line| Wrapped::hanging(vec![line]));
    let detail_height = detail.as_ref().map_or(0, |d| (d.line_count(area.width) as u16).min(rest.saturating_sub(3)));
    let body = Rect { y: area.y + 1, height: rest - detail_height, ..area };
    let detail_area = Rect { y: body.bottom(), height: detail_height, ..area };
    match app.view {
        View::Overview => {
            frame.render_widget(Paragraph::new(overview::title_line(app, area.width)).style(theme::title()), title);
            overview::render(app, frame, body);
        }
        View::Alerts => {
            frame.render_widget(Paragraph::new(alerts::title_line(app, area.width)).style(theme::title()), title);
            alerts::render(app, frame, body);
        }
        View::Host | View::Chart => {
            let Some(host) = app.selected_host() else { return };
            frame.render_widget(Paragraph::new(title_line(app, host, area.width)).style(theme::title()), title);
            match (&app.chart, app.view) {
                (Some(chart), View::Chart) => chart::render(chart, host, frame, body),
                _ => host::render(host, app.now_ms, app.selected_row().as_deref(), frame, body),
            }
            // Values that are not live any more keep their place, dimmed.
            if host.is_old(app.now_ms) {
                frame.buffer_mut().set_style(body, theme::old());
            }
        }
    }
    if let Some(detail) = detail {
        frame.render_widget(detail, detail_area);
    }
    if chrome == Chrome::Interactive {
        frame.render_widget(Paragraph::new(key_bar(app, area.width)), keys);
    }
    if let Some(p) = &app.picker {
        picker::render(app, p, frame, body);
    }
    if app.show_help {
        help::render(app, frame, area);
    }
}

/// Pads a title with `─` to the full width.
fn fill_title(mut text: String, width: u16) -> Line<'static> {
    text.push(' ');
    let fill = (width as usize).saturating_sub(text.chars().count());
    text.push_str(&"─".repeat(fill));
    Line::raw(text)
}

fn title_line(app: &App, host: &HostEntry, width: u16) -> Line<'static> {
    let now = app.now_ms;
    let mut text = format!(" cm-dashboard ── {} ── {}", host.name, host.connection.label());
    if matches!(host.connection, Connection::Unreachable { .. }) {
        text.push_str(&format!(" for {}", format::span(now.saturating_sub(host.connection_since_ms))));
    }
    match host.received_ms {
        // Old values say how old, and that they are.
        Some(at) if host.is_old(now) => {
            let stale = if host.is_stale(now) { " (stale)" } else { "" };
            text.push_str(&format!(", last snapshot {}{stale}", format::age(now.saturating_sub(at))));
        }
        Some(at) => text.push_str(&format!(", {}", format::age(now.saturating_sub(at)))),
        None => text.push_str(", waiting for data"),
    }
    if let Some(s) = &host.snapshot {
        if s.uptime_seconds > 0 {
            text.push_str(&format!(" ── up {}", format::uptime(s.uptime_seconds)));
        }
        if !s.kernel.is_empty() {
            text.push_str(&format!(" ── {}", s.kernel));
        }
    }
    fill_title(text, width)
}

/// The selected host in a sentence, with its whole reason: in the overview
/// always (it says which host Enter opens), in the host view and the chart
/// while the values are not live (unreachable, connecting, stale).
fn detail_line(app: &App) -> Option<Line<'static>> {
    let now = app.now_ms;
    let host = app.selected_host()?;
    let status = host.status(now);
    let mark = Span::styled(format!("{} ", theme::mark(status)), theme::status(status));
    let text = match app.view {
        // Every host's alerts: no one host to say more of.
        View::Alerts => return None,
        View::Overview => {
            if !app.shows_selected() {
                return None;
            }
            let since = format::span(now.saturating_sub(host.status_since_ms));
            let what = match host.headline(now) {
                Some(why) => why,
                None => match host.received_ms {
                    Some(at) => format!("last snapshot {}", format::age(now.saturating_sub(at))),
                    None => "no snapshot yet".into(),
                },
            };
            format!("{}: {} for {since}: {what}", host.name, status.label())
        }
        View::Host | View::Chart => {
            let why = match &host.connection {
                Connection::Unreachable { reason } => {
                    format!("unreachable for {}: {reason}", format::span(now.saturating_sub(host.connection_since_ms)))
                }
                Connection::Connecting => "connecting: no answer yet".into(),
                _ if host.is_stale(now) => host.headline(now)?,
                _ => return None,
            };
            match host.received_ms {
                Some(at) => format!("{why}; the values shown are from {}", format::age(now.saturating_sub(at))),
                None => why,
            }
        }
    };
    Some(Line::from(vec![mark, Span::styled(text, theme::status(status))]))
}

/// The bindings that apply here, as the help shows them: the ones of every
/// view first, then this view's, then the help's own; a key this view binds
/// itself is shown once, with this view's meaning.
pub(crate) fn visible_keys(app: &App) -> impl Iterator<Item = (&'static str, &'static str)> + '_ {
    let own: Vec<&str> = visible(app).filter(|(_, s, ..)| *s != Scope::Everywhere).map(|(_, _, l, _)| l).collect();
    let help = KEYS.iter().filter(|(_, _, s, label, _)| *s == Scope::Help && !label.is_empty());
    visible(app)
        .filter(move |(_, s, l, _)| *s != Scope::Everywhere || !own.contains(l))
        .map(|(_, _, label, what)| (label, what))
        .chain(help.map(|(_, _, _, label, what)| (*label, *what)))
}

fn visible(app: &App) -> impl Iterator<Item = (Command, Scope, &'static str, &'static str)> + '_ {
    let scope = app.scope();
    let local = app.is_local();
    // A key the view binds itself means what the view says (`a` and Tab go
    // back from the alerts view).
    let own = move |code: &crossterm::event::KeyCode| KEYS.iter().any(|(c, _, s, ..)| c == code && *s == scope);
    KEYS.iter()
        .filter(move |(code, _, s, ..)| *s != Scope::Everywhere || !own(code))
        .filter(move |(_, command, s, label, _)| {
            // Local mode has one host: no overview, nothing to move between.
            let single = local && matches!(command, Command::ToggleView | Command::PrevHost | Command::NextHost);
            // Only the in-process agent can be asked for a snapshot now.
            let refresh = !local && *command == Command::Refresh;
            !label.is_empty() && (*s == scope || *s == Scope::Everywhere) && !single && !refresh
        })
        .map(|(_, command, s, label, what)| (*command, *s, *label, *what))
}

/// The key bar: quit and help, this view's keys, then the rest; each key
/// with the first word of what it does, as many whole ones as fit in
/// `width` (help lists them all).
fn key_bar(app: &App, width: u16) -> Line<'static> {
    if app.filtering {
        return Line::from(vec![
            Span::styled(" filter: ", theme::key()),
            Span::raw(format!(
                "{}_",
                if app.view == crate::app::View::Alerts { &app.alerts_filter } else { &app.filter }
            )),
            Span::styled("   Enter keep  Esc clear", theme::dim()),
        ]);
    }
    if app.picker.is_some() {
        return Line::from(vec![
            Span::styled(" type", theme::key()),
            Span::raw(" to find  "),
            Span::styled("↑/↓", theme::key()),
            Span::raw(" select  "),
            Span::styled("Enter", theme::key()),
            Span::raw(" chart  "),
            Span::styled("Esc", theme::key()),
            Span::raw(" cancel"),
        ]);
    }
    if app.show_help {
        return Line::from(vec![
            Span::styled(" ↑/↓ PgUp/PgDn", theme::key()),
            Span::raw(" scroll  "),
            Span::styled("Esc", theme::key()),
            Span::raw(" close  "),
            Span::styled("q", theme::key()),
            Span::raw(" quit"),
        ]);
    }
    let first = |c: &Command| matches!(c, Command::Quit | Command::Help);
    let keys: Vec<_> = visible(app).filter(|(_, s, label, _)| !(*label == "Esc" && *s == Scope::Everywhere)).collect();
    let ordered = keys
        .iter()
        .filter(|(c, ..)| first(c))
        .chain(keys.iter().filter(|(c, s, ..)| !first(c) && *s != Scope::Everywhere))
        .chain(keys.iter().filter(|(c, s, ..)| !first(c) && *s == Scope::Everywhere));
    let mut spans = vec![Span::raw(" ")];
    let mut used = 1;
    for (_, _, key, what) in ordered {
        let what = format!(" {}  ", what.split(' ').next().unwrap_or(what));
        let cost = key.chars().count() + what.trim_end().chars().count();
        if used + cost > usize::from(width) {
            break;
        }
        used += cost + 2;
        spans.push(Span::styled(*key, theme::key()));
        spans.push(Span::raw(what));
    }
    Line::from(spans)
}

/// A window too small for the layout still says which host and how it is.
fn render_tiny(app: &App, frame: &mut Frame, area: Rect) {
    let mut lines = Vec::new();
    if let Some(host) = app.selected_host() {
        let status = host.status(app.now_ms);
        lines.push(Line::styled(format!("{} {}", theme::mark(status), host.name), theme::status(status)));
        if let Some(s) = &host.snapshot {
            let mut parts = Vec::new();
            if let Some(m) = &s.memory {
                parts.push(format!("RAM {:.0}%", m.used_percent()));
            }
            if let Some(c) = s.cpu.as_ref().and_then(|c| c.utilisation_percent) {
                parts.push(format!("CPU {c:.0}%"));
            }
            lines.push(Line::raw(parts.join(" ")));
        }
    }
    lines.push(Line::styled(format!("need {MIN_WIDTH}x{MIN_HEIGHT}"), theme::dim()));
    lines.push(Line::styled("q quits", theme::dim()));
    frame.render_widget(Paragraph::new(lines), area);
}

#[cfg(test)]
mod tests {
    use cm_proto::*;
    use ratatui::style::Color;

    use crate::app::{App, Msg};
    use crate::terminal::render_to_text;

    const GIB: u64 = 1 << 30;
    /// The tests' clock: 2025-11-24 16:00 UTC.
    const NOW_MS: u64 = 1_764_000_000_000;
    const GB: u64 = 1_000_000_000;

    /// A workstation with a hot CPU, a GPU, zram, and a nearly full /var/lib.
    pub(crate) fn sample() -> HostSnapshot {
        let mut snap = HostSnapshot {
            host: "srv01".into(),
            seq: 7,
            timestamp_ms: 1_764_000_000_000,
            agent_version: "0.1.0".into(),
            kernel: "6.12.8".into(),
            uptime_seconds: 3 * 86_400 + 4 * 3600,
            cpu: Some(Cpu {
                model: Some("AMD Ryzen 7 5800X 8-Core Processor".into()),
                logical_cpus: 16,
                load1: 0.42,
                load5: 0.51,
                load15: 0.48,
                utilisation_percent: Some(12.0),
                frequency_hz: Some(3_400_000_000),
                temperature_celsius: Some(83.0),
                temperature_source: Some("k10temp Tctl".into()),
                ..Default::default()
            }),
            memory: Some(Memory {
                total_bytes: 32 * GIB,
                used_bytes: 10 * GIB,
                available_bytes: 22 * GIB,
                swap_total_bytes: 8 * GIB,
                swap_used_bytes: GIB / 2,
                zram: vec![Zram {
                    device: "zram0".into(),
                    disksize_bytes: 8 * GIB,
                    original_bytes: 64 << 20,
                    compressed_bytes: 16 << 20,
                    memory_used_bytes: 17 << 20,
                    algorithm: Some("zstd".into()),
                }],
                tmpfs: vec![Tmpfs { mount_point: "/tmp".into(), size_bytes: 16 * GIB, used_bytes: 88 << 10 }],
                vm: VmTunables { dirty_ratio: Some(5), dirty_background_ratio: Some(2), swappiness: Some(180) },
                ..Default::default()
            }),
            gpus: vec![Gpu {
                id: "00000000:01:00.0".into(),
                vendor: GpuVendor::Nvidia,
                name: "NVIDIA GeForce RTX 3060".into(),
                utilisation_percent: Some(23.0),
                memory_used_bytes: Some(1126 << 20),
                memory_total_bytes: Some(12 * GIB),
                temperature_celsius: Some(51.0),
                power_watts: Some(45.0),
                ..Default::default()
            }],
            drives: vec![
                Drive {
                    name: "nvme0n1".into(),
                    model: Some("Samsung SSD 980 PRO 1TB".into()),
                    capacity_bytes: 1_000_204_886_016,
                    used_bytes: 868 * GB,
                    filesystem_bytes: 1000 * GB,
                    health: Some(DriveHealth {
                        protocol: "NVMe".into(),
                        wear_percent: Some(75.0),
                        wear_source: Some("NVMe percentage_used".into()),
                        temperature_celsius: Some(56.0),
                        power_on_hours: Some(11_419),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                Drive {
                    name: "sda".into(),
                    model: Some("WDC WD40EFRX".into()),
                    capacity_bytes: 4_000_787_030_016,
                    health: Some(DriveHealth {
                        protocol: "ATA".into(),
                        temperature_celsius: Some(38.0),
                        power_on_hours: Some(37_788),
                        reallocated_sectors: Some(387),
                        pending_sectors: Some(8),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            ],
            filesystems: vec![
                Filesystem {
                    mount_point: "/".into(),
                    fstype: "ext4".into(),
                    source: "/dev/nvme0n1p2".into(),
                    drive: Some("nvme0n1".into()),
                    size_bytes: 200 * GB,
                    used_bytes: 98 * GB,
                    available_bytes: 102 * GB,
                    ..Default::default()
                },
                Filesystem {
                    mount_point: "/var/lib".into(),
                    fstype: "ext4".into(),
                    source: "/dev/nvme0n1p3".into(),
                    drive: Some("nvme0n1".into()),
                    size_bytes: 800 * GB,
                    used_bytes: 770 * GB,
                    available_bytes: 30 * GB,
                    ..Default::default()
                },
            ],
            collectors: ["host", "cpu", "memory", "storage", "gpu"]
                .iter()
                .map(|n| CollectorReport { name: (*n).into(), ..Default::default() })
                .collect(),
            ..Default::default()
        };
        let thresholds = cm_agent::Thresholds::default();
        for d in &mut snap.drives {
            if let Some(h) = &mut d.health {
                thresholds.judge_drive(h, None);
            }
        }
        thresholds.evaluate(&mut snap);
        snap
    }

    pub(crate) fn app_with(snap: HostSnapshot) -> App {
        let mut app = App::local(0);
        app.update(Msg::Snapshot { host: 0, snapshot: Box::new(snap), received_ms: NOW_MS - 400 });
        app.update(Msg::Tick(NOW_MS));
        app
    }

    pub(crate) fn draw(app: &App, w: u16, h: u16) -> ratatui::buffer::Buffer {
        let mut term = ratatui::Terminal::new(ratatui::backend::TestBackend::new(w, h)).unwrap();
        term.draw(|f| super::render(app, f)).unwrap();
        term.backend().buffer().clone()
    }

    /// The foreground color of the first cell of the row that contains `text`.
    pub(crate) fn row_color(buf: &ratatui::buffer::Buffer, text: &str) -> Color {
        let lines = crate::terminal::buffer_text(buf);
        let (y, line) =
            lines.lines().enumerate().find(|(_, l)| l.contains(text)).unwrap_or_else(|| panic!("{text} not on screen"));
        let x = line[..line.find(text).unwrap()].chars().count() as u16;
        buf[(x, y as u16)].fg
    }

    #[test]
    fn host_view_80x24() {
        insta::assert_snapshot!(render_to_text(&app_with(sample()), 80, 24));
    }

    #[test]
    fn host_view_120x40() {
        insta::assert_snapshot!(render_to_text(&app_with(sample()), 120, 40));
    }

    #[test]
    fn status_is_the_row_color() {
        let buf = draw(&app_with(sample()), 100, 30);
        assert_eq!(row_color(&buf, "/var/lib"), Color::Red, "96% full is critical");
        assert_eq!(row_color(&buf, "nvme0n1"), Color::Red, "a drive takes its worst filesystem's status");
        assert_eq!(row_color(&buf, "CPU  load"), Color::Yellow, "83 C is a warning");
        assert_eq!(row_color(&buf, "RAM "), Color::Reset, "31% is fine");
        assert_eq!(row_color(&buf, "sda"), Color::Red, "pending sectors are critical");
    }

    #[test]
    fn the_drive_table_shows_wear_temperature_hours_and_why() {
        let text = render_to_text(&app_with(sample()), 100, 30);
        let line =
            |needle: &str| text.lines().find(|l| l.contains(needle)).unwrap_or_else(|| panic!("{needle}:\n{text}"));
        let nvme = line("nvme0n1 Samsung");
        // health is the SMART verdict; the row color also counts the 96% full /var/lib.
        for cell in ["932 GiB", "808 GiB", "87%", "75%", "56 C", "11419h 475d", "warn"] {
            assert!(nvme.contains(cell), "{cell} missing in {nvme:?}");
        }
        assert!(line("! 75% of rated endurance used").starts_with("    ! "), "the worn drive says why");
        let sda = line("sda WDC");
        for cell in ["3.64 TiB", "38 C", "37788h 1574d", "crit"] {
            assert!(sda.contains(cell), "{cell} missing in {sda:?}");
        }
        assert!(text.contains("  ! 8 sectors are unreadable and waiting to be reallocated"), "{text}");
        let buf = draw(&app_with(sample()), 100, 30);
        assert_eq!(row_color(&buf, "! 8 sectors"), Color::Red);
        assert_eq!(row_color(&buf, "! 75% of rated"), Color::Yellow);
    }

    fn with_services() -> HostSnapshot {
        let mut snap = sample();
        let unit = |name: &str, active: &str, sub: &str| Service {
            name: name.into(),
            load_state: "loaded".into(),
            active_state: active.into(),
            sub_state: sub.into(),
            since_ms: Some(NOW_MS - 3 * 3_600_000),
            ..Default::default()
        };
        let mut gitea = unit("gitea.service", "active", "running");
        gitea.memory_bytes = Some(256 << 20);
        gitea.memory_max_bytes = Some(4 << 30);
        gitea.cpu_percent = Some(1.2);
        gitea.disk_bytes = Some(15 << 30);
        let mut vault = unit("vaultwarden.service", "failed", "failed");
        vault.result = "exit-code".into();
        vault.memory_max_bytes = Some(1 << 30);
        vault.restarts = 3;
        vault.disk_bytes = Some(512 << 20);
        let mut long = unit("a-service-with-a-remarkably-long-name-for-a-unit.service", "active", "running");
        long.disk_bytes = Some(2 << 30);
        long.disk_partial = true;
        let mut services = vec![gitea, vault, long];
        let thresholds = cm_agent::Thresholds::default();
        for s in &mut services {
            thresholds.judge_service(s, None, NOW_MS);
        }
        snap.services = Some(services);
        snap
    }

    #[test]
    fn services_table_colors_rows_and_says_why() {
        let app = app_with(with_services());
        let text = render_to_text(&app, 100, 34);
        let line =
            |needle: &str| text.lines().find(|l| l.contains(needle)).unwrap_or_else(|| panic!("{needle}:\n{text}"));
        let gitea = line(" gitea ");
        for cell in ["running", "256M/4.00G", "1%", "15.0G", "0", "3h"] {
            assert!(gitea.contains(cell), "{cell} missing in {gitea:?}");
        }
        let vault = line(" vaultwarden");
        for cell in ["failed", "-/1.00G", "512M", "3"] {
            assert!(vault.contains(cell), "{cell} missing in {vault:?}");
        }
        assert!(text.contains("   ! failed (exit-code); restarted 3 times"), "{text}");
        assert!(line("a-service-with-a-remarkably").contains('…'), "long names are cut, not wrapped");
        assert!(line("a-service-with-a-remarkably").contains("2.00G+"), "a partial disk figure says so");
        let buf = draw(&app, 100, 34);
        assert_eq!(row_color(&buf, " vaultwarden"), Color::Red);
        assert_eq!(row_color(&buf, " gitea "), Color::Reset);
    }

    #[test]
    fn host_view_with_services_100x34() {
        insta::assert_snapshot!(render_to_text(&app_with(with_services()), 100, 34));
    }

    pub(crate) fn fleet_app() -> App {
        use crate::app::{Connection, HostEntry};
        let hosts = vec![
            HostEntry::new("srv01", "server", Connection::Connecting),
            HostEntry::new("steambox", "workstation", Connection::Connecting),
            HostEntry::new("labbox", "lab", Connection::Connecting),
        ];
        let mut app = App::remote(hosts, NOW_MS);
        let mut srv = with_services();
        srv.host = "srv01".into();
        app.update(Msg::Snapshot { host: 0, snapshot: Box::new(srv), received_ms: NOW_MS - 400 });
        let mut steam = sample();
        steam.host = "steambox".into();
        steam.drives.clear();
        steam.filesystems.clear();
        steam.cpu.as_mut().unwrap().status = Status::Ok;
        steam.nixos = Some(nixos_switched());
        app.update(Msg::Snapshot { host: 1, snapshot: Box::new(steam), received_ms: NOW_MS - 1_200 });
        let reason = "no answer within 2 s from 192.168.1.30:6130: the host is down, no cm-agent listens on UDP port 6130, or a firewall drops it".to_string();
        app.update(Msg::Connection { host: 2, connection: Connection::Unreachable { reason }, interval_ms: None });
        app.update(Msg::Tick(NOW_MS));
        app
    }

    /// A NixOS host switched to a new kernel and not rebooted yet.
    fn nixos_switched() -> cm_proto::NixosState {
        cm_proto::NixosState {
            generation: Some(42),
            generation_ms: Some(NOW_MS - 3 * 3_600_000),
            current_system: "/nix/store/aaaa-nixos-system-steambox-25.11.20251130.1d3aeb5".into(),
            booted_system: Some("/nix/store/bbbb-nixos-system-steambox-25.11.20251120.9f0e1c2".into()),
            reboot_needed: true,
            reboot_reasons: vec!["kernel 6.12.58 -> 6.12.60".into()],
            version: Some("25.11.20251130.1d3aeb5".into()),
            configuration_revision: Some("4f2c1e9a77b0c2d14e2f9a0b1c3d5e7f8a9b0c1d".into()),
            status: Status::Warning,
        }
    }

    #[test]
    fn a_nixos_host_shows_generation_revision_and_why_it_needs_a_reboot() {
        let text = render_to_text(&fleet_app(), 140, 12);
        let row = text.lines().find(|l| l.contains("steambox")).unwrap();
        assert!(row.contains("42 reboot") && row.contains("reboot needed: kernel 6.12.58 -> 6.12.60"), "{row}");
        let srv = text.lines().find(|l| l.contains("srv01")).unwrap();
        assert!(srv.contains(" - "), "not NixOS: {srv}");
        let mut snap = sample();
        snap.nixos = Some(nixos_switched());
        let host = render_to_text(&app_with(snap), 120, 40);
        assert!(host.contains("NixOS 25.11.20251130.1d3aeb5  gen 42 (3 h ago)  rev 4f2c1e9"), "{host}");
        assert!(host.contains("reboot needed: kernel 6.12.58 -> 6.12.60"), "{host}");
    }

    #[test]
    fn fleet_overview_100x12() {
        insta::assert_snapshot!(render_to_text(&fleet_app(), 100, 12));
    }

    /// What a refused host's connection says, long enough to be cut anywhere.
    const REFUSED: &str = "cannot reach 127.0.0.1:16130: the cryptographic handshake failed: \
                           error 42: invalid peer certificate: UnknownIssuer (os error 2)";

    /// Fails where a value was split across two rows: a number from its
    /// unit, `error` from its code, a parenthesised group left open.
    pub(crate) fn assert_no_split_values(text: &str) {
        const UNITS: [&str; 11] = ["B", "KiB", "MiB", "GiB", "TiB", "kB", "GB", "TB", "C", "GHz", "W"];
        let lines: Vec<&str> = text.lines().collect();
        for pair in lines.windows(2) {
            let last = pair[0].split_whitespace().last().unwrap_or("");
            let first = pair[1].split_whitespace().next().unwrap_or("");
            let unit = first.split(['/', ',', ')', ':']).next().unwrap_or("");
            let split = (last.ends_with(|c: char| c.is_ascii_digit()) && UNITS.contains(&unit))
                || (last == "error" && first.starts_with(|c: char| c.is_ascii_digit()))
                || (pair[0].matches('(').count() > pair[0].matches(')').count()
                    && pair[1].find(')').is_some_and(|close| pair[1].find('(').is_none_or(|open| close < open)));
            assert!(!split, "a value split between rows:\n{}\n{}\nin:\n{text}", pair[0], pair[1]);
        }
    }

    /// The fleet with its third host refused for a long reason.
    fn refused_fleet() -> App {
        use crate::app::Connection;
        let mut app = fleet_app();
        let connection = Connection::Unreachable { reason: REFUSED.into() };
        app.update(Msg::Connection { host: 2, connection, interval_ms: None });
        app
    }

    #[test]
    fn the_overview_at_80x24_keeps_status_and_why_and_says_what_it_leaves_out() {
        let app = refused_fleet();
        let text = render_to_text(&app, 80, 24);
        let header = text.lines().nth(1).unwrap();
        assert_eq!(
            header.split_whitespace().collect::<Vec<_>>(),
            ["host", "cpu", "ram", "disk", "services", "status", "since", "why"],
            "{text}"
        );
        assert!(text.contains("  columns left out: role, wear, nixos (a window"), "{text}");
        // The selected host's whole reason, at word boundaries.
        let detail: String = text
            .lines()
            .skip_while(|l| !l.starts_with("× labbox: crit"))
            .take_while(|l| !l.starts_with(" q quit"))
            .collect::<Vec<_>>()
            .join(" ");
        let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(words(&detail).contains(&words(REFUSED)), "the whole reason:\n{text}");
        assert_no_split_values(&text);
        let keys = text.lines().last().unwrap();
        assert!(keys.starts_with(" q quit  ? help  Enter open"), "{keys}");
        assert!(!keys.contains("refresh"), "no refresh in fleet mode: {keys}");
        assert!(
            !keys.ends_with(|c: char| c.is_alphabetic()) || keys.split("  ").all(|k| k.trim().contains(' ')),
            "whole keys only: {keys}"
        );
    }

    #[test]
    fn the_overview_at_40x12_keeps_status_and_the_detail_line() {
        let app = refused_fleet();
        let text = render_to_text(&app, 40, 12);
        let header = text.lines().nth(1).unwrap();
        assert_eq!(header.split_whitespace().collect::<Vec<_>>(), ["host", "status", "why"], "{text}");
        for (name, status) in [("labbox", "crit"), ("srv01", "crit"), ("steambox", "warn")] {
            let row = text.lines().find(|l| l[1..].starts_with(name)).unwrap_or_else(|| panic!("{name}:\n{text}"));
            assert!(row.contains(status), "{name}'s status stays: {row}");
        }
        assert!(text.contains("× labbox: crit for"), "{text}");
        assert!(text.contains("cryptographic handshake failed"), "the detail has the reason: {text}");
        assert_no_split_values(&text);
    }

    #[test]
    fn a_fleet_longer_than_the_window_scrolls_with_the_selection() {
        use crate::app::{Connection, HostEntry};
        let hosts = (0..30).map(|i| HostEntry::new(&format!("host{i:02}"), "lab", Connection::Connecting)).collect();
        let mut app = App::remote(hosts, NOW_MS);
        app.update(Msg::Tick(NOW_MS));
        let text = render_to_text(&app, 80, 24);
        assert!(text.contains(">host00"), "{text}");
        assert!(text.contains("  11 more hosts below"), "{text}");
        for _ in 0..20 {
            app.update(code(crossterm::event::KeyCode::Down));
        }
        let text = render_to_text(&app, 80, 24);
        assert!(text.contains(">host20"), "the selection stays on screen: {text}");
        assert!(text.contains("  19 more hosts above") && !text.contains("below"), "{text}");
        app.update(code(crossterm::event::KeyCode::Up));
        let text = render_to_text(&app, 80, 24);
        assert!(text.contains(">host19") && text.contains("  19 more hosts above"), "{text}");
        app.update(code(crossterm::event::KeyCode::Up));
        let text = render_to_text(&app, 80, 24);
        assert!(text.contains(">host18") && text.contains("  11 more hosts below"), "back on the first page: {text}");
    }

    #[test]
    fn an_unreachable_host_keeps_its_values_dimmed() {
        use crate::app::Connection;
        let mut app = fleet_app();
        let connection = Connection::Unreachable { reason: "timed out".into() };
        app.update(Msg::Connection { host: 0, connection, interval_ms: None });
        let buf = draw(&app, 100, 12);
        let text = crate::terminal::buffer_text(&buf);
        let y = text.lines().position(|l| l.contains("srv01")).unwrap() as u16;
        let line = text.lines().nth(usize::from(y)).unwrap();
        let x = line.find("12%").unwrap() as u16;
        assert_eq!(buf[(x, y)].fg, Color::DarkGray, "the old cpu figure is dimmed: {line}");
        assert!(line.contains("unreachable: timed out"), "{line}");
        // The host view keeps the last snapshot, dimmed, and says why.
        app.update(key('s')); // by name: srv01 first
        app.update(code(crossterm::event::KeyCode::Down));
        app.update(code(crossterm::event::KeyCode::Enter));
        assert_eq!(app.selected_host().unwrap().name, "srv01");
        let buf = draw(&app, 100, 34);
        let text = crate::terminal::buffer_text(&buf);
        assert!(text.starts_with(" cm-dashboard ── srv01 ── unreachable for 0.0 s, last snapshot 0.4 s ago"), "{text}");
        assert_eq!(row_color(&buf, "/var/lib ext4"), Color::DarkGray, "dimmed, red no more: {text}");
        assert!(text.contains("unreachable for 0.0 s: timed out; the values shown are from 0.4 s ago"), "{text}");
    }

    #[test]
    fn a_stale_host_says_so_and_dims_its_values() {
        let mut app = app_with(sample());
        app.update(Msg::Tick(NOW_MS + 20_000));
        let buf = draw(&app, 100, 30);
        let text = crate::terminal::buffer_text(&buf);
        assert!(text.starts_with(" cm-dashboard ── srv01 ── local, last snapshot 20 s ago (stale)"), "{text}");
        assert!(text.contains("stale: the in-process agent's last snapshot came 20 s ago"), "{text}");
        assert_eq!(row_color(&buf, "/var/lib ext4"), Color::DarkGray, "old values are dimmed: {text}");
    }

    #[test]
    fn the_host_view_at_40x12_shows_the_figures_that_matter_and_names_what_it_hides() {
        let app = app_with(with_services());
        let text = render_to_text(&app, 40, 12);
        assert!(text.contains("! CPU  12%  load 0.42  83 C"), "{text}");
        assert!(text.contains("  RAM  10.0/32.0 GiB 31%"), "{text}");
        let header = text.lines().find(|l| l.contains("Storage")).unwrap();
        assert_eq!(
            header.split_whitespace().collect::<Vec<_>>(),
            ["Storage", "use", "health"],
            "no header row that reads like data: {text}"
        );
        assert!(text.contains("more drives and filesystems"), "the storage cut says so: {text}");
        assert!(text.contains("Services") && text.contains("Backups"), "hidden sections are named: {text}");
        assert!(text.contains("60+ columns:"), "and what a wider window adds: {text}");
        assert_no_split_values(&text);
        // Taller, the narrow tables show: services with their state.
        let text = render_to_text(&app, 40, 40);
        assert!(text.contains("×  vaultwarden"), "{text}");
        assert!(text.lines().any(|l| l.contains("vaultwarden") && l.contains("failed")), "{text}");
    }

    #[test]
    fn every_size_says_what_it_leaves_out_and_splits_no_value() {
        for app in [app_with(with_services()), app_with_history(with_forecasts()), refused_fleet()] {
            for (w, h) in [(40, 12), (60, 20), (80, 24), (100, 30), (120, 40)] {
                let text = render_to_text(&app, w, h);
                assert_no_split_values(&text);
                if app.view == crate::app::View::Host {
                    let full = render_to_text(&app, 200, 120);
                    for section in ["Storage", "Services", "Backups"] {
                        let named = text.contains(section);
                        assert!(named, "{w}x{h}: {section} is shown or named as hidden:\n{text}\n{full}");
                    }
                }
            }
        }
    }

    #[test]
    fn monochrome_frames_keep_the_selection_and_the_marks() {
        let app = refused_fleet();
        let mut buf = draw(&app, 100, 12);
        crate::theme::monochrome(&mut buf);
        assert!(buf.content.iter().all(|c| c.fg == Color::Reset && c.bg == Color::Reset), "no color is left");
        let text = crate::terminal::buffer_text(&buf);
        let y = text.lines().position(|l| l.starts_with(">labbox")).expect("the selection is marked") as u16;
        assert!(
            (0..50).all(|x| buf[(x, y)].modifier.contains(ratatui::style::Modifier::REVERSED)),
            "the whole row reversed"
        );
        assert!(buf[(0, 0)].modifier.contains(ratatui::style::Modifier::REVERSED), "the title bar stays a bar");
        let host = app_with(sample());
        let text = render_to_text(&host, 100, 30);
        assert!(text.contains("×   /var/lib ext4"), "critical reads without color: {text}");
        assert!(text.contains("! CPU  load"), "a warning too: {text}");
    }

    #[test]
    fn help_wraps_and_scrolls_in_a_small_window() {
        let mut app = refused_fleet();
        app.update(Msg::Resize { cols: 40, rows: 12 });
        app.update(key('?'));
        let text = render_to_text(&app, 40, 12);
        assert!(text.contains("more rows: ↓/PgDn"), "it says there is more: {text}");
        let limit = super::help_scroll_limit(&app);
        for _ in 0..limit {
            app.update(code(crossterm::event::KeyCode::Down));
        }
        let text = render_to_text(&app, 40, 12);
        assert!(text.contains("dimmed: old values"), "the last line is reachable: {text}");
        assert!(text.contains("rows above"), "{text}");
        assert!(!text.contains("refresh"), "fleet mode has no refresh: {text}");
    }

    #[test]
    fn the_overview_highlights_the_selection_and_colors_rows() {
        let app = fleet_app();
        let buf = draw(&app, 100, 12);
        assert_eq!(row_color(&buf, " labbox"), Color::Red, "unreachable is critical");
        let text = crate::terminal::buffer_text(&buf);
        let y = text.lines().position(|l| l.starts_with(">labbox")).expect("the selection is marked") as u16;
        assert!(buf[(1, y)].modifier.contains(ratatui::style::Modifier::REVERSED), "worst host selected first");
        assert!(text.contains("srv01") && text.contains("vaultwarden.service"), "{text}");
    }

    #[test]
    fn services_without_systemd_say_why() {
        let mut snap = sample();
        snap.collectors.push(CollectorReport {
            name: "systemd".into(),
            note: Some("systemd not available: no system bus".into()),
            ..Default::default()
        });
        let text = render_to_text(&app_with(snap), 100, 30);
        assert!(text.contains("  Services\n   systemd not available: no system bus"), "{text}");
        // Backups come from systemd too: without it nobody knows whether jobs exist.
        assert!(
            text.contains(
                "  Backups\n?  not known: backups are read from systemd: systemd not available: no system bus"
            ),
            "{text}"
        );
        assert!(!text.contains("none configured"), "{text}");
    }

    #[test]
    fn a_missing_smartctl_is_said_once_above_the_drives() {
        let mut snap = sample();
        snap.collectors.push(CollectorReport {
            name: "smart".into(),
            error: Some(
                "smartctl: not found: install smartmontools (or set the smartctl path) to read drive health".into(),
            ),
            ..Default::default()
        });
        let text = render_to_text(&app_with(snap), 100, 30);
        assert_eq!(text.matches("install smartmontools").count(), 1, "{text}");
        assert!(text.contains("SMART: smartctl: not found"), "{text}");
    }

    #[test]
    fn services_and_backups_say_when_there_are_none() {
        let text = render_to_text(&app_with(sample()), 100, 30);
        assert!(text.contains("no source yet: this agent has no systemd collector"), "{text}");
        assert!(text.contains("none known: backups are read from systemd, which this agent does not watch"), "{text}");
        // A systemd that answered and lists no jobs: none are configured.
        let mut snap = sample();
        snap.collectors.push(CollectorReport { name: "systemd".into(), ..Default::default() });
        snap.services = Some(Vec::new());
        let text = render_to_text(&app_with(snap), 100, 30);
        assert!(text.contains("none configured: the agent watches no backup jobs"), "{text}");
    }

    #[test]
    fn backups_show_last_run_result_duration_and_next_run() {
        let mut snap = sample();
        let job = |name: &str, result: Option<&str>| {
            let mut b = Backup {
                name: name.into(),
                kind: "restic".into(),
                unit: format!("restic-backups-{name}.service"),
                last_run_ms: result.map(|_| NOW_MS - 3 * 3_600_000),
                result: result.map(str::to_owned),
                duration_seconds: result.map(|_| 45 * 60 + 32),
                next_run_ms: Some(NOW_MS + 21 * 3_600_000),
                ..Default::default()
            };
            cm_agent::Thresholds::default().judge_backup(&mut b);
            b
        };
        snap.backups = Some(vec![job("b2", Some("success")), job("nas", Some("exit-code")), job("new", None)]);
        let app = app_with(snap);
        let text = render_to_text(&app, 100, 34);
        let line =
            |needle: &str| text.lines().find(|l| l.contains(needle)).unwrap_or_else(|| panic!("{needle}:\n{text}"));
        for cell in ["restic", "3h ago", "success", "45m 32s", "in 21h"] {
            assert!(line(" b2 ").contains(cell), "{cell} in {:?}", line(" b2 "));
        }
        assert!(text.contains("   ! restic-backups-nas.service: last run failed (exit-code)"), "{text}");
        assert!(line(" new ").contains("never"));
        assert_eq!(row_color(&draw(&app, 100, 34), " nas "), Color::Red);
    }

    #[test]
    fn a_collector_error_is_shown_in_place_of_its_values() {
        let mut snap = sample();
        snap.cpu = None;
        snap.collectors[1].error = Some("cannot read /proc/stat: Permission denied (os error 13)".into());
        let app = app_with(snap);
        let text = render_to_text(&app, 80, 24);
        assert!(text.contains("CPU  error: cannot read /proc/stat:"), "{text}");
        assert!(text.contains("\n  Permission denied (os error 13)"), "long errors wrap rather than vanish:\n{text}");
        assert_eq!(row_color(&draw(&app, 80, 24), "CPU  error"), Color::Magenta);
    }

    #[test]
    fn help_lists_every_key() {
        let mut app = app_with(sample());
        app.update(Msg::Key(crossterm::event::KeyEvent::new(
            crossterm::event::KeyCode::Char('?'),
            crossterm::event::KeyModifiers::NONE,
        )));
        let text = render_to_text(&app, 80, 24);
        for needle in [
            "help",
            "quit",
            "refresh now",
            "close help",
            "critical: past a critical threshold",
            "chart the selected row",
            "find any series to chart",
            "24h: filesystems  30d: wear",
        ] {
            assert!(text.contains(needle), "{needle} missing:\n{text}");
        }
    }

    #[test]
    fn before_the_first_snapshot_it_says_it_is_waiting() {
        let text = render_to_text(&App::local(0), 80, 24);
        assert!(text.contains("waiting for the first snapshot from this machine"), "{text}");
        let named = render_to_text(&App::local_named("vm", 0), 80, 24);
        assert!(named.starts_with(" cm-dashboard ── vm ── local, waiting for data"), "the name known before: {named}");
        assert!(text.contains("q quit"), "{text}");
    }

    #[test]
    fn a_tiny_window_still_names_the_host() {
        let text = render_to_text(&app_with(sample()), 20, 5);
        assert_eq!(text, "× srv01\nRAM 31% CPU 12%\nneed 40x10\nq quits\n\n");
    }

    #[test]
    fn a_huge_window_fills_the_title_bar() {
        let text = render_to_text(&app_with(sample()), 300, 80);
        let title = text.lines().next().unwrap();
        assert!(title.starts_with(" cm-dashboard ── srv01 ── local, 0.4 s ago ── up 3d 4h ── 6.12.8 ─"), "{title}");
        assert_eq!(title.chars().count(), 300);
        assert!(text.lines().nth(79).unwrap().contains("q quit"));
    }

    #[test]
    fn a_short_window_keeps_the_storage_table() {
        let text = render_to_text(&app_with(sample()), 80, 16);
        assert!(text.contains("  /var/lib"), "{text}");
        assert!(text.contains("RAM  10.0/32.0 GiB"), "{text}");
    }

    #[test]
    fn every_small_size_renders_without_panicking() {
        let mut chart = chart_app();
        let mut picker = app_with_history(sample());
        picker.update(key('g'));
        for app in [&app_with(sample()), &app_with_history(with_forecasts()), &chart, &picker] {
            for w in 1..=60 {
                for h in 1..=20 {
                    render_to_text(app, w, h);
                }
            }
        }
        chart.update(key('1'));
        render_to_text(&chart, 300, 80);
    }

    fn key(c: char) -> Msg {
        Msg::Key(crossterm::event::KeyEvent::new(
            crossterm::event::KeyCode::Char(c),
            crossterm::event::KeyModifiers::NONE,
        ))
    }

    fn code(c: crossterm::event::KeyCode) -> Msg {
        Msg::Key(crossterm::event::KeyEvent::new(c, crossterm::event::KeyModifiers::NONE))
    }

    const HOUR: i64 = 3_600_000;
    const DAY: i64 = 24 * HOUR;

    /// What the tests' store holds: CPU waves, memory and /var/lib creep up,
    /// the SSD wears, temperatures wave.
    fn stored(series: &str, ts: i64) -> f64 {
        let now = NOW_MS as i64;
        let wave = |period: f64| (ts as f64 / period).sin();
        match series {
            "cpu.utilisation_percent" => 20.0 + 15.0 * wave(420_000.0),
            "memory.used_percent" => 25.0 + 6.0 * (ts - (now - HOUR)) as f64 / HOUR as f64,
            "drive.nvme0n1.wear_percent" => 70.0 + 5.0 * (ts - (now - 30 * DAY)) as f64 / (30 * DAY) as f64,
            "fs./var/lib.used_percent" => 90.0 + 6.0 * (ts - (now - DAY)) as f64 / DAY as f64,
            "fs./.used_percent" => 49.0,
            name if name.ends_with("temperature_celsius") => 45.0 + 6.0 * wave(900_000.0),
            _ => 0.0,
        }
    }

    /// Answers every fetch waiting from [`stored`].
    fn answer(app: &mut App) -> usize {
        answer_from(app, stored)
    }

    fn answer_from(app: &mut App, store: impl Fn(&str, i64) -> f64) -> usize {
        let fetches = app.take_fetches();
        for fetch in &fetches {
            let answer = Ok(crate::history::synthetic_answer(&fetch.request, &store));
            app.update(Msg::HistoryAnswer { fetch: fetch.clone(), answer });
        }
        fetches.len()
    }

    /// `snap` in local mode, with a store that has answered.
    fn app_with_history(snap: HostSnapshot) -> App {
        let mut app = App::local(0);
        app.update(Msg::HistorySource { host: 0, available: Ok(()) });
        app.update(Msg::Snapshot { host: 0, snapshot: Box::new(snap), received_ms: NOW_MS - 400 });
        app.update(Msg::Tick(NOW_MS));
        assert_eq!(answer(&mut app), 3, "a request per sparkline window");
        app
    }

    /// The sample with forecasts: /var/lib full in about 23 days, the SSD worn out in about 120 days.
    fn with_forecasts() -> HostSnapshot {
        let mut snap = sample();
        let days = |d: u64| NOW_MS + d * DAY as u64;
        snap.filesystems[1].full =
            Some(Forecast { at_ms: days(23), earliest_ms: days(18), latest_ms: days(31), per_day: 0.2, days: 14.0 });
        snap.drives[0].worn_out =
            Some(Forecast { at_ms: days(120), earliest_ms: days(91), latest_ms: days(183), per_day: 0.2, days: 30.0 });
        snap
    }

    #[test]
    fn host_view_with_history_80x24() {
        insta::assert_snapshot!(render_to_text(&app_with_history(with_forecasts()), 80, 24));
    }

    #[test]
    fn sparklines_draw_the_history_and_forecasts_sit_beside_their_value() {
        let text = render_to_text(&app_with_history(with_forecasts()), 100, 30);
        let line =
            |needle: &str| text.lines().find(|l| l.contains(needle)).unwrap_or_else(|| panic!("{needle}:\n{text}"));
        // Percentages stand against 0-100: 90 % and up is a full block.
        assert!(line("/var/lib ext4").ends_with("96%  ██████████ full in 23 d (18-31)"), "{text}");
        assert!(line("  / ext4").ends_with("49%  ▄▄▄▄▄▄▄▄▄▄"), "49% all day: {text}");
        assert!(line("    wear ").contains("wear ▆▆▆▆▆▆▆▆▆▆ worn out in 120 d (91-183)"), "{text}");
        assert!(line("    wear ").contains("temp ▆████▇▅▃▂▁"), "a temperature against its own range: {text}");
        let cpu = line("1h");
        assert!(!cpu.contains('·'), "an hour of CPU from the store: {cpu}");
        assert!(line("RAM ").contains("31% ▃"), "{text}");
    }

    #[test]
    fn the_cursor_marks_the_sparkline_enter_charts() {
        let mut app = app_with_history(sample());
        let reversed = |app: &App, needle: &str| {
            let buf = draw(app, 100, 30);
            let lines = crate::terminal::buffer_text(&buf);
            let (y, line) = lines.lines().enumerate().find(|(_, l)| l.contains(needle)).unwrap();
            let x = line.chars().position(|c| "▁▂▃▄▅▆▇█".contains(c)).unwrap() as u16;
            buf[(x, y as u16)].modifier.contains(ratatui::style::Modifier::REVERSED)
        };
        assert!(reversed(&app, " 1h"), "the first row, CPU, to begin with");
        assert!(!reversed(&app, "/var/lib ext4"));
        for _ in 0..5 {
            app.update(code(crossterm::event::KeyCode::Down));
        }
        assert!(reversed(&app, "/var/lib ext4"));
        assert!(!reversed(&app, " 1h"));
    }

    /// The chart of /var/lib over the last day, its store answered.
    fn chart_app() -> App {
        let mut app = app_with_history(with_forecasts());
        for _ in 0..5 {
            app.update(code(crossterm::event::KeyCode::Down));
        }
        app.update(code(crossterm::event::KeyCode::Enter));
        assert_eq!(answer(&mut app), 1);
        app
    }

    #[test]
    fn chart_view_80x24() {
        insta::assert_snapshot!(render_to_text(&chart_app(), 80, 24));
    }

    #[test]
    fn the_chart_prints_min_max_and_last_and_labels_its_axes() {
        let mut app = chart_app();
        let text = render_to_text(&app, 80, 24);
        assert!(text.contains(" fs./var/lib.used_percent  percent   range  1h [24h] 7d  30d"), "{text}");
        // Rollups of 90 -> 96 % over the day, each +-1, and the live 96.25 %.
        assert!(text.contains("min 89.0%  max 97.0%  last 96.2%"), "{text}");
        assert!(text.contains("97.0% ┤") && text.contains("89.0% ┤"), "the axis in the series' unit: {text}");
        let last = text.lines().rev().nth(1).unwrap();
        assert!(last.contains("-24h") && last.contains("-12h") && last.ends_with("now"), "{last}");
        assert!(text.contains("1 1h  2 24h  3 7d  4 30d"), "the range keys are in the key bar: {text}");
        app.update(key('1'));
        let text = render_to_text(&app, 80, 24);
        assert!(text.contains("range [1h] 24h"), "{text}");
        assert!(
            text.contains("min 96.2%  max 96.2%  last 96.2%   loading…"),
            "until the store answers, the live sample: {text}"
        );
        answer(&mut app);
        let text = render_to_text(&app, 80, 24);
        assert!(
            text.contains("min 95.8%  max 96.0%  last 96.2%"),
            "an hour of raw samples, and the live value: {text}"
        );
        assert!(text.contains("30 s buckets"), "{text}");
    }

    #[test]
    fn without_stored_history_the_views_say_so() {
        let mut app = App::local(0);
        app.update(Msg::HistorySource {
            host: 0,
            available: Err("agent 0.1.0 speaks protocol 1.1, history needs 1.2".into()),
        });
        app.update(Msg::Snapshot { host: 0, snapshot: Box::new(sample()), received_ms: NOW_MS - 400 });
        app.update(Msg::Tick(NOW_MS));
        assert!(app.take_fetches().is_empty());
        let text = render_to_text(&app, 140, 30);
        assert!(text.contains("no stored history: agent 0.1.0 speaks protocol 1.1, history needs 1.2"), "{text}");
        app.update(code(crossterm::event::KeyCode::Enter));
        let text = render_to_text(&app, 140, 30);
        assert!(text.contains("min 12.0%  max 12.0%  last 12.0%   no stored history (agent 0.1.0"), "{text}");
    }

    #[test]
    fn the_overview_shows_where_memory_and_the_fullest_filesystem_head() {
        use crate::app::{Connection, HostEntry};
        let fleet = || {
            let mut app = App::remote(vec![HostEntry::new("srv01", "server", Connection::Connecting)], NOW_MS);
            app.update(Msg::Connection { host: 0, connection: Connection::Connected, interval_ms: Some(2000) });
            app.update(Msg::HistorySource { host: 0, available: Ok(()) });
            app.update(Msg::Snapshot { host: 0, snapshot: Box::new(sample()), received_ms: NOW_MS });
            app
        };
        let row = |app: &App| {
            let text = render_to_text(app, 100, 12);
            text.lines().find(|l| l.contains("srv01")).unwrap().to_owned()
        };
        // Memory up 20 points in the hour, /var/lib down 0.6 points an hour.
        let mut moving = fleet();
        answer_from(&mut moving, |name, ts| {
            let hours = (ts - (NOW_MS as i64 - DAY)) as f64 / HOUR as f64;
            match name {
                "memory.used_percent" => 10.0 + 20.0 * (ts - (NOW_MS as i64 - HOUR)) as f64 / HOUR as f64,
                "fs./var/lib.used_percent" => 99.0 - 0.6 * hours,
                other => stored(other, ts),
            }
        });
        let moving = row(&moving);
        assert!(moving.contains(" 31%↑ ") && moving.contains(" 96%↓ "), "{moving}");

        let mut app = fleet();
        let text = render_to_text(&app, 100, 12);
        let row = text.lines().find(|l| l.contains("srv01")).unwrap().to_owned();
        assert!(row.contains(" 31%  ") && row.contains(" 96%  "), "no history yet, no arrow: {row}");
        answer(&mut app);
        let text = render_to_text(&app, 100, 12);
        let header = text.lines().nth(1).unwrap();
        assert!(header.contains("ram   disk  wear"), "{header}");
        let row = text.lines().find(|l| l.contains("srv01")).unwrap();
        // Memory rose 2 points in the last 20 minutes: not enough to turn; /var/lib 0.5 in 4 h: steady too.
        assert!(row.contains(" 31%→ ") && row.contains(" 96%→ "), "{row}");
    }

    #[test]
    fn help_lists_the_chart_keys_in_the_chart() {
        let mut app = chart_app();
        app.update(key('?'));
        let text = render_to_text(&app, 80, 24);
        for needle in ["1h (the last hour)", "30d (the last 30 days)", "back to the host", "series (previous", "band ░"]
        {
            assert!(text.contains(needle), "{needle} missing:\n{text}");
        }
        assert_eq!(text.matches(" Esc  ").count(), 1, "Esc once, with the chart's meaning:\n{text}");
    }
}

#[cfg(test)]
mod alert_tests {
    use cm_proto::alert::{Alert, AlertEvent, AlertState, NotifierStatus};
    use cm_proto::history::Answer;
    use cm_proto::Status;
    use crossterm::event::KeyCode;
    use ratatui::style::Color;

    use super::tests::{app_with, fleet_app, sample};
    use crate::app::{App, Msg, View};
    use crate::terminal::render_to_text;

    const NOW_MS: u64 = 1_764_000_000_000;
    const MIN: u64 = 60_000;

    fn key(c: char) -> Msg {
        code(KeyCode::Char(c))
    }

    fn code(c: KeyCode) -> Msg {
        Msg::Key(crossterm::event::KeyEvent::new(c, crossterm::event::KeyModifiers::NONE))
    }

    fn alert(rule: &str, instance: &str, state: AlertState, severity: Status, ago_min: u64, reason: &str) -> Alert {
        Alert {
            rule: rule.into(),
            instance: instance.into(),
            state,
            severity,
            since_ms: NOW_MS - ago_min * MIN,
            started_ms: NOW_MS - ago_min * MIN,
            value: None,
            reason: reason.into(),
        }
    }

    /// srv01 with /srv filling up (firing), a load alert on its way
    /// (pending) and a resolved one; steambox with a flapping temperature;
    /// srv01's mail target failing.
    fn alerting_fleet() -> App {
        let mut app = fleet_app();
        let mut srv = app.hosts[0].snapshot.clone().unwrap();
        srv.alerts = vec![
            alert("fs-full", "/srv", AlertState::Firing, Status::Critical, 12, "used 92% (critical at 90%)"),
            alert("load", "", AlertState::Pending, Status::Warning, 1, "load1 9.1 (warning at 8)"),
            alert("oom", "", AlertState::Resolved, Status::Warning, 40, "no OOM kill in 10 min"),
        ];
        srv.notifiers = vec![NotifierStatus {
            route: "ops".into(),
            target: "smtp://mail.example.org".into(),
            queued: 3,
            error: Some("connection refused".into()),
            retry_ms: Some(NOW_MS + 40_000),
            ..Default::default()
        }];
        app.update(Msg::Snapshot { host: 0, snapshot: Box::new(srv), received_ms: NOW_MS - 400 });
        let mut steam = app.hosts[1].snapshot.clone().unwrap();
        steam.alerts =
            vec![alert("cpu-hot", "k10temp", AlertState::Flapping, Status::Warning, 30, "83 C (warning at 80 C)")];
        app.update(Msg::Snapshot { host: 1, snapshot: Box::new(steam), received_ms: NOW_MS - 400 });
        app.update(Msg::Tick(NOW_MS));
        app
    }

    fn lines_with<'a>(text: &'a str, needle: &str) -> Vec<&'a str> {
        text.lines().filter(|l| l.contains(needle)).collect()
    }

    #[test]
    fn a_opens_the_alerts_of_every_host_worst_first_and_esc_goes_back() {
        let mut app = alerting_fleet();
        app.update(key('a'));
        assert_eq!(app.view, View::Alerts);
        let text = render_to_text(&app, 100, 30);
        assert!(text.starts_with(" cm-dashboard ── alerts ── 2 firing, 1 pending"), "{text}");
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[1].starts_with(
                "! srv01 notify ops smtp://mail.example.org: connection refused (retry in 40 s, 3 queued)"
            ),
            "the failing target first: {text}"
        );
        let order: Vec<&str> =
            ["fs-full /srv", "cpu-hot k10temp", "load", "oom"].into_iter().filter(|t| text.contains(t)).collect();
        assert_eq!(order.len(), 4, "{text}");
        let at = |t: &str| lines.iter().position(|l| l.contains(t)).unwrap();
        assert!(at("fs-full /srv") < at("cpu-hot") && at("cpu-hot") < at("  load "), "{text}");
        assert!(at("Recent") < at("oom"), "the resolved one is recent: {text}");
        let fs = lines[at("fs-full /srv")];
        for cell in ["srv01", "crit", "firing", "used 92% (critical at 90%)", "12m"] {
            assert!(fs.contains(cell), "{cell} in {fs}");
        }
        assert!(fs.starts_with("× "), "{fs}");
        let buf = super::tests::draw(&app, 100, 30);
        assert_eq!(super::tests::row_color(&buf, "fs-full /srv"), Color::Red);
        assert_eq!(super::tests::row_color(&buf, "cpu-hot"), Color::Yellow);
        assert_eq!(super::tests::row_color(&buf, "load1 9.1"), Color::DarkGray, "pending: told no one yet");
        app.update(code(KeyCode::Esc));
        assert_eq!(app.view, View::Overview);
        app.update(code(KeyCode::Enter));
        app.update(key('a'));
        app.update(code(KeyCode::Tab));
        assert_eq!(app.view, View::Host, "back where it was opened");
        app.update(key('a'));
        app.update(key('a'));
        assert_eq!(app.view, View::Host, "a again goes back too");
    }

    #[test]
    fn the_filter_and_the_severity_narrow_the_alerts() {
        let mut app = alerting_fleet();
        app.update(key('a'));
        app.update(key('/'));
        for c in "k10".chars() {
            app.update(key(c));
        }
        app.update(code(KeyCode::Enter));
        let text = render_to_text(&app, 100, 30);
        assert!(text.contains("cpu-hot k10temp") && !text.contains("fs-full"), "the instance matches: {text}");
        assert!(text.contains("── filter: k10"), "{text}");
        app.update(key('f'));
        app.update(code(KeyCode::Esc));
        app.update(key('s'));
        let text = render_to_text(&app, 100, 30);
        assert!(text.contains("severity: warning and critical") && text.contains("load"), "{text}");
        app.update(key('s'));
        let text = render_to_text(&app, 100, 30);
        assert!(text.contains("severity: critical"), "{text}");
        assert!(text.contains("fs-full /srv") && !text.contains("cpu-hot") && !text.contains("oom"), "{text}");
        app.update(key('/'));
        app.update(key('x'));
        app.update(key('y'));
        let text = render_to_text(&app, 100, 30);
        assert!(text.contains("no alerts match the filter"), "{text}");
        app.update(code(KeyCode::Esc));
        app.update(key('s'));
        let text = render_to_text(&app, 100, 30);
        assert!(!text.lines().next().unwrap().contains("severity:") && text.contains("cpu-hot"), "all again: {text}");
    }

    #[test]
    fn the_alerts_views_own_filter_matches_a_row_as_shown_and_leaves_the_overview_alone() {
        let mut app = alerting_fleet();
        let selected = app.selected;
        app.update(key('a'));
        app.update(key('/'));
        for c in "fs-full /srv".chars() {
            app.update(key(c));
        }
        app.update(code(KeyCode::Enter));
        let text = render_to_text(&app, 100, 30);
        assert!(text.contains("fs-full /srv") && !text.contains("cpu-hot"), "rule and instance as one: {text}");
        app.update(code(KeyCode::Esc));
        assert_eq!(app.view, View::Overview);
        assert_eq!((app.filter.as_str(), app.selected), ("", selected), "the overview's filter and selection");
        assert!(render_to_text(&app, 100, 30).contains("steambox"));
        app.update(key('a'));
        assert!(render_to_text(&app, 100, 30).contains("── filter: fs-full /srv"), "the alerts view keeps its own");
    }

    #[test]
    fn a_with_the_help_open_in_the_alerts_view_goes_back() {
        let mut app = alerting_fleet();
        app.update(key('a'));
        app.update(key('?'));
        app.update(key('a'));
        assert_eq!((app.view, app.show_help), (View::Overview, false));
        app.update(key('a'));
        app.update(code(KeyCode::Esc));
        assert_eq!(app.view, View::Overview, "Esc goes back as before");
    }

    #[test]
    fn an_unreachable_hosts_alerts_are_dimmed_and_said_to_be_as_last_seen() {
        let mut app = alerting_fleet();
        let connection = crate::app::Connection::Unreachable { reason: "connection refused".into() };
        app.update(Msg::Connection { host: 0, connection, interval_ms: None });
        app.update(key('a'));
        let text = render_to_text(&app, 100, 30);
        let first = text.lines().nth(1).unwrap();
        assert!(first.starts_with("× srv01 unreachable: ") && text.contains("its alerts as of"), "{text}");
        assert!(!text.contains("notify ops"), "a notifier it cannot tell of now is not listed: {text}");
        let buf = super::tests::draw(&app, 100, 30);
        assert_eq!(super::tests::row_color(&buf, "fs-full /srv"), Color::DarkGray, "as last seen");
        assert_eq!(super::tests::row_color(&buf, "cpu-hot"), Color::Yellow, "steambox is live");
    }

    #[test]
    fn page_keys_move_a_screen_and_a_shrunk_list_scrolls_from_where_it_shows() {
        let mut app = alerting_fleet();
        let mut srv = app.hosts[0].snapshot.clone().unwrap();
        for i in 0..40 {
            srv.alerts.push(alert(&format!("disk-{i}"), "", AlertState::Resolved, Status::Warning, 50 + i, "cleared"));
        }
        app.update(Msg::Snapshot { host: 0, snapshot: Box::new(srv.clone()), received_ms: NOW_MS - 400 });
        app.update(Msg::Resize { cols: 80, rows: 24 });
        app.update(key('a'));
        app.update(code(KeyCode::PageDown));
        assert_eq!(app.alerts_scroll, 21, "the 22 rows of a 24-row screen, less the note");
        app.update(code(KeyCode::End));
        let end = app.alerts_scroll;
        // Half the rows go: the first key up moves the screen.
        srv.alerts.truncate(23);
        app.update(Msg::Snapshot { host: 0, snapshot: Box::new(srv), received_ms: NOW_MS - 300 });
        let limit = super::alerts_scroll_limit(&app);
        assert!(limit < end, "{limit} < {end}");
        app.update(code(KeyCode::Up));
        assert_eq!(app.alerts_scroll, limit - 1);
    }

    #[test]
    fn with_no_alerts_it_says_so() {
        let mut app = fleet_app();
        app.update(key('a'));
        let text = render_to_text(&app, 80, 24);
        assert_eq!(text.lines().nth(1), Some("  no alerts"), "{text}");
        assert!(text.contains("0 firing, 0 pending"), "{text}");
    }

    #[test]
    fn the_store_s_transitions_come_when_the_view_opens_and_every_minute() {
        let mut app = alerting_fleet();
        app.update(Msg::EventSource { host: 0, available: Ok(()) });
        app.update(Msg::EventSource {
            host: 1,
            available: Err("agent 0.2.0 speaks protocol 1.2, alert history needs 1.3".into()),
        });
        let events = |f: &Vec<crate::history::Fetch>| f.iter().filter(|f| f.request.events).count();
        assert_eq!(events(&app.take_fetches()), 0, "nothing asked while the view is closed");
        app.update(key('a'));
        let fetches = app.take_fetches();
        assert_eq!(events(&fetches), 1, "srv01 only: {fetches:?}");
        let fetch = fetches.into_iter().find(|f| f.request.events).unwrap();
        assert_eq!(fetch.host, 0);
        let text = render_to_text(&app, 100, 30);
        assert!(text.contains("srv01: loading the alert history…"), "{text}");
        assert!(
            text.contains("steambox: no alert history: agent 0.2.0 speaks protocol 1.2, alert history needs 1.3"),
            "{text}"
        );
        let fired = AlertEvent {
            ts_ms: NOW_MS - 3 * 3_600_000,
            rule: "backup-late".into(),
            instance: "nas".into(),
            state: AlertState::Firing,
            severity: Status::Critical,
            value: None,
            reason: "last success 30 h ago".into(),
        };
        let resolved = AlertEvent { ts_ms: NOW_MS - 3_600_000, state: AlertState::Resolved, ..fired.clone() };
        let answer = Answer { events: vec![fired, resolved], ..Default::default() };
        app.update(Msg::HistoryAnswer { fetch, answer: Ok(answer) });
        let text = render_to_text(&app, 100, 30);
        assert!(!text.contains("loading"), "{text}");
        let rows = lines_with(&text, "backup-late nas");
        assert_eq!(rows.len(), 2, "{text}");
        assert!(rows[0].contains("resolved") && rows[0].contains("1h"), "newest first: {rows:?}");
        assert!(rows[1].contains("firing") && rows[1].contains("3h"), "{rows:?}");
        let oom = text.lines().position(|l| l.contains("oom")).unwrap();
        let newest = text.lines().position(|l| l.contains("backup-late nas")).unwrap();
        assert!(oom < newest, "40 min ago before 1 h ago: {text}");
        app.update(Msg::Tick(NOW_MS + 30_000));
        assert_eq!(events(&app.take_fetches()), 0);
        app.update(Msg::Tick(NOW_MS + MIN));
        assert_eq!(events(&app.take_fetches()), 1, "again a minute after the answer");
    }

    #[test]
    fn alerts_view_80x24() {
        let mut app = alerting_fleet();
        app.update(key('a'));
        insta::assert_snapshot!(render_to_text(&app, 80, 24));
    }

    #[test]
    fn alerts_view_40x12_scrolls() {
        let mut app = alerting_fleet();
        let mut srv = app.hosts[0].snapshot.clone().unwrap();
        for i in 0..6 {
            let rule = format!("disk-{i}");
            srv.alerts.push(alert(&rule, "", AlertState::Resolved, Status::Warning, 50 + i, "cleared"));
        }
        app.update(Msg::Snapshot { host: 0, snapshot: Box::new(srv), received_ms: NOW_MS - 400 });
        app.update(Msg::Resize { cols: 40, rows: 12 });
        app.update(key('a'));
        let text = render_to_text(&app, 40, 12);
        insta::assert_snapshot!(text);
        assert!(text.contains("more rows: ↓/PgDn"), "{text}");
        app.update(code(KeyCode::End));
        let text = render_to_text(&app, 40, 12);
        assert!(text.contains("rows above"), "{text}");
        assert!(text.contains("severity, reason"), "the narrow view says what it leaves out: {text}");
        app.update(code(KeyCode::Home));
        assert_eq!(app.alerts_scroll, 0);
    }

    #[test]
    fn the_host_view_lists_its_active_alerts_first() {
        let app = alerting_fleet();
        let mut srv = app_with(app.hosts[0].snapshot.clone().unwrap());
        srv.update(Msg::Tick(NOW_MS));
        for (w, h) in [(80, 24), (40, 12)] {
            let text = render_to_text(&srv, w, h);
            let lines: Vec<&str> = text.lines().collect();
            assert!(lines[1].starts_with("  Alerts"), "{w}x{h}: the section on top:\n{text}");
            assert!(lines[2].starts_with("× ") && lines[2].contains("fs-full /srv"), "{w}x{h}:\n{text}");
            assert!(lines[2].contains("firing") && lines[2].contains("12m"), "{w}x{h}:\n{text}");
            super::tests::assert_no_split_values(&text);
        }
        let text = render_to_text(&srv, 80, 24);
        assert!(text.contains("   used 92% (critical at 90%)"), "the reason under it:\n{text}");
        assert!(text.contains("load ") && text.contains("pending"), "{text}");
        assert!(!text.contains("oom"), "resolved is not active:\n{text}");
        assert!(text.contains("Storage"), "{text}");
        insta::assert_snapshot!("host_view_with_alerts_80x24", text);
        let plain = render_to_text(&app_with(sample()), 80, 24);
        assert!(!plain.contains("Alerts"), "no alerts, no section:\n{plain}");
    }

    #[test]
    fn the_overview_names_the_alert_that_made_a_host_red() {
        let app = alerting_fleet();
        let text = render_to_text(&app, 100, 12);
        let row = text.lines().find(|l| l.contains("srv01")).unwrap();
        assert!(row.contains("crit") && row.contains("fs-full /srv: used 92%"), "{row}");
        let row = text.lines().find(|l| l.contains("steambox")).unwrap();
        assert!(row.contains("warn") && row.contains("cpu-hot k10temp"), "{row}");
        let narrow = render_to_text(&app, 40, 12);
        let row = narrow.lines().find(|l| l.contains("srv01")).unwrap();
        assert!(row.contains("crit") && row.contains("fs-full"), "{row}");
    }

    #[test]
    fn the_help_names_the_alert_keys() {
        let mut app = alerting_fleet();
        let text = {
            app.update(key('?'));
            render_to_text(&app, 80, 40)
        };
        assert!(text.contains("alerts of every host"), "{text}");
        app.update(code(KeyCode::Esc));
        app.update(key('a'));
        app.update(key('?'));
        let text = render_to_text(&app, 100, 40);
        for needle in [
            "back to the view before",
            "severity shown: all, warning+, critical",
            "filter by host, rule",
            "recent: the last 24 h",
        ] {
            assert!(text.contains(needle), "{needle}:\n{text}");
        }
        assert!(!text.contains("overview / host"), "Tab means back here:\n{text}");
    }

    #[test]
    fn every_small_size_of_the_alerts_view_renders() {
        let mut app = alerting_fleet();
        app.update(key('a'));
        for w in 1..=60 {
            for h in 1..=20 {
                render_to_text(&app, w, h);
            }
        }
    }
}
