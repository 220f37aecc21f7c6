//! The extra `sbatch` arguments of a job's settings (`slurm.sbatch_args`), read as
//! `sbatch` reads them, to refuse the options that Servitor owns or that would break
//! the executor, in every spelling: `-oFILE`, `-o FILE`, `-Ho FILE`, `--output=FILE`,
//! `--output FILE` and abbreviations such as `--out=FILE`.
//!
//! `sbatch` parses its options with getopt_long: a long option may be abbreviated to
//! any unambiguous prefix, short options may be grouped (`-Hv`), and a required value
//! is either attached or the next word, whatever it looks like. So the scan needs to
//! know which options take a value; the table below is sbatch 22.05's, as its own
//! parser answers (`sbatch --NAME` "requires an argument", `--NAME=x` "doesn't allow
//! an argument"). A word that is no option's value would become the batch script
//! (and Servitor's wrapper its argument), so it is refused too.

use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Value {
    /// `--hold`.
    None,
    /// `--time=10` or `--time 10`.
    Required,
    /// Attached only: `--exclusive` or `--exclusive=user`.
    Optional,
}

/// sbatch 22.05's long options.
const LONG: &[(&str, Value)] = &[
    ("account", Value::Required),
    ("acctg-freq", Value::Required),
    ("array", Value::Required),
    ("batch", Value::Required),
    ("bb", Value::Required),
    ("bbf", Value::Required),
    ("begin", Value::Required),
    ("chdir", Value::Required),
    ("cluster-constraint", Value::Required),
    ("clusters", Value::Required),
    ("comment", Value::Required),
    ("constraint", Value::Required),
    ("container", Value::Required),
    ("contiguous", Value::None),
    ("core-spec", Value::Required),
    ("cores-per-socket", Value::Required),
    ("cpu-freq", Value::Required),
    ("cpus-per-gpu", Value::Required),
    ("cpus-per-task", Value::Required),
    ("deadline", Value::Required),
    ("delay-boot", Value::Required),
    ("dependency", Value::Required),
    ("distribution", Value::Required),
    ("error", Value::Required),
    ("exclude", Value::Required),
    ("exclusive", Value::Optional),
    ("export", Value::Required),
    ("export-file", Value::Required),
    ("extra-node-info", Value::Required),
    ("get-user-env", Value::Optional),
    ("gid", Value::Required),
    ("gpu-bind", Value::Required),
    ("gpu-freq", Value::Required),
    ("gpus", Value::Required),
    ("gpus-per-node", Value::Required),
    ("gpus-per-socket", Value::Required),
    ("gpus-per-task", Value::Required),
    ("gres", Value::Required),
    ("gres-flags", Value::Required),
    ("help", Value::None),
    ("hint", Value::Required),
    ("hold", Value::None),
    ("ignore-pbs", Value::None),
    ("input", Value::Required),
    ("job-name", Value::Required),
    ("kill-on-invalid-dep", Value::Required),
    ("licenses", Value::Required),
    ("mail-type", Value::Required),
    ("mail-user", Value::Required),
    ("mcs-label", Value::Required),
    ("mem", Value::Required),
    ("mem-bind", Value::Required),
    ("mem-per-cpu", Value::Required),
    ("mem-per-gpu", Value::Required),
    ("mincpus", Value::Required),
    ("network", Value::Required),
    ("nice", Value::Optional),
    ("no-kill", Value::Optional),
    ("no-requeue", Value::None),
    ("nodefile", Value::Required),
    ("nodelist", Value::Required),
    ("nodes", Value::Required),
    ("ntasks", Value::Required),
    ("ntasks-per-core", Value::Required),
    ("ntasks-per-gpu", Value::Required),
    ("ntasks-per-node", Value::Required),
    ("ntasks-per-socket", Value::Required),
    ("open-mode", Value::Required),
    ("output", Value::Required),
    ("overcommit", Value::None),
    ("oversubscribe", Value::None),
    ("parsable", Value::None),
    ("partition", Value::Required),
    ("power", Value::Required),
    ("prefer", Value::Required),
    ("priority", Value::Required),
    ("profile", Value::Required),
    ("propagate", Value::Optional),
    ("qos", Value::Required),
    ("quiet", Value::None),
    ("reboot", Value::None),
    ("requeue", Value::None),
    ("reservation", Value::Required),
    ("signal", Value::Required),
    ("sockets-per-node", Value::Required),
    ("spread-job", Value::None),
    ("switches", Value::Required),
    ("test-only", Value::None),
    ("thread-spec", Value::Required),
    ("threads-per-core", Value::Required),
    ("time", Value::Required),
    ("time-min", Value::Required),
    ("tmp", Value::Required),
    ("uid", Value::Required),
    ("usage", Value::None),
    ("use-min-nodes", Value::None),
    ("verbose", Value::None),
    ("version", Value::None),
    ("wait", Value::None),
    ("wait-all-nodes", Value::Required),
    ("wckey", Value::Required),
    ("wrap", Value::Required),
];

/// sbatch 22.05's short options, with the long option each stands for.
const SHORT: &[(char, &str)] = &[
    ('A', "account"),
    ('B', "extra-node-info"),
    ('C', "constraint"),
    ('D', "chdir"),
    ('F', "nodefile"),
    ('G', "gpus"),
    ('H', "hold"),
    ('J', "job-name"),
    ('L', "licenses"),
    ('M', "clusters"),
    ('N', "nodes"),
    ('O', "overcommit"),
    ('Q', "quiet"),
    ('S', "core-spec"),
    ('V', "version"),
    ('W', "wait"),
    ('a', "array"),
    ('b', "begin"),
    ('c', "cpus-per-task"),
    ('d', "dependency"),
    ('e', "error"),
    ('h', "help"),
    ('i', "input"),
    ('k', "no-kill"),
    ('m', "distribution"),
    ('n', "ntasks"),
    ('o', "output"),
    ('p', "partition"),
    ('q', "qos"),
    ('s', "oversubscribe"),
    ('t', "time"),
    ('v', "verbose"),
    ('w', "nodelist"),
    ('x', "exclude"),
];

/// Why an option may not appear in `sbatch_args`, or `None` when it may.
fn refusal(long: &str) -> Option<&'static str> {
    Some(match long {
        "output" | "error" | "open-mode" => {
            "Servitor sends the job's output to the run's log (logs/main.txt, appended)"
        }
        "job-name" => "Servitor names the job, to find it again after a restart",
        "chdir" => "the job runs in its own folder, as local runs do",
        "wrap" => "Servitor submits its own wrapper script",
        "array" => "a run is one Slurm job, not an array of them",
        "export" => {
            "the job gets the daemon's environment with its env and inputs (--export=ALL); \
             a --export list would also split values at commas"
        }
        "requeue" | "no-requeue" => {
            "Servitor submits with --no-requeue: a job that Slurm ran again would be a \
             second run under the same execution"
        }
        "parsable" => "Servitor reads the job id from sbatch's --parsable output",
        "quiet" => "it hides the job id that sbatch prints",
        "wait" => "sbatch would not return before the job ends; Servitor follows the job itself",
        "test-only" | "help" | "usage" | "version" => "sbatch would submit nothing",
        "clusters" => "Servitor follows jobs on one cluster, the one SLURM_CONF names",
        "uid" | "gid" => {
            "the job runs as the daemon's user, who follows and cancels it (and these are root's)"
        }
        _ => return None,
    })
}

#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum ArgsError {
    #[error("{word:?} may not be used: {why}")]
    Refused { word: String, why: &'static str },
    #[error("{word:?} is ambiguous: sbatch could read it as --{}", candidates.join(" or --"))]
    Ambiguous {
        word: String,
        candidates: Vec<&'static str>,
    },
    #[error("{word:?} takes a value, and none follows it")]
    MissingValue { word: String },
    #[error(
        "{word:?} is not an option, so sbatch would take it for the batch script; \
         an option's value goes right after it, or after '=': --nodes=2"
    )]
    NotAnOption { word: String },
    #[error(
        "{word:?} is not an sbatch option known to Servitor; give its value after '=' \
         ({word}=VALUE), so that {value:?} is not taken for the batch script"
    )]
    UnknownWithValue { word: String, value: String },
    #[error("{word:?} is not an sbatch option")]
    UnknownShort { word: String },
    #[error("{word:?} contains a NUL byte")]
    Nul { word: String },
}

/// Checks `args` as sbatch will read them, before Servitor's own options and script.
pub fn check(args: &[String]) -> Result<(), ArgsError> {
    if let Some(word) = args.iter().find(|word| word.contains('\0')) {
        return Err(ArgsError::Nul { word: word.clone() });
    }
    let mut at = 0;
    while let Some(word) = args.get(at) {
        let next = args.get(at + 1);
        let takes_next = if let Some(body) = word.strip_prefix("--") {
            if body.is_empty() {
                // `--` ends the options: what follows would be the script.
                return Err(ArgsError::NotAnOption { word: word.clone() });
            }
            let (name, attached) = match body.split_once('=') {
                Some((name, _)) => (name, true),
                None => (body, false),
            };
            match long_option(word, name)? {
                Some(value) => value == Value::Required && !attached,
                // Unknown (a newer sbatch's?): whether it takes a value is not known,
                // so a following word must not be left to chance.
                None => match next {
                    Some(value) if !attached && !value.starts_with('-') => {
                        return Err(ArgsError::UnknownWithValue {
                            word: word.clone(),
                            value: value.clone(),
                        });
                    }
                    _ => false,
                },
            }
        } else if let Some(group) = word.strip_prefix('-').filter(|g| !g.is_empty()) {
            short_group(word, group)?
        } else {
            return Err(ArgsError::NotAnOption { word: word.clone() });
        };
        if takes_next && next.is_none() {
            return Err(ArgsError::MissingValue { word: word.clone() });
        }
        at += if takes_next { 2 } else { 1 };
    }
    Ok(())
}

/// The option `--name` stands for, as getopt_long resolves it: an exact name, else
/// the one option it is a prefix of. `None` when no option starts so.
fn long_option(word: &str, name: &str) -> Result<Option<Value>, ArgsError> {
    let found = match LONG.iter().find(|(long, _)| *long == name) {
        Some(exact) => Some(exact),
        None => {
            let candidates: Vec<_> = LONG
                .iter()
                .filter(|(long, _)| long.starts_with(name))
                .collect();
            if candidates.len() > 1 {
                return Err(ArgsError::Ambiguous {
                    word: word.to_owned(),
                    candidates: candidates.iter().map(|(long, _)| *long).collect(),
                });
            }
            candidates.first().copied()
        }
    };
    match found {
        Some((long, value)) => match refusal(long) {
            Some(why) => Err(ArgsError::Refused {
                word: word.to_owned(),
                why,
            }),
            None => Ok(Some(*value)),
        },
        None => Ok(None),
    }
}

/// A group of short options (`-Hv`, `-c4`, `-Hc 4`): each letter is an option until
/// one that takes a value, which takes the rest of the word, or else the next word.
/// Returns whether the next word is a value.
fn short_group(word: &str, group: &str) -> Result<bool, ArgsError> {
    for (at, letter) in group.char_indices() {
        let Some((_, long)) = SHORT.iter().find(|(short, _)| *short == letter) else {
            return Err(ArgsError::UnknownShort {
                word: format!("-{letter}"),
            });
        };
        if let Some(why) = refusal(long) {
            return Err(ArgsError::Refused {
                word: word.to_owned(),
                why,
            });
        }
        let value = LONG
            .iter()
            .find(|(name, _)| name == long)
            .map_or(Value::None, |(_, value)| *value);
        let rest = &group[at + letter.len_utf8()..];
        match value {
            Value::None => {}
            // An optional value is attached or absent.
            Value::Optional => return Ok(false),
            Value::Required => return Ok(rest.is_empty()),
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_words(words: &[&str]) -> Result<(), ArgsError> {
        check(&words.iter().map(|w| (*w).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn ordinary_arguments_pass() {
        for args in [
            &[][..],
            &["--exclusive"],
            &["--exclusive=user"],
            &["-N", "2", "--ntasks-per-node=4"],
            &["-N2", "-n", "8"],
            &["--nodes", "2"],
            &["--gres=gpu:a100:2", "--hold"],
            &["-Hv"],
            &["-Hc", "4"],
            &["-Hc4"],
            &["--comment", "-o is fine inside a value"],
            &["--comment=--output=x"],
            &["--begin", "now+1hour"],
            &["--signal=B:USR2@30"],
            &["--part=gpu"],
            &["--mail-type=END", "--mail-user", "me@example.org"],
            &["--wait-all-nodes=1"],
            &["--export-file=/etc/site-env"],
            &["-k"],
            &["--future-option"],
            &["--future-option=x", "--exclusive"],
            &["--future-option", "--exclusive"],
        ] {
            assert_eq!(check_words(args), Ok(()), "{args:?}");
        }
    }

    #[test]
    fn owned_options_are_refused_in_every_spelling() {
        for args in [
            &["-o", "x"][..],
            &["-ox"],
            &["--output=x"],
            &["--output", "x"],
            &["--out=x"],
            &["--outp", "x"],
            &["-e", "x"],
            &["-ex"],
            &["--error=x"],
            &["--error", "x"],
            &["-J", "x"],
            &["-Jx"],
            &["--job-name=x"],
            &["--job-name", "x"],
            &["--job=x"],
            &["-a", "1-3"],
            &["-a1-3"],
            &["--array=1-3"],
            &["--array", "1-3"],
            &["--wrap=true"],
            &["--wrap", "true"],
            &["--wr", "true"],
            &["-D", "/tmp"],
            &["-D/tmp"],
            &["--chdir=/tmp"],
            &["--chdir", "/tmp"],
            &["-HD/tmp"],
            &["-vo", "x"],
            &["--export=ALL,A=1"],
            &["--export", "NONE"],
            &["--requeue"],
            &["--no-requeue"],
            &["--parsable"],
            &["--open-mode=truncate"],
            &["--open-mode", "append"],
            &["-W"],
            &["--wait"],
            &["-HW"],
            &["--test-only"],
            &["--test"],
            &["-Q"],
            &["--quiet"],
            &["-M", "other"],
            &["--clusters=other"],
            &["--uid=0"],
            &["--help"],
            &["-V"],
        ] {
            assert!(
                matches!(check_words(args), Err(ArgsError::Refused { .. })),
                "{args:?}: {:?}",
                check_words(args)
            );
        }
        let error = check_words(&["--exclusive", "-oFILE"]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "\"-oFILE\" may not be used: Servitor sends the job's output to the run's log \
             (logs/main.txt, appended)"
        );
    }

    #[test]
    fn words_that_would_become_the_script_are_refused() {
        for args in [
            &["script.sh"][..],
            &["--exclusive", "user"],
            &["--hold", "x"],
            &["-H", "x"],
            &["-"],
            &["--"],
            &["--", "x"],
            &[":", "-N", "1"],
            &["-N", "2", "3"],
        ] {
            let error = check_words(args).unwrap_err();
            assert!(
                matches!(error, ArgsError::NotAnOption { .. }),
                "{args:?}: {error:?}"
            );
        }
        assert_eq!(
            check_words(&["--future-option", "x"]),
            Err(ArgsError::UnknownWithValue {
                word: "--future-option".into(),
                value: "x".into()
            })
        );
    }

    #[test]
    fn other_mistakes_are_named() {
        assert_eq!(
            check_words(&["--time"]),
            Err(ArgsError::MissingValue {
                word: "--time".into()
            })
        );
        assert_eq!(
            check_words(&["-Hc"]),
            Err(ArgsError::MissingValue { word: "-Hc".into() })
        );
        let error = check_words(&["--par=x"]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "\"--par=x\" is ambiguous: sbatch could read it as --parsable or --partition"
        );
        assert_eq!(
            check_words(&["-Z"]),
            Err(ArgsError::UnknownShort { word: "-Z".into() })
        );
        assert_eq!(
            check_words(&["-Hé"]),
            Err(ArgsError::UnknownShort { word: "-é".into() })
        );
        assert!(matches!(
            check_words(&["--comment", "a\0b"]),
            Err(ArgsError::Nul { .. })
        ));
    }

    #[test]
    fn the_tables_agree() {
        for (letter, long) in SHORT {
            assert!(
                LONG.iter().any(|(name, _)| name == long),
                "-{letter} stands for an unknown --{long}"
            );
        }
        for pair in LONG.windows(2) {
            assert!(pair[0].0 < pair[1].0, "sorted, without repeats: {pair:?}");
        }
    }
}
