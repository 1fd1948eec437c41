//! Series names: the one place where a metric gets its name.
//!
//! History, export and `/metrics` all flatten a [`HostSnapshot`] through
//! [`flatten`], so a value is called the same everywhere: `cpu.load1`,
//! `memory.used_bytes`, `fs./var.used_bytes`, `drive.nvme0n1.capacity_bytes`,
//! `gpu.0000:01:00.0.temperature_celsius`, `nixos.generation`.

use crate::model::HostSnapshot;

/// One named value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub value: f64,
}

pub const CPU_LOAD1: &str = "cpu.load1";
pub const CPU_LOAD5: &str = "cpu.load5";
pub const CPU_LOAD15: &str = "cpu.load15";
pub const CPU_UTILISATION_PERCENT: &str = "cpu.utilisation_percent";
pub const CPU_FREQUENCY_HZ: &str = "cpu.frequency_hz";
pub const CPU_TEMPERATURE_CELSIUS: &str = "cpu.temperature_celsius";
pub const MEMORY_TOTAL_BYTES: &str = "memory.total_bytes";
pub const MEMORY_USED_BYTES: &str = "memory.used_bytes";
pub const MEMORY_AVAILABLE_BYTES: &str = "memory.available_bytes";
pub const SWAP_TOTAL_BYTES: &str = "memory.swap_total_bytes";
pub const SWAP_USED_BYTES: &str = "memory.swap_used_bytes";
/// The current system's generation number, so a history shows each switch.
pub const NIXOS_GENERATION: &str = "nixos.generation";
/// 1 while the booted kernel, initrd or modules differ from the current system's, else 0.
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

/// Every numeric value in `snap` under its series name. Absent values are left out.
pub fn flatten(snap: &HostSnapshot) -> Vec<Sample> {
    let mut out = Vec::with_capacity(64);
    let mut put = |name: String, value: Option<f64>| {
        if let Some(value) = value {
            out.push(Sample { name, value });
        }
    };
    if let Some(cpu) = &snap.cpu {
        put(CPU_LOAD1.into(), Some(cpu.load1));
        put(CPU_LOAD5.into(), Some(cpu.load5));
        put(CPU_LOAD15.into(), Some(cpu.load15));
        put(CPU_UTILISATION_PERCENT.into(), cpu.utilisation_percent);
        put(CPU_FREQUENCY_HZ.into(), cpu.frequency_hz.map(|v| v as f64));
        put(CPU_TEMPERATURE_CELSIUS.into(), cpu.temperature_celsius);
    }
    if let Some(mem) = &snap.memory {
        put(MEMORY_TOTAL_BYTES.into(), Some(mem.total_bytes as f64));
        put(MEMORY_USED_BYTES.into(), Some(mem.used_bytes as f64));
        put(MEMORY_AVAILABLE_BYTES.into(), Some(mem.available_bytes as f64));
        put(SWAP_TOTAL_BYTES.into(), Some(mem.swap_total_bytes as f64));
        put(SWAP_USED_BYTES.into(), Some(mem.swap_used_bytes as f64));
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
    }
    for d in &snap.drives {
        put(drive(&d.name, "capacity_bytes"), Some(d.capacity_bytes as f64));
        put(drive(&d.name, "used_bytes"), Some(d.used_bytes as f64));
    }
    for f in &snap.filesystems {
        put(filesystem(&f.mount_point, "size_bytes"), Some(f.size_bytes as f64));
        put(filesystem(&f.mount_point, "used_bytes"), Some(f.used_bytes as f64));
        put(filesystem(&f.mount_point, "available_bytes"), Some(f.available_bytes as f64));
    }
    for s in snap.services.iter().flatten() {
        put(service(&s.name, "memory_bytes"), s.memory_bytes.map(|v| v as f64));
        put(service(&s.name, "cpu_percent"), s.cpu_percent);
        put(service(&s.name, "restarts"), Some(s.restarts as f64));
    }
    if let Some(n) = &snap.nixos {
        put(NIXOS_GENERATION.into(), n.generation.map(|g| g as f64));
        put(NIXOS_REBOOT_NEEDED.into(), Some(if n.reboot_needed { 1.0 } else { 0.0 }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;

    #[test]
    fn names_follow_the_documented_shape_and_are_unique() {
        let snap = HostSnapshot {
            cpu: Some(Cpu { load1: 0.5, temperature_celsius: None, ..Default::default() }),
            memory: Some(Memory { used_bytes: 7, ..Default::default() }),
            filesystems: vec![
                Filesystem { mount_point: "/".into(), ..Default::default() },
                Filesystem { mount_point: "/var".into(), used_bytes: 3, ..Default::default() },
            ],
            drives: vec![Drive { name: "nvme0n1".into(), ..Default::default() }],
            ..Default::default()
        };
        let samples = flatten(&snap);
        let get = |n: &str| samples.iter().find(|s| s.name == n).map(|s| s.value);
        assert_eq!(get("cpu.load1"), Some(0.5));
        assert_eq!(get("memory.used_bytes"), Some(7.0));
        assert_eq!(get("fs./var.used_bytes"), Some(3.0));
        assert!(get("drive.nvme0n1.capacity_bytes").is_some());
        assert_eq!(get("cpu.temperature_celsius"), None, "absent values are left out");
        assert_eq!(get("nixos.generation"), None, "not NixOS: no nixos series");
        let mut names: Vec<_> = samples.iter().map(|s| &s.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), samples.len());
    }

    #[test]
    fn nixos_state_flattens_to_its_generation_and_a_reboot_flag() {
        let nixos = NixosState { generation: Some(42), reboot_needed: true, ..Default::default() };
        let samples = flatten(&HostSnapshot { nixos: Some(nixos), ..Default::default() });
        let get = |n: &str| samples.iter().find(|s| s.name == n).map(|s| s.value);
        assert_eq!((get(NIXOS_GENERATION), get(NIXOS_REBOOT_NEEDED)), (Some(42.0), Some(1.0)));

        let unknown = NixosState { generation: None, ..Default::default() };
        let samples = flatten(&HostSnapshot { nixos: Some(unknown), ..Default::default() });
        let names: Vec<&str> = samples.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, [NIXOS_REBOOT_NEEDED], "an unknown generation is left out, not 0");
    }
}
