//! `/metrics` of a real agent: promtool's checks, a real Prometheus scraping
//! it over HTTP and over mutual TLS, and what is refused.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{agent_bin, free_tcp_port, ok, Prometheus, Setup};

const T: Duration = Duration::from_secs(20);

/// One HTTP/1.1 GET; the status line, the head and the body.
fn get(addr: SocketAddr, path: &str, headers: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}\r\n").unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (head.to_owned(), body.to_owned())
}

/// Says SKIPPED, unless CM_REQUIRE_PROMETHEUS=1 (CI) asks for the test to run.
fn skipped(why: &str) {
    assert!(std::env::var("CM_REQUIRE_PROMETHEUS").as_deref() != Ok("1"), "CM_REQUIRE_PROMETHEUS=1: {why}");
    eprintln!("SKIPPED: {why}");
}

fn mem_total_bytes() -> f64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<f64>().unwrap() * 1024.0
}

fn with_metrics(tag: &str, tls: bool) -> (Setup, SocketAddr) {
    let setup = Setup::new(tag, 0.3, None, |_| {});
    let addr: SocketAddr = format!("127.0.0.1:{}", free_tcp_port()).parse().unwrap();
    setup.append(&format!("[metrics]\nlisten = \"{addr}\"\ntls = {tls}\n"));
    (setup, addr)
}

#[test]
fn the_exposition_passes_promtool_and_reads_the_machine() {
    let (setup, addr) = with_metrics("promtool", false);
    let agent = setup.run();
    agent.wait_log("metrics address", |l| l.contains(&format!("metrics at http://{addr}/metrics")));
    let (head, body) = get(addr, "/metrics", "");
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(head.contains("Content-Type: text/plain; version=0.0.4"), "{head}");
    let total = body.lines().find(|l| l.starts_with("cm_memory_total_bytes ")).expect(&body);
    assert_eq!(total.split(' ').nth(1).unwrap().parse::<f64>().unwrap(), mem_total_bytes());
    let (head, om) = get(addr, "/metrics", "Accept: application/openmetrics-text;version=1.0.0\r\n");
    assert!(head.contains("application/openmetrics-text; version=1.0.0"), "{head}");
    assert!(om.ends_with("# EOF\n"));
    let (head, _) = get(addr, "/nope", "");
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    // A request head of more than 8 KiB is refused, and the agent serves on.
    let (head, _) = get(addr, "/metrics", &format!("X-Pad: {}\r\n", "x".repeat(9000)));
    assert!(head.starts_with("HTTP/1.1 431"), "{head}");
    assert!(get(addr, "/metrics", "").0.starts_with("HTTP/1.1 200"));
    // Gzip when asked, as Prometheus asks.
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "GET /metrics HTTP/1.1\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    assert!(String::from_utf8_lossy(&raw[..split]).contains("Content-Encoding: gzip"));
    let mut plain = String::new();
    flate2::read::GzDecoder::new(&raw[split + 4..]).read_to_string(&mut plain).unwrap();
    assert!(plain.contains("cm_memory_total_bytes "));

    if Command::new("promtool").arg("--version").output().is_err() {
        return skipped(
            "promtool (Debian's prometheus package) is not installed; the exposition was not checked by it",
        );
    }
    let mut check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let out = check.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.trim().is_empty(), "promtool check metrics:\n{said}\non:\n{body}");
}

#[test]
fn plain_http_off_loopback_is_a_config_error() {
    let setup = Setup::new("metrics-plain", 0.3, None, |_| {});
    setup.append("[metrics]\nlisten = \"0.0.0.0:9130\"\n");
    let out = agent_bin().args(["check-config", setup.config.to_str().unwrap()]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("metrics.listen = 0.0.0.0:9130: plain HTTP is served on loopback only"),
        "{err}"
    );
}

#[test]
fn a_port_in_use_says_so_once() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let setup = Setup::new("metrics-busy", 0.3, None, |_| {});
    setup.append(&format!("[metrics]\nlisten = \"{}\"\n", taken.local_addr().unwrap()));
    let out = agent_bin().args(["run", "--config", setup.config.to_str().unwrap()]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("the port is in use by another program"), "{err}");
    assert_eq!(err.matches("in use").count(), 1, "said once: {err}");
}

/// Python's ssl module as a scraper with a client certificate, dialling the
/// agent by its name (srv01): the status code, or `error` and why.
fn https_get(addr: SocketAddr, ca: &str, cert: &str, key: &str) -> String {
    let script = format!(
        "import socket,ssl\nc=ssl.create_default_context(cafile={ca:?})\nc.load_cert_chain({cert:?},{key:?})\n\
         try:\n  s=c.wrap_socket(socket.create_connection(('127.0.0.1',{port}),timeout=10),server_hostname='srv01')\n\
         \x20 s.sendall(b'GET /metrics HTTP/1.1\\r\\nHost: srv01\\r\\nConnection: close\\r\\n\\r\\n')\n\
         \x20 data=b''\n  while True:\n    b=s.recv(65536)\n    if not b: break\n    data+=b\n\
         \x20 print(data.split(b' ')[1].decode(), data.decode(errors='replace')[:200])\n\
         except Exception as e:\n  print('error', type(e).__name__, e)\n",
        port = addr.port()
    );
    let out = Command::new("python3").args(["-c", &script]).output().unwrap();
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn over_tls_a_fleet_certificate_is_required_and_its_role_checked() {
    let (setup, addr) = with_metrics("metrics-tls", true);
    let d = setup.dir.to_str().unwrap().to_owned();
    let agent = setup.run();
    agent.wait_log("metrics address", |l| l.contains(&format!("metrics at https://{addr}/metrics")));
    let ca = format!("{d}/ca.pem");
    let answer = https_get(addr, &ca, &format!("{d}/laptop.pem"), &format!("{d}/laptop.key"));
    assert!(answer.starts_with("200 ") && answer.contains("cm_host_info"), "{answer}");
    // Another fleet's certificate is refused during the handshake.
    let other = setup.dir.join("other");
    let o = other.to_str().unwrap();
    ok(agent_bin().args(["pki", "init", "--dir", o]));
    ok(agent_bin().args(["pki", "issue", "--ca", o, "--name", "intruder", "--role", "dashboard"]));
    let refused = https_get(addr, &ca, &format!("{o}/intruder.pem"), &format!("{o}/intruder.key"));
    assert!(refused.starts_with("error"), "{refused}");
    // An agent's certificate is from the fleet, but may not read.
    let agent_role = https_get(addr, &ca, &format!("{d}/srv02.pem"), &format!("{d}/srv02.key"));
    assert!(agent_role.starts_with("403 ") && agent_role.contains("role may not read"), "{agent_role}");
    agent.wait_log("the refusal", |l| l.contains("metrics: refused") && l.contains("role may not read"));
}

#[test]
fn a_real_prometheus_scrapes_it_over_http_and_mutual_tls() {
    if Command::new("prometheus").arg("--version").output().is_err() {
        return skipped("prometheus (Debian's prometheus package) is not installed");
    }
    let (plain_setup, plain) = with_metrics("prom-plain", false);
    let (tls_setup, tls) = with_metrics("prom-tls", true);
    let d = tls_setup.dir.to_str().unwrap().to_owned();
    ok(agent_bin().args(["pki", "issue", "--ca", &d, "--name", "prometheus", "--role", "dashboard"]));
    let _a = plain_setup.run();
    let _b = tls_setup.run();
    let scrape = format!(
        "- job_name: plain\n  static_configs:\n  - targets: ['{plain}']\n\
         - job_name: tls\n  scheme: https\n  tls_config:\n    ca_file: {d}/ca.pem\n    cert_file: {d}/prometheus.pem\n    key_file: {d}/prometheus.key\n    server_name: srv01\n  static_configs:\n  - targets: ['{tls}']\n"
    );
    let prom = Prometheus::start(&plain_setup.dir.join("prometheus"), &scrape).expect("prometheus starts");
    let want = mem_total_bytes();
    for job in ["plain", "tls"] {
        let got = prom.wait(&format!("cm_memory_total_bytes{{job=\"{job}\"}}"), Duration::from_secs(60));
        assert_eq!(got, want, "{job}: Prometheus has /proc/meminfo's MemTotal");
    }
    let web = prom.web;
    let targets = get(web, "/api/v1/targets", "").1;
    assert!(!targets.contains("\"health\":\"down\""), "{targets}");
}

#[test]
fn requests_beyond_a_burst_are_answered_429_and_the_next_scrape_is_served() {
    let (setup, addr) = with_metrics("metrics-rate", false);
    let _agent = setup.run();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    let mut pipelined = "HEAD /metrics HTTP/1.1\r\n\r\n".repeat(11);
    pipelined.push_str("HEAD /metrics HTTP/1.1\r\nConnection: close\r\n\r\n");
    s.write_all(pipelined.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let statuses: Vec<&str> = out.lines().filter(|l| l.starts_with("HTTP/1.1")).collect();
    assert_eq!(statuses.len(), 12, "{out}");
    assert_eq!(statuses.iter().filter(|l| l.contains("200 OK")).count(), 5, "a burst of five: {statuses:?}");
    assert!(statuses[5..].iter().all(|l| l.contains("429")), "{statuses:?}");
    let deadline = Instant::now() + T;
    while !get(addr, "/metrics", "").0.starts_with("HTTP/1.1 200") {
        assert!(Instant::now() < deadline, "a new connection is not served");
    }
}
