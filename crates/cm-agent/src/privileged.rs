//! The privileged collector and the agent's side of it.
//!
//! The process that speaks QUIC to the network holds no capability. What
//! needs privilege (SMART pass-through, walking other services' directories)
//! runs in `cm-agent collect-privileged`, a separate unit without network
//! access, which writes its [`Results`] to a file (atomically, by rename)
//! that the agent reads each round and merges into its snapshots.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use cm_proto::{DriveHealth, HostSnapshot};
use serde::{Deserialize, Serialize};

/// Largest results file the agent reads: a few kB per drive and service.
const MAX_RESULTS_BYTES: u64 = 16 << 20;

/// What the privileged collector found, as it writes it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Results {
    /// When it was written, milliseconds since the Unix epoch.
    pub written_ms: u64,
    /// How often it is written: the agent calls it stale after a few of these.
    pub interval_ms: u64,
    /// Drive health by drive name, judged against the thresholds.
    pub drives: BTreeMap<String, DriveHealth>,
    /// Disk usage of each watched unit's own directories, by unit name.
    pub services: BTreeMap<String, ServiceDisk>,
    /// What went wrong in the privileged collectors (`smart: ...`), for the
    /// agent's report.
    pub errors: Vec<String>,
}

/// The disk fields of one service.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceDisk {
    pub disk_bytes: Option<u64>,
    pub disk_paths: Vec<String>,
    pub disk_partial: bool,
    pub disk_errors: Vec<String>,
}

impl Results {
    /// What of `snapshot` (collected with privilege) the agent needs.
    pub fn from_snapshot(snapshot: &HostSnapshot, interval: Duration) -> Self {
        let drives = snapshot.drives.iter().filter_map(|d| Some((d.name.clone(), d.health.clone()?))).collect();
        let services = snapshot
            .services
            .iter()
            .flatten()
            .map(|s| {
                let disk = ServiceDisk {
                    disk_bytes: s.disk_bytes,
                    disk_paths: s.disk_paths.clone(),
                    disk_partial: s.disk_partial,
                    disk_errors: s.disk_errors.clone(),
                };
                (s.name.clone(), disk)
            })
            .collect();
        let errors = snapshot
            .collectors
            .iter()
            .filter(|c| matches!(c.name.as_str(), "smart" | "systemd" | "storage"))
            .filter_map(|c| Some(format!("{}: {}", c.name, c.error.as_ref()?)))
            .collect();
        Self { written_ms: snapshot.timestamp_ms, interval_ms: interval.as_millis() as u64, drives, services, errors }
    }

    /// Puts the results into a snapshot the agent made without privilege.
    pub fn merge_into(&self, snapshot: &mut HostSnapshot) {
        for drive in &mut snapshot.drives {
            if let Some(h) = self.drives.get(&drive.name) {
                drive.health = Some(h.clone());
            }
        }
        for s in snapshot.services.iter_mut().flatten() {
            if let Some(d) = self.services.get(&s.name) {
                s.disk_bytes = d.disk_bytes;
                s.disk_paths = d.disk_paths.clone();
                s.disk_partial = d.disk_partial;
                s.disk_errors = d.disk_errors.clone();
            }
        }
    }

    /// Why results written at `written_ms` are too old at `now_ms` to show, if they are.
    pub fn staleness(&self, now_ms: u64) -> Option<String> {
        let limit = (3 * self.interval_ms).max(60_000);
        let age = now_ms.saturating_sub(self.written_ms);
        (age > limit).then(|| format!("its results are {} s old", age / 1000))
    }
}

/// Writes `results` to `path` so that a reader sees the old file or the new
/// one, never half of one.
pub fn write(path: &Path, results: &Results) -> std::io::Result<()> {
    let mut bytes = Vec::with_capacity(4096);
    ciborium::into_writer(results, &mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, &bytes)?;
    std::fs::rename(&tmp, path)
}

/// The agent's reader: reads the file again only when it changed.
#[derive(Debug)]
pub struct Reader {
    path: PathBuf,
    seen: Option<(SystemTime, u64)>,
    results: Option<Results>,
}

impl Reader {
    pub fn new(path: PathBuf) -> Self {
        Self { path, seen: None, results: None }
    }

    /// The latest results, or why there are none to use.
    pub fn read(&mut self, now_ms: u64) -> Result<&Results, String> {
        let hint = "is cm-agent-collector.service (cm-agent collect-privileged) running?";
        let meta = std::fs::metadata(&self.path).map_err(|e| {
            self.results = None;
            format!("no results from the privileged collector at {}: {e}; {hint}", self.path.display())
        })?;
        let stamp = (meta.modified().unwrap_or(SystemTime::UNIX_EPOCH), meta.len());
        if self.seen != Some(stamp) || self.results.is_none() {
            self.results = None;
            if meta.len() > MAX_RESULTS_BYTES {
                return Err(format!(
                    "{}: {} bytes, more than the privileged collector writes",
                    self.path.display(),
                    meta.len()
                ));
            }
            let bytes = std::fs::read(&self.path).map_err(|e| format!("{}: {e}", self.path.display()))?;
            let results: Results = ciborium::from_reader(bytes.as_slice())
                .map_err(|e| format!("{}: not the privileged collector's results: {e}", self.path.display()))?;
            self.seen = Some(stamp);
            self.results = Some(results);
        }
        let results = self.results.as_ref().expect("just read");
        match results.staleness(now_ms) {
            Some(why) => Err(format!("the privileged collector at {}: {why}; {hint}", self.path.display())),
            None => Ok(results),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cm_proto::{Drive, Service};

    fn collected() -> HostSnapshot {
        HostSnapshot {
            timestamp_ms: 1_000_000,
            drives: vec![Drive {
                name: "nvme0n1".into(),
                health: Some(DriveHealth { wear_percent: Some(4.0), ..Default::default() }),
                ..Default::default()
            }],
            services: Some(vec![Service {
                name: "vault.service".into(),
                disk_bytes: Some(5 << 20),
                disk_paths: vec!["/var/lib/vault".into()],
                memory_bytes: Some(1),
                ..Default::default()
            }]),
            collectors: vec![cm_proto::CollectorReport {
                name: "smart".into(),
                error: Some("smartctl is not installed".into()),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn results_carry_health_and_disk_usage_into_the_agents_snapshot() {
        let results = Results::from_snapshot(&collected(), Duration::from_secs(30));
        assert_eq!(results.errors, ["smart: smartctl is not installed"]);
        let mut unprivileged = collected();
        unprivileged.drives[0].health = None;
        let s = &mut unprivileged.services.as_mut().unwrap()[0];
        (s.disk_bytes, s.disk_paths, s.memory_bytes) = (None, vec![], Some(7));
        results.merge_into(&mut unprivileged);
        assert_eq!(unprivileged.drives[0].health.as_ref().unwrap().wear_percent, Some(4.0));
        let s = &unprivileged.services.as_ref().unwrap()[0];
        assert_eq!((s.disk_bytes, s.memory_bytes), (Some(5 << 20), Some(7)), "only the disk fields come from it");
    }

    #[test]
    fn the_reader_says_when_results_are_missing_stale_or_foreign() {
        let dir = std::env::temp_dir().join(format!("cm-privileged-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("results.cbor");
        let _ = std::fs::remove_file(&path);
        let mut reader = Reader::new(path.clone());
        assert!(reader.read(0).unwrap_err().contains("is cm-agent-collector.service"));
        let results = Results::from_snapshot(&collected(), Duration::from_secs(30));
        write(&path, &results).unwrap();
        assert_eq!(reader.read(1_050_000).unwrap(), &results);
        assert!(reader.read(1_000_000 + 91_000).unwrap_err().contains("its results are 91 s old"));
        std::fs::write(&path, b"not cbor at all").unwrap();
        assert!(reader.read(1_050_000).unwrap_err().contains("not the privileged collector's results"));
    }
}
