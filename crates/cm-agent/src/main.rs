//! `cm-agent`: the per-host agent of cm-dashboard.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use cm_agent::config::AgentConfig;
use cm_agent::privileged::Results;
use cm_agent::{AgentCore, CoreConfig, Thresholds};
use cm_collect::gpu::NvidiaSmi;
use cm_collect::smart::{parse_smartctl_json, Smartctl};
use cm_net::pki;
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
    /// Serve this host's snapshots to dashboards over QUIC with mutual TLS.
    Run {
        /// The agent's TOML configuration (see docs/agent.example.toml).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Where history is kept (history.sqlite); overrides history.state_dir.
        /// Default: systemd's $STATE_DIRECTORY, else /var/lib/cm-agent as
        /// root, else $XDG_STATE_HOME/cm-agent.
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
    /// Print a range of the history kept in a state directory, as CSV or JSON.
    ///
    /// `cm-agent export --state-dir /var/lib/cm-agent 'fs.*.used_percent' --since 7d`
    Export {
        /// The agent's state directory (where history.sqlite is).
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
        #[command(flatten)]
        range: RangeArgs,
    },
    /// The privileged collector: read drive health (smartctl) and measure the
    /// watched services' directories, and write them to the file named by
    /// `privileged.results`, for the unprivileged `cm-agent run` to read.
    CollectPrivileged {
        /// The agent's TOML configuration, the same file `run` reads.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Check a configuration file and the files it names, and exit: non-zero
    /// with file, line or key, and reason if something is wrong.
    ///
    /// The certificate files must exist and parse, the certificate must be an
    /// agent's for this host (`host`, else the kernel's host name), signed by
    /// the CA in tls.ca, valid now, and tls.key must be its key.
    CheckConfig {
        /// The agent's TOML configuration.
        file: PathBuf,
        /// Check the settings only, not the files they name: for a build
        /// (the NixOS module's) where the secrets are not there yet.
        #[arg(long)]
        no_files: bool,
    },
    /// The fleet's certificates.
    #[command(subcommand)]
    Pki(Pki),
    /// Alert notifications.
    #[command(subcommand)]
    Notify(Notify),
    /// Print a shell's completions for cm-agent: `cm-agent completions bash > /etc/bash_completion.d/cm-agent`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print cm-agent's manual page (roff: `cm-agent man | man -l -`), or
    /// write one page per command into DIR (cm-agent.1, cm-agent-run.1...).
    Man {
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// Which part of the history to print, and how.
#[derive(clap::Args)]
struct RangeArgs {
    /// Series names or globs (`cpu.load1`, `fs.*.used_percent`); see docs/SERIES.md.
    #[arg(required_unless_present = "events", value_name = "SERIES")]
    series: Vec<String>,
    /// Alert events (every transition of every alert) instead of series.
    #[arg(long, conflicts_with = "series")]
    events: bool,
    /// How far back from now (`10m`, `24h`, `7d`); default 1h unless --from is given.
    #[arg(long, value_name = "SPAN", conflicts_with = "from")]
    since: Option<String>,
    /// Start of the range, RFC 3339 (`2026-12-01T00:00:00Z`) or a date.
    #[arg(long, value_name = "TIME")]
    from: Option<String>,
    /// End of the range (default: now).
    #[arg(long, value_name = "TIME")]
    to: Option<String>,
    /// raw, 1m, 1h, or auto (the finest tier that covers the range).
    #[arg(long, default_value = "auto", value_name = "RES")]
    resolution: String,
    /// csv or json.
    #[arg(long, default_value = "csv", value_name = "FORMAT")]
    format: String,
}

impl RangeArgs {
    /// The request these arguments ask for, at `now_ms`.
    fn request(&self, now_ms: i64) -> Result<(cm_proto::history::HistoryRequest, cm_history::export::Format)> {
        use cm_history::time::{parse_span, parse_time};
        let to = self.to.as_deref().map(parse_time).transpose().map_err(anyhow::Error::msg)?.unwrap_or(now_ms + 1);
        let from = match (&self.from, &self.since) {
            (Some(from), _) => parse_time(from).map_err(anyhow::Error::msg)?,
            (None, Some(since)) => now_ms - parse_span(since).map_err(|e| anyhow::anyhow!("--since {e}"))?,
            (None, None) => now_ms - 3_600_000,
        };
        if to <= from {
            anyhow::bail!("the range ends before it starts: --to is not after --from");
        }
        let resolution = cm_proto::history::Resolution::parse(&self.resolution)
            .ok_or_else(|| anyhow::anyhow!("--resolution {:?}: expected raw, 1m, 1h or auto", self.resolution))?;
        let format = cm_history::export::Format::parse(&self.format).map_err(|e| anyhow::anyhow!("--format {e}"))?;
        let request = cm_proto::history::HistoryRequest {
            series: self.series.clone(),
            from_ms: from,
            to_ms: to,
            resolution,
            max_points: 0,
            events: self.events,
        };
        Ok((request, format))
    }
}

#[derive(Subcommand)]
enum Pki {
    /// Create the fleet CA in DIR (ca.pem, and ca.key readable by its owner only).
    Init {
        /// Where ca.pem and ca.key go (created if missing); keep ca.key off the hosts.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// The CA's name.
        #[arg(long, default_value = "cm-dashboard fleet CA")]
        name: String,
        /// How long the CA is valid, in days: the certificates it signs stop
        /// working when it expires.
        #[arg(long, default_value_t = 3650, value_parser = parse_days)]
        days: u32,
    },
    /// Issue a certificate and a new key for a host (role agent) or a person
    /// (dashboard, operator).
    Issue {
        /// The directory made by `pki init`.
        #[arg(long, value_name = "DIR")]
        ca: PathBuf,
        /// For an agent, the host's name as dashboards list it (`name` in
        /// their [[hosts]]; not its address), which it reports as `host`;
        /// for a person, a name for them. A DNS name: letters, digits, '-'
        /// and '.'. The files are NAME.pem and NAME.key.
        #[arg(long, value_parser = parse_name)]
        name: String,
        /// agent, dashboard (read-only) or operator (read, acknowledge, silence).
        #[arg(long)]
        role: cm_net::Role,
        /// How long the certificate is valid, in days.
        #[arg(long, default_value_t = 825, value_parser = parse_days)]
        days: u32,
        /// Where NAME.pem and NAME.key go (default: the CA directory).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Renew NAME's certificate (NAME.pem) before or after it expires: same
    /// name and role, new dates. The key (NAME.key) is kept, so only the
    /// certificate changes on the host; --new-key replaces it too.
    Renew {
        /// The directory made by `pki init`.
        #[arg(long, value_name = "DIR")]
        ca: PathBuf,
        /// The name the certificate was issued for.
        #[arg(long, value_parser = parse_name)]
        name: String,
        /// How long the new certificate is valid, in days.
        #[arg(long, default_value_t = 825, value_parser = parse_days)]
        days: u32,
        /// Where NAME.pem and NAME.key are (default: the CA directory).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Replace the key as well (when it may have been seen by others);
        /// the old key no longer goes with the new certificate.
        #[arg(long)]
        new_key: bool,
        /// The role, when NAME.pem is lost or unreadable (default: the old
        /// certificate's).
        #[arg(long)]
        role: Option<cm_net::Role>,
    },
}

/// `--days`: at least one.
fn parse_days(days: &str) -> Result<u32, String> {
    match days.parse::<u32>() {
        Ok(0) => Err("at least 1: a certificate valid for 0 days has expired already".into()),
        Ok(days) => Ok(days),
        Err(_) => Err(format!("{days:?} is not a number of days")),
    }
}

/// `--name`: a DNS name (it is also a file name).
fn parse_name(name: &str) -> Result<String, String> {
    pki::check_name(name).map(|()| name.to_owned()).map_err(|e| e.to_string())
}

#[derive(Subcommand)]
enum Notify {
    /// Send a test notification to every target of a route (or of every
    /// route) and print how each went: exit 1 if one failed, 2 if the
    /// configuration is wrong.
    Test {
        /// The agent's TOML configuration, with its [notify] section.
        #[arg(value_name = "CONFIG", required_unless_present = "config")]
        file: Option<PathBuf>,
        /// The configuration, as `run --config` names it (instead of CONFIG).
        #[arg(long, value_name = "FILE", conflicts_with = "file")]
        config: Option<PathBuf>,
        /// Only this route (default: every route).
        #[arg(long, value_name = "NAME")]
        route: Option<String>,
    },
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
    let cli = Cli::parse();
    if let Command::Notify(Notify::Test { file, config, route }) = &cli.command {
        let Some(path) = file.as_ref().or(config.as_ref()) else { unreachable!("clap requires CONFIG or --config") };
        return notify_test(path, route.as_deref());
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cm-agent: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "cm-agent", &mut std::io::stdout());
            Ok(())
        }
        Command::Man { dir } => {
            use clap::CommandFactory;
            match dir {
                Some(dir) => clap_mangen::generate_to(Cli::command(), &dir)
                    .with_context(|| format!("writing manual pages to {}", dir.display())),
                None => Ok(clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?),
            }
        }
        Command::Export { state_dir, range } => {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
            let (request, format) = range.request(now)?;
            let dir = state_dir.unwrap_or_else(cm_agent::config::default_state_dir);
            let answer = cm_history::Reader::open(&dir)?.range(&request, now)?;
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            if request.events {
                cm_history::export::write_events(&answer.events, format, &mut out)?;
                std::io::Write::flush(&mut out)?;
                return Ok(());
            }
            if answer.series.is_empty() {
                anyhow::bail!("{}: no series matches {}", dir.display(), request.series.join(" "));
            }
            cm_history::export::write(&answer, format, &mut out)?;
            std::io::Write::flush(&mut out)?;
            Ok(())
        }
        Command::Run { config, state_dir } => {
            let mut config = AgentConfig::load(&config)?;
            if state_dir.is_some() {
                config.history.state_dir = state_dir;
            }
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(cm_agent::serve::run(config))
        }
        Command::CollectPrivileged { config: file } => {
            let config = AgentConfig::load(&file)?;
            let Some(results) = config.privileged.results.clone() else {
                anyhow::bail!(
                    "{}: privileged.results is not set: it names the file this collector writes",
                    file.display()
                );
            };
            eprintln!("cm-agent: privileged collector writing to {}", results.display());
            let mut last_error = None;
            let interval = AgentConfig::PRIVILEGED_INTERVAL;
            AgentCore::new(config.core_privileged()).run(|snapshot| {
                let outcome = cm_agent::privileged::write(&results, &Results::from_snapshot(&snapshot, interval));
                // Say each failure once, and when it is over.
                let error = outcome.err().map(|e| e.to_string());
                if error != last_error {
                    match &error {
                        Some(e) => eprintln!("cm-agent: cannot write {}: {e}", results.display()),
                        None => eprintln!("cm-agent: writing {} again", results.display()),
                    }
                    last_error = error;
                }
                true
            });
            Ok(())
        }
        Command::Notify(Notify::Test { .. }) => unreachable!("handled in main, for its exit codes"),
        Command::CheckConfig { file, no_files } => {
            let config = AgentConfig::load(&file)?;
            if no_files {
                println!("{}: ok (the settings; the files they name were not checked)", file.display());
            } else {
                config.check_files()?;
                println!("{}: ok", file.display());
            }
            Ok(())
        }
        Command::Pki(Pki::Init { dir, name, days }) => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let key = dir.join("ca.key");
            if key.exists() {
                anyhow::bail!(
                    "{} already exists; refusing to overwrite the fleet CA's key: every certificate of the fleet is signed with it (another --dir makes another fleet)",
                    key.display()
                );
            }
            let ca = pki::new_ca(&name, days)?;
            pki::write_private(&key, &ca.key)?;
            pki::write_public(&dir.join("ca.pem"), &ca.cert)?;
            println!(
                "{}: fleet CA {name:?}, valid {days} days (until {}); keep ca.key secret",
                dir.join("ca.pem").display(),
                until(&ca.cert)
            );
            Ok(())
        }
        Command::Pki(Pki::Issue { ca, name, role, days, out }) => {
            let out = out.unwrap_or_else(|| ca.clone());
            let key = out.join(format!("{name}.key"));
            if key.exists() {
                anyhow::bail!(
                    "{} already exists; refusing to overwrite a key: to renew {name}'s certificate, run `cm-agent pki renew --ca {} --name {name}{}` (it keeps the key; --new-key replaces it)",
                    key.display(),
                    ca.display(),
                    if out == ca { String::new() } else { format!(" --out {}", out.display()) }
                );
            }
            let issued = pki::issue(&read_ca(&ca)?, &name, role, days)?;
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            pki::write_private(&key, &issued.key)?;
            pki::write_public(&out.join(format!("{name}.pem")), &issued.cert)?;
            println!(
                "{}: {name} as {role}, valid {days} days (until {})",
                out.join(format!("{name}.pem")).display(),
                until(&issued.cert)
            );
            Ok(())
        }
        Command::Pki(Pki::Renew { ca, name, days, out, new_key, role }) => {
            let out = out.unwrap_or_else(|| ca.clone());
            let (cert_path, key_path) = (out.join(format!("{name}.pem")), out.join(format!("{name}.key")));
            let role = match role {
                Some(role) => role,
                None => old_role(&cert_path)?,
            };
            let kept = if new_key {
                None
            } else {
                Some(
                    pki::read(&key_path)
                        .map_err(|e| anyhow::anyhow!("{e}: renewing keeps the key; --new-key makes a new one"))?,
                )
            };
            let renewed = pki::renew(&read_ca(&ca)?, &name, role, days, kept.as_deref())
                .with_context(|| format!("renewing {}", cert_path.display()))?;
            // The key first: a certificate for a key that is not there yet would not load.
            if new_key {
                pki::replace(&key_path, &renewed.key, true)?;
            }
            pki::replace(&cert_path, &renewed.cert, false)?;
            let key_said = if new_key {
                format!(
                    "replaced the key {}, as asked: copy {name}.pem and {name}.key where they are used; the old key no longer goes with the certificate",
                    key_path.display()
                )
            } else {
                format!(
                    "kept the key {}: only the certificate changed, so copy {name}.pem alone where it is used (--new-key also replaces the key, when it may have been seen by others)",
                    key_path.display()
                )
            };
            println!(
                "{}: {name} as {role}, renewed for {days} days (until {})",
                cert_path.display(),
                until(&renewed.cert)
            );
            println!(
                "{key_said}; then reload the agent or restart the dashboard (`systemctl reload cm-agent` sends SIGHUP)"
            );
            Ok(())
        }
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

/// `notify test`: 0 when every target took the message, 1 when one did
/// not, 2 when the configuration is wrong.
fn notify_test(path: &std::path::Path, only: Option<&str>) -> ExitCode {
    use cm_agent::notify;
    let found = AgentConfig::load(path).and_then(|c| Ok((c.host_name(), c.routes()?)));
    let (host, routes) = match found {
        Ok(found) => found,
        Err(e) => {
            eprintln!("cm-agent: {e}");
            return ExitCode::from(2);
        }
    };
    let names: Vec<&str> = routes.routes.iter().map(|r| r.name.as_str()).collect();
    let chosen: Vec<&notify::Route> = match only {
        Some(name) => match routes.route(Some(name)) {
            Some(route) => vec![route],
            None => {
                let known = if names.is_empty() { "none".to_string() } else { names.join(", ") };
                eprintln!("cm-agent: {}: --route {name}: no route has this name (routes: {known})", path.display());
                return ExitCode::from(2);
            }
        },
        None => routes.routes.iter().collect(),
    };
    if chosen.is_empty() {
        eprintln!("cm-agent: {}: no [[notify.routes]]: there is nothing to test", path.display());
        return ExitCode::from(2);
    }
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let mut failed = false;
    for route in chosen {
        let msg = notify::test_message(&host, &route.name, &format!("test-{host}-{now_ms}"));
        for target in &route.targets {
            match notify::send(target, &msg, std::time::Duration::from_secs(10)) {
                Ok(sent) if sent.refused.is_empty() => println!("ok   {} {}", route.name, target.redacted()),
                Ok(sent) => {
                    // Delivered to the rest: still a configuration to fix.
                    failed = true;
                    for refused in sent.refused {
                        println!("FAIL {} {refused} (the others got it)", route.name);
                    }
                }
                Err(e) => {
                    failed = true;
                    println!("FAIL {} {e}", route.name);
                }
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The fleet CA in the directory made by `pki init`.
fn read_ca(dir: &std::path::Path) -> Result<pki::Pem> {
    Ok(pki::Pem { cert: pki::read(&dir.join("ca.pem"))?, key: pki::read(&dir.join("ca.key"))? })
}

/// The role of the certificate at `path`, to renew it with.
fn old_role(path: &std::path::Path) -> Result<cm_net::Role> {
    let pem = pki::read(path).map_err(|e| anyhow::anyhow!("{e}: renewing takes the role from it; give --role"))?;
    let old = pki::describe_pem(&pem).map_err(|e| anyhow::anyhow!("{}: {e}; give --role", path.display()))?;
    match old.role {
        Some(role) => Ok(role),
        None => anyhow::bail!("{}: the certificate carries no cm role; give --role", path.display()),
    }
}

/// When the certificate in `pem` expires, as messages print it.
fn until(pem: &str) -> String {
    pki::describe_pem(pem).map_or_else(|e| e.to_string(), |c| pki::format_time(c.not_after))
}

fn summary(s: &HostSnapshot) -> String {
    use std::fmt::Write;
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    let mut out = String::new();
    let _ = writeln!(out, "host {}  kernel {}  up {} s", s.host, s.kernel, s.uptime_seconds);
    if let Some(n) = &s.nixos {
        let generation = n.generation.map_or_else(|| "-".to_string(), |g| g.to_string());
        let revision = n.configuration_revision.as_deref().unwrap_or("-");
        let _ = writeln!(
            out,
            "nixos {}  generation {generation}  revision {revision}",
            n.version.as_deref().unwrap_or("?")
        );
        for why in &n.reboot_reasons {
            let _ = writeln!(out, "  reboot needed: {why}");
        }
    }
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
