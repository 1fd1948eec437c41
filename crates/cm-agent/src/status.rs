//! Status evaluation: every value that can be bad gets ok / warning / critical.

use std::time::Duration;

use cm_proto::{Backup, DriveHealth, Finding, HostSnapshot, Service, Status};

/// A warning and a critical level for one value (higher is worse).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    pub warning: f64,
    pub critical: f64,
}

impl Limit {
    fn status(self, value: f64) -> Status {
        Status::from_thresholds(value, self.warning, self.critical)
    }
}

/// Thresholds for the built-in status rules.
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    /// Memory used, percent of total.
    pub memory_percent: Limit,
    /// CPU package temperature, degrees Celsius.
    pub cpu_celsius: Limit,
    /// GPU temperature, degrees Celsius.
    pub gpu_celsius: Limit,
    /// Filesystem used, percent as `df` shows it.
    pub filesystem_percent: Limit,
    /// Drive wear, percent of rated endurance used.
    pub drive_wear_percent: Limit,
    /// Drive temperature, degrees Celsius, for drives that report no limits of their own.
    pub drive_celsius: Limit,
    /// A service's memory, percent of its `MemoryMax=`: a warning from here.
    pub service_memory_percent: f64,
    /// Automatic restarts from which a service counts as restarting repeatedly.
    pub service_restarts: u32,
    /// How long a service may stay activating, deactivating or reloading.
    pub service_transition: Duration,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            memory_percent: Limit { warning: 80.0, critical: 90.0 },
            cpu_celsius: Limit { warning: 80.0, critical: 90.0 },
            gpu_celsius: Limit { warning: 80.0, critical: 90.0 },
            filesystem_percent: Limit { warning: 85.0, critical: 95.0 },
            drive_wear_percent: Limit { warning: 70.0, critical: 90.0 },
            drive_celsius: Limit { warning: 70.0, critical: 80.0 },
            service_memory_percent: 90.0,
            service_restarts: 3,
            service_transition: Duration::from_secs(90),
        }
    }
}

impl Thresholds {
    /// Sets the status of every judged value in `snap`.
    pub fn evaluate(&self, snap: &mut HostSnapshot) {
        if let Some(cpu) = &mut snap.cpu {
            cpu.status = cpu.temperature_celsius.map_or(Status::Ok, |t| self.cpu_celsius.status(t));
        }
        if let Some(mem) = &mut snap.memory {
            mem.status =
                if mem.total_bytes == 0 { Status::Unknown } else { self.memory_percent.status(mem.used_percent()) };
        }
        for gpu in &mut snap.gpus {
            gpu.status = gpu.temperature_celsius.map_or(Status::Ok, |t| self.gpu_celsius.status(t));
        }
        for fs in &mut snap.filesystems {
            let measured = fs.used_bytes + fs.available_bytes > 0;
            fs.status = if measured { self.filesystem_percent.status(fs.used_percent()) } else { Status::Unknown };
        }
        for drive in &mut snap.drives {
            let filesystems = snap
                .filesystems
                .iter()
                .filter(|f| f.drive.as_deref() == Some(drive.name.as_str()))
                .map(|f| f.status)
                .max()
                .unwrap_or(Status::Ok);
            let health = drive.health.as_ref().map_or(Status::Ok, |h| h.verdict);
            drive.status = filesystems.max(health);
        }
    }

    /// Judges a service: failed is critical; stuck in a transition, restarting
    /// repeatedly, near its memory limit or OOM-killed since `previous` is a
    /// warning. `now_ms` is the snapshot's time.
    pub fn judge_service(&self, s: &mut Service, previous: Option<&Service>, now_ms: u64) {
        let mut why: Vec<(Status, String)> = Vec::new();
        if s.active_state == "failed" {
            let result =
                if s.result.is_empty() || s.result == "success" { String::new() } else { format!(" ({})", s.result) };
            why.push((Status::Critical, format!("failed{result}")));
        }
        if s.load_state == "not-found" {
            why.push((Status::Critical, "unit not found".into()));
        }
        if matches!(s.active_state.as_str(), "activating" | "deactivating" | "reloading") {
            let for_ms = s.since_ms.map_or(0, |t| now_ms.saturating_sub(t));
            if for_ms >= self.service_transition.as_millis() as u64 {
                why.push((Status::Warning, format!("{} for {} s", s.active_state, for_ms / 1000)));
            }
        }
        if s.restarts >= self.service_restarts {
            why.push((Status::Warning, format!("restarted {} times", s.restarts)));
        }
        if let (Some(used), Some(max)) = (s.memory_bytes, s.memory_max_bytes) {
            let pct = used as f64 * 100.0 / max.max(1) as f64;
            if pct >= self.service_memory_percent {
                why.push((Status::Warning, format!("memory at {pct:.0}% of MemoryMax")));
            }
        }
        // The unit's cgroup is made anew at each start, so its count is this run's.
        let oom_before = previous.and_then(|p| p.oom_kills).unwrap_or(0);
        match s.oom_kills {
            Some(now) if now > oom_before && oom_before > 0 => why.push((
                Status::Warning,
                format!("{} more OOM kills since the last sample ({now} this run)", now - oom_before),
            )),
            Some(now) if now > 0 => why.push((Status::Warning, format!("{now} OOM kill(s) in this run"))),
            _ if s.result == "oom-kill" && s.active_state != "failed" => {
                why.push((Status::Warning, "the last run was killed by the OOM killer".into()))
            }
            _ => {}
        }
        why.sort_by_key(|(st, _)| std::cmp::Reverse(*st));
        s.status = why.first().map_or(Status::Ok, |(st, _)| *st);
        s.reason = (!why.is_empty()).then(|| why.into_iter().map(|(_, t)| t).collect::<Vec<_>>().join("; "));
    }

    /// Judges a backup job: a failed last run is critical; a job that has
    /// never run is unknown (it may be new), and so is one the collector
    /// could not read, with the collector's reason.
    pub fn judge_backup(&self, b: &mut Backup) {
        (b.status, b.reason) = match b.result.as_deref() {
            None if b.reason.is_some() => (Status::Unknown, b.reason.take()),
            None => (Status::Unknown, Some("has not run yet".into())),
            Some("success") | Some("running") => (Status::Ok, None),
            Some(other) => (Status::Critical, Some(format!("last run failed ({other})"))),
        };
    }

    /// Draws a drive's verdict from its SMART figures, with a reason for
    /// every concern. `previous` is the same drive's last reading, so that
    /// counters that grow can be told from old, settled ones.
    pub fn judge_drive(&self, h: &mut DriveHealth, previous: Option<&DriveHealth>) {
        let mut f: Vec<Finding> = Vec::new();
        let mut say = |status: Status, text: String| f.push(Finding { status, text });
        if let Some(error) = &h.error {
            say(Status::Unknown, format!("could not read SMART data: {error}"));
        }
        if let Some(why) = &h.unsupported {
            say(Status::Ok, format!("no SMART data: {why}"));
        }
        if h.standby {
            say(Status::Ok, "spun down; not woken to read SMART data".into());
        }
        if h.smart_passed == Some(false) {
            say(Status::Critical, "the drive's SMART self-assessment says FAILED: back up and replace it".into());
        }
        for attr in &h.attributes_failing_now {
            say(Status::Critical, format!("attribute {attr} is at or below its failure threshold now"));
        }
        for attr in &h.attributes_failed_in_past {
            say(
                Status::Ok,
                format!("attribute {attr} was below its threshold in the past; the drive reports it fine now"),
            );
        }
        if let Some(bits) = h.critical_warning.filter(|b| *b != 0) {
            for (bit, meaning) in CRITICAL_WARNING_BITS {
                if bits & (1 << bit) != 0 {
                    say(Status::Critical, format!("NVMe critical warning: {meaning}"));
                }
            }
        }
        let grew = |now: Option<u64>, before: Option<u64>| match (now, before) {
            (Some(n), Some(b)) if n > b => Some(b),
            _ => None,
        };
        let before = previous.filter(|p| p.serial == h.serial);
        if let Some(n) = h.media_errors.filter(|n| *n > 0) {
            match grew(h.media_errors, before.and_then(|p| p.media_errors)) {
                Some(b) => {
                    say(Status::Critical, format!("media errors grew from {b} to {n}: the drive is losing data"))
                }
                None => say(
                    Status::Warning,
                    format!("{} over the drive's life (critical if the count grows)", count(n, "media error")),
                ),
            }
        }
        if let Some(n) = h.pending_sectors.filter(|n| *n > 0) {
            say(Status::Critical, format!("{} unreadable and waiting to be reallocated", count_is(n, "sector")));
        }
        if let Some(n) = h.offline_uncorrectable.filter(|n| *n > 0) {
            say(Status::Warning, format!("{} found unreadable by the offline scan", count(n, "sector")));
        }
        if let Some(n) = h.reallocated_sectors.filter(|n| *n > 0) {
            match grew(h.reallocated_sectors, before.and_then(|p| p.reallocated_sectors)) {
                Some(b) => say(Status::Critical, format!("reallocated sectors grew from {b} to {n}")),
                None => say(Status::Warning, format!("{} reallocated over the drive's life", count(n, "sector"))),
            }
        }
        if let (Some(spare), Some(threshold)) = (h.available_spare_percent, h.available_spare_threshold_percent) {
            if spare < threshold {
                say(
                    Status::Warning,
                    format!("available spare {spare:.0}% is below the drive's threshold of {threshold:.0}%"),
                );
            }
        }
        if let Some(wear) = h.wear_percent {
            let status = self.drive_wear_percent.status(wear);
            if status != Status::Ok {
                let source = h.wear_source.as_deref().unwrap_or("the drive");
                say(status, format!("{wear:.0}% of rated endurance used ({source})"));
            }
        }
        if let Some(t) = h.temperature_celsius {
            let (limit, whose) = match h.temperature_limit_celsius {
                Some(l) => {
                    (Limit { warning: l, critical: h.temperature_critical_celsius.unwrap_or(l + 10.0) }, "the drive's")
                }
                None => (self.drive_celsius, "the configured"),
            };
            match limit.status(t) {
                Status::Ok => {}
                s => say(
                    s,
                    format!(
                        "{t:.0} C is at or above {whose} limit of {:.0} C",
                        if s == Status::Critical { limit.critical } else { limit.warning }
                    ),
                ),
            }
        }
        if let Some(n) = h.logged_errors.filter(|n| *n > 0) {
            // The ATA error log stores power-on hours in 16 bits: past 65535 hours
            // the age of an entry cannot be told.
            let when = match (h.last_error_hour, h.power_on_hours) {
                (Some(at), Some(now)) if now <= 0xFFFF && at <= now => {
                    format!(", the last at power-on hour {at} ({} hours ago)", now - at)
                }
                (Some(at), Some(_)) => format!(", the last at power-on hour {at} (the log counts hours modulo 65536)"),
                (Some(at), None) => format!(", the last at power-on hour {at}"),
                // No table, or a drive that writes hour 0 for every entry.
                (None, _) if n == 1 => ", of unknown age (the log gives no power-on hour)".into(),
                (None, _) => ", the last of unknown age (the log gives no power-on hour)".into(),
            };
            say(Status::Ok, format!("{} in the drive's error log{when}", count(n, "error")));
        }
        f.sort_by_key(|f| std::cmp::Reverse(f.status));
        h.verdict = f.iter().map(|f| f.status).max().unwrap_or(Status::Ok);
        h.findings = f;
    }
}

/// `1 sector`, `10 sectors`.
fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// `1 sector is`, `10 sectors are`.
fn count_is(n: u64, noun: &str) -> String {
    format!("{} {}", count(n, noun), if n == 1 { "is" } else { "are" })
}

/// NVMe critical warning bits (NVMe base specification, SMART / Health log byte 0).
const CRITICAL_WARNING_BITS: [(u8, &str); 6] = [
    (0, "available spare is below its threshold"),
    (1, "temperature is outside the drive's limits"),
    (2, "reliability is degraded by media or internal errors"),
    (3, "media has been placed in read-only mode"),
    (4, "the volatile memory backup device has failed"),
    (5, "the persistent memory region has become read-only"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use cm_proto::{Drive, Filesystem, Memory};

    #[test]
    fn memory_at_85_percent_is_a_warning_and_91_is_critical() {
        let t = Thresholds::default();
        let mut snap = HostSnapshot {
            memory: Some(Memory { total_bytes: 100, used_bytes: 85, ..Default::default() }),
            ..Default::default()
        };
        t.evaluate(&mut snap);
        assert_eq!(snap.memory.as_ref().unwrap().status, Status::Warning);
        snap.memory.as_mut().unwrap().used_bytes = 91;
        t.evaluate(&mut snap);
        assert_eq!(snap.memory.unwrap().status, Status::Critical);
    }

    #[test]
    fn a_drive_takes_the_worst_status_of_its_filesystems() {
        let fs = |mp: &str, used, avail| Filesystem {
            mount_point: mp.into(),
            drive: Some("sda".into()),
            used_bytes: used,
            available_bytes: avail,
            ..Default::default()
        };
        let mut snap = HostSnapshot {
            drives: vec![Drive { name: "sda".into(), ..Default::default() }],
            filesystems: vec![fs("/", 10, 90), fs("/var", 96, 4)],
            ..Default::default()
        };
        Thresholds::default().evaluate(&mut snap);
        assert_eq!(snap.filesystems[0].status, Status::Ok);
        assert_eq!(snap.filesystems[1].status, Status::Critical);
        assert_eq!(snap.drives[0].status, Status::Critical);
    }

    #[test]
    fn an_unmeasured_filesystem_is_unknown() {
        let mut snap = HostSnapshot { filesystems: vec![Filesystem::default()], ..Default::default() };
        Thresholds::default().evaluate(&mut snap);
        assert_eq!(snap.filesystems[0].status, Status::Unknown);
    }

    #[test]
    fn a_backup_the_collector_could_not_read_is_unknown_with_its_reason() {
        let t = Thresholds::default();
        let mut unread = Backup { reason: Some("cannot read x.service: no such unit".into()), ..Default::default() };
        t.judge_backup(&mut unread);
        assert_eq!(
            (unread.status, unread.reason.as_deref()),
            (Status::Unknown, Some("cannot read x.service: no such unit"))
        );
        let mut new = Backup::default();
        t.judge_backup(&mut new);
        assert_eq!((new.status, new.reason.as_deref()), (Status::Unknown, Some("has not run yet")));
        let mut failed = Backup { result: Some("exit-code".into()), ..Default::default() };
        t.judge_backup(&mut failed);
        assert_eq!((failed.status, failed.reason.as_deref()), (Status::Critical, Some("last run failed (exit-code)")));
    }
}
