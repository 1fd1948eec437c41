//! The agent core: runs each collector on its own interval and assembles
//! snapshots, one per round of collectors that fall due together. A collector
//! that fails reports its error in the snapshot; the others go on.
//!
//! The cheap collectors (host, cpu, memory, storage) run on the core's own
//! thread. The slow sources (GPUs through nvidia-smi, SMART through smartctl,
//! systemd over D-Bus with its disk walks) each run on a thread of their own
//! with a deadline and hand their answer back: the core never waits on them,
//! so cpu and memory are on time whatever a tool or the bus does. A source
//! past its deadline is reported so and its data is dropped, as for any
//! failing collector: old data is never shown as current.

use std::collections::BTreeMap;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cm_collect::cpu::CpuCollector;
use cm_collect::gpu::NvidiaSmi;
use cm_collect::smart::Smartctl;
use cm_collect::systemd::{Outcome, SystemdCollector, SystemdConfig, Waker};
use cm_collect::{gpu, host, memory, nixos, smart, storage, CollectError, SysRoot};
use cm_proto::{CollectorReport, DriveHealth, DriveKind, HostSnapshot, Service};

use crate::slow::{Answer, SlowSource, Start};
use crate::status::Thresholds;
use crate::AGENT_VERSION;

/// How often each collector runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Intervals {
    pub cpu: Duration,
    pub memory: Duration,
    pub storage: Duration,
    pub gpu: Duration,
    /// SMART is slow and wakes nothing, but need not be read often.
    pub smart: Duration,
    /// Services' resource figures (memory, CPU, tasks) are read this often; a
    /// unit that changes state is read at once, from systemd's signals.
    pub services: Duration,
}

impl Default for Intervals {
    fn default() -> Self {
        Self {
            cpu: Duration::from_secs(2),
            memory: Duration::from_secs(2),
            storage: Duration::from_secs(10),
            gpu: Duration::from_secs(5),
            smart: Duration::from_secs(30 * 60),
            services: Duration::from_secs(10),
        }
    }
}

/// What the core needs to know about where and how to collect.
#[derive(Debug, Clone, Default)]
pub struct CoreConfig {
    pub sysroot: SysRoot,
    /// Overrides the kernel's host name.
    pub hostname: Option<String>,
    pub intervals: Intervals,
    /// How to run nvidia-smi; `None` skips NVIDIA GPUs.
    pub nvidia_smi: Option<NvidiaSmi>,
    /// How to run smartctl; `None` skips drive health.
    pub smartctl: Option<Smartctl>,
    /// Which systemd units to watch; `None` skips services.
    pub systemd: Option<SystemdConfig>,
    pub thresholds: Thresholds,
    /// Where the privileged collector writes drive health and services' disk
    /// usage; the agent reads them from there instead of collecting them.
    pub privileged_results: Option<std::path::PathBuf>,
}

impl CoreConfig {
    /// Defaults for the `--sysroot DIR` option of the binaries: the live
    /// machine without one, else a captured tree that must be a directory.
    pub fn for_sysroot_arg(dir: Option<&std::path::Path>) -> Result<Self, String> {
        match dir {
            None => Ok(Self::for_sysroot(SysRoot::live())),
            Some(dir) if dir.is_dir() => Ok(Self::for_sysroot(SysRoot::at(dir))),
            Some(dir) => Err(format!("sysroot {} is not a directory", dir.display())),
        }
    }

    /// Defaults for reading `sysroot`: nvidia-smi and smartctl are asked only on
    /// the live machine, since they describe the machine they run on, not a captured tree.
    pub fn for_sysroot(sysroot: SysRoot) -> Self {
        let live = sysroot.is_live();
        Self {
            sysroot,
            nvidia_smi: live.then(NvidiaSmi::default),
            smartctl: live.then(Smartctl::default),
            systemd: live.then(SystemdConfig::default),
            ..Default::default()
        }
    }
}

/// Something another thread can ask of a running core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Collect everything now, whatever the schedule (a person pressed refresh).
    Refresh,
}

/// A handle on a core for other threads: it asks for things and wakes the
/// core's loop ([`AgentCore::wait_and_collect`], [`AgentCore::run`]).
#[derive(Debug, Clone)]
pub struct CoreHandle {
    inbox: Inbox,
}

impl CoreHandle {
    /// Passes `request` to the core; false once the core is gone.
    pub fn request(&self, request: Request) -> bool {
        self.inbox.send(Event::Request(request))
    }
}

/// A CPU sample this long after the first gives the first snapshot of a
/// loop (and a one-shot snapshot) a utilisation figure.
const FIRST_CPU_SAMPLE: Duration = Duration::from_millis(200);
/// How long a round waits for the slow sources it started, so that one
/// snapshot carries them: at most a tenth of the shortest interval, and never
/// long enough to make cpu and memory noticeably late.
const GATHER_MAX: Duration = Duration::from_millis(100);
/// A burst of unit signals costs one systemd read per this much time.
const EVENT_SPACING: Duration = Duration::from_millis(200);
/// Collectors due within this of each other run in the same round.
const SLACK: Duration = Duration::from_millis(5);
/// What a slow source may take beyond the time limits of the tools and calls
/// it makes, before the core stops waiting for it.
const DEADLINE_MARGIN: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Host,
    Cpu,
    Memory,
    Storage,
    Gpu,
    Smart,
    Systemd,
    Nixos,
    Privileged,
}

impl Kind {
    /// In run order: SMART reads the drives that storage found.
    const ALL: [Kind; 9] = [
        Kind::Host,
        Kind::Cpu,
        Kind::Memory,
        Kind::Storage,
        Kind::Gpu,
        Kind::Smart,
        Kind::Systemd,
        Kind::Nixos,
        Kind::Privileged,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::Host => "host",
            Kind::Cpu => "cpu",
            Kind::Memory => "memory",
            Kind::Storage => "storage",
            Kind::Gpu => "gpu",
            Kind::Smart => "smart",
            Kind::Systemd => "systemd",
            Kind::Nixos => "nixos",
            Kind::Privileged => "privileged",
        }
    }
}

#[derive(Debug)]
struct Slot {
    kind: Kind,
    interval: Duration,
    /// `None` before the first run: due at once.
    next_due: Option<Instant>,
    /// `None` until the collector first ran (a slow source: until it first
    /// answered or missed its deadline).
    report: Option<CollectorReport>,
    /// A slow source asked to run again as soon as its thread is free: a
    /// unit changed, or a refresh came, while it was busy.
    rerun: bool,
}

/// What reaches the core's loop from other threads.
enum Event {
    Request(Request),
    /// A systemd unit changed.
    UnitChanged,
    Gpu(Answer<gpu::Found>),
    Smart(Answer<Result<Vec<(String, DriveHealth)>, CollectError>>),
    Systemd(Answer<Result<Outcome, CollectError>>),
}

/// Where events for the core go: its channel, and the waker of a caller
/// that drives [`AgentCore::collect_due`] by hand, if it set one.
#[derive(Clone)]
struct Inbox {
    tx: Sender<Event>,
    waker: Arc<Mutex<Option<Waker>>>,
}

impl Inbox {
    fn send(&self, event: Event) -> bool {
        let sent = self.tx.send(event).is_ok();
        let waker = self.waker.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(w) = waker {
            w();
        }
        sent
    }
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Inbox")
    }
}

/// The slow sources, each on its thread; `None` when not configured.
#[derive(Debug)]
struct Sources {
    gpu: SlowSource<()>,
    smart: Option<SlowSource<Vec<String>>>,
    systemd: Option<SlowSource<()>>,
}

/// A round that started slow sources and waits (briefly) for them to answer,
/// so that one snapshot carries the round.
#[derive(Debug)]
struct Round {
    /// The round is published at this time at the latest...
    until: Instant,
    /// ...and not before this one (the first round's second CPU sample).
    not_before: Option<Instant>,
    waiting_for: Vec<Kind>,
}

/// Runs the collectors and assembles snapshots.
#[derive(Debug)]
pub struct AgentCore {
    config: CoreConfig,
    cpu: CpuCollector,
    /// Drive health by drive name, kept between the (rare) SMART runs.
    health: BTreeMap<String, DriveHealth>,
    /// The privileged collector's results, when it collects for this core.
    privileged: Option<crate::privileged::Reader>,
    privileged_ok: bool,
    /// The previous sample of each service, to tell new OOM kills from old ones.
    services_before: BTreeMap<String, Service>,
    /// When services were last asked for, to space reads after unit signals.
    systemd_last_run: Option<Instant>,
    slots: Vec<Slot>,
    /// The first round: later rounds fall on whole intervals from it, so
    /// that collectors with commensurate intervals come due together.
    anchor: Option<Instant>,
    sources: Sources,
    inbox: Inbox,
    events: Receiver<Event>,
    round: Option<Round>,
    /// Something was collected since the last snapshot.
    changed: bool,
    current: HostSnapshot,
    seq: u64,
}

impl AgentCore {
    /// A core that has not collected anything yet. Its slow sources' threads
    /// start now and stop when the core is dropped (a thread stuck in a tool
    /// or a call stops when that returns).
    pub fn new(config: CoreConfig) -> Self {
        let slots = Kind::ALL
            .into_iter()
            .filter(|kind| *kind != Kind::Smart || config.smartctl.is_some())
            .filter(|kind| *kind != Kind::Systemd || config.systemd.is_some())
            .filter(|kind| *kind != Kind::Privileged || config.privileged_results.is_some())
            .map(|kind| Slot {
                kind,
                interval: match kind {
                    Kind::Host => config.intervals.storage,
                    Kind::Cpu => config.intervals.cpu,
                    Kind::Memory => config.intervals.memory,
                    Kind::Storage => config.intervals.storage,
                    Kind::Gpu => config.intervals.gpu,
                    Kind::Smart => config.intervals.smart,
                    Kind::Systemd => config.intervals.services,
                    // Changes only with a switch or a boot.
                    Kind::Nixos => config.intervals.storage,
                    Kind::Privileged => config.intervals.cpu,
                },
                next_due: None,
                report: None,
                rerun: false,
            })
            .collect();
        let (tx, events) = mpsc::channel();
        let inbox = Inbox { tx, waker: Arc::new(Mutex::new(None)) };
        let sources = Sources::spawn(&config, &inbox);
        let privileged = config.privileged_results.clone().map(crate::privileged::Reader::new);
        Self {
            config,
            cpu: CpuCollector::default(),
            health: BTreeMap::new(),
            privileged,
            privileged_ok: false,
            services_before: BTreeMap::new(),
            systemd_last_run: None,
            slots,
            anchor: None,
            sources,
            inbox,
            events,
            round: None,
            changed: false,
            current: HostSnapshot::default(),
            seq: 0,
        }
    }

    /// A handle other threads use to ask this core for things.
    pub fn handle(&self) -> CoreHandle {
        CoreHandle { inbox: self.inbox.clone() }
    }

    /// The shortest collector interval: how often snapshots change.
    pub fn interval(&self) -> Duration {
        self.slots.iter().map(|s| s.interval).min().unwrap_or(Duration::from_secs(2))
    }

    /// When there is next something to do: a collector falls due, or a slow
    /// source's deadline passes. For loops that call [`AgentCore::collect_due`]
    /// themselves; [`AgentCore::wait_and_collect`] does this waiting itself.
    pub fn next_due(&self) -> Instant {
        self.next_wake().unwrap_or_else(Instant::now)
    }

    /// Also calls `waker` (from another thread) whenever the core has news to
    /// take in: a unit changed, a slow source answered, a request came. Only
    /// a loop that calls [`AgentCore::collect_due`] itself needs this.
    pub fn set_waker(&mut self, waker: Waker) {
        *self.inbox.waker.lock().unwrap_or_else(|e| e.into_inner()) = Some(waker);
    }

    /// Takes in what the slow sources answered, then runs every cheap
    /// collector due at `now` and starts every slow one (without waiting for
    /// it). Returns how many collectors ran, started or answered.
    pub fn collect_due(&mut self, now: Instant) -> usize {
        let answered = self.take_events(now);
        self.check_deadlines(Instant::now());
        answered + self.start_due(now).0
    }

    /// Runs every collector now, whatever its schedule, and waits for the
    /// slow sources to answer or miss their deadlines.
    pub fn collect_all(&mut self) {
        let now = Instant::now();
        self.take_events(now);
        for slot in &mut self.slots {
            slot.next_due = Some(now);
        }
        self.start_due(now);
        self.settle();
    }

    /// Runs the CPU collector again, e.g. shortly after `collect_all` so that
    /// a one-shot snapshot has a utilisation figure.
    pub fn resample_cpu(&mut self) {
        if let Some(i) = self.slots.iter().position(|s| s.kind == Kind::Cpu) {
            self.run_cheap(i);
        }
    }

    /// Waits until the next round is due, a slow source answers or a request
    /// comes, but not past `until`. Runs that round and returns its
    /// snapshot, or returns `None` at `until` when there was nothing new.
    ///
    /// One snapshot per round: collectors that fall due together run
    /// together, and the round waits briefly for the slow sources it started
    /// (never long enough to make cpu and memory late). A slow source that
    /// answers later, or misses its deadline, makes a round of its own. The
    /// first round (on the live machine) takes a second CPU sample a moment
    /// after the first, so that its snapshot has a utilisation figure.
    pub fn wait_and_collect(&mut self, until: Instant) -> Option<HostSnapshot> {
        loop {
            let now = Instant::now();
            self.take_events(now);
            self.check_deadlines(now);
            if self.round.is_none() {
                let (ran, started) = self.start_due(now);
                if ran > 0 {
                    let first = self.seq == 0 && self.config.sysroot.is_live();
                    let gather = (self.interval() / 10).min(GATHER_MAX);
                    self.round = Some(Round {
                        until: now + if first { FIRST_CPU_SAMPLE } else { gather },
                        not_before: first.then(|| now + FIRST_CPU_SAMPLE),
                        waiting_for: started,
                    });
                }
            }
            if let Some(round) = &self.round {
                let waiting = round.waiting_for.iter().any(|k| self.source_busy(*k));
                let early = round.not_before.is_some_and(|t| now < t);
                if early || (waiting && now < round.until) {
                    // The round is still open.
                } else {
                    if round.not_before.is_some() {
                        self.resample_cpu();
                    }
                    self.round = None;
                }
            }
            if self.round.is_none() && self.changed {
                return Some(self.snapshot());
            }
            if now >= until {
                return None;
            }
            // An open round ends at its time (or when an answer comes); what falls
            // due meanwhile waits for the next round.
            let wake = match &self.round {
                Some(round) => round.until.min(until),
                None => self.next_wake().map_or(until, |t| t.min(until)),
            };
            match self.events.recv_timeout(wake.saturating_duration_since(now)) {
                Ok(event) => self.handle_event(event, Instant::now()),
                Err(RecvTimeoutError::Timeout) => {}
                // The core holds a sender itself: this cannot happen, and must not spin if it did.
                Err(RecvTimeoutError::Disconnected) => std::thread::sleep(wake.saturating_duration_since(now)),
            }
        }
    }

    /// Runs the core on this thread until `publish` returns false, handing it
    /// one snapshot per round ([`AgentCore::wait_and_collect`]); sleeps in
    /// between. Requests come through [`AgentCore::handle`].
    pub fn run(mut self, mut publish: impl FnMut(HostSnapshot) -> bool) {
        loop {
            if let Some(snapshot) = self.wait_and_collect(Instant::now() + Duration::from_secs(3600)) {
                if !publish(snapshot) {
                    return;
                }
            }
        }
    }

    /// One complete snapshot for one-shot use (`snapshot`, `--once`): every
    /// collector runs, then the CPU is sampled again a moment later so that
    /// utilisation has a delta to come from.
    pub fn one_shot(config: CoreConfig) -> HostSnapshot {
        let live = config.sysroot.is_live();
        let mut core = AgentCore::new(config);
        core.collect_all();
        if live {
            std::thread::sleep(FIRST_CPU_SAMPLE);
            core.resample_cpu();
        }
        core.snapshot()
    }

    /// A snapshot of everything collected so far, with a new sequence number
    /// and every value judged against the thresholds.
    pub fn snapshot(&mut self) -> HostSnapshot {
        self.changed = false;
        self.seq += 1;
        let mut snap = self.current.clone();
        for drive in &mut snap.drives {
            drive.health = self.health.get(&drive.name).cloned();
        }
        if let (Some(reader), true) = (&mut self.privileged, self.privileged_ok) {
            if let Ok(results) = reader.read(unix_ms()) {
                results.merge_into(&mut snap);
            }
        }
        snap.seq = self.seq;
        snap.timestamp_ms = unix_ms();
        if let Some(services) = &mut snap.services {
            for s in services.iter_mut() {
                self.config.thresholds.judge_service(s, self.services_before.get(&s.name), snap.timestamp_ms);
            }
            services.sort_by(|a, b| b.status.cmp(&a.status).then_with(|| a.name.cmp(&b.name)));
            self.services_before = services.iter().map(|s| (s.name.clone(), s.clone())).collect();
        }
        for b in snap.backups.iter_mut().flatten() {
            self.config.thresholds.judge_backup(b);
        }
        snap.agent_version = AGENT_VERSION.into();
        snap.collectors = self.slots.iter().filter_map(|s| s.report.clone()).collect();
        self.config.thresholds.evaluate(&mut snap);
        snap
    }

    /// Takes in everything queued for the core, without waiting. Returns how
    /// many slow sources answered.
    fn take_events(&mut self, now: Instant) -> usize {
        let mut answered = 0;
        while let Ok(event) = self.events.try_recv() {
            answered += usize::from(matches!(event, Event::Gpu(_) | Event::Smart(_) | Event::Systemd(_)));
            self.handle_event(event, now);
        }
        answered
    }

    fn handle_event(&mut self, event: Event, now: Instant) {
        match event {
            Event::Request(Request::Refresh) => {
                for slot in &mut self.slots {
                    slot.next_due = Some(now);
                    slot.rerun = true;
                }
            }
            Event::UnitChanged => {
                let at = self.systemd_last_run.map_or(now, |t| (t + EVENT_SPACING).max(now));
                if let Some(slot) = self.slot_mut(Kind::Systemd) {
                    slot.next_due = Some(slot.next_due.map_or(at, |d| d.min(at)));
                    slot.rerun = true;
                }
            }
            Event::Gpu(answer) => {
                let Some((found, took)) = self.sources.gpu.accept(answer) else { return };
                self.current.gpus = found.gpus;
                self.answered(Kind::Gpu, took, found.error.map(|e| e.to_string()), None);
            }
            Event::Smart(answer) => {
                let Some((read, took)) = self.sources.smart.as_mut().and_then(|s| s.accept(answer)) else { return };
                let error = match read {
                    Ok(drives) => {
                        let mut fresh = BTreeMap::new();
                        for (name, mut h) in drives {
                            self.config.thresholds.judge_drive(&mut h, self.health.get(&name));
                            fresh.insert(name, h);
                        }
                        self.health = fresh;
                        None
                    }
                    Err(e) => {
                        self.health.clear();
                        Some(e.to_string())
                    }
                };
                self.answered(Kind::Smart, took, error, None);
            }
            Event::Systemd(answer) => {
                let Some((read, took)) = self.sources.systemd.as_mut().and_then(|s| s.accept(answer)) else { return };
                match read {
                    Ok(outcome) => {
                        self.current.services = outcome.services;
                        self.current.backups = outcome.backups;
                        self.answered(Kind::Systemd, took, None, outcome.note);
                    }
                    Err(e) => {
                        self.drop_data(Kind::Systemd);
                        self.answered(Kind::Systemd, took, Some(e.to_string()), None);
                    }
                }
            }
        }
    }

    fn answered(&mut self, kind: Kind, took: Duration, error: Option<String>, note: Option<String>) {
        if let Some(slot) = self.slot_mut(kind) {
            slot.report = Some(CollectorReport {
                name: kind.name().into(),
                collected_ms: unix_ms(),
                duration_us: took.as_micros() as u64,
                error,
                note,
            });
        }
        self.changed = true;
    }

    /// Reports every slow source that has just missed its deadline, and drops its data.
    fn check_deadlines(&mut self, now: Instant) {
        let missed = [
            (Kind::Gpu, self.sources.gpu.overdue(now)),
            (Kind::Smart, self.sources.smart.as_mut().and_then(|s| s.overdue(now))),
            (Kind::Systemd, self.sources.systemd.as_mut().and_then(|s| s.overdue(now))),
        ];
        for (kind, deadline) in missed {
            let Some(deadline) = deadline else { continue };
            self.drop_data(kind);
            let error = format!("did not answer within {:.1} s", deadline.as_secs_f64());
            self.answered(kind, deadline, Some(error), None);
        }
    }

    /// Forgets what a collector reported before: a snapshot never shows old data as current.
    fn drop_data(&mut self, kind: Kind) {
        let cur = &mut self.current;
        match kind {
            Kind::Host => {}
            Kind::Cpu => cur.cpu = None,
            Kind::Memory => cur.memory = None,
            Kind::Storage => {
                cur.drives.clear();
                cur.filesystems.clear();
            }
            Kind::Gpu => cur.gpus.clear(),
            Kind::Smart => self.health.clear(),
            Kind::Systemd => {
                cur.services = None;
                cur.backups = None;
            }
            Kind::Nixos => cur.nixos = None,
            Kind::Privileged => self.privileged_ok = false,
        }
    }

    /// Runs the cheap collectors due at `now` and starts the slow ones.
    /// Returns how many ran or started, and which slow sources started.
    fn start_due(&mut self, now: Instant) -> (usize, Vec<Kind>) {
        let anchor = *self.anchor.get_or_insert(now);
        let (mut ran, mut started) = (0, Vec::new());
        for i in 0..self.slots.len() {
            let slot = &self.slots[i];
            let due_at = slot.next_due.unwrap_or(now);
            if due_at > now + SLACK {
                continue;
            }
            let kind = slot.kind;
            let next = Some(next_tick(anchor, slot.interval, now.max(due_at)));
            match kind {
                Kind::Host | Kind::Cpu | Kind::Memory | Kind::Storage | Kind::Nixos | Kind::Privileged => {
                    self.run_cheap(i);
                    ran += 1;
                }
                Kind::Gpu | Kind::Smart | Kind::Systemd => match self.start_slow(kind, now) {
                    Start::Started => {
                        ran += 1;
                        started.push(kind);
                    }
                    // A run asked for out of turn waits for the thread; a scheduled
                    // one is skipped: a slow source never queues up work.
                    Start::Busy if self.slots[i].rerun => continue,
                    Start::Busy => {}
                    Start::Gone => {
                        self.drop_data(kind);
                        let error = "its collection thread is not running".to_string();
                        self.answered(kind, Duration::ZERO, Some(error), None);
                    }
                },
            }
            let slot = &mut self.slots[i];
            slot.next_due = next;
            slot.rerun = false;
        }
        (ran, started)
    }

    fn start_slow(&mut self, kind: Kind, now: Instant) -> Start {
        let started = Instant::now();
        match kind {
            Kind::Gpu => {
                let limit = self.config.nvidia_smi.as_ref().map_or(Duration::ZERO, |n| n.timeout);
                self.sources.gpu.start((), limit + DEADLINE_MARGIN, started)
            }
            Kind::Smart => {
                let (Some(source), Some(smartctl)) = (&mut self.sources.smart, &self.config.smartctl) else {
                    return Start::Gone;
                };
                let disks: Vec<String> =
                    self.current.drives.iter().filter(|d| d.kind == DriveKind::Disk).map(|d| d.name.clone()).collect();
                // smartctl's limit holds per drive.
                let limit = smartctl.timeout * disks.len().max(1) as u32;
                source.start(disks, limit + DEADLINE_MARGIN, started)
            }
            Kind::Systemd => {
                let (Some(source), Some(systemd)) = (&mut self.sources.systemd, &self.config.systemd) else {
                    return Start::Gone;
                };
                self.systemd_last_run = Some(now);
                // New walks start until disk_cycle_time and each may run its budget; a
                // stuck bus shows at the first call or two.
                let limit = systemd.disk_cycle_time + systemd.disk_budget.time + systemd.call_timeout * 2;
                source.start((), limit + DEADLINE_MARGIN, started)
            }
            Kind::Host | Kind::Cpu | Kind::Memory | Kind::Storage | Kind::Nixos | Kind::Privileged => Start::Gone,
        }
    }

    fn source_busy(&self, kind: Kind) -> bool {
        match kind {
            Kind::Gpu => self.sources.gpu.busy(),
            Kind::Smart => self.sources.smart.as_ref().is_some_and(|s| s.busy()),
            Kind::Systemd => self.sources.systemd.as_ref().is_some_and(|s| s.busy()),
            Kind::Host | Kind::Cpu | Kind::Memory | Kind::Storage | Kind::Nixos | Kind::Privileged => false,
        }
    }

    /// When the loop must look again: the next collector due (a slow source
    /// still busy is not: its answer wakes the loop), or the next deadline.
    fn next_wake(&self) -> Option<Instant> {
        let due =
            self.slots.iter().filter(|s| !self.source_busy(s.kind)).map(|s| s.next_due.unwrap_or_else(Instant::now));
        let deadlines = [
            self.sources.gpu.deadline(),
            self.sources.smart.as_ref().and_then(|s| s.deadline()),
            self.sources.systemd.as_ref().and_then(|s| s.deadline()),
        ];
        due.chain(deadlines.into_iter().flatten()).min()
    }

    /// Waits for every slow source in flight to answer or miss its deadline.
    fn settle(&mut self) {
        loop {
            let now = Instant::now();
            self.take_events(now);
            self.check_deadlines(now);
            let deadlines = [
                self.sources.gpu.deadline(),
                self.sources.smart.as_ref().and_then(|s| s.deadline()),
                self.sources.systemd.as_ref().and_then(|s| s.deadline()),
            ];
            let Some(deadline) = deadlines.into_iter().flatten().min() else { return };
            if let Ok(event) = self.events.recv_timeout(deadline.saturating_duration_since(now)) {
                self.handle_event(event, Instant::now());
            }
        }
    }

    fn slot_mut(&mut self, kind: Kind) -> Option<&mut Slot> {
        self.slots.iter_mut().find(|s| s.kind == kind)
    }

    fn run_cheap(&mut self, i: usize) {
        let kind = self.slots[i].kind;
        let started = Instant::now();
        let result = match kind {
            Kind::Privileged => self.read_privileged(),
            _ => self.collect_cheap(kind).map_err(|e| e.to_string()),
        };
        // (The privileged reader keeps results whose collectors reported errors.)
        if result.is_err() && kind != Kind::Privileged {
            self.drop_data(kind);
        }
        self.answered(kind, started.elapsed(), result.err(), None);
        // On a host that is not NixOS the collector is absent, not an error.
        if kind == Kind::Nixos && self.current.nixos.is_none() {
            if let Some(slot) = self.slot_mut(kind).filter(|s| s.report.as_ref().is_some_and(|r| r.error.is_none())) {
                slot.report = None;
            }
        }
    }

    /// Checks that the privileged collector's results are there and fresh;
    /// its own errors (a missing smartctl) are this report's.
    fn read_privileged(&mut self) -> Result<(), String> {
        let Some(reader) = &mut self.privileged else { return Ok(()) };
        let read = reader.read(unix_ms());
        self.privileged_ok = read.is_ok();
        let results = read?;
        match results.errors.is_empty() {
            true => Ok(()),
            false => Err(results.errors.join("; ")),
        }
    }

    fn collect_cheap(&mut self, kind: Kind) -> Result<(), CollectError> {
        let root = &self.config.sysroot;
        let cur = &mut self.current;
        match kind {
            Kind::Host => {
                let info = host::collect(root);
                let name = info.as_ref().map(|i| i.hostname.clone()).unwrap_or_else(|_| "unknown".into());
                cur.host = self.config.hostname.clone().unwrap_or(name);
                let info = info?;
                cur.kernel = info.kernel;
                cur.uptime_seconds = info.uptime_seconds;
            }
            Kind::Cpu => cur.cpu = Some(self.cpu.collect(root)?),
            Kind::Memory => cur.memory = Some(memory::collect(root)?),
            Kind::Storage => {
                let s = storage::collect(root)?;
                cur.drives = s.drives;
                cur.filesystems = s.filesystems;
            }
            Kind::Nixos => cur.nixos = nixos::collect(root)?,
            Kind::Gpu | Kind::Smart | Kind::Systemd | Kind::Privileged => {}
        }
        Ok(())
    }
}

impl Sources {
    fn spawn(config: &CoreConfig, inbox: &Inbox) -> Self {
        let root = config.sysroot.clone();
        let nvidia = config.nvidia_smi.clone();
        let tx = inbox.clone();
        let gpu = SlowSource::spawn(
            "cm-gpu",
            move |()| gpu::collect(&root, nvidia.as_ref()),
            move |a| tx.send(Event::Gpu(a)),
        );
        let smart = config.smartctl.clone().map(|smartctl| {
            let tx = inbox.clone();
            SlowSource::spawn(
                "cm-smart",
                move |disks: Vec<String>| {
                    disks.into_iter().map(|d| smart::read_drive(&smartctl, &d).map(|h| (d, h))).collect()
                },
                move |a| tx.send(Event::Smart(a)),
            )
        });
        let systemd = config.systemd.clone().map(|systemd| {
            let mut collector = SystemdCollector::new(systemd);
            let changed = inbox.clone();
            collector.set_waker(Arc::new(move || {
                changed.send(Event::UnitChanged);
            }));
            let (root, tx) = (config.sysroot.clone(), inbox.clone());
            SlowSource::spawn("cm-systemd", move |()| collector.collect(&root), move |a| tx.send(Event::Systemd(a)))
        });
        Self { gpu, smart, systemd }
    }
}

/// The first of `anchor`, `anchor + interval`, `anchor + 2 interval`... after `now`.
fn next_tick(anchor: Instant, interval: Duration, now: Instant) -> Instant {
    let interval_ns = interval.as_nanos().max(1);
    let ticks = now.saturating_duration_since(anchor).as_nanos() / interval_ns + 1;
    anchor + Duration::from_nanos(u64::try_from(ticks * interval_ns).unwrap_or(u64::MAX))
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn captured() -> SysRoot {
        SysRoot::at(concat!(env!("CARGO_MANIFEST_DIR"), "/../cm-collect/testdata/debian-vm"))
    }

    /// Runs what is due at `now` and waits for the slow sources it started,
    /// so that a test driving the clock by hand sees their answers.
    fn due_and_settled(core: &mut AgentCore, now: Instant) -> usize {
        let ran = core.collect_due(now);
        core.settle();
        ran
    }

    #[test]
    fn each_collector_runs_on_its_own_interval() {
        let mut core = AgentCore::new(CoreConfig::for_sysroot(captured()));
        let t0 = Instant::now();
        assert_eq!(due_and_settled(&mut core, t0), 6, "everything runs first");
        assert_eq!(due_and_settled(&mut core, t0), 0);
        assert_eq!(due_and_settled(&mut core, t0 + Duration::from_secs(2)), 2, "cpu and memory every 2 s");
        assert_eq!(due_and_settled(&mut core, t0 + Duration::from_secs(5)), 3, "gpu at 5 s, cpu and memory again");
        assert_eq!(due_and_settled(&mut core, t0 + Duration::from_secs(10)), 6, "host, storage and nixos at 10 s");
        assert_eq!(core.interval(), Duration::from_secs(2));
    }

    #[test]
    fn collectors_due_together_share_a_round_even_when_the_loop_wakes_late() {
        // cpu and memory every 2 s, gpu every 5 s, host, storage and nixos every 10 s;
        // a loop that wakes at each next_due() a little late, as real ones do.
        let mut core = AgentCore::new(CoreConfig::for_sysroot(captured()));
        let t0 = Instant::now();
        due_and_settled(&mut core, t0);
        let mut rounds = Vec::new();
        loop {
            let now = core.next_due() + Duration::from_millis(3);
            if now > t0 + Duration::from_millis(10_500) {
                break;
            }
            let ran = due_and_settled(&mut core, now);
            rounds.push((now.duration_since(t0).as_secs(), ran));
        }
        // Schedules kept to whole intervals from the start, so lateness never
        // splits the 10 s round into several a few milliseconds apart.
        assert_eq!(rounds, [(2, 2), (4, 2), (5, 1), (6, 2), (8, 2), (10, 6)]);
    }

    #[test]
    fn snapshots_are_numbered_and_named() {
        let mut core =
            AgentCore::new(CoreConfig { hostname: Some("srv01".into()), ..CoreConfig::for_sysroot(captured()) });
        core.collect_all();
        let a = core.snapshot();
        let b = core.snapshot();
        assert_eq!((a.seq, b.seq), (1, 2));
        assert_eq!(a.host, "srv01");
        assert_eq!(a.kernel, "6.18.44-fc-v669");
        assert_eq!(a.agent_version, AGENT_VERSION);
        assert_eq!(a.collectors.len(), 5);
    }

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("cm-core-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// An executable shell script standing in for `tool`.
    fn fake_tool(name: &str, tool: &str, script: &str) -> String {
        use std::os::unix::fs::PermissionsExt;
        let path = scratch(&format!("{name}-{tool}")).join(tool);
        std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.to_string_lossy().into_owned()
    }

    fn fake_smartctl(name: &str, script: &str) -> Smartctl {
        Smartctl { program: fake_tool(name, "smartctl", script), timeout: Duration::from_secs(5) }
    }

    #[test]
    fn smart_health_is_attached_to_its_drive_and_judged_against_the_last_reading() {
        let capture =
            concat!(env!("CARGO_MANIFEST_DIR"), "/../cm-collect/testdata/smart/scrutiny/smart-nvme-failed.json");
        // The first reading shows 5 media errors, later ones the capture's 7.
        let state = std::env::temp_dir().join(format!("cm-core-smart-state-{}", std::process::id()));
        let _ = std::fs::remove_file(&state);
        let script = format!(
            "if [ -e '{s}' ]; then cat '{c}'; else touch '{s}'; sed 's/\"media_errors\": 7/\"media_errors\": 5/' '{c}'; fi",
            s = state.display(),
            c = capture
        );
        let config =
            CoreConfig { smartctl: Some(fake_smartctl("smart", &script)), ..CoreConfig::for_sysroot(captured()) };
        let mut core = AgentCore::new(config);
        core.collect_all();
        let first = core.snapshot();
        let vda = first.drives.iter().find(|d| d.name == "vda").unwrap();
        let health = vda.health.as_ref().expect("SMART read for vda");
        assert_eq!(health.media_errors, Some(5));
        assert_eq!(health.verdict, cm_proto::Status::Warning);
        assert_eq!(vda.status, cm_proto::Status::Warning, "the drive row takes its health verdict");

        core.collect_all();
        let second = core.snapshot();
        let health = second.drives[0].health.as_ref().unwrap();
        assert_eq!(health.verdict, cm_proto::Status::Critical);
        assert_eq!(health.findings[0].text, "media errors grew from 5 to 7: the drive is losing data");
    }

    #[test]
    fn a_missing_smartctl_is_one_collector_error() {
        let smartctl = Smartctl { program: "/nonexistent/smartctl".into(), ..Default::default() };
        let mut core = AgentCore::new(CoreConfig { smartctl: Some(smartctl), ..CoreConfig::for_sysroot(captured()) });
        core.collect_all();
        let snap = core.snapshot();
        assert!(snap.collector("smart").unwrap().error.as_deref().unwrap().contains("install smartmontools"));
        assert!(snap.drives.iter().all(|d| d.health.is_none()));
        assert!(snap.collector("storage").unwrap().error.is_none());
    }

    #[test]
    fn a_failing_collector_drops_its_stale_data_and_the_others_go_on() {
        let dir = std::env::temp_dir().join(format!("cm-core-fail-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("proc")).unwrap();
        for f in ["meminfo", "loadavg", "stat"] {
            std::fs::copy(captured().path(&format!("/proc/{f}")), dir.join("proc").join(f)).unwrap();
        }
        let mut core = AgentCore::new(CoreConfig::for_sysroot(SysRoot::at(&dir)));
        core.collect_all();
        assert!(core.snapshot().memory.is_some());
        std::fs::write(dir.join("proc/meminfo"), "truncated").unwrap();
        core.collect_all();
        let snap = core.snapshot();
        assert!(snap.memory.is_none(), "stale memory figures are not shown as current");
        assert!(snap.collector("memory").unwrap().error.as_deref().unwrap().contains("meminfo"));
        assert!(snap.cpu.is_some(), "cpu still collected");
        assert!(snap.collector("cpu").unwrap().error.is_none());
    }

    fn every(interval: Duration) -> Intervals {
        Intervals {
            cpu: interval,
            memory: interval,
            storage: interval,
            gpu: interval,
            smart: interval,
            services: interval,
        }
    }

    /// The debian-vm capture, plus the NVIDIA driver's /proc entry so that
    /// nvidia-smi is asked.
    fn with_nvidia_driver(name: &str) -> SysRoot {
        let dir = scratch(name);
        let capture = captured().path("/");
        std::fs::create_dir_all(dir.join("proc/driver/nvidia")).unwrap();
        std::fs::write(dir.join("proc/driver/nvidia/version"), "NVRM version: 535.154.05\n").unwrap();
        for entry in std::fs::read_dir(capture.join("proc")).unwrap() {
            let entry = entry.unwrap();
            std::os::unix::fs::symlink(entry.path(), dir.join("proc").join(entry.file_name())).unwrap();
        }
        std::os::unix::fs::symlink(capture.join("sys"), dir.join("sys")).unwrap();
        SysRoot::at(dir)
    }

    /// Creates its file when dropped: the fake tools below wait for it.
    struct Release(std::path::PathBuf);

    impl Drop for Release {
        fn drop(&mut self) {
            let _ = std::fs::write(&self.0, "");
        }
    }

    #[test]
    fn cpu_and_memory_stay_on_time_while_smartctl_and_nvidia_smi_hang() {
        let dir = scratch("hanging-tools");
        let release = Release(dir.join("release"));
        // Each tool says it started, then hangs until released (a minute at most).
        let hang = |tool: &str| {
            format!(
                "touch '{d}/{tool}.started'; i=0; while [ ! -e '{d}/release' ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done",
                d = dir.display()
            )
        };
        let limit = Duration::from_secs(120);
        let config = CoreConfig {
            intervals: every(Duration::from_millis(200)),
            nvidia_smi: Some(NvidiaSmi {
                program: fake_tool("hang", "nvidia-smi", &hang("nvidia-smi")),
                timeout: limit,
            }),
            smartctl: Some(Smartctl { program: fake_tool("hang", "smartctl", &hang("smartctl")), timeout: limit }),
            ..CoreConfig::for_sysroot(with_nvidia_driver("hanging-tools-root"))
        };
        let mut core = AgentCore::new(config);
        let deadline = Instant::now() + Duration::from_secs(60);
        let (mut last, mut fresh, mut seq) = (None, 0, 0);
        let both_started = || ["nvidia-smi", "smartctl"].iter().all(|t| dir.join(format!("{t}.started")).exists());
        while fresh < 5 {
            assert!(Instant::now() < deadline, "cpu and memory stalled: {fresh} fresh readings");
            let Some(snap) = core.wait_and_collect(deadline) else { continue };
            assert!(snap.seq > seq);
            seq = snap.seq;
            let at = |name: &str| snap.collector(name).map(|c| c.collected_ms);
            let now = (at("cpu").expect("cpu reported"), at("memory").expect("memory reported"));
            // Counted only once both tools are known to be hanging.
            if both_started() && last.is_some_and(|(cpu, mem)| now.0 > cpu && now.1 > mem) {
                fresh += 1;
            }
            last = Some(now);
            assert!(snap.cpu.is_some() && snap.memory.is_some());
            assert!(at("gpu").is_none() && at("smart").is_none(), "the hanging tools never answered");
        }
        drop(release);
    }

    /// A unix socket that accepts one connection and never says a word, so
    /// that a D-Bus client waits in its handshake, until `hang_up` is dropped.
    fn mute_socket(name: &str) -> (String, Sender<()>) {
        let path = scratch(name).join("bus");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let (hang_up, wait) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            let held = listener.accept();
            let _ = wait.recv();
            drop(held);
        });
        (format!("unix:path={}", path.display()), hang_up)
    }

    #[test]
    fn a_source_past_its_deadline_is_reported_and_its_old_data_dropped() {
        let (address, hang_up) = mute_socket("mute-bus");
        let systemd = SystemdConfig {
            address: Some(address),
            call_timeout: Duration::from_millis(200),
            disk_cycle_time: Duration::from_millis(100),
            disk_budget: cm_collect::du::Budget { time: Duration::from_millis(100), ..Default::default() },
            ..Default::default()
        };
        let config = CoreConfig {
            intervals: every(Duration::from_millis(200)),
            systemd: Some(systemd),
            ..CoreConfig::for_sysroot(captured())
        };
        let mut core = AgentCore::new(config);
        // As if an earlier collection had found these: they must not outlive the deadline.
        core.current.services = Some(vec![Service { name: "gitea.service".into(), ..Default::default() }]);
        core.current.backups = Some(vec![cm_proto::Backup { name: "b2".into(), ..Default::default() }]);
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut before = 0;
        let report = loop {
            assert!(Instant::now() < deadline, "systemd was never reported late");
            let Some(snap) = core.wait_and_collect(deadline) else { continue };
            assert!(snap.cpu.is_some(), "cpu goes on meanwhile");
            match snap.collector("systemd") {
                Some(report) => {
                    assert_eq!((snap.services.as_ref(), snap.backups.as_ref()), (None, None), "old data dropped");
                    break report.clone();
                }
                None => before += 1,
            }
        };
        // 0.1 s of walks, their 0.1 s budget, two calls of 0.2 s and the margin.
        assert_eq!(report.error.as_deref(), Some("did not answer within 2.6 s"));
        assert!(before >= 2, "cpu and memory rounds went on while systemd hung ({before})");
        drop(hang_up);
    }

    #[test]
    fn a_refresh_request_collects_everything_at_once() {
        let mut core = AgentCore::new(CoreConfig {
            intervals: every(Duration::from_secs(3600)),
            ..CoreConfig::for_sysroot(captured())
        });
        let first = core.wait_and_collect(Instant::now() + Duration::from_secs(60)).expect("the first round");
        assert!(core.wait_and_collect(Instant::now()).is_none(), "nothing is due for an hour");
        assert!(core.handle().request(Request::Refresh));
        // Without the request this would wait the whole minute and return None.
        let again = core.wait_and_collect(Instant::now() + Duration::from_secs(60)).expect("refreshed at once");
        assert_eq!(again.seq, first.seq + 1);
        assert_eq!(again.collectors.len(), 5);
    }

    /// user + system CPU time of the calling thread, in clock ticks (1/100 s).
    fn thread_cpu_ticks() -> u64 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split_whitespace().collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }

    #[test]
    fn an_idle_core_sleeps_until_its_next_round() {
        // No systemd, so nothing but the schedule (and requests) can wake it.
        let config = CoreConfig { intervals: every(Duration::from_secs(3600)), ..CoreConfig::for_sysroot(captured()) };
        assert!(config.systemd.is_none());
        let mut core = AgentCore::new(config);
        core.wait_and_collect(Instant::now() + Duration::from_secs(60)).expect("the first round");
        let (ticks, start) = (thread_cpu_ticks(), Instant::now());
        assert!(core.wait_and_collect(start + Duration::from_secs(1)).is_none());
        assert!(start.elapsed() >= Duration::from_secs(1), "returned early");
        // A defect guard, not a benchmark: a spinning loop burns ~100 ticks a second.
        let used = thread_cpu_ticks() - ticks;
        assert!(used < 5, "the idle loop used {used} ticks in a second");
    }

    #[test]
    fn slow_sources_answering_in_time_share_the_snapshot_of_their_round() {
        // gpu is a slow source (it runs on its own thread) due with cpu every round.
        let mut core = AgentCore::new(CoreConfig {
            intervals: every(Duration::from_millis(500)),
            ..CoreConfig::for_sysroot(captured())
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut snaps = Vec::new();
        while snaps.len() < 6 {
            assert!(Instant::now() < deadline);
            snaps.extend(core.wait_and_collect(deadline));
        }
        let cpu_at = |s: &HostSnapshot| s.collector("cpu").unwrap().collected_ms;
        // A snapshot of a gpu answer alone would carry the round's cpu reading again.
        let repeats = snaps.windows(2).filter(|w| cpu_at(&w[1]) == cpu_at(&w[0])).count();
        // One is forgiven: a loaded machine may schedule the gpu thread late.
        assert!(repeats <= 1, "{repeats} of 5 snapshots had no round of their own");
        assert!(snaps.iter().skip(1).all(|s| s.collector("gpu").is_some()));
    }
}

#[cfg(test)]
mod nixos_and_privileged_tests {
    use super::*;

    fn tree(name: &str) -> SysRoot {
        SysRoot::at(format!("{}/../cm-collect/testdata/nixos/{name}", env!("CARGO_MANIFEST_DIR")))
    }

    #[test]
    fn a_nixos_host_reports_its_state_and_another_host_no_nixos_collector() {
        let mut core = AgentCore::new(CoreConfig::for_sysroot(tree("new-kernel")));
        core.collect_all();
        let snap = core.snapshot();
        let nixos = snap.nixos.as_ref().expect("a NixOS tree");
        assert!(nixos.reboot_needed, "{nixos:?}");
        assert!(snap.collector("nixos").is_some_and(|r| r.error.is_none()));

        let debian = SysRoot::at(concat!(env!("CARGO_MANIFEST_DIR"), "/../cm-collect/testdata/debian-vm"));
        let mut core = AgentCore::new(CoreConfig::for_sysroot(debian));
        core.collect_all();
        let snap = core.snapshot();
        assert!(snap.nixos.is_none());
        assert!(snap.collector("nixos").is_none(), "absent, not an error");
    }

    #[test]
    fn the_privileged_collectors_results_reach_the_snapshot_and_their_absence_is_reported() {
        let dir = std::env::temp_dir().join(format!("cm-core-privileged-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("results.cbor");
        let _ = std::fs::remove_file(&path);
        let debian = SysRoot::at(concat!(env!("CARGO_MANIFEST_DIR"), "/../cm-collect/testdata/debian-vm"));
        let config = CoreConfig { privileged_results: Some(path.clone()), ..CoreConfig::for_sysroot(debian) };
        let mut core = AgentCore::new(config);
        core.collect_all();
        let snap = core.snapshot();
        let report = snap.collector("privileged").expect("a report");
        assert!(report.error.as_deref().unwrap().contains("cm-agent-collector.service"), "{report:?}");

        let mut results =
            crate::privileged::Results { written_ms: unix_ms(), interval_ms: 30_000, ..Default::default() };
        let health = DriveHealth { wear_percent: Some(12.0), ..Default::default() };
        results.drives.insert("vda".into(), health);
        crate::privileged::write(&path, &results).unwrap();
        core.collect_all();
        let snap = core.snapshot();
        assert!(snap.collector("privileged").unwrap().error.is_none());
        let vda = snap.drives.iter().find(|d| d.name == "vda").unwrap();
        assert_eq!(vda.health.as_ref().and_then(|h| h.wear_percent), Some(12.0));

        // Its collectors' errors are reported, and what it did collect is still used.
        results.errors = vec!["smart: smartctl: not found".into()];
        results.written_ms = unix_ms();
        crate::privileged::write(&path, &results).unwrap();
        core.collect_all();
        let snap = core.snapshot();
        assert_eq!(snap.collector("privileged").unwrap().error.as_deref(), Some("smart: smartctl: not found"));
        assert!(snap.drives.iter().find(|d| d.name == "vda").unwrap().health.is_some());
    }
}
