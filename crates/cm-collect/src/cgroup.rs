//! Per-unit cgroup counters that D-Bus does not carry: OOM kills and CPU
//! throttling. cgroup v2 first (NixOS), then the v1 hierarchies.

use crate::error::ParseError;
use crate::sysroot::{read_attr, SysRoot};

/// Parses a flat keyed cgroup file (`memory.events`, `cpu.stat`,
/// `memory.oom_control`): `key value` per line, into `(key, value)` pairs.
pub fn parse_flat_keyed(text: &str) -> Result<Vec<(String, u64)>, ParseError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut parts = line.split_whitespace();
        let (Some(key), Some(value), None) = (parts.next(), parts.next(), parts.next()) else {
            if line.trim().is_empty() {
                continue;
            }
            return Err(ParseError::new(i + 1, format!("expected \"key value\", found {line:?}")));
        };
        let value = value.parse().map_err(|_| ParseError::new(i + 1, format!("expected a count for {key:?}")))?;
        out.push((key.to_owned(), value));
    }
    Ok(out)
}

fn get(pairs: &[(String, u64)], key: &str) -> Option<u64> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
}

/// What a unit's cgroup says about memory pressure and CPU limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CgroupCounters {
    /// Processes killed by the OOM killer in this cgroup, ever.
    pub oom_kills: Option<u64>,
    /// Scheduler periods in which the cgroup was throttled by its CPU quota.
    pub throttled_periods: Option<u64>,
    /// Time spent throttled, in microseconds.
    pub throttled_usec: Option<u64>,
}

/// Reads the counters of `control_group` (as systemd reports it, e.g.
/// `/system.slice/gitea.service`). Missing files leave fields `None`.
pub fn read_counters(root: &SysRoot, control_group: &str) -> CgroupCounters {
    let cg = control_group.trim_start_matches('/');
    let read = |path: String| {
        let text = read_attr(&root.path(&path))?;
        parse_flat_keyed(&text).ok()
    };
    let mut c = CgroupCounters::default();
    // v2: the unified hierarchy at /sys/fs/cgroup, or at .../unified on hybrid systems.
    for base in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
        if let Some(events) = read(format!("{base}/{cg}/memory.events")) {
            c.oom_kills = get(&events, "oom_kill");
        }
        if let Some(stat) = read(format!("{base}/{cg}/cpu.stat")) {
            c.throttled_periods = c.throttled_periods.or(get(&stat, "nr_throttled"));
            c.throttled_usec = c.throttled_usec.or(get(&stat, "throttled_usec"));
        }
        if c.oom_kills.is_some() {
            return c;
        }
    }
    // v1: memory.oom_control carries oom_kill since Linux 4.13; cpu.stat has throttled_time in ns.
    if let Some(oom) = read(format!("/sys/fs/cgroup/memory/{cg}/memory.oom_control")) {
        c.oom_kills = get(&oom, "oom_kill");
    }
    for base in ["/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct"] {
        if let Some(stat) = read(format!("{base}/{cg}/cpu.stat")) {
            c.throttled_periods = c.throttled_periods.or(get(&stat, "nr_throttled"));
            c.throttled_usec = c.throttled_usec.or(get(&stat, "throttled_time").map(|ns| ns / 1000));
        }
    }
    c
}
