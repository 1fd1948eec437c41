//! The chart view: one series of one host over a range, the mean as a
//! braille line over a band from each bucket's min to its max, axes labelled
//! in the series' unit, and the range's min, max and latest value as text.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::Frame;

use cm_proto::series::{unit_of, Unit};

use crate::app::{Chart, HostEntry};
use crate::history::{Range, Source, Span as Figures};
use crate::{format, theme};

/// Rows the plot needs to be worth drawing.
const MIN_PLOT_ROWS: u16 = 3;

pub fn render(chart: &Chart, host: &HostEntry, frame: &mut Frame, area: Rect) {
    let unit = unit_of(&chart.series);
    let end = host.history.latest_ms;
    let figures = end.and_then(|end| chart.timeline.summary(end));
    let buf = frame.buffer_mut();
    let mut y = area.y;
    let mut line = |buf: &mut Buffer, line: Line| {
        if y < area.bottom() {
            buf.set_line(area.x, y, &line, area.width);
            y += 1;
        }
    };
    line(buf, header(chart, unit, area.width));
    line(buf, figures_line(chart, host, unit, figures));
    let Some((end, figures)) = end.zip(figures) else { return };
    let plot = Rect { y, height: area.bottom().saturating_sub(y + 1), ..area };
    if plot.height < MIN_PLOT_ROWS {
        return;
    }
    let (lo, hi) = bounds(unit, figures);
    let labels = [format::value(unit, hi), format::value(unit, (lo + hi) / 2.0), format::value(unit, lo)];
    let label_width = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0) as u16 + 2;
    if plot.width <= label_width + 4 {
        return;
    }
    let inner = Rect { x: plot.x + label_width, width: plot.width - label_width, ..plot };
    y_axis(buf, plot, label_width, &labels);
    let columns = chart.timeline.columns(end, usize::from(inner.width) * 2);
    draw(buf, inner, &columns, lo, hi);
    x_axis(buf, Rect { y: plot.bottom(), height: 1, ..inner }, chart.range);
}

/// `fs./var.used_percent  percent   range  1h [24h] 7d 30d`
fn header(chart: &Chart, unit: Unit, width: u16) -> Line<'static> {
    // A long series name (a deep mount point) gives up its middle for the range keys.
    let room =
        usize::from(width).saturating_sub(" ".len() + unit.label().len() + "     range  1h  24h  7d  30d ".len());
    let mut spans = vec![
        Span::styled(format!(" {}", format::middle(&chart.series, room.max(12))), theme::header()),
        Span::styled(format!("  {}", unit.label()), theme::dim()),
        Span::raw("   range "),
    ];
    for r in Range::ALL {
        if r == chart.range {
            spans.push(Span::styled(format!("[{}]", r.label()), theme::key()));
        } else {
            spans.push(Span::styled(format!(" {} ", r.label()), theme::dim()));
        }
    }
    Line::from(spans)
}

/// `min 12.0%  max 45.6%  last 44.0%`, then what the plot is made of or why
/// it is not all there.
fn figures_line(chart: &Chart, host: &HostEntry, unit: Unit, figures: Option<Figures>) -> Line<'static> {
    let mut spans = vec![Span::raw(" ")];
    match figures {
        Some(f) => {
            let last = chart.timeline.last.map(|(_, v)| v).unwrap_or(f.mean);
            spans.push(Span::raw(format!(
                "min {}  max {}  last {}",
                format::value(unit, f.min),
                format::value(unit, f.max),
                format::value(unit, last)
            )));
        }
        None => spans.push(Span::styled("no points in this range yet", theme::dim())),
    }
    let note = match (&host.history.source, &chart.error) {
        (Source::Unavailable(why), _) => {
            Span::styled(format!("   no stored history ({why}): since the chart opened"), theme::dim())
        }
        (_, Some(e)) => Span::styled(format!("   history: {e}"), theme::status(cm_proto::Status::Unknown)),
        _ if chart.timeline.is_loading() && !chart.timeline.has_stored() => Span::styled("   loading…", theme::dim()),
        _ => Span::styled(format!("   {} buckets: line mean, band min-max", bucket(chart.range)), theme::dim()),
    };
    spans.push(note);
    Line::from(spans)
}

fn bucket(range: Range) -> String {
    let ms = range.window().bucket_ms;
    match ms {
        ..60_000 => format!("{} s", ms / 1000),
        60_000..3_600_000 => format!("{} min", ms / 60_000),
        _ => format!("{} h", ms / 3_600_000),
    }
}

/// The value range the plot spans: the figures' min to max, widened where
/// they are (nearly) equal; a percentage stays within 0-100.
fn bounds(unit: Unit, f: Figures) -> (f64, f64) {
    let (mut lo, mut hi) = (f.min, f.max);
    if hi - lo < 1e-9 {
        let pad = (lo.abs() * 0.01).max(1.0);
        lo -= pad;
        hi += pad;
    }
    if unit == Unit::Percent {
        lo = lo.max(0.0);
        hi = hi.min(100.0);
    }
    (lo, hi)
}

fn y_axis(buf: &mut Buffer, plot: Rect, label_width: u16, labels: &[String; 3]) {
    let rows = [plot.y, plot.y + (plot.height - 1) / 2, plot.bottom() - 1];
    for y in plot.top()..plot.bottom() {
        let at = rows.iter().position(|r| *r == y);
        let text = match at {
            Some(i) => format!("{:>w$} ┤", labels[i], w = usize::from(label_width) - 2),
            None => format!("{:>w$}│", "", w = usize::from(label_width) - 1),
        };
        buf.set_string(plot.x, y, text, theme::dim());
    }
}

/// `-24h` under the left edge, `-12h` under the middle, `now` under the right.
fn x_axis(buf: &mut Buffer, row: Rect, range: Range) {
    if row.y >= buf.area.bottom() {
        return;
    }
    let span = range.window().span_ms;
    let left = format!("-{}", range.label());
    let mid = format!("-{}", short_span(span / 2));
    let right = "now";
    buf.set_string(row.x, row.y, &left, theme::dim());
    let mid_x = row.x + row.width / 2 - (mid.chars().count() as u16) / 2;
    if mid_x > row.x + left.len() as u16 + 1 {
        buf.set_string(mid_x, row.y, &mid, theme::dim());
    }
    buf.set_string(row.right() - right.len() as u16, row.y, right, theme::dim());
}

fn short_span(ms: i64) -> String {
    const HOUR: i64 = 3_600_000;
    if ms % (24 * HOUR) == 0 {
        format!("{}d", ms / (24 * HOUR))
    } else if ms % HOUR == 0 {
        format!("{}h", ms / HOUR)
    } else {
        format!("{}m", ms / 60_000)
    }
}

/// Braille dots of a cell, by column (left, right) and dot row (top first).
const DOTS: [[u8; 4]; 2] = [[0x01, 0x02, 0x04, 0x40], [0x08, 0x10, 0x20, 0x80]];

/// The mean as a line of braille dots (two columns of points per cell, four
/// rows of dots per cell) over the band of min to max, in cells.
fn draw(buf: &mut Buffer, area: Rect, columns: &[Option<Figures>], lo: f64, hi: f64) {
    let (w, h) = (usize::from(area.width), usize::from(area.height));
    let dots = h * 4;
    let dot = |v: f64| (((hi - v) / (hi - lo)).clamp(0.0, 1.0) * (dots - 1) as f64).round() as usize;
    let mut bits = vec![0u8; w * h];
    let mut band = vec![false; w * h];
    let mut previous: Option<usize> = None;
    for (i, column) in columns.iter().enumerate().take(w * 2) {
        let (x, side) = (i / 2, i % 2);
        let Some(c) = column else {
            previous = None; // a gap stays a gap
            continue;
        };
        for row in dot(c.max) / 4..=dot(c.min) / 4 {
            band[row * w + x] = true;
        }
        let d = dot(c.mean);
        let (from, to) = previous.map_or((d, d), |p| (p.min(d), p.max(d)));
        for y in from..=to {
            bits[(y / 4) * w + x] |= DOTS[side][y % 4];
        }
        previous = Some(d);
    }
    let line = Style::default().fg(Color::Cyan).add_modifier(Modifier::BOLD);
    for row in 0..h {
        for x in 0..w {
            let (symbol, style) = match (bits[row * w + x], band[row * w + x]) {
                (0, false) => continue,
                (0, true) => ('░', theme::dim()),
                (b, _) => (char::from_u32(0x2800 + u32::from(b)).expect("braille is a char"), line),
            };
            let cell = &mut buf[(area.x + x as u16, area.y + row as u16)];
            cell.set_char(symbol);
            cell.set_style(style);
        }
    }
}
