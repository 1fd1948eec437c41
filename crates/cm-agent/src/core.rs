//! The agent core: runs each collector on its own interval and assembles
//! snapshots. A collector that fails reports its error in the snapshot; the
//! others go on.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cm_collect::cpu::CpuCollector;
use cm_collect::gpu::NvidiaSmi;
use cm_collect::smart::Smartctl;
use cm_collect::systemd::{SystemdCollector, SystemdConfig, Waker};
use cm_collect::{gpu, host, memory, smart, storage, CollectError, SysRoot};
use cm_proto::{CollectorReport, DriveHealth, DriveKind, HostSnapshot, Service};

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
}

impl Default for Intervals {
    fn default() -> Self {
        Self {
            cpu: Duration::from_secs(2),
            memory: Duration::from_secs(2),
            storage: Duration::from_secs(10),
            gpu: Duration::from_secs(5),
            smart: Duration::from_secs(30 * 60),
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Host,
    Cpu,
    Memory,
    Storage,
    Gpu,
    Smart,
    Systemd,
}

impl Kind {
    /// In run order: SMART reads the drives that storage found.
    const ALL: [Kind; 7] = [Kind::Host, Kind::Cpu, Kind::Memory, Kind::Storage, Kind::Gpu, Kind::Smart, Kind::Systemd];

    fn name(self) -> &'static str {
        match self {
            Kind::Host => "host",
            Kind::Cpu => "cpu",
            Kind::Memory => "memory",
            Kind::Storage => "storage",
            Kind::Gpu => "gpu",
            Kind::Smart => "smart",
            Kind::Systemd => "systemd",
        }
    }
}

#[derive(Debug)]
struct Slot {
    kind: Kind,
    interval: Duration,
    next_due: Option<Instant>,
    report: CollectorReport,
}

/// Runs the collectors and assembles snapshots.
#[derive(Debug)]
pub struct AgentCore {
    config: CoreConfig,
    cpu: CpuCollector,
    /// Drive health by drive name, kept between the (rare) SMART runs.
    health: BTreeMap<String, DriveHealth>,
    systemd: Option<SystemdCollector>,
    /// The previous sample of each service, to tell new OOM kills from old ones.
    services_before: BTreeMap<String, Service>,
    /// When the services were last read, so that a burst of unit signals
    /// costs one read per `EVENT_SPACING`, not one per signal.
    systemd_last_run: Option<Instant>,
    slots: Vec<Slot>,
    current: HostSnapshot,
    seq: u64,
}

impl AgentCore {
    /// A core that has not collected anything yet.
    pub fn new(config: CoreConfig) -> Self {
        let slots = Kind::ALL
            .into_iter()
            .filter(|kind| *kind != Kind::Smart || config.smartctl.is_some())
            .filter(|kind| *kind != Kind::Systemd || config.systemd.is_some())
            .map(|kind| Slot {
                kind,
                interval: match kind {
                    Kind::Host => config.intervals.storage,
                    Kind::Cpu => config.intervals.cpu,
                    Kind::Memory => config.intervals.memory,
                    Kind::Storage => config.intervals.storage,
                    Kind::Gpu => config.intervals.gpu,
                    Kind::Smart => config.intervals.smart,
                    Kind::Systemd => config.intervals.cpu,
                },
                next_due: None,
                report: CollectorReport { name: kind.name().into(), ..Default::default() },
            })
            .collect();
        let systemd = config.systemd.clone().map(SystemdCollector::new);
        Self {
            config,
            cpu: CpuCollector::default(),
            health: BTreeMap::new(),
            systemd,
            services_before: BTreeMap::new(),
            systemd_last_run: None,
            slots,
            current: HostSnapshot::default(),
            seq: 0,
        }
    }

    /// The shortest collector interval: how often snapshots change.
    pub fn interval(&self) -> Duration {
        self.slots.iter().map(|s| s.interval).min().unwrap_or(Duration::from_secs(2))
    }

    /// When the next collector is due.
    pub fn next_due(&self) -> Instant {
        self.slots.iter().map(|s| s.next_due.unwrap_or_else(Instant::now)).min().unwrap_or_else(Instant::now)
    }

    /// Asks to be woken (from another thread) when a systemd unit changes, so
    /// that [`AgentCore::collect_due`] can read it at once.
    pub fn set_waker(&mut self, waker: Waker) {
        if let Some(s) = &mut self.systemd {
            s.set_waker(waker);
        }
    }

    /// Runs every collector that is due at `now`. Returns how many ran.
    pub fn collect_due(&mut self, now: Instant) -> usize {
        const EVENT_SPACING: Duration = Duration::from_millis(200);
        if self.systemd.as_ref().is_some_and(|s| s.take_changed()) {
            let at = self.systemd_last_run.map_or(now, |t| (t + EVENT_SPACING).max(now));
            if let Some(slot) = self.slots.iter_mut().find(|s| s.kind == Kind::Systemd) {
                slot.next_due = Some(slot.next_due.map_or(at, |d| d.min(at)));
            }
        }
        let due: Vec<usize> =
            (0..self.slots.len()).filter(|&i| self.slots[i].next_due.is_none_or(|t| t <= now)).collect();
        for &i in &due {
            self.run(i, now);
        }
        due.len()
    }

    /// Runs every collector now, whatever its schedule.
    pub fn collect_all(&mut self) {
        let now = Instant::now();
        for i in 0..self.slots.len() {
            self.run(i, now);
        }
    }

    /// Runs the CPU collector again, e.g. shortly after `collect_all` so that
    /// a one-shot snapshot has a utilisation figure.
    pub fn resample_cpu(&mut self) {
        if let Some(i) = self.slots.iter().position(|s| s.kind == Kind::Cpu) {
            self.run(i, Instant::now());
        }
    }

    fn run(&mut self, i: usize, now: Instant) {
        let kind = self.slots[i].kind;
        let started = Instant::now();
        let result = self.collect(kind);
        let slot = &mut self.slots[i];
        slot.next_due = Some(now + slot.interval);
        slot.report.collected_ms = unix_ms();
        slot.report.duration_us = started.elapsed().as_micros() as u64;
        slot.report.error = result.err().map(|e| e.to_string());
    }

    fn collect(&mut self, kind: Kind) -> Result<(), CollectError> {
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
            // On error the stale value is dropped: a snapshot never shows old data as current.
            Kind::Cpu => cur.cpu = Some(self.cpu.collect(root).inspect_err(|_| cur.cpu = None)?),
            Kind::Memory => cur.memory = Some(memory::collect(root).inspect_err(|_| cur.memory = None)?),
            Kind::Storage => {
                let s = storage::collect(root).inspect_err(|_| {
                    cur.drives.clear();
                    cur.filesystems.clear();
                })?;
                cur.drives = s.drives;
                cur.filesystems = s.filesystems;
            }
            Kind::Gpu => {
                // A failing nvidia-smi leaves the AMD and Intel GPUs to show, and is the error.
                let found = gpu::collect(root, self.config.nvidia_smi.as_ref());
                cur.gpus = found.gpus;
                if let Some(e) = found.error {
                    return Err(e);
                }
            }
            Kind::Systemd => {
                let Some(collector) = &mut self.systemd else { return Ok(()) };
                self.systemd_last_run = Some(Instant::now());
                let outcome = collector.collect(root).inspect_err(|_| cur.services = None)?;
                cur.services = outcome.services;
                cur.backups = outcome.backups;
                if let Some(i) = self.slots.iter().position(|s| s.kind == Kind::Systemd) {
                    self.slots[i].report.note = outcome.note;
                }
            }
            Kind::Smart => {
                let Some(smartctl) = &self.config.smartctl else { return Ok(()) };
                let disks: Vec<String> =
                    cur.drives.iter().filter(|d| d.kind == DriveKind::Disk).map(|d| d.name.clone()).collect();
                let mut fresh = BTreeMap::new();
                for name in disks {
                    let mut h = smart::read_drive(smartctl, &name).inspect_err(|_| self.health.clear())?;
                    self.config.thresholds.judge_drive(&mut h, self.health.get(&name));
                    fresh.insert(name, h);
                }
                self.health = fresh;
            }
        }
        Ok(())
    }

    /// One complete snapshot for one-shot use (`snapshot`, `--once`): every
    /// collector runs, then the CPU is sampled again a moment later so that
    /// utilisation has a delta to come from.
    pub fn one_shot(config: CoreConfig) -> HostSnapshot {
        let live = config.sysroot.is_live();
        let mut core = AgentCore::new(config);
        core.collect_all();
        if live {
            std::thread::sleep(Duration::from_millis(250));
            core.resample_cpu();
        }
        core.snapshot()
    }

    /// A snapshot of everything collected so far, with a new sequence number
    /// and every value judged against the thresholds.
    pub fn snapshot(&mut self) -> HostSnapshot {
        self.seq += 1;
        let mut snap = self.current.clone();
        for drive in &mut snap.drives {
            drive.health = self.health.get(&drive.name).cloned();
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
        snap.collectors = self.slots.iter().filter(|s| s.next_due.is_some()).map(|s| s.report.clone()).collect();
        self.config.thresholds.evaluate(&mut snap);
        snap
    }
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

    #[test]
    fn each_collector_runs_on_its_own_interval() {
        let mut core = AgentCore::new(CoreConfig::for_sysroot(captured()));
        let t0 = Instant::now();
        assert_eq!(core.collect_due(t0), 5, "everything runs first");
        assert_eq!(core.collect_due(t0), 0);
        assert_eq!(core.collect_due(t0 + Duration::from_secs(2)), 2, "cpu and memory every 2 s");
        assert_eq!(core.collect_due(t0 + Duration::from_secs(5)), 3, "gpu at 5 s, cpu and memory again");
        assert_eq!(core.collect_due(t0 + Duration::from_secs(10)), 5, "host and storage at 10 s");
        assert_eq!(core.interval(), Duration::from_secs(2));
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

    fn fake_smartctl(name: &str, script: &str) -> Smartctl {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("cm-core-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("smartctl");
        std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        Smartctl { program: path.to_string_lossy().into_owned(), timeout: Duration::from_secs(5) }
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
}
