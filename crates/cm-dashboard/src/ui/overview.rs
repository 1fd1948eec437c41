//! The fleet overview: one row per host, worst first by default.
//!
//! What each width shows: the host, its status and why are always there
//! (the why cut to its column; the detail line under the list has it
//! whole). The other columns come in as the width allows, in this order:
//! since (how long the host has had its status), cpu, ram, disk, services,
//! role, wear, nixos; a line under the list names the ones left out. A list
//! longer than the window scrolls with the selection and says how many
//! hosts are above and below.

use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::Frame;

use crate::app::{App, Connection, HostEntry};
use crate::history::Trend;
use crate::{format, theme};

/// The columns, in the order they are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Host,
    Role,
    Cpu,
    Ram,
    Disk,
    Wear,
    Services,
    Nixos,
    Status,
    Since,
    Why,
}

impl Column {
    const ALL: [Column; 11] = [
        Column::Host,
        Column::Role,
        Column::Cpu,
        Column::Ram,
        Column::Disk,
        Column::Wear,
        Column::Services,
        Column::Nixos,
        Column::Status,
        Column::Since,
        Column::Why,
    ];
    /// The optional columns, the first to come in first.
    const BY_PRIORITY: [Column; 8] = [
        Column::Since,
        Column::Cpu,
        Column::Ram,
        Column::Disk,
        Column::Services,
        Column::Role,
        Column::Wear,
        Column::Nixos,
    ];

    fn header(self) -> &'static str {
        match self {
            Column::Host => "host",
            Column::Role => "role",
            Column::Cpu => "cpu",
            Column::Ram => "ram",
            Column::Disk => "disk",
            Column::Wear => "wear",
            Column::Services => "services",
            Column::Nixos => "nixos",
            Column::Status => "status",
            Column::Since => "since",
            Column::Why => "why",
        }
    }

    /// Cells, without the space after them; the last column takes what is left.
    fn width(self) -> usize {
        match self {
            Column::Host => 14,
            Column::Role => 11,
            Column::Cpu | Column::Ram | Column::Disk | Column::Wear => 5,
            Column::Services => 8,
            Column::Nixos => 11,
            Column::Status => 7,
            Column::Since => 5,
            Column::Why => WHY_MIN,
        }
    }

    /// A figure from the snapshot: dimmed when the snapshot is old.
    fn is_value(self) -> bool {
        matches!(self, Column::Cpu | Column::Ram | Column::Disk | Column::Wear | Column::Services | Column::Nixos)
    }
}

/// The least room the why column keeps; the detail line has the whole text.
const WHY_MIN: usize = 20;

/// The columns that fit in `width` (the selection mark and a space after
/// each column counted), and the ones left out.
fn columns(width: usize, nixos: bool) -> (Vec<Column>, Vec<Column>) {
    let cost = |c: Column| c.width() + 1;
    let mut used = 1 + cost(Column::Host) + cost(Column::Status) + WHY_MIN;
    let mut shown = vec![Column::Host, Column::Status, Column::Why];
    let mut hidden = Vec::new();
    for c in Column::BY_PRIORITY.into_iter().filter(|&c| nixos || c != Column::Nixos) {
        if hidden.is_empty() && used + cost(c) <= width {
            used += cost(c);
            shown.push(c);
        } else {
            hidden.push(c);
        }
    }
    let order = |list: &mut Vec<Column>| list.sort_by_key(|c| Column::ALL.iter().position(|a| a == c));
    order(&mut shown);
    order(&mut hidden);
    (shown, hidden)
}

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

/// The text of `column` for host `h`.
fn cell(column: Column, h: &HostEntry, now_ms: u64) -> String {
    let s = h.summary.as_ref();
    let pct = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.0}%"));
    // Memory and the fullest filesystem carry their trend, when the history
    // held is long enough to tell one (history::TrendRule).
    let trend = |v: Option<f64>, t: Option<Trend>| match (v, t) {
        (Some(v), Some(t)) => format!("{v:.0}%{}", t.arrow()),
        (v, _) => pct(v),
    };
    let trends = &h.history.trends;
    match column {
        Column::Host => h.name.clone(),
        Column::Role => h.role.clone(),
        Column::Cpu => pct(s.and_then(|s| s.cpu_percent)),
        Column::Ram => trend(s.and_then(|s| s.ram_percent), trends.memory),
        Column::Disk => trend(s.and_then(|s| s.disk_percent), trends.fullest.as_ref().and_then(|(_, t)| *t)),
        Column::Wear => pct(s.and_then(|s| s.wear_percent)),
        Column::Services => {
            s.and_then(|s| s.services).map_or_else(|| "-".to_string(), |(ok, all)| format!("{ok}/{all}"))
        }
        Column::Nixos => s.and_then(|s| s.nixos.clone()).unwrap_or_else(|| "-".to_string()),
        Column::Status => h.status(now_ms).label().to_string(),
        Column::Since => format::short_age(now_ms.saturating_sub(h.status_since_ms)),
        Column::Why => h.headline(now_ms).unwrap_or_default(),
    }
}

/// One row: the selection mark, then each column's cell; `style` for all
/// of it but the values of an old snapshot, which are dimmed.
fn row(
    columns: &[Column],
    width: usize,
    texts: impl Fn(Column) -> String,
    selected: bool,
    old: bool,
    style: Style,
) -> Line<'static> {
    let fixed: usize = 1 + columns.iter().filter(|c| **c != Column::Why).map(|c| c.width() + 1).sum::<usize>();
    let mark = if selected { theme::SELECTED } else { ' ' };
    let mut spans = vec![Span::styled(mark.to_string(), style)];
    for &c in columns {
        let text = if c == Column::Why {
            format::fit(&texts(c), width.saturating_sub(fixed)).trim_end().to_owned()
        } else {
            format!("{} ", format::fit(&texts(c), c.width()))
        };
        let style = if old && c.is_value() { style.patch(theme::old()) } else { style };
        spans.push(Span::styled(text, style));
    }
    Line::from(spans)
}

pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let now = app.now_ms;
    let width = usize::from(area.width);
    let nixos = app.hosts.iter().any(|h| h.summary.as_ref().is_some_and(|s| s.nixos.is_some()));
    let (shown, hidden) = columns(width, nixos);
    let header = row(&shown, width, |c| c.header().to_string(), false, false, theme::header());

    // The list: group names and host rows, the selected one's place in it.
    let order = app.order();
    let mut list: Vec<(Line<'static>, bool)> = Vec::new();
    let mut at = None;
    let mut group: Option<&str> = None;
    for &i in &order {
        let h = &app.hosts[i];
        if app.group_by_role && group != Some(h.role.as_str()) {
            group = Some(h.role.as_str());
            let name = if h.role.is_empty() { "(no role)" } else { h.role.as_str() };
            list.push((Line::styled(format!("  {name}"), theme::dim()), false));
        }
        let selected = i == app.selected;
        let mut style = theme::status(h.status(now));
        if selected {
            style = style.add_modifier(Modifier::REVERSED);
            at = Some(list.len());
        }
        list.push((row(&shown, width, |c| cell(c, h, now), selected, h.is_old(now), style), true));
    }

    let mut lines = vec![header];
    if order.is_empty() {
        let why = if app.filter.is_empty() { "no hosts configured" } else { "no host matches the filter" };
        lines.push(Line::styled(format!("  {why}"), theme::dim()));
    }
    let room = usize::from(area.height).saturating_sub(1);
    if list.len() <= room {
        lines.extend(list.into_iter().map(|(l, _)| l));
    } else {
        // Pages, with a line below for what is off screen and, after the
        // first page, one above.
        let first_page = room.saturating_sub(1).max(1);
        let page = room.saturating_sub(2).max(1);
        let at = at.unwrap_or(0);
        let first = if at < first_page { 0 } else { first_page + (at - first_page) / page * page };
        let page = if first == 0 { first_page } else { page };
        let hosts = |part: &[(Line, bool)]| part.iter().filter(|(_, host)| *host).count();
        let above = hosts(&list[..first]);
        let end = (first + page).min(list.len());
        let below = hosts(&list[end..]);
        let say = |n: usize, where_: &str| {
            let s = if n == 1 { "" } else { "s" };
            Line::styled(format!("  {n} more host{s} {where_}"), theme::dim())
        };
        if above > 0 {
            lines.push(say(above, "above"));
        }
        lines.extend(list[first..end].iter().map(|(l, _)| l.clone()));
        if below > 0 {
            lines.push(say(below, "below"));
        }
    }
    if !hidden.is_empty() && lines.len() < usize::from(area.height) {
        let names = hidden.iter().map(|c| c.header()).collect::<Vec<_>>().join(", ");
        let wanted: usize = width + hidden.iter().map(|c| c.width() + 1).sum::<usize>();
        let text = [
            format!("  columns left out: {names} (a window {wanted} columns wide shows them)"),
            format!("  columns left out: {names}"),
            format!("  {} columns left out", hidden.len()),
        ]
        .into_iter()
        .find(|t| t.chars().count() <= width)
        .unwrap_or_default();
        lines.push(Line::styled(text, theme::dim()));
    }
    let buf = frame.buffer_mut();
    for (line, y) in lines.iter().zip(area.top()..area.bottom()) {
        buf.set_line(area.x, y, line, area.width);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_come_in_by_priority_and_the_why_keeps_its_room() {
        let names = |w: usize, nixos: bool| {
            let (shown, hidden) = columns(w, nixos);
            (
                shown.iter().map(|c| c.header()).collect::<Vec<_>>(),
                hidden.iter().map(|c| c.header()).collect::<Vec<_>>(),
            )
        };
        let (shown, hidden) = names(40, false);
        assert_eq!(shown, ["host", "status", "why"], "the three that always stay");
        assert_eq!(hidden, ["role", "cpu", "ram", "disk", "wear", "services", "since"]);
        let (shown, hidden) = names(80, false);
        assert_eq!(shown, ["host", "cpu", "ram", "disk", "services", "status", "since", "why"]);
        assert_eq!(hidden, ["role", "wear"]);
        let (shown, hidden) = names(100, true);
        assert_eq!(shown, ["host", "role", "cpu", "ram", "disk", "wear", "services", "status", "since", "why"]);
        assert_eq!(hidden, ["nixos"]);
        assert!(names(200, true).1.is_empty());
        for w in 44..200 {
            let (shown, _) = columns(w, true);
            let fixed: usize = 1 + shown.iter().filter(|c| **c != Column::Why).map(|c| c.width() + 1).sum::<usize>();
            assert!(w - fixed >= WHY_MIN, "{w} columns: the why keeps {WHY_MIN}");
        }
    }
}
