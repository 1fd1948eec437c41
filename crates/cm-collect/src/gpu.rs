//! GPUs: NVIDIA through `nvidia-smi -q -x`, AMD and Intel through DRM sysfs
//! (`/sys/class/drm/cardN/device`) and its hwmon. No GPU is a normal state.

use std::path::Path;
use std::time::Duration;

use cm_proto::{Gpu, GpuVendor};

use crate::command::{self, RunError};
use crate::cpu::sorted_entries;
use crate::error::{CollectError, ParseError};
use crate::sysroot::{read_attr, read_u64, SysRoot};

/// Parses the XML of `nvidia-smi -q -x`: one [`Gpu`] per `<gpu>` element.
/// Fields reported as `N/A` (or missing, as in older and newer drivers) are `None`.
pub fn parse_nvidia_smi_xml(xml: &str) -> Result<Vec<Gpu>, ParseError> {
    // nvidia-smi names an external DTD; roxmltree never fetches it.
    let options = roxmltree::ParsingOptions { allow_dtd: true, ..Default::default() };
    let doc = roxmltree::Document::parse_with_options(xml, options)
        .map_err(|e| ParseError::new(e.pos().row as usize, e.to_string()))?;
    let root = doc.root_element();
    if root.tag_name().name() != "nvidia_smi_log" {
        return Err(ParseError::new(1, format!("expected <nvidia_smi_log>, found <{}>", root.tag_name().name())));
    }
    let mut gpus = Vec::new();
    for gpu in root.children().filter(|n| n.has_tag_name("gpu")) {
        let text = |path: &[&str]| -> Option<String> {
            let mut node = gpu;
            for name in path {
                node = node.children().find(|n| n.has_tag_name(*name))?;
            }
            let t = node.text()?.trim();
            (!t.is_empty() && t != "N/A" && !t.starts_with('[')).then(|| t.to_owned())
        };
        let number = |path: &[&str], unit: &str| -> Option<f64> { text(path)?.strip_suffix(unit)?.trim().parse().ok() };
        let mib = |path: &[&str]| number(path, "MiB").map(|v| (v * 1024.0 * 1024.0) as u64);
        let power = number(&["power_readings", "power_draw"], "W")
            .or_else(|| number(&["gpu_power_readings", "power_draw"], "W"))
            .or_else(|| number(&["gpu_power_readings", "instant_power_draw"], "W"))
            .or_else(|| number(&["gpu_power_readings", "average_power_draw"], "W"));
        gpus.push(Gpu {
            id: gpu.attribute("id").unwrap_or_default().to_owned(),
            vendor: GpuVendor::Nvidia,
            name: text(&["product_name"]).unwrap_or_else(|| "NVIDIA GPU".into()),
            utilisation_percent: number(&["utilization", "gpu_util"], "%"),
            memory_used_bytes: mib(&["fb_memory_usage", "used"]),
            memory_total_bytes: mib(&["fb_memory_usage", "total"]),
            temperature_celsius: number(&["temperature", "gpu_temp"], "C"),
            power_watts: power,
            clock_hz: number(&["clocks", "graphics_clock"], "MHz").map(|v| (v * 1e6) as u64),
            status: Default::default(),
        });
    }
    Ok(gpus)
}

/// Reads one DRM device directory (`/sys/class/drm/cardN/device`) of an AMD or
/// Intel GPU; `None` for other drivers (NVIDIA is read through nvidia-smi).
pub fn read_drm_device(id: &str, device: &Path) -> Option<Gpu> {
    let uevent = read_attr(&device.join("uevent")).unwrap_or_default();
    let field = |key: &str| uevent.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix('=')).map(str::to_owned);
    let vendor = match field("DRIVER").as_deref() {
        Some("amdgpu") | Some("radeon") => GpuVendor::Amd,
        Some("i915") | Some("xe") => GpuVendor::Intel,
        _ => return None,
    };
    let hwmon = sorted_entries(&device.join("hwmon")).into_iter().next();
    let hw = |name: &str| hwmon.as_ref().and_then(|h| read_attr(&h.join(name)));
    let temperature_milli = hwmon.as_ref().and_then(|h| {
        // amdgpu labels its sensors edge / junction / mem: edge is the one vendors quote.
        let inputs: Vec<(Option<String>, i64)> = (1..=8)
            .filter_map(|i| {
                let v = read_attr(&h.join(format!("temp{i}_input")))?.parse().ok()?;
                Some((read_attr(&h.join(format!("temp{i}_label"))), v))
            })
            .collect();
        inputs.iter().find(|(l, _)| l.as_deref() == Some("edge")).or(inputs.first()).map(|(_, v)| *v)
    });
    let power_micro = hw("power1_average").or_else(|| hw("power1_input")).and_then(|v| v.parse::<u64>().ok());
    let name = read_attr(&device.join("product_name")).filter(|n| !n.is_empty()).unwrap_or_else(|| {
        let brand = if vendor == GpuVendor::Amd { "AMD" } else { "Intel" };
        match field("PCI_ID") {
            Some(pci) => format!("{brand} GPU {pci}"),
            None => format!("{brand} GPU"),
        }
    });
    Some(Gpu {
        id: id.to_owned(),
        vendor,
        name,
        utilisation_percent: read_u64(&device.join("gpu_busy_percent")).map(|v| v as f64),
        memory_used_bytes: read_u64(&device.join("mem_info_vram_used")),
        memory_total_bytes: read_u64(&device.join("mem_info_vram_total")),
        temperature_celsius: temperature_milli.map(|m| m as f64 / 1000.0),
        power_watts: power_micro.map(|uw| uw as f64 / 1e6),
        clock_hz: hw("freq1_input").and_then(|v| v.parse().ok()),
        status: Default::default(),
    })
}

/// Every AMD or Intel card under `/sys/class/drm` (connectors like `card0-DP-1` skipped).
pub fn read_drm(root: &SysRoot) -> Vec<Gpu> {
    sorted_entries(&root.path("/sys/class/drm"))
        .into_iter()
        .filter_map(|card| {
            let id = card.file_name()?.to_str()?.to_owned();
            let is_card =
                id.strip_prefix("card").is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            if !is_card {
                return None;
            }
            read_drm_device(&id, &card.join("device"))
        })
        .collect()
}

/// How to reach `nvidia-smi`.
#[derive(Debug, Clone)]
pub struct NvidiaSmi {
    pub program: String,
    pub timeout: Duration,
}

impl Default for NvidiaSmi {
    fn default() -> Self {
        Self { program: "nvidia-smi".into(), timeout: Duration::from_secs(5) }
    }
}

/// Asks `nvidia-smi` for its GPUs. A missing `nvidia-smi` on a machine without
/// the NVIDIA driver means no NVIDIA GPU; with the driver loaded it is an error.
pub fn read_nvidia(root: &SysRoot, smi: &NvidiaSmi) -> Result<Vec<Gpu>, CollectError> {
    let out = match command::run(&smi.program, &["-q", "-x"], smi.timeout) {
        Ok(out) => out,
        Err(RunError::NotFound) if root.path("/proc/driver/nvidia/version").exists() => {
            return Err(CollectError::Command {
                command: smi.program.clone(),
                message: "the NVIDIA driver is loaded but nvidia-smi was not found; install it or set its path".into(),
            })
        }
        Err(RunError::NotFound) => return Ok(Vec::new()),
        Err(RunError::Failed(e)) => return Err(e),
    };
    let command = format!("{} -q -x", smi.program);
    if out.stdout.trim().is_empty() {
        let why = if out.stderr.is_empty() { format!("exit code {:?}", out.code) } else { out.stderr };
        return Err(CollectError::Command { command, message: format!("printed nothing ({why})") });
    }
    parse_nvidia_smi_xml(&out.stdout).map_err(|e| CollectError::Command {
        command,
        message: format!("printed output that is not its XML report: {e}"),
    })
}

/// What one GPU collection found.
#[derive(Debug, Default)]
pub struct Found {
    /// Every GPU that could be read.
    pub gpus: Vec<Gpu>,
    /// Why the NVIDIA GPUs could not be read. The AMD and Intel ones do not
    /// depend on nvidia-smi and are in `gpus` all the same.
    pub error: Option<CollectError>,
}

/// Reads every GPU. `nvidia` is `None` where nvidia-smi must not be asked (a captured tree).
///
/// nvidia-smi is only started while the NVIDIA kernel driver is loaded
/// (`/proc/driver/nvidia` exists): without it there is nothing to report, and
/// the agent does not pay for a process start every interval.
pub fn collect(root: &SysRoot, nvidia: Option<&NvidiaSmi>) -> Found {
    let driver_loaded = root.path("/proc/driver/nvidia").exists();
    let (mut gpus, error) = match nvidia {
        Some(smi) if driver_loaded => match read_nvidia(root, smi) {
            Ok(gpus) => (gpus, None),
            Err(e) => (Vec::new(), Some(e)),
        },
        _ => (Vec::new(), None),
    };
    gpus.extend(read_drm(root));
    Found { gpus, error }
}
