//! One collection cycle on this machine: CPU time, wall time, and the size of
//! the snapshot it produces on the wire.
//!
//! `cargo bench -p cm-agent --bench cycle [-- CYCLES]`. It prints figures; it
//! asserts nothing (timings on a shared machine are not pass/fail material).

use std::time::Instant;

use cm_agent::{AgentCore, CoreConfig, SysRoot};
use cm_proto::frame::encode_frame;
use cm_proto::Message;

/// user + system CPU time of this process, in clock ticks.
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').expect("comm field") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

fn main() {
    let cycles: u32 = std::env::args().filter_map(|a| a.parse().ok()).next().unwrap_or(2000);
    let ticks_per_second = 100.0; // USER_HZ on every Linux architecture we target
    let mut core = AgentCore::new(CoreConfig::for_sysroot(SysRoot::live()));
    core.collect_all(); // warm up: first reads, nvidia-smi lookup

    let (t0, c0) = (Instant::now(), cpu_ticks());
    for _ in 0..cycles {
        core.collect_all();
        std::hint::black_box(core.snapshot());
    }
    let (wall, cpu) = (t0.elapsed(), cpu_ticks() - c0);
    let cpu_us = cpu as f64 / ticks_per_second * 1e6 / cycles as f64;
    let wall_us = wall.as_secs_f64() * 1e6 / cycles as f64;

    let snap = core.snapshot();
    let frame = encode_frame(&Message::Snapshot(Box::new(snap.clone()))).expect("encodes");
    let json = serde_json::to_vec(&snap).expect("json");

    println!("cycles                       {cycles}");
    println!("cpu time per full cycle      {cpu_us:.0} us (user+system)");
    println!("wall time per full cycle     {wall_us:.0} us");
    for c in &snap.collectors {
        println!(
            "  last {:<8} {:>8} us{}",
            c.name,
            c.duration_us,
            c.error.as_deref().map(|e| format!("  error: {e}")).unwrap_or_default()
        );
    }
    println!("snapshot frame (CBOR)        {} bytes", frame.len());
    println!("snapshot as JSON             {} bytes", json.len());
    // At the 2 s interval, every collector due every cycle costs at most this share of one core:
    println!("cpu share at a 2 s interval  {:.3} % of one core", cpu_us / 2e6 * 100.0);
}
