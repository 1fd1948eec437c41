//! What alerting costs, and how many notifications a flapping input makes.
//!
//! `cargo bench --profile dist -p cm-agent --bench alerts [-- INTERVALS]` prints:
//! - the CPU time of one evaluation of 50 rules (and the built-in ones) on a
//!   snapshot of 40 services, 6 filesystems and 2 drives, whose values move
//!   every interval, over INTERVALS simulated 2 s intervals;
//! - the notifications a value crossing its threshold every 20 s for 10
//!   minutes causes, and the messages they make once grouped per target as
//!   the notifier groups them (30 s).
//!
//! It asserts nothing: timings on a shared machine are not pass/fail material.

use cm_agent::alerts::{AlertsConfig, Delivery, Engine, Input, RouteTiming};
use cm_proto::series::flatten;
use cm_proto::{Drive, Filesystem, HostSnapshot, Memory, Service, Status};

fn cpu_us() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    let rest = &stat[stat.rfind(')').expect("comm field") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    ticks as f64 * 1e6 / 100.0
}

/// 50 rules of every kind.
fn fifty_rules() -> String {
    let mut t = String::from("[alerts.builtin]\nfor = \"1m\"\n");
    for i in 0..20 {
        t += &format!(
            "[[alerts.rules]]\nname = \"svc-mem-{i}\"\nseries = \"service.app{i}.service.memory_percent\"\nwarn = 70\ncrit = 90\nclear = 60\nfor = \"30s\"\n"
        );
    }
    for i in 0..10 {
        t += &format!(
            "[[alerts.rules]]\nname = \"fs-{i}\"\nseries = \"fs.*.used_percent\"\nwarn = {}\nclear = {}\n",
            60 + i,
            50 + i
        );
    }
    for i in 0..5 {
        t += &format!("[[alerts.rules]]\nname = \"cpu-all-{i}\"\nseries = \"service.*.cpu_percent\"\ncrit = {}\nmatch = \"all\"\n", 50 + i);
    }
    for i in 0..5 {
        t += &format!(
            "[[alerts.rules]]\nname = \"gone-{i}\"\nseries = \"service.app{i}.service.active\"\nabsent_for = \"5m\"\n"
        );
    }
    for i in 0..5 {
        t += &format!(
            "[[alerts.rules]]\nname = \"soon-{i}\"\nseries = \"fs.*.used_percent\"\nfull_within = \"{}d\"\n",
            7 + i
        );
    }
    for i in 0..5 {
        t += &format!(
            "[[alerts.rules]]\nname = \"both-{i}\"\ncondition = \"(svc-mem-{i} or fs-{i}) and not gone-{i}\"\nseverity = \"critical\"\n"
        );
    }
    t
}

fn snapshot(i: u64) -> HostSnapshot {
    let wobble = |k: u64| ((i * 7 + k * 13) % 100) as f64;
    HostSnapshot {
        host: "srv01".into(),
        timestamp_ms: 1_764_000_000_000 + i * 2000,
        memory: Some(Memory { total_bytes: 8 << 30, used_bytes: (3 << 30) + i % 1000 * 4096, ..Default::default() }),
        filesystems: (0..6)
            .map(|k| Filesystem {
                mount_point: format!("/srv/{k}"),
                used_bytes: 400 + wobble(k) as u64,
                available_bytes: 600,
                drive: Some(format!("sd{k}")),
                ..Default::default()
            })
            .collect(),
        drives: (0..2).map(|k| Drive { name: format!("sd{k}"), ..Default::default() }).collect(),
        services: Some(
            (0..40)
                .map(|k| Service {
                    name: format!("app{k}.service"),
                    active_state: "active".into(),
                    memory_bytes: Some((wobble(k) as u64 + 1) << 20),
                    memory_max_bytes: Some(100 << 20),
                    cpu_percent: Some(wobble(k + 40)),
                    status: if k == 3 { Status::Critical } else { Status::Ok },
                    reason: (k == 3).then(|| "failed (exit-code)".into()),
                    ..Default::default()
                })
                .collect(),
        ),
        ..Default::default()
    }
}

fn delivery() -> Delivery {
    Delivery {
        routes: [("ops".to_string(), RouteTiming { repeat_ms: Some(4 * 3_600_000), send_resolved: true })].into(),
        default_route: Some("ops".into()),
    }
}

fn main() {
    let intervals: u64 = std::env::args().filter_map(|a| a.parse().ok()).next().unwrap_or(5000);
    let text = fifty_rules();
    let cfg: toml::Table = toml::from_str(&text).expect("rules parse");
    let alerts: AlertsConfig = cfg["alerts"].clone().try_into().expect("an [alerts] table");
    let rules = alerts.rules(delivery()).expect("valid rules");
    assert_eq!(rules.rules.len(), 50);
    let mut engine = Engine::new(rules, 1_764_000_000_000);
    let snaps: Vec<(HostSnapshot, Vec<cm_proto::series::Sample>)> = (0..100)
        .map(|i| {
            let s = snapshot(i);
            let samples = flatten(&s);
            (s, samples)
        })
        .collect();
    let mut notices = 0;
    let c0 = cpu_us();
    for i in 0..intervals {
        let (snap, samples) = &snaps[(i % 100) as usize];
        let now_ms = 1_764_000_000_000 + i * 2000;
        let out = engine.evaluate(&Input { now_ms, snapshot: snap, samples });
        notices += out.notices.len();
        std::hint::black_box(engine.alerts());
    }
    let per = (cpu_us() - c0) / intervals as f64;
    println!(
        "evaluation, 50 rules + built-in, 40 services ({} series): {per:.0} us per interval ({} intervals; {notices} notices)",
        snaps[0].1.len(),
        intervals
    );

    // A temperature crossing 80 C every 20 s, for 10 minutes.
    let flap: AlertsConfig = toml::from_str(
        "[builtin]\nenable = false\n[[rules]]\nname = \"hot\"\nseries = \"cpu.temperature_celsius\"\nwarn = 80\n",
    )
    .expect("rule parses");
    let mut engine = Engine::new(flap.rules(delivery()).expect("valid"), 0);
    let mut times = Vec::new();
    let snap = HostSnapshot::default();
    for step in 0..(600 / 2) {
        let now_ms = step * 2000;
        let hot = (now_ms / 20_000) % 2 == 0;
        let samples =
            [cm_proto::series::Sample { name: "cpu.temperature_celsius".into(), value: if hot { 85.0 } else { 75.0 } }];
        let out = engine.evaluate(&Input { now_ms, snapshot: &snap, samples: &samples });
        times.extend(out.notices.iter().map(|_| now_ms));
    }
    // The notifier sends a target's queue 30 s after its oldest notification.
    let mut messages = 0;
    let mut open_until = None;
    for t in &times {
        if open_until.is_none_or(|u| *t >= u) {
            messages += 1;
            open_until = Some(t + 30_000);
        }
    }
    println!(
        "a value crossing its threshold every 20 s for 10 minutes: 30 crossings, {} notifications, {messages} messages per target",
        times.len()
    );
}
