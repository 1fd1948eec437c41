//! What the fleet overview shows of a host, worked out once when its snapshot
//! arrives rather than on every frame: the worst status, the one reason a
//! person should read first, and the figures of the overview's columns.

use cm_proto::{HostSnapshot, Status};

/// One host's row in the overview, as far as it depends on the snapshot alone
/// (the age and staleness depend on the clock and are worked out per frame).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Summary {
    /// The worst status of anything in the snapshot.
    pub worst: Status,
    /// Why it is not fine: the alert that decides the status when one does
    /// (`fs-full /srv: used 92% ...`), else the worst item, services before
    /// anything else among equals; `None` when everything is ok.
    pub reason: Option<String>,
    pub cpu_percent: Option<f64>,
    pub ram_percent: Option<f64>,
    /// The most worn drive's wear, from SMART.
    pub wear_percent: Option<f64>,
    /// The fullest filesystem's use.
    pub disk_percent: Option<f64>,
    /// Services that are ok, and all watched services; `None` without a
    /// systemd source.
    pub services: Option<(usize, usize)>,
    /// Generation, revision and reboot marker of a NixOS host.
    pub nixos: Option<String>,
}

/// Where the worst reason comes from, kept as an index while searching so that
/// only the winner is put into words.
#[derive(Clone, Copy)]
enum Source {
    Service(usize),
    Drive(usize),
    Filesystem(usize),
    Memory,
    Cpu,
    Collector(usize),
    Nixos,
}

impl Summary {
    /// The summary of `s`.
    pub fn of(s: &HostSnapshot) -> Self {
        Summary {
            worst: s.worst_status(),
            reason: alert_reason(s).or_else(|| worst_reason(s)),
            cpu_percent: s.cpu.as_ref().and_then(|c| c.utilisation_percent),
            ram_percent: s.memory.as_ref().map(|m| m.used_percent()),
            wear_percent: s.drives.iter().filter_map(|d| d.health.as_ref()?.wear_percent).reduce(f64::max),
            disk_percent: s
                .filesystems
                .iter()
                .filter(|f| f.used_bytes + f.available_bytes > 0)
                .map(|f| f.used_percent())
                .reduce(f64::max),
            services: s
                .services
                .as_ref()
                .map(|list| (list.iter().filter(|s| s.status == Status::Ok).count(), list.len())),
            nixos: s.nixos.as_ref().map(crate::format::nixos_cell),
        }
    }
}

/// The reason of the alert that decides the host's status
/// ([`HostSnapshot::worst_alert`]), when one does: an alert is what told
/// someone, so it comes before the items among equals.
fn alert_reason(s: &HostSnapshot) -> Option<String> {
    let alert = s.worst_alert().filter(|a| a.severity >= s.worst_status() && a.severity != Status::Ok)?;
    Some(if alert.reason.is_empty() { alert.title() } else { format!("{}: {}", alert.title(), alert.reason) })
}

/// The worst reason in `s`: the first not-ok item of the highest status, in
/// the order services, drives, filesystems, memory, CPU, collector errors.
fn worst_reason(s: &HostSnapshot) -> Option<String> {
    let services = s.services.iter().flatten().enumerate().map(|(i, svc)| (svc.status, Source::Service(i)));
    let drives = s.drives.iter().enumerate().filter_map(|(i, d)| {
        let finding = d.health.as_ref()?.findings.first()?;
        Some((finding.status, Source::Drive(i)))
    });
    let filesystems = s.filesystems.iter().enumerate().map(|(i, f)| (f.status, Source::Filesystem(i)));
    let memory = s.memory.iter().map(|m| (m.status, Source::Memory));
    let cpu = s.cpu.iter().map(|c| (c.status, Source::Cpu));
    let nixos = s.nixos.iter().map(|n| (n.status, Source::Nixos));
    let collectors = s
        .collectors
        .iter()
        .enumerate()
        .filter(|(_, c)| c.error.is_some())
        .map(|(i, _)| (Status::Unknown, Source::Collector(i)));
    let mut worst: Option<(Status, Source)> = None;
    for (status, source) in
        services.chain(drives).chain(filesystems).chain(memory).chain(cpu).chain(nixos).chain(collectors)
    {
        // Strictly worse only: among equals the first one wins.
        if status != Status::Ok && worst.is_none_or(|(w, _)| status > w) {
            worst = Some((status, source));
        }
    }
    let (_, source) = worst?;
    Some(match source {
        Source::Service(i) => {
            let svc = &s.services.as_ref().expect("the index came from the list")[i];
            format!("{}: {}", svc.name, svc.reason.as_deref().unwrap_or_default())
        }
        Source::Drive(i) => {
            let d = &s.drives[i];
            let text = d.health.as_ref().and_then(|h| h.findings.first()).map_or("", |f| f.text.as_str());
            format!("{}: {text}", d.name)
        }
        Source::Filesystem(i) => {
            let f = &s.filesystems[i];
            format!("{} {:.0}% full", f.mount_point, f.used_percent())
        }
        Source::Memory => format!("RAM {:.0}%", s.memory.as_ref().map_or(0.0, |m| m.used_percent())),
        Source::Cpu => format!("CPU {:.0} C", s.cpu.as_ref().and_then(|c| c.temperature_celsius).unwrap_or(0.0)),
        Source::Nixos => {
            let n = s.nixos.as_ref().expect("the source came from it");
            match n.reboot_reasons.first() {
                Some(why) => format!("reboot needed: {why}"),
                None => "NixOS state unknown".into(),
            }
        }
        Source::Collector(i) => {
            let c = &s.collectors[i];
            format!("{}: {}", c.name, c.error.as_deref().unwrap_or_default())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cm_proto::*;

    /// The overview's reason as it was worked out on every frame before the
    /// summary existed: every candidate put into words, then the worst picked.
    fn per_frame_reason(s: &HostSnapshot) -> Option<String> {
        let mut reasons: Vec<(Status, String)> = Vec::new();
        for svc in s.services.iter().flatten() {
            reasons.push((svc.status, format!("{}: {}", svc.name, svc.reason.clone().unwrap_or_default())));
        }
        for d in &s.drives {
            if let Some(f) = d.health.as_ref().and_then(|h| h.findings.first()) {
                reasons.push((f.status, format!("{}: {}", d.name, f.text)));
            }
        }
        for f in &s.filesystems {
            reasons.push((f.status, format!("{} {:.0}% full", f.mount_point, f.used_percent())));
        }
        if let Some(m) = &s.memory {
            reasons.push((m.status, format!("RAM {:.0}%", m.used_percent())));
        }
        if let Some(c) = &s.cpu {
            reasons.push((c.status, format!("CPU {:.0} C", c.temperature_celsius.unwrap_or(0.0))));
        }
        for c in &s.collectors {
            if let Some(e) = &c.error {
                reasons.push((Status::Unknown, format!("{}: {e}", c.name)));
            }
        }
        reasons.into_iter().filter(|(st, _)| *st != Status::Ok).rev().max_by_key(|(st, _)| *st).map(|(_, r)| r)
    }

    /// The overview's cells (cpu, ram, wear, services) as they were formatted
    /// from the snapshot on every frame.
    fn per_frame_cells(s: &HostSnapshot) -> [String; 4] {
        let dash = || "-".to_string();
        [
            s.cpu.as_ref().and_then(|c| c.utilisation_percent).map_or_else(dash, |c| format!("{c:.0}%")),
            s.memory.as_ref().map_or_else(dash, |m| format!("{:.0}%", m.used_percent())),
            s.drives
                .iter()
                .filter_map(|d| d.health.as_ref()?.wear_percent)
                .reduce(f64::max)
                .map_or_else(dash, |w| format!("{w:.0}%")),
            s.services.as_ref().map_or_else(dash, |list| {
                let ok = list.iter().filter(|s| s.status == Status::Ok).count();
                format!("{ok}/{}", list.len())
            }),
        ]
    }

    fn summary_cells(s: &Summary) -> [String; 4] {
        let pct = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.0}%"));
        [
            pct(s.cpu_percent),
            pct(s.ram_percent),
            pct(s.wear_percent),
            s.services.map_or_else(|| "-".to_string(), |(ok, all)| format!("{ok}/{all}")),
        ]
    }

    /// A small deterministic generator (xorshift), so the cases are the same on every run.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        fn status(&mut self) -> Status {
            // Mostly ok, as in a real fleet, so that ties and absences both occur.
            [Status::Ok, Status::Ok, Status::Ok, Status::Warning, Status::Critical, Status::Unknown]
                [self.below(6) as usize]
        }
    }

    /// A snapshot with every kind of reason the overview ranks, each present
    /// or absent and of any status, chosen by `rng`.
    fn random_snapshot(rng: &mut Rng) -> HostSnapshot {
        let mut s = HostSnapshot { host: format!("h{}", rng.below(100)), ..Default::default() };
        if rng.below(4) > 0 {
            let services = (0..rng.below(8))
                .map(|i| Service {
                    name: format!("svc{i}.service"),
                    status: rng.status(),
                    reason: (rng.below(3) > 0).then(|| format!("reason {}", rng.below(10))),
                    ..Default::default()
                })
                .collect();
            s.services = Some(services);
        }
        for i in 0..rng.below(3) {
            let findings =
                (0..rng.below(3)).map(|j| Finding { status: rng.status(), text: format!("finding {j}") }).collect();
            let health = (rng.below(4) > 0).then(|| DriveHealth {
                wear_percent: (rng.below(2) == 0).then(|| rng.below(100) as f64 + 0.4),
                findings,
                ..Default::default()
            });
            s.drives.push(Drive { name: format!("sd{i}"), health, status: rng.status(), ..Default::default() });
        }
        for i in 0..rng.below(3) {
            let size = rng.below(1000) + 1;
            let used = rng.below(size);
            s.filesystems.push(Filesystem {
                mount_point: format!("/m{i}"),
                used_bytes: used,
                available_bytes: size - used,
                size_bytes: size,
                status: rng.status(),
                ..Default::default()
            });
        }
        if rng.below(5) > 0 {
            s.memory = Some(Memory {
                total_bytes: 1000,
                used_bytes: rng.below(1000),
                status: rng.status(),
                ..Default::default()
            });
        }
        if rng.below(5) > 0 {
            s.cpu = Some(Cpu {
                utilisation_percent: (rng.below(4) > 0).then(|| rng.below(1000) as f64 / 10.0),
                temperature_celsius: (rng.below(2) == 0).then(|| rng.below(100) as f64),
                status: rng.status(),
                ..Default::default()
            });
        }
        for name in ["cpu", "memory", "storage", "smart"] {
            let error = (rng.below(6) == 0).then(|| format!("{name} failed"));
            s.collectors.push(CollectorReport { name: name.into(), error, ..Default::default() });
        }
        s
    }

    #[test]
    fn the_summary_says_what_the_per_frame_computation_said() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut with_reason = 0;
        for case in 0..5_000 {
            let s = random_snapshot(&mut rng);
            let summary = Summary::of(&s);
            assert_eq!(summary.reason, per_frame_reason(&s), "case {case}: {s:#?}");
            assert_eq!(summary_cells(&summary), per_frame_cells(&s), "case {case}: {s:#?}");
            assert_eq!(summary.worst, s.worst_status(), "case {case}");
            with_reason += usize::from(summary.reason.is_some());
        }
        assert!((1_000..4_900).contains(&with_reason), "the cases cover hosts with and without reasons: {with_reason}");
    }

    #[test]
    fn the_disk_figure_is_the_fullest_filesystem_that_was_measured() {
        let fs = |m: &str, used, available| Filesystem {
            mount_point: m.into(),
            used_bytes: used,
            available_bytes: available,
            ..Default::default()
        };
        let s = HostSnapshot {
            filesystems: vec![fs("/", 30, 70), fs("/var", 90, 10), fs("/mnt/gone", 0, 0)],
            ..Default::default()
        };
        assert_eq!(Summary::of(&s).disk_percent, Some(90.0));
        assert_eq!(Summary::of(&HostSnapshot::default()).disk_percent, None);
    }

    #[test]
    fn the_alert_that_decides_the_status_is_the_reason() {
        use cm_proto::alert::{Alert, AlertState};
        let fs = Filesystem {
            mount_point: "/srv".into(),
            used_bytes: 92,
            available_bytes: 8,
            status: Status::Warning,
            ..Default::default()
        };
        let alert = |state, severity| Alert {
            rule: "fs-full".into(),
            instance: "/srv".into(),
            state,
            severity,
            reason: "used 92% (critical at 90%)".into(),
            ..Default::default()
        };
        let mut s = HostSnapshot { filesystems: vec![fs], ..Default::default() };
        assert_eq!(Summary::of(&s).reason.as_deref(), Some("/srv 92% full"));
        s.alerts = vec![alert(AlertState::Pending, Status::Critical)];
        assert_eq!(Summary::of(&s).reason.as_deref(), Some("/srv 92% full"), "pending has told no one");
        s.alerts = vec![alert(AlertState::Firing, Status::Critical)];
        let summary = Summary::of(&s);
        assert_eq!(summary.worst, Status::Critical);
        assert_eq!(summary.reason.as_deref(), Some("fs-full /srv: used 92% (critical at 90%)"));
        s.filesystems[0].status = Status::Critical;
        s.alerts = vec![alert(AlertState::Flapping, Status::Warning)];
        assert_eq!(Summary::of(&s).reason.as_deref(), Some("/srv 92% full"), "a worse item wins");
    }

    #[test]
    fn among_equals_services_come_first_and_a_worse_status_wins() {
        let svc = |name: &str, status| Service {
            name: name.into(),
            status,
            reason: Some("failed".into()),
            ..Default::default()
        };
        let mut s = HostSnapshot {
            services: Some(vec![svc("a.service", Status::Warning), svc("b.service", Status::Warning)]),
            memory: Some(Memory { total_bytes: 100, used_bytes: 95, status: Status::Warning, ..Default::default() }),
            ..Default::default()
        };
        assert_eq!(Summary::of(&s).reason.as_deref(), Some("a.service: failed"));
        s.memory.as_mut().unwrap().status = Status::Critical;
        assert_eq!(Summary::of(&s).reason.as_deref(), Some("RAM 95%"));
        s.memory.as_mut().unwrap().status = Status::Ok;
        s.services.as_mut().unwrap().iter_mut().for_each(|s| s.status = Status::Ok);
        assert_eq!(Summary::of(&s).reason, None, "all ok: no reason");
        assert_eq!(Summary::of(&s).services, Some((2, 2)));
    }
}
