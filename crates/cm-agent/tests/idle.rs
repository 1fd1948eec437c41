//! `cm-agent run` with nothing to do between rounds sleeps: a defect guard
//! against a collection loop that spins (it once did with systemd disabled,
//! burning a whole core), not a measure of the agent's cost (see benches/).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

fn agent_bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cm-agent"))
}

fn ok(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// utime + stime of process `pid`, in clock ticks (1/100 s on Linux).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn an_idle_agent_with_systemd_disabled_sleeps_between_rounds() {
    let dir = std::env::temp_dir().join(format!("cm-idle-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let d = dir.to_str().unwrap();
    ok(agent_bin().args(["pki", "init", "--dir", d]));
    ok(agent_bin().args(["pki", "issue", "--ca", d, "--name", "srv01", "--role", "agent"]));
    let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = dir.join("agent.toml");
    // Default intervals (2 s and more); the tools are off so that their start-up is not counted.
    std::fs::write(
        &config,
        format!(
            "host = \"srv01\"\nlisten = \"127.0.0.1:{port}\"\n[tls]\nca = \"{d}/ca.pem\"\ncert = \"{d}/srv01.pem\"\n\
             key = \"{d}/srv01.key\"\n[collectors]\nsmart = false\nnvidia = false\n[systemd]\nenable = false\n"
        ),
    )
    .unwrap();
    let mut child =
        agent_bin().args(["run", "--config", config.to_str().unwrap()]).stderr(Stdio::piped()).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let agent = Killed(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    loop {
        let line = rx.recv_timeout(Duration::from_secs(30)).expect("the agent says it is serving");
        if line.contains("serving") {
            break;
        }
    }
    let pid = agent.0.id();
    let before = cpu_ticks(pid);
    // The measurement window itself, not a wait for some state.
    std::thread::sleep(Duration::from_secs(3));
    let used = cpu_ticks(pid) - before;
    // 0.05 s: a spinning loop would use 3 s; one or two rounds use a few milliseconds.
    assert!(used < 5, "the idle agent used {used} ticks of CPU in 3 s");
}
