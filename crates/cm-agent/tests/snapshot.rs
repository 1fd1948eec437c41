//! `cm-agent snapshot` against this machine and against captured trees.

use std::path::PathBuf;
use std::process::Command;

use cm_proto::HostSnapshot;

fn agent(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cm-agent")).args(args).output().expect("cm-agent runs")
}

fn snapshot(args: &[&str]) -> HostSnapshot {
    let out = agent(args);
    assert!(out.status.success(), "cm-agent {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("snapshot --json prints a HostSnapshot")
}

fn captured(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../cm-collect/testdata").join(name);
    p.to_string_lossy().into_owned()
}

fn meminfo_kib(key: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap();
    let line = text.lines().find(|l| l.starts_with(&format!("{key}:"))).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn live_snapshot_agrees_with_proc_meminfo_loadavg_and_df() {
    let snap = snapshot(&["snapshot", "--json"]);
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(snap.host, hostname.trim());

    let mem = snap.memory.as_ref().expect("memory collected");
    assert_eq!(mem.total_bytes, meminfo_kib("MemTotal") * 1024);
    let avail_now = meminfo_kib("MemAvailable") * 1024;
    let tolerance = mem.total_bytes / 20; // other tests run beside this one
    assert!(mem.available_bytes.abs_diff(avail_now) < tolerance, "{} vs {avail_now}", mem.available_bytes);

    let load: Vec<f64> = std::fs::read_to_string("/proc/loadavg")
        .unwrap()
        .split_whitespace()
        .take(3)
        .map(|v| v.parse().unwrap())
        .collect();
    let cpu = snap.cpu.as_ref().expect("cpu collected");
    assert!((cpu.load15 - load[2]).abs() < 0.5, "load15 {} vs {}", cpu.load15, load[2]);
    assert!(cpu.utilisation_percent.is_some(), "one-shot snapshot samples the CPU twice");

    // df -B1 / : Filesystem 1B-blocks Used Available Use% Mounted-on
    let df = Command::new("df").args(["-B1", "--output=size,used,avail", "/"]).output().unwrap();
    let df = String::from_utf8(df.stdout).unwrap();
    let v: Vec<u64> = df.lines().nth(1).unwrap().split_whitespace().map(|x| x.parse().unwrap()).collect();
    let root = snap.filesystems.iter().find(|f| f.mount_point == "/").expect("/ is listed");
    assert_eq!(root.size_bytes, v[0]);
    let slack = v[0] / 100;
    assert!(root.used_bytes.abs_diff(v[1]) < slack, "used {} vs df {}", root.used_bytes, v[1]);
    assert!(root.available_bytes.abs_diff(v[2]) < slack, "avail {} vs df {}", root.available_bytes, v[2]);
    assert!(snap.collectors.iter().any(|c| c.name == "storage" && c.error.is_none()));
}

#[test]
fn captured_tree_snapshot() {
    let snap = snapshot(&["snapshot", "--json", "--sysroot", &captured("node_exporter")]);
    let cpu = snap.cpu.expect("cpu");
    assert_eq!((cpu.load1, cpu.logical_cpus), (0.21, 8));
    assert_eq!(snap.memory.expect("memory").total_bytes, 3742148 * 1024);
    assert!(snap.gpus.is_empty(), "nvidia-smi is not asked about a captured tree");
    // This capture has no /proc/sys/kernel/hostname: the host collector says so.
    let host = snap.collectors.iter().find(|c| c.name == "host").unwrap();
    assert!(host.error.as_deref().unwrap_or_default().contains("hostname"), "{host:?}");
}

#[test]
fn missing_and_garbage_files_become_collector_errors_not_crashes() {
    let dir = std::env::temp_dir().join(format!("cm-agent-broken-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("proc/self")).unwrap();
    std::fs::write(dir.join("proc/meminfo"), "MemTotal: 1000 kB\nMemAvailable: \u{fffd}\u{0}\n").unwrap();
    std::fs::write(dir.join("proc/loadavg"), "0.5").unwrap();
    std::fs::write(dir.join("proc/self/mountinfo"), "garbage").unwrap();
    let snap = snapshot(&["snapshot", "--json", "--sysroot", dir.to_str().unwrap()]);
    assert!(snap.cpu.is_none() && snap.memory.is_none() && snap.filesystems.is_empty());
    let error = |name: &str| snap.collectors.iter().find(|c| c.name == name).unwrap().error.clone().unwrap_or_default();
    assert!(error("cpu").contains("proc/loadavg") && error("cpu").contains("three load averages"), "{}", error("cpu"));
    assert!(error("memory").contains("proc/meminfo") && error("memory").contains("line 2"), "{}", error("memory"));
    assert!(error("storage").contains("mountinfo"), "{}", error("storage"));
    assert_eq!(error("gpu"), "", "no GPU is not an error");
}

#[test]
fn a_sysroot_that_does_not_exist_is_refused_clearly() {
    let out = agent(&["snapshot", "--sysroot", "/nonexistent/cm-root"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/cm-root is not a directory"), "{err}");
}

#[test]
fn summary_names_the_host_and_memory() {
    let out = agent(&["snapshot", "--sysroot", &captured("debian-vm")]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("host vm "), "{text}");
    assert!(text.contains("ram  0.3/23.5 GiB"), "{text}");
}
