//! The agent and client sessions driven against each other in memory: every
//! refusal, peers that finish or close early, and long random runs that check
//! the client's copy of the host against the truth after every message.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cm_proto::frame::encode_frame;
use cm_proto::session::{Action, AgentInfo, ClientEvent, Peer, Published, EXACT_EVERY, HEARTBEAT};
use cm_proto::*;

const MIB: u64 = 1 << 20;

fn info() -> AgentInfo {
    AgentInfo { host: "srv01".into(), agent_version: "0.1.0".into(), interval: Duration::from_secs(2) }
}

fn peer(role: Result<Role, String>) -> Peer {
    Peer { addr: "192.0.2.7:4433".into(), name: "laptop".into(), role }
}

/// An agent session and what it did, fed by hand or by a client session.
struct Pair {
    agent: AgentSession,
    client: ClientSession,
    now: Instant,
    logs: Vec<String>,
    closed: Option<(u32, String)>,
    finished: bool,
    client_error: Option<String>,
    events: Vec<ClientEvent>,
    /// Bytes the agent sent, frames included.
    sent_bytes: usize,
    frames: Vec<Message>,
}

impl Pair {
    fn new(role: Result<Role, String>) -> Self {
        let now = Instant::now();
        Self {
            agent: AgentSession::new(info(), peer(role), now),
            client: ClientSession::new(Role::Dashboard, true),
            now,
            logs: vec![],
            closed: None,
            finished: false,
            client_error: None,
            events: vec![],
            sent_bytes: 0,
            frames: vec![],
        }
    }

    /// Moves everything queued on either side to the other, until both are quiet.
    fn pump(&mut self) {
        loop {
            let mut moved = false;
            while let Some(bytes) = self.client.poll_transmit() {
                self.agent.handle_input(&bytes, self.now);
                moved = true;
            }
            while let Some(action) = self.agent.poll_action() {
                moved = true;
                match action {
                    Action::Send(bytes) => {
                        self.sent_bytes += bytes.len();
                        self.frames.push(decode(&bytes[4..]).unwrap());
                        if let Err(e) = self.client.handle_input(&bytes) {
                            self.client_error = Some(e.to_string());
                        }
                    }
                    Action::Finish => self.finished = true,
                    Action::Close { code, reason } => self.closed = Some((code, reason)),
                    Action::Log(line) | Action::Refusal(line) => self.logs.push(line),
                }
            }
            while let Some(e) = self.client.poll_event() {
                self.events.push(e);
            }
            if !moved {
                return;
            }
        }
    }

    fn snapshot(&mut self, s: &HostSnapshot) {
        self.agent.handle_snapshot(Arc::new(Published::new(s.clone())), self.now);
        self.pump();
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
        if self.agent.poll_timeout().is_some_and(|t| t <= self.now) {
            self.agent.handle_timeout(self.now);
        }
        self.pump();
    }

    fn held(&self) -> &HostSnapshot {
        self.client.snapshot().expect("the client holds a snapshot")
    }
}

fn hello_frame(major: u16, subscribe: bool) -> Vec<u8> {
    encode_frame(&Message::Hello { major, minor: 1, role: "dashboard".into(), subscribe }).unwrap()
}

fn service(i: usize) -> Service {
    Service {
        name: format!("svc-{i:02}.service"),
        description: format!("Service {i}"),
        load_state: "loaded".into(),
        active_state: "active".into(),
        sub_state: "running".into(),
        result: "success".into(),
        since_ms: Some(1_764_000_000_000),
        memory_bytes: Some((100 + i as u64) * MIB),
        memory_max_bytes: Some(1 << 30),
        cpu_percent: Some(1.0),
        tasks: Some(4),
        io_read_bytes: Some(10 * MIB),
        io_write_bytes: Some(20 * MIB),
        disk_bytes: Some(i as u64 * 10 * MIB),
        disk_paths: vec![format!("/var/lib/svc-{i:02}")],
        ..Default::default()
    }
}

fn host(seq: u64) -> HostSnapshot {
    HostSnapshot {
        host: "srv01".into(),
        seq,
        timestamp_ms: 1_764_000_000_000 + seq * 2000,
        agent_version: "0.1.0".into(),
        kernel: "6.12.8".into(),
        uptime_seconds: 86_400 + seq * 2,
        cpu: Some(Cpu {
            logical_cpus: 4,
            load1: 0.4,
            load5: 0.5,
            load15: 0.45,
            utilisation_percent: Some(3.0),
            frequency_hz: Some(3_400_000_000),
            core_frequencies_hz: vec![3_400_000_000; 4],
            temperature_celsius: Some(45.0),
            ..Default::default()
        }),
        memory: Some(Memory {
            total_bytes: 32 << 30,
            used_bytes: 8 << 30,
            available_bytes: 24 << 30,
            tmpfs: vec![Tmpfs { mount_point: "/dev/shm".into(), size_bytes: 16 << 30, used_bytes: 0 }],
            ..Default::default()
        }),
        filesystems: vec![
            Filesystem {
                mount_point: "/".into(),
                fstype: "ext4".into(),
                size_bytes: 100_000_000_000,
                used_bytes: 40_000_000_000,
                available_bytes: 55_000_000_000,
                ..Default::default()
            },
            Filesystem {
                mount_point: "/var".into(),
                fstype: "xfs".into(),
                size_bytes: 500_000_000_000,
                used_bytes: 1_000_000_000,
                available_bytes: 499_000_000_000,
                ..Default::default()
            },
        ],
        services: Some((0..12).map(service).collect()),
        collectors: vec![CollectorReport { name: "cpu".into(), collected_ms: 1_764_000_000_000, ..Default::default() }],
        ..Default::default()
    }
}

fn subscribed() -> Pair {
    let mut p = Pair::new(Ok(Role::Dashboard));
    p.pump();
    p.snapshot(&host(1));
    assert!(matches!(p.events[0], ClientEvent::Welcome(ref w) if w.host == "srv01" && w.minor == PROTOCOL_MINOR));
    assert_eq!(p.held(), &host(1));
    p
}

#[test]
fn a_dashboard_is_welcomed_then_gets_the_snapshot_then_patches() {
    let mut p = subscribed();
    assert!(p.logs.iter().any(|l| l == "laptop (192.0.2.7:4433) (dashboard) subscribed"), "{:?}", p.logs);
    let mut next = host(2);
    next.cpu.as_mut().unwrap().load1 = 1.5;
    p.now += Duration::from_secs(2);
    p.snapshot(&next);
    assert!(matches!(p.frames.last(), Some(Message::Patch(_))));
    assert_eq!(p.held().cpu, next.cpu, "a load change is visible and sent");
    assert_within_tolerance(p.held(), &next, "after a patch");
    assert!(p.closed.is_none() && p.client_error.is_none());
}

#[test]
fn a_peer_that_finishes_after_hello_keeps_its_subscription() {
    let mut p = subscribed();
    p.agent.handle_finished(p.now);
    p.pump();
    assert!(p.closed.is_none(), "{:?}", p.logs);
    assert!(!p.agent.wants_input(), "nothing more is read from a finished stream");
    let mut next = host(2);
    next.memory = None;
    p.snapshot(&next);
    assert_eq!(p.held().memory, None);
}

#[test]
fn a_peer_that_closes_mid_frame_is_a_protocol_error_then_gone() {
    let mut p = Pair::new(Ok(Role::Dashboard));
    let hello = hello_frame(1, true);
    p.agent.handle_input(&hello[..3], p.now);
    p.agent.handle_finished(p.now);
    p.pump();
    assert_eq!(p.closed, Some((code::PROTOCOL, "protocol error".into())));
    assert!(p.logs[0].contains("the stream ended in the middle of a frame"), "{:?}", p.logs);

    let mut p = subscribed();
    p.agent.handle_closed("closed by peer: 0\n\x1b[31mforged line");
    p.pump();
    let line = p.logs.last().unwrap();
    assert_eq!(line, "laptop (192.0.2.7:4433) left: closed by peer: 0\\n\\u{1b}[31mforged line");
    assert!(p.agent.is_closed() && p.agent.poll_timeout().is_none());
}

#[test]
fn hello_twice_closes_the_connection() {
    let mut p = subscribed();
    p.agent.handle_input(&hello_frame(1, true), p.now);
    p.pump();
    assert_eq!(p.closed.as_ref().unwrap().0, code::PROTOCOL);
    assert!(p.logs.last().unwrap().ends_with("protocol error: hello twice"), "{:?}", p.logs);
}

#[test]
fn refusals_say_why_in_a_refused_message_then_close() {
    for (role, major, subscribe, want_code, want) in [
        (Err("certificate role \"admin\" is not a cm role".to_string()), 1, true, code::REFUSED, "not a cm role"),
        (Err("certificate carries no cm role".to_string()), 1, true, code::REFUSED, "no cm role"),
        (
            Ok(Role::Agent),
            1,
            true,
            code::REFUSED,
            "certificate role agent may not subscribe (dashboard or operator may)",
        ),
        (Ok(Role::Dashboard), 2, true, code::VERSION, "protocol 2.1 is not supported: this agent speaks 1.3"),
    ] {
        let mut p = Pair::new(role);
        let _ = p.client.poll_transmit();
        p.agent.handle_input(&hello_frame(major, subscribe), p.now);
        p.pump();
        assert!(matches!(p.events.as_slice(), [ClientEvent::Refused(r)] if r.contains(want)), "{want}: {:?}", p.events);
        assert!(p.finished, "the refusal is finished before the close");
        assert_eq!(p.closed.as_ref().map(|c| c.0), Some(want_code), "{want}");
        assert!(p.logs.iter().any(|l| l.starts_with("refused laptop (192.0.2.7:4433): ") && l.contains(want)));
    }
}

#[test]
fn hello_without_subscribe_gets_a_welcome_and_then_nothing() {
    let mut p = Pair::new(Ok(Role::Agent));
    let _ = p.client.poll_transmit();
    p.agent.handle_input(&hello_frame(1, false), p.now);
    p.snapshot(&host(1));
    assert!(matches!(p.frames.as_slice(), [Message::Welcome { .. }]), "{:?}", p.frames);
    assert!(p.finished && p.closed.is_none());
    assert!(!p.agent.is_subscribed() && p.agent.poll_timeout().is_none());
}

#[test]
fn missing_hello_fields_take_their_defaults() {
    // {"type": "hello"}: this major, minor 0, no role claimed, no subscription.
    let mut bare = Vec::new();
    ciborium::into_writer(&ciborium::Value::Map(vec![("type".into(), "hello".into())]), &mut bare).unwrap();
    assert_eq!(decode(&bare).unwrap(), Message::Hello { major: 1, minor: 0, role: String::new(), subscribe: false });
    let mut frame = (bare.len() as u32).to_be_bytes().to_vec();
    frame.extend(&bare);
    let mut p = Pair::new(Ok(Role::Dashboard));
    let _ = p.client.poll_transmit();
    p.agent.handle_input(&frame, p.now);
    p.pump();
    assert!(matches!(p.frames.as_slice(), [Message::Welcome { .. }]));
}

#[test]
fn no_hello_in_time_is_closed_with_the_timeout_code() {
    let mut p = Pair::new(Ok(Role::Dashboard));
    let _ = p.client.poll_transmit();
    assert_eq!(p.agent.poll_timeout(), Some(p.now + Duration::from_secs(5)));
    p.advance(Duration::from_secs(5));
    assert_eq!(p.closed, Some((code::TIMEOUT, "no hello".into())));
    assert_eq!(p.logs, ["laptop (192.0.2.7:4433) said no hello within 5 s"]);
}

#[test]
fn garbage_unexpected_kinds_and_oversized_frames_are_protocol_errors() {
    for (what, bytes) in [
        ("random bytes", b"\x00\x00\x00\x04\xff\xfe\xfd\xfc".to_vec()),
        ("oversized", (1u32 << 20).to_be_bytes().to_vec()),
        ("empty frame", vec![0, 0, 0, 0]),
        ("not a hello", encode_frame(&Message::Refused { reason: "x".into() }).unwrap()),
    ] {
        let mut p = Pair::new(Ok(Role::Dashboard));
        p.agent.handle_input(&bytes, p.now);
        p.pump();
        assert_eq!(p.closed.as_ref().map(|c| c.0), Some(code::PROTOCOL), "{what}");
    }
    // After the hello, kinds from a newer minor are skipped.
    let mut p = subscribed();
    let mut future = Vec::new();
    ciborium::into_writer(&ciborium::Value::Map(vec![("type".into(), "ack".into())]), &mut future).unwrap();
    let mut frame = (future.len() as u32).to_be_bytes().to_vec();
    frame.extend(future);
    p.agent.handle_input(&frame, p.now);
    p.pump();
    assert!(p.closed.is_none());
}

#[test]
fn a_section_that_disappears_disappears_on_the_client() {
    let mut p = subscribed();
    let mut next = host(2);
    next.cpu = None;
    next.services = None;
    next.backups = None;
    next.gpus.clear();
    p.snapshot(&next);
    assert_eq!((p.held().cpu.as_ref(), p.held().services.as_ref()), (None, None));
    assert_within_tolerance(p.held(), &next, "sections removed");
    let mut back = host(3);
    back.memory = None;
    p.snapshot(&back);
    assert!(p.held().memory.is_none() && p.held().cpu.is_some() && p.held().services.is_some());
    assert_within_tolerance(p.held(), &back, "sections back");
}

#[test]
fn an_invisible_change_waits_for_the_heartbeat() {
    let mut p = subscribed();
    let start = p.now;
    let frames = p.frames.len();
    let mut next = host(2);
    next.uptime_seconds = host(1).uptime_seconds + 2;
    next.memory.as_mut().unwrap().used_bytes += 4096;
    p.now += Duration::from_secs(2);
    p.snapshot(&next);
    assert_eq!(p.frames.len(), frames, "a patch that only moves the clock is not sent");
    assert_eq!(p.agent.poll_timeout(), Some(p.now - Duration::from_secs(2) + HEARTBEAT));
    p.advance(HEARTBEAT);
    assert!(matches!(p.frames.last(), Some(Message::Patch(patch)) if patch.is_heartbeat()));
    assert_eq!(p.held().seq, 2);
    assert_eq!(p.agent.poll_timeout(), Some(start + EXACT_EVERY), "nothing newer: only the exact refresh is due");
}

#[test]
fn a_1_0_client_gets_whole_snapshots() {
    let mut p = Pair::new(Ok(Role::Dashboard));
    let _ = p.client.poll_transmit();
    let hello = encode_frame(&Message::Hello { major: 1, minor: 0, role: "dashboard".into(), subscribe: true });
    p.agent.handle_input(&hello.unwrap(), p.now);
    p.snapshot(&host(1));
    p.snapshot(&host(2));
    assert!(matches!(p.frames.as_slice(), [Message::Welcome { .. }, Message::Snapshot(_), Message::Snapshot(_)]));
    assert_eq!(p.agent.poll_timeout(), None);
}

#[test]
fn states_that_arrive_together_are_one_event_for_the_latest() {
    let mut client = ClientSession::new(Role::Dashboard, true);
    let welcome =
        Message::Welcome { host: "srv01".into(), agent_version: "0.1.0".into(), major: 1, minor: 1, interval_ms: 2000 };
    let mut bytes = encode_frame(&welcome).unwrap();
    bytes.extend(encode_frame(&Message::Snapshot(Box::new(host(1)))).unwrap());
    bytes.extend(encode_frame(&Message::Snapshot(Box::new(host(2)))).unwrap());
    client.handle_input(&bytes).unwrap();
    assert!(matches!(client.poll_event(), Some(ClientEvent::Welcome(_))));
    assert_eq!(client.poll_event(), Some(ClientEvent::State));
    assert_eq!(client.poll_event(), None, "one event for both");
    assert_eq!(client.snapshot().unwrap().seq, 2);
}

#[test]
fn a_1_0_agents_updates_still_apply() {
    let mut client = ClientSession::new(Role::Dashboard, true);
    let welcome =
        Message::Welcome { host: "srv01".into(), agent_version: "0.1.0".into(), major: 1, minor: 0, interval_ms: 2000 };
    let update = SnapshotUpdate {
        seq: 2,
        base_seq: 1,
        timestamp_ms: 9,
        cpu: Some(Some(Cpu { load1: 2.0, ..Default::default() })),
        ..Default::default()
    };
    for msg in [welcome, Message::Snapshot(Box::new(host(1))), Message::Update(Box::new(update))] {
        client.handle_input(&encode_frame(&msg).unwrap()).unwrap();
    }
    let held = client.snapshot().unwrap();
    assert_eq!((held.seq, held.cpu.as_ref().unwrap().load1), (2, 2.0));
    assert_eq!(held.memory, host(1).memory, "1.0's null left memory as it was");
}

/// A small deterministic generator, so a failure can be replayed from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// The documented tolerance check, written apart from the patch code: each
/// fuzzy field within its tolerance, everything else exactly equal.
fn assert_within_tolerance(held: &HostSnapshot, truth: &HostSnapshot, context: &str) {
    let near = |a: u64, b: u64, abs: u64, rel: f64| a.abs_diff(b) as f64 <= (abs as f64).max(rel * a.max(b) as f64);
    let (mut h, mut t) = (held.clone(), truth.clone());
    assert!(t.timestamp_ms - h.timestamp_ms <= HEARTBEAT.as_millis() as u64 + 2000, "{context}: clock");
    assert!(h.uptime_seconds.abs_diff(t.uptime_seconds) <= 60, "{context}: uptime");
    for s in [&mut h, &mut t] {
        (s.seq, s.timestamp_ms, s.uptime_seconds) = (0, 0, 0);
    }
    if let (Some(a), Some(b)) = (&mut h.cpu, &mut t.cpu) {
        assert!((a.load1 - b.load1).abs() <= 0.01, "{context}: load1 {} vs {}", a.load1, b.load1);
        a.load1 = b.load1;
    }
    if let (Some(a), Some(b)) = (&mut h.memory, &mut t.memory) {
        assert!(near(a.used_bytes, b.used_bytes, MIB, 0.005), "{context}: memory {} vs {}", a.used_bytes, b.used_bytes);
        a.used_bytes = b.used_bytes;
    }
    if h.filesystems.len() == t.filesystems.len() {
        for (a, b) in h.filesystems.iter_mut().zip(&t.filesystems) {
            assert!(
                near(a.used_bytes, b.used_bytes, MIB, 0.001),
                "{context}: {} {} vs {}",
                b.mount_point,
                a.used_bytes,
                b.used_bytes
            );
            assert!(near(a.available_bytes, b.available_bytes, MIB, 0.001), "{context}: {} available", b.mount_point);
            (a.used_bytes, a.available_bytes) = (b.used_bytes, b.available_bytes);
        }
    }
    if let (Some(a), Some(b)) = (&mut h.services, &t.services) {
        if a.len() == b.len() {
            for (a, b) in a.iter_mut().zip(b) {
                let (x, y) = (a.memory_bytes.unwrap_or(0), b.memory_bytes.unwrap_or(0));
                assert!(near(x, y, MIB, 0.01), "{context}: {} memory {x} vs {y}", b.name);
                a.memory_bytes = b.memory_bytes;
            }
        }
    }
    if h != t {
        let (a, b) = (serde_json::to_value(&h).unwrap(), serde_json::to_value(&t).unwrap());
        panic!("{context}: everything else is exact:\n{}", json_diff(&a, &b, String::new()).join("\n"));
    }
}

fn json_diff(a: &serde_json::Value, b: &serde_json::Value, at: String) -> Vec<String> {
    use serde_json::Value::*;
    match (a, b) {
        (Object(x), Object(y)) => {
            y.iter().flat_map(|(k, v)| json_diff(x.get(k).unwrap_or(&Null), v, format!("{at}.{k}"))).collect()
        }
        (Array(x), Array(y)) if x.len() == y.len() => {
            x.iter().zip(y).enumerate().flat_map(|(i, (p, q))| json_diff(p, q, format!("{at}[{i}]"))).collect()
        }
        (x, y) if x == y => vec![],
        (x, y) => vec![format!("{at}: held {x} truth {y}")],
    }
}

/// One random step: slow growth, jitter, and now and then a structural change.
fn mutate(s: &mut HostSnapshot, rng: &mut Rng) {
    s.seq += 1;
    s.timestamp_ms += 2000;
    s.uptime_seconds += 2;
    // A filesystem that grows 5 MB every 2 s: each step is below its tolerance.
    s.filesystems[0].used_bytes += 5_000_000;
    s.filesystems[0].available_bytes -= 5_000_000;
    if let Some(cpu) = &mut s.cpu {
        if rng.chance(40) {
            cpu.load1 = (cpu.load1 + (rng.below(7) as f64 - 3.0) * 0.004).max(0.0);
        }
    }
    if let Some(m) = &mut s.memory {
        m.used_bytes = m.used_bytes + rng.below(3 * MIB) - MIB;
    }
    if let Some(services) = &mut s.services {
        for svc in services.iter_mut() {
            // Each service's memory creeps up by under 1 MiB a step.
            svc.memory_bytes = svc.memory_bytes.map(|m| m + rng.below(MIB));
        }
        if rng.chance(3) && !services.is_empty() {
            let i = rng.below(services.len() as u64) as usize;
            services[i].active_state = "failed".into();
            services[i].status = Status::Critical;
            services.sort_by(|a, b| b.status.cmp(&a.status).then_with(|| a.name.cmp(&b.name)));
        }
        if rng.chance(2) {
            services.push(service(100 + rng.below(50) as usize));
        }
        if rng.chance(2) && !services.is_empty() {
            services.remove(rng.below(services.len() as u64) as usize);
        }
    }
    if rng.chance(2) {
        s.memory = if s.memory.is_some() { None } else { host(0).memory };
    }
    if rng.chance(1) {
        s.services = if s.services.is_some() { None } else { Some(vec![service(1)]) };
    }
    if rng.chance(3) {
        s.collectors[0].error = if s.collectors[0].error.is_some() { None } else { Some("boom".into()) };
    }
    if rng.chance(2) {
        s.gpus = if s.gpus.is_empty() { vec![Gpu { id: "card0".into(), ..Default::default() }] } else { vec![] };
    }
}

#[test]
fn the_client_never_drifts_beyond_the_tolerance_and_is_exact_after_a_refresh() {
    for seed in 1..=20u64 {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ seed);
        let mut p = subscribed();
        let mut truth = host(1);
        // 20 simulated minutes at 2 s: the exact refresh comes twice.
        for step in 0..600 {
            mutate(&mut truth, &mut rng);
            p.now += Duration::from_secs(2);
            p.snapshot(&truth);
            if p.agent.poll_timeout().is_some_and(|t| t <= p.now) {
                p.agent.handle_timeout(p.now);
                p.pump();
                assert_eq!(p.held(), &truth, "seed {seed} step {step}: exact after the refresh");
            }
            assert!(p.client_error.is_none() && p.closed.is_none(), "seed {seed}: {:?}", p.client_error);
            assert_within_tolerance(p.held(), &truth, &format!("seed {seed} step {step}"));
        }
        mutate(&mut truth, &mut rng);
        p.now += Duration::from_secs(2);
        p.snapshot(&truth);
        let exact = p.frames.len();
        p.advance(EXACT_EVERY);
        assert!(p.frames.len() > exact);
        assert_eq!(p.held(), &truth, "seed {seed}: exact after the refresh");
    }
}

#[test]
fn forty_steady_services_cost_well_under_the_budget() {
    let mut p = Pair::new(Ok(Role::Dashboard));
    p.pump();
    let mut truth = host(1);
    truth.services = Some((0..40).map(service).collect());
    p.snapshot(&truth);
    let start = p.sent_bytes;
    let mut rng = Rng(7);
    let rounds = 300; // ten minutes at 2 s
    for _ in 0..rounds {
        truth.seq += 1;
        truth.timestamp_ms += 2000;
        truth.uptime_seconds += 2;
        truth.cpu.as_mut().unwrap().load1 = 0.3 + rng.below(30) as f64 / 100.0;
        truth.memory.as_mut().unwrap().used_bytes = (8 << 30) + rng.below(64 * MIB);
        for s in truth.services.as_mut().unwrap() {
            // Steady services: memory and CPU jitter below what the table shows.
            s.memory_bytes = Some((100 << 20) + rng.below(MIB));
            s.cpu_percent = Some(rng.below(5) as f64 / 10.0);
        }
        p.now += Duration::from_secs(2);
        p.snapshot(&truth);
    }
    let per_second = (p.sent_bytes - start) as f64 / (rounds as f64 * 2.0);
    // The exact refresh: every figure held back within its tolerance, once.
    let before = p.sent_bytes;
    p.advance(EXACT_EVERY);
    let refresh = p.sent_bytes - before;
    assert_eq!(p.held(), &truth, "exact after the refresh");
    let full = encode_frame(&Message::Snapshot(Box::new(truth.clone()))).unwrap().len();
    eprintln!(
        "40 services, steady state: {per_second:.0} B/s of frames; the exact refresh {refresh} B every {} s \
         ({:.1} B/s); a full snapshot {full} B",
        EXACT_EVERY.as_secs(),
        refresh as f64 / EXACT_EVERY.as_secs_f64()
    );
    assert!(per_second < 250.0, "{per_second:.0} B/s");
    assert!(refresh < full / 2, "the refresh carries only what drifted: {refresh} B of {full}");
}
