//! History for cm-dashboard: every series of every snapshot in SQLite, in
//! tiers (raw, per minute, per hour) with retention and a size cap; range
//! reads for the wire and export; forecasts of when a value reaches its limit;
//! alert events and the notification outbox.

pub mod codec;
pub mod export;
pub mod forecast;
pub mod journal;
pub mod store;
pub mod time;

pub use journal::{BackupClock, Journal, Queued};
pub use store::{HistoryError, Reader, Retention, Store};
