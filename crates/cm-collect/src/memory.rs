//! Memory: /proc/meminfo, zram devices (mm_stat), tmpfs mounts and VM tunables.

use std::collections::HashMap;

use cm_proto::{Memory, Tmpfs, VmTunables, Zram};

use crate::cpu::sorted_entries;
use crate::error::{CollectError, ParseError};
use crate::storage::{read_mounts, statvfs};
use crate::sysroot::{read_attr, read_u64, SysRoot};

/// The /proc/meminfo fields the dashboard uses, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Meminfo {
    pub total_bytes: u64,
    pub available_bytes: u64,
    /// True when the kernel had no `MemAvailable` and it was estimated.
    pub available_estimated: bool,
    pub swap_total_bytes: u64,
    pub swap_free_bytes: u64,
}

/// Parses /proc/meminfo. Kernels before 3.14 lack `MemAvailable`; then it is
/// estimated as free + buffers + page cache + reclaimable slab - shmem.
pub fn parse_meminfo(text: &str) -> Result<Meminfo, ParseError> {
    let mut fields = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let Some((key, rest)) = line.split_once(':') else {
            if line.trim().is_empty() {
                continue;
            }
            return Err(ParseError::new(i + 1, format!("expected \"Key: value kB\", found {line:?}")));
        };
        let mut parts = rest.split_whitespace();
        let value: u64 = parts
            .next()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| ParseError::new(i + 1, format!("expected a number after {key:?}")))?;
        let bytes = match parts.next() {
            Some("kB") => value * 1024,
            None => value,
            Some(unit) => return Err(ParseError::new(i + 1, format!("unknown unit {unit:?} for {key:?}"))),
        };
        fields.insert(key.trim(), bytes);
    }
    let get = |k: &str| fields.get(k).copied();
    let total_bytes = get("MemTotal").ok_or_else(|| ParseError::new(0, "no MemTotal line"))?;
    let (available_bytes, available_estimated) = match get("MemAvailable") {
        Some(v) => (v, false),
        None => {
            let free = get("MemFree").unwrap_or(0) + get("Buffers").unwrap_or(0) + get("Cached").unwrap_or(0);
            let estimate = (free + get("SReclaimable").unwrap_or(0)).saturating_sub(get("Shmem").unwrap_or(0));
            (estimate.min(total_bytes), true)
        }
    };
    Ok(Meminfo {
        total_bytes,
        available_bytes,
        available_estimated,
        swap_total_bytes: get("SwapTotal").unwrap_or(0),
        swap_free_bytes: get("SwapFree").unwrap_or(0),
    })
}

/// The first three fields of a zram device's `mm_stat`, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MmStat {
    pub original_bytes: u64,
    pub compressed_bytes: u64,
    pub memory_used_bytes: u64,
}

/// Parses `/sys/block/zramN/mm_stat`: `orig_data_size compr_data_size mem_used_total ...`.
pub fn parse_mm_stat(text: &str) -> Result<MmStat, ParseError> {
    let v: Vec<u64> = text
        .split_whitespace()
        .take(3)
        .map(|f| f.parse().map_err(|_| ParseError::new(1, format!("expected a byte count, found {f:?}"))))
        .collect::<Result<_, _>>()?;
    match v[..] {
        [original_bytes, compressed_bytes, memory_used_bytes] => {
            Ok(MmStat { original_bytes, compressed_bytes, memory_used_bytes })
        }
        _ => Err(ParseError::new(1, "expected at least orig_data_size, compr_data_size and mem_used_total")),
    }
}

/// The selected algorithm in `comp_algorithm` (`lzo [lz4] zstd` -> `lz4`).
pub fn parse_comp_algorithm(text: &str) -> Option<String> {
    let start = text.find('[')?;
    let end = text[start..].find(']')? + start;
    Some(text[start + 1..end].to_owned())
}

fn read_zram(root: &SysRoot) -> Vec<Zram> {
    sorted_entries(&root.path("/sys/block"))
        .into_iter()
        .filter_map(|dir| {
            let device = dir.file_name()?.to_str()?.to_owned();
            if !device.starts_with("zram") {
                return None;
            }
            let disksize_bytes = read_u64(&dir.join("disksize"))?;
            if disksize_bytes == 0 {
                return None; // allocated but not set up
            }
            let mm = parse_mm_stat(&read_attr(&dir.join("mm_stat"))?).ok()?;
            Some(Zram {
                device,
                disksize_bytes,
                original_bytes: mm.original_bytes,
                compressed_bytes: mm.compressed_bytes,
                memory_used_bytes: mm.memory_used_bytes,
                algorithm: read_attr(&dir.join("comp_algorithm")).and_then(|t| parse_comp_algorithm(&t)),
            })
        })
        .collect()
}

fn read_tmpfs(root: &SysRoot) -> Vec<Tmpfs> {
    let Ok(mounts) = read_mounts(root) else { return Vec::new() };
    let mut out: Vec<Tmpfs> = Vec::new();
    for m in mounts.iter().filter(|m| m.fstype == "tmpfs") {
        if out.iter().any(|t| t.mount_point == m.mount_point) {
            continue;
        }
        let usage = if root.is_live() { statvfs(&m.mount_point).ok() } else { None };
        let Some(usage) = usage else { continue };
        out.push(Tmpfs {
            mount_point: m.mount_point.clone(),
            size_bytes: usage.size_bytes,
            used_bytes: usage.used_bytes,
        });
    }
    out
}

fn read_vm(root: &SysRoot) -> VmTunables {
    let get = |name: &str| read_attr(&root.path(&format!("/proc/sys/vm/{name}")))?.parse().ok();
    VmTunables {
        dirty_ratio: get("dirty_ratio"),
        dirty_background_ratio: get("dirty_background_ratio"),
        swappiness: get("swappiness"),
    }
}

/// Reads memory, swap, zram, tmpfs and VM tunables. Only /proc/meminfo is required.
pub fn collect(root: &SysRoot) -> Result<Memory, CollectError> {
    let info = root.parse("/proc/meminfo", parse_meminfo)?;
    Ok(Memory {
        total_bytes: info.total_bytes,
        used_bytes: info.total_bytes.saturating_sub(info.available_bytes),
        available_bytes: info.available_bytes,
        available_estimated: info.available_estimated,
        swap_total_bytes: info.swap_total_bytes,
        swap_used_bytes: info.swap_total_bytes.saturating_sub(info.swap_free_bytes),
        zram: read_zram(root),
        tmpfs: read_tmpfs(root),
        vm: read_vm(root),
        status: Default::default(),
    })
}
