//! Disks and volumes: the switch to a root disk, overlays on it, volumes,
//! and their state after the VM (a clean ext4 after Ctrl-Alt-Del, a writer
//! killed); and the root disk's own files. Disks that fail, hang or fill
//! are in [`super::faults`].

use super::checks::{expect, line, refused_before_the_app, require};
use super::{Act, Case, Device, Image};
use crate::vm::qemu;

/// The root disk's own files, besides busybox.
pub(super) const ROOT_FILES: &[(&str, &[u8], u32)] = &[
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
pub(super) fn image_run(tree: &std::path::Path) -> std::io::Result<()> {
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

/// The modules a root or volume on a virtio disk needs on Debian's kernel
/// (crc32c: ext4's soft dependency, which no modprobe resolves here).
const DISK_MODULES: &str = "vminit.modules=virtio_mmio,virtio_blk,crc32c_generic,ext4";

/// The root switch, overlays and volumes, and their state after the VM.
pub(super) fn cases() -> Vec<Case> {
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
            after: &[],
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
            after: &[],
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
            after: &[],
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
            after: &[],
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
            after: &[("writing", Act::Qmp(qemu::CTRL_ALT_DEL))],
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
            name: "a_writer_killed_after_the_grace_period_leaves_the_volume_clean",
            image: Image::Normal,
            cmdline: line(format!(
                "{DISK_MODULES} vminit.root=/dev/vda vminit.mount.data=/dev/vdb,/data,ext4 \
                 vminit.grace=1 -- /bin/sh -c \"(trap '' TERM; exec /writer.sh) & sleep 2; exit 3\""
            )),
            after: &[],
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
