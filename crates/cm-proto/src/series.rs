//! Series names: the one place where a metric gets its name.
//!
//! History, export, alert rules and `/metrics` all flatten a
//! [`HostSnapshot`] through [`flatten`], so a value is called the same
//! everywhere: `cpu.load1`, `memory.used_percent`, `fs./var.used_percent`,
//! `drive.nvme0n1.wear_percent`, `service.gitea.service.memory_percent`.
//! [`CATALOGUE`] lists every shape a name can take, with its unit; a test
//! checks that `flatten` makes nothing outside it and that docs/SERIES.md is
//! the catalogue, so the documented names cannot drift from the code.

use crate::model::HostSnapshot;
use crate::status::Status;

/// One named value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub value: f64,
}

/// What a series' numbers count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Bytes,
    Percent,
    Celsius,
    Hertz,
    Watts,
    Seconds,
    /// A load average: runnable tasks, averaged.
    Load,
    /// A plain count (restarts, tasks, a generation number).
    Count,
    /// 1 or 0.
    Flag,
    /// A status level: 0 ok, 1 warning, 2 critical, 3 unknown.
    Level,
}

impl Unit {
    /// The step a stored value is rounded to: finer than any reading the
    /// collectors make, coarse enough that history stores small integers.
    pub fn step(self) -> f64 {
        match self {
            Unit::Bytes => 1024.0,
            Unit::Percent | Unit::Load => 0.01,
            Unit::Celsius | Unit::Watts => 0.1,
            Unit::Hertz => 1e6,
            Unit::Seconds | Unit::Count | Unit::Flag | Unit::Level => 1.0,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Unit::Bytes => "bytes",
            Unit::Percent => "percent",
            Unit::Celsius => "°C",
            Unit::Hertz => "Hz",
            Unit::Watts => "W",
            Unit::Seconds => "seconds",
            Unit::Load => "tasks",
            Unit::Count => "count",
            Unit::Flag => "0 or 1",
            Unit::Level => "0 ok, 1 warning, 2 critical, 3 unknown",
        }
    }
}

/// One shape of series name: `<...>` stands for an instance (a mount point,
/// a drive, a unit).
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub pattern: &'static str,
    pub unit: Unit,
    pub help: &'static str,
}

const fn shape(pattern: &'static str, unit: Unit, help: &'static str) -> Shape {
    Shape { pattern, unit, help }
}

/// Every series a snapshot can flatten to.
pub const CATALOGUE: &[Shape] = &[
    shape("status", Unit::Level, "the host's worst status"),
    shape("cpu.load1", Unit::Load, "1-minute load average"),
    shape("cpu.load5", Unit::Load, "5-minute load average"),
    shape("cpu.load15", Unit::Load, "15-minute load average"),
    shape("cpu.utilisation_percent", Unit::Percent, "busy share of all CPUs since the last sample"),
    shape("cpu.frequency_hz", Unit::Hertz, "mean current frequency of the cores"),
    shape("cpu.temperature_celsius", Unit::Celsius, "package temperature"),
    shape("cpu.status", Unit::Level, "CPU status (temperature)"),
    shape("memory.total_bytes", Unit::Bytes, "physical memory"),
    shape("memory.used_bytes", Unit::Bytes, "total minus available"),
    shape("memory.available_bytes", Unit::Bytes, "MemAvailable"),
    shape("memory.used_percent", Unit::Percent, "used of total"),
    shape("memory.swap_total_bytes", Unit::Bytes, "swap space"),
    shape("memory.swap_used_bytes", Unit::Bytes, "swap in use"),
    shape("memory.swap_used_percent", Unit::Percent, "swap used of swap total (absent without swap)"),
    shape("memory.status", Unit::Level, "memory status"),
    shape("zram.<device>.original_bytes", Unit::Bytes, "data stored in the zram device, uncompressed"),
    shape("zram.<device>.compressed_bytes", Unit::Bytes, "the same data compressed"),
    shape("gpu.<id>.utilisation_percent", Unit::Percent, "GPU busy share"),
    shape("gpu.<id>.memory_used_bytes", Unit::Bytes, "GPU memory in use"),
    shape("gpu.<id>.temperature_celsius", Unit::Celsius, "GPU temperature"),
    shape("gpu.<id>.power_watts", Unit::Watts, "GPU power draw"),
    shape("gpu.<id>.status", Unit::Level, "GPU status"),
    shape("drive.<name>.capacity_bytes", Unit::Bytes, "the drive's size"),
    shape("drive.<name>.used_bytes", Unit::Bytes, "used by the filesystems on the drive"),
    shape("drive.<name>.wear_percent", Unit::Percent, "rated endurance used (100 = worn out)"),
    shape("drive.<name>.temperature_celsius", Unit::Celsius, "drive temperature"),
    shape("drive.<name>.smart_passed", Unit::Flag, "the drive's own SMART verdict"),
    shape("drive.<name>.power_on_hours", Unit::Count, "hours powered on"),
    shape("drive.<name>.media_errors", Unit::Count, "media and data integrity errors"),
    shape("drive.<name>.reallocated_sectors", Unit::Count, "reallocated sectors"),
    shape("drive.<name>.pending_sectors", Unit::Count, "sectors waiting to be reallocated"),
    shape("drive.<name>.status", Unit::Level, "drive status (health, wear, temperature)"),
    shape("fs.<mount>.size_bytes", Unit::Bytes, "filesystem size (tmpfs included)"),
    shape("fs.<mount>.used_bytes", Unit::Bytes, "space in use"),
    shape("fs.<mount>.available_bytes", Unit::Bytes, "space available to unprivileged users"),
    shape("fs.<mount>.used_percent", Unit::Percent, "used of used + available, as df's Use%"),
    shape("fs.<mount>.status", Unit::Level, "filesystem status"),
    shape("service.<unit>.memory_bytes", Unit::Bytes, "the unit's cgroup memory"),
    shape("service.<unit>.memory_percent", Unit::Percent, "memory of MemoryMax (absent without a limit)"),
    shape("service.<unit>.cpu_percent", Unit::Percent, "CPU of one core since the last sample"),
    shape("service.<unit>.tasks", Unit::Count, "tasks in the unit's cgroup"),
    shape("service.<unit>.restarts", Unit::Count, "systemd's NRestarts"),
    shape("service.<unit>.disk_bytes", Unit::Bytes, "size of the unit's own directories"),
    shape("service.<unit>.active", Unit::Flag, "1 while the unit is active"),
    shape("service.<unit>.status", Unit::Level, "service status"),
    shape("backup.<name>.last_run_seconds", Unit::Seconds, "when the last run started, Unix time"),
    shape("backup.<name>.duration_seconds", Unit::Seconds, "how long the last run took"),
    shape("backup.<name>.status", Unit::Level, "backup status"),
    shape("nixos.generation", Unit::Count, "the current system's generation number"),
    shape("nixos.reboot_needed", Unit::Flag, "the booted kernel, initrd or modules differ from the current system's"),
    shape("nixos.status", Unit::Level, "NixOS status"),
];

/// The catalogue entry a concrete name belongs to.
pub fn shape_of(name: &str) -> Option<&'static Shape> {
    CATALOGUE.iter().find(|s| matches_pattern(s.pattern, name))
}

/// The unit of a concrete name; names outside the catalogue are plain counts.
pub fn unit_of(name: &str) -> Unit {
    shape_of(name).map_or(Unit::Count, |s| s.unit)
}

/// Whether `name` has the shape `pattern`: the fixed head and tail must match
/// and the instance between them must not be empty. Instances may contain
/// dots (`fs./var/lib.used_bytes`, `service.gitea.service.status`).
fn matches_pattern(pattern: &str, name: &str) -> bool {
    match (pattern.find('<'), pattern.find('>')) {
        (Some(open), Some(close)) => {
            let (head, tail) = (&pattern[..open], &pattern[close + 1..]);
            name.len() > head.len() + tail.len() && name.starts_with(head) && name.ends_with(tail)
        }
        _ => pattern == name,
    }
}

/// Whether `name` is selected by `selector`: the name itself, a prefix
/// ending in `*` (`fs.*`), or a glob with `*` anywhere (`fs.*.used_percent`).
pub fn selects(selector: &str, name: &str) -> bool {
    fn glob(p: &[u8], n: &[u8]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some((b'*', rest)) => (0..=n.len()).any(|i| glob(rest, &n[i..])),
            Some((c, rest)) => n.first() == Some(c) && glob(rest, &n[1..]),
        }
    }
    // Alert rules match every series of every snapshot: the common shapes go straight.
    match selector.split_once('*') {
        None => selector == name,
        Some((head, tail)) if !tail.contains('*') => {
            name.len() >= head.len() + tail.len() && name.starts_with(head) && name.ends_with(tail)
        }
        Some(_) => glob(selector.as_bytes(), name.as_bytes()),
    }
}

/// A status level as a number, in the order of Nagios-style checks.
pub fn level(status: Status) -> f64 {
    match status {
        Status::Ok => 0.0,
        Status::Warning => 1.0,
        Status::Critical => 2.0,
        Status::Unknown => 3.0,
    }
}

/// How a series is exposed to Prometheus: `cm_<part>_<field>`, the
/// instance as a label, base units (ratios for percentages, seconds for
/// hours), `_total` for counters, every status level in one `cm_status`.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub name: String,
    /// The label that carries the instance (`mountpoint`, `unit`...); `item` for `cm_status`.
    pub label: Option<&'static str>,
    pub counter: bool,
    /// Multiply the series' value by this.
    pub scale: f64,
}

/// The Prometheus metric of a catalogue shape.
pub fn metric(shape: &Shape) -> Metric {
    let pattern = shape.pattern;
    if pattern == "status" || pattern.ends_with(".status") {
        return Metric { name: "cm_status".into(), label: Some("item"), counter: false, scale: 1.0 };
    }
    let (head, field) = pattern.rsplit_once('.').map_or(("", pattern), |(h, f)| (h, f));
    let (part, label) = match head.split('.').next().unwrap_or("") {
        "fs" => ("filesystem", Some("mountpoint")),
        "drive" => ("drive", Some("device")),
        "service" => ("service", Some("unit")),
        "gpu" => ("gpu", Some("gpu")),
        "zram" => ("zram", Some("device")),
        "backup" => ("backup", Some("backup")),
        other => (other, None),
    };
    let (field, scale, counter) = match (part, field) {
        ("drive", "power_on_hours") => ("power_on_seconds".to_string(), 3600.0, false),
        ("service", "restarts") => ("restarts_total".into(), 1.0, true),
        ("service", "memory_percent") => ("memory_limit_ratio".into(), 0.01, false),
        ("backup", "last_run_seconds") => ("last_run_timestamp_seconds".into(), 1.0, false),
        (_, f) if f.ends_with("_percent") => (f.replace("_percent", "_ratio"), 0.01, false),
        (_, f) if f.ends_with("_hz") => (f.replace("_hz", "_hertz"), 1.0, false),
        (_, f) => (f.to_string(), 1.0, false),
    };
    Metric { name: format!("cm_{part}_{field}"), label, counter, scale }
}

/// The instance a concrete series names: `/var` of `fs./var.used_bytes`;
/// for a status level, the item (`fs./var`, `cpu`, `host`).
pub fn instance<'a>(shape: &Shape, name: &'a str) -> &'a str {
    if shape.pattern == "status" {
        return "host";
    }
    if shape.pattern.ends_with(".status") {
        return name.strip_suffix(".status").unwrap_or(name);
    }
    match (shape.pattern.find('<'), shape.pattern.find('>')) {
        (Some(open), Some(close)) => &name[open..name.len() - (shape.pattern.len() - close - 1)],
        _ => name,
    }
}

/// The catalogue as the table in docs/SERIES.md.
pub fn markdown_table() -> String {
    let mut out = String::from("| series | unit | stored to | Prometheus | what |\n|---|---|---|---|---|\n");
    for s in CATALOGUE {
        let m = metric(s);
        let prom = match (m.label, m.scale) {
            (Some(label), scale) if scale != 1.0 => format!("`{}{{{label}}}` (x {scale})", m.name),
            (Some(label), _) => format!("`{}{{{label}}}`", m.name),
            (None, scale) if scale != 1.0 => format!("`{}` (x {scale})", m.name),
            (None, _) => format!("`{}`", m.name),
        };
        out.push_str(&format!("| `{}` | {} | {} | {prom} | {} |\n", s.pattern, s.unit.label(), s.unit.step(), s.help));
    }
    out
}

pub const NIXOS_GENERATION: &str = "nixos.generation";
pub const NIXOS_REBOOT_NEEDED: &str = "nixos.reboot_needed";

/// `fs.<mount point>.<field>`
pub fn filesystem(mount_point: &str, field: &str) -> String {
    format!("fs.{mount_point}.{field}")
}

/// `drive.<kernel name>.<field>`
pub fn drive(name: &str, field: &str) -> String {
    format!("drive.{name}.{field}")
}

/// `gpu.<id>.<field>`
pub fn gpu(id: &str, field: &str) -> String {
    format!("gpu.{id}.{field}")
}

/// `zram.<device>.<field>`
pub fn zram(device: &str, field: &str) -> String {
    format!("zram.{device}.{field}")
}

/// `service.<unit>.<field>`
pub fn service(name: &str, field: &str) -> String {
    format!("service.{name}.{field}")
}

/// `backup.<name>.<field>`
pub fn backup(name: &str, field: &str) -> String {
    format!("backup.{name}.{field}")
}

fn percent(part: f64, whole: f64) -> Option<f64> {
    (whole > 0.0).then(|| part / whole * 100.0)
}

/// Every numeric value in `snap` under its series name. Absent values are left out.
pub fn flatten(snap: &HostSnapshot) -> Vec<Sample> {
    let mut out = Vec::with_capacity(64);
    let mut put = |name: String, value: Option<f64>| {
        if let Some(value) = value.filter(|v| v.is_finite()) {
            out.push(Sample { name, value });
        }
    };
    put("status".into(), Some(level(snap.worst_status())));
    if let Some(cpu) = &snap.cpu {
        put("cpu.load1".into(), Some(cpu.load1));
        put("cpu.load5".into(), Some(cpu.load5));
        put("cpu.load15".into(), Some(cpu.load15));
        put("cpu.utilisation_percent".into(), cpu.utilisation_percent);
        put("cpu.frequency_hz".into(), cpu.frequency_hz.map(|v| v as f64));
        put("cpu.temperature_celsius".into(), cpu.temperature_celsius);
        put("cpu.status".into(), Some(level(cpu.status)));
    }
    if let Some(mem) = &snap.memory {
        let (total, used) = (mem.total_bytes as f64, mem.used_bytes as f64);
        put("memory.total_bytes".into(), Some(total));
        put("memory.used_bytes".into(), Some(used));
        put("memory.available_bytes".into(), Some(mem.available_bytes as f64));
        put("memory.used_percent".into(), percent(used, total));
        put("memory.swap_total_bytes".into(), Some(mem.swap_total_bytes as f64));
        put("memory.swap_used_bytes".into(), Some(mem.swap_used_bytes as f64));
        put("memory.swap_used_percent".into(), percent(mem.swap_used_bytes as f64, mem.swap_total_bytes as f64));
        put("memory.status".into(), Some(level(mem.status)));
        for z in &mem.zram {
            put(zram(&z.device, "original_bytes"), Some(z.original_bytes as f64));
            put(zram(&z.device, "compressed_bytes"), Some(z.compressed_bytes as f64));
        }
    }
    for g in &snap.gpus {
        put(gpu(&g.id, "utilisation_percent"), g.utilisation_percent);
        put(gpu(&g.id, "memory_used_bytes"), g.memory_used_bytes.map(|v| v as f64));
        put(gpu(&g.id, "temperature_celsius"), g.temperature_celsius);
        put(gpu(&g.id, "power_watts"), g.power_watts);
        put(gpu(&g.id, "status"), Some(level(g.status)));
    }
    for d in &snap.drives {
        put(drive(&d.name, "capacity_bytes"), Some(d.capacity_bytes as f64));
        put(drive(&d.name, "used_bytes"), Some(d.used_bytes as f64));
        if let Some(h) = &d.health {
            let count = |v: Option<u64>| v.map(|v| v as f64);
            put(drive(&d.name, "wear_percent"), h.wear_percent);
            put(drive(&d.name, "temperature_celsius"), h.temperature_celsius);
            put(drive(&d.name, "smart_passed"), h.smart_passed.map(|p| if p { 1.0 } else { 0.0 }));
            put(drive(&d.name, "power_on_hours"), count(h.power_on_hours));
            put(drive(&d.name, "media_errors"), count(h.media_errors));
            put(drive(&d.name, "reallocated_sectors"), count(h.reallocated_sectors));
            put(drive(&d.name, "pending_sectors"), count(h.pending_sectors));
        }
        put(drive(&d.name, "status"), Some(level(d.status)));
    }
    for f in &snap.filesystems {
        let (used, avail) = (f.used_bytes as f64, f.available_bytes as f64);
        put(filesystem(&f.mount_point, "size_bytes"), Some(f.size_bytes as f64));
        put(filesystem(&f.mount_point, "used_bytes"), Some(used));
        put(filesystem(&f.mount_point, "available_bytes"), Some(avail));
        put(filesystem(&f.mount_point, "used_percent"), percent(used, used + avail));
        put(filesystem(&f.mount_point, "status"), Some(level(f.status)));
    }
    // A tmpfs is a filesystem like any other, whichever panel draws it.
    for t in snap.memory.iter().flat_map(|m| &m.tmpfs) {
        if snap.filesystems.iter().any(|f| f.mount_point == t.mount_point) {
            continue;
        }
        let (size, used) = (t.size_bytes as f64, t.used_bytes as f64);
        put(filesystem(&t.mount_point, "size_bytes"), Some(size));
        put(filesystem(&t.mount_point, "used_bytes"), Some(used));
        put(filesystem(&t.mount_point, "available_bytes"), Some((size - used).max(0.0)));
        put(filesystem(&t.mount_point, "used_percent"), percent(used, size));
    }
    for s in snap.services.iter().flatten() {
        let memory = s.memory_bytes.map(|v| v as f64);
        put(service(&s.name, "memory_bytes"), memory);
        put(
            service(&s.name, "memory_percent"),
            memory.zip(s.memory_max_bytes).and_then(|(m, max)| percent(m, max as f64)),
        );
        put(service(&s.name, "cpu_percent"), s.cpu_percent);
        put(service(&s.name, "tasks"), s.tasks.map(|v| v as f64));
        put(service(&s.name, "restarts"), Some(s.restarts as f64));
        put(service(&s.name, "disk_bytes"), s.disk_bytes.map(|v| v as f64));
        put(service(&s.name, "active"), Some(if s.active_state == "active" { 1.0 } else { 0.0 }));
        put(service(&s.name, "status"), Some(level(s.status)));
    }
    for b in snap.backups.iter().flatten() {
        put(backup(&b.name, "last_run_seconds"), b.last_run_ms.map(|ms| (ms / 1000) as f64));
        put(backup(&b.name, "duration_seconds"), b.duration_seconds.map(|v| v as f64));
        put(backup(&b.name, "status"), Some(level(b.status)));
    }
    if let Some(n) = &snap.nixos {
        put(NIXOS_GENERATION.into(), n.generation.map(|g| g as f64));
        put(NIXOS_REBOOT_NEEDED.into(), Some(if n.reboot_needed { 1.0 } else { 0.0 }));
        put("nixos.status".into(), Some(level(n.status)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;

    /// A snapshot with every part filled in, so that every shape is made.
    fn everything() -> HostSnapshot {
        let health = DriveHealth {
            wear_percent: Some(3.0),
            temperature_celsius: Some(41.0),
            smart_passed: Some(true),
            power_on_hours: Some(100),
            media_errors: Some(0),
            reallocated_sectors: Some(0),
            pending_sectors: Some(0),
            ..Default::default()
        };
        HostSnapshot {
            cpu: Some(Cpu {
                load1: 0.5,
                utilisation_percent: Some(3.0),
                frequency_hz: Some(3_000_000_000),
                temperature_celsius: Some(50.0),
                ..Default::default()
            }),
            memory: Some(Memory {
                total_bytes: 8 << 30,
                used_bytes: 2 << 30,
                swap_total_bytes: 1 << 30,
                zram: vec![Zram { device: "zram0".into(), ..Default::default() }],
                tmpfs: vec![
                    Tmpfs { mount_point: "/dev/shm".into(), size_bytes: 1 << 30, used_bytes: 1 << 28 },
                    Tmpfs { mount_point: "/".into(), size_bytes: 1, used_bytes: 1 },
                ],
                ..Default::default()
            }),
            gpus: vec![Gpu {
                id: "0000:01:00.0".into(),
                utilisation_percent: Some(1.0),
                memory_used_bytes: Some(1),
                temperature_celsius: Some(40.0),
                power_watts: Some(20.0),
                ..Default::default()
            }],
            filesystems: vec![
                Filesystem { mount_point: "/".into(), used_bytes: 30, available_bytes: 70, ..Default::default() },
                Filesystem { mount_point: "/var".into(), used_bytes: 3, ..Default::default() },
            ],
            drives: vec![Drive { name: "nvme0n1".into(), health: Some(health), ..Default::default() }],
            services: Some(vec![Service {
                name: "gitea.service".into(),
                memory_bytes: Some(50),
                memory_max_bytes: Some(200),
                cpu_percent: Some(1.0),
                tasks: Some(3),
                disk_bytes: Some(10),
                active_state: "active".into(),
                ..Default::default()
            }]),
            backups: Some(vec![Backup {
                name: "b2".into(),
                last_run_ms: Some(1_700_000_000_000),
                duration_seconds: Some(60),
                ..Default::default()
            }]),
            nixos: Some(NixosState { generation: Some(7), ..Default::default() }),
            ..Default::default()
        }
    }

    #[test]
    fn every_name_has_a_shape_in_the_catalogue_and_every_shape_is_made() {
        let samples = flatten(&everything());
        for s in &samples {
            assert!(shape_of(&s.name).is_some(), "{} is not in the catalogue", s.name);
        }
        for shape in CATALOGUE {
            assert!(
                samples.iter().any(|s| matches_pattern(shape.pattern, &s.name)),
                "nothing flattens to {}",
                shape.pattern
            );
        }
        let mut names: Vec<_> = samples.iter().map(|s| &s.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), samples.len(), "a name is made twice");
    }

    #[test]
    fn derived_percentages_are_what_rules_need() {
        let samples = flatten(&everything());
        let get = |n: &str| samples.iter().find(|s| s.name == n).map(|s| s.value);
        assert_eq!(get("memory.used_percent"), Some(25.0));
        assert_eq!(get("fs./.used_percent"), Some(30.0), "used of used + available, as df");
        assert_eq!(get("fs./dev/shm.used_percent"), Some(25.0), "a tmpfs is a filesystem");
        assert_eq!(get("fs./.size_bytes"), Some(0.0), "the filesystem entry wins over a tmpfs of the same mount");
        assert_eq!(get("fs./var.used_percent"), Some(100.0));
        assert_eq!(get("service.gitea.service.memory_percent"), Some(25.0));
        assert_eq!(get("drive.nvme0n1.wear_percent"), Some(3.0));
        assert_eq!(get("memory.swap_used_percent"), Some(0.0));
        assert_eq!(get("cpu.temperature_celsius"), Some(50.0));
        let bare = flatten(&HostSnapshot { memory: Some(Memory::default()), ..Default::default() });
        assert!(!bare.iter().any(|s| s.name.ends_with("_percent")), "no percentage of nothing: {bare:?}");
    }

    #[test]
    fn selectors_are_names_prefixes_and_globs() {
        assert!(selects("fs./.used_percent", "fs./.used_percent"));
        assert!(selects("fs.*", "fs./var.used_bytes"));
        assert!(selects("fs.*.used_percent", "fs./var/lib.used_percent"));
        assert!(!selects("fs.*.used_percent", "fs./var.used_bytes"));
        assert!(selects("service.*.memory_percent", "service.gitea.service.memory_percent"));
        assert!(!selects("cpu.load1", "cpu.load15"));
    }

    #[test]
    fn prometheus_names_follow_its_conventions_and_are_unique() {
        let m = |p: &str| metric(CATALOGUE.iter().find(|s| s.pattern == p).unwrap());
        assert_eq!(m("cpu.load1").name, "cm_cpu_load1");
        assert_eq!(
            (m("fs.<mount>.used_bytes").name, m("fs.<mount>.used_bytes").label),
            ("cm_filesystem_used_bytes".into(), Some("mountpoint"))
        );
        assert_eq!(m("service.<unit>.memory_bytes").label, Some("unit"));
        assert_eq!(
            (m("drive.<name>.wear_percent").name, m("drive.<name>.wear_percent").scale),
            ("cm_drive_wear_ratio".into(), 0.01)
        );
        assert_eq!(
            (m("drive.<name>.power_on_hours").name, m("drive.<name>.power_on_hours").scale),
            ("cm_drive_power_on_seconds".into(), 3600.0)
        );
        assert!(m("service.<unit>.restarts").counter && m("service.<unit>.restarts").name.ends_with("_total"));
        assert_eq!(m("cpu.frequency_hz").name, "cm_cpu_frequency_hertz");
        let mut names: Vec<String> =
            CATALOGUE.iter().map(metric).filter(|m| m.name != "cm_status").map(|m| m.name).collect();
        for n in &names {
            assert!(n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'), "{n}");
        }
        let all = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), all, "two series share a metric name");
        let fs = CATALOGUE.iter().find(|s| s.pattern == "fs.<mount>.used_bytes").unwrap();
        assert_eq!(instance(fs, "fs./var/lib.used_bytes"), "/var/lib");
        let st = CATALOGUE.iter().find(|s| s.pattern == "service.<unit>.status").unwrap();
        assert_eq!(instance(st, "service.a.service.status"), "service.a.service");
        assert_eq!(instance(&CATALOGUE[0], "status"), "host");
    }

    #[test]
    fn status_levels_count_up_with_severity() {
        let levels: Vec<f64> =
            [Status::Ok, Status::Warning, Status::Critical, Status::Unknown].into_iter().map(level).collect();
        assert_eq!(levels, [0.0, 1.0, 2.0, 3.0]);
    }

    #[test]
    fn nixos_state_flattens_to_its_generation_and_a_reboot_flag() {
        let nixos = NixosState { generation: Some(42), reboot_needed: true, ..Default::default() };
        let samples = flatten(&HostSnapshot { nixos: Some(nixos), ..Default::default() });
        let get = |n: &str| samples.iter().find(|s| s.name == n).map(|s| s.value);
        assert_eq!((get(NIXOS_GENERATION), get(NIXOS_REBOOT_NEEDED)), (Some(42.0), Some(1.0)));

        let unknown = NixosState { generation: None, ..Default::default() };
        let samples = flatten(&HostSnapshot { nixos: Some(unknown), ..Default::default() });
        assert!(samples.iter().all(|s| s.name != NIXOS_GENERATION), "an unknown generation is left out, not 0");
    }

    /// docs/SERIES.md holds the catalogue; `CM_BLESS=1 cargo test -p cm-proto` rewrites it.
    #[test]
    fn docs_series_md_is_the_catalogue() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/SERIES.md");
        let doc = std::fs::read_to_string(&path).unwrap_or_default();
        let (begin, end) = ("<!-- catalogue begin -->\n", "<!-- catalogue end -->");
        let table = markdown_table();
        let current = doc.find(begin).and_then(|b| doc[b..].find(end).map(|e| &doc[b + begin.len()..b + e]));
        if current != Some(table.as_str()) {
            if std::env::var_os("CM_BLESS").is_some() {
                let (b, e) = (doc.find(begin).expect("begin marker"), doc.find(end).expect("end marker"));
                std::fs::write(&path, format!("{}{begin}{table}{}", &doc[..b], &doc[e..])).unwrap();
            } else {
                panic!("docs/SERIES.md does not list the catalogue; run CM_BLESS=1 cargo test -p cm-proto");
            }
        }
    }
}
