//! The VM test suite: each case boots the stock kernel in QEMU with vminit
//! as `/init` and checks the console and the exit status. Checks that need
//! no separate boot share one, where that hides no failure.
//!
//! Prints one line per case and a closing `N passed, N failed` line.

use std::sync::Mutex;
use std::time::Duration;

use crate::initramfs::Console as ConsoleNodes;
use crate::qemu::{self, Boot, Console};
use crate::vm::Kit;

/// A hang guard per boot (a TCG boot takes 5-10 s here).
const GUARD: Duration = Duration::from_secs(180);

/// Scripts and files in the test image, under `/tests`.
const FILES: &[(&str, &str)] = &[
    (
        "/tests/show-env.sh",
        r#"#!/bin/sh
echo "GREETING=[$GREETING] SPACED=[$SPACED] EQ=[$EQ] A=[$A] B=[$B]"
echo "PWD=[$(pwd)] pid=[$$]"
echo "leaked=[$(env | grep -cE '^(workdir|metadata|vminit)')]"
for p in /proc/self /sys/kernel /dev/pts /dev/shm /run /dev/null; do [ -e $p ] && echo "have $p"; done
echo "lo-flags=[$(cat /sys/class/net/lo/flags)]"
[ -e /tests/meta.json ] && echo "metadata-file=present" || echo "metadata-file=gone"
exit ${1:-0}
"#,
    ),
    (
        "/tests/zombies.sh",
        r#"#!/bin/sh
i=0
while [ $i -lt 60 ]; do sh -c 'sleep 0.3 &'; i=$((i+1)); done
sleep 3
cat /proc/[0-9]*/stat 2>/dev/null | sed 's/^[0-9]* (.*) //' | awk '$1 == "Z" { n++ } END { print "zombies=" n+0 }'
kill -KILL $$
"#,
    ),
    (
        "/tests/wait-for-int.sh",
        r#"#!/bin/sh
trap 'echo "app got SIGINT"; exit 42' INT
echo "app ready"
while :; do sleep 1; done
"#,
    ),
    (
        "/tests/meta.json",
        r#"{"argv": ["/tests/show-env.sh"], "env": {"A": "meta", "B": "meta"}, "working_dir": "/tests",
            "vminit": {"delete_metadata": true}}"#,
    ),
    ("/tests/broken.json", r#"{"env": {"K": "s3cret-in-json""#),
    (
        "/etc/passwd",
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:App:/home/app:/bin/sh\n",
    ),
    ("/etc/group", "root:x:0:\napp:x:1000:\nvideo:x:44:app\n"),
    (
        "/tests/who-am-i.sh",
        r#"#!/bin/sh
echo "id=[$(id)] home=[$HOME] host=[$(hostname)] nofile=[$(ulimit -n)]"
grep NoNewPrivs /proc/self/status
"#,
    ),
];

/// One boot and what must hold of it.
struct Case {
    name: &'static str,
    image: ConsoleNodes,
    cmdline: &'static str,
    /// Press Ctrl-Alt-Del once a line contains this.
    ctrl_alt_del_after: Option<&'static str>,
    check: fn(&Console) -> Result<(), String>,
}

fn expect(console: &Console, code: i32) -> Result<(), String> {
    if console.timed_out {
        return Err("the VM did not stop (hang guard)".into());
    }
    if console.kernel_panicked() {
        return Err("the kernel panicked".into());
    }
    if console.stopped_after_exit_line {
        return Err("the VM did not power off after the exit line".into());
    }
    if console.exit_lines() != 1 {
        return Err(format!("{} exit lines, not one", console.exit_lines()));
    }
    match console.exit_code() {
        Some(found) if found == code => Ok(()),
        found => Err(format!("exit code {found:?}, expected {code}")),
    }
}

fn require(console: &Console, needles: &[&str]) -> Result<(), String> {
    match needles.iter().find(|n| !console.has(n)) {
        Some(missing) => Err(format!("no line contains {missing:?}")),
        None => Ok(()),
    }
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "env_workdir_quoting_mounts_and_no_leaks_from_the_cmdline",
            image: ConsoleNodes::Nodes,
            // `nomodules`: an unknown bare word, which the kernel passes to
            // init before the words after `--` (Firecracker's defaults have it).
            cmdline: r#"nomodules env.GREETING="hello world" "env.SPACED=a b" env.EQ=x=y workdir=/tests vminit.grace=1 -- /tests/show-env.sh 3"#,
            ctrl_alt_del_after: None,
            check: |c| {
                expect(c, 3)?;
                require(
                    c,
                    &[
                        "GREETING=[hello world] SPACED=[a b] EQ=[x=y]",
                        "PWD=[/tests]",
                        "leaked=[0]",
                    ],
                )?;
                require(
                    c,
                    &[
                        "have /proc/self",
                        "have /sys/kernel",
                        "have /dev/pts",
                        "have /dev/shm",
                        "have /run",
                        "have /dev/null",
                    ],
                )?;
                // IFF_UP | IFF_LOOPBACK: vminit brought the loopback up.
                require(c, &["lo-flags=[0x9]", "metadata-file=present"])?;
                require(
                    c,
                    &["vminit: warning: env.* values on the kernel command line"],
                )?;
                if c.has("pid=[1]") {
                    Err("the app is PID 1".into())
                } else {
                    Ok(())
                }
            },
        },
        Case {
            name: "user_by_name_groups_home_hostname_limits_and_no_new_privs",
            image: ConsoleNodes::Nodes,
            cmdline: "vminit.user=app vminit.hostname=vm-test vminit.rlimit.nofile=64:128 \
                      vminit.no_new_privs=1 -- /tests/who-am-i.sh",
            ctrl_alt_del_after: None,
            check: |c| {
                expect(c, 0)?;
                require(
                    c,
                    &[
                        "id=[uid=1000(app) gid=1000(app) groups=44(video),1000(app)]",
                        "home=[/home/app] host=[vm-test] nofile=[64]",
                        "NoNewPrivs:\t1",
                    ],
                )
            },
        },
        Case {
            name: "metadata_file_with_the_cmdline_taking_precedence",
            image: ConsoleNodes::Nodes,
            cmdline: "metadata=/tests/meta.json env.B=cmdline",
            ctrl_alt_del_after: None,
            check: |c| {
                expect(c, 0)?;
                require(
                    c,
                    &[
                        "A=[meta] B=[cmdline]",
                        "PWD=[/tests]",
                        "leaked=[0]",
                        "metadata-file=gone",
                    ],
                )
            },
        },
        Case {
            name: "orphaned_zombies_are_reaped_and_a_signal_death_is_137",
            image: ConsoleNodes::Nodes,
            cmdline: "-- /tests/zombies.sh",
            ctrl_alt_del_after: None,
            check: |c| {
                expect(c, 137)?;
                require(c, &["zombies=0"])
            },
        },
        Case {
            name: "a_missing_command_is_127_logged_to_kmsg",
            image: ConsoleNodes::Nodes,
            cmdline: "vminit.log_target=kmsg -- /no/such/app",
            ctrl_alt_del_after: None,
            check: |c| {
                expect(c, 127)?;
                // Through the kernel log: the console shows it with a printk stamp.
                let logged = c.lines.iter().any(|l| {
                    l.starts_with('[') && l.contains("] vminit: error: cannot run \"/no/such/app\"")
                });
                if logged {
                    Ok(())
                } else {
                    Err("the error did not go through /dev/kmsg".into())
                }
            },
        },
        Case {
            name: "bad_input_is_named_exits_2_and_ends_the_vm",
            image: ConsoleNodes::Nodes,
            // A power-off: under QEMU microvm a guest restart sometimes
            // boots again despite -no-reboot (seen here), so the restart
            // path is checked in tests/vm_mode.rs instead.
            cmdline: "env.1BAD=s3cret-on-cmdline workdir=/a/../b \
                      metadata=/tests/broken.json -- true",
            ctrl_alt_del_after: None,
            check: |c| {
                expect(c, 2)?;
                require(
                    c,
                    &[
                        "vminit: error: kernel command line: env.1BAD: is not a valid variable name",
                        "vminit: error: kernel command line: workdir: must be a clean path: no '..' component",
                        "vminit: error: metadata file /tests/broken.json: is not valid JSON",
                    ],
                )?;
                if c.has("s3cret") {
                    Err("a value was printed".into())
                } else {
                    Ok(())
                }
            },
        },
        Case {
            name: "a_background_process_ignoring_sigterm_ends_at_the_grace_period",
            image: ConsoleNodes::Nodes,
            // The app leaves only once the background shell has set its trap.
            cmdline: r#"vminit.grace=1 -- sh -c "(trap '' TERM; touch /tmp/bg-ready; exec sleep 1000) & while [ ! -e /tmp/bg-ready ]; do sleep 0.05; done; exit 4""#,
            ctrl_alt_del_after: None,
            check: |c| {
                expect(c, 4)?;
                require(
                    c,
                    &["processes still running after the grace period: sending SIGKILL"],
                )
            },
        },
        Case {
            name: "ctrl_alt_del_from_the_host_reaches_the_app_as_sigint",
            image: ConsoleNodes::Nodes,
            cmdline: "vminit.grace=5 -- /tests/wait-for-int.sh",
            ctrl_alt_del_after: Some("app ready"),
            check: |c| {
                expect(c, 42)?;
                require(c, &["app got SIGINT"])
            },
        },
        Case {
            name: "no_dev_console_in_the_image_still_runs_and_powers_off",
            image: ConsoleNodes::Missing,
            cmdline: r#"-- sh -c "echo console-ok; exit 5""#,
            ctrl_alt_del_after: None,
            check: |c| {
                expect(c, 5)?;
                // The kernel's own words: init really started without fds 0-2.
                require(c, &["unable to open an initial console", "console-ok"])
            },
        },
    ]
}

/// Runs every case, two boots at a time (a TCG boot keeps one core busy).
pub fn run() -> Result<(), String> {
    let kit = Kit::prepare(None)?;
    let files: Vec<(String, Vec<u8>, u32)> = FILES
        .iter()
        .map(|(path, text)| ((*path).to_owned(), text.as_bytes().to_vec(), 0o755))
        .collect();
    let normal = kit.image("tests", ConsoleNodes::Nodes, files.clone())?;
    let no_console = kit.image("tests-no-console", ConsoleNodes::Missing, files)?;
    let probe = Boot {
        kernel: kit.kernel.clone(),
        initrd: normal.clone(),
        cmdline: "-- true".into(),
        accel: qemu::Accel::Tcg,
        qmp: None,
        memory_mb: 256,
    };
    let accel = qemu::accel(|| Some(probe));
    eprintln!("VM tests: {} with {:?}", kit.kernel.display(), accel);

    let queue = Mutex::new(cases().into_iter().enumerate().collect::<Vec<_>>());
    let results = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                while let Some((index, case)) = queue.lock().unwrap().pop() {
                    let initrd = if case.image == ConsoleNodes::Nodes {
                        &normal
                    } else {
                        &no_console
                    };
                    let outcome = run_case(&case, &kit.kernel, initrd, accel, index);
                    results.lock().unwrap().push((case.name, outcome));
                }
            });
        }
    });
    let results = results.into_inner().unwrap();
    let failed = results.iter().filter(|(_, r)| r.is_err()).count();
    println!("{} passed, {failed} failed", results.len() - failed);
    if failed == 0 {
        Ok(())
    } else {
        Err(format!("{failed} VM test(s) failed"))
    }
}

fn run_case(
    case: &Case,
    kernel: &std::path::Path,
    initrd: &std::path::Path,
    accel: qemu::Accel,
    index: usize,
) -> Result<(), String> {
    let qmp = case.ctrl_alt_del_after.map(|_| {
        std::env::temp_dir().join(format!("vminit-qmp-{}-{index}.sock", std::process::id()))
    });
    let boot = Boot {
        kernel: kernel.to_path_buf(),
        initrd: initrd.to_path_buf(),
        cmdline: case.cmdline.to_owned(),
        accel,
        qmp: qmp.clone(),
        memory_mb: 256,
    };
    let mut sent: Result<(), String> = Ok(());
    let mut pressed = false;
    let result = qemu::run(&boot, GUARD, false, |line| {
        if let (Some(marker), Some(socket)) = (case.ctrl_alt_del_after, &qmp)
            && !pressed
            && line.contains(marker)
        {
            pressed = true;
            sent = qemu::send_ctrl_alt_del(socket);
        }
    });
    if let Some(socket) = &qmp {
        let _ = std::fs::remove_file(socket);
    }
    let outcome = result.and_then(|console| {
        sent.clone()?;
        (case.check)(&console).map_err(|e| format!("{e}\n--- console ---\n{}", console.text()))?;
        Ok(console.wall)
    });
    match &outcome {
        Ok(wall) => println!(
            "test vm::{} ... ok ({:.1} s)",
            case.name,
            wall.as_secs_f64()
        ),
        Err(e) => println!("test vm::{} ... FAILED\n{e}", case.name),
    }
    outcome.map(|_| ())
}
