//! The help overlay.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

use cm_proto::Status;

use crate::app::{App, View};
use crate::history::Window;
use crate::theme;

pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let mut lines: Vec<Line> = super::visible_keys(app)
        .map(|(key, what)| Line::from(vec![Span::styled(format!(" {key:>6}  "), theme::key()), Span::raw(what)]))
        .collect();
    lines.push(Line::raw(""));
    if app.view == View::Chart {
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
    lines.push(Line::styled(" Row colors", theme::header()));
    for (status, meaning) in [
        (Status::Ok, "ok: within every threshold"),
        (Status::Warning, "warning: past a warning threshold"),
        (Status::Critical, "critical: past a critical threshold"),
        (Status::Unknown, "unknown: no data or a collector error"),
    ] {
        lines.push(Line::styled(format!("   {meaning}"), theme::status(status)));
    }
    let width = 46.min(area.width);
    let height = (lines.len() as u16 + 2).min(area.height);
    let popup = Rect { x: area.x + (area.width - width) / 2, y: area.y + (area.height - height) / 2, width, height };
    frame.render_widget(Clear, popup);
    frame.render_widget(Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(" help ")), popup);
}
