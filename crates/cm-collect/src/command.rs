//! Running external tools with a time limit.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::CollectError;

/// What a finished command printed and how it ended.
#[derive(Debug, Clone)]
pub struct Output {
    pub stdout: String,
    /// The exit code; `None` when killed by a signal. Callers still parse
    /// stdout on a non-zero exit (smartctl, for one, uses the code as a bit mask).
    pub code: Option<i32>,
    pub stderr: String,
}

/// Why a tool could not be run at all.
#[derive(Debug)]
pub enum RunError {
    /// The program is not installed (not on PATH / no such file).
    NotFound,
    /// Anything else, already phrased for a person.
    Failed(CollectError),
}

/// Runs `program args`, killing it after `limit`. Output is read as it comes so
/// a chatty tool cannot block on a full pipe.
pub fn run(program: &str, args: &[&str], limit: Duration) -> Result<Output, RunError> {
    let shown = || std::iter::once(program).chain(args.iter().copied()).collect::<Vec<_>>().join(" ");
    let fail = |message: String| RunError::Failed(CollectError::Command { command: shown(), message });
    let mut child = match Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(RunError::NotFound),
        Err(e) => return Err(fail(format!("cannot start: {e}"))),
    };
    let stdout = read_in_background(child.stdout.take().expect("stdout is piped"), usize::MAX);
    let stderr = read_in_background(child.stderr.take().expect("stderr is piped"), 64 * 1024);
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!("did not finish within {:.1} s and was stopped", limit.as_secs_f64())));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(fail(format!("cannot wait for it: {e}"))),
        }
    };
    // A process the tool left behind may hold the pipes open: wait for the rest
    // of the output only until the deadline.
    let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(100));
    let stdout = stdout.recv_timeout(left).unwrap_or_default();
    let stderr = stderr.recv_timeout(Duration::from_millis(100)).unwrap_or_default();
    Ok(Output {
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        code: status.code(),
        stderr: String::from_utf8_lossy(&stderr).trim().to_owned(),
    })
}

fn read_in_background(mut pipe: impl Read + Send + 'static, limit: usize) -> std::sync::mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = (&mut pipe).take(limit as u64).read_to_end(&mut buf);
        let _ = tx.send(buf);
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_and_exit_code_are_kept_on_failure() {
        let out =
            run("sh", &["-c", "echo data; echo oops >&2; exit 4"], Duration::from_secs(5)).unwrap_or_else(|_| panic!());
        assert_eq!(out.stdout, "data\n");
        assert_eq!(out.stderr, "oops");
        assert_eq!(out.code, Some(4));
    }

    #[test]
    fn a_hanging_tool_is_stopped_at_its_limit() {
        let start = Instant::now();
        match run("sleep", &["30"], Duration::from_millis(200)) {
            Err(RunError::Failed(e)) => assert!(e.to_string().contains("did not finish within 0.2 s"), "{e}"),
            other => panic!("expected a time-out, got {other:?}"),
        }
        assert!(start.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn a_missing_tool_is_not_found() {
        assert!(matches!(run("/nonexistent/cm-tool", &[], Duration::from_secs(1)), Err(RunError::NotFound)));
    }
}
