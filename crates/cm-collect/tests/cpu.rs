mod common;

use cm_collect::cpu::{parse_cpuinfo, parse_loadavg, parse_stat, utilisation, CpuCollector, CpuTimes};
use cm_collect::CollectError;
use common::*;

#[test]
fn loadavg_from_node_exporter_capture() {
    let l = parse_loadavg(&read("node_exporter/proc/loadavg")).unwrap();
    assert_eq!((l.load1, l.load5, l.load15), (0.21, 0.37, 0.39));
}

#[test]
fn stat_totals_count_every_tick_and_idle_includes_iowait() {
    let s = parse_stat(&read("node_exporter/proc/stat")).unwrap();
    // cpu  301854 612 111922 8979004 3552 2 3944 0 44 36: guest ticks are inside user already.
    assert_eq!(s.times, CpuTimes { total: 301854 + 612 + 111922 + 8979004 + 3552 + 2 + 3944, idle: 8979004 + 3552 });
    assert_eq!(s.logical_cpus, 8);
}

#[test]
fn utilisation_is_the_busy_share_of_the_delta() {
    let a = CpuTimes { total: 1000, idle: 900 };
    let b = CpuTimes { total: 1200, idle: 950 };
    assert_eq!(utilisation(a, b), Some(75.0));
    assert_eq!(utilisation(a, a), None, "no time passed");
    assert_eq!(utilisation(b, a), None, "counters went back (reboot in between)");
}

#[test]
fn cpuinfo_model_on_x86() {
    let info = parse_cpuinfo(&read("node_exporter/proc/cpuinfo"));
    assert_eq!(info.model.as_deref(), Some("Intel(R) Core(TM) i7-8650U CPU @ 1.90GHz"));
    assert_eq!(info.mhz.len(), 8);
    assert_eq!(info.mhz[0], 799.998);
}

#[test]
fn collector_reads_a_captured_tree() {
    let root = root("node_exporter");
    let mut c = CpuCollector::default();
    let cpu = c.collect(&root).unwrap();
    assert_eq!(cpu.load1, 0.21);
    assert_eq!(cpu.logical_cpus, 8);
    assert_eq!(cpu.utilisation_percent, None, "first sample has no delta");
    // coretemp on this kernel labels the package "Physical id 0": 55000 millidegrees.
    assert_eq!(cpu.temperature_celsius, Some(55.0));
    assert_eq!(cpu.temperature_source.as_deref(), Some("coretemp Physical id 0"));
    // scaling_cur_freq: 1699981, 1699981, 8000, 8000 kHz.
    assert_eq!(cpu.frequency_hz, Some((1_699_981_000 * 2 + 8_000_000 * 2) / 4));
    assert_eq!(cpu.max_frequency_hz, Some(1_699_981_000));
    assert_eq!(cpu.core_frequencies_hz, [1_699_981_000, 1_699_981_000, 8_000_000, 8_000_000]);
    let again = c.collect(&root).unwrap();
    assert_eq!(again.utilisation_percent, None, "identical counters give no utilisation");
}

#[test]
fn thermal_zone_is_the_fallback_without_a_cpu_hwmon() {
    let dir = scratch("thermal");
    for f in ["loadavg", "stat"] {
        write(&dir, &format!("proc/{f}"), &read(&format!("node_exporter/proc/{f}")));
    }
    write(&dir, "sys/class/thermal/thermal_zone0/type", "acpitz\n");
    write(&dir, "sys/class/thermal/thermal_zone0/temp", "27800\n");
    write(&dir, "sys/class/thermal/thermal_zone1/type", "x86_pkg_temp\n");
    write(&dir, "sys/class/thermal/thermal_zone1/temp", "61000\n");
    let cpu = CpuCollector::default().collect(&cm_collect::SysRoot::at(&dir)).unwrap();
    assert_eq!(cpu.temperature_celsius, Some(61.0));
    assert_eq!(cpu.temperature_source.as_deref(), Some("thermal_zone1 x86_pkg_temp"));
}

#[test]
fn missing_truncated_and_garbage_files_are_errors_naming_the_file() {
    let dir = scratch("cpu-bad");
    let root = cm_collect::SysRoot::at(&dir);
    let err = CpuCollector::default().collect(&root).unwrap_err();
    assert!(matches!(err, CollectError::Read { .. }));
    assert!(err.to_string().contains("proc/loadavg"), "{err}");

    write(&dir, "proc/loadavg", "0.21 0.3");
    let err = CpuCollector::default().collect(&root).unwrap_err();
    assert!(err.to_string().contains("expected three load averages"), "{err}");

    write(&dir, "proc/loadavg", "0.1 0.2 0.3 1/2 3\n");
    write(&dir, "proc/stat", "\u{0}\u{1}garbage\ncpu x y z\n");
    let err = CpuCollector::default().collect(&root).unwrap_err().to_string();
    assert!(err.contains("proc/stat") && err.contains("line 2"), "{err}");
}
