//! The dashboard's charts, drawn on the server as inline SVG (no script):
//! series worked out from the node's samples (`ops::samples`), averaged
//! into buckets for the last hour, day or week, and scaled to the chart.
//!
//! Owns: the window choices, the derivation of rates from cumulative
//! samples, and the geometry (a 600 x 160 view box, the plot between
//! y = 10 and y = 150). Styling is by class only (`static/console-ops.css`):
//! the page CSP allows no inline style.
//!
//! Invariants:
//! - A rate is worked out only between two samples of the same process
//!   (engine pid for mail counters, each process's pid for CPU) with the
//!   later value not smaller; across a restart there is a gap, never a
//!   negative value.
//! - A bucket with no sample is a gap in the line, not a zero.
//! - Every number in `points` is formatted by us (digits, '.', ','), so
//!   the attribute needs no escaping beyond askama's.
//!
//! Reads untrusted input: only the `range` query value (compared).

use crate::ops::samples::Sample;

const WIDTH: f64 = 600.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 150.0;
/// Most series one chart draws (one colour class each).
pub const MAX_SERIES: usize = 4;
/// Length of the dash that stands for a lone value.
const DASH: f64 = 10.0;

/// The time a chart covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    Hour,
    Day,
    Week,
}

impl Window {
    pub const ALL: [Window; 3] = [Window::Hour, Window::Day, Window::Week];

    pub fn parse(text: &str) -> Option<Window> {
        Window::ALL.into_iter().find(|w| w.name() == text)
    }

    pub fn name(self) -> &'static str {
        match self {
            Window::Hour => "hour",
            Window::Day => "day",
            Window::Week => "week",
        }
    }

    pub fn secs(self) -> i64 {
        match self {
            Window::Hour => 3600,
            Window::Day => 86_400,
            Window::Week => 7 * 86_400,
        }
    }

    /// Buckets: a minute, ten minutes, an hour.
    pub fn buckets(self) -> usize {
        match self {
            Window::Hour => 60,
            Window::Day => 144,
            Window::Week => 168,
        }
    }
}

/// One point in time with a value.
pub type Point = (i64, f64);

/// Per-minute rate of a cumulative counter between consecutive samples.
pub fn rate(samples: &[Sample], value: impl Fn(&Sample) -> Option<u64>) -> Vec<Point> {
    samples
        .windows(2)
        .filter_map(|pair| {
            let (a, b) = (&pair[0], &pair[1]);
            let (va, vb) = (value(a)?, value(b)?);
            let dt = b.at - a.at;
            let same_process = a.engine_pid.is_some() && a.engine_pid == b.engine_pid;
            (same_process && vb >= va && dt > 0)
                .then(|| (b.at, (vb - va) as f64 * 60.0 / dt as f64))
        })
        .collect()
}

/// CPU use in percent of one core, both processes together.
pub fn cpu_percent(samples: &[Sample]) -> Vec<Point> {
    samples
        .windows(2)
        .filter_map(|pair| {
            let (a, b) = (&pair[0], &pair[1]);
            let dt = (b.at - a.at) as f64;
            if dt <= 0.0 || a.mailbox_pid != b.mailbox_pid {
                return None;
            }
            let mine = b.mailbox_cpu? - a.mailbox_cpu?;
            let engine = match (a.engine_cpu, b.engine_cpu) {
                (Some(x), Some(y)) if a.engine_pid == b.engine_pid && y >= x => y - x,
                _ => 0.0,
            };
            (mine >= 0.0).then(|| (b.at, (mine + engine) * 100.0 / dt))
        })
        .collect()
}

/// The value of a gauge at each sample that has it.
pub fn gauge(samples: &[Sample], value: impl Fn(&Sample) -> Option<f64>) -> Vec<Point> {
    samples
        .iter()
        .filter_map(|s| Some((s.at, value(s)?)))
        .collect()
}

/// A series averaged into the window's buckets ending at `end`.
pub fn bucketed(points: &[Point], window: Window, end: i64) -> Vec<Option<f64>> {
    let n = window.buckets();
    let start = end - window.secs();
    let width = window.secs() as f64 / n as f64;
    let mut sums = vec![(0.0, 0u32); n];
    for &(at, v) in points {
        if at <= start || at > end {
            continue;
        }
        let i = (((at - start) as f64 / width).ceil() as usize).clamp(1, n) - 1;
        sums[i].0 += v;
        sums[i].1 += 1;
    }
    sums.into_iter()
        .map(|(sum, count)| (count > 0).then(|| sum / f64::from(count)))
        .collect()
}

/// One line of a chart, as the template draws it.
pub struct ChartLine {
    /// `series-0` .. `series-3` (colours in the CSS).
    pub class: &'static str,
    pub label: String,
    /// The newest value, formatted.
    pub latest: String,
    /// `points` attributes of polylines, one per run without gaps.
    pub segments: Vec<String>,
}

/// One chart.
pub struct Chart {
    pub title: String,
    /// The value at the top of the chart, formatted.
    pub top_label: String,
    pub lines: Vec<ChartLine>,
    /// True when no bucket has a value (the page says so).
    pub empty: bool,
}

/// Scales bucketed series into a chart; `format` writes values.
pub fn chart(
    title: String,
    series: Vec<(String, Vec<Option<f64>>)>,
    format: &dyn Fn(f64) -> String,
) -> Chart {
    const CLASSES: [&str; MAX_SERIES] = ["series-0", "series-1", "series-2", "series-3"];
    let max = series
        .iter()
        .flat_map(|(_, v)| v.iter().flatten())
        .fold(0.0_f64, |m, &v| m.max(v));
    let empty = series.iter().all(|(_, v)| v.iter().all(Option::is_none));
    let top = nice_ceiling(max);
    let lines = series
        .into_iter()
        .take(MAX_SERIES)
        .zip(CLASSES)
        .map(|((label, values), class)| ChartLine {
            class,
            latest: values
                .iter()
                .rev()
                .flatten()
                .next()
                .map_or_else(|| "-".to_string(), |v| format(*v)),
            segments: segments(&values, top),
            label,
        })
        .collect();
    Chart {
        title,
        top_label: format(top),
        lines,
        empty,
    }
}

/// The polyline runs of `values` scaled so `top` is the chart's top.
fn segments(values: &[Option<f64>], top: f64) -> Vec<String> {
    let n = values.len().max(2) - 1;
    let x = |i: usize| i as f64 * WIDTH / n as f64;
    let y = |v: f64| BOTTOM - (v / top).clamp(0.0, 1.0) * (BOTTOM - TOP);
    let mut out = Vec::new();
    let mut run: Vec<(f64, f64)> = Vec::new();
    for (i, v) in values.iter().enumerate() {
        match v {
            Some(v) => run.push((x(i), y(*v))),
            None => flush(&mut run, &mut out),
        }
    }
    flush(&mut run, &mut out);
    out
}

fn flush(run: &mut Vec<(f64, f64)>, out: &mut Vec<String>) {
    if run.len() == 1 {
        // A lone value is drawn as a short dash, so it can be seen (to the
        // left at the right edge, where the newest value is).
        let (x, y) = run[0];
        if x + DASH > WIDTH {
            run.insert(0, (x - DASH, y));
        } else {
            run.push((x + DASH, y));
        }
    }
    if !run.is_empty() {
        let text: Vec<String> = run.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
        out.push(text.join(" "));
    }
    run.clear();
}

/// 1, 2 or 5 times a power of ten, at least `max` (1 for an empty chart).
fn nice_ceiling(max: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let power = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|&c| c >= max)
        .unwrap_or(10.0 * power)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at: i64, pid: u32, accepted: u64) -> Sample {
        Sample {
            at,
            engine_pid: Some(pid),
            accepted: Some(accepted),
            mailbox_pid: 1,
            mailbox_cpu: Some(at as f64 / 100.0),
            ..Sample::default()
        }
    }

    #[test]
    fn rates_gap_across_a_restart_and_never_go_negative() {
        let samples = [
            sample(60, 7, 10),
            sample(120, 7, 40),
            sample(180, 8, 2), // engine restarted: counters from 0
            sample(240, 8, 5),
        ];
        let r = rate(&samples, |s| s.accepted);
        assert_eq!(r, vec![(120, 30.0), (240, 3.0)]);
        let cpu = cpu_percent(&samples);
        assert_eq!(cpu.len(), 3);
        assert!((cpu[0].1 - 1.0).abs() < 1e-9, "{cpu:?}");
    }

    #[test]
    fn buckets_average_and_leave_gaps() {
        let end = 3600;
        let points = [(60, 2.0), (60, 4.0), (3600, 9.0), (-5, 100.0)];
        let b = bucketed(&points, Window::Hour, end);
        assert_eq!(b.len(), 60);
        assert_eq!(b[0], Some(3.0));
        assert_eq!(b[1], None);
        assert_eq!(b[59], Some(9.0));
    }

    #[test]
    fn charts_scale_to_a_round_top_and_split_at_gaps() {
        let c = chart(
            "t".into(),
            vec![("in".into(), vec![Some(1.0), Some(7.0), None, Some(3.0)])],
            &|v| format!("{v}"),
        );
        assert_eq!(c.top_label, "10");
        assert!(!c.empty);
        let line = &c.lines[0];
        assert_eq!(line.latest, "3");
        assert_eq!(line.segments.len(), 2);
        assert_eq!(line.segments[0], "0.0,136.0 200.0,52.0");
        assert_eq!(line.segments[1], "590.0,108.0 600.0,108.0");
        assert!(
            chart("e".into(), vec![("x".into(), vec![None])], &|v| v
                .to_string())
            .empty
        );
        assert_eq!(nice_ceiling(0.3), 0.5);
        assert_eq!(nice_ceiling(120.0), 200.0);
    }
}
