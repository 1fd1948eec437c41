//! The alerts view: every host's alerts on one screen. Hosts not heard from
//! (their alerts as they last said, dimmed) and notification targets that
//! are failing come first, then the active alerts (firing and
//! flapping, then pending; worst first, then oldest), then the last day's
//! transitions, newest first, and why a host's are missing.
//!
//! What each width shows: 70 columns and wider, host, severity, state,
//! alert, reason and age; narrower, host, state, alert and age, the
//! severity in the row's mark and color. A list taller than the window
//! scrolls, its last row saying what is above and below.

use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::Frame;

use cm_proto::alert::AlertState;
use cm_proto::Status;

use crate::alerts::{self, Filter, MinSeverity, Row};
use crate::app::App;
use crate::{format, theme};

/// The narrowest window that shows the severity and reason columns.
pub const WIDE: usize = 70;

/// Column widths, without the space after each; the reason (wide) or the
/// alert (narrow) takes what is left.
struct Columns {
    wide: bool,
    host: usize,
    flexible: usize,
}

const SEVERITY: usize = 4;
const STATE: usize = 8;
const TITLE: usize = 22;
const AGE: usize = 4;
const GUTTER: usize = 2;

impl Columns {
    fn for_width(width: usize) -> Columns {
        let wide = width >= WIDE;
        let host = if wide { 12 } else { 9 };
        let fixed = GUTTER + host + 1 + STATE + 1 + AGE + if wide { SEVERITY + 1 + TITLE + 1 + 1 } else { 1 };
        Columns { wide, host, flexible: width.saturating_sub(fixed).max(4) }
    }

    fn cells(&self, host: &str, severity: &str, state: &str, title: &str, reason: &str, age: &str) -> String {
        let mut text = format!("{} ", format::fit(host, self.host));
        if self.wide {
            text.push_str(&format!("{} ", format::fit(severity, SEVERITY)));
        }
        text.push_str(&format!("{} ", format::fit(state, STATE)));
        if self.wide {
            text.push_str(&format!("{} {} ", format::fit(title, TITLE), format::fit(reason, self.flexible)));
        } else {
            text.push_str(&format!("{} ", format::fit(title, self.flexible)));
        }
        text.push_str(&format!("{age:>AGE$}"));
        text
    }
}

/// A notified alert takes the style of its severity; a pending one, a
/// transition to pending or resolved, or an alert of a host not heard from
/// (as it last said), is secondary.
fn style_of(row: &Row) -> (char, Style) {
    match (row.state.is_active(), row.old) {
        (true, false) => (theme::mark(row.severity), theme::status(row.severity)),
        (true, true) => (theme::mark(row.severity), theme::dim()),
        (false, _) => (' ', theme::dim()),
    }
}

fn row_line(cols: &Columns, row: &Row, now_ms: u64) -> Line<'static> {
    let (mark, style) = style_of(row);
    let age = format::short_age(now_ms.saturating_sub(row.at_ms));
    let text = cols.cells(&row.host, row.severity.label(), row.state.label(), &row.title, &row.reason, &age);
    Line::from(vec![Span::styled(format!("{mark} "), style), Span::styled(text.trim_end().to_owned(), style)])
}

fn header(cols: &Columns, title: &'static str) -> Line<'static> {
    let text = cols.cells(title, "sev", "state", "alert", "reason", "age");
    Line::styled(format!("  {}", text.trim_end()), theme::header())
}

fn note(text: String, style: Style) -> Line<'static> {
    Line::styled(format!("  {text}"), style)
}

fn filter(app: &App) -> Filter<'_> {
    Filter { text: &app.alerts_filter, min: app.min_severity }
}

/// One line of the view: made, or an alert's row, formatted only when it
/// is on screen (the day's transitions of a fleet are many).
enum Part {
    Made(Line<'static>),
    Row(Row),
}

impl Part {
    fn line(self, cols: &Columns, now_ms: u64) -> Line<'static> {
        match self {
            Part::Made(line) => line,
            Part::Row(row) => row_line(cols, &row, now_ms),
        }
    }
}

/// The view's lines, before scrolling, for a window `width` wide.
fn parts(app: &App, width: usize) -> Vec<Part> {
    let now = app.now_ms;
    let cols = Columns::for_width(width);
    let unheard = alerts::unheard(&app.hosts, now);
    let troubles = alerts::notifier_troubles(&app.hosts, now);
    let active = alerts::active(&app.hosts, filter(app), now);
    let recent = alerts::recent(&app.hosts, filter(app), now);
    let notes = alerts::notes(&app.hosts);
    // A host not heard from, and a failing target, are read whole: their
    // lines wrap, under a hanging indent.
    let mut lines: Vec<Part> = Vec::new();
    let warnings = unheard.iter().map(|t| (t, Status::Critical)).chain(troubles.iter().map(|t| (t, Status::Warning)));
    for (t, status) in warnings {
        for (i, part) in word_wrap(t, width.saturating_sub(GUTTER).max(8)).into_iter().enumerate() {
            let mark = if i == 0 { theme::mark(status) } else { ' ' };
            lines.push(Part::Made(Line::styled(format!("{mark} {part}"), theme::status(status))));
        }
    }
    if active.is_empty() && recent.is_empty() {
        let narrowed = !app.alerts_filter.is_empty() || app.min_severity != MinSeverity::All;
        let text = if narrowed { "no alerts match the filter" } else { "no alerts" };
        lines.push(Part::Made(note(text.into(), Style::default())));
    } else {
        lines.push(Part::Made(header(&cols, "Active")));
        if active.is_empty() {
            lines.push(Part::Made(note("none".into(), theme::dim())));
        }
        lines.extend(active.into_iter().map(Part::Row));
        lines.push(Part::Made(Line::raw("")));
        lines.push(Part::Made(header(&cols, "Recent")));
        if recent.is_empty() {
            lines.push(Part::Made(note("no transitions in the last 24 h".into(), theme::dim())));
        }
        lines.extend(recent.into_iter().map(Part::Row));
    }
    lines.extend(notes.into_iter().map(|n| Part::Made(note(n, theme::dim()))));
    if !cols.wide && lines.len() > 1 {
        lines.push(Part::Made(note(format!("{WIDE}+ columns: severity, reason"), theme::dim())));
    }
    lines
}

/// `text` in rows of at most `width` characters, broken at spaces (a word
/// longer than a row is cut).
fn word_wrap(text: &str, width: usize) -> Vec<String> {
    let mut rows = vec![String::new()];
    for word in text.split(' ') {
        let row = rows.last_mut().expect("never empty");
        let len = row.chars().count();
        if len > 0 && len + 1 + word.chars().count() > width {
            rows.push(word.chars().take(width).collect());
        } else {
            if len > 0 {
                row.push(' ');
            }
            row.extend(word.chars().take(width - len.min(width)));
        }
    }
    rows
}

/// The title: how many alerts are firing and pending, the severity and
/// text filters.
pub fn title_line(app: &App, width: u16) -> Line<'static> {
    let everything = Filter { text: "", min: MinSeverity::All };
    let all = alerts::active(&app.hosts, everything, app.now_ms);
    let notified = all.iter().filter(|r| r.state.is_active()).count();
    let pending = all.iter().filter(|r| r.state == AlertState::Pending).count();
    let mut text = format!(" cm-dashboard ── alerts ── {notified} firing, {pending} pending");
    if app.min_severity != MinSeverity::All {
        text.push_str(&format!(" ── severity: {}", app.min_severity.label()));
    }
    if !app.alerts_filter.is_empty() {
        text.push_str(&format!(" ── filter: {}", app.alerts_filter));
    }
    super::fill_title(text, width)
}

/// The rows the view has on a screen of `rows` rows: all but the title and
/// the key bar.
fn room(rows: u16) -> usize {
    usize::from(rows.saturating_sub(2))
}

/// The furthest the view can scroll on `total` lines in `room` rows: while
/// it scrolls, the last row says what is off screen.
fn limit(total: usize, room: usize) -> usize {
    if total <= room {
        0
    } else {
        total - room.saturating_sub(1).max(1)
    }
}

/// The furthest the view can scroll on the app's screen.
pub fn scroll_limit(app: &App) -> u16 {
    let (cols, rows) = app.screen;
    let total = parts(app, usize::from(cols)).len();
    limit(total, room(rows)).min(usize::from(u16::MAX)) as u16
}

/// How far PgUp and PgDn move: the rows a scrolled screen shows.
pub fn page(app: &App) -> i32 {
    room(app.screen.1).saturating_sub(1).max(1) as i32
}

pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let width = usize::from(area.width);
    let (cols, now) = (Columns::for_width(width), app.now_ms);
    let lines = parts(app, width);
    let room = usize::from(area.height);
    let scroll = usize::from(app.alerts_scroll).min(limit(lines.len(), room));
    let mut shown: Vec<Line<'static>> = if lines.len() <= room {
        lines.into_iter().map(|p| p.line(&cols, now)).collect()
    } else {
        let take = room.saturating_sub(1).max(1);
        let below = lines.len().saturating_sub(scroll + take);
        let mut part: Vec<Line<'static>> =
            lines.into_iter().skip(scroll).take(take).map(|p| p.line(&cols, now)).collect();
        let say = match (scroll, below) {
            (0, b) => format!("↓ {b} more rows: ↓/PgDn"),
            (a, 0) => format!("↑ {a} rows above: ↑/PgUp"),
            (a, b) => format!("↑ {a} above, ↓ {b} below"),
        };
        part.push(note(say, theme::key()));
        part
    };
    shown.truncate(room);
    let buf = frame.buffer_mut();
    for (line, y) in shown.iter().zip(area.top()..area.bottom()) {
        buf.set_line(area.x, y, line, area.width);
    }
}
