//! The services collector against a real systemd: Debian's, booted as PID 1 of
//! a container by tests/systemd/harness.sh, with the test units in
//! tests/systemd/units. Needs root; runs when CM_SYSTEMD_HARNESS=1 (CI sets
//! it) and says SKIPPED otherwise.

use std::path::PathBuf;
use std::process::Command;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cm_agent::Thresholds;
use cm_collect::systemd::{BackupJob, SystemdCollector, SystemdConfig};
use cm_collect::SysRoot;
use cm_proto::{Service, Status};

mod common;

fn harness() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/systemd/harness.sh")
}

fn sh(args: &[&str]) -> String {
    let out = Command::new(harness()).args(args).output().expect("harness runs");
    assert!(
        out.status.success(),
        "harness {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

struct Container {
    name: String,
    pid: u32,
}

impl Container {
    fn boot(name: &str) -> Option<Container> {
        if std::env::var("CM_SYSTEMD_HARNESS").as_deref() != Ok("1") {
            eprintln!("SKIPPED: set CM_SYSTEMD_HARNESS=1 (as root) to boot a real systemd for this test");
            return None;
        }
        sh(&["rootfs"]);
        let pid = sh(&["start", name]).trim().parse().expect("harness prints the container's PID 1");
        sh(&["wait", name, "60"]);
        Some(Container { name: name.into(), pid })
    }

    fn exec(&self, args: &[&str]) -> std::process::Output {
        let mut all = vec!["exec", &self.name];
        all.extend_from_slice(args);
        Command::new(harness()).args(&all).output().unwrap()
    }

    fn root(&self) -> String {
        format!("/proc/{}/root", self.pid)
    }

    fn collector(&self) -> SystemdCollector {
        SystemdCollector::new(SystemdConfig {
            address: Some(format!("unix:path={}/run/dbus/system_bus_socket", self.root())),
            patterns: vec!["cm-*".into()],
            units: vec!["cm-never-installed.service".into()],
            ..Default::default()
        })
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new(harness()).args(["stop", &self.name]).output();
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

fn read(c: &Container, collector: &mut SystemdCollector) -> Vec<Service> {
    let mut services = collector.collect(&SysRoot::at(c.root())).expect("collects").services.expect("systemd is there");
    for s in &mut services {
        Thresholds::default().judge_service(s, None, now_ms());
    }
    services
}

fn unit<'a>(services: &'a [Service], name: &str) -> &'a Service {
    services.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("{name} not reported: {services:#?}"))
}

/// Reads until `check` accepts the unit or `limit` passes.
fn until(
    c: &Container,
    col: &mut SystemdCollector,
    name: &str,
    limit: Duration,
    check: impl Fn(&Service) -> bool,
) -> Service {
    let start = Instant::now();
    loop {
        let services = read(c, col);
        let s = services.iter().find(|s| s.name == name).cloned();
        if let Some(s) = s.as_ref().filter(|s| check(s)) {
            return s.clone();
        }
        assert!(start.elapsed() < limit, "{name} never reached the expected state: {s:#?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn real_systemd_units_are_reported_with_their_resources_and_status() {
    let Some(c) = Container::boot(&format!("cmtest{}", std::process::id())) else { return };
    let mut col = c.collector();

    // A healthy service with StateDirectory, MemoryMax and MemoryHigh.
    let healthy = until(&c, &mut col, "cm-healthy.service", Duration::from_secs(20), |s| {
        s.sub_state == "running" && s.cpu_percent.is_some()
    });
    assert_eq!((healthy.active_state.as_str(), healthy.status), ("active", Status::Ok));
    assert_eq!((healthy.memory_max_bytes, healthy.memory_high_bytes), (Some(64 << 20), Some(48 << 20)));
    assert!(healthy.memory_bytes.is_some_and(|m| m > 0 && m < 64 << 20), "{healthy:?}");
    assert!(healthy.tasks.is_some_and(|t| t >= 1), "{healthy:?}");
    let data = healthy.disk_bytes.expect("StateDirectory measured") as f64;
    let written = (20u64 << 20) as f64;
    assert!((data - written).abs() / written < 0.05, "disk {data} vs {written} written");
    assert_eq!(healthy.disk_paths, ["/var/lib/cm-healthy"]);
    assert!(healthy.since_ms.is_some_and(|t| t <= now_ms()));

    // A unit restarting in a loop.
    let flapping = until(&c, &mut col, "cm-flapping.service", Duration::from_secs(20), |s| s.restarts >= 3);
    assert_eq!(flapping.status, Status::Warning, "{flapping:?}");
    assert!(flapping.reason.as_deref().unwrap().contains("restarted"), "{flapping:?}");

    // The oneshot run by its timer.
    let oneshot = until(&c, &mut col, "cm-oneshot.service", Duration::from_secs(20), |s| {
        s.result == "success" && s.disk_bytes.is_some_and(|b| b > 0)
    });
    assert_eq!(oneshot.status, Status::Ok);
    assert!(read(&c, &mut col).iter().any(|s| s.name == "cm-oneshot.timer"), "the timer is watched too");

    // A unit named in the config that does not exist.
    let missing = unit(&read(&c, &mut col), "cm-never-installed.service").clone();
    assert_eq!((missing.load_state.as_str(), missing.status), ("not-found", Status::Critical));

    // A unit that fails is seen within 2 s of being started, woken by systemd's signals.
    let (tx, rx) = mpsc::channel();
    col.set_waker(Arc::new(move || {
        let _ = tx.send(());
    }));
    read(&c, &mut col); // starts the watcher
    std::thread::sleep(Duration::from_millis(500));
    while rx.try_recv().is_ok() {}
    let started = Instant::now();
    let out = c.exec(&["systemctl", "start", "cm-fails.service"]);
    assert!(!out.status.success(), "cm-fails is meant to fail");
    let seen = loop {
        rx.recv_timeout(Duration::from_secs(2)).expect("woken by a unit signal within 2 s");
        if col.take_changed() {
            let services = read(&c, &mut col);
            let s = unit(&services, "cm-fails.service");
            if s.active_state == "failed" {
                break s.clone();
            }
        }
        assert!(started.elapsed() < Duration::from_secs(2), "cm-fails not reported failed within 2 s");
    };
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!((seen.status, seen.result.as_str()), (Status::Critical, "exit-code"));

    // A unit that outgrows its MemoryMax is OOM-killed, and the cgroup says so.
    c.exec(&["systemctl", "start", "--no-block", "cm-oom.service"]);
    let oom = until(&c, &mut col, "cm-oom.service", Duration::from_secs(20), |s| s.oom_kills.is_some_and(|n| n > 0));
    assert_eq!((oom.active_state.as_str(), oom.status), ("active", Status::Warning), "{oom:?}");
    // Sampled just before the kill, memory at MemoryMax is reported too.
    assert!(oom.reason.as_deref().unwrap_or_default().ends_with("1 OOM kill(s) in this run"), "{oom:?}");
    assert_eq!(oom.memory_max_bytes, Some(32 << 20));

    // A unit that vanishes (a transient unit, stopped) leaves the list without an error.
    let out = c.exec(&["systemd-run", "--unit=cm-transient", "sleep", "300"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    until(&c, &mut col, "cm-transient.service", Duration::from_secs(10), |s| s.sub_state == "running");
    c.exec(&["systemctl", "stop", "cm-transient.service"]);
    let start = Instant::now();
    while read(&c, &mut col).iter().any(|s| s.name == "cm-transient.service") {
        assert!(start.elapsed() < Duration::from_secs(10), "cm-transient still listed");
        std::thread::sleep(Duration::from_millis(100));
    }

    // A StateDirectory that disappears is reported, not fatal.
    c.exec(&["rm", "-rf", "/var/lib/cm-oneshot"]);
    let mut fresh = c.collector(); // a new collector has no cached walk
    let gone = unit(&read(&c, &mut fresh), "cm-oneshot.service").clone();
    assert!(gone.disk_errors.iter().any(|e| e.contains("/var/lib/cm-oneshot")), "{gone:?}");

    // Through the agent core: services in the snapshot, judged, worst first.
    let config = cm_agent::CoreConfig {
        systemd: Some(SystemdConfig {
            address: Some(format!("unix:path={}/run/dbus/system_bus_socket", c.root())),
            patterns: vec!["cm-*".into()],
            backups: vec![
                BackupJob {
                    name: "nightly".into(),
                    kind: "restic".into(),
                    unit: "cm-oneshot.service".into(),
                    timer: None,
                },
                BackupJob { name: "broken".into(), kind: "borg".into(), unit: "cm-fails.service".into(), timer: None },
                // A name systemd refuses outright, and one it does not know.
                BackupJob {
                    name: "bad-name".into(),
                    kind: "restic".into(),
                    unit: "cm bad name.service".into(),
                    timer: None,
                },
                BackupJob {
                    name: "typo".into(),
                    kind: "restic".into(),
                    unit: "cm-no-such-backup.service".into(),
                    timer: None,
                },
            ],
            ..Default::default()
        }),
        ..cm_agent::CoreConfig::for_sysroot(SysRoot::at(c.root()))
    };
    let snap = cm_agent::AgentCore::one_shot(config);
    let services = snap.services.as_ref().expect("services in the snapshot");
    assert_eq!(services[0].status, Status::Critical, "worst first: {services:#?}");
    assert!(services.iter().any(|s| s.name == "cm-healthy.service" && s.status == Status::Ok));
    assert!(snap.collector("systemd").unwrap().error.is_none());
    // Backup jobs: the oneshot ran (by its timer) and will run again; the failing one failed.
    let backups = snap.backups.as_ref().expect("backups in the snapshot");
    let nightly = backups.iter().find(|b| b.name == "nightly").unwrap();
    assert_eq!((nightly.result.as_deref(), nightly.status), (Some("success"), Status::Ok), "{nightly:?}");
    assert!(nightly.last_run_ms.is_some_and(|t| t <= now_ms()) && nightly.duration_seconds.is_some(), "{nightly:?}");
    assert!(nightly.next_run_ms.is_some_and(|t| t > now_ms()), "next run from cm-oneshot.timer: {nightly:?}");
    let broken = backups.iter().find(|b| b.name == "broken").unwrap();
    assert_eq!((broken.result.as_deref(), broken.status), (Some("exit-code"), Status::Critical), "{broken:?}");
    assert_eq!(broken.next_run_ms, None, "no timer");
    // Each bad job is reported alone, unknown with the reason; the rest were read above.
    let bad = backups.iter().find(|b| b.name == "bad-name").unwrap();
    assert_eq!(bad.status, Status::Unknown, "{bad:?}");
    assert!(bad.reason.as_deref().unwrap().starts_with("cannot read cm bad name.service: "), "{bad:?}");
    let typo = backups.iter().find(|b| b.name == "typo").unwrap();
    assert_eq!(typo.status, Status::Unknown, "{typo:?}");
    assert!(typo.reason.as_deref().unwrap().contains("cm-no-such-backup.service (not-found)"), "{typo:?}");

    // The core's own loop is woken by unit signals: with an hour between
    // scheduled rounds, a unit that fails shows in a snapshot within seconds.
    let hour = Duration::from_secs(3600);
    let mut core = cm_agent::AgentCore::new(cm_agent::CoreConfig {
        intervals: cm_agent::Intervals {
            cpu: hour,
            memory: hour,
            storage: hour,
            gpu: hour,
            smart: hour,
            services: hour,
        },
        systemd: Some(SystemdConfig {
            address: Some(format!("unix:path={}/run/dbus/system_bus_socket", c.root())),
            patterns: vec!["cm-*".into()],
            ..Default::default()
        }),
        ..cm_agent::CoreConfig::for_sysroot(SysRoot::at(c.root()))
    });
    let started = Instant::now();
    while core.wait_and_collect(started + Duration::from_secs(30)).and_then(|s| s.services).is_none() {
        assert!(started.elapsed() < Duration::from_secs(30), "no services from the core");
    }
    // Until its watcher has subscribed, nothing wakes the core: poke it with a
    // oneshot until a snapshot comes without a scheduled round.
    loop {
        c.exec(&["systemctl", "start", "cm-oneshot.service"]);
        if core.wait_and_collect(Instant::now() + Duration::from_secs(2)).is_some() {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "unit signals never woke the core");
    }
    let out = c.exec(&["systemd-run", "--unit=cm-late-fail", "sh", "-c", "sleep 0.3; exit 3"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let asked = Instant::now();
    let failed = loop {
        let snap = core.wait_and_collect(asked + Duration::from_secs(20)).expect("woken before the hour is up");
        let unit = snap.services.unwrap_or_default().into_iter().find(|s| s.name == "cm-late-fail.service");
        if let Some(unit) = unit.filter(|u| u.active_state == "failed") {
            break unit;
        }
    };
    assert_eq!(failed.status, Status::Critical, "{failed:?}");
    assert!(asked.elapsed() < Duration::from_secs(20));

    // The bus going away and coming back: a clear error, then service again.
    c.exec(&["systemctl", "stop", "dbus.socket", "dbus.service"]);
    let down = col.collect(&SysRoot::at(c.root()));
    match down {
        Ok(outcome) => assert!(outcome.services.is_none() && outcome.note.is_some(), "{outcome:?}"),
        Err(e) => assert!(e.to_string().contains("D-Bus"), "{e}"),
    }
    c.exec(&["systemctl", "start", "dbus.socket", "dbus.service"]);
    until(&c, &mut col, "cm-healthy.service", Duration::from_secs(20), |s| s.sub_state == "running");
}

/// A real Prometheus scraping a real `cm-agent run` that watches the
/// container's units: the unit that fails at boot is a critical status.
#[test]
fn prometheus_sees_the_failed_unit_as_critical() {
    let Some(c) = Container::boot("cm-prom") else { return };
    let setup = common::Setup::new("systemd-prom", 1.0, None, |_| {});
    setup.watch_systemd(&["cm-*"]);
    let metrics = format!("127.0.0.1:{}", common::free_tcp_port());
    setup.append(&format!("[metrics]\nlisten = \"{metrics}\"\n"));
    let bus = format!("unix:path={}/run/dbus/system_bus_socket", c.root());
    let _agent = setup.run_with(&[("DBUS_SYSTEM_BUS_ADDRESS", &bus)]);
    let scrape = format!("- job_name: cm\n  static_configs:\n  - targets: ['{metrics}']\n");
    let Some(prom) = common::Prometheus::start(&setup.dir.join("prometheus"), &scrape) else {
        assert!(std::env::var("CM_REQUIRE_PROMETHEUS").as_deref() != Ok("1"), "CM_REQUIRE_PROMETHEUS=1: no prometheus");
        eprintln!("SKIPPED: prometheus (Debian's prometheus package) is not installed");
        return;
    };
    let out = c.exec(&["systemctl", "start", "cm-fails.service"]);
    assert!(!out.status.success(), "cm-fails is meant to fail");
    let failed = prom.wait("cm_status{item=\"service.cm-fails.service\"}", Duration::from_secs(90));
    assert_eq!(failed, 2.0, "cm-fails.service is critical (2) in Prometheus");
    let healthy = prom.wait("cm_status{item=\"service.cm-healthy.service\"}", Duration::from_secs(30));
    assert_eq!(healthy, 0.0, "cm-healthy.service is ok (0)");
}
