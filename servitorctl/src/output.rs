//! Printing: data to stdout (tables for people, JSON for scripts), colour only on a
//! terminal and never with `NO_COLOR`, and times as people read them.

use std::fmt::Display;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use comfy_table::{Cell, Color, Table, presets};
use jiff::Timestamp;
use serde::Serialize;
use servitor_shared::{Execution, ExecutionStatus};

use crate::error::CliError;

/// Writes raw bytes to stdout, as they are (logs stay byte-exact).
pub fn write(bytes: &[u8]) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(bytes)?;
    stdout.flush()?;
    Ok(())
}

/// Writes raw bytes to stderr, for words about what happened beside the data.
pub fn write_err(bytes: &[u8]) -> Result<(), CliError> {
    let mut stderr = std::io::stderr().lock();
    stderr.write_all(bytes)?;
    stderr.flush()?;
    Ok(())
}

pub fn line(text: impl Display) -> Result<(), CliError> {
    write(format!("{text}\n").as_bytes())
}

/// The API's JSON, pretty-printed.
pub fn json<T: Serialize>(value: &T) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| CliError::Other(e.to_string()))?;
    line(text)
}

pub fn color() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// A borderless table in the style of `kubectl get`.
pub fn table(headers: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(presets::NOTHING)
        .set_header(headers.to_vec());
    table
}

pub fn print_table(table: &Table) -> Result<(), CliError> {
    // comfy-table pads with a leading space per column; trim it for a clean left edge.
    let text: Vec<_> = table
        .lines()
        .map(|l| l.trim_end().strip_prefix(' ').unwrap_or(&l).to_owned())
        .collect();
    line(text.join("\n"))
}

pub fn status_cell(status: ExecutionStatus, color: bool) -> Cell {
    let cell = Cell::new(status);
    if !color {
        return cell;
    }
    match status {
        ExecutionStatus::Success => cell.fg(Color::Green),
        ExecutionStatus::Failure | ExecutionStatus::Unknown => cell.fg(Color::Red),
        ExecutionStatus::Running => cell.fg(Color::Cyan),
        ExecutionStatus::Created => cell.fg(Color::Yellow),
        ExecutionStatus::Cancelled => cell.fg(Color::Magenta),
    }
}

/// When the status history reached `status` first.
pub fn time_of(execution: &Execution, status: ExecutionStatus) -> Option<Timestamp> {
    let change = execution
        .status_history
        .iter()
        .find(|c| c.status == status)?;
    change.timestamp.parse().ok()
}

/// When the run ended, if it has.
pub fn end_of(execution: &Execution) -> Option<Timestamp> {
    let last = execution.status_history.last()?;
    if !last.status.is_terminal() {
        return None;
    }
    last.timestamp.parse().ok()
}

/// How long the run ran (so far, while it runs).
pub fn run_time(execution: &Execution) -> Option<Duration> {
    let started = time_of(execution, ExecutionStatus::Running)?;
    let ended = end_of(execution).unwrap_or_else(Timestamp::now);
    Duration::try_from(ended.duration_since(started)).ok()
}

/// `"3m ago"`.
pub fn ago(time: Timestamp) -> String {
    match Duration::try_from(Timestamp::now().duration_since(time)) {
        Ok(elapsed) => format!("{} ago", short_duration(elapsed)),
        Err(_) => "just now".into(),
    }
}

/// `"850ms"`, `"4.2s"`, `"3m 5s"`, `"2h 10m"`, `"3d 4h"`.
pub fn short_duration(duration: Duration) -> String {
    let seconds = duration.as_secs();
    match seconds {
        0 => format!("{}ms", duration.as_millis()),
        1..60 => format!("{:.1}s", duration.as_secs_f64()),
        60..3600 => format!("{}m {}s", seconds / 60, seconds % 60),
        3600..86_400 => format!("{}h {}m", seconds / 3600, seconds % 3600 / 60),
        _ => format!("{}d {}h", seconds / 86_400, seconds % 86_400 / 3600),
    }
}

/// A timestamp in local time, to the second: `2024-03-17 01:59:08`.
pub fn local(time: Timestamp) -> String {
    time.to_zoned(jiff::tz::TimeZone::system())
        .strftime("%Y-%m-%d %H:%M:%S")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(short_duration(Duration::from_millis(850)), "850ms");
        assert_eq!(short_duration(Duration::from_millis(4210)), "4.2s");
        assert_eq!(short_duration(Duration::from_secs(185)), "3m 5s");
        assert_eq!(short_duration(Duration::from_secs(7800)), "2h 10m");
        assert_eq!(short_duration(Duration::from_secs(273_600)), "3d 4h");
    }

    #[test]
    fn reads_state_timestamps() {
        let time: Timestamp = "2024-03-17T00:59:08.123456+00:00".parse().unwrap();
        assert_eq!(time.as_microsecond(), 1_710_637_148_123_456);
    }
}
