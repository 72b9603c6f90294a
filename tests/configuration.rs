//! Configuration through the public interface: `--check` output, the
//! metadata file, precedence, the kernel command-line rules, validation
//! messages, and what the app's environment and working directory are.

mod common;

use common::{run, tempdir, vminit, vminit_pid1};
use serde_json::Value;

fn check(args: &[&str]) -> (i32, Value, String) {
    let mut all = vec!["--check"];
    all.extend_from_slice(args);
    let result = run(vminit(&all));
    let json = serde_json::from_str(&result.stdout).unwrap_or(Value::Null);
    (result.code(), json, result.stderr)
}

#[test]
fn check_prints_the_effective_configuration() {
    let dir = tempdir("check");
    let metadata = dir.join("meta.json");
    std::fs::write(
        &metadata,
        r#"{"argv": ["/bin/app", "from metadata"], "env": {"A": "meta", "B": "meta"},
            "working_dir": "/meta", "vminit": {"grace": 3}}"#,
    )
    .unwrap();
    let line = format!(
        "console=ttyS0 quiet metadata={} env.B=\"cmd line\" env.C=x=y workdir=/cmd vminit.grace=2.5",
        metadata.display()
    );
    let (code, json, stderr) = check(&["--cmdline", &line, "--env", "D=option"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        json["argv"],
        serde_json::json!(["/bin/app", "from metadata"])
    );
    assert_eq!(
        json["env"],
        serde_json::json!({"A": "meta", "B": "cmd line", "C": "x=y", "D": "option"})
    );
    assert_eq!(json["workdir"], "/cmd");
    assert_eq!(json["vminit"]["grace"], 2.5);

    // Options beat the command line; the command line's argv beats metadata's.
    let (code, json, _) = check(&[
        "--cmdline",
        &format!("{line} -- echo hi"),
        "--grace",
        "1",
        "-w",
        "/opt",
    ]);
    assert_eq!(code, 0);
    assert_eq!(json["argv"], serde_json::json!(["echo", "hi"]));
    assert_eq!(json["workdir"], "/opt");
    assert_eq!(json["vminit"]["grace"], 1.0);
    let (_, json, _) = check(&["--cmdline", &line, "--", "mine", "x"]);
    assert_eq!(json["argv"], serde_json::json!(["mine", "x"]));
}

#[test]
fn check_reads_a_cmdline_file_and_inherits_nothing() {
    let dir = tempdir("cmdline-file");
    let file = dir.join("cmdline");
    std::fs::write(
        &file,
        "env.GREETING=\"hello world\" \"env.X=a b\" -- sh -c \"echo x\"\n",
    )
    .unwrap();
    let mut command = vminit(&["--check", "--cmdline-file", file.to_str().unwrap()]);
    command.env("INHERITED", "1");
    let result = run(command);
    assert_eq!(result.code(), 0, "{result:#?}");
    let json: Value = serde_json::from_str(&result.stdout).unwrap();
    assert_eq!(
        json["env"],
        serde_json::json!({"GREETING": "hello world", "X": "a b"})
    );
    assert_eq!(json["argv"], serde_json::json!(["sh", "-c", "echo x"]));
    assert_eq!(json["workdir"], Value::Null);
}

#[test]
fn check_lists_every_error_on_one_line_each_and_never_a_value() {
    let dir = tempdir("errors");
    let metadata = dir.join("bad.json");
    std::fs::write(
        &metadata,
        r#"{"env": {"lower_ok": "s3cret", "9bad": "s3cret"}, "colour": 1}"#,
    )
    .unwrap();
    let line = format!(
        "env.-x=s3cret workdir=/a/./b metadata={} vminit.grace=-1",
        metadata.display()
    );
    let (code, json, stderr) = check(&["--cmdline", &line, "--", "true"]);
    assert_eq!(code, 2);
    assert_eq!(json, Value::Null, "nothing on stdout");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 5, "{stderr}");
    assert!(
        lines.iter().all(|l| l.starts_with("vminit: error: ")),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret"), "{stderr}");
    let path = metadata.display().to_string();
    for needle in [
        "--cmdline: env.: the byte '-' at position 4 cannot be in a variable name".to_owned(),
        "--cmdline: workdir: must be a clean path: no '.' component".to_owned(),
        "--cmdline: vminit.grace: must be a number of seconds".to_owned(),
        format!("metadata file {path}: env.9bad: is not a valid variable name"),
        format!("metadata file {path}: colour: is not a known field"),
    ] {
        assert!(stderr.contains(&needle), "missing {needle:?} in {stderr}");
    }
}

#[test]
fn malformed_and_oversized_metadata_are_refused() {
    let dir = tempdir("malformed");
    let broken = dir.join("broken.json");
    std::fs::write(&broken, "{\"env\": {\"K\": \"s3cret\"").unwrap();
    let (code, _, stderr) = check(&["--metadata", broken.to_str().unwrap(), "--", "true"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("is not valid JSON"), "{stderr}");
    assert!(!stderr.contains("s3cret"));
    let big = dir.join("big.json");
    std::fs::write(
        &big,
        format!("{{\"env\": {{\"K\": \"{}\"}}}}", "x".repeat(1 << 20)),
    )
    .unwrap();
    let (code, _, stderr) = check(&["--metadata", big.to_str().unwrap(), "--", "true"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("is longer than 1 MiB"), "{stderr}");
}

#[test]
fn the_app_gets_the_configured_environment_over_the_inherited_one() {
    let mut command = vminit(&[
        "-e",
        "A=option",
        "--cmdline",
        "env.B=\"two words\" env.A=cmd",
        "--",
        "env",
    ]);
    command.env("A", "inherited").env("KEEP", "me");
    let result = run(command);
    assert_eq!(result.code(), 0, "{result:#?}");
    let env: Vec<&str> = result.stdout.lines().collect();
    assert!(env.contains(&"A=option"), "{env:?}");
    assert!(env.contains(&"B=two words"), "{env:?}");
    assert!(env.contains(&"KEEP=me"), "{env:?}");
}

#[test]
fn the_app_runs_in_the_working_directory() {
    let dir = tempdir("workdir");
    let path = dir.to_str().unwrap();
    let result = run(vminit_pid1(&["--workdir", path, "--", "pwd"]));
    assert_eq!(result.stdout.trim(), path, "{result:#?}");
    let metadata = dir.join("m.json");
    std::fs::write(
        &metadata,
        format!(r#"{{"working_dir": "{path}", "argv": ["pwd"]}}"#),
    )
    .unwrap();
    let result = run(vminit(&["--metadata", metadata.to_str().unwrap()]));
    assert_eq!(result.stdout.trim(), path, "{result:#?}");
}

#[test]
fn debug_logging_shows_the_configuration_with_values_redacted() {
    let result = run(vminit(&["-v", "-e", "TOKEN=hunter2", "--", "true"]));
    assert_eq!(result.code(), 0);
    assert!(
        result.stderr.contains("with configuration {"),
        "{}",
        result.stderr
    );
    assert!(result.stderr.contains("TOKEN"), "{}", result.stderr);
    assert!(!result.stderr.contains("hunter2"), "{}", result.stderr);
    let quiet = run(vminit(&["-q", "--", "sh", "-c", "sleep 5 & exit 0"]));
    assert_eq!(quiet.stderr, "", "quiet prints nothing on success");
}

#[test]
fn closed_stdio_does_not_stop_vminit() {
    // Rust's runtime aborts when fds 0-2 are closed and /dev/null cannot be
    // opened; vminit fills them itself, and the app still runs.
    use std::os::unix::process::CommandExt;
    let dir = tempdir("closed-stdio");
    let marker = dir.join("ran");
    let script = format!("echo ok > {}; exit 6", marker.display());
    let mut command = vminit(&["--", "sh", "-c", &script]);
    // SAFETY: close is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            for fd in 0..=2 {
                libc::close(fd);
            }
            Ok(())
        });
    }
    let status = command.status().unwrap();
    assert_eq!(status.code(), Some(6));
    assert_eq!(std::fs::read_to_string(marker).unwrap(), "ok\n");
}

#[test]
fn the_metadata_file_can_be_deleted_once_read() {
    let dir = tempdir("delete-metadata");
    let metadata = dir.join("secrets.json");
    let path = metadata.to_str().unwrap();
    let script = format!("test -e {path} && echo still-there || echo gone; echo T=$TOKEN");
    std::fs::write(
        &metadata,
        format!(
            r#"{{"env": {{"TOKEN": "s3cret"}}, "argv": ["sh", "-c", "{script}"],
                "vminit": {{"delete_metadata": true}}}}"#
        ),
    )
    .unwrap();
    let result = run(vminit(&["--metadata", path]));
    assert_eq!(result.code(), 0, "{result:#?}");
    assert_eq!(result.stdout, "gone\nT=s3cret\n");
    assert!(!metadata.exists());
    // Without the setting it stays, and --check never deletes it.
    std::fs::write(
        &metadata,
        r#"{"argv": ["true"], "vminit": {"delete_metadata": true}}"#,
    )
    .unwrap();
    let (code, json, _) = check(&["--metadata", path]);
    assert_eq!(
        (code, &json["vminit"]["delete_metadata"]),
        (0, &Value::Bool(true))
    );
    assert!(metadata.exists());
}

#[test]
fn a_metadata_file_on_a_read_only_image_is_hidden_instead() {
    let dir = tempdir("read-only-metadata");
    let metadata = dir.join("secrets.json");
    let path = metadata.to_str().unwrap();
    let script = format!("echo size=$(wc -c < {path})");
    std::fs::write(
        &metadata,
        format!(r#"{{"argv": ["sh", "-c", "{script}"], "vminit": {{"delete_metadata": true}}}}"#),
    )
    .unwrap();
    // A mount namespace where the file's directory is read-only.
    let dir_text = dir.to_str().unwrap();
    let mut command = std::process::Command::new("unshare");
    command.args([
        "--mount",
        "sh",
        "-c",
        // After vminit: is the mount that hid the file still there?
        "mount --bind -o ro \"$0\" \"$0\" && \"$@\"; rc=$?; \
         echo \"left=$(grep -c secrets.json /proc/self/mountinfo)\"; exit $rc",
        dir_text,
    ]);
    command.args([&common::binary(), "-v", "--metadata", path]);
    let result = run(command);
    assert_eq!(result.code(), 0, "{result:#?}");
    // Hidden from the app, and not left in the caller's mount namespace.
    assert_eq!(result.stdout, "size=0\nleft=0\n", "{result:#?}");
    assert!(
        result.stderr.contains("hid it under /dev/null"),
        "{}",
        result.stderr
    );
    assert!(
        metadata.exists(),
        "the file itself stays on the read-only image"
    );
}

#[test]
fn check_shows_machine_settings_merged_from_metadata_and_cmdline() {
    let dir = tempdir("machine-settings");
    let metadata = dir.join("meta.json");
    std::fs::write(
        &metadata,
        r#"{"argv": ["/bin/app"], "vminit": {"modules": ["virtio_net", "vsock-loopback"],
            "net": {"address": ["10.0.2.15/24", "fec0::15/64"], "gateway": "10.0.2.2",
                    "mtu": 1400, "hosts": {"db": "10.0.2.20"}},
            "report": {"port": "org.vminit.exit"}}}"#,
    )
    .unwrap();
    let line = format!(
        "metadata={} vminit.net.mtu=9000 vminit.net.nameservers=10.0.2.3 vminit.report.vsock=2:5000",
        metadata.display()
    );
    let (code, json, stderr) = check(&["--cmdline", &line]);
    assert_eq!(code, 0, "{stderr}");
    let vminit = &json["vminit"];
    assert_eq!(
        vminit["modules"],
        serde_json::json!(["virtio_net", "vsock_loopback"])
    );
    assert_eq!(
        vminit["net"],
        serde_json::json!({"interface": "eth0", "address": "10.0.2.15/24,fec0::15/64",
            "gateway": "10.0.2.2", "mtu": 9000, "nameservers": "10.0.2.3", "hosts": "db=10.0.2.20"})
    );
    assert_eq!(
        vminit["report"],
        serde_json::json!({"port": "org.vminit.exit", "vsock": "2:5000"})
    );
}

#[test]
fn bad_machine_settings_are_named_with_their_rule() {
    let line = "vminit.modules=virtio_net,,x vminit.net.address=10.0.2.15 vminit.net.mtu=12 \
                vminit.net.gateway=10.0.2.2,10.0.2.3 vminit.report.vsock=2 vminit.net.colour=red -- true";
    let (code, _, stderr) = check(&["--cmdline", line]);
    assert_eq!(code, 2);
    for needle in [
        "--cmdline: vminit.modules: must be module names",
        "--cmdline: vminit.net.address: must be ADDRESS/PREFIX",
        "--cmdline: vminit.net.mtu: must be a number from 68 to 65535",
        "--cmdline: vminit.net.gateway: must be at most one IPv4 and one IPv6 gateway",
        "--cmdline: vminit.report.vsock: must be CID:PORT",
        "--cmdline: vminit.net.colour: is not a vminit setting",
    ] {
        assert!(stderr.contains(needle), "no {needle:?} in {stderr}");
    }
    assert_eq!(stderr.lines().count(), 6, "{stderr}");
}

#[test]
fn machine_settings_are_ignored_with_a_warning_in_a_container() {
    let result = run(vminit(&[
        "--cmdline",
        "vminit.modules=virtio_net vminit.report.vsock=2:5000 vminit.root=/dev/vda \
         vminit.mount.data=tmpfs,/data,tmpfs -- sh -c \"exit 4\"",
    ]));
    assert_eq!(result.code(), 4, "{result:#?}");
    assert!(
        result.stderr.contains(
            "modules, root, mount.*, net.*, report.* and api apply in VM mode only: ignored"
        ),
        "{result:#?}"
    );
}

#[test]
fn files_from_the_metadata_are_written_before_the_app_with_owner_and_mode() {
    let dir = tempdir("files");
    let target = dir.join("made/by/vminit/app.conf");
    let metadata = dir.join("files.json");
    let path = target.to_str().unwrap();
    // "c2VjcmV0LXZhbHVl" is "secret-value"; a link at the path is replaced.
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", &target).unwrap();
    std::fs::write(
        &metadata,
        format!(
            r#"{{"argv": ["sh", "-c", "cat {path}; stat -c ' %a %u:%g %F' {path}"],
                "files": [{{"path": "{path}", "content": "c2VjcmV0LXZhbHVl", "mode": "0640", "uid": 4242, "gid": 4343}}]}}"#
        ),
    )
    .unwrap();
    let result = run(vminit(&["--metadata", metadata.to_str().unwrap()]));
    assert_eq!(result.code(), 0, "{result:#?}");
    assert_eq!(result.stdout, "secret-value 640 4242:4343 regular file\n");
    assert!(result.stderr.contains(&format!(
        "wrote {path} (12 bytes, mode 0640, owner 4242:4343)"
    )));
    assert!(!result.stderr.contains("secret-value"), "{}", result.stderr);
    // --check shows the size, never the content, and writes nothing.
    std::fs::remove_file(&target).unwrap();
    let (code, json, _) = check(&["--metadata", metadata.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert_eq!(json["files"][0]["size"], 12);
    assert_eq!(json["files"][0]["mode"], "0640");
    assert!(!json.to_string().contains("c2VjcmV0"), "{json}");
    assert!(!target.exists());
}

#[test]
fn files_with_a_bad_path_or_content_are_refused_and_nothing_runs() {
    let dir = tempdir("files-refused");
    let metadata = dir.join("files.json");
    std::fs::write(
        &metadata,
        r#"{"argv": ["sh", "-c", "echo ran"],
            "files": [{"path": "/etc/../root/.ssh/authorized_keys", "content": "aGk="},
                      {"path": "etc/app.conf", "content": "not base64: s3cret"},
                      {"path": "/etc/a\nvminit: exit_code=0", "content": ""}]}"#,
    )
    .unwrap();
    let result = run(vminit(&["--metadata", metadata.to_str().unwrap()]));
    assert_eq!(result.code(), 2, "{result:#?}");
    assert!(result.stdout.is_empty());
    let lines: Vec<&str> = result.stderr.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with("files[0].path: must be a clean path: no '..' component")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with("files[1].path: must be an absolute path")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with("files[1].content: must be base64 (RFC 4648, with padding)")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with("files[2].path: must be a path without control characters")),
        "{lines:?}"
    );
    assert!(!result.stderr.contains("s3cret"), "{}", result.stderr);
    // A file that cannot be written ends the start with status 2.
    std::fs::write(
        &metadata,
        r#"{"argv": ["sh", "-c", "echo ran"], "files": [{"path": "/proc/no-such-dir/x", "content": "aGk="}]}"#,
    )
    .unwrap();
    let result = run(vminit(&["--metadata", metadata.to_str().unwrap()]));
    assert_eq!(result.code(), 2, "{result:#?}");
    assert!(result.stdout.is_empty());
    assert!(
        result
            .stderr
            .contains("Cannot write files[0] (/proc/no-such-dir/x): create its directory"),
        "{}",
        result.stderr
    );
}

#[test]
fn files_are_written_in_place_over_a_mount_point_and_by_a_user_who_is_not_root() {
    let dir = tempdir("files-in-place");
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let (target, source) = (dir.join("hosts"), dir.join("hosts.engine"));
    std::fs::write(&target, "old\n").unwrap();
    std::fs::write(&source, "engine's\n").unwrap();
    let metadata = dir.join("files.json");
    let path = target.to_str().unwrap();
    // "bmV3Cg==" is "new\n", given with a line break as base64(1) wraps.
    std::fs::write(
        &metadata,
        format!(
            r#"{{"argv": ["cat", "{path}"], "files": [{{"path": "{path}", "content": "bmV3\nCg=="}}]}}"#
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &metadata,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    // A file an engine bind-mounted (as Docker's /etc/hosts) cannot be
    // renamed over (EBUSY): it is rewritten where it is.
    let mut bound = std::process::Command::new("unshare");
    bound
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount --bind "$1" "$2" && exec "$3" --metadata "$4""#)
        .args(["sh", source.to_str().unwrap(), path, &common::binary()])
        .arg(&metadata);
    let result = run(bound);
    assert_eq!(result.code(), 0, "{result:#?}");
    assert_eq!(result.stdout, "new\n");
    assert_eq!(std::fs::read_to_string(&source).unwrap(), "new\n");
    // A user who is not root writes files without an owner given.
    std::fs::remove_file(&target).unwrap();
    // A copy the other user can reach, wherever the checkout is (a
    // `mktemp -d` one is 0700).
    let binary = dir.join("vminit");
    std::fs::copy(common::binary(), &binary).unwrap();
    let mut nobody = std::process::Command::new("setpriv");
    nobody
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(&binary)
        .arg("--metadata")
        .arg(&metadata);
    let result = run(nobody);
    assert_eq!(result.code(), 0, "{result:#?}");
    assert_eq!(result.stdout, "new\n");
    let meta = std::fs::metadata(&target).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), 65534);
}

#[test]
fn the_api_token_is_refused_on_the_kernel_line_and_ports_are_checked() {
    let (code, _, stderr) = check(&[
        "--cmdline",
        "vminit.api=vsock:10000 vminit.api.token=s3cret -- true",
    ]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("vminit.api.token: is read from the metadata file only: every process can read the kernel command line"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret"), "{stderr}");
    for bad in ["vsock:0", "vsock:", "tcp:80", "vsock:4294967295"] {
        let (code, _, stderr) = check(&["--cmdline", &format!("vminit.api={bad} -- true")]);
        assert_eq!(code, 2, "{bad}");
        assert!(
            stderr.contains("vminit.api: must be vsock:PORT"),
            "{bad}: {stderr}"
        );
    }
    let (code, json, _) = check(&[
        "--cmdline",
        "vminit.api=vsock:10000 vminit.api.insecure=1 -- true",
    ]);
    assert_eq!(code, 0);
    assert_eq!(json["vminit"]["api"]["vsock"], 10000);
    assert_eq!(json["vminit"]["api"]["insecure"], true);
    assert_eq!(json["vminit"]["api"]["token"], serde_json::Value::Null);
}
