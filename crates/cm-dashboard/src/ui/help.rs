//! The help overlay.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

use cm_proto::Status;

use crate::app::App;
use crate::theme;

pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let mut lines: Vec<Line> = super::visible_keys(app)
        .map(|(key, what)| Line::from(vec![Span::styled(format!(" {key:>6}  "), theme::key()), Span::raw(what)]))
        .collect();
    lines.push(Line::raw(""));
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
