//! A real `cm-agent run` for the integration tests: its certificates, its
//! configuration, and its log as it comes.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cm_net::Identity;

pub fn agent_bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cm-agent"))
}

pub fn ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub struct Agent {
    pub child: Child,
    pub addr: SocketAddr,
    pub dir: PathBuf,
    log: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

/// Certificates and a configuration for srv01, ready to run (again and again).
pub struct Setup {
    pub dir: PathBuf,
    pub addr: SocketAddr,
    pub config: PathBuf,
}

impl Setup {
    /// A fleet CA and certificates made with `cm-agent pki` in a fresh
    /// directory for `tag`, after `prepare` had it to itself; collection
    /// every `interval` seconds, history in `state/` unless `history` says
    /// otherwise (the body of a `[history]` section).
    pub fn new(tag: &str, interval: f64, history: Option<&str>, prepare: impl FnOnce(&Path)) -> Setup {
        let dir = std::env::temp_dir().join(format!("cm-serve-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        prepare(&dir);
        let d = dir.to_str().unwrap();
        ok(agent_bin().args(["pki", "init", "--dir", d]));
        for (name, role, days) in [("srv01", "agent", "30"), ("laptop", "dashboard", "30"), ("srv02", "agent", "30")] {
            ok(agent_bin().args(["pki", "issue", "--ca", d, "--name", name, "--role", role, "--days", days]));
        }
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let config = dir.join("agent.toml");
        let history = history.map_or_else(|| format!("state_dir = \"{d}/state\""), str::to_owned);
        std::fs::write(
            &config,
            format!(
                "host = \"srv01\"\nlisten = \"{addr}\"\n[tls]\nca = \"{d}/ca.pem\"\ncert = \"{d}/srv01.pem\"\nkey = \"{d}/srv01.key\"\n\
                 [intervals]\ncpu = {interval}\nmemory = {interval}\n[systemd]\nenable = false\n[history]\n{history}\n"
            ),
        )
        .unwrap();
        Setup { dir, addr, config }
    }

    /// Adds `toml` (whole sections) to the configuration.
    pub fn append(&self, toml: &str) {
        let mut text = std::fs::read_to_string(&self.config).unwrap();
        text.push_str(toml);
        std::fs::write(&self.config, text).unwrap();
    }

    /// Starts the agent and waits until it serves.
    pub fn run(&self) -> Agent {
        self.run_with(&[])
    }

    /// Watches the systemd units matching `patterns` instead of none.
    pub fn watch_systemd(&self, patterns: &[&str]) {
        let text = std::fs::read_to_string(&self.config).unwrap();
        let list: Vec<String> = patterns.iter().map(|p| format!("{p:?}")).collect();
        let with = format!("[systemd]\nenable = true\npatterns = [{}]\n", list.join(", "));
        std::fs::write(&self.config, text.replace("[systemd]\nenable = false\n", &with)).unwrap();
    }

    /// Starts the agent with `env` added to its environment and waits until it serves.
    pub fn run_with(&self, env: &[(&str, &str)]) -> Agent {
        let (dir, addr, config) = (self.dir.clone(), self.addr, &self.config);
        let mut cmd = agent_bin();
        cmd.args(["run", "--config", config.to_str().unwrap()]).stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let serving = line.contains("serving");
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
                drop(log);
                if serving {
                    let _ = tx.send(());
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("agent did not start: {}", log.lock().unwrap()));
        Agent { child, addr, dir, log, reader: Some(reader) }
    }
}

impl Agent {
    /// A fleet CA, certificates made with `cm-agent pki`, and a running agent for srv01.
    pub fn start(tag: &str) -> Agent {
        Setup::new(tag, 0.3, None, |_| {}).run()
    }

    /// As [`Agent::start`], after `prepare` had the test's directory (its
    /// history in `state/`) to itself.
    pub fn start_with(tag: &str, prepare: impl FnOnce(&Path)) -> Agent {
        Setup::new(tag, 0.3, None, prepare).run()
    }

    /// Waits until the log has a line for which `pred` holds, and returns the log.
    pub fn wait_log(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let log = self.log();
            if log.lines().any(&pred) {
                return log;
            }
            assert!(std::time::Instant::now() < deadline, "no log line {what}: {log}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until `needle` is in the log more than `times` times, and returns the log.
    pub fn wait_count(&self, needle: &str, times: usize) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let log = self.log();
            if log.matches(needle).count() > times {
                return log;
            }
            assert!(std::time::Instant::now() < deadline, "{needle:?} not more than {times} times: {log}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then everything the agent logged until it exited.
    pub fn stop(&mut self) -> (std::process::ExitStatus, String) {
        assert!(Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap().success());
        let status = self.child.wait().unwrap();
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        (status, self.log())
    }

    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    pub fn identity(&self, name: &str) -> Identity {
        Identity::load(
            &self.dir.join("ca.pem"),
            &self.dir.join(format!("{name}.pem")),
            &self.dir.join(format!("{name}.key")),
        )
        .unwrap()
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real Prometheus server on loopback (Debian's `prometheus`), killed when dropped.
pub struct Prometheus {
    child: Child,
    pub web: SocketAddr,
}

impl Prometheus {
    /// Starts one with `scrape_configs` (YAML, the list's items) scraping every second;
    /// `None` when there is no prometheus binary.
    pub fn start(dir: &Path, scrape_configs: &str) -> Option<Prometheus> {
        Command::new("prometheus").arg("--version").output().ok()?;
        let web: SocketAddr = format!("127.0.0.1:{}", free_tcp_port()).parse().unwrap();
        std::fs::create_dir_all(dir).unwrap();
        let config = dir.join("prometheus.yml");
        let yaml = format!("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n{scrape_configs}");
        std::fs::write(&config, yaml).unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address={web}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        Some(Prometheus { child, web })
    }

    /// The value of an instant query's first result, once Prometheus has one.
    pub fn query(&self, expr: &str) -> Option<f64> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(self.web).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        let q: String = expr
            .bytes()
            .map(|b| if b.is_ascii_alphanumeric() || b == b'_' { (b as char).to_string() } else { format!("%{b:02X}") })
            .collect();
        write!(s, "GET /api/v1/query?query={q} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        let body = out.split_once("\r\n\r\n")?.1;
        let v: serde_json::Value = serde_json::from_str(body).ok()?;
        v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    }

    /// Waits up to `limit` for `expr` to have a value.
    pub fn wait(&self, expr: &str, limit: Duration) -> f64 {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(v) = self.query(expr) {
                return v;
            }
            assert!(std::time::Instant::now() < deadline, "Prometheus has no value for {expr}");
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Subscribes to `agent` as a dashboard and waits, at most `limit`, for a
/// snapshot that `done` accepts; `what` names it when none comes.
pub async fn snapshot_matching(
    agent: &Agent,
    what: &str,
    limit: Duration,
    done: impl Fn(&cm_proto::HostSnapshot) -> bool,
) -> cm_proto::HostSnapshot {
    let step = Duration::from_secs(10).min(limit);
    let endpoint = cm_net::tls::client(&agent.identity("laptop")).unwrap();
    let mut sub =
        cm_net::client::subscribe(&endpoint, agent.addr, "srv01", cm_net::Role::Dashboard, step).await.unwrap();
    let deadline = std::time::Instant::now() + limit;
    loop {
        assert!(std::time::Instant::now() < deadline, "no snapshot with {what}");
        let snap = tokio::time::timeout(step, sub.next_snapshot()).await.unwrap().unwrap().unwrap();
        if done(&snap) {
            return snap;
        }
    }
}
