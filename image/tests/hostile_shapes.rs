//! Hostile shapes of images (issue 21): each gets one line naming the rule
//! it breaks and status 2, within the memory limit (`prlimit --as`, 1 GiB)
//! and a guard against hangs, leaves nothing a later `--reuse` could take
//! for good, and writes nothing outside `--output`:
//! - a layer of a million empty files;
//! - directories nested 10,000 deep, through links to directories;
//! - a path of 64 KB, in a layer and in a `docker save` archive;
//! - hard links that form a cycle through whiteouts;
//! - a manifest that names the same blob again and again (applied each
//!   time, as Docker does, and charged each time), or 300 layers;
//! - an index of 10,000 manifests, and indexes nested 9 deep;
//! - a config of 100 MB.
//!
//! Each test prints how long the refusal took, for docs/images.md.

mod common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use common::guarded::{assert_nothing_left, assert_refused, build};
use common::{blob, hex, layer, oci, tempdir};
use serde_json::{Value, json};

const TAR_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
const GZ_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// The names in `dir` (not below), sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Builds `source` into `work/out` and checks the refusal: status 2, one
/// line containing `needle`, nothing left in `out`, and `work`, where the
/// source is, unchanged but for `out`. Returns how long it took.
fn refused(source: &str, work: &Path, needle: &str, extra: &[&str]) -> f64 {
    let out = work.join("out");
    let before = listing(work);
    let started = Instant::now();
    let result = build(source, &out, extra);
    let took = started.elapsed().as_secs_f64();
    assert_refused(&result, needle);
    assert_nothing_left(&out);
    let after: Vec<String> = listing(work).into_iter().filter(|n| n != "out").collect();
    assert_eq!(after, before, "the build wrote beside its output");
    eprintln!("refused in {took:.1} s: {needle}");
    took
}

/// An OCI layout's source argument.
fn source(layout: &Path) -> String {
    format!("oci:{}", layout.display())
}

/// A tar entry header of `kind`.
fn header(kind: tar::EntryType, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
    header.set_size(size);
    header.set_mtime(0);
    header
}

/// A tar stream into `into` of `dirs` × 1000 empty files, `dN/fM`, with
/// no entry for the directories.
fn empty_files<W: std::io::Write>(into: W, dirs: usize) -> W {
    let mut builder = tar::Builder::new(into);
    for dir in 0..dirs {
        for file in 0..1000 {
            let mut header = header(tar::EntryType::Regular, 0);
            builder
                .append_data(&mut header, format!("d{dir}/f{file}"), &[][..])
                .unwrap();
        }
    }
    builder.into_inner().unwrap()
}

#[test]
fn a_layer_of_a_million_empty_files_stops_at_the_bound() {
    // Gzip, as registries serve layers: a few MB for 512 MB of headers.
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let blob = empty_files(encoder, 1000).finish().unwrap();
    let no_diff_id = [format!("sha256:{}", "0".repeat(64))];
    let (layout, ..) = oci("million", &[(GZ_LAYER, blob)], &no_diff_id);
    refused(
        &source(&layout),
        layout.parent().unwrap(),
        "The layers unpack to more than 1024 MiB (their data, and 4 KiB an entry)",
        &[],
    );
}

#[test]
fn a_plain_layer_of_many_files_is_held_to_its_own_size() {
    // An uncompressed layer is not allowed ten times its size: 300,000
    // empty files (150 MB of headers) charge 1.2 GB, more than five times.
    let tar = empty_files(Vec::new(), 300);
    let no_diff_id = [format!("sha256:{}", "0".repeat(64))];
    let (layout, ..) = oci("plain-many", &[(TAR_LAYER, tar)], &no_diff_id);
    refused(
        &source(&layout),
        layout.parent().unwrap(),
        "The layers unpack to more than",
        &[],
    );
}

#[test]
fn an_image_of_120_000_files_gets_the_inodes_it_needs() {
    // mke2fs gives one inode per 16 KiB of a disk this size: 49,000, and
    // the build failed with "Could not allocate inode" (on two lines).
    let tar = empty_files(Vec::new(), 120);
    let diff_id = [format!("sha256:{}", hex(&tar))];
    let (layout, ..) = oci("many-inodes", &[(GZ_LAYER, common::gzip(&tar))], &diff_id);
    let out = layout.with_file_name("out");
    let started = Instant::now();
    let result = build(&source(&layout), &out, &[]);
    assert!(result.status.success(), "{}", common::stderr(&result));
    eprintln!("built in {:.1} s", started.elapsed().as_secs_f64());
    let listed = common::debugfs_cat(&out.join("rootfs.ext4"), "/d119/f999");
    assert!(listed.is_empty(), "{listed}");
}

#[test]
fn directories_nested_ten_thousand_deep_are_refused_at_the_depth_bound() {
    // Each path stays short: 50 links, each to the deepest directory so
    // far, then 200 more levels below it: 10,000 in all.
    let mut builder = tar::Builder::new(Vec::new());
    let level = "a/".repeat(200);
    let mut deepest = String::new();
    for step in 0..50 {
        let dir = format!("{deepest}{level}");
        let mut dir_header = header(tar::EntryType::Directory, 0);
        builder.append_data(&mut dir_header, &dir, &[][..]).unwrap();
        let link = format!("l{step}");
        let mut link_header = header(tar::EntryType::Symlink, 0);
        builder
            .append_link(&mut link_header, &link, dir.trim_end_matches('/'))
            .unwrap();
        deepest = format!("{link}/");
    }
    let no_diff_id = [format!("sha256:{}", "0".repeat(64))];
    let (layout, ..) = oci(
        "deep",
        &[(TAR_LAYER, builder.into_inner().unwrap())],
        &no_diff_id,
    );
    refused(
        &source(&layout),
        layout.parent().unwrap(),
        "it lies deeper than 256 directories below the root",
        &[],
    );
}

#[test]
fn a_path_of_64_kb_is_refused_in_a_layer_and_in_an_archive() {
    let long = format!("{}f", "p/".repeat(32_767));
    assert_eq!(long.len(), 65_535);
    let mut builder = tar::Builder::new(Vec::new());
    let mut long_header = header(tar::EntryType::Regular, 0);
    builder
        .append_data(&mut long_header, &long, &[][..])
        .unwrap();
    let no_diff_id = [format!("sha256:{}", "0".repeat(64))];
    let (layout, ..) = oci(
        "path-64k",
        &[(TAR_LAYER, builder.into_inner().unwrap())],
        &no_diff_id,
    );
    refused(
        &source(&layout),
        layout.parent().unwrap(),
        "its path or link target is longer than 4096 bytes",
        &[],
    );
    // The same name as an entry of a `docker save` archive itself.
    let work = tempdir("archive-64k");
    let mut builder = tar::Builder::new(Vec::new());
    let mut long_header = header(tar::EntryType::Regular, 1);
    builder
        .append_data(&mut long_header, &long, &b"x"[..])
        .unwrap();
    let archive = work.join("image.tar");
    std::fs::write(&archive, builder.into_inner().unwrap()).unwrap();
    refused(
        &format!("docker-archive:{}", archive.display()),
        &work,
        "has a path longer than 4096 bytes",
        &[],
    );
}

#[test]
fn hard_links_in_a_cycle_through_whiteouts_are_refused() {
    // Layer 1: `a`, and `b` a hard link to it. Layer 2 whites both out,
    // then links each to the other: neither is there to link to.
    let mut first = tar::Builder::new(Vec::new());
    let mut file = header(tar::EntryType::Regular, 2);
    first.append_data(&mut file, "a", &b"a\n"[..]).unwrap();
    let mut link = header(tar::EntryType::Link, 0);
    first.append_link(&mut link, "b", "a").unwrap();
    let first = first.into_inner().unwrap();
    let mut second = tar::Builder::new(Vec::new());
    for name in [".wh.a", ".wh.b"] {
        let mut whiteout = header(tar::EntryType::Regular, 0);
        second.append_data(&mut whiteout, name, &[][..]).unwrap();
    }
    for (name, target) in [("a", "b"), ("b", "a")] {
        let mut link = header(tar::EntryType::Link, 0);
        second.append_link(&mut link, name, target).unwrap();
    }
    let second = second.into_inner().unwrap();
    let diff_ids = [
        format!("sha256:{}", hex(&first)),
        format!("sha256:{}", hex(&second)),
    ];
    let (layout, ..) = oci(
        "link-cycle",
        &[(TAR_LAYER, first), (TAR_LAYER, second)],
        &diff_ids,
    );
    refused(
        &source(&layout),
        layout.parent().unwrap(),
        "Layer entry a: a hard link to b, which the layers have not made",
        &[],
    );
}

#[test]
fn a_blob_named_again_and_again_is_charged_each_time_and_stops_at_the_bound() {
    // One gzip layer of a 128 MiB file of zeros (about 130 KB), named 9
    // times: it counts once towards the default bound (1 GiB), and each
    // application is charged against it.
    let mut builder = tar::Builder::new(Vec::new());
    let zeros = vec![0u8; 128 << 20];
    let mut big = header(tar::EntryType::Regular, zeros.len() as u64);
    builder
        .append_data(&mut big, "zeros", zeros.as_slice())
        .unwrap();
    let tar = builder.into_inner().unwrap();
    let diff_id = format!("sha256:{}", hex(&tar));
    let blob = common::gzip(&tar);
    let layers: Vec<(&str, Vec<u8>)> = (0..9).map(|_| (GZ_LAYER, blob.clone())).collect();
    let (layout, ..) = oci("named-again", &layers, &vec![diff_id; 9]);
    refused(
        &source(&layout),
        layout.parent().unwrap(),
        "The layers unpack to more than 1024 MiB",
        &[],
    );
    // Past 256 layers, none is applied.
    let small = layer(&[("app", "#!/bin/sh\n", 'f')]);
    let diff_id = format!("sha256:{}", hex(&small));
    let layers: Vec<(&str, Vec<u8>)> = (0..300).map(|_| (TAR_LAYER, small.clone())).collect();
    let (layout, ..) = oci("many-layers", &layers, &vec![diff_id; 300]);
    refused(
        &source(&layout),
        layout.parent().unwrap(),
        "The image has 300 layers, more than the 256 this tool applies",
        &[],
    );
}

#[test]
fn a_layer_named_twice_is_applied_twice_in_order_as_docker_does() {
    // A writes /x, B rewrites it, A again: /x is A's, as under Docker.
    let a = layer(&[("x", "from a\n", 'f')]);
    let b = layer(&[("x", "from b\n", 'f')]);
    let ids: Vec<String> = [&a, &b, &a]
        .iter()
        .map(|t| format!("sha256:{}", hex(t)))
        .collect();
    let (layout, ..) = oci(
        "twice-in-order",
        &[(TAR_LAYER, a.clone()), (TAR_LAYER, b), (TAR_LAYER, a)],
        &ids,
    );
    let out = layout.with_file_name("out");
    let result = build(&source(&layout), &out, &[]);
    assert!(result.status.success(), "{}", common::stderr(&result));
    assert_eq!(
        common::debugfs_cat(&out.join("rootfs.ext4"), "/x"),
        "from a\n"
    );
}

/// Rewrites `layout`'s index.json to list `manifest` `count` times.
fn index_of(layout: &Path, manifest: &Value, count: usize) {
    let index = json!({"schemaVersion": 2, "manifests": vec![manifest.clone(); count]});
    std::fs::write(layout.join("index.json"), index.to_string()).unwrap();
}

/// The one manifest descriptor of a layout made by [`oci`].
fn only_manifest(layout: &Path) -> Value {
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    index["manifests"][0].clone()
}

#[test]
fn an_index_of_ten_thousand_manifests_or_nested_nine_deep_is_refused() {
    let files = layer(&[("app", "#!/bin/sh\n", 'f')]);
    let diff_id = [format!("sha256:{}", hex(&files))];
    let (layout, ..) = oci("big-index", &[(TAR_LAYER, files.clone())], &diff_id);
    let manifest = only_manifest(&layout);
    index_of(&layout, &manifest, 10_000);
    refused(
        &source(&layout),
        layout.parent().unwrap(),
        "The image layout's index.json lists 10000 manifests, more than the 1024",
        &[],
    );
    // Nine indexes, each the platform's entry of the one above.
    let (layout, ..) = oci("nested-index", &[(TAR_LAYER, files)], &diff_id);
    let mut top = only_manifest(&layout);
    for _ in 0..9 {
        let mut entry = top.clone();
        entry["platform"] = json!({"architecture": "amd64", "os": "linux"});
        let nested = json!({"schemaVersion": 2, "manifests": [entry]});
        top = blob(&layout, INDEX, nested.to_string().as_bytes());
    }
    index_of(&layout, &top, 1);
    refused(
        &source(&layout),
        layout.parent().unwrap(),
        "an image index, is nested more than 8 deep",
        &[],
    );
}

#[test]
fn a_config_of_100_mb_is_refused() {
    let files = layer(&[("app", "#!/bin/sh\n", 'f')]);
    let diff_id = [format!("sha256:{}", hex(&files))];
    let (layout, config, _) = oci("big-config", &[(TAR_LAYER, files)], &diff_id);
    // The config blob made 100 MB (a sparse file), its descriptor saying
    // so (the builder refuses it without reading), the manifest rewritten.
    let size: u64 = 100 << 20;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&config)
        .unwrap()
        .set_len(size)
        .unwrap();
    let manifest_path = blob_path(&layout, &only_manifest(&layout));
    let mut manifest: Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    manifest["config"]["size"] = json!(size);
    let manifest = blob(&layout, MANIFEST, manifest.to_string().as_bytes());
    index_of(&layout, &manifest, 1);
    refused(
        &source(&layout),
        layout.parent().unwrap(),
        "is longer than 16777216 bytes, the most this tool reads of it",
        &[],
    );
}

/// Where a descriptor's blob is in a layout.
fn blob_path(layout: &Path, descriptor: &Value) -> PathBuf {
    let digest = descriptor["digest"].as_str().unwrap();
    layout
        .join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap())
}
