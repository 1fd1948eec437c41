//! The subscribing side of the protocol: dial an agent, say Hello, read the
//! Welcome (or Refused), then snapshots.

use std::net::SocketAddr;
use std::time::Duration;

use cm_proto::{HostSnapshot, Message, PROTOCOL_MAJOR, PROTOCOL_MINOR};
use thiserror::Error;

use crate::pki::Role;
use crate::stream::{self, FramedRecv, StreamError};

/// Largest frame a dashboard accepts from an agent.
pub const MAX_FRAME: usize = cm_proto::MAX_FRAME_BYTES;

/// Why a subscription failed or ended.
#[derive(Debug, Error)]
pub enum ClientError {
    #[error("cannot reach {addr}: {message}")]
    Connect { addr: SocketAddr, message: String },
    #[error("refused by the agent: {0}")]
    Refused(String),
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error(transparent)]
    Stream(#[from] StreamError),
    #[error("no answer within {} s", .0.as_secs_f64())]
    Timeout(Duration),
}

/// What the agent said when it accepted the subscription.
#[derive(Debug, Clone, PartialEq)]
pub struct Welcome {
    pub host: String,
    pub agent_version: String,
    pub major: u16,
    pub minor: u16,
    pub interval_ms: u64,
}

/// An accepted subscription.
pub struct Subscription {
    pub conn: quinn::Connection,
    pub welcome: Welcome,
    frames: FramedRecv,
    _send: quinn::SendStream,
    /// The host as the stream has described it so far; updates apply to it.
    current: Option<HostSnapshot>,
    /// Bytes of frames received, for measuring the wire cost.
    pub bytes_received: u64,
}

/// Dials `host` at `addr` and subscribes to its snapshots.
pub async fn subscribe(
    endpoint: &quinn::Endpoint,
    addr: SocketAddr,
    host: &str,
    role: Role,
    timeout: Duration,
) -> Result<Subscription, ClientError> {
    let connect_err = |message: String| ClientError::Connect { addr, message };
    let connecting = endpoint.connect(addr, host).map_err(|e| connect_err(e.to_string()))?;
    let conn = tokio::time::timeout(timeout, connecting)
        .await
        .map_err(|_| ClientError::Timeout(timeout))?
        .map_err(|e| connect_err(e.to_string()))?;
    let (mut send, recv) = conn.open_bi().await.map_err(|e| connect_err(e.to_string()))?;
    let hello =
        Message::Hello { major: PROTOCOL_MAJOR, minor: PROTOCOL_MINOR, role: role.to_string(), subscribe: true };
    stream::send(&mut send, &hello).await?;
    let mut frames = FramedRecv::new(recv, MAX_FRAME);
    let answer = tokio::time::timeout(timeout, frames.next()).await.map_err(|_| ClientError::Timeout(timeout))?;
    let answer = match answer {
        Ok(a) => a,
        // A refused TLS client learns it here, when the agent closes the connection.
        Err(e) => return Err(conn.close_reason().map_or(ClientError::Stream(e), |r| connect_err(r.to_string()))),
    };
    match answer {
        Some(Message::Welcome { host, agent_version, major, minor, interval_ms }) => {
            let welcome = Welcome { host, agent_version, major, minor, interval_ms };
            Ok(Subscription { conn, welcome, frames, _send: send, current: None, bytes_received: 0 })
        }
        Some(Message::Refused { reason }) => Err(ClientError::Refused(reason)),
        Some(other) => Err(ClientError::Protocol(format!("expected welcome, got {other:?}"))),
        None => Err(conn.close_reason().map_or_else(
            || ClientError::Protocol("the agent closed the stream without a welcome".into()),
            |r| connect_err(r.to_string()),
        )),
    }
}

impl Subscription {
    /// The next snapshot, whole (updates are applied to the previous one);
    /// `None` when the agent ended the stream.
    pub async fn next_snapshot(&mut self) -> Result<Option<HostSnapshot>, ClientError> {
        loop {
            let before = self.frames.received();
            let next = self.frames.next().await?;
            self.bytes_received += self.frames.received() - before;
            match next {
                Some(Message::Snapshot(s)) => {
                    self.current = Some(*s);
                    return Ok(self.current.clone());
                }
                Some(Message::Update(u)) => {
                    let base = self
                        .current
                        .as_mut()
                        .ok_or_else(|| ClientError::Protocol("an update before any snapshot".into()))?;
                    cm_proto::apply(base, *u).map_err(|e| ClientError::Protocol(e.to_string()))?;
                    return Ok(self.current.clone());
                }
                // Kinds from a newer minor version are skipped.
                Some(Message::Unknown) => continue,
                Some(other) => {
                    return Err(ClientError::Protocol(format!("unexpected {other:?} in the snapshot stream")))
                }
                None => return Ok(None),
            }
        }
    }
}
