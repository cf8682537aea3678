//! Safe extraction of an uploaded build context (a gzipped tar, plain tar also accepted).
//!
//! Nothing in the archive may land outside the destination:
//! * absolute paths and `..` components are refused;
//! * symbolic links must point inside the destination (judged from where the link sits), and
//!   no entry may be written through a symbolic link;
//! * hard links must name an entry already extracted (it is copied);
//! * device files and FIFOs are refused;
//! * the compressed size, the unpacked size (counting real bytes, not header claims) and the
//!   number of entries are limited, so a small archive cannot unpack into a disk-filling bomb.
//!
//! Modes keep only the permission bits (no setuid/setgid/sticky).

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use flate2::read::GzDecoder;
use tar::EntryType;

/// Bounds of one extraction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtractLimits {
    /// Largest archive accepted as uploaded.
    pub max_compressed_bytes: u64,
    /// Largest total size of the extracted files.
    pub max_unpacked_bytes: u64,
    /// Most entries (files, directories, links) in the archive.
    pub max_entries: u64,
}

impl ExtractLimits {
    pub fn new(max_compressed_bytes: u64, max_unpacked_bytes: u64) -> ExtractLimits {
        ExtractLimits {
            max_compressed_bytes,
            max_unpacked_bytes,
            max_entries: DEFAULT_MAX_ENTRIES,
        }
    }
}

pub const DEFAULT_MAX_ENTRIES: u64 = 200_000;

/// What was extracted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExtractStats {
    pub entries: u64,
    pub files: u64,
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("the build context is {size} bytes, more than the limit of {limit} bytes")]
    CompressedTooLarge { size: u64, limit: u64 },
    #[error("the build context unpacks to more than the limit of {limit} bytes")]
    UnpackedTooLarge { limit: u64 },
    #[error("the build context has more than {limit} entries")]
    TooManyEntries { limit: u64 },
    #[error("the build context contains an absolute path: {0}")]
    AbsolutePath(String),
    #[error("the build context contains a path with '..': {0}")]
    ParentDir(String),
    #[error(
        "the build context contains a symbolic link pointing outside of it: {path} -> {target}"
    )]
    SymlinkEscapes { path: String, target: String },
    #[error("the build context contains a hard link to something that is not an earlier file in it: {path} -> {target}")]
    BadHardLink { path: String, target: String },
    #[error("the build context contains an entry inside a symbolic link: {0}")]
    ThroughSymlink(String),
    #[error("the build context contains a device file or FIFO, which is not allowed: {0}")]
    SpecialFile(String),
    #[error("the build context contains an entry of unsupported type {kind}: {path}")]
    UnsupportedEntry { path: String, kind: String },
    #[error("the build context has a file and a directory both named {0}")]
    Conflict(String),
    #[error("the build context is not a valid (gzipped) tar archive: {0}")]
    Corrupt(String),
    #[error("extracting the build context failed: {0}")]
    Io(String),
}

/// Errors the size-limiting reader raises, recognised on the way out.
const UNPACKED_LIMIT_MARK: &str = "racetrack: unpacked size limit exceeded";

/// Counts every byte coming out of the decompressor; fails past the limit.
struct LimitedReader<R> {
    inner: R,
    read: u64,
    limit: u64,
}

impl<R: Read> Read for LimitedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.limit {
            return Err(io::Error::other(UNPACKED_LIMIT_MARK));
        }
        Ok(n)
    }
}

/// Extracts `archive` (gzip-compressed or plain tar) into `dest`, which must exist and should be
/// empty.
pub fn extract_build_context(
    archive: &[u8],
    dest: &Path,
    limits: &ExtractLimits,
) -> Result<ExtractStats, ExtractError> {
    if archive.len() as u64 > limits.max_compressed_bytes {
        return Err(ExtractError::CompressedTooLarge {
            size: archive.len() as u64,
            limit: limits.max_compressed_bytes,
        });
    }
    // Tar headers and padding also come out of the decompressor: allow some slack on top of
    // the file data limit, which is enforced exactly below.
    let stream_limit = limits
        .max_unpacked_bytes
        .saturating_add(limits.max_entries.saturating_mul(1024))
        .saturating_add(64 << 20);
    let reader: Box<dyn Read> = if archive.starts_with(&[0x1f, 0x8b]) {
        Box::new(GzDecoder::new(archive))
    } else {
        Box::new(archive)
    };
    let reader = LimitedReader {
        inner: reader,
        read: 0,
        limit: stream_limit,
    };
    let dest =
        fs::canonicalize(dest).map_err(|e| ExtractError::Io(format!("{}: {e}", dest.display())))?;
    let mut extractor = Extractor {
        dest,
        limits: *limits,
        stats: ExtractStats::default(),
    };
    let mut tar = tar::Archive::new(reader);
    let entries = tar.entries().map_err(|e| map_io(e, limits))?;
    for entry in entries {
        let entry = entry.map_err(|e| map_io(e, limits))?;
        extractor.entry(entry)?;
    }
    extractor.check_symlinks()?;
    Ok(extractor.stats)
}

fn map_io(e: io::Error, limits: &ExtractLimits) -> ExtractError {
    if e.to_string().contains(UNPACKED_LIMIT_MARK) {
        ExtractError::UnpackedTooLarge {
            limit: limits.max_unpacked_bytes,
        }
    } else if matches!(
        e.kind(),
        io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput | io::ErrorKind::UnexpectedEof
    ) || e.to_string().contains("corrupt")
        || e.to_string().contains("invalid")
    {
        ExtractError::Corrupt(e.to_string())
    } else {
        ExtractError::Io(e.to_string())
    }
}

struct Extractor {
    dest: PathBuf,
    limits: ExtractLimits,
    stats: ExtractStats,
}

/// `path` as plain relative components: no root, no prefix, no `..`; `.` dropped.
fn relative_components(raw: &Path) -> Result<Vec<String>, ExtractError> {
    let shown = raw.display().to_string();
    let mut parts = Vec::new();
    for component in raw.components() {
        match component {
            Component::Normal(part) => parts.push(
                part.to_str()
                    .ok_or_else(|| ExtractError::Corrupt(format!("non UTF-8 path {shown}")))?
                    .to_string(),
            ),
            Component::CurDir => {}
            Component::ParentDir => return Err(ExtractError::ParentDir(shown)),
            Component::RootDir | Component::Prefix(_) => {
                return Err(ExtractError::AbsolutePath(shown))
            }
        }
    }
    Ok(parts)
}

impl Extractor {
    fn entry<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<(), ExtractError> {
        self.stats.entries += 1;
        if self.stats.entries > self.limits.max_entries {
            return Err(ExtractError::TooManyEntries {
                limit: self.limits.max_entries,
            });
        }
        let raw_path = entry
            .path()
            .map_err(|e| ExtractError::Corrupt(e.to_string()))?
            .into_owned();
        let shown = raw_path.display().to_string();
        let parts = relative_components(&raw_path)?;
        let kind = entry.header().entry_type();
        if parts.is_empty() {
            // The archive root (`./`) itself.
            return if kind.is_dir() {
                Ok(())
            } else {
                Err(ExtractError::Corrupt(format!(
                    "entry without a name: {shown}"
                )))
            };
        }
        let target = self.prepare_parents(&parts, &shown)?;
        let mode = entry.header().mode().unwrap_or(0o644) & 0o777;

        match kind {
            EntryType::Directory => {
                match fs::symlink_metadata(&target) {
                    Ok(meta) if meta.is_dir() => {}
                    Ok(meta) if meta.file_type().is_symlink() => {
                        return Err(ExtractError::ThroughSymlink(shown))
                    }
                    Ok(_) => return Err(ExtractError::Conflict(shown)),
                    Err(_) => fs::create_dir(&target).map_err(|e| io_err(&shown, e))?,
                }
                set_mode(&target, (mode | 0o700) & 0o777);
            }
            EntryType::Regular | EntryType::Continuous => {
                let size = entry.header().size().unwrap_or(0);
                let remaining = self.limits.max_unpacked_bytes - self.stats.bytes;
                if size > remaining {
                    return Err(ExtractError::UnpackedTooLarge {
                        limit: self.limits.max_unpacked_bytes,
                    });
                }
                self.remove_non_dir(&target, &shown)?;
                let mut file = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&target)
                    .map_err(|e| io_err(&shown, e))?;
                let copied = copy_limited(&mut entry, &mut file, remaining)
                    .map_err(|e| map_io(e, &self.limits))?;
                if copied > remaining {
                    return Err(ExtractError::UnpackedTooLarge {
                        limit: self.limits.max_unpacked_bytes,
                    });
                }
                self.stats.bytes += copied;
                self.stats.files += 1;
                drop(file);
                set_mode(&target, mode);
            }
            EntryType::Symlink => {
                let link = entry
                    .link_name()
                    .map_err(|e| ExtractError::Corrupt(e.to_string()))?
                    .ok_or_else(|| {
                        ExtractError::Corrupt(format!("symbolic link without target: {shown}"))
                    })?
                    .into_owned();
                let link_shown = link.display().to_string();
                if link.is_absolute() || !stays_inside(&parts[..parts.len() - 1], &link) {
                    return Err(ExtractError::SymlinkEscapes {
                        path: shown,
                        target: link_shown,
                    });
                }
                self.remove_non_dir(&target, &shown)?;
                std::os::unix::fs::symlink(&link, &target).map_err(|e| io_err(&shown, e))?;
            }
            EntryType::Link => {
                let link = entry
                    .link_name()
                    .map_err(|e| ExtractError::Corrupt(e.to_string()))?
                    .ok_or_else(|| {
                        ExtractError::Corrupt(format!("hard link without target: {shown}"))
                    })?
                    .into_owned();
                let bad = || ExtractError::BadHardLink {
                    path: shown.clone(),
                    target: link.display().to_string(),
                };
                let link_parts = relative_components(&link).map_err(|_| bad())?;
                if link_parts.is_empty() {
                    return Err(bad());
                }
                let source = self
                    .prepare_parents(&link_parts, &shown)
                    .map_err(|_| bad())?;
                let meta = fs::symlink_metadata(&source).map_err(|_| bad())?;
                if !meta.is_file() {
                    return Err(bad());
                }
                let remaining = self.limits.max_unpacked_bytes - self.stats.bytes;
                if meta.len() > remaining {
                    return Err(ExtractError::UnpackedTooLarge {
                        limit: self.limits.max_unpacked_bytes,
                    });
                }
                if source == target {
                    return Ok(());
                }
                self.remove_non_dir(&target, &shown)?;
                let copied = fs::copy(&source, &target).map_err(|e| io_err(&shown, e))?;
                self.stats.bytes += copied;
                self.stats.files += 1;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                return Err(ExtractError::SpecialFile(shown))
            }
            EntryType::XGlobalHeader | EntryType::XHeader => {}
            other => {
                return Err(ExtractError::UnsupportedEntry {
                    path: shown,
                    kind: format!("{other:?}"),
                })
            }
        }
        Ok(())
    }

    /// Creates the parent directories of `parts` (refusing to go through symlinks or files)
    /// and returns the entry's full path.
    fn prepare_parents(&self, parts: &[String], shown: &str) -> Result<PathBuf, ExtractError> {
        let mut path = self.dest.clone();
        for part in &parts[..parts.len() - 1] {
            path.push(part);
            match fs::symlink_metadata(&path) {
                Ok(meta) if meta.is_dir() => {}
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(ExtractError::ThroughSymlink(shown.to_string()))
                }
                Ok(_) => return Err(ExtractError::Conflict(shown.to_string())),
                Err(_) => fs::create_dir(&path).map_err(|e| io_err(shown, e))?,
            }
        }
        path.push(&parts[parts.len() - 1]);
        Ok(path)
    }

    /// A later entry of the same name replaces a file or link (as tar does), never a directory.
    fn remove_non_dir(&self, target: &Path, shown: &str) -> Result<(), ExtractError> {
        match fs::symlink_metadata(target) {
            Ok(meta) if meta.is_dir() => Err(ExtractError::Conflict(shown.to_string())),
            Ok(_) => fs::remove_file(target).map_err(|e| io_err(shown, e)),
            Err(_) => Ok(()),
        }
    }

    /// Links chained through other links can still resolve outside: check where each resolves.
    fn check_symlinks(&self) -> Result<(), ExtractError> {
        let mut stack = vec![self.dest.clone()];
        while let Some(dir) = stack.pop() {
            let entries = fs::read_dir(&dir).map_err(|e| ExtractError::Io(e.to_string()))?;
            for entry in entries {
                let entry = entry.map_err(|e| ExtractError::Io(e.to_string()))?;
                let file_type = entry
                    .file_type()
                    .map_err(|e| ExtractError::Io(e.to_string()))?;
                let path = entry.path();
                if file_type.is_symlink() {
                    if let Ok(resolved) = fs::canonicalize(&path) {
                        if !resolved.starts_with(&self.dest) {
                            let rel = path.strip_prefix(&self.dest).unwrap_or(&path);
                            return Err(ExtractError::SymlinkEscapes {
                                path: rel.display().to_string(),
                                target: fs::read_link(&path)
                                    .map(|t| t.display().to_string())
                                    .unwrap_or_default(),
                            });
                        }
                    }
                } else if file_type.is_dir() {
                    stack.push(path);
                }
            }
        }
        Ok(())
    }
}

/// Whether `link`, relative to the directory `parent` (components below the root), stays at
/// or below the root, looking only at the names.
fn stays_inside(parent: &[String], link: &Path) -> bool {
    let mut depth = parent.len() as i64;
    for component in link.components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

/// Copies at most `limit + 1` bytes (so the caller can tell it went over).
fn copy_limited<R: Read, W: Write>(from: &mut R, to: &mut W, limit: u64) -> io::Result<u64> {
    let mut limited = from.take(limit.saturating_add(1));
    io::copy(&mut limited, to)
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let _ = fs::set_permissions(path, fs::Permissions::from_mode(mode));
}

fn io_err(path: &str, e: io::Error) -> ExtractError {
    ExtractError::Io(format!("{path}: {e}"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use flate2::Compression;

    /// Raw entries for crafting hostile archives.
    pub enum E<'a> {
        File(&'a str, &'a [u8]),
        Dir(&'a str),
        Symlink(&'a str, &'a str),
        HardLink(&'a str, &'a str),
        Fifo(&'a str),
        CharDev(&'a str),
    }

    /// Writes a header's name bytes directly, bypassing the tar crate's own path checks.
    fn set_raw_name(header: &mut tar::Header, name: &str) {
        let bytes = name.as_bytes();
        let old = header.as_old_mut();
        old.name = [0; 100];
        old.name[..bytes.len()].copy_from_slice(bytes);
    }

    fn set_raw_link(header: &mut tar::Header, link: &str) {
        let bytes = link.as_bytes();
        let old = header.as_old_mut();
        old.linkname = [0; 100];
        old.linkname[..bytes.len()].copy_from_slice(bytes);
    }

    pub fn tar_gz(entries: &[E<'_>]) -> Vec<u8> {
        let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
        for entry in entries {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            h.set_mtime(0);
            let (name, data): (&str, &[u8]) = match entry {
                E::File(name, data) => {
                    h.set_entry_type(EntryType::Regular);
                    h.set_size(data.len() as u64);
                    (name, data)
                }
                E::Dir(name) => {
                    h.set_entry_type(EntryType::Directory);
                    h.set_mode(0o755);
                    h.set_size(0);
                    (name, &[])
                }
                E::Symlink(name, target) => {
                    h.set_entry_type(EntryType::Symlink);
                    set_raw_link(&mut h, target);
                    h.set_size(0);
                    (name, &[])
                }
                E::HardLink(name, target) => {
                    h.set_entry_type(EntryType::Link);
                    set_raw_link(&mut h, target);
                    h.set_size(0);
                    (name, &[])
                }
                E::Fifo(name) => {
                    h.set_entry_type(EntryType::Fifo);
                    h.set_size(0);
                    (name, &[])
                }
                E::CharDev(name) => {
                    h.set_entry_type(EntryType::Char);
                    h.set_size(0);
                    (name, &[])
                }
            };
            set_raw_name(&mut h, name);
            h.set_cksum();
            builder.append(&h, data).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    fn limits() -> ExtractLimits {
        ExtractLimits::new(1 << 20, 4 << 20)
    }

    fn extract(entries: &[E<'_>]) -> (tempfile::TempDir, Result<ExtractStats, ExtractError>) {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("ws");
        fs::create_dir(&dest).unwrap();
        let result = extract_build_context(&tar_gz(entries), &dest, &limits());
        (dir, result)
    }

    #[test]
    fn extracts_a_normal_context() {
        let (dir, result) = extract(&[
            E::Dir("./"),
            E::File("./fatman.yaml", b"name: adder\n"),
            E::Dir("./src"),
            E::File("./src/main.py", b"print(1)\n"),
            E::File("deep/er/file.txt", b"x"),
            E::Symlink("./link.py", "src/main.py"),
            E::Symlink("./src/up.yaml", "../fatman.yaml"),
            E::HardLink("./copy.yaml", "fatman.yaml"),
        ]);
        let stats = result.unwrap();
        let ws = dir.path().join("ws");
        assert_eq!(
            fs::read_to_string(ws.join("src/main.py")).unwrap(),
            "print(1)\n"
        );
        assert_eq!(
            fs::read_to_string(ws.join("link.py")).unwrap(),
            "print(1)\n"
        );
        assert_eq!(
            fs::read_to_string(ws.join("src/up.yaml")).unwrap(),
            "name: adder\n"
        );
        assert_eq!(
            fs::read_to_string(ws.join("copy.yaml")).unwrap(),
            "name: adder\n"
        );
        assert_eq!(
            fs::read_to_string(ws.join("deep/er/file.txt")).unwrap(),
            "x"
        );
        assert_eq!(stats.files, 4);
    }

    #[test]
    fn refuses_parent_dir_paths() {
        let (dir, result) = extract(&[E::File("../evil.txt", b"x")]);
        assert!(
            matches!(result, Err(ExtractError::ParentDir(_))),
            "{result:?}"
        );
        assert!(!dir.path().join("evil.txt").exists());
        let (_, result) = extract(&[E::File("a/../../evil.txt", b"x")]);
        assert!(
            matches!(result, Err(ExtractError::ParentDir(_))),
            "{result:?}"
        );
    }

    #[test]
    fn refuses_absolute_paths() {
        let (_, result) = extract(&[E::File("/tmp/racetrack-evil.txt", b"x")]);
        let err = result.unwrap_err();
        assert!(matches!(err, ExtractError::AbsolutePath(_)), "{err:?}");
        assert!(err.to_string().contains("absolute path"));
        assert!(!Path::new("/tmp/racetrack-evil.txt").exists());
    }

    #[test]
    fn refuses_symlinks_escaping() {
        for (name, target) in [
            ("out", "../outside"),
            ("abs", "/etc/passwd"),
            ("a/b/c", "../../../x"),
        ] {
            let (_, result) = extract(&[E::Symlink(name, target)]);
            assert!(
                matches!(result, Err(ExtractError::SymlinkEscapes { .. })),
                "{name} -> {target}: {result:?}"
            );
        }
    }

    #[test]
    fn refuses_writing_through_a_symlink() {
        // A link to a directory inside, then a file "inside" the link.
        let (_, result) = extract(&[
            E::Dir("sub"),
            E::Symlink("l", "sub"),
            E::File("l/file", b"x"),
        ]);
        assert!(
            matches!(result, Err(ExtractError::ThroughSymlink(_))),
            "{result:?}"
        );
    }

    #[test]
    fn refuses_chained_symlinks_that_escape() {
        // `s` points at the root (fine by itself); `s/..` would then leave it.
        let (_, result) = extract(&[E::Symlink("s", "."), E::Symlink("t", "s/../..")]);
        assert!(
            matches!(result, Err(ExtractError::SymlinkEscapes { .. })),
            "{result:?}"
        );
        let (_, result) = extract(&[
            E::Dir("d"),
            E::Symlink("d/s", ".."),
            E::Symlink("x", "d/s/.."),
        ]);
        assert!(
            matches!(result, Err(ExtractError::SymlinkEscapes { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn refuses_hard_links_outside_or_to_nothing() {
        for target in ["../../etc/passwd", "/etc/passwd", "missing.txt"] {
            let (_, result) = extract(&[E::HardLink("h", target)]);
            assert!(
                matches!(result, Err(ExtractError::BadHardLink { .. })),
                "{target}: {result:?}"
            );
        }
    }

    #[test]
    fn refuses_device_files_and_fifos() {
        let (_, result) = extract(&[E::Fifo("pipe")]);
        assert!(
            matches!(result, Err(ExtractError::SpecialFile(_))),
            "{result:?}"
        );
        let (_, result) = extract(&[E::CharDev("null")]);
        assert!(
            matches!(result, Err(ExtractError::SpecialFile(_))),
            "{result:?}"
        );
    }

    #[test]
    fn refuses_oversized_uploads() {
        let dir = tempfile::tempdir().unwrap();
        let archive = tar_gz(&[E::File("a", b"hello")]);
        let limits = ExtractLimits::new(archive.len() as u64 - 1, 1 << 20);
        let err = extract_build_context(&archive, dir.path(), &limits).unwrap_err();
        assert!(
            matches!(err, ExtractError::CompressedTooLarge { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn refuses_zip_bombs() {
        // 8 MiB of zeros compresses to a few KiB but unpacks past the 4 MiB limit.
        let zeros = vec![0u8; 8 << 20];
        let archive = tar_gz(&[E::File("bomb", &zeros)]);
        assert!(archive.len() < 64 << 10);
        let dir = tempfile::tempdir().unwrap();
        let err = extract_build_context(&archive, dir.path(), &limits()).unwrap_err();
        assert!(
            matches!(err, ExtractError::UnpackedTooLarge { .. }),
            "{err:?}"
        );
        // Many files that are each small add up too.
        let chunk = vec![0u8; 1 << 20];
        let archive = tar_gz(&[
            E::File("1", &chunk),
            E::File("2", &chunk),
            E::File("3", &chunk),
            E::File("4", &chunk),
            E::File("5", &chunk),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let err = extract_build_context(&archive, dir.path(), &limits()).unwrap_err();
        assert!(
            matches!(err, ExtractError::UnpackedTooLarge { .. }),
            "{err:?}"
        );
        // Hard links count their copied size.
        let archive = tar_gz(&[
            E::File("big", &vec![1u8; 3 << 20]),
            E::HardLink("h1", "big"),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let err = extract_build_context(&archive, dir.path(), &limits()).unwrap_err();
        assert!(
            matches!(err, ExtractError::UnpackedTooLarge { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn refuses_too_many_entries() {
        let names: Vec<String> = (0..20).map(|i| format!("f{i}")).collect();
        let entries: Vec<E<'_>> = names.iter().map(|n| E::File(n, b"")).collect();
        let dir = tempfile::tempdir().unwrap();
        let mut limits = limits();
        limits.max_entries = 10;
        let err = extract_build_context(&tar_gz(&entries), dir.path(), &limits).unwrap_err();
        assert!(
            matches!(err, ExtractError::TooManyEntries { limit: 10 }),
            "{err:?}"
        );
    }

    #[test]
    fn refuses_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let mut garbage = vec![0x1f, 0x8b];
        garbage.extend_from_slice(b"definitely not gzip data at all, no no");
        let err = extract_build_context(&garbage, dir.path(), &limits()).unwrap_err();
        assert!(
            matches!(err, ExtractError::Corrupt(_) | ExtractError::Io(_)),
            "{err:?}"
        );
    }

    #[test]
    fn strips_special_mode_bits() {
        use std::os::unix::fs::PermissionsExt;
        let mut builder = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(EntryType::Regular);
        h.set_mode(0o4755);
        h.set_size(1);
        h.set_path("suid").unwrap();
        h.set_cksum();
        builder.append(&h, &b"x"[..]).unwrap();
        let archive = builder.into_inner().unwrap();
        let dir = tempfile::tempdir().unwrap();
        extract_build_context(&archive, dir.path(), &limits()).unwrap();
        let mode = fs::metadata(dir.path().join("suid"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o755);
    }
}
