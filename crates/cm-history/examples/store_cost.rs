//! What history costs a host: bytes on disk per day, CPU per interval, the
//! time to answer a 30-day range, for a simulated host with N services at a
//! 2 s interval.
//!
//!     cargo run --profile dist -p cm-history --example store_cost -- [DAYS] [SERVICES]
//!
//! The host: CPU, memory, 6 filesystems, 3 drives and SERVICES services, each
//! value moving the way the collectors report it (CPU and memory every 2 s,
//! filesystems and services every 10 s, drive health every 30 min), with
//! seeded noise: load and utilisation jitter, memory in pages, service memory
//! drifting by a few KiB and CPU mostly idle with bursts.

use std::time::Instant;

use cm_history::{Reader, Retention, Store};
use cm_proto::history::{HistoryRequest, Resolution};
use cm_proto::series::Sample;

struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    fn around(&mut self, spread: f64) -> f64 {
        (self.unit() - 0.5) * 2.0 * spread
    }
}

struct Host {
    rng: Rng,
    load: f64,
    mem: f64,
    fs: Vec<f64>,
    svc_mem: Vec<f64>,
    svc_cpu: Vec<f64>,
    temps: Vec<f64>,
}

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap().split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

impl Host {
    fn samples(&mut self, i: u64) -> Vec<Sample> {
        let r = &mut self.rng;
        let mut out = Vec::with_capacity(64 + self.svc_mem.len() * 8);
        let mut put = |name: String, value: f64| out.push(Sample { name, value });
        self.load = (self.load + r.around(0.05)).clamp(0.0, 8.0);
        put("cpu.load1".into(), (self.load * 100.0).round() / 100.0);
        put("cpu.load5".into(), (self.load * 90.0).round() / 100.0);
        put("cpu.load15".into(), (self.load * 80.0).round() / 100.0);
        put("cpu.utilisation_percent".into(), (4.0 + r.around(3.0)).max(0.0));
        put("cpu.frequency_hz".into(), [1.2e9, 2.4e9, 3.6e9][(r.unit() * 3.0) as usize % 3]);
        put("cpu.temperature_celsius".into(), (45.0 + r.around(2.0)).round());
        put("cpu.status".into(), 0.0);
        self.mem = (self.mem + r.around(4096.0 * 200.0)).clamp(2e9, 6e9);
        let mem = (self.mem / 4096.0).round() * 4096.0;
        put("memory.total_bytes".into(), 16e9);
        put("memory.used_bytes".into(), mem);
        put("memory.available_bytes".into(), 16e9 - mem);
        put("memory.used_percent".into(), mem / 16e9 * 100.0);
        put("memory.swap_total_bytes".into(), 8e9);
        put("memory.swap_used_bytes".into(), 1.2e8);
        put("memory.swap_used_percent".into(), 1.5);
        put("memory.status".into(), 0.0);
        put("status".into(), 0.0);
        if i % 5 == 0 {
            for f in &mut self.fs {
                *f += r.unit() * 40_960.0;
            }
            for (m, c) in self.svc_mem.iter_mut().zip(&mut self.svc_cpu) {
                *m = (*m + r.around(64.0 * 4096.0)).max(1e6);
                *c = if r.unit() < 0.1 { r.unit() * 20.0 } else { 0.0 };
            }
        }
        if i % 900 == 0 {
            for t in &mut self.temps {
                *t = (*t + r.around(1.5)).round();
            }
        }
        for (k, used) in self.fs.iter().enumerate() {
            let used = (*used / 4096.0).round() * 4096.0;
            let size = 500e9;
            put(format!("fs./mnt/{k}.size_bytes"), size);
            put(format!("fs./mnt/{k}.used_bytes"), used);
            put(format!("fs./mnt/{k}.available_bytes"), size - used);
            put(format!("fs./mnt/{k}.used_percent"), used / size * 100.0);
            put(format!("fs./mnt/{k}.status"), 0.0);
        }
        for (k, t) in self.temps.iter().enumerate() {
            for (field, v) in [
                ("capacity_bytes", 1e12),
                ("used_bytes", 3e11),
                ("wear_percent", 4.0),
                ("temperature_celsius", *t),
                ("smart_passed", 1.0),
                ("power_on_hours", 12_000.0 + (i / 1800) as f64),
                ("media_errors", 0.0),
                ("status", 0.0),
            ] {
                put(format!("drive.sd{k}.{field}"), v);
            }
        }
        for (k, (m, c)) in self.svc_mem.iter().zip(&self.svc_cpu).enumerate() {
            let m = (*m / 4096.0).round() * 4096.0;
            put(format!("service.unit{k}.service.memory_bytes"), m);
            put(format!("service.unit{k}.service.memory_percent"), m / 1e9 * 100.0);
            put(format!("service.unit{k}.service.cpu_percent"), (*c * 100.0).round() / 100.0);
            put(format!("service.unit{k}.service.tasks"), 12.0);
            put(format!("service.unit{k}.service.restarts"), 0.0);
            put(format!("service.unit{k}.service.disk_bytes"), 2e8);
            put(format!("service.unit{k}.service.active"), 1.0);
            put(format!("service.unit{k}.service.status"), 0.0);
        }
        out
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let days: i64 = args.get(1).map_or(3, |a| a.parse().expect("DAYS"));
    let services: usize = args.get(2).map_or(40, |a| a.parse().expect("SERVICES"));
    let dir = std::env::temp_dir().join(format!("cm-history-cost-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let t0: i64 = 1_764_028_800_000;
    let retention = Retention { max_bytes: 0, ..Retention::default() };
    let (mut store, _) = Store::open(&dir, retention, t0).unwrap();
    let mut host = Host {
        rng: Rng(42),
        load: 0.5,
        mem: 3e9,
        fs: (0..6).map(|k| 1e11 + k as f64 * 1e10).collect(),
        svc_mem: (0..services).map(|k| 5e7 + k as f64 * 1e6).collect(),
        svc_cpu: vec![0.0; services],
        temps: vec![38.0, 41.0, 44.0],
    };
    let per_day = 86_400 / 2;
    let (mut cpu_day, mut samples_per_interval) = (0.0, 0);
    println!("day  file_MiB  in_use_MiB  cpu_us_per_interval");
    for day in 0..days {
        let (c0, w0) = (cpu_seconds(), Instant::now());
        for k in 0..per_day {
            let i = (day * per_day + k) as u64;
            let samples = host.samples(i);
            samples_per_interval = samples.len();
            store.record(t0 + i as i64 * 2_000, &samples).unwrap();
        }
        cpu_day = cpu_seconds() - c0;
        let _ = w0;
        let file = std::fs::metadata(dir.join("history.sqlite")).map(|m| m.len()).unwrap_or(0);
        let used = store.used_bytes().unwrap();
        println!(
            "{:>3}  {:>8.2}  {:>10.2}  {:>8.1}",
            day + 1,
            file as f64 / 1048576.0,
            used as f64 / 1048576.0,
            cpu_day / per_day as f64 * 1e6
        );
    }
    let now = t0 + days * 86_400_000;
    let reader = Reader::open(&dir).unwrap();
    for (series, span_days) in [("fs./mnt/0.used_percent", 30), ("service.*.memory_bytes", 30), ("cpu.load1", 1)] {
        let req = HistoryRequest {
            series: vec![series.into()],
            from_ms: now - span_days * 86_400_000,
            to_ms: now,
            resolution: Resolution::Auto,
            max_points: 0,
            events: false,
        };
        let w = Instant::now();
        let a = reader.range(&req, now).unwrap();
        let points: usize = a.series.iter().map(|s| s.2.len()).sum();
        println!(
            "range {series} over {span_days} d: {} series, {points} points ({}), {:.1} ms",
            a.series.len(),
            a.series.first().map_or("-", |s| s.1.label()),
            w.elapsed().as_secs_f64() * 1e3
        );
    }
    println!("{samples_per_interval} series per interval; last day {cpu_day:.2} CPU s");
    let _ = std::fs::remove_dir_all(&dir);
}
