use std::path::{Path, PathBuf};

use crate::error::{CollectError, ParseError};

/// The root that `/proc` and `/sys` are read under: `/` on a live machine, a
/// captured tree in tests and in `cm-agent snapshot --sysroot`.
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

    /// A captured tree holding `proc/` and `sys/`.
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

/// Reads a whole file, naming it in the error.
pub(crate) fn read_file(path: &Path) -> Result<String, CollectError> {
    std::fs::read_to_string(path).map_err(|source| CollectError::Read { path: path.to_owned(), source })
}

/// Reads a small sysfs attribute, trimmed; `None` if absent or unreadable.
pub(crate) fn read_attr(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_owned())
}

/// Reads a sysfs attribute holding one unsigned integer.
pub(crate) fn read_u64(path: &Path) -> Option<u64> {
    read_attr(path)?.parse().ok()
}
