//! A dashboard that quits says so: it closes every connection with code 0
//! (`cm_net::code::DONE`) before it exits, so the agent logs that the client
//! left right away, instead of noticing seconds later that it timed out.
//!
//! The agent is real (the cm-agent library's server) and runs in a child
//! process, this test binary run again as `agent_child_process`, so that its
//! log can be read.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{free_port, Fleet, Tmux};

/// Set in the child: the agent's configuration, as TOML text.
const AGENT_CONFIG: &str = "CM_TEST_AGENT_CONFIG";

/// The dashboard's QUIC idle timeout (`cm_net::tls::client`): a dashboard that
/// vanished without closing is noticed by the agent only this long after its
/// last packet, and then logged as "timed out".
const IDLE_TIMEOUT: Duration = Duration::from_secs(6);
/// How long after the dashboard exited the agent may take to log that it left:
/// ample for a packet on loopback, and short of the idle timeout.
const LEAVE_DEADLINE: Duration = Duration::from_secs(4);
const _: () = assert!(LEAVE_DEADLINE.as_millis() < IDLE_TIMEOUT.as_millis());

/// Not a test of its own: when this binary is run again with [`AGENT_CONFIG`]
/// set, this serves that agent until its stdin closes.
#[test]
fn agent_child_process() {
    let Ok(text) = std::env::var(AGENT_CONFIG) else { return };
    let config = cm_agent::config::AgentConfig::parse(Path::new("test agent"), &text).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        let _ = stop.send(());
    });
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(cm_agent::serve::run_until(config, async move {
        let _ = stopped.await;
    }))
    .unwrap();
}

/// An agent in a child process, and what it has logged so far.
struct AgentProcess {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl AgentProcess {
    fn start(fleet: &Fleet, name: &str, port: u16) -> AgentProcess {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["agent_child_process", "--exact", "--nocapture", "--test-threads=1"])
            .env(AGENT_CONFIG, fleet.agent_config(name, port))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = lines.lock().unwrap_or_else(|e| e.into_inner());
                log.push_str(&line);
                log.push('\n');
            }
        });
        let agent = AgentProcess { child, log };
        agent.wait_for("serving", 1, Duration::from_secs(30));
        agent
    }

    /// Waits until the log has `count` lines containing `needle` and returns
    /// the last of them; fails after `within`.
    fn wait_for(&self, needle: &str, count: usize, within: Duration) -> String {
        let start = Instant::now();
        loop {
            let log = self.log.lock().unwrap().clone();
            if let Some(line) = log.lines().filter(|l| l.contains(needle)).nth(count - 1) {
                return line.to_owned();
            }
            assert!(start.elapsed() < within, "{needle:?} x{count} not in the agent's log within {within:?}:\n{log}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Checks the agent's line about the `count`th dashboard leaving, which
    /// must come within [`LEAVE_DEADLINE`] of `exited`.
    fn saw_a_clean_leave(&self, count: usize, exited: Instant) {
        let line = self.wait_for(" left: ", count, LEAVE_DEADLINE.saturating_sub(exited.elapsed()));
        assert!(line.contains("cm-agent: laptop ("), "{line}");
        assert!(line.ends_with(" left: closed by peer: dashboard closing (code 0)"), "{line}");
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        drop(self.child.stdin.take()); // the agent stops when its stdin closes
        self.child.wait_timeout_or_kill(Duration::from_secs(10));
    }
}

trait WaitTimeout {
    fn wait_timeout_or_kill(&mut self, within: Duration) -> Option<std::process::ExitStatus>;
}

impl WaitTimeout for Child {
    /// Waits for the child; kills it if it is still running after `within`.
    fn wait_timeout_or_kill(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.try_wait() {
                return Some(status);
            }
            if start.elapsed() > within {
                let _ = self.kill();
                let _ = self.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn dashboard() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cm-dashboard"))
}

#[test]
fn once_closes_its_connection_before_it_exits() {
    let fleet = Fleet::new("leave-once");
    let port = free_port();
    let agent = AgentProcess::start(&fleet, "srv01", port);
    let config = fleet.dashboard_config(&[("srv01", port, "server")]);
    for run in 1..=2 {
        let out = dashboard().args(["--once", "--json", "--wait", "10", "--config"]).arg(&config).output().unwrap();
        let exited = Instant::now();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        agent.wait_for("cm-agent: laptop (", run * 2 - 1, Duration::from_secs(10)); // it did subscribe
        agent.saw_a_clean_leave(run, exited);
    }
}

#[test]
fn json_lines_closes_its_connection_on_sigterm() {
    let fleet = Fleet::new("leave-lines");
    let port = free_port();
    let agent = AgentProcess::start(&fleet, "srv01", port);
    let config = fleet.dashboard_config(&[("srv01", port, "server")]);
    let mut child =
        dashboard().arg("--json-lines").arg("--config").arg(&config).stdout(Stdio::piped()).spawn().unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    for line in stdout.lines() {
        if line.unwrap().contains("\"state\":\"connected\"") {
            break;
        }
    }
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = child.wait_timeout_or_kill(Duration::from_secs(10)).expect("the dashboard stops on SIGTERM");
    let exited = Instant::now();
    assert!(status.success(), "{status}");
    agent.saw_a_clean_leave(1, exited);
}

#[test]
fn quitting_the_terminal_ui_closes_every_connection() {
    let Some(t) = Tmux::start("leave", 120, 30) else { return };
    let fleet = Fleet::new("leave-tmux");
    let ports = [free_port(), free_port()];
    let agents = [AgentProcess::start(&fleet, "srv01", ports[0]), AgentProcess::start(&fleet, "srv02", ports[1])];
    let config = fleet.dashboard_config(&[("srv01", ports[0], "server"), ("srv02", ports[1], "server")]);
    t.keys(&[&format!("{} --config {} ; echo exit=$?", env!("CARGO_BIN_EXE_cm-dashboard"), config.display()), "Enter"]);
    t.wait_for("2 hosts: 2 connected", |_| true);
    t.keys(&["q"]);
    t.wait_for("exit=0", |_| true);
    let exited = Instant::now();
    for agent in &agents {
        agent.saw_a_clean_leave(1, exited);
    }
}
