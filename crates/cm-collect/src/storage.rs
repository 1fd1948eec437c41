//! Storage: mounted filesystems from /proc/self/mountinfo (or /proc/mounts
//! where there is none), measured with `statvfs`, and traced through
//! partitions, device-mapper and md to the physical drives in /sys/block they
//! live on.

use cm_proto::{Drive, DriveKind, Filesystem};
use std::collections::BTreeSet;

use crate::cpu::sorted_entries;
use crate::error::{CollectError, ParseError};
use crate::sysroot::{read_attr, read_u64, SysRoot};

/// One mounted filesystem, from /proc/self/mountinfo or /proc/mounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Device number; `0:0` when /proc/mounts gave none and sysfs has none
    /// for the source (the kernel never gives a mount that number).
    pub major: u32,
    pub minor: u32,
    pub mount_point: String,
    pub fstype: String,
    pub source: String,
}

/// Parses /proc/self/mountinfo (see proc(5)). Octal escapes in paths (`\040`
/// for a space) are decoded.
pub fn parse_mountinfo(text: &str) -> Result<Vec<Mount>, ParseError> {
    let mut mounts = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let err = |what: &str| ParseError::new(i + 1, format!("expected {what} in mountinfo line {line:?}"));
        let (left, right) = line.split_once(" - ").ok_or_else(|| err("the \" - \" separator"))?;
        let left: Vec<&str> = left.split(' ').collect();
        if left.len() < 6 {
            return Err(err("mount id, parent id, major:minor, root, mount point and options"));
        }
        let (major, minor) = left[2].split_once(':').ok_or_else(|| err("major:minor"))?;
        let mut right = right.split(' ');
        let fstype = right.next().filter(|s| !s.is_empty()).ok_or_else(|| err("a filesystem type"))?;
        let source = right.next().unwrap_or("");
        mounts.push(Mount {
            major: major.parse().map_err(|_| err("a numeric major device number"))?,
            minor: minor.parse().map_err(|_| err("a numeric minor device number"))?,
            mount_point: unescape(left[4]),
            fstype: unescape(fstype),
            source: unescape(source),
        });
    }
    Ok(mounts)
}

/// Parses /proc/mounts (see proc(5)): source, mount point, type, options and
/// two zeros per line, with the same octal escapes as mountinfo. It carries no
/// device numbers: they are `0:0` here, and [`read_mounts`] looks them up.
pub fn parse_mounts(text: &str) -> Result<Vec<Mount>, ParseError> {
    let mut mounts = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields[..] {
            [] => continue,
            [source, mount_point, fstype, ..] => mounts.push(Mount {
                major: 0,
                minor: 0,
                mount_point: unescape(mount_point),
                fstype: unescape(fstype),
                source: unescape(source),
            }),
            _ => {
                return Err(ParseError::new(
                    i + 1,
                    format!("expected a source, a mount point and a filesystem type in mounts line {line:?}"),
                ))
            }
        }
    }
    Ok(mounts)
}

/// The mount table: /proc/self/mountinfo, or /proc/mounts where there is no
/// mountinfo (kernels before 2.6.26, minimal captures), its device numbers
/// then read from sysfs.
pub fn read_mounts(root: &SysRoot) -> Result<Vec<Mount>, CollectError> {
    use std::io::ErrorKind::NotFound;
    let (path, why) = match root.parse("/proc/self/mountinfo", parse_mountinfo) {
        Err(CollectError::Read { path, source }) if source.kind() == NotFound => (path, source),
        other => return other,
    };
    let mut mounts = match root.parse("/proc/mounts", parse_mounts) {
        Err(CollectError::Read { source, .. }) if source.kind() == NotFound => {
            let why = format!("{why}, and there is no {} either", root.path("/proc/mounts").display());
            return Err(CollectError::Read { path, source: std::io::Error::new(NotFound, why) });
        }
        other => other?,
    };
    for m in &mut mounts {
        if let Some((major, minor)) = device_number(root, m) {
            (m.major, m.minor) = (major, minor);
        }
    }
    Ok(mounts)
}

/// The device number sysfs gives the block device a mount's source names.
fn device_number(root: &SysRoot, m: &Mount) -> Option<(u32, u32)> {
    let name = block_name(root, m)?;
    let dev = [format!("/sys/class/block/{name}/dev"), format!("/sys/block/{name}/dev")]
        .iter()
        .find_map(|p| read_attr(&root.path(p)))
        .or_else(|| {
            let whole = whole_device(root, &name)?;
            read_attr(&root.path(&format!("/sys/block/{whole}/{name}/dev")))
        })?;
    let (major, minor) = dev.split_once(':')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_owned();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() && bytes[i + 1..i + 4].iter().all(|b| (b'0'..=b'7').contains(b)) {
            let v = (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Filesystems with no block device of their own that still hold user data.
const DEVICELESS_DATA_FS: &[&str] = &["btrfs", "zfs", "bcachefs"];
/// Block-backed filesystems that are images rather than storage (snaps, install media).
const IMAGE_FS: &[&str] = &["squashfs", "iso9660", "udf", "erofs"];

/// True for filesystems a person thinks of as storage: block-backed, or a
/// device-less data filesystem (btrfs, ZFS); not proc, cgroup, tmpfs, overlay,
/// images. The root filesystem always counts, even as a container's overlay.
/// A mount of /proc/mounts whose device sysfs does not know (`0:0`) is
/// block-backed when its source is a device node.
pub fn is_storage(m: &Mount) -> bool {
    if m.mount_point == "/" {
        return true;
    }
    if IMAGE_FS.contains(&m.fstype.as_str()) {
        return false;
    }
    let unknown_device_node =
        (m.major, m.minor) == (0, 0) && m.source.starts_with("/dev/") && !m.fstype.starts_with("fuse");
    m.major != 0 || unknown_device_node || DEVICELESS_DATA_FS.contains(&m.fstype.as_str())
}

/// Space figures of one mounted filesystem, as `df` computes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub size_bytes: u64,
    pub used_bytes: u64,
    pub available_bytes: u64,
}

/// Measures a mounted filesystem.
pub fn statvfs(mount_point: &str) -> Result<Usage, std::io::Error> {
    let st = rustix::fs::statvfs(mount_point)?;
    let frsize = st.f_frsize;
    let size_bytes = st.f_blocks * frsize;
    Ok(Usage {
        size_bytes,
        used_bytes: size_bytes.saturating_sub(st.f_bfree * frsize),
        available_bytes: st.f_bavail * frsize,
    })
}

/// Kernel block devices that are not storage hardware.
fn is_virtual_block(name: &str) -> bool {
    ["loop", "ram", "zram", "dm-", "md", "sr", "fd", "nbd", "drbd"].iter().any(|p| name.starts_with(p))
}

/// The kernel name of the block device behind a mount, by device number or
/// from its `/dev/...` source.
fn block_name(root: &SysRoot, m: &Mount) -> Option<String> {
    if m.major != 0 {
        if let Ok(link) = std::fs::read_link(root.path(&format!("/sys/dev/block/{}:{}", m.major, m.minor))) {
            return link.file_name()?.to_str().map(str::to_owned);
        }
    }
    let dev = m.source.strip_prefix("/dev/")?;
    if let Some(mapper) = dev.strip_prefix("mapper/") {
        return sorted_entries(&root.path("/sys/block")).into_iter().find_map(|d| {
            let name = d.file_name()?.to_str()?.to_owned();
            (read_attr(&d.join("dm/name")).as_deref() == Some(mapper)).then_some(name)
        });
    }
    if root.is_live() {
        if let Ok(real) = std::fs::canonicalize(&m.source) {
            return real.file_name()?.to_str().map(str::to_owned);
        }
    }
    Some(dev.rsplit('/').next()?.to_owned())
}

/// Resolves a block device to the whole-disk device it belongs to (`sda1` -> `sda`).
fn whole_device(root: &SysRoot, name: &str) -> Option<String> {
    if root.path(&format!("/sys/block/{name}")).exists() {
        return Some(name.to_owned());
    }
    sorted_entries(&root.path("/sys/block")).into_iter().find_map(|d| {
        d.join(name).join("partition").exists().then(|| d.file_name()?.to_str().map(str::to_owned)).flatten()
    })
}

/// The physical disks under a whole block device, following `slaves/` through
/// device-mapper and md layers.
fn physical_disks(root: &SysRoot, device: &str, depth: u32, out: &mut BTreeSet<String>) {
    let slaves = sorted_entries(&root.path(&format!("/sys/block/{device}/slaves")));
    if slaves.is_empty() || depth > 8 {
        if !is_virtual_block(device) {
            out.insert(device.to_owned());
        }
        return;
    }
    for slave in slaves {
        let Some(name) = slave.file_name().and_then(|n| n.to_str()) else { continue };
        if let Some(whole) = whole_device(root, name) {
            physical_disks(root, &whole, depth + 1, out);
        }
    }
}

fn drive_entry(root: &SysRoot, name: &str, kind: DriveKind) -> Drive {
    let dir = root.path(&format!("/sys/block/{name}"));
    let model = read_attr(&dir.join("device/model"))
        .or_else(|| read_attr(&dir.join("dm/name")))
        .or_else(|| read_attr(&dir.join("md/level")))
        .filter(|m| !m.is_empty());
    Drive {
        name: name.to_owned(),
        kind,
        model,
        capacity_bytes: read_u64(&dir.join("size")).unwrap_or(0) * 512,
        rotational: read_u64(&dir.join("queue/rotational")).map(|r| r == 1),
        removable: read_u64(&dir.join("removable")) == Some(1),
        ..Default::default()
    }
}

/// Which drive entry a filesystem belongs to: the one disk under it, or the
/// multi-disk RAID/mapper device itself.
fn assign_drive(root: &SysRoot, drives: &mut Vec<Drive>, m: &Mount) -> Option<String> {
    let whole = whole_device(root, &block_name(root, m)?)?;
    let mut disks = BTreeSet::new();
    physical_disks(root, &whole, 0, &mut disks);
    match disks.len() {
        0 => None,
        1 => disks.into_iter().next(),
        _ => {
            if !drives.iter().any(|d| d.name == whole) {
                let kind = if whole.starts_with("md") { DriveKind::Raid } else { DriveKind::Mapper };
                let mut d = drive_entry(root, &whole, kind);
                d.members = disks.into_iter().collect();
                drives.push(d);
            }
            Some(whole)
        }
    }
}

/// Every physical disk in /sys/block with a non-zero size.
fn read_disks(root: &SysRoot) -> Vec<Drive> {
    sorted_entries(&root.path("/sys/block"))
        .into_iter()
        .filter_map(|d| d.file_name()?.to_str().map(str::to_owned))
        .filter(|name| !is_virtual_block(name))
        .map(|name| drive_entry(root, &name, DriveKind::Disk))
        .filter(|d| d.capacity_bytes > 0)
        .collect()
}

/// Drives and the filesystems on them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Storage {
    pub drives: Vec<Drive>,
    pub filesystems: Vec<Filesystem>,
}

/// Reads drives and mounted filesystems. `measure` gives the usage of a mount
/// point (`statvfs` on the live machine); a mount it cannot measure is listed
/// with zero sizes rather than dropped.
pub fn collect_with(
    root: &SysRoot,
    measure: impl Fn(&str) -> Result<Usage, std::io::Error>,
) -> Result<Storage, CollectError> {
    let mounts = read_mounts(root)?;
    let mut drives = read_disks(root);
    let mut filesystems: Vec<Filesystem> = Vec::new();
    let mut seen = BTreeSet::new();
    for m in mounts.iter().filter(|m| is_storage(m)) {
        // Bind mounts and btrfs subvolumes repeat a filesystem: keep its first mount.
        let key = if m.major != 0 { format!("{}:{}", m.major, m.minor) } else { m.source.clone() };
        if !seen.insert(key) {
            continue;
        }
        let usage = measure(&m.mount_point).ok();
        filesystems.push(Filesystem {
            mount_point: m.mount_point.clone(),
            fstype: m.fstype.clone(),
            source: m.source.clone(),
            drive: assign_drive(root, &mut drives, m),
            size_bytes: usage.map_or(0, |u| u.size_bytes),
            used_bytes: usage.map_or(0, |u| u.used_bytes),
            available_bytes: usage.map_or(0, |u| u.available_bytes),
            ..Default::default()
        });
    }
    for d in &mut drives {
        for f in filesystems.iter().filter(|f| f.drive.as_deref() == Some(d.name.as_str())) {
            d.used_bytes += f.used_bytes;
            d.filesystem_bytes += f.used_bytes + f.available_bytes;
        }
    }
    Ok(Storage { drives, filesystems })
}

/// Reads drives and filesystems; usage is measured only on the live machine.
pub fn collect(root: &SysRoot) -> Result<Storage, CollectError> {
    if root.is_live() {
        collect_with(root, statvfs)
    } else {
        collect_with(root, |_| Err(std::io::Error::other("not the live machine")))
    }
}
