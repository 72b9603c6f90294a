//! What depmod(8) would have written, for the modules an initramfs wants,
//! read from the modules' own `.modinfo` sections: a kernel unpacked with
//! `dpkg -x` (or from a bare tarball) has no `modules.dep`, which its
//! package leaves to the install script.
//!
//! As depmod does, a module's dependencies are its `depends=` names, each
//! found by file name under the directory, and each with its own; its soft
//! dependencies are its `softdep=` lines; a soft dependency that no file
//! is named after (`crc32c`, which ext4 wants) is looked up among every
//! module's `alias=` names and `modules.builtin.modinfo`. That last step
//! reads every module's `.modinfo` once, which for compressed modules
//! means decompressing them all: seconds, where depmod's tables are free.
//!
//! What comes out is the text of `modules.dep`, `modules.softdep` and
//! `modules.alias` for those modules, which
//! [`vminit::machine::modules::Index`] then reads as it reads depmod's.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::path::Path;

use thiserror::Error;
use vminit::config::modules::normalize;
use vminit::machine::modules::name_of;

use crate::stream::Compression;

/// The most a compressed module may decompress to (the largest module of
/// Debian's 6.1 kernel is 12 MiB).
const MAX_MODULE: u64 = 256 << 20;

#[derive(Debug, Error)]
pub enum DepmodError {
    #[error("Cannot list the module directory {dir}: {source}")]
    List { dir: String, source: io::Error },
    #[error("Cannot read the module {path}: {source}")]
    Read { path: String, source: io::Error },
    #[error("The module {path} is not an ELF object with a .modinfo section: {message}")]
    Elf { path: String, message: String },
}

/// depmod's tables, as text in its formats.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tables {
    /// `path: dependency paths…`, every dependency, the deepest last.
    pub dep: String,
    /// `softdep NAME pre: … post: …`.
    pub softdep: String,
    /// `alias ALIAS NAME`, for the aliases that soft dependencies name.
    pub alias: String,
}

/// What one module's `.modinfo` says that depmod reads.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ModInfo {
    /// `depends=`: module names.
    pub depends: Vec<String>,
    /// `softdep=`: each as written (`pre: crc32c post: …`).
    pub softdeps: Vec<String>,
    /// `alias=`.
    pub aliases: Vec<String>,
}

/// A `.modinfo` section: `key=value` strings, each ended by NUL.
pub fn parse_modinfo(section: &[u8]) -> ModInfo {
    let mut info = ModInfo::default();
    for entry in section.split(|&b| b == 0) {
        let Ok(entry) = std::str::from_utf8(entry) else {
            continue;
        };
        match entry.split_once('=') {
            Some(("depends", names)) => info.depends.extend(
                names
                    .split(',')
                    .filter(|name| !name.is_empty())
                    .map(normalize),
            ),
            Some(("softdep", text)) => info.softdeps.push(text.trim().to_owned()),
            Some(("alias", alias)) => info.aliases.push(alias.to_owned()),
            _ => {}
        }
    }
    info
}

/// The `pre:` and `post:` names of `softdep=` texts.
fn soft_names(softdeps: &[String]) -> impl Iterator<Item = &str> {
    softdeps
        .iter()
        .flat_map(|text| text.split_whitespace())
        .filter(|word| !word.ends_with(':'))
}

/// The modules a kernel has: the name of each `.ko` (compressed or not)
/// under `dir`, with its path relative to it. Where two files share a
/// name, one under `updates/` wins, as in depmod's default search order.
pub fn module_files(dir: &Path) -> Result<BTreeMap<String, String>, DepmodError> {
    let mut files = BTreeMap::new();
    let mut pending = vec![String::new()];
    while let Some(relative) = pending.pop() {
        let here = dir.join(&relative);
        let list = |source| DepmodError::List {
            dir: here.display().to_string(),
            source,
        };
        for entry in fs::read_dir(&here).map_err(list)? {
            let entry = entry.map_err(list)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = if relative.is_empty() {
                name.clone()
            } else {
                format!("{relative}/{name}")
            };
            let kind = entry.file_type().map_err(list)?;
            if kind.is_dir() {
                pending.push(path);
            } else if is_module_file(&name)
                // A link to a module counts; a link to a directory (`build`
                // and `source` lead to the kernel's sources) is not walked.
                && (kind.is_file() || fs::metadata(entry.path()).is_ok_and(|m| m.is_file()))
            {
                let module = name_of(&path);
                let wins = files
                    .get(&module)
                    .is_none_or(|old: &String| !old.starts_with("updates/"));
                if wins {
                    files.insert(module, path);
                }
            }
        }
    }
    Ok(files)
}

fn is_module_file(name: &str) -> bool {
    [".ko", ".ko.xz", ".ko.zst", ".ko.gz"]
        .iter()
        .any(|suffix| name.ends_with(suffix))
}

/// The `.modinfo` of the module file `path` under `dir`.
pub fn read_modinfo(dir: &Path, path: &str) -> Result<ModInfo, DepmodError> {
    let full = dir.join(path);
    let read = |source| DepmodError::Read {
        path: path.to_owned(),
        source,
    };
    let elf = |message: String| DepmodError::Elf {
        path: path.to_owned(),
        message,
    };
    let file = File::open(&full).map_err(read)?;
    if path.ends_with(".ko") {
        // Only the headers and the section are read, not the whole file.
        let cache = object::ReadCache::new(file);
        return modinfo_of(&cache).map_err(elf);
    }
    let mut data = Vec::new();
    let limited = file.take(MAX_MODULE);
    if path.ends_with(".xz") {
        let mut bounded = Bounded(&mut data);
        lzma_rs::xz_decompress(&mut BufReader::new(limited), &mut bounded)
            .map_err(|e| elf(format!("cannot decompress it: {e}")))?;
    } else {
        let compression = if path.ends_with(".zst") {
            Compression::Zstd
        } else {
            Compression::Gzip
        };
        compression
            .decoder(limited)
            .take(MAX_MODULE)
            .read_to_end(&mut data)
            .map_err(read)?;
    }
    modinfo_of(data.as_slice()).map_err(elf)
}

/// A vector that refuses to grow past [`MAX_MODULE`].
struct Bounded<'a>(&'a mut Vec<u8>);

impl io::Write for Bounded<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if self.0.len() as u64 + bytes.len() as u64 > MAX_MODULE {
            return Err(io::Error::other(format!(
                "it decompresses to more than {MAX_MODULE} bytes"
            )));
        }
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn modinfo_of<'data, R: object::ReadRef<'data>>(data: R) -> Result<ModInfo, String> {
    use object::{Object as _, ObjectSection as _};
    let object = object::File::parse(data).map_err(|e| e.to_string())?;
    let section = object
        .section_by_name(".modinfo")
        .ok_or("it has no .modinfo section")?;
    Ok(parse_modinfo(section.data().map_err(|e| e.to_string())?))
}

/// `modules.builtin.modinfo` (`module.key=value`, each ended by NUL): the
/// aliases of built-in modules, as `(alias, module)`.
pub fn builtin_aliases(text: &[u8]) -> Vec<(String, String)> {
    text.split(|&b| b == 0)
        .filter_map(|entry| std::str::from_utf8(entry).ok())
        .filter_map(|entry| {
            let (module, alias) = entry.split_once(".alias=")?;
            Some((alias.to_owned(), normalize(module)))
        })
        .collect()
}

/// What a kernel directory offers for the tables: its module files,
/// their `.modinfo` on demand, and its built-in modules.
pub struct Kernel<'a, F> {
    /// Module name → path relative to the directory.
    pub files: &'a BTreeMap<String, String>,
    /// Reads the `.modinfo` of a path in `files`.
    pub read: F,
    /// Normalized names of built-in modules.
    pub builtin: &'a BTreeSet<String>,
    /// `(alias, module)` of built-in modules.
    pub builtin_aliases: &'a [(String, String)],
    /// Module names in `modules.order`'s order: where several modules
    /// have one alias, depmod lists them in it, and modprobe loads them so.
    pub order: &'a [String],
}

impl<F> std::fmt::Debug for Kernel<'_, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kernel")
            .field("files", &self.files.len())
            .field("builtin", &self.builtin.len())
            .finish_non_exhaustive()
    }
}

/// The tables for `wanted` and everything they need, hard or soft. A
/// wanted name that is neither a file nor built in is left out, for the
/// plan to report; a soft dependency that resolves to nothing is dropped,
/// as modprobe drops it.
pub fn tables<F>(kernel: &mut Kernel<'_, F>, wanted: &[String]) -> Result<Tables, DepmodError>
where
    F: FnMut(&str) -> Result<ModInfo, DepmodError>,
{
    let mut infos: BTreeMap<String, ModInfo> = BTreeMap::new();
    let mut all_aliases: Option<Vec<(String, String)>> = None;
    let mut used_aliases: Vec<(String, String)> = Vec::new();
    let mut queue: Vec<String> = wanted.iter().map(|name| normalize(name)).collect();
    while let Some(name) = queue.pop() {
        if infos.contains_key(&name) || kernel.builtin.contains(&name) {
            continue;
        }
        let Some(path) = kernel.files.get(&name) else {
            continue;
        };
        let info = (kernel.read)(path)?;
        queue.extend(info.depends.iter().cloned());
        for soft in soft_names(&info.softdeps) {
            let direct = normalize(soft);
            if kernel.files.contains_key(&direct) || kernel.builtin.contains(&direct) {
                queue.push(direct);
                continue;
            }
            let aliases = match &all_aliases {
                Some(aliases) => aliases,
                None => all_aliases.insert(every_alias(kernel)),
            };
            for (alias, module) in aliases.iter().filter(|(alias, _)| alias == soft) {
                let pair = (alias.clone(), module.clone());
                if !used_aliases.contains(&pair) {
                    used_aliases.push(pair);
                }
                queue.push(module.clone());
            }
        }
        infos.insert(name, info);
    }
    Ok(Tables {
        dep: dep_lines(kernel.files, &infos),
        softdep: infos
            .iter()
            .flat_map(|(name, info)| {
                info.softdeps
                    .iter()
                    .map(move |text| format!("softdep {name} {text}\n"))
            })
            .collect(),
        alias: used_aliases
            .iter()
            .map(|(alias, module)| format!("alias {alias} {module}\n"))
            .collect(),
    })
}

/// Every module's aliases and the built-in ones, as `(alias, module)`,
/// in `modules.order`'s order of their modules (the rest after, by name).
/// A module that cannot be read offers none, as depmod only warns of it:
/// a stray file must not stop an image that does not need it.
fn every_alias<F>(kernel: &mut Kernel<'_, F>) -> Vec<(String, String)>
where
    F: FnMut(&str) -> Result<ModInfo, DepmodError>,
{
    let mut aliases = kernel.builtin_aliases.to_vec();
    for (name, path) in kernel.files {
        let Ok(info) = (kernel.read)(path) else {
            continue;
        };
        aliases.extend(info.aliases.into_iter().map(|alias| (alias, name.clone())));
    }
    let mut ranks: BTreeMap<&str, usize> = BTreeMap::new();
    for (rank, name) in kernel.order.iter().enumerate() {
        ranks.entry(name).or_insert(rank);
    }
    // Stable: the rest keep their order by name.
    aliases.sort_by_key(|(_, module)| ranks.get(module.as_str()).copied().unwrap_or(usize::MAX));
    aliases
}

/// `modules.dep` lines for the modules read: each with every dependency,
/// deepest last, so that loading them from the end works (modprobe's order).
fn dep_lines(files: &BTreeMap<String, String>, infos: &BTreeMap<String, ModInfo>) -> String {
    let mut text = String::new();
    for (name, info) in infos {
        // Post-order: every dependency after the ones it needs.
        let mut order: Vec<&str> = Vec::new();
        let mut stack: Vec<(&str, bool)> = info
            .depends
            .iter()
            .rev()
            .map(|d| (d.as_str(), false))
            .collect();
        let mut seen: BTreeSet<&str> = BTreeSet::from([name.as_str()]);
        while let Some((module, expanded)) = stack.pop() {
            if expanded {
                order.push(module);
                continue;
            }
            if !seen.insert(module) {
                continue;
            }
            stack.push((module, true));
            if let Some(deps) = infos.get(module).map(|i| &i.depends) {
                stack.extend(deps.iter().rev().map(|d| (d.as_str(), false)));
            }
        }
        let paths: Vec<&str> = order
            .iter()
            .rev()
            .filter_map(|module| files.get(*module).map(String::as_str))
            .collect();
        text.push_str(&files[name]);
        text.push(':');
        for path in paths {
            text.push(' ');
            text.push_str(path);
        }
        text.push('\n');
    }
    text
}

/// The tables for `wanted` from the kernel module directory `dir`, whose
/// `modules.builtin` is `builtin`.
pub fn from_modinfo(dir: &Path, builtin: &str, wanted: &[String]) -> Result<Tables, DepmodError> {
    let files = module_files(dir)?;
    let builtin: BTreeSet<String> = builtin.lines().map(|line| name_of(line.trim())).collect();
    let builtin_modinfo = fs::read(dir.join("modules.builtin.modinfo")).unwrap_or_default();
    let order: Vec<String> = fs::read_to_string(dir.join("modules.order"))
        .unwrap_or_default()
        .lines()
        .map(|line| name_of(line.trim()))
        .collect();
    let mut kernel = Kernel {
        files: &files,
        read: |path: &str| read_modinfo(dir, path),
        builtin: &builtin,
        builtin_aliases: &builtin_aliases(&builtin_modinfo),
        order: &order,
    };
    tables(&mut kernel, wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(depends: &[&str], softdeps: &[&str], aliases: &[&str]) -> ModInfo {
        let owned = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect();
        ModInfo {
            depends: owned(depends),
            softdeps: owned(softdeps),
            aliases: owned(aliases),
        }
    }

    #[test]
    fn modinfo_is_read_as_depmod_reads_it() {
        let section = b"license=GPL\0softdep=pre: crc32c\0alias=fs-ext4\0depends=mbcache,jbd2,crc16\0name=ext4\0\0\0alias=ext3\0";
        assert_eq!(
            parse_modinfo(section),
            info(
                &["mbcache", "jbd2", "crc16"],
                &["pre: crc32c"],
                &["fs-ext4", "ext3"]
            )
        );
        assert_eq!(parse_modinfo(b"depends=\0"), ModInfo::default());
        assert_eq!(
            parse_modinfo(b"depends=virtio-ring\0").depends,
            ["virtio_ring"]
        );
    }

    /// A relocatable ELF object with `section` as its `.modinfo`.
    fn module_object(section: &[u8]) -> Vec<u8> {
        use object::write::Object;
        use object::{Architecture, BinaryFormat, Endianness, SectionKind};
        let mut object = Object::new(BinaryFormat::Elf, Architecture::X86_64, Endianness::Little);
        let id = object.add_section(Vec::new(), b".modinfo".to_vec(), SectionKind::ReadOnlyData);
        object.set_section_data(id, section.to_vec(), 1);
        object.write().expect("an ELF object")
    }

    #[test]
    fn modinfo_is_read_from_plain_and_compressed_modules() {
        let dir = std::env::temp_dir().join(format!("vminit-depmod-{}", std::process::id()));
        fs::create_dir_all(dir.join("kernel/fs")).unwrap();
        let module = module_object(b"depends=jbd2,mbcache\0softdep=pre: crc32c\0alias=fs-ext4\0");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut gz, &module).unwrap();
        let mut xz = Vec::new();
        lzma_rs::xz_compress(&mut module.as_slice(), &mut xz).unwrap();
        let zst = ruzstd::encoding::compress_to_vec(
            module.as_slice(),
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        let files = [
            ("kernel/fs/a.ko", module.clone()),
            ("kernel/fs/b.ko.gz", gz.finish().unwrap()),
            ("kernel/fs/c.ko.xz", xz),
            ("kernel/fs/d.ko.zst", zst),
        ];
        for (path, bytes) in &files {
            fs::write(dir.join(path), bytes).unwrap();
            assert_eq!(
                read_modinfo(&dir, path).unwrap(),
                info(&["jbd2", "mbcache"], &["pre: crc32c"], &["fs-ext4"]),
                "{path}"
            );
        }
        fs::write(dir.join("kernel/fs/bad.ko"), b"not ELF").unwrap();
        let error = read_modinfo(&dir, "kernel/fs/bad.ko")
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with(
                "The module kernel/fs/bad.ko is not an ELF object with a .modinfo section"
            ),
            "{error}"
        );
        let names: Vec<String> = module_files(&dir).unwrap().into_keys().collect();
        assert_eq!(names, ["a", "b", "bad", "c", "d"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn builtin_aliases_name_their_module() {
        let text =
            b"crc32c_generic.alias=crypto-crc32c\0crc32c_generic.alias=crc32c\0ext4.license=GPL\0";
        assert_eq!(
            builtin_aliases(text),
            [
                ("crypto-crc32c".to_owned(), "crc32c_generic".to_owned()),
                ("crc32c".to_owned(), "crc32c_generic".to_owned())
            ]
        );
    }

    /// A small kernel: ext4 → jbd2 → crc32c (soft, by alias), mbcache;
    /// virtio_blk → virtio_ring, virtio; virtio_pci built in.
    fn kernel_infos() -> BTreeMap<&'static str, ModInfo> {
        BTreeMap::from([
            (
                "ext4",
                info(&["mbcache", "jbd2"], &["pre: crc32c"], &["fs-ext4"]),
            ),
            ("jbd2", info(&[], &["pre: crc32c"], &[])),
            ("mbcache", info(&[], &[], &[])),
            ("crc32c_intel", info(&[], &[], &["crc32c", "crypto-crc32c"])),
            ("virtio_blk", info(&["virtio_ring", "virtio"], &[], &[])),
            ("virtio_ring", info(&["virtio"], &[], &[])),
            ("virtio", info(&[], &[], &[])),
            ("unrelated", info(&[], &[], &["x"])),
        ])
    }

    fn run_tables(wanted: &[&str], reads: &mut Vec<String>) -> Tables {
        let infos = kernel_infos();
        let files: BTreeMap<String, String> = infos
            .keys()
            .map(|name| {
                (
                    (*name).to_owned(),
                    format!("kernel/{}.ko", name.replace('_', "-")),
                )
            })
            .collect();
        let builtin = BTreeSet::from(["virtio_pci".to_owned()]);
        let builtin_aliases = [("crc32c".to_owned(), "crc32c_generic".to_owned())];
        let order = ["crc32c_intel".to_owned(), "crc32c_generic".to_owned()];
        let mut kernel = Kernel {
            files: &files,
            read: |path: &str| {
                reads.push(path.to_owned());
                // One module the image does not need cannot be read.
                if path.contains("unrelated") {
                    return Err(DepmodError::Read {
                        path: path.to_owned(),
                        source: io::Error::from(io::ErrorKind::InvalidData),
                    });
                }
                Ok(infos[name_of(path).as_str()].clone())
            },
            builtin: &builtin,
            builtin_aliases: &builtin_aliases,
            order: &order,
        };
        let wanted: Vec<String> = wanted.iter().map(|s| (*s).to_owned()).collect();
        tables(&mut kernel, &wanted).expect("tables")
    }

    #[test]
    fn every_dependency_is_listed_deepest_last() {
        let mut reads = Vec::new();
        let tables = run_tables(&["virtio_blk", "virtio_pci", "missing"], &mut reads);
        assert_eq!(
            tables.dep,
            "kernel/virtio.ko:\n\
             kernel/virtio-blk.ko: kernel/virtio-ring.ko kernel/virtio.ko\n\
             kernel/virtio-ring.ko: kernel/virtio.ko\n"
        );
        assert_eq!(tables.softdep, "");
        // No soft dependency by alias: no module read beyond those needed.
        assert_eq!(reads.len(), 3);
    }

    #[test]
    fn a_soft_dependency_by_alias_is_found_among_all_modules_and_builtins() {
        let mut reads = Vec::new();
        let tables = run_tables(&["ext4"], &mut reads);
        assert_eq!(
            tables.softdep,
            "softdep ext4 pre: crc32c\nsoftdep jbd2 pre: crc32c\n"
        );
        assert_eq!(
            tables.alias,
            "alias crc32c crc32c_intel\nalias crc32c crc32c_generic\n"
        );
        assert!(tables.dep.contains("kernel/crc32c-intel.ko:\n"));
        assert!(
            tables
                .dep
                .contains("kernel/ext4.ko: kernel/jbd2.ko kernel/mbcache.ko\n")
        );
        let index = vminit::machine::modules::Index::parse(&tables.dep, "virtio_pci.ko\n")
            .with_soft(&tables.softdep, &tables.alias);
        let plan: Vec<String> = index
            .plan(&["ext4".to_owned()])
            .expect("plan")
            .into_iter()
            .map(|load| load.name)
            .collect();
        assert_eq!(plan, ["mbcache", "crc32c_intel", "jbd2", "ext4"]);
    }
}
