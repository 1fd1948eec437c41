//! `cm-dashboard`: the terminal dashboard. With no hosts configured it watches
//! this machine through an in-process agent.

mod app;
mod format;
mod local;
mod terminal;
mod theme;
mod ui;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use clap::Parser;
use cm_agent::{AgentCore, CoreConfig};

use crate::app::{Action, App, Msg};

#[derive(Parser)]
#[command(
    name = "cm-dashboard",
    version,
    about = "Terminal dashboard for cm-agent hosts; with no hosts configured it shows this machine"
)]
struct Cli {
    /// Collect once, print, and exit instead of starting the interactive view.
    #[arg(long)]
    once: bool,
    /// With --once: print the dashboard state as JSON instead of the screen as text.
    #[arg(long, requires = "once")]
    json: bool,
    /// With --once: the screen size to print, as COLSxROWS.
    #[arg(long, requires = "once", value_name = "COLSxROWS", default_value = "100x30", value_parser = parse_size)]
    size: (u16, u16),
    /// Local mode: read /proc and /sys under DIR instead of / (a captured tree).
    #[arg(long, value_name = "DIR")]
    sysroot: Option<PathBuf>,
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

/// Milliseconds since the Unix epoch.
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cm-dashboard: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let config = CoreConfig::for_sysroot_arg(cli.sysroot.as_deref()).map_err(anyhow::Error::msg)?;
    if cli.once {
        let mut app = App::local(unix_ms());
        let snapshot = Box::new(AgentCore::one_shot(config));
        app.update(Msg::Snapshot { snapshot, received_ms: unix_ms() });
        if cli.json {
            println!("{}", serde_json::to_string_pretty(&app).context("encoding the dashboard state")?);
        } else {
            print!("{}", terminal::render_to_text(&app, cli.size.0, cli.size.1));
        }
        return Ok(());
    }
    interactive(config)
}

fn interactive(config: CoreConfig) -> Result<()> {
    let (tx, rx) = mpsc::channel::<Msg>();
    let (req_tx, req_rx) = mpsc::channel();
    {
        let (tx, wake) = (tx.clone(), req_tx.clone());
        std::thread::Builder::new().name("local-agent".into()).spawn(move || local::run(config, wake, req_rx, tx))?;
    }
    terminal::spawn_signal_listener(tx.clone())?;
    let mut term = terminal::Terminal::enter().context("setting up the terminal")?;
    terminal::spawn_input_reader(tx.clone());

    let mut app = App::local(unix_ms());
    term.draw(&app)?;
    loop {
        // Wait for something to happen (a tick at least once a second for the
        // "n s ago" clock), then apply everything queued and draw once.
        let first = rx.recv_timeout(Duration::from_secs(1)).unwrap_or(Msg::Tick(unix_ms()));
        let mut action = app.update(first);
        while action != Action::Quit {
            let Ok(msg) = rx.try_recv() else { break };
            action = match app.update(msg) {
                Action::None => action,
                other => other,
            };
        }
        match action {
            Action::Quit => break,
            Action::Refresh => {
                let _ = req_tx.send(local::Request::Refresh);
            }
            Action::None => {}
        }
        app.update(Msg::Tick(unix_ms()));
        term.draw(&app)?;
    }
    drop(term);
    Ok(())
}
