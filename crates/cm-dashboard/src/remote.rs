//! Remote mode: one task per host keeps a subscription open, reconnecting with
//! backoff, and turns what happens into messages for the UI. A snapshot is
//! always attributed to the host its connection dialled (whose certificate the
//! TLS layer checked), never to a name read from the snapshot.

use std::time::Duration;

use cm_net::client::subscribe;
use cm_net::{code, tls, Identity, Role};
use tokio::sync::oneshot;

use crate::app::{Connection, Msg};
use crate::config::{DashboardConfig, HostConfig};
use crate::inbox::Sender;
use crate::unix_ms;

/// First wait after a failure; doubles up to `MAX_BACKOFF`.
const MIN_BACKOFF: Duration = Duration::from_millis(250);
/// Kept short, with the dial time limit, so that a host that comes back is
/// live again within about 3 s.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
const DIAL_TIMEOUT: Duration = Duration::from_secs(2);

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
            let mut tasks = tokio::task::JoinSet::new();
            for (i, host) in config.hosts.into_iter().enumerate() {
                tasks.spawn(watch_host(endpoint.clone(), role, i, host, messages.clone()));
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
    Ok(Pool { stop: Some(stop), thread: Some(thread) })
}

/// Keeps one host subscribed for as long as the UI listens.
async fn watch_host(endpoint: quinn::Endpoint, role: Role, index: usize, host: HostConfig, tx: Sender) {
    let mut backoff = MIN_BACKOFF;
    let send_state = |connection: Connection, interval_ms: Option<u64>| {
        tx.send(Msg::Connection { host: index, connection, interval_ms }).is_ok()
    };
    loop {
        let reason = match connect_and_stream(&endpoint, role, index, &host, &tx, &mut backoff).await {
            Ok(()) => return, // the UI is gone
            Err(reason) => reason,
        };
        if !send_state(Connection::Unreachable { reason }, None) {
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One subscription, until it ends. `Ok` only when the UI stopped listening.
async fn connect_and_stream(
    endpoint: &quinn::Endpoint,
    role: Role,
    index: usize,
    host: &HostConfig,
    tx: &Sender,
    backoff: &mut Duration,
) -> Result<(), String> {
    let target = host.target();
    let addr = tokio::net::lookup_host(&target)
        .await
        .map_err(|e| format!("cannot resolve {target}: {e}"))?
        .next()
        .ok_or_else(|| format!("{target} has no address"))?;
    let mut sub = subscribe(endpoint, addr, &host.name, role, DIAL_TIMEOUT).await.map_err(|e| e.to_string())?;
    *backoff = MIN_BACKOFF;
    let connected =
        Msg::Connection { host: index, connection: Connection::Connected, interval_ms: Some(sub.welcome.interval_ms) };
    if tx.send(connected).is_err() {
        return Ok(());
    }
    loop {
        match sub.next_snapshot().await {
            Ok(Some(snapshot)) => {
                let msg = Msg::Snapshot { host: index, snapshot: Box::new(snapshot), received_ms: unix_ms() };
                if tx.send(msg).is_err() {
                    sub.conn.close(code::DONE.into(), b"dashboard closing");
                    return Ok(());
                }
            }
            Ok(None) => return Err("the agent ended the stream".into()),
            Err(e) => return Err(sub.conn.close_reason().map_or_else(|| e.to_string(), |r| r.to_string())),
        }
    }
}
