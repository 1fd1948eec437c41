//! Local mode: the agent core runs in-process on a thread of its own and sends
//! its snapshots as messages, like a remote agent would. It keeps history
//! like an agent too, in the XDG data dir ([`cm_history::store::dashboard_dir`]).

use std::sync::mpsc::{Receiver, Sender};

use cm_agent::history::{HistoryConfig, Recorder};
use cm_agent::{AgentCore, CoreConfig};

use crate::app::Msg;
use crate::inbox;
use crate::unix_ms;

/// Requests from the UI to the local source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Collect everything now.
    Refresh,
}

/// Runs the core until the UI's channel closes: one snapshot per round of
/// collectors, sleeping in between (the core's own loop, as in `cm-agent run`).
///
/// `wake` is not needed any more: the core wakes itself when a unit changes
/// or a slow source answers. It is dropped at once so that `requests` closes
/// when the UI lets go of its sender.
pub fn run(config: CoreConfig, wake: Sender<Request>, requests: Receiver<Request>, messages: inbox::Sender) {
    drop(wake);
    let core = AgentCore::new(config);
    let handle = core.handle();
    // The UI's requests come on its own channel; this hands them to the core.
    // Should the thread not start, refresh does nothing and collection goes on
    // (stderr is the UI's terminal: nothing is printed there).
    let _ = std::thread::Builder::new().name("local-requests".into()).spawn(move || {
        for request in requests {
            let delivered = match request {
                Request::Refresh => handle.request(cm_agent::Request::Refresh),
            };
            if !delivered {
                return; // the core is gone
            }
        }
    });
    // The terminal is the UI's: what history has to say goes into the
    // snapshot's `history` entry, not to stderr.
    let mut recorder = match cm_history::store::dashboard_dir() {
        Some(dir) => Recorder::start(
            HistoryConfig { dir, retention: Default::default(), forecast_min_span_ms: 7 * 86_400_000 },
            |_| {},
        ),
        None => Recorder::off(Some("no history: neither XDG_DATA_HOME nor HOME is set".into())),
    };
    core.run(|mut snapshot| {
        recorder.record(&mut snapshot);
        messages.send(Msg::Snapshot { host: 0, snapshot: Box::new(snapshot), received_ms: unix_ms() }).is_ok()
    });
}
