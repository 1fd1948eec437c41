//! Local mode: the agent core runs in-process on a thread of its own and sends
//! its snapshots as messages, like a remote agent would. It keeps history
//! like an agent too, in the XDG data dir ([`cm_history::store::dashboard_dir`]),
//! and a reader thread answers the views' history requests from that store.
//! The built-in alert rules judge each snapshot, as on an agent, and their
//! transitions go to the same store.

use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, Sender};

use cm_agent::history::{HistoryConfig, Recorder};
use cm_agent::{AgentCore, CoreConfig};
use cm_history::Reader;

use crate::app::Msg;
use crate::history::Fetch;
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
///
/// History goes to `history` (the XDG data dir's store), or nowhere, for
/// the reason it gives (a captured tree is not this machine's history).
pub fn run(
    config: CoreConfig,
    history: Result<PathBuf, String>,
    wake: Sender<Request>,
    requests: Receiver<Request>,
    messages: inbox::Sender,
) {
    drop(wake);
    let host = config.hostname.clone().unwrap_or_default();
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
    let mut recorder = match history {
        Ok(dir) => Recorder::start(
            HistoryConfig { dir, retention: Default::default(), forecast_min_span_ms: 7 * 86_400_000 },
            |_| {},
        ),
        Err(why) => Recorder::off(Some(format!("no history kept: {why}"))),
    };
    // The built-in status rules run here as on an agent, so the alerts view
    // shows what is firing; there are no routes to notify.
    let mut alerting = cm_agent::alerting::builtin_only(&host, recorder.writes(), |_| {});
    core.run(|mut snapshot| {
        recorder.annotate(&mut snapshot);
        let samples = cm_proto::series::flatten(&snapshot);
        alerting.evaluate(&mut snapshot, &samples);
        recorder.store(&snapshot, samples);
        messages.send(Msg::Snapshot { host: 0, snapshot: Box::new(snapshot), received_ms: unix_ms() }).is_ok()
    });
}

/// Starts the thread that answers history requests from the local store in
/// `dir` (or why there is none), and tells the app whether there is one.
/// It runs until the returned sender is dropped.
pub fn spawn_history(dir: Result<PathBuf, String>, messages: inbox::Sender) -> std::io::Result<Sender<Fetch>> {
    let available = dir.as_ref().map(|_| ()).map_err(Clone::clone);
    let dir = dir.ok();
    // The agent core records alert transitions in the same store.
    let _ = messages.send(Msg::HistorySource { host: 0, available: available.clone() });
    let _ = messages.send(Msg::EventSource { host: 0, available });
    let (tx, rx) = mpsc::channel::<Fetch>();
    std::thread::Builder::new().name("local-history".into()).spawn(move || {
        let Some(dir) = dir else {
            for fetch in rx {
                let _ = messages.send(Msg::HistoryAnswer { fetch, answer: Err("no local history".into()) });
            }
            return;
        };
        // Opened at the first request (the recorder may still be creating the
        // file) and again after an error.
        let mut reader: Option<Reader> = None;
        for fetch in rx {
            let answer = match reader.take().map_or_else(|| Reader::open(&dir), Ok) {
                Ok(r) => {
                    let got = r.range(&fetch.request, unix_ms() as i64);
                    if got.is_ok() {
                        reader = Some(r);
                    }
                    got
                }
                Err(e) => Err(e),
            };
            if messages.send(Msg::HistoryAnswer { fetch, answer: answer.map_err(|e| e.to_string()) }).is_err() {
                return;
            }
        }
    })?;
    Ok(tx)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use cm_history::{Retention, Store};
    use cm_proto::history::{HistoryRequest, Resolution};
    use cm_proto::series::Sample;

    use super::*;
    use crate::inbox::Wait;

    fn next(rx: &inbox::Receiver) -> Msg {
        // Generous: the answer comes as soon as SQLite has read it.
        assert_eq!(rx.wait_until(Instant::now() + Duration::from_secs(30)), Wait::Ready);
        rx.drain().into_iter().next().expect("a message")
    }

    /// Everything waiting, as one drain of the inbox gets it.
    fn all(rx: &inbox::Receiver) -> Vec<Msg> {
        assert_eq!(rx.wait_until(Instant::now() + Duration::from_secs(30)), Wait::Ready);
        rx.drain()
    }

    fn fetch(id: u64, from_ms: i64, to_ms: i64) -> Fetch {
        let series = vec!["memory.used_percent".into()];
        Fetch {
            id,
            host: 0,
            request: HistoryRequest {
                series,
                from_ms,
                to_ms,
                resolution: Resolution::Raw,
                max_points: 0,
                events: false,
            },
        }
    }

    #[test]
    fn the_reader_answers_from_the_local_store_and_says_when_there_is_none() {
        let dir = std::env::temp_dir().join(format!("cm-local-history-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let now = unix_ms() as i64;
        let (mut store, _) = Store::open(&dir, Retention::default(), now).unwrap();
        for (ago, v) in [(60_000, 40.0), (30_000, 50.0)] {
            store.record(now - ago, &[Sample { name: "memory.used_percent".into(), value: v }]).unwrap();
        }
        let (tx, rx) = inbox::inbox();
        let reader = spawn_history(Ok(dir.clone()), tx).unwrap();
        assert_eq!(
            all(&rx),
            [Msg::HistorySource { host: 0, available: Ok(()) }, Msg::EventSource { host: 0, available: Ok(()) }],
            "the same store keeps the events"
        );
        reader.send(fetch(1, now - 3_600_000, now + 1)).unwrap();
        let Msg::HistoryAnswer { fetch: answered, answer } = next(&rx) else { panic!("not an answer") };
        assert_eq!(answered.id, 1);
        let answer = answer.unwrap();
        let values: Vec<f64> = answer.series[0].2.iter().map(|p| p.mean).collect();
        assert_eq!(values, [40.0, 50.0]);
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();

        let (tx, rx) = inbox::inbox();
        let empty = spawn_history(Ok(dir.join("never")), tx).unwrap();
        all(&rx);
        empty.send(fetch(2, now - 3_600_000, now + 1)).unwrap();
        let Msg::HistoryAnswer { answer, .. } = next(&rx) else { panic!("not an answer") };
        assert!(answer.as_ref().unwrap_err().contains("never"), "the error names the place: {answer:?}");

        let (tx, rx) = inbox::inbox();
        let nowhere = spawn_history(Err("a captured tree".into()), tx).unwrap();
        let sources = all(&rx);
        assert!(matches!(
            sources[..],
            [Msg::HistorySource { available: Err(_), .. }, Msg::EventSource { available: Err(_), .. }]
        ));
        nowhere.send(fetch(3, 0, 1)).unwrap();
        assert!(matches!(next(&rx), Msg::HistoryAnswer { answer: Err(_), .. }));
    }

    /// Local mode judges its snapshots with the built-in rules, as an agent
    /// does: a machine short of memory has its alert in the snapshot, and the
    /// transition in the local store, where the alerts view reads it.
    #[test]
    fn built_in_rules_run_in_local_mode_and_their_transitions_are_kept() {
        let base = std::env::temp_dir().join(format!("cm-local-alerts-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let root = base.join("root");
        std::fs::create_dir_all(root.join("proc")).unwrap();
        // 95% of memory in use: over the built-in critical threshold (90%).
        std::fs::write(
            root.join("proc/meminfo"),
            "MemTotal:        8000000 kB\nMemFree:          200000 kB\nMemAvailable:     400000 kB\n",
        )
        .unwrap();
        let store = base.join("state");
        let config = CoreConfig::for_sysroot(cm_agent::SysRoot::at(&root));
        let (wake, requests) = mpsc::channel();
        let (tx, rx) = inbox::inbox();
        let dir = store.clone();
        std::thread::spawn(move || run(config, Ok(dir), wake, requests, tx));

        let deadline = Instant::now() + Duration::from_secs(60);
        let alert = loop {
            assert_eq!(rx.wait_until(deadline), Wait::Ready, "no snapshot with a memory alert");
            let found = rx.drain().into_iter().find_map(|m| match m {
                Msg::Snapshot { snapshot, .. } => snapshot.alerts.into_iter().find(|a| a.rule == "memory"),
                _ => None,
            });
            if let Some(a) = found {
                break a;
            }
        };
        assert_eq!(alert.state, cm_proto::AlertState::Pending, "{alert:?}");
        assert_eq!(alert.severity, cm_proto::Status::Critical, "{alert:?}");

        // The notifier thread stores the transition: read until it is there.
        let event = loop {
            let got = Reader::open(&store).and_then(|r| r.alert_events(0, i64::MAX, 100));
            if let Ok((events, _)) = got {
                if let Some(e) = events.into_iter().find(|e| e.rule == "memory") {
                    break e;
                }
            }
            assert!(Instant::now() < deadline, "the memory alert's transition was never stored");
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(event.state, cm_proto::AlertState::Pending, "{event:?}");
        drop(rx);
        let _ = std::fs::remove_dir_all(&base);
    }
}
