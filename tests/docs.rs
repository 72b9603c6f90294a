//! The documentation against the binary: `docs/reference.md` names every
//! setting, option and metadata field vminit accepts, and none it refuses;
//! its metadata example passes `vminit --check`; and no relative link in
//! the README or `docs/` leads nowhere.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn reference() -> String {
    std::fs::read_to_string(root().join("docs/reference.md")).unwrap()
}

/// The words of `text` that start with `prefix` and go on with
/// `[A-Za-z0-9_.-]` (a trailing `.` dropped: the end of a sentence).
fn words_after(text: &str, prefix: &str) -> BTreeSet<String> {
    let is_word = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    text.match_indices(prefix)
        .filter(|(at, _)| {
            // Not inside a longer word (`org.vminit.exit`, `---`).
            !text[..*at].ends_with(is_word)
        })
        .map(|(at, _)| {
            let rest = &text[at + prefix.len()..];
            let end = rest.find(|c: char| !is_word(c)).unwrap_or(rest.len());
            rest[..end].trim_end_matches('.').to_owned()
        })
        .filter(|word| !word.is_empty())
        .collect()
}

/// Whether `name` (`mount.data.owner`) is the setting `pattern`
/// (`mount.NAME.owner`): `NAME` stands for any one word.
fn is_setting(name: &str, pattern: &str) -> bool {
    let (name, pattern): (Vec<&str>, Vec<&str>) =
        (name.split('.').collect(), pattern.split('.').collect());
    name.len() == pattern.len()
        && name
            .iter()
            .zip(&pattern)
            .all(|(n, p)| n == p || (*p == "NAME" && !n.is_empty()))
}

#[test]
fn the_reference_names_every_setting_and_no_other() {
    let text = reference();
    let names = vminit::config::settings::NAMES;
    let named = words_after(&text, "vminit.");
    for name in names {
        assert!(
            named.contains(*name),
            "docs/reference.md does not name the setting vminit.{name}"
        );
    }
    // `vminit.NAME=VALUE`: any setting.
    for word in named.iter().filter(|w| *w != "NAME") {
        if let Some(resource) = word.strip_prefix("rlimit.") {
            let known = vminit::config::limits::RESOURCES;
            assert!(
                resource == "NAME" || known.contains(&resource),
                "docs/reference.md names vminit.{word}, not a resource limit vminit knows ({known:?})"
            );
        }
        // `vminit.report.*`: a family of settings.
        let family = format!("{word}.");
        assert!(
            names
                .iter()
                .any(|pattern| is_setting(word, pattern) || pattern.starts_with(&family)),
            "docs/reference.md names vminit.{word}, which vminit does not accept (settings: {names:?})"
        );
    }
}

/// The long options `vminit --help` lists.
fn options_in_help() -> BTreeSet<String> {
    let help = Command::new(common::binary())
        .arg("--help")
        .output()
        .unwrap();
    assert!(help.status.success());
    let help = String::from_utf8(help.stdout).unwrap();
    let options: BTreeSet<String> = help
        .lines()
        .filter(|line| line.trim_start().starts_with('-'))
        .flat_map(|line| words_after(line.split("  ").find(|c| !c.is_empty()).unwrap_or(""), "--"))
        .collect();
    assert!(
        options.contains("grace") && options.contains("check"),
        "{help}"
    );
    options
}

#[test]
fn the_reference_names_every_option_and_no_other() {
    let text = reference();
    let options = options_in_help();
    for option in &options {
        assert!(
            words_after(&text, "--").contains(option),
            "docs/reference.md does not name the option --{option}"
        );
    }
    // The options table: its first column is vminit's options.
    let table = text
        .lines()
        .filter(|line| line.starts_with("| `-"))
        .filter_map(|line| line.split('|').nth(1));
    for cell in table {
        for word in words_after(cell, "--") {
            assert!(
                options.contains(&word),
                "docs/reference.md's options table names --{word}, which `vminit --help` does not list"
            );
        }
    }
}

/// The metadata file's top-level fields, as vminit names them when it
/// refuses an unknown one.
fn metadata_fields() -> Vec<String> {
    let dir = std::env::temp_dir().join(format!("vminit-docs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("unknown.json");
    std::fs::write(&file, r#"{"no_such_field": 1}"#).unwrap();
    let output = Command::new(common::binary())
        .args(["--check", "--metadata"])
        .arg(&file)
        .args(["--", "true"])
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    let known = stderr
        .split_once("(known: ")
        .and_then(|(_, rest)| rest.split_once(')'))
        .unwrap_or_else(|| panic!("no list of known fields in {stderr:?}"))
        .0;
    known.split(", ").map(str::to_owned).collect()
}

/// The metadata example of docs/reference.md: the first `json` block.
fn metadata_example(text: &str) -> String {
    let start = text
        .find("```json\n")
        .expect("no json block in docs/reference.md")
        + 8;
    let end = start + text[start..].find("```").unwrap();
    text[start..end].to_owned()
}

#[test]
fn the_metadata_example_holds_every_field_and_passes_check() {
    let text = reference();
    let example = metadata_example(&text);
    let parsed: serde_json::Value = serde_json::from_str(&example).unwrap();
    // Every top-level field vminit knows is shown, and every setting has
    // its place in the `"vminit"` object.
    for field in metadata_fields() {
        assert!(
            parsed.get(&field).is_some(),
            "the metadata example lacks {field:?}"
        );
    }
    let settings = &parsed["vminit"];
    for name in vminit::config::settings::NAMES {
        let path: Vec<&str> = name.split('.').collect();
        let found = match path.as_slice() {
            [one] => settings.get(one).is_some(),
            ["rlimit", _] => settings["rlimit"]
                .as_object()
                .is_some_and(|o| !o.is_empty()),
            ["mount", "NAME"] => settings["mounts"]
                .as_object()
                .is_some_and(|o| !o.is_empty()),
            ["mount", "NAME", field] => settings["mounts"]
                .as_object()
                .is_some_and(|mounts| mounts.values().any(|m| m.get(field).is_some())),
            [group, field] => settings[group].get(field).is_some(),
            _ => false,
        };
        assert!(found, "the metadata example lacks the setting {name}");
    }
    // And vminit takes it as it is.
    let dir = std::env::temp_dir().join(format!("vminit-docs-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("example.json");
    std::fs::write(&file, &example).unwrap();
    let output = Command::new(common::binary())
        .args(["--check", "--metadata"])
        .arg(&file)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        output.status.success(),
        "vminit --check refuses the metadata example of docs/reference.md: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Every Markdown file a reader reaches: the README and `docs/`.
fn markdown_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|e| e == "md") {
                found.push(path);
            }
        }
    }
    let mut found = vec![root().join("README.md")];
    walk(&root().join("docs"), &mut found);
    found
}

/// The targets of a Markdown file's inline links and images, outside
/// code blocks and code spans.
fn link_targets(text: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut in_block = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if in_block {
            continue;
        }
        // Code spans are the odd pieces between backticks.
        for (i, piece) in line.split('`').enumerate() {
            if i % 2 == 1 {
                continue;
            }
            for (at, _) in piece.match_indices("](") {
                let rest = &piece[at + 2..];
                if let Some(end) = rest.find(')') {
                    targets.push(rest[..end].to_owned());
                }
            }
        }
    }
    targets
}

/// GitHub's anchor for a heading: lower case, spaces to `-`, punctuation
/// other than `-` and `_` dropped.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn anchors(text: &str) -> BTreeSet<String> {
    let mut in_block = false;
    let mut found = BTreeSet::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
        } else if !in_block && line.starts_with('#') {
            found.insert(anchor(line.trim_start_matches('#')));
        }
    }
    found
}

#[test]
fn every_relative_link_leads_somewhere() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in markdown_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        for target in link_targets(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (path, fragment) = target.split_once('#').unwrap_or((&target, ""));
            let dest = if path.is_empty() {
                file.clone()
            } else {
                file.parent().unwrap().join(path)
            };
            if !dest.exists() {
                broken.push(format!("{}: {target} (no such file)", file.display()));
            } else if !fragment.is_empty() {
                let dest_text = std::fs::read_to_string(&dest).unwrap_or_default();
                if !anchors(&dest_text).contains(fragment) {
                    broken.push(format!("{}: {target} (no such heading)", file.display()));
                }
            }
        }
    }
    assert!(checked > 20, "only {checked} links found");
    assert!(
        broken.is_empty(),
        "links that lead nowhere:\n{}",
        broken.join("\n")
    );
}

#[test]
fn the_link_checker_sees_what_it_must() {
    assert_eq!(
        anchor(" Boot to a serving app, against systemd"),
        "boot-to-a-serving-app-against-systemd"
    );
    assert_eq!(anchor(" `cargo xtask run`"), "cargo-xtask-run");
    assert_eq!(
        link_targets("see [a](b.md#c) and `[x](y)`\n```\n[p](q)\n```\n![i](j.svg)"),
        ["b.md#c", "j.svg"]
    );
    assert_eq!(
        words_after("`vminit.root.wait=S` and vminit.grace.", "vminit."),
        BTreeSet::from(["grace".to_owned(), "root.wait".to_owned()])
    );
    assert!(words_after("\"org.vminit.exit\"", "vminit.").is_empty());
    assert!(is_setting("mount.data.owner", "mount.NAME.owner"));
    assert!(!is_setting("mount.data", "mount.NAME.owner"));
}
