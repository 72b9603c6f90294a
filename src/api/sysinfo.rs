//! `GET /v1/sysinfo`: memory, load, uptime, filesystems and the app's
//! use, read from `/proc` (proc(5)) and statvfs(3). The parsers are plain
//! functions over the files' text.

use serde_json::{Map, Value, json};

use crate::sys::mount;

/// `/proc/PID/stat` counts CPU time in these (`USER_HZ`, 100 on every
/// Linux architecture, whatever the kernel's own tick).
const TICKS_PER_SECOND: f64 = 100.0;

/// Filesystems with no space of their own to report.
const PSEUDO: &[&str] = &[
    "proc",
    "sysfs",
    "devpts",
    "cgroup",
    "cgroup2",
    "mqueue",
    "debugfs",
    "tracefs",
    "securityfs",
    "pstore",
    "bpf",
    "configfs",
    "fusectl",
    "hugetlbfs",
    "autofs",
    "binfmt_misc",
    "efivarfs",
];

/// Everything, for `app_pid` when it still runs.
pub fn gather(app_pid: Option<i32>) -> Value {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let uptime = read("/proc/uptime");
    let app = app_pid
        .and_then(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
            app_use(&stat, &statm)
        })
        .unwrap_or(Value::Null);
    json!({
        "memory": meminfo(&read("/proc/meminfo")),
        "load": loadavg(&read("/proc/loadavg")),
        // Whole seconds: the digits before the point.
        "uptime_s": uptime.split('.').next().and_then(|s| s.parse::<u64>().ok()).unwrap_or(0),
        "mounts": mounts(&read("/proc/self/mountinfo")),
        "app": app,
    })
}

/// `/proc/meminfo` in bytes (`kB` figures times 1024; counts as they are).
pub fn meminfo(text: &str) -> Value {
    let mut memory = Map::new();
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let mut words = rest.split_whitespace();
        let Some(number) = words.next().and_then(|n| n.parse::<u64>().ok()) else {
            continue;
        };
        let value = match words.next() {
            Some("kB") => number.saturating_mul(1024),
            _ => number,
        };
        memory.insert(key.to_owned(), value.into());
    }
    Value::Object(memory)
}

/// The three load averages of `/proc/loadavg`.
pub fn loadavg(text: &str) -> Value {
    let loads: Vec<f64> = text
        .split_whitespace()
        .take(3)
        // serde_json's number parser, not core's (14 KB of tables more).
        .filter_map(|n| serde_json::from_slice::<Value>(n.as_bytes()).ok()?.as_f64())
        .collect();
    json!(loads)
}

/// Each real filesystem's size and use, by mount point.
fn mounts(mountinfo: &str) -> Value {
    let mut seen = Vec::new();
    let mut list = Vec::new();
    for (target, kind) in mount_points(mountinfo) {
        if PSEUDO.contains(&kind.as_str()) || seen.contains(&target) {
            continue;
        }
        let Some(space) = mount::space(&target) else {
            continue;
        };
        if space.total == 0 {
            continue;
        }
        list.push(json!({
            "target": target,
            "fstype": kind,
            "size": space.total,
            "used": space.total.saturating_sub(space.free),
            "available": space.available,
        }));
        seen.push(target);
    }
    Value::Array(list)
}

/// Each mount's point and type, from `/proc/self/mountinfo` (its point
/// octal-escaped, as the kernel writes spaces and the like).
pub fn mount_points(mountinfo: &str) -> Vec<(String, String)> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let target = mount::unescape_octal(fields.get(4)?);
            let separator = fields.iter().position(|f| *f == "-")?;
            let kind = fields.get(separator + 1)?;
            Some((target, (*kind).to_owned()))
        })
        .collect()
}

/// The app's resident memory (`statm`, in pages) and CPU time (`stat`:
/// its own and its reaped children's).
pub fn app_use(stat: &str, statm: &str) -> Option<Value> {
    // The command may hold spaces and parentheses: fields start after
    // the last `)`, with field 3 (state) first.
    let fields: Vec<&str> = stat
        .get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .collect();
    let ticks: u64 = fields
        .get(11..15)?
        .iter()
        .filter_map(|t| t.parse::<u64>().ok())
        .sum();
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(json!({
        "rss": pages.saturating_mul(mount::page_size()),
        "cpu_s": ticks as f64 / TICKS_PER_SECOND,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_are_read_as_bytes_and_numbers() {
        let memory = meminfo("MemTotal:  1000 kB\nMemAvailable: 10 kB\nHugePages_Total: 3\nbad\n");
        assert_eq!(
            memory,
            json!({"MemTotal": 1_024_000, "MemAvailable": 10240, "HugePages_Total": 3})
        );
        assert_eq!(
            loadavg("0.50 1.00 2.25 1/80 123\n"),
            json!([0.5, 1.0, 2.25])
        );
        let info = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
                    23 22 0:5 / /mnt/my\\040disk rw - tmpfs tmpfs rw\n";
        assert_eq!(
            mount_points(info),
            [
                ("/".to_owned(), "ext4".to_owned()),
                ("/mnt/my disk".to_owned(), "tmpfs".to_owned())
            ]
        );
        let stat = "42 (a) b) S 1 42 42 0 -1 4194560 100 0 0 0 150 50 7 3 20 0 1 0 5 100 9";
        let used = app_use(stat, "2000 300 100 1 0 200 0\n").unwrap();
        assert_eq!(used["cpu_s"], json!(2.1));
        assert_eq!(used["rss"], json!(300 * mount::page_size()));
    }
}
