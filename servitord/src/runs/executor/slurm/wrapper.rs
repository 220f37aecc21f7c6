//! The `/bin/sh` script submitted for each Slurm run, written into the run's folder.
//! It does on the compute node what the local runner does here: starts the job file
//! in its own folder, in a new session (so the job leads its own process group),
//! forwards stop signals to that group, waits for the job, and records its exit
//! status in the run's `exit_code` file, atomically (a temporary file, then a
//! rename), so that a reader sees the whole file or none.
//!
//! The exit code file holds the status as the shell reports it, one decimal number
//! and a newline: 0 to 255, where a job killed by signal N shows as 128+N. A POSIX
//! shell cannot tell that from a job that called `exit(128+N)`; the executor knows
//! when it stopped a run itself, and Slurm's state says when Slurm did (TIMEOUT,
//! CANCELLED...), so only a job that kills itself with a signal, or exits with a
//! code above 128, is ambiguous. The file is missing when the wrapper itself was
//! killed (SIGKILL at the end of a cancel or time limit, a node failure).
//!
//! Signals: Slurm's time limit and `scancel` signal every process of the job, and
//! `scancel --batch` or `sbatch --signal=B:...` only the batch shell, this wrapper;
//! the wrapper passes INT, TERM, HUP, QUIT, USR1 and USR2 (every stop signal the
//! settings allow but KILL) on to the job's process group, and so never dies of one
//! itself while the job runs. A shell starts a background command with SIGINT and
//! SIGQUIT ignored, and a job would keep that (a shell script could then not be
//! stopped with SIGINT, the default on cancel): the wrapper restores them, with
//! `trap -` where /bin/sh is bash and with `env --default-signal` (coreutils 8.31,
//! Debian 11, Ubuntu 22.04, RHEL 9 and later) where it is dash. Limits: with dash
//! and an older coreutils, the job starts with SIGINT and SIGQUIT ignored; without
//! `setsid` (util-linux), the job shares the wrapper's process group and signals go
//! to its own process only; a signal that comes before the job has its session is
//! sent to the job's process alone; a job that exits with 127 just after a
//! forwarded signal is recorded as 128+N, the status of the interrupted wait.
//!
//! A job whose folder is missing on the node is recorded as 127, as a job file that
//! is missing; one that is not executable as 126 (the shell's codes). The shell's
//! message is in the log.

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The wrapper script, in the run's folder.
pub const WRAPPER_FILE: &str = "slurm_wrapper.sh";
/// The job's exit status, in the run's folder, written when the job has ended.
pub const EXIT_CODE_FILE: &str = "exit_code";

/// The wrapper for running `job_file` (absolute) in its folder, recording its exit
/// status in `run_dir`.
pub fn script(job_file: &Path, run_dir: &Path) -> Vec<u8> {
    let folder = job_file.parent().unwrap_or(Path::new("/"));
    let mut text = Vec::new();
    text.extend_from_slice(HEADER.as_bytes());
    for (name, value) in [
        ("job", job_file.to_path_buf()),
        ("folder", folder.to_path_buf()),
        ("exit_file", run_dir.join(EXIT_CODE_FILE)),
    ] {
        text.extend_from_slice(name.as_bytes());
        text.push(b'=');
        quote_into(&mut text, value.as_os_str().as_bytes());
        text.push(b'\n');
    }
    text.extend_from_slice(BODY.as_bytes());
    text
}

/// Writes the wrapper into `run_dir`; returns its path.
pub fn write(job_file: &Path, run_dir: &Path) -> io::Result<PathBuf> {
    let path = run_dir.join(WRAPPER_FILE);
    std::fs::write(&path, script(job_file, run_dir))?;
    Ok(path)
}

/// `value` in single quotes, where the shell takes every byte as it is but `'`,
/// written `'\''`.
fn quote_into(text: &mut Vec<u8>, value: &[u8]) {
    text.push(b'\'');
    for byte in value {
        if *byte == b'\'' {
            text.extend_from_slice(b"'\\''");
        } else {
            text.push(*byte);
        }
    }
    text.push(b'\'');
}

const HEADER: &str = "#!/bin/sh
# Servitor's wrapper for one run on Slurm, written by servitord: runs the job in its
# own folder and session, passes stop signals on to the job's process group, and
# records the job's exit status in exit_code when it ends.
";

const BODY: &str = r#"
# Atomic: whoever reads exit_code sees the whole status or no file.
record() {
	printf '%s\n' "$1" >"$exit_file.tmp" && mv -f "$exit_file.tmp" "$exit_file"
}

pid=
pending=
interrupted=
forward() {
	interrupted=1
	if [ -z "$pid" ]; then
		pending=$1
		return
	fi
	kill -s "$1" -- "-$pid" 2>/dev/null || kill -s "$1" "$pid" 2>/dev/null
}
for signal in INT TERM HUP QUIT USR1 USR2; do
	trap "forward $signal" "$signal"
done

cd "$folder" || {
	record 127
	exit 127
}

# In a new session: the job leads its own process group. A child of a shell without
# job control leads no group, so setsid does not fork and $! is the job's pid.
set -- "$job"
# A shell starts background commands with SIGINT and SIGQUIT ignored, which the job
# would keep: `trap -` in the subshell restores them in bash (and shells that follow
# POSIX interpretation 751), env --default-signal (coreutils 8.31+) in dash.
if env --default-signal=INT,QUIT true 2>/dev/null; then
	set -- env --default-signal=INT,QUIT "$@"
fi
if command -v setsid >/dev/null 2>&1; then
	set -- setsid "$@"
fi
(
	trap - INT QUIT
	exec "$@"
) </dev/null &
pid=$!
[ -z "$pending" ] || forward "$pending"

status=
while :; do
	interrupted=
	wait "$pid" 2>/dev/null
	code=$?
	# Once a wait has returned the job's status, another finds no such child (127):
	# the status is the first one's.
	if [ "$code" -eq 127 ] && [ -n "$status" ]; then
		break
	fi
	status=$code
	# A forwarded signal interrupts wait (with a status above 128), whether or not
	# the job has ended meanwhile: wait again, for the job's own status.
	[ -n "$interrupted" ] && [ "$status" -gt 128 ] || break
done
record "$status"
exit "$status"
"#;

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    use rustix::process::{Pid, Signal, kill_process};

    use super::super::parse::{self, ExitCode};
    use super::*;

    /// Bound on every wait in these tests; reached only when something is wrong.
    const DEADLINE: Duration = Duration::from_secs(20);

    /// The shells a wrapper may meet: /bin/sh (dash on Debian, bash on Red Hat's
    /// family), and bash as such when it is installed.
    fn shells() -> Vec<&'static str> {
        ["/bin/sh", "/bin/bash", "/bin/dash"]
            .into_iter()
            .filter(|shell| Path::new(shell).exists())
            .collect()
    }

    struct Run {
        dir: tempfile::TempDir,
        job_file: PathBuf,
        run_dir: PathBuf,
    }

    impl Run {
        /// A job file `body` in `folder`, and a run folder `run`, both under a
        /// temporary folder.
        fn new(folder: &str, name: &str, run: &str, body: &str) -> Self {
            let dir = tempfile::tempdir().unwrap();
            let folder = dir.path().join(folder);
            let run_dir = dir.path().join(run);
            fs::create_dir_all(&folder).unwrap();
            fs::create_dir_all(&run_dir).unwrap();
            let job_file = folder.join(name);
            fs::write(&job_file, format!("#!/bin/sh\n{body}")).unwrap();
            fs::set_permissions(&job_file, fs::Permissions::from_mode(0o755)).unwrap();
            Self {
                dir,
                job_file,
                run_dir,
            }
        }

        fn simple(body: &str) -> Self {
            Self::new("jobs", "job.sh", "run", body)
        }

        /// Starts the wrapper under `shell`, its output going to the run's log.
        fn start(&self, shell: &str) -> Child {
            let wrapper = write(&self.job_file, &self.run_dir).unwrap();
            let log = fs::File::create(self.log_path()).unwrap();
            Command::new(shell)
                .arg(wrapper)
                .current_dir(self.dir.path())
                .env("MARKERS", self.dir.path())
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap()
        }

        fn log_path(&self) -> PathBuf {
            self.run_dir.join("main.txt")
        }

        fn log(&self) -> String {
            fs::read_to_string(self.log_path()).unwrap()
        }

        fn exit_code(&self) -> Option<ExitCode> {
            match fs::read(self.run_dir.join(EXIT_CODE_FILE)) {
                Ok(bytes) => Some(parse::exit_code(&bytes).unwrap()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => panic!("{e}"),
            }
        }

        /// Waits until the job wrote `marker` under the temporary folder; returns its text.
        fn wait_for_marker(&self, marker: &str) -> String {
            let path = self.dir.path().join(marker);
            wait_until(&format!("{marker} to appear"), || {
                fs::read_to_string(&path).ok().filter(|t| t.ends_with('\n'))
            })
        }
    }

    fn wait_until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(value) = check() {
                return value;
            }
            assert!(Instant::now() < deadline, "waited {DEADLINE:?} for {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for the wrapper to end; returns its exit code.
    fn finish(mut child: Child) -> i32 {
        let status = wait_until("the wrapper to end", || child.try_wait().unwrap());
        status.code().expect("the wrapper exits, it is not killed")
    }

    fn signal(child: &Child, signal: Signal) {
        let pid = Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap();
        kill_process(pid, signal).unwrap();
    }

    /// Whether a live process named `name` is in process group `group`.
    fn group_runs(group: &str, name: &str) -> bool {
        let Ok(entries) = fs::read_dir("/proc") else {
            return false;
        };
        entries.flatten().any(|entry| {
            let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
                return false;
            };
            // `pid (comm) state ppid pgrp ...`
            let Some((head, rest)) = stat.rsplit_once(") ") else {
                return false;
            };
            let comm = head.split_once(" (").map(|(_, comm)| comm);
            let fields: Vec<&str> = rest.split_whitespace().collect();
            comm == Some(name) && fields.get(2) == Some(&group) && fields[0] != "Z"
        })
    }

    /// Alive and not a zombie (where nothing reaps orphans, zombies stay).
    fn alive(pid: &str) -> bool {
        fs::read_to_string(format!("/proc/{}/stat", pid.trim())).is_ok_and(|stat| {
            let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start());
            !state.is_some_and(|s| s.starts_with('Z') || s.starts_with('X'))
        })
    }

    #[test]
    fn exit_codes_are_recorded() {
        for shell in shells() {
            for code in [0, 3, 255] {
                let run = Run::simple(&format!("echo out; echo err >&2; exit {code}"));
                assert_eq!(finish(run.start(shell)), code, "{shell}");
                assert_eq!(run.exit_code(), Some(ExitCode(code as u8)), "{shell}");
                assert_eq!(run.log(), "out\nerr\n", "{shell}");
                assert!(!run.run_dir.join("exit_code.tmp").exists());
            }
        }
    }

    #[test]
    fn the_job_runs_in_its_folder_in_a_session_of_its_own() {
        for shell in shells() {
            let run = Run::simple(
                "pwd; ps -o pid= -o pgid= -o sid= -p $$ | awk '{print ($1==$2 && $1==$3)}'; \
                 echo \"${MARKERS:+env passed}\"; cat; echo done",
            );
            assert_eq!(finish(run.start(shell)), 0);
            let folder = run.job_file.parent().unwrap().to_str().unwrap();
            assert_eq!(
                run.log(),
                format!("{folder}\n1\nenv passed\ndone\n"),
                "{shell}"
            );
        }
    }

    #[test]
    fn odd_paths_are_quoted() {
        for shell in shells() {
            let run = Run::new(
                "it's a \"dir\" $HOME `x` ünï\\",
                "jöb 'x' $(y).sh",
                "state/jobs/a b/executions/1 'q'",
                "pwd; exit 4",
            );
            assert_eq!(finish(run.start(shell)), 4, "{shell}: {}", run.log());
            let folder = run.job_file.parent().unwrap().to_str().unwrap();
            assert_eq!(run.log(), format!("{folder}\n"), "{shell}");
            assert_eq!(run.exit_code(), Some(ExitCode(4)));
        }
    }

    #[test]
    fn term_reaches_a_job_that_traps_it() {
        for shell in shells() {
            let run = Run::simple(
                "trap 'echo got TERM; exit 42' TERM\n\
                 echo ready >\"$MARKERS/ready\"\n\
                 while :; do sleep 1 & wait $!; done",
            );
            let wrapper = run.start(shell);
            run.wait_for_marker("ready");
            signal(&wrapper, Signal::TERM);
            assert_eq!(finish(wrapper), 42, "{shell}");
            assert_eq!(run.exit_code(), Some(ExitCode(42)));
            assert!(run.log().contains("got TERM\n"), "{shell}: {}", run.log());
        }
    }

    #[test]
    fn int_is_not_left_ignored() {
        for shell in shells() {
            // Without a trap, SIGINT ends the job: 128 + 2. The shell running the
            // job dies of SIGINT only if its foreground child does (as shells do):
            // so the signal is sent once `sleep` runs.
            let run = Run::simple("echo $$ >\"$MARKERS/job\"; sleep 30");
            let wrapper = run.start(shell);
            let job = run.wait_for_marker("job");
            wait_until("sleep to run in the job's group", || {
                group_runs(job.trim(), "sleep").then_some(())
            });
            signal(&wrapper, Signal::INT);
            assert_eq!(finish(wrapper), 130, "{shell}");
            assert_eq!(run.exit_code().unwrap().signal(), Some(2));

            let run = Run::simple(
                "trap 'echo got INT; exit 5' INT\n\
                 echo ready >\"$MARKERS/ready\"\n\
                 while :; do sleep 1 & wait $!; done",
            );
            let wrapper = run.start(shell);
            run.wait_for_marker("ready");
            signal(&wrapper, Signal::INT);
            assert_eq!(finish(wrapper), 5, "{shell}: {}", run.log());
        }
    }

    #[test]
    fn term_reaches_a_grandchild_in_the_background() {
        for shell in shells() {
            let run = Run::simple(
                "sleep 300 &\n\
                 echo $! >\"$MARKERS/grandchild\"\n\
                 wait",
            );
            let wrapper = run.start(shell);
            let grandchild = run.wait_for_marker("grandchild");
            assert!(alive(&grandchild));
            signal(&wrapper, Signal::TERM);
            // The job's shell dies of TERM too: 128 + 15.
            assert_eq!(finish(wrapper), 143, "{shell}");
            assert_eq!(run.exit_code(), Some(ExitCode(143)));
            wait_until("the grandchild to be gone", || {
                (!alive(&grandchild)).then_some(())
            });
        }
    }

    #[test]
    fn a_job_that_cannot_start_is_recorded() {
        for shell in shells() {
            let run = Run::simple("exit 0");
            fs::set_permissions(&run.job_file, fs::Permissions::from_mode(0o644)).unwrap();
            assert_eq!(finish(run.start(shell)), 126, "{shell}: not executable");
            assert_eq!(run.exit_code(), Some(ExitCode(126)));

            fs::remove_file(&run.job_file).unwrap();
            assert_eq!(finish(run.start(shell)), 127, "{shell}: missing");

            fs::remove_dir(run.job_file.parent().unwrap()).unwrap();
            assert_eq!(finish(run.start(shell)), 127, "{shell}: no folder");
            assert_eq!(run.exit_code(), Some(ExitCode(127)));
        }
    }

    #[test]
    fn quoting() {
        let mut text = Vec::new();
        quote_into(&mut text, b"it's $HOME\n");
        assert_eq!(text, b"'it'\\''s $HOME\n'");
    }
}
