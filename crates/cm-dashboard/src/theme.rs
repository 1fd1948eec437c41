//! Colors and symbols: status maps to a style here and nowhere else.

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
