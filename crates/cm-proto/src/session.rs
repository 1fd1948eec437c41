//! The protocol on one stream, as state machines without I/O.
//!
//! [`AgentSession`] is the agent's side of one subscription: it takes events
//! (bytes received, the peer finished its stream, the connection closed, a new
//! snapshot, a timer) and yields [`Action`]s (bytes to send, finish, close
//! with a code, a log line). It keeps a mirror of what the peer holds and
//! computes every patch against that mirror, so the peer's copy never drifts
//! further than the documented tolerance. [`ClientSession`] is the other
//! side: bytes in, the welcome or refusal and the host's state out.
//!
//! Neither reads a clock: time comes in as an argument. The I/O shells
//! (`cm-agent`'s server, `cm-net`'s client) move bytes and nothing else.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ciborium::value::Value;
use thiserror::Error;

use crate::frame::{encode_frame, FrameDecoder};
use crate::model::HostSnapshot;
use crate::role::Role;
use crate::wire::{Message, Patch, PROTOCOL_MAJOR, PROTOCOL_MINOR};

/// Application error codes a connection is closed with (QUIC CONNECTION_CLOSE).
pub mod code {
    /// Normal shutdown (agent stopping, dashboard leaving).
    pub const DONE: u32 = 0;
    /// A malformed, oversized or unexpected frame.
    pub const PROTOCOL: u32 = 1;
    /// The peer's certificate or role does not allow what it asked for.
    pub const REFUSED: u32 = 2;
    /// The peer speaks another major version.
    pub const VERSION: u32 = 3;
    /// The peer did not say Hello in time.
    pub const TIMEOUT: u32 = 4;
}

/// Largest frame body the agent accepts from a client: hello and requests are small.
pub const MAX_CLIENT_FRAME: usize = 64 * 1024;
/// How long a client has, from the handshake, to open its stream and say hello.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// A newer snapshot whose visible state did not change is still announced
/// (seq and time only) when nothing was sent for this long, so the peer knows
/// the host is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// How often the agent makes the peer's copy exact, tolerances aside.
pub const EXACT_EVERY: Duration = Duration::from_secs(600);

/// Makes a peer-supplied string safe for one log line: control characters
/// (newlines, escape sequences) are escaped and the length is capped.
pub fn escape(s: &str) -> String {
    const MAX_CHARS: usize = 200;
    let mut out = String::with_capacity(s.len().min(MAX_CHARS + 8));
    for (i, c) in s.chars().enumerate() {
        if i == MAX_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}') {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Something the I/O shell must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Write these bytes to the stream.
    Send(Vec<u8>),
    /// Finish the send side of the stream (FIN) once the bytes are written.
    Finish,
    /// Close the connection with this code and reason. After a `Finish`, the
    /// shell lets the peer read what was sent first (within a bounded wait).
    Close { code: u32, reason: String },
    /// One line for the agent's log; peer-supplied parts are already escaped.
    Log(String),
    /// A log line any peer can cause at will (a refusal, a protocol error, a
    /// missing hello): the shell aggregates these per source address.
    Refusal(String),
}

/// A snapshot as the sessions send it: typed, and as the CBOR tree patches
/// are computed on, made once for every subscriber.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    pub snapshot: HostSnapshot,
    value: Value,
}

impl Published {
    pub fn new(snapshot: HostSnapshot) -> Self {
        let value = Value::serialized(&snapshot).expect("a snapshot is plain data");
        Self { snapshot, value }
    }
}

/// What the agent knows about the peer before it says anything.
#[derive(Debug, Clone, PartialEq)]
pub struct Peer {
    /// The source address, as the log shows it.
    pub addr: String,
    /// The name in its certificate (`?` when it has none).
    pub name: String,
    /// The role in its certificate, or why it has no usable one.
    pub role: Result<Role, String>,
}

/// What the agent says about itself in its welcome.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentInfo {
    pub host: String,
    pub agent_version: String,
    /// How often snapshots are collected.
    pub interval: Duration,
}

#[derive(Debug)]
enum AgentState {
    AwaitingHello {
        deadline: Instant,
    },
    Subscribed(Box<Mirror>),
    /// Welcomed without a subscription: nothing more follows on this stream.
    Welcomed,
    Closed,
}

/// What the agent believes the peer holds, and when it last sent.
#[derive(Debug)]
struct Mirror {
    /// 1.0 peers cannot read patches: they get whole snapshots.
    whole_snapshots: bool,
    held: Option<Value>,
    held_seq: u64,
    last_sent: Instant,
    last_exact: Instant,
}

/// The agent's side of one client stream.
#[derive(Debug)]
pub struct AgentSession {
    info: AgentInfo,
    peer: Peer,
    state: AgentState,
    decoder: FrameDecoder,
    peer_finished: bool,
    latest: Option<Arc<Published>>,
    actions: VecDeque<Action>,
}

impl AgentSession {
    /// A session for a peer that has just completed the TLS handshake at `now`.
    pub fn new(info: AgentInfo, peer: Peer, now: Instant) -> Self {
        Self {
            info,
            peer,
            state: AgentState::AwaitingHello { deadline: now + HELLO_TIMEOUT },
            decoder: FrameDecoder::new(MAX_CLIENT_FRAME),
            peer_finished: false,
            latest: None,
            actions: VecDeque::new(),
        }
    }

    /// The next thing to do, in order.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`AgentSession::handle_timeout`] must be called next, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            AgentState::AwaitingHello { deadline } => Some(*deadline),
            AgentState::Subscribed(m) if m.held.is_some() && !m.whole_snapshots => {
                let exact = m.last_exact + EXACT_EVERY;
                let newer = self.latest.as_ref().is_some_and(|s| s.snapshot.seq > m.held_seq);
                Some(if newer { exact.min(m.last_sent + HEARTBEAT) } else { exact })
            }
            _ => None,
        }
    }

    /// True while the session wants new snapshots.
    pub fn is_subscribed(&self) -> bool {
        matches!(self.state, AgentState::Subscribed(_))
    }

    /// True once the peer was welcomed with a role that may read history
    /// (dashboard or operator), until the connection closes.
    pub fn may_read_history(&self) -> bool {
        let welcomed = matches!(self.state, AgentState::Subscribed(_) | AgentState::Welcomed);
        welcomed && self.peer.role.as_ref().is_ok_and(|r| r.may_subscribe())
    }

    /// True while bytes from the peer are still expected.
    pub fn wants_input(&self) -> bool {
        !self.peer_finished && !self.is_closed()
    }

    /// True once the connection is closed or must be.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, AgentState::Closed)
    }

    fn who(&self) -> String {
        format!("{} ({})", escape(&self.peer.name), self.peer.addr)
    }

    /// Bytes from the peer's stream.
    pub fn handle_input(&mut self, bytes: &[u8], now: Instant) {
        if !self.wants_input() {
            return;
        }
        self.decoder.push(bytes);
        while !self.is_closed() {
            match self.decoder.next_message() {
                Ok(Some(msg)) => self.on_message(msg, now),
                Ok(None) => break,
                Err(e) => self.protocol_error(&e.to_string()),
            }
        }
    }

    /// The peer finished its send side. After a hello that is fine (it has
    /// nothing more to say); the subscription goes on.
    pub fn handle_finished(&mut self, _now: Instant) {
        if !self.wants_input() {
            return;
        }
        self.peer_finished = true;
        if self.decoder.buffered() > 0 {
            self.protocol_error("the stream ended in the middle of a frame");
        } else if matches!(self.state, AgentState::AwaitingHello { .. }) {
            self.protocol_error("the stream ended before a hello");
        }
    }

    /// The connection is gone (the peer closed it, it timed out, or the
    /// stream was reset), with the reason as the transport tells it.
    pub fn handle_closed(&mut self, reason: &str) {
        let line = match self.state {
            AgentState::Closed => return,
            AgentState::AwaitingHello { .. } => {
                Action::Refusal(format!("{} went away before a hello: {}", self.who(), escape(reason)))
            }
            _ => Action::Log(format!("{} left: {}", self.who(), escape(reason))),
        };
        self.actions.push_back(line);
        self.state = AgentState::Closed;
    }

    /// A new snapshot of the host.
    pub fn handle_snapshot(&mut self, snapshot: Arc<Published>, now: Instant) {
        self.latest = Some(snapshot);
        self.send_state(now, false);
    }

    /// Time has passed: the hello deadline, a heartbeat, or an exact refresh.
    pub fn handle_timeout(&mut self, now: Instant) {
        match &self.state {
            AgentState::AwaitingHello { deadline } if now >= *deadline => {
                let line = format!("{} said no hello within {} s", self.who(), HELLO_TIMEOUT.as_secs());
                self.actions.push_back(Action::Refusal(line));
                self.close(code::TIMEOUT, "no hello");
            }
            AgentState::Subscribed(m) => {
                let exact = now >= m.last_exact + EXACT_EVERY;
                self.send_state(now, exact);
            }
            _ => {}
        }
    }

    fn on_message(&mut self, msg: Message, now: Instant) {
        match (&self.state, msg) {
            (AgentState::AwaitingHello { .. }, Message::Hello { major, minor, subscribe, .. }) => {
                self.on_hello(major, minor, subscribe, now)
            }
            (AgentState::AwaitingHello { .. }, other) => {
                self.protocol_error(&format!("expected hello, got {}", kind(&other)))
            }
            (_, Message::Hello { .. }) => self.protocol_error("hello twice"),
            // Kinds from a newer minor version are skipped.
            (_, Message::Unknown) => {}
            (_, other) => self.protocol_error(&format!("unexpected {}", kind(&other))),
        }
    }

    fn on_hello(&mut self, major: u16, minor: u16, subscribe: bool, now: Instant) {
        if major != PROTOCOL_MAJOR {
            let reason = format!(
                "protocol {major}.{minor} is not supported: this agent speaks {PROTOCOL_MAJOR}.{PROTOCOL_MINOR}"
            );
            return self.refuse(code::VERSION, reason);
        }
        let role = match &self.peer.role {
            Ok(role) if role.may_subscribe() || !subscribe => *role,
            Ok(role) => {
                return self.refuse(
                    code::REFUSED,
                    format!("certificate role {role} may not subscribe (dashboard or operator may)"),
                )
            }
            Err(why) => return self.refuse(code::REFUSED, why.clone()),
        };
        let welcome = Message::Welcome {
            host: self.info.host.clone(),
            agent_version: self.info.agent_version.clone(),
            major: PROTOCOL_MAJOR,
            minor: PROTOCOL_MINOR,
            interval_ms: self.info.interval.as_millis() as u64,
        };
        if !self.send(&welcome) {
            return;
        }
        if !subscribe {
            self.actions.push_back(Action::Finish);
            self.state = AgentState::Welcomed;
            return;
        }
        self.actions.push_back(Action::Log(format!("{} ({role}) subscribed", self.who())));
        self.state = AgentState::Subscribed(Box::new(Mirror {
            whole_snapshots: minor == 0,
            held: None,
            held_seq: 0,
            last_sent: now,
            last_exact: now,
        }));
        self.send_state(now, false);
    }

    /// Sends what the peer needs to hold the latest snapshot: the whole of it
    /// first, then patches against the mirror. A patch that would move only
    /// the clock waits for the heartbeat.
    fn send_state(&mut self, now: Instant, exact: bool) {
        let (AgentState::Subscribed(mirror), Some(truth)) = (&mut self.state, &self.latest) else { return };
        let whole = match &mirror.held {
            None => true,
            Some(_) if mirror.whole_snapshots => truth.snapshot.seq != mirror.held_seq,
            Some(_) => false,
        };
        let msg = if whole {
            mirror.held = Some(if mirror.whole_snapshots { Value::Null } else { truth.value.clone() });
            Message::Snapshot(Box::new(truth.snapshot.clone()))
        } else if mirror.whole_snapshots {
            return;
        } else {
            let held = mirror.held.as_mut().expect("checked above");
            if exact {
                mirror.last_exact = now;
            }
            let Some(Value::Map(changes)) = crate::patch::diff(held, &truth.value, exact) else { return };
            let patch = Patch {
                base_seq: mirror.held_seq,
                changes: changes.into_iter().filter_map(|(k, v)| Some((k.into_text().ok()?, v))).collect(),
            };
            if patch.is_heartbeat() && !exact && now < mirror.last_sent + HEARTBEAT {
                return;
            }
            if crate::patch::apply(held, &patch.as_map()).is_err() {
                // Cannot happen: the patch was made from this very value. Start over whole.
                mirror.held = None;
                return self.send_state(now, exact);
            }
            Message::Patch(Box::new(patch))
        };
        mirror.held_seq = truth.snapshot.seq;
        mirror.last_sent = now;
        self.send(&msg);
    }

    /// Queues one frame; on failure closes the connection and says why.
    fn send(&mut self, msg: &Message) -> bool {
        match encode_frame(msg) {
            Ok(bytes) => {
                self.actions.push_back(Action::Send(bytes));
                true
            }
            Err(e) => {
                self.actions.push_back(Action::Log(format!("cannot send {} to {}: {e}", kind(msg), self.who())));
                self.close(code::PROTOCOL, "agent error");
                false
            }
        }
    }

    fn refuse(&mut self, code: u32, reason: String) {
        self.actions.push_back(Action::Refusal(format!("refused {}: {}", self.who(), escape(&reason))));
        if self.send(&Message::Refused { reason: reason.clone() }) {
            self.actions.push_back(Action::Finish);
            self.close(code, &reason);
        }
    }

    fn protocol_error(&mut self, what: &str) {
        self.actions.push_back(Action::Refusal(format!("closed {}: protocol error: {}", self.who(), escape(what))));
        self.close(code::PROTOCOL, "protocol error");
    }

    fn close(&mut self, code: u32, reason: &str) {
        self.actions.push_back(Action::Close { code, reason: reason.into() });
        self.state = AgentState::Closed;
    }
}

/// The kind of a message, for error messages (never its peer-supplied content).
fn kind(msg: &Message) -> &'static str {
    match msg {
        Message::Hello { .. } => "hello",
        Message::Welcome { .. } => "welcome",
        Message::Refused { .. } => "refused",
        Message::Snapshot(_) => "snapshot",
        Message::Update(_) => "update",
        Message::Patch(_) => "patch",
        Message::HistoryRequest(_) => "history_request",
        Message::HistoryChunk(_) => "history_chunk",
        Message::HistoryEnd(_) => "history_end",
        Message::HistoryEvents(_) => "history_events",
        Message::Unknown => "a message of unknown kind",
    }
}

/// What the agent said when it accepted the client.
#[derive(Debug, Clone, PartialEq)]
pub struct Welcome {
    pub host: String,
    pub agent_version: String,
    pub major: u16,
    pub minor: u16,
    pub interval_ms: u64,
}

/// Something the client learned from the agent.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    Welcome(Welcome),
    /// The agent refused the client; the connection ends.
    Refused(String),
    /// The host's state changed: [`ClientSession::snapshot`] has it.
    State,
}

/// The agent broke the protocol; the client closes the connection.
#[derive(Debug, Clone, Error, PartialEq)]
#[error("protocol error: {0}")]
pub struct ProtocolError(pub String);

#[derive(Debug, PartialEq)]
enum ClientState {
    AwaitingWelcome,
    Welcomed,
    Done,
}

/// The client's side of one stream to an agent.
#[derive(Debug)]
pub struct ClientSession {
    state: ClientState,
    decoder: FrameDecoder,
    outgoing: VecDeque<Vec<u8>>,
    events: VecDeque<ClientEvent>,
    /// The host's state as the stream described it, as CBOR (patches apply to it) and typed.
    held: Option<(Value, HostSnapshot)>,
}

impl ClientSession {
    /// A session that says hello with `role`, asking for snapshots when `subscribe`.
    pub fn new(role: Role, subscribe: bool) -> Self {
        let hello = Message::Hello { major: PROTOCOL_MAJOR, minor: PROTOCOL_MINOR, role: role.to_string(), subscribe };
        Self {
            state: ClientState::AwaitingWelcome,
            decoder: FrameDecoder::new(crate::frame::MAX_FRAME_BYTES),
            outgoing: VecDeque::from([encode_frame(&hello).expect("a hello is small")]),
            events: VecDeque::new(),
            held: None,
        }
    }

    /// Bytes to write to the stream.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.outgoing.pop_front()
    }

    /// The next thing learned, in order.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// The host as the stream has described it so far.
    pub fn snapshot(&self) -> Option<&HostSnapshot> {
        self.held.as_ref().map(|(_, s)| s)
    }

    /// Bytes from the agent's stream.
    pub fn handle_input(&mut self, bytes: &[u8]) -> Result<(), ProtocolError> {
        self.decoder.push(bytes);
        while let Some(msg) = self.decoder.next_message().map_err(|e| ProtocolError(e.to_string()))? {
            self.on_message(msg)?;
        }
        Ok(())
    }

    /// One `State` for any number of changes not yet taken: the snapshot is the latest.
    fn state_changed(&mut self) {
        if self.events.back() != Some(&ClientEvent::State) {
            self.events.push_back(ClientEvent::State);
        }
    }

    /// The agent finished its stream.
    pub fn handle_finished(&mut self) -> Result<(), ProtocolError> {
        if self.decoder.buffered() > 0 {
            return Err(ProtocolError("the stream ended in the middle of a frame".into()));
        }
        match std::mem::replace(&mut self.state, ClientState::Done) {
            ClientState::AwaitingWelcome => Err(ProtocolError("the agent ended the stream without a welcome".into())),
            _ => Ok(()),
        }
    }

    fn on_message(&mut self, msg: Message) -> Result<(), ProtocolError> {
        let unexpected = |msg: &Message| ProtocolError(format!("unexpected {}", kind(msg)));
        match (&self.state, msg) {
            (_, Message::Unknown) => {}
            (ClientState::AwaitingWelcome, Message::Welcome { host, agent_version, major, minor, interval_ms }) => {
                self.state = ClientState::Welcomed;
                self.events.push_back(ClientEvent::Welcome(Welcome { host, agent_version, major, minor, interval_ms }));
            }
            (ClientState::AwaitingWelcome, Message::Refused { reason }) => {
                self.state = ClientState::Done;
                self.events.push_back(ClientEvent::Refused(reason));
            }
            (ClientState::Welcomed, Message::Snapshot(s)) => {
                let value = Value::serialized(&*s).map_err(|e| ProtocolError(e.to_string()))?;
                self.held = Some((value, *s));
                self.state_changed();
            }
            (ClientState::Welcomed, Message::Patch(p)) => {
                let (value, snapshot) =
                    self.held.as_mut().ok_or_else(|| ProtocolError("a patch before any snapshot".into()))?;
                if p.base_seq != snapshot.seq {
                    return Err(ProtocolError(format!(
                        "patch for snapshot {} applied to {}",
                        p.base_seq, snapshot.seq
                    )));
                }
                crate::patch::apply(value, &p.as_map()).map_err(|e| ProtocolError(e.to_string()))?;
                *snapshot = value.deserialized().map_err(|e| ProtocolError(format!("patched state: {e}")))?;
                self.state_changed();
            }
            (ClientState::Welcomed, Message::Update(u)) => {
                let (value, snapshot) =
                    self.held.as_mut().ok_or_else(|| ProtocolError("an update before any snapshot".into()))?;
                crate::delta::apply(snapshot, *u).map_err(|e| ProtocolError(e.to_string()))?;
                *value = Value::serialized(&*snapshot).map_err(|e| ProtocolError(e.to_string()))?;
                self.state_changed();
            }
            (_, other) => return Err(unexpected(&other)),
        }
        Ok(())
    }
}
