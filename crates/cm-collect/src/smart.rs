//! SMART and NVMe health from `smartctl --json`.
//!
//! [`parse_smartctl_json`] is a pure parser for smartctl 6.7 to 7.5 layouts
//! (ATA, NVMe, SCSI); [`SmartCollector`] runs smartctl per drive with a time
//! limit and never wakes a spun-down disk. The verdict is drawn elsewhere
//! (`cm_agent::status`), from the figures parsed here.

use std::time::Duration;

use cm_proto::DriveHealth;
use serde_json::Value;

use crate::command::{self, RunError};
use crate::error::{CollectError, ParseError};

/// Bytes in one NVMe "data unit" (1000 sectors of 512 bytes).
const NVME_DATA_UNIT_BYTES: u64 = 512_000;

/// ATA attributes that report endurance as a normalized value counting down
/// from 100, by id and the name smartctl's drive database gives them. The id
/// alone is not enough: vendors reuse ids (202 is `Data_Address_Mark_Errs` on
/// Seagate disks, 233 counts GiB written to flash on Phison drives).
const ATA_WEAR_ATTRIBUTES: &[(u64, &str)] = &[
    (177, "Wear_Leveling_Count"),     // Samsung
    (233, "Media_Wearout_Indicator"), // Intel
    (202, "Percent_Lifetime_Remain"), // Micron / Crucial
    (231, "SSD_Life_Left"),           // Kingston / Phison, SandForce
];

/// What one unit of an ATA attribute that counts data the host wrote is, by
/// the name smartctl's drive database gives it. `None`: one logical sector.
/// Names that count flash writes (`Flash_Writes_GiB`, `NAND_Writes_1GiB`) are
/// not here: the drive writes more than the host does.
const ATA_HOST_WRITES_ATTRIBUTES: &[(&str, Option<u64>)] = &[
    ("Total_LBAs_Written", None),
    ("Total_Host_LBA_Written", None),
    ("Host_Writes_MiB", Some(1 << 20)),
    ("Host_Writes_32MiB", Some(32 << 20)),
    ("Host_Writes_GiB", Some(1 << 30)),
    ("Lifetime_Writes_GiB", Some(1 << 30)),
    ("Total_Writes_GiB", Some(1 << 30)),
];

fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

fn u64_at(v: &Value, path: &[&str]) -> Option<u64> {
    get(v, path)?.as_u64()
}

fn f64_at(v: &Value, path: &[&str]) -> Option<f64> {
    get(v, path)?.as_f64()
}

fn str_at(v: &Value, path: &[&str]) -> Option<String> {
    let s = get(v, path)?.as_str()?.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

/// One ATA attribute: normalized value, raw value and `when_failed`.
struct Attribute<'a> {
    id: u64,
    name: &'a str,
    value: Option<u64>,
    raw: Option<u64>,
    when_failed: &'a str,
}

fn ata_attributes(doc: &Value) -> Vec<Attribute<'_>> {
    let Some(table) = get(doc, &["ata_smart_attributes", "table"]).and_then(Value::as_array) else {
        return Vec::new();
    };
    table
        .iter()
        .filter_map(|a| {
            Some(Attribute {
                id: a.get("id")?.as_u64()?,
                name: a.get("name").and_then(Value::as_str).unwrap_or(""),
                value: a.get("value").and_then(Value::as_u64),
                raw: u64_at(a, &["raw", "value"]),
                when_failed: a.get("when_failed").and_then(Value::as_str).unwrap_or(""),
            })
        })
        .collect()
}

/// smartctl messages that mean the device has no SMART data to give, as
/// opposed to a drive that could not be read.
const UNSUPPORTED: &[&str] = &["Unable to detect device type", "Unknown USB bridge", "Device does not support SMART"];

/// Parses one `smartctl --json` document (`-a`, `-x` or `--info --health`).
///
/// A document that only carries smartctl's error messages (device could not
/// be opened, permission denied, spun down) is not a parse error: it becomes
/// a [`DriveHealth`] with `error` or `standby` set.
pub fn parse_smartctl_json(text: &str) -> Result<DriveHealth, ParseError> {
    let doc: Value =
        serde_json::from_str(text).map_err(|e| ParseError::new(e.line(), format!("not smartctl JSON: {e}")))?;
    if !doc.is_object() {
        return Err(ParseError::new(1, "expected a JSON object from smartctl"));
    }
    if doc.get("smartctl").is_none() && doc.get("device").is_none() {
        return Err(ParseError::new(1, "no \"smartctl\" or \"device\" section: not smartctl --json output"));
    }
    let mut h =
        DriveHealth { protocol: str_at(&doc, &["device", "protocol"]).unwrap_or_default(), ..Default::default() };

    let messages: Vec<(String, String)> = get(&doc, &["smartctl", "messages"])
        .and_then(Value::as_array)
        .map(|m| {
            m.iter()
                .filter_map(|m| Some((str_at(m, &["severity"]).unwrap_or_default(), str_at(m, &["string"])?)))
                .collect()
        })
        .unwrap_or_default();
    h.standby = messages.iter().any(|(_, s)| s.contains("STANDBY") || s.contains("SLEEP"));

    h.model = str_at(&doc, &["model_name"]).or_else(|| {
        let vendor = str_at(&doc, &["scsi_vendor"]).or_else(|| str_at(&doc, &["vendor"]));
        let product = str_at(&doc, &["scsi_product"]).or_else(|| str_at(&doc, &["product"]));
        match (vendor, product) {
            (Some(v), Some(p)) => Some(format!("{v} {p}")),
            (v, p) => v.or(p),
        }
    });
    h.serial = str_at(&doc, &["serial_number"]);
    h.firmware = str_at(&doc, &["firmware_version"]).or_else(|| str_at(&doc, &["revision"]));
    h.capacity_bytes = u64_at(&doc, &["user_capacity", "bytes"])
        .or_else(|| u64_at(&doc, &["user_capacity"]))
        .or_else(|| u64_at(&doc, &["nvme_total_capacity"]));
    h.rotation_rpm = u64_at(&doc, &["rotation_rate"]).map(|r| r as u32);
    h.interface = str_at(&doc, &["interface_speed", "current", "string"])
        .or_else(|| str_at(&doc, &["interface_speed", "max", "string"]))
        .map(|s| format!("SATA {s}"))
        .or_else(|| str_at(&doc, &["scsi_transport_protocol", "name"]));
    h.smart_passed = get(&doc, &["smart_status", "passed"]).and_then(Value::as_bool);
    // RAID volumes and some USB bridges report 0 C and a 0 C trip point: no reading.
    let real = |t: f64| t > 0.0;
    h.temperature_celsius = f64_at(&doc, &["temperature", "current"])
        .or_else(|| f64_at(&doc, &["nvme_smart_health_information_log", "temperature"]))
        .filter(|t| real(*t))
        .or_else(|| scsi_environmental_temperature(&doc).filter(|t| real(*t)));
    h.temperature_limit_celsius = f64_at(&doc, &["temperature", "op_limit_max"])
        .or_else(|| f64_at(&doc, &["nvme_composite_temperature_threshold", "warning"]))
        .or_else(|| f64_at(&doc, &["temperature", "drive_trip"]))
        .filter(|t| real(*t));
    h.temperature_critical_celsius = f64_at(&doc, &["temperature", "critical_limit_max"])
        .or_else(|| f64_at(&doc, &["nvme_composite_temperature_threshold", "critical"]))
        .or_else(|| f64_at(&doc, &["temperature", "limit_max"]))
        .filter(|t| real(*t));
    h.power_on_hours = u64_at(&doc, &["power_on_time", "hours"]);

    if let Some(log) = doc.get("nvme_smart_health_information_log") {
        let n = |k: &str| u64_at(log, &[k]);
        h.critical_warning = n("critical_warning").map(|v| v as u8);
        h.available_spare_percent = n("available_spare").map(|v| v as f64);
        h.available_spare_threshold_percent = n("available_spare_threshold").map(|v| v as f64);
        h.data_read_bytes = n("data_units_read").map(|u| u * NVME_DATA_UNIT_BYTES);
        h.data_written_bytes = n("data_units_written").map(|u| u * NVME_DATA_UNIT_BYTES);
        h.media_errors = n("media_errors");
        h.unsafe_shutdowns = n("unsafe_shutdowns");
        h.power_on_hours = h.power_on_hours.or(n("power_on_hours"));
        if let Some(used) = n("percentage_used") {
            h.wear_percent = Some(used as f64);
            h.wear_source = Some("NVMe percentage_used".into());
        }
    }
    if h.wear_percent.is_none() {
        if let Some(used) = f64_at(&doc, &["endurance_used", "current_percent"]) {
            h.wear_percent = Some(used);
            h.wear_source = Some("endurance_used".into());
        }
    }
    if h.available_spare_percent.is_none() {
        h.available_spare_percent = f64_at(&doc, &["spare_available", "current_percent"]);
        h.available_spare_threshold_percent = f64_at(&doc, &["spare_available", "threshold_percent"]);
    }

    let attrs = ata_attributes(&doc);
    // A vendor attribute's name says what it counts only when smartctl's drive
    // database knows the drive; otherwise smartctl prints its default names
    // (241 Total_LBAs_Written, 233 Media_Wearout_Indicator) whatever the drive
    // puts there, and the figure stays unknown.
    let named_by_drivedb = get(&doc, &["in_smartctl_database"])
        .and_then(Value::as_bool)
        .unwrap_or_else(|| doc.get("model_family").is_some());
    let sector_bytes = u64_at(&doc, &["logical_block_size"]).unwrap_or(512);
    let raw = |ids: &[u64]| attrs.iter().find(|a| ids.contains(&a.id)).and_then(|a| a.raw);
    if !attrs.is_empty() {
        h.reallocated_sectors = raw(&[5]);
        h.pending_sectors = raw(&[197]);
        h.offline_uncorrectable = raw(&[198]);
        h.unsafe_shutdowns = h.unsafe_shutdowns.or_else(|| {
            attrs.iter().find(|a| a.name == "Unsafe_Shutdown_Count" || a.name == "Unexpect_Power_Loss_Ct")?.raw
        });
    }
    h.data_read_bytes =
        h.data_read_bytes.or_else(|| ata_device_statistic(&doc, "Logical Sectors Read")?.checked_mul(sector_bytes));
    if h.data_written_bytes.is_none() {
        h.data_written_bytes = ata_device_statistic(&doc, "Logical Sectors Written")
            .and_then(|n| n.checked_mul(sector_bytes))
            .or_else(|| named_by_drivedb.then(|| ata_host_writes(&attrs, sector_bytes)).flatten());
    }
    if h.wear_percent.is_none() && h.rotation_rpm == Some(0) {
        if let Some(used) = ata_device_statistics_endurance(&doc) {
            h.wear_percent = Some(used);
            h.wear_source = Some("ATA device statistics: Percentage Used Endurance Indicator".into());
        } else if let Some((a, value)) =
            ATA_WEAR_ATTRIBUTES.iter().filter(|_| named_by_drivedb).find_map(|(id, name)| {
                attrs.iter().find(|a| a.id == *id && a.name == *name).and_then(|a| Some((a, a.value?)))
            })
        {
            h.wear_percent = Some(100u64.saturating_sub(value) as f64);
            h.wear_source = Some(format!("ATA attribute {} {} (100 - normalized value)", a.id, a.name));
        }
    }
    h.reallocated_sectors = h.reallocated_sectors.or_else(|| u64_at(&doc, &["scsi_grown_defect_list"]));

    // smartctl 7.x names the error log count under summary (-a) or extended (-x).
    h.logged_errors = u64_at(&doc, &["ata_smart_error_log", "extended", "count"])
        .or_else(|| u64_at(&doc, &["ata_smart_error_log", "summary", "count"]));
    // Some drives write 0 for the power-on hour of every entry: that is no hour.
    h.last_error_hour = ["extended", "summary"]
        .iter()
        .find_map(|kind| {
            let table = get(&doc, &["ata_smart_error_log", kind, "table"])?.as_array()?;
            table.iter().filter_map(|e| u64_at(e, &["lifetime_hours"])).max()
        })
        .filter(|hour| *hour > 0);

    for a in attrs.iter() {
        let label = format!("{} {}", a.id, a.name);
        match a.when_failed {
            "now" => h.attributes_failing_now.push(label),
            "past" | "In_the_past" => h.attributes_failed_in_past.push(label),
            _ => {}
        }
    }

    let has_data = h.model.is_some() || h.smart_passed.is_some() || h.temperature_celsius.is_some();
    h.unsupported = messages
        .iter()
        .find(|(_, s)| UNSUPPORTED.iter().any(|u| s.contains(u)))
        .map(|(_, s)| s.clone())
        .filter(|_| !has_data);
    let code = u64_at(&doc, &["smartctl", "exit_status"]).unwrap_or(0);
    let errors: Vec<&str> = messages.iter().filter(|(sev, _)| sev == "error").map(|(_, s)| s.as_str()).collect();
    let said = if errors.is_empty() { String::new() } else { format!("; smartctl said: {}", errors.join("; ")) };
    if !has_data && !h.standby && h.unsupported.is_none() {
        h.error = Some(if errors.is_empty() {
            format!("smartctl reported no device data (exit status {code})")
        } else {
            errors.join("; ")
        });
    } else if code & EXIT_DEVICE_COMMAND_FAILED != 0 && !h.standby && !has_smart_data(&doc, &h) {
        // The device answered who it is, and nothing else came through: a USB
        // bridge or RAID controller that passes no SMART commands.
        h.error = Some(format!(
            "not readable through this bridge (a USB adapter or RAID controller); smartctl got the device's \
             identity only and exited with status {code}, a command to the device failed{said}"
        ));
    }
    Ok(h)
}

/// smartctl's exit status bit 2: "Some SMART or other ATA command to the disk
/// failed, or there was a checksum error in a SMART data structure".
const EXIT_DEVICE_COMMAND_FAILED: u64 = 1 << 2;

/// True when the report carries anything SMART measures or judges, beyond
/// the device's identity.
fn has_smart_data(doc: &Value, h: &DriveHealth) -> bool {
    h.smart_passed.is_some()
        || h.temperature_celsius.is_some()
        || h.power_on_hours.is_some()
        || h.reallocated_sectors.is_some()
        || h.wear_percent.is_some()
        || get(doc, &["ata_smart_attributes", "table"]).and_then(Value::as_array).is_some_and(|t| !t.is_empty())
        || doc.get("nvme_smart_health_information_log").is_some()
}

/// The drive's own temperature from the SCSI environmental reporting log page
/// (`scsi_environmental_reports.temperature_N.current`, smartctl 7.3 and
/// later), which some SAS drives fill instead of the temperature log page.
/// The lowest-numbered report is the drive's own; a reading the drive marks
/// as unknown is a string in smartctl's JSON, and no figure.
fn scsi_environmental_temperature(doc: &Value) -> Option<f64> {
    let reports = doc.get("scsi_environmental_reports")?.as_object()?;
    let (_, report) = reports
        .iter()
        .filter_map(|(key, report)| Some((key.strip_prefix("temperature_")?.parse::<u32>().ok()?, report)))
        .min_by_key(|(n, _)| *n)?;
    report.get("current")?.as_f64()
}

/// Bytes the host wrote, from the first attribute whose name says it counts them.
fn ata_host_writes(attrs: &[Attribute], sector_bytes: u64) -> Option<u64> {
    ATA_HOST_WRITES_ATTRIBUTES.iter().find_map(|(name, unit)| {
        let a = attrs.iter().find(|a| a.name == *name)?;
        a.raw?.checked_mul(unit.unwrap_or(sector_bytes))
    })
}

/// The "Percentage Used Endurance Indicator" from ATA device statistics (`-x`).
fn ata_device_statistics_endurance(doc: &Value) -> Option<f64> {
    ata_device_statistic(doc, "Percentage Used Endurance Indicator").map(|v| v as f64)
}

/// One figure of the ATA device statistics log (`-x`) by its standard name.
fn ata_device_statistic(doc: &Value, name: &str) -> Option<u64> {
    let pages = get(doc, &["ata_device_statistics", "pages"])?.as_array()?;
    pages
        .iter()
        .filter_map(|p| p.get("table")?.as_array())
        .flatten()
        .find_map(|e| (e.get("name")?.as_str()? == name).then(|| e.get("value")?.as_u64()).flatten())
}

/// How to run smartctl.
#[derive(Debug, Clone)]
pub struct Smartctl {
    pub program: String,
    /// Limit per drive.
    pub timeout: Duration,
}

impl Default for Smartctl {
    fn default() -> Self {
        Self { program: "smartctl".into(), timeout: Duration::from_secs(20) }
    }
}

/// Reads one drive (`/dev/NAME`). A spun-down disk is left asleep (`-n standby`).
///
/// Returns `Err` only when smartctl itself cannot be run; everything about the
/// drive, errors included, is in the returned [`DriveHealth`].
pub fn read_drive(smartctl: &Smartctl, name: &str) -> Result<DriveHealth, CollectError> {
    let device = format!("/dev/{name}");
    let out = match command::run(&smartctl.program, &["--json=c", "-x", "-n", "standby", &device], smartctl.timeout) {
        Ok(out) => out,
        Err(RunError::NotFound) => {
            return Err(CollectError::Command {
                command: smartctl.program.clone(),
                message: "not found: install smartmontools (or set the smartctl path) to read drive health".into(),
            })
        }
        Err(RunError::Failed(e)) => return Ok(DriveHealth { error: Some(e.to_string()), ..Default::default() }),
    };
    // smartctl's exit status is a bit mask; a failing drive exits non-zero with good JSON.
    match parse_smartctl_json(&out.stdout) {
        Ok(h) => Ok(h),
        Err(e) => {
            let detail = if out.stderr.is_empty() { String::new() } else { format!(" ({})", out.stderr) };
            Ok(DriveHealth {
                error: Some(format!("smartctl printed output that is not its JSON report: {e}{detail}")),
                ..Default::default()
            })
        }
    }
}
