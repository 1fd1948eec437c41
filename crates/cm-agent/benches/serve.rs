//! The agent serving three dashboards at a 2 s interval, next to Debian's
//! node_exporter scraped every 2 s, measured in the same run:
//! resident memory, CPU per minute, bytes per second per host, and the time
//! from collection to a dashboard holding the snapshot (p50 / p99; a
//! heartbeat, sent 5 s after the last frame when nothing visible changed,
//! carries the newest snapshot's time, up to an interval old).
//! Bytes here are frame bytes and gzip'd HTTP responses (what Prometheus
//! fetches), not what travels on the wire: bench/wire.sh counts that.
//!
//! `cargo bench --profile dist -p cm-agent --bench serve [-- SECONDS]` (default 60). Needs
//! `prometheus-node-exporter` on PATH for the comparison (apt-get install
//! prometheus-node-exporter); without it only the agent is measured.
//! Prints figures; asserts nothing.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cm_net::client::subscribe;
use cm_net::{pki, tls, Identity, Role};

fn ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some(close) = stat.rfind(')') else { return 0 };
    let f: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

fn kib(pid: u32, file: &str, key: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).unwrap_or_default();
    text.lines().find(|l| l.starts_with(key)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()).unwrap_or(0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn main() {
    let seconds: u64 = std::env::args().filter_map(|a| a.parse().ok()).next().unwrap_or(60);
    let dir = std::env::temp_dir().join(format!("cm-bench-serve-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let ca = pki::new_ca("bench", 30).unwrap();
    let d = dir.display().to_string();
    std::fs::write(format!("{d}/ca.pem"), &ca.cert).unwrap();
    for (name, role) in [("bench-host", Role::Agent), ("laptop", Role::Dashboard)] {
        let own = pki::issue(&ca, name, role, 30).unwrap();
        std::fs::write(format!("{d}/{name}.pem"), own.cert).unwrap();
        std::fs::write(format!("{d}/{name}.key"), own.key).unwrap();
    }
    let port = free_port();
    std::fs::write(
        format!("{d}/agent.toml"),
        format!("host = \"bench-host\"\nlisten = \"127.0.0.1:{port}\"\n[tls]\nca = \"{d}/ca.pem\"\ncert = \"{d}/bench-host.pem\"\nkey = \"{d}/bench-host.key\"\n"),
    )
    .unwrap();
    let mut agent = Command::new(env!("CARGO_BIN_EXE_cm-agent"))
        // Its own history, not the machine's (/var/lib/cm-agent as root).
        .args(["run", "--config", &format!("{d}/agent.toml"), "--state-dir", &format!("{d}/state")])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = agent.id();
    std::thread::sleep(Duration::from_secs(2));

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let identity = Identity::load(&dir.join("ca.pem"), &dir.join("laptop.pem"), &dir.join("laptop.key")).unwrap();
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let (bytes, latencies, updates, cpu_per_min) = rt.block_on(async {
        let mut subs = Vec::new();
        for _ in 0..3 {
            let endpoint = tls::client(&identity).unwrap();
            let sub = subscribe(&endpoint, addr, "bench-host", Role::Dashboard, Duration::from_secs(5)).await.unwrap();
            subs.push((endpoint, sub));
        }
        // Settle: the first message of each subscriber is a full snapshot.
        for (_, s) in &mut subs {
            s.next_snapshot().await.unwrap();
        }
        let c0 = ticks(pid);
        let b0: u64 = subs.iter().map(|(_, s)| s.bytes_received).sum();
        let start = Instant::now();
        let mut lat = Vec::new();
        let mut n = 0u64;
        let tasks: Vec<_> = subs
            .into_iter()
            .map(|(endpoint, mut s)| {
                tokio::spawn(async move {
                    let mut lat = Vec::new();
                    let deadline = Instant::now() + Duration::from_secs(seconds);
                    while let Ok(Ok(Some(snap))) = tokio::time::timeout_at(deadline.into(), s.next_snapshot()).await {
                        let now =
                            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
                                as f64;
                        lat.push(now - snap.timestamp_ms as f64);
                    }
                    drop(endpoint);
                    (s.bytes_received, lat)
                })
            })
            .collect();
        let mut bytes = 0;
        for t in tasks {
            let (b, l) = t.await.unwrap();
            bytes += b;
            n += l.len() as u64;
            lat.extend(l);
        }
        let elapsed = start.elapsed().as_secs_f64();
        let cpu_per_min = (ticks(pid) - c0) as f64 / 100.0 / elapsed * 60.0;
        println!("agent, 3 subscribers, 2 s interval, {elapsed:.0} s");
        println!(
            "  cpu                 {:.3} s per minute ({:.3} % of one core)",
            cpu_per_min,
            cpu_per_min / 60.0 * 100.0
        );
        ((bytes - b0) as f64 / elapsed / 3.0, lat, n / 3, cpu_per_min)
    });
    let rss = kib(pid, "status", "VmRSS:");
    let dirty = kib(pid, "smaps_rollup", "Private_Dirty:");
    let mut lat = latencies;
    lat.sort_by(f64::total_cmp);
    println!("  rss                 {:.1} MB, private dirty {:.1} MB", rss as f64 / 1024.0, dirty as f64 / 1024.0);
    println!("  frames              {bytes:.0} B/s per host per subscriber ({updates} updates each)");
    println!("  collection->client  p50 {:.1} ms, p99 {:.1} ms", percentile(&lat, 0.5), percentile(&lat, 0.99));
    let _ = agent.kill();
    let _ = agent.wait();

    // node_exporter, scraped every 2 s like a Prometheus would.
    let ne_port = free_port();
    let Ok(mut ne) = Command::new("prometheus-node-exporter")
        .arg(format!("--web.listen-address=127.0.0.1:{ne_port}"))
        .stderr(Stdio::null())
        .spawn()
    else {
        println!("node_exporter: not installed (apt-get install prometheus-node-exporter); no comparison");
        return;
    };
    std::thread::sleep(Duration::from_secs(1));
    let ne_pid = ne.id();
    let c0 = ticks(ne_pid);
    let start = Instant::now();
    let mut scrape_ms = Vec::new();
    let mut ne_bytes = 0usize;
    while start.elapsed() < Duration::from_secs(seconds) {
        let t = Instant::now();
        ne_bytes += scrape(ne_port);
        scrape_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        std::thread::sleep(Duration::from_secs(2).saturating_sub(t.elapsed()));
    }
    let elapsed = start.elapsed().as_secs_f64();
    let ne_cpu = (ticks(ne_pid) - c0) as f64 / 100.0 / elapsed * 60.0;
    let ne_rss = kib(ne_pid, "status", "VmRSS:");
    scrape_ms.sort_by(f64::total_cmp);
    let _ = ne.kill();
    let _ = ne.wait();
    println!("node_exporter, scraped every 2 s, {elapsed:.0} s");
    println!("  cpu                 {ne_cpu:.3} s per minute");
    println!("  rss                 {:.1} MB", ne_rss as f64 / 1024.0);
    println!("  responses           {:.0} B/s (gzip'd, headers included)", ne_bytes as f64 / elapsed);
    println!(
        "  scrape              p50 {:.1} ms, p99 {:.1} ms (collection happens during the scrape)",
        percentile(&scrape_ms, 0.5),
        percentile(&scrape_ms, 0.99)
    );
    println!("ratios (cm-agent / node_exporter)");
    println!(
        "  cpu {:.3}x   rss {:.2}x   bytes {:.4}x",
        cpu_per_min / ne_cpu,
        rss as f64 / ne_rss.max(1) as f64,
        bytes / (ne_bytes as f64 / elapsed)
    );
}

/// One HTTP/1.0 GET of /metrics, gzip'd as Prometheus asks; the bytes of the response.
fn scrape(port: u16) -> usize {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return 0 };
    let _ = s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\nAccept-Encoding: gzip\r\n\r\n");
    let mut body = Vec::new();
    let _ = s.read_to_end(&mut body);
    body.len()
}
