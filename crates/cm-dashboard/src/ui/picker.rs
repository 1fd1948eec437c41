//! The series picker: every series of the host whose name holds what was
//! typed, to chart one of them.

use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

use crate::app::{App, Picker};
use crate::theme;

pub fn render(app: &App, picker: &Picker, frame: &mut Frame, area: Rect) {
    let matches = app.picker_matches();
    let width = 60.min(area.width);
    let height = 16.min(area.height);
    let popup = Rect { x: area.x + (area.width - width) / 2, y: area.y + (area.height - height) / 2, width, height };
    let room = usize::from(height.saturating_sub(4));
    // Keep the selection in view: the list scrolls by whole pages.
    let first = picker.selected.checked_div(room).map_or(0, |page| page * room);
    let mut lines =
        vec![Line::from(vec![Span::styled(" find: ", theme::key()), Span::raw(format!("{}_", picker.query))])];
    if matches.is_empty() {
        lines.push(Line::styled(" no series matches", theme::dim()));
    }
    for (i, name) in matches.iter().enumerate().skip(first).take(room) {
        let style =
            if i == picker.selected { theme::header().add_modifier(Modifier::REVERSED) } else { Default::default() };
        let name = crate::format::middle(name, usize::from(width.saturating_sub(3)));
        lines.push(Line::styled(format!(" {name}"), style));
    }
    let more = matches.len().saturating_sub(first + room);
    if more > 0 {
        lines.push(Line::styled(format!(" +{more} more"), theme::dim()));
    }
    frame.render_widget(Clear, popup);
    let block = Block::default().borders(Borders::ALL).title(" chart a series ");
    frame.render_widget(Paragraph::new(lines).block(block), popup);
}
