//! Colors and symbols: status maps to a style here and nowhere else.

use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier, Style};

use cm_proto::Status;

/// The style of a row or value with this status.
pub fn status(s: Status) -> Style {
    match s {
        Status::Ok => Style::default(),
        Status::Warning => Style::default().fg(Color::Yellow),
        Status::Critical => Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
        Status::Unknown => Style::default().fg(Color::Magenta),
    }
}

/// The mark of a status, for the gutter and the overview: what says the
/// status where color does not (`NO_COLOR`, a monochrome terminal).
pub fn mark(s: Status) -> char {
    match s {
        Status::Ok => ' ',
        Status::Unknown => '?',
        Status::Warning => '!',
        Status::Critical => '×',
    }
}

/// The mark of the selected row of a list, beside its reversed colors.
pub const SELECTED: char = '>';

/// Values that are not live any more (a stale or unreachable host's).
pub fn old() -> Style {
    Style::default().fg(Color::DarkGray).remove_modifier(Modifier::BOLD)
}

/// Takes the colors out of a drawn frame, for `NO_COLOR`: what dim gray
/// said becomes the dim attribute, every other color the terminal's own.
/// Marks and attributes (reversed, bold) carry the meaning that is left.
///
/// A terminal backend that suppresses a color writes a full attribute
/// reset in its place, which would undo a reversed selection mid-row; a
/// frame with no colors left never asks for one.
pub fn monochrome(buf: &mut Buffer) {
    for cell in buf.content.iter_mut() {
        if cell.fg == Color::DarkGray {
            cell.modifier.insert(Modifier::DIM);
        }
        // A colored bar (the title) stays a bar.
        if cell.bg != Color::Reset {
            cell.modifier.insert(Modifier::REVERSED);
        }
        cell.fg = Color::Reset;
        cell.bg = Color::Reset;
    }
}

/// Whether the user asked for no colors: `NO_COLOR` set and not empty (no-color.org).
pub fn no_color_requested() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// Table headers and section names.
pub fn header() -> Style {
    Style::default().add_modifier(Modifier::BOLD)
}

/// The title bar.
pub fn title() -> Style {
    Style::default().fg(Color::Black).bg(Color::Cyan)
}

/// Secondary text: explanations, units, absent values.
pub fn dim() -> Style {
    Style::default().fg(Color::DarkGray)
}

/// Keys in the key bar and help.
pub fn key() -> Style {
    Style::default().fg(Color::Cyan).add_modifier(Modifier::BOLD)
}
