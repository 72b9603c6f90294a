//! Boot and the app's start: its environment, working directory, user and
//! limits from the command line and the metadata file, Docker's defaults,
//! the guest's clock, and an image without `/dev/console`.

use super::checks::{expect, require};
use super::{Case, Image};
use crate::vm::qemu::Console;

/// The app's start as configured, and the boot around it.
pub(super) fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "env_workdir_quoting_mounts_and_no_leaks_from_the_cmdline",
            image: Image::Normal,
            // `nomodules`: an unknown bare word, which the kernel passes to
            // init before the words after `--` (Firecracker's defaults have it).
            cmdline: r#"nomodules env.GREETING="hello world" "env.SPACED=a b" env.EQ=x=y workdir=/tests vminit.grace=1 -- /tests/show-env.sh 3"#,
            after: &[],
            devices: &[],
            check: |c, _| {
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
            image: Image::Normal,
            cmdline: "vminit.user=app vminit.hostname=vm-test vminit.rlimit.nofile=64:128 \
                      vminit.no_new_privs=1 -- /tests/who-am-i.sh",
            after: &[],
            devices: &[],
            check: |c, _| {
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
            image: Image::Normal,
            cmdline: "metadata=/tests/meta.json env.B=cmdline",
            after: &[],
            devices: &[],
            check: |c, _| {
                expect(c, 0)?;
                require(
                    c,
                    &[
                        "A=[meta] B=[cmdline]",
                        "PWD=[/tests]",
                        "leaked=[0]",
                        "metadata-file=gone",
                        "file=[from-metadata] 640 1000:44",
                    ],
                )
            },
        },
        Case {
            name: "the_guest_clock_keeps_the_hosts_time",
            image: Image::Normal,
            // Under TCG the guest's clock is only as true as the TSC
            // frequency it is told (x86) or QEMU's timer (arm64): 20 s of
            // guest time against the host's, the lines stamped on arrival.
            cmdline: r#"-- sh -c "read up rest < /proc/uptime; echo clock-start $up; sleep 20; read up rest < /proc/uptime; echo clock-end $up""#,
            after: &[],
            devices: &[],
            check: |c, _| {
                expect(c, 0)?;
                let ratio = clock_ratio(c).ok_or("no clock-start and clock-end lines")?;
                // Within 2%: the 2.6-fold error of a wrong TSC frequency
                // is far outside, the console's latency well inside.
                if (0.98..=1.02).contains(&ratio) {
                    println!("guest/host clock ratio {ratio:.4}");
                    Ok(())
                } else {
                    Err(format!(
                        "the guest's clock runs {ratio:.3} times the host's"
                    ))
                }
            },
        },
        Case {
            name: "dockers_defaults_hostname_hosts_and_working_directory",
            image: Image::Normal,
            // No hostname, no net.hosts, a working directory the image lacks.
            cmdline: r#"workdir=/srv/made -- sh -c "echo name=$(hostname) env=$HOSTNAME pwd=$(pwd); cat /etc/hosts""#,
            after: &[],
            devices: &[],
            check: |c, _| {
                expect(c, 0)?;
                let line = c
                    .lines
                    .iter()
                    .find_map(|l| l.strip_prefix("name="))
                    .ok_or("no name= line")?;
                let name: String = line.chars().take_while(|c| !c.is_whitespace()).collect();
                if name.len() != 12 || !name.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(format!("the default hostname is {name:?}"));
                }
                require(
                    c,
                    &[
                        &format!("name={name} env={name} pwd=/srv/made"),
                        "127.0.0.1\tlocalhost",
                        "::1\tlocalhost",
                        &format!("127.0.1.1\t{name}"),
                        "created the working directory /srv/made",
                    ],
                )
            },
        },
        Case {
            name: "the_app_gets_dockers_nofile_limit_by_default",
            image: Image::Normal,
            // systemd's and Docker 25+'s, not the kernel's 1024:4096.
            cmdline: r#"-- sh -c "echo nofile=$(ulimit -Sn):$(ulimit -Hn)""#,
            after: &[],
            devices: &[],
            check: |c, _| {
                expect(c, 0)?;
                require(c, &["nofile=1024:524288"])
            },
        },
        Case {
            name: "no_dev_console_in_the_image_still_runs_and_powers_off",
            image: Image::NoConsole,
            cmdline: r#"-- sh -c "echo console-ok; exit 5""#,
            after: &[],
            devices: &[],
            check: |c, _| {
                expect(c, 5)?;
                // The kernel's own words: init really started without fds 0-2.
                require(c, &["unable to open an initial console", "console-ok"])
            },
        },
    ]
}

/// Guest seconds over host seconds between the `clock-start` and
/// `clock-end` lines: the guest's uptimes they print, and when they
/// arrived.
fn clock_ratio(console: &Console) -> Option<f64> {
    let find = |marker: &str| {
        let index = console.lines.iter().position(|l| l.starts_with(marker))?;
        let uptime: f64 = console.lines[index]
            .strip_prefix(marker)?
            .trim()
            .parse()
            .ok()?;
        Some((uptime, console.arrived.get(index)?.as_secs_f64()))
    };
    let (guest_start, host_start) = find("clock-start ")?;
    let (guest_end, host_end) = find("clock-end ")?;
    Some((guest_end - guest_start) / (host_end - host_start))
}
