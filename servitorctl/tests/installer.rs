//! scripts/servitor-installer.sh into a temporary SYSTEM_ROOT: what it installs, the
//! unit it writes, and that the installed servitord serves a job.

use servitor_test_support as support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use servitor_shared::ExecutionStatus;
use support::{Daemon, binary};

fn installer() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/servitor-installer.sh")
}

fn install(root: &Path, action: &str) -> Output {
    let bin_dir = binary("servitord").parent().unwrap().to_owned();
    let output = Command::new(installer())
        .arg(action)
        .env("SYSTEM_ROOT", root)
        .env("SERVITOR_BIN_DIR", bin_dir)
        .env_remove("SERVITOR_USER")
        .env_remove("SERVITOR_UMASK")
        .env_remove("SERVITOR_WORKDIR")
        .env_remove("SERVITOR_PREFIX")
        .stdin(Stdio::null())
        .output()
        .expect("the installer runs");
    assert!(
        output.status.success(),
        "{action} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn installs_updates_and_uninstalls_into_a_system_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = fs::canonicalize(dir.path()).unwrap();
    install(&root, "install");

    let prefix = root.join("usr/local");
    for binary in ["servitord", "servitorctl"] {
        assert_eq!(mode(&prefix.join("bin").join(binary)), 0o755, "{binary}");
    }
    assert!(prefix.join("share/servitor/ui/index.html").is_file());
    assert!(
        fs::read_to_string(prefix.join("share/bash-completion/completions/servitorctl"))
            .unwrap()
            .contains("servitorctl")
    );
    assert!(
        prefix
            .join("share/zsh/site-functions/_servitorctl")
            .is_file()
    );
    assert!(
        prefix
            .join("share/fish/vendor_completions.d/servitorctl.fish")
            .is_file()
    );
    assert!(prefix.join("share/man/man1/servitorctl.1").is_file());
    assert!(prefix.join("share/man/man1/servitorctl-run.1").is_file());
    let workdir = root.join("srv/servitor");
    assert_eq!(mode(&workdir), 0o750);
    assert!(workdir.join("config/jobs").is_dir());

    let unit_path = root.join("etc/systemd/system/servitor.service");
    let unit = fs::read_to_string(&unit_path).unwrap();
    for line in [
        "User=root",
        "UMask=0077",
        "WorkingDirectory=/srv/servitor",
        "EnvironmentFile=-/srv/servitor/env",
        "Environment=SERVITOR_UI_ROOT=/usr/local/share/servitor/ui",
        "ExecStart=/usr/local/bin/servitord",
        "Restart=always",
        "KillMode=mixed",
        "TimeoutStopSec=1h",
        "LimitNOFILE=65536",
    ] {
        assert!(unit.lines().any(|l| l == line), "{line} missing in\n{unit}");
    }
    verify_unit(&root, &unit);

    // The installed servitord serves a job, and the installed servitorctl runs it.
    fs::write(
        workdir.join("config/jobs/hello"),
        "#!/bin/sh\necho installed\n",
    )
    .unwrap();
    fs::set_permissions(
        workdir.join("config/jobs/hello"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let daemon = Daemon::builder(&workdir)
        .program(prefix.join("bin/servitord"))
        .arg("--ui-root")
        .arg(prefix.join("share/servitor/ui"))
        .start();
    let ran = Command::new(prefix.join("bin/servitorctl"))
        .args(["run", "--follow", "hello"])
        .current_dir(&workdir)
        .output()
        .unwrap();
    assert!(
        ran.status.success(),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    assert_eq!(ran.stdout, b"installed\n");
    assert_eq!(
        daemon.execution("hello", "1").status,
        ExecutionStatus::Success
    );
    assert_eq!(daemon.get("/").status, 200, "the installed UI is served");
    drop(daemon);

    // Running it again updates in place; uninstalling keeps the working directory.
    let again = install(&root, "install");
    assert!(String::from_utf8_lossy(&again.stdout).contains("installed Servitor"));
    install(&root, "uninstall");
    assert!(!unit_path.exists());
    assert!(!prefix.join("bin/servitord").exists());
    assert!(!prefix.join("share/servitor").exists());
    assert!(!prefix.join("share/man/man1/servitorctl.1").exists());
    assert!(
        workdir
            .join("state/jobs/hello/executions/1/logs/main.txt")
            .is_file()
    );
}

/// `systemd-analyze verify`, where it is installed, on the unit with its paths moved
/// into the system root (it checks that ExecStart exists).
fn verify_unit(root: &Path, unit: &str) {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("systemd-analyze is not installed: the unit's syntax was not verified");
        return;
    }
    let check_dir = root.join("unit-check");
    fs::create_dir_all(&check_dir).unwrap();
    let moved = unit.replace("ExecStart=", &format!("ExecStart={}", root.display()));
    let copy = check_dir.join("servitor.service");
    fs::write(&copy, moved).unwrap();
    let verified = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&copy)
        .output()
        .unwrap();
    assert!(
        verified.status.success(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&verified.stderr)
    );
}

#[test]
fn refuses_bad_settings() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(installer())
        .env("SYSTEM_ROOT", dir.path())
        .env("SERVITOR_UMASK", "77x")
        .env("SERVITOR_BIN_DIR", binary("servitord").parent().unwrap())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("SERVITOR_UMASK must be an octal umask")
    );
    assert!(
        fs::read_dir(dir.path()).unwrap().next().is_none(),
        "nothing installed"
    );
}
