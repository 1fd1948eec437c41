//! The agent's side of alerts: the engine runs on the collection thread, on
//! every snapshot, and puts the alerts in it; a notifier thread stores each
//! transition with the notifications it causes (one transaction, in the
//! history file) and sends them, grouped per target, with retries.
//!
//! A notification is marked sent only once its target accepted it, so one
//! that could not be sent waits in the outbox across restarts and outages
//! until it can, or until it is [`GIVE_UP_MS`] old.

use std::collections::HashMap;
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cm_history::{BackupClock, Journal, Queued};
use cm_proto::series::Sample;
use cm_proto::{AlertEvent, CollectorReport, HostSnapshot, NotifierStatus};

use crate::alerts::{Engine, Input, Notice, Rules};

/// Batches of transitions that may wait for the notifier.
const QUEUE: usize = 256;
/// A notification older than this is given up on, with a log line.
pub const GIVE_UP_MS: i64 = 3 * 86_400_000;
/// Sent notifications are remembered this long (for a look at the file).
const KEEP_SENT_MS: i64 = 7 * 86_400_000;
/// Notifications one message carries at most; the rest go in the next.
const PER_MESSAGE: usize = 50;
/// The first retry after a failure; each next one waits twice as long, up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_secs(15);
const RETRY_MAX: Duration = Duration::from_secs(600);

/// Why a send failed, and whether trying again can help.
#[derive(Debug, Clone)]
pub struct Failure {
    pub why: String,
    pub permanent: bool,
    /// The target refused this message (not every message): it is dropped,
    /// and the next one goes.
    pub refused: bool,
}

/// How notifications leave the agent: the real transports (SMTP, webhooks).
pub trait Transport: Send + 'static {
    /// Sends the queued `items` to `target` (a configured URL) as one message from `host`.
    fn send(&self, target: &str, host: &str, items: &[Queued]) -> Result<(), Failure>;
    /// The target's URL with its secrets left out.
    fn redact(&self, target: &str) -> String;
    /// What the outbox stores for a notice: the notifier reads it back to compose messages.
    fn item(&self, notice: &Notice) -> String;
}

/// Where each route sends, and how long a burst is gathered.
#[derive(Debug, Clone, Default)]
pub struct Routing {
    /// Each route's target URLs.
    pub targets: HashMap<String, Vec<String>>,
    pub group_wait: Duration,
}

struct Work {
    host: String,
    events: Vec<AlertEvent>,
    notices: Vec<Notice>,
    clocks: Vec<BackupClock>,
}

#[derive(Debug, Default)]
struct Shared {
    notifiers: Vec<NotifierStatus>,
    error: Option<String>,
    note: Option<String>,
}

/// The collection thread's side: the engine, and the notifier's queue.
pub struct Alerting {
    engine: Option<Engine>,
    tx: Option<SyncSender<Work>>,
    shared: Arc<Mutex<Shared>>,
    lost: u64,
}

impl Alerting {
    /// No rules at all (`alerts` off).
    pub fn off() -> Alerting {
        Alerting { engine: None, tx: None, shared: Arc::default(), lost: 0 }
    }

    /// Starts the engine and the notifier thread. The journal lives in the
    /// history file in `dir` (opened by the store first); without one, in
    /// memory, and the snapshot says notifications do not survive a restart.
    pub fn start(
        host: &str,
        rules: Rules,
        routing: Routing,
        transport: impl Transport,
        dir: Option<&Path>,
        now_ms: u64,
        log: fn(&str),
    ) -> Alerting {
        let mut note = None;
        let journal = match dir.map(Journal::open) {
            Some(Ok(j)) => j,
            Some(Err(e)) => {
                log(&format!("alerts: {e}; alert events and notifications are kept in memory only"));
                note = Some(format!("not kept across restarts: {e}"));
                Journal::in_memory()
            }
            None => {
                note = Some("alert events and notifications are kept in memory only: history is off".into());
                Journal::in_memory()
            }
        };
        let mut engine = Engine::new(rules, now_ms);
        match journal.active() {
            Ok(active) => engine.restore(&active),
            Err(e) => log(&format!("alerts: cannot read which alerts were firing: {e}")),
        }
        match journal.clocks() {
            Ok(clocks) => engine.restore_clocks(&clocks),
            Err(e) => log(&format!("alerts: cannot read when backup jobs last succeeded: {e}")),
        }
        let shared = Arc::new(Mutex::new(Shared { note, ..Default::default() }));
        let (tx, rx) = sync_channel(QUEUE);
        let notifier = Notifier {
            journal,
            routing,
            transport: Box::new(transport),
            shared: shared.clone(),
            log,
            targets: HashMap::new(),
            host: host.to_string(),
            expired_at: 0,
            unstored: Default::default(),
            unmarked: Vec::new(),
            clocks: Vec::new(),
        };
        let tx = match std::thread::Builder::new().name("notify".into()).spawn(move || notifier.run(rx)) {
            Ok(_) => Some(tx),
            Err(e) => {
                log(&format!("alerts: cannot start the notifier thread: {e}"));
                None
            }
        };
        Alerting { engine: Some(engine), tx, shared, lost: 0 }
    }

    /// Evaluates the rules on `snapshot` (its series are `samples`) and puts
    /// the alerts and the notifiers' state in it; never waits for the notifier.
    pub fn evaluate(&mut self, snapshot: &mut HostSnapshot, samples: &[Sample]) {
        let Some(engine) = self.engine.as_mut() else { return };
        let started = std::time::Instant::now();
        let out = engine.evaluate(&Input { now_ms: snapshot.timestamp_ms, snapshot, samples });
        snapshot.alerts = engine.alerts();
        if !out.events.is_empty() || !out.notices.is_empty() || !out.clocks.is_empty() {
            let work =
                Work { host: snapshot.host.clone(), events: out.events, notices: out.notices, clocks: out.clocks };
            match self.tx.as_ref().map(|tx| tx.try_send(work)) {
                Some(Ok(())) => {}
                Some(Err(TrySendError::Full(_))) | None => self.lost += 1,
                Some(Err(TrySendError::Disconnected(_))) => {
                    self.tx = None;
                    self.lost += 1;
                }
            }
        }
        let Ok(shared) = self.shared.lock() else { return };
        snapshot.notifiers = shared.notifiers.clone();
        let error = match (&shared.error, self.lost) {
            (Some(e), _) => Some(e.clone()),
            (None, 0) => None,
            (None, n) => Some(format!("{n} batches of alert transitions were not stored: the notifier fell behind")),
        };
        snapshot.collectors.push(CollectorReport {
            name: "alerts".into(),
            collected_ms: snapshot.timestamp_ms,
            duration_us: started.elapsed().as_micros() as u64,
            error,
            note: shared.note.clone(),
        });
    }
}

/// A target's delivery state.
#[derive(Debug, Default)]
struct TargetState {
    failures: u32,
    retry_at_ms: i64,
    error: Option<String>,
    last_sent_ms: Option<u64>,
}

/// The notifier thread: stores what the engine decided, and delivers it.
struct Notifier {
    journal: Journal,
    routing: Routing,
    transport: Box<dyn Transport>,
    shared: Arc<Mutex<Shared>>,
    log: fn(&str),
    targets: HashMap<String, TargetState>,
    host: String,
    expired_at: i64,
    /// What could not be stored yet (a busy or full disk): tried again
    /// before anything newer, so nothing decided is lost or reordered.
    unstored: std::collections::VecDeque<Work>,
    /// Notifications their target accepted that could not be marked sent
    /// yet: never sent again, and marked when the file takes it.
    unmarked: Vec<i64>,
    /// Backup clocks that could not be stored yet.
    clocks: Vec<BackupClock>,
}

/// Batches kept for another try at most; beyond, the oldest are dropped.
const UNSTORED_MAX: usize = 1024;

fn unix_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

impl Notifier {
    fn run(mut self, rx: Receiver<Work>) {
        let mut wait = Duration::ZERO;
        loop {
            let wait_now = if self.unstored.is_empty() { wait } else { wait.min(RETRY_FIRST) };
            let mut incoming = Vec::new();
            match rx.recv_timeout(wait_now) {
                Ok(work) => {
                    incoming.push(work);
                    // Whatever else is queued joins the same round.
                    incoming.extend(rx.try_iter());
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.store_all(Vec::new(), unix_ms());
                    return;
                }
            }
            self.store_all(incoming, unix_ms());
            wait = self.deliver(unix_ms());
        }
    }

    /// Stores what waits from before, then `incoming`, in order; stops at
    /// the first that cannot be stored and keeps it and the rest.
    fn store_all(&mut self, incoming: Vec<Work>, now: i64) {
        self.unstored.extend(incoming);
        while let Some(work) = self.unstored.pop_front() {
            if let Err(work) = self.store(work, now) {
                self.unstored.push_front(*work);
                break;
            }
        }
        if self.unstored.len() > UNSTORED_MAX {
            let lost = self.unstored.len() - UNSTORED_MAX;
            self.unstored.drain(..lost);
            (self.log)(&format!("alerts: {lost} batches of alert transitions dropped: they could not be stored"));
        }
    }

    /// Stores transitions and their notifications, one row per target; gives
    /// `work` back when they could not be stored.
    fn store(&mut self, work: Work, now: i64) -> Result<(), Box<Work>> {
        self.host = work.host.clone();
        let mut rows = Vec::new();
        for notice in &work.notices {
            let item = self.transport.item(notice);
            for target in self.routing.targets.get(&notice.route).into_iter().flatten() {
                rows.push((notice.route.clone(), target.clone(), item.clone()));
            }
        }
        let result = self.journal.record(&work.events, &rows, now);
        // A job's first sighting is told once: a clock not stored is kept
        // (the newest of each job) and stored with the next batch.
        for c in &work.clocks {
            self.clocks.retain(|k| k.job != c.job);
            self.clocks.push(c.clone());
        }
        if result.is_ok() && !self.clocks.is_empty() {
            match self.journal.set_clocks(&self.clocks) {
                Ok(()) => self.clocks.clear(),
                Err(e) => (self.log)(&format!("alerts: when backup jobs last succeeded could not be stored: {e}")),
            }
        }
        let error = result.err().map(|e| format!("alert events and notifications could not be stored: {e}"));
        if let Ok(mut shared) = self.shared.lock() {
            if let Some(e) = error.as_ref().filter(|e| shared.error.as_ref() != Some(*e)) {
                (self.log)(&format!("{e}; trying again"));
            }
            shared.error.clone_from(&error);
        }
        match error {
            None => Ok(()),
            Some(_) => Err(Box::new(work)),
        }
    }

    /// Sends what is due; returns how long until something may be due.
    fn deliver(&mut self, now: i64) -> Duration {
        if now - self.expired_at >= 3_600_000 {
            self.expired_at = now;
            match self.journal.expire(now, GIVE_UP_MS, KEEP_SENT_MS) {
                Ok(dropped) => {
                    for q in dropped {
                        let target = self.transport.redact(&q.target);
                        (self.log)(&format!(
                            "notify {} {target}: gave up on a notification queued for 3 days",
                            q.route
                        ));
                    }
                }
                Err(e) => (self.log)(&format!("notify: cannot expire old notifications: {e}")),
            }
        }
        if !self.unmarked.is_empty() && self.journal.sent(&self.unmarked, now).is_ok() {
            self.unmarked.clear();
        }
        let unsent = match self.journal.unsent() {
            Ok(u) => u.into_iter().filter(|q| !self.unmarked.contains(&q.id)).collect::<Vec<_>>(),
            Err(e) => {
                (self.log)(&format!("notify: cannot read the outbox: {e}"));
                return RETRY_FIRST;
            }
        };
        let mut by_target: Vec<(String, Vec<Queued>)> = Vec::new();
        for q in unsent {
            match by_target.iter_mut().find(|(t, _)| *t == q.target) {
                Some((_, v)) => v.push(q),
                None => by_target.push((q.target.clone(), vec![q])),
            }
        }
        let group_ms = self.routing.group_wait.as_millis() as i64;
        let mut next = i64::MAX;
        for (target, queued) in &by_target {
            let state = self.targets.entry(target.clone()).or_default();
            let due = queued[0].created_ms + group_ms;
            let at = due.max(state.retry_at_ms);
            if at > now {
                next = next.min(at);
                continue;
            }
            let batch = &queued[..queued.len().min(PER_MESSAGE)];
            match self.transport.send(target, &self.host, batch) {
                Ok(()) => {
                    let ids: Vec<i64> = batch.iter().map(|q| q.id).collect();
                    if let Err(e) = self.journal.sent(&ids, now) {
                        (self.log)(&format!("notify: sent, but cannot mark it sent yet: {e}"));
                        self.unmarked.extend(ids);
                    }
                    if state.error.is_some() {
                        (self.log)(&format!(
                            "notify {} {}: delivered again",
                            batch[0].route,
                            self.transport.redact(target)
                        ));
                    }
                    *state = TargetState { last_sent_ms: Some(now as u64), ..Default::default() };
                    if queued.len() > batch.len() {
                        next = now;
                    }
                }
                // Refused by a target that took messages before: this one is
                // at fault. One that never took any is misconfigured, and
                // what waits for it is kept until it is fixed.
                Err(f) if f.refused && self.journal.has_sent(target).unwrap_or(false) => {
                    let ids: Vec<i64> = batch.iter().map(|q| q.id).collect();
                    (self.log)(&format!(
                        "notify {}: {}: the target refuses this message; its {} notifications are dropped",
                        batch[0].route,
                        f.why,
                        ids.len()
                    ));
                    match self.journal.drop(&ids, now) {
                        Ok(()) => {
                            state.error = None;
                            next = now;
                        }
                        // Not sent again at once: it would be refused again.
                        Err(e) => {
                            (self.log)(&format!("notify: cannot drop the refused message: {e}"));
                            state.error = Some(f.why);
                            state.retry_at_ms = now + RETRY_FIRST.as_millis() as i64;
                            next = next.min(state.retry_at_ms);
                        }
                    }
                }
                Err(f) => {
                    state.failures += 1;
                    let backoff = if f.permanent {
                        RETRY_MAX
                    } else {
                        RETRY_FIRST.saturating_mul(1 << state.failures.min(8).saturating_sub(1)).min(RETRY_MAX)
                    };
                    state.retry_at_ms = now + backoff.as_millis() as i64;
                    if state.error.as_deref() != Some(&f.why) {
                        // The reason names the target already.
                        (self.log)(&format!(
                            "notify {}: {} (trying again in {} s; {} waiting)",
                            batch[0].route,
                            f.why,
                            backoff.as_secs(),
                            queued.len()
                        ));
                    }
                    state.error = Some(f.why);
                    next = next.min(state.retry_at_ms);
                }
            }
        }
        // What is still waiting, now that some of it went.
        match self.journal.unsent() {
            Ok(left) => {
                let mut waiting: HashMap<String, u32> = HashMap::new();
                for q in left.into_iter().filter(|q| !self.unmarked.contains(&q.id)) {
                    *waiting.entry(q.target).or_default() += 1;
                }
                self.publish(&waiting, now);
            }
            Err(e) => (self.log)(&format!("notify: cannot read the outbox: {e}")),
        }
        if next == i64::MAX {
            // Nothing queued: the next work wakes the thread; expiry runs hourly.
            Duration::from_secs(3600)
        } else {
            Duration::from_millis((next - now).clamp(0, 3_600_000) as u64)
        }
    }

    /// Puts each target's state where the snapshot takes it from.
    fn publish(&self, waiting: &HashMap<String, u32>, now: i64) {
        let mut out = Vec::new();
        for (route, targets) in &self.routing.targets {
            for target in targets {
                let state = self.targets.get(target);
                let queued = waiting.get(target).copied().unwrap_or(0);
                let failing = state.and_then(|s| s.error.clone());
                out.push(NotifierStatus {
                    route: route.clone(),
                    target: self.transport.redact(target),
                    queued,
                    last_sent_ms: state.and_then(|s| s.last_sent_ms),
                    retry_ms: failing.as_ref().and(state).map(|s| s.retry_at_ms.max(now) as u64),
                    error: failing,
                });
            }
        }
        out.sort_by(|a, b| (&a.route, &a.target).cmp(&(&b.route, &b.target)));
        if let Ok(mut shared) = self.shared.lock() {
            shared.notifiers = out;
        }
    }
}

/// Starts alerting as `config` asks: the rules, the routes, the transports.
pub fn start(config: &crate::config::AgentConfig, dir: Option<&Path>) -> anyhow::Result<Alerting> {
    let rules = config.alert_rules()?;
    let routes = config.routes()?;
    let routing = Routing {
        targets: config.notify.routes.iter().map(|r| (r.name.clone(), r.urls.clone())).collect(),
        group_wait: routes.group_wait,
    };
    let log = |line: &str| eprintln!("cm-agent: {line}");
    Ok(Alerting::start(&config.host_name(), rules, routing, Transports, dir, unix_ms() as u64, log))
}

/// The built-in status rules alone, with no routes: for local mode, where the
/// dashboard's alerts view is where they are seen. Transitions are kept in
/// the history file in `dir`, as an agent keeps them.
pub fn builtin_only(host: &str, dir: Option<&Path>, log: fn(&str)) -> Alerting {
    let rules = crate::alerts::AlertsConfig::default()
        .rules(crate::alerts::Delivery::default())
        .expect("the default built-in rules are valid");
    Alerting::start(host, rules, Routing::default(), Transports, dir, unix_ms() as u64, log)
}

/// How long one message may take to reach its target.
const SEND_TIMEOUT: Duration = Duration::from_secs(20);

/// The real transports: SMTP and the webhooks of [`crate::notify`].
struct Transports;

impl Transport for Transports {
    fn send(&self, target: &str, host: &str, items: &[Queued]) -> Result<(), Failure> {
        use crate::notify::{compose, send, Item, Target};
        // The outbox keeps the URL as configured when it was queued; it is
        // parsed again here, so a message queued before a restart still goes.
        let target = Target::parse(target).map_err(|why| Failure { why, permanent: true, refused: false })?;
        let parsed: Vec<Item> = items.iter().filter_map(|q| serde_json::from_str(&q.item).ok()).collect();
        if parsed.len() < items.len() {
            // Written by another version: said, and marked sent rather than retried for days.
            eprintln!(
                "cm-agent: notify: {} queued notifications for {} are in a form this version cannot read; dropped",
                items.len() - parsed.len(),
                target.redacted()
            );
        }
        if parsed.is_empty() {
            return Ok(());
        }
        // The same notifications make the same id, so a message sent again is
        // known as the same one; the time the first was queued keeps it from
        // ever being another message's (row ids start again in an empty outbox).
        let (first, last) = (&items[0], items[items.len() - 1].id);
        let message = compose(host, &parsed, &format!("cm-{host}-{}-{}-{last}", first.created_ms, first.id));
        let sent = send(&target, &message, SEND_TIMEOUT).map_err(|e| Failure {
            why: e.to_string(),
            permanent: e.is_permanent(),
            refused: e.refuses_the_message(),
        })?;
        for refused in sent.refused {
            eprintln!("cm-agent: notify: sent to the other recipients, but {refused}");
        }
        Ok(())
    }

    fn redact(&self, target: &str) -> String {
        crate::notify::Target::parse(target).map_or_else(|_| "(a URL that no longer parses)".into(), |t| t.redacted())
    }

    fn item(&self, notice: &Notice) -> String {
        let kind = match notice.kind {
            crate::alerts::NoticeKind::Alert => crate::notify::Kind::Alert,
            crate::alerts::NoticeKind::Repeat => crate::notify::Kind::Repeat,
        };
        let item = crate::notify::Item { kind, event: notice.event.clone() };
        serde_json::to_string(&item).expect("an item serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::NoticeKind;
    use cm_proto::{AlertState, Status};

    /// Each message: its target and its items.
    type Sent = Vec<(String, Vec<String>)>;

    /// Records what it is asked to send, and fails while told to.
    #[derive(Clone, Default)]
    struct Recording {
        sent: Arc<Mutex<Sent>>,
        down: Arc<Mutex<Option<Failure>>>,
    }

    impl Transport for Recording {
        fn send(&self, target: &str, _: &str, items: &[Queued]) -> Result<(), Failure> {
            if let Some(f) = self.down.lock().unwrap().clone() {
                return Err(f);
            }
            self.sent.lock().unwrap().push((target.into(), items.iter().map(|q| q.item.clone()).collect()));
            Ok(())
        }
        fn redact(&self, target: &str) -> String {
            target.replace("secret", "***")
        }
        fn item(&self, n: &Notice) -> String {
            format!("{} {}", n.event.rule, n.event.state.label())
        }
    }

    fn notifier(transport: &Recording, journal: Journal) -> Notifier {
        let routing = Routing {
            targets: [("ops".to_string(), vec!["smtp://a".to_string(), "ntfy://secret@b".to_string()])].into(),
            group_wait: Duration::from_secs(30),
        };
        Notifier {
            journal,
            routing,
            transport: Box::new(transport.clone()),
            shared: Arc::default(),
            log: |_| {},
            targets: HashMap::new(),
            host: String::new(),
            expired_at: i64::MAX / 2,
            unstored: Default::default(),
            unmarked: Vec::new(),
            clocks: Vec::new(),
        }
    }

    fn work(rule: &str, state: AlertState) -> Work {
        let event = AlertEvent { rule: rule.into(), state, severity: Status::Critical, ..Default::default() };
        Work {
            host: "srv01".into(),
            events: vec![event.clone()],
            notices: vec![Notice { route: "ops".into(), kind: NoticeKind::Alert, event }],
            clocks: Vec::new(),
        }
    }

    #[test]
    fn a_burst_is_one_message_per_target_after_the_group_wait() {
        let t = Recording::default();
        let mut n = notifier(&t, Journal::in_memory());
        n.store_all(vec![work("a", AlertState::Firing)], 0);
        n.store_all(vec![work("b", AlertState::Firing)], 10_000);
        assert_eq!(n.deliver(20_000), Duration::from_secs(10), "waits for the burst to end");
        assert!(t.sent.lock().unwrap().is_empty());
        n.deliver(30_000);
        let sent = t.sent.lock().unwrap().clone();
        let both = vec!["a firing".to_string(), "b firing".to_string()];
        assert_eq!(sent, [("smtp://a".to_string(), both.clone()), ("ntfy://secret@b".to_string(), both)]);
        n.deliver(31_000);
        assert_eq!(t.sent.lock().unwrap().len(), 2, "sent once, never again");
        let s = n.shared.lock().unwrap();
        assert_eq!(s.notifiers.iter().map(|s| s.target.as_str()).collect::<Vec<_>>(), ["ntfy://***@b", "smtp://a"]);
        assert!(s.notifiers.iter().all(|s| s.queued == 0 && s.error.is_none() && s.last_sent_ms == Some(30_000)));
    }

    #[test]
    fn a_target_that_is_down_is_retried_with_backoff_and_gets_each_message_once() {
        let t = Recording::default();
        *t.down.lock().unwrap() = Some(Failure { why: "connection refused".into(), permanent: false, refused: false });
        let mut n = notifier(&t, Journal::in_memory());
        n.store_all(vec![work("a", AlertState::Firing)], 0);
        let mut waits = Vec::new();
        let mut now = 30_000;
        for _ in 0..6 {
            let wait = n.deliver(now);
            waits.push(wait.as_secs());
            now += wait.as_millis() as i64;
        }
        assert_eq!(waits, [15, 30, 60, 120, 240, 480], "each retry waits twice as long");
        {
            let s = n.shared.lock().unwrap();
            let smtp = s.notifiers.iter().find(|s| s.target == "smtp://a").unwrap();
            assert_eq!((smtp.queued, smtp.error.as_deref()), (1, Some("connection refused")));
        }
        *t.down.lock().unwrap() = None;
        n.store_all(vec![work("b", AlertState::Resolved)], now);
        // The failing target's next try is due before the new burst's wait is over: it takes both.
        n.deliver(now + 600_000);
        let sent = t.sent.lock().unwrap().clone();
        assert_eq!(sent.len(), 2);
        assert!(sent.iter().all(|(_, items)| items == &["a firing", "b resolved"]), "{sent:?}");
        n.deliver(now + 700_000);
        assert_eq!(t.sent.lock().unwrap().len(), 2);
    }

    #[test]
    fn a_message_its_target_refuses_is_dropped_and_does_not_hold_up_the_next() {
        let t = Recording::default();
        let refused = || Some(Failure { why: "HTTP 413: too large".into(), permanent: true, refused: true });
        let mut n = notifier(&t, Journal::in_memory());
        // A target that never took anything is misconfigured: what waits is kept.
        *t.down.lock().unwrap() = refused();
        n.store_all(vec![work("a", AlertState::Firing)], 0);
        assert_eq!(n.deliver(30_000), RETRY_MAX, "retried later, as any lasting failure");
        assert_eq!(n.journal.unsent().unwrap().len(), 2, "kept for each target");
        *t.down.lock().unwrap() = None;
        n.deliver(30_000 + RETRY_MAX.as_millis() as i64);
        assert_eq!(t.sent.lock().unwrap().len(), 2, "sent once the target takes it");
        // Now it takes messages: one it refuses is at fault, and is dropped.
        *t.down.lock().unwrap() = refused();
        n.store_all(vec![work("b", AlertState::Firing)], 700_000);
        assert_eq!(n.deliver(730_000), Duration::ZERO, "the next message may go at once");
        assert!(n.journal.unsent().unwrap().is_empty(), "dropped, not retried for days");
        *t.down.lock().unwrap() = None;
        n.store_all(vec![work("c", AlertState::Firing)], 740_000);
        n.deliver(770_000);
        let sent = t.sent.lock().unwrap().clone();
        assert_eq!(sent.len(), 4, "{sent:?}");
        assert!(sent[2..].iter().all(|(_, items)| items == &["c firing"]), "{sent:?}");
    }

    #[test]
    fn a_message_sent_but_not_marked_sent_is_not_sent_again() {
        let dir = std::env::temp_dir().join(format!("cm-unmarked-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (_store, _) = cm_history::Store::open(&dir, cm_history::Retention::default(), 0).unwrap();
        let t = Recording::default();
        let mut n = notifier(&t, Journal::open(&dir).unwrap());
        n.store_all(vec![work("a", AlertState::Firing)], 0);
        // The file is held by another writer from the moment the targets took it.
        let other = rusqlite::Connection::open(dir.join(cm_history::store::FILE_NAME)).unwrap();
        other.execute_batch("BEGIN EXCLUSIVE").unwrap();
        n.deliver(30_000);
        assert_eq!(t.sent.lock().unwrap().len(), 2);
        n.deliver(45_000);
        assert_eq!(t.sent.lock().unwrap().len(), 2, "not sent again while it cannot be marked");
        other.execute_batch("COMMIT").unwrap();
        n.deliver(60_000);
        assert!(n.unmarked.is_empty() && n.journal.unsent().unwrap().is_empty(), "marked once it can be");
        assert_eq!(t.sent.lock().unwrap().len(), 2);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn what_was_not_sent_is_sent_by_the_next_process_exactly_once() {
        let dir = std::env::temp_dir().join(format!("cm-outbox-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (_store, _) = cm_history::Store::open(&dir, cm_history::Retention::default(), 0).unwrap();
        let t = Recording::default();
        *t.down.lock().unwrap() = Some(Failure { why: "down".into(), permanent: false, refused: false });
        let mut n = notifier(&t, Journal::open(&dir).unwrap());
        n.store_all(vec![work("a", AlertState::Firing)], 0);
        n.deliver(30_000);
        drop(n);
        let up = Recording::default();
        let mut n = notifier(&up, Journal::open(&dir).unwrap());
        n.deliver(40_000);
        n.deliver(50_000);
        assert_eq!(up.sent.lock().unwrap().len(), 2, "once to each target");
        drop(n);
        let mut n = notifier(&up, Journal::open(&dir).unwrap());
        n.deliver(60_000);
        assert_eq!(up.sent.lock().unwrap().len(), 2, "a third process sends nothing again");
    }

    /// A backup job that never succeeds fires its dead-man's rule however
    /// often the agent restarts: the time it was first seen is kept.
    #[test]
    fn a_backup_jobs_clock_is_not_set_back_by_a_restart() {
        use cm_proto::{Backup, HostSnapshot};
        let dir = std::env::temp_dir().join(format!("cm-clocks-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (_store, _) = cm_history::Store::open(&dir, cm_history::Retention::default(), 0).unwrap();
        let config: crate::alerts::AlertsConfig = toml::from_str(
            r#"
            [builtin]
            enable = false
            [[rules]]
            name = "stale-backup"
            backup = "restic-*"
            no_success_for = "24h"
            "#,
        )
        .unwrap();
        let rules = || config.rules(crate::alerts::Delivery::default()).unwrap();
        let t0 = 1_800_000_000_000;
        let snap = |at: u64| HostSnapshot {
            timestamp_ms: at,
            backups: Some(vec![Backup {
                name: "restic-b2".into(),
                result: Some("exit-code".into()),
                last_run_ms: Some(at - 60_000),
                ..Default::default()
            }]),
            ..Default::default()
        };
        let start =
            |at| Alerting::start("srv01", rules(), Routing::default(), Recording::default(), Some(&dir), at, |_| {});
        let mut alerting = start(t0);
        let mut s = snap(t0);
        alerting.evaluate(&mut s, &[]);
        assert!(s.alerts.is_empty(), "{:?}", s.alerts);
        drop(alerting);
        // The notifier thread stores the clock: read until it is there.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while Journal::open(&dir).unwrap().clocks().unwrap().is_empty() {
            assert!(std::time::Instant::now() < deadline, "the job's clock was never stored");
            std::thread::sleep(Duration::from_millis(20));
        }
        let clocks = Journal::open(&dir).unwrap().clocks().unwrap();
        assert_eq!(clocks, [BackupClock { job: "restic-b2".into(), since_ms: t0, success_ms: None }]);

        // Restarted a day later, the job still has no success: it is overdue.
        let later = t0 + 25 * 3_600_000;
        let mut alerting = start(later);
        let mut s = snap(later);
        alerting.evaluate(&mut s, &[]);
        let alert = s.alerts.iter().find(|a| a.rule == "stale-backup").expect("the dead-man's rule fired");
        assert_eq!(alert.state, AlertState::Firing);
        assert!(alert.reason.starts_with("no successful run seen since the job was first seen at"), "{}", alert.reason);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn what_cannot_be_stored_is_kept_and_stored_in_order_when_it_can_be() {
        let dir = std::env::temp_dir().join(format!("cm-unstored-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (_store, _) = cm_history::Store::open(&dir, cm_history::Retention::default(), 0).unwrap();
        let t = Recording::default();
        let mut n = notifier(&t, Journal::open(&dir).unwrap());
        // Another writer holds the file past the journal's busy timeout.
        let other = rusqlite::Connection::open(dir.join(cm_history::store::FILE_NAME)).unwrap();
        other.execute_batch("BEGIN EXCLUSIVE").unwrap();
        n.store_all(vec![work("a", AlertState::Firing)], 0);
        assert_eq!(n.unstored.len(), 1, "kept for another try");
        assert!(n.shared.lock().unwrap().error.as_deref().is_some_and(|e| e.contains("could not be stored")));
        other.execute_batch("COMMIT").unwrap();
        n.store_all(vec![work("b", AlertState::Firing)], 1_000);
        assert!(n.unstored.is_empty());
        assert!(n.shared.lock().unwrap().error.is_none());
        // Of equal times, the events come back in the order they were written.
        let (events, _) = cm_history::Reader::open(&dir).unwrap().alert_events(0, 1, 10).unwrap();
        let rules: Vec<String> = events.into_iter().map(|e| e.rule).collect();
        assert_eq!(rules, ["a", "b"]);
        n.deliver(40_000);
        assert_eq!(t.sent.lock().unwrap().len(), 2, "both notified, once to each target, in one message");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
