//! The PostgreSQL scenario: Debian's `postgresql-15` as an OCI image, run
//! as its author intends, with nothing around it but vminit:
//! - the image (umoci) has `StopSignal SIGINT`, `User postgres` and its
//!   own `/run/postgresql`, and runs `postgres` itself, no wrapper script;
//! - a fresh ext4 volume at `/data`, given to postgres with
//!   `vminit.mount.v0.owner`;
//! - `initdb` in a set-up step (`vminit-image --setup-step`) when the
//!   volume has no `PG_VERSION`, so on the first boot only;
//! - boot 1: the host writes rows with `psql` through a published port,
//!   leaves a client connected and idle, and presses the power button:
//!   postgres gets SIGINT (its fast shutdown; SIGTERM would wait for the
//!   client), says "database system is shut down", and the VM ends with 0;
//! - the volume is clean (`e2fsck -fn`);
//! - boot 2: no crash recovery, every row there.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use vminit_image::build::Format;

use super::scenarios::{Plan, boot, build_with, check, free_port};
use crate::cmd;
use crate::vm::kit::Kit;
use crate::vm::{disk, qemu};

/// The rows boot 1 writes, one transaction each.
const ROWS: u32 = 100;

/// The image, as a Dockerfile would make it: the root, `/run/postgresql`
/// owned by postgres (as the official image makes it), and the config.
const UMOCI_POSTGRES: &str = r#"set -e
rm -rf "$1" && mkdir -p "$1" && cd "$1"
umoci init --layout layout
umoci new --image layout:pg
umoci unpack --image layout:pg bundle
cp -a "$2"/. bundle/rootfs/
rm -f bundle/rootfs/.vminit-complete
ids=$(awk -F: '$1 == "postgres" { print $3 ":" $4 }' bundle/rootfs/etc/passwd)
mkdir -p bundle/rootfs/run/postgresql
chown "$ids" bundle/rootfs/run/postgresql
chmod 2775 bundle/rootfs/run/postgresql
umoci repack --image layout:pg bundle
umoci config --image layout:pg --config.user=postgres --config.stopsignal=SIGINT \
    --config.cmd=/usr/lib/postgresql/15/bin/postgres --config.cmd=-D --config.cmd=/data/pg \
    --config.cmd=-c --config.cmd=listen_addresses=*
"#;

/// First boot only: a cluster on the volume that the host may reach.
fn initdb_step() -> serde_json::Value {
    json!({
        "argv": ["sh", "-c", "[ -s /data/pg/PG_VERSION ] && exit 0; \
            /usr/lib/postgresql/15/bin/initdb -D /data/pg -U postgres --auth=trust && \
            echo 'host all all 0.0.0.0/0 trust' >> /data/pg/pg_hba.conf"],
        "user": "postgres",
    })
}

pub fn scenario(kit: &Kit) -> Result<(), String> {
    crate::setup::packages(&[("umoci", "umoci"), ("psql", "postgresql-client")])?;
    let root = super::scenarios::cached_debian_root("debian-postgresql", "postgresql-15")?;
    let work = cmd::root().join("target/vm/umoci-postgres");
    if !work.join("layout/index.json").exists() {
        cmd::run(
            Command::new("bash")
                .args(["-c", UMOCI_POSTGRES, "umoci-postgres"])
                .arg(&work)
                .arg(&root),
        )?;
    }
    let built = build_with(
        kit,
        &work,
        &["virtio_net"],
        Format::Ext4,
        vec![initdb_step()],
    )?;
    let volume = cmd::root().join("target/vm/postgres-volume.ext4");
    disk::empty(&volume, 256)?;
    let owner = "vminit.mount.v0.owner=postgres vminit.mount.v0.mode=0700";

    // Boot 1: initdb, rows from the host, an idle client, the power button.
    let port = free_port()?;
    let plan = Plan {
        volumes: vec![volume.clone()],
        ports: vec![(port, 5432)],
        extra: owner.into(),
        beside: Some(Box::new(move |qmp: &Path| write_then_stop(port, qmp))),
        cue: "set-up step 1",
        ..Plan::default()
    };
    let console = boot(kit, &built, plan)?;
    check(
        &console,
        0,
        &[
            "volume v0: /data is owned by",
            "set-up step 1",
            "power button pressed: sending SIGINT",
            "received fast shutdown request",
            "database system is shut down",
            &format!("host saw: rows={ROWS} idle_clients=1"),
        ],
    )?;
    show("boot 1", &console);
    disk::check(&volume)?;

    // Boot 2: no recovery, every row.
    let port = free_port()?;
    let plan = Plan {
        volumes: vec![volume.clone()],
        ports: vec![(port, 5432)],
        extra: owner.into(),
        beside: Some(Box::new(move |qmp: &Path| {
            let count = psql(port, "select count(*) from t", Duration::from_secs(240))?;
            qemu::qmp(qmp, qemu::POWER_BUTTON)?;
            Ok(format!("count={count}"))
        })),
        cue: "set-up step 1",
        ..Plan::default()
    };
    let console = boot(kit, &built, plan)?;
    check(
        &console,
        0,
        &[
            "database system was shut down at",
            "database system is shut down",
            &format!("host saw: count={ROWS}"),
        ],
    )?;
    show("boot 2", &console);
    if console.has("database system was interrupted") || console.has("redo starts") {
        return Err(format!(
            "the second boot recovered from a crash\n--- console ---\n{}",
            console.text()
        ));
    }
    disk::check(&volume)
}

/// Prints what the boot said of the volume, the set-up step, the stop
/// and PostgreSQL's state: the scenario's record in the test log.
fn show(boot: &str, console: &qemu::Console) {
    const SAID: &[&str] = &[
        "volume v0",
        "set-up step",
        "power button",
        "database system",
        "shutdown request",
        "exit_code=",
        "host saw",
    ];
    for line in &console.lines {
        if SAID.iter().any(|said| line.contains(said)) {
            println!("postgresql {boot}: {line}");
        }
    }
}

/// Boot 1's host side: a table, `ROWS` rows each committed, a client left
/// connected and idle, the power button; back once QEMU is gone.
fn write_then_stop(port: u16, qmp: &Path) -> Result<String, String> {
    psql(port, "create table t(n integer)", Duration::from_secs(300))?;
    let inserts: String = (0..ROWS)
        .map(|n| format!("insert into t values ({n});\n"))
        .collect();
    psql_script(port, &inserts)?;
    let rows = psql(port, "select count(*) from t", Duration::from_secs(30))?;
    // Connected, and silent: SIGTERM's smart shutdown would wait for it.
    let mut idle = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            "postgres",
            "-q",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("psql: {e}"))?;
    let others = "select count(*) from pg_stat_activity \
                  where backend_type = 'client backend' and pid <> pg_backend_pid()";
    let start = Instant::now();
    let idle_clients = loop {
        let n = psql(port, others, Duration::from_secs(30))?;
        if n != "0" || start.elapsed() > Duration::from_secs(30) {
            break n;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    qemu::qmp(qmp, qemu::POWER_BUTTON)?;
    // The client stays until QEMU has gone (its QMP socket with it).
    let start = Instant::now();
    while qmp.exists() && start.elapsed() < Duration::from_secs(240) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = idle.kill();
    let _ = idle.wait();
    Ok(format!("rows={rows} idle_clients={idle_clients}"))
}

fn psql_command(port: u16) -> Command {
    let mut command = Command::new("psql");
    command.args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"]);
    command.args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1"]);
    command
}

/// One statement's output, retried while the server is not up yet.
fn psql(port: u16, sql: &str, patience: Duration) -> Result<String, String> {
    let start = Instant::now();
    loop {
        let output = psql_command(port)
            .args(["-c", sql])
            .output()
            .map_err(|e| format!("psql: {e}"))?;
        if output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned());
        }
        if start.elapsed() > patience {
            return Err(format!(
                "psql -c {sql:?}: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Statements from standard input, each its own transaction.
fn psql_script(port: u16, script: &str) -> Result<(), String> {
    let mut child = psql_command(port)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("psql: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| format!("psql: {e}"))?;
    }
    let status = child.wait().map_err(|e| format!("psql: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("psql of the inserts: {status}"))
    }
}
