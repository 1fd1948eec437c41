//! History for cm-dashboard: every series of every snapshot in SQLite, in
//! tiers (raw, per minute, per hour) with retention and a size cap; range
//! reads for the wire and export; forecasts of when a value reaches its limit.

pub mod codec;
pub mod export;
pub mod forecast;
pub mod store;
pub mod time;

pub use store::{HistoryError, Reader, Retention, Store};
