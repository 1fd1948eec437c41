//! History over the wire (protocol 1.2): a range request on a stream of its
//! own, answered by chunks of points and an end.
//!
//! A client opens a bidirectional stream beside its subscription, sends one
//! framed [`HistoryRequest`] and finishes its side; the agent answers with
//! [`HistoryChunk`]s, each within the frame limit, then one [`HistoryEnd`],
//! and finishes. Series are selected by name or glob (see
//! [`crate::series::selects`]). A request with `events` set (1.3) is also
//! answered with the alert transitions in its range, in
//! [`HistoryEvents`] frames before the end.

use serde::{Deserialize, Serialize};

use crate::alert::AlertEvent;
use crate::frame::{encode_frame, FrameDecoder};
use crate::wire::Message;

/// Which tier of the store points come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// The finest tier that covers the range within the point budget.
    #[default]
    Auto,
    /// Every sample, at the collection interval.
    Raw,
    /// Per-minute rollups: min, max, mean and count.
    #[serde(rename = "1m")]
    Minute,
    /// Per-hour rollups.
    #[serde(rename = "1h")]
    Hour,
}

impl Resolution {
    /// Milliseconds one point stands for (`None` for raw and auto).
    pub fn bucket_ms(self) -> Option<i64> {
        match self {
            Resolution::Minute => Some(60_000),
            Resolution::Hour => Some(3_600_000),
            Resolution::Raw | Resolution::Auto => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Resolution::Auto => "auto",
            Resolution::Raw => "raw",
            Resolution::Minute => "1m",
            Resolution::Hour => "1h",
        }
    }

    /// Parses `raw`, `1m`, `1h` or `auto`.
    pub fn parse(s: &str) -> Option<Resolution> {
        match s {
            "auto" => Some(Resolution::Auto),
            "raw" => Some(Resolution::Raw),
            "1m" | "minute" => Some(Resolution::Minute),
            "1h" | "hour" => Some(Resolution::Hour),
            _ => None,
        }
    }
}

/// One point: a raw sample has `count` 1 and `min == max == mean`; a rollup
/// summarises the `count` samples of its bucket, which starts at `ts_ms`.
///
/// On the wire a raw sample is `[ts_ms, value]`, a rollup
/// `[ts_ms, min, max, mean, count]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub ts_ms: i64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub count: u32,
}

impl Point {
    pub fn raw(ts_ms: i64, value: f64) -> Point {
        Point { ts_ms, min: value, max: value, mean: value, count: 1 }
    }

    pub fn is_raw(&self) -> bool {
        self.count == 1 && self.min == self.max && self.max == self.mean
    }
}

impl Serialize for Point {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.is_raw() {
            (self.ts_ms, self.mean).serialize(s)
        } else {
            (self.ts_ms, self.min, self.max, self.mean, self.count).serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for Point {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Point;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("[ts, value] or [ts, min, max, mean, count]")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Point, A::Error> {
                use serde::de::Error;
                let ts_ms: i64 = seq.next_element()?.ok_or_else(|| A::Error::invalid_length(0, &self))?;
                let first: f64 = seq.next_element()?.ok_or_else(|| A::Error::invalid_length(1, &self))?;
                let Some(max) = seq.next_element::<f64>()? else { return Ok(Point::raw(ts_ms, first)) };
                let mean: f64 = seq.next_element()?.ok_or_else(|| A::Error::invalid_length(3, &self))?;
                let count: u32 = seq.next_element()?.ok_or_else(|| A::Error::invalid_length(4, &self))?;
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(Point { ts_ms, min: first, max, mean, count })
            }
        }
        d.deserialize_seq(Visit)
    }
}

/// A range request: the points of the selected series between `from_ms`
/// (inclusive) and `to_ms` (exclusive).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct HistoryRequest {
    /// Series names or globs (`fs.*.used_percent`); at most [`MAX_SELECTORS`].
    pub series: Vec<String>,
    pub from_ms: i64,
    pub to_ms: i64,
    pub resolution: Resolution,
    /// With `auto`, the most points wanted per series (0: the agent's default).
    pub max_points: u32,
    /// Also send the alert transitions in the range (1.3); `series` may then be empty.
    pub events: bool,
}

/// Selectors one request may carry.
pub const MAX_SELECTORS: usize = 64;
/// Points per series the agent returns at most, whatever was asked.
pub const MAX_POINTS_PER_SERIES: usize = 200_000;

/// Some points of one series, in time order. A series' points may span
/// several chunks, which follow each other.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct HistoryChunk {
    pub series: String,
    pub resolution: Resolution,
    pub points: Vec<Point>,
}

/// Alert transitions in the requested range, oldest first (1.3).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct HistoryEvents {
    pub events: Vec<AlertEvent>,
}

/// Events per [`HistoryEvents`] frame: well within the frame limit.
pub const CHUNK_EVENTS: usize = 128;
/// Events one answer carries at most, the newest kept.
pub const MAX_EVENTS: usize = 10_000;

/// The last message of a history stream.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct HistoryEnd {
    /// Series and points sent.
    pub series: u32,
    pub points: u64,
    /// Some series had more points than [`MAX_POINTS_PER_SERIES`], or the
    /// range more events than [`MAX_EVENTS`].
    pub truncated: bool,
    /// Alert events sent (1.3).
    pub events: u64,
    /// Why the request was not (fully) answered: no history kept, a bad request.
    pub error: Option<String>,
}

/// Points per chunk: a chunk of rollups stays under 48 KiB, well within
/// the frame limit.
pub const CHUNK_POINTS: usize = 1024;

/// The agent's side of a history stream: reads the one request, which must
/// come whole, within [`crate::session::MAX_CLIENT_FRAME`].
#[derive(Debug)]
pub struct RequestReader {
    decoder: FrameDecoder,
}

impl Default for RequestReader {
    fn default() -> Self {
        RequestReader { decoder: FrameDecoder::new(crate::session::MAX_CLIENT_FRAME) }
    }
}

impl RequestReader {
    /// Feeds bytes; `Ok(Some)` once the request is whole.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Option<HistoryRequest>, String> {
        self.decoder.push(bytes);
        match self.decoder.next_message() {
            Ok(Some(Message::HistoryRequest(req))) => validate(req).map(Some),
            Ok(Some(other)) => Err(format!("a history stream carries a history_request, not {}", kind(&other))),
            Ok(None) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The peer finished its side before a whole request came.
    pub fn finished(&self) -> String {
        match self.decoder.buffered() {
            0 => "the history stream ended without a request".into(),
            n => format!("the history stream ended inside a frame ({n} bytes)"),
        }
    }
}

fn kind(msg: &Message) -> &'static str {
    match msg {
        Message::HistoryChunk(_) => "history_chunk",
        Message::HistoryEnd(_) => "history_end",
        Message::HistoryEvents(_) => "history_events",
        Message::Hello { .. } => "hello",
        _ => "another kind",
    }
}

fn validate(req: HistoryRequest) -> Result<HistoryRequest, String> {
    if req.series.is_empty() && !req.events {
        return Err("the request names no series".into());
    }
    if req.series.len() > MAX_SELECTORS {
        return Err(format!("{} selectors in one request; at most {MAX_SELECTORS}", req.series.len()));
    }
    if req.to_ms <= req.from_ms {
        return Err(format!("the range ends ({}) before it starts ({})", req.to_ms, req.from_ms));
    }
    Ok(req)
}

/// The frames that answer a request: each series' points in chunks of at
/// most [`CHUNK_POINTS`], the events in chunks of [`CHUNK_EVENTS`], then the end.
pub fn answer_frames(
    answer: &[(String, Resolution, Vec<Point>)],
    events: &[AlertEvent],
    truncated: bool,
    error: Option<String>,
) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    for part in events.chunks(CHUNK_EVENTS) {
        let chunk = HistoryEvents { events: part.to_vec() };
        match encode_frame(&Message::HistoryEvents(chunk)) {
            Ok(frame) => frames.push(frame),
            // Reasons are bounded, so only a pathological event gets here: it is left out.
            Err(_) => continue,
        }
    }
    let mut points = 0u64;
    for (series, resolution, pts) in answer {
        points += pts.len() as u64;
        // A series with no points in the range still says it exists.
        let empty: &[Point] = &[];
        let parts: Vec<&[Point]> = if pts.is_empty() { vec![empty] } else { pts.chunks(CHUNK_POINTS).collect() };
        for part in parts {
            let chunk = HistoryChunk { series: series.clone(), resolution: *resolution, points: part.to_vec() };
            frames.push(encode_frame(&Message::HistoryChunk(chunk)).expect("a chunk fits a frame"));
        }
    }
    let end = HistoryEnd { series: answer.len() as u32, points, truncated, error, events: events.len() as u64 };
    frames.push(encode_frame(&Message::HistoryEnd(end)).expect("an end fits a frame"));
    frames
}

/// The client's side of a history stream: gathers chunks into series until the end.
#[derive(Debug, Default)]
pub struct AnswerReader {
    decoder: FrameDecoder,
    series: Vec<(String, Resolution, Vec<Point>)>,
    events: Vec<AlertEvent>,
    end: Option<HistoryEnd>,
}

/// A whole answer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Answer {
    pub series: Vec<(String, Resolution, Vec<Point>)>,
    /// Alert transitions, when the request asked for them.
    pub events: Vec<AlertEvent>,
    pub end: HistoryEnd,
}

impl AnswerReader {
    /// Feeds bytes; `Ok(Some)` once the end came.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Option<Answer>, String> {
        self.decoder.push(bytes);
        while let Some(msg) = self.decoder.next_message().map_err(|e| e.to_string())? {
            match msg {
                Message::HistoryChunk(c) if self.end.is_none() => match self.series.last_mut() {
                    Some((name, _, pts)) if *name == c.series => pts.extend(c.points),
                    _ => self.series.push((c.series, c.resolution, c.points)),
                },
                Message::HistoryEvents(e) if self.end.is_none() => self.events.extend(e.events),
                Message::HistoryEnd(end) if self.end.is_none() => self.end = Some(end),
                Message::Unknown => {}
                other => return Err(format!("unexpected {} in a history answer", kind(&other))),
            }
        }
        Ok(self.end.take().map(|end| Answer {
            series: std::mem::take(&mut self.series),
            events: std::mem::take(&mut self.events),
            end,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_short_arrays_on_the_wire() {
        let raw = Point::raw(1_000, 2.5);
        let rollup = Point { ts_ms: 60_000, min: 1.0, max: 3.0, mean: 2.0, count: 30 };
        for (p, len) in [(raw, 2), (rollup, 5)] {
            let mut bytes = Vec::new();
            ciborium::into_writer(&p, &mut bytes).unwrap();
            let v: ciborium::Value = ciborium::from_reader(&bytes[..]).unwrap();
            assert_eq!(v.as_array().map(Vec::len), Some(len));
            let back: Point = ciborium::from_reader(&bytes[..]).unwrap();
            assert_eq!(back, p);
        }
        let short: Result<Point, _> = ciborium::from_reader(&[0x81, 0x01][..]);
        assert!(short.is_err(), "[ts] alone is not a point");
    }

    #[test]
    fn a_large_answer_comes_in_chunks_within_the_frame_limit_and_reassembles() {
        let pts: Vec<Point> = (0..5000)
            .map(|i| Point { ts_ms: i * 60_000, min: i as f64, max: i as f64 + 1.5, mean: 0.3, count: 30 })
            .collect();
        let answer = vec![
            ("fs./.used_percent".to_string(), Resolution::Minute, pts.clone()),
            ("cpu.load1".to_string(), Resolution::Minute, pts[..10].to_vec()),
            ("cpu.load5".to_string(), Resolution::Minute, vec![]),
        ];
        let frames = answer_frames(&answer, &[], false, None);
        assert_eq!(frames.len(), 5 + 1 + 1 + 1, "5000 points in 5 chunks, 10 in one, none in one, and the end");
        assert!(frames.iter().all(|f| f.len() <= crate::session::MAX_CLIENT_FRAME), "every frame within 64 KiB");
        let mut reader = AnswerReader::default();
        let bytes: Vec<u8> = frames.concat();
        let mut got = None;
        for piece in bytes.chunks(777) {
            if let Some(a) = reader.push(piece).unwrap() {
                got = Some(a);
            }
        }
        let got = got.expect("the end arrived");
        assert_eq!(got.series, answer);
        assert_eq!((got.end.series, got.end.points), (3, 5010));
    }

    #[test]
    fn a_request_is_checked_before_it_is_answered() {
        let frame = |req: HistoryRequest| encode_frame(&Message::HistoryRequest(req)).unwrap();
        let good = HistoryRequest { series: vec!["cpu.*".into()], from_ms: 0, to_ms: 10, ..Default::default() };
        let mut r = RequestReader::default();
        let bytes = frame(good.clone());
        assert_eq!(r.push(&bytes[..3]), Ok(None));
        assert_eq!(r.finished(), "the history stream ended inside a frame (3 bytes)");
        assert_eq!(r.push(&bytes[3..]), Ok(Some(good.clone())));
        let backwards = HistoryRequest { from_ms: 10, to_ms: 0, ..good.clone() };
        assert!(RequestReader::default().push(&frame(backwards)).unwrap_err().contains("before it starts"));
        let many = HistoryRequest { series: vec!["x".into(); 65], ..good.clone() };
        assert!(RequestReader::default().push(&frame(many)).unwrap_err().contains("at most 64"));
        let hello = encode_frame(&Message::Hello { major: 1, minor: 2, role: String::new(), subscribe: true });
        assert!(RequestReader::default().push(&hello.unwrap()).unwrap_err().contains("not hello"));
        let huge = [0x00, 0x10, 0x00, 0x00];
        assert!(RequestReader::default().push(&huge).unwrap_err().contains("exceeds the limit"));
    }

    #[test]
    fn resolutions_have_the_documented_names() {
        for r in [Resolution::Auto, Resolution::Raw, Resolution::Minute, Resolution::Hour] {
            assert_eq!(Resolution::parse(r.label()), Some(r));
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(json, format!("\"{}\"", r.label()));
        }
    }
}
