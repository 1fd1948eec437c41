mod common;

use std::time::Duration;

use cm_collect::smart::{parse_smartctl_json, read_drive, Smartctl};
use common::*;

fn drive(rel: &str) -> cm_proto::DriveHealth {
    parse_smartctl_json(&read(&format!("smart/{rel}"))).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn nvme_smartctl_7_5() {
    let h = drive("beszel/nvme0.json");
    assert_eq!(h.protocol, "NVMe");
    assert_eq!(h.model.as_deref(), Some("PELADN 512GB"));
    assert_eq!(h.serial.as_deref(), Some("2024031600129"));
    assert_eq!(h.firmware.as_deref(), Some("VC2S038E"));
    assert_eq!(h.capacity_bytes, Some(512_110_190_592));
    assert_eq!(h.smart_passed, Some(true));
    assert_eq!(h.temperature_celsius, Some(61.0));
    assert_eq!((h.temperature_limit_celsius, h.temperature_critical_celsius), (Some(100.0), Some(110.0)));
    assert_eq!(h.power_on_hours, Some(4399));
    assert_eq!(h.wear_percent, Some(0.0));
    assert_eq!(h.wear_source.as_deref(), Some("NVMe percentage_used"));
    assert_eq!(h.data_read_bytes, Some(6_573_104 * 512_000));
    assert_eq!(h.data_written_bytes, Some(16_040_567 * 512_000));
    assert_eq!((h.available_spare_percent, h.available_spare_threshold_percent), (Some(100.0), Some(32.0)));
    assert_eq!((h.media_errors, h.critical_warning), (Some(0), Some(0)));
    assert_eq!(h.error, None);
}

#[test]
fn nvme_with_media_errors_smartctl_7_0() {
    let h = drive("scrutiny/smart-nvme-failed.json");
    assert_eq!(h.model.as_deref(), Some("Samsung SSD 970 EVO 500GB"));
    assert_eq!((h.media_errors, h.unsafe_shutdowns), (Some(7), Some(10)));
    assert_eq!((h.wear_percent, h.power_on_hours), (Some(3.0), Some(12798)));
    assert_eq!(h.available_spare_percent, Some(99.0));
}

#[test]
fn worn_nvme() {
    let h = drive("smartctl_exporter/nvme-null-INTEL_SSDPE2KX020T7-nvme6.json");
    assert_eq!((h.wear_percent, h.power_on_hours, h.temperature_celsius), (Some(75.0), Some(49441), Some(19.0)));
    assert_eq!(h.capacity_bytes, Some(2_000_398_934_016));
}

#[test]
fn failing_hdd_with_pending_and_reallocated_sectors() {
    let h = drive("scrutiny/smart-ata-date2.json");
    assert_eq!(h.model.as_deref(), Some("WDC WD140EDFZ-11A0VA0"));
    assert_eq!(h.protocol, "ATA");
    assert_eq!((h.reallocated_sectors, h.pending_sectors, h.offline_uncorrectable), (Some(10), Some(10), Some(10)));
    assert_eq!(h.temperature_celsius, Some(62.0));
    assert_eq!(h.wear_percent, None, "a spinning disk has no wear figure");
}

#[test]
fn sata_ssd_wear_from_device_statistics_agrees_with_the_samsung_attribute() {
    let h = drive("scrutiny/smart-ata-full.json");
    assert_eq!(h.rotation_rpm, Some(0));
    assert_eq!(h.interface.as_deref(), Some("SATA 6.0 Gb/s"));
    // Device statistics say 19; attribute 177 Wear_Leveling_Count has normalized value 81.
    assert_eq!(h.wear_percent, Some(19.0));
    assert_eq!(h.wear_source.as_deref(), Some("ATA device statistics: Percentage Used Endurance Indicator"));
    assert_eq!((h.temperature_celsius, h.temperature_limit_celsius), (Some(36.0), Some(70.0)));
}

#[test]
fn vendor_wear_attributes() {
    let intel =
        drive("smartctl_exporter/sat-Intel_730_and_DC_S35x0_3610_3700_Series_SSDs-INTEL_SSDSC2BB240G7-sdg.json");
    assert_eq!(intel.wear_percent, Some(57.0), "233 Media_Wearout_Indicator 43");
    assert_eq!(
        intel.wear_source.as_deref(),
        Some("ATA attribute 233 Media_Wearout_Indicator (100 - normalized value)")
    );
    let kingston = drive("smartctl_exporter/sat-Phison_Driven_SSDs-KINGSTON_SA400M8120G-sda.json");
    assert_eq!(kingston.wear_percent, Some(2.0), "231 SSD_Life_Left 98");
    let micron = drive("smartctl_exporter/sat-Micron_5100_Pro___52x0___5300_SSDs-Micron_5300_MTFDDAK1T9TDS-sda.json");
    assert_eq!(micron.wear_percent, Some(0.0), "202 Percent_Lifetime_Remain 100");
    // Attribute 202 on a Seagate disk is Data_Address_Mark_Errs, not wear.
    let seagate = drive("smartctl_exporter/ST3200820AS_16.json");
    assert_eq!(seagate.wear_percent, None);
    assert_eq!((seagate.logged_errors, seagate.last_error_hour), (Some(98), Some(7042)));
    assert_eq!(seagate.power_on_hours, Some(100161));
}

#[test]
fn sas_drive_grown_defects_and_trip_temperature() {
    let h = drive("scrutiny_starosdev_fork/smart-scsi-failed.json");
    assert_eq!(h.model.as_deref(), Some("SEAGATE ST4000NM0043"));
    assert_eq!(h.reallocated_sectors, Some(5));
    assert_eq!((h.temperature_celsius, h.temperature_limit_celsius), (Some(34.0), Some(68.0)));
    assert_eq!(h.power_on_hours, Some(43549));
}

fn capture_json(rel: &str) -> serde_json::Value {
    serde_json::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn sas_temperature_from_the_environmental_reports_when_the_temperature_page_says_0() {
    let rel = "smart-handwritten/sas-environmental-temperature.json";
    let h = parse_smartctl_json(&read(rel)).unwrap();
    assert_eq!(h.model.as_deref(), Some("WDC WUH721818AL5204"));
    assert_eq!(h.temperature_celsius, Some(38.0), "temperature.current is 0: the environmental report has it");
    assert_eq!(h.temperature_limit_celsius, None, "a 0 C trip point is no limit");
    // smartctl writes "unknown" where the drive marks a reading as not available.
    let mut doc = capture_json(rel);
    doc["scsi_environmental_reports"]["temperature_1"]["current"] = "unknown".into();
    assert_eq!(parse_smartctl_json(&doc.to_string()).unwrap().temperature_celsius, None);
    // A SAS capture with a reading in the temperature page keeps it.
    assert_eq!(drive("netdata/type-scsi__device-sda.json").temperature_celsius, Some(34.0));
}

#[test]
fn a_bridge_that_passes_no_smart_is_unreadable_with_the_identity_kept() {
    // An Intel RAID volume: smartctl exits with bit 2 set and gives only the identity.
    let raid = drive("scrutiny/smart-raid.json");
    assert_eq!(raid.model.as_deref(), Some("Intel Raid 1 Volume"));
    assert_eq!(raid.capacity_bytes, Some(1_000_202_043_392));
    assert_eq!((raid.smart_passed, raid.temperature_celsius), (None, None));
    let error = raid.error.expect("a drive whose SMART did not come through is not a healthy drive");
    assert!(error.starts_with("not readable through this bridge") && error.contains("status 4"), "{error}");
    assert_eq!(raid.unsupported, None);
    // A SATA disk asked through the SCSI layer: smartctl's own words are kept.
    let hitachi = drive("scrutiny_starosdev_fork/smartctl_info_hitachi_autodetect.json");
    assert_eq!(hitachi.model.as_deref(), Some("Hitachi HDS723030ALA640"));
    assert!(hitachi.error.unwrap().ends_with("smartctl said: Device does not support SMART"));
    // Exit bit 2 with SMART data (a command failed, the rest came through) is read as usual.
    let kingston = drive("smartctl_exporter/sat-Phison_Driven_SSDs-KINGSTON_SA400M8120G-sda.json");
    assert_eq!((kingston.error, kingston.temperature_celsius), (None, Some(38.0)));
}

#[test]
fn data_written_is_counted_in_the_unit_smartctl_names() {
    const GIB: u64 = 1 << 30;
    // 241 Lifetime_Writes_GiB = 398; 233 on this drive is Flash_Writes_GiB, the flash's writes.
    let kingston = drive("smartctl_exporter/sat-Phison_Driven_SSDs-KINGSTON_SA400M8120G-sda.json");
    assert_eq!(kingston.data_written_bytes, Some(398 * GIB));
    let intel = drive("smartctl_exporter/sat-Intel_S4510_S4610_S4500_S4600_Series_SSDs-INTEL_SSDSC2KB240G8-sdc.json");
    assert_eq!(intel.data_written_bytes, Some(2_575_247 * (32 << 20)), "241 Host_Writes_32MiB");
    let seagate = drive("smartctl_exporter/ST3500418AS_11.json");
    assert_eq!(seagate.data_written_bytes, Some(543_343_366 * 512), "241 Total_LBAs_Written");
    // The device statistics count logical sectors, whatever the vendor attributes say.
    let samsung = drive("scrutiny/smart-ata-full.json");
    assert_eq!(samsung.data_written_bytes, Some(64_777_770_148 * 512));
    assert_eq!(samsung.data_read_bytes, Some(34_909_544_344 * 512));
}

#[test]
fn vendor_attributes_of_a_drive_unknown_to_smartctls_database_are_not_read() {
    // smartctl prints its default names here (177 Wear_Leveling_Count, 241
    // Total_LBAs_Written): they say nothing about what this drive counts.
    let ssd = drive("smartctl_exporter/sat-null-SAMSUNG_MZ7L3480HCHQ-00A07-sda.json");
    assert_eq!(
        capture_json("smart/smartctl_exporter/sat-null-SAMSUNG_MZ7L3480HCHQ-00A07-sda.json")["in_smartctl_database"],
        false
    );
    assert_eq!((ssd.wear_percent, ssd.wear_source, ssd.data_written_bytes), (None, None, None));
    let hdd = drive("smartctl_exporter/sat-null-ST8000NM017B-2TJ103-sda.json");
    assert_eq!(hdd.data_written_bytes, None);
    // What every drive reports the same way is still read.
    assert_eq!((ssd.temperature_celsius, ssd.power_on_hours), (Some(29.0), Some(10786)));
    assert_eq!(hdd.reallocated_sectors, Some(0));
}

#[test]
fn an_error_log_that_records_hour_0_for_every_entry_gives_no_hour() {
    let rel = "smart/smartctl_exporter/sat-Toshiba_MG05ACA..._Enterprise_Capacity_HDD-TOSHIBA_MG05ACA800E-sdw.json";
    let real = parse_smartctl_json(&read(rel)).unwrap();
    assert_eq!((real.logged_errors, real.last_error_hour), (Some(2), Some(36208)));
    // The same log from a drive that writes 0 as every entry's power-on hour
    // (changed here, in memory, on the real capture).
    let mut doc = capture_json(rel);
    for entry in doc["ata_smart_error_log"]["summary"]["table"].as_array_mut().unwrap() {
        entry["lifetime_hours"] = 0.into();
    }
    let zeros = parse_smartctl_json(&doc.to_string()).unwrap();
    assert_eq!((zeros.logged_errors, zeros.last_error_hour), (Some(2), None));
}

#[test]
fn smartctl_that_could_not_open_the_device() {
    let h = drive("scrutiny/smart-fail.json");
    assert_eq!(
        h.error.as_deref(),
        Some("Smartctl open device: /dev/sda failed: \\\\.\\PhysicalDrive0: Open failed, Error=5")
    );
    assert_eq!(h.model, None);
}

#[test]
fn a_virtual_disk_has_no_smart_and_that_is_not_an_error() {
    let h = drive("own/virtio-vda.json");
    assert_eq!(h.unsupported.as_deref(), Some("/dev/vda: Unable to detect device type"));
    assert_eq!(h.error, None);
}

#[test]
fn every_capture_parses() {
    let mut count = 0;
    for dir in std::fs::read_dir(testdata("smart")).unwrap() {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&dir).unwrap() {
            let path = file.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let h = parse_smartctl_json(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let is_scan = text.contains("\"devices\"");
            let has_data = h.model.is_some() || h.smart_passed.is_some() || h.temperature_celsius.is_some();
            let explained = h.error.is_some() || h.unsupported.is_some();
            assert!(is_scan || explained || has_data, "{}: no data and no error", path.display());
            count += 1;
        }
    }
    assert_eq!(count, 167);
}

#[test]
fn garbage_is_a_parse_error() {
    assert!(parse_smartctl_json("").is_err());
    assert!(parse_smartctl_json("[1, 2]").is_err());
    assert!(parse_smartctl_json("{\"hello\": 1}").unwrap_err().message.contains("not smartctl --json output"));
    let err = parse_smartctl_json("{\"smartctl\": {\n\"version\": [7, 3],\n").unwrap_err();
    assert_eq!(err.line, 3);
}

fn fake_smartctl(name: &str, script: &str) -> Smartctl {
    Smartctl { program: fake_tool(name, "smartctl", script), timeout: Duration::from_millis(500) }
}

#[test]
fn fake_smartctl_that_hangs_fails_prints_garbage_or_is_missing() {
    let h = read_drive(&fake_smartctl("smart-hang", "sleep 30"), "sda").unwrap();
    assert!(h.error.as_deref().unwrap().contains("did not finish within 0.5 s"), "{h:?}");

    let h = read_drive(&fake_smartctl("smart-garbage", "echo 'Segmentation fault' >&2; echo '{{{'; exit 139"), "sda")
        .unwrap();
    let error = h.error.unwrap();
    assert!(error.contains("not its JSON report") && error.contains("Segmentation fault"), "{error}");

    // A failing drive: smartctl exits with bits set and prints perfectly good JSON.
    let capture = testdata("smart/scrutiny/smart-ata-date2.json");
    let h = read_drive(&fake_smartctl("smart-exit", &format!("cat '{}'; exit 24", capture.display())), "sda").unwrap();
    assert_eq!((h.pending_sectors, h.error), (Some(10), None));

    let err =
        read_drive(&Smartctl { program: "/nonexistent/smartctl".into(), ..Default::default() }, "sda").unwrap_err();
    assert!(err.to_string().contains("install smartmontools"), "{err}");
}

#[test]
fn the_drive_is_asked_without_waking_it() {
    let h = read_drive(
        &fake_smartctl(
            "smart-args",
            "echo \"{\\\"smartctl\\\": {\\\"argv\\\": \\\"$*\\\"}, \\\"model_name\\\": \\\"$*\\\"}\"",
        ),
        "sdb",
    )
    .unwrap();
    assert_eq!(h.model.as_deref(), Some("--json=c -x -n standby /dev/sdb"));
}
