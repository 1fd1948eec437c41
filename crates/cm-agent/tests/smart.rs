//! Verdicts drawn from every smartctl capture, with their reasons.

use std::path::{Path, PathBuf};
use std::process::Command;

use cm_agent::Thresholds;
use cm_collect::smart::parse_smartctl_json;
use cm_proto::{DriveHealth, Status};

fn captures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../cm-collect/testdata/smart")
}

fn judged(rel: &str) -> DriveHealth {
    let text = std::fs::read_to_string(captures().join(rel)).unwrap();
    let mut h = parse_smartctl_json(&text).unwrap();
    Thresholds::default().judge_drive(&mut h, None);
    h
}

fn reasons(h: &DriveHealth) -> Vec<(Status, &str)> {
    h.findings.iter().map(|f| (f.status, f.text.as_str())).collect()
}

#[test]
fn pending_sectors_are_critical_and_listed_first() {
    let h = judged("scrutiny/smart-ata-date2.json");
    assert_eq!(h.verdict, Status::Critical);
    assert_eq!(
        reasons(&h),
        [
            (Status::Critical, "10 sectors are unreadable and waiting to be reallocated"),
            (Status::Warning, "10 sectors found unreadable by the offline scan"),
            (Status::Warning, "10 sectors reallocated over the drive's life"),
        ]
    );
}

#[test]
fn media_errors_warn_once_and_are_critical_when_they_grow() {
    let h = judged("scrutiny/smart-nvme-failed.json");
    assert_eq!(h.verdict, Status::Warning);
    assert_eq!(reasons(&h), [(Status::Warning, "7 media errors over the drive's life (critical if the count grows)")]);

    let mut earlier = h.clone();
    earlier.media_errors = Some(5);
    let mut now = h.clone();
    Thresholds::default().judge_drive(&mut now, Some(&earlier));
    assert_eq!(now.verdict, Status::Critical);
    assert_eq!(now.findings[0].text, "media errors grew from 5 to 7: the drive is losing data");
}

#[test]
fn wear_at_70_percent_is_a_warning() {
    let h = judged("smartctl_exporter/nvme-null-INTEL_SSDPE2KX020T7-nvme6.json");
    assert_eq!(h.verdict, Status::Warning);
    assert_eq!(reasons(&h), [(Status::Warning, "75% of rated endurance used (NVMe percentage_used)")]);
    let h = judged("smartctl_exporter/nvme-null-MTFDHAX1T6MCE-1AN1ZABYY-nvme0.json");
    assert_eq!(h.wear_percent, Some(69.0));
    assert_eq!(h.verdict, Status::Ok, "69% is under the default 70%");
    let mut strict = Thresholds::default();
    strict.drive_wear_percent.warning = 60.0;
    let mut h = h.clone();
    strict.judge_drive(&mut h, None);
    assert_eq!(h.verdict, Status::Warning, "the threshold is configurable");
}

#[test]
fn the_drives_own_temperature_limit_wins() {
    // 61 C on an NVMe drive whose own warning limit is 100 C.
    let h = judged("beszel/nvme0.json");
    assert_eq!(h.verdict, Status::Ok);
    let mut hot = h.clone();
    hot.temperature_celsius = Some(101.0);
    Thresholds::default().judge_drive(&mut hot, None);
    assert_eq!(reasons(&hot), [(Status::Warning, "101 C is at or above the drive's limit of 100 C")]);
    // A drive without limits of its own is held to the configured 70 C.
    let mut plain = judged("scrutiny/smart-nvme.json");
    plain.temperature_celsius = Some(72.0);
    Thresholds::default().judge_drive(&mut plain, None);
    assert_eq!(reasons(&plain), [(Status::Warning, "72 C is at or above the configured limit of 70 C")]);
}

#[test]
fn a_past_error_is_reported_with_when_and_is_not_a_failure() {
    let h = judged("smartctl_exporter/sat-Western_Digital_Ultrastar_DC_HC550-WDC__WUH721816ALE6L4-sdx.json");
    assert_eq!(h.verdict, Status::Ok);
    assert_eq!(
        reasons(&h),
        [(Status::Ok, "1 error in the drive's error log, the last at power-on hour 1762 (18355 hours ago)")]
    );
    let old = judged("smartctl_exporter/ST3200820AS_16.json");
    assert_eq!(old.verdict, Status::Ok);
    assert!(old.findings[0].text.ends_with("the last at power-on hour 7042 (the log counts hours modulo 65536)"));
}

#[test]
fn failed_self_assessment_and_critical_warning_bits_are_critical() {
    // No capture here has a failing self-assessment; set it on a real reading.
    let mut h = judged("scrutiny/smart-nvme.json");
    h.smart_passed = Some(false);
    h.critical_warning = Some(0b0000_0101);
    Thresholds::default().judge_drive(&mut h, None);
    assert_eq!(h.verdict, Status::Critical);
    let texts: Vec<_> = h.findings.iter().map(|f| f.text.as_str()).collect();
    assert!(texts.contains(&"the drive's SMART self-assessment says FAILED: back up and replace it"));
    assert!(texts.contains(&"NVMe critical warning: available spare is below its threshold"));
    assert!(texts.contains(&"NVMe critical warning: reliability is degraded by media or internal errors"));
}

#[test]
fn an_unreadable_drive_is_unknown_with_smartctls_words() {
    let h = judged("scrutiny/smart-fail.json");
    assert_eq!(h.verdict, Status::Unknown);
    assert!(h.findings[0].text.starts_with("could not read SMART data: Smartctl open device: /dev/sda failed"));
}

#[test]
fn a_bridge_that_passes_no_smart_is_unknown_with_the_reason() {
    let h = judged("scrutiny/smart-raid.json");
    assert_eq!(h.verdict, Status::Unknown, "not a healthy drive: nothing about its health came through");
    assert_eq!(h.model.as_deref(), Some("Intel Raid 1 Volume"));
    assert_eq!(h.findings.len(), 1);
    assert!(
        h.findings[0].text.starts_with("could not read SMART data: not readable through this bridge"),
        "{}",
        h.findings[0].text
    );
}

#[test]
fn an_error_of_unknown_age_is_not_dated_from_hour_0() {
    // A real log, its entries' power-on hours set to 0 in memory, as drives
    // that record no hour write them.
    let rel = "smartctl_exporter/sat-Toshiba_MG05ACA..._Enterprise_Capacity_HDD-TOSHIBA_MG05ACA800E-sdw.json";
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(captures().join(rel)).unwrap()).unwrap();
    for entry in doc["ata_smart_error_log"]["summary"]["table"].as_array_mut().unwrap() {
        entry["lifetime_hours"] = 0.into();
    }
    let mut h = parse_smartctl_json(&doc.to_string()).unwrap();
    Thresholds::default().judge_drive(&mut h, None);
    assert_eq!(h.power_on_hours, Some(37603));
    assert_eq!(
        reasons(&h),
        [(Status::Ok, "2 errors in the drive's error log, the last of unknown age (the log gives no power-on hour)")]
    );
}

#[test]
fn a_sas_drive_is_judged_on_its_environmental_temperature() {
    let path = captures().join("../smart-handwritten/sas-environmental-temperature.json");
    let mut h = parse_smartctl_json(&std::fs::read_to_string(path).unwrap()).unwrap();
    h.temperature_celsius = h.temperature_celsius.map(|_| 72.0);
    Thresholds::default().judge_drive(&mut h, None);
    assert_eq!(reasons(&h), [(Status::Warning, "72 C is at or above the configured limit of 70 C")]);
}

#[test]
fn a_virtual_disk_without_smart_is_fine() {
    let h = judged("own/virtio-vda.json");
    assert_eq!(h.verdict, Status::Ok);
    assert_eq!(reasons(&h), [(Status::Ok, "no SMART data: /dev/vda: Unable to detect device type")]);
}

/// One line per capture: what was read and the verdict with its first reason.
/// Reviewed once by hand; any change in parsing or judging shows up here.
#[test]
fn every_capture_judged() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(captures())
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).into_iter().flatten())
        .map(|f| f.unwrap().path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("json"))
        .collect();
    files.sort();
    let mut out = String::new();
    for path in &files {
        let rel = path.strip_prefix(captures()).unwrap_or(Path::new("")).display().to_string();
        let text = std::fs::read_to_string(path).unwrap();
        if text.contains("\"devices\"") {
            continue; // `smartctl --scan` output
        }
        let mut h = parse_smartctl_json(&text).unwrap();
        Thresholds::default().judge_drive(&mut h, None);
        let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
        out.push_str(&format!(
            "{rel}\n  {} {} | wear {} | {} | {} h | {}{}\n",
            if h.protocol.is_empty() { "?" } else { &h.protocol },
            opt(h.model.clone()),
            opt(h.wear_percent.map(|w| format!("{w:.0}%"))),
            opt(h.temperature_celsius.map(|t| format!("{t:.0} C"))),
            opt(h.power_on_hours.map(|p| p.to_string())),
            h.verdict.label(),
            h.findings.first().map(|f| format!(": {}", f.text)).unwrap_or_default(),
        ));
    }
    insta::assert_snapshot!(out);
}

#[test]
fn inspect_smart_prints_the_verdict_as_json() {
    let file = captures().join("scrutiny/smart-ata-date2.json");
    let out = Command::new(env!("CARGO_BIN_EXE_cm-agent")).args(["inspect", "smart"]).arg(&file).output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verdict"], "critical");
    assert_eq!(v["pending_sectors"], 10);
    assert_eq!(v["findings"][0]["text"], "10 sectors are unreadable and waiting to be reallocated");

    let out = Command::new(env!("CARGO_BIN_EXE_cm-agent"))
        .args(["inspect", "smart", "/nonexistent/x.json"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("reading /nonexistent/x.json"));
}
