//! Local mode: the agent core runs in-process on a thread of its own and sends
//! its snapshots as messages, like a remote agent would.

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use cm_agent::{AgentCore, CoreConfig};

use crate::app::Msg;
use crate::inbox;
use crate::unix_ms;

/// Requests from the UI to the local source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Collect everything now.
    Refresh,
    /// A systemd unit changed: collect what that makes due.
    Wake,
}

/// Runs the core until the UI's channel closes: collects what is due, sends a
/// snapshot, sleeps until the next collector is due or a request comes.
pub fn run(config: CoreConfig, wake: Sender<Request>, requests: Receiver<Request>, messages: inbox::Sender) {
    let mut core = AgentCore::new(config);
    core.set_waker(std::sync::Arc::new(move || {
        let _ = wake.send(Request::Wake);
    }));
    // A first CPU sample a moment after the first collection gives a utilisation
    // figure on the first screen instead of after a full interval.
    core.collect_all();
    std::thread::sleep(Duration::from_millis(200));
    core.resample_cpu();
    loop {
        let snapshot = Box::new(core.snapshot());
        if messages.send(Msg::Snapshot { host: 0, snapshot, received_ms: unix_ms() }).is_err() {
            return;
        }
        loop {
            let wait = core.next_due().saturating_duration_since(Instant::now());
            match requests.recv_timeout(wait) {
                Ok(Request::Refresh) => {
                    core.collect_all();
                    break;
                }
                Ok(Request::Wake) | Err(RecvTimeoutError::Timeout) => {
                    if core.collect_due(Instant::now()) > 0 {
                        break;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }
}
