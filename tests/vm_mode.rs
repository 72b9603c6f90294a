//! VM mode without a VM: `--mode vm` as PID 1 of a PID namespace runs the
//! whole VM path (mounts, exit line, status file, reboot(2)). Inside a PID
//! namespace, reboot(2) ends the namespace, its init dying of SIGINT for a
//! power-off and of SIGHUP for a restart, which is what these tests see.
//! The real-VM tests live with the QEMU harness.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;

use common::{Run, binary, run};
use serde_json::Value;

/// Runs vminit in VM mode as PID 1 of new namespaces, with /run bound to a
/// fresh host directory so the status file can be read afterwards. Without
/// `--cmdline`, vminit would read this host's own kernel command line.
fn vm(name: &str, args: &[&str]) -> (Run, PathBuf) {
    let (command, status) = vm_command(name, args);
    (run(command), status)
}

/// The command [`vm`] runs, and where its status file will be.
fn vm_command(name: &str, args: &[&str]) -> (std::process::Command, PathBuf) {
    let run_dir = common::tempdir(&format!("vm-{name}"));
    let mut command = common::pid1_namespace();
    command
        .args(["sh", "-c"])
        // A kernel-started init gets no PATH: neither does this one.
        .arg("mount --bind \"$0\" /run && unset PATH && exec \"$@\"")
        .arg(&run_dir)
        .arg(binary())
        .args(["--mode", "vm"]);
    if !args.contains(&"--cmdline") {
        command.args(["--cmdline", "console=ttyS0"]);
    }
    command.args(args);
    (command, run_dir.join("vminit/status.json"))
}

fn exit_lines(result: &Run) -> Vec<&str> {
    result
        .stderr
        .lines()
        .filter(|l| l.starts_with("vminit: exit_code="))
        .collect()
}

fn status(path: &PathBuf) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("status file")).unwrap()
}

#[test]
fn the_vm_reports_the_exit_code_once_and_powers_off() {
    let (result, status_file) = vm("exit", &["--cmdline", "env.A=1 -- sh -c \"exit 5\""]);
    assert_eq!(exit_lines(&result), ["vminit: exit_code=5"], "{result:#?}");
    assert_eq!(
        result.status.signal(),
        Some(libc::SIGINT),
        "power-off: {result:#?}"
    );
    let status = status(&status_file);
    assert_eq!(status["exit_code"], 5);
    assert_eq!(status["signal"], Value::Null);
    let t = &status["timings"];
    let at = |k: &str| t[k].as_u64().unwrap_or_else(|| panic!("{k} in {t}"));
    assert!(at("init_start_us") <= at("app_exec_us"), "{t}");
    assert!(at("app_exec_us") <= at("app_exit_us"), "{t}");
    assert!(at("app_exit_us") <= at("poweroff_us"), "{t}");
}

#[test]
fn restart_is_used_when_asked() {
    let (result, _) = vm("reboot", &["--cmdline", "vminit.shutdown=reboot -- true"]);
    assert_eq!(exit_lines(&result), ["vminit: exit_code=0"], "{result:#?}");
    assert_eq!(
        result.status.signal(),
        Some(libc::SIGHUP),
        "restart: {result:#?}"
    );
}

#[test]
fn signal_deaths_and_missing_commands_are_reported() {
    let (result, status_file) = vm("signal", &["--", "sh", "-c", "kill -KILL $$"]);
    assert_eq!(
        exit_lines(&result),
        ["vminit: exit_code=137"],
        "{result:#?}"
    );
    assert_eq!(status(&status_file)["signal"], 9);
    let (result, _) = vm("missing", &["--", "no-such-command-xyz"]);
    assert_eq!(
        exit_lines(&result),
        ["vminit: exit_code=127"],
        "{result:#?}"
    );
    assert!(result.stderr.contains("no-such-command-xyz"));
}

#[test]
fn bad_configuration_still_powers_off_with_2() {
    let (result, status_file) = vm("bad", &["--cmdline", "env.1X=s3cret workdir=rel -- true"]);
    assert_eq!(exit_lines(&result), ["vminit: exit_code=2"], "{result:#?}");
    assert_eq!(result.status.signal(), Some(libc::SIGINT), "{result:#?}");
    assert!(result.stderr.contains("env.1X"), "{}", result.stderr);
    assert!(!result.stderr.contains("s3cret"));
    assert_eq!(status(&status_file)["exit_code"], 2);
    let (result, _) = vm("no-command", &[]);
    assert_eq!(exit_lines(&result), ["vminit: exit_code=2"], "{result:#?}");
}

#[test]
fn the_app_finds_the_mounts_and_gets_a_default_path() {
    let script = "test -d /proc/self && test -d /sys/kernel && test -c /dev/null && \
        test -d /dev/pts && test -d /dev/shm && test -d /run && echo \"PATH=$PATH pid=$$\"";
    let mut command_env = vec!["--", "/bin/sh", "-c", script];
    command_env.insert(0, "-q");
    let (result, _) = vm("mounts", &command_env);
    assert_eq!(exit_lines(&result), ["vminit: exit_code=0"], "{result:#?}");
    assert!(
        result
            .stdout
            .contains("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin pid="),
        "{result:#?}"
    );
    assert!(
        !result.stdout.contains("pid=1\n"),
        "the app is not PID 1: {result:#?}"
    );
}

#[test]
fn invalid_configuration_still_ends_the_machine_the_way_asked() {
    // Firecracker on x86 ends a VM only on a restart: an error must not
    // fall back to a power-off that leaves it halted.
    let (result, _) = vm(
        "bad-reboot",
        &["--shutdown", "reboot", "--cmdline", "env.1X=y -- true"],
    );
    assert_eq!(exit_lines(&result), ["vminit: exit_code=2"], "{result:#?}");
    assert_eq!(
        result.status.signal(),
        Some(libc::SIGHUP),
        "restart: {result:#?}"
    );
}

#[test]
fn vm_mode_needs_pid_1() {
    let result = run(common::vminit(&["--mode", "vm", "--", "true"]));
    assert_eq!(result.code(), 2, "{result:#?}");
    assert!(
        result.stderr.contains("needs vminit to be PID 1"),
        "{}",
        result.stderr
    );
}

#[test]
fn machine_set_up_and_report_channels_are_skipped_in_a_namespace() {
    let (result, status_file) = vm(
        "machine-settings",
        &[
            "--cmdline",
            "vminit.modules=virtio_net vminit.net.address=10.0.2.15/24 \
             vminit.report.port=org.vminit.exit vminit.report.vsock=2:5000 -- sh -c \"exit 6\"",
        ],
    );
    assert_eq!(exit_lines(&result), ["vminit: exit_code=6"], "{result:#?}");
    assert!(
        result.stderr.contains("skipped in a PID namespace"),
        "{result:#?}"
    );
    // The host's vsock and ports are not the namespace's to dial.
    assert!(
        result
            .stderr
            .contains("report.* channels are a machine's: skipped in a PID namespace"),
        "{result:#?}"
    );
    let status = status(&status_file);
    assert_eq!(status["exit_code"], 6);
    assert_eq!(status["oom_killed"], false);
}

#[test]
fn volumes_are_mounted_parents_first_and_a_failed_one_stops_the_boot() {
    // Children named first: the order comes from the targets.
    let (result, _) = vm(
        "volumes",
        &[
            "--cmdline",
            "vminit.mount.logs=tmpfs,/run/vol/data/logs,tmpfs,size=1m \
             vminit.mount.data=tmpfs,/run/vol/data,tmpfs,noexec,mode=0700 \
             -- sh -c \"grep ' /run/vol' /proc/self/mounts\"",
        ],
    );
    assert_eq!(exit_lines(&result), ["vminit: exit_code=0"], "{result:#?}");
    let mounts: Vec<&str> = result.stdout.lines().collect();
    assert_eq!(mounts.len(), 2, "{result:#?}");
    assert!(
        mounts[0].starts_with("tmpfs /run/vol/data tmpfs rw,"),
        "{mounts:?}"
    );
    assert!(
        mounts[0].contains("noexec") && mounts[0].contains("mode=700"),
        "{mounts:?}"
    );
    assert!(
        mounts[1].starts_with("tmpfs /run/vol/data/logs tmpfs"),
        "{mounts:?}"
    );
    assert!(mounts[1].contains("size=1024k"), "{mounts:?}");

    let (result, _) = vm(
        "bad-volume",
        &[
            "--cmdline",
            "vminit.mount.data=/dev/no-such-disk,/run/vol/data,ext4 vminit.root.wait=0.2 \
             -- sh -c \"echo app-ran\"",
        ],
    );
    assert_eq!(exit_lines(&result), ["vminit: exit_code=2"], "{result:#?}");
    assert!(
        result
            .stderr
            .contains("Volume data: device /dev/no-such-disk did not appear within 200ms"),
        "{result:#?}"
    );
    assert!(!result.stdout.contains("app-ran"));
}

#[test]
fn a_graceful_stop_sends_the_stop_signal_in_vm_mode_only() {
    // The image's StopSignal (PostgreSQL's SIGINT): SIGTERM to vminit as a
    // VM's init is a graceful stop, and the app gets its stop signal. In a
    // container the engine sends the stop signal itself: SIGTERM stays
    // SIGTERM.
    let app = "trap 'echo got-INT; exit 42' INT; trap 'echo got-TERM; exit 43' TERM; \
               echo ready; while :; do sleep 0.1; done";
    let (command, _) = vm_command(
        "stop-signal",
        &["--stop-signal", "SIGINT", "--", "sh", "-c", app],
    );
    let mut child = common::spawn(command);
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    common::wait_for_line(&mut out, "ready");
    common::send(common::vminit_pid(&child, true), libc::SIGTERM);
    common::wait_for_line(&mut out, "got-INT");
    child.stdout = Some(out.into_inner());
    let result = common::finish(child, std::time::Duration::from_secs(30));
    assert_eq!(exit_lines(&result), ["vminit: exit_code=42"], "{result:#?}");
    assert!(
        result
            .stderr
            .contains("SIGTERM: sending the stop signal SIGINT"),
        "{result:#?}"
    );

    for pid1 in [false, true] {
        let mut command = if pid1 {
            common::vminit_pid1(&[])
        } else {
            common::vminit(&[])
        };
        command.args(["--stop-signal", "INT", "--", "sh", "-c", app]);
        let mut child = common::spawn(command);
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        common::wait_for_line(&mut out, "ready");
        common::send(common::vminit_pid(&child, pid1), libc::SIGTERM);
        common::wait_for_line(&mut out, "got-TERM");
        child.stdout = Some(out.into_inner());
        let result = common::finish(child, std::time::Duration::from_secs(30));
        assert_eq!(result.code(), 43, "pid1={pid1}: {result:#?}");
    }
}

#[test]
fn the_stop_signal_is_checked_and_shown() {
    let result = run(common::vminit(&[
        "--check",
        "--cmdline",
        "vminit.stop_signal=quit",
        "--",
        "true",
    ]));
    let json: Value = serde_json::from_str(&result.stdout).expect("--check prints JSON");
    assert_eq!(json["vminit"]["stop_signal"], "SIGQUIT", "{result:#?}");
    let result = run(common::vminit(&[
        "--check",
        "--cmdline",
        "vminit.stop_signal=SIGNOPE",
        "--",
        "true",
    ]));
    assert_eq!(result.code(), 2, "{result:#?}");
    assert!(
        result
            .stderr
            .contains("vminit.stop_signal: must be a signal name such as SIGINT or INT"),
        "{result:#?}"
    );
}

#[test]
fn a_missing_working_directory_is_created_in_vm_mode_only() {
    // As Docker does for an image's WorkingDir that its layers lack.
    let dir = common::tempdir("workdir-made").join("made/by/vminit");
    let dir = dir.to_str().unwrap();
    let (result, _) = vm(
        "workdir",
        &["--workdir", dir, "--", "sh", "-c", "pwd; stat -c %a:%u ."],
    );
    assert!(
        result.stdout.contains(&format!("{dir}\n755:0")),
        "{result:#?}"
    );
    assert!(
        result
            .stderr
            .contains(&format!("created the working directory {dir}")),
        "{result:#?}"
    );
    let result = run(common::vminit(&[
        "--workdir",
        "/nonexistent/dir",
        "--",
        "true",
    ]));
    assert_eq!(result.code(), 2, "{result:#?}");
    assert!(result.stderr.contains("no such directory"), "{result:#?}");
}

#[test]
fn a_volume_is_given_its_owner_and_mode_before_the_app_starts() {
    // A fresh filesystem belongs to root: PostgreSQL's initdb as postgres
    // could not write it. The top directory only, named by uid or by name.
    let (result, _) = vm(
        "volume-owner",
        &[
            "--cmdline",
            "vminit.mount.data=tmpfs,/run/vol/owned,tmpfs vminit.mount.data.owner=nobody \
             vminit.mount.data.mode=2770 vminit.mount.logs=tmpfs,/run/vol/logs,tmpfs \
             vminit.mount.logs.owner=4242:4343 \
             -- sh -c \"stat -c '%n %u:%g %a' /run/vol/owned /run/vol/logs\"",
        ],
    );
    assert_eq!(exit_lines(&result), ["vminit: exit_code=0"], "{result:#?}");
    assert!(
        result.stdout.contains("/run/vol/owned 65534:65534 2770"),
        "{result:#?}"
    );
    assert!(
        // tmpfs's own mode stays when none is asked.
        result.stdout.contains("/run/vol/logs 4242:4343 1777"),
        "{result:#?}"
    );
    assert!(
        result
            .stderr
            .contains("volume data: /run/vol/owned is owned by 65534:65534, mode 2770"),
        "{result:#?}"
    );
    // An owner nobody has, or an owner without its volume: the app never runs.
    for (line, said) in [
        (
            "vminit.mount.data=tmpfs,/run/vol/x,tmpfs vminit.mount.data.owner=nosuchuser -- echo ran",
            "volume data: ",
        ),
        (
            "vminit.mount.data.owner=nobody -- echo ran",
            "vminit.mount.data: an owner or mode needs the volume itself",
        ),
        (
            "vminit.mount.data=tmpfs,/run/vol/x,tmpfs vminit.mount.data.mode=0999 -- echo ran",
            "vminit.mount.data.mode: must be an octal mode",
        ),
    ] {
        let (result, _) = vm("volume-owner-bad", &["--cmdline", line]);
        assert_eq!(exit_lines(&result), ["vminit: exit_code=2"], "{result:#?}");
        assert!(result.stderr.contains(said), "{said}: {result:#?}");
        assert!(!result.stdout.contains("ran"), "{result:#?}");
    }
}

#[test]
fn set_up_steps_run_in_order_before_the_app_and_a_failed_one_stops_it() {
    let dir = common::tempdir("setup-steps");
    let log = dir.join("log");
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let metadata = dir.join("metadata.json");
    let write = |setup: serde_json::Value| {
        let json = serde_json::json!({
            "argv": ["sh", "-c", format!("echo app >> {}; cat {}", log.display(), log.display())],
            "env": {"SHARED": "from-the-app"},
            "setup": setup,
        });
        std::fs::write(&metadata, json.to_string()).unwrap();
        let _ = std::fs::remove_file(&log);
    };
    // As root, then as nobody with HOME from passwd; the app's env, and each step's own.
    write(serde_json::json!([
        {"argv": ["sh", "-c", format!("echo one $SHARED $STEP $(id -u) >> {0}; chmod 666 {0}", log.display())],
         "env": {"STEP": "first"}},
        {"argv": ["sh", "-c", format!("echo two $(id -u) $HOME >> {}", log.display())],
         "user": "nobody"},
    ]));
    let path = metadata.to_str().unwrap();
    for vm_mode in [true, false] {
        let result = if vm_mode {
            vm("setup", &["--metadata", path]).0
        } else {
            run(common::vminit(&["--metadata", path]))
        };
        let home = std::fs::read_to_string("/etc/passwd")
            .unwrap()
            .lines()
            .find(|l| l.starts_with("nobody:"))
            .and_then(|l| l.split(':').nth(5).map(str::to_owned))
            .unwrap();
        assert_eq!(
            result.stdout,
            format!("one from-the-app first 0\ntwo 65534 {home}\napp\n"),
            "vm={vm_mode}: {result:#?}"
        );
        assert!(
            result.stderr.contains("set-up step 2 (\"sh\")"),
            "{result:#?}"
        );
        let _ = std::fs::remove_file(&log);
    }
    // A step that fails: status 2, its number and status said, no app.
    write(serde_json::json!([{"argv": ["sh", "-c", "exit 3"]}]));
    let (result, _) = vm("setup-fails", &["--metadata", path]);
    assert_eq!(exit_lines(&result), ["vminit: exit_code=2"], "{result:#?}");
    assert!(
        result
            .stderr
            .contains("set-up step 1 (\"sh\") failed with status 3: the app is not started"),
        "{result:#?}"
    );
    assert!(!log.exists(), "the app ran");
    // Checked as the rest of the metadata: no value shown.
    write(serde_json::json!([{"argv": [], "env": {"TOKEN": "s3cret\u{0}"}, "what": 1}]));
    let result = run(common::vminit(&["--check", "--metadata", path]));
    assert_eq!(result.code(), 2, "{result:#?}");
    assert!(result.stderr.contains("setup[0].argv"), "{result:#?}");
    assert!(result.stderr.contains("setup[0].what"), "{result:#?}");
    assert!(!result.stderr.contains("s3cret"), "{result:#?}");
}

#[test]
fn the_api_stays_off_without_a_token_and_the_app_runs() {
    let (result, _) = vm(
        "api-no-token",
        &["--cmdline", "vminit.api=vsock:10000 -- sh -c \"exit 3\""],
    );
    assert_eq!(exit_lines(&result), ["vminit: exit_code=3"], "{result:#?}");
    let warnings: Vec<&str> = result
        .stderr
        .lines()
        .filter(|l| l.contains("vminit.api"))
        .collect();
    assert_eq!(warnings.len(), 1, "{result:#?}");
    assert!(
        warnings[0].contains("the API stays off (vminit.api.insecure=1 starts it without one)"),
        "{warnings:?}"
    );
    // With one, still not in a PID namespace: vsock is the host's there.
    let dir = common::tempdir("api-namespace");
    let metadata = dir.join("api.json");
    std::fs::write(
        &metadata,
        r#"{"vminit": {"api": {"vsock": 10000, "token": "t0ken"}}}"#,
    )
    .unwrap();
    let line = format!(
        "metadata={} -- sh -c \"exit 4\"",
        metadata.to_str().unwrap()
    );
    let (result, _) = vm("api-namespace", &["--cmdline", &line]);
    assert_eq!(exit_lines(&result), ["vminit: exit_code=4"], "{result:#?}");
    assert!(
        result
            .stderr
            .contains("vminit.api is a machine's: skipped in a PID namespace"),
        "{result:#?}"
    );
    assert!(!result.stderr.contains("t0ken"), "{result:#?}");
}
