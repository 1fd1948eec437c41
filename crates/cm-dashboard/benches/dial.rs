//! The fleet pool dialling many hosts at once: 50 agents on loopback (the
//! cm-agent library, in this process), and the dashboard's pool started
//! against all of them, several times over. Per start it prints the time
//! until every host has sent a snapshot and the datagrams the kernel dropped
//! because the dashboard's socket receive buffer was full (the `drops` of
//! its socket in /proc/net/udp6), and how many dials failed and were retried.
//!
//! `cargo bench -p cm-dashboard --bench dial [-- STARTS]` (default 5). Prints
//! figures; asserts nothing.

use std::path::Path;
use std::time::{Duration, Instant};

use cm_dashboard::app::{Connection, Msg};
use cm_dashboard::config::DashboardConfig;
use cm_dashboard::{inbox, remote};
use cm_net::{pki, Role};

const HOSTS: usize = 50;

/// Inodes of this process's sockets.
fn own_sockets() -> Vec<String> {
    let Ok(fds) = std::fs::read_dir("/proc/self/fd") else { return Vec::new() };
    fds.filter_map(|fd| {
        let target = std::fs::read_link(fd.ok()?.path()).ok()?;
        let t = target.to_str()?;
        Some(t.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
    })
    .collect()
}

/// Dropped datagrams of this process's IPv6 UDP sockets: the dashboard's
/// endpoint (the agents listen on IPv4).
fn dashboard_drops() -> u64 {
    let inodes = own_sockets();
    let table = std::fs::read_to_string("/proc/net/udp6").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // sl local rem st tx:rx tr:tm retrnsmt uid timeout inode ref pointer drops
            let inode = *f.get(9)?;
            inodes.iter().any(|i| i == inode).then(|| f.last()?.parse::<u64>().ok())?
        })
        .sum()
}

fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn main() {
    let starts: usize = std::env::args().filter_map(|a| a.parse().ok()).next().unwrap_or(5);
    let dir = std::env::temp_dir().join(format!("cm-bench-dial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = |name: &str| dir.join(name).display().to_string();
    let ca = pki::new_ca("bench", 30).unwrap();
    std::fs::write(file("ca.pem"), &ca.cert).unwrap();
    let names: Vec<String> = (0..HOSTS).map(|i| format!("h{i:02}")).collect();
    for (name, role) in names.iter().map(|n| (n.as_str(), Role::Agent)).chain([("laptop", Role::Dashboard)]) {
        let own = pki::issue(&ca, name, role, 30).unwrap();
        std::fs::write(file(&format!("{name}.pem")), own.cert).unwrap();
        std::fs::write(file(&format!("{name}.key")), own.key).unwrap();
    }
    let mut fleet = format!(
        "[tls]\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n",
        file("ca.pem"),
        file("laptop.pem"),
        file("laptop.key")
    );
    let mut stops = Vec::new();
    for name in &names {
        let port = free_port();
        fleet.push_str(&format!("\n[[hosts]]\nname = \"{name}\"\naddress = \"127.0.0.1\"\nport = {port}\n"));
        let text = format!(
            "host = \"{name}\"\nlisten = \"127.0.0.1:{port}\"\n[tls]\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n\
             [systemd]\nenable = false\n",
            file("ca.pem"),
            file(&format!("{name}.pem")),
            file(&format!("{name}.key")),
        );
        let config = cm_agent::config::AgentConfig::parse(Path::new("bench"), &text).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(cm_agent::serve::run_until(config, async move {
                let _ = stopped.await;
            }))
            .unwrap();
        });
        stops.push(stop);
    }
    let config = DashboardConfig::parse(Path::new("bench"), &fleet).unwrap();
    std::thread::sleep(Duration::from_secs(2)); // every agent has its first snapshot

    println!("{HOSTS} agents on loopback, the pool started {starts} times");
    for n in 1..=starts {
        let (tx, rx) = inbox::inbox();
        let start = Instant::now();
        let before = dashboard_drops();
        let pool = remote::spawn(config.clone(), tx).unwrap();
        let mut seen = [false; HOSTS];
        let mut failed = 0;
        let deadline = start + Duration::from_secs(20);
        while seen.iter().any(|s| !s) && rx.wait_until(deadline) == inbox::Wait::Ready {
            for msg in rx.drain() {
                match msg {
                    Msg::Snapshot { host, .. } => seen[host] = true,
                    Msg::Connection { connection: Connection::Unreachable { .. }, .. } => failed += 1,
                    _ => {}
                }
            }
        }
        let took = start.elapsed();
        let drops = dashboard_drops() - before;
        let missing = seen.iter().filter(|s| !**s).count();
        drop(pool);
        println!(
            "  start {n}: every host's first snapshot after {:6.1} ms, {drops:4} datagrams dropped, {failed:3} dials failed{}",
            took.as_secs_f64() * 1e3,
            if missing > 0 { format!(", {missing} hosts missing") } else { String::new() }
        );
    }
    drop(stops);
}
