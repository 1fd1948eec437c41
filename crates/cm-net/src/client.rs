//! The subscribing side of the protocol: dial an agent, check that it is one,
//! and move bytes between the QUIC stream and a [`ClientSession`], which says
//! hello, reads the welcome (or refusal) and keeps the host's state.

use std::net::SocketAddr;
use std::time::Duration;

use cm_proto::session::{ClientEvent, ClientSession};
use cm_proto::HostSnapshot;
use thiserror::Error;

pub use cm_proto::session::Welcome;

use crate::pki::{self, Role};
use crate::refusal::{self, CertProblem, Handshake, Use};
use crate::stream::{code, StreamError};

/// Largest frame a dashboard accepts from an agent.
pub const MAX_FRAME: usize = cm_proto::MAX_FRAME_BYTES;

/// Why a subscription failed or ended. Each variant is one kind of trouble
/// (nothing answered, a certificate refused by this side or by the agent,
/// a refusal, a lost connection), so that callers can tell them apart; each
/// message says what happened, in the fleet's terms, and what to do.
#[derive(Debug, Error)]
pub enum ClientError {
    /// Nothing answered at all.
    #[error(
        "no answer within {} s from {addr}: the host is down, no cm-agent listens on UDP port {}, or a firewall drops it",
        after.as_secs_f64(),
        addr.port()
    )]
    Unreachable { addr: SocketAddr, after: Duration },
    /// This side refused the agent's certificate.
    #[error("{}", agent_certificate(*addr, host, problem))]
    AgentCertificate { addr: SocketAddr, host: String, problem: CertProblem },
    /// The agent refused this side's certificate.
    #[error("{}", certificate_refused(*addr, problem))]
    CertificateRefused { addr: SocketAddr, problem: CertProblem },
    /// The peer's certificate is from the fleet, but not an agent's.
    #[error("the peer at {addr} is not an agent: its certificate {what}")]
    NotAnAgent { addr: SocketAddr, what: String },
    /// The peer does not speak this protocol's major version (ALPN).
    #[error(
        "the peer at {addr} does not speak {}: another program listens there, or an agent of another major version",
        String::from_utf8_lossy(crate::ALPN)
    )]
    Incompatible { addr: SocketAddr },
    /// The agent refused the session, in its words.
    #[error("the agent at {addr} refused: {reason}")]
    Refused { addr: SocketAddr, reason: String },
    /// The connection was made, then ended.
    #[error("the connection to the agent at {addr} ended: {why}")]
    Lost { addr: SocketAddr, why: String },
    /// Dialling could not start (a name that cannot be dialled, an endpoint closing).
    #[error("cannot dial {host:?} at {addr}: {message}")]
    Dial { addr: SocketAddr, host: String, message: String },
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error(transparent)]
    Stream(#[from] StreamError),
    #[error("no answer within {} s", .0.as_secs_f64())]
    Timeout(Duration),
}

/// The dashboard refused the certificate of the agent at `addr`, dialled as `host`.
fn agent_certificate(addr: SocketAddr, host: &str, problem: &CertProblem) -> String {
    let issue = pki::issue_command(host, Role::Agent);
    match problem {
        CertProblem::WrongName { presented, .. } => format!(
            "the agent at {addr} presents a certificate for {}, not {host}: if {addr} is {host}, issue it one with {issue}; if not, correct {host}'s address",
            CertProblem::names(presented)
        ),
        CertProblem::OtherCa => format!(
            "the agent at {addr} presents a certificate signed by another CA than the one in this dashboard's tls.ca: issue {host} one from the fleet's CA with {issue}"
        ),
        CertProblem::Expired { not_after } => format!(
            "the agent at {addr} presents a certificate that {}: renew it with {} and reload the agent on {host}",
            refusal::expired(*not_after),
            pki::renew_command(host)
        ),
        CertProblem::NotYetValid { not_before } => format!(
            "the agent at {addr} presents a certificate that {} by this machine's clock: check the clocks here and on {host}",
            refusal::not_yet_valid(*not_before)
        ),
        CertProblem::WrongUse { .. } => {
            format!("the agent at {addr} presents a certificate that is not made for serving: issue {host} one with {issue}")
        }
        CertProblem::Missing => format!("the agent at {addr} presents no certificate"),
        CertProblem::Other(text) => format!("this dashboard refused the certificate of the agent at {addr}: {text}"),
    }
}

/// The agent at `addr` refused this dashboard's certificate.
fn certificate_refused(addr: SocketAddr, problem: &CertProblem) -> String {
    let issue = pki::issue_command("NAME", Role::Dashboard);
    match problem {
        CertProblem::Missing => format!(
            "the agent at {addr} refused this dashboard: it showed no certificate; set tls.cert and tls.key to one made with {issue}"
        ),
        CertProblem::OtherCa => format!(
            "the agent at {addr} refused this dashboard's certificate (tls.cert): it is not signed by the CA the agent trusts; issue one from the fleet's CA with {issue}"
        ),
        CertProblem::Expired { not_after } => format!(
            "the agent at {addr} refused this dashboard's certificate (tls.cert): it {}; renew it with {}",
            refusal::expired(*not_after),
            pki::renew_command("NAME")
        ),
        CertProblem::NotYetValid { not_before } => format!(
            "the agent at {addr} refused this dashboard's certificate (tls.cert): it {} by the agent's clock; check the clocks of both machines",
            refusal::not_yet_valid(*not_before)
        ),
        CertProblem::WrongUse { .. } => format!(
            "the agent at {addr} refused this dashboard's certificate (tls.cert): it is not made for dialling; issue one with {issue}"
        ),
        // Agents do not check a dashboard's name; said as it came, should one.
        CertProblem::WrongName { expected, .. } => {
            format!("the agent at {addr} refused this dashboard's certificate (tls.cert): it is not for {expected}")
        }
        CertProblem::Other(text) => {
            format!("the agent at {addr} refused this dashboard's certificate (tls.cert): {text}")
        }
    }
}

impl ClientError {
    /// What a connection to `host` at `addr` that failed with `e` says:
    /// during the handshake (`handshake`) a time-out means nothing answered,
    /// later that the agent went quiet.
    fn from_connection(addr: SocketAddr, host: &str, e: &quinn::ConnectionError, handshake: bool) -> Self {
        use quinn::ConnectionError as E;
        match refusal::classify(e) {
            Some(Handshake::RefusedTheirs(CertProblem::WrongUse { required: Use::Serving })) => {
                ClientError::NotAnAgent { addr, what: not_an_agent("is not made for serving", host) }
            }
            Some(Handshake::RefusedTheirs(problem)) => {
                ClientError::AgentCertificate { addr, host: host.to_owned(), problem }
            }
            Some(Handshake::RefusedOurs(problem)) => ClientError::CertificateRefused { addr, problem },
            Some(Handshake::NoCommonProtocol { .. }) => ClientError::Incompatible { addr },
            None => match e {
                E::TimedOut if handshake => ClientError::Unreachable { addr, after: crate::tls::IDLE_TIMEOUT },
                E::TimedOut => ClientError::Lost {
                    addr,
                    why: format!("it stopped answering (nothing for {} s)", crate::tls::IDLE_TIMEOUT.as_secs()),
                },
                E::ConnectionClosed(c) if c.error_code == quinn::TransportErrorCode::CONNECTION_REFUSED => {
                    ClientError::Refused {
                        addr,
                        reason: "it serves as many connections as it may; try again later".into(),
                    }
                }
                E::ApplicationClosed(c) => {
                    let reason = cm_proto::escape(&String::from_utf8_lossy(&c.reason));
                    let why = match u64::from(c.error_code) {
                        0 => format!("it is stopping ({reason})"),
                        code => format!("it closed the connection: {reason} (code {code})"),
                    };
                    ClientError::Lost { addr, why }
                }
                E::Reset => ClientError::Lost { addr, why: "the agent restarted and no longer knows it".into() },
                E::LocallyClosed => ClientError::Lost { addr, why: "this side closed it".into() },
                E::VersionMismatch => ClientError::Incompatible { addr },
                other => ClientError::Lost { addr, why: other.to_string() },
            },
        }
    }
}

/// The rest of a [`ClientError::NotAnAgent`] message: what the certificate
/// is, and what to do.
fn not_an_agent(what: &str, host: &str) -> String {
    format!("{what}: issue {host} an agent's certificate with {}", pki::issue_command(host, Role::Agent))
}

/// An accepted subscription.
pub struct Subscription {
    pub conn: quinn::Connection,
    pub welcome: Welcome,
    /// The address and name dialled, for errors.
    addr: SocketAddr,
    host: String,
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
    let connecting = endpoint.connect(addr, host).map_err(|e| ClientError::Dial {
        addr,
        host: host.to_owned(),
        message: match e {
            quinn::ConnectError::InvalidServerName(_) => {
                pki::check_name(host).err().map_or_else(|| e.to_string(), |e| e.to_string())
            }
            other => other.to_string(),
        },
    })?;
    let conn = match tokio::time::timeout(timeout, connecting).await {
        Err(_) => return Err(ClientError::Unreachable { addr, after: timeout }),
        Ok(Err(e)) => return Err(ClientError::from_connection(addr, host, &e, true)),
        Ok(Ok(conn)) => conn,
    };
    match crate::tls::peer(&conn) {
        Ok((Some(Role::Agent), _)) => Ok(conn),
        Ok((other, _)) => {
            let what = other.map_or("carries no cm role".into(), |r| format!("has role {r}"));
            conn.close(code::REFUSED.into(), b"not an agent");
            Err(ClientError::NotAnAgent { addr, what: not_an_agent(&what, host) })
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
    let conn = connect(endpoint, addr, host, timeout).await?;
    // With TLS 1.3 the agent checks this side's certificate after this side
    // is done: a refusal arrives as the connection's close, from here on.
    let lost = |e: &quinn::ConnectionError| ClientError::from_connection(addr, host, e, false);
    let (mut send, recv) = conn.open_bi().await.map_err(|e| lost(&e))?;
    let mut session = ClientSession::new(role, subscribe);
    while let Some(bytes) = session.poll_transmit() {
        send.write_all(&bytes).await.map_err(|e| match e {
            quinn::WriteError::ConnectionLost(e) => lost(&e),
            other => StreamError::from(other).into(),
        })?;
    }
    let mut sub = Subscription {
        conn,
        welcome: Welcome { host: String::new(), agent_version: String::new(), major: 0, minor: 0, interval_ms: 0 },
        addr,
        host: host.to_owned(),
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
        Some(ClientEvent::Refused(reason)) => Err(ClientError::Refused { addr, reason }),
        Some(ClientEvent::State) => Err(ClientError::Protocol("a snapshot before the welcome".into())),
        None => Err(sub.conn.close_reason().map_or_else(
            || ClientError::Protocol("the agent closed the stream without a welcome".into()),
            |r| lost(&r),
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
                    return Err(self.conn.close_reason().map_or(ClientError::Stream(e.into()), |r| {
                        ClientError::from_connection(self.addr, &self.host, &r, false)
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
