//! systemd units over D-Bus: state, restarts, memory against limits, CPU,
//! tasks and IO from systemd; OOM kills and throttling from the unit's
//! cgroup; disk usage of the unit's own directories, measured natively.
//!
//! State changes are pushed: a watcher thread subscribes to systemd's signals
//! and wakes the agent, so a unit that fails shows in the next snapshot
//! instead of at the next poll. Resource figures are sampled on the interval.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cm_proto::{Backup, Service};
use zbus::blocking::{Connection, MessageIterator};
use zbus::zvariant::{OwnedObjectPath, OwnedValue};

use crate::cgroup;
use crate::du::{self, Budget};
use crate::error::CollectError;
use crate::sysroot::SysRoot;

const DEST: &str = "org.freedesktop.systemd1";
const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
const PROPERTIES: &str = "org.freedesktop.DBus.Properties";

/// Which units to watch and where to find their files.
#[derive(Debug, Clone)]
pub struct SystemdConfig {
    /// D-Bus address of the system bus; `None` uses the standard one
    /// (`DBUS_SYSTEM_BUS_ADDRESS` or `/run/dbus/system_bus_socket`).
    pub address: Option<String>,
    /// Glob patterns (`*`, `?`) of loaded units to watch. Failed units are
    /// always watched, whatever their name.
    pub patterns: Vec<String>,
    /// Units watched by name even when not loaded (the NixOS module lists them).
    pub units: Vec<String>,
    /// Extra directories to measure per unit, beyond its own.
    pub extra_paths: BTreeMap<String, Vec<PathBuf>>,
    /// How often a directory is measured again.
    pub disk_interval: Duration,
    /// Limits of one directory walk.
    pub disk_budget: Budget,
    /// Time for all walks of one collection; the rest wait for the next one.
    pub disk_cycle_time: Duration,
    /// Backup jobs run by systemd units (NixOS restic and borgbackup jobs).
    pub backups: Vec<BackupJob>,
    /// How long one D-Bus call may wait for its answer: a stuck systemd or
    /// dbus-daemon is an error after this, not a collector that waits forever.
    pub call_timeout: Duration,
    /// Whether to walk the units' directories. An agent without privilege
    /// lists them only; the privileged collector measures them.
    pub measure_disks: bool,
}

/// A backup job the agent reports on.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupJob {
    pub name: String,
    /// `restic`, `borg`...
    pub kind: String,
    /// The service that runs it, e.g. `restic-backups-b2.service`.
    pub unit: String,
    /// The timer that starts it; the service's own `.timer` when `None`.
    pub timer: Option<String>,
}

impl Default for SystemdConfig {
    fn default() -> Self {
        Self {
            address: None,
            patterns: vec!["*.service".into()],
            units: Vec::new(),
            extra_paths: BTreeMap::new(),
            disk_interval: Duration::from_secs(600),
            disk_budget: Budget::default(),
            disk_cycle_time: Duration::from_secs(5),
            backups: Vec::new(),
            call_timeout: Duration::from_secs(5),
            measure_disks: true,
        }
    }
}

/// What one collection found.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Outcome {
    /// `None` when systemd is not available on this host.
    pub services: Option<Vec<Service>>,
    /// Why there are no services, when systemd is not available.
    pub note: Option<String>,
    /// The configured backup jobs; `None` when there are none (or no systemd).
    pub backups: Option<Vec<Backup>>,
}

/// Called from the watcher thread when a unit changed.
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// Reads units from systemd and keeps what it needs between samples.
pub struct SystemdCollector {
    config: SystemdConfig,
    conn: Option<Connection>,
    /// Set by the watcher thread on any unit change; cleared by `take_changed`.
    changed: Arc<AtomicBool>,
    watcher_alive: Arc<AtomicBool>,
    /// Shared with the watcher thread, so a waker set later still reaches it.
    waker: Arc<Mutex<Option<Waker>>>,
    cpu: HashMap<String, (u64, Instant)>,
    disk: HashMap<PathBuf, (Instant, Result<du::Usage, String>)>,
}

impl std::fmt::Debug for SystemdCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SystemdCollector")
            .field("config", &self.config)
            .field("connected", &self.conn.is_some())
            .finish()
    }
}

/// True if `name` matches the glob `pattern` (`*` any run, `?` one character).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some(('*', rest)) => (0..=n.len()).any(|i| go(rest, &n[i..])),
            Some(('?', rest)) => !n.is_empty() && go(rest, &n[1..]),
            Some((c, rest)) => n.first() == Some(c) && go(rest, &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

/// `u64::MAX` is systemd's "not set" / "infinity".
fn set(v: Option<u64>) -> Option<u64> {
    v.filter(|v| *v != u64::MAX)
}

type Props = HashMap<String, OwnedValue>;

fn prop_str(p: &Props, key: &str) -> Option<String> {
    p.get(key).and_then(|v| v.downcast_ref::<&str>().ok()).map(str::to_owned)
}

fn prop_u64(p: &Props, key: &str) -> Option<u64> {
    p.get(key).and_then(|v| v.downcast_ref::<u64>().ok())
}

fn prop_u32(p: &Props, key: &str) -> Option<u32> {
    p.get(key).and_then(|v| v.downcast_ref::<u32>().ok())
}

fn prop_strings(p: &Props, key: &str) -> Vec<String> {
    p.get(key).and_then(|v| v.try_clone().ok()).and_then(|v| Vec::<String>::try_from(v).ok()).unwrap_or_default()
}

fn connect(address: Option<&str>, call_timeout: Duration) -> zbus::Result<Connection> {
    let builder = match address {
        Some(a) => zbus::blocking::connection::Builder::address(a)?,
        None => zbus::blocking::connection::Builder::system()?,
    };
    // Bounds every call, not the handshake: zbus waits for the bus's answer to
    // Hello with no limit, so a bus that accepts and then says nothing holds
    // this. The agent's deadline on the whole systemd collection covers that.
    builder.method_timeout(call_timeout).build()
}

/// zbus reports a call that got no answer within the method timeout as an
/// I/O error of kind `TimedOut`.
fn is_timeout(e: &zbus::Error) -> bool {
    matches!(e, zbus::Error::InputOutput(io) if io.kind() == std::io::ErrorKind::TimedOut)
}

impl SystemdCollector {
    pub fn new(config: SystemdConfig) -> Self {
        Self {
            config,
            conn: None,
            changed: Arc::new(AtomicBool::new(false)),
            watcher_alive: Arc::new(AtomicBool::new(false)),
            waker: Arc::new(Mutex::new(None)),
            cpu: HashMap::new(),
            disk: HashMap::new(),
        }
    }

    /// Asks to be told (from another thread) when a unit changes.
    pub fn set_waker(&mut self, waker: Waker) {
        *self.waker.lock().unwrap_or_else(|e| e.into_inner()) = Some(waker);
    }

    /// True once after a unit changed since the last call.
    pub fn take_changed(&self) -> bool {
        self.changed.swap(false, Ordering::AcqRel)
    }

    fn call<B>(&self, path: &str, iface: &str, method: &str, body: &B) -> zbus::Result<zbus::Message>
    where
        B: serde::Serialize + zbus::zvariant::DynamicType,
    {
        let conn = self.conn.as_ref().ok_or_else(|| zbus::Error::Failure("not connected".into()))?;
        conn.call_method(Some(DEST), path, Some(iface), method, body)
    }

    fn get_all(&self, path: &str, iface: &str) -> zbus::Result<Props> {
        self.call(path, PROPERTIES, "GetAll", &(iface,))?.body().deserialize()
    }

    /// Starts the thread that turns systemd's signals into wake-ups.
    fn spawn_watcher(&self) {
        if self.watcher_alive.swap(true, Ordering::AcqRel) {
            return;
        }
        let (address, changed, alive, waker) =
            (self.config.address.clone(), self.changed.clone(), self.watcher_alive.clone(), self.waker.clone());
        let call_timeout = self.config.call_timeout;
        let spawned = std::thread::Builder::new().name("systemd-watch".into()).spawn(move || {
            let run = || -> zbus::Result<()> {
                let conn = connect(address.as_deref(), call_timeout)?;
                // systemd only emits unit signals to clients that subscribed.
                conn.call_method(Some(DEST), MANAGER_PATH, Some(MANAGER), "Subscribe", &())?;
                let rule = zbus::MatchRule::builder()
                    .msg_type(zbus::message::Type::Signal)
                    .sender(DEST)?
                    .path_namespace(MANAGER_PATH)?
                    .build();
                for msg in MessageIterator::for_match_rule(rule, &conn, Some(256))? {
                    let msg = msg?;
                    let member = msg.header().member().map(|m| m.to_string()).unwrap_or_default();
                    if matches!(member.as_str(), "PropertiesChanged" | "UnitNew" | "UnitRemoved" | "JobRemoved") {
                        changed.store(true, Ordering::Release);
                        let waker = waker.lock().unwrap_or_else(|e| e.into_inner()).clone();
                        if let Some(w) = waker {
                            w();
                        }
                    }
                }
                Ok(())
            };
            let _ = run();
            alive.store(false, Ordering::Release);
        });
        if spawned.is_err() {
            self.watcher_alive.store(false, Ordering::Release);
        }
    }

    /// Reads the watched units. A host without systemd or without a system
    /// bus is not an error: [`Outcome::note`] says why there are no services.
    pub fn collect(&mut self, root: &SysRoot) -> Result<Outcome, CollectError> {
        if self.conn.is_none() {
            match connect(self.config.address.as_deref(), self.config.call_timeout) {
                Ok(c) => self.conn = Some(c),
                // A bus that is there but does not answer is a fault, not an absent systemd.
                Err(e) if is_timeout(&e) => return Err(self.error(&e)),
                Err(e) => {
                    return Ok(Outcome { note: Some(format!("systemd not available: {e}")), ..Default::default() })
                }
            }
        }
        if !self.watcher_alive.load(Ordering::Acquire) {
            self.spawn_watcher();
        }
        match self.read_units(root) {
            Ok(services) => {
                let backups = (!self.config.backups.is_empty()).then(|| self.read_backups());
                Ok(Outcome { services: Some(services), note: None, backups })
            }
            Err(e) => {
                // The bus went away (systemd restarting, dbus down): reconnect next time.
                self.conn = None;
                if is_no_systemd(&e) {
                    return Ok(Outcome { note: Some(format!("systemd not available: {e}")), ..Default::default() });
                }
                Err(self.error(&e))
            }
        }
    }

    fn error(&self, e: &zbus::Error) -> CollectError {
        let message = if is_timeout(e) {
            format!("no answer within {:.1} s", self.config.call_timeout.as_secs_f64())
        } else {
            e.to_string()
        };
        CollectError::Command { command: "systemd over D-Bus".into(), message }
    }

    fn unit_path(&self, name: &str) -> zbus::Result<String> {
        let msg = self.call(MANAGER_PATH, MANAGER, "LoadUnit", &(name,))?;
        Ok(msg.body().deserialize::<OwnedObjectPath>()?.to_string())
    }

    /// Each backup job's last run (from its service) and next run (from its timer).
    fn read_backups(&self) -> Vec<Backup> {
        each_backup(&self.config.backups, |job| self.read_backup(job))
    }

    fn read_backup(&self, job: &BackupJob) -> zbus::Result<Backup> {
        let path = self.unit_path(&job.unit)?;
        let unit = self.get_all(&path, "org.freedesktop.systemd1.Unit")?;
        let svc = self.get_all(&path, "org.freedesktop.systemd1.Service").unwrap_or_default();
        let timer = job
            .timer
            .clone()
            .unwrap_or_else(|| format!("{}.timer", job.unit.strip_suffix(".service").unwrap_or(&job.unit)));
        // No timer (or none loaded) is normal: a job started by hand has no next run.
        let timer = self.unit_path(&timer).and_then(|p| self.get_all(&p, "org.freedesktop.systemd1.Timer")).ok();
        Ok(backup_from_props(job, &unit, &svc, timer.as_ref()))
    }

    fn read_units(&mut self, root: &SysRoot) -> zbus::Result<Vec<Service>> {
        type UnitRow = (String, String, String, String, String, String, OwnedObjectPath, u32, String, OwnedObjectPath);
        let rows: Vec<UnitRow> = self.call(MANAGER_PATH, MANAGER, "ListUnits", &())?.body().deserialize()?;
        let mut wanted: BTreeMap<String, String> = BTreeMap::new();
        for (name, _desc, load, active, _sub, _following, path, ..) in &rows {
            let by_pattern = load == "loaded" && self.config.patterns.iter().any(|p| glob_match(p, name));
            if by_pattern || active == "failed" || self.config.units.contains(name) {
                wanted.insert(name.clone(), path.to_string());
            }
        }
        for name in &self.config.units {
            if !wanted.contains_key(name) {
                // Not loaded: LoadUnit gives its object (load state not-found if it does not exist).
                if let Ok(msg) = self.call(MANAGER_PATH, MANAGER, "LoadUnit", &(name.as_str(),)) {
                    if let Ok(path) = msg.body().deserialize::<OwnedObjectPath>() {
                        wanted.insert(name.clone(), path.to_string());
                    }
                }
            }
        }
        let now = Instant::now();
        let cycle_deadline = now + self.config.disk_cycle_time;
        let mut services = Vec::with_capacity(wanted.len());
        for (name, path) in wanted {
            // A unit can vanish between ListUnits and GetAll: skip it, it is gone.
            let Ok(unit) = self.get_all(&path, "org.freedesktop.systemd1.Unit") else { continue };
            let svc = if name.ends_with(".service") {
                self.get_all(&path, "org.freedesktop.systemd1.Service").unwrap_or_default()
            } else {
                Props::new()
            };
            services.push(self.service(root, &name, &unit, &svc, now, cycle_deadline));
        }
        self.cpu.retain(|k, _| services.iter().any(|s| &s.name == k));
        Ok(services)
    }

    fn service(
        &mut self,
        root: &SysRoot,
        name: &str,
        unit: &Props,
        svc: &Props,
        now: Instant,
        deadline: Instant,
    ) -> Service {
        let cpu_percent = set(prop_u64(svc, "CPUUsageNSec")).and_then(|ns| {
            let prev = self.cpu.insert(name.to_owned(), (ns, now));
            let (prev_ns, prev_at) = prev?;
            let wall = now.duration_since(prev_at).as_nanos() as f64;
            (wall > 0.0 && ns >= prev_ns).then(|| (ns - prev_ns) as f64 * 100.0 / wall)
        });
        let counters = prop_str(svc, "ControlGroup")
            .filter(|cg| !cg.is_empty())
            .map(|cg| cgroup::read_counters(root, &cg))
            .unwrap_or_default();
        let mut s = Service {
            name: name.to_owned(),
            description: prop_str(unit, "Description").unwrap_or_default(),
            load_state: prop_str(unit, "LoadState").unwrap_or_default(),
            active_state: prop_str(unit, "ActiveState").unwrap_or_default(),
            sub_state: prop_str(unit, "SubState").unwrap_or_default(),
            result: prop_str(svc, "Result").unwrap_or_default(),
            restarts: prop_u32(svc, "NRestarts").unwrap_or(0),
            since_ms: prop_u64(unit, "StateChangeTimestamp").filter(|t| *t > 0).map(|us| us / 1000),
            memory_bytes: set(prop_u64(svc, "MemoryCurrent")),
            memory_max_bytes: set(prop_u64(svc, "MemoryMax")),
            memory_high_bytes: set(prop_u64(svc, "MemoryHigh")),
            cpu_percent,
            tasks: set(prop_u64(svc, "TasksCurrent")),
            io_read_bytes: set(prop_u64(svc, "IOReadBytes")),
            io_write_bytes: set(prop_u64(svc, "IOWriteBytes")),
            oom_kills: counters.oom_kills,
            cpu_throttled_usec: counters.throttled_usec,
            ..Default::default()
        };
        self.measure_dirs(root, &mut s, svc, deadline);
        s
    }

    /// The unit's own directories, measured at most every `disk_interval`.
    fn measure_dirs(&mut self, root: &SysRoot, s: &mut Service, svc: &Props, deadline: Instant) {
        let mut dirs: Vec<String> = Vec::new();
        for (key, base) in
            [("StateDirectory", "/var/lib"), ("CacheDirectory", "/var/cache"), ("LogsDirectory", "/var/log")]
        {
            dirs.extend(prop_strings(svc, key).into_iter().map(|d| format!("{base}/{d}")));
        }
        if let Some(wd) = prop_str(svc, "WorkingDirectory") {
            let wd = wd.trim_start_matches(['-', '!']);
            let home = wd.starts_with("/home") || wd.starts_with("/root") || wd == "~";
            if wd.starts_with('/') && wd != "/" && !home && !dirs.iter().any(|d| d == wd) {
                dirs.push(wd.to_owned());
            }
        }
        if let Some(extra) = self.config.extra_paths.get(&s.name) {
            dirs.extend(extra.iter().map(|p| p.display().to_string()));
        }
        if dirs.is_empty() {
            return;
        }
        if !self.config.measure_disks {
            s.disk_paths = dirs;
            return;
        }
        let mut total = 0;
        for dir in &dirs {
            let path = root.path(dir);
            // A walk is kept for disk_interval; a failure is retried next cycle
            // (a StateDirectory appears when its oneshot first runs).
            let fresh = self
                .disk
                .get(&path)
                .is_some_and(|(at, result)| result.is_ok() && at.elapsed() < self.config.disk_interval);
            if !fresh && Instant::now() < deadline {
                let result = du::measure(&path, self.config.disk_budget).map_err(|e| e.to_string());
                self.disk.insert(path.clone(), (Instant::now(), result));
            }
            match self.disk.get(&path).map(|(_, r)| r) {
                Some(Ok(u)) => {
                    total += u.bytes;
                    s.disk_partial |= u.partial;
                }
                Some(Err(e)) => s.disk_errors.push(format!("{dir}: {e}")),
                None => s.disk_partial = true, // not measured yet this cycle
            }
        }
        s.disk_paths = dirs;
        s.disk_bytes = Some(total);
    }
}

/// One backup per job, in the configured order. A job that cannot be read
/// (a unit name systemd refuses, a call that fails) is reported alone, with
/// the reason; the other jobs are read all the same.
fn each_backup(jobs: &[BackupJob], mut read: impl FnMut(&BackupJob) -> zbus::Result<Backup>) -> Vec<Backup> {
    jobs.iter()
        .map(|job| read(job).unwrap_or_else(|e| unreadable_backup(job, format!("cannot read {}: {e}", job.unit))))
        .collect()
}

/// A job the collector could not read. It has no result; its reason says
/// why, and the agent judges it unknown rather than "has not run yet".
fn unreadable_backup(job: &BackupJob, why: String) -> Backup {
    Backup {
        name: job.name.clone(),
        kind: job.kind.clone(),
        unit: job.unit.clone(),
        reason: Some(why),
        ..Default::default()
    }
}

/// A backup job as systemd describes it: its service unit's `Unit` and
/// `Service` properties, and its timer's `Timer` properties if it has one.
fn backup_from_props(job: &BackupJob, unit: &Props, svc: &Props, timer: Option<&Props>) -> Backup {
    let load = prop_str(unit, "LoadState").unwrap_or_default();
    if load == "not-found" || load == "bad-setting" || load == "error" {
        return unreadable_backup(job, format!("systemd cannot load {} ({load}): check the unit name", job.unit));
    }
    let start = prop_u64(svc, "ExecMainStartTimestamp").filter(|t| *t > 0);
    let exit = prop_u64(svc, "ExecMainExitTimestamp").filter(|t| *t > 0);
    let active = prop_str(unit, "ActiveState").unwrap_or_default();
    let running = matches!(active.as_str(), "activating" | "active" | "deactivating") && exit < start;
    let result = match (start, running) {
        (None, _) => None,
        (Some(_), true) => Some("running".to_string()),
        (Some(_), false) => prop_str(svc, "Result"),
    };
    let next = timer.and_then(next_elapse_realtime_us);
    Backup {
        name: job.name.clone(),
        kind: job.kind.clone(),
        unit: job.unit.clone(),
        last_run_ms: start.map(|us| us / 1000),
        duration_seconds: match (start, exit) {
            (Some(s), Some(e)) if e >= s && !running => Some((e - s) / 1_000_000),
            _ => None,
        },
        result,
        next_run_ms: next.map(|us| us / 1000),
        ..Default::default()
    }
}

/// When a timer fires next, in realtime microseconds. Calendar timers say so
/// directly; monotonic ones (`OnUnitActiveSec=`) count on the kernel's
/// monotonic clock, which systemd shares with us.
fn next_elapse_realtime_us(timer: &Props) -> Option<u64> {
    let set = |v: Option<u64>| v.filter(|t| *t > 0 && *t != u64::MAX);
    let realtime = set(prop_u64(timer, "NextElapseUSecRealtime"));
    let monotonic = set(prop_u64(timer, "NextElapseUSecMonotonic")).map(|mono| {
        let ts = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
        let now_mono = ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000;
        let now_real =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64);
        now_real + mono.saturating_sub(now_mono)
    });
    match (realtime, monotonic) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Errors that mean "there is no systemd here" rather than "systemd failed".
fn is_no_systemd(e: &zbus::Error) -> bool {
    let text = e.to_string();
    text.contains("ServiceUnknown") || text.contains("org.freedesktop.DBus.Error.NameHasNoOwner")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*.service", "gitea.service"));
        assert!(!glob_match("*.service", "gitea.socket"));
        assert!(glob_match("restic-backups-*.service", "restic-backups-b2.service"));
        assert!(glob_match("sshd?.service", "sshd2.service"));
        assert!(!glob_match("sshd?.service", "sshd.service"));
    }

    fn job(name: &str, unit: &str) -> BackupJob {
        BackupJob { name: name.into(), kind: "restic".into(), unit: unit.into(), timer: None }
    }

    fn props(pairs: &[(&str, OwnedValue)]) -> Props {
        pairs.iter().map(|(k, v)| (k.to_string(), v.try_clone().unwrap())).collect()
    }

    fn text(s: &str) -> OwnedValue {
        OwnedValue::from(zbus::zvariant::Str::from(s.to_owned()))
    }

    #[test]
    fn a_finished_backup_has_its_result_duration_and_next_run() {
        let unit = props(&[("LoadState", text("loaded")), ("ActiveState", text("inactive"))]);
        let svc = props(&[
            ("ExecMainStartTimestamp", OwnedValue::from(1_700_000_000_000_000u64)),
            ("ExecMainExitTimestamp", OwnedValue::from(1_700_000_045_000_000u64)),
            ("Result", text("success")),
        ]);
        let timer = props(&[("NextElapseUSecRealtime", OwnedValue::from(1_700_086_400_000_000u64))]);
        let b = backup_from_props(&job("b2", "restic-backups-b2.service"), &unit, &svc, Some(&timer));
        assert_eq!((b.result.as_deref(), b.duration_seconds), (Some("success"), Some(45)));
        assert_eq!((b.last_run_ms, b.next_run_ms), (Some(1_700_000_000_000), Some(1_700_086_400_000)));
        assert_eq!(b.reason, None);
    }

    #[test]
    fn a_backup_that_started_after_its_last_exit_is_running() {
        let unit = props(&[("LoadState", text("loaded")), ("ActiveState", text("activating"))]);
        let svc = props(&[
            ("ExecMainStartTimestamp", OwnedValue::from(1_700_000_100_000_000u64)),
            ("ExecMainExitTimestamp", OwnedValue::from(1_700_000_045_000_000u64)),
            ("Result", text("success")),
        ]);
        let b = backup_from_props(&job("b2", "restic-backups-b2.service"), &unit, &svc, None);
        assert_eq!((b.result.as_deref(), b.duration_seconds, b.next_run_ms), (Some("running"), None, None));
    }

    #[test]
    fn a_backup_unit_systemd_does_not_know_says_so() {
        let unit = props(&[("LoadState", text("not-found")), ("ActiveState", text("inactive"))]);
        let b = backup_from_props(&job("b2", "restic-backups-typo.service"), &unit, &Props::new(), None);
        assert_eq!(b.result, None);
        let reason = b.reason.unwrap();
        assert!(reason.contains("restic-backups-typo.service (not-found)"), "{reason}");
    }

    #[test]
    fn one_unreadable_backup_job_is_reported_alone() {
        let jobs = [job("a", "a.service"), job("bad", "bad name.service"), job("c", "c.service")];
        let backups = each_backup(&jobs, |j| {
            if j.name == "bad" {
                return Err(zbus::Error::Failure("Unit name bad name.service is not valid.".into()));
            }
            Ok(Backup {
                name: j.name.clone(),
                unit: j.unit.clone(),
                result: Some("success".into()),
                ..Default::default()
            })
        });
        let names: Vec<&str> = backups.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["a", "bad", "c"]);
        assert_eq!(backups[0].result.as_deref(), Some("success"));
        assert_eq!(backups[2].result.as_deref(), Some("success"));
        let bad = &backups[1];
        assert_eq!((bad.unit.as_str(), bad.result.as_deref()), ("bad name.service", None));
        let reason = bad.reason.as_deref().unwrap();
        assert!(reason.starts_with("cannot read bad name.service: ") && reason.contains("is not valid"), "{reason}");
    }

    /// A unix socket that plays a bus just far enough for zbus to connect
    /// (the handshake and the bus's reply to `Hello`), then never answers a
    /// call: a dbus-daemon or systemd that hangs.
    fn silent_bus(name: &str) -> String {
        use std::io::{Read, Write};
        let path = std::env::temp_dir().join(format!("cm-silent-bus-{name}-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                std::thread::spawn(move || {
                    let mut seen = Vec::new();
                    let mut buf = [0u8; 4096];
                    let (mut authenticated, mut welcomed) = (false, false);
                    while let Ok(n @ 1..) = stream.read(&mut buf) {
                        seen.extend_from_slice(&buf[..n]);
                        let text = String::from_utf8_lossy(&seen).into_owned();
                        if !authenticated && text.contains("AUTH") && text.contains("\r\n") {
                            authenticated = true;
                            let _ = stream.write_all(b"OK 0123456789abcdef0123456789abcdef\r\n");
                        }
                        // Then NEGOTIATE_UNIX_FD, BEGIN and the Hello call (a little-endian
                        // header: its serial is at bytes 8..12), all in one go.
                        let Some(at) = text.find("BEGIN\r\n").map(|i| i + 7) else { continue };
                        if welcomed || seen.len() < at + 12 {
                            continue;
                        }
                        welcomed = true;
                        let serial: [u8; 4] = seen[at + 8..at + 12].try_into().unwrap();
                        let _ = stream.write_all(b"AGREE_UNIX_FD\r\n");
                        let _ = stream.write_all(&hello_reply(serial));
                    }
                });
            }
        });
        format!("unix:path={}", path.display())
    }

    /// The bus's METHOD_RETURN to `Hello` (reply serial `serial`), naming the
    /// client `:1.1`, as the D-Bus specification lays out the bytes.
    fn hello_reply(serial: [u8; 4]) -> Vec<u8> {
        let mut m = vec![b'l', 2, 1, 1]; // little-endian, method return, no reply expected, version 1
        m.extend_from_slice(&9u32.to_le_bytes()); // body length
        m.extend_from_slice(&1u32.to_le_bytes()); // this message's serial
        m.extend_from_slice(&15u32.to_le_bytes()); // length of the header field array
        m.extend_from_slice(&[5, 1, b'u', 0]); // REPLY_SERIAL: u32
        m.extend_from_slice(&serial);
        m.extend_from_slice(&[8, 1, b'g', 0, 1, b's', 0]); // SIGNATURE: "s"
        m.push(0); // the header ends on an 8-byte boundary
        m.extend_from_slice(&4u32.to_le_bytes());
        m.extend_from_slice(b":1.1\0");
        m
    }

    #[test]
    fn a_bus_that_never_answers_is_an_error_after_the_call_timeout() {
        let mut c = SystemdCollector::new(SystemdConfig {
            address: Some(silent_bus("calls")),
            call_timeout: Duration::from_millis(300),
            ..Default::default()
        });
        let start = Instant::now();
        let err = c.collect(&SysRoot::live()).unwrap_err().to_string();
        assert_eq!(err, "systemd over D-Bus: no answer within 0.3 s");
        assert!(start.elapsed() < Duration::from_secs(10), "waited {:?}", start.elapsed());
    }

    #[test]
    fn no_bus_is_a_note_not_an_error() {
        let mut c = SystemdCollector::new(SystemdConfig {
            address: Some("unix:path=/nonexistent/cm/system_bus_socket".into()),
            ..Default::default()
        });
        let out = c.collect(&SysRoot::live()).unwrap();
        assert_eq!(out.services, None);
        assert!(out.note.unwrap().starts_with("systemd not available: "));
    }
}
