//! `cargo xtask bench-vm [--boots N] [--cpus N] [--kernel PATH]`: boot timings of
//! vminit against a busybox shell script that does the same job (mount,
//! run the app, sync, power off), on the same kernel, alternating boots in
//! one run. Prints medians side by side and writes `target/bench/vm.csv`.
//!
//! Both inits are timed on one clock, the kernel's printk timestamps: the
//! app writes a line to `/dev/kmsg` first and last thing, and the kernel
//! prints `reboot: Power down` when the power-off request is carried out.
//! vminit boots as users boot it, at its default verbosity: every debug
//! line costs a write to the emulated serial console. A third boot, at
//! debug level, gives vminit's own `CLOCK_BOOTTIME` timings and steps.
//!
//! Two more vminit boots price the root switch and a volume: one loads the
//! modules a stock kernel needs for a virtio ext4 disk and runs the app
//! from the initramfs; the other loads them, switches to an ext4 root disk
//! (read-only) and mounts an ext4 volume, which it syncs and unmounts at
//! the end. Both are shown as ratios to the plain initramfs boot.

use std::fmt::Write as _;
use std::time::Duration;

use super::stats;
use crate::cmd;
use crate::vm::initramfs::Console as ConsoleNodes;
use crate::vm::kit::Kit;
use crate::vm::qemu::{self, Boot, Console};

/// The app both inits run: two kmsg marks, at priority 2 so that `quiet`
/// still prints them on the console.
const APP: &str = "echo '<2>bench: app start' > /dev/kmsg; echo '<2>bench: app end' > /dev/kmsg";

/// `loglevel=7` (after the base `quiet`): the kernel prints its `Run /init
/// as init process` line, the common start mark for both inits.
/// `tsc=reliable`: without it the guest's clocks advance in 4 ms jiffies.
const BENCH_CMDLINE: &str = "loglevel=7 tsc=reliable";

/// What a virtio ext4 disk needs on a stock kernel.
const DISK_MODULES: &[&str] = &["virtio_mmio", "virtio_blk", "crc32c_generic", "ext4"];

/// The baseline: what a hand-written shell init does for the same job.
const BASELINE_INIT: &str = r#"#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /run
ip link set lo up
sh -c "echo '<2>bench: app start' > /dev/kmsg; echo '<2>bench: app end' > /dev/kmsg"
echo "baseline: exit_code=$?"
sync
poweroff -f
"#;

/// How one table row reads a sample.
type Metric = fn(&Sample) -> f64;

/// One boot's measurements, in milliseconds.
#[derive(Debug, Clone, Default)]
struct Sample {
    /// Kernel start to the kernel's `Run /init` line (printk clock).
    boot_to_init: f64,
    /// `Run /init` to the app's first line (printk clock).
    init_to_app: f64,
    /// The app's last line to the kernel's power-down line (printk clock).
    app_end_to_power_down: f64,
    /// Host wall time of the whole QEMU run.
    wall: f64,
    /// vminit's own: kernel start to vminit's start, its start to the app's
    /// exec, and the app's exit to its power-off request (CLOCK_BOOTTIME).
    vminit: Option<(f64, f64, f64)>,
    /// vminit's steps before the app's exec (its `steps:` debug line), ms.
    steps: Vec<(String, f64)>,
}

pub fn run(args: &[String]) -> Result<(), String> {
    let mut boots = 10usize;
    let mut cpus = 1u32;
    let mut kernel = None;
    let mut words = args.iter();
    while let Some(word) = words.next() {
        match word.as_str() {
            "--boots" => boots = cmd::count(&mut words, "--boots", 1)?,
            "--cpus" => cpus = cmd::count(&mut words, "--cpus", 1)? as u32,
            "--kernel" => {
                kernel = Some(std::path::PathBuf::from(
                    words.next().ok_or("--kernel takes a path")?,
                ))
            }
            other => return Err(format!("unknown option {other:?} for bench-vm")),
        }
    }
    let kit = Kit::prepare(kernel.as_deref())?;
    let vminit_image = kit.image("bench-vminit", ConsoleNodes::Nodes, Vec::new())?;
    let baseline_image = kit.image_with_init(
        "bench-baseline",
        Some(BASELINE_INIT),
        ConsoleNodes::Nodes,
        Vec::new(),
    )?;
    // As users boot it: no debug lines on the (slow, emulated) serial
    // console before the app. The debug boot gives vminit's own timings.
    let vminit_boot = kit.boot(&vminit_image, format!("{BENCH_CMDLINE} -- sh -c \"{APP}\""));
    let debug_boot = kit.boot(
        &vminit_image,
        format!("{BENCH_CMDLINE} vminit.verbosity=debug -- sh -c \"{APP}\""),
    );
    let accel = vminit_boot.accel;
    let baseline_boot = kit.boot(&baseline_image, BENCH_CMDLINE.into());
    let [modules_boot, disks_boot] = disk_boots(&kit)?;
    let [
        vminit_boot,
        debug_boot,
        baseline_boot,
        modules_boot,
        disks_boot,
    ] = [
        vminit_boot,
        debug_boot,
        baseline_boot,
        modules_boot,
        disks_boot,
    ]
    .map(|boot| Boot { cpus, ..boot });

    let mut vminit = Vec::new();
    let mut debug = Vec::new();
    let mut baseline = Vec::new();
    let mut modules = Vec::new();
    let mut disks = Vec::new();
    for round in 0..boots {
        eprintln!("round {}/{boots}", round + 1);
        // Alternate, so that drift in the machine's load hits all alike.
        vminit.push(measure(&vminit_boot, false)?);
        baseline.push(measure(&baseline_boot, false)?);
        debug.push(measure(&debug_boot, true)?);
        modules.push(measure(&modules_boot, true)?);
        disks.push(measure(&disks_boot, true)?);
    }
    let native = native_timings(&kit, boots)?;
    let mut table = render(&vminit, &baseline, &debug, &native, (accel, cpus), &kit);
    table.push_str(&render_disks(&debug, &modules, &disks));
    table.push_str(&render_steps(&[
        ("plain initramfs", &debug),
        ("+ disk modules", &modules),
        ("+ root switch and volume", &disks),
    ]));
    print!("{table}");
    let dir = cmd::root().join("target/bench");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mut csv = String::from(
        "init,boot,boot_to_init_ms,init_to_app_ms,app_end_to_power_down_ms,wall_ms,vminit_start_ms,vminit_start_to_exec_ms,vminit_exit_to_poweroff_ms\n",
    );
    for (name, samples) in [
        ("vminit", &vminit),
        ("baseline", &baseline),
        ("vminit-debug", &debug),
        ("vminit-modules", &modules),
        ("vminit-root-disk", &disks),
    ] {
        for (i, s) in samples.iter().enumerate() {
            let (a, b, c) = s.vminit.map_or(
                (String::new(), String::new(), String::new()),
                |(a, b, c)| (a.to_string(), b.to_string(), c.to_string()),
            );
            let _ = writeln!(
                csv,
                "{name},{i},{},{},{},{},{a},{b},{c}",
                s.boot_to_init, s.init_to_app, s.app_end_to_power_down, s.wall
            );
        }
    }
    std::fs::write(dir.join("vm.csv"), csv).map_err(|e| e.to_string())?;
    let mut steps = String::from("init,boot,step,ms\n");
    for (name, samples) in [
        ("vminit-debug", &debug),
        ("vminit-modules", &modules),
        ("vminit-root-disk", &disks),
    ] {
        for (i, sample) in samples.iter().enumerate() {
            for (step, ms) in &sample.steps {
                let _ = writeln!(steps, "{name},{i},{step},{ms}");
            }
        }
    }
    std::fs::write(dir.join("vm-steps.csv"), steps).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("vm.md"), &table).map_err(|e| e.to_string())?;
    eprintln!("raw numbers: target/bench/vm.csv, vm-steps.csv; table: target/bench/vm.md");
    Ok(())
}

/// The two disk boots: the disk modules only, then those and an ext4 root
/// disk with an ext4 volume.
fn disk_boots(kit: &Kit) -> Result<[Boot; 2], String> {
    let files = crate::vm::kernel::module_files(&kit.kernel, DISK_MODULES)?;
    let image = kit.image("bench-vminit-disks", ConsoleNodes::Nodes, files)?;
    let dir = cmd::root().join("target/bench");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let root = dir.join("root.ext4");
    let data = dir.join("data.ext4");
    crate::vm::disk::root_image(&root, &kit.busybox, &[], 64, |_| Ok(()))?;
    crate::vm::disk::empty(&data, 32)?;
    let modules = format!(
        "{BENCH_CMDLINE} vminit.verbosity=debug vminit.modules={}",
        DISK_MODULES.join(",")
    );
    let app = format!("-- sh -c \"{APP}\"");
    let mut devices = qemu::disk(&root, "root", true);
    devices.extend(qemu::disk(&data, "data", false));
    Ok([
        kit.boot(&image, format!("{modules} {app}")),
        Boot {
            devices,
            ..kit.boot(
                &image,
                format!(
                    "{modules} vminit.root=/dev/vda vminit.root.fstype=ext4 \
                     vminit.mount.data=/dev/vdb,/data,ext4 {app}"
                ),
            )
        },
    ])
}

fn measure(boot: &Boot, is_vminit: bool) -> Result<Sample, String> {
    let console = qemu::run(boot, Duration::from_secs(120), false, |_| {})?;
    let stamp = |needle: &str| -> Result<f64, String> {
        console
            .lines
            .iter()
            .filter_map(|l| printk_line(l))
            .find(|(_, message)| message.starts_with(needle))
            .map(|(seconds, _)| seconds)
            .map(|s| s * 1000.0)
            .ok_or_else(|| format!("no timestamped {needle:?} line:\n{}", console.text()))
    };
    let init = stamp("Run /init as init process")?;
    let start = stamp("bench: app start")?;
    let end = stamp("bench: app end")?;
    let down = stamp("reboot: Power down")?;
    let (vminit, steps) = if is_vminit {
        (Some(vminit_timings(&console)?), vminit_steps(&console)?)
    } else {
        (None, Vec::new())
    };
    Ok(Sample {
        boot_to_init: init,
        init_to_app: start - init,
        app_end_to_power_down: down - end,
        wall: console.wall.as_secs_f64() * 1000.0,
        vminit,
        steps,
    })
}

/// A kernel console line `[    1.234567] message` as (seconds, message).
/// The kernel writes to the console past the tty, so its line can land
/// inside a line of vminit's that the serial port is still draining
/// (`…log=14937[    2.326897] bench: app start`): the stamp is looked
/// for at every `[` in the line.
fn printk_line(line: &str) -> Option<(f64, &str)> {
    line.match_indices('[')
        .find_map(|(at, _)| stamp_at(&line[at..]))
}

/// A printk stamp right at the start of `text`: `[` spaces, seconds with
/// six decimals, `] `; then the message.
fn stamp_at(text: &str) -> Option<(f64, &str)> {
    let (stamp, message) = text.strip_prefix('[')?.split_once("] ")?;
    let (whole, micros) = stamp.trim_start().split_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(whole) && micros.len() == 6 && digits(micros)).then_some(())?;
    Some((stamp.trim().parse().ok()?, message))
}

/// `line` without a kernel line that landed inside it (see [`printk_line`]).
fn without_printk(line: &str) -> &str {
    line.match_indices('[')
        .find(|(at, _)| stamp_at(&line[*at..]).is_some())
        .map_or(line, |(at, _)| &line[..at])
}

/// vminit's debug line `timings: init_start_us=… app_exec_us=… app_exit_us=… poweroff_us=…`.
fn vminit_timings(console: &Console) -> Result<(f64, f64, f64), String> {
    let line = console
        .lines
        .iter()
        .find_map(|l| without_printk(l).split("vminit: timings: ").nth(1))
        .ok_or_else(|| format!("no vminit timings line:\n{}", console.text()))?;
    let field = |name: &str| -> Result<f64, String> {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
            .and_then(|v| v.parse::<f64>().ok())
            .map(|us| us / 1000.0)
            .ok_or_else(|| format!("no {name} in {line:?}"))
    };
    let start = field("init_start_us")?;
    Ok((
        start,
        field("app_exec_us")? - start,
        field("poweroff_us")? - field("app_exit_us")?,
    ))
}

/// vminit's debug line `steps: mounts=812 module:virtio_mmio=2400 …`
/// (microseconds), as (step, ms) in order.
fn vminit_steps(console: &Console) -> Result<Vec<(String, f64)>, String> {
    let at = console
        .lines
        .iter()
        .position(|l| without_printk(l).contains("vminit: steps: "))
        .ok_or_else(|| format!("no vminit steps line:\n{}", console.text()))?;
    let mut line = without_printk(&console.lines[at]).to_owned();
    // A kernel line that landed inside it pushed the rest of it onto the
    // next console line.
    if line.len() < console.lines[at].len()
        && let Some(rest) = console.lines.get(at + 1)
        && printk_line(rest).is_none()
        && !rest.starts_with("vminit:")
    {
        line.push_str(rest);
    }
    let line = line
        .split("vminit: steps: ")
        .nth(1)
        .ok_or("no vminit steps line")?;
    // Its last field is `log=`: a line cut short by the kernel's is refused,
    // not read as fewer steps.
    if !line
        .split_whitespace()
        .last()
        .is_some_and(|pair| pair.starts_with("log="))
    {
        return Err(format!("vminit's steps line was cut: {line:?}"));
    }
    line.split_whitespace()
        .map(|pair| {
            let (name, us) = pair
                .rsplit_once('=')
                .ok_or_else(|| format!("bad step {pair:?}"))?;
            let us: f64 = us.parse().map_err(|_| format!("bad step {pair:?}"))?;
            Ok((name.to_owned(), us / 1000.0))
        })
        .collect()
}

/// Where vminit's start → exec goes, step by step, for each kind of boot:
/// each step's median, and what no step covers (start → exec less the
/// steps: parsing the configuration, logging, the rest).
fn render_steps(columns: &[(&str, &[Sample])]) -> String {
    let mut names: Vec<&str> = Vec::new();
    for (_, samples) in columns {
        for sample in samples.iter() {
            for (name, _) in &sample.steps {
                if !names.contains(&name.as_str()) {
                    names.push(name);
                }
            }
        }
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nvminit start → app exec by step (its own clock), median, ms\n"
    );
    let header: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
    let _ = writeln!(out, "| step | {} |", header.join(" | "));
    let _ = writeln!(out, "|---|{}", "---|".repeat(columns.len()));
    let step_median = |samples: &[Sample], name: &str| {
        let values: Vec<f64> = samples
            .iter()
            .filter_map(|s| s.steps.iter().find(|(n, _)| n == name).map(|(_, ms)| *ms))
            .collect();
        stats::median(&values)
    };
    let cell = |value: f64| {
        if value.is_nan() {
            "–".to_owned()
        } else {
            format!("{value:.1}")
        }
    };
    for name in &names {
        let cells: Vec<String> = columns
            .iter()
            .map(|(_, samples)| cell(step_median(samples, name)))
            .collect();
        let label = if *name == "log" {
            "writing vminit's log lines (left out of the steps)"
        } else {
            name
        };
        let _ = writeln!(out, "| {label} | {} |", cells.join(" | "));
    }
    let other: Vec<String> = columns
        .iter()
        .map(|(_, samples)| {
            let rest: Vec<f64> = samples
                .iter()
                .filter_map(|s| {
                    let covered: f64 = s.steps.iter().map(|(_, ms)| ms).sum();
                    s.vminit.map(|t| t.1 - covered)
                })
                .collect();
            cell(stats::median(&rest))
        })
        .collect();
    let _ = writeln!(
        out,
        "| no step (configuration, logging, …) | {} |",
        other.join(" | ")
    );
    let total: Vec<String> = columns
        .iter()
        .map(|(_, samples)| {
            let values: Vec<f64> = samples
                .iter()
                .filter_map(|s| s.vminit.map(|t| t.1))
                .collect();
            cell(stats::median(&values))
        })
        .collect();
    let _ = writeln!(out, "| **start → exec** | {} |", total.join(" | "));
    out
}

/// vminit's own timings outside emulation: `--mode vm` as PID 1 of a PID
/// and mount namespace on the host, which runs the whole VM path (reboot(2)
/// then ends the namespace). Returns (start → exec, exit → power-off) in ms.
fn native_timings(kit: &Kit, runs: usize) -> Result<Vec<(f64, f64)>, String> {
    let run_dir = cmd::root().join("target/bench/run");
    std::fs::create_dir_all(&run_dir).map_err(|e| e.to_string())?;
    let mut found = Vec::new();
    for _ in 0..runs.max(20) {
        let output = cmd::pid1_namespace()
            .args(["sh", "-c"])
            .arg("mount --bind \"$0\" /run && exec \"$@\"")
            .arg(&run_dir)
            .arg(&kit.vminit)
            .args([
                "--mode",
                "vm",
                "--cmdline",
                "vminit.verbosity=debug -- /bin/true",
            ])
            .output()
            .map_err(|e| format!("unshare: {e}"))?;
        let console = Console {
            lines: String::from_utf8_lossy(&output.stderr)
                .lines()
                .map(str::to_owned)
                .collect(),
            ..Console::default()
        };
        let (_, exec, off) = vminit_timings(&console)?;
        found.push((exec, off));
    }
    Ok(found)
}

fn render(
    vminit: &[Sample],
    baseline: &[Sample],
    debug: &[Sample],
    native: &[(f64, f64)],
    (accel, cpus): (qemu::Accel, u32),
    kit: &Kit,
) -> String {
    let median = |samples: &[Sample], f: fn(&Sample) -> f64| {
        stats::median(&samples.iter().map(f).collect::<Vec<_>>())
    };
    let spread = |samples: &[Sample], f: fn(&Sample) -> f64| {
        let values: Vec<f64> = samples.iter().map(f).collect();
        format!("{:.1}–{:.1}", stats::min(&values), stats::max(&values))
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "VM boot timings, {} boots each, alternating; QEMU microvm ({accel:?}, {cpus} vCPU), kernel {}\n",
        vminit.len(),
        kit.kernel
            .file_name()
            .map_or("?".into(), |n| n.to_string_lossy())
    );
    let _ = writeln!(
        out,
        "| median (min–max), ms | vminit | shell baseline | vminit / baseline [95% interval] |"
    );
    let _ = writeln!(out, "|---|---|---|---|");
    let rows: [(&str, Metric); 4] = [
        ("kernel start → `Run /init`", |s| s.boot_to_init),
        ("`Run /init` → app's first line", |s| s.init_to_app),
        ("app's last line → kernel power-down", |s| {
            s.app_end_to_power_down
        }),
        ("host wall time, whole boot", |s| s.wall),
    ];
    for (name, f) in rows {
        let (a, b) = (median(vminit, f), median(baseline, f));
        let values = |samples: &[Sample]| samples.iter().map(f).collect::<Vec<_>>();
        let (low, high) = stats::ratio_interval(&values(vminit), &values(baseline));
        let _ = writeln!(
            out,
            "| {name} | {a:.1} ({}) | {b:.1} ({}) | {:.2} [{low:.2}–{high:.2}] |",
            spread(vminit, f),
            spread(baseline, f),
            a / b
        );
    }
    let own: Vec<(f64, f64, f64)> = debug.iter().filter_map(|s| s.vminit).collect();
    let column = |i: usize| -> Vec<f64> { own.iter().map(|t| [t.0, t.1, t.2][i]).collect() };
    let _ = writeln!(
        out,
        "\nvminit's own timings (CLOCK_BOOTTIME), from the same boots with `vminit.verbosity=debug` (its debug lines on the serial console included), median (min–max), ms:\n"
    );
    for (i, name) in [
        "kernel start → vminit start",
        "vminit start → app exec",
        "app exit → power-off request",
    ]
    .iter()
    .enumerate()
    {
        let _ = writeln!(out, "- {name}: {}", stats::summary(&column(i), 3));
    }
    let (exec, off): (Vec<f64>, Vec<f64>) = native.iter().copied().unzip();
    let _ = writeln!(
        out,
        "\nvminit's own timings on the host, no emulation (`--mode vm` as PID 1 of a PID namespace, {} runs), median (min–max), ms:\n",
        native.len()
    );
    for (name, values) in [
        ("vminit start → app exec", &exec),
        ("app exit → power-off request", &off),
    ] {
        let _ = writeln!(out, "- {name}: {}", stats::summary(values, 3));
    }
    out
}

/// The root switch's and the volume's cost, as ratios to the plain boot.
fn render_disks(plain: &[Sample], modules: &[Sample], disks: &[Sample]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nRoot disk and volume, same boots: vminit's own timings (CLOCK_BOOTTIME), median, ms\n"
    );
    let _ = writeln!(
        out,
        "| | plain initramfs | + disk modules | + root switch and volume | modules / plain [95%] | root disk / plain [95%] |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    let rows: [(&str, Metric); 3] = [
        ("vminit start → app exec", |s| {
            s.vminit.map_or(f64::NAN, |t| t.1)
        }),
        ("app exit → power-off request", |s| {
            s.vminit.map_or(f64::NAN, |t| t.2)
        }),
        ("`Run /init` → power-down (printk)", |s| {
            s.init_to_app + s.app_end_to_power_down
        }),
    ];
    for (name, f) in rows {
        let values = |samples: &[Sample]| samples.iter().map(f).collect::<Vec<_>>();
        let median = |samples: &[Sample]| stats::median(&values(samples));
        let (a, b, c) = (median(plain), median(modules), median(disks));
        let interval = |samples: &[Sample]| {
            let (low, high) = stats::ratio_interval(&values(samples), &values(plain));
            format!("[{low:.2}–{high:.2}]")
        };
        let _ = writeln!(
            out,
            "| {name} | {a:.1} | {b:.1} | {c:.1} | {:.2} {} | {:.2} {} |",
            b / a,
            interval(modules),
            c / a,
            interval(disks)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_console_lines() {
        assert_eq!(
            printk_line("[    4.995640] reboot: Power down"),
            Some((4.99564, "reboot: Power down"))
        );
        assert_eq!(printk_line("no stamp"), None);
        let cut = "vminit: steps: spawn=90 log=14937[    2.326897] bench: app start";
        assert_eq!(printk_line(cut), Some((2.326897, "bench: app start")));
        assert_eq!(without_printk(cut), "vminit: steps: spawn=90 log=14937");
        assert_eq!(without_printk("a [b] c"), "a [b] c");
        assert_eq!(without_printk("a [b] c[    1.000000] x"), "a [b] c");
        assert_eq!(printk_line("x [5] y"), None);
        assert_eq!(printk_line("x [inf] y"), None);
        let console = Console {
            lines: vec!["vminit: timings: init_start_us=1500000 app_exec_us=1500800 app_exit_us=1600000 poweroff_us=1601000".into()],
            ..Console::default()
        };
        let (start, exec, off) = vminit_timings(&console).unwrap();
        assert_eq!(start, 1500.0);
        assert!((exec - 0.8).abs() < 1e-9 && (off - 1.0).abs() < 1e-9);
        let console = Console {
            lines: vec!["vminit: steps: mounts=812 module:ext4=2400 spawn=90 log=30".into()],
            ..Console::default()
        };
        assert_eq!(
            vminit_steps(&console).unwrap(),
            [
                ("mounts".to_owned(), 0.812),
                ("module:ext4".to_owned(), 2.4),
                ("spawn".to_owned(), 0.09),
                ("log".to_owned(), 0.03)
            ]
        );
        // A kernel line inside it: the rest, on the next line, is joined.
        let joined = Console {
            lines: vec![
                "vminit: steps: mounts=812 log=14[    2.326897] bench: app start".into(),
                "937".into(),
            ],
            ..Console::default()
        };
        assert_eq!(
            vminit_steps(&joined).unwrap()[1],
            ("log".to_owned(), 14.937)
        );
        // Cut short by a kernel line: refused, not read as fewer steps.
        let cut = Console {
            lines: vec!["vminit: steps: mounts=812 modu[    2.326897] bench: app start".into()],
            ..Console::default()
        };
        assert!(vminit_steps(&cut).is_err());
    }
}
