//! The agent's side of history: a thread that owns the store and writes each
//! snapshot's series, off the collection path; the state it reports back into
//! every snapshot (a `history` collector entry, the forecasts); and the
//! answers to range requests.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use cm_history::{HistoryError, Reader, Retention, Store};
use cm_proto::history::{Answer, HistoryEnd, HistoryRequest, Resolution};
use cm_proto::series::{self, Sample};
use cm_proto::{CollectorReport, Forecast, HostSnapshot, Status};

/// Intervals that may wait for the writer before new ones are dropped.
const QUEUE: usize = 16;
/// How often forecasts are made again.
const FORECAST_EVERY_MS: i64 = 3_600_000;
/// Forecasts look back this far.
const FORECAST_WINDOW_MS: i64 = 30 * 86_400_000;

/// What a snapshot needs from history.
#[derive(Debug, Default)]
struct Shared {
    /// Why history is not being kept, when it is not.
    error: Option<String>,
    note: Option<String>,
    /// By series name (`fs./var.used_percent`, `drive.nvme0n1.wear_percent`).
    forecasts: HashMap<String, Forecast>,
    collected_ms: u64,
    duration_us: u64,
}

/// The collection thread's handle on the writer thread.
pub struct Recorder {
    tx: Option<SyncSender<Batch>>,
    shared: Arc<Mutex<Shared>>,
    dir: Option<PathBuf>,
    dropped: u64,
}

struct Batch {
    ts_ms: i64,
    samples: Vec<Sample>,
    statuses: Vec<(String, Status, Option<String>)>,
}

/// Where and how history is kept.
#[derive(Debug, Clone)]
pub struct HistoryConfig {
    pub dir: PathBuf,
    pub retention: Retention,
    pub forecast_min_span_ms: i64,
}

impl Recorder {
    /// A recorder that keeps nothing, and says why in every snapshot.
    pub fn off(why: Option<String>) -> Recorder {
        let shared = Shared { note: why, ..Default::default() };
        Recorder { tx: None, shared: Arc::new(Mutex::new(shared)), dir: None, dropped: 0 }
    }

    /// Opens the store and starts the writer thread. A store that cannot be
    /// opened leaves history off with the reason in every snapshot; the
    /// agent serves on. Log lines go to `log`.
    pub fn start(config: HistoryConfig, log: fn(&str)) -> Recorder {
        let now = unix_ms();
        let (store, opened) = match Store::open(&config.dir, config.retention.clone(), now) {
            Ok(s) => s,
            // Another process keeps this history (a second local dashboard):
            // nothing is wrong, and what it keeps can still be read.
            Err(e @ HistoryError::Busy { .. }) => {
                log(&e.to_string());
                return Recorder { dir: Some(config.dir.clone()), ..Recorder::off(Some(e.to_string())) };
            }
            Err(e) => {
                log(&format!("history is off: {e}"));
                let shared = Shared { error: Some(format!("history is off: {e}")), ..Default::default() };
                return Recorder { tx: None, shared: Arc::new(Mutex::new(shared)), dir: None, dropped: 0 };
            }
        };
        if let Some((aside, why)) = &opened.moved_aside {
            log(&format!(
                "history: {} was not usable ({why}); moved it to {} and started a new one",
                store.path().display(),
                aside.display()
            ));
        }
        log(&format!("history: keeping {}", store.path().display()));
        let (tx, rx) = sync_channel(QUEUE);
        let shared = Arc::new(Mutex::new(Shared::default()));
        let writer = Writer {
            store,
            shared: shared.clone(),
            config: config.clone(),
            log,
            statuses: HashMap::new(),
            forecast_at: 0,
        };
        let dir = config.dir.clone();
        match std::thread::Builder::new().name("history".into()).spawn(move || writer.run(rx)) {
            Ok(_) => Recorder { tx: Some(tx), shared, dir: Some(dir), dropped: 0 },
            Err(e) => Recorder::off(Some(format!("history is off: cannot start its thread: {e}"))),
        }
    }

    /// The state directory whose store answers range requests, while history is kept.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The state directory this recorder writes to: `None` when history is
    /// off or another process keeps it.
    pub fn writes(&self) -> Option<&Path> {
        self.tx.as_ref().and(self.dir.as_deref())
    }

    /// Hands `snapshot`'s series (`samples`) to the writer, never waiting for it.
    pub fn store(&mut self, snapshot: &HostSnapshot, samples: Vec<Sample>) {
        if let Some(tx) = &self.tx {
            let batch = Batch { ts_ms: snapshot.timestamp_ms as i64, samples, statuses: statuses(snapshot) };
            match tx.try_send(batch) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => self.dropped += 1,
                Err(TrySendError::Disconnected(_)) => {
                    self.tx = None;
                    if let Ok(mut s) = self.shared.lock() {
                        s.error.get_or_insert_with(|| "history stopped: its thread ended".into());
                    }
                }
            }
        }
    }

    /// Fills in what history knows: the forecasts and the `history` entry.
    pub fn annotate(&mut self, snapshot: &mut HostSnapshot) {
        let Ok(shared) = self.shared.lock() else { return };
        for f in &mut snapshot.filesystems {
            f.full = shared.forecasts.get(&series::filesystem(&f.mount_point, "used_percent")).cloned();
        }
        for d in &mut snapshot.drives {
            d.worn_out = shared.forecasts.get(&series::drive(&d.name, "wear_percent")).cloned();
        }
        let note = match (self.dropped, &shared.note) {
            (0, note) => note.clone(),
            (n, _) => Some(format!("{n} intervals not stored: the disk was too slow")),
        };
        snapshot.collectors.push(CollectorReport {
            name: "history".into(),
            collected_ms: shared.collected_ms,
            duration_us: shared.duration_us,
            error: shared.error.clone(),
            note,
        });
    }
}

/// Each judged item of the snapshot, for the event log: `(item, status, reason)`.
fn statuses(s: &HostSnapshot) -> Vec<(String, Status, Option<String>)> {
    let mut out = Vec::new();
    if let Some(c) = &s.cpu {
        out.push(("cpu".into(), c.status, None));
    }
    if let Some(m) = &s.memory {
        out.push(("memory".into(), m.status, None));
    }
    for g in &s.gpus {
        out.push((format!("gpu.{}", g.id), g.status, None));
    }
    for d in &s.drives {
        let reason = d.health.as_ref().and_then(|h| h.findings.iter().max_by_key(|f| f.status)).map(|f| f.text.clone());
        out.push((format!("drive.{}", d.name), d.status, reason));
    }
    for f in &s.filesystems {
        out.push((format!("fs.{}", f.mount_point), f.status, None));
    }
    for svc in s.services.iter().flatten() {
        out.push((format!("service.{}", svc.name), svc.status, svc.reason.clone()));
    }
    for b in s.backups.iter().flatten() {
        out.push((format!("backup.{}", b.name), b.status, b.reason.clone()));
    }
    if let Some(n) = &s.nixos {
        out.push(("nixos".into(), n.status, n.reboot_reasons.first().cloned()));
    }
    out
}

/// The writer thread: stores batches as they come, and makes forecasts each hour.
struct Writer {
    store: Store,
    shared: Arc<Mutex<Shared>>,
    config: HistoryConfig,
    log: fn(&str),
    statuses: HashMap<String, Status>,
    forecast_at: i64,
}

impl Writer {
    fn run(mut self, rx: Receiver<Batch>) {
        for batch in rx {
            let started = Instant::now();
            let result = self.store.record(batch.ts_ms, &batch.samples).and_then(|()| self.events(&batch));
            let error = match result {
                Ok(()) => None,
                Err(e @ HistoryError::DiskFull { .. }) => Some(e.to_string()),
                Err(e) => Some(format!("history paused: {e}")),
            };
            self.report(error, batch.ts_ms, started);
            if batch.ts_ms >= self.forecast_at {
                self.forecast_at = batch.ts_ms + FORECAST_EVERY_MS;
                self.forecast(batch.ts_ms);
            }
        }
    }

    /// Says in the snapshot (and once in the log) when history stops or resumes.
    fn report(&mut self, error: Option<String>, ts_ms: i64, started: Instant) {
        let Ok(mut shared) = self.shared.lock() else { return };
        match (&shared.error, &error) {
            (None, Some(e)) => (self.log)(e),
            (Some(_), None) => (self.log)("history: resumed"),
            _ => {}
        }
        shared.error = error;
        shared.collected_ms = ts_ms as u64;
        shared.duration_us = started.elapsed().as_micros() as u64;
        let kept = self.store.kept_ms();
        shared.note = (kept[0] < self.config.retention.raw_ms)
            .then(|| format!("over history.max_bytes: raw samples kept for {} h", kept[0] / 3_600_000));
    }

    /// Stores each status change.
    fn events(&mut self, batch: &Batch) -> Result<(), HistoryError> {
        for (item, status, reason) in &batch.statuses {
            let before = self.statuses.insert(item.clone(), *status);
            let changed = match before {
                Some(b) => b != *status,
                None => *status != Status::Ok,
            };
            if changed {
                self.store.record_event(batch.ts_ms, item, status.label(), reason.as_deref())?;
            }
        }
        Ok(())
    }

    /// Forecasts from the last 30 days of hourly rollups, for every
    /// filesystem's use and every SSD's wear.
    fn forecast(&mut self, now_ms: i64) {
        let Ok(reader) = Reader::open(&self.config.dir) else { return };
        let request = HistoryRequest {
            series: vec!["fs.*.used_percent".into(), "drive.*.wear_percent".into()],
            from_ms: now_ms - FORECAST_WINDOW_MS,
            to_ms: now_ms + 1,
            resolution: Resolution::Hour,
            max_points: 0,
            events: false,
        };
        let Ok(answer) = reader.range(&request, now_ms) else { return };
        let cfg = cm_history::forecast::ForecastConfig {
            min_span_ms: self.config.forecast_min_span_ms,
            window_ms: FORECAST_WINDOW_MS,
            ..Default::default()
        };
        let forecasts: HashMap<String, Forecast> = answer
            .series
            .iter()
            .filter_map(|(name, _, points)| {
                Some((name.clone(), cm_history::forecast::forecast(points, 100.0, now_ms, &cfg)?))
            })
            .collect();
        if let Ok(mut shared) = self.shared.lock() {
            shared.forecasts = forecasts;
        }
    }
}

/// Answers a range request from the store in `dir`; an error goes into the end.
pub fn answer(dir: Option<&Path>, request: &HistoryRequest) -> Answer {
    let Some(dir) = dir else {
        let end = HistoryEnd { error: Some("this agent keeps no history".into()), ..Default::default() };
        return Answer { series: Vec::new(), events: Vec::new(), end };
    };
    match Reader::open(dir).and_then(|r| r.range(request, unix_ms())) {
        Ok(answer) => answer,
        Err(e) => Answer {
            series: Vec::new(),
            events: Vec::new(),
            end: HistoryEnd { error: Some(e.to_string()), ..Default::default() },
        },
    }
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
