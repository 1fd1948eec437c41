//! The cost of one frame: the fleet overview with 100 hosts of 60 services
//! each, and the host view of one of them, rendered into ratatui's
//! `TestBackend` (the same layout and text work as a real terminal, without
//! the terminal's I/O).
//!
//! `cargo bench --profile dist -p cm-dashboard --bench render [-- FRAMES]` prints p50 and p99
//! per case, of the wall time and of the thread's CPU time (which leaves out
//! the time other processes had the CPU: on a busy machine the wall p99 says
//! more about them). The budget (docs: DESIGN.md) is p99 < 2 ms. It asserts
//! nothing: timings on a shared machine are not pass/fail material.

use std::time::{Duration, Instant};

use cm_dashboard::app::{App, Connection, HostEntry, Msg, View};
use cm_dashboard::ui;
use cm_proto::*;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

const HOSTS: usize = 100;
const SERVICES: usize = 60;
/// 2025-11-24 16:00 UTC, as in the screen tests.
const NOW_MS: u64 = 1_764_000_000_000;
const GIB: u64 = 1 << 30;
const GB: u64 = 1_000_000_000;

/// Host `i`: two drives, three filesystems, 60 services of which a few are
/// failed or over their memory limit, so every host has reasons to rank.
fn host(i: usize) -> HostSnapshot {
    let thresholds = cm_agent::Thresholds::default();
    let services = (0..SERVICES)
        .map(|s| {
            let failed = (i + s) % 29 == 0;
            let mut svc = Service {
                name: format!("service-{s:02}-of-host-{i:03}.service"),
                load_state: "loaded".into(),
                active_state: if failed { "failed" } else { "active" }.into(),
                sub_state: if failed { "failed" } else { "running" }.into(),
                result: if failed { "exit-code" } else { "success" }.into(),
                since_ms: Some(NOW_MS - (s as u64 + 1) * 3_600_000),
                memory_bytes: Some((((s as u64 % 7) + 1) * 128) << 20),
                memory_max_bytes: (s % 3 == 0).then_some(GIB),
                cpu_percent: Some((s % 11) as f64 * 0.7),
                tasks: Some(3 + s as u64 % 9),
                restarts: (s % 13 == 0) as u32 * 2,
                disk_bytes: Some(((s as u64 + 1) * 300) << 20),
                ..Default::default()
            };
            thresholds.judge_service(&mut svc, None, NOW_MS);
            svc
        })
        .collect();
    let drive = |name: &str, wear: f64| Drive {
        name: name.into(),
        model: Some("Samsung SSD 980 PRO 1TB".into()),
        capacity_bytes: 1_000_204_886_016,
        used_bytes: 400 * GB,
        filesystem_bytes: 1000 * GB,
        health: Some(DriveHealth {
            protocol: "NVMe".into(),
            wear_percent: Some(wear),
            temperature_celsius: Some(45.0 + (i % 20) as f64),
            power_on_hours: Some(10_000 + i as u64 * 37),
            ..Default::default()
        }),
        ..Default::default()
    };
    let fs = |mount: &str, drive: &str, used: u64| Filesystem {
        mount_point: mount.into(),
        fstype: "ext4".into(),
        source: format!("/dev/{drive}p1"),
        drive: Some(drive.into()),
        size_bytes: 500 * GB,
        used_bytes: used * GB,
        available_bytes: (500 - used) * GB,
        ..Default::default()
    };
    let mut snap = HostSnapshot {
        host: format!("host-{i:03}"),
        seq: 1,
        timestamp_ms: NOW_MS,
        agent_version: "0.1.0".into(),
        kernel: "6.12.8".into(),
        uptime_seconds: 86_400 * (1 + i as u64 % 30),
        cpu: Some(Cpu {
            model: Some("AMD Ryzen 7 5800X 8-Core Processor".into()),
            logical_cpus: 16,
            load1: 0.42,
            load5: 0.51,
            load15: 0.48,
            utilisation_percent: Some((i * 7 % 100) as f64),
            frequency_hz: Some(3_400_000_000),
            temperature_celsius: Some(50.0 + (i % 30) as f64),
            ..Default::default()
        }),
        memory: Some(Memory {
            total_bytes: 32 * GIB,
            used_bytes: (4 + i as u64 % 26) * GIB,
            available_bytes: (28 - i as u64 % 26) * GIB,
            swap_total_bytes: 8 * GIB,
            swap_used_bytes: GIB / 2,
            tmpfs: vec![Tmpfs { mount_point: "/tmp".into(), size_bytes: 16 * GIB, used_bytes: 88 << 10 }],
            vm: VmTunables { dirty_ratio: Some(5), dirty_background_ratio: Some(2), swappiness: Some(60) },
            ..Default::default()
        }),
        drives: vec![drive("nvme0n1", (i % 80) as f64), drive("nvme1n1", 3.0)],
        filesystems: vec![
            fs("/", "nvme0n1", 100 + i as u64 % 350),
            fs("/var/lib", "nvme0n1", 200),
            fs("/srv", "nvme1n1", 50),
        ],
        services: Some(services),
        collectors: ["host", "cpu", "memory", "storage", "systemd"]
            .iter()
            .map(|n| CollectorReport { name: (*n).into(), ..Default::default() })
            .collect(),
        ..Default::default()
    };
    for d in &mut snap.drives {
        if let Some(h) = &mut d.health {
            thresholds.judge_drive(h, None);
        }
    }
    thresholds.evaluate(&mut snap);
    snap
}

fn fleet() -> App {
    let entries = (0..HOSTS)
        .map(|i| {
            HostEntry::new(&format!("host-{i:03}"), ["server", "workstation", "lab"][i % 3], Connection::Connecting)
        })
        .collect();
    let mut app = App::remote(entries, NOW_MS);
    for i in 0..HOSTS {
        app.update(Msg::Snapshot {
            host: i,
            snapshot: Box::new(host(i)),
            received_ms: NOW_MS - (i as u64 * 97) % 2_000,
        });
    }
    app.update(Msg::Tick(NOW_MS));
    app
}

fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// Draws `frames` frames of `app` at `cols` x `rows`, the clock moving on by
/// 100 ms between frames (outside the timing), and returns each frame's wall
/// and CPU time.
fn time_frames(app: &mut App, cols: u16, rows: u16, frames: usize) -> (Vec<Duration>, Vec<Duration>) {
    let mut term = Terminal::new(TestBackend::new(cols, rows)).expect("a test backend never fails");
    let (mut wall, mut cpu) = (Vec::with_capacity(frames), Vec::with_capacity(frames));
    for n in 0..frames + frames / 10 {
        app.update(Msg::Tick(NOW_MS + n as u64 * 100));
        let (start, start_cpu) = (Instant::now(), thread_cpu());
        term.draw(|f| ui::render(app, f)).expect("drawing into memory never fails");
        let (took, took_cpu) = (start.elapsed(), thread_cpu() - start_cpu);
        if n >= frames / 10 {
            // the first tenth warms caches and allocator up
            wall.push(took);
            cpu.push(took_cpu);
        }
    }
    (wall, cpu)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn host_view() -> App {
    let mut app = fleet();
    app.view = View::Host;
    app.selected = 0;
    app
}

fn main() {
    let frames: usize = std::env::args().filter_map(|a| a.parse().ok()).next().unwrap_or(1000);
    type Case = (&'static str, fn() -> App, u16, u16);
    let cases: [Case; 4] = [
        ("overview, 100 hosts x 60 services", fleet, 200, 60),
        ("overview, 100 hosts x 60 services", fleet, 200, 110),
        ("host view, 60 services", host_view, 200, 60),
        ("host view, 60 services", host_view, 200, 110),
    ];
    println!("one frame into a TestBackend, {frames} frames per case (budget: p99 < 2 ms)");
    for (name, app, cols, rows) in cases {
        let (mut wall, mut cpu) = time_frames(&mut app(), cols, rows, frames);
        wall.sort();
        cpu.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "  {name:<34} {cols:>3}x{rows:<3}  wall p50 {:6.3} ms  p99 {:6.3} ms   cpu p50 {:6.3} ms  p99 {:6.3} ms",
            ms(percentile(&wall, 0.50)),
            ms(percentile(&wall, 0.99)),
            ms(percentile(&cpu, 0.50)),
            ms(percentile(&cpu, 0.99)),
        );
    }
}
