//! `vminit-image build` through its binary, on OCI image layouts and
//! `docker save` archives written here, byte by byte: layers with a
//! whiteout and an opaque directory, a link that points out of the root,
//! and each kind of bad input.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{build, debugfs_cat, hex, layer, layout, oci, stderr, tempdir};
use serde_json::{Value, json};

#[test]
fn an_oci_layout_becomes_a_root_disk_metadata_and_boot_files() {
    let layout = layout(
        "good",
        json!({"Entrypoint": ["/bin/app"], "Cmd": ["--serve"], "Env": ["PORT=8080"], "WorkingDir": "/srv", "User": "1000"}),
    );
    let out = layout.with_file_name("out");
    let result = build(&format!("oci:{}:v1", layout.display()), &out, &[]);
    assert!(result.status.success(), "{}", stderr(&result));
    let rootfs = out.join("rootfs.ext4");
    assert_eq!(debugfs_cat(&rootfs, "/etc/keep"), "keep");
    assert_eq!(debugfs_cat(&rootfs, "/etc/remove-me"), "", "the whiteout");
    assert_eq!(
        debugfs_cat(&rootfs, "/var/cache/old"),
        "",
        "the opaque directory"
    );
    assert_eq!(debugfs_cat(&rootfs, "/var/cache/new"), "new");
    // WorkingDir /srv, which the layers lack, is made as Docker makes it.
    let stat = Command::new("debugfs")
        .arg("-R")
        .arg("stat /srv")
        .arg(&rootfs)
        .output()
        .unwrap();
    let stat = String::from_utf8_lossy(&stat.stdout);
    assert!(stat.contains("Type: directory    Mode:  0755"), "{stat}");
    assert_eq!(debugfs_cat(&rootfs, "/etc/written-through-link"), "inside");
    assert!(!Path::new("/etc/written-through-link").exists());
    let metadata: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metadata.json")).unwrap()).unwrap();
    assert_eq!(
        metadata,
        json!({"argv": ["/bin/app", "--serve"], "env": {"PORT": "8080"}, "working_dir": "/srv",
               "vminit": {"user": "1000"}})
    );
    let cmdline = std::fs::read_to_string(out.join("cmdline")).unwrap();
    assert!(
        cmdline.contains("vminit.root=/dev/vda vminit.root.fstype=ext4 vminit.root.overlay=tmpfs"),
        "{cmdline}"
    );
    let vm: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("vm-config.json")).unwrap())
            .unwrap();
    assert_eq!(
        vm["drives"][0]["path_on_host"],
        rootfs.display().to_string()
    );
    assert!(
        vm["boot-source"]["boot_args"]
            .as_str()
            .unwrap()
            .contains("vminit.shutdown=reboot")
    );
    // The initramfs holds /init and the metadata file.
    let initramfs = std::fs::read(out.join("initramfs.cpio.gz")).unwrap();
    let mut cpio = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(initramfs.as_slice()),
        &mut cpio,
    )
    .unwrap();
    let text = String::from_utf8_lossy(&cpio);
    assert!(text.contains("init\0") && text.contains("etc/vminit/metadata.json\0"));
    // The same image twice gives the same initramfs.
    let again = out.with_file_name("again");
    assert!(
        build(&format!("oci:{}", layout.display()), &again, &[])
            .status
            .success()
    );
    assert_eq!(
        std::fs::read(again.join("initramfs.cpio.gz")).unwrap(),
        initramfs
    );
}

#[test]
fn reuse_keeps_the_root_disk_of_the_same_image_only() {
    let image = layout("reuse", json!({"Cmd": ["/bin/app"]}));
    let source = format!("oci:{}", image.display());
    let out = image.with_file_name("out");
    let kept = |result: Output| {
        assert!(result.status.success(), "{}", stderr(&result));
        String::from_utf8_lossy(&result.stdout).contains("(kept: same image)")
    };
    assert!(
        !kept(build(&source, &out, &["--reuse"])),
        "nothing to keep yet"
    );
    let rootfs = out.join("rootfs.ext4");
    let first = std::fs::metadata(&rootfs).unwrap().modified().unwrap();
    assert!(kept(build(&source, &out, &["--reuse"])));
    assert_eq!(
        std::fs::metadata(&rootfs).unwrap().modified().unwrap(),
        first
    );
    assert!(
        !kept(build(&source, &out, &["--reuse", "--size", "80"])),
        "another size"
    );
    assert!(kept(build(&source, &out, &["--reuse", "--size", "80"])));
    // A disk written to since (a VM booted with vminit.root.rw=1) is rebuilt.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&rootfs)
        .unwrap();
    file.set_len(std::fs::metadata(&rootfs).unwrap().len() + 4096)
        .unwrap();
    drop(file);
    assert!(
        !kept(build(&source, &out, &["--reuse", "--size", "80"])),
        "written to"
    );
    assert!(
        !kept(build(&source, &out, &["--size", "80"])),
        "without --reuse"
    );
    // Another image (its digest) in the same place is built afresh.
    let other = layout("reuse-other", json!({"Cmd": ["/bin/other"]}));
    assert!(!kept(build(
        &format!("oci:{}", other.display()),
        &out,
        &["--reuse", "--size", "80"]
    )));
    assert!(
        !kept(build(
            &format!("dir:{}", image.display()),
            &out,
            &["--reuse", "--size", "80", "--", "/bin/app"]
        )),
        "dir: has no digest"
    );
}

#[test]
fn a_docker_save_archive_builds_too() {
    let dir = tempdir("docker");
    let layer_tar = layer(&[("bin/", "", 'd'), ("bin/app", "x", 'f')]);
    let layer_name = format!("blobs/sha256/{}", hex(&layer_tar));
    let config = json!({"architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{}", hex(&layer_tar))]},
        "config": {"Cmd": ["/bin/app"]}})
    .to_string();
    let config_name = format!("blobs/sha256/{}", hex(config.as_bytes()));
    let manifest = json!([{"Config": config_name, "RepoTags": ["app:1"], "Layers": [layer_name]}]);
    let mut archive = tar::Builder::new(Vec::new());
    for (name, data) in [
        ("manifest.json", manifest.to_string().into_bytes()),
        (config_name.as_str(), config.into_bytes()),
        (layer_name.as_str(), layer_tar),
    ] {
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        archive
            .append_data(&mut header, name, data.as_slice())
            .unwrap();
    }
    let file = dir.join("app.tar");
    std::fs::write(&file, archive.into_inner().unwrap()).unwrap();
    let out = dir.join("out");
    let result = build(&format!("docker-archive:{}", file.display()), &out, &[]);
    assert!(result.status.success(), "{}", stderr(&result));
    assert_eq!(debugfs_cat(&out.join("rootfs.ext4"), "/bin/app"), "x");
}

#[test]
fn a_layer_that_ends_after_its_last_entrys_data_is_applied() {
    // As umoci 0.4.7's `insert` writes it: one header and 49 bytes of data,
    // with neither the padding to 512 nor the end marker (561 bytes).
    let full = layer(&[("etc/motd", &"m".repeat(49), 'f')]);
    for (name, cut) in [("no-padding", 561), ("no-end-marker", 1024)] {
        let blob = full[..cut].to_vec();
        let diff_id = format!("sha256:{}", hex(&blob));
        let (dir, ..) = oci(
            name,
            &[("application/vnd.oci.image.layer.v1.tar", blob)],
            &[diff_id],
        );
        let out = dir.with_file_name("out");
        let result = build(&format!("oci:{}", dir.display()), &out, &[]);
        assert!(result.status.success(), "{name}: {}", stderr(&result));
        assert_eq!(
            debugfs_cat(&out.join("rootfs.ext4"), "/etc/motd"),
            "m".repeat(49)
        );
    }
    // Cut inside the data: refused, naming the entry.
    let blob = full[..540].to_vec();
    let diff_id = format!("sha256:{}", hex(&blob));
    let (dir, ..) = oci(
        "cut",
        &[("application/vnd.oci.image.layer.v1.tar", blob)],
        &[diff_id],
    );
    let result = build(
        &format!("oci:{}", dir.display()),
        &dir.with_file_name("out"),
        &[],
    );
    assert_eq!(result.status.code(), Some(2), "{}", stderr(&result));
    assert!(
        stderr(&result)
            .contains("Layer entry etc/motd is cut short: the layer ends inside its data"),
        "{}",
        stderr(&result)
    );
}

#[test]
fn docker_24s_linked_layers_are_followed_inside_the_archive_only() {
    // `docker save` of Docker 24 and earlier: a layer given twice is a
    // link from the second ID's layer.tar to the first's.
    let layer_tar = layer(&[("bin/", "", 'd'), ("bin/app", "x", 'f')]);
    let diff_id = format!("sha256:{}", hex(&layer_tar));
    let config = json!({"architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff_id, diff_id]},
        "config": {"Cmd": ["/bin/app"]}})
    .to_string();
    let archive_with = |second: &str| {
        let manifest =
            json!([{"Config": "config.json", "Layers": ["aaa/layer.tar", "bbb/layer.tar"]}]);
        let mut archive = tar::Builder::new(Vec::new());
        for (name, data) in [
            ("manifest.json", manifest.to_string().into_bytes()),
            ("config.json", config.clone().into_bytes()),
            ("aaa/layer.tar", layer_tar.clone()),
        ] {
            let mut header = tar::Header::new_ustar();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            archive
                .append_data(&mut header, name, data.as_slice())
                .unwrap();
        }
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        archive
            .append_link(&mut header, "bbb/layer.tar", second)
            .unwrap();
        archive.into_inner().unwrap()
    };
    let dir = tempdir("docker-24-links");
    let file = dir.join("image.tar");
    std::fs::write(&file, archive_with("../aaa/layer.tar")).unwrap();
    let result = build(
        &format!("docker-archive:{}", file.display()),
        &dir.join("out"),
        &[],
    );
    assert!(result.status.success(), "{}", stderr(&result));
    assert_eq!(debugfs_cat(&dir.join("out/rootfs.ext4"), "/bin/app"), "x");
    for out_of_the_archive in ["../../aaa/layer.tar", "/etc/passwd"] {
        std::fs::write(&file, archive_with(out_of_the_archive)).unwrap();
        let result = build(
            &format!("docker-archive:{}", file.display()),
            &dir.join("out"),
            &[],
        );
        assert_eq!(result.status.code(), Some(2), "{}", stderr(&result));
        assert!(
            stderr(&result)
                .contains("bbb/layer.tar is a symbolic link that leads out of the archive"),
            "{}",
            stderr(&result)
        );
    }
}

#[test]
fn set_up_steps_and_the_stop_signal_go_into_the_metadata() {
    let dir = layout(
        "setup-step",
        json!({"Cmd": ["/bin/app"], "StopSignal": "SIGINT", "User": "postgres"}),
    );
    let out = dir.with_file_name("out");
    let step = r#"{"argv": ["initdb", "-D", "/data/pg"], "user": "postgres"}"#;
    let result = build(
        &format!("oci:{}", dir.display()),
        &out,
        &[
            "--setup-step",
            step,
            "--setup-step",
            r#"{"argv": ["migrate"]}"#,
        ],
    );
    assert!(result.status.success(), "{}", stderr(&result));
    let metadata: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metadata.json")).unwrap()).unwrap();
    assert_eq!(
        metadata["setup"],
        json!([{"argv": ["initdb", "-D", "/data/pg"], "user": "postgres"}, {"argv": ["migrate"]}])
    );
    assert_eq!(metadata["vminit"]["stop_signal"], "SIGINT");
    // vminit's own rules, at build time: a step without argv, or not JSON.
    for (bad, said) in [
        (r#"{"user": "postgres"}"#, "setup[0].argv"),
        ("initdb -D /data", "--setup-step: must be a JSON object"),
    ] {
        let result = build(
            &format!("oci:{}", dir.display()),
            &out,
            &["--setup-step", bad],
        );
        assert_eq!(result.status.code(), Some(2), "{}", stderr(&result));
        assert!(
            stderr(&result).contains(said),
            "{said}: {}",
            stderr(&result)
        );
    }
}

#[test]
fn bad_input_gets_a_clear_error() {
    // A layer whose bytes changed after its digest was written.
    let layout_dir = layout("corrupt", json!({"Cmd": ["/bin/app"]}));
    let manifest_blobs = std::fs::read_dir(layout_dir.join("blobs/sha256")).unwrap();
    let mut corrupted = false;
    for entry in manifest_blobs.flatten() {
        let bytes = std::fs::read(entry.path()).unwrap();
        if bytes.starts_with(&[0x1f, 0x8b]) {
            // Append garbage after the gzip stream: same layer, other bytes.
            let mut changed = bytes.clone();
            changed.extend_from_slice(b"tampered");
            std::fs::write(entry.path(), changed).unwrap();
            corrupted = true;
        }
    }
    assert!(corrupted);
    let result = build(
        &format!("oci:{}", layout_dir.display()),
        &layout_dir.with_file_name("out"),
        &[],
    );
    assert_eq!(result.status.code(), Some(2));
    assert!(
        stderr(&result).contains("is 8 bytes longer")
            || stderr(&result).contains("bytes long, not the"),
        "{}",
        stderr(&result)
    );

    let cases: [(&str, Damage, &str); 4] = [
        (
            "missing",
            Box::new(|dir: &Path| {
                for entry in std::fs::read_dir(dir.join("blobs/sha256"))
                    .unwrap()
                    .flatten()
                {
                    if std::fs::read(entry.path())
                        .unwrap()
                        .starts_with(&[0x1f, 0x8b])
                    {
                        std::fs::remove_file(entry.path()).unwrap();
                    }
                }
            }),
            "is missing from the image",
        ),
        (
            "media",
            Box::new(|dir: &Path| {
                rewrite_manifest(dir, |m| {
                    m["layers"][0]["mediaType"] = json!("application/x-rar")
                })
            }),
            "Unsupported media type application/x-rar",
        ),
        (
            "no-command",
            Box::new(|_: &Path| {}),
            "has no command (no Entrypoint nor Cmd)",
        ),
        (
            "digest",
            Box::new(|dir: &Path| {
                rewrite_manifest(dir, |m| {
                    m["layers"][1]["digest"] = json!(format!("sha256:{}", "0".repeat(64)))
                })
            }),
            "is missing from the image",
        ),
    ];
    for (name, damage, needle) in cases {
        let config = if name == "no-command" {
            json!({})
        } else {
            json!({"Cmd": ["/bin/app"]})
        };
        let dir = layout(name, config);
        damage(&dir);
        let result = build(
            &format!("oci:{}", dir.display()),
            &dir.with_file_name("out"),
            &[],
        );
        assert_eq!(result.status.code(), Some(2), "{name}: {}", stderr(&result));
        assert!(
            stderr(&result).contains(needle),
            "{name}: {}",
            stderr(&result)
        );
        assert_eq!(stderr(&result).lines().count(), 1, "{name}: one line");
    }
    let result = build("docker://nginx", Path::new("/tmp/unused"), &[]);
    assert!(
        stderr(&result).contains("not an image source"),
        "{}",
        stderr(&result)
    );
}

/// What a bad-input case does to a good layout.
type Damage = Box<dyn Fn(&Path)>;

/// Rewrites the layout's manifest and the index that names it.
fn rewrite_manifest(dir: &Path, change: impl Fn(&mut Value)) {
    let index_path = dir.join("index.json");
    let mut index: Value =
        serde_json::from_str(&std::fs::read_to_string(&index_path).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"].as_str().unwrap().to_owned();
    let path = dir
        .join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap());
    let mut manifest: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    change(&mut manifest);
    let bytes = manifest.to_string().into_bytes();
    let new = hex(&bytes);
    std::fs::write(dir.join("blobs/sha256").join(&new), &bytes).unwrap();
    index["manifests"][0]["digest"] = json!(format!("sha256:{new}"));
    index["manifests"][0]["size"] = json!(bytes.len());
    std::fs::write(&index_path, index.to_string()).unwrap();
}

/// Runs a copy of `vminit-image` in `dir/bin`, with only the tools it
/// runs on PATH (`dir/tools`: `cp` and `mkfs.ext4`), and so no vminit.
fn build_from_copy(dir: &Path, out: &Path, extra: &[&str]) -> Output {
    let program = dir.join("bin/vminit-image");
    let tools = dir.join("tools");
    if !program.exists() {
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        std::fs::copy(env!("CARGO_BIN_EXE_vminit-image"), &program).unwrap();
        std::fs::create_dir_all(&tools).unwrap();
        for tool in ["cp", "mkfs.ext4"] {
            let found = ["/usr/bin", "/usr/sbin", "/bin", "/sbin"]
                .iter()
                .map(|dir| Path::new(dir).join(tool))
                .find(|path| path.exists())
                .unwrap_or_else(|| panic!("no {tool}"));
            std::os::unix::fs::symlink(found, tools.join(tool)).unwrap();
        }
    }
    let root = dir.join("root");
    std::fs::create_dir_all(&root).unwrap();
    Command::new(program)
        .arg("build")
        .arg(format!("dir:{}", root.display()))
        .arg("--output")
        .arg(out)
        .args(extra)
        .args(["--", "/bin/app"])
        .env("PATH", &tools)
        .output()
        .unwrap()
}

#[test]
fn vminit_is_the_one_for_the_arch_beside_the_program() {
    let here = std::env::consts::ARCH;
    let other = if here == "x86_64" {
        "aarch64"
    } else {
        "x86_64"
    };
    let dir = tempdir("find-vminit");
    let out = dir.join("out");
    // A `vminit` beside it that is no ELF binary is passed over.
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::write(dir.join("bin/vminit"), "#!/bin/sh\n").unwrap();
    let missing = build_from_copy(&dir, &out, &[]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains(&format!("cannot find vminit-{here} or a vminit for {here}")),
        "{}",
        stderr(&missing)
    );
    // One named for this machine's architecture is taken.
    std::fs::copy(
        common::static_vminit(),
        dir.join(format!("bin/vminit-{here}")),
    )
    .unwrap();
    let found = build_from_copy(&dir, &out, &[]);
    assert!(found.status.success(), "{}", stderr(&found));
    // For the other architecture, none of them will do.
    let wrong = build_from_copy(&dir, &out, &["--arch", other]);
    assert_eq!(wrong.status.code(), Some(2));
    assert!(stderr(&wrong).contains(&format!("cannot find vminit-{other}")));
    // Given by hand, it is checked just the same.
    let given = build_from_copy(&dir, &out, &["--arch", other, "--vminit", "/bin/true"]);
    assert_eq!(given.status.code(), Some(2));
    assert!(
        stderr(&given).contains(&format!(
            "The vminit binary /bin/true is for {here}, not {other} (see --arch)"
        )),
        "{}",
        stderr(&given)
    );
    // A dynamic one would end the boot in a kernel panic: /init runs
    // before any loader is there.
    let dynamic = build_from_copy(&dir, &out, &["--vminit", "/bin/true"]);
    assert_eq!(dynamic.status.code(), Some(2));
    assert!(
        stderr(&dynamic)
            .contains("The vminit binary /bin/true is dynamically linked (it needs the loader /"),
        "{}",
        stderr(&dynamic)
    );
    let script = dir.join("bin/vminit").display().to_string();
    let not_elf = build_from_copy(&dir, &out, &["--vminit", &script]);
    assert_eq!(not_elf.status.code(), Some(2));
    assert!(
        stderr(&not_elf).contains("is not an ELF executable"),
        "{}",
        stderr(&not_elf)
    );
}

#[test]
fn version_has_vminits_format() {
    let output = Command::new(env!("CARGO_BIN_EXE_vminit-image"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let line = String::from_utf8(output.stdout).unwrap();
    // The same line vminit prints, the same revision: both come from vminit's build.rs.
    let expected = vminit::run::version_line("vminit-image", env!("CARGO_PKG_VERSION"));
    assert_eq!(line, format!("{expected}\n"));
    assert!(line.starts_with(concat!("vminit-image ", env!("CARGO_PKG_VERSION"))));
}
