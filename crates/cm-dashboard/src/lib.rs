//! The dashboard's parts, for its binary (`main.rs`) and its render benchmark:
//! app state, rendering, the terminal, the sources that feed the app, the
//! fleet's state for scripts (`--once --json`, `--json-lines`), and the
//! export of history.

pub mod alerts;
pub mod app;
pub mod config;
pub mod export;
mod format;
pub mod history;
pub mod inbox;
pub mod local;
pub mod redraw;
pub mod remote;
pub mod state;
pub mod summary;
pub mod terminal;
mod theme;
pub mod ui;

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
