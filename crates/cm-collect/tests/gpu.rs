mod common;

use cm_collect::gpu::{collect, parse_nvidia_smi_xml, read_drm, read_drm_device, read_nvidia, NvidiaSmi};
use cm_collect::SysRoot;
use cm_proto::GpuVendor;
use common::*;
use std::time::Duration;

const MIB: u64 = 1 << 20;

#[test]
fn nvidia_rtx_3060_laptop() {
    let gpus = parse_nvidia_smi_xml(&read("nvidia_smi/rtx-3060.xml")).unwrap();
    assert_eq!(gpus.len(), 1);
    let g = &gpus[0];
    assert_eq!(g.id, "00000000:01:00.0");
    assert_eq!(g.vendor, GpuVendor::Nvidia);
    assert_eq!(g.name, "NVIDIA GeForce RTX 3060 Laptop GPU");
    assert_eq!((g.memory_used_bytes, g.memory_total_bytes), (Some(5 * MIB), Some(6144 * MIB)));
    assert_eq!(g.utilisation_percent, Some(0.0));
    assert_eq!(g.temperature_celsius, Some(45.0));
    assert_eq!(g.power_watts, Some(8.70));
    assert_eq!(g.clock_hz, Some(210_000_000));
}

#[test]
fn nvidia_layouts_across_drivers() {
    let p100 = &parse_nvidia_smi_xml(&read("nvidia_smi/tesla-p100.xml")).unwrap()[0];
    assert_eq!(p100.name, "Tesla P100-PCIE-16GB");
    assert_eq!(p100.memory_total_bytes, Some(16384 * MIB));
    assert_eq!((p100.temperature_celsius, p100.power_watts), (Some(38.0), Some(26.16)));

    // Driver 535 moved power into <gpu_power_readings>.
    let rtx4090 = &parse_nvidia_smi_xml(&read("nvidia_smi/rtx-4090-driver-535.xml")).unwrap()[0];
    assert_eq!(rtx4090.power_watts, Some(26.84));

    // Driver 580 reports power_draw N/A and gives the instant reading; values are space-padded.
    let pro = &parse_nvidia_smi_xml(&read("nvidia_smi/rtx-pro-6000-driver-580.xml")).unwrap()[0];
    assert_eq!(pro.name, "NVIDIA RTX PRO 6000 Blackwell");
    assert_eq!((pro.temperature_celsius, pro.power_watts), (Some(37.0), Some(66.84)));
    assert_eq!(pro.memory_total_bytes, None, "this capture has no memory section");
}

#[test]
fn nvidia_mig_uses_the_whole_gpu_figures() {
    let a100 = &parse_nvidia_smi_xml(&read("nvidia_smi/a100-sxm4-mig.xml")).unwrap()[0];
    assert_eq!(a100.name, "NVIDIA A100-SXM4-40GB");
    assert_eq!((a100.memory_used_bytes, a100.memory_total_bytes), (Some(38 * MIB), Some(40960 * MIB)));
    assert_eq!(a100.utilisation_percent, None, "MIG mode reports N/A utilisation");
    assert_eq!((a100.temperature_celsius, a100.power_watts), (Some(36.0), Some(66.92)));
    assert_eq!(a100.clock_hz, Some(1_410_000_000));
}

#[test]
fn nvidia_garbage_is_a_parse_error() {
    assert!(parse_nvidia_smi_xml("").is_err());
    assert!(parse_nvidia_smi_xml("NVIDIA-SMI has failed because it couldn't communicate with the driver").is_err());
    let err = parse_nvidia_smi_xml("<html><body/></html>").unwrap_err();
    assert!(err.message.contains("nvidia_smi_log"), "{err}");
    assert!(parse_nvidia_smi_xml("<nvidia_smi_log><gpu id=\"x\"><product_name>T").is_err());
}

#[test]
fn amd_sysfs_rx580() {
    let g = read_drm_device("card0", &testdata("amdgpu/rx580")).unwrap();
    assert_eq!(g.vendor, GpuVendor::Amd);
    assert_eq!(g.name, "AMD GPU 1002:67DF", "product_name is empty on this card");
    assert_eq!(g.utilisation_percent, Some(11.0));
    assert_eq!((g.memory_used_bytes, g.memory_total_bytes), (Some(536870912), Some(4294967296)));
    assert_eq!(g.temperature_celsius, Some(44.0));
    assert_eq!(g.power_watts, Some(41.045));
    assert_eq!(g.clock_hz, Some(798_080_000));
}

#[test]
fn amd_sysfs_vega56_prefers_the_edge_sensor() {
    let g = read_drm_device("card1", &testdata("amdgpu/vega56")).unwrap();
    assert_eq!(g.temperature_celsius, Some(38.0), "edge, not junction or mem");
    assert_eq!(g.power_watts, Some(8.0));
    assert_eq!(g.memory_total_bytes, Some(8573157376));
}

#[test]
fn drm_class_lists_amd_and_intel_cards() {
    let gpus = read_drm(&root("drm"));
    assert_eq!(gpus.len(), 2, "{gpus:?}");
    assert_eq!((gpus[0].id.as_str(), gpus[0].vendor), ("card0", GpuVendor::Amd));
    assert_eq!(gpus[0].utilisation_percent, Some(4.0));
    assert_eq!(gpus[0].memory_used_bytes, Some(1490378752));
    assert_eq!((gpus[1].id.as_str(), gpus[1].vendor), ("card1", GpuVendor::Intel));
    assert_eq!(gpus[1].name, "Intel GPU 8086:5917");
}

#[test]
fn no_gpu_is_not_an_error() {
    let smi = NvidiaSmi { program: "/nonexistent/nvidia-smi".into(), timeout: Duration::from_secs(1) };
    let found = collect(&root("debian-vm"), Some(&smi));
    assert!(found.gpus.is_empty() && found.error.is_none(), "{found:?}");
}

#[test]
fn a_failing_nvidia_smi_still_lists_the_amd_and_intel_gpus() {
    // The NVIDIA driver is loaded, so nvidia-smi is asked, and it fails; the
    // AMD and Intel cards of the drm capture are read from sysfs all the same.
    let dir = scratch("nvidia-fails-drm");
    write(&dir, "proc/driver/nvidia/version", "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.154.05\n");
    std::os::unix::fs::symlink(testdata("drm/sys"), dir.join("sys")).unwrap();
    let smi = fake_smi("smi-fails-drm", "echo 'Failed to initialize NVML: Unknown Error' >&2; exit 9");
    let found = collect(&SysRoot::at(&dir), Some(&smi));
    let vendors: Vec<GpuVendor> = found.gpus.iter().map(|g| g.vendor).collect();
    assert_eq!(vendors, [GpuVendor::Amd, GpuVendor::Intel]);
    let error = found.error.expect("the NVIDIA failure is reported").to_string();
    assert!(error.contains("nvidia-smi") && error.contains("Failed to initialize NVML"), "{error}");

    let hang = fake_smi("smi-hangs-drm", "sleep 30");
    let found = collect(&SysRoot::at(&dir), Some(&hang));
    assert_eq!(found.gpus.len(), 2, "a hanging nvidia-smi hides nothing either");
    assert!(found.error.unwrap().to_string().contains("did not finish"));
}

fn fake_smi(name: &str, script: &str) -> NvidiaSmi {
    NvidiaSmi { program: fake_tool(name, "nvidia-smi", script), timeout: Duration::from_millis(500) }
}

#[test]
fn nvidia_smi_that_hangs_fails_or_prints_garbage_gives_a_clear_error() {
    let root = SysRoot::live();
    let err = read_nvidia(&root, &fake_smi("smi-hang", "sleep 30")).unwrap_err().to_string();
    assert!(err.contains("did not finish within 0.5 s"), "{err}");

    let err = read_nvidia(
        &root,
        &fake_smi("smi-fail", "echo 'Failed to initialize NVML: Driver/library version mismatch' >&2; exit 9"),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("printed nothing") && err.contains("Driver/library version mismatch"), "{err}");

    let err = read_nvidia(&root, &fake_smi("smi-garbage", "echo '<<<not xml'")).unwrap_err().to_string();
    assert!(err.contains("not its XML report"), "{err}");

    let xml = testdata("nvidia_smi/rtx-3060.xml");
    let gpus = read_nvidia(&root, &fake_smi("smi-ok", &format!("cat '{}'", xml.display()))).unwrap();
    assert_eq!(gpus[0].name, "NVIDIA GeForce RTX 3060 Laptop GPU");
}

#[test]
fn missing_nvidia_smi_with_the_driver_loaded_is_an_error() {
    let dir = scratch("nvidia-driver");
    write(&dir, "proc/driver/nvidia/version", "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.154.05\n");
    let smi = NvidiaSmi { program: "/nonexistent/nvidia-smi".into(), timeout: Duration::from_secs(1) };
    let err = read_nvidia(&SysRoot::at(&dir), &smi).unwrap_err().to_string();
    assert!(err.contains("driver is loaded but nvidia-smi was not found"), "{err}");
}

#[test]
fn every_nvidia_capture_parses_to_named_gpus_with_memory_or_power() {
    let dir = testdata("nvidia_smi");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("xml") {
            continue;
        }
        let gpus = parse_nvidia_smi_xml(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!gpus.is_empty(), "{}", path.display());
        for g in gpus {
            assert!(g.name.starts_with("NVIDIA") || g.name.starts_with("Tesla"), "{}: {}", path.display(), g.name);
            assert!(g.temperature_celsius.is_some(), "{}", path.display());
            assert!(g.memory_total_bytes.is_some() || g.power_watts.is_some(), "{}", path.display());
        }
        seen += 1;
    }
    assert_eq!(seen, 5);
}

#[test]
fn every_amd_capture_is_read_as_an_amd_gpu() {
    for card in ["rx580", "vega56", "rx7900xt"] {
        let g = read_drm_device("card0", &testdata(&format!("amdgpu/{card}"))).unwrap();
        assert_eq!(g.vendor, GpuVendor::Amd, "{card}");
        assert!(g.temperature_celsius.is_some() && g.power_watts.is_some(), "{card}: {g:?}");
        assert!(g.utilisation_percent.is_some(), "{card}");
    }
}

/// Copies a captured device directory, each file padded with NULs to one page.
fn copy_padded(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let dest = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_padded(&path, &dest);
        } else {
            let mut bytes = std::fs::read(&path).unwrap();
            bytes.resize(4096, 0);
            std::fs::write(dest, bytes).unwrap();
        }
    }
}

#[test]
fn attributes_padded_with_nuls_read_as_their_values() {
    // Hand-made from the rx580 capture: every file as a driver that hands back
    // its whole page returns it (the value, then NULs up to 4096 bytes, as
    // amdgpu's pp_od_clk_voltage in the rx7900xt capture). product_name, empty
    // on this card, becomes a page of NULs.
    let dir = scratch("amdgpu-nul-padded");
    copy_padded(&testdata("amdgpu/rx580"), &dir);
    assert_eq!(
        std::fs::read(dir.join("product_name")).unwrap(),
        [b'\n'].iter().chain(&[0; 4095]).copied().collect::<Vec<_>>()
    );
    let padded = read_drm_device("card0", &dir).unwrap();
    assert_eq!(padded.name, "AMD GPU 1002:67DF");
    assert_eq!(padded, read_drm_device("card0", &testdata("amdgpu/rx580")).unwrap());
    assert_eq!(padded.utilisation_percent, Some(11.0));
    assert_eq!(padded.temperature_celsius, Some(44.0));
}
