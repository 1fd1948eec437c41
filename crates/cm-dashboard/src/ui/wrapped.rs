//! Lines that wrap like a `Paragraph` with `Wrap { trim: false }`, but only
//! the ones that need it. Most lines of the host view are table rows already
//! cut to the width: those are written straight into the buffer, which costs
//! a fraction of running the word wrapper over them (twice: once to count
//! the rows, once to draw).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Widget, Wrap};

/// Left-aligned lines, wrapped at word boundaries where they are too wide.
pub struct Wrapped(pub Vec<Line<'static>>);

/// The rows `line` takes at `width`.
fn rows(line: &Line<'_>, width: u16) -> usize {
    if line.width() <= usize::from(width) {
        1
    } else {
        Paragraph::new(line.clone()).wrap(Wrap { trim: false }).line_count(width)
    }
}

impl Wrapped {
    /// The rows all lines take at `width`, as `Paragraph::line_count` counts them.
    pub fn line_count(&self, width: u16) -> usize {
        if width == 0 {
            return 0;
        }
        self.0.iter().map(|line| rows(line, width)).sum()
    }
}

impl Widget for Wrapped {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let area = area.intersection(buf.area);
        let mut y = area.top();
        for line in self.0 {
            if y >= area.bottom() {
                break;
            }
            if line.width() <= usize::from(area.width) {
                buf.set_line(area.x, y, &line, area.width);
                y += 1;
            } else {
                // Each line wraps on its own in a Paragraph too: wrapping it
                // alone gives the same rows.
                let height = (rows(&line, area.width) as u16).min(area.bottom() - y);
                Paragraph::new(line).wrap(Wrap { trim: false }).render(Rect { y, height, ..area }, buf);
                y += height;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use ratatui::style::{Color, Modifier, Style};
    use ratatui::text::Span;

    use super::*;

    fn lines() -> Vec<Line<'static>> {
        vec![
            Line::styled(" gitea              running   256M/4G   1%", Style::default().fg(Color::Red)),
            Line::raw(""),
            Line::styled(
                "   ! failed (exit-code); restarted 3 times, and a reason long enough to wrap at any width",
                Style::default().fg(Color::Yellow).add_modifier(Modifier::BOLD),
            ),
            Line::from(vec![Span::styled("CPU ", Style::default().fg(Color::Cyan)), Span::raw("load 0.42 0.51 0.48")]),
            Line::raw("averyveryverylongwordwithoutanyspacesthatmustbebrokensomewhere…andthensome"),
            Line::raw("    leading spaces stay, as with trim: false"),
        ]
    }

    fn draw(widget: impl Widget, w: u16, h: u16) -> Buffer {
        let mut buf = Buffer::empty(Rect::new(0, 0, w, h));
        widget.render(Rect::new(0, 0, w, h), &mut buf);
        buf
    }

    #[test]
    fn draws_and_counts_what_a_wrapping_paragraph_does() {
        for w in 1..=100 {
            let paragraph = Paragraph::new(lines()).wrap(Wrap { trim: false });
            assert_eq!(Wrapped(lines()).line_count(w), paragraph.line_count(w), "width {w}");
            for h in [1, 3, 8, 30] {
                let expected = draw(Paragraph::new(lines()).wrap(Wrap { trim: false }), w, h);
                assert_eq!(draw(Wrapped(lines()), w, h), expected, "{w}x{h}");
            }
        }
    }
}
