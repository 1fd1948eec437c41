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
