//! The subscribing side of the protocol: dial an agent, check that it is one,
//! and move bytes between the QUIC stream and a [`ClientSession`], which says
//! hello, reads the welcome (or refusal) and keeps the host's state.

use std::net::SocketAddr;
use std::time::Duration;

use cm_proto::session::{ClientEvent, ClientSession};
use cm_proto::HostSnapshot;
use thiserror::Error;

pub use cm_proto::session::Welcome;

use crate::pki::Role;
use crate::stream::{code, StreamError};

/// Largest frame a dashboard accepts from an agent.
pub const MAX_FRAME: usize = cm_proto::MAX_FRAME_BYTES;

/// Why a subscription failed or ended.
#[derive(Debug, Error)]
pub enum ClientError {
    #[error("cannot reach {addr}: {message}")]
    Connect { addr: SocketAddr, message: String },
    #[error("refused by the agent: {0}")]
    Refused(String),
    #[error("the peer at {addr} is not an agent: its certificate {what}")]
    NotAnAgent { addr: SocketAddr, what: String },
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error(transparent)]
    Stream(#[from] StreamError),
    #[error("no answer within {} s", .0.as_secs_f64())]
    Timeout(Duration),
}

/// An accepted subscription.
pub struct Subscription {
    pub conn: quinn::Connection,
    pub welcome: Welcome,
    session: ClientSession,
    recv: quinn::RecvStream,
    _send: quinn::SendStream,
    buf: Vec<u8>,
    /// Bytes of frames received, for measuring the wire cost.
    pub bytes_received: u64,
}

/// Dials `host` at `addr` and checks that the peer is an agent of this
/// fleet: TLS checks the CA and the name, the role is checked here.
pub async fn connect(
    endpoint: &quinn::Endpoint,
    addr: SocketAddr,
    host: &str,
    timeout: Duration,
) -> Result<quinn::Connection, ClientError> {
    let connect_err = |message: String| ClientError::Connect { addr, message };
    let connecting = endpoint.connect(addr, host).map_err(|e| connect_err(e.to_string()))?;
    let conn = tokio::time::timeout(timeout, connecting)
        .await
        .map_err(|_| ClientError::Timeout(timeout))?
        .map_err(|e| connect_err(e.to_string()))?;
    match crate::tls::peer(&conn) {
        Ok((Some(Role::Agent), _)) => Ok(conn),
        Ok((other, _)) => {
            let what = other.map_or("carries no cm role".into(), |r| format!("has role {r}"));
            conn.close(code::REFUSED.into(), b"not an agent");
            Err(ClientError::NotAnAgent { addr, what })
        }
        Err(e) => {
            conn.close(code::REFUSED.into(), b"not an agent");
            Err(ClientError::NotAnAgent { addr, what: e.to_string() })
        }
    }
}

/// Dials `host` at `addr` and subscribes to its snapshots.
pub async fn subscribe(
    endpoint: &quinn::Endpoint,
    addr: SocketAddr,
    host: &str,
    role: Role,
    timeout: Duration,
) -> Result<Subscription, ClientError> {
    session(endpoint, addr, host, role, true, timeout).await
}

/// Dials `host` at `addr` and says hello without subscribing: the welcome
/// comes, no snapshots follow, and the connection can carry [`history`]
/// requests.
pub async fn hello(
    endpoint: &quinn::Endpoint,
    addr: SocketAddr,
    host: &str,
    role: Role,
    timeout: Duration,
) -> Result<Subscription, ClientError> {
    session(endpoint, addr, host, role, false, timeout).await
}

async fn session(
    endpoint: &quinn::Endpoint,
    addr: SocketAddr,
    host: &str,
    role: Role,
    subscribe: bool,
    timeout: Duration,
) -> Result<Subscription, ClientError> {
    let connect_err = |message: String| ClientError::Connect { addr, message };
    let conn = connect(endpoint, addr, host, timeout).await?;
    let (mut send, recv) = conn.open_bi().await.map_err(|e| connect_err(e.to_string()))?;
    let mut session = ClientSession::new(role, subscribe);
    while let Some(bytes) = session.poll_transmit() {
        send.write_all(&bytes).await.map_err(StreamError::from)?;
    }
    let mut sub = Subscription {
        conn,
        welcome: Welcome { host: String::new(), agent_version: String::new(), major: 0, minor: 0, interval_ms: 0 },
        session,
        recv,
        _send: send,
        buf: vec![0; 16 * 1024],
        bytes_received: 0,
    };
    let answer = tokio::time::timeout(timeout, sub.next_event()).await.map_err(|_| ClientError::Timeout(timeout))?;
    match answer? {
        Some(ClientEvent::Welcome(w)) => {
            sub.welcome = w;
            Ok(sub)
        }
        Some(ClientEvent::Refused(reason)) => Err(ClientError::Refused(reason)),
        Some(ClientEvent::State) => Err(ClientError::Protocol("a snapshot before the welcome".into())),
        None => Err(sub.conn.close_reason().map_or_else(
            || ClientError::Protocol("the agent closed the stream without a welcome".into()),
            |r| connect_err(r.to_string()),
        )),
    }
}

impl Subscription {
    /// The next thing the session learned; `None` when the agent ended the stream.
    async fn next_event(&mut self) -> Result<Option<ClientEvent>, ClientError> {
        loop {
            if let Some(event) = self.session.poll_event() {
                return Ok(Some(event));
            }
            let read = match self.recv.read(&mut self.buf).await {
                Ok(read) => read,
                // A refused TLS client learns it here, when the agent closes the connection.
                Err(e) => {
                    let addr = self.conn.remote_address();
                    return Err(self.conn.close_reason().map_or(ClientError::Stream(e.into()), |r| {
                        ClientError::Connect { addr, message: r.to_string() }
                    }));
                }
            };
            let outcome = match read {
                Some(n) => {
                    self.bytes_received += n as u64;
                    self.session.handle_input(&self.buf[..n])
                }
                None => match self.session.handle_finished() {
                    Ok(()) => return Ok(None),
                    Err(e) => Err(e),
                },
            };
            if let Err(e) = outcome {
                self.conn.close(code::PROTOCOL.into(), b"protocol error");
                return Err(ClientError::Protocol(e.0));
            }
        }
    }

    /// The next state of the host, whole; `None` when the agent ended the stream.
    pub async fn next_snapshot(&mut self) -> Result<Option<HostSnapshot>, ClientError> {
        match self.next_event().await? {
            Some(ClientEvent::State) => Ok(self.session.snapshot().cloned()),
            Some(other) => Err(ClientError::Protocol(format!("unexpected {other:?} in the snapshot stream"))),
            None => Ok(None),
        }
    }
}

/// Asks the agent on `conn` for a range of its history, on a stream of its
/// own beside the session (protocol 1.2), and gathers the whole answer. The
/// session must have been welcomed first ([`subscribe`] or [`hello`]): the
/// agent answers history streams only on a welcomed connection, and only
/// from 1.2 on (the welcome's minor version); an older agent never answers.
pub async fn history(
    conn: &quinn::Connection,
    request: &cm_proto::history::HistoryRequest,
    timeout: Duration,
) -> Result<cm_proto::history::Answer, ClientError> {
    let ask = async {
        let (mut send, mut recv) = conn.open_bi().await.map_err(|e| ClientError::Protocol(e.to_string()))?;
        let frame = cm_proto::frame::encode_frame(&cm_proto::Message::HistoryRequest(request.clone()))
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        send.write_all(&frame).await.map_err(StreamError::from)?;
        let _ = send.finish();
        let mut reader = cm_proto::history::AnswerReader::default();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match recv.read(&mut buf).await.map_err(StreamError::from)? {
                Some(n) => {
                    if let Some(answer) = reader.push(&buf[..n]).map_err(ClientError::Protocol)? {
                        return Ok(answer);
                    }
                }
                None => return Err(ClientError::Protocol("the history stream ended before its end".into())),
            }
        }
    };
    tokio::time::timeout(timeout, ask).await.map_err(|_| ClientError::Timeout(timeout))?
}
