//! Host identity: name, kernel release and uptime.

use crate::error::{CollectError, ParseError};
use crate::sysroot::SysRoot;

/// Who the host is and how long it has been up.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HostInfo {
    pub hostname: String,
    pub kernel: String,
    pub uptime_seconds: u64,
}

/// Parses /proc/uptime (`350735.47 234388.90`): whole seconds since boot.
pub fn parse_uptime(text: &str) -> Result<u64, ParseError> {
    let first = text.split_whitespace().next().ok_or_else(|| ParseError::new(1, "expected seconds since boot"))?;
    let secs: f64 =
        first.parse().map_err(|_| ParseError::new(1, format!("expected seconds since boot, found {first:?}")))?;
    Ok(secs as u64)
}

/// Reads the host name, kernel release and uptime. Only the host name is required.
pub fn collect(root: &SysRoot) -> Result<HostInfo, CollectError> {
    let hostname = root.read("/proc/sys/kernel/hostname")?.trim().to_owned();
    Ok(HostInfo {
        hostname,
        kernel: root.read("/proc/sys/kernel/osrelease").map(|k| k.trim().to_owned()).unwrap_or_default(),
        uptime_seconds: root.parse("/proc/uptime", parse_uptime).unwrap_or(0),
    })
}
