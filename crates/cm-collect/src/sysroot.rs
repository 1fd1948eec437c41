use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use crate::error::{CollectError, ParseError};

/// The root that `/proc`, `/sys`, `/run` and `/nix` are read under: `/` on a
/// live machine, a captured tree in tests and in `cm-agent snapshot --sysroot`.
#[derive(Debug, Clone)]
pub struct SysRoot {
    root: PathBuf,
}

impl Default for SysRoot {
    fn default() -> Self {
        Self::live()
    }
}

impl SysRoot {
    /// The running machine.
    pub fn live() -> Self {
        Self { root: PathBuf::from("/") }
    }

    /// A captured tree holding `proc/` and `sys/` (and, for NixOS, `run/` and `nix/`).
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// True when this is the running machine, so mount points can be measured
    /// with `statvfs` and tools like `nvidia-smi` describe the same machine.
    pub fn is_live(&self) -> bool {
        self.root == Path::new("/")
    }

    /// `path` (absolute, like `/proc/meminfo`) under this root.
    pub fn path(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    /// Follows the symbolic links in `path` as the kernel would if this root
    /// were `/`: a link to `/nix/store/...` leads to `/nix/store/...` under
    /// this root, not on the machine that reads it, so a captured tree with
    /// absolute links works. A component that does not exist is kept as it is
    /// (like `realpath -m`). Returns the path as seen from inside the root;
    /// [`SysRoot::path`] turns it into one to open.
    pub fn resolve(&self, path: &str) -> Result<PathBuf, CollectError> {
        // Linux's MAXSYMLINKS: more than this many links in one lookup is ELOOP.
        const MAX_LINKS: usize = 40;
        let mut pending: Vec<OsString> = Vec::new();
        push_components(&mut pending, Path::new(path));
        let mut resolved = PathBuf::from("/");
        let mut links = 0;
        while let Some(name) = pending.pop() {
            if name == ".." {
                resolved.pop();
                continue;
            }
            let candidate = resolved.join(&name);
            let full = self.path_of(&candidate);
            let is_link = std::fs::symlink_metadata(&full).is_ok_and(|m| m.file_type().is_symlink());
            if !is_link {
                resolved = candidate;
                continue;
            }
            links += 1;
            if links > MAX_LINKS {
                let source = std::io::Error::other(format!("more than {MAX_LINKS} symbolic links in {path}"));
                return Err(CollectError::Read { path: self.path(path), source });
            }
            let target = std::fs::read_link(&full).map_err(|source| CollectError::Read { path: full, source })?;
            if target.is_absolute() {
                resolved = PathBuf::from("/");
            }
            push_components(&mut pending, &target);
        }
        Ok(resolved)
    }

    /// An absolute path as seen from inside the root (e.g. from [`SysRoot::resolve`]), to open.
    pub fn path_of(&self, inside: &Path) -> PathBuf {
        let rel = inside.strip_prefix("/").unwrap_or(inside);
        self.root.join(rel)
    }

    /// Reads a file under this root.
    pub fn read(&self, path: &str) -> Result<String, CollectError> {
        read_file(&self.path(path))
    }

    /// Reads a file and runs a parser on it, naming the file in any error.
    pub fn parse<T>(&self, path: &str, parser: impl FnOnce(&str) -> Result<T, ParseError>) -> Result<T, CollectError> {
        let full = self.path(path);
        let text = read_file(&full)?;
        parser(&text).map_err(|source| CollectError::Parse { path: full, source })
    }
}

/// Puts the names in `path` on `stack` so that the first one is popped first;
/// `.` is dropped, `..` kept to be applied against what is resolved so far.
fn push_components(stack: &mut Vec<OsString>, path: &Path) {
    let names = path.components().filter_map(|c| match c {
        Component::Normal(n) => Some(n.to_owned()),
        Component::ParentDir => Some("..".into()),
        Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
    });
    let at = stack.len();
    stack.extend(names);
    stack[at..].reverse();
}

/// Reads a whole file, naming it in the error.
pub(crate) fn read_file(path: &Path) -> Result<String, CollectError> {
    std::fs::read_to_string(path).map_err(|source| CollectError::Read { path: path.to_owned(), source })
}

/// Reads a small sysfs attribute, trimmed; `None` if absent or unreadable.
///
/// Some drivers hand back NUL bytes with the text: amdgpu pads values and the
/// sections of multi-part files with them, up to a whole page. NULs are no
/// part of any value and are dropped.
pub(crate) fn read_attr(path: &Path) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    Some(attr_value(&bytes))
}

/// The text of a sysfs attribute's bytes: without NULs, trimmed.
fn attr_value(bytes: &[u8]) -> String {
    let text: Vec<u8> = bytes.iter().copied().filter(|b| *b != 0).collect();
    String::from_utf8_lossy(&text).trim().to_owned()
}

/// Reads a sysfs attribute holding one unsigned integer.
pub(crate) fn read_u64(path: &Path) -> Option<u64> {
    read_attr(path)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cm-sysroot-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn absolute_links_resolve_under_the_root_not_on_the_machine() {
        let dir = scratch("abs");
        std::fs::create_dir_all(dir.join("nix/store/abc-system-path/bin")).unwrap();
        std::fs::create_dir_all(dir.join("run")).unwrap();
        symlink("/nix/store/abc-system-path", dir.join("run/sw")).unwrap();
        symlink("/nix/store/def-tool/bin/tool", dir.join("nix/store/abc-system-path/bin/tool")).unwrap();
        let root = SysRoot::at(&dir);
        assert_eq!(root.resolve("/run/sw/bin/tool").unwrap(), Path::new("/nix/store/def-tool/bin/tool"));
        assert_eq!(root.resolve("/run/sw").unwrap(), Path::new("/nix/store/abc-system-path"));
        assert_eq!(root.path_of(Path::new("/nix/store/x")), dir.join("nix/store/x"));
    }

    #[test]
    fn relative_links_and_dot_dot_resolve_against_the_links_folder() {
        let dir = scratch("rel");
        std::fs::create_dir_all(dir.join("nix/var/nix/profiles")).unwrap();
        symlink("system-42-link", dir.join("nix/var/nix/profiles/system")).unwrap();
        symlink("../../../store/x-nixos-system", dir.join("nix/var/nix/profiles/system-42-link")).unwrap();
        let root = SysRoot::at(&dir);
        assert_eq!(root.resolve("/nix/var/nix/profiles/system").unwrap(), Path::new("/nix/store/x-nixos-system"));
        assert_eq!(root.resolve("/nix/var/../../..").unwrap(), Path::new("/"), "never above the root");
    }

    #[test]
    fn nuls_in_an_attribute_are_dropped() {
        // amdgpu's pp_od_clk_voltage: three sections, each followed by a run of
        // NULs (119, 178 and 1244 bytes in this 1732-byte capture).
        let capture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/amdgpu/rx7900xt/pp_od_clk_voltage");
        assert_eq!(std::fs::read(&capture).unwrap().iter().filter(|b| **b == 0).count(), 119 + 178 + 1244);
        let text = read_attr(&capture).unwrap();
        assert!(text.starts_with("OD_SCLK:\n0: 500Mhz\n1: 2735Mhz\nOD_MCLK:\n"), "{text:?}");
        assert!(text.contains("1: 1250MHz\nOD_VDDGFX_OFFSET:\n0mV\nOD_RANGE:\n"), "{text:?}");
        assert!(text.ends_with("-450mv          0mv"), "{text:?}");

        assert_eq!(attr_value(&[0; 4096]), "", "a page of NULs is an empty value");
        assert_eq!(attr_value(b"11\n\0\0\0"), "11");
    }

    #[test]
    fn a_link_loop_is_an_error_naming_the_path() {
        let dir = scratch("loop");
        symlink("b", dir.join("a")).unwrap();
        symlink("a", dir.join("b")).unwrap();
        let err = SysRoot::at(&dir).resolve("/a").unwrap_err().to_string();
        assert!(err.contains(&dir.join("a").display().to_string()) && err.contains("symbolic links"), "{err}");
    }
}
