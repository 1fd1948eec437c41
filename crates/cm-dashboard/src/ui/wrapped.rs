//! Lines that wrap like a `Paragraph` with `Wrap { trim: false }`, but only
//! the ones that need it, and never inside a value: a number and its unit,
//! `error 2`, or a short parenthesised group stay on one row. Most lines of
//! the host view are table rows already cut to the width: those are written
//! straight into the buffer, which costs a fraction of running the word
//! wrapper over them (twice: once to count the rows, once to draw).

use std::borrow::Cow;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget, Wrap};

/// Left-aligned lines, wrapped at word boundaries where they are too wide.
/// A hanging one indents the rows a line wraps onto to where its text
/// starts, past its status mark and its leading spaces.
pub struct Wrapped {
    lines: Vec<Line<'static>>,
    hanging: bool,
}

/// The no-break space: the word wrapper does not break at it.
const NBSP: char = '\u{a0}';

/// Units a number before them belongs to.
const UNITS: &[&str] = &[
    "B", "KiB", "MiB", "GiB", "TiB", "PiB", "K", "M", "G", "T", "kB", "KB", "MB", "GB", "TB", "C", "°C", "W", "GHz",
    "MHz", "s", "ms", "min", "h", "d", "%",
];

/// The longest parenthesised group kept on one row.
const GROUP: usize = 32;

/// `text` with the spaces a line break must not take turned into no-break
/// spaces: between a number and its unit (`0 B/4.00 KiB`, `2.3 GHz`), after
/// `error` before its number, and inside a parenthesised group of at most
/// [`GROUP`] characters (`(os error 2)`), none of them wider than `width`.
pub(crate) fn keep_values_together(text: &str, width: usize) -> Cow<'_, str> {
    if !text.contains(' ') {
        return Cow::Borrowed(text);
    }
    let chars: Vec<char> = text.chars().collect();
    let mut glue = vec![false; chars.len()];
    // Parenthesised groups, innermost first closing.
    let mut open = Vec::new();
    for (i, &c) in chars.iter().enumerate() {
        match c {
            '(' => open.push(i),
            ')' => {
                if let Some(start) = open.pop() {
                    let len = i + 1 - start;
                    if len <= GROUP.min(width) {
                        (start..i).filter(|&j| chars[j] == ' ').for_each(|j| glue[j] = true);
                    }
                }
            }
            _ => {}
        }
    }
    // Words either side of each space.
    let words: Vec<(usize, usize)> = {
        let mut out = Vec::new();
        let mut start = None;
        for (i, &c) in chars.iter().enumerate() {
            match (c == ' ', start) {
                (false, None) => start = Some(i),
                (true, Some(s)) => {
                    out.push((s, i));
                    start = None;
                }
                _ => {}
            }
        }
        if let Some(s) = start {
            out.push((s, chars.len()));
        }
        out
    };
    let word = |(s, e): (usize, usize)| chars[s..e].iter().collect::<String>();
    for pair in words.windows(2) {
        let (a, b) = (word(pair[0]), word(pair[1]));
        // Only a single space between them: a wider gap separates columns.
        if pair[1].0 != pair[0].1 + 1 {
            continue;
        }
        // The unit may run on into the next figure (`B/4.00`) or a punctuation mark.
        let end = b.find(|c: char| !(c.is_alphabetic() || c == '°' || c == '%')).unwrap_or(b.len());
        let (unit, rest) = b.split_at(end);
        let unit_then = rest.is_empty() || rest.starts_with(['/', ',', ';', ':', ')', '.']);
        let value = a.ends_with(|c: char| c.is_ascii_digit()) && UNITS.contains(&unit) && unit_then;
        let error = a.eq_ignore_ascii_case("error") && b.starts_with(|c: char| c.is_ascii_digit());
        if (value || error) && a.chars().count() + 1 + b.chars().count() <= width {
            glue[pair[0].1] = true;
        }
    }
    if !glue.contains(&true) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(chars.iter().zip(&glue).map(|(&c, &g)| if g { NBSP } else { c }).collect())
}

/// `line` ready to wrap at `width`: its values glued together.
fn glued(line: &Line<'static>, width: u16) -> Line<'static> {
    let spans = line
        .spans
        .iter()
        .map(|s| Span::styled(keep_values_together(&s.content, usize::from(width)).into_owned(), s.style));
    Line { spans: spans.collect(), ..line.clone() }
}

/// The rows `line` takes at `width`.
fn rows(line: &Line<'static>, width: u16) -> usize {
    if line.width() <= usize::from(width) {
        1
    } else {
        Paragraph::new(glued(line, width)).wrap(Wrap { trim: false }).line_count(width)
    }
}

/// The characters a wrapped `line` hangs by: a status mark and the space
/// after it, then its leading spaces; at most half of `width`.
fn hang(line: &Line<'static>, width: u16) -> usize {
    let chars: Vec<char> = line.spans.iter().flat_map(|s| s.content.chars()).take(usize::from(width)).collect();
    let start = if chars.get(1) == Some(&' ') { 2 } else { 0 };
    let n = start + chars.iter().skip(start).take_while(|c| **c == ' ').count();
    n.min(usize::from(width) / 2)
}

/// `line` cut after its first `at` characters.
fn split(line: &Line<'static>, at: usize) -> (Line<'static>, Line<'static>) {
    let (mut head, mut tail) = (Vec::new(), Vec::new());
    let mut left = at;
    for span in &line.spans {
        let count = span.content.chars().count();
        if left >= count {
            head.push(span.clone());
            left -= count;
        } else {
            let cut: String = span.content.chars().take(left).collect();
            let rest: String = span.content.chars().skip(left).collect();
            if !cut.is_empty() {
                head.push(Span::styled(cut, span.style));
            }
            tail.push(Span::styled(rest, span.style));
            left = 0;
        }
    }
    (Line::from(head).style(line.style), Line::from(tail).style(line.style))
}

/// The rows `line` takes at `width` when it hangs.
pub(crate) fn hanging_rows(line: &Line<'static>, width: u16) -> usize {
    if line.width() <= usize::from(width) {
        return 1;
    }
    let h = hang(line, width);
    let (_, rest) = split(line, h);
    rows(&rest, width - h as u16)
}

impl Wrapped {
    /// Lines that wrap as a `Paragraph` wraps them: what the hanging
    /// lines are checked against.
    #[cfg(test)]
    pub fn new(lines: Vec<Line<'static>>) -> Self {
        Wrapped { lines, hanging: false }
    }

    /// Lines whose wrapped rows hang under where their text starts.
    pub fn hanging(lines: Vec<Line<'static>>) -> Self {
        Wrapped { lines, hanging: true }
    }

    /// The rows all lines take at `width`, as they are drawn.
    pub fn line_count(&self, width: u16) -> usize {
        if width == 0 {
            return 0;
        }
        let rows_of = if self.hanging { hanging_rows } else { rows };
        self.lines.iter().map(|line| rows_of(line, width)).sum()
    }
}

impl Widget for Wrapped {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let area = area.intersection(buf.area);
        let mut y = area.top();
        for line in self.lines {
            if y >= area.bottom() {
                break;
            }
            if line.width() <= usize::from(area.width) {
                buf.set_line(area.x, y, &line, area.width);
                y += 1;
                continue;
            }
            // Each line wraps on its own in a Paragraph too: wrapping it
            // alone gives the same rows.
            let h = if self.hanging { hang(&line, area.width) as u16 } else { 0 };
            let (head, rest) = split(&line, usize::from(h));
            let inner = Rect { x: area.x + h, width: area.width - h, ..area };
            let height = (rows(&rest, inner.width) as u16).min(area.bottom() - y);
            buf.set_line(area.x, y, &head, h);
            let rect = Rect { y, height, ..inner };
            Paragraph::new(glued(&rest, inner.width)).wrap(Wrap { trim: false }).render(rect, buf);
            for cell in rect.positions() {
                if buf[cell].symbol() == "\u{a0}" {
                    buf[cell].set_char(' ');
                }
            }
            y += height;
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

    fn wrapped_text(lines: Vec<Line<'static>>, w: u16) -> Vec<String> {
        let h = Wrapped::new(lines.clone()).line_count(w) as u16;
        let buf = draw(Wrapped::new(lines), w, h);
        (0..h).map(|y| (0..w).map(|x| buf[(x, y)].symbol()).collect::<String>().trim_end().to_owned()).collect()
    }

    #[test]
    fn a_wrap_never_splits_a_number_from_its_unit_or_a_short_group() {
        let tmpfs = Line::raw("tmpfs /mnt/sandboxing/model_tools_env/v1/python 0 B/4.00 KiB");
        assert_eq!(wrapped_text(vec![tmpfs], 48), ["tmpfs /mnt/sandboxing/model_tools_env/v1/python", "0 B/4.00 KiB"]);
        let error = Line::raw("systemd not available: No such file or directory (os error 2)");
        let rows = wrapped_text(vec![error], 58);
        assert_eq!(rows, ["systemd not available: No such file or directory", "(os error 2)"]);
        let tls = Line::raw("the cryptographic handshake failed: error 42: invalid peer certificate");
        assert_eq!(
            wrapped_text(vec![tls], 40),
            ["the cryptographic handshake failed:", "error 42: invalid peer certificate"]
        );
        assert!(
            !wrapped_text(vec![Line::raw("RAM  1.80/24.0 GiB 8%")], 14).iter().any(|r| r.ends_with("1.80/24.0")),
            "a figure keeps its unit"
        );
        assert_eq!(keep_values_together("columns  12 GiB", 80), "columns  12\u{a0}GiB");
        assert_eq!(keep_values_together("3 times", 80), "3 times", "not a unit");
        assert_eq!(
            keep_values_together("(a group far too long to keep on one row of text)", 80).matches('\u{a0}').count(),
            0
        );
        assert_eq!(
            keep_values_together("(os error 2)", 8),
            "(os error\u{a0}2)",
            "a group wider than the row breaks, its figure not"
        );
    }

    #[test]
    fn a_hanging_line_wraps_under_its_text_past_the_mark() {
        let line = Line::from(vec![
            Span::raw("? "),
            Span::raw("SMART: smartctl: not found: install smartmontools (or set the smartctl path)"),
        ]);
        let w = 40;
        let wrapped = Wrapped::hanging(vec![line.clone()]);
        let h = wrapped.line_count(w) as u16;
        let buf = draw(wrapped, w, h);
        let rows: Vec<String> =
            (0..h).map(|y| (0..w).map(|x| buf[(x, y)].symbol()).collect::<String>().trim_end().to_owned()).collect();
        assert_eq!(rows, ["? SMART: smartctl: not found: install", "  smartmontools", "  (or set the smartctl path)"]);
        let service = Line::raw("     systemd not available: No such file or directory (os error 2)");
        let h = Wrapped::hanging(vec![service.clone()]).line_count(40) as u16;
        let buf = draw(Wrapped::hanging(vec![service]), 40, h);
        assert_eq!((0..5).map(|x| buf[(x, 1)].symbol()).collect::<String>(), "     ", "under the text");
    }

    #[test]
    fn draws_and_counts_what_a_wrapping_paragraph_does() {
        for w in 1..=100 {
            let paragraph = Paragraph::new(lines()).wrap(Wrap { trim: false });
            assert_eq!(Wrapped::new(lines()).line_count(w), paragraph.line_count(w), "width {w}");
            for h in [1, 3, 8, 30] {
                let expected = draw(Paragraph::new(lines()).wrap(Wrap { trim: false }), w, h);
                assert_eq!(draw(Wrapped::new(lines()), w, h), expected, "{w}x{h}");
            }
        }
    }
}
