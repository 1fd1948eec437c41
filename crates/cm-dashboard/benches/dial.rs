//! The fleet pool dialling many hosts at once: 50 stand-in agents on
//! loopback (in this process: each answers the handshake with a welcome and
//! one snapshot of 60 services), and the dashboard's pool started against
//! all of them, several times over. Per start it prints when the first, the
//! median and the last host's first snapshot came, the datagrams the kernel
//! dropped because the dashboard's socket receive buffer was full (the
//! `drops` of its socket in /proc/net/udp6), how many dials failed and were
//! retried, and the CPU time of the pool's thread.
//!
//! `cargo bench --profile dist -p cm-dashboard --bench dial [-- STARTS [HOSTS]]` (default 5
//! starts of 50 hosts). Prints figures; asserts nothing.

use std::path::Path;
use std::time::{Duration, Instant};

use cm_dashboard::app::{Connection, Msg};
use cm_dashboard::config::DashboardConfig;
use cm_dashboard::{inbox, remote};
use std::sync::Arc;

use cm_net::{pki, stream, tls, FramedRecv, Identity, Role};
use cm_proto::{Cpu, HostSnapshot, Memory, Message, Service, PROTOCOL_MAJOR, PROTOCOL_MINOR};

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

/// CPU time (user + system) in ms of this process's threads called `name`.
fn cpu_ms(name: &str) -> u64 {
    let ticks = |stat: &str| -> u64 {
        let Some(close) = stat.rfind(')') else { return 0 };
        let f: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
            + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
    };
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0 };
    tasks
        .filter_map(|t| {
            let dir = t.ok()?.path();
            let comm = std::fs::read_to_string(dir.join("comm")).ok()?;
            (comm.trim() == name).then(|| ticks(&std::fs::read_to_string(dir.join("stat")).unwrap_or_default()) * 10)
        })
        .sum()
}

/// A host with `services` services, about the size of a real first snapshot.
fn snapshot(host: &str, services: usize) -> HostSnapshot {
    let services = (0..services)
        .map(|s| Service {
            name: format!("service-{s:02}.service"),
            description: format!("The service number {s}"),
            load_state: "loaded".into(),
            active_state: "active".into(),
            sub_state: "running".into(),
            result: "success".into(),
            since_ms: Some(1_764_000_000_000 - s as u64 * 3_600_000),
            memory_bytes: Some((s as u64 + 1) << 24),
            memory_max_bytes: Some(1 << 30),
            cpu_percent: Some(s as f64 * 0.3),
            tasks: Some(4),
            disk_bytes: Some((s as u64 + 1) << 28),
            disk_paths: vec![format!("/var/lib/service-{s:02}")],
            ..Default::default()
        })
        .collect();
    HostSnapshot {
        host: host.into(),
        seq: 1,
        cpu: Some(Cpu { utilisation_percent: Some(12.0), load1: 0.4, ..Default::default() }),
        memory: Some(Memory { total_bytes: 32 << 30, used_bytes: 10 << 30, ..Default::default() }),
        services: Some(services),
        ..Default::default()
    }
}

/// Stands in for an agent on another machine, cheaply: answers the Hello
/// with a Welcome and one snapshot, then holds the connection until the
/// dashboard leaves. (The real agent's collectors would share this machine's
/// CPUs with the dashboard and say more about this machine than the pool.)
async fn stand_in(endpoint: quinn::Endpoint, host: String, snapshot: Arc<HostSnapshot>) {
    while let Some(incoming) = endpoint.accept().await {
        let (host, snapshot) = (host.clone(), snapshot.clone());
        tokio::spawn(async move {
            let Ok(conn) = incoming.await else { return };
            let Ok((mut send, recv)) = conn.accept_bi().await else { return };
            let mut frames = FramedRecv::new(recv, 1 << 16);
            let Ok(Some(Message::Hello { .. })) = frames.next().await else { return };
            let welcome = Message::Welcome {
                host,
                agent_version: "stand-in".into(),
                major: PROTOCOL_MAJOR,
                minor: PROTOCOL_MINOR,
                interval_ms: 2_000,
            };
            if stream::send(&mut send, &welcome).await.is_err()
                || stream::send(&mut send, &Message::Snapshot(Box::new((*snapshot).clone()))).await.is_err()
            {
                return;
            }
            conn.closed().await;
        });
    }
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
    // All stand-ins on one thread, so that the dashboard keeps a CPU of its own.
    let agents = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("agents")
        .enable_all()
        .build()
        .unwrap();
    let first = cm_proto::frame::encode_frame(&Message::Snapshot(Box::new(snapshot("h00", 60)))).unwrap().len();
    for name in &names {
        let identity = Identity::load(
            Path::new(&file("ca.pem")),
            Path::new(&file(&format!("{name}.pem"))),
            Path::new(&file(&format!("{name}.key"))),
        )
        .unwrap();
        let endpoint = {
            let _runtime = agents.enter();
            tls::server(&identity, "127.0.0.1:0".parse().unwrap()).unwrap()
        };
        let port = endpoint.local_addr().unwrap().port();
        fleet.push_str(&format!("\n[[hosts]]\nname = \"{name}\"\naddress = \"127.0.0.1\"\nport = {port}\n"));
        agents.spawn(stand_in(endpoint, name.clone(), Arc::new(snapshot(name, 60))));
    }
    let config = DashboardConfig::parse(Path::new("bench"), &fleet).unwrap();

    println!("{hosts} stand-in agents on loopback, first snapshots of {first} bytes, the pool started {starts} times");
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
        let dashboard_cpu = cpu_ms("fleet");
        drop(pool);
        let ms = |d: Option<&Duration>| d.map_or("-".to_string(), |d| format!("{:.0}", d.as_secs_f64() * 1e3));
        let all = if firsts.len() == hosts {
            ms(firsts.last())
        } else {
            format!("> 20000 ({} hosts missing)", hosts - firsts.len())
        };
        println!(
            "  start {n}: first snapshots after {} / {} / {all} ms (first host / half / all), \
             {drops} datagrams dropped, {failed} dials failed{}; the pool's thread used {dashboard_cpu} ms of CPU",
            ms(firsts.first()),
            ms(firsts.get(hosts / 2)),
            first_failure.map_or(String::new(), |r| format!(" (first: {r})")),
        );
    }
    drop(agents);
}
