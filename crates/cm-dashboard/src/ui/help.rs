//! The help overlay: every key of the view, what the sparklines and row
//! marks mean. It wraps to the window and scrolls when it is taller.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;

use cm_proto::Status;

use crate::app::{App, View};
use crate::history::Window;
use crate::theme;

/// The help's lines, before wrapping.
fn lines(app: &App) -> Vec<Line<'static>> {
    let mut lines: Vec<Line> = super::visible_keys(app)
        .map(|(key, what)| Line::from(vec![Span::styled(format!(" {key:>6}  "), theme::key()), Span::raw(what)]))
        .collect();
    lines.push(Line::raw(""));
    if app.view == View::Alerts {
        lines.push(Line::styled(" Alerts", theme::header()));
        lines.push(Line::raw("   active: firing and flapping, then pending; worst first, then oldest"));
        lines.push(Line::raw("   recent: the last 24 h of transitions, newest first"));
        lines.push(Line::raw("   age: how long since it entered its state"));
    } else if app.view == View::Chart {
        lines.push(Line::styled(" Chart", theme::header()));
        lines.push(Line::raw("   line: each bucket's mean"));
        lines.push(Line::raw("   band ░: each bucket's min to max"));
    } else {
        let span = |w: Window| w.label();
        lines.push(Line::styled(" Sparklines", theme::header()));
        lines.push(Line::raw(format!("   {}: CPU, memory, temperatures", span(Window::LAST_HOUR))));
        lines.push(Line::raw(format!(
            "   {}: filesystems  {}: wear",
            span(Window::LAST_DAY),
            span(Window::LAST_MONTH)
        )));
    }
    lines.push(Line::styled(" Row marks and colors", theme::header()));
    for (status, meaning) in [
        (Status::Ok, "ok: within every threshold"),
        (Status::Warning, "warning: past a warning threshold"),
        (Status::Critical, "critical: past a critical threshold"),
        (Status::Unknown, "unknown: no data or a collector error"),
    ] {
        lines.push(Line::styled(format!(" {}  {meaning}", theme::mark(status)), theme::status(status)));
    }
    lines.push(Line::styled(format!(" {}  the selected host", theme::SELECTED), theme::dim()));
    lines.push(Line::styled("    dimmed: old values (stale or unreachable)", theme::old()));
    lines
}

/// Where the help goes on a screen of `area`.
fn popup(area: Rect) -> Rect {
    let width = 50.min(area.width);
    let height = area.height;
    Rect { x: area.x + (area.width - width) / 2, y: area.y, width, height }
}

/// The help as a paragraph, wrapped at the popup's inner width.
fn paragraph(app: &App) -> Paragraph<'static> {
    Paragraph::new(lines(app)).wrap(Wrap { trim: false })
}

/// The rows of help text and the rows there is room for, on `area`.
fn rows(app: &App, area: Rect) -> (u16, u16) {
    let outer = popup(area);
    let inner = (outer.width.saturating_sub(2), outer.height.saturating_sub(2));
    let total = paragraph(app).line_count(inner.0) as u16;
    (total, inner.1.min(total))
}

/// The furthest the help can scroll on the app's screen: the rows that do
/// not fit.
pub fn scroll_limit(app: &App) -> u16 {
    let (cols, rows_) = app.screen;
    let (total, room) = rows(app, Rect::new(0, 0, cols, rows_));
    total.saturating_sub(room)
}

pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let (total, room) = rows(app, area);
    let outer = popup(area);
    // Centered when it fits, the full height when it scrolls.
    let popup = Rect {
        y: area.y + (area.height - (room + 2).min(area.height)) / 2,
        height: (room + 2).min(area.height),
        ..outer
    };
    let scroll = app.help_scroll.min(total.saturating_sub(room));
    let mut block = Block::default().borders(Borders::ALL).title(" help ");
    if total > room {
        let below = total - room - scroll;
        let where_ = match (scroll, below) {
            (0, _) => format!(" ↓ {below} more rows: ↓/PgDn "),
            (_, 0) => format!(" ↑ {scroll} rows above: ↑/PgUp "),
            _ => format!(" ↑ {scroll} above, ↓ {below} below "),
        };
        block = block.title_bottom(Line::styled(where_, theme::key()));
    }
    frame.render_widget(Clear, popup);
    frame.render_widget(paragraph(app).scroll((scroll, 0)).block(block), popup);
}
