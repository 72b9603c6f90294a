//! The VM test suite: each case boots the stock kernel in QEMU with vminit
//! as `/init` and checks the console and the exit status. Checks that need
//! no separate boot share one, where that hides no failure.
//!
//! Prints one line per case and a closing `N passed, N failed` line.

use std::sync::Mutex;
use std::time::Duration;

use crate::arch::Arch;
use crate::initramfs::Console as ConsoleNodes;
use crate::qemu::{self, Boot, Console};
use crate::vm::Kit;
use crate::{build, cmd, kernel};

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
    // The image's own, which vminit must say it replaces.
    ("/etc/resolv.conf", "nameserver 192.0.2.1\n"),
    ("/etc/hosts", "127.0.0.1\tlocalhost image-hosts\n"),
    (
        "/tests/net.sh",
        r#"#!/bin/sh
echo "mtu=[$(cat /sys/class/net/eth0/mtu)]"
ip -4 addr show dev eth0 | grep -o 'inet [0-9./]*' | sed 's/^/v4 /'
ip -6 addr show dev eth0 | grep -o 'inet6 fec0[0-9a-f:/]*' | sed 's/^/v6 /'
ip -4 route | grep default | sed 's/^/route4 /'
ip -6 route | grep default | sed 's/^/route6 /'
sed 's/^/resolv: /' /etc/resolv.conf
grep -E 'hostside|127.0.1.1' /etc/hosts | sed 's/^/hosts: /'
wget -q -O - "http://10.0.2.2:$1/from-guest" | sed 's/^/http: /'
"#,
    ),
    (
        "/tests/vsock-hold.sh",
        r#"#!/bin/sh
/tests/vsock-listen 5001 /run/listening hold &
i=0
while [ ! -e /run/listening ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
echo "listener ready"
exit 7
"#,
    ),
    (
        "/tests/oom.sh",
        r#"#!/bin/sh
/tests/vsock-listen 5000 /run/listening &
i=0
while [ ! -e /run/listening ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
echo "listener ready"
exec sort /dev/zero
"#,
    ),
    (
        "/tests/count.sh",
        r#"#!/bin/sh
echo "args=$# keys=$(env | grep -c '^key[0-9]*=v$')"
"#,
    ),
    (
        "/tests/signal-init.sh",
        r#"#!/bin/sh
trap '' USR1
i=0
while [ $i -lt 15 ]; do kill -USR1 1; i=$((i+1)); sleep 0.1; done
sleep 0.3
"#,
    ),
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
    image: Image,
    /// Appended to [`qemu::base_cmdline`]; also checked with `--check`
    /// on the host, whose verdict the case sees in [`Outside`].
    cmdline: &'static str,
    /// In turn: once a console line contains the first, send QMP the
    /// second (Ctrl-Alt-Del, the power button, a disk's throttle).
    qmp_after: &'static [(&'static str, &'static str)],
    /// Virtual devices the case needs besides the serial console.
    devices: &'static [Device],
    check: fn(&Console, &Outside) -> Result<(), String>,
}

/// Which test image a case boots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Image {
    Normal,
    /// `/dev/console` missing: the kernel starts init with fds 0-2 closed.
    NoConsole,
    /// A read-only root: `/init` is a script that makes `/etc/resolv.conf`
    /// a symlink into `/run` (as systemd-resolved's images have it) and
    /// `/etc/hosts` one to `/etc/static/hosts` (as NixOS has it), remounts
    /// `/` read-only and execs vminit (`/sbin/vminit`) as PID 1.
    ReadOnlyRoot,
}

/// The `/init` of the read-only image.
const READ_ONLY_INIT: &str = r#"#!/bin/sh
/bin/ln -sf ../run/systemd/resolve/stub-resolv.conf /etc/resolv.conf
/bin/mkdir -p /etc/static && /bin/mv /etc/hosts /etc/static/hosts && /bin/ln -s static/hosts /etc/hosts
/bin/mount -t proc proc /proc
/bin/mount -o remount,ro / || echo "cannot remount / read-only"
exec /sbin/vminit "$@"
"#;

/// A device and its host side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Device {
    /// virtio-net with QEMU's user networking, and an HTTP server on the
    /// host's loopback (10.0.2.2 in the guest); `{http_port}` in the
    /// command line is replaced by its port.
    Net,
    /// A virtio-serial port named `org.vminit.exit`, written to a file.
    ExitPort,
    /// `/dev/vda`: a fresh copy of the root disk (ext4 with busybox, see
    /// [`ROOT_FILES`]).
    RootDisk,
    /// The next `/dev/vd*`: a fresh, empty ext4 disk of 32 MiB.
    DataDisk,
}

/// The root disk's own files, besides busybox.
const ROOT_FILES: &[(&str, &[u8], u32)] = &[
    ("/etc/root-marker", b"root-marker-ok\n", 0o644),
    ("/etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n", 0o644),
    ("/etc/group", b"root:x:0:\n", 0o644),
    (
        "/writer.sh",
        b"#!/bin/sh\n# Writes to /data until stopped; says so after 200 lines.\ni=0\nwhile :; do echo \"line $i\" >> /data/log; i=$((i+1)); [ $i = 200 ] && echo writing; done\n",
        0o755,
    ),
];

/// The root disk's `/run`, as an image makes it at build time
/// (PostgreSQL's `/run/postgresql`): a directory of uid 70 with the
/// setgid bit, a file in it, and a link.
fn image_run(tree: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{PermissionsExt, chown, lchown, symlink};
    let dir = tree.join("run/app");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("pid"), "42\n")?;
    symlink("pid", dir.join("link"))?;
    for path in [dir.join("pid"), dir.clone()] {
        chown(&path, Some(70), Some(70))?;
    }
    lchown(dir.join("link"), Some(70), Some(70))?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o2775))?;
    std::fs::set_permissions(dir.join("pid"), std::fs::Permissions::from_mode(0o640))
}

/// What the host side of the devices saw.
#[derive(Debug, Default)]
struct Outside {
    /// Request lines the HTTP server received.
    http_requests: Vec<String>,
    /// What the guest wrote to the `org.vminit.exit` port.
    port_record: String,
    /// `vminit --check --cmdline` on the host, of the boot's whole line:
    /// its exit status and standard error.
    check: (i32, String),
    /// The disks after the VM stopped.
    root_disk: Option<std::path::PathBuf>,
    data_disk: Option<std::path::PathBuf>,
}

impl Outside {
    /// Checks that each disk the case had is a clean ext4 (`e2fsck -fn`).
    fn disks_clean(&self) -> Result<(), String> {
        for disk in self.root_disk.iter().chain(&self.data_disk) {
            crate::disk::check(disk)?;
        }
        Ok(())
    }

    /// A file on the data disk, or on the root disk.
    fn read(&self, data: bool, path: &str) -> Result<String, String> {
        let disk = if data {
            &self.data_disk
        } else {
            &self.root_disk
        };
        match disk {
            Some(disk) => crate::disk::read(disk, path),
            None => Err("the case has no such disk".into()),
        }
    }
}

/// The modules the test image carries (with their dependencies).
const MODULES: &[&str] = &[
    "virtio_mmio",
    "virtio_net",
    "virtio_console",
    "vsock_loopback",
    "virtio_blk",
    "crc32c_generic",
    "ext4",
    "overlay",
];
/// What the HTTP server answers.
const HTTP_BODY: &str = "host-says-hello";

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

/// Exit 2 with `message`, and the app (which would print `app-ran`) never ran.
fn refused_before_the_app(console: &Console, message: &str) -> Result<(), String> {
    expect(console, 2)?;
    require(console, &[message])?;
    if console.has("app-ran") {
        return Err("the app ran although its set-up failed".into());
    }
    Ok(())
}

/// The kernel panicked before init with `message`, and `--check` refused
/// the same line naming the same rule.
fn kernel_refused(console: &Console, outside: &Outside, message: &str) -> Result<(), String> {
    if !console.kernel_panicked() || !console.has(message) {
        return Err(format!("no kernel panic with {message:?}"));
    }
    if console.has("vminit:") {
        return Err("vminit ran".into());
    }
    match &outside.check {
        (2, stderr) if stderr.contains(message) => Ok(()),
        other => Err(format!("--check did not refuse the line: {other:?}")),
    }
}

/// The app ran, exited 0 and printed `line`, and `--check` accepted the line.
fn kernel_accepted(console: &Console, outside: &Outside, line: &str) -> Result<(), String> {
    expect(console, 0)?;
    require(console, &[line])?;
    match &outside.check {
        (0, _) => Ok(()),
        other => Err(format!("--check refused the line: {other:?}")),
    }
}

/// A line of `n` words: `word` repeated, or `key0=v key1=v …` for "key".
fn words(n: usize, word: &str) -> String {
    (0..n)
        .map(|i| {
            if word == "key" {
                format!("key{i}=v")
            } else {
                word.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A generated command line for a case (cases live for the whole run).
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

fn line(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}

/// Both sides of the kernel's limits on init's arguments and variables
/// (`init/main.c`): what boots must pass `--check`, what panics must not.
fn init_limit_cases() -> Vec<Case> {
    let case = |name, cmdline, check: fn(&Console, &Outside) -> Result<(), String>| Case {
        name,
        image: Image::Normal,
        cmdline,
        qmp_after: &[],
        devices: &[],
        check,
    };
    vec![
        case(
            "init_limits_31_variables_and_32_arguments_boot",
            line(format!(
                "{} -- /tests/count.sh {}",
                words(31, "key"),
                words(31, "x")
            )),
            |c, o| kernel_accepted(c, o, "args=31 keys=31"),
        ),
        case(
            "init_limits_32_variables_panic_the_kernel_and_fail_check",
            line(format!("{} -- /tests/count.sh", words(32, "key"))),
            |c, o| kernel_refused(c, o, "Too many boot env vars"),
        ),
        case(
            "init_limits_33_arguments_panic_the_kernel_and_fail_check",
            line(format!("-- /tests/count.sh {}", words(32, "x"))),
            |c, o| kernel_refused(c, o, "Too many boot init vars"),
        ),
        case(
            "init_limits_bare_words_share_the_arguments_32_boot",
            line(format!(
                "nomodules foo -- /tests/count.sh {}",
                words(29, "x")
            )),
            |c, o| kernel_accepted(c, o, "args=29 keys=0"),
        ),
        case(
            "init_limits_bare_words_share_the_arguments_33_panic",
            line(format!(
                "nomodules foo bar -- /tests/count.sh {}",
                words(29, "x")
            )),
            |c, o| kernel_refused(c, o, "Too many boot init vars"),
        ),
    ]
}

/// The modules a root or volume on a virtio disk needs on Debian's kernel
/// (crc32c: ext4's soft dependency, which no modprobe resolves here).
const DISK_MODULES: &str = "vminit.modules=virtio_mmio,virtio_blk,crc32c_generic,ext4";

/// The root switch, overlays and volumes, and their state after the VM.
fn disk_cases() -> Vec<Case> {
    vec![
        Case {
            name: "root_switch_to_an_ext4_disk_and_a_volume_both_clean_after",
            image: Image::Normal,
            cmdline: line(format!(
                "{DISK_MODULES} vminit.root=/dev/vda vminit.mount.data=/dev/vdb,/data,ext4,noatime \
                 -- /bin/sh -c \"cat /etc/root-marker; touch /x 2>/dev/null || echo root-read-only; \
                 [ -e /tests ] || echo initramfs-gone; echo written > /data/file; grep -E ' (/|/data) ' /proc/mounts; \
                 echo tty=$(tty); stat -c 'run %n %u %a' /run/app /run/app/pid; \
                 cat /run/app/link; [ -d /run/vminit ] && echo vminit-run-kept\""
            )),
            qmp_after: &[],
            devices: &[Device::RootDisk, Device::DataDisk],
            check: |c, o| {
                expect(c, 0)?;
                require(
                    c,
                    &[
                        "root-marker-ok",
                        "root-read-only",
                        "initramfs-gone",
                        "/dev/vda / ext4 ro,",
                        "/dev/vdb /data ext4 rw,noatime",
                        // The new root's console, not a deleted node.
                        "tty=/dev/console",
                        // The image's /run, as Docker keeps it.
                        "run /run/app 70 2775",
                        "run /run/app/pid 70 640",
                        "42",
                        "vminit-run-kept",
                    ],
                )?;
                o.disks_clean()?;
                match o.read(true, "/file")?.as_str() {
                    "written\n" => Ok(()),
                    other => Err(format!("the volume holds {other:?}")),
                }
            },
        },
        Case {
            name: "root_under_a_tmpfs_overlay_is_writable_and_the_disk_untouched",
            image: Image::Normal,
            cmdline: line(format!(
                "{DISK_MODULES},overlay vminit.root=/dev/vda vminit.root.overlay=tmpfs:16m \
                 -- /bin/sh -c \"echo changed > /etc/root-marker && cat /etc/root-marker; grep ' / ' /proc/mounts\""
            )),
            qmp_after: &[],
            devices: &[Device::RootDisk],
            check: |c, o| {
                expect(c, 0)?;
                require(c, &["changed", "overlay / overlay rw,"])?;
                o.disks_clean()?;
                match o.read(false, "/etc/root-marker")?.as_str() {
                    "root-marker-ok\n" => Ok(()),
                    other => Err(format!("the root disk changed: {other:?}")),
                }
            },
        },
        Case {
            name: "root_under_an_overlay_on_a_second_disk_keeps_the_changes_there",
            image: Image::Normal,
            cmdline: line(format!(
                "{DISK_MODULES},overlay vminit.root=/dev/vda vminit.root.overlay=/dev/vdb \
                 -- /bin/sh -c \"echo kept > /etc/new-file\""
            )),
            qmp_after: &[],
            devices: &[Device::RootDisk, Device::DataDisk],
            check: |c, o| {
                expect(c, 0)?;
                o.disks_clean()?;
                let upper = o.read(true, "/upper/etc/new-file")?;
                let root = o.read(false, "/etc/new-file")?;
                if upper == "kept\n" && root.is_empty() {
                    Ok(())
                } else {
                    Err(format!("upper {upper:?}, root {root:?}"))
                }
            },
        },
        Case {
            name: "a_root_device_that_never_appears_ends_in_2",
            image: Image::Normal,
            cmdline: "vminit.modules=virtio_mmio,virtio_blk vminit.root=/dev/vdz vminit.root.wait=1 \
                      -- sh -c \"echo app-ran\"",
            qmp_after: &[],
            devices: &[Device::RootDisk],
            check: |c, _| {
                refused_before_the_app(c, "Root device /dev/vdz did not appear within 1s")
            },
        },
        Case {
            name: "ctrl_alt_del_during_writes_leaves_the_volume_clean",
            image: Image::Normal,
            cmdline: line(format!(
                "{DISK_MODULES} vminit.root=/dev/vda vminit.mount.data=/dev/vdb,/data,ext4 \
                 vminit.grace=5 -- /writer.sh"
            )),
            qmp_after: &[("writing", qemu::CTRL_ALT_DEL)],
            devices: &[Device::RootDisk, Device::DataDisk],
            check: |c, o| {
                // SIGINT's default action ends the writer: 130.
                expect(c, 130)?;
                o.disks_clean()?;
                // /data/log in the guest: /log on the volume.
                let log = o.read(true, "/log")?;
                if log.lines().count() >= 200 {
                    Ok(())
                } else {
                    Err(format!("{} lines on the volume", log.lines().count()))
                }
            },
        },
        Case {
            name: "a_hung_data_disk_costs_the_flush_deadline_not_the_exit",
            image: Image::Normal,
            cmdline: line(format!(
                "{DISK_MODULES} vminit.root=/dev/vda vminit.mount.data=/dev/vdb,/data,ext4 \
                 -- /bin/sh -c \"dd if=/dev/zero of=/data/big bs=1M count=16 2>/dev/null; echo written; sleep 2; exit 4\""
            )),
            qmp_after: &[("written", HANG_DATA_DISK)],
            devices: &[Device::RootDisk, Device::DataDisk],
            check: |c, _| {
                // The app's status still arrives, after the bound.
                expect(c, 4)?;
                require(c, &["sync and unmount made no progress for 10s"])
            },
        },
        Case {
            name: "a_writer_killed_after_the_grace_period_leaves_the_volume_clean",
            image: Image::Normal,
            cmdline: line(format!(
                "{DISK_MODULES} vminit.root=/dev/vda vminit.mount.data=/dev/vdb,/data,ext4 \
                 vminit.grace=1 -- /bin/sh -c \"(trap '' TERM; exec /writer.sh) & sleep 2; exit 3\""
            )),
            qmp_after: &[],
            devices: &[Device::RootDisk, Device::DataDisk],
            check: |c, o| {
                expect(c, 3)?;
                require(
                    c,
                    &["processes still running after the grace period: sending SIGKILL"],
                )?;
                o.disks_clean()
            },
        },
    ]
}

/// QEMU's throttle on the data disk at one byte a second: the requests
/// under way stay, which holds every further write, as a hung disk would.
const HANG_DATA_DISK: &str = r#"{"execute": "block_set_io_throttle", "arguments": {"device": "data",
    "bps": 0, "bps_rd": 0, "bps_wr": 1, "iops": 0, "iops_rd": 0, "iops_wr": 0}}"#;

/// Cases that need x86's keyboard controller (Ctrl-Alt-Del is an i8042
/// key press; arm64 `virt` has no keyboard to press it on).
const X86_ONLY: &[&str] = &[
    "ctrl_alt_del_from_the_host_reaches_the_app_as_sigint",
    "ctrl_alt_del_during_writes_leaves_the_volume_clean",
];

fn cases(arch: Arch) -> Vec<Case> {
    let mut cases = vec![
        Case {
            name: "env_workdir_quoting_mounts_and_no_leaks_from_the_cmdline",
            image: Image::Normal,
            // `nomodules`: an unknown bare word, which the kernel passes to
            // init before the words after `--` (Firecracker's defaults have it).
            cmdline: r#"nomodules env.GREETING="hello world" "env.SPACED=a b" env.EQ=x=y workdir=/tests vminit.grace=1 -- /tests/show-env.sh 3"#,
            qmp_after: &[],
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
            qmp_after: &[],
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
            qmp_after: &[],
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
                    ],
                )
            },
        },
        Case {
            name: "orphaned_zombies_are_reaped_and_a_signal_death_is_137",
            image: Image::Normal,
            cmdline: "-- /tests/zombies.sh",
            qmp_after: &[],
            devices: &[],
            check: |c, _| {
                expect(c, 137)?;
                require(c, &["zombies=0"])
            },
        },
        Case {
            name: "a_missing_command_is_127_logged_to_kmsg",
            image: Image::Normal,
            // A path of 1,100 bytes: quoted whole, the line was more than
            // the kernel keeps of a record, and lost.
            cmdline: line(format!(
                "vminit.log_target=kmsg -- /no/such/app/{}",
                "a".repeat(1100)
            )),
            qmp_after: &[],
            devices: &[],
            check: |c, _| {
                expect(c, 127)?;
                // Through the kernel log: the console shows it with a printk stamp.
                let logged = c.lines.iter().any(|l| {
                    l.starts_with('[')
                        && l.contains("] vminit: error: cannot run \"/no/such/app/aaaa")
                        && l.contains("…\": No such file or directory")
                });
                if logged {
                    Ok(())
                } else {
                    Err("the error did not go through /dev/kmsg".into())
                }
            },
        },
        Case {
            name: "kmsg_lines_are_cut_and_not_rate_limited",
            image: Image::Normal,
            // loglevel=8: the console shows kmsg's debug lines too. The app
            // sends 15 signals to PID 1 within a second; the kernel lets a
            // writer of /dev/kmsg have 10 lines per 5 s unless lifted.
            // A 1,500-byte argument makes the debug line with the
            // configuration longer than a kmsg record: it is cut.
            cmdline: line(format!(
                "loglevel=8 vminit.log_target=kmsg vminit.verbosity=debug -- /tests/signal-init.sh {}",
                "y".repeat(1500)
            )),
            qmp_after: &[],
            devices: &[],
            check: |c, _| {
                expect(c, 0)?;
                let forwarded = c
                    .lines
                    .iter()
                    .filter(|l| l.starts_with('[') && l.contains("] vminit: forwarding SIGUSR1"))
                    .count();
                // More than the kernel's burst of 10; signals sent faster
                // than PID 1 takes them may coalesce, so not always 15.
                let cut = c.lines.iter().any(|l| {
                    l.starts_with('[')
                        && l.contains("] vminit: started pid")
                        && l.ends_with(" bytes, cut)")
                });
                if !cut {
                    return Err("no kmsg line with the configuration, cut".into());
                }
                if forwarded > 10 && !c.has("suppressed due to ratelimiting") {
                    Ok(())
                } else {
                    Err(format!(
                        "{forwarded} of 15 forwarding lines reached the kernel log"
                    ))
                }
            },
        },
        Case {
            name: "bad_input_is_named_exits_2_and_ends_the_vm",
            image: Image::Normal,
            // A power-off: under QEMU microvm a guest restart sometimes
            // boots again despite -no-reboot (seen here), so the restart
            // path is checked in tests/vm_mode.rs instead.
            cmdline: "env.1BAD=s3cret-on-cmdline workdir=/a/../b \
                      metadata=/tests/broken.json -- true",
            qmp_after: &[],
            devices: &[],
            check: |c, _| {
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
            image: Image::Normal,
            // The app leaves only once the background shell has set its trap.
            cmdline: r#"vminit.grace=1 -- sh -c "(trap '' TERM; touch /tmp/bg-ready; exec sleep 1000) & while [ ! -e /tmp/bg-ready ]; do sleep 0.05; done; exit 4""#,
            qmp_after: &[],
            devices: &[],
            check: |c, _| {
                expect(c, 4)?;
                require(
                    c,
                    &["processes still running after the grace period: sending SIGKILL"],
                )
            },
        },
        Case {
            name: "ctrl_alt_del_from_the_host_reaches_the_app_as_sigint",
            image: Image::Normal,
            cmdline: "vminit.grace=5 -- /tests/wait-for-int.sh",
            qmp_after: &[("app ready", qemu::CTRL_ALT_DEL)],
            devices: &[],
            check: |c, _| {
                expect(c, 42)?;
                require(c, &["app got SIGINT"])
            },
        },
        Case {
            name: "the_power_button_stops_the_app_once_like_sigterm",
            image: Image::Normal,
            // The second press comes during the grace period: no second TERM.
            cmdline: line(format!(
                "vminit.modules={} vminit.grace=5 -- /bin/sh -c \
                      \"n=0; trap 'n=$((n+1)); echo got-term-$n' TERM; echo button-ready; \
                      while [ $n = 0 ]; do sleep 0.1; done; sleep 2; echo terms=$n; exit $((40+n))\"",
                arch.power_button_modules().join(",")
            )),
            qmp_after: &[
                ("button-ready", qemu::POWER_BUTTON),
                ("got-term-1", qemu::POWER_BUTTON),
            ],
            devices: &[],
            check: |c, _| {
                expect(c, 41)?;
                require(c, &["power button pressed: sending SIGTERM", "terms=1"])
            },
        },
        Case {
            name: "the_power_button_sends_the_stop_signal",
            image: Image::Normal,
            // PostgreSQL's StopSignal: SIGINT is its fast shutdown.
            cmdline: line(format!(
                "vminit.modules={} vminit.grace=5 vminit.stop_signal=SIGINT -- /bin/sh -c \
                 \"trap 'echo got-term; exit 43' TERM; trap 'echo got-int; exit 42' INT; \
                 echo button-ready; while :; do sleep 0.1; done\"",
                arch.power_button_modules().join(",")
            )),
            qmp_after: &[("button-ready", qemu::POWER_BUTTON)],
            devices: &[],
            check: |c, _| {
                expect(c, 42)?;
                require(c, &["power button pressed: sending SIGINT", "got-int"])
            },
        },
        Case {
            name: "the_guest_clock_keeps_the_hosts_time",
            image: Image::Normal,
            // Under TCG the guest's clock is only as true as the TSC
            // frequency it is told (x86) or QEMU's timer (arm64): 20 s of
            // guest time against the host's, the lines stamped on arrival.
            cmdline: r#"-- sh -c "read up rest < /proc/uptime; echo clock-start $up; sleep 20; read up rest < /proc/uptime; echo clock-end $up""#,
            qmp_after: &[],
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
            qmp_after: &[],
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
            qmp_after: &[],
            devices: &[],
            check: |c, _| {
                expect(c, 0)?;
                require(c, &["nofile=1024:524288"])
            },
        },
        Case {
            name: "power_button_0_leaves_the_button_alone",
            image: Image::Normal,
            cmdline: line(format!(
                "vminit.modules={} vminit.power_button=0 -- /bin/sh -c \
                 \"trap 'echo got-term' TERM; echo button-ready; sleep 3; exit 5\"",
                arch.power_button_modules().join(",")
            )),
            qmp_after: &[("button-ready", qemu::POWER_BUTTON)],
            devices: &[],
            check: |c, _| {
                expect(c, 5)?;
                if c.has("got-term") || c.has("power button pressed") {
                    return Err("the press reached the app".into());
                }
                Ok(())
            },
        },
        Case {
            name: "modules_then_static_network_reaches_the_host_over_virtio_net",
            image: Image::Normal,
            cmdline: "vminit.modules=virtio_mmio,virtio_net vminit.net.address=10.0.2.15/24,fec0::15/64 \
                      vminit.net.gateway=10.0.2.2,fec0::2 vminit.net.mtu=1400 \
                      vminit.net.nameservers=10.0.2.3 vminit.net.hosts=hostside=10.0.2.2 vminit.hostname=vmbox \
                      -- /tests/net.sh {http_port}",
            qmp_after: &[],
            devices: &[Device::Net],
            check: |c, outside| {
                expect(c, 0)?;
                require(
                    c,
                    &[
                        "mtu=[1400]",
                        "v4 inet 10.0.2.15/24",
                        "v6 inet6 fec0::15/64",
                        "route4 default via 10.0.2.2 dev eth0",
                        "route6 default via fec0::2 dev eth0",
                        "resolv: nameserver 10.0.2.3",
                        "replaced the image's /etc/resolv.conf",
                        "hosts: 10.0.2.2\thostside",
                        "hosts: 127.0.1.1\tvmbox",
                        &format!("http: {HTTP_BODY}"),
                    ],
                )?;
                if c.has("192.0.2.1") {
                    return Err("the image's nameserver is still there".into());
                }
                match outside.http_requests.as_slice() {
                    [one] if one.starts_with("GET /from-guest ") => Ok(()),
                    other => Err(format!("the host's HTTP server saw {other:?}")),
                }
            },
        },
        Case {
            name: "oom_kill_reported_over_virtio_serial_and_vsock",
            image: Image::Normal,
            cmdline: "vminit.modules=virtio_mmio,virtio_console,vsock_loopback \
                      vminit.report.port=org.vminit.exit vminit.report.vsock=1:5000 \
                      vminit.grace=5 -- /tests/oom.sh",
            qmp_after: &[],
            devices: &[Device::ExitPort],
            check: |c, outside| {
                expect(c, 137)?;
                let record = r#"{"exit_code":137,"oom_killed":true,"signal":9,"timings":{"#;
                require(
                    c,
                    &[
                        "listener ready",
                        "the kernel's OOM killer killed pid",
                        &format!("vsock-listen: received {record}"),
                    ],
                )?;
                // The host closed after one line: a receipt, not a timeout.
                if c.has("Cannot send to vsock") || c.has("did not close the connection") {
                    return Err("the vsock channel reported a failure".into());
                }
                if !outside.port_record.starts_with(record)
                    || !outside.port_record.ends_with("}\n")
                    || outside.port_record.lines().count() != 1
                {
                    return Err(format!("the port got {:?}", outside.port_record));
                }
                Ok(())
            },
        },
        Case {
            name: "a_vsock_host_that_never_closes_costs_the_deadline_not_the_status",
            image: Image::Normal,
            cmdline: "vminit.modules=vsock_loopback vminit.report.vsock=1:5001 vminit.grace=1 \
                      -- /tests/vsock-hold.sh",
            qmp_after: &[],
            devices: &[],
            check: |c, _| {
                expect(c, 7)?;
                require(
                    c,
                    &[
                        r#"vsock-listen: received {"exit_code":7,"oom_killed":false,"signal":null,"#,
                        "Sent the exit record to vsock 1:5001, but the host did not close the connection within 2 s",
                    ],
                )
            },
        },
        Case {
            name: "missing_module_is_refused_before_the_app",
            image: Image::Normal,
            cmdline: r#"vminit.modules=virtio_mmio,no_such_module -- sh -c "echo app-ran""#,
            qmp_after: &[],
            devices: &[],
            check: |c, _| {
                refused_before_the_app(
                    c,
                    "Module no_such_module is neither in modules.dep nor built into the kernel",
                )
            },
        },
        Case {
            name: "a_network_interface_that_is_not_there_is_refused_before_the_app",
            image: Image::Normal,
            cmdline: r#"vminit.modules=virtio_mmio,virtio_net vminit.net.interface=eth9
                        vminit.net.address=10.0.2.15/24 -- sh -c "echo app-ran""#,
            qmp_after: &[],
            devices: &[Device::Net],
            check: |c, _| {
                refused_before_the_app(
                    c,
                    "Cannot configure network interface eth9 (find it): No such device",
                )
            },
        },
        Case {
            name: "resolv_conf_and_hosts_on_a_read_only_root",
            image: Image::ReadOnlyRoot,
            cmdline: r#"vminit.net.nameservers=10.0.2.3 vminit.net.hosts=db=10.0.2.20 --
                        sh -c "touch /etc/x 2>/dev/null || echo root-is-read-only;
                               sed 's/^/resolv: /' /etc/resolv.conf; grep db /etc/hosts""#,
            qmp_after: &[],
            devices: &[],
            check: |c, _| {
                expect(c, 0)?;
                require(
                    c,
                    &[
                        "root-is-read-only",
                        "wrote /run/systemd/resolve/stub-resolv.conf, where the read-only image's /etc/resolv.conf points",
                        "resolv: nameserver 10.0.2.3",
                        "mounted /run/vminit/hosts over the image's read-only /etc/hosts",
                        "10.0.2.20\tdb",
                    ],
                )
            },
        },
        Case {
            name: "no_dev_console_in_the_image_still_runs_and_powers_off",
            image: Image::NoConsole,
            cmdline: r#"-- sh -c "echo console-ok; exit 5""#,
            qmp_after: &[],
            devices: &[],
            check: |c, _| {
                expect(c, 5)?;
                // The kernel's own words: init really started without fds 0-2.
                require(c, &["unable to open an initial console", "console-ok"])
            },
        },
    ];
    cases.extend(init_limit_cases());
    cases.extend(disk_cases());
    if arch != Arch::X86_64 {
        cases.retain(|case| !X86_ONLY.contains(&case.name));
    }
    cases
}

/// Runs every case for `arch` (or those whose name contains `filter`), two
/// boots at a time (a TCG boot keeps one core busy); the scenarios (Debian
/// amd64 images) on x86-64 only.
pub fn run(filter: Option<&str>, arch: Arch) -> Result<(), String> {
    if arch != Arch::host() {
        // `--check` on the host runs the guest's own binary.
        crate::setup::binfmt(arch)?;
    }
    let kit = Kit::prepare_for(None, arch)?;
    let mut files: Vec<(String, Vec<u8>, u32)> = FILES
        .iter()
        .map(|(path, text)| ((*path).to_owned(), text.as_bytes().to_vec(), 0o755))
        .collect();
    files.extend(kernel::module_files(&kit.kernel, MODULES)?);
    files.extend(kernel::module_files(
        &kit.kernel,
        arch.power_button_modules(),
    )?);
    let listener = build::guest_tool("vsock-listen", arch)?;
    let listener = std::fs::read(&listener).map_err(|e| format!("{}: {e}", listener.display()))?;
    files.push(("/tests/vsock-listen".into(), listener, 0o755));
    let normal = kit.image("tests", ConsoleNodes::Nodes, files.clone())?;
    let no_console = kit.image("tests-no-console", ConsoleNodes::Missing, files.clone())?;
    let mut read_only_files = files;
    let vminit =
        std::fs::read(&kit.vminit).map_err(|e| format!("{}: {e}", kit.vminit.display()))?;
    read_only_files.push(("/sbin/vminit".into(), vminit, 0o755));
    let read_only = kit.image_with_init(
        "tests-read-only",
        Some(READ_ONLY_INIT),
        ConsoleNodes::Nodes,
        read_only_files,
    )?;
    crate::setup::packages(crate::disk::TOOLS)?;
    let root_image = cmd::root().join("target/vm/root.ext4");
    crate::disk::root_image(&root_image, &kit.busybox, ROOT_FILES, 64, image_run)?;
    eprintln!(
        "VM tests: {} with {:?}",
        kit.kernel.display(),
        kit.accel(&normal)
    );

    let chosen = cases(arch)
        .into_iter()
        .filter(|case| filter.is_none_or(|f| case.name.contains(f)))
        .enumerate()
        .collect::<Vec<_>>();
    let scenarios = arch == Arch::X86_64
        && crate::scenarios::NAMES
            .iter()
            .any(|name| filter.is_none_or(|f| name.contains(f)));
    if chosen.is_empty() && !scenarios {
        return Err(format!("no VM test case matches {filter:?}"));
    }
    let queue = Mutex::new(chosen);
    let results = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                while let Some((index, case)) = queue.lock().unwrap().pop() {
                    let initrd = match case.image {
                        Image::Normal => &normal,
                        Image::NoConsole => &no_console,
                        Image::ReadOnlyRoot => &read_only,
                    };
                    let outcome = run_case(&case, &kit, initrd, &root_image, index);
                    results.lock().unwrap().push((case.name, outcome));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    // Real software, one boot at a time: these images are large.
    if arch == Arch::X86_64 {
        results.extend(crate::scenarios::run(&kit, filter));
    }
    let failed = results.iter().filter(|(_, r)| r.is_err()).count();
    println!(
        "{}: {} passed, {failed} failed",
        arch.name(),
        results.len() - failed
    );
    if failed == 0 {
        Ok(())
    } else {
        Err(format!("{failed} VM test(s) failed"))
    }
}

fn run_case(
    case: &Case,
    kit: &Kit,
    initrd: &std::path::Path,
    root_image: &std::path::Path,
    index: usize,
) -> Result<(), String> {
    let qmp = (!case.qmp_after.is_empty()).then(|| {
        std::env::temp_dir().join(format!("vminit-qmp-{}-{index}.sock", std::process::id()))
    });
    let mut cmdline = case
        .cmdline
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let mut devices: Vec<String> = Vec::new();
    let mut http = None;
    let port_file = std::env::temp_dir().join(format!(
        "vminit-exit-port-{}-{index}.json",
        std::process::id()
    ));
    let disk_path = |what: &str| cmd::root().join(format!("target/vm/{}-{what}.ext4", case.name));
    let mut root_disk = None;
    let mut data_disk = None;
    for device in case.devices {
        match device {
            Device::RootDisk => {
                let path = disk_path("root");
                std::fs::copy(root_image, &path).map_err(|e| format!("{}: {e}", path.display()))?;
                devices.extend(qemu::disk(&path, "root", false));
                root_disk = Some(path);
            }
            Device::DataDisk => {
                let path = disk_path("data");
                crate::disk::empty(&path, 32)?;
                devices.extend(qemu::disk(&path, "data", false));
                data_disk = Some(path);
            }
            Device::Net => {
                let server = HttpServer::start()?;
                cmdline = cmdline.replace("{http_port}", &server.port.to_string());
                http = Some(server);
                devices.extend(qemu::user_net());
            }
            Device::ExitPort => {
                devices.extend([
                    "-device".into(),
                    "virtio-serial-device".into(),
                    "-chardev".into(),
                    format!("file,id=exitrec,path={}", port_file.display()),
                    "-device".into(),
                    "virtserialport,chardev=exitrec,name=org.vminit.exit".into(),
                ]);
            }
        }
    }
    let boot = Boot {
        qmp: qmp.clone(),
        devices,
        ..kit.boot(initrd, cmdline)
    };
    let mut sent: Result<(), String> = Ok(());
    let mut next = case.qmp_after.iter();
    let mut waiting_for = next.next();
    let result = qemu::run(&boot, GUARD, false, |line| {
        if let (Some((marker, command)), Some(socket)) = (waiting_for, &qmp)
            && line.contains(marker)
        {
            waiting_for = next.next();
            if sent.is_ok() {
                sent = qemu::qmp(socket, command);
            }
        }
    });
    if let Some(socket) = &qmp {
        let _ = std::fs::remove_file(socket);
    }
    let outside = Outside {
        http_requests: http.map(HttpServer::stop).unwrap_or_default(),
        port_record: std::fs::read_to_string(&port_file).unwrap_or_default(),
        check: check_on_host(kit, &boot.cmdline)?,
        root_disk,
        data_disk,
    };
    let _ = std::fs::remove_file(&port_file);
    let remove_disks = |outside: &Outside| {
        for disk in outside.root_disk.iter().chain(&outside.data_disk) {
            let _ = std::fs::remove_file(disk);
        }
    };
    let outcome = result.and_then(|console| {
        sent.clone()?;
        (case.check)(&console, &outside)
            .map_err(|e| format!("{e}\n--- console ---\n{}", console.text()))?;
        Ok(console.wall)
    });
    remove_disks(&outside);
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

/// `vminit --check --cmdline` on the host with the boot's whole line.
fn check_on_host(kit: &Kit, cmdline: &str) -> Result<(i32, String), String> {
    let line = format!("{} {cmdline}", qemu::base_cmdline(kit.arch));
    let output = std::process::Command::new(&kit.vminit)
        .args(["--check", "--cmdline", &line])
        .output()
        .map_err(|e| format!("{}: {e}", kit.vminit.display()))?;
    Ok((
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ))
}

/// A one-page HTTP server on the host's loopback, for the network case:
/// answers every request with [`HTTP_BODY`] and records its request line.
struct HttpServer {
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Vec<String>>,
}

impl HttpServer {
    fn start() -> Result<HttpServer, String> {
        use std::io::{BufRead, BufReader, Write};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut requests = Vec::new();
            while !stopping.load(Ordering::Relaxed) {
                let Ok((stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
                let mut reader = BufReader::new(&stream);
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                // The rest of the head, up to the empty line.
                let mut header = String::new();
                while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                    header.clear();
                }
                requests.push(line.trim_end().to_owned());
                let _ = (&stream).write_all(
                    format!(
                        "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{HTTP_BODY}\n",
                        HTTP_BODY.len() + 1
                    )
                    .as_bytes(),
                );
            }
            requests
        });
        Ok(HttpServer { port, stop, thread })
    }

    /// Stops the server and returns the request lines it saw.
    fn stop(self) -> Vec<String> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}
