//! Messages and their CBOR encoding.
//!
//! A message is a CBOR map with a `type` key naming its kind (`hello`,
//! `welcome`, `refused`, `snapshot`). Kinds and fields added within a major
//! version are ignored by older peers; a kind a peer does not know decodes as
//! [`Message::Unknown`] so it can be skipped rather than fail the connection.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::model::HostSnapshot;

/// Protocol major version: peers with different majors refuse each other.
/// It is also the ALPN suffix (`cm/1`).
pub const PROTOCOL_MAJOR: u16 = 1;
/// Protocol minor version: additive changes only.
pub const PROTOCOL_MINOR: u16 = 0;

/// One message on a cm stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// First message from a client.
    Hello {
        major: u16,
        minor: u16,
        /// The role the client claims; the agent checks it against its certificate.
        role: String,
        /// Whether the client wants the snapshot stream.
        subscribe: bool,
    },
    /// The agent's answer to an accepted `Hello`.
    Welcome {
        host: String,
        agent_version: String,
        major: u16,
        minor: u16,
        /// Collection interval in milliseconds.
        interval_ms: u64,
    },
    /// The agent's answer to a refused `Hello`, with a reason a person can act on.
    Refused { reason: String },
    /// A full snapshot of the host.
    Snapshot(Box<HostSnapshot>),
    /// What changed since the previous snapshot or update on this stream.
    Update(Box<crate::delta::SnapshotUpdate>),
    /// A message kind this version does not know.
    #[serde(other)]
    Unknown,
}

/// Why bytes could not become a message, or a message could not become bytes.
#[derive(Debug, Error)]
pub enum WireError {
    #[error("malformed CBOR message: {0}")]
    Decode(String),
    #[error("could not encode message: {0}")]
    Encode(String),
}

/// Encodes one message as CBOR (without a length prefix).
pub fn encode(msg: &Message) -> Result<Vec<u8>, WireError> {
    let mut out = Vec::with_capacity(512);
    ciborium::into_writer(msg, &mut out).map_err(|e| WireError::Encode(e.to_string()))?;
    Ok(out)
}

/// Decodes one CBOR message (without a length prefix). Trailing bytes are an error.
pub fn decode(bytes: &[u8]) -> Result<Message, WireError> {
    let mut reader = bytes;
    let msg: Message = ciborium::from_reader(&mut reader).map_err(|e| WireError::Decode(e.to_string()))?;
    if !reader.is_empty() {
        return Err(WireError::Decode(format!("{} unexpected bytes after the message", reader.len())));
    }
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;
    use crate::status::Status;

    fn sample() -> HostSnapshot {
        HostSnapshot {
            host: "srv01".into(),
            seq: 42,
            timestamp_ms: 1_764_000_000_000,
            agent_version: "0.1.0".into(),
            cpu: Some(Cpu { load1: 0.42, logical_cpus: 8, utilisation_percent: Some(12.5), ..Default::default() }),
            memory: Some(Memory {
                total_bytes: 8 << 30,
                used_bytes: 2 << 30,
                status: Status::Ok,
                ..Default::default()
            }),
            drives: vec![Drive { name: "nvme0n1".into(), capacity_bytes: 1_000_204_886_016, ..Default::default() }],
            filesystems: vec![Filesystem {
                mount_point: "/".into(),
                fstype: "ext4".into(),
                drive: Some("nvme0n1".into()),
                status: Status::Warning,
                ..Default::default()
            }],
            collectors: vec![CollectorReport {
                name: "gpu".into(),
                error: Some("nvidia-smi timed out".into()),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn every_message_kind_round_trips() {
        let msgs = [
            Message::Hello { major: 1, minor: 0, role: "dashboard".into(), subscribe: true },
            Message::Welcome {
                host: "srv01".into(),
                agent_version: "0.1.0".into(),
                major: 1,
                minor: 0,
                interval_ms: 2000,
            },
            Message::Refused { reason: "role may not subscribe".into() },
            Message::Snapshot(Box::new(sample())),
        ];
        for msg in msgs {
            let bytes = encode(&msg).unwrap();
            assert_eq!(decode(&bytes).unwrap(), msg);
        }
    }

    #[test]
    fn unknown_fields_and_kinds_are_tolerated() {
        #[derive(Serialize)]
        struct FutureRefused<'a> {
            r#type: &'a str,
            reason: &'a str,
            retry_after_ms: u64,
        }
        let mut bytes = Vec::new();
        ciborium::into_writer(&FutureRefused { r#type: "refused", reason: "busy", retry_after_ms: 5 }, &mut bytes)
            .unwrap();
        assert_eq!(decode(&bytes).unwrap(), Message::Refused { reason: "busy".into() });

        let mut bytes = Vec::new();
        ciborium::into_writer(&FutureRefused { r#type: "history_range", reason: "", retry_after_ms: 0 }, &mut bytes)
            .unwrap();
        assert_eq!(decode(&bytes).unwrap(), Message::Unknown);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [&b""[..], b"\xff\xff\xff", b"\xa1\x64type", b"hello world", &[0x9f; 64]] {
            assert!(decode(bytes).is_err(), "{bytes:?} decoded");
        }
        let mut ok = encode(&Message::Refused { reason: "x".into() }).unwrap();
        ok.push(0);
        assert!(matches!(decode(&ok), Err(WireError::Decode(m)) if m.contains("unexpected bytes")));
    }
}
