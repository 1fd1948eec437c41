//! Snapshot updates: after the first full snapshot, an agent sends only what
//! changed, so that a host with 40 services costs well under 1 kB/s at a 2 s
//! interval.
//!
//! A section (cpu, memory, drives...) travels when it changed; services travel
//! one by one. Changes too small to see are not sent: a service's memory within
//! 1 MiB or 1 %, its CPU within 0.5 points, a filesystem's use within 1 MiB or
//! 0.1 % of its size. Collector reports travel when an error or note changes.
//! QUIC streams are reliable and ordered, so an update always applies to the
//! snapshot it was computed from (`base_seq`).

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::model::*;

/// What changed between two snapshots of one host.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SnapshotUpdate {
    /// The sequence number of the snapshot this update produces.
    pub seq: u64,
    /// The sequence number of the snapshot it applies to.
    pub base_seq: u64,
    pub timestamp_ms: u64,
    pub uptime_seconds: u64,
    /// Each `Some` replaces that section; `None` leaves it as it was.
    pub cpu: Option<Option<Cpu>>,
    pub memory: Option<Option<Memory>>,
    pub gpus: Option<Vec<Gpu>>,
    pub drives: Option<Vec<Drive>>,
    pub filesystems: Option<Vec<Filesystem>>,
    pub backups: Option<Option<Vec<Backup>>>,
    pub collectors: Option<Vec<CollectorReport>>,
    /// `Some(false)` when the host stopped reporting services, `Some(true)` when it started.
    pub services_present: Option<bool>,
    /// Services that are new or changed, whole.
    pub services: Vec<Service>,
    /// Names of services no longer watched.
    pub services_removed: Vec<String>,
    /// Host identity fields, when they change.
    pub host: Option<String>,
    pub kernel: Option<String>,
    pub agent_version: Option<String>,
}

/// An update that does not fit the snapshot it is applied to.
#[derive(Debug, Error, PartialEq)]
#[error("update for snapshot {base} applied to snapshot {have}")]
pub struct DeltaError {
    pub base: u64,
    pub have: u64,
}

fn close_u64(a: Option<u64>, b: Option<u64>, abs: u64, rel: f64) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => {
            let d = a.abs_diff(b);
            d <= abs.max((a.max(b) as f64 * rel) as u64)
        }
        (a, b) => a == b,
    }
}

fn close_f64(a: Option<f64>, b: Option<f64>, abs: f64) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() <= abs,
        (a, b) => a == b,
    }
}

const MIB: u64 = 1 << 20;

/// True when a person looking at the dashboard would see no difference.
fn same_service(a: &Service, b: &Service) -> bool {
    let exact = Service {
        memory_bytes: None,
        cpu_percent: None,
        io_read_bytes: None,
        io_write_bytes: None,
        cpu_throttled_usec: None,
        since_ms: None,
        ..a.clone()
    } == Service {
        memory_bytes: None,
        cpu_percent: None,
        io_read_bytes: None,
        io_write_bytes: None,
        cpu_throttled_usec: None,
        since_ms: None,
        ..b.clone()
    };
    exact
        && a.since_ms == b.since_ms
        && close_u64(a.memory_bytes, b.memory_bytes, MIB, 0.01)
        && close_f64(a.cpu_percent, b.cpu_percent, 0.5)
        && close_u64(a.io_read_bytes, b.io_read_bytes, MIB, 0.01)
        && close_u64(a.io_write_bytes, b.io_write_bytes, MIB, 0.01)
        && close_u64(a.cpu_throttled_usec, b.cpu_throttled_usec, 1_000_000, 0.01)
}

fn same_filesystems(a: &[Filesystem], b: &[Filesystem]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(a, b)| {
            let rel = 0.001 * a.size_bytes.max(1) as f64 / a.used_bytes.max(1) as f64;
            Filesystem { used_bytes: 0, available_bytes: 0, ..a.clone() }
                == Filesystem { used_bytes: 0, available_bytes: 0, ..b.clone() }
                && close_u64(Some(a.used_bytes), Some(b.used_bytes), MIB, rel)
                && close_u64(Some(a.available_bytes), Some(b.available_bytes), MIB, rel)
        })
}

fn same_drives(a: &[Drive], b: &[Drive]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(a, b)| {
            Drive { used_bytes: 0, filesystem_bytes: 0, ..a.clone() }
                == Drive { used_bytes: 0, filesystem_bytes: 0, ..b.clone() }
                && close_u64(Some(a.used_bytes), Some(b.used_bytes), MIB, 0.001)
        })
}

fn same_collectors(a: &[CollectorReport], b: &[CollectorReport]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(a, b)| a.name == b.name && a.error == b.error && a.note == b.note)
}

/// The update that turns `prev` into (what a person would see of) `next`.
pub fn diff(prev: &HostSnapshot, next: &HostSnapshot) -> SnapshotUpdate {
    let mut u = SnapshotUpdate {
        seq: next.seq,
        base_seq: prev.seq,
        timestamp_ms: next.timestamp_ms,
        uptime_seconds: next.uptime_seconds,
        ..Default::default()
    };
    if prev.cpu != next.cpu {
        u.cpu = Some(next.cpu.clone());
    }
    if prev.memory != next.memory {
        u.memory = Some(next.memory.clone());
    }
    if prev.gpus != next.gpus {
        u.gpus = Some(next.gpus.clone());
    }
    if !same_drives(&prev.drives, &next.drives) {
        u.drives = Some(next.drives.clone());
    }
    if !same_filesystems(&prev.filesystems, &next.filesystems) {
        u.filesystems = Some(next.filesystems.clone());
    }
    if prev.backups != next.backups {
        u.backups = Some(next.backups.clone());
    }
    if !same_collectors(&prev.collectors, &next.collectors) {
        u.collectors = Some(next.collectors.clone());
    }
    if prev.host != next.host {
        u.host = Some(next.host.clone());
    }
    if prev.kernel != next.kernel {
        u.kernel = Some(next.kernel.clone());
    }
    if prev.agent_version != next.agent_version {
        u.agent_version = Some(next.agent_version.clone());
    }
    match (&prev.services, &next.services) {
        (_, None) if prev.services.is_some() => u.services_present = Some(false),
        (None, Some(list)) => {
            u.services_present = Some(true);
            u.services = list.clone();
        }
        (Some(old), Some(new)) => {
            for s in new {
                if !old.iter().any(|o| o.name == s.name && same_service(o, s)) {
                    u.services.push(s.clone());
                }
            }
            u.services_removed =
                old.iter().filter(|o| !new.iter().any(|s| s.name == o.name)).map(|o| o.name.clone()).collect();
        }
        _ => {}
    }
    u
}

/// Puts `new` in `slot` when the update carries it.
fn replace<T>(slot: &mut T, new: Option<T>) {
    if let Some(v) = new {
        *slot = v;
    }
}

/// Applies `update` to `base`, which must be the snapshot it was computed from.
pub fn apply(base: &mut HostSnapshot, update: SnapshotUpdate) -> Result<(), DeltaError> {
    if update.base_seq != base.seq {
        return Err(DeltaError { base: update.base_seq, have: base.seq });
    }
    base.seq = update.seq;
    base.timestamp_ms = update.timestamp_ms;
    base.uptime_seconds = update.uptime_seconds;
    replace(&mut base.cpu, update.cpu);
    replace(&mut base.memory, update.memory);
    replace(&mut base.gpus, update.gpus);
    replace(&mut base.drives, update.drives);
    replace(&mut base.filesystems, update.filesystems);
    replace(&mut base.backups, update.backups);
    replace(&mut base.collectors, update.collectors);
    replace(&mut base.host, update.host);
    replace(&mut base.kernel, update.kernel);
    replace(&mut base.agent_version, update.agent_version);
    match update.services_present {
        Some(false) => base.services = None,
        Some(true) => base.services = Some(Vec::new()),
        None => {}
    }
    if let Some(list) = &mut base.services {
        list.retain(|s| !update.services_removed.contains(&s.name));
        for s in update.services {
            match list.iter_mut().find(|o| o.name == s.name) {
                Some(o) => *o = s,
                None => list.push(s),
            }
        }
        // Worst first, as the agent orders them.
        list.sort_by(|a, b| b.status.cmp(&a.status).then_with(|| a.name.cmp(&b.name)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::Status;
    use crate::wire::{encode, Message};

    /// A host with 40 services, as an agent would report it.
    fn host(seq: u64, jitter: u64) -> HostSnapshot {
        let services = (0..40)
            .map(|i| Service {
                name: format!("service-{i:02}.service"),
                description: format!("Service number {i}"),
                load_state: "loaded".into(),
                active_state: "active".into(),
                sub_state: "running".into(),
                result: "success".into(),
                since_ms: Some(1_764_000_000_000),
                memory_bytes: Some((100 + i) * MIB + jitter * 4096),
                memory_max_bytes: Some(1 << 30),
                cpu_percent: Some(0.1 * (jitter % 3) as f64),
                tasks: Some(4),
                io_read_bytes: Some(10 * MIB),
                io_write_bytes: Some(20 * MIB + jitter * 512),
                disk_bytes: Some(i * 10 * MIB),
                disk_paths: vec![format!("/var/lib/service-{i:02}")],
                ..Default::default()
            })
            .collect();
        HostSnapshot {
            host: "srv01".into(),
            seq,
            timestamp_ms: 1_764_000_000_000 + seq * 2000,
            uptime_seconds: 86_400 + seq * 2,
            cpu: Some(Cpu {
                load1: 0.4 + 0.01 * (jitter % 7) as f64,
                load5: 0.5,
                load15: 0.45,
                logical_cpus: 8,
                utilisation_percent: Some(3.0 + (jitter % 5) as f64),
                frequency_hz: Some(3_400_000_000 + jitter * 1000),
                core_frequencies_hz: vec![3_400_000_000 + jitter * 1000; 8],
                temperature_celsius: Some(45.0 + (jitter % 3) as f64),
                ..Default::default()
            }),
            memory: Some(Memory {
                total_bytes: 32 << 30,
                used_bytes: (8 << 30) + jitter * 4096,
                available_bytes: (24 << 30) - jitter * 4096,
                ..Default::default()
            }),
            services: Some(services),
            ..Default::default()
        }
    }

    #[test]
    fn applying_the_diff_gives_the_next_snapshot() {
        let a = host(1, 0);
        let mut b = host(2, 1);
        b.services.as_mut().unwrap()[3].active_state = "failed".into();
        b.services.as_mut().unwrap()[3].status = Status::Critical;
        b.services.as_mut().unwrap().remove(7);
        let mut got = a.clone();
        apply(&mut got, diff(&a, &b)).unwrap();
        let mut want = b.clone();
        want.services.as_mut().unwrap().sort_by(|a, b| b.status.cmp(&a.status).then_with(|| a.name.cmp(&b.name)));
        // Insignificant service jitter is not sent: compare what a person sees.
        let seen = |s: &HostSnapshot| {
            s.services.as_ref().unwrap().iter().map(|s| (s.name.clone(), s.active_state.clone())).collect::<Vec<_>>()
        };
        assert_eq!(seen(&got), seen(&want));
        assert_eq!(got.cpu, b.cpu);
        assert_eq!(got.memory, b.memory);
        assert_eq!(got.seq, 2);
        assert_eq!(got.services.as_ref().unwrap()[0].name, "service-03.service", "worst first");
    }

    #[test]
    fn an_update_for_another_base_is_refused() {
        let mut a = host(5, 0);
        let u = diff(&host(3, 0), &host(4, 1));
        assert_eq!(apply(&mut a, u), Err(DeltaError { base: 3, have: 5 }));
    }

    #[test]
    fn forty_services_in_steady_state_cost_well_under_a_kilobyte_per_second() {
        let full = encode(&Message::Snapshot(Box::new(host(1, 0)))).unwrap().len();
        let mut total = 0;
        let rounds = 300u64; // ten minutes at 2 s
        for i in 1..=rounds {
            let u = diff(&host(i, i - 1), &host(i + 1, i));
            total += encode(&Message::Update(Box::new(u))).unwrap().len() + 4;
        }
        let per_second = total as f64 / (rounds as f64 * 2.0);
        eprintln!("40 services, steady state: {per_second:.0} B/s; a full snapshot is {full} B");
        // A full snapshot every 2 s would cost full / 2 bytes per second.
        assert!(per_second < 400.0, "{per_second:.0} B/s (a full snapshot is {full} B)");
        assert!(full > 8_000, "the comparison is against a big snapshot: {full} B");
    }
}
