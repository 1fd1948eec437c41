#![allow(dead_code)]
//! Shared helpers for the dashboard's end-to-end tests.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use cm_agent::config::AgentConfig;
use cm_net::{pki, Role};

/// A fleet's PKI in a temporary directory: a CA, agents srv01 and srv02, and
/// a dashboard called laptop.
pub struct Fleet {
    pub dir: PathBuf,
}

impl Fleet {
    pub fn new(tag: &str) -> Fleet {
        let dir = std::env::temp_dir().join(format!("cm-fleet-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let ca = pki::new_ca("test fleet", 30).unwrap();
        std::fs::write(dir.join("ca.pem"), &ca.cert).unwrap();
        for (name, role) in [("srv01", Role::Agent), ("srv02", Role::Agent), ("laptop", Role::Dashboard)] {
            let own = pki::issue(&ca, name, role, 30).unwrap();
            std::fs::write(dir.join(format!("{name}.pem")), own.cert).unwrap();
            std::fs::write(dir.join(format!("{name}.key")), own.key).unwrap();
        }
        Fleet { dir }
    }

    pub fn file(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// A dashboard config listing `hosts` as (name, port, role).
    pub fn dashboard_config(&self, hosts: &[(&str, u16, &str)]) -> PathBuf {
        let mut text = format!(
            "[tls]\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n",
            self.file("ca.pem"),
            self.file("laptop.pem"),
            self.file("laptop.key")
        );
        for (name, port, role) in hosts {
            text.push_str(&format!(
                "\n[[hosts]]\nname = \"{name}\"\naddress = \"127.0.0.1\"\nport = {port}\nrole = \"{role}\"\n"
            ));
        }
        let path = self.dir.join("dashboard.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// The configuration of an agent serving `name` on loopback `port`, quickly
    /// (0.5 s intervals), without systemd, keeping its history in
    /// `state-<name>` of the fleet's directory.
    pub fn agent_config(&self, name: &str, port: u16) -> String {
        format!(
            "host = \"{name}\"\nlisten = \"127.0.0.1:{port}\"\n[tls]\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n\
             [intervals]\ncpu = 0.5\nmemory = 0.5\n[systemd]\nenable = false\n[history]\nstate_dir = \"{}\"\n",
            self.file("ca.pem"),
            self.file(&format!("{name}.pem")),
            self.file(&format!("{name}.key")),
            self.file(&format!("state-{name}")),
        )
    }

    /// A stand-in for an agent of protocol 1.`minor` serving `name` on
    /// loopback: it welcomes a hello and holds the connection, nothing more.
    /// Returns its port; it runs until the process ends.
    pub fn old_agent(&self, name: &str, minor: u16) -> u16 {
        use cm_net::{stream, tls, FramedRecv, Identity};
        use cm_proto::Message;
        let identity = Identity::load(
            Path::new(&self.file("ca.pem")),
            Path::new(&self.file(&format!("{name}.pem"))),
            Path::new(&self.file(&format!("{name}.key"))),
        )
        .unwrap();
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let name = name.to_owned();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let endpoint = tls::server(&identity, "127.0.0.1:0".parse().unwrap()).unwrap();
                port_tx.send(endpoint.local_addr().unwrap().port()).unwrap();
                while let Some(incoming) = endpoint.accept().await {
                    let name = name.clone();
                    tokio::spawn(async move {
                        let Ok(conn) = incoming.await else { return };
                        let Ok((mut send, recv)) = conn.accept_bi().await else { return };
                        let mut frames = FramedRecv::new(recv, 1 << 16);
                        let Ok(Some(Message::Hello { .. })) = frames.next().await else { return };
                        let welcome = Message::Welcome {
                            host: name,
                            agent_version: "0.0.9".into(),
                            major: 1,
                            minor,
                            interval_ms: 2_000,
                        };
                        if stream::send(&mut send, &welcome).await.is_ok() {
                            conn.closed().await;
                        }
                    });
                }
            });
        });
        port_rx.recv().unwrap()
    }
}

/// An agent serving `name` on `port` (the cm-agent library, in this
/// process), until dropped.
pub struct Agent {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Agent {
    pub fn start(fleet: &Fleet, name: &str, port: u16) -> Agent {
        Agent::with_config(&fleet.agent_config(name, port))
    }

    pub fn with_config(text: &str) -> Agent {
        let config = AgentConfig::parse(Path::new("test"), text).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(cm_agent::serve::run_until(config, async move {
                let _ = stopped.await;
            }))
            .unwrap();
        });
        Agent { stop: Some(stop), thread: Some(thread) }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Polls `check` every 100 ms until it gives a value, for at most 20 s.
pub fn eventually<T>(what: &str, mut check: impl FnMut() -> Result<T, String>) -> T {
    let start = Instant::now();
    loop {
        match check() {
            Ok(v) => return v,
            Err(last) => assert!(start.elapsed() < Duration::from_secs(20), "{what} never happened; last: {last}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A UDP port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A tmux server with one session `t`, on a private socket.
pub struct Tmux {
    pub socket: String,
}

impl Tmux {
    pub fn start(name: &str, cols: u16, rows: u16) -> Option<Tmux> {
        if Command::new("tmux").arg("-V").output().is_err() {
            assert!(std::env::var("CM_REQUIRE_TMUX").as_deref() != Ok("1"), "tmux is required (CM_REQUIRE_TMUX=1)");
            eprintln!("SKIPPED: tmux is not installed; install it to run the terminal tests");
            return None;
        }
        let t = Tmux { socket: format!("cm-test-{name}-{}", std::process::id()) };
        t.run(&[
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            &cols.to_string(),
            "-y",
            &rows.to_string(),
            "env",
            "-i",
            "PATH=/usr/bin:/bin",
            "TERM=xterm-256color",
            "PS1=ready$ ",
            "bash",
            "--norc",
            "--noprofile",
        ]);
        t.wait_for("ready$", |_| true);
        Some(t)
    }

    pub fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux").arg("-L").arg(&self.socket).args(args).output().expect("tmux runs");
        assert!(out.status.success(), "tmux {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    pub fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "t"])
    }

    /// Waits up to 15 s for `needle` on screen and for `check` to accept the screen.
    pub fn wait_for(&self, needle: &str, check: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if screen.contains(needle) && check(&screen) {
                return screen;
            }
            assert!(start.elapsed() < Duration::from_secs(15), "{needle:?} never appeared; screen:\n{screen}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The pid of the program running in the pane's shell.
    pub fn child_pid(&self) -> u32 {
        let shell = self.run(&["list-panes", "-t", "t", "-F", "#{pane_pid}"]).trim().to_owned();
        let children = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children")).unwrap();
        children.split_whitespace().next().expect("a program runs in the pane").parse().unwrap()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["-L", &self.socket, "kill-server"]).output();
    }
}

impl Tmux {
    /// The screen with its attributes, as SGR escape sequences.
    pub fn screen_with_attributes(&self) -> String {
        self.run(&["capture-pane", "-e", "-p", "-t", "t"])
    }

    /// Starts `command` in the pane's shell, with `echo exit=$?` after it.
    pub fn start_program(&self, command: &str) {
        self.keys(&[&format!("{command} ; echo exit=$?"), "Enter"]);
    }
}

/// Each character of a captured line with whether it is drawn reversed.
pub fn reversed_chars(line: &str) -> Vec<(char, bool)> {
    let mut out = Vec::new();
    let mut reversed = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push((c, reversed));
            continue;
        }
        if chars.next_if_eq(&'[').is_none() {
            continue;
        }
        let mut params = String::new();
        for p in chars.by_ref() {
            if p.is_ascii_alphabetic() {
                if p == 'm' {
                    for n in params.split(';') {
                        match n {
                            "" | "0" => reversed = false,
                            "7" => reversed = true,
                            "27" => reversed = false,
                            _ => {}
                        }
                    }
                }
                break;
            }
            params.push(p);
        }
    }
    out
}

/// The SGR parameters in `screen` that set a color (foreground or
/// background, 16, 256 or true color); the defaults (39, 49) are no color.
pub fn colors_set(screen: &str) -> Vec<String> {
    let mut found = Vec::new();
    for seq in screen.split('\u{1b}').skip(1) {
        let Some(body) = seq.strip_prefix('[') else { continue };
        let Some(end) = body.find('m') else { continue };
        if !body[..end].chars().all(|c| c.is_ascii_digit() || c == ';') {
            continue;
        }
        for n in body[..end].split(';').filter_map(|n| n.parse::<u16>().ok()) {
            if matches!(n, 30..=37 | 38 | 40..=47 | 48 | 90..=97 | 100..=107) {
                found.push(body[..end].to_owned());
            }
        }
    }
    found
}

/// Fails where a value was split across two rows of `screen`: a number
/// from its unit, `error` from its code, a parenthesised group that the
/// next row closes.
pub fn assert_no_split_values(screen: &str) {
    const UNITS: [&str; 11] = ["B", "KiB", "MiB", "GiB", "TiB", "kB", "GB", "TB", "C", "GHz", "W"];
    let lines: Vec<&str> = screen.lines().collect();
    for pair in lines.windows(2) {
        let last = pair[0].split_whitespace().last().unwrap_or("");
        let first = pair[1].split_whitespace().next().unwrap_or("");
        let unit = first.split(['/', ',', ')', ':']).next().unwrap_or("");
        let open = pair[0].matches('(').count() > pair[0].matches(')').count();
        let closes = pair[1].find(')').is_some_and(|close| pair[1].find('(').is_none_or(|open| close < open));
        let split = (last.ends_with(|c: char| c.is_ascii_digit()) && UNITS.contains(&unit))
            || (last == "error" && first.starts_with(|c: char| c.is_ascii_digit()))
            || (open && closes);
        assert!(!split, "a value split between rows:\n{}\n{}\nin:\n{screen}", pair[0], pair[1]);
    }
}
