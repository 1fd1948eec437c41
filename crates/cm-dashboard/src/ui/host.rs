//! The host view: CPU/GPU and memory panels, the storage table, services and
//! backups. Every line starts with a gutter holding its status mark (`!`,
//! `×`, `?`), so that status reads without color too; a row's color is its
//! status.
//!
//! What each size shows:
//! - 60 columns and wider: the CPU/GPU panel beside the memory panel (swap,
//!   zram, tmpfs, vm tunables, sparklines), then every column of the
//!   storage, services and backups tables.
//! - narrower: one column of CPU and RAM figures, and the tables with their
//!   first columns only (storage: use and health; services: state; backups:
//!   last run and result); a footer says what a wider window adds.
//! - the host's active alerts (firing, flapping, pending: why its status
//!   is what it is) come first, above the panels, when it has any.
//! - rows: alerts first, then storage, the panels, services and backups; a section
//!   cut short ends with how many of its items are left out, and one that
//!   gets no row at all is named in the footer.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;
use ratatui::Frame;

use cm_proto::series;
use cm_proto::{HostSnapshot, Status};

use super::spark::sparkline;
use super::wrapped::{self, Wrapped};
use crate::app::HostEntry;
use crate::history::{HostHistory, Source};
use crate::{format, theme};

/// Sparklines of one host, with the row under the cursor marked.
struct Sparks<'a> {
    history: &'a HostHistory,
    row: Option<&'a str>,
}

impl Sparks<'_> {
    /// `series`' sparkline, `width` wide, reversed when the cursor is on it.
    fn spark(&self, series: &str, width: usize) -> Span<'static> {
        let text = sparkline(series, self.history.tracks.get(series), self.history.latest_ms, width);
        let style = if self.row == Some(series) { theme::dim().add_modifier(Modifier::REVERSED) } else { theme::dim() };
        Span::styled(text, style)
    }
}

/// Columns of the sparklines in the storage table and under the CPU.
const STORAGE_SPARK: usize = 10;
const CPU_SPARK: usize = 30;

/// The narrowest window that gets the two panels and every column.
pub const WIDE: u16 = 60;

/// The gutter: a status mark and a space.
const GUTTER: usize = 2;

/// `line` after the mark of `status`, in that status' style.
fn marked(status: Status, line: Line<'static>) -> Line<'static> {
    let mut spans = vec![Span::styled(format!("{} ", theme::mark(status)), theme::status(status))];
    spans.extend(line.spans);
    Line { spans, ..line }
}

/// `line` after an empty gutter.
fn plain(line: Line<'static>) -> Line<'static> {
    let mut spans = vec![Span::raw("  ")];
    spans.extend(line.spans);
    Line { spans, ..line }
}

/// `text` in the style of `status`, after its mark.
fn status_line(status: Status, text: String) -> Line<'static> {
    marked(status, Line::styled(text, theme::status(status)))
}

/// A part of the view: its lines, which of them begin an item that a cut
/// leaves out (a drive, a filesystem, a service, a job), and how it names them.
struct Section {
    title: &'static str,
    /// What its items are called: one, and more.
    what: (&'static str, &'static str),
    lines: Vec<Line<'static>>,
    items: Vec<bool>,
}

impl Section {
    fn new(title: &'static str, what: (&'static str, &'static str)) -> Self {
        Section { title, what, lines: Vec::new(), items: Vec::new() }
    }

    fn push(&mut self, line: Line<'static>, item: bool) {
        self.lines.push(line);
        self.items.push(item);
    }

    fn rows(&self, width: u16) -> u16 {
        self.lines.iter().map(|l| wrapped::hanging_rows(l, width)).sum::<usize>() as u16
    }

    /// The lines shown in `height` rows (whole ones; a cut leaves the last
    /// row for its note), and the rows they take.
    fn shown(&self, width: u16, height: u16) -> (usize, u16) {
        if self.rows(width) <= height {
            return (self.lines.len(), self.rows(width));
        }
        let budget = height.saturating_sub(1);
        let (mut used, mut shown) = (0, 0);
        for line in &self.lines {
            let r = wrapped::hanging_rows(line, width) as u16;
            if used + r > budget {
                break;
            }
            used += r;
            shown += 1;
        }
        (shown, used)
    }

    /// The rows the section takes when given `height`.
    fn used(&self, width: u16, height: u16) -> u16 {
        match self.shown(width, height) {
            _ if height == 0 => 0,
            (shown, used) if shown == self.lines.len() => used,
            (_, used) => used + 1,
        }
    }

    /// Draws the section into `area`; one taller than it ends with how much
    /// is left out.
    fn draw(self, area: Rect, buf: &mut Buffer) {
        if area.height == 0 {
            return;
        }
        if self.rows(area.width) <= area.height {
            Wrapped::hanging(self.lines).render(area, buf);
            return;
        }
        let (shown, used) = self.shown(area.width, area.height);
        let items = self.items[shown..].iter().filter(|i| **i).count();
        let (count, (one, many)) =
            if items > 0 { (items, self.what) } else { (self.lines.len() - shown, ("line", "lines")) };
        let what = if count == 1 { one } else { many };
        let head =
            if shown == 0 { format!("{}: {count} {what} hidden", self.title) } else { format!("+{count} more {what}") };
        let note = fitting(
            usize::from(area.width),
            [format!("{head}: make the window taller"), head, format!("+{count} more")],
        );
        let mut lines: Vec<Line<'static>> = self.lines.into_iter().take(shown).collect();
        lines.push(plain(Line::styled(note, theme::dim())));
        Wrapped::hanging(lines).render(Rect { height: used + 1, ..area }, buf);
    }
}

/// The first of `texts` that fits in `width` after the gutter, else the last.
fn fitting<const N: usize>(width: usize, texts: [String; N]) -> String {
    first_fitting(width.saturating_sub(GUTTER), texts)
}

/// Rows for each section, in layout order: first a floor for each (the
/// least worth showing), then what is left in the order of `priority`.
/// Each section costs its rows and the blank row after it, out of `budget`;
/// should one get none, the footer names it, in `reserve` rows taken from
/// the budget. Returns the rows and whether a section got none.
fn allot(needs: &[u16], floors: &[u16], priority: &[usize], budget: u16, reserve: u16) -> (Vec<u16>, bool) {
    let wanted: u16 = needs.iter().filter(|n| **n > 0).map(|n| n + 1).sum();
    if wanted <= budget {
        return (needs.to_vec(), false);
    }
    for reserve in [0u16, reserve] {
        let mut left = budget.saturating_sub(reserve);
        let mut rows = vec![0u16; needs.len()];
        for &i in priority {
            let floor = floors[i].min(needs[i]);
            if floor > 0 && floor < left {
                rows[i] = floor;
                left -= floor + 1;
            }
        }
        for &i in priority {
            if rows[i] > 0 {
                let more = (needs[i] - rows[i]).min(left);
                rows[i] += more;
                left -= more;
            }
        }
        let hidden = needs.iter().zip(&rows).any(|(n, r)| *n > 0 && *r == 0);
        if !hidden || reserve > 0 {
            return (rows, hidden);
        }
    }
    unreachable!("the second pass returns")
}

/// Draws `host`; `row` is the series under the cursor.
pub fn render(host: &HostEntry, now_ms: u64, row: Option<&str>, frame: &mut Frame, area: Rect) {
    let Some(snap) = &host.snapshot else {
        let text = format!("  waiting for the first snapshot from {} ...", host.name);
        frame.render_widget(Wrapped::hanging(vec![Line::styled(text, theme::dim())]), area);
        return;
    };
    let sparks = Sparks { history: &host.history, row };
    let wide = area.width >= WIDE;
    let buf = frame.buffer_mut();

    // The top: two panels side by side, or one column of figures.
    let left_width = if wide { area.width * 55 / 100 } else { area.width };
    // The separator takes two columns: `│` and a space before the marks.
    let right_width = area.width.saturating_sub(left_width + 2);
    let (mut left, mut right) = (Section::new("CPU", ("line", "lines")), Section::new("Memory", ("line", "lines")));
    if wide {
        let content = usize::from(left_width) - GUTTER;
        for line in cpu_gpu_lines(snap, &sparks, content).into_iter().chain(history_note(&host.history)) {
            left.push(line, false);
        }
        for line in nixos_lines(snap, now_ms) {
            left.push(line, false);
        }
        for line in memory_lines(snap, &sparks, usize::from(right_width).saturating_sub(GUTTER)) {
            right.push(line, false);
        }
    } else {
        for line in narrow_lines(snap).into_iter().chain(nixos_lines(snap, now_ms)) {
            left.push(line, false);
        }
    }
    let top_need = left.rows(left_width).max(right.rows(right_width));

    let columns = |wide_cols: &'static [(usize, usize)], narrow_cols: &'static [(usize, usize)]| {
        if wide {
            wide_cols
        } else {
            narrow_cols
        }
    };
    let storage_cols = columns(STORAGE_WIDE, STORAGE_NARROW);
    let storage = table(
        "Storage",
        ("drive or filesystem", "drives and filesystems"),
        &["Storage", "capacity", "used", "use", "wear", "temp", "power-on", "health"],
        storage_rows(snap, &sparks, now_ms, first_width(area.width, storage_cols), wide),
        area.width,
        storage_cols,
    );
    let service_header: &[&str] = match &snap.services {
        Some(list) if !list.is_empty() => &["Services", "state", "memory/limit", "cpu", "disk", "restarts", "since"],
        _ => &["Services"],
    };
    let service_cols = columns(SERVICES_WIDE, SERVICES_NARROW);
    let services = table(
        "Services",
        ("service", "services"),
        service_header,
        service_rows(snap, now_ms),
        area.width,
        service_cols,
    );
    let backup_header: &[&str] = match &snap.backups {
        Some(list) if !list.is_empty() => &["Backups", "kind", "last run", "result", "took", "next"],
        _ => &["Backups"],
    };
    let backup_cols = columns(BACKUPS_WIDE, BACKUPS_NARROW);
    let backups = table(
        "Backups",
        ("backup job", "backup jobs"),
        backup_header,
        backup_rows(snap, now_ms),
        area.width,
        backup_cols,
    );

    let alerts = alert_section(snap, now_ms, area.width);

    let width = usize::from(area.width);
    let mut footer: Vec<Line<'static>> = Vec::new();
    if !wide {
        let text =
            fitting(width, [format!("{WIDE}+ columns: sparklines, tmpfs, swap"), format!("{WIDE}+ columns: more")]);
        footer.push(plain(Line::styled(text, theme::dim())));
    }
    // The footer sits at the bottom, a blank row above it; the last section
    // needs no blank row of its own after it.
    let footer_rows = footer.len() as u16;
    let budget = (area.height + 1).saturating_sub(if footer_rows > 0 { footer_rows + 1 } else { 0 });
    let needs = [
        alerts.as_ref().map_or(0, |a| a.rows(area.width)),
        top_need,
        storage.rows(area.width),
        services.rows(area.width),
        backups.rows(area.width),
    ];
    let priority = [0, 2, 1, 3, 4];
    let (mut rows, hidden) = allot(&needs, &[2, 2, 3, 1, 1], &priority, budget, if footer_rows > 0 { 1 } else { 2 });
    // Rows a cut leaves empty (a line too tall for what is left) go to the
    // next section that can show more with them.
    let used = |i: usize, r: u16| match i {
        0 => alerts.as_ref().map_or(0, |a| a.used(area.width, r)),
        1 => left.used(left_width, r).max(right.used(right_width, r)),
        2 => storage.used(area.width, r),
        3 => services.used(area.width, r),
        _ => backups.used(area.width, r),
    };
    let mut spare = 0;
    for (i, r) in rows.iter_mut().enumerate() {
        let u = used(i, *r);
        spare += *r - u;
        *r = u;
    }
    for &i in &priority {
        if rows[i] > 0 && rows[i] < needs[i] && spare > 0 {
            let u = used(i, rows[i] + spare);
            spare -= u - rows[i];
            rows[i] = u;
        }
    }
    if hidden {
        let titles = ["Alerts", "CPU and memory", storage.title, services.title, backups.title];
        let names: Vec<&str> = titles
            .iter()
            .zip(&rows)
            .zip(&needs)
            .filter(|((_, r), n)| **r == 0 && **n > 0)
            .map(|((t, _), _)| *t)
            .collect();
        let names = names.join(", ");
        let text = fitting(
            width,
            [
                format!("{names} hidden: make the window taller"),
                format!("{names} hidden (taller window)"),
                format!("hidden: {names}"),
            ],
        );
        footer.insert(0, plain(Line::styled(text, theme::dim())));
    }

    let mut y = area.y;
    let mut place = |rows: u16| {
        let rect = Rect { y, height: rows.min(area.bottom().saturating_sub(y)), ..area };
        if rows > 0 {
            y = (y + rows + 1).min(area.bottom());
        }
        rect
    };
    let alert_rows = place(rows[0]);
    if let Some(alerts) = alerts {
        alerts.draw(alert_rows, buf);
    }
    let top = place(rows[1]);
    if top.height > 0 {
        left.draw(Rect { width: left_width, ..top }, buf);
        if wide {
            let sep = Rect { x: top.x + left_width, width: 1, ..top };
            for row in sep.rows() {
                buf.set_string(row.x, row.y, "│", theme::dim());
            }
            right.draw(Rect { x: sep.x + 2, width: right_width, ..top }, buf);
        }
    }
    for (section, r) in [storage, services, backups].into_iter().zip(&rows[2..]) {
        let rect = place(*r);
        section.draw(rect, buf);
    }
    if !footer.is_empty() {
        // One row each: a footer line that does not fit is cut, not wrapped.
        let rows = footer.len() as u16;
        let rect = Rect { y: area.bottom().saturating_sub(rows), height: rows.min(area.height), ..area };
        for (line, y) in footer.iter().zip(rect.rows()) {
            buf.set_line(y.x, y.y, line, y.width);
        }
    }
}

/// The alerts section's columns: state and age after the alert's name.
const ALERT_COLS: &[(usize, usize)] = &[(1, 8), (2, 4)];

/// The host's active alerts, the notified ones first, worst first, then the
/// oldest, each with its reason under it; `None` when it has none.
fn alert_section(snap: &HostSnapshot, now_ms: u64, width: u16) -> Option<Section> {
    use cm_proto::alert::AlertState;
    let mut active: Vec<_> = snap
        .alerts
        .iter()
        .filter(|a| matches!(a.state, AlertState::Firing | AlertState::Flapping | AlertState::Pending))
        .collect();
    if active.is_empty() {
        return None;
    }
    active.sort_by(|a, b| {
        let pending = |a: &cm_proto::alert::Alert| a.state == AlertState::Pending;
        pending(a).cmp(&pending(b)).then(b.severity.cmp(&a.severity)).then(a.since_ms.cmp(&b.since_ms))
    });
    let mut rows = Vec::new();
    for a in active {
        let age = format::short_age(now_ms.saturating_sub(a.since_ms));
        let cells = vec![format!(" {}", a.title()), a.state.label().to_string(), age];
        // A pending alert has told no one yet: it does not color the host.
        let (status, style) =
            if a.state.is_active() { (a.severity, theme::status(a.severity)) } else { (Status::Ok, theme::dim()) };
        rows.push(TableRow { status: Some(status), item: true, body: Body::Cells(cells, style) });
        if !a.reason.is_empty() {
            rows.push(TableRow::note(format!("   {}", a.reason), style));
        }
    }
    Some(table("Alerts", ("alert", "alerts"), &["Alerts", "state", "age"], rows, width, ALERT_COLS))
}

/// A table: its header and rows in `columns`, as a section.
fn table(
    title: &'static str,
    what: (&'static str, &'static str),
    header: &[&str],
    rows: Vec<TableRow>,
    width: u16,
    columns: &[(usize, usize)],
) -> Section {
    let mut section = Section::new(title, what);
    for row in std::iter::once(TableRow::header(header)).chain(rows) {
        let item = row.item;
        section.push(row.line(width, columns), item);
    }
    section
}

/// The narrow window's top: CPU and RAM in a line each, then the GPUs.
fn narrow_lines(snap: &HostSnapshot) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    match &snap.cpu {
        Some(c) => {
            let mut text = "CPU ".to_string();
            if let Some(u) = c.utilisation_percent {
                text.push_str(&format!(" {u:.0}%"));
            }
            text.push_str(&format!("  load {:.2}", c.load1));
            if let Some(t) = c.temperature_celsius {
                text.push_str(&format!("  {t:.0} C"));
            }
            lines.push(status_line(c.status, text));
        }
        None => lines.extend(collector_error(snap, "cpu", "CPU")),
    }
    match &snap.memory {
        Some(m) => lines.push(status_line(
            m.status,
            format!("RAM  {} {:.0}%", format::iec_pair(m.used_bytes, m.total_bytes), m.used_percent()),
        )),
        None => lines.extend(collector_error(snap, "memory", "RAM")),
    }
    for g in &snap.gpus {
        let mut text = format!("GPU  {}", short_gpu_name(&g.name));
        if let Some(u) = g.utilisation_percent {
            text.push_str(&format!("  {u:.0}%"));
        }
        if let Some(t) = g.temperature_celsius {
            text.push_str(&format!("  {t:.0} C"));
        }
        lines.push(status_line(g.status, text));
    }
    lines
}

/// A CPU model without the marketing noise: `Intel(R) Core(TM) i7-8650U CPU @
/// 1.90GHz` -> `Intel Core i7-8650U`, `AMD Ryzen 7 5800X 8-Core Processor` ->
/// `AMD Ryzen 7 5800X 8-Core`.
fn short_cpu_model(model: &str) -> String {
    let model = model.split(" @ ").next().unwrap_or(model);
    let model = model.replace("(R)", "").replace("(TM)", "").replace("(tm)", "");
    let words: Vec<&str> = model.split_whitespace().filter(|w| !matches!(*w, "CPU" | "Processor")).collect();
    words.join(" ")
}

/// `NVIDIA GeForce RTX 3060` -> `RTX 3060`: the panel has little room.
fn short_gpu_name(name: &str) -> &str {
    let name = name.strip_prefix("NVIDIA ").unwrap_or(name);
    name.strip_prefix("GeForce ").unwrap_or(name)
}

/// The error a collector reported, as a line in that section's place.
fn collector_error(snap: &HostSnapshot, name: &str, label: &str) -> Option<Line<'static>> {
    let error = snap.collector(name)?.error.as_deref()?;
    Some(status_line(Status::Unknown, format!("{label:<5}error: {error}")))
}

/// Why the sparklines hold only what arrived since the dashboard started.
fn history_note(history: &HostHistory) -> Option<Line<'static>> {
    match &history.source {
        Source::Unavailable(why) => Some(plain(Line::styled(format!("     no stored history: {why}"), theme::dim()))),
        _ => history.error.as_ref().map(|e| status_line(Status::Unknown, format!("     history: {e}"))),
    }
}

fn cpu_gpu_lines(snap: &HostSnapshot, sparks: &Sparks, width: usize) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    match &snap.cpu {
        Some(c) => {
            let mut rest = String::new();
            if let Some(u) = c.utilisation_percent {
                rest.push_str(&format!("  {u:.0}%"));
            }
            if let Some(f) = c.frequency_hz {
                rest.push_str(&format!("  {:.1} GHz", f as f64 / 1e9));
            }
            if let Some(t) = c.temperature_celsius {
                rest.push_str(&format!("  {t:.0} C"));
            }
            // The 5- and 15-minute loads give way first when the panel is narrow.
            let text = first_fitting(
                width,
                [
                    format!("CPU  load {:.2} {:.2} {:.2}{rest}", c.load1, c.load5, c.load15),
                    format!("CPU  load {:.2}{rest}", c.load1),
                ],
            );
            lines.push(status_line(c.status, text));
            let model = c.model.as_deref().map(short_cpu_model).unwrap_or_default();
            lines.push(plain(Line::styled(format!("     {} CPUs  {model}", c.logical_cpus), theme::dim())));
            if c.utilisation_percent.is_some() {
                let spark = sparks.spark("cpu.utilisation_percent", CPU_SPARK.min(width.saturating_sub(9)));
                lines.push(plain(Line::from(vec![Span::raw("     "), spark, Span::styled(" 1h", theme::dim())])));
            }
        }
        None => lines.extend(collector_error(snap, "cpu", "CPU").or(Some(plain(Line::styled("CPU  -", theme::dim()))))),
    }
    if let Some(line) = collector_error(snap, "gpu", "GPU") {
        lines.push(line);
    } else if snap.gpus.is_empty() {
        lines.push(plain(Line::styled("GPU  none", theme::dim())));
    }
    for g in &snap.gpus {
        let mut text = format!("GPU  {}", short_gpu_name(&g.name));
        if let Some(u) = g.utilisation_percent {
            text.push_str(&format!("  {u:.0}%"));
        }
        if let (Some(used), Some(total)) = (g.memory_used_bytes, g.memory_total_bytes) {
            text.push_str(&format!("  {}", format::iec_pair(used, total)));
        }
        if let Some(t) = g.temperature_celsius {
            text.push_str(&format!("  {t:.0} C"));
        }
        // The power draw gives way first when the panel is narrow.
        let power = g.power_watts.map_or(String::new(), |w| format!("  {w:.0} W"));
        let text = first_fitting(width, [format!("{text}{power}"), text]);
        lines.push(status_line(g.status, text));
    }
    lines
}

/// The first of `texts` that fits in `width` columns, else the last.
fn first_fitting<const N: usize>(width: usize, texts: [String; N]) -> String {
    let last = texts[N - 1].clone();
    texts.into_iter().find(|t| t.chars().count() <= width).unwrap_or(last)
}

/// The NixOS state: version, generation and its age, revision; why a reboot is needed.
fn nixos_lines(snap: &HostSnapshot, now_ms: u64) -> Vec<Line<'static>> {
    let Some(n) = &snap.nixos else {
        return collector_error(snap, "nixos", "NixOS").into_iter().collect();
    };
    let mut text = format!("NixOS {}", n.version.as_deref().unwrap_or("?"));
    if let Some(g) = n.generation {
        text.push_str(&format!("  gen {g}"));
        if let Some(at) = n.generation_ms {
            text.push_str(&format!(" ({})", format::age(now_ms.saturating_sub(at))));
        }
    }
    if let Some(rev) = &n.configuration_revision {
        text.push_str(&format!("  rev {}", format::short_revision(rev)));
    }
    let mut lines = vec![plain(Line::styled(text, theme::dim()))];
    if n.reboot_needed {
        let why =
            if n.reboot_reasons.is_empty() { "the booted system differs".into() } else { n.reboot_reasons.join(", ") };
        lines.push(status_line(n.status, format!("     reboot needed: {why}")));
    }
    lines
}

/// The most columns of the memory sparkline, and the fewest worth drawing.
const MEMORY_SPARK: (usize, usize) = (16, 6);

fn memory_lines(snap: &HostSnapshot, sparks: &Sparks, width: usize) -> Vec<Line<'static>> {
    let Some(m) = &snap.memory else {
        return collector_error(snap, "memory", "RAM").into_iter().collect();
    };
    let mut lines = Vec::new();
    let estimated = if m.available_estimated { " (estimated)" } else { "" };
    let text = format!("RAM  {} {:.0}%{estimated}", format::iec_pair(m.used_bytes, m.total_bytes), m.used_percent());
    let room = width.saturating_sub(text.chars().count() + 1).min(MEMORY_SPARK.0);
    let mut ram = vec![Span::styled(text, theme::status(m.status))];
    if room >= MEMORY_SPARK.1 && m.total_bytes > 0 {
        ram.extend([Span::raw(" "), sparks.spark("memory.used_percent", room)]);
    }
    lines.push(marked(m.status, Line::from(ram)));
    if m.swap_total_bytes > 0 {
        lines.push(plain(Line::raw(format!("swap {}", format::iec_pair(m.swap_used_bytes, m.swap_total_bytes)))));
    } else {
        lines.push(plain(Line::styled("swap none", theme::dim())));
    }
    for z in &m.zram {
        let ratio = z.compression_ratio().map_or(String::new(), |r| format!(" ({r:.0}:1)"));
        let algo = z.algorithm.as_deref().map_or(String::new(), |a| format!(" {a}"));
        let figures = format!("{} {} -> {}", z.device, format::iec(z.original_bytes), format::iec(z.compressed_bytes));
        let text = first_fitting(width, [format!("{figures}{ratio}{algo}"), format!("{figures}{ratio}"), figures]);
        lines.push(plain(Line::raw(text)));
    }
    const SHOWN_TMPFS: usize = 3;
    let mut tmpfs: Vec<_> = m.tmpfs.iter().collect();
    tmpfs.sort_by(|a, b| b.used_bytes.cmp(&a.used_bytes).then(a.mount_point.cmp(&b.mount_point)));
    for t in tmpfs.iter().take(SHOWN_TMPFS) {
        // A deep mount point loses its middle, so that the line fits and the figures stay whole.
        let figures = format::iec_pair(t.used_bytes, t.size_bytes);
        let room = width.saturating_sub("tmpfs ".len() + 1 + figures.chars().count()).max(12);
        lines.push(plain(Line::raw(format!("tmpfs {} {figures}", format::middle(&t.mount_point, room)))));
    }
    if tmpfs.len() > SHOWN_TMPFS {
        lines.push(plain(Line::styled(format!("tmpfs +{} more", tmpfs.len() - SHOWN_TMPFS), theme::dim())));
    }
    if let Some(v) = m.vm.dirty_ratio {
        let bg = m.vm.dirty_background_ratio.map_or(String::new(), |b| format!(" (background {b})"));
        lines.push(plain(Line::raw(format!("vm.dirty_ratio {v}{bg}"))));
    }
    if let Some(v) = m.vm.swappiness {
        lines.push(plain(Line::raw(format!("vm.swappiness {v}"))));
    }
    lines
}

/// Columns after the first of each table, as (cell, width); the first takes
/// what they leave. Narrow windows keep the ones that say the most.
const STORAGE_WIDE: &[(usize, usize)] = &[(1, 9), (2, 9), (3, 4), (4, 4), (5, 5), (6, 12), (7, 7)];
const STORAGE_NARROW: &[(usize, usize)] = &[(3, 4), (7, 7)];
const SERVICES_WIDE: &[(usize, usize)] = &[(1, 12), (2, 13), (3, 5), (4, 8), (5, 8), (6, 9)];
const SERVICES_NARROW: &[(usize, usize)] = &[(1, 9)];
const BACKUPS_WIDE: &[(usize, usize)] = &[(1, 8), (2, 10), (3, 10), (4, 9), (5, 10)];
const BACKUPS_NARROW: &[(usize, usize)] = &[(2, 9), (3, 9)];

/// The first column's width in a table `width` wide with `columns` after it.
fn first_width(width: u16, columns: &[(usize, usize)]) -> usize {
    let fixed: usize = columns.iter().map(|(_, w)| w + 1).sum();
    usize::from(width).saturating_sub(GUTTER + fixed).max(8)
}

/// What a table row holds: cells in columns, cells followed by free text
/// (a filesystem's sparkline and forecast), or a note that spans the whole
/// width (a drive's reason, a collector error, its sparklines).
enum Body {
    Cells(Vec<String>, Style),
    CellsThen(Vec<String>, Style, Vec<Span<'static>>),
    Note(String, Style),
    Spans(Vec<Span<'static>>),
}

/// One line of a table: its status mark for the gutter, whether it starts
/// an item (a drive, a filesystem, a service, a job), and what it holds.
struct TableRow {
    status: Option<Status>,
    item: bool,
    body: Body,
}

impl TableRow {
    fn header(cells: &[&str]) -> Self {
        let cells = cells.iter().map(|c| (*c).to_owned()).collect();
        TableRow { status: None, item: false, body: Body::Cells(cells, theme::header()) }
    }

    fn cells(cells: Vec<String>, status: Status) -> Self {
        TableRow { status: Some(status), item: true, body: Body::Cells(cells, theme::status(status)) }
    }

    fn cells_then(cells: Vec<String>, status: Status, tail: Vec<Span<'static>>) -> Self {
        TableRow { status: Some(status), item: true, body: Body::CellsThen(cells, theme::status(status), tail) }
    }

    fn note(text: String, style: Style) -> Self {
        TableRow { status: None, item: false, body: Body::Note(text, style) }
    }

    fn status_note(text: String, status: Status) -> Self {
        TableRow { status: Some(status), item: false, body: Body::Note(text, theme::status(status)) }
    }

    fn spans(spans: Vec<Span<'static>>) -> Self {
        TableRow { status: None, item: false, body: Body::Spans(spans) }
    }

    /// The row as a line `width` wide, gutter included: the first column
    /// takes what the fixed `columns` leave; cells a row does not have end it.
    fn line(self, width: u16, columns: &[(usize, usize)]) -> Line<'static> {
        let first = first_width(width, columns);
        let text = |cells: &[String]| {
            let mut text = format::fit(cells.first().map_or("", String::as_str), first);
            for &(i, w) in columns {
                let Some(cell) = cells.get(i) else { break };
                text.push(' ');
                text.push_str(&format::fit(cell, w));
            }
            text
        };
        let body = match self.body {
            Body::Note(text, style) => Line::styled(text, style),
            Body::Spans(spans) => Line::from(spans),
            Body::Cells(row, style) => Line::styled(text(&row).trim_end().to_owned(), style),
            Body::CellsThen(row, style, tail) => {
                let mut spans = vec![Span::styled(text(&row), style), Span::raw(" ")];
                spans.extend(tail);
                Line::from(spans)
            }
        };
        match self.status {
            Some(s) => marked(s, body),
            None => plain(body),
        }
    }
}

/// A drive's sparklines, under its row: wear (30 days) with the date it
/// reaches 100 %, and temperature (the last hour).
fn drive_trends(d: &cm_proto::Drive, sparks: &Sparks, now_ms: u64) -> Option<TableRow> {
    let h = d.health.as_ref()?;
    let mut spans = vec![Span::raw("    ")];
    if h.wear_percent.is_some() {
        spans.extend([
            Span::styled("wear ", theme::dim()),
            sparks.spark(&series::drive(&d.name, "wear_percent"), STORAGE_SPARK),
        ]);
        if let Some(f) = &d.worn_out {
            spans.push(Span::styled(
                format!(" worn out {}", cm_history::forecast::describe(f, now_ms as i64)),
                theme::status(d.status),
            ));
        }
    }
    if h.temperature_celsius.is_some() {
        if spans.len() > 1 {
            spans.push(Span::raw("   "));
        }
        let name = series::drive(&d.name, "temperature_celsius");
        spans.extend([Span::styled("temp ", theme::dim()), sparks.spark(&name, STORAGE_SPARK)]);
    }
    (spans.len() > 1).then(|| TableRow::spans(spans))
}

/// The storage table's rows; `first` is the width of its first column,
/// which a deep mount point is cut to in its middle. A `wide` table has
/// the sparklines.
fn storage_rows(snap: &HostSnapshot, sparks: &Sparks, now_ms: u64, first: usize, wide: bool) -> Vec<TableRow> {
    let mut rows = Vec::new();
    if let Some(error) = snap.collector("storage").and_then(|c| c.error.as_deref()) {
        rows.push(TableRow::status_note(format!("error: {error}"), Status::Unknown));
        return rows;
    }
    if let Some(error) = snap.collector("smart").and_then(|c| c.error.as_deref()) {
        rows.push(TableRow::status_note(format!("SMART: {error}"), Status::Unknown));
    }
    let fs_rows = |drive: Option<&str>, rows: &mut Vec<TableRow>| {
        for f in snap.filesystems.iter().filter(|f| f.drive.as_deref() == drive) {
            let measured = f.used_bytes + f.available_bytes > 0;
            // The size is the filesystem's, as df prints it; the use is df's
            // too: used / (used + available), which leaves out the blocks
            // reserved for root.
            let size = if f.size_bytes > 0 { f.size_bytes } else { f.used_bytes + f.available_bytes };
            let (size, used, pct) = if measured {
                (format::iec(size), format::iec(f.used_bytes), format!("{:.0}%", f.used_percent()))
            } else {
                ("-".into(), "-".into(), "-".into())
            };
            let room = first.saturating_sub(2 + 1 + f.fstype.chars().count()).max(8);
            let name = format!("  {} {}", format::middle(&f.mount_point, room), f.fstype);
            let cells = vec![name, size, used, pct];
            let mut tail = Vec::new();
            if measured && wide {
                tail.push(sparks.spark(&series::filesystem(&f.mount_point, "used_percent"), STORAGE_SPARK));
            }
            if let Some(full) = &f.full {
                tail.push(Span::styled(
                    format!(" full {}", cm_history::forecast::describe(full, now_ms as i64)),
                    theme::status(f.status),
                ));
            }
            rows.push(TableRow::cells_then(cells, f.status, tail));
        }
    };
    for d in &snap.drives {
        let (used, pct) = match d.used_percent() {
            Some(p) => (format::iec(d.used_bytes), format!("{p:.0}%")),
            None => ("-".into(), "-".into()),
        };
        let h = d.health.as_ref();
        let model = d.model.clone().or_else(|| h.and_then(|h| h.model.clone())).unwrap_or_default();
        let mut name = format!("{} {model}", d.name).trim_end().to_owned();
        if !d.members.is_empty() {
            name = format!("{name} on {}", d.members.join("+"));
        }
        let dash = || "-".to_string();
        let wear = h.and_then(|h| h.wear_percent).map_or_else(dash, |w| format!("{w:.0}%"));
        let temp = h.and_then(|h| h.temperature_celsius).map_or_else(dash, |t| format!("{t:.0} C"));
        let hours = h.and_then(|h| h.power_on_hours).map_or_else(dash, |p| format!("{p}h {}d", p / 24));
        let verdict = match h {
            None => "-".to_string(),
            Some(h) if h.standby => "standby".into(),
            Some(h) if h.unsupported.is_some() => "n/a".into(),
            Some(h) => h.verdict.label().into(),
        };
        let cells = [name, format::iec(d.capacity_bytes), used, pct, wear, temp, hours, verdict];
        rows.push(TableRow::cells(cells.into(), d.status));
        // The reason a drive is not fine goes right under it, in its color.
        if let Some(f) = h.and_then(|h| h.findings.first()).filter(|f| f.status != Status::Ok) {
            rows.push(TableRow::note(format!("  ! {}", f.text), theme::status(f.status)));
        }
        if wide {
            rows.extend(drive_trends(d, sparks, now_ms));
        }
        fs_rows(Some(d.name.as_str()), &mut rows);
    }
    if snap.filesystems.iter().any(|f| f.drive.is_none()) {
        rows.push(TableRow::note("other".into(), theme::dim()));
        fs_rows(None, &mut rows);
    }
    if rows.is_empty() {
        rows.push(TableRow::note("no drives found".into(), theme::dim()));
    }
    rows
}

fn service_rows(snap: &HostSnapshot, now_ms: u64) -> Vec<TableRow> {
    let report = snap.collector("systemd");
    let Some(services) = &snap.services else {
        let row = match (report.and_then(|r| r.error.as_deref()), report.and_then(|r| r.note.as_deref())) {
            (Some(error), _) => TableRow::status_note(format!(" error: {error}"), Status::Unknown),
            (None, Some(note)) => TableRow::note(format!(" {note}"), theme::dim()),
            (None, None) => TableRow::note(" no source yet: this agent has no systemd collector".into(), theme::dim()),
        };
        return vec![row];
    };
    if services.is_empty() {
        return vec![TableRow::note(" no units match the watched patterns".into(), theme::dim())];
    }
    let mut rows = Vec::new();
    let mut sorted: Vec<_> = services.iter().collect();
    sorted.sort_by(|a, b| b.status.cmp(&a.status).then_with(|| a.name.cmp(&b.name)));
    for s in sorted {
        let name = s.name.strip_suffix(".service").unwrap_or(&s.name);
        let state = if s.active_state == "active" { s.sub_state.clone() } else { s.active_state.clone() };
        let memory = match (s.memory_bytes, s.memory_max_bytes) {
            (Some(m), Some(max)) => format!("{}/{}", format::iec_short(m), format::iec_short(max)),
            (Some(m), None) => format::iec_short(m),
            (None, Some(max)) => format!("-/{}", format::iec_short(max)),
            (None, None) => "-".into(),
        };
        let cpu = s.cpu_percent.map_or("-".into(), |c| format!("{c:.0}%"));
        let disk = match s.disk_bytes {
            Some(b) if s.disk_partial => format!("{}+", format::iec_short(b)),
            Some(b) => format::iec_short(b),
            None => "-".into(),
        };
        let since = s.since_ms.map_or("-".into(), |t| format::short_age(now_ms.saturating_sub(t)));
        let cells = vec![format!(" {name}"), state, memory, cpu, disk, s.restarts.to_string(), since];
        rows.push(TableRow::cells(cells, s.status));
        if let Some(reason) = s.reason.as_deref().filter(|_| s.status != Status::Ok) {
            rows.push(TableRow::note(format!("   ! {reason}"), theme::status(s.status)));
        }
    }
    rows
}

fn backup_rows(snap: &HostSnapshot, now_ms: u64) -> Vec<TableRow> {
    let list = match &snap.backups {
        Some(list) if !list.is_empty() => list,
        _ => return vec![no_backups(snap)],
    };
    let mut rows = Vec::new();
    for b in list {
        let last =
            b.last_run_ms.map_or("never".into(), |t| format!("{} ago", format::short_age(now_ms.saturating_sub(t))));
        let took = b.duration_seconds.map_or("-".into(), |d| {
            if d >= 60 {
                format!("{}m {}s", d / 60, d % 60)
            } else {
                format!("{d}s")
            }
        });
        let next = b.next_run_ms.map_or("-".into(), |t| format!("in {}", format::short_age(t.saturating_sub(now_ms))));
        let cells = vec![
            format!(" {}", b.name),
            b.kind.clone(),
            last,
            b.result.clone().unwrap_or_else(|| "-".into()),
            took,
            next,
        ];
        rows.push(TableRow::cells(cells, b.status));
        if let Some(reason) = b.reason.as_deref().filter(|_| b.status != Status::Ok) {
            rows.push(TableRow::note(format!("   ! {}: {reason}", b.unit), theme::status(b.status)));
        }
    }
    rows
}

/// Why a host shows no backup jobs. The agent reads them from systemd, so
/// only a systemd that answered can say that none are configured; without
/// one, whether jobs exist and how they ran is not known.
fn no_backups(snap: &HostSnapshot) -> TableRow {
    let report = snap.collector("systemd");
    let systemd_answered = snap.services.is_some();
    match (report.and_then(|r| r.error.as_deref()), report.and_then(|r| r.note.as_deref())) {
        _ if systemd_answered => {
            TableRow::note(" none configured: the agent watches no backup jobs".into(), theme::dim())
        }
        (Some(error), _) => {
            TableRow::status_note(format!(" not known: backups are read from systemd: {error}"), Status::Unknown)
        }
        (None, Some(note)) => {
            TableRow::status_note(format!(" not known: backups are read from systemd: {note}"), Status::Unknown)
        }
        (None, None) => TableRow::note(
            " none known: backups are read from systemd, which this agent does not watch".into(),
            theme::dim(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_are_shortened_for_the_panel() {
        assert_eq!(short_cpu_model("Intel(R) Core(TM) i7-8650U CPU @ 1.90GHz"), "Intel Core i7-8650U");
        assert_eq!(short_cpu_model("AMD Ryzen 7 5800X 8-Core Processor"), "AMD Ryzen 7 5800X 8-Core");
        assert_eq!(short_gpu_name("NVIDIA GeForce RTX 3060 Laptop GPU"), "RTX 3060 Laptop GPU");
        assert_eq!(short_gpu_name("NVIDIA A100-SXM4-40GB"), "A100-SXM4-40GB");
        assert_eq!(short_gpu_name("AMD GPU 1002:67DF"), "AMD GPU 1002:67DF");
    }
}
