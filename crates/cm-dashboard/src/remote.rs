//! Remote mode: one task per host keeps a subscription open, reconnecting with
//! backoff, and turns what happens into messages for the UI. A snapshot is
//! always attributed to the host its connection dialled (whose certificate the
//! TLS layer checked), never to a name read from the snapshot. Dials start a
//! little apart; leaving closes every connection.
//!
//! History requests ([`Pool::fetch`]) go to the host's task, which asks on
//! its live connection, each on a stream of its own beside the subscription,
//! when the agent speaks protocol 1.2 or later. Every request is answered,
//! with an error when there is no connection or no history to ask. Alert
//! events (the alerts view's) are asked the same way, of agents of 1.3 or later.

use std::sync::Arc;
use std::time::Duration;

use cm_net::client::{history, subscribe};
use cm_net::{code, tls, Identity, Role};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::alerts::EVENTS_MINOR;
use crate::app::{Connection, Msg};
use crate::config::{DashboardConfig, HostConfig};
use crate::history::Fetch;
use crate::inbox::Sender;
use crate::unix_ms;

/// First wait after a failure; doubles up to `MAX_BACKOFF`.
const MIN_BACKOFF: Duration = Duration::from_millis(250);
/// Kept short, with the dial time limit, so that a host that comes back is
/// live again within about 3 s.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
const DIAL_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one history request may take, answer included.
const HISTORY_TIMEOUT: Duration = Duration::from_secs(15);
/// The first protocol minor version whose agents answer history requests.
pub const HISTORY_MINOR: u16 = 2;

/// The least time between the starts of two dials. A fleet dialled at once
/// (at start-up, or when the network comes back) answers at once too, and
/// the handshakes and first snapshots of many hosts overflow a receive
/// buffer the kernel kept small (net.core.rmem_max); spaced out, 50 hosts
/// take 0.1 s to dial.
const DIAL_SPACING: Duration = Duration::from_millis(2);

/// How long leaving waits for the agents to hear that the dashboard goes:
/// long enough for the CONNECTION_CLOSE frames to leave, short enough that
/// quitting feels instant.
const CLOSE_GRACE: Duration = Duration::from_millis(500);

/// The fleet's connections, kept by tasks on a thread of their own.
/// Dropping it closes every connection with [`code::DONE`], so that agents
/// see the dashboard leave instead of waiting for it to time out.
pub struct Pool {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Each host's task takes its history requests from here.
    fetches: Vec<mpsc::UnboundedSender<Fetch>>,
}

impl Pool {
    /// Hands a history request to its host's task; the answer comes back as
    /// a message. A pool that is stopping drops it, and the app gives up on
    /// it after a while.
    pub fn fetch(&self, fetch: Fetch) {
        if let Some(tx) = self.fetches.get(fetch.host) {
            let _ = tx.send(fetch);
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join(); // at most CLOSE_GRACE and a moment
        }
    }
}

/// Starts the pool; it runs until dropped, or until `messages` has no reader.
pub fn spawn(config: DashboardConfig, messages: Sender) -> anyhow::Result<Pool> {
    let identity = Identity::load(&config.tls.ca, &config.tls.cert, &config.tls.key)?;
    let role = identity.role().unwrap_or(Role::Dashboard);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let (fetches, mut fetch_queues): (Vec<_>, Vec<_>) = config.hosts.iter().map(|_| mpsc::unbounded_channel()).unzip();
    let thread = std::thread::Builder::new().name("fleet".into()).spawn(move || {
        runtime.block_on(async move {
            let endpoint = match tls::client(&identity) {
                Ok(e) => e,
                Err(e) => {
                    let reason = format!("cannot open the dashboard's endpoint: {e}");
                    for host in 0..config.hosts.len() {
                        let connection = Connection::Unreachable { reason: reason.clone() };
                        let _ = messages.send(Msg::Connection { host, connection, interval_ms: None });
                    }
                    return;
                }
            };
            let dials = Arc::new(DialPacer::new());
            let mut tasks = tokio::task::JoinSet::new();
            for (i, (host, queue)) in config.hosts.into_iter().zip(fetch_queues.drain(..)).enumerate() {
                let dial = Dial { endpoint: endpoint.clone(), pacer: dials.clone(), role };
                tasks.spawn(watch_host(dial, i, host, queue, messages.clone()));
            }
            tokio::select! {
                _ = stopped => {}
                () = async { while tasks.join_next().await.is_some() {} } => {}
            }
            // Close first, while every connection is still up, so that each
            // agent reads this code rather than a stream torn down under it.
            endpoint.close(code::DONE.into(), b"dashboard closing");
            tasks.abort_all();
            let _ = tokio::time::timeout(CLOSE_GRACE, endpoint.wait_idle()).await;
        })
    })?;
    Ok(Pool { stop: Some(stop), thread: Some(thread), fetches })
}

/// Hands out the start times of dials, at least [`DIAL_SPACING`] apart. A
/// dial that does not answer does not hold up the others, as a limit on
/// dials in flight would.
#[derive(Debug)]
struct DialPacer {
    next: std::sync::Mutex<Instant>,
}

impl DialPacer {
    fn new() -> Self {
        DialPacer { next: std::sync::Mutex::new(Instant::now()) }
    }

    /// The time a dial asked for at `now` may start.
    fn turn(&self, now: Instant) -> Instant {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let turn = (*next).max(now);
        *next = turn + DIAL_SPACING;
        turn
    }

    async fn wait_turn(&self) {
        tokio::time::sleep_until(self.turn(Instant::now())).await;
    }
}

/// What every host's task dials with.
struct Dial {
    endpoint: quinn::Endpoint,
    pacer: Arc<DialPacer>,
    role: Role,
}

/// Keeps one host subscribed for as long as the UI listens.
async fn watch_host(
    dial: Dial,
    index: usize,
    host: HostConfig,
    mut fetches: mpsc::UnboundedReceiver<Fetch>,
    tx: Sender,
) {
    let mut backoff = MIN_BACKOFF;
    let send_state = |connection: Connection, interval_ms: Option<u64>| {
        tx.send(Msg::Connection { host: index, connection, interval_ms }).is_ok()
    };
    loop {
        let reason = match connect_and_stream(&dial, index, &host, &tx, &mut backoff, &mut fetches).await {
            Ok(()) => return, // the UI is gone
            Err(reason) => reason,
        };
        if !send_state(Connection::Unreachable { reason: reason.clone() }, None) {
            return;
        }
        // Requests that come while there is no connection are answered at once.
        let pause = tokio::time::sleep(backoff);
        tokio::pin!(pause);
        loop {
            tokio::select! {
                () = &mut pause => break,
                fetch = fetches.recv() => match fetch {
                    Some(fetch) => answer(&tx, fetch, Err(format!("{} is not connected: {reason}", host.name))),
                    None => return,
                },
            }
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

fn answer(tx: &Sender, fetch: Fetch, answer: Result<cm_proto::history::Answer, String>) {
    let _ = tx.send(Msg::HistoryAnswer { fetch, answer });
}

/// One subscription, until it ends. `Ok` only when the UI stopped listening.
async fn connect_and_stream(
    dial: &Dial,
    index: usize,
    host: &HostConfig,
    tx: &Sender,
    backoff: &mut Duration,
    fetches: &mut mpsc::UnboundedReceiver<Fetch>,
) -> Result<(), String> {
    let target = host.target();
    let addr = tokio::net::lookup_host(&target)
        .await
        .map_err(|e| format!("cannot resolve {target}: {e}"))?
        .next()
        .ok_or_else(|| format!("{target} has no address"))?;
    dial.pacer.wait_turn().await;
    let mut sub =
        subscribe(&dial.endpoint, addr, &host.name, dial.role, DIAL_TIMEOUT).await.map_err(|e| e.to_string())?;
    *backoff = MIN_BACKOFF;
    let connected =
        Msg::Connection { host: index, connection: Connection::Connected, interval_ms: Some(sub.welcome.interval_ms) };
    if tx.send(connected).is_err() {
        return Ok(());
    }
    let w = &sub.welcome;
    let no_history = (w.minor < HISTORY_MINOR).then(|| {
        format!("agent {} speaks protocol {}.{}, history needs 1.{HISTORY_MINOR}", w.agent_version, w.major, w.minor)
    });
    if tx.send(Msg::HistorySource { host: index, available: no_history.clone().map_or(Ok(()), Err) }).is_err() {
        return Ok(());
    }
    let no_events = (w.minor < EVENTS_MINOR).then(|| {
        format!(
            "agent {} speaks protocol {}.{}, alert history needs 1.{EVENTS_MINOR}",
            w.agent_version, w.major, w.minor
        )
    });
    if tx.send(Msg::EventSource { host: index, available: no_events.clone().map_or(Ok(()), Err) }).is_err() {
        return Ok(());
    }
    let conn = sub.conn.clone();
    loop {
        tokio::select! {
            next = sub.next_snapshot() => match next {
                Ok(Some(snapshot)) => {
                    let msg = Msg::Snapshot { host: index, snapshot: Box::new(snapshot), received_ms: unix_ms() };
                    if tx.send(msg).is_err() {
                        conn.close(code::DONE.into(), b"dashboard closing");
                        return Ok(());
                    }
                }
                Ok(None) => return Err("the agent ended the stream".into()),
                Err(e) => return Err(conn.close_reason().map_or_else(|| e.to_string(), |r| r.to_string())),
            },
            fetch = fetches.recv() => match fetch {
                // Each request on its own stream, so that a long answer holds up neither
                // the snapshots nor the other requests.
                Some(fetch) => match no_history.as_ref().or(no_events.as_ref().filter(|_| fetch.request.events)) {
                    None => {
                        let (conn, tx) = (conn.clone(), tx.clone());
                        tokio::spawn(async move {
                            let got = history(&conn, &fetch.request, HISTORY_TIMEOUT).await.map_err(|e| e.to_string());
                            answer(&tx, fetch, got);
                        });
                    }
                    Some(why) => answer(tx, fetch, Err(why.clone())),
                },
                None => return Ok(()), // the pool is gone
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dials_asked_for_together_start_one_spacing_apart_and_a_later_one_at_once() {
        let pacer = DialPacer::new();
        let t0 = Instant::now();
        let turns: Vec<Duration> = (0..4).map(|_| pacer.turn(t0) - t0).collect();
        assert_eq!(turns, [0, 1, 2, 3].map(|n| DIAL_SPACING * n));
        let later = t0 + Duration::from_secs(1);
        assert_eq!(pacer.turn(later), later, "nothing waiting: no wait");
        assert_eq!(pacer.turn(later), later + DIAL_SPACING);
    }
}
