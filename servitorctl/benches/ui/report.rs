//! The benchmark's tables, in Markdown, and what they were measured on.

use std::process::Command;

pub fn median(samples: &[f64]) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

pub fn ms(value: f64) -> String {
    if !value.is_finite() {
        "—".into()
    } else if value < 1.0 {
        format!("{value:.2} ms")
    } else if value < 10_000.0 {
        format!("{value:.0} ms")
    } else {
        format!("{:.1} s", value / 1000.0)
    }
}

/// A time, or "> cap" when it was not reached within the cap.
pub fn ms_capped(value: f64, cap_ms: f64) -> String {
    if value.is_finite() {
        ms(value)
    } else {
        format!("> {}", ms(cap_ms))
    }
}

pub struct Row {
    scenario: String,
    old: String,
    new: String,
    target: String,
    met: Option<bool>,
}

impl Row {
    /// A figure that is the same for both UIs (the daemon's).
    pub fn single(scenario: String, value: String, target: &str, met: Option<bool>) -> Self {
        Self {
            scenario,
            old: value.clone(),
            new: value,
            target: target.into(),
            met,
        }
    }

    pub fn compare(
        scenario: &str,
        old: String,
        new: String,
        target: &str,
        met: Option<bool>,
    ) -> Self {
        Self {
            scenario: scenario.into(),
            old,
            new,
            target: target.into(),
            met,
        }
    }
}

pub struct Table {
    title: String,
    rows: Vec<Row>,
    notes: Vec<String>,
}

impl Table {
    pub fn new(title: String) -> Self {
        Self {
            title,
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Row) {
        self.rows.push(row);
    }

    pub fn note(&mut self, note: String) {
        self.notes.push(note);
    }

    pub fn print(&self) {
        println!("**{}**\n", self.title);
        println!(
            "| scenario | old UI ({}) | new UI | target | met |",
            crate::BASELINE
        );
        println!("|---|---|---|---|---|");
        for row in &self.rows {
            let met = match row.met {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "",
            };
            println!(
                "| {} | {} | {} | {} | {met} |",
                row.scenario, row.old, row.new, row.target
            );
        }
        for note in &self.notes {
            println!("\n- {note}");
        }
        println!();
    }
}

/// "2 × <CPU model>, load average a b c".
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_default();
    let cpus = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    format!(
        "{cpus} × {model}; load average {} at the end",
        load.join(" ")
    )
}

pub fn chromium_version() -> String {
    Command::new("chromium")
        .arg("--version")
        .output()
        .ok()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .trim_start_matches("Chromium ")
                .to_owned()
        })
        .unwrap_or_default()
}
