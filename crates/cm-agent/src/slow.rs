//! A slow source: a collector that runs a tool or waits on the bus, on a
//! thread of its own, so that the core never waits on it. The core starts one
//! job at a time and gives it a deadline; the thread hands the answer back
//! through a callback (which wakes the core). A job past its deadline is
//! late: the core reports that and drops the source's data, and the answer,
//! when it comes, describes a moment long gone and is dropped too.

use std::sync::mpsc::{self, Sender};
use std::time::{Duration, Instant};

/// What the source's thread hands back.
#[derive(Debug)]
pub(crate) struct Answer<A> {
    pub job: u64,
    /// How long the job took on the thread.
    pub took: Duration,
    pub value: A,
}

/// The job the source is working on.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    job: u64,
    started: Instant,
    deadline: Duration,
    late: bool,
}

/// What [`SlowSource::start`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    Started,
    /// A job is still in flight (perhaps late): one at a time, never a queue.
    Busy,
    /// The thread is gone (it could not be started, or it stopped).
    Gone,
}

/// One slow source and the job it has in flight.
#[derive(Debug)]
pub(crate) struct SlowSource<J> {
    jobs: Option<Sender<(u64, J)>>,
    next_job: u64,
    in_flight: Option<InFlight>,
}

impl<J: Send + 'static> SlowSource<J> {
    /// Starts the thread `name`: it runs `work` on each job and passes the
    /// answer to `answer`, until `answer` returns false or the source is dropped.
    pub fn spawn<A: Send + 'static>(
        name: &str,
        mut work: impl FnMut(J) -> A + Send + 'static,
        mut answer: impl FnMut(Answer<A>) -> bool + Send + 'static,
    ) -> Self {
        let (tx, rx) = mpsc::channel::<(u64, J)>();
        let spawned = std::thread::Builder::new().name(name.into()).spawn(move || {
            for (job, input) in rx {
                let started = Instant::now();
                let value = work(input);
                if !answer(Answer { job, took: started.elapsed(), value }) {
                    return;
                }
            }
        });
        Self { jobs: spawned.is_ok().then_some(tx), next_job: 0, in_flight: None }
    }

    /// Hands `input` to the thread unless it is still busy with a job.
    pub fn start(&mut self, input: J, deadline: Duration, now: Instant) -> Start {
        if self.in_flight.is_some() {
            return Start::Busy;
        }
        let Some(jobs) = &self.jobs else { return Start::Gone };
        self.next_job += 1;
        if jobs.send((self.next_job, input)).is_err() {
            self.jobs = None;
            return Start::Gone;
        }
        self.in_flight = Some(InFlight { job: self.next_job, started: now, deadline, late: false });
        Start::Started
    }

    /// True while a job is in flight, late or not.
    pub fn busy(&self) -> bool {
        self.in_flight.is_some()
    }

    /// The value of `answer` if it is the job in flight and on time. A late
    /// answer is dropped; either way the source is free for its next job.
    pub fn accept<A>(&mut self, answer: Answer<A>) -> Option<(A, Duration)> {
        let job = self.in_flight.filter(|j| j.job == answer.job)?;
        self.in_flight = None;
        (!job.late).then_some((answer.value, answer.took))
    }

    /// When the job in flight must have answered, unless it is already late.
    pub fn deadline(&self) -> Option<Instant> {
        self.in_flight.filter(|j| !j.late).map(|j| j.started + j.deadline)
    }

    /// If the job in flight has passed its deadline at `now` (and was not
    /// found late before), marks it late and returns the deadline it had.
    pub fn overdue(&mut self, now: Instant) -> Option<Duration> {
        let job = self.in_flight.as_mut().filter(|j| !j.late && now >= j.started + j.deadline)?;
        job.late = true;
        Some(job.deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::Receiver;

    /// A source whose jobs wait for the test to release them; its answers
    /// come back on the returned channel.
    fn gated() -> (SlowSource<u32>, Sender<()>, Receiver<Answer<u32>>) {
        let (release, gate) = mpsc::channel::<()>();
        let (tx, answers) = mpsc::channel();
        let source = SlowSource::spawn(
            "test-slow",
            move |n: u32| {
                let _ = gate.recv_timeout(Duration::from_secs(60));
                n * 2
            },
            move |a| tx.send(a).is_ok(),
        );
        (source, release, answers)
    }

    const T: Duration = Duration::from_secs(60);

    #[test]
    fn an_answer_in_time_is_taken_and_frees_the_source() {
        let (mut source, release, answers) = gated();
        let now = Instant::now();
        assert_eq!(source.start(21, Duration::from_secs(5), now), Start::Started);
        assert_eq!(source.deadline(), Some(now + Duration::from_secs(5)));
        release.send(()).unwrap();
        let answer = answers.recv_timeout(T).unwrap();
        assert_eq!(source.accept(answer).map(|(v, _)| v), Some(42));
        assert!(!source.busy() && source.deadline().is_none());
    }

    #[test]
    fn one_job_at_a_time() {
        let (mut source, release, answers) = gated();
        let now = Instant::now();
        assert_eq!(source.start(1, Duration::from_secs(5), now), Start::Started);
        assert_eq!(source.start(2, Duration::from_secs(5), now), Start::Busy);
        release.send(()).unwrap();
        source.accept(answers.recv_timeout(T).unwrap());
        assert_eq!(source.start(3, Duration::from_secs(5), now), Start::Started);
        release.send(()).unwrap();
    }

    #[test]
    fn a_job_past_its_deadline_is_late_once_and_its_answer_is_dropped() {
        let (mut source, release, answers) = gated();
        let now = Instant::now();
        source.start(1, Duration::from_secs(5), now);
        assert_eq!(source.overdue(now + Duration::from_secs(4)), None);
        assert_eq!(source.overdue(now + Duration::from_secs(5)), Some(Duration::from_secs(5)));
        assert_eq!(source.overdue(now + Duration::from_secs(6)), None, "reported once");
        assert_eq!(source.deadline(), None, "nothing more to wait for");
        assert_eq!(source.start(2, Duration::from_secs(5), now), Start::Busy, "the thread is still on it");
        release.send(()).unwrap();
        assert_eq!(source.accept(answers.recv_timeout(T).unwrap()), None, "a late answer is stale");
        assert_eq!(source.start(2, Duration::from_secs(5), now), Start::Started);
        release.send(()).unwrap();
    }

    #[test]
    fn a_source_whose_thread_stopped_is_gone() {
        let mut source = SlowSource::spawn("test-stops", |n: u32| n, |_: Answer<u32>| false);
        let now = Instant::now();
        assert_eq!(source.start(1, Duration::from_secs(5), now), Start::Started);
        // The thread stops after its first answer; the job channel closes with it.
        let deadline = Instant::now() + T;
        loop {
            source.in_flight = None;
            if source.start(2, Duration::from_secs(5), now) == Start::Gone {
                break;
            }
            assert!(Instant::now() < deadline, "the thread never stopped");
            std::thread::yield_now();
        }
    }
}
