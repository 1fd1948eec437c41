//! `cm-agent run`: serve this host's snapshots to subscribers over mutually
//! authenticated QUIC.
//!
//! One thread collects (the agent core); it publishes each snapshot into a
//! `watch` channel, so a slow subscriber only ever holds the latest snapshot
//! and the agent's memory does not grow with it. Each connection is its own
//! task, a thin loop that moves bytes between quinn and an [`AgentSession`],
//! which decides everything; whatever one peer sends can close that
//! connection, never the agent.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cm_net::refusal::{self, Handshake};
use cm_net::{pki, tls, CertProblem, Role, TlsError};
use cm_proto::session::{Action, AgentInfo, Peer, Published};
use cm_proto::{escape, AgentSession, PROTOCOL_MAJOR, PROTOCOL_MINOR};
use tokio::sync::watch;

use crate::alerting::Alerting;
use crate::config::AgentConfig;
use crate::core::AgentCore;
use crate::history::Recorder;
use crate::refusals::RefusalLog;
use crate::AGENT_VERSION;

/// Connections served at once; more are refused before their handshake.
pub const MAX_CONNECTIONS: usize = 256;
/// How long a refusal may take to reach the peer before the connection closes.
const REFUSAL_DRAIN: Duration = Duration::from_secs(1);

type Latest = watch::Receiver<Option<Arc<Published>>>;

/// History streams one connection may have open at once, beside its session.
const HISTORY_STREAMS: usize = tls::SERVER_STREAMS as usize - 1;
/// How long a history stream may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// What every connection task shares.
struct Shared {
    info: AgentInfo,
    /// The state directory whose store answers range requests.
    history: Option<std::path::PathBuf>,
    refusals: Mutex<RefusalLog>,
    connections: AtomicUsize,
}

impl Shared {
    fn log(&self, line: &str) {
        eprintln!("cm-agent: {line}");
    }

    /// Logs a line any peer can cause, aggregated per source address.
    fn refusal(&self, remote: SocketAddr, line: String) {
        let lines = self.refusals.lock().map(|mut r| r.record(remote.ip(), line, Instant::now())).unwrap_or_default();
        for line in lines {
            self.log(&line);
        }
    }

    fn flush_refusals(&self, all: bool) {
        let lines = self
            .refusals
            .lock()
            .map(|mut r| if all { r.flush_all() } else { r.flush(Instant::now()) })
            .unwrap_or_default();
        for line in lines {
            self.log(&line);
        }
    }
}

/// Counts a connection for as long as its task runs.
struct Slot(Arc<Shared>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

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
    let identity = config.identity()?;
    let endpoint = tls::server(&identity, config.listen).map_err(|e| match e {
        TlsError::Bind { error, .. } => anyhow::anyhow!("{}", listen_error(&config, &error)),
        other => other.into(),
    })?;
    let core_config = config.core();
    let interval = core_config.intervals.cpu;
    let recorder = match config.history_config()? {
        Some(history) => Recorder::start(history, |line| eprintln!("cm-agent: {line}")),
        None => Recorder::off(Some("history is off (history.enable = false)".into())),
    };
    let history = recorder.dir().map(ToOwned::to_owned);
    let alerting = crate::alerting::start(&config, history.as_deref())?;
    let metrics = match config.metrics.listen {
        Some(listen) => {
            let listener = crate::metrics::bind(listen)
                .await
                .map_err(|e| anyhow::anyhow!("metrics.listen = {listen}: {}", crate::metrics::bind_error(&e)))?;
            let tls = config.metrics.tls.then(|| tls::http_server_config(&identity)).transpose()?.map(Arc::new);
            Some((listener, tls))
        }
        None => None,
    };
    let (tx, rx) = watch::channel(None);
    std::thread::Builder::new().name("collect".into()).spawn(move || collect(core_config, recorder, alerting, tx))?;

    // The host name is known after the first collection.
    let mut first = rx.clone();
    let host = loop {
        if let Some(s) = first.borrow_and_update().as_ref() {
            break s.snapshot.host.clone();
        }
        first.changed().await?;
    };
    // Served all the same: the certificate may be on its way, and the
    // dashboards say why they refuse.
    for problem in config.certificate_problems(&identity, &host, std::time::SystemTime::now()) {
        eprintln!("cm-agent: {problem}");
    }
    eprintln!("cm-agent: serving {host} on {} (protocol {PROTOCOL_MAJOR}.{PROTOCOL_MINOR})", endpoint.local_addr()?);
    if let Some((listener, tls)) = metrics {
        let scheme = if tls.is_some() { "https" } else { "http" };
        eprintln!("cm-agent: metrics at {scheme}://{}/metrics", listener.local_addr()?);
        tokio::spawn(crate::metrics::serve(listener, rx.clone(), tls));
    }
    let shared = Arc::new(Shared {
        info: AgentInfo { host, agent_version: AGENT_VERSION.into(), interval },
        history,
        refusals: Mutex::default(),
        connections: AtomicUsize::new(0),
    });

    tokio::pin!(stop);
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut summaries = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            incoming = endpoint.accept() => {
                let Some(incoming) = incoming else { break };
                if shared.connections.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
                    let remote = incoming.remote_address();
                    incoming.refuse();
                    shared.refusal(remote, format!("refused {remote}: already serving {MAX_CONNECTIONS} connections"));
                    continue;
                }
                shared.connections.fetch_add(1, Ordering::Relaxed);
                let (rx, slot) = (rx.clone(), Slot(shared.clone()));
                tokio::spawn(async move { connection(incoming, rx, slot).await });
            }
            _ = hangup.recv() => reload(&endpoint, &config, &shared.info.host),
            _ = summaries.tick() => shared.flush_refusals(false),
            _ = &mut stop => break,
        }
    }
    endpoint.close(cm_net::code::DONE.into(), b"agent stopping");
    tokio::time::timeout(Duration::from_secs(2), endpoint.wait_idle()).await.ok();
    shared.flush_refusals(true);
    eprintln!("cm-agent: stopped");
    Ok(())
}

/// SIGHUP: read the certificate files again. New connections use them;
/// established ones keep going. A bad file keeps the old certificates.
fn reload(endpoint: &quinn::Endpoint, config: &AgentConfig, host: &str) {
    let loaded = config.identity().map_err(anyhow::Error::from).and_then(|identity| {
        let server = tls::server_config(&identity)?;
        Ok((identity, server))
    });
    match loaded {
        Ok((identity, server)) => {
            endpoint.set_server_config(Some(server));
            eprintln!("cm-agent: reloaded certificates from {}", config.tls.cert.display());
            for problem in config.certificate_problems(&identity, host, std::time::SystemTime::now()) {
                eprintln!("cm-agent: {problem}");
            }
        }
        Err(e) => eprintln!("cm-agent: kept the old certificates: {e:#}"),
    }
}

/// `listen` cannot be bound, in words that say what to do.
fn listen_error(config: &AgentConfig, e: &std::io::Error) -> String {
    let (file, listen, port) = (config.source.display(), config.listen, config.listen.port());
    let why = match e.kind() {
        std::io::ErrorKind::AddrInUse => format!(
            "UDP port {port} is in use already, most likely by another cm-agent (`ss -ulpn 'sport = :{port}'` names the program): stop it, or set listen to another port"
        ),
        std::io::ErrorKind::AddrNotAvailable => format!("no interface of this host has the address {}", listen.ip()),
        std::io::ErrorKind::PermissionDenied => "ports below 1024 need privilege: pick a port above 1024".into(),
        _ => e.to_string(),
    };
    format!("{file}: listen = {listen}: {why}")
}

/// The collection thread: the core publishes one snapshot per round of
/// collectors and sleeps in between; it stops when nobody can receive any more.
/// Each snapshot is judged by the alert rules and goes to history (neither
/// waits for the disk or the network) first.
fn collect(
    config: crate::CoreConfig,
    mut recorder: Recorder,
    mut alerting: Alerting,
    tx: watch::Sender<Option<Arc<Published>>>,
) {
    // Each snapshot is turned into what patches are computed on once, for every subscriber.
    AgentCore::new(config).run(|mut snapshot| {
        recorder.annotate(&mut snapshot);
        let samples = cm_proto::series::flatten(&snapshot);
        alerting.evaluate(&mut snapshot, &samples);
        recorder.store(&snapshot, samples);
        tx.send(Some(Arc::new(Published::new(snapshot)))).is_ok()
    });
}

/// What woke a connection's loop.
enum Event {
    Stream(Result<(quinn::SendStream, quinn::RecvStream), quinn::ConnectionError>),
    Read(Result<Option<usize>, quinn::ReadError>),
    Snapshot(bool),
    Timer,
    Closed(quinn::ConnectionError),
}

/// One client, from handshake to goodbye: bytes from quinn go into the
/// session, what the session asks for goes out.
async fn connection(incoming: quinn::Incoming, mut latest: Latest, slot: Slot) {
    let shared = &slot.0;
    let remote: SocketAddr = incoming.remote_address();
    let conn = match incoming.await {
        Ok(c) => c,
        // The agent is stopping: nothing the peer did.
        Err(quinn::ConnectionError::LocallyClosed) => return,
        Err(e) => return shared.refusal(remote, handshake_failure(remote, &e, &shared.info.host)),
    };
    let mut session = AgentSession::new(shared.info.clone(), peer(&conn, remote), Instant::now());
    let mut send: Option<quinn::SendStream> = None;
    let mut recv: Option<quinn::RecvStream> = None;
    let mut finished = false;
    let mut buf = vec![0u8; 8192];
    let mut requests = tokio::task::JoinSet::new();
    latest.mark_changed(); // the current snapshot goes out first, once subscribed
    loop {
        while let Some(action) = session.poll_action() {
            match action {
                Action::Send(bytes) => {
                    let Some(s) = send.as_mut() else { continue };
                    if let Err(e) = s.write_all(&bytes).await {
                        let why = match e {
                            quinn::WriteError::ConnectionLost(e) => e.to_string(),
                            other => other.to_string(),
                        };
                        session.handle_closed(&why);
                    }
                }
                Action::Finish => {
                    finished = send.as_mut().is_some_and(|s| s.finish().is_ok());
                }
                Action::Close { code, reason } => {
                    if let (true, Some(s)) = (finished, send.as_mut()) {
                        // Let the refusal reach the peer before the close overtakes it.
                        tokio::time::timeout(REFUSAL_DRAIN, s.stopped()).await.ok();
                    }
                    conn.close(code.into(), reason.as_bytes());
                }
                Action::Log(line) => shared.log(&line),
                Action::Refusal(line) => shared.refusal(remote, line),
            }
        }
        if session.is_closed() {
            return;
        }
        let timer = session.poll_timeout();
        let event = tokio::select! {
            s = conn.accept_bi() => Event::Stream(s),
            _ = requests.join_next(), if !requests.is_empty() => continue,
            r = async { recv.as_mut().expect("guarded").read(&mut buf).await }, if recv.is_some() && session.wants_input() => Event::Read(r),
            c = latest.changed(), if session.is_subscribed() => Event::Snapshot(c.is_ok()),
            _ = async { tokio::time::sleep_until(timer.expect("guarded").into()).await }, if timer.is_some() => Event::Timer,
            reason = conn.closed() => Event::Closed(reason),
        };
        let now = Instant::now();
        match event {
            Event::Stream(Ok((s, r))) if send.is_none() => (send, recv) = (Some(s), Some(r)),
            // Every stream after the first carries a history request (1.2).
            Event::Stream(Ok((mut s, mut r))) => {
                while requests.try_join_next().is_some() {} // count only the ones still running
                if session.may_read_history() && requests.len() < HISTORY_STREAMS {
                    requests.spawn(history_stream(s, r, shared.history.clone()));
                } else {
                    let _ = s.reset(cm_net::code::REFUSED.into());
                    let _ = r.stop(cm_net::code::REFUSED.into());
                }
            }
            Event::Stream(Err(e)) | Event::Closed(e) => session.handle_closed(&e.to_string()),
            Event::Read(Ok(Some(n))) => session.handle_input(&buf[..n], now),
            Event::Read(Ok(None)) => session.handle_finished(now),
            Event::Read(Err(quinn::ReadError::ConnectionLost(e))) => session.handle_closed(&e.to_string()),
            Event::Read(Err(e)) => session.handle_closed(&e.to_string()),
            Event::Snapshot(false) => return, // the agent is stopping
            Event::Snapshot(true) => {
                let snapshot = latest.borrow_and_update().clone();
                if let Some(snapshot) = snapshot {
                    session.handle_snapshot(snapshot, now);
                }
            }
            Event::Timer => session.handle_timeout(now),
        }
    }
}

/// One history stream: the request, then the answer in chunks, then the end.
async fn history_stream(mut send: quinn::SendStream, mut recv: quinn::RecvStream, dir: Option<std::path::PathBuf>) {
    let mut reader = cm_proto::history::RequestReader::default();
    let mut buf = vec![0u8; 4096];
    let read = async {
        loop {
            match recv.read(&mut buf).await {
                Ok(Some(n)) => {
                    if let Some(req) = reader.push(&buf[..n])? {
                        return Ok(req);
                    }
                }
                Ok(None) => return Err(reader.finished()),
                Err(e) => return Err(e.to_string()),
            }
        }
    };
    let request = match tokio::time::timeout(REQUEST_TIMEOUT, read).await {
        Ok(r) => r,
        Err(_) => Err(format!("no request within {} s", REQUEST_TIMEOUT.as_secs())),
    };
    let frames = match request {
        Ok(request) => {
            let answer = tokio::task::spawn_blocking(move || crate::history::answer(dir.as_deref(), &request)).await;
            match answer {
                Ok(a) => cm_proto::history::answer_frames(&a.series, &a.events, a.end.truncated, a.end.error),
                Err(e) => {
                    cm_proto::history::answer_frames(&[], &[], false, Some(format!("the history read failed: {e}")))
                }
            }
        }
        Err(why) => cm_proto::history::answer_frames(&[], &[], false, Some(why)),
    };
    let _ = recv.stop(cm_net::code::DONE.into());
    for frame in frames {
        if send.write_all(&frame).await.is_err() {
            return;
        }
    }
    let _ = send.finish();
    let _ = send.stopped().await;
}

/// Who the peer's certificate says it is; the session decides what that allows.
fn peer(conn: &quinn::Connection, remote: SocketAddr) -> Peer {
    let (name, role) = match tls::peer(conn) {
        Ok((Some(role), names)) => (names.first().cloned(), Ok(role)),
        Ok((None, names)) => (names.first().cloned(), Err("certificate carries no cm role".to_string())),
        Err(e) => (None, Err(format!("certificate not usable: {}", escape(&e.to_string())))),
    };
    Peer { addr: remote.to_string(), name: name.unwrap_or_else(|| "?".into()), role }
}

/// A failed handshake in words that say who refused whom, and what to do.
fn handshake_failure(remote: SocketAddr, e: &quinn::ConnectionError, host: &str) -> String {
    match refusal::classify(e) {
        Some(Handshake::RefusedOurs(problem)) => {
            let cert = "this agent's certificate (tls.cert)";
            let why = match problem {
                CertProblem::WrongName { expected, presented } => {
                    let expected = escape(&expected);
                    format!(
                        "it dialled {expected}, and {cert} is for {}: if this host is {expected}, issue it a certificate with {}; if not, the dashboard has this host's address under {expected}",
                        escape(&CertProblem::names(&presented)),
                        pki::issue_command(&expected, Role::Agent)
                    )
                }
                CertProblem::OtherCa => {
                    format!("it does not trust the CA that signed {cert}: its tls.ca is another fleet's")
                }
                CertProblem::Expired { not_after } => format!(
                    "{cert} {}: renew it with {}, then reload the agent (SIGHUP)",
                    refusal::expired(not_after),
                    pki::renew_command(host)
                ),
                CertProblem::NotYetValid { not_before } => format!(
                    "{cert} {} by the dashboard's clock: check the clocks of both machines",
                    refusal::not_yet_valid(not_before)
                ),
                CertProblem::WrongUse { .. } => {
                    format!("{cert} is not made for serving: issue one with {}", pki::issue_command(host, Role::Agent))
                }
                CertProblem::Missing => "it saw no certificate from this agent".into(),
                CertProblem::Other(text) => escape(&text),
            };
            format!("the dashboard at {remote} refused this agent's certificate: {why}")
        }
        Some(Handshake::RefusedTheirs(problem)) => {
            let why = match problem {
                CertProblem::Missing => "it showed no certificate".into(),
                CertProblem::OtherCa => "its certificate is not signed by this agent's CA (tls.ca)".into(),
                CertProblem::Expired { not_after } => format!("its certificate {}", refusal::expired(not_after)),
                CertProblem::NotYetValid { not_before } => {
                    format!("its certificate {} by this agent's clock", refusal::not_yet_valid(not_before))
                }
                CertProblem::WrongUse { .. } => "its certificate is not made for dialling".into(),
                CertProblem::WrongName { .. } => "its certificate is for another name".into(),
                CertProblem::Other(text) => format!("its certificate: {}", escape(&text)),
            };
            format!("refused {remote}: {why}")
        }
        Some(Handshake::NoCommonProtocol { .. }) => format!(
            "refused {remote}: it does not speak {} (another program, or a dashboard of another major version)",
            String::from_utf8_lossy(cm_net::ALPN)
        ),
        None => format!("handshake with {remote} failed: {}", escape(&e.to_string())),
    }
}
