//! The typed host model: one `HostSnapshot` per host and collection cycle.
//!
//! Every struct is `#[serde(default)]` and serde ignores unknown fields, so a
//! newer agent that adds a field still talks to an older dashboard and back.
//! Units live in field names (`_bytes`, `_celsius`, `_percent`, `_hz`, `_watts`).

use serde::{Deserialize, Serialize};

use crate::alert::{Alert, NotifierStatus};
use crate::status::Status;

/// Everything one host reports at one moment.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct HostSnapshot {
    /// The host's name as it reports it (kernel hostname unless configured).
    pub host: String,
    /// Increases by one with every snapshot the agent produces.
    pub seq: u64,
    /// When the snapshot was taken, in milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// Version of the agent that produced it.
    pub agent_version: String,
    /// Kernel release, as in `uname -r`.
    pub kernel: String,
    /// Seconds since boot.
    pub uptime_seconds: u64,
    pub cpu: Option<Cpu>,
    pub memory: Option<Memory>,
    pub gpus: Vec<Gpu>,
    pub drives: Vec<Drive>,
    pub filesystems: Vec<Filesystem>,
    /// `None` while no service source is configured on the agent.
    pub services: Option<Vec<Service>>,
    /// `None` while no backup source is configured on the agent.
    pub backups: Option<Vec<Backup>>,
    /// The host's NixOS generation and boot state; `None` on a host that is not NixOS.
    pub nixos: Option<NixosState>,
    /// One entry per collector that ran: its outcome and how long it took.
    pub collectors: Vec<CollectorReport>,
    /// The agent's alerts: pending, firing and flapping ones, and those
    /// resolved within the last hour (1.3).
    pub alerts: Vec<Alert>,
    /// How each notification target is doing, when routes are configured (1.3).
    pub notifiers: Vec<NotifierStatus>,
}

impl HostSnapshot {
    /// The worst status of anything in the snapshot, collector failures included.
    pub fn worst_status(&self) -> Status {
        let cpu = self.cpu.iter().map(|c| c.status);
        let mem = self.memory.iter().map(|m| m.status);
        let gpus = self.gpus.iter().map(|g| g.status);
        let drives = self.drives.iter().map(|d| d.status);
        let fs = self.filesystems.iter().map(|f| f.status);
        let services = self.services.iter().flatten().map(|s| s.status);
        let backups = self.backups.iter().flatten().map(|b| b.status);
        let nixos = self.nixos.iter().map(|n| n.status);
        let collectors = self.collectors.iter().map(|c| if c.error.is_some() { Status::Unknown } else { Status::Ok });
        let alerts = self.alerts.iter().filter(|a| a.state.is_active()).map(|a| a.severity);
        cpu.chain(mem)
            .chain(gpus)
            .chain(drives)
            .chain(fs)
            .chain(services)
            .chain(backups)
            .chain(nixos)
            .chain(collectors)
            .chain(alerts)
            .max()
            .unwrap_or(Status::Unknown)
    }

    /// The active alert that decides the host's status: the worst firing or
    /// flapping one, of equals the one longest in its state (as the alerts
    /// view orders them).
    pub fn worst_alert(&self) -> Option<&Alert> {
        self.alerts
            .iter()
            .filter(|a| a.state.is_active())
            .max_by(|a, b| a.severity.cmp(&b.severity).then(b.since_ms.cmp(&a.since_ms)))
    }

    /// The report of the collector called `name`, if it ran.
    pub fn collector(&self, name: &str) -> Option<&CollectorReport> {
        self.collectors.iter().find(|c| c.name == name)
    }
}

/// Processor load, utilisation, frequency and temperature.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Cpu {
    /// `model name` from /proc/cpuinfo, when the kernel reports one.
    pub model: Option<String>,
    /// Logical CPUs counted in /proc/stat.
    pub logical_cpus: u32,
    pub load1: f64,
    pub load5: f64,
    pub load15: f64,
    /// Busy share of all CPUs since the previous sample; `None` on the first sample.
    pub utilisation_percent: Option<f64>,
    /// Mean current frequency over all CPUs that report one.
    pub frequency_hz: Option<u64>,
    /// Highest current frequency of any CPU.
    pub max_frequency_hz: Option<u64>,
    /// Current frequency of each CPU that reports one, in CPU order.
    pub core_frequencies_hz: Vec<u64>,
    /// Package (or hottest core) temperature.
    pub temperature_celsius: Option<f64>,
    /// Where the temperature came from, e.g. `k10temp Tctl` or `thermal_zone0 x86_pkg_temp`.
    pub temperature_source: Option<String>,
    pub status: Status,
}

/// Memory use, swap, and the "RAM optimisation" details.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Memory {
    pub total_bytes: u64,
    /// Total minus available: what applications hold and cannot give back.
    pub used_bytes: u64,
    pub available_bytes: u64,
    /// True when `MemAvailable` was missing (kernels before 3.14) and was estimated.
    pub available_estimated: bool,
    pub swap_total_bytes: u64,
    pub swap_used_bytes: u64,
    pub zram: Vec<Zram>,
    pub tmpfs: Vec<Tmpfs>,
    pub vm: VmTunables,
    pub status: Status,
}

impl Memory {
    /// Used share of total memory, 0 when total is unknown.
    pub fn used_percent(&self) -> f64 {
        percent(self.used_bytes, self.total_bytes)
    }
}

/// One zram device (compressed RAM swap or disk).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Zram {
    pub device: String,
    pub disksize_bytes: u64,
    /// Uncompressed size of the data stored.
    pub original_bytes: u64,
    /// Compressed size of the data stored.
    pub compressed_bytes: u64,
    /// Memory the device really uses, allocator overhead included.
    pub memory_used_bytes: u64,
    pub algorithm: Option<String>,
}

impl Zram {
    /// original / compressed, `None` while nothing is stored.
    pub fn compression_ratio(&self) -> Option<f64> {
        (self.compressed_bytes > 0).then(|| self.original_bytes as f64 / self.compressed_bytes as f64)
    }
}

/// One mounted tmpfs and how full it is.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Tmpfs {
    pub mount_point: String,
    pub size_bytes: u64,
    pub used_bytes: u64,
}

/// Kernel VM tunables that decide how memory and writeback behave.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct VmTunables {
    pub dirty_ratio: Option<u32>,
    pub dirty_background_ratio: Option<u32>,
    pub swappiness: Option<u32>,
}

/// Which driver a GPU was read through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GpuVendor {
    Nvidia,
    Amd,
    Intel,
    #[default]
    #[serde(other)]
    Unknown,
}

/// One graphics card.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Gpu {
    /// Stable identifier: PCI address for NVIDIA, `card0` for DRM devices.
    pub id: String,
    pub vendor: GpuVendor,
    pub name: String,
    pub utilisation_percent: Option<f64>,
    pub memory_used_bytes: Option<u64>,
    pub memory_total_bytes: Option<u64>,
    pub temperature_celsius: Option<f64>,
    pub power_watts: Option<f64>,
    pub clock_hz: Option<u64>,
    pub status: Status,
}

/// How a drive entry relates to hardware.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DriveKind {
    /// A physical disk: NVMe, SATA, SAS, USB, virtio.
    #[default]
    Disk,
    /// A software RAID (md) spanning several disks.
    Raid,
    /// A device-mapper volume (LVM, LUKS) spanning several disks.
    Mapper,
    #[serde(other)]
    Unknown,
}

/// A drive and the capacity it offers; its filesystems point back to it by name.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Drive {
    /// Kernel name: `nvme0n1`, `sda`, `md0`, `dm-2`.
    pub name: String,
    pub kind: DriveKind,
    pub model: Option<String>,
    pub capacity_bytes: u64,
    /// `Some(true)` for spinning disks.
    pub rotational: Option<bool>,
    pub removable: bool,
    /// For RAID and mapper entries: the physical disks underneath.
    pub members: Vec<String>,
    /// Sum of the used bytes of the filesystems on this drive.
    pub used_bytes: u64,
    /// Sum of used + available of the filesystems on this drive (what `df` calls their size).
    pub filesystem_bytes: u64,
    /// SMART / NVMe health, when the SMART collector has read this drive.
    pub health: Option<DriveHealth>,
    /// When the SSD reaches 100 % of its rated wear, from the history.
    pub worn_out: Option<Forecast>,
    pub status: Status,
}

impl Drive {
    /// Used share of the filesystems on this drive, `None` without filesystems.
    pub fn used_percent(&self) -> Option<f64> {
        (self.filesystem_bytes > 0).then(|| percent(self.used_bytes, self.filesystem_bytes))
    }
}

/// What `smartctl` says about a drive, and the verdict drawn from it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DriveHealth {
    /// `NVMe`, `ATA` or `SCSI`, as smartctl names the protocol.
    pub protocol: String,
    pub model: Option<String>,
    pub serial: Option<String>,
    pub firmware: Option<String>,
    pub capacity_bytes: Option<u64>,
    /// Spindle speed; `Some(0)` for a solid-state drive.
    pub rotation_rpm: Option<u32>,
    /// Link as smartctl reports it, e.g. `SATA 6.0 Gb/s` or `PCIe 4.0 x4`.
    pub interface: Option<String>,
    /// The drive's overall self-assessment; `None` when it gave none.
    pub smart_passed: Option<bool>,
    /// Share of rated endurance used, 0-100 (NVMe percentage_used, or an
    /// ATA wear attribute the drive is known to report); `None` when unknown.
    pub wear_percent: Option<f64>,
    /// Which field `wear_percent` came from.
    pub wear_source: Option<String>,
    pub temperature_celsius: Option<f64>,
    /// The drive's own warning temperature, when it reports one.
    pub temperature_limit_celsius: Option<f64>,
    /// The drive's own critical temperature, when it reports one.
    pub temperature_critical_celsius: Option<f64>,
    pub power_on_hours: Option<u64>,
    pub data_read_bytes: Option<u64>,
    pub data_written_bytes: Option<u64>,
    /// NVMe: unrecovered data integrity errors over the drive's life.
    pub media_errors: Option<u64>,
    pub unsafe_shutdowns: Option<u64>,
    /// NVMe critical warning bits (0 when none are set).
    pub critical_warning: Option<u8>,
    pub available_spare_percent: Option<f64>,
    pub available_spare_threshold_percent: Option<f64>,
    /// ATA 5 / SCSI grown defects: sectors already remapped.
    pub reallocated_sectors: Option<u64>,
    /// ATA 197: sectors waiting to be remapped (unreadable now).
    pub pending_sectors: Option<u64>,
    /// ATA 198: sectors found unreadable by the offline scan.
    pub offline_uncorrectable: Option<u64>,
    /// Errors in the drive's own error log, and the power-on hour of the last one.
    pub logged_errors: Option<u64>,
    pub last_error_hour: Option<u64>,
    /// ATA attributes at or below their threshold now (`id name`).
    pub attributes_failing_now: Vec<String>,
    /// ATA attributes that were below their threshold in the past and are fine now.
    pub attributes_failed_in_past: Vec<String>,
    /// The device gives no SMART data at all (a virtual disk, an unsupported
    /// USB bridge), with smartctl's words; nothing to judge, nothing wrong.
    pub unsupported: Option<String>,
    /// The drive was spun down and was not woken to read it.
    pub standby: bool,
    /// Why the drive could not be read, when it could not.
    pub error: Option<String>,
    /// Everything that decided the verdict, worst first.
    pub findings: Vec<Finding>,
    /// The verdict: the worst finding's status (ok when there is none).
    pub verdict: Status,
}

/// One reason behind a verdict, in words a person understands.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Finding {
    pub status: Status,
    pub text: String,
}

/// A mounted block-device filesystem.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Filesystem {
    pub mount_point: String,
    pub fstype: String,
    /// The mount source, e.g. `/dev/nvme0n1p2` or `tank/data`.
    pub source: String,
    /// Name of the `Drive` it lives on, if it could be traced to one.
    pub drive: Option<String>,
    pub size_bytes: u64,
    pub used_bytes: u64,
    /// Space an unprivileged user can still write.
    pub available_bytes: u64,
    /// When the filesystem becomes full at its present growth, from the history.
    pub full: Option<Forecast>,
    pub status: Status,
}

impl Filesystem {
    /// Used share as `df` shows it: used / (used + available).
    pub fn used_percent(&self) -> f64 {
        percent(self.used_bytes, self.used_bytes + self.available_bytes)
    }
}

/// A systemd unit the agent watches.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Service {
    /// Unit name, e.g. `gitea.service`.
    pub name: String,
    pub description: String,
    /// `loaded`, `not-found`, `masked`...
    pub load_state: String,
    /// `active`, `failed`, `activating`...
    pub active_state: String,
    /// `running`, `dead`, `auto-restart`...
    pub sub_state: String,
    /// The result of the last run: `success`, `exit-code`, `oom-kill`...
    pub result: String,
    /// Automatic restarts since the unit was last started by hand.
    pub restarts: u32,
    /// When the unit last changed state, milliseconds since the Unix epoch.
    pub since_ms: Option<u64>,
    pub memory_bytes: Option<u64>,
    /// `MemoryMax=`: the hard limit.
    pub memory_max_bytes: Option<u64>,
    /// `MemoryHigh=`: the throttling limit.
    pub memory_high_bytes: Option<u64>,
    /// CPU use since the previous sample, percent of one CPU.
    pub cpu_percent: Option<f64>,
    pub tasks: Option<u64>,
    pub io_read_bytes: Option<u64>,
    pub io_write_bytes: Option<u64>,
    /// OOM kills in the unit's cgroup, ever (cgroup `memory.events`).
    pub oom_kills: Option<u64>,
    /// Time the unit was held back by its CPU quota, microseconds, ever.
    pub cpu_throttled_usec: Option<u64>,
    /// Disk used by the unit's own directories (StateDirectory, CacheDirectory,
    /// LogsDirectory, WorkingDirectory, configured extra paths).
    pub disk_bytes: Option<u64>,
    /// The directories measured for `disk_bytes`.
    pub disk_paths: Vec<String>,
    /// The walk hit its time or entry budget: `disk_bytes` is a lower bound.
    pub disk_partial: bool,
    /// Directories that could not be measured, and why.
    pub disk_errors: Vec<String>,
    pub status: Status,
    /// Why the status is what it is, when it is not ok.
    pub reason: Option<String>,
}

/// A backup job (filled in by the backup collector).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Backup {
    pub name: String,
    /// `restic`, `borg`, or another tool's name.
    pub kind: String,
    /// The systemd unit that runs the job.
    pub unit: String,
    /// When the last run started, milliseconds since the Unix epoch.
    pub last_run_ms: Option<u64>,
    /// systemd's result of the last run (`success`, `exit-code`...), or `running`.
    pub result: Option<String>,
    pub duration_seconds: Option<u64>,
    /// When the job's timer fires next, milliseconds since the Unix epoch.
    pub next_run_ms: Option<u64>,
    pub status: Status,
    /// Why the status is what it is, when it is not ok.
    pub reason: Option<String>,
}

/// Which NixOS system a host runs, which one it booted, and whether it needs a
/// reboot to run all of the current one.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NixosState {
    /// Number of the system profile's generation that is the current system
    /// (`/nix/var/nix/profiles/system-N-link`); `None` when the current system
    /// is no generation of the profile (e.g. after `nixos-rebuild test`).
    pub generation: Option<u64>,
    /// When that generation was made (its link's mtime, as `nix-env
    /// --list-generations` reports it), milliseconds since the Unix epoch.
    pub generation_ms: Option<u64>,
    /// Store path of the running configuration (`/run/current-system`).
    pub current_system: String,
    /// Store path of the configuration the host booted (`/run/booted-system`);
    /// `None` when the host does not say.
    pub booted_system: Option<String>,
    /// The booted kernel, initrd or kernel modules differ from the current system's.
    pub reboot_needed: bool,
    /// What differs, one entry each, e.g. `kernel 6.6.30 -> 6.6.32`.
    pub reboot_reasons: Vec<String>,
    /// The current system's NixOS version label, e.g. `25.05.20250612.1234567`.
    pub version: Option<String>,
    /// `system.configurationRevision` of the current system (usually the
    /// configuration flake's git revision), when it is set.
    pub configuration_revision: Option<String>,
    /// Warning while a reboot is needed; unknown when the booted system is unknown.
    pub status: Status,
}

/// The outcome of one collector's last run.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CollectorReport {
    /// `cpu`, `memory`, `storage`, `gpu`, ...
    pub name: String,
    /// When it last ran, in milliseconds since the Unix epoch.
    pub collected_ms: u64,
    /// How long the run took.
    pub duration_us: u64,
    /// What went wrong, in words a person can act on; `None` when it worked.
    pub error: Option<String>,
    /// Something worth saying that is not an error, e.g. "systemd not available".
    pub note: Option<String>,
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filesystem_percent_matches_df() {
        // df rounds used / (used + avail) up; reserved blocks are not in either.
        let fs = Filesystem { size_bytes: 200, used_bytes: 49, available_bytes: 51, ..Default::default() };
        assert!((fs.used_percent() - 49.0).abs() < 1e-9);
    }

    #[test]
    fn zram_ratio_needs_data() {
        let empty = Zram::default();
        assert_eq!(empty.compression_ratio(), None);
        let z = Zram { original_bytes: 64 << 20, compressed_bytes: 1 << 20, ..Default::default() };
        assert_eq!(z.compression_ratio(), Some(64.0));
    }

    #[test]
    fn failing_collector_makes_the_host_unknown_not_ok() {
        let mut s = HostSnapshot::default();
        s.collectors.push(CollectorReport { name: "cpu".into(), ..Default::default() });
        assert_eq!(s.worst_status(), Status::Ok);
        s.collectors.push(CollectorReport { name: "gpu".into(), error: Some("boom".into()), ..Default::default() });
        assert_eq!(s.worst_status(), Status::Unknown);
        s.memory = Some(Memory { status: Status::Critical, ..Default::default() });
        assert_eq!(s.worst_status(), Status::Critical);
    }

    #[test]
    fn a_host_that_needs_a_reboot_is_a_warning() {
        let mut s = HostSnapshot { nixos: Some(NixosState::default()), ..Default::default() };
        assert_eq!(s.worst_status(), Status::Ok);
        s.nixos = Some(NixosState { reboot_needed: true, status: Status::Warning, ..Default::default() });
        assert_eq!(s.worst_status(), Status::Warning);
    }

    #[test]
    fn a_snapshot_without_nixos_decodes_as_not_nixos_and_unknown_fields_are_ignored() {
        let old = r#"{"host":"srv01","seq":3}"#;
        assert_eq!(serde_json::from_str::<HostSnapshot>(old).unwrap().nixos, None);
        let newer = r#"{"nixos":{"generation":7,"reboot_needed":true,"status":"pending","boot_loader":"grub"}}"#;
        let n = serde_json::from_str::<HostSnapshot>(newer).unwrap().nixos.unwrap();
        assert_eq!((n.generation, n.reboot_needed, n.status), (Some(7), true, Status::Unknown));
    }
}

/// When a growing value reaches its limit, from a robust fit over its
/// history: the likeliest date and a range around it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Forecast {
    /// The fit's date, milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The range the date likely falls in.
    pub earliest_ms: u64,
    pub latest_ms: u64,
    /// Growth per day in the series' unit (percentage points for wear).
    pub per_day: f64,
    /// Days of history the fit used.
    pub days: f64,
}
