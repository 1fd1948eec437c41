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

/// One hand-written hwmon chip: its folder, its name and its temperature
/// inputs as `(label, millidegrees)`.
type Chip<'a> = (&'a str, &'a str, &'a [(Option<&'a str>, &'a str)]);

/// A scratch sysroot with the node_exporter capture's /proc and the given chips.
fn with_hwmon(dir_name: &str, chips: &[Chip]) -> cm_collect::SysRoot {
    let dir = scratch(dir_name);
    for f in ["loadavg", "stat"] {
        write(&dir, &format!("proc/{f}"), &read(&format!("node_exporter/proc/{f}")));
    }
    for (folder, name, inputs) in chips {
        write(&dir, &format!("{folder}/name"), &format!("{name}\n"));
        for (i, (label, milli)) in inputs.iter().enumerate() {
            write(&dir, &format!("{folder}/temp{}_input", i + 1), &format!("{milli}\n"));
            if let Some(label) = label {
                write(&dir, &format!("{folder}/temp{}_label", i + 1), &format!("{label}\n"));
            }
        }
    }
    cm_collect::SysRoot::at(&dir)
}

fn cpu_temperature(root: &cm_collect::SysRoot) -> (Option<f64>, Option<String>) {
    let cpu = CpuCollector::default().collect(root).unwrap();
    (cpu.temperature_celsius, cpu.temperature_source)
}

#[test]
fn a_laptops_platform_chip_gives_the_input_it_labels_cpu_not_its_hottest() {
    // Hand-written: the labels the thinkpad_acpi, dell-smm-hwmon and
    // asus-ec-sensors drivers give their inputs; the hottest is never the CPU.
    let thinkpad = with_hwmon(
        "hwmon-thinkpad",
        &[
            ("sys/class/hwmon/hwmon0", "acpitz", &[(None, "41000")]),
            ("sys/class/hwmon/hwmon3", "thinkpad", &[(Some("CPU"), "52000"), (Some("GPU"), "0"), (None, "61000")]),
        ],
    );
    assert_eq!(cpu_temperature(&thinkpad), (Some(52.0), Some("thinkpad CPU".into())));

    let dell = with_hwmon(
        "hwmon-dell",
        &[(
            "sys/class/hwmon/hwmon5",
            "dell_smm",
            &[(Some("Ambient"), "35000"), (Some("SODIMM"), "58000"), (Some("CPU"), "47000"), (Some("Other"), "40000")],
        )],
    );
    assert_eq!(cpu_temperature(&dell), (Some(47.0), Some("dell_smm CPU".into())));

    let asus = with_hwmon(
        "hwmon-asusec",
        &[(
            "sys/class/hwmon/hwmon4",
            "asusec",
            &[
                (Some("Chipset"), "50000"),
                (Some("CPU"), "39000"),
                (Some("Motherboard"), "33000"),
                (Some("T_Sensor"), "-40000"),
                (Some("VRM"), "55000"),
            ],
        )],
    );
    assert_eq!(cpu_temperature(&asus), (Some(39.0), Some("asusec CPU".into())));
}

#[test]
fn a_cpu_driver_wins_over_a_platform_chips_cpu_label() {
    let both = with_hwmon(
        "hwmon-both",
        &[
            ("sys/class/hwmon/hwmon1", "thinkpad", &[(Some("CPU"), "50000")]),
            ("sys/class/hwmon/hwmon2", "coretemp", &[(Some("Package id 0"), "57000"), (Some("Core 0"), "55000")]),
        ],
    );
    assert_eq!(cpu_temperature(&both), (Some(57.0), Some("coretemp Package id 0".into())));
}

#[test]
fn applesmc_inputs_on_its_device_give_the_cpu_die_by_its_smc_key() {
    // applesmc registers the old way: /sys/class/hwmon/hwmonN holds only a
    // `device` link (as in the node_exporter capture) and the name and inputs
    // are on the platform device. The inputs here are hand-written.
    let root = with_hwmon(
        "hwmon-applesmc",
        &[(
            "sys/devices/platform/applesmc.768",
            "applesmc",
            &[(Some("TA0P"), "30000"), (Some("TC0P"), "48000"), (Some("TC0D"), "51000"), (Some("TG0D"), "63000")],
        )],
    );
    let hwmon = root.path("/sys/class/hwmon/hwmon2");
    std::fs::create_dir_all(&hwmon).unwrap();
    std::os::unix::fs::symlink("../../../devices/platform/applesmc.768", hwmon.join("device")).unwrap();
    assert_eq!(cpu_temperature(&root), (Some(51.0), Some("applesmc TC0D".into())));
}
