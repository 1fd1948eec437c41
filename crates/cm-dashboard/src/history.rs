//! The history the views draw, per host: one [`Timeline`] per series of the
//! sparklines (and one for the open chart), filled from the agent's history
//! answers and from live snapshots, and the fetches that keep them filled.
//!
//! Pure, like `app.rs`: samples, answers and clocks come in as arguments,
//! fetches go out as values ([`Fetch`]) for the event loop to send.
//!
//! The rule that keeps a timeline free of holes and of counted-twice samples:
//! a fetch asks for `[from, to)` where `from` is the start of a bucket and
//! `to` is just after the newest sample the host has sent. The answer then
//! replaces every bucket that starts in that range; samples that arrive while
//! the fetch is in flight and are not older than `to` are kept aside and
//! folded in again after the answer, because the store did not have them when
//! it answered. Each later fetch starts at the bucket where the previous one
//! ended, so after a reconnect (backfill) the time the host was away comes
//! from its store.
//!
//! Live samples are the dashboard's copy of the host, which the agent keeps
//! within the tolerances of docs/PROTOCOL.md (a tmpfs within 1 MiB, say):
//! good enough to move a sparkline, not to trust for a min or max. The
//! store holds every sample, so each timeline asks again once a bucket (at
//! most once a minute) and the store's figures replace the live ones.

use std::collections::BTreeMap;

use cm_proto::history::{Answer, HistoryRequest, Point, Resolution, MAX_SELECTORS};
use cm_proto::series::{self, Sample};
use cm_proto::HostSnapshot;

/// How much time a timeline holds and how finely.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Window {
    pub span_ms: i64,
    /// One point per bucket: its min, max, mean and count.
    pub bucket_ms: i64,
}

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

impl Window {
    /// CPU, memory and temperatures in the host view: the last hour by minute.
    pub const LAST_HOUR: Window = Window { span_ms: HOUR, bucket_ms: MINUTE };
    /// Filesystem use: the last day by quarter hour.
    pub const LAST_DAY: Window = Window { span_ms: DAY, bucket_ms: 15 * MINUTE };
    /// Drive wear: the last 30 days by 6 hours.
    pub const LAST_MONTH: Window = Window { span_ms: 30 * DAY, bucket_ms: 6 * HOUR };

    /// The store's tier to ask for: the coarsest one that is still finer
    /// than a bucket, so that every bucket is made of whole points.
    pub fn resolution(self) -> Resolution {
        if self.bucket_ms % HOUR == 0 {
            Resolution::Hour
        } else if self.bucket_ms % MINUTE == 0 {
            Resolution::Minute
        } else {
            Resolution::Raw
        }
    }

    /// How often a timeline asks its store again once filled: once a bucket,
    /// and at most once a minute. Between fetches live samples move it.
    pub fn refetch_ms(self) -> i64 {
        self.bucket_ms.max(MINUTE)
    }

    /// `span` in words: `1h`, `24h`, `30d`.
    pub fn label(self) -> String {
        if self.span_ms % DAY == 0 && self.span_ms > DAY {
            format!("{}d", self.span_ms / DAY)
        } else {
            format!("{}h", self.span_ms / HOUR)
        }
    }

    fn bucket(self, ts_ms: i64) -> i64 {
        ts_ms.div_euclid(self.bucket_ms) * self.bucket_ms
    }
}

/// The chart view's ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    Hour,
    Day,
    Week,
    Month,
}

impl Range {
    pub const ALL: [Range; 4] = [Range::Hour, Range::Day, Range::Week, Range::Month];

    /// About 120 points across, whatever the range: raw samples in 30 s
    /// buckets for the hour, minute rollups for the day, hourly ones beyond.
    pub fn window(self) -> Window {
        match self {
            Range::Hour => Window { span_ms: HOUR, bucket_ms: 30_000 },
            Range::Day => Window { span_ms: DAY, bucket_ms: 10 * MINUTE },
            Range::Week => Window { span_ms: 7 * DAY, bucket_ms: HOUR },
            Range::Month => Window { span_ms: 30 * DAY, bucket_ms: 6 * HOUR },
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Range::Hour => "1h",
            Range::Day => "24h",
            Range::Week => "7d",
            Range::Month => "30d",
        }
    }

    /// The range that shows what a sparkline of `window` shows.
    pub fn like(window: Window) -> Range {
        Range::ALL.into_iter().find(|r| r.window().span_ms >= window.span_ms).unwrap_or(Range::Month)
    }
}

/// After a failed fetch, how long a timeline waits before asking again.
pub const RETRY_MS: u64 = 30_000;
/// A fetch with no answer after this long is taken as lost and asked again.
pub const FETCH_TIMEOUT_MS: u64 = 60_000;

/// One figure made of the points that fall in a stretch of time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Span {
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub count: u64,
}

impl Span {
    fn of(p: &Point) -> Span {
        Span { min: p.min, max: p.max, mean: p.mean, count: u64::from(p.count.max(1)) }
    }

    fn add(&mut self, other: Span) {
        let n = self.count + other.count;
        self.mean = (self.mean * self.count as f64 + other.mean * other.count as f64) / n as f64;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.count = n;
    }
}

/// A fetch in flight for one timeline.
#[derive(Debug, Clone, PartialEq)]
struct Pending {
    id: u64,
    /// When it was sent, on the dashboard's clock.
    sent_ms: u64,
    to_ms: i64,
    /// Samples at or after `to_ms` that arrived meanwhile: the answer does not
    /// hold them, so they are folded in again after it.
    late: Vec<(i64, f64)>,
}

/// One series of one host over a [`Window`]: a point per bucket, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    pub window: Window,
    points: Vec<Point>,
    /// The store has answered for everything before this (host clock).
    stored_to: Option<i64>,
    pending: Option<Pending>,
    /// When to ask the store again (dashboard clock).
    next_fetch_ms: u64,
    /// The newest value a snapshot carried, and when.
    pub last: Option<(i64, f64)>,
}

impl Timeline {
    pub fn new(window: Window) -> Self {
        Timeline { window, points: Vec::new(), stored_to: None, pending: None, next_fetch_ms: 0, last: None }
    }

    /// The buckets held, oldest first.
    pub fn points(&self) -> &[Point] {
        &self.points
    }

    /// Whether the store has answered for this timeline yet.
    pub fn has_stored(&self) -> bool {
        self.stored_to.is_some()
    }

    /// Whether a fetch for it is in flight.
    pub fn is_loading(&self) -> bool {
        self.pending.is_some()
    }

    /// Adds one live sample.
    pub fn sample(&mut self, ts_ms: i64, value: f64) {
        if let Some(p) = &mut self.pending {
            if ts_ms >= p.to_ms {
                p.late.push((ts_ms, value));
            }
        }
        if self.last.is_none_or(|(at, _)| ts_ms >= at) {
            self.last = Some((ts_ms, value));
        }
        self.fold(&Point::raw(ts_ms, value));
        self.trim(ts_ms);
    }

    /// Adds `p` to the bucket it falls in.
    fn fold(&mut self, p: &Point) {
        let start = self.window.bucket(p.ts_ms);
        let add = Span::of(p);
        let at = match self.points.last() {
            Some(last) if last.ts_ms < start => self.points.len(),
            _ => self.points.partition_point(|q| q.ts_ms < start),
        };
        match self.points.get_mut(at) {
            Some(q) if q.ts_ms == start => {
                let mut span = Span::of(q);
                span.add(add);
                *q = Point { ts_ms: start, min: span.min, max: span.max, mean: span.mean, count: span.count as u32 };
            }
            _ => self.points.insert(at, Point { ts_ms: start, ..*p }),
        }
    }

    /// Forgets buckets that ended before the window that ends at `newest_ms`.
    fn trim(&mut self, newest_ms: i64) {
        let keep_from = self.window.bucket(newest_ms - self.window.span_ms);
        if self.points.first().is_some_and(|p| p.ts_ms < keep_from) {
            let cut = self.points.partition_point(|p| p.ts_ms < keep_from);
            self.points.drain(..cut);
        }
    }

    /// The range to ask the store for, if a fetch is due: `latest_ms` is the
    /// host's newest sample, `now_ms` the dashboard's clock; `backfill` asks
    /// at once, whatever the schedule, because the host was away.
    fn due(&self, latest_ms: i64, now_ms: u64, backfill: bool) -> Option<(i64, i64)> {
        if self.pending.is_some() || !(backfill || now_ms >= self.next_fetch_ms) {
            return None;
        }
        let start = self.window.bucket(latest_ms - self.window.span_ms);
        let from = self.stored_to.map_or(start, |s| self.window.bucket(s).max(start));
        let to = latest_ms + 1;
        (to > from).then_some((from, to))
    }

    fn sent(&mut self, id: u64, to_ms: i64, now_ms: u64) {
        self.pending = Some(Pending { id, sent_ms: now_ms, to_ms, late: Vec::new() });
    }

    /// Takes the store's `points` for `[from_ms, to_ms)` in place of what was
    /// held there.
    fn merge(&mut self, from_ms: i64, to_ms: i64, points: &[Point], now_ms: u64) {
        let late = self.pending.take().map(|p| p.late).unwrap_or_default();
        let (lo, hi) =
            (self.points.partition_point(|p| p.ts_ms < from_ms), self.points.partition_point(|p| p.ts_ms < to_ms));
        self.points.drain(lo..hi);
        for p in points.iter().filter(|p| (from_ms..to_ms).contains(&p.ts_ms)) {
            self.fold(p);
        }
        // The bucket that holds `to_ms` was dropped with the range; what
        // arrived in it after `to_ms` goes back in.
        let window = self.window;
        for &(ts, v) in late.iter().filter(|(ts, _)| window.bucket(*ts) < to_ms) {
            self.fold(&Point::raw(ts, v));
        }
        self.stored_to = Some(self.stored_to.map_or(to_ms, |s| s.max(to_ms)));
        self.next_fetch_ms = now_ms + self.window.refetch_ms() as u64;
        if let Some(newest) = self.points.last().map(|p| p.ts_ms).max(self.last.map(|(t, _)| t)) {
            self.trim(newest);
        }
    }

    fn failed(&mut self, now_ms: u64) {
        self.pending = None;
        self.next_fetch_ms = now_ms + RETRY_MS;
    }

    /// The figures of `n` equal stretches of the window that ends at
    /// `end_ms`, oldest first; `None` where no point falls. A bucket wider
    /// than a stretch counts in every stretch it overlaps, so a chart wider
    /// than its buckets draws steps rather than gaps.
    pub fn columns(&self, end_ms: i64, n: usize) -> Vec<Option<Span>> {
        let mut out = vec![None; n];
        if n == 0 {
            return out;
        }
        let start = end_ms - self.window.span_ms;
        let width = self.window.span_ms as f64 / n as f64;
        for p in &self.points {
            let (b0, b1) = (p.ts_ms, p.ts_ms + self.window.bucket_ms);
            if b1 <= start || b0 > end_ms {
                continue;
            }
            let first = (((b0 - start) as f64 / width).floor().max(0.0)) as usize;
            let last = ((((b1 - start) as f64 / width).ceil() as usize).max(first + 1)).min(n);
            for slot in out.iter_mut().take(last).skip(first.min(n - 1)) {
                match slot {
                    Some(s) => s.add(Span::of(p)),
                    None => *slot = Some(Span::of(p)),
                }
            }
        }
        out
    }

    /// The figures of the whole window that ends at `end_ms`.
    pub fn summary(&self, end_ms: i64) -> Option<Span> {
        let start = end_ms - self.window.span_ms;
        let mut total: Option<Span> = None;
        for p in self.points.iter().filter(|p| p.ts_ms + self.window.bucket_ms > start && p.ts_ms <= end_ms) {
            match &mut total {
                Some(t) => t.add(Span::of(p)),
                None => total = Some(Span::of(p)),
            }
        }
        total
    }

    /// The mean of the points in `[from_ms, to_ms)`.
    fn mean_between(&self, from_ms: i64, to_ms: i64) -> Option<f64> {
        let mut total: Option<Span> = None;
        for p in self.points.iter().filter(|p| (from_ms..to_ms).contains(&p.ts_ms)) {
            match &mut total {
                Some(t) => t.add(Span::of(p)),
                None => total = Some(Span::of(p)),
            }
        }
        total.map(|t| t.mean)
    }
}

/// Whether a host can answer history requests.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Source {
    /// Not known yet: no connection so far.
    #[default]
    Unknown,
    Available,
    /// Why not: an agent older than protocol 1.2, no local store.
    Unavailable(String),
}

/// A request for the event loop to send: to host number `host`'s agent (or
/// the local store); its answer comes back as `Msg::HistoryAnswer` with `id`.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetch {
    pub id: u64,
    pub host: usize,
    pub request: HistoryRequest,
}

/// Which way a series is heading, for the overview.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trend {
    Rising,
    Falling,
    Steady,
}

impl Trend {
    pub fn arrow(self) -> char {
        match self {
            Trend::Rising => '↑',
            Trend::Falling => '↓',
            Trend::Steady => '→',
        }
    }
}

/// The rule that turns a timeline into a [`Trend`] without flicker: the mean
/// of the last `recent_ms` is compared with the mean of the `recent_ms`
/// before it. The arrow turns up (or down) when the difference reaches
/// `enter`, and stays until it falls back under `leave`: a value that wavers
/// around one threshold does not flip the arrow on every snapshot. Means
/// over many minutes move slowly, so a single spike does not turn it either.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrendRule {
    pub recent_ms: i64,
    /// Percentage points.
    pub enter: f64,
    pub leave: f64,
}

/// Memory: the last 10 minutes against the 10 before, 3 points to turn, 1 to turn back.
pub const MEMORY_TREND: TrendRule = TrendRule { recent_ms: 10 * MINUTE, enter: 3.0, leave: 1.0 };
/// A filesystem: the last 2 hours against the 2 before, 1 point to turn, 0.3 to turn back.
pub const FILESYSTEM_TREND: TrendRule = TrendRule { recent_ms: 2 * HOUR, enter: 1.0, leave: 0.3 };

impl TrendRule {
    /// The trend of `t` at `end_ms`, given the one shown before; `None` while
    /// either half has no points.
    pub fn judge(&self, t: &Timeline, end_ms: i64, before: Option<Trend>) -> Option<Trend> {
        // Whole buckets only: the one still filling would make the recent mean jump.
        let cut = t.window.bucket(end_ms);
        let recent = t.mean_between(cut - self.recent_ms, cut)?;
        let earlier = t.mean_between(cut - 2 * self.recent_ms, cut - self.recent_ms)?;
        let diff = recent - earlier;
        Some(match before {
            Some(Trend::Rising) if diff >= self.leave => Trend::Rising,
            Some(Trend::Falling) if diff <= -self.leave => Trend::Falling,
            _ if diff >= self.enter => Trend::Rising,
            _ if diff <= -self.enter => Trend::Falling,
            _ => Trend::Steady,
        })
    }
}

/// The overview's arrows for one host.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Trends {
    pub memory: Option<Trend>,
    /// The fullest filesystem's mount point and its trend.
    pub fullest: Option<(String, Option<Trend>)>,
}

/// The series the host view draws, in the order of its rows, with the
/// window of each one's sparkline: CPU and memory, then per drive its wear
/// and temperature and the filesystems on it, then the other filesystems.
pub fn charted(snap: &HostSnapshot) -> Vec<(String, Window)> {
    let mut out = Vec::new();
    if snap.cpu.as_ref().is_some_and(|c| c.utilisation_percent.is_some()) {
        out.push(("cpu.utilisation_percent".to_string(), Window::LAST_HOUR));
    }
    if snap.memory.as_ref().is_some_and(|m| m.total_bytes > 0) {
        out.push(("memory.used_percent".to_string(), Window::LAST_HOUR));
    }
    let filesystems = |drive: Option<&str>, out: &mut Vec<(String, Window)>| {
        for f in snap.filesystems.iter().filter(|f| f.drive.as_deref() == drive) {
            if f.used_bytes + f.available_bytes > 0 {
                out.push((series::filesystem(&f.mount_point, "used_percent"), Window::LAST_DAY));
            }
        }
    };
    for d in &snap.drives {
        if let Some(h) = &d.health {
            if h.wear_percent.is_some() {
                out.push((series::drive(&d.name, "wear_percent"), Window::LAST_MONTH));
            }
            if h.temperature_celsius.is_some() {
                out.push((series::drive(&d.name, "temperature_celsius"), Window::LAST_HOUR));
            }
        }
        filesystems(Some(&d.name), &mut out);
    }
    filesystems(None, &mut out);
    out
}

/// The history one host's views draw.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HostHistory {
    pub source: Source,
    /// The sparklines' timelines, by series name.
    pub tracks: BTreeMap<String, Timeline>,
    /// The newest sample's time, on the host's clock.
    pub latest_ms: Option<i64>,
    /// Why the last fetch failed; cleared by the next answer.
    pub error: Option<String>,
    pub trends: Trends,
    /// The host came back: ask for what it missed at the next chance.
    backfill: bool,
    /// A snapshot came since the source said it can answer, so `latest_ms`
    /// is the host's clock now, not from before it went away.
    heard: bool,
}

impl HostHistory {
    /// The source changed: a connection came up and said what it can do.
    pub fn set_source(&mut self, source: Source) {
        if source == Source::Available {
            self.backfill = true;
        }
        self.heard = false;
        self.source = source;
    }

    /// The host's clock, once a snapshot has set it on this connection.
    pub fn clock(&self) -> Option<i64> {
        self.latest_ms.filter(|_| self.heard)
    }

    /// Takes one snapshot's values: tracks what the host view draws (and
    /// drops what it no longer shows), adds the live samples, and works out
    /// the trends. Returns the samples, for the chart.
    pub fn observe(&mut self, snap: &HostSnapshot, received_ms: u64) -> Vec<Sample> {
        let ts = if snap.timestamp_ms > 0 { snap.timestamp_ms } else { received_ms } as i64;
        self.latest_ms = Some(self.latest_ms.map_or(ts, |l| l.max(ts)));
        self.heard = true;
        let wanted = charted(snap);
        self.tracks.retain(|name, _| wanted.iter().any(|(n, _)| n == name));
        for (name, window) in wanted {
            self.tracks.entry(name).or_insert_with(|| Timeline::new(window));
        }
        let samples = series::flatten(snap);
        for s in &samples {
            if let Some(t) = self.tracks.get_mut(&s.name) {
                t.sample(ts, s.value);
            }
        }
        self.judge_trends();
        samples
    }

    /// Works the overview's trends out from the timelines: memory, and the
    /// filesystem whose latest use is highest.
    fn judge_trends(&mut self) {
        let Some(end) = self.latest_ms else { return };
        let judge = |rule: &TrendRule, name: &str, before: Option<Trend>| {
            self.tracks.get(name).and_then(|t| rule.judge(t, end, before))
        };
        self.trends.memory = judge(&MEMORY_TREND, "memory.used_percent", self.trends.memory);
        let fullest = self
            .tracks
            .iter()
            .filter_map(|(name, t)| Some((mount_of(name)?, t.last?.1)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(mount, _)| mount.to_string());
        self.trends.fullest = fullest.map(|mount| {
            let before = match &self.trends.fullest {
                Some((m, trend)) if *m == mount => *trend,
                _ => None,
            };
            let trend = judge(&FILESYSTEM_TREND, &series::filesystem(&mount, "used_percent"), before);
            (mount, trend)
        });
    }

    /// The fetches due for the sparklines at `now_ms`; `next_id` numbers them.
    pub fn plan(&mut self, host: usize, now_ms: u64, next_id: &mut u64) -> Vec<Fetch> {
        let mut fetches = Vec::new();
        if self.source != Source::Available {
            return fetches;
        }
        let Some(latest) = self.clock() else { return fetches };
        let backfill = std::mem::take(&mut self.backfill);
        for t in self.tracks.values_mut() {
            expire(t, now_ms);
        }
        // Timelines with the same window and range share one request.
        let mut groups: BTreeMap<(Window, i64, i64), Vec<String>> = BTreeMap::new();
        for (name, t) in &self.tracks {
            if let Some((from, to)) = t.due(latest, now_ms, backfill) {
                groups.entry((t.window, from, to)).or_default().push(name.clone());
            }
        }
        for ((window, from, to), names) in groups {
            for chunk in names.chunks(MAX_SELECTORS) {
                let id = take_id(next_id);
                for name in chunk {
                    self.tracks.get_mut(name).expect("named from the map").sent(id, to, now_ms);
                }
                fetches.push(Fetch { id, host, request: request(chunk.to_vec(), window, from, to) });
            }
        }
        fetches
    }

    /// Takes the answer to fetch `id` (or its failure) into the timelines
    /// that asked for it. Returns whether any did.
    pub fn answer(&mut self, id: u64, request: &HistoryRequest, answer: &Result<Answer, String>, now_ms: u64) -> bool {
        let mut taken = false;
        for (name, t) in &mut self.tracks {
            if t.pending.as_ref().is_some_and(|p| p.id == id) {
                take_answer(t, name, request, answer, now_ms);
                taken = true;
            }
        }
        if taken {
            self.error = answer.as_ref().err().cloned();
            self.judge_trends();
        }
        taken
    }
}

/// The mount point in a filesystem's use series: `fs./var.used_percent` -> `/var`.
fn mount_of(name: &str) -> Option<&str> {
    name.strip_prefix("fs.")?.strip_suffix(".used_percent")
}

fn take_id(next_id: &mut u64) -> u64 {
    *next_id += 1;
    *next_id
}

/// Forgets a fetch that has waited too long for its answer.
fn expire(t: &mut Timeline, now_ms: u64) {
    if t.pending.as_ref().is_some_and(|p| now_ms.saturating_sub(p.sent_ms) > FETCH_TIMEOUT_MS) {
        t.pending = None;
        t.next_fetch_ms = now_ms;
    }
}

/// The request for `series` over `[from, to)` at the tier `window` wants.
pub fn request(series: Vec<String>, window: Window, from_ms: i64, to_ms: i64) -> HistoryRequest {
    HistoryRequest { series, from_ms, to_ms, resolution: window.resolution(), max_points: 0, events: false }
}

/// Takes `name`'s part of an answer to `request` into `t`.
pub fn take_answer(
    t: &mut Timeline,
    name: &str,
    request: &HistoryRequest,
    answer: &Result<Answer, String>,
    now_ms: u64,
) {
    match answer {
        Ok(a) => {
            let points = a.series.iter().find(|(n, ..)| n == name).map_or(&[][..], |(_, _, p)| p.as_slice());
            t.merge(request.from_ms, request.to_ms, points, now_ms);
        }
        Err(_) => t.failed(now_ms),
    }
}

/// The fetch for the open chart's timeline, if one is due.
pub fn plan_chart(
    t: &mut Timeline,
    name: &str,
    host: usize,
    latest_ms: Option<i64>,
    now_ms: u64,
    backfill: bool,
    next_id: &mut u64,
) -> Option<Fetch> {
    expire(t, now_ms);
    let (from, to) = t.due(latest_ms?, now_ms, backfill)?;
    let id = take_id(next_id);
    t.sent(id, to, now_ms);
    Some(Fetch { id, host, request: request(vec![name.to_string()], t.window, from, to) })
}

/// Whether `t` waits for the answer `id`.
pub fn awaits(t: &Timeline, id: u64) -> bool {
    t.pending.as_ref().is_some_and(|p| p.id == id)
}

/// What a store would answer to `request`: a point per tier bucket (10 s
/// apart for raw) over the whole range, the value `value(series, ts)`, with a
/// spread of one either side for rollups.
#[cfg(test)]
pub(crate) fn synthetic_answer(request: &HistoryRequest, value: impl Fn(&str, i64) -> f64) -> Answer {
    let step = request.resolution.bucket_ms().unwrap_or(10_000);
    let first = request.from_ms.div_euclid(step) * step + if request.from_ms % step == 0 { 0 } else { step };
    let series = request
        .series
        .iter()
        .map(|name| {
            let points = (0..)
                .map(|i| first + i * step)
                .take_while(|ts| *ts < request.to_ms)
                .map(|ts| {
                    let v = value(name, ts);
                    match request.resolution {
                        Resolution::Raw | Resolution::Auto => Point::raw(ts, v),
                        _ => Point { ts_ms: ts, min: v - 1.0, max: v + 1.0, mean: v, count: 6 },
                    }
                })
                .collect();
            (name.clone(), request.resolution, points)
        })
        .collect();
    Answer { series, events: Vec::new(), end: Default::default() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cm_proto::history::HistoryEnd;
    use cm_proto::{Cpu, Filesystem, Memory};

    /// 2025-11-24 16:00 UTC: on a minute, a quarter hour and an hour.
    const T0: i64 = 1_764_000_000_000;
    const S: i64 = 1000;

    fn answer(series: &str, points: Vec<Point>) -> Result<Answer, String> {
        Ok(Answer {
            series: vec![(series.into(), Resolution::Minute, points)],
            events: Vec::new(),
            end: HistoryEnd::default(),
        })
    }

    fn counts(t: &Timeline) -> Vec<(i64, u32)> {
        t.points().iter().map(|p| ((p.ts_ms - T0) / MINUTE, p.count)).collect()
    }

    #[test]
    fn live_samples_fall_into_their_buckets() {
        let mut t = Timeline::new(Window::LAST_HOUR);
        for (i, v) in [10.0, 30.0, 20.0].into_iter().enumerate() {
            t.sample(T0 + i as i64 * 20 * S, v);
        }
        t.sample(T0 + 61 * S, 50.0);
        let p = t.points()[0];
        assert_eq!((p.min, p.max, p.mean, p.count), (10.0, 30.0, 20.0, 3));
        assert_eq!(counts(&t), [(0, 3), (1, 1)]);
        assert_eq!(t.last, Some((T0 + 61 * S, 50.0)));
        t.sample(T0 + 2 * HOUR, 1.0);
        assert_eq!(counts(&t), [(120, 1)], "what left the window is gone");
    }

    #[test]
    fn an_answer_replaces_its_range_and_samples_that_came_meanwhile_stay() {
        let mut h = HostHistory::default();
        h.set_source(Source::Available);
        h.tracks.insert("cpu.utilisation_percent".into(), Timeline::new(Window::LAST_HOUR));
        // Live samples at 10 s intervals for 3 minutes (the host's clock).
        for i in 0..18 {
            let t = h.tracks.get_mut("cpu.utilisation_percent").unwrap();
            t.sample(T0 + i * 10 * S, 5.0);
        }
        h.latest_ms = Some(T0 + 170 * S);
        h.heard = true;
        let mut id = 0;
        let fetches = h.plan(0, 0, &mut id);
        assert_eq!(fetches.len(), 1);
        let req = fetches[0].request.clone();
        assert_eq!(req.from_ms, T0 - 58 * MINUTE, "the whole window: the hour before, from its first minute");
        assert_eq!(req.to_ms, T0 + 170 * S + 1, "up to the newest sample");
        assert_eq!(req.resolution, Resolution::Minute);
        assert!(h.plan(0, 0, &mut id).is_empty(), "one fetch in flight at a time");
        // Two samples arrive before the answer: in the last minute, after `to`.
        let t = h.tracks.get_mut("cpu.utilisation_percent").unwrap();
        t.sample(T0 + 175 * S, 9.0);
        t.sample(T0 + 185 * S, 9.0);
        // The store held every sample of those minutes: 6 per minute, plus
        // an earlier minute the dashboard never saw.
        let rollup = |m: i64, count: u32| Point { ts_ms: T0 + m * MINUTE, min: 1.0, max: 7.0, mean: 4.0, count };
        let got = answer("cpu.utilisation_percent", vec![rollup(-5, 6), rollup(0, 6), rollup(1, 6), rollup(2, 6)]);
        assert!(h.answer(fetches[0].id, &req, &got, 1_000));
        let t = &h.tracks["cpu.utilisation_percent"];
        assert_eq!(counts(t), [(-5, 6), (0, 6), (1, 6), (2, 7), (3, 1)], "no sample counted twice, none lost");
        assert_eq!(t.points()[3].max, 9.0, "the late sample in the store's last minute is folded back in");
        assert!(!t.is_loading());
    }

    #[test]
    fn an_empty_answer_means_the_store_has_nothing_there() {
        let mut t = Timeline::new(Window::LAST_HOUR);
        t.sample(T0, 1.0);
        t.sent(7, T0 + 1, 0);
        t.merge(T0 - HOUR, T0 + 1, &[], 0);
        assert!(t.points().is_empty());
        assert!(t.has_stored());
    }

    #[test]
    fn refetches_start_where_the_last_answer_ended_and_a_reconnect_asks_at_once() {
        let mut h = HostHistory::default();
        h.tracks.insert("memory.used_percent".into(), Timeline::new(Window::LAST_HOUR));
        h.latest_ms = Some(T0);
        h.heard = true;
        let mut id = 0;
        assert!(h.plan(0, 0, &mut id).is_empty(), "no source yet: nothing asked");
        h.set_source(Source::Available);
        assert!(h.plan(0, 0, &mut id).is_empty(), "nothing heard on this connection yet");
        h.heard = true;
        let first = h.plan(0, 0, &mut id);
        h.answer(first[0].id, &first[0].request, &answer("memory.used_percent", vec![]), 0);
        h.latest_ms = Some(T0 + 30 * S);
        assert!(h.plan(0, 30_000, &mut id).is_empty(), "filled a moment ago: live samples do until the next minute");
        let next = h.plan(0, 60_000, &mut id);
        assert_eq!(
            (next[0].request.from_ms, next[0].request.to_ms),
            (T0, T0 + 30 * S + 1),
            "from the last bucket held"
        );
        h.answer(next[0].id, &next[0].request, &answer("memory.used_percent", vec![]), 60_000);

        // Away for 20 minutes, then back: the pool says so, and the first
        // snapshot moves the host's clock on.
        h.set_source(Source::Unavailable("unreachable".into()));
        assert!(h.plan(0, 70_000, &mut id).is_empty());
        h.set_source(Source::Available);
        h.latest_ms = Some(T0 + 20 * MINUTE);
        h.heard = true;
        let back = h.plan(0, 70_000, &mut id);
        assert_eq!(back.len(), 1, "backfill does not wait for the schedule");
        assert_eq!((back[0].request.from_ms, back[0].request.to_ms), (T0, T0 + 20 * MINUTE + 1));
    }

    #[test]
    fn a_failed_fetch_waits_before_asking_again_and_a_lost_one_is_asked_again() {
        let mut h = HostHistory::default();
        h.set_source(Source::Available);
        h.tracks.insert("cpu.utilisation_percent".into(), Timeline::new(Window::LAST_HOUR));
        h.latest_ms = Some(T0);
        h.heard = true;
        let mut id = 0;
        let f = h.plan(0, 0, &mut id);
        h.answer(f[0].id, &f[0].request, &Err("no history kept".into()), 0);
        assert_eq!(h.error.as_deref(), Some("no history kept"));
        assert!(h.plan(0, RETRY_MS - 1, &mut id).is_empty());
        let again = h.plan(0, RETRY_MS, &mut id);
        assert_eq!(again.len(), 1);
        assert!(h.plan(0, RETRY_MS + FETCH_TIMEOUT_MS, &mut id).is_empty(), "still waiting");
        let lost = h.plan(0, RETRY_MS + FETCH_TIMEOUT_MS + 1, &mut id);
        assert_eq!(lost.len(), 1, "no answer in time: asked again");
        assert!(
            !h.answer(again[0].id, &again[0].request, &answer("x", vec![]), 0),
            "the lost fetch's answer is ignored"
        );
    }

    #[test]
    fn series_with_one_window_and_range_share_a_request() {
        let snap = HostSnapshot {
            cpu: Some(Cpu { utilisation_percent: Some(3.0), ..Default::default() }),
            memory: Some(Memory { total_bytes: 100, used_bytes: 40, ..Default::default() }),
            filesystems: (0..70)
                .map(|i| Filesystem {
                    mount_point: format!("/m{i}"),
                    used_bytes: 1,
                    available_bytes: 1,
                    ..Default::default()
                })
                .collect(),
            timestamp_ms: T0 as u64,
            ..Default::default()
        };
        let mut h = HostHistory::default();
        h.set_source(Source::Available);
        h.observe(&snap, 0);
        let mut id = 0;
        let fetches = h.plan(3, 0, &mut id);
        let shapes: Vec<(usize, Resolution)> =
            fetches.iter().map(|f| (f.request.series.len(), f.request.resolution)).collect();
        assert_eq!(shapes, [(2, Resolution::Minute), (64, Resolution::Minute), (6, Resolution::Minute)]);
        assert!(fetches.iter().all(|f| f.host == 3));
        assert_eq!(fetches[1].request.from_ms, T0 - DAY, "filesystems over a day");
        let ids: Vec<u64> = fetches.iter().map(|f| f.id).collect();
        assert_eq!(ids, [1, 2, 3]);
    }

    #[test]
    fn observing_tracks_what_the_host_view_draws_and_forgets_what_went() {
        let fs =
            |m: &str| Filesystem { mount_point: m.into(), used_bytes: 30, available_bytes: 70, ..Default::default() };
        let mut snap =
            HostSnapshot { filesystems: vec![fs("/"), fs("/srv")], timestamp_ms: T0 as u64, ..Default::default() };
        let mut h = HostHistory::default();
        h.observe(&snap, 0);
        assert_eq!(h.tracks.keys().collect::<Vec<_>>(), ["fs./.used_percent", "fs./srv.used_percent"]);
        assert_eq!(h.tracks["fs./.used_percent"].points()[0].mean, 30.0);
        snap.filesystems.pop();
        snap.timestamp_ms += 2000;
        h.observe(&snap, 0);
        assert_eq!(h.tracks.keys().collect::<Vec<_>>(), ["fs./.used_percent"]);
        assert_eq!(h.latest_ms, Some(T0 + 2000));
        assert_eq!(h.tracks["fs./.used_percent"].points()[0].count, 2);
    }

    #[test]
    fn columns_spread_buckets_over_a_wider_chart_and_leave_gaps_where_nothing_is() {
        let mut t = Timeline::new(Window::LAST_HOUR);
        t.sample(T0 - 30 * MINUTE, 10.0);
        t.sample(T0 - MINUTE, 20.0);
        let cols = t.columns(T0, 120);
        let filled: Vec<usize> = cols.iter().enumerate().filter(|(_, c)| c.is_some()).map(|(i, _)| i).collect();
        assert_eq!(filled, [60, 61, 118, 119], "a minute is two columns of 30 s");
        assert_eq!(cols[118].unwrap().mean, 20.0);
        let narrow = t.columns(T0, 6);
        assert_eq!(narrow.iter().filter(|c| c.is_some()).count(), 2);
        let s = t.summary(T0).unwrap();
        assert_eq!((s.min, s.max, s.count), (10.0, 20.0, 2));
    }

    fn steady_then(t: &mut Timeline, values: &[f64]) {
        for (i, v) in values.iter().enumerate() {
            t.sample(T0 + i as i64 * MINUTE, *v);
        }
    }

    #[test]
    fn the_trend_arrow_turns_at_enter_and_back_only_below_leave() {
        let rule = MEMORY_TREND;
        let mut t = Timeline::new(Window::LAST_HOUR);
        assert_eq!(rule.judge(&t, T0, None), None, "no history, no arrow");
        // 10 minutes at 40 %, then 10 at 43.5 %: up.
        let mut values = vec![40.0; 10];
        values.extend([43.5; 10]);
        steady_then(&mut t, &values);
        let end = T0 + 20 * MINUTE;
        assert_eq!(rule.judge(&t, end, None), Some(Trend::Rising));
        // Minutes later the difference is 2 points: under `enter`, over `leave`.
        let mut t2 = Timeline::new(Window::LAST_HOUR);
        let mut values = vec![40.0; 10];
        values.extend([42.0; 10]);
        steady_then(&mut t2, &values);
        assert_eq!(rule.judge(&t2, end, Some(Trend::Rising)), Some(Trend::Rising), "it stays up");
        assert_eq!(rule.judge(&t2, end, None), Some(Trend::Steady), "but would not have turned up");
        assert_eq!(rule.judge(&t2, end, Some(Trend::Falling)), Some(Trend::Steady));
        let mut flat = Timeline::new(Window::LAST_HOUR);
        steady_then(&mut flat, &[40.0; 20]);
        assert_eq!(rule.judge(&flat, end, Some(Trend::Rising)), Some(Trend::Steady));
        // A spike in the bucket still filling changes nothing.
        flat.sample(end + 10 * S, 95.0);
        assert_eq!(rule.judge(&flat, end + 10 * S, Some(Trend::Steady)), Some(Trend::Steady));
    }

    #[test]
    fn windows_ask_for_the_tier_their_buckets_are_made_of() {
        assert_eq!(Window::LAST_HOUR.resolution(), Resolution::Minute);
        assert_eq!(Window::LAST_MONTH.resolution(), Resolution::Hour);
        assert_eq!(Window { span_ms: HOUR, bucket_ms: 30 * S }.resolution(), Resolution::Raw);
        assert_eq!(Window::LAST_MONTH.label(), "30d");
        assert_eq!(Window::LAST_DAY.label(), "24h");
        assert_eq!(Window::LAST_HOUR.label(), "1h");
    }
}
