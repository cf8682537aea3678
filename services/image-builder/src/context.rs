//! Docker build contexts: a folder turned into a tar stream, honouring a simple `.dockerignore`
//! (the rules: `racetrack_model::dockerignore`).
//!
//! Entries are written with deterministic metadata (owner root, fixed mtime, modes 0644/0755)
//! and symbolic links stay links, so nothing outside the folder is read and Docker's layer cache
//! sees the same context for the same content.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use tokio::sync::mpsc;

pub use racetrack_model::dockerignore::{DockerIgnore, DOCKERIGNORE};

/// Reads `root/.dockerignore` (none: nothing ignored).
fn load_dockerignore(root: &Path) -> DockerIgnore {
    std::fs::read_to_string(root.join(DOCKERIGNORE))
        .map(|t| DockerIgnore::parse(&t))
        .unwrap_or_default()
}

/// An extra file put into the context whatever `.dockerignore` says (generated Dockerfile,
/// CA bundle).
#[derive(Debug, Clone)]
pub struct ExtraFile {
    pub name: String,
    pub data: Vec<u8>,
}

/// Writes the tar of `root` to `out`. `always_include` names (relative, `/`-separated) are never
/// ignored; `extra` files are appended (and replace same-named files of the folder).
pub fn write_context<W: Write>(
    root: &Path,
    always_include: &[String],
    extra: &[ExtraFile],
    out: W,
) -> io::Result<W> {
    let ignore = load_dockerignore(root);
    let mut builder = tar::Builder::new(out);
    builder.mode(tar::HeaderMode::Deterministic);
    builder.follow_symlinks(false);
    let skip: Vec<&str> = extra.iter().map(|e| e.name.as_str()).collect();
    add_dir(&mut builder, root, "", &ignore, always_include, &skip)?;
    for file in extra {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(file.data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(1_153_704_088);
        header.set_uid(0);
        header.set_gid(0);
        builder.append_data(&mut header, &file.name, file.data.as_slice())?;
    }
    builder.into_inner()
}

fn add_dir<W: Write>(
    builder: &mut tar::Builder<W>,
    dir: &Path,
    rel: &str,
    ignore: &DockerIgnore,
    always: &[String],
    skip: &[&str],
) -> io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue; // Non UTF-8 names can't be referenced from a Dockerfile anyway.
        };
        let rel_path = if rel.is_empty() {
            name.to_string()
        } else {
            format!("{rel}/{name}")
        };
        if skip.contains(&rel_path.as_str()) {
            continue;
        }
        let forced = always.iter().any(|a| a == &rel_path);
        let excluded = !forced && ignore.is_excluded(&rel_path);
        let file_type = entry.file_type()?;
        let path: PathBuf = entry.path();
        if file_type.is_dir() {
            if !excluded {
                builder.append_path_with_name(&path, &rel_path)?;
            }
            let forced_below = always
                .iter()
                .any(|a| a.starts_with(&format!("{rel_path}/")));
            if !excluded || ignore.has_exceptions() || forced_below {
                add_dir(builder, &path, &rel_path, ignore, always, skip)?;
            }
        } else if (file_type.is_file() || file_type.is_symlink()) && !excluded {
            builder.append_path_with_name(&path, &rel_path)?;
        }
        // Sockets, FIFOs and devices are left out.
    }
    Ok(())
}

/// A `Write` that hands 64 KiB chunks to an async channel (for streaming a tar into the Docker
/// API from a blocking thread).
pub struct ChannelWriter {
    tx: mpsc::Sender<Bytes>,
    buf: Vec<u8>,
}

const CHUNK: usize = 64 * 1024;

impl ChannelWriter {
    pub fn new(tx: mpsc::Sender<Bytes>) -> ChannelWriter {
        ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx.blocking_send(chunk).map_err(|_| {
            io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the Docker engine stopped reading the build context",
            )
        })
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

impl Drop for ChannelWriter {
    fn drop(&mut self) {
        let _ = self.send();
    }
}

/// Streams the context tar of `root`: the receiver side feeds the Docker API; the returned
/// handle reports how writing went.
pub fn stream_context(
    root: PathBuf,
    always_include: Vec<String>,
    extra: Vec<ExtraFile>,
) -> (
    mpsc::Receiver<Bytes>,
    tokio::task::JoinHandle<io::Result<()>>,
) {
    let (tx, rx) = mpsc::channel(16);
    let handle = tokio::task::spawn_blocking(move || {
        let writer = ChannelWriter::new(tx);
        let mut writer = write_context(&root, &always_include, &extra, writer)?;
        writer.flush()
    });
    (rx, handle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_deterministic_tar_honouring_dockerignore() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::write(
            root.join(".dockerignore"),
            "*.log\nignored/\n.fatman.Dockerfile\n",
        )
        .unwrap();
        std::fs::write(root.join("main.py"), "print(1)\n").unwrap();
        std::fs::write(root.join("debug.log"), "x").unwrap();
        std::fs::create_dir(root.join("ignored")).unwrap();
        std::fs::write(root.join("ignored/f"), "x").unwrap();
        std::fs::write(root.join(".fatman.Dockerfile"), "FROM scratch\n").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("link")).unwrap();
        let extra = vec![ExtraFile {
            name: ".racetrack-extra-ca-certs.crt".into(),
            data: b"PEM".to_vec(),
        }];
        let tar1 = write_context(root, &[".fatman.Dockerfile".into()], &extra, Vec::new()).unwrap();
        let tar2 = write_context(root, &[".fatman.Dockerfile".into()], &extra, Vec::new()).unwrap();
        assert_eq!(tar1, tar2, "same content, same tar");

        let mut archive = tar::Archive::new(tar1.as_slice());
        let mut names = Vec::new();
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let name = entry.path().unwrap().display().to_string();
            if name == "link" {
                // Links stay links: /etc/passwd is not read into the context.
                assert_eq!(entry.header().entry_type(), tar::EntryType::Symlink);
            }
            names.push(name);
        }
        assert_eq!(
            names,
            vec![
                ".dockerignore",
                ".fatman.Dockerfile",
                "link",
                "main.py",
                ".racetrack-extra-ca-certs.crt"
            ]
        );
    }
}
