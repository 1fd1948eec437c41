//! Log lines that anyone on the network can cause (failed handshakes,
//! refusals, protocol errors) are aggregated per source address, so that a
//! peer retrying every second, or an attacker, cannot flood the log: the
//! first line from an address is logged, then one summary per minute.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// How long one address's further refusals are counted before a summary.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Addresses tracked at once; beyond that, refusals share one counter.
const MAX_SOURCES: usize = 1024;

#[derive(Debug)]
struct Source {
    since: Instant,
    more: u64,
    last: String,
}

/// Refusal lines per source address, with time passed in.
#[derive(Debug, Default)]
pub struct RefusalLog {
    sources: HashMap<IpAddr, Source>,
    others: u64,
    others_since: Option<Instant>,
}

impl RefusalLog {
    /// Records a refusal from `source`; returns the lines to log now.
    pub fn record(&mut self, source: IpAddr, line: String, now: Instant) -> Vec<String> {
        let mut out = self.flush(now);
        if let Some(s) = self.sources.get_mut(&source) {
            s.more += 1;
            s.last = line;
        } else if self.sources.len() >= MAX_SOURCES {
            self.others += 1;
            self.others_since.get_or_insert(now);
        } else {
            self.sources.insert(source, Source { since: now, more: 0, last: String::new() });
            out.push(line);
        }
        out
    }

    /// The summaries of the windows that have ended by `now`.
    pub fn flush(&mut self, now: Instant) -> Vec<String> {
        self.flush_ended(|since| now >= since + WINDOW)
    }

    /// Every summary, ended or not: the agent is stopping.
    pub fn flush_all(&mut self) -> Vec<String> {
        self.flush_ended(|_| true)
    }

    fn flush_ended(&mut self, ended: impl Fn(Instant) -> bool) -> Vec<String> {
        let mut out = Vec::new();
        self.sources.retain(|addr, s| {
            if !ended(s.since) {
                return true;
            }
            if s.more > 0 {
                out.push(format!("{} more from {addr} in the last minute, the last: {}", s.more, s.last));
            }
            false
        });
        if self.others_since.is_some_and(&ended) {
            out.push(format!("{} more from other addresses in the last minute", self.others));
            (self.others, self.others_since) = (0, None);
        }
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_refusal_is_logged_then_one_summary_a_minute() {
        let mut log = RefusalLog::default();
        let t0 = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(log.record(a, "refused a: 1".into(), t0), ["refused a: 1"]);
        for i in 2..=59 {
            assert!(log.record(a, format!("refused a: {i}"), t0 + Duration::from_secs(i)).is_empty());
        }
        assert_eq!(log.record(b, "refused b".into(), t0 + Duration::from_secs(30)), ["refused b"]);
        assert!(log.flush(t0 + Duration::from_secs(59)).is_empty());
        assert_eq!(log.flush(t0 + WINDOW), ["58 more from 192.0.2.1 in the last minute, the last: refused a: 59"]);
        // b said it once: no summary. A new window starts with a logged line again.
        assert!(log.flush(t0 + Duration::from_secs(90)).is_empty());
        assert_eq!(log.record(a, "refused a: again".into(), t0 + Duration::from_secs(91)), ["refused a: again"]);
    }

    #[test]
    fn many_sources_share_one_counter_beyond_the_cap() {
        let mut log = RefusalLog::default();
        let t0 = Instant::now();
        let logged: usize = (0..MAX_SOURCES as u32 + 10)
            .map(|i| log.record(IpAddr::from(i.to_be_bytes()), "refused".into(), t0).len())
            .sum();
        assert_eq!(logged, MAX_SOURCES);
        assert_eq!(log.flush(t0 + WINDOW).last().unwrap(), "10 more from other addresses in the last minute");
    }
}
