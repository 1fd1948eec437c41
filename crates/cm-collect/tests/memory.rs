mod common;

use cm_collect::memory::{collect, parse_comp_algorithm, parse_meminfo, parse_mm_stat};
use common::*;

const KIB: u64 = 1024;

#[test]
fn meminfo_with_mem_available() {
    let m = parse_meminfo(&read("debian-vm/proc/meminfo")).unwrap();
    assert_eq!(m.total_bytes, 24684084 * KIB);
    assert_eq!(m.available_bytes, 24353336 * KIB);
    assert!(!m.available_estimated);
    assert_eq!(m.swap_total_bytes, 0);
}

#[test]
fn meminfo_before_mem_available_is_estimated() {
    // Kernel without MemAvailable: MemFree + Buffers + Cached + SReclaimable - Shmem.
    let m = parse_meminfo(&read("node_exporter/proc/meminfo")).unwrap();
    assert_eq!(m.total_bytes, 3742148 * KIB);
    assert_eq!(m.available_bytes, (225472 + 22040 + 930888 + 44772 - 593840) * KIB);
    assert!(m.available_estimated);
    assert_eq!(m.swap_total_bytes - m.swap_free_bytes, (4194300 - 3155360) * KIB);

    let m = parse_meminfo(&read("prometheus_procfs/proc/meminfo")).unwrap();
    assert_eq!(m.available_bytes, (440324 + 1020128 + 12007640 + 1738124 - 1308) * KIB);
}

#[test]
fn meminfo_garbage_names_the_line() {
    let err = parse_meminfo("MemTotal: 100 kB\nMemFree: lots kB\n").unwrap_err();
    assert_eq!(err.line, 2);
    assert!(parse_meminfo("").is_err());
    assert!(parse_meminfo("MemFree: 1 kB\n").unwrap_err().message.contains("MemTotal"));
}

#[test]
fn zram_mm_stat_and_algorithm() {
    // This machine's unconfigured zram0.
    let mm = parse_mm_stat(&read("debian-vm/sys/block/zram0/mm_stat")).unwrap();
    assert_eq!((mm.original_bytes, mm.compressed_bytes), (0, 0));
    assert_eq!(parse_comp_algorithm(&read("debian-vm/sys/block/zram0/comp_algorithm")).as_deref(), Some("lzo-rle"));
    // The layout documented in the kernel's zram.rst: orig compr mem_used limit max same huge.
    let mm = parse_mm_stat("67108864 1048576 1310720 0 1310720 12 0 0 0").unwrap();
    assert_eq!((mm.original_bytes, mm.compressed_bytes, mm.memory_used_bytes), (64 << 20, 1 << 20, 1310720));
    assert!(parse_mm_stat("12 x").is_err());
}

#[test]
fn captured_tree_gives_memory_and_vm_tunables() {
    let m = collect(&root("prometheus_procfs")).unwrap();
    assert_eq!(m.total_bytes, 15666184 * KIB);
    assert_eq!(m.used_bytes, m.total_bytes - m.available_bytes);
    assert_eq!(m.vm.dirty_ratio, Some(20));
    assert_eq!(m.vm.dirty_background_ratio, Some(10));
    assert_eq!(m.vm.swappiness, Some(60));

    let vm = collect(&root("debian-vm")).unwrap();
    assert!(vm.zram.is_empty(), "a zram device with disksize 0 is not set up");
    assert_eq!(vm.vm.swappiness, Some(60));
}
