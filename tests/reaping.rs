//! Reaping: orphaned zombies are collected while the app runs (as PID 1 and
//! as a subreaper), many children exiting at once never hide the app's
//! status, and whatever is left when the app ends is stopped.

mod common;

use std::time::Duration;

use common::{alive, run, vminit, vminit_pid1};

/// Makes `count` orphans that exit `life` seconds later; once they are
/// orphans, prints how many are vminit's ($PPID) children besides the app
/// itself (`adopted=`); once they have exited, how many zombies are in the
/// namespace, or among vminit's children (`zombies=`).
fn orphan_script(count: u32, life: f64, only_vminit_children: bool) -> String {
    // After the `pid (comm) ` prefix of /proc/PID/stat: $1 state, $2 parent.
    let filter = if only_vminit_children {
        "$2 == ppid &&"
    } else {
        ""
    };
    format!(
        "i=0; while [ $i -lt {count} ]; do sh -c 'sleep {life} &'; i=$((i+1)); done; \
         ppid=$PPID; stats() {{ cat /proc/[0-9]*/stat 2>/dev/null | sed 's/^[0-9]* (.*) //'; }}; \
         stats | awk -v ppid=$ppid '{{ if ($2 == ppid && $1 != \"Z\") n++ }} END {{ print \"adopted=\" n-1 }}'; \
         sleep {life}; sleep 1; \
         stats | awk -v ppid=$ppid '{{ if ({filter} $1 == \"Z\") n++ }} END {{ print \"zombies=\" n+0 }}'"
    )
}

#[test]
fn orphaned_zombies_are_reaped_as_pid1() {
    let result = run(vminit_pid1(&[
        "--",
        "sh",
        "-c",
        &orphan_script(150, 0.2, false),
    ]));
    assert_eq!(result.code(), 0, "{result:#?}");
    assert!(result.stdout.ends_with("zombies=0\n"), "{result:#?}");
}

#[test]
fn orphaned_zombies_are_reaped_as_a_subreaper() {
    // The orphans must have come to vminit (a subreaper) and been reaped
    // there: without the first check, orphans reparented elsewhere would
    // pass the second.
    let result = run(vminit(&["--", "sh", "-c", &orphan_script(40, 3.0, true)]));
    assert_eq!(result.code(), 0, "{result:#?}");
    assert_eq!(result.stdout, "adopted=40\nzombies=0\n", "{result:#?}");
}

#[test]
fn the_orphan_check_sees_zombies_when_nobody_reaps() {
    // The same script under a PID 1 that never reaps (perl forks it and
    // sleeps) reports zombies: the check above can fail.
    let mut command = common::pid1_namespace();
    command
        .args([
            "perl",
            "-e",
            "if (!fork) { exec 'sh', '-c', $ARGV[0] } sleep 3",
        ])
        .arg(orphan_script(20, 0.2, false));
    let result = run(command);
    assert!(result.stdout.ends_with("zombies=20\n"), "{result:#?}");
}

#[test]
fn many_children_exiting_at_once_never_hide_the_apps_status() {
    // catatonit #4: SIGCHLDs coalesce, the app is reaped inside the loop
    // without being recognised, and init hangs. Repeat to shake out races.
    let script =
        "i=0; while [ $i -lt 200 ]; do (sleep 0.3; exit 1) & i=$((i+1)); done; sleep 0.3; exit 7";
    for _ in 0..3 {
        assert_eq!(run(vminit_pid1(&["--", "sh", "-c", script])).code(), 7);
        assert_eq!(run(vminit(&["--", "sh", "-c", script])).code(), 7);
    }
}

#[test]
fn leftovers_are_stopped_when_the_app_exits() {
    // A polite background process, one that ignores SIGTERM, one that left
    // the group with setsid, and a stopped one: all gone after the app ends,
    // the ignoring one within the grace period.
    let script = "sleep 60 & echo $!; \
        sh -c 'trap \"\" TERM; exec sleep 61' & echo $!; \
        setsid sleep 62 & echo $!; \
        sleep 63 & kill -STOP $!; echo $!; \
        sleep 0.2; exit 3";
    let result = run(vminit(&["--grace", "1", "--", "sh", "-c", script]));
    assert_eq!(result.code(), 3, "{result:#?}");
    let pids: Vec<i32> = result
        .stdout
        .split_whitespace()
        .map(|w| w.parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 4, "{result:#?}");
    for pid in pids {
        assert!(!alive(pid), "{pid} survived vminit");
    }
    // As PID 1 the namespace dies with vminit anyway; check vminit exits with
    // the app's status instead of waiting for the 60 s sleeps.
    let result = run(vminit_pid1(&["--grace", "1", "--", "sh", "-c", script]));
    assert_eq!(result.code(), 3, "{result:#?}");
    assert!(
        result.elapsed < Duration::from_secs(50),
        "hang guard: {result:#?}"
    );
}

#[test]
fn a_busy_namespace_is_reaped_down_to_pid1() {
    // After the app exits, kill(-1)'s SIGTERM reaches everything in the
    // namespace: with an hour's grace, only that ends the sleeps before
    // the hang guard. The exit status is still the app's.
    let script = "for i in 1 2 3 4 5; do (sleep 100 &) ; done; exit 0";
    let result = run(vminit_pid1(&["--grace", "3600", "--", "sh", "-c", script]));
    assert_eq!(result.code(), 0, "{result:#?}");
}
