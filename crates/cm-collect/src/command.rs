//! Running external tools with a time limit and a cap on what they print.
//!
//! Everything happens on the calling thread: the tool's pipes and its exit are
//! polled together, so no reader thread is left blocked on a pipe that a
//! process the tool started keeps open. The tool runs in a process group of
//! its own, and what it started is stopped with it.

use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::process::{Pid, PidfdFlags, Signal};

use crate::error::CollectError;

/// The most a tool may print on stdout before it is stopped. The tools read
/// here print far less (`smartctl -x --json` about 100 KiB, `nvidia-smi -q -x`
/// some 20 KiB per GPU): more is a tool gone wrong, not a report to parse.
pub const MAX_OUTPUT_BYTES: usize = 4 << 20;
/// stderr only goes into error messages; beyond this it is read and dropped,
/// so that a tool never blocks on a full stderr pipe.
const MAX_STDERR_BYTES: usize = 64 << 10;
/// How long the pipes may stay open once the tool itself has exited: longer
/// means a process it left behind holds them, and that one is stopped.
const AFTER_EXIT: Duration = Duration::from_millis(100);
/// Without a pidfd (Linux before 5.3) the child's exit cannot be polled with
/// the pipes: it is looked at this often instead.
const EXIT_CHECK: Duration = Duration::from_millis(50);
/// After SIGKILL a process leaves at once, unless it is stuck in the kernel
/// (a hung disk): it is waited for this long, then reaped in the background.
const STOP_GRACE: Duration = Duration::from_secs(1);

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

/// Runs `program args`. It is stopped, with every process it started, after
/// `limit` or once it printed more than [`MAX_OUTPUT_BYTES`]; either way this
/// returns within `limit` and a moment, whatever the tool does.
pub fn run(program: &str, args: &[&str], limit: Duration) -> Result<Output, RunError> {
    run_capped(program, args, limit, MAX_OUTPUT_BYTES)
}

fn run_capped(program: &str, args: &[&str], limit: Duration, cap: usize) -> Result<Output, RunError> {
    let shown = || std::iter::once(program).chain(args.iter().copied()).collect::<Vec<_>>().join(" ");
    let fail = |message: String| RunError::Failed(CollectError::Command { command: shown(), message });
    let deadline = Instant::now() + limit;
    let mut child = match Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(RunError::NotFound),
        Err(e) => return Err(fail(format!("cannot start: {e}"))),
    };
    let mut out = Pipe::new(child.stdout.take().expect("stdout is piped"), cap);
    let mut err = Pipe::new(child.stderr.take().expect("stderr is piped"), MAX_STDERR_BYTES);
    // Readable once the child exits; it stays unreaped until we wait, so its
    // pid (the process group's id) cannot be reused before the group is killed.
    let pidfd = rustix::process::pidfd_open(Pid::from_child(&child), PidfdFlags::empty()).ok();
    let mut exited_at: Option<Instant> = None;
    loop {
        if out.over {
            stop(child);
            return Err(fail(format!("printed more than {} on stdout and was stopped", size(cap))));
        }
        if exited_at.is_none() && pidfd.is_none() {
            match child.try_wait() {
                Ok(Some(_)) => exited_at = Some(Instant::now()),
                Ok(None) => {}
                Err(e) => {
                    stop(child);
                    return Err(fail(format!("cannot wait for it: {e}")));
                }
            }
        }
        let now = Instant::now();
        let until = exited_at.map_or(deadline, |at| (at + AFTER_EXIT).min(deadline));
        match exited_at {
            Some(_) if out.pipe.is_none() && err.pipe.is_none() => break,
            Some(_) if now >= until => {
                // What the tool left behind still holds the pipes: stop it too.
                kill_group(&child);
                break;
            }
            None if now >= deadline => {
                stop(child);
                return Err(fail(format!("did not finish within {:.1} s and was stopped", limit.as_secs_f64())));
            }
            _ => {}
        }
        let mut wait = until.saturating_duration_since(now);
        let exit_fd = pidfd.as_ref().filter(|_| exited_at.is_none());
        if exited_at.is_none() && exit_fd.is_none() {
            wait = wait.min(EXIT_CHECK);
        }
        let ready = poll(&[out.fd(), err.fd(), exit_fd.map(|f| f.as_fd())], wait);
        if ready[0] {
            out.read_ready();
        }
        if ready[1] {
            err.read_ready();
        }
        if ready[2] {
            exited_at = Some(Instant::now());
        }
    }
    let status = match child.wait() {
        Ok(status) => status,
        Err(e) => return Err(fail(format!("cannot wait for it: {e}"))),
    };
    Ok(Output {
        stdout: String::from_utf8_lossy(&out.buf).into_owned(),
        code: status.code(),
        stderr: String::from_utf8_lossy(&err.buf).trim().to_owned(),
    })
}

/// One of the child's output pipes and what came out of it so far.
struct Pipe<R> {
    /// `None` once it reached end of file.
    pipe: Option<R>,
    buf: Vec<u8>,
    cap: usize,
    /// More than `cap` bytes came.
    over: bool,
}

impl<R: Read + AsFd> Pipe<R> {
    fn new(pipe: R, cap: usize) -> Self {
        Self { pipe: Some(pipe), buf: Vec::new(), cap, over: false }
    }

    fn fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.pipe.as_ref().map(|p| p.as_fd())
    }

    /// Reads what is there. Called only after poll said the pipe is readable
    /// (or closed), so it does not block.
    fn read_ready(&mut self) {
        let Some(pipe) = &mut self.pipe else { return };
        let mut chunk = [0u8; 32 * 1024];
        match pipe.read(&mut chunk) {
            Ok(0) => self.pipe = None,
            Ok(n) => {
                let room = self.cap.saturating_sub(self.buf.len());
                self.buf.extend_from_slice(&chunk[..n.min(room)]);
                self.over |= n > room;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // A pipe that cannot be read has nothing more to give.
            Err(_) => self.pipe = None,
        }
    }
}

/// Waits up to `wait` for any of `fds` to be readable or closed; says which are.
fn poll(fds: &[Option<std::os::fd::BorrowedFd<'_>>; 3], wait: Duration) -> [bool; 3] {
    let which: Vec<usize> = (0..fds.len()).filter(|&i| fds[i].is_some()).collect();
    let mut list: Vec<PollFd<'_>> =
        fds.iter().flatten().map(|fd| PollFd::from_borrowed_fd(*fd, PollFlags::IN)).collect();
    let timeout = Timespec::try_from(wait).unwrap_or(Timespec { tv_sec: 1, tv_nsec: 0 });
    let mut ready = [false; 3];
    match rustix::event::poll(&mut list, Some(&timeout)) {
        Ok(_) => {
            for (&i, p) in which.iter().zip(&list) {
                ready[i] = !p.revents().is_empty();
            }
        }
        Err(rustix::io::Errno::INTR) => {}
        // Not expected from poll on our own pipes; do not spin if it happens.
        Err(_) => std::thread::sleep(wait.min(EXIT_CHECK)),
    }
    ready
}

/// SIGKILL to the tool's process group: the tool and whatever it started
/// (unless that left the group on purpose).
fn kill_group(child: &Child) {
    let pid = Pid::from_child(child);
    // kill(-1) would signal every process we may signal: never.
    if pid != Pid::INIT {
        let _ = rustix::process::kill_process_group(pid, Signal::KILL);
    }
}

/// Kills the tool's group and reaps the tool, without waiting long for a
/// process stuck in the kernel: a thread of its own reaps that one later.
fn stop(mut child: Child) {
    kill_group(&child);
    let until = Instant::now() + STOP_GRACE;
    while Instant::now() < until {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return,
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    let _ = std::thread::Builder::new().name("reap".into()).spawn(move || {
        let _ = child.wait();
    });
}

fn size(bytes: usize) -> String {
    if bytes >= 1 << 20 && bytes % (1 << 20) == 0 {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes} bytes")
    }
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

    fn scratch_file(name: &str) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!("cm-command-{name}-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        path
    }

    /// Waits (with a generous deadline) until the process whose pid the
    /// script wrote to `pid_file` is gone or a zombie.
    fn assert_stopped(pid_file: &std::path::Path) {
        let pid = std::fs::read_to_string(pid_file).expect("the script wrote its child's pid");
        let stat = format!("/proc/{}/stat", pid.trim());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let state = std::fs::read_to_string(&stat).ok().and_then(|s| s[s.rfind(')')? + 2..].chars().next());
            if matches!(state, None | Some('Z')) {
                return;
            }
            assert!(Instant::now() < deadline, "process {} still runs ({state:?})", pid.trim());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn a_process_the_tool_started_is_stopped_with_it_at_the_limit() {
        let pid_file = scratch_file("grandchild-hang");
        let script = format!("sleep 30 & echo $! > '{}'; sleep 30", pid_file.display());
        let start = Instant::now();
        match run("sh", &["-c", &script], Duration::from_millis(300)) {
            Err(RunError::Failed(e)) => assert!(e.to_string().contains("did not finish within 0.3 s"), "{e}"),
            other => panic!("expected a time-out, got {other:?}"),
        }
        // The grandchild holds the pipes open: nothing may wait for it to let go.
        assert!(start.elapsed() < Duration::from_secs(5), "returned after {:?}", start.elapsed());
        assert_stopped(&pid_file);
    }

    #[test]
    fn a_tool_that_exits_leaving_a_process_on_its_pipes_still_returns_its_output() {
        let pid_file = scratch_file("grandchild-left");
        let script = format!("echo report; sleep 30 & echo $! > '{}'", pid_file.display());
        let start = Instant::now();
        let out = run("sh", &["-c", &script], Duration::from_secs(20)).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!((out.stdout.as_str(), out.code), ("report\n", Some(0)));
        assert!(start.elapsed() < Duration::from_secs(10), "waited {:?} for the pipes", start.elapsed());
        assert_stopped(&pid_file);
    }

    #[test]
    fn output_beyond_the_cap_stops_the_tool_and_says_so() {
        match run("sh", &["-c", "exec yes"], Duration::from_secs(20)) {
            Err(RunError::Failed(e)) => assert!(e.to_string().contains("printed more than 4 MiB on stdout"), "{e}"),
            other => panic!("expected the cap, got {other:?}"),
        }
        match run_capped("head", &["-c", "1001", "/dev/zero"], Duration::from_secs(20), 1000) {
            Err(RunError::Failed(e)) => assert!(e.to_string().contains("more than 1000 bytes"), "{e}"),
            other => panic!("expected the cap, got {other:?}"),
        }
        let exact = run_capped("head", &["-c", "1000", "/dev/zero"], Duration::from_secs(20), 1000);
        assert_eq!(exact.unwrap_or_else(|e| panic!("{e:?}")).stdout.len(), 1000, "the cap itself is allowed");
    }

    #[test]
    fn a_tool_that_floods_stderr_does_not_block_and_keeps_its_stdout() {
        let script = "head -c 1000000 /dev/zero | tr '\\0' x >&2; echo done";
        let out = run("sh", &["-c", script], Duration::from_secs(20)).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(out.stdout, "done\n");
        assert_eq!(out.stderr.len(), MAX_STDERR_BYTES);
    }

    #[test]
    fn a_missing_tool_is_not_found() {
        assert!(matches!(run("/nonexistent/cm-tool", &[], Duration::from_secs(1)), Err(RunError::NotFound)));
    }
}
