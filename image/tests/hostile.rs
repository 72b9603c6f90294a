//! `vminit-image build` against hostile images, through its binary, under
//! a 1 GiB address-space limit (`prlimit --as`) and a guard against hangs:
//! - zeros after a layer's tar end are read in chunks, never whole;
//! - blobs that are links, FIFOs or devices are refused, in layouts and in
//!   archives, without a word about where a link leads;
//! - a sparse entry stays sparse, and the layers are held to a bound;
//! - the staging tree is private while a root build runs, and a failed or
//!   stopped build leaves nothing behind.

mod common;

use std::io::Write;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::guarded::{GUARD, assert_nothing_left, assert_refused, build, command, wait_guarded};
use common::{hex, layer, oci, stderr, tempdir};

const ZSTD_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
const TAR_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
use serde_json::json;

/// A small good layer, its blob and its DiffID.
fn small_layer() -> (Vec<u8>, String) {
    let tar = layer(&[("app", "#!/bin/sh\n", 'f')]);
    let diff_id = format!("sha256:{}", hex(&tar));
    (tar, diff_id)
}

/// A tar archive of `entries`: (name, kind, data).
fn archive(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, kind, data) in entries {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(*kind);
        header.set_mode(0o644);
        header.set_mtime(0);
        if *kind == tar::EntryType::Symlink {
            header.set_size(0);
            builder
                .append_link(&mut header, name, std::str::from_utf8(data).unwrap())
                .unwrap();
        } else {
            header.set_size(data.len() as u64);
            builder.append_data(&mut header, name, *data).unwrap();
        }
    }
    builder.into_inner().unwrap()
}

/// A docker-archive of one image with these layer files (archive names);
/// `extra` entries come first.
fn docker_archive(
    dir: &Path,
    layers: &[(&str, Vec<u8>)],
    config_name: &str,
    extra: &[(&str, tar::EntryType, &[u8])],
) -> PathBuf {
    let config = json!({"architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|(_, b)| format!("sha256:{}", hex(b))).collect::<Vec<_>>()},
        "config": {"Cmd": ["/app"]}})
    .to_string();
    let names: Vec<&str> = layers.iter().map(|(name, _)| *name).collect();
    let manifest = json!([{"Config": config_name, "Layers": names}]).to_string();
    let mut entries: Vec<(&str, tar::EntryType, &[u8])> = extra.to_vec();
    entries.push((
        "manifest.json",
        tar::EntryType::Regular,
        manifest.as_bytes(),
    ));
    if !extra.iter().any(|(name, ..)| *name == config_name) {
        entries.push((config_name, tar::EntryType::Regular, config.as_bytes()));
    }
    for (name, bytes) in layers {
        entries.push((name, tar::EntryType::Regular, bytes));
    }
    let file = dir.join("image.tar");
    std::fs::write(&file, archive(&entries)).unwrap();
    file
}

/// `total` bytes of zeros as zstd frames of 1 MiB each: one frame
/// compressed once and repeated, so a bomb costs the test nothing.
fn zstd_zeros(total: u64) -> Vec<u8> {
    let frame = ruzstd::encoding::compress_to_vec(
        &vec![0u8; 1 << 20][..],
        ruzstd::encoding::CompressionLevel::Fastest,
    );
    let mut out = Vec::new();
    for _ in 0..total >> 20 {
        out.extend_from_slice(&frame);
    }
    out
}

fn zstd(bytes: &[u8]) -> Vec<u8> {
    ruzstd::encoding::compress_to_vec(bytes, ruzstd::encoding::CompressionLevel::Fastest)
}

/// A numeric tar header field: octal when it fits, else GNU base-256.
fn numeric(field: &mut [u8], value: u64) {
    let octal = format!("{value:0width$o}", width = field.len() - 1);
    if octal.len() < field.len() {
        field[..octal.len()].copy_from_slice(octal.as_bytes());
        field[octal.len()] = 0;
    } else {
        field.fill(0);
        field[0] = 0x80;
        let bytes = value.to_be_bytes();
        let n = field.len();
        field[n - 8..].copy_from_slice(&bytes);
    }
}

/// A layer with one GNU sparse file, `big`: 512 bytes of data at `offset`.
fn sparse_layer(offset: u64) -> Vec<u8> {
    let mut header = tar::Header::new_gnu();
    header.set_path("big").unwrap();
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::GNUSparse);
    header.set_size(512);
    let gnu = header.as_gnu_mut().unwrap();
    numeric(&mut gnu.sparse[0].offset, offset);
    numeric(&mut gnu.sparse[0].numbytes, 512);
    numeric(&mut gnu.realsize, offset + 512);
    header.set_cksum();
    let mut builder = tar::Builder::new(Vec::new());
    builder.append(&header, &[7u8; 512][..]).unwrap();
    builder.into_inner().unwrap()
}

/// A zstd layer of `files` files of 32 MiB of zeros each (their headers
/// and data compressed frame by frame), then the tar's end.
fn zstd_bomb(files: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for index in 0..files {
        let mut header = tar::Header::new_gnu();
        header.set_path(format!("zeros{index}")).unwrap();
        header.set_mode(0o644);
        header.set_size(32 << 20);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        out.extend(zstd(header.as_bytes()));
        out.extend(zstd_zeros(32 << 20));
    }
    out.extend(zstd(&[0u8; 1024]));
    out
}

#[test]
fn zeros_after_a_layers_end_are_read_in_chunks_not_whole() {
    // 2 GiB of zeros after the tar's end, in a 100 KB zstd layer.
    let dir = tempdir("trailing-zeros");
    let (tar, _) = small_layer();
    let mut blob = zstd(&tar);
    blob.extend(zstd_zeros(2 << 30));
    let file = docker_archive(&dir, &[("layer.tar.zst", blob)], "config.json", &[]);
    let out = dir.join("out");
    let result = build(&format!("docker-archive:{}", file.display()), &out, &[]);
    assert_refused(
        &result,
        "more than 1 MiB of zeros after the end of its tar archive",
    );
    assert_nothing_left(&out);
}

/// A GNU long-name header that says the next entry's name is `size`
/// bytes long.
fn long_name_header(size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"././@LongLink");
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::GNULongName);
    header.set_size(size);
    header.set_cksum();
    header
}

#[test]
fn a_giant_long_name_is_refused_not_held() {
    // In a layer: a 2 GiB name of zeros, in a zstd layer of 100 KB.
    let mut blob = zstd(long_name_header(2 << 30).as_bytes());
    blob.extend(zstd_zeros(2 << 30));
    let (dir, ..) = oci(
        "long-name-layer",
        &[(ZSTD_LAYER, blob)],
        &[format!("sha256:{}", "0".repeat(64))],
    );
    let out = dir.with_file_name("out");
    let result = build(&format!("oci:{}", dir.display()), &out, &[]);
    assert_refused(
        &result,
        "headers (long names, PAX records) take more than 1 MiB",
    );
    assert_nothing_left(&out);
    // In a docker-archive: the same header first, its 2 GiB a hole in a
    // sparse file.
    let dir = tempdir("long-name-archive");
    let file = dir.join("image.tar");
    let mut archive = std::fs::File::create(&file).unwrap();
    archive
        .write_all(long_name_header(2 << 30).as_bytes())
        .unwrap();
    archive.set_len(512 + (2 << 30) + 1024).unwrap();
    drop(archive);
    let result = build(
        &format!("docker-archive:{}", file.display()),
        &dir.join("out"),
        &[],
    );
    assert_refused(
        &result,
        "headers (long names, PAX records) take more than 1 MiB",
    );
    assert_nothing_left(&dir.join("out"));
}

#[test]
fn blobs_that_are_not_regular_files_are_refused() {
    let (tar, diff_id) = small_layer();
    let diff_ids = [diff_id];
    let layers = [(TAR_LAYER, tar.clone())];
    let run = |dir: &Path| {
        build(
            &format!("oci:{}", dir.display()),
            &dir.with_file_name("out"),
            &[],
        )
    };
    // A config linked to /dev/zero grew without end.
    let (dir, config, _) = oci("config-zero", &layers, &diff_ids);
    std::fs::remove_file(&config).unwrap();
    symlink("/dev/zero", &config).unwrap();
    assert_refused(&run(&dir), "is a symbolic link");
    // A layer linked to /dev/zero hung.
    let (dir, _, layer_paths) = oci("layer-zero", &layers, &diff_ids);
    std::fs::remove_file(&layer_paths[0]).unwrap();
    symlink("/dev/zero", &layer_paths[0]).unwrap();
    assert_refused(&run(&dir), "is a symbolic link");
    // A config linked to a host file of the right size printed its digest.
    let (dir, config, _) = oci("config-host-file", &layers, &diff_ids);
    let secret = dir.with_file_name("secret");
    let length = std::fs::metadata(&config).unwrap().len() as usize;
    std::fs::write(&secret, "s".repeat(length)).unwrap();
    std::fs::remove_file(&config).unwrap();
    symlink(&secret, &config).unwrap();
    let result = run(&dir);
    assert_refused(&result, "is a symbolic link");
    let text = stderr(&result);
    assert!(
        !text.contains(&hex("s".repeat(length).as_bytes())),
        "{text}"
    );
    assert!(!text.contains(&secret.display().to_string()), "{text}");
    // A layer that is a FIFO hung.
    let (dir, _, layer_paths) = oci("layer-fifo", &layers, &diff_ids);
    std::fs::remove_file(&layer_paths[0]).unwrap();
    assert!(
        Command::new("mkfifo")
            .arg(&layer_paths[0])
            .status()
            .unwrap()
            .success()
    );
    assert_refused(&run(&dir), "is a FIFO");
    // The blobs directory a link: nothing below it is followed.
    let (dir, ..) = oci("blobs-linked", &layers, &diff_ids);
    let elsewhere = dir.with_file_name("elsewhere");
    std::fs::rename(dir.join("blobs"), &elsewhere).unwrap();
    symlink(&elsewhere, dir.join("blobs")).unwrap();
    assert_refused(&run(&dir), "is a symbolic link");
}

#[test]
fn archive_entries_that_are_not_regular_files_are_refused() {
    let (tar, diff_id) = small_layer();
    // An oci-archive whose layer blob is a link to /dev/zero.
    let (layout, _, layer_paths) = oci(
        "archive-layer-link",
        &[(TAR_LAYER, tar.clone())],
        &[diff_id],
    );
    std::fs::remove_file(&layer_paths[0]).unwrap();
    symlink("/dev/zero", &layer_paths[0]).unwrap();
    let file = layout.with_file_name("image.tar");
    assert!(
        Command::new("tar")
            .arg("-C")
            .arg(&layout)
            .arg("-cf")
            .arg(&file)
            .arg(".")
            .status()
            .unwrap()
            .success()
    );
    let out = layout.with_file_name("out");
    let result = build(&format!("oci-archive:{}", file.display()), &out, &[]);
    assert_refused(&result, "is a symbolic link that leads out of the archive");
    assert_nothing_left(&out);
    // A docker-archive whose config is a FIFO.
    let dir = tempdir("docker-config-fifo");
    let file = docker_archive(
        &dir,
        &[("layer.tar", tar)],
        "config.json",
        &[("config.json", tar::EntryType::Fifo, b"")],
    );
    let result = build(
        &format!("docker-archive:{}", file.display()),
        &dir.join("out"),
        &[],
    );
    assert_refused(&result, "config.json is a FIFO in the archive");
}

#[test]
fn a_sparse_entry_stays_sparse_and_one_past_the_bound_is_refused() {
    // 512 bytes at 3 GiB: the file is 3 GiB long, the disk small.
    let tar = sparse_layer(3 << 30);
    let diff_id = format!("sha256:{}", hex(&tar));
    let (dir, ..) = oci("sparse", &[(TAR_LAYER, tar)], &[diff_id]);
    let out = dir.with_file_name("out");
    let result = build(&format!("oci:{}", dir.display()), &out, &[]);
    assert!(result.status.success(), "{}", stderr(&result));
    let disk = std::fs::metadata(out.join("rootfs.ext4")).unwrap();
    assert!(disk.len() < 256 << 20, "the disk is {} bytes", disk.len());
    use std::os::unix::fs::MetadataExt;
    assert!(
        disk.blocks() * 512 < 64 << 20,
        "the disk takes {} bytes",
        disk.blocks() * 512
    );
    let stat = Command::new("debugfs")
        .arg("-R")
        .arg("stat /big")
        .arg(out.join("rootfs.ext4"))
        .output()
        .unwrap();
    let stat = String::from_utf8_lossy(&stat.stdout);
    assert!(
        stat.contains(&format!("Size: {}", (3u64 << 30) + 512)),
        "{stat}"
    );
    // A hole of 1 PiB is longer than any ext4 file: refused before any write.
    let tar = sparse_layer(1 << 50);
    let diff_id = format!("sha256:{}", hex(&tar));
    let (dir, ..) = oci("sparse-huge", &[(TAR_LAYER, tar)], &[diff_id]);
    let out = dir.with_file_name("out");
    let result = build(&format!("oci:{}", dir.display()), &out, &[]);
    assert_refused(
        &result,
        "bytes long with its holes, more than the 16 TiB an ext4 file can be",
    );
    assert_nothing_left(&out);
}

#[test]
fn a_compression_bomb_stops_at_the_bound() {
    // 8 GiB of zeros in 256 files, in a layer of a few hundred KB.
    let blob = zstd_bomb(256);
    assert!(blob.len() < 4 << 20, "{}", blob.len());
    let diff_id = format!("sha256:{}", "0".repeat(64));
    let (dir, ..) = oci("bomb", &[(ZSTD_LAYER, blob)], &[diff_id]);
    let source = format!("oci:{}", dir.display());
    let out = dir.with_file_name("out");
    for (extra, bound) in [
        (&["--max-size", "96M"][..], "96 MiB"),
        (&["--size", "64M"][..], "64 MiB"),
        (&["--size", "64M", "--max-size", "128M"][..], "128 MiB"),
        // The default: ten times the compressed layers, at least 1 GiB.
        (&[][..], "1024 MiB"),
    ] {
        let result = build(&source, &out, extra);
        assert_refused(&result, &format!("The layers unpack to more than {bound}"));
        assert_nothing_left(&out);
    }
}

#[test]
fn a_failed_build_leaves_nothing_for_reuse_to_keep() {
    let (tar, diff_id) = small_layer();
    let (good, ..) = oci("reuse-good", &[(TAR_LAYER, tar)], &[diff_id]);
    let out = good.with_file_name("out");
    let good = format!("oci:{}", good.display());
    let first = build(&good, &out, &["--reuse", "--size", "64"]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(out.join(".rootfs-key").exists());
    // A bomb built into the same place fails, and takes the old disk with it.
    let blob = zstd_bomb(8);
    let (bomb, ..) = oci(
        "reuse-bomb",
        &[(ZSTD_LAYER, blob)],
        &[format!("sha256:{}", "0".repeat(64))],
    );
    let result = build(
        &format!("oci:{}", bomb.display()),
        &out,
        &["--reuse", "--size", "64"],
    );
    assert_refused(&result, "The layers unpack to more than 64 MiB");
    assert_nothing_left(&out);
    let again = build(&good, &out, &["--reuse", "--size", "64"]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(!String::from_utf8_lossy(&again.stdout).contains("kept"));
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Starts a build whose `--vminit` is a FIFO: it blocks once the root
/// disk is made, before the staging tree is removed, until the FIFO is
/// written. Returns the child once it got there.
fn build_held(
    name: &str,
    layers: &[(&str, Vec<u8>)],
    diff_ids: &[String],
) -> (Child, PathBuf, PathBuf) {
    let (dir, ..) = oci(name, layers, diff_ids);
    let out = dir.with_file_name("out");
    let fifo = dir.with_file_name("vminit-fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let child = Command::new(env!("CARGO_BIN_EXE_vminit-image"))
        .args(["build", &format!("oci:{}", dir.display()), "--output"])
        .arg(&out)
        .arg("--vminit")
        .arg(&fifo)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !out.join("metadata.json").exists() {
        assert!(
            start.elapsed() < GUARD,
            "the build never got to its metadata"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, out, fifo)
}

/// Where a file named `name` is below `dir` (as root, who sees it all).
fn find(dir: &Path, name: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if entry.file_name() == name {
            return Some(path);
        }
        if entry.file_type().ok()?.is_dir()
            && let Some(found) = find(&path, name)
        {
            return Some(found);
        }
    }
    None
}

#[test]
fn the_staging_tree_is_private_while_a_root_build_runs() {
    if !is_root() {
        eprintln!("skipped: a root build (device nodes, setuid files) needs root");
        return;
    }
    // A 0666 device (/dev/zero's numbers) and a setuid-root copy of id(1).
    let id = std::fs::read("/usr/bin/id").unwrap();
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Char);
    header.set_mode(0o666);
    header.set_device_major(1).unwrap();
    header.set_device_minor(5).unwrap();
    header.set_size(0);
    builder
        .append_data(&mut header, "open-device", &[][..])
        .unwrap();
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o4755);
    header.set_size(id.len() as u64);
    builder
        .append_data(&mut header, "setuid-id", id.as_slice())
        .unwrap();
    let tar = builder.into_inner().unwrap();
    let diff_id = format!("sha256:{}", hex(&tar));
    let (child, out, fifo) = build_held("private", &[(TAR_LAYER, tar)], &[diff_id]);
    let staged = out.join(".rootfs");
    let mode = std::fs::metadata(&staged).unwrap().permissions().mode();
    let device = find(&staged, "open-device").expect("the device is staged");
    let setuid = find(&staged, "setuid-id").expect("the setuid file is staged");
    // Through a shell already running as nobody: setpriv itself finds
    // its command before it drops root.
    let as_nobody = |script: &str, path: &Path| {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .args(["sh", "-c", script])
            .arg(path)
            .output()
            .unwrap()
    };
    let opened = as_nobody("head -c1 \"$0\" >/dev/null", &device);
    let ran = as_nobody("\"$0\" -u", &setuid);
    // Let the build finish before asserting, so it never outlives the test.
    std::fs::write(&fifo, std::fs::read(common::static_vminit()).unwrap()).unwrap();
    let result = wait_guarded(child);
    assert!(result.status.success(), "{}", stderr(&result));
    assert_eq!(mode & 0o077, 0, "{} is {mode:o}", staged.display());
    assert!(
        !opened.status.success(),
        "another user opened the image's device"
    );
    assert!(
        !ran.status.success(),
        "another user ran the image's setuid file: {}",
        String::from_utf8_lossy(&ran.stdout)
    );
    // Gone once the disk is made; the disk's root is the image's, not 0700.
    assert!(!staged.exists());
    let stat = Command::new("debugfs")
        .arg("-R")
        .arg("stat /")
        .arg(out.join("rootfs.ext4"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&stat.stdout).contains("Mode:  0755"));
}

#[test]
fn a_build_stopped_by_sigterm_or_sigint_removes_what_it_made() {
    let (tar, diff_id) = small_layer();
    for (signal, status) in [("TERM", 143), ("INT", 130)] {
        let (child, out, _fifo) = build_held(
            &format!("stopped-{signal}"),
            &[(TAR_LAYER, tar.clone())],
            std::slice::from_ref(&diff_id),
        );
        assert!(
            Command::new("kill")
                .arg(format!("-{signal}"))
                .arg(child.id().to_string())
                .status()
                .unwrap()
                .success()
        );
        let result = wait_guarded(child);
        assert_eq!(result.status.code(), Some(status), "{}", stderr(&result));
        assert!(
            stderr(&result).contains(&format!("stopped by SIG{signal}")),
            "{}",
            stderr(&result)
        );
        assert_nothing_left(&out);
    }
    // Stopped while unpacking a bomb: the read ends at once.
    let blob = zstd_bomb(256);
    let (dir, ..) = oci(
        "stopped-unpacking",
        &[(ZSTD_LAYER, blob)],
        &[format!("sha256:{}", "0".repeat(64))],
    );
    let out = dir.with_file_name("out");
    let mut child = command(
        &format!("oci:{}", dir.display()),
        &out,
        &["--max-size", "8G"],
    )
    .spawn()
    .unwrap();
    let start = Instant::now();
    while find(&out, "zeros1").is_none() {
        assert!(start.elapsed() < GUARD, "never unpacked");
        assert!(child.try_wait().unwrap().is_none(), "ended early");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let result = wait_guarded(child);
    assert_eq!(result.status.code(), Some(130), "{}", stderr(&result));
    assert_nothing_left(&out);
}

/// A plain layer of `count` empty files in `dir/`, named `prefix-N`.
fn many_files(dir: &str, count: usize) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for index in 0..count {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        header.set_size(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, format!("{dir}/f{index}"), &[][..])
            .unwrap();
    }
    builder.into_inner().unwrap()
}

#[test]
fn entries_are_bounded_by_count_per_directory_and_path_length() {
    let no_diff_id = [format!("sha256:{}", "0".repeat(64))];
    // Each entry costs 4 KiB against the bound, however small.
    let (dir, ..) = oci(
        "entries-cost",
        &[(TAR_LAYER, many_files("d", 4000))],
        &no_diff_id,
    );
    let out = dir.with_file_name("out");
    let result = build(
        &format!("oci:{}", dir.display()),
        &out,
        &["--max-size", "8M"],
    );
    assert_refused(
        &result,
        "The layers unpack to more than 8 MiB (their data, and 4 KiB an entry)",
    );
    assert_nothing_left(&out);
    // One directory holds at most 32768 (mkfs.ext4 is quadratic in it).
    let blob = zstd(&many_files("crowded", 32_769));
    let (dir, ..) = oci("crowded", &[(ZSTD_LAYER, blob)], &no_diff_id);
    let out = dir.with_file_name("out");
    let result = build(&format!("oci:{}", dir.display()), &out, &[]);
    assert_refused(&result, "its directory would hold more than 32768 entries");
    assert_nothing_left(&out);
    // A path of 100k components (resolved in quadratic time before) or
    // past PATH_MAX is refused at once, and shown cut to one line.
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_mode(0o644);
    header.set_size(0);
    header.set_entry_type(tar::EntryType::Regular);
    let long = format!("{}\nf", "a/".repeat(100_000));
    builder.append_data(&mut header, &long, &[][..]).unwrap();
    let (dir, ..) = oci(
        "long-path",
        &[(TAR_LAYER, builder.into_inner().unwrap())],
        &no_diff_id,
    );
    let started = Instant::now();
    let result = build(
        &format!("oci:{}", dir.display()),
        &dir.with_file_name("out"),
        &[],
    );
    assert_refused(&result, "its path or link target is longer than 4096 bytes");
    assert!(stderr(&result).len() < 1024, "{}", stderr(&result));
    assert!(started.elapsed() < GUARD);
}

#[test]
fn a_build_by_another_user_removes_read_only_directories_too() {
    if !is_root() {
        eprintln!("skipped: needs root to run the build as another user");
        return;
    }
    // A directory made 0555 after a file went in: a build that is not root
    // cannot empty it without making it writable again.
    let mut builder = tar::Builder::new(Vec::new());
    for (path, kind, mode) in [
        ("ro/", tar::EntryType::Directory, 0o755),
        ("ro/file", tar::EntryType::Regular, 0o644),
        ("ro/", tar::EntryType::Directory, 0o555),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_mode(mode);
        header.set_size(0);
        header.set_entry_type(kind);
        builder.append_data(&mut header, path, &[][..]).unwrap();
    }
    let tar = builder.into_inner().unwrap();
    let diff_id = format!("sha256:{}", hex(&tar));
    let (dir, ..) = oci("read-only-dirs", &[(TAR_LAYER, tar)], &[diff_id]);
    let work = dir.parent().unwrap();
    let out = work.join("out");
    std::fs::create_dir_all(&out).unwrap();
    for path in [work, out.as_path()] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    // A copy of the binary the other user can reach, wherever the
    // checkout is (a `mktemp -d` one is 0700).
    let binary = work.join("vminit-image");
    std::fs::copy(env!("CARGO_BIN_EXE_vminit-image"), &binary).unwrap();
    std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).unwrap();
    let vminit = work.join("vminit");
    std::fs::copy(common::static_vminit(), &vminit).unwrap();
    std::fs::set_permissions(&vminit, std::fs::Permissions::from_mode(0o755)).unwrap();
    let as_nobody = || {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .args(["sh", "-c", "exec \"$@\"", "sh"])
            .arg(&binary)
            .args(["build", &format!("oci:{}", dir.display()), "--output"])
            .arg(&out)
            .arg("--vminit")
            .arg(&vminit)
            .output()
            .unwrap()
    };
    for attempt in ["first", "second"] {
        let result = as_nobody();
        assert!(result.status.success(), "{attempt}: {}", stderr(&result));
        assert!(!out.join(".rootfs").exists(), "{attempt}: staging left");
    }
}
