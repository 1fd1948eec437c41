use std::path::PathBuf;

use thiserror::Error;

/// A parser's complaint about its input: where and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// 1-based line of the input; 0 when the problem is the input as a whole.
    pub line: usize,
    pub message: String,
}

impl ParseError {
    pub(crate) fn new(line: usize, message: impl Into<String>) -> Self {
        Self { line, message: message.into() }
    }
}

/// Why a collector could not produce its value.
#[derive(Debug, Error)]
pub enum CollectError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}: {source}", path.display())]
    Parse { path: PathBuf, source: ParseError },
    #[error("{command}: {message}")]
    Command { command: String, message: String },
    /// Files are there but not laid out as the source promises, e.g. a
    /// `/run/current-system` that points at nothing.
    #[error("{}: {message}", path.display())]
    Layout { path: PathBuf, message: String },
}
