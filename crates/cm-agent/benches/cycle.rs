//! The agent's collection cost on this machine, and the size of what it sends.
//!
//! `cargo bench --profile dist -p cm-agent --bench cycle [-- CYCLES]` prints:
//! - the CPU time of one full cycle (every collector at once, as at start-up);
//! - the steady-state CPU per 2 s interval, with every collector on its own
//!   interval (cpu and memory 2 s, gpu 5 s, storage 10 s, SMART 30 min), over
//!   CYCLES simulated intervals;
//! - the encoded snapshot size.
//!
//! It asserts nothing: timings on a shared machine are not pass/fail material.

use std::time::{Duration, Instant};

use cm_agent::{AgentCore, CoreConfig, SysRoot};
use cm_proto::frame::encode_frame;
use cm_proto::Message;

/// user + system CPU time of this process, in microseconds.
fn cpu_us() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').expect("comm field") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    ticks as f64 * 1e6 / 100.0 // USER_HZ is 100 on every Linux architecture we target
}

fn main() {
    let cycles: u32 = std::env::args().filter_map(|a| a.parse().ok()).next().unwrap_or(2000);
    let mut core = AgentCore::new(CoreConfig::for_sysroot(SysRoot::live()));
    core.collect_all(); // warm up: first reads, tool lookups

    let full_runs = 200;
    let c0 = cpu_us();
    for _ in 0..full_runs {
        core.collect_all();
        std::hint::black_box(core.snapshot());
    }
    let full_cycle_us = (cpu_us() - c0) / full_runs as f64;

    let start = Instant::now();
    let (t0, c0) = (Instant::now(), cpu_us());
    for i in 0..cycles {
        core.collect_due(start + Duration::from_secs(2) * i);
        std::hint::black_box(core.snapshot());
    }
    let steady_us = (cpu_us() - c0) / cycles as f64;
    let wall = t0.elapsed();

    let snap = core.snapshot();
    let frame = encode_frame(&Message::Snapshot(Box::new(snap.clone()))).expect("encodes");
    let json = serde_json::to_vec(&snap).expect("json");

    println!("cpu time per full cycle        {full_cycle_us:.0} us (every collector, {full_runs} runs)");
    println!("cpu time per 2 s interval      {steady_us:.0} us (steady state, {cycles} intervals = {} min simulated, {:.1} s real)", cycles * 2 / 60, wall.as_secs_f64());
    println!("cpu share at a 2 s interval    {:.4} % of one core", steady_us / 2e6 * 100.0);
    for c in &snap.collectors {
        let extra = c.error.as_deref().or(c.note.as_deref()).map(|e| format!("  ({e})")).unwrap_or_default();
        println!("  last {:<8} {:>8} us{extra}", c.name, c.duration_us);
    }
    println!("snapshot frame (CBOR)          {} bytes", frame.len());
    println!("snapshot as JSON               {} bytes", json.len());
}
