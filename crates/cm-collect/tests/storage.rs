mod common;

use cm_collect::storage::{
    collect, collect_with, is_storage, parse_mountinfo, parse_mounts, read_mounts, statvfs, Usage,
};
use cm_collect::SysRoot;
use cm_proto::DriveKind;
use common::*;

#[test]
fn mountinfo_parses_every_line_and_decodes_escapes() {
    let mounts = parse_mountinfo(&read("node_exporter/proc/self/mountinfo")).unwrap();
    assert_eq!(mounts.len(), 32);
    let root = mounts.iter().find(|m| m.mount_point == "/").unwrap();
    assert_eq!((root.major, root.minor, root.fstype.as_str(), root.source.as_str()), (259, 2, "ext4", "/dev/dm-2"));
    assert!(mounts.iter().any(|m| m.mount_point.contains("[vsanDatastore] bafb9e5a")), "\\040 is a space");
    assert!(mounts.iter().any(|m| m.mount_point.contains("[vsanDatastore]\tbafb9e5a")), "\\011 is a tab");
}

#[test]
fn only_storage_filesystems_are_kept_once_each() {
    let storage = collect(&root("node_exporter")).unwrap();
    let points: Vec<_> = storage.filesystems.iter().map(|f| f.mount_point.as_str()).collect();
    assert_eq!(points.len(), 4, "{points:?}");
    assert_eq!(&points[..2], ["/", "/boot"]);
    assert!(points[2].starts_with("/var/lib/kubelet/"), "the second mount of 260:0 is a repeat");
    assert_eq!(points[3], "/var/lib/containers/storage/overlay");
    let mounts = parse_mountinfo(&read("node_exporter/proc/self/mountinfo")).unwrap();
    for m in mounts
        .iter()
        .filter(|m| ["proc", "sysfs", "tmpfs", "cgroup", "autofs", "fuse.gvfsd-fuse"].contains(&m.fstype.as_str()))
    {
        assert!(!is_storage(m), "{} is not storage", m.mount_point);
    }
}

#[test]
fn a_filesystem_on_one_disk_belongs_to_that_disk() {
    let storage = collect(&root("debian-vm")).unwrap();
    assert_eq!(storage.drives.len(), 1, "{:?}", storage.drives);
    let vda = &storage.drives[0];
    assert_eq!((vda.name.as_str(), vda.kind, vda.capacity_bytes), ("vda", DriveKind::Disk, 536870912 * 512));
    assert_eq!(vda.rotational, Some(true));
    let root_fs = storage.filesystems.iter().find(|f| f.mount_point == "/").unwrap();
    assert_eq!(root_fs.drive.as_deref(), Some("vda"));
    assert_eq!(root_fs.size_bytes, 0, "a captured tree is not measured");
}

/// The sysfs block tree of prometheus/procfs' fixtures (dm-0 = vg0--lv_root on
/// sda; dm-1 = mpathA on sdb+sdc), with a mountinfo written for this test.
fn mapper_root() -> SysRoot {
    let dir = scratch("mapper");
    std::os::unix::fs::symlink(testdata("prometheus_procfs/sys"), dir.join("sys")).unwrap();
    write(
        &dir,
        "proc/self/mountinfo",
        "21 0 253:0 / / rw,relatime shared:1 - ext4 /dev/mapper/vg0--lv_root rw\n\
         40 21 253:1 / /data rw,relatime shared:2 - xfs /dev/mapper/mpathA rw\n\
         41 21 253:1 / /srv/data rw,relatime shared:2 - xfs /dev/mapper/mpathA rw\n",
    );
    SysRoot::at(dir)
}

#[test]
fn device_mapper_is_traced_to_its_disks() {
    let measure = |mp: &str| {
        let gib = 1u64 << 30;
        Ok(match mp {
            "/" => Usage { size_bytes: 100 * gib, used_bytes: 40 * gib, available_bytes: 55 * gib },
            _ => Usage { size_bytes: 50 * gib, used_bytes: 10 * gib, available_bytes: 40 * gib },
        })
    };
    let storage = collect_with(&mapper_root(), measure).unwrap();
    let fs = |mp: &str| storage.filesystems.iter().find(|f| f.mount_point == mp).unwrap();
    assert_eq!(fs("/").drive.as_deref(), Some("sda"), "LVM on one disk belongs to the disk");
    assert_eq!(fs("/data").drive.as_deref(), Some("dm-1"), "multipath over two disks is its own entry");
    assert!(storage.filesystems.iter().all(|f| f.mount_point != "/srv/data"), "bind mount listed once");

    let sda = storage.drives.iter().find(|d| d.name == "sda").unwrap();
    assert_eq!(sda.capacity_bytes, 3750748848 * 512);
    assert_eq!(sda.used_bytes, 40 << 30);
    assert_eq!(sda.filesystem_bytes, 95 << 30);
    let dm1 = storage.drives.iter().find(|d| d.name == "dm-1").unwrap();
    assert_eq!(dm1.kind, DriveKind::Mapper);
    assert_eq!(dm1.members, ["sdb", "sdc"]);
    assert_eq!(dm1.model.as_deref(), Some("mpathA"));
    assert_eq!(dm1.capacity_bytes, 104857600 * 512);
}

/// The same sysfs tree as [`mapper_root`], with only a /proc/mounts (written
/// for this test in the kernel's format) where mountinfo would be.
fn mapper_root_with_proc_mounts() -> SysRoot {
    let dir = scratch("mapper-proc-mounts");
    std::os::unix::fs::symlink(testdata("prometheus_procfs/sys"), dir.join("sys")).unwrap();
    write(
        &dir,
        "proc/mounts",
        "/dev/mapper/vg0--lv_root / ext4 rw,relatime 0 0\n\
         proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0\n\
         tmpfs /run tmpfs rw,nosuid,nodev,mode=755 0 0\n\
         /dev/mapper/mpathA /data xfs rw,relatime 0 0\n\
         /dev/mapper/mpathA /srv/data xfs rw,relatime 0 0\n",
    );
    SysRoot::at(dir)
}

#[test]
fn without_mountinfo_proc_mounts_gives_the_same_filesystems_and_drives() {
    let measure = |_: &str| Ok(Usage { size_bytes: 1 << 30, used_bytes: 1 << 29, available_bytes: 1 << 29 });
    let from_mounts = collect_with(&mapper_root_with_proc_mounts(), measure).unwrap();
    let from_mountinfo = collect_with(&mapper_root(), measure).unwrap();
    let summary = |s: &cm_collect::storage::Storage| -> Vec<(String, String, Option<String>)> {
        s.filesystems.iter().map(|f| (f.mount_point.clone(), f.fstype.clone(), f.drive.clone())).collect()
    };
    assert_eq!(
        summary(&from_mounts),
        [("/".into(), "ext4".into(), Some("sda".into())), ("/data".into(), "xfs".into(), Some("dm-1".into()))]
    );
    assert_eq!(summary(&from_mounts), summary(&from_mountinfo));
    assert_eq!(from_mounts.drives, from_mountinfo.drives);
}

#[test]
fn proc_mounts_device_numbers_come_from_sysfs() {
    // Hand-written: a disk with one partition, mounted twice (a bind mount).
    let dir = scratch("proc-mounts-numbers");
    write(&dir, "sys/block/sda/size", "1000\n");
    write(&dir, "sys/block/sda/sda1/partition", "1\n");
    write(&dir, "sys/block/sda/sda1/dev", "8:1\n");
    write(&dir, "proc/mounts", "/dev/sda1 /boot ext4 rw 0 0\n/dev/sda1 /mnt/boot\\040copy ext4 rw 0 0\n");
    let root = SysRoot::at(&dir);
    let mounts = read_mounts(&root).unwrap();
    assert_eq!((mounts[0].major, mounts[0].minor), (8, 1));
    assert_eq!(mounts[1].mount_point, "/mnt/boot copy", "\\040 is a space");
    let storage = collect(&root).unwrap();
    assert_eq!(storage.filesystems.len(), 1, "the bind mount is the same device: listed once");
    assert_eq!(storage.filesystems[0].drive.as_deref(), Some("sda"));
}

#[test]
fn garbage_or_missing_proc_mounts_is_a_clear_error() {
    let err = parse_mounts("/dev/sda1 / ext4 rw 0 0\nnonsense\n").unwrap_err();
    assert_eq!(err.line, 2);
    let dir = scratch("no-mount-table");
    let err = read_mounts(&SysRoot::at(&dir)).unwrap_err().to_string();
    assert!(err.contains("proc/self/mountinfo") && err.contains("proc/mounts"), "{err}");
}

#[test]
fn live_statvfs_of_root_is_consistent() {
    let u = statvfs("/").unwrap();
    assert!(u.size_bytes > 0 && u.used_bytes <= u.size_bytes && u.available_bytes <= u.size_bytes);
    assert!(statvfs("/nonexistent/cm").is_err());
}

#[test]
fn missing_or_garbage_mountinfo_is_a_clear_error() {
    let dir = scratch("mountinfo-bad");
    let err = collect(&SysRoot::at(&dir)).unwrap_err().to_string();
    assert!(err.contains("proc/self/mountinfo"), "{err}");
    write(
        &dir,
        "proc/self/mountinfo",
        "21 0 8:1 / / rw - ext4 /dev/sda1 rw\n22 21 x:y / /boot rw - ext4 /dev/sda2 rw\n",
    );
    let err = collect(&SysRoot::at(&dir)).unwrap_err().to_string();
    assert!(err.contains("line 2") && err.contains("numeric major"), "{err}");
    write(&dir, "proc/self/mountinfo", "truncated line without separator");
    assert!(collect(&SysRoot::at(&dir)).is_err());
}

#[test]
fn a_containers_root_counts_and_its_proc_sys_dev_do_not() {
    // A Docker container on the devicemapper driver.
    let docker = parse_mountinfo(&read("docker/proc/self/mountinfo")).unwrap();
    let kept: Vec<_> = docker.iter().filter(|m| is_storage(m)).map(|m| m.mount_point.as_str()).collect();
    assert_eq!(kept[0], "/");
    assert!(
        kept.iter().all(|p| !p.starts_with("/proc") && !p.starts_with("/sys") && !p.starts_with("/dev")),
        "{kept:?}"
    );
    // On the overlay driver the root has no block device, and still counts.
    let overlay =
        parse_mountinfo("600 500 0:52 / / rw,relatime - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w\n")
            .unwrap();
    assert!(is_storage(&overlay[0]));
}
