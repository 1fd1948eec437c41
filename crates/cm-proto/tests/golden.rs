//! Committed CBOR encodings of every message kind. Files written by this
//! version must keep decoding in every later 1.x version: a change that breaks
//! one of these tests breaks deployed agents or dashboards.
//!
//! `CM_UPDATE_GOLDEN=1 cargo test -p cm-proto --test golden` writes files that
//! do not exist yet (for a new message kind); it never rewrites existing ones.

use std::path::PathBuf;

use cm_proto::history::{HistoryChunk, HistoryEnd, HistoryEvents, HistoryRequest, Point, Resolution};
use cm_proto::*;

fn snapshot() -> HostSnapshot {
    HostSnapshot {
        host: "srv01".into(),
        seq: 42,
        timestamp_ms: 1_764_000_000_000,
        agent_version: "0.1.0".into(),
        kernel: "6.12.8".into(),
        uptime_seconds: 86_400,
        cpu: Some(Cpu {
            model: Some("AMD Ryzen 7 5800X 8-Core Processor".into()),
            logical_cpus: 16,
            load1: 0.42,
            load5: 0.51,
            load15: 0.48,
            utilisation_percent: Some(12.5),
            frequency_hz: Some(3_400_000_000),
            max_frequency_hz: Some(4_850_000_000),
            // Not in snapshot.cbor, which predates the field: absent decodes as empty.
            core_frequencies_hz: vec![],
            temperature_celsius: Some(56.0),
            temperature_source: Some("k10temp Tctl".into()),
            status: Status::Ok,
        }),
        memory: Some(Memory {
            total_bytes: 8_160_437_862,
            used_bytes: 2_576_980_378,
            available_bytes: 5_583_457_484,
            available_estimated: false,
            swap_total_bytes: 4 << 30,
            swap_used_bytes: 0,
            zram: vec![Zram {
                device: "zram0".into(),
                disksize_bytes: 4 << 30,
                original_bytes: 64 << 20,
                compressed_bytes: 1 << 20,
                memory_used_bytes: 2 << 20,
                algorithm: Some("zstd".into()),
            }],
            tmpfs: vec![Tmpfs { mount_point: "/var/log".into(), size_bytes: 512 << 20, used_bytes: 88 << 10 }],
            vm: VmTunables { dirty_ratio: Some(5), dirty_background_ratio: Some(2), swappiness: Some(60) },
            status: Status::Ok,
        }),
        gpus: vec![Gpu {
            id: "00000000:01:00.0".into(),
            vendor: GpuVendor::Nvidia,
            name: "NVIDIA GeForce RTX 3060".into(),
            utilisation_percent: Some(23.0),
            memory_used_bytes: Some(1126 << 20),
            memory_total_bytes: Some(12 << 30),
            temperature_celsius: Some(51.0),
            power_watts: Some(45.5),
            clock_hz: Some(1_777_000_000),
            status: Status::Ok,
        }],
        drives: vec![Drive {
            name: "nvme0n1".into(),
            kind: DriveKind::Disk,
            model: Some("Samsung SSD 980 PRO 1TB".into()),
            capacity_bytes: 1_000_204_886_016,
            rotational: Some(false),
            removable: false,
            members: vec![],
            used_bytes: 412_000_000_000,
            filesystem_bytes: 1_000_000_000_000,
            // Not in snapshot.cbor, which predates the field: absent decodes as None.
            health: None,
            // Not in snapshot.cbor either (1.2).
            worn_out: None,
            status: Status::Warning,
        }],
        filesystems: vec![Filesystem {
            mount_point: "/".into(),
            fstype: "ext4".into(),
            source: "/dev/nvme0n1p2".into(),
            drive: Some("nvme0n1".into()),
            size_bytes: 200_000_000_000,
            used_bytes: 98_000_000_000,
            available_bytes: 102_000_000_000,
            // Not in snapshot.cbor, which predates the field (1.2).
            full: None,
            status: Status::Ok,
        }],
        services: None,
        backups: None,
        // Not in snapshot.cbor, which predates the field: absent decodes as None.
        nixos: None,
        collectors: vec![CollectorReport {
            name: "gpu".into(),
            collected_ms: 1_764_000_000_000,
            duration_us: 5_000_000,
            error: Some("nvidia-smi -q -x: did not finish within 5.0 s and was stopped".into()),
            // Not in snapshot.cbor, which predates the field: absent decodes as None.
            note: None,
        }],
        // Not in snapshot.cbor, which predates 1.3: absent decodes as empty.
        alerts: vec![],
        notifiers: vec![],
    }
}

/// A 1.0 update, as 1.0 agents computed it: `null` for unchanged sections.
fn update() -> SnapshotUpdate {
    let mut cpu = snapshot().cpu.unwrap();
    cpu.load1 = 0.5;
    SnapshotUpdate {
        seq: 43,
        base_seq: 42,
        timestamp_ms: 1_764_000_002_000,
        uptime_seconds: 86_400,
        cpu: Some(Some(cpu)),
        services_present: Some(true),
        services: vec![gitea()],
        ..Default::default()
    }
}

fn gitea() -> Service {
    Service {
        name: "gitea.service".into(),
        active_state: "failed".into(),
        result: "exit-code".into(),
        status: Status::Critical,
        reason: Some("failed (exit-code)".into()),
        ..Default::default()
    }
}

/// A 1.1 patch: a changed load, a section removed (null), a service list
/// patched by index, a filesystem figure within its tolerance left out.
fn patch() -> Patch {
    let mut old = snapshot();
    old.services = Some(vec![Service { name: "gitea.service".into(), ..Default::default() }]);
    let mut next = old.clone();
    next.seq = 43;
    next.timestamp_ms += 2000;
    next.cpu.as_mut().unwrap().load1 = 0.5;
    next.gpus.clear();
    next.memory = None;
    next.filesystems[0].used_bytes += 4096;
    next.services = Some(vec![gitea()]);
    let (old, next) = (ciborium::Value::serialized(&old).unwrap(), ciborium::Value::serialized(&next).unwrap());
    let Some(ciborium::Value::Map(changes)) = cm_proto::patch::diff(&old, &next, false) else { panic!("no patch") };
    Patch { base_seq: 42, changes: changes.into_iter().map(|(k, v)| (k.into_text().unwrap(), v)).collect() }
}

fn cases() -> Vec<(&'static str, Message)> {
    vec![
        ("hello", Message::Hello { major: 1, minor: 0, role: "dashboard".into(), subscribe: true }),
        (
            "welcome",
            Message::Welcome {
                host: "srv01".into(),
                agent_version: "0.1.0".into(),
                major: 1,
                minor: 0,
                interval_ms: 2000,
            },
        ),
        ("refused", Message::Refused { reason: "certificate role 'agent' may not subscribe".into() }),
        ("snapshot", Message::Snapshot(Box::new(snapshot()))),
        ("update", Message::Update(Box::new(update()))),
        ("hello-1.1", Message::Hello { major: 1, minor: 1, role: "dashboard".into(), subscribe: true }),
        ("patch", Message::Patch(Box::new(patch()))),
        (
            "history-request",
            Message::HistoryRequest(HistoryRequest {
                series: vec!["fs.*.used_percent".into(), "cpu.load1".into()],
                from_ms: 1_764_000_000_000,
                to_ms: 1_764_003_600_000,
                resolution: Resolution::Auto,
                max_points: 600,
                events: false,
            }),
        ),
        (
            "history-request-events",
            Message::HistoryRequest(HistoryRequest {
                series: vec![],
                from_ms: 1_764_000_000_000,
                to_ms: 1_764_003_600_000,
                resolution: Resolution::Auto,
                max_points: 0,
                events: true,
            }),
        ),
        (
            "history-events",
            Message::HistoryEvents(HistoryEvents {
                events: vec![AlertEvent {
                    ts_ms: 1_764_000_030_000,
                    rule: "scratch-full".into(),
                    instance: "fs./srv/scratch.used_percent".into(),
                    state: AlertState::Firing,
                    severity: Status::Critical,
                    value: Some(92.5),
                    reason: "used 92.5% (critical at 90%, clears below 40%)".into(),
                }],
            }),
        ),
        (
            "history-chunk",
            Message::HistoryChunk(HistoryChunk {
                series: "fs./.used_percent".into(),
                resolution: Resolution::Minute,
                points: vec![
                    Point { ts_ms: 1_764_000_000_000, min: 41.25, max: 41.5, mean: 41.375, count: 30 },
                    Point { ts_ms: 1_764_000_060_000, min: 41.5, max: 41.5, mean: 41.5, count: 30 },
                ],
            }),
        ),
        (
            "history-chunk-raw",
            Message::HistoryChunk(HistoryChunk {
                series: "cpu.load1".into(),
                resolution: Resolution::Raw,
                points: vec![Point::raw(1_764_000_000_000, 0.5), Point::raw(1_764_000_002_000, 0.75)],
            }),
        ),
        (
            "history-end",
            Message::HistoryEnd(HistoryEnd { series: 2, points: 4, truncated: false, error: None, events: 0 }),
        ),
    ]
}

#[test]
fn golden_files_decode_to_the_same_messages() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/golden");
    let update = std::env::var("CM_UPDATE_GOLDEN").as_deref() == Ok("1");
    for (name, msg) in cases() {
        let path = dir.join(format!("{name}.cbor"));
        if update && !path.exists() {
            std::fs::write(&path, encode(&msg).unwrap()).unwrap();
        }
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (see this file's header)", path.display()));
        assert_eq!(decode(&bytes).unwrap(), msg, "{name}.cbor no longer decodes to the same message");
    }
}

#[test]
fn the_patch_golden_says_what_changed_and_nothing_else() {
    let patch = patch();
    let keys: Vec<&str> = patch.changes.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["seq", "timestamp_ms", "cpu", "memory", "gpus", "services"]);
    let mut held = snapshot();
    held.services = Some(vec![Service { name: "gitea.service".into(), ..Default::default() }]);
    let mut value = ciborium::Value::serialized(&held).unwrap();
    cm_proto::patch::apply(&mut value, &patch.as_map()).unwrap();
    let after: HostSnapshot = value.deserialized().unwrap();
    assert_eq!((after.seq, after.memory.is_none(), after.gpus.len()), (43, true, 0));
    assert_eq!(after.services.unwrap()[0], gitea());
    assert_eq!(after.filesystems[0].used_bytes, held.filesystems[0].used_bytes, "within tolerance: not sent");
}

#[test]
fn a_snapshot_frame_is_small() {
    let frame = cm_proto::frame::encode_frame(&Message::Snapshot(Box::new(snapshot()))).unwrap();
    // Field names travel with every snapshot: keep this one well under 2 kB.
    assert!(frame.len() < 2048, "snapshot frame is {} bytes", frame.len());
}

/// Every row of the tolerance table in docs/PROTOCOL.md says what
/// `cm_proto::patch::tolerance` does, so the document cannot go stale.
#[test]
fn the_protocol_document_lists_the_tolerances_the_code_uses() {
    use cm_proto::patch::{tolerance, Tolerance};
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/PROTOCOL.md")).unwrap();
    let table = doc.split("| field | tolerance |").nth(1).expect("the tolerance table");
    let mut rows = 0;
    for line in table.lines().skip(2).take_while(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        if cells[0] == "everything else" {
            continue;
        }
        // "`cpu.frequency_hz`, `max_frequency_hz`": a short name shares the section of the name before it.
        let names: Vec<&str> = cells[0].split(", ").map(|n| n.trim_matches('`')).collect();
        let mut first: Vec<&str> = names[0].split('.').collect();
        for name in &names {
            let mut path: Vec<&str> = name.split('.').collect();
            const SECTIONS: [&str; 8] =
                ["uptime_seconds", "cpu", "memory", "gpus", "drives", "filesystems", "services", "collectors"];
            if !SECTIONS.contains(&path[0]) {
                path = first[..first.len() - 1].iter().copied().chain(path).collect();
            } else {
                first = path.clone();
            }
            let field = path.last().unwrap();
            let scale = |unit: &str| match unit {
                "MiB" => (1u64 << 20) as f64,
                "MHz" => 1e6,
                "s" if field.ends_with("_ms") => 1000.0,
                "s" if field.ends_with("_usec") => 1e6,
                "ms" if field.ends_with("_us") => 1000.0,
                "" => 1.0,
                other => panic!("{line}: unit {other}"),
            };
            let parse = |text: &str| {
                let (n, unit) = text.split_once(' ').unwrap_or((text, ""));
                n.parse::<f64>().unwrap() * scale(unit)
            };
            let want = match cells[1].split_once(" or ") {
                Some((abs, rel)) => Tolerance::Within {
                    abs: parse(abs),
                    rel: rel.trim_end_matches(" %").parse::<f64>().unwrap() / 100.0,
                },
                None => Tolerance::Within { abs: parse(cells[1]), rel: 0.0 },
            };
            match (tolerance(&path), want) {
                (Tolerance::Within { abs: a, rel: r }, Tolerance::Within { abs: b, rel: s }) => {
                    assert!(
                        (a - b).abs() < 1e-9 * b.max(1.0) && (r - s).abs() < 1e-12,
                        "{name}: code {a} {r}, doc {b} {s}"
                    )
                }
                (got, _) => panic!("{name}: the code says {got:?}"),
            }
            rows += 1;
        }
    }
    assert!(rows >= 30, "read {rows} fields from the table");
}
