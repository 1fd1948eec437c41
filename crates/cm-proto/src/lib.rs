//! The shared language of cm-dashboard: the typed host model, status levels,
//! series names, and the CBOR wire encoding with its length-prefixed framing.
//!
//! This crate does no I/O: bytes go in, messages come out. Sockets, files and
//! clocks live in the crates that use it.

pub mod delta;
pub mod frame;
pub mod model;
pub mod series;
pub mod status;
pub mod wire;

pub use delta::{apply, diff, DeltaError, SnapshotUpdate};
pub use frame::{FrameDecoder, FrameError, MAX_FRAME_BYTES};
pub use model::*;
pub use status::Status;
pub use wire::{decode, encode, Message, WireError, PROTOCOL_MAJOR, PROTOCOL_MINOR};
