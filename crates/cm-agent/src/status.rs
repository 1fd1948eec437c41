//! Status evaluation: every value that can be bad gets ok / warning / critical.

use cm_proto::{HostSnapshot, Status};

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
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            memory_percent: Limit { warning: 80.0, critical: 90.0 },
            cpu_celsius: Limit { warning: 80.0, critical: 90.0 },
            gpu_celsius: Limit { warning: 80.0, critical: 90.0 },
            filesystem_percent: Limit { warning: 85.0, critical: 95.0 },
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
            drive.status = snap
                .filesystems
                .iter()
                .filter(|f| f.drive.as_deref() == Some(drive.name.as_str()))
                .map(|f| f.status)
                .max()
                .unwrap_or(Status::Ok);
        }
    }
}

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
}
