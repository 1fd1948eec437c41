#![allow(dead_code)]

use std::path::PathBuf;

use cm_collect::SysRoot;

pub fn testdata(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata").join(rel)
}

pub fn root(rel: &str) -> SysRoot {
    SysRoot::at(testdata(rel))
}

pub fn read(rel: &str) -> String {
    std::fs::read_to_string(testdata(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// A scratch sysroot that tests can fill with broken files.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cm-collect-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn write(dir: &std::path::Path, rel: &str, content: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// Writes an executable shell script `name` in a scratch folder: a stand-in for
/// an external tool (nvidia-smi, smartctl) that hangs, fails or prints garbage.
pub fn fake_tool(dir_name: &str, tool: &str, script: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = scratch(dir_name).join(tool);
    std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.to_string_lossy().into_owned()
}
