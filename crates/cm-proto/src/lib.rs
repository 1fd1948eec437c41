//! The shared language of cm-dashboard: the typed host model, status levels,
//! series names, the CBOR wire encoding with its length-prefixed framing, and
//! the protocol sessions as state machines.
//!
//! This crate does no I/O: bytes go in, messages come out. Sockets, files and
//! clocks live in the crates that use it.

pub mod alert;
pub mod delta;
pub mod frame;
pub mod history;
pub mod model;
pub mod patch;
pub mod role;
pub mod series;
pub mod session;
pub mod status;
pub mod wire;

pub use alert::{Alert, AlertEvent, AlertState, NotifierStatus};
pub use delta::{DeltaError, SnapshotUpdate};
pub use frame::{FrameDecoder, FrameError, MAX_FRAME_BYTES};
pub use model::*;
pub use role::Role;
pub use session::{code, escape, AgentSession, ClientSession};
pub use status::Status;
pub use wire::{decode, encode, Message, Patch, WireError, PROTOCOL_MAJOR, PROTOCOL_MINOR};
