//! The host view: CPU/GPU and memory panels, the storage table, services and
//! backups. A row's color is its status.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use cm_proto::series;
use cm_proto::{HostSnapshot, Status};

use super::spark::sparkline;
use super::wrapped::Wrapped;
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

/// Draws `host`; `row` is the series under the cursor.
pub fn render(host: &HostEntry, now_ms: u64, row: Option<&str>, frame: &mut Frame, area: Rect) {
    let Some(snap) = &host.snapshot else {
        let text = format!(" waiting for the first snapshot from {} ...", host.name);
        frame.render_widget(Paragraph::new(Line::styled(text, theme::dim())), area);
        return;
    };
    let sparks = Sparks { history: &host.history, row };
    let left_width = area.width * 55 / 100;
    let right_width = area.width.saturating_sub(left_width + 3);
    // Long lines (an error message, a deep tmpfs path) wrap rather than vanish.
    let left = Wrapped(
        cpu_gpu_lines(snap, &sparks, usize::from(left_width))
            .into_iter()
            .chain(history_note(&host.history))
            .chain(nixos_lines(snap, now_ms))
            .collect(),
    );
    let right = Wrapped(memory_lines(snap, &sparks, usize::from(right_width)));
    // Tables are lines in columns; notes in them (reasons, errors) wrap.
    let table = |header: &[&str], rows: Vec<TableRow>, widths: &[usize]| {
        Wrapped(std::iter::once(TableRow::header(header)).chain(rows).map(|row| row.line(area.width, widths)).collect())
    };
    let storage = table(
        &["Storage", "capacity", "used", "use", "wear", "temp", "power-on", "health"],
        storage_rows(snap, &sparks, now_ms),
        STORAGE_WIDTHS,
    );
    let service_header: &[&str] = match &snap.services {
        Some(list) if !list.is_empty() => &["Services", "state", "memory/limit", "cpu", "disk", "restarts", "since"],
        _ => &["Services"],
    };
    let services = table(service_header, service_rows(snap, now_ms), SERVICE_WIDTHS);
    let backup_header: &[&str] = match &snap.backups {
        Some(list) if !list.is_empty() => &["Backups", "kind", "last run", "result", "took", "next"],
        _ => &["Backups"],
    };
    let backups = table(backup_header, backup_rows(snap, now_ms), BACKUP_WIDTHS);
    let backups_height = backups.line_count(area.width) as u16;
    let storage_height = storage.line_count(area.width) as u16;
    let services_height = services.line_count(area.width) as u16;
    // Rows go to the storage table first, then the panels, then services,
    // then backups: in a short window the less urgent parts give way.
    let wanted_top = left.line_count(left_width).max(right.line_count(right_width)) as u16;
    let mut rows_left = area.height;
    let storage_h = storage_height.min(rows_left.saturating_sub(4));
    rows_left -= storage_h;
    let top = wanted_top.min(rows_left.saturating_sub(1 + services_height.min(2) + 1 + 2)).max(rows_left.min(3));
    rows_left = rows_left.saturating_sub(top + 1);
    let services_h = services_height.min(rows_left.saturating_sub(3).max(rows_left.min(2)));
    rows_left = rows_left.saturating_sub(services_h + 1);
    let backups_h = rows_left.min(backups_height);
    let [top_area, _, storage_area, _, services_area, _, backups_area, _] = Layout::vertical([
        Constraint::Length(top),
        Constraint::Length(1),
        Constraint::Length(storage_h),
        Constraint::Length(1),
        Constraint::Length(services_h),
        Constraint::Length(1),
        Constraint::Length(backups_h),
        Constraint::Fill(1),
    ])
    .areas(area);

    let [l, sep, r] = Layout::horizontal([Constraint::Length(left_width), Constraint::Length(3), Constraint::Fill(1)])
        .areas(top_area);
    frame.render_widget(left, l);
    frame.render_widget(Paragraph::new(vec![Line::styled(" │", theme::dim()); top as usize]), sep);
    frame.render_widget(right, r);

    frame.render_widget(storage, storage_area);

    frame.render_widget(services, services_area);
    frame.render_widget(backups, backups_area);
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
    Some(Line::styled(format!("{label:<5}error: {error}"), theme::status(Status::Unknown)))
}

/// Why the sparklines hold only what arrived since the dashboard started.
fn history_note(history: &HostHistory) -> Option<Line<'static>> {
    match &history.source {
        Source::Unavailable(why) => Some(Line::styled(format!("     no stored history: {why}"), theme::dim())),
        _ => history.error.as_ref().map(|e| Line::styled(format!("     history: {e}"), theme::status(Status::Unknown))),
    }
}

fn cpu_gpu_lines(snap: &HostSnapshot, sparks: &Sparks, width: usize) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    match &snap.cpu {
        Some(c) => {
            let mut text = format!("CPU  load {:.2} {:.2} {:.2}", c.load1, c.load5, c.load15);
            if let Some(u) = c.utilisation_percent {
                text.push_str(&format!("  {u:.0}%"));
            }
            if let Some(f) = c.frequency_hz {
                text.push_str(&format!("  {:.1} GHz", f as f64 / 1e9));
            }
            if let Some(t) = c.temperature_celsius {
                text.push_str(&format!("  {t:.0} C"));
            }
            lines.push(Line::styled(text, theme::status(c.status)));
            let model = c.model.as_deref().map(short_cpu_model).unwrap_or_default();
            lines.push(Line::styled(format!("     {} CPUs  {model}", c.logical_cpus), theme::dim()));
            if c.utilisation_percent.is_some() {
                let spark = sparks.spark("cpu.utilisation_percent", CPU_SPARK.min(width.saturating_sub(9)));
                lines.push(Line::from(vec![Span::raw("     "), spark, Span::styled(" 1h", theme::dim())]));
            }
        }
        None => lines.extend(collector_error(snap, "cpu", "CPU").or(Some(Line::styled("CPU  -", theme::dim())))),
    }
    if let Some(line) = collector_error(snap, "gpu", "GPU") {
        lines.push(line);
    } else if snap.gpus.is_empty() {
        lines.push(Line::styled("GPU  none", theme::dim()));
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
        if let Some(w) = g.power_watts {
            text.push_str(&format!("  {w:.0} W"));
        }
        lines.push(Line::styled(text, theme::status(g.status)));
    }
    lines
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
    let mut lines = vec![Line::styled(text, theme::dim())];
    if n.reboot_needed {
        let why =
            if n.reboot_reasons.is_empty() { "the booted system differs".into() } else { n.reboot_reasons.join(", ") };
        lines.push(Line::styled(format!("     reboot needed: {why}"), theme::status(n.status)));
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
    lines.push(Line::from(ram));
    if m.swap_total_bytes > 0 {
        lines.push(Line::raw(format!("swap {}", format::iec_pair(m.swap_used_bytes, m.swap_total_bytes))));
    } else {
        lines.push(Line::styled("swap none", theme::dim()));
    }
    for z in &m.zram {
        let ratio = z.compression_ratio().map_or(String::new(), |r| format!(" ({r:.0}:1)"));
        let algo = z.algorithm.as_deref().map_or(String::new(), |a| format!(" {a}"));
        lines.push(Line::raw(format!(
            "{} {} -> {}{ratio}{algo}",
            z.device,
            format::iec(z.original_bytes),
            format::iec(z.compressed_bytes)
        )));
    }
    const SHOWN_TMPFS: usize = 3;
    let mut tmpfs: Vec<_> = m.tmpfs.iter().collect();
    tmpfs.sort_by(|a, b| b.used_bytes.cmp(&a.used_bytes).then(a.mount_point.cmp(&b.mount_point)));
    for t in tmpfs.iter().take(SHOWN_TMPFS) {
        // A deep mount point loses its middle, so that the line fits and the figures stay whole.
        let figures = format::iec_pair(t.used_bytes, t.size_bytes);
        let room = width.saturating_sub("tmpfs ".len() + 1 + figures.chars().count()).max(12);
        lines.push(Line::raw(format!("tmpfs {} {figures}", format::middle(&t.mount_point, room))));
    }
    if tmpfs.len() > SHOWN_TMPFS {
        lines.push(Line::styled(format!("tmpfs +{} more", tmpfs.len() - SHOWN_TMPFS), theme::dim()));
    }
    if let Some(v) = m.vm.dirty_ratio {
        let bg = m.vm.dirty_background_ratio.map_or(String::new(), |b| format!(" (background {b})"));
        lines.push(Line::raw(format!("vm.dirty_ratio {v}{bg}")));
    }
    if let Some(v) = m.vm.swappiness {
        lines.push(Line::raw(format!("vm.swappiness {v}")));
    }
    lines
}

/// Widths of the storage columns after the first, which takes what is left.
const STORAGE_WIDTHS: &[usize] = &[9, 9, 4, 4, 5, 12, 7];
/// Widths of the backup columns after the first.
const BACKUP_WIDTHS: &[usize] = &[8, 10, 10, 9, 10];
/// Widths of the service columns after the first.
const SERVICE_WIDTHS: &[usize] = &[12, 13, 5, 8, 8, 9];

/// One line of a table: cells in columns, cells followed by free text (a
/// filesystem's sparkline and forecast), or a note that spans the whole width
/// (a drive's reason, a collector error, its sparklines).
enum TableRow {
    Cells(Vec<String>, Style),
    CellsThen(Vec<String>, Style, Vec<Span<'static>>),
    Note(String, Style),
    Spans(Vec<Span<'static>>),
}

impl TableRow {
    fn header(cells: &[&str]) -> Self {
        TableRow::Cells(cells.iter().map(|c| (*c).to_owned()).collect(), theme::header())
    }

    /// The row as a line `width` wide: the first column takes what the fixed
    /// `widths` of the others leave.
    fn line(self, width: u16, widths: &[usize]) -> Line<'static> {
        // The first `columns` columns of `cells`.
        let cells = |cells: &[String], columns: usize| {
            let fixed: usize = widths.iter().map(|w| w + 1).sum();
            let first = (width as usize).saturating_sub(fixed).max(8);
            let mut text = format::fit(cells.first().map_or("", String::as_str), first);
            for (i, w) in widths.iter().enumerate().take(columns.saturating_sub(1)) {
                text.push(' ');
                text.push_str(&format::fit(cells.get(i + 1).map_or("", String::as_str), *w));
            }
            text
        };
        match self {
            TableRow::Note(text, style) => Line::styled(text, style),
            TableRow::Spans(spans) => Line::from(spans),
            TableRow::Cells(row, style) => Line::styled(cells(&row, widths.len() + 1).trim_end().to_owned(), style),
            TableRow::CellsThen(row, style, tail) => {
                let text = cells(&row, row.len());
                let mut spans = vec![Span::styled(text, style), Span::raw(" ")];
                spans.extend(tail);
                Line::from(spans)
            }
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
    (spans.len() > 1).then_some(TableRow::Spans(spans))
}

fn storage_rows(snap: &HostSnapshot, sparks: &Sparks, now_ms: u64) -> Vec<TableRow> {
    let mut rows = Vec::new();
    if let Some(error) = snap.collector("storage").and_then(|c| c.error.as_deref()) {
        rows.push(TableRow::Note(format!("error: {error}"), theme::status(Status::Unknown)));
        return rows;
    }
    if let Some(error) = snap.collector("smart").and_then(|c| c.error.as_deref()) {
        rows.push(TableRow::Note(format!("SMART: {error}"), theme::status(Status::Unknown)));
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
            let name = format!("  {} {}", f.mount_point, f.fstype);
            let cells = vec![name, size, used, pct];
            let mut tail = Vec::new();
            if measured {
                tail.push(sparks.spark(&series::filesystem(&f.mount_point, "used_percent"), STORAGE_SPARK));
            }
            if let Some(full) = &f.full {
                tail.push(Span::styled(
                    format!(" full {}", cm_history::forecast::describe(full, now_ms as i64)),
                    theme::status(f.status),
                ));
            }
            rows.push(TableRow::CellsThen(cells, theme::status(f.status), tail));
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
        rows.push(TableRow::Cells(cells.into(), theme::status(d.status)));
        // The reason a drive is not fine goes right under it, in its color.
        if let Some(f) = h.and_then(|h| h.findings.first()).filter(|f| f.status != Status::Ok) {
            rows.push(TableRow::Note(format!("  ! {}", f.text), theme::status(f.status)));
        }
        rows.extend(drive_trends(d, sparks, now_ms));
        fs_rows(Some(d.name.as_str()), &mut rows);
    }
    if snap.filesystems.iter().any(|f| f.drive.is_none()) {
        rows.push(TableRow::Note("other".into(), theme::dim()));
        fs_rows(None, &mut rows);
    }
    if rows.is_empty() {
        rows.push(TableRow::Note("no drives found".into(), theme::dim()));
    }
    rows
}

fn service_rows(snap: &HostSnapshot, now_ms: u64) -> Vec<TableRow> {
    let report = snap.collector("systemd");
    let Some(services) = &snap.services else {
        let row = match (report.and_then(|r| r.error.as_deref()), report.and_then(|r| r.note.as_deref())) {
            (Some(error), _) => TableRow::Note(format!(" error: {error}"), theme::status(Status::Unknown)),
            (None, Some(note)) => TableRow::Note(format!(" {note}"), theme::dim()),
            (None, None) => TableRow::Note(" no source yet: this agent has no systemd collector".into(), theme::dim()),
        };
        return vec![row];
    };
    if services.is_empty() {
        return vec![TableRow::Note(" no units match the watched patterns".into(), theme::dim())];
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
        rows.push(TableRow::Cells(cells, theme::status(s.status)));
        if let Some(reason) = s.reason.as_deref().filter(|_| s.status != Status::Ok) {
            rows.push(TableRow::Note(format!("   ! {reason}"), theme::status(s.status)));
        }
    }
    rows
}

fn backup_rows(snap: &HostSnapshot, now_ms: u64) -> Vec<TableRow> {
    let list = match &snap.backups {
        Some(list) if !list.is_empty() => list,
        _ => return vec![TableRow::Note(" none configured: the agent watches no backup jobs".into(), theme::dim())],
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
        rows.push(TableRow::Cells(cells, theme::status(b.status)));
        if let Some(reason) = b.reason.as_deref().filter(|_| b.status != Status::Ok) {
            rows.push(TableRow::Note(format!("   ! {}: {reason}", b.unit), theme::status(b.status)));
        }
    }
    rows
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
