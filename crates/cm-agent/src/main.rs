//! `cm-agent`: the per-host agent of cm-dashboard.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use cm_agent::{AgentCore, CoreConfig, Thresholds};
use cm_collect::gpu::NvidiaSmi;
use cm_collect::smart::{parse_smartctl_json, Smartctl};
use cm_proto::HostSnapshot;

#[derive(Parser)]
#[command(name = "cm-agent", version, about = "Collects this host's telemetry for cm-dashboard")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print one snapshot of this machine (or of a captured /proc + /sys tree).
    ///
    /// Attach `cm-agent snapshot --json` to bug reports.
    Snapshot {
        /// Read /proc and /sys under DIR instead of /. Filesystem usage and
        /// nvidia-smi need the live machine and are skipped.
        #[arg(long, value_name = "DIR")]
        sysroot: Option<PathBuf>,
        /// Print JSON instead of a summary.
        #[arg(long)]
        json: bool,
        /// nvidia-smi to run (default: `nvidia-smi` from PATH on the live machine).
        #[arg(long, value_name = "PATH")]
        nvidia_smi: Option<String>,
        /// smartctl to run (default: `smartctl` from PATH on the live machine).
        #[arg(long, value_name = "PATH")]
        smartctl: Option<String>,
    },
    /// Explain a captured tool output: what the agent reads from it and why it judges it so.
    #[command(subcommand)]
    Inspect(Inspect),
}

#[derive(Subcommand)]
enum Inspect {
    /// Parse `smartctl --json` output (`smartctl -x --json /dev/sda > FILE.json`)
    /// and print the drive's figures and verdict, with the reasons, as JSON.
    Smart {
        /// The JSON file; `-` reads standard input.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cm-agent: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Inspect(Inspect::Smart { file }) => {
            let text = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin()).context("reading standard input")?
            } else {
                std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?
            };
            let mut health = parse_smartctl_json(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            Thresholds::default().judge_drive(&mut health, None);
            println!("{}", serde_json::to_string_pretty(&health).context("encoding as JSON")?);
            Ok(())
        }
        Command::Snapshot { sysroot, json, nvidia_smi, smartctl } => {
            let mut config = CoreConfig::for_sysroot_arg(sysroot.as_deref()).map_err(anyhow::Error::msg)?;
            if let Some(program) = nvidia_smi {
                config.nvidia_smi = Some(NvidiaSmi { program, ..Default::default() });
            }
            if let Some(program) = smartctl {
                config.smartctl = Some(Smartctl { program, ..Default::default() });
            }
            let snap = AgentCore::one_shot(config);
            if json {
                let text = serde_json::to_string_pretty(&snap).context("encoding the snapshot as JSON")?;
                println!("{text}");
            } else {
                print!("{}", summary(&snap));
            }
            Ok(())
        }
    }
}

fn summary(s: &HostSnapshot) -> String {
    use std::fmt::Write;
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    let mut out = String::new();
    let _ = writeln!(out, "host {}  kernel {}  up {} s", s.host, s.kernel, s.uptime_seconds);
    if let Some(c) = &s.cpu {
        let util = c.utilisation_percent.map_or("-".into(), |u| format!("{u:.0}%"));
        let temp = c.temperature_celsius.map_or("-".into(), |t| format!("{t:.0} C"));
        let _ = writeln!(
            out,
            "cpu  load {:.2} {:.2} {:.2}  {util}  {temp}  [{}]",
            c.load1,
            c.load5,
            c.load15,
            c.status.label()
        );
    }
    if let Some(m) = &s.memory {
        let _ = writeln!(
            out,
            "ram  {:.1}/{:.1} GiB {:.0}%  swap {:.1}/{:.1} GiB  [{}]",
            gib(m.used_bytes),
            gib(m.total_bytes),
            m.used_percent(),
            gib(m.swap_used_bytes),
            gib(m.swap_total_bytes),
            m.status.label()
        );
    }
    for g in &s.gpus {
        let _ = writeln!(out, "gpu  {}  [{}]", g.name, g.status.label());
    }
    for d in &s.drives {
        if let Some(h) = &d.health {
            let why = h.findings.first().map_or(String::new(), |f| format!(": {}", f.text));
            let _ =
                writeln!(out, "drive {} {}  [{}]{why}", d.name, h.model.as_deref().unwrap_or("-"), h.verdict.label());
        }
    }
    for f in &s.filesystems {
        let _ = writeln!(
            out,
            "fs   {} {} {:.1}/{:.1} GiB {:.0}% on {}  [{}]",
            f.mount_point,
            f.fstype,
            gib(f.used_bytes),
            gib(f.used_bytes + f.available_bytes),
            f.used_percent(),
            f.drive.as_deref().unwrap_or("-"),
            f.status.label()
        );
    }
    match &s.services {
        Some(services) => {
            let ok = services.iter().filter(|s| s.status == cm_proto::Status::Ok).count();
            let _ = writeln!(out, "services {ok}/{} ok", services.len());
            for svc in services.iter().filter(|s| s.status != cm_proto::Status::Ok) {
                let why = svc.reason.as_deref().unwrap_or_default();
                let _ = writeln!(out, "service {} {}  [{}]: {why}", svc.name, svc.active_state, svc.status.label());
            }
        }
        None => {
            if let Some(note) = s.collector("systemd").and_then(|c| c.note.as_deref()) {
                let _ = writeln!(out, "services: {note}");
            }
        }
    }
    for c in s.collectors.iter().filter(|c| c.error.is_some()) {
        let _ = writeln!(out, "error {}: {}", c.name, c.error.as_deref().unwrap_or_default());
    }
    out
}
