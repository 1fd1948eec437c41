//! N dashboards in one process, for bench/wire.sh: each has its own QUIC
//! endpoint (its own UDP socket, like a dashboard on another machine) and one
//! subscription to the same agent.
//!
//!   subscribers ADDR HOST CA CERT KEY N
//!
//! Dials one subscription after another, prints `ready` once every one of them
//! holds its first snapshot, then keeps them reading. On SIGTERM or SIGINT it
//! prints what it received since `ready` (one line, `key=value` pairs), closes
//! every connection with code 0 and exits.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cm_net::client::subscribe;
use cm_net::{tls, Identity, Role};
use tokio::sync::watch;

#[derive(Default)]
struct Received {
    /// States delivered after `ready` (snapshots, patches and heartbeats).
    states: u64,
    /// Frame bytes read from the stream after `ready` (no QUIC overhead).
    frame_bytes: u64,
    /// Collection to this process holding the state, milliseconds.
    latency_ms: Vec<f64>,
    error: Option<String>,
}

fn now_ms() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, host, ca, cert, key, n] = args.as_slice() else {
        anyhow::bail!("usage: subscribers ADDR HOST CA CERT KEY N");
    };
    let addr = addr.parse()?;
    let n: usize = n.parse()?;
    let identity = Identity::load(ca.as_ref(), cert.as_ref(), key.as_ref())?;

    // Dialled in turn: the agent accepts a bounded number of handshakes at once.
    let mut subs = Vec::with_capacity(n);
    for i in 0..n {
        let endpoint = tls::client(&identity)?;
        let mut sub = subscribe(&endpoint, addr, host, Role::Dashboard, Duration::from_secs(10))
            .await
            .map_err(|e| anyhow::anyhow!("subscriber {i}: {e}"))?;
        sub.next_snapshot().await.map_err(|e| anyhow::anyhow!("subscriber {i}: {e}"))?;
        subs.push((endpoint, sub));
    }
    println!("ready");

    let (stop_tx, stop_rx) = watch::channel(false);
    let started = Instant::now();
    let tasks: Vec<_> = subs
        .into_iter()
        .map(|(endpoint, mut sub)| {
            let mut stop = stop_rx.clone();
            tokio::spawn(async move {
                let mut got = Received::default();
                let base = sub.bytes_received;
                loop {
                    tokio::select! {
                        _ = stop.changed() => break,
                        next = sub.next_snapshot() => match next {
                            Ok(Some(snapshot)) => {
                                got.states += 1;
                                got.latency_ms.push(now_ms() - snapshot.timestamp_ms as f64);
                            }
                            Ok(None) => { got.error = Some("the agent ended the stream".into()); break }
                            Err(e) => { got.error = Some(e.to_string()); break }
                        },
                    }
                }
                got.frame_bytes = sub.bytes_received - base;
                sub.conn.close(0u32.into(), b"done");
                (endpoint, got)
            })
        })
        .collect();

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    let seconds = started.elapsed().as_secs_f64();
    let _ = stop_tx.send(true);

    let mut endpoints = Vec::new();
    let (mut states, mut frame_bytes, mut latency, mut errors) = (0, 0, Vec::new(), 0);
    for task in tasks {
        let (endpoint, got) = task.await?;
        states += got.states;
        frame_bytes += got.frame_bytes;
        latency.extend(got.latency_ms);
        if let Some(e) = got.error {
            errors += 1;
            eprintln!("subscriber: {e}");
        }
        endpoints.push(endpoint);
    }
    latency.sort_by(f64::total_cmp);
    println!(
        "subscribers={n} seconds={seconds:.1} states={states} frame_bytes={frame_bytes} errors={errors} \
         latency_p50_ms={:.1} latency_p99_ms={:.1}",
        percentile(&latency, 0.5),
        percentile(&latency, 0.99)
    );
    // Let the close frames leave before the sockets go.
    for endpoint in endpoints {
        let _ = tokio::time::timeout(Duration::from_secs(1), endpoint.wait_idle()).await;
    }
    Ok(())
}
