//! How the sources (the fleet's connections, the local agent, the keyboard,
//! signals) hand messages to the UI.
//!
//! Events (keys, connection changes, resizes, terminate) keep their order in
//! a queue. Snapshots do not queue: each host has one slot, and a snapshot
//! that arrives before the UI picked up the previous one replaces it, so the
//! UI always applies the newest and what waits is bounded by the number of
//! hosts, however fast they send. A connection change first moves the host's
//! waiting snapshot into the queue, so that a host's snapshots and connection
//! changes reach the UI in the order they happened.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use crate::app::Msg;

/// Makes an inbox: senders for the sources, the receiver for the UI.
pub fn inbox() -> (Sender, Receiver) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            events: VecDeque::new(),
            latest: Vec::new(),
            waiting: 0,
            senders: 1,
            receiver: true,
            replaced: 0,
        }),
        ready: Condvar::new(),
    });
    (Sender { shared: shared.clone() }, Receiver { shared })
}

struct Shared {
    state: Mutex<State>,
    ready: Condvar,
}

struct State {
    events: VecDeque<Msg>,
    /// The newest snapshot of each host that the UI has not picked up yet.
    latest: Vec<Option<Msg>>,
    /// How many slots of `latest` are full.
    waiting: usize,
    senders: usize,
    receiver: bool,
    /// Snapshots replaced before the UI saw them.
    replaced: u64,
}

impl State {
    fn is_empty(&self) -> bool {
        self.events.is_empty() && self.waiting == 0
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; a poisoned one is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The UI is gone: nobody will read what is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gone;

/// A source's end; clone it for each source.
pub struct Sender {
    shared: Arc<Shared>,
}

impl Sender {
    /// Hands `msg` to the UI: a snapshot into its host's slot, anything else
    /// to the end of the queue.
    pub fn send(&self, msg: Msg) -> Result<(), Gone> {
        let mut state = self.shared.lock();
        if !state.receiver {
            return Err(Gone);
        }
        match msg {
            Msg::Snapshot { host, .. } => {
                if state.latest.len() <= host {
                    state.latest.resize_with(host + 1, || None);
                }
                if state.latest[host].replace(msg).is_some() {
                    state.replaced += 1;
                } else {
                    state.waiting += 1;
                }
            }
            Msg::Connection { host, .. } => {
                // What came over the old connection goes first.
                if let Some(snapshot) = state.latest.get_mut(host).and_then(Option::take) {
                    state.waiting -= 1;
                    state.events.push_back(snapshot);
                }
                state.events.push_back(msg);
            }
            other => state.events.push_back(other),
        }
        drop(state);
        self.shared.ready.notify_one();
        Ok(())
    }
}

impl Clone for Sender {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        Sender { shared: self.shared.clone() }
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.senders -= 1;
        if state.senders == 0 {
            drop(state);
            self.shared.ready.notify_one();
        }
    }
}

/// What [`Receiver::wait_until`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Messages are waiting.
    Ready,
    /// The deadline passed with nothing to pick up.
    TimedOut,
    /// Nothing is waiting and every sender is gone: nothing more will come.
    Closed,
}

/// The UI's end.
pub struct Receiver {
    shared: Arc<Shared>,
}

impl Receiver {
    /// Waits until a message is waiting, `deadline` passes or every sender is gone.
    pub fn wait_until(&self, deadline: Instant) -> Wait {
        let mut state = self.shared.lock();
        loop {
            if !state.is_empty() {
                return Wait::Ready;
            }
            if state.senders == 0 {
                return Wait::Closed;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Wait::TimedOut;
            }
            state = self.shared.ready.wait_timeout(state, left).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// Everything waiting, to apply in this order: the queued events, then the
    /// newest snapshot of each host.
    pub fn drain(&self) -> Vec<Msg> {
        let mut state = self.shared.lock();
        let mut out: Vec<Msg> = state.events.drain(..).collect();
        if state.waiting > 0 {
            out.extend(state.latest.iter_mut().filter_map(Option::take));
            state.waiting = 0;
        }
        out
    }

    /// How many snapshots were replaced by a newer one before the UI picked them up.
    pub fn replaced(&self) -> u64 {
        self.shared.lock().replaced
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.receiver = false;
        state.events.clear();
        state.latest.clear();
        state.waiting = 0;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use cm_proto::HostSnapshot;
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    use super::*;
    use crate::app::Connection;

    fn snapshot(host: usize, seq: u64) -> Msg {
        let snapshot = Box::new(HostSnapshot { seq, ..Default::default() });
        Msg::Snapshot { host, snapshot, received_ms: seq }
    }

    fn key(c: char) -> Msg {
        Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
    }

    fn connection(host: usize, connection: Connection) -> Msg {
        Msg::Connection { host, connection, interval_ms: None }
    }

    /// `(host, seq)` of the snapshots in `msgs`, and the other messages as text.
    fn describe(msgs: &[Msg]) -> Vec<String> {
        msgs.iter()
            .map(|m| match m {
                Msg::Snapshot { host, snapshot, .. } => format!("snapshot {host}#{}", snapshot.seq),
                Msg::Key(k) => format!("key {:?}", k.code),
                Msg::Connection { host, connection, .. } => match connection.reason() {
                    Some(why) => format!("{host} {}: {why}", connection.label()),
                    None => format!("{host} {}", connection.label()),
                },
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn the_newest_snapshot_of_each_host_wins_and_the_others_are_dropped() {
        let (tx, rx) = inbox();
        for seq in 1..=1_000 {
            tx.send(snapshot(0, seq)).unwrap();
            tx.send(snapshot(2, seq * 10)).unwrap();
        }
        assert_eq!(rx.wait_until(Instant::now()), Wait::Ready);
        assert_eq!(describe(&rx.drain()), ["snapshot 0#1000", "snapshot 2#10000"]);
        assert_eq!(rx.replaced(), 2 * 999);
        assert!(rx.drain().is_empty(), "picked up once");
        assert_eq!(rx.wait_until(Instant::now()), Wait::TimedOut);
    }

    #[test]
    fn keys_and_connection_changes_keep_their_order_around_snapshots() {
        let (tx, rx) = inbox();
        tx.send(connection(0, Connection::Connected)).unwrap();
        tx.send(key('j')).unwrap();
        tx.send(snapshot(0, 1)).unwrap();
        tx.send(snapshot(0, 2)).unwrap();
        tx.send(snapshot(1, 7)).unwrap();
        tx.send(key('k')).unwrap();
        let down = Connection::Unreachable { reason: "timed out".into() };
        tx.send(connection(0, down)).unwrap();
        tx.send(connection(0, Connection::Connected)).unwrap();
        tx.send(snapshot(0, 3)).unwrap();
        tx.send(Msg::Terminate).unwrap();
        assert_eq!(
            describe(&rx.drain()),
            [
                "0 connected",
                "key Char('j')",
                "key Char('k')",
                // The snapshot from before the connection went down comes before that news...
                "snapshot 0#2",
                "0 unreachable: timed out",
                "0 connected",
                "Terminate",
                // ...and the newest of each host after every event.
                "snapshot 0#3",
                "snapshot 1#7",
            ]
        );
    }

    #[test]
    fn a_waiting_receiver_wakes_for_a_message_and_learns_when_the_senders_are_gone() {
        let (tx, rx) = inbox();
        let other = tx.clone();
        let sender = std::thread::spawn(move || other.send(snapshot(0, 1)));
        // The deadline is generous; the send wakes the wait long before it.
        assert_eq!(rx.wait_until(Instant::now() + Duration::from_secs(60)), Wait::Ready);
        sender.join().unwrap().unwrap();
        assert_eq!(rx.drain().len(), 1);
        let last = std::thread::spawn(move || drop(tx));
        assert_eq!(rx.wait_until(Instant::now() + Duration::from_secs(60)), Wait::Closed);
        last.join().unwrap();
    }

    #[test]
    fn sending_to_a_dropped_receiver_says_the_ui_is_gone() {
        let (tx, rx) = inbox();
        drop(rx);
        assert_eq!(tx.send(snapshot(0, 1)), Err(Gone));
        assert_eq!(tx.send(key('q')), Err(Gone));
    }
}
