//! Protocol 1.0's snapshot updates, still read from 1.0 agents.
//!
//! A section (cpu, memory, drives...) travelled whole when it changed;
//! services one by one. `null` meant both "unchanged" and "removed", so a
//! section that disappeared stayed on the client: 1.1 agents send
//! [`crate::wire::Patch`]es instead, and clients apply these only when an
//! older agent sends them.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::model::*;

/// What changed between two snapshots of one host (protocol 1.0).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SnapshotUpdate {
    /// The sequence number of the snapshot this update produces.
    pub seq: u64,
    /// The sequence number of the snapshot it applies to.
    pub base_seq: u64,
    pub timestamp_ms: u64,
    pub uptime_seconds: u64,
    /// Each `Some` replaces that section; `None` (and, on the wire, null) leaves it as it was.
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

    #[test]
    fn a_1_0_update_applies_to_its_base_only() {
        let mut base = HostSnapshot { seq: 5, ..Default::default() };
        let u = SnapshotUpdate { seq: 6, base_seq: 4, ..Default::default() };
        assert_eq!(apply(&mut base, u), Err(DeltaError { base: 4, have: 5 }));
        let cpu = Cpu { load1: 1.5, ..Default::default() };
        let u = SnapshotUpdate { seq: 6, base_seq: 5, cpu: Some(Some(cpu.clone())), ..Default::default() };
        apply(&mut base, u).unwrap();
        assert_eq!((base.seq, base.cpu), (6, Some(cpu)));
    }
}
