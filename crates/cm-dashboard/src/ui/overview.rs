//! The fleet overview: one row per host, worst first by default.

use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::Line;
use ratatui::Frame;

use crate::app::{App, Connection, HostEntry};
use crate::history::Trend;
use crate::{format, theme};

const HEADER: [&str; 10] = ["host", "role", "cpu", "ram", "disk", "wear", "services", "nixos", "status", "last change"];
/// Widths of every column but the last, which takes the rest.
const WIDTHS: [usize; 9] = [14, 11, 5, 5, 5, 5, 8, 11, 7];
/// The nixos column, shown only when a host of the fleet runs NixOS.
const NIXOS: usize = 7;

pub fn title_line(app: &App, width: u16) -> Line<'static> {
    let connected = app.hosts.iter().filter(|h| h.connection == Connection::Connected).count();
    let down = app.hosts.iter().filter(|h| matches!(h.connection, Connection::Unreachable { .. })).count();
    let mut text = format!(" cm-dashboard ── fleet ── {} hosts: {connected} connected", app.hosts.len());
    if down > 0 {
        text.push_str(&format!(", {down} unreachable"));
    }
    text.push_str(&format!(" ── sort: {}", app.sort.label()));
    if app.group_by_role {
        text.push_str(", by role");
    }
    if !app.filter.is_empty() {
        text.push_str(&format!(" ── filter: {}", app.filter));
    }
    super::fill_title(text, width)
}

fn row(cells: &[String], nixos: bool) -> String {
    let mut line = String::from(" ");
    let widths = WIDTHS.iter().enumerate().filter(|(i, _)| nixos || *i != NIXOS).map(|(_, w)| *w);
    for (cell, w) in cells.iter().zip(widths) {
        let mut c: String = cell.chars().take(w).collect();
        if cell.chars().count() > w {
            c.pop();
            c.push('…');
        }
        line.push_str(&format!("{c:<w$} "));
    }
    line.push_str(cells.last().map_or("", String::as_str));
    line
}

/// The one thing a person should know about a host, for the last column.
fn headline(h: &HostEntry, now_ms: u64) -> String {
    if let Connection::Unreachable { reason } = &h.connection {
        return format!("unreachable: {reason}");
    }
    let Some(summary) = &h.summary else { return h.connection.label() };
    let age = h.received_ms.map(|at| format::age(now_ms.saturating_sub(at))).unwrap_or_default();
    if h.is_stale(now_ms) {
        return format!("stale: last snapshot {age}");
    }
    summary.reason.clone().unwrap_or(age)
}

fn cells(h: &HostEntry, now_ms: u64, nixos: bool) -> Vec<String> {
    let s = h.summary.as_ref();
    let pct = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.0}%"));
    // Memory and the fullest filesystem carry their trend, when the history
    // held is long enough to tell one (history::TrendRule).
    let trend = |v: Option<f64>, t: Option<Trend>| match (v, t) {
        (Some(v), Some(t)) => format!("{v:.0}%{}", t.arrow()),
        (v, _) => pct(v),
    };
    let trends = &h.history.trends;
    let services = s.and_then(|s| s.services).map_or_else(|| "-".to_string(), |(ok, all)| format!("{ok}/{all}"));
    let status = h.status(now_ms).label().to_string();
    let mut cells = vec![
        h.name.clone(),
        h.role.clone(),
        pct(s.and_then(|s| s.cpu_percent)),
        trend(s.and_then(|s| s.ram_percent), trends.memory),
        trend(s.and_then(|s| s.disk_percent), trends.fullest.as_ref().and_then(|(_, t)| *t)),
        pct(s.and_then(|s| s.wear_percent)),
        services,
        s.and_then(|s| s.nixos.clone()).unwrap_or_else(|| "-".to_string()),
        status,
        headline(h, now_ms),
    ];
    if !nixos {
        cells.remove(NIXOS);
    }
    cells
}

pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let nixos = app.hosts.iter().any(|h| h.summary.as_ref().is_some_and(|s| s.nixos.is_some()));
    let header: Vec<String> =
        HEADER.iter().enumerate().filter(|(i, _)| nixos || *i != NIXOS).map(|(_, s)| (*s).to_string()).collect();
    let mut lines = vec![Line::styled(row(&header, nixos), theme::header())];
    let order = app.order();
    if order.is_empty() {
        let why = if app.filter.is_empty() { "no hosts configured" } else { "no host matches the filter" };
        lines.push(Line::styled(format!(" {why}"), theme::dim()));
    }
    let mut group: Option<&str> = None;
    for i in order {
        if lines.len() >= usize::from(area.height) {
            break; // the rows below the window are not drawn: do not make them
        }
        let h = &app.hosts[i];
        if app.group_by_role && group != Some(h.role.as_str()) {
            group = Some(h.role.as_str());
            let name = if h.role.is_empty() { "(no role)" } else { h.role.as_str() };
            lines.push(Line::styled(format!(" {name}"), theme::dim()));
        }
        let mut style = theme::status(h.status(app.now_ms));
        if i == app.selected {
            style = style.add_modifier(Modifier::REVERSED);
        }
        lines.push(Line::styled(row(&cells(h, app.now_ms, nixos), nixos), style));
    }
    let buf = frame.buffer_mut();
    for (line, y) in lines.iter().zip(area.top()..area.bottom()) {
        buf.set_line(area.x, y, line, area.width);
    }
}
