//! Signal names and numbers, in one table: how settings name a stop signal, and how
//! messages describe the signal that ended a process.

use std::fmt;

pub use rustix::process::Signal;

/// The signals of Linux's first fifteen numbers, and whether a job's settings may ask
/// a run to stop with it (`stop_signal`).
const TABLE: [(Signal, &str, bool); 15] = [
    (Signal::HUP, "SIGHUP", true),
    (Signal::INT, "SIGINT", true),
    (Signal::QUIT, "SIGQUIT", true),
    (Signal::ILL, "SIGILL", false),
    (Signal::TRAP, "SIGTRAP", false),
    (Signal::ABORT, "SIGABRT", false),
    (Signal::BUS, "SIGBUS", false),
    (Signal::FPE, "SIGFPE", false),
    (Signal::KILL, "SIGKILL", true),
    (Signal::USR1, "SIGUSR1", true),
    (Signal::SEGV, "SIGSEGV", false),
    (Signal::USR2, "SIGUSR2", true),
    (Signal::PIPE, "SIGPIPE", false),
    (Signal::ALARM, "SIGALRM", false),
    (Signal::TERM, "SIGTERM", true),
];

/// A `stop_signal` that is not one a run may be stopped with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stop_signal {0:?} is not one of {list}", list = stop_signal_names().join(", "))]
pub struct UnknownSignal(pub String);

/// Parses a stop signal: `"SIGTERM"`, `"TERM"` or `"term"`.
pub fn parse_stop_signal(name: &str) -> Result<Signal, UnknownSignal> {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    TABLE
        .iter()
        .find(|(_, known, stop)| *stop && known[3..] == *bare)
        .map(|(signal, _, _)| *signal)
        .ok_or_else(|| UnknownSignal(name.to_owned()))
}

fn stop_signal_names() -> Vec<&'static str> {
    // In the order people know them best.
    let order = [
        Signal::INT,
        Signal::TERM,
        Signal::HUP,
        Signal::QUIT,
        Signal::USR1,
        Signal::USR2,
        Signal::KILL,
    ];
    order
        .iter()
        .filter_map(|signal| name_of(signal.as_raw()))
        .collect()
}

fn name_of(number: i32) -> Option<&'static str> {
    TABLE
        .iter()
        .find(|(signal, _, _)| signal.as_raw() == number)
        .map(|(_, name, _)| *name)
}

/// `SIGKILL`, or `signal 64` for one without a name here.
pub struct Name(pub i32);

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match name_of(self.0) {
            Some(name) => f.write_str(name),
            None => write!(f, "signal {}", self.0),
        }
    }
}

/// `signal 9 (SIGKILL)`, or `signal 64`.
pub struct Described(pub i32);

impl fmt::Display for Described {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match name_of(self.0) {
            Some(name) => write!(f, "signal {} ({name})", self.0),
            None => write!(f, "signal {}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_parsing_come_from_one_table() {
        assert_eq!(Described(9).to_string(), "signal 9 (SIGKILL)");
        assert_eq!(Described(64).to_string(), "signal 64");
        assert_eq!(Name(2).to_string(), "SIGINT");
        assert_eq!(Name(64).to_string(), "signal 64");
        for (text, signal) in [
            ("SIGTERM", Signal::TERM),
            ("term", Signal::TERM),
            ("Int", Signal::INT),
            ("SIGKILL", Signal::KILL),
            ("usr2", Signal::USR2),
        ] {
            assert_eq!(parse_stop_signal(text), Ok(signal), "{text}");
        }
        for refused in ["SIGSTOP", "SEGV", "", "SIG", "9"] {
            assert!(parse_stop_signal(refused).is_err(), "{refused}");
        }
        assert_eq!(
            parse_stop_signal("SIGSTOP").unwrap_err().to_string(),
            "stop_signal \"SIGSTOP\" is not one of SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGKILL"
        );
    }
}
