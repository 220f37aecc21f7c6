//! Medians, p95s, and the tables the benchmark prints (aligned text, or Markdown).

use std::fmt::Write as _;
use std::time::Duration;

/// What a figure measures, which says how to print it and which end is the slow one.
#[derive(Clone, Copy, PartialEq)]
pub enum Unit {
    Ms,
    MiB,
    RunsPerSec,
    GBPerSec,
    /// A fraction of a reference (1.0 = as fast as it).
    Ratio,
}

impl Unit {
    fn higher_is_better(self) -> bool {
        matches!(self, Unit::RunsPerSec | Unit::GBPerSec | Unit::Ratio)
    }

    pub fn format(self, value: f64) -> String {
        match self {
            Unit::Ms if value < 10.0 => format!("{value:.2} ms"),
            Unit::Ms => format!("{value:.1} ms"),
            Unit::MiB => format!("{value:.1} MiB"),
            Unit::RunsPerSec => format!("{value:.0} runs/s"),
            Unit::GBPerSec => format!("{value:.2} GB/s"),
            Unit::Ratio => format!("{:.0} %", value * 100.0),
        }
    }
}

/// Figures of one scenario, one per iteration.
#[derive(Clone, Default)]
pub struct Samples(Vec<f64>);

impl Samples {
    pub fn push(&mut self, value: f64) {
        self.0.push(value);
    }

    pub fn push_ms(&mut self, elapsed: Duration) {
        self.0.push(ms(elapsed));
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn median(&self) -> f64 {
        self.percentile(0.5)
    }

    /// Linear interpolation between the closest ranks; NaN without samples.
    pub fn percentile(&self, p: f64) -> f64 {
        let mut sorted = self.0.clone();
        sorted.sort_by(f64::total_cmp);
        match sorted.len() {
            0 => f64::NAN,
            n => {
                let rank = p * (n - 1) as f64;
                let (low, high) = (rank.floor() as usize, rank.ceil() as usize);
                sorted[low] + (sorted[high] - sorted[low]) * (rank - low as f64)
            }
        }
    }
}

impl FromIterator<f64> for Samples {
    fn from_iter<I: IntoIterator<Item = f64>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

pub fn ms(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64() * 1000.0
}

/// What a row must reach to be met.
#[derive(Clone, Copy)]
pub enum Target {
    MedianAtMost(f64),
    MedianAtLeast(f64),
    /// Median and p95 at most.
    AtMost(f64, f64),
    /// Median and p99 at most (times).
    AtMostP99(f64, f64),
    /// The ratio to the floor (or baseline) at least.
    RatioAtLeast(f64),
    /// A reference figure: no target.
    None,
}

pub struct Row {
    pub scenario: String,
    pub unit: Unit,
    pub samples: Samples,
    pub target: Target,
    /// The median of the floor (or baseline) this row is compared with, same unit.
    pub floor: Option<f64>,
}

impl Row {
    pub fn new(scenario: impl Into<String>, unit: Unit, samples: Samples, target: Target) -> Self {
        Self {
            scenario: scenario.into(),
            unit,
            samples,
            target,
            floor: None,
        }
    }

    pub fn with_floor(mut self, floor: f64) -> Self {
        self.floor = Some(floor);
        self
    }

    pub fn median(&self) -> f64 {
        self.samples.median()
    }

    /// The slow end: the 95th percentile of times, the 5th of rates.
    pub fn p95(&self) -> f64 {
        if self.unit.higher_is_better() {
            self.samples.percentile(0.05)
        } else {
            self.samples.percentile(0.95)
        }
    }

    /// Median over the floor's median: a share of it for rates, a multiple for times.
    pub fn ratio(&self) -> Option<f64> {
        self.floor.map(|floor| self.median() / floor)
    }

    fn ratio_text(&self) -> String {
        match self.ratio() {
            Some(ratio) if self.unit.higher_is_better() => format!("{:.0} %", ratio * 100.0),
            Some(ratio) => format!("{ratio:.1}×"),
            None => String::new(),
        }
    }

    fn target_text(&self) -> String {
        let unit = self.unit;
        match self.target {
            Target::MedianAtMost(v) => format!("≤ {}", unit.format(v)),
            Target::MedianAtLeast(v) => format!("≥ {}", unit.format(v)),
            Target::AtMost(median, p95) => {
                format!("≤ {} (p95 ≤ {})", unit.format(median), unit.format(p95))
            }
            Target::AtMostP99(median, p99) => {
                format!("≤ {} (p99 ≤ {})", unit.format(median), unit.format(p99))
            }
            Target::RatioAtLeast(r) => format!("≥ {:.0} % of floor", r * 100.0),
            Target::None => String::new(),
        }
    }

    pub fn met(&self) -> Option<bool> {
        let median = self.median();
        match self.target {
            Target::MedianAtMost(v) => Some(median <= v),
            Target::MedianAtLeast(v) => Some(median >= v),
            Target::AtMost(m, p) => Some(median <= m && self.p95() <= p),
            Target::AtMostP99(m, p) => Some(median <= m && self.samples.percentile(0.99) <= p),
            Target::RatioAtLeast(r) => Some(self.ratio()? >= r),
            Target::None => None,
        }
    }
}

/// Rows of text under a title: the main table, or a scaling series.
pub struct Table {
    pub title: String,
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(title: impl Into<String>, headers: &[&str]) -> Self {
        Self {
            title: title.into(),
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    pub fn from_rows(title: &str, rows: &[Row]) -> Self {
        let mut table = Self::new(
            title,
            &[
                "scenario", "n", "median", "p95", "target", "vs floor", "met",
            ],
        );
        for row in rows {
            table.push(vec![
                row.scenario.clone(),
                row.samples.len().to_string(),
                row.unit.format(row.median()),
                row.unit.format(row.p95()),
                row.target_text(),
                row.ratio_text(),
                match row.met() {
                    Some(true) => "yes".into(),
                    Some(false) => "NO".into(),
                    None => String::new(),
                },
            ]);
        }
        table
    }

    pub fn render(&self, markdown: bool) -> String {
        let mut out = String::new();
        if markdown {
            let _ = writeln!(out, "**{}**\n", self.title);
            let _ = writeln!(out, "| {} |", self.headers.join(" | "));
            let _ = writeln!(out, "|{}", "---|".repeat(self.headers.len()));
            for row in &self.rows {
                let _ = writeln!(out, "| {} |", row.join(" | "));
            }
            return out;
        }
        let width = |column: usize| {
            self.rows
                .iter()
                .map(|row| row[column].chars().count())
                .chain([self.headers[column].chars().count()])
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..self.headers.len()).map(width).collect();
        let line = |cells: &[String]| {
            let padded: Vec<String> = cells
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            padded.join("  ").trim_end().to_owned()
        };
        let _ = writeln!(out, "{}", self.title);
        let _ = writeln!(out, "{}", line(&self.headers));
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        let _ = writeln!(out, "{}", line(&rule));
        for row in &self.rows {
            let _ = writeln!(out, "{}", line(row));
        }
        out
    }
}
