//! CPU: load averages, utilisation from /proc/stat deltas, frequency from
//! cpufreq (or /proc/cpuinfo), and package temperature from hwmon or thermal zones.

use std::path::Path;

use cm_proto::Cpu;

use crate::error::{CollectError, ParseError};
use crate::sysroot::{read_attr, SysRoot};

/// The three load averages from /proc/loadavg.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadAvg {
    pub load1: f64,
    pub load5: f64,
    pub load15: f64,
}

/// Parses /proc/loadavg (`0.21 0.37 0.39 1/719 19737`).
pub fn parse_loadavg(text: &str) -> Result<LoadAvg, ParseError> {
    let mut fields = text.split_whitespace().map(|f| {
        f.parse::<f64>().map_err(|_| ParseError::new(1, format!("expected a load average number, found {f:?}")))
    });
    let mut next = || fields.next().unwrap_or_else(|| Err(ParseError::new(1, "expected three load averages")));
    Ok(LoadAvg { load1: next()?, load5: next()?, load15: next()? })
}

/// Aggregate CPU time counters from the `cpu` line of /proc/stat, in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuTimes {
    /// Every tick spent, idle or not (guest time is already inside user/nice).
    pub total: u64,
    /// Ticks spent idle or waiting for I/O.
    pub idle: u64,
}

/// What /proc/stat says about the CPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub times: CpuTimes,
    /// Number of `cpuN` lines: logical CPUs online.
    pub logical_cpus: u32,
}

/// Parses /proc/stat.
pub fn parse_stat(text: &str) -> Result<Stat, ParseError> {
    let mut times = None;
    let mut logical_cpus = 0;
    for (i, line) in text.lines().enumerate() {
        let mut fields = line.split_whitespace();
        match fields.next() {
            Some("cpu") => {
                let values: Vec<u64> = fields
                    .map(|f| {
                        f.parse().map_err(|_| ParseError::new(i + 1, format!("expected a tick count, found {f:?}")))
                    })
                    .collect::<Result<_, _>>()?;
                if values.len() < 4 {
                    return Err(ParseError::new(
                        i + 1,
                        "expected at least user, nice, system and idle on the cpu line",
                    ));
                }
                // user nice system idle iowait irq softirq steal [guest guest_nice]
                let total = values.iter().take(8).sum();
                let idle = values[3] + values.get(4).copied().unwrap_or(0);
                times = Some(CpuTimes { total, idle });
            }
            Some(name) if name.starts_with("cpu") => logical_cpus += 1,
            _ => {}
        }
    }
    let times = times.ok_or_else(|| ParseError::new(0, "no aggregate \"cpu\" line"))?;
    Ok(Stat { times, logical_cpus })
}

/// Busy percentage between two samples; `None` if no time passed or counters went back.
pub fn utilisation(prev: CpuTimes, now: CpuTimes) -> Option<f64> {
    let total = now.total.checked_sub(prev.total)?;
    let idle = now.idle.checked_sub(prev.idle)?;
    if total == 0 {
        return None;
    }
    Some((total.saturating_sub(idle)) as f64 * 100.0 / total as f64)
}

/// What /proc/cpuinfo adds: the model name and per-CPU MHz (x86 only).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CpuInfo {
    pub model: Option<String>,
    pub mhz: Vec<f64>,
}

/// Parses /proc/cpuinfo. Architectures name the model differently (`model name`
/// on x86, `Model` or `Hardware` on ARM); absent fields are `None`, not errors.
pub fn parse_cpuinfo(text: &str) -> CpuInfo {
    let mut info = CpuInfo::default();
    let mut arm_model = None;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else { continue };
        let (key, value) = (key.trim(), value.trim());
        match key {
            "model name" if info.model.is_none() && !value.is_empty() => info.model = Some(value.to_owned()),
            "Model" | "Hardware" if arm_model.is_none() && !value.is_empty() => arm_model = Some(value.to_owned()),
            "cpu MHz" => info.mhz.extend(value.parse::<f64>().ok()),
            _ => {}
        }
    }
    if info.model.is_none() {
        info.model = arm_model;
    }
    info
}

/// A temperature reading and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Temperature {
    pub celsius: f64,
    pub source: String,
}

/// hwmon drivers that measure the CPU package, with the labels to prefer
/// (empty: any input of that chip).
const CPU_HWMON: &[(&str, &[&str])] = &[
    ("k10temp", &["Tctl", "Tdie"]),
    ("zenpower", &["Tctl", "Tdie"]),
    ("coretemp", &["Package id", "Physical id"]),
    ("cpu_thermal", &[]),
    ("cpu-thermal", &[]),
    ("soc_thermal", &[]),
    ("apple_smc", &[]),
];

/// Labels by which platform and embedded-controller chips (thinkpad,
/// dell_smm, asusec, asus_wmi_sensors...) name their CPU input among the
/// board's other places, best first. Compared without case, `_` as a space,
/// and a trailing "temperature" or "temp" dropped.
const CPU_LABELS: &[&str] = &["cpu package", "cpu"];

/// applesmc labels its inputs with SMC keys: TC0D is CPU 0's die, TC0P the
/// sensor beside it.
const APPLESMC_CPU_KEYS: &[&str] = &["TC0D", "TC0P"];

/// Thermal zone types that measure the CPU, best first.
const CPU_THERMAL_ZONES: &[&str] = &["x86_pkg_temp", "cpu-thermal", "cpu_thermal", "soc_thermal", "cpu", "acpitz"];

/// One hwmon chip's temperature inputs: `(label, millidegrees)` pairs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HwmonChip {
    pub name: String,
    pub temps: Vec<(Option<String>, i64)>,
}

/// Picks the CPU package temperature among hwmon chips: a known CPU driver's
/// preferred label (else its hottest input), else the input another chip
/// labels as the CPU. Implausible readings are skipped.
pub fn pick_cpu_hwmon(chips: &[HwmonChip]) -> Option<Temperature> {
    pick_cpu_driver(chips).or_else(|| pick_cpu_label(chips))
}

fn pick_cpu_driver(chips: &[HwmonChip]) -> Option<Temperature> {
    for (driver, labels) in CPU_HWMON {
        let mut best: Option<Temperature> = None;
        for chip in chips.iter().filter(|c| c.name == *driver) {
            let preferred: Vec<_> = chips_inputs(chip)
                .filter(|(label, _)| {
                    labels.is_empty() || labels.iter().any(|l| label.is_some_and(|s| s.starts_with(l)))
                })
                .collect();
            let candidates = if preferred.is_empty() { chips_inputs(chip).collect() } else { preferred };
            for (label, celsius) in candidates {
                if best.as_ref().is_none_or(|b| celsius > b.celsius) {
                    let source = match label {
                        Some(l) => format!("{driver} {l}"),
                        None => driver.to_string(),
                    };
                    best = Some(Temperature { celsius, source });
                }
            }
        }
        if best.is_some() {
            return best;
        }
    }
    None
}

/// The input a chip that measures many places labels as the CPU.
fn pick_cpu_label(chips: &[HwmonChip]) -> Option<Temperature> {
    let mut best: Option<(usize, Temperature)> = None;
    for chip in chips {
        for (label, celsius) in chips_inputs(chip) {
            let Some(rank) = label.and_then(|l| cpu_label_rank(&chip.name, l)) else { continue };
            if best.as_ref().is_none_or(|(r, _)| rank < *r) {
                let source = format!("{} {}", chip.name, label.unwrap_or_default());
                best = Some((rank, Temperature { celsius, source }));
            }
        }
    }
    best.map(|(_, t)| t)
}

/// Where `label` stands among the CPU labels of chip `name` (0 is best);
/// `None` when it does not name the CPU.
fn cpu_label_rank(name: &str, label: &str) -> Option<usize> {
    if name == "applesmc" {
        return APPLESMC_CPU_KEYS.iter().position(|k| *k == label);
    }
    let l = label.trim().to_lowercase().replace('_', " ");
    let l = l.strip_suffix("temperature").or_else(|| l.strip_suffix("temp")).unwrap_or(&l).trim_end();
    CPU_LABELS.iter().position(|want| *want == l)
}

fn chips_inputs(chip: &HwmonChip) -> impl Iterator<Item = (Option<&str>, f64)> {
    chip.temps.iter().filter_map(|(label, milli)| plausible(*milli).map(|c| (label.as_deref(), c)))
}

/// Millidegrees to degrees, dropping readings no CPU produces (sensor errors
/// show up as -273 C or 255 C+).
fn plausible(milli: i64) -> Option<f64> {
    let c = milli as f64 / 1000.0;
    (-40.0..=150.0).contains(&c).then_some(c)
}

/// Picks the CPU temperature among thermal zones `(type, millidegrees)`.
pub fn pick_cpu_thermal_zone(zones: &[(String, String, i64)]) -> Option<Temperature> {
    for wanted in CPU_THERMAL_ZONES {
        if let Some((zone, kind, c)) =
            zones.iter().filter(|(_, kind, _)| kind == wanted).find_map(|(z, k, m)| plausible(*m).map(|c| (z, k, c)))
        {
            return Some(Temperature { celsius: c, source: format!("{zone} {kind}") });
        }
    }
    None
}

/// Reads every hwmon chip's temperature inputs under `sys/class/hwmon`.
pub fn read_hwmon(root: &SysRoot) -> Vec<HwmonChip> {
    let mut chips = Vec::new();
    for hwmon in sorted_entries(&root.path("/sys/class/hwmon")) {
        // Drivers registered the old way (applesmc) keep their name and inputs
        // on the device the hwmon folder links to.
        let dir = if hwmon.join("name").exists() { hwmon } else { hwmon.join("device") };
        let Some(name) = read_attr(&dir.join("name")) else { continue };
        let mut temps = Vec::new();
        for file in sorted_entries(&dir) {
            let Some(fname) = file.file_name().and_then(|n| n.to_str()) else { continue };
            let Some(index) = fname.strip_prefix("temp").and_then(|r| r.strip_suffix("_input")) else { continue };
            let Some(milli) = read_attr(&file).and_then(|v| v.parse::<i64>().ok()) else { continue };
            let label = read_attr(&dir.join(format!("temp{index}_label")));
            temps.push((label, milli));
        }
        chips.push(HwmonChip { name, temps });
    }
    chips
}

fn read_thermal_zones(root: &SysRoot) -> Vec<(String, String, i64)> {
    sorted_entries(&root.path("/sys/class/thermal"))
        .into_iter()
        .filter_map(|dir| {
            let zone = dir.file_name()?.to_str()?.to_owned();
            if !zone.starts_with("thermal_zone") {
                return None;
            }
            let kind = read_attr(&dir.join("type"))?;
            let milli = read_attr(&dir.join("temp"))?.parse().ok()?;
            Some((zone, kind, milli))
        })
        .collect()
}

/// Current frequency of every CPU that has cpufreq, in Hz, in CPU number order.
fn read_cpufreq(root: &SysRoot) -> Vec<u64> {
    let mut cpus: Vec<(u32, u64)> = sorted_entries(&root.path("/sys/devices/system/cpu"))
        .into_iter()
        .filter_map(|d| {
            let n: u32 = d.file_name()?.to_str()?.strip_prefix("cpu")?.parse().ok()?;
            let khz: u64 = read_attr(&d.join("cpufreq/scaling_cur_freq"))?.parse().ok()?;
            Some((n, khz * 1000))
        })
        .collect();
    cpus.sort_unstable();
    cpus.into_iter().map(|(_, hz)| hz).collect()
}

/// Entries of a directory, sorted by name; empty if it cannot be read.
pub(crate) fn sorted_entries(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out: Vec<_> = std::fs::read_dir(dir).into_iter().flatten().flatten().map(|e| e.path()).collect();
    out.sort();
    out
}

/// Reads the CPU state; keeps the previous /proc/stat sample for utilisation.
#[derive(Debug, Default)]
pub struct CpuCollector {
    prev: Option<CpuTimes>,
}

impl CpuCollector {
    /// Takes one sample. Utilisation is `None` on the first call.
    pub fn collect(&mut self, root: &SysRoot) -> Result<Cpu, CollectError> {
        let load = root.parse("/proc/loadavg", parse_loadavg)?;
        let stat = root.parse("/proc/stat", parse_stat)?;
        let info = root.read("/proc/cpuinfo").map(|t| parse_cpuinfo(&t)).unwrap_or_default();
        let utilisation_percent = self.prev.and_then(|prev| utilisation(prev, stat.times));
        self.prev = Some(stat.times);

        let mut freqs = read_cpufreq(root);
        if freqs.is_empty() {
            freqs = info.mhz.iter().map(|mhz| (mhz * 1e6) as u64).collect();
        }
        let frequency_hz = (!freqs.is_empty()).then(|| freqs.iter().sum::<u64>() / freqs.len() as u64);
        let temp = pick_cpu_hwmon(&read_hwmon(root)).or_else(|| pick_cpu_thermal_zone(&read_thermal_zones(root)));

        Ok(Cpu {
            model: info.model,
            logical_cpus: stat.logical_cpus,
            load1: load.load1,
            load5: load.load5,
            load15: load.load15,
            utilisation_percent,
            frequency_hz,
            max_frequency_hz: freqs.iter().copied().max(),
            core_frequencies_hz: freqs,
            temperature_celsius: temp.as_ref().map(|t| t.celsius),
            temperature_source: temp.map(|t| t.source),
            status: Default::default(),
        })
    }
}
