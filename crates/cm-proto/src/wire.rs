//! Messages and their CBOR encoding.
//!
//! A message is a CBOR map with a `type` key naming its kind (`hello`,
//! `welcome`, `refused`, `snapshot`, `patch`, `history_request`,
//! `history_chunk`, `history_end`, `history_events`). Kinds and fields added within a
//! major version are ignored by older peers; a kind a peer does not know
//! decodes as [`Message::Unknown`] so it can be skipped rather than fail the
//! connection. A missing field takes its default.

use ciborium::value::Value;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::history::{HistoryChunk, HistoryEnd, HistoryEvents, HistoryRequest};
use crate::model::HostSnapshot;

/// Protocol major version: peers with different majors refuse each other.
/// It is also the ALPN suffix (`cm/1`).
pub const PROTOCOL_MAJOR: u16 = 1;
/// Protocol minor version: additive changes only. 1.1 added `patch`, 1.2
/// history requests on their own streams, 1.3 alerts in the snapshot and
/// alert events in history answers.
pub const PROTOCOL_MINOR: u16 = 3;

fn this_major() -> u16 {
    PROTOCOL_MAJOR
}

/// One message on a cm stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// First message from a client.
    Hello {
        /// Missing means this major: the ALPN (`cm/1`) already said it.
        #[serde(default = "this_major")]
        major: u16,
        #[serde(default)]
        minor: u16,
        /// The role the client claims; the certificate's role decides.
        #[serde(default)]
        role: String,
        /// Whether the client wants the snapshot stream.
        #[serde(default)]
        subscribe: bool,
    },
    /// The agent's answer to an accepted `Hello`.
    Welcome {
        #[serde(default)]
        host: String,
        #[serde(default)]
        agent_version: String,
        #[serde(default = "this_major")]
        major: u16,
        #[serde(default)]
        minor: u16,
        /// Collection interval in milliseconds.
        #[serde(default)]
        interval_ms: u64,
    },
    /// The agent's answer to a refused `Hello`, with a reason a person can act on.
    Refused {
        #[serde(default)]
        reason: String,
    },
    /// A full snapshot of the host.
    Snapshot(Box<HostSnapshot>),
    /// Protocol 1.0's update, where `null` meant both "unchanged" and
    /// "removed"; still decoded from 1.0 agents, no longer sent.
    Update(Box<crate::delta::SnapshotUpdate>),
    /// What changed since the previous snapshot or patch on this stream (1.1).
    Patch(Box<Patch>),
    /// A range request, alone on a stream of its own (1.2).
    HistoryRequest(HistoryRequest),
    /// Points of one series, in answer to a `history_request`.
    HistoryChunk(HistoryChunk),
    /// The end of a history answer.
    HistoryEnd(HistoryEnd),
    /// Alert transitions, in answer to a `history_request` with `events` (1.3).
    HistoryEvents(HistoryEvents),
    /// A message kind this version does not know.
    #[serde(other)]
    Unknown,
}

/// A merge patch of the snapshot the peer holds (see [`crate::patch`]): on
/// the wire a map of `base_seq` and the snapshot's changed keys.
#[derive(Debug, Clone, PartialEq)]
pub struct Patch {
    /// The `seq` of the snapshot it applies to.
    pub base_seq: u64,
    /// The changed top-level keys of the snapshot and their patches.
    pub changes: Vec<(String, Value)>,
}

impl Patch {
    /// True when nothing but the sequence number and the time moved.
    pub fn is_heartbeat(&self) -> bool {
        self.changes.iter().all(|(k, _)| k == "seq" || k == "timestamp_ms")
    }

    /// The changes as one map, to give to [`crate::patch::apply`].
    pub fn as_map(&self) -> Value {
        Value::Map(self.changes.iter().map(|(k, v)| (Value::Text(k.clone()), v.clone())).collect())
    }
}

impl Serialize for Patch {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(1 + self.changes.len()))?;
        map.serialize_entry("base_seq", &self.base_seq)?;
        for (k, v) in &self.changes {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Patch {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Patch;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a patch map")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Patch, A::Error> {
                let mut patch = Patch { base_seq: 0, changes: Vec::new() };
                while let Some(key) = map.next_key::<String>()? {
                    if key == "base_seq" {
                        patch.base_seq = map.next_value()?;
                    } else {
                        patch.changes.push((key, map.next_value()?));
                    }
                }
                Ok(patch)
            }
        }
        d.deserialize_map(Visit)
    }
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
            Message::HistoryRequest(crate::history::HistoryRequest {
                series: vec!["fs.*.used_percent".into()],
                from_ms: 1,
                to_ms: 2,
                resolution: crate::history::Resolution::Minute,
                max_points: 600,
                events: true,
            }),
            Message::HistoryChunk(crate::history::HistoryChunk {
                series: "cpu.load1".into(),
                resolution: crate::history::Resolution::Raw,
                points: vec![
                    crate::history::Point::raw(1_764_000_000_000, 0.25),
                    crate::history::Point { ts_ms: 1_764_000_060_000, min: 0.0, max: 1.5, mean: 0.5, count: 30 },
                ],
            }),
            Message::HistoryEnd(crate::history::HistoryEnd {
                series: 1,
                points: 2,
                truncated: false,
                error: None,
                events: 1,
            }),
            Message::HistoryEvents(crate::history::HistoryEvents {
                events: vec![crate::alert::AlertEvent {
                    ts_ms: 1_764_000_000_000,
                    rule: "scratch-full".into(),
                    instance: "fs./srv/scratch.used_percent".into(),
                    state: crate::alert::AlertState::Firing,
                    severity: crate::Status::Critical,
                    value: Some(93.5),
                    reason: "used 93.5% (critical at 90%)".into(),
                }],
            }),
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
