//! `cm-dashboard`: the terminal dashboard. With no hosts configured it watches
//! this machine through an in-process agent.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use cm_agent::{AgentCore, CoreConfig};

use cm_dashboard::app::{Action, App, Connection, HostEntry, Msg};
use cm_dashboard::config::DashboardConfig;
use cm_dashboard::export::{Export, When};
use cm_dashboard::history::Fetch;
use cm_dashboard::inbox::{self, Wait};
use cm_dashboard::redraw::Redraw;
use cm_dashboard::state::FleetState;
use cm_dashboard::{local, remote, terminal, unix_ms};
use cm_history::export::Format;
use cm_proto::history::Resolution;
use std::io::Write;

#[derive(Parser)]
#[command(
    name = "cm-dashboard",
    version,
    about = "Terminal dashboard for cm-agent hosts; with no hosts configured it shows this machine",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Collect once, print, and exit instead of starting the interactive view.
    #[arg(long)]
    once: bool,
    /// With --once: print the fleet's state as JSON (docs/STATE.md) instead of the screen as text.
    #[arg(long, requires = "once")]
    json: bool,
    /// With --once: the screen size to print, as COLSxROWS.
    #[arg(long, requires = "once", value_name = "COLSxROWS", default_value = "100x30", value_parser = parse_size)]
    size: (u16, u16),
    /// Local mode: read /proc and /sys under DIR instead of / (a captured tree).
    #[arg(long, value_name = "DIR", conflicts_with = "config")]
    sysroot: Option<PathBuf>,
    /// The fleet to watch (default: $XDG_CONFIG_HOME/cm-dashboard/dashboard.toml,
    /// then /etc/cm-dashboard/dashboard.toml; without one, this machine).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Check a fleet configuration file and exit: non-zero with file, line and reason if it is wrong.
    #[arg(long, value_name = "FILE", exclusive = true)]
    check_config: Option<PathBuf>,
    /// Watch this machine even if a fleet configuration exists.
    #[arg(long, conflicts_with = "config")]
    local: bool,
    /// Without a screen: print one JSON line per second with each host's
    /// connection, status and latest snapshot sequence (docs/STATE.md), until stopped.
    #[arg(long, conflicts_with = "once")]
    json_lines: bool,
    /// With --once in fleet mode: how long to wait for every host, in seconds.
    #[arg(long, requires = "once", default_value_t = 5.0, value_name = "SECS")]
    wait: f64,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Write a range of a host's history to standard output, as CSV or JSON.
    Export(ExportArgs),
    /// Print a shell's completions for cm-dashboard: `cm-dashboard completions bash > /etc/bash_completion.d/cm-dashboard`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print cm-dashboard's manual page (roff: `cm-dashboard man | man -l -`),
    /// or write one page per command into DIR (cm-dashboard.1, cm-dashboard-export.1...).
    Man {
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
    cm-dashboard export --host srv01 memory.used_percent 'fs.*.used_percent' --since 7d\n  \
    cm-dashboard export --host srv01 cpu.load1 --from 2026-12-01 --to 2026-12-02T12:00:00Z --resolution 1m --format json\n\n\
    Series names: docs/SERIES.md. Times are UTC.")]
struct ExportArgs {
    /// The host, as the fleet configuration names it. Without a fleet
    /// configuration, this machine's local history is read and --host may be left out.
    #[arg(long, value_name = "NAME")]
    host: Option<String>,
    /// Series names or globs, as docs/SERIES.md lists them: cpu.utilisation_percent,
    /// memory.used_percent, fs.*.used_percent, drive.nvme0n1.wear_percent...
    #[arg(required = true, value_name = "SERIES")]
    series: Vec<String>,
    /// How far back from now: 90s, 10m, 48h, 7d, 2w, 1y [default: 24h].
    #[arg(long, value_name = "SPAN", conflicts_with_all = ["from", "to"])]
    since: Option<String>,
    /// The start: an RFC 3339 time (2026-12-02T06:30:00Z, an offset such as
    /// +02:00 allowed) or a date (2026-12-02, midnight UTC).
    #[arg(long, value_name = "TIME")]
    from: Option<String>,
    /// The end (not included), written like --from [default: now].
    #[arg(long, value_name = "TIME", requires = "from")]
    to: Option<String>,
    /// raw: every sample; 1m, 1h: rollups with min, max, mean and count;
    /// auto: the finest the agent has that covers the range in at most 2000 points a series.
    #[arg(long, value_name = "RES", default_value = "auto", value_parser = parse_resolution)]
    resolution: Resolution,
    /// csv: a header row, then one row a point, times in RFC 3339;
    /// json: an array of {series, ts, value}, or {series, ts, min, max, mean, count} for rollups.
    #[arg(long, value_name = "FORMAT", default_value = "csv", value_parser = Format::parse)]
    format: Format,
    /// The fleet configuration: the hosts and the dashboard's certificates
    /// (default as for the dashboard itself; without one, this machine).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Read this machine's local history even if a fleet configuration exists.
    #[arg(long, conflicts_with = "config")]
    local: bool,
}

fn parse_resolution(s: &str) -> Result<Resolution, String> {
    Resolution::parse(s).ok_or_else(|| format!("{s:?}: expected raw, 1m, 1h or auto"))
}

fn parse_size(s: &str) -> Result<(u16, u16), String> {
    let (w, h) = s.split_once('x').ok_or("expected COLSxROWS, like 100x30")?;
    let parse = |v: &str| v.parse::<u16>().map_err(|_| format!("{v:?} is not a number of cells"));
    let (w, h) = (parse(w)?, parse(h)?);
    if w == 0 || h == 0 {
        return Err("a screen needs at least one column and one row".into());
    }
    Ok((w, h))
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cm-dashboard: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `cm-dashboard export`: the fleet's host over the wire, or this machine's
/// local store without a fleet.
fn export(args: ExportArgs) -> Result<ExitCode> {
    let when = match (args.since, args.from) {
        (_, Some(from)) => When::Between { from, to: args.to },
        (since, None) => When::Since(since.unwrap_or_else(|| "24h".into())),
    };
    let job = Export { host: args.host, series: args.series, when, resolution: args.resolution, format: args.format };
    let now = unix_ms() as i64;
    let request = job.request(now)?;
    let fleet = match (&args.config, args.local) {
        (Some(path), _) => Some(path.clone()),
        (None, false) => DashboardConfig::default_path(),
        (None, true) => None,
    };
    let answer = match fleet {
        Some(path) => {
            let config = DashboardConfig::load(&path).map_err(anyhow::Error::msg)?;
            job.from_fleet(&config, &path, &request)?
        }
        None => job.from_local(cm_history::store::dashboard_dir().as_deref(), &request, now)?,
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match cm_dashboard::export::write(&answer, job.format, &mut out).and_then(|()| Ok(out.flush()?)) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        // The reader had enough (`| head`): not an error.
        Err(e) if e.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) => {
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Err(e),
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    use clap::CommandFactory;
    match cli.command {
        Some(Command::Export(args)) => return export(args),
        Some(Command::Completions { shell }) => {
            clap_complete::generate(shell, &mut Cli::command(), "cm-dashboard", &mut std::io::stdout());
            return Ok(ExitCode::SUCCESS);
        }
        Some(Command::Man { dir: Some(dir) }) => {
            clap_mangen::generate_to(Cli::command(), &dir)
                .with_context(|| format!("writing manual pages to {}", dir.display()))?;
            return Ok(ExitCode::SUCCESS);
        }
        Some(Command::Man { dir: None }) => {
            clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
            return Ok(ExitCode::SUCCESS);
        }
        None => {}
    }
    if let Some(file) = &cli.check_config {
        DashboardConfig::load(file).map_err(anyhow::Error::msg)?;
        println!("{}: ok", file.display());
        return Ok(ExitCode::SUCCESS);
    }
    let fleet = match (&cli.config, cli.local || cli.sysroot.is_some()) {
        (Some(path), _) => Some(DashboardConfig::load(path).map_err(anyhow::Error::msg)?),
        (None, false) => DashboardConfig::default_path()
            .map(|p| DashboardConfig::load(&p))
            .transpose()
            .map_err(anyhow::Error::msg)?,
        (None, true) => None,
    };
    if let Some(fleet) = fleet {
        return fleet_mode(&cli, fleet);
    }
    let config = CoreConfig::for_sysroot_arg(cli.sysroot.as_deref()).map_err(anyhow::Error::msg)?;
    let app = App::local_named(&local_name(cli.sysroot.as_deref()), unix_ms());
    if cli.once {
        let mut app = app;
        let snapshot = Box::new(AgentCore::one_shot(config));
        app.update(Msg::Snapshot { host: 0, snapshot, received_ms: unix_ms() });
        print_once(&cli, &mut app)?;
        return Ok(ExitCode::SUCCESS);
    }
    if !cli.json_lines {
        needs_a_terminal()?;
    }
    let (tx, rx) = inbox::inbox();
    let (req_tx, req_rx) = mpsc::channel();
    // A captured tree (--sysroot) is not this machine: it gets no history.
    let store = match (&cli.sysroot, cm_history::store::dashboard_dir()) {
        (Some(_), _) => Err("a captured tree (--sysroot) is not this machine's history".to_string()),
        (None, None) => Err("neither XDG_DATA_HOME nor HOME is set".to_string()),
        (None, Some(dir)) => Ok(dir),
    };
    let history = local::spawn_history(store.clone(), tx.clone())?;
    {
        let (tx, wake) = (tx.clone(), req_tx.clone());
        std::thread::Builder::new()
            .name("local-agent".into())
            .spawn(move || local::run(config, store, wake, req_rx, tx))?;
    }
    if cli.json_lines {
        terminal::spawn_signal_listener(tx)?;
        return json_lines(app, rx);
    }
    let refresh = move || {
        let _ = req_tx.send(local::Request::Refresh);
    };
    interactive(app, tx, rx, Some(&refresh), |fetch| {
        let _ = history.send(fetch);
    })?;
    Ok(ExitCode::SUCCESS)
}

/// This machine's name before its first snapshot says it: the kernel's
/// host name, or a captured tree's (`--sysroot`).
fn local_name(sysroot: Option<&std::path::Path>) -> String {
    let root = sysroot.unwrap_or(std::path::Path::new("/"));
    std::fs::read_to_string(root.join("proc/sys/kernel/hostname"))
        .ok()
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "this machine".into())
}

/// The interactive view draws on a terminal and reads keys from one: with
/// anything else (a pipe, a file) it stops at once and says what to use.
fn needs_a_terminal() -> Result<()> {
    use std::io::IsTerminal;
    let (stdin, stdout) = (std::io::stdin().is_terminal(), std::io::stdout().is_terminal());
    if stdin && stdout {
        return Ok(());
    }
    let which = if stdout { "standard input is" } else { "standard output is" };
    anyhow::bail!(
        "{which} not a terminal, and the interactive view needs one. For a script or a file use \
         --once (the screen as text; --size COLSxROWS), --once --json (the fleet's state) or \
         --json-lines (a line of state every second)"
    )
}

fn print_once(cli: &Cli, app: &mut App) -> Result<()> {
    if cli.json {
        let state = FleetState::with_snapshots(app);
        println!("{}", serde_json::to_string_pretty(&state).context("encoding the fleet's state")?);
    } else {
        app.update(Msg::Resize { cols: cli.size.0, rows: cli.size.1 });
        print!("{}", terminal::print_to_text(app, cli.size.0, cli.size.1));
    }
    Ok(())
}

/// Fleet mode: every configured host at once, over the network.
fn fleet_mode(cli: &Cli, config: DashboardConfig) -> Result<ExitCode> {
    let hosts = config.hosts.iter().map(|h| HostEntry::new(&h.name, &h.role, Connection::Connecting)).collect();
    let mut app = App::remote(hosts, unix_ms());
    let (tx, rx) = inbox::inbox();
    // Dropped on every way out of here, which closes the connections.
    let pool = remote::spawn(config, tx.clone())?;
    if cli.json_lines {
        terminal::spawn_signal_listener(tx)?;
        return json_lines(app, rx);
    }
    if !cli.once {
        needs_a_terminal()?;
        // The protocol has no request for a snapshot now: no refresh here.
        interactive(app, tx, rx, None::<&fn()>, |fetch| pool.fetch(fetch))?;
        return Ok(ExitCode::SUCCESS);
    }
    // Wait until every host has sent a snapshot, or the time is up.
    let deadline = Instant::now() + Duration::from_secs_f64(cli.wait.max(0.0));
    while app.hosts.iter().any(|h| h.snapshot.is_none()) {
        if rx.wait_until(deadline) != Wait::Ready {
            break;
        }
        for msg in rx.drain() {
            app.update(msg);
        }
        app.take_fetches(); // one screen or state, no history
    }
    app.update(Msg::Tick(unix_ms()));
    for host in 0..app.hosts.len() {
        if app.hosts[host].connection == Connection::Connecting {
            let reason = format!("no answer within {} s", cli.wait);
            app.update(Msg::Connection { host, connection: Connection::Unreachable { reason }, interval_ms: None });
        }
    }
    print_once(cli, &mut app)?;
    let down: Vec<&str> = app.hosts.iter().filter(|h| h.snapshot.is_none()).map(|h| h.name.as_str()).collect();
    if down.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("cm-dashboard: unreachable: {}", down.join(", "));
        Ok(ExitCode::from(1))
    }
}

/// `--json-lines`: the fleet's state once a second, for scripts and tests,
/// until SIGTERM, SIGINT or SIGHUP; each host also says which host its
/// snapshot names (`snapshot_host`), so that a misattribution shows.
fn json_lines(mut app: App, rx: inbox::Receiver) -> Result<ExitCode> {
    use std::io::Write;
    let mut next = Instant::now();
    let stdout = std::io::stdout();
    loop {
        match rx.wait_until(next) {
            Wait::Ready => {
                for msg in rx.drain() {
                    if app.update(msg) == Action::Quit {
                        return Ok(ExitCode::SUCCESS);
                    }
                }
                app.take_fetches(); // the lines carry no history
                continue;
            }
            Wait::TimedOut => {}
            Wait::Closed => return Ok(ExitCode::FAILURE),
        }
        next += Duration::from_secs(1);
        let now = unix_ms();
        app.update(Msg::Tick(now));
        let mut line =
            serde_json::to_value(FleetState::without_snapshots(&app)).context("encoding the fleet's state")?;
        if let Some(hosts) = line["hosts"].as_array_mut() {
            for (json, h) in hosts.iter_mut().zip(&app.hosts) {
                json["snapshot_host"] = h.snapshot.as_ref().map(|s| s.host.clone()).into();
            }
        }
        let mut out = stdout.lock();
        if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
            return Ok(ExitCode::SUCCESS); // the reader went away
        }
    }
}

/// The interactive loop: draw when something changed (at most at the frame
/// rate) or the clock must move, sleep until a message comes or the next frame
/// is due, apply everything waiting, and send the history requests that
/// became due to `fetch`.
fn interactive<R: Fn()>(
    mut app: App,
    tx: inbox::Sender,
    rx: inbox::Receiver,
    refresh: Option<&R>,
    fetch: impl Fn(Fetch),
) -> Result<()> {
    terminal::spawn_signal_listener(tx.clone())?;
    let mut term = terminal::Terminal::enter().context("setting up the terminal")?;
    let (cols, rows) = term.size()?;
    app.update(Msg::Resize { cols, rows });
    terminal::spawn_input_reader(tx);
    let mut redraw = Redraw::default();
    loop {
        let now = Instant::now();
        if redraw.due(&app, now) {
            app.update(Msg::Tick(unix_ms()));
            term.draw(&app)?;
            redraw.drew(&mut app, now);
        }
        app.take_fetches().into_iter().for_each(&fetch);
        match rx.wait_until(redraw.next(&app, now)) {
            Wait::Ready => {}
            Wait::TimedOut => continue,
            Wait::Closed => break,
        }
        let mut action = Action::None;
        for msg in rx.drain() {
            action = match app.update(msg) {
                Action::None => action,
                other => other,
            };
            if action == Action::Quit {
                break;
            }
        }
        match action {
            Action::Quit => break,
            Action::Refresh => refresh.iter().for_each(|r| r()),
            Action::None => {}
        }
        app.take_fetches().into_iter().for_each(&fetch);
    }
    drop(term);
    Ok(())
}
