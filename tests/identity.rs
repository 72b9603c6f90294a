//! Who the app runs as and with which limits: `--user`, `--rlimit`,
//! `--no-new-privs`, and `--hostname` (VM mode only).

mod common;

use common::{run, vminit, vminit_pid1};

#[test]
fn the_app_runs_as_the_given_ids_with_no_extra_groups() {
    for result in [
        run(vminit(&[
            "--user",
            "65534:65534",
            "--",
            "sh",
            "-c",
            "id -u; id -g; id -G",
        ])),
        run(vminit_pid1(&[
            "-u",
            "65534:65534",
            "--",
            "sh",
            "-c",
            "id -u; id -g; id -G",
        ])),
    ] {
        assert_eq!(result.code(), 0, "{result:#?}");
        assert_eq!(result.stdout, "65534\n65534\n65534\n", "{result:#?}");
    }
}

#[test]
fn a_user_name_comes_from_etc_passwd_with_its_home() {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let nobody = passwd
        .lines()
        .find(|l| l.starts_with("nobody:"))
        .expect("nobody in /etc/passwd");
    let fields: Vec<&str> = nobody.split(':').collect();
    let result = run(vminit(&[
        "--user",
        "nobody",
        "--",
        "sh",
        "-c",
        "id -u; id -g; echo $HOME",
    ]));
    assert_eq!(result.code(), 0, "{result:#?}");
    assert_eq!(
        result.stdout,
        format!("{}\n{}\n{}\n", fields[2], fields[3], fields[5])
    );
    // An explicit HOME wins over the passwd entry.
    let result = run(vminit(&[
        "--user",
        "nobody",
        "-e",
        "HOME=/tmp",
        "--",
        "sh",
        "-c",
        "echo $HOME",
    ]));
    assert_eq!(result.stdout, "/tmp\n");
}

#[test]
fn an_unknown_user_or_group_is_a_configuration_error() {
    for (spec, message) in [
        (
            "no-such-user-x",
            "user no-such-user-x: no such user in /etc/passwd",
        ),
        (
            "root:no-such-group-x",
            "group no-such-group-x: no such group in /etc/group",
        ),
        (
            "4242",
            "user 4242: not in /etc/passwd, so give its group too",
        ),
    ] {
        let result = run(vminit(&["--user", spec, "--", "true"]));
        assert_eq!(result.code(), 2, "{spec}: {result:#?}");
        assert!(result.stderr.contains(message), "{spec}: {}", result.stderr);
    }
}

#[test]
fn resource_limits_reach_the_app() {
    let script = "ulimit -Sn; ulimit -Hn; ulimit -c";
    let result = run(vminit(&[
        "--rlimit",
        "nofile=64:128",
        "--rlimit",
        "core=0",
        "--",
        "bash",
        "-c",
        script,
    ]));
    assert_eq!(result.code(), 0, "{result:#?}");
    assert_eq!(result.stdout, "64\n128\n0\n");
    // With a user as well: limits and ids both apply.
    let result = run(vminit(&[
        "-u",
        "65534:65534",
        "--rlimit",
        "nofile=100:200",
        "--",
        "bash",
        "-c",
        script,
    ]));
    assert_eq!(
        result.stdout,
        "100\n200\nunlimited\n".replace("unlimited", &current_core()),
        "{result:#?}"
    );
}

#[test]
fn no_new_privs_is_set_only_when_asked() {
    let check = ["--", "grep", "NoNewPrivs", "/proc/self/status"];
    let with: Vec<&str> = ["--no-new-privs"]
        .iter()
        .chain(check.iter())
        .copied()
        .collect();
    assert_eq!(
        run(vminit(&with)).stdout.split_whitespace().last(),
        Some("1")
    );
    assert_eq!(
        run(vminit(&check)).stdout.split_whitespace().last(),
        Some("0")
    );
}

#[test]
fn hostname_is_not_touched_in_container_mode() {
    let before = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let result = run(vminit_pid1(&[
        "--hostname",
        "not-this-one",
        "--",
        "cat",
        "/proc/sys/kernel/hostname",
    ]));
    assert_eq!(result.code(), 0);
    assert_eq!(result.stdout, before);
    assert!(
        result.stderr.contains("hostname is only set in VM mode"),
        "{}",
        result.stderr
    );
}

fn current_core() -> String {
    let out = std::process::Command::new("bash")
        .args(["-c", "ulimit -c"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn a_workdir_the_user_cannot_enter_is_refused_as_that_user() {
    use std::os::unix::fs::PermissionsExt;
    let dir = common::tempdir("private");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let path = dir.to_str().unwrap();
    let result = run(vminit(&["-u", "65534:65534", "-w", path, "--", "true"]));
    assert_eq!(result.code(), 126, "{result:#?}");
    assert!(
        result
            .stderr
            .contains("cannot enter the working directory \"/tmp/vminit-private-"),
        "{}",
        result.stderr
    );
    assert!(
        result
            .stderr
            .contains("as uid 65534 gid 65534: Permission denied"),
        "{}",
        result.stderr
    );
    assert_eq!(run(vminit(&["-w", path, "--", "true"])).code(), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}
