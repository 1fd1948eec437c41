//! `cm-agent run`: serve this host's snapshots to subscribers over mutually
//! authenticated QUIC.
//!
//! One thread collects (the agent core); it publishes each snapshot into a
//! `watch` channel, so a slow subscriber only ever holds the latest snapshot
//! and the agent's memory does not grow with it. Each connection is its own
//! task; whatever one peer sends can close that connection, never the agent.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cm_net::stream::{self, code, FramedRecv};
use cm_net::{tls, Identity, Role};
use cm_proto::{HostSnapshot, Message, PROTOCOL_MAJOR, PROTOCOL_MINOR};
use tokio::sync::watch;

use crate::config::AgentConfig;
use crate::core::AgentCore;
use crate::AGENT_VERSION;

/// Largest frame the agent accepts from a client: Hello and requests are small.
const MAX_CLIENT_FRAME: usize = 64 * 1024;
/// How long a client has to say Hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

type Latest = watch::Receiver<Option<Arc<HostSnapshot>>>;

/// Runs the agent until SIGTERM or SIGINT.
pub async fn run(config: AgentConfig) -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let stop = async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    };
    run_until(config, stop).await
}

/// Runs the agent until `stop` completes.
pub async fn run_until(config: AgentConfig, stop: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
    let identity = Identity::load(&config.tls.ca, &config.tls.cert, &config.tls.key)?;
    match identity.role() {
        Some(Role::Agent) => {}
        other => anyhow::bail!(
            "{}: the agent needs a certificate with role agent, this one has {}",
            config.tls.cert.display(),
            other.map_or("none".to_string(), |r| r.to_string())
        ),
    }
    let endpoint = tls::server(&identity, config.listen)?;
    let core_config = config.core();
    let interval = core_config.intervals.cpu;
    let (tx, rx) = watch::channel(None);
    std::thread::Builder::new().name("collect".into()).spawn(move || collect(core_config, tx))?;

    // The host name is known after the first collection.
    let mut first = rx.clone();
    let host = loop {
        if let Some(s) = first.borrow_and_update().as_ref() {
            break s.host.clone();
        }
        first.changed().await?;
    };
    eprintln!("cm-agent: serving {host} on {} (protocol {PROTOCOL_MAJOR}.{PROTOCOL_MINOR})", endpoint.local_addr()?);

    tokio::pin!(stop);
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    loop {
        tokio::select! {
            incoming = endpoint.accept() => {
                let Some(incoming) = incoming else { break };
                let (rx, host) = (rx.clone(), host.clone());
                tokio::spawn(async move { connection(incoming, rx, host, interval).await });
            }
            _ = hangup.recv() => reload(&endpoint, &config),
            _ = &mut stop => break,
        }
    }
    endpoint.close(code::DONE.into(), b"agent stopping");
    tokio::time::timeout(Duration::from_secs(2), endpoint.wait_idle()).await.ok();
    eprintln!("cm-agent: stopped");
    Ok(())
}

/// SIGHUP: read the certificate files again. New connections use them;
/// established ones keep going. A bad file keeps the old certificates.
fn reload(endpoint: &quinn::Endpoint, config: &AgentConfig) {
    let tls = &config.tls;
    let loaded = Identity::load(&tls.ca, &tls.cert, &tls.key)
        .map_err(anyhow::Error::from)
        .and_then(|identity| Ok(tls::server_config(&identity)?));
    match loaded {
        Ok(server) => {
            endpoint.set_server_config(Some(server));
            eprintln!("cm-agent: reloaded certificates from {}", tls.cert.display());
        }
        Err(e) => eprintln!("cm-agent: kept the old certificates: {e:#}"),
    }
}

/// The collection thread: the core publishes one snapshot per round of
/// collectors and sleeps in between; it stops when nobody can receive any more.
fn collect(config: crate::CoreConfig, tx: watch::Sender<Option<Arc<HostSnapshot>>>) {
    AgentCore::new(config).run(|snapshot| tx.send(Some(Arc::new(snapshot))).is_ok());
}

/// One client, from handshake to goodbye. Every refusal is one log line here
/// and a clear message (or close reason) for the client.
async fn connection(incoming: quinn::Incoming, mut latest: Latest, host: String, interval: Duration) {
    let remote: SocketAddr = incoming.remote_address();
    let conn = match incoming.await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cm-agent: refused {remote}: {e}");
            return;
        }
    };
    let who = match tls::peer(&conn) {
        Ok((role, names)) => (role, names.first().cloned().unwrap_or_else(|| "?".into())),
        Err(e) => return refuse_conn(&conn, remote, &e.to_string()),
    };
    let (role, name) = who;
    let Ok(Ok((mut send, recv))) = tokio::time::timeout(HELLO_TIMEOUT, conn.accept_bi()).await else {
        eprintln!("cm-agent: {name} ({remote}) opened no stream within {HELLO_TIMEOUT:?}");
        conn.close(code::TIMEOUT.into(), b"no hello");
        return;
    };
    let mut frames = FramedRecv::new(recv, MAX_CLIENT_FRAME);
    let hello = match tokio::time::timeout(HELLO_TIMEOUT, frames.next()).await {
        Ok(Ok(Some(m))) => m,
        Ok(Ok(None)) => return,
        Ok(Err(e)) => return protocol_error(&conn, remote, &name, &e.to_string()),
        Err(_) => {
            eprintln!("cm-agent: {name} ({remote}) said no hello within {HELLO_TIMEOUT:?}");
            conn.close(code::TIMEOUT.into(), b"no hello");
            return;
        }
    };
    let Message::Hello { major, minor, subscribe, .. } = hello else {
        return protocol_error(&conn, remote, &name, &format!("expected hello, got {hello:?}"));
    };
    if major != PROTOCOL_MAJOR {
        let reason =
            format!("protocol {major}.{minor} is not supported: this agent speaks {PROTOCOL_MAJOR}.{PROTOCOL_MINOR}");
        return refuse(&conn, &mut send, remote, &name, code::VERSION, reason).await;
    }
    let role = match role {
        Some(r) if r.may_subscribe() || !subscribe => r,
        Some(r) => {
            let reason = format!("certificate role {r} may not subscribe (dashboard or operator may)");
            return refuse(&conn, &mut send, remote, &name, code::REFUSED, reason).await;
        }
        None => {
            let reason = "certificate carries no cm role".to_string();
            return refuse(&conn, &mut send, remote, &name, code::REFUSED, reason).await;
        }
    };
    let welcome = Message::Welcome {
        host,
        agent_version: AGENT_VERSION.into(),
        major: PROTOCOL_MAJOR,
        minor: PROTOCOL_MINOR,
        interval_ms: interval.as_millis() as u64,
    };
    if stream::send(&mut send, &welcome).await.is_err() || !subscribe {
        return;
    }
    eprintln!("cm-agent: {name} ({remote}, {role}) subscribed");
    latest.mark_changed(); // the current snapshot goes out first, whole
                           // What this subscriber has: updates are computed against it.
    let mut sent: Option<Arc<HostSnapshot>> = None;
    loop {
        tokio::select! {
            changed = latest.changed() => {
                if changed.is_err() { return; }
                let snap = latest.borrow_and_update().clone();
                let Some(snap) = snap else { continue };
                let msg = match &sent {
                    Some(prev) => Message::Update(Box::new(cm_proto::diff(prev, &snap))),
                    None => Message::Snapshot(Box::new((*snap).clone())),
                };
                if stream::send(&mut send, &msg).await.is_err() {
                    return; // the peer went away; quinn says why in conn.closed()
                }
                sent = Some(snap);
            }
            // Anything else the client sends on this stream must still be well-formed.
            next = frames.next() => match next {
                Ok(Some(Message::Unknown)) => {}
                Ok(Some(other)) => return protocol_error(&conn, remote, &name, &format!("unexpected {other:?}")),
                Ok(None) => {}
                // The client went away: not its fault, not ours.
                Err(cm_net::StreamError::Read(e)) => {
                    eprintln!("cm-agent: {name} ({remote}) left: {e}");
                    return;
                }
                Err(e) => return protocol_error(&conn, remote, &name, &e.to_string()),
            },
            reason = conn.closed() => {
                eprintln!("cm-agent: {name} ({remote}) left: {reason}");
                return;
            }
        }
    }
}

fn refuse_conn(conn: &quinn::Connection, remote: SocketAddr, reason: &str) {
    eprintln!("cm-agent: refused {remote}: {reason}");
    conn.close(code::REFUSED.into(), reason.as_bytes());
}

async fn refuse(
    conn: &quinn::Connection,
    send: &mut quinn::SendStream,
    remote: SocketAddr,
    name: &str,
    code: u32,
    reason: String,
) {
    eprintln!("cm-agent: refused {name} ({remote}): {reason}");
    let _ = stream::send(send, &Message::Refused { reason: reason.clone() }).await;
    let _ = send.finish();
    // Give the Refused frame a moment to leave before the close overtakes it.
    tokio::time::sleep(Duration::from_millis(100)).await;
    conn.close(code.into(), reason.as_bytes());
}

fn protocol_error(conn: &quinn::Connection, remote: SocketAddr, name: &str, what: &str) {
    eprintln!("cm-agent: closed {name} ({remote}): protocol error: {what}");
    conn.close(code::PROTOCOL.into(), b"protocol error");
}
