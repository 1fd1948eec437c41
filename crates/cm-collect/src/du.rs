//! Disk usage of a directory tree, measured natively (no `du` process): one
//! walk, staying on the tree's filesystem, counting hard links once, bounded
//! in time and entries, surviving permission errors and files that vanish.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Limits of one walk.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub time: Duration,
    pub entries: u64,
}

impl Default for Budget {
    fn default() -> Self {
        Self { time: Duration::from_secs(2), entries: 500_000 }
    }
}

/// The result of walking one tree.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Usage {
    /// Bytes allocated on disk (as `du`), not apparent sizes.
    pub bytes: u64,
    pub entries: u64,
    /// Entries that could not be read (permission denied, vanished mid-walk).
    pub unreadable: u64,
    /// The walk stopped at its budget: `bytes` is a lower bound.
    pub partial: bool,
}

/// Walks `root`. An unreadable or missing root is an error; anything below it
/// that cannot be read is counted in [`Usage::unreadable`] and skipped. A
/// root that is a symbolic link is followed (systemd makes a DynamicUser=
/// service's `/var/lib/NAME` a link to `/var/lib/private/NAME`); links
/// below it are not.
pub fn measure(root: &Path, budget: Budget) -> std::io::Result<Usage> {
    let top = std::fs::metadata(root)?;
    let device = top.dev();
    let deadline = Instant::now() + budget.time;
    let mut usage = Usage { bytes: top.blocks() * 512, entries: 1, ..Default::default() };
    let mut seen_links: HashSet<(u64, u64)> = HashSet::new();
    let mut stack: Vec<PathBuf> = Vec::new();
    if top.is_dir() {
        std::fs::read_dir(root)?; // the root itself must be readable
        stack.push(root.to_owned());
    }
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(_) => {
                usage.unreadable += 1;
                continue;
            }
        };
        for entry in entries {
            if usage.entries >= budget.entries || (usage.entries % 256 == 0 && Instant::now() >= deadline) {
                usage.partial = true;
                return Ok(usage);
            }
            let Ok(entry) = entry else {
                usage.unreadable += 1;
                continue;
            };
            let Ok(meta) = entry.path().symlink_metadata() else {
                usage.unreadable += 1; // vanished or not permitted
                continue;
            };
            if meta.dev() != device {
                continue; // a mount point: another filesystem's business
            }
            usage.entries += 1;
            if meta.nlink() > 1 && !meta.is_dir() && !seen_links.insert((meta.dev(), meta.ino())) {
                continue;
            }
            usage.bytes += meta.blocks() * 512;
            if meta.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    Ok(usage)
}
