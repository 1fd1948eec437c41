//! `/metrics`: the latest snapshot in the Prometheus text exposition format
//! (or OpenMetrics, when the scraper asks for it), for Prometheus,
//! VictoriaMetrics and anything else that scrapes.
//!
//! Names come from the series catalogue ([`cm_proto::series::metric`]), so
//! a value is called the same here as in history and export. A scrape reads
//! the snapshot the agent already has: it never collects, and it never
//! waits for the collection thread.
//!
//! The server speaks just enough HTTP/1.1 for a scraper: GET or HEAD, a
//! request head of at most 8 KiB within 5 s, keep-alive (90 s idle), gzip when asked,
//! at most 16 connections and a few requests a second on each. Over TLS it
//! wants a client certificate from the fleet CA with role dashboard or
//! operator.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cm_proto::series::{self, Metric};
use cm_proto::session::Published;
use cm_proto::HostSnapshot;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

/// Connections served at once; more are closed at once.
const MAX_CONNECTIONS: usize = 16;
/// The most a request head may be.
const MAX_HEAD: usize = 8 * 1024;
/// How long a client may take to send the rest of a request head once it began.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a kept-alive connection may wait for its next request: longer
/// than Prometheus' default 15 s between scrapes, so it reuses its connection.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Requests on one connection closer together than this, beyond a burst of
/// [`BURST`], are answered 429.
const MIN_GAP: Duration = Duration::from_millis(200);
const BURST: u32 = 5;

/// `text/plain` of the exposition format 0.0.4.
const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Escapes a label value: backslash, double quote and line feed.
fn label_value(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// One metric's samples: the metric, its help, and each instance's value.
type Family = (Metric, &'static str, Vec<(Option<String>, f64)>);

/// The snapshot in the exposition format; `openmetrics` for OpenMetrics 1.0.
pub fn render(snapshot: &HostSnapshot, openmetrics: bool) -> String {
    let samples = series::flatten(snapshot);
    let mut out = String::with_capacity(64 * samples.len() + 512);
    // Samples grouped by metric, in the catalogue's order; each metric once.
    let mut families: Vec<Family> = Vec::new();
    for s in &samples {
        let Some(shape) = series::shape_of(&s.name) else { continue };
        let metric = series::metric(shape);
        let label = metric.label.map(|_| series::instance(shape, &s.name).to_owned());
        let value = s.value * metric.scale;
        match families.iter_mut().find(|(m, _, _)| m.name == metric.name) {
            Some((_, _, values)) => values.push((label, value)),
            None => {
                let help = if metric.name == "cm_status" {
                    "Status of an item: 0 ok, 1 warning, 2 critical, 3 unknown."
                } else {
                    shape.help
                };
                families.push((metric, help, vec![(label, value)]));
            }
        }
    }
    let info = [
        ("host", snapshot.host.as_str()),
        ("kernel", snapshot.kernel.as_str()),
        ("agent_version", snapshot.agent_version.as_str()),
    ];
    let labels: Vec<String> = info.iter().map(|(k, v)| format!("{k}=\"{}\"", label_value(v))).collect();
    let _ = writeln!(out, "# HELP cm_host_info The host this agent reports, its kernel and the agent's version.");
    let _ = writeln!(out, "# TYPE cm_host_info gauge");
    let _ = writeln!(out, "cm_host_info{{{}}} 1", labels.join(","));
    for (metric, help, values) in families {
        let (family, kind) = match (metric.counter, openmetrics) {
            (true, true) => (metric.name.trim_end_matches("_total").to_owned(), "counter"),
            (true, false) => (metric.name.clone(), "counter"),
            (false, _) => (metric.name.clone(), "gauge"),
        };
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(out, "# HELP {family} {help}");
        let _ = writeln!(out, "# TYPE {family} {kind}");
        for (label, value) in values {
            match (metric.label, label) {
                (Some(key), Some(v)) => {
                    let _ = writeln!(out, "{}{{{key}=\"{}\"}} {value}", metric.name, label_value(&v));
                }
                _ => {
                    let _ = writeln!(out, "{} {value}", metric.name);
                }
            }
        }
    }
    if openmetrics {
        out.push_str("# EOF\n");
    }
    out
}

type Latest = watch::Receiver<Option<Arc<Published>>>;

/// Serves `/metrics` on `listen` until the process ends. Binding is done
/// before this returns, so a port in use is an error at start.
pub async fn bind(listen: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(listen).await
}

/// A bind error in words that say what to do.
pub fn bind_error(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => {
            "the port is in use by another program (another agent, or a node_exporter?): pick another port".into()
        }
        std::io::ErrorKind::AddrNotAvailable => "no interface of this host has that address".into(),
        std::io::ErrorKind::PermissionDenied => "ports below 1024 need privilege: pick a port above 1024".into(),
        _ => e.to_string(),
    }
}

/// Accepts scrapers on `listener` forever.
pub async fn serve(listener: tokio::net::TcpListener, latest: Latest, tls: Option<Arc<rustls::ServerConfig>>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    loop {
        let Ok((stream, remote)) = listener.accept().await else { continue };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            drop(stream); // at the limit: closed before anything is read
            continue;
        };
        let (latest, acceptor) = (latest.clone(), acceptor.clone());
        tokio::spawn(async move {
            let _slot = slot;
            match acceptor {
                None => connection(stream, latest).await,
                Some(acceptor) => match tokio::time::timeout(HEAD_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => {
                        let role = tls
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|c| c.first())
                            .map(|c| cm_net::pki::identity(c));
                        match role {
                            Some(Ok((Some(r), _))) if r.may_subscribe() => connection(tls, latest).await,
                            _ => refuse(tls, remote).await,
                        }
                    }
                    Ok(Err(e)) => {
                        eprintln!("cm-agent: metrics: refused {remote}: {}", cm_proto::escape(&e.to_string()))
                    }
                    Err(_) => {}
                },
            }
        });
    }
}

/// A client certificate from the fleet, but of a role that may not read.
async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, remote: SocketAddr) {
    eprintln!("cm-agent: metrics: refused {remote}: its certificate's role may not read (dashboard or operator may)");
    let body = "certificate role may not read metrics (dashboard or operator may)\n";
    let _ = respond(&mut stream, "403 Forbidden", "text/plain; charset=utf-8", body.as_bytes(), false, false).await;
    linger(stream).await;
}

/// What a request asked for.
struct Request {
    head_only: bool,
    path: String,
    openmetrics: bool,
    gzip: bool,
    close: bool,
}

/// Parses a request head (up to the blank line).
fn parse(head: &str) -> Result<Request, &'static str> {
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let (method, target, version) =
        (first.next().unwrap_or(""), first.next().unwrap_or(""), first.next().unwrap_or(""));
    if !version.starts_with("HTTP/1.") {
        return Err("400 Bad Request");
    }
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return Err("405 Method Not Allowed"),
    };
    let mut req = Request {
        head_only,
        path: target.split('?').next().unwrap_or("").to_owned(),
        openmetrics: false,
        gzip: false,
        close: version == "HTTP/1.0",
    };
    for line in lines {
        let Some((name, value)) = line.split_once(':') else { continue };
        let value = value.trim().to_ascii_lowercase();
        match name.trim().to_ascii_lowercase().as_str() {
            "accept" => req.openmetrics = value.contains("application/openmetrics-text"),
            "accept-encoding" => req.gzip = value.split(',').any(|e| e.trim().starts_with("gzip")),
            "connection" => req.close = value.contains("close") || (req.close && !value.contains("keep-alive")),
            _ => {}
        }
    }
    Ok(req)
}

async fn respond<S: AsyncWrite + Unpin>(
    stream: &mut S,
    status: &str,
    content_type: &str,
    body: &[u8],
    head_only: bool,
    gzip: bool,
) -> std::io::Result<()> {
    let encoding = if gzip { "Content-Encoding: gzip\r\n" } else { "" };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{encoding}\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    if !head_only {
        stream.write_all(body).await?;
    }
    stream.flush().await
}

fn gzip(body: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 6), flate2::Compression::fast());
    let _ = enc.write_all(body);
    enc.finish().unwrap_or_default()
}

/// Closes after an error answer so that it arrives: ends the sending side,
/// then reads (and drops) what the client still sends, for a moment, so
/// that unread bytes do not make the kernel reset the connection first.
async fn linger<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) {
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 4096];
    let drain = async {
        let mut left: usize = 64 * 1024;
        while left > 0 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
}

/// One scraper's connection: requests until it closes, idles out or misbehaves.
async fn connection<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, latest: Latest) {
    let mut buf = Vec::with_capacity(1024);
    let mut last = Instant::now() - MIN_GAP * BURST;
    let mut credit = BURST;
    loop {
        // Read one request head.
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            if buf.len() >= MAX_HEAD {
                let _ = respond(&mut stream, "431 Request Header Fields Too Large", TEXT, b"", false, false).await;
                return linger(stream).await;
            }
            let mut chunk = [0u8; 2048];
            let wait = if buf.is_empty() { IDLE_TIMEOUT } else { HEAD_TIMEOUT };
            match tokio::time::timeout(wait, stream.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
                Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n.min(MAX_HEAD)]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        buf.drain(..head_end + 4);
        let req = match parse(&head) {
            Ok(r) => r,
            Err(status) => {
                let _ = respond(&mut stream, status, TEXT, b"", false, false).await;
                return linger(stream).await;
            }
        };
        // A burst of BURST, then one request per MIN_GAP.
        let now = Instant::now();
        credit = (credit + (now.duration_since(last).as_millis() / MIN_GAP.as_millis()) as u32).min(BURST);
        last = now;
        if credit == 0 {
            if respond(&mut stream, "429 Too Many Requests", TEXT, b"", req.head_only, false).await.is_err()
                || req.close
            {
                return;
            }
            continue;
        }
        credit -= 1;
        let result = match req.path.as_str() {
            "/metrics" => {
                // The Arc, not the snapshot: the lock is held for no longer than a copy of it.
                let published = latest.borrow().clone();
                match published {
                    Some(p) => {
                        let text = render(&p.snapshot, req.openmetrics);
                        let body = if req.gzip { gzip(text.as_bytes()) } else { text.into_bytes() };
                        let kind = if req.openmetrics { OPENMETRICS } else { TEXT };
                        respond(&mut stream, "200 OK", kind, &body, req.head_only, req.gzip).await
                    }
                    None => {
                        respond(
                            &mut stream,
                            "503 Service Unavailable",
                            TEXT,
                            b"no snapshot yet\n",
                            req.head_only,
                            false,
                        )
                        .await
                    }
                }
            }
            "/" => {
                let body = b"cm-agent: metrics at /metrics\n";
                respond(&mut stream, "200 OK", "text/plain; charset=utf-8", body, req.head_only, false).await
            }
            _ => respond(&mut stream, "404 Not Found", TEXT, b"not found: try /metrics\n", req.head_only, false).await,
        };
        if result.is_err() || req.close {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cm_proto::*;

    fn snapshot() -> HostSnapshot {
        HostSnapshot {
            host: "srv\"01".into(),
            memory: Some(Memory { total_bytes: 8 << 30, used_bytes: 2 << 30, ..Default::default() }),
            filesystems: vec![Filesystem {
                mount_point: "/srv/a\"b\\c".into(),
                used_bytes: 25,
                available_bytes: 75,
                ..Default::default()
            }],
            services: Some(vec![Service {
                name: "gitea.service".into(),
                memory_bytes: Some(100),
                restarts: 2,
                status: Status::Critical,
                ..Default::default()
            }]),
            ..Default::default()
        }
    }

    #[test]
    fn the_exposition_has_help_type_base_units_and_escaped_labels() {
        let text = render(&snapshot(), false);
        assert!(text.contains("cm_host_info{host=\"srv\\\"01\",kernel=\"\",agent_version=\"\"} 1\n"), "{text}");
        assert!(text.contains("# TYPE cm_memory_total_bytes gauge\ncm_memory_total_bytes 8589934592\n"), "{text}");
        assert!(text.contains("cm_memory_used_ratio 0.25\n"), "{text}");
        assert!(text.contains("cm_filesystem_used_ratio{mountpoint=\"/srv/a\\\"b\\\\c\"} 0.25\n"), "{text}");
        assert!(text.contains(
            "# TYPE cm_service_restarts_total counter\ncm_service_restarts_total{unit=\"gitea.service\"} 2\n"
        ));
        assert!(text.contains("cm_status{item=\"service.gitea.service\"} 2\n"), "{text}");
        assert!(text.contains("cm_status{item=\"host\"} 2\n"), "{text}");
        assert_eq!(text.matches("# TYPE cm_status gauge").count(), 1, "one family, however many items");
        assert!(!text.contains("# EOF"));
        let om = render(&snapshot(), true);
        assert!(
            om.contains("# TYPE cm_service_restarts counter\ncm_service_restarts_total{unit=\"gitea.service\"} 2\n")
        );
        assert!(om.ends_with("# EOF\n"));
    }

    #[test]
    fn requests_are_read_as_scrapers_send_them() {
        let r = parse("GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: application/openmetrics-text;version=1.0.0;q=0.5,text/plain;q=0.3\r\nAccept-Encoding: gzip").unwrap();
        assert!(r.openmetrics && r.gzip && !r.close && !r.head_only && r.path == "/metrics");
        let r = parse("HEAD /metrics?x=1 HTTP/1.0").unwrap();
        assert!(r.head_only && r.close && r.path == "/metrics");
        assert_eq!(parse("POST /metrics HTTP/1.1").err(), Some("405 Method Not Allowed"));
        assert_eq!(parse("\u{16}\u{3}\u{1}garbage").err(), Some("400 Bad Request"));
    }
}
