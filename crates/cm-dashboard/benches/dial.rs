//! The fleet pool dialling many hosts at once: 50 agents on loopback (the
//! cm-agent library, in this process, collecting rarely so that they stand
//! for agents on other machines), and the dashboard's pool started against
//! all of them, several times over. Per start it prints when the first, the
//! median and the last host's first snapshot came, the datagrams the kernel
//! dropped because the dashboard's socket receive buffer was full (the
//! `drops` of its socket in /proc/net/udp6), and how many dials failed and
//! were retried. The agents' handshakes share this machine's CPUs with the
//! dashboard's, so on a small machine the times say more about that.
//!
//! `cargo bench -p cm-dashboard --bench dial [-- STARTS [HOSTS]]` (default 5
//! starts of 50 hosts). Prints figures; asserts nothing.

use std::path::Path;
use std::time::{Duration, Instant};

use cm_dashboard::app::{Connection, Msg};
use cm_dashboard::config::DashboardConfig;
use cm_dashboard::{inbox, remote};
use cm_net::{pki, Role};

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
    let numbers: Vec<usize> = std::env::args().filter_map(|a| a.parse().ok()).collect();
    let starts = numbers.first().copied().unwrap_or(5);
    let hosts = numbers.get(1).copied().unwrap_or(50);
    let dir = std::env::temp_dir().join(format!("cm-bench-dial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = |name: &str| dir.join(name).display().to_string();
    let ca = pki::new_ca("bench", 30).unwrap();
    std::fs::write(file("ca.pem"), &ca.cert).unwrap();
    let names: Vec<String> = (0..hosts).map(|i| format!("h{i:02}")).collect();
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
             [intervals]\ncpu = 60\nmemory = 60\nstorage = 600\ngpu = 600\n[systemd]\nenable = false\n",
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

    println!("{hosts} agents on loopback, the pool started {starts} times");
    for n in 1..=starts {
        let (tx, rx) = inbox::inbox();
        let start = Instant::now();
        let before = dashboard_drops();
        let pool = remote::spawn(config.clone(), tx).unwrap();
        let mut seen = vec![false; hosts];
        let (mut failed, mut first_failure) = (0, None);
        let mut firsts = Vec::new();
        let deadline = start + Duration::from_secs(20);
        while firsts.len() < hosts && rx.wait_until(deadline) == inbox::Wait::Ready {
            for msg in rx.drain() {
                match msg {
                    Msg::Snapshot { host, .. } if !seen[host] => {
                        seen[host] = true;
                        firsts.push(start.elapsed());
                    }
                    Msg::Connection { connection: Connection::Unreachable { reason }, .. } => {
                        failed += 1;
                        first_failure.get_or_insert(reason);
                    }
                    _ => {}
                }
            }
        }
        let drops = dashboard_drops() - before;
        drop(pool);
        let ms = |d: Option<&Duration>| d.map_or("-".to_string(), |d| format!("{:.0}", d.as_secs_f64() * 1e3));
        let all = if firsts.len() == hosts {
            ms(firsts.last())
        } else {
            format!("> 20000 ({} hosts missing)", hosts - firsts.len())
        };
        println!(
            "  start {n}: first snapshots after {} / {} / {all} ms (first host / half / all), \
             {drops} datagrams dropped, {failed} dials failed{}",
            ms(firsts.first()),
            ms(firsts.get(hosts / 2)),
            first_failure.map_or(String::new(), |r| format!(" (first: {r})")),
        );
    }
    drop(stops);
}
