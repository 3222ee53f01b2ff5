//! Log retention: what `<data-dir>/logs/<function>/` may keep, as a
//! CloudWatch log group's retention setting would prune it, so that a
//! function cold-starting all day (one stream per sandbox) cannot fill the
//! disk. Per function: streams older than `max_age` go, then the oldest
//! streams past `max_streams` or past `max_bytes` in all. A stream is its
//! file and its rotated segments (`NAME`, `NAME.1`, ...; `engine::logs`),
//! dated by the newest of them; the newest stream of a function is always
//! kept, so the last thing a function printed can still be read.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How often the pruner looks: streams grow by at most 16 MiB each
/// (`engine::logs::SEGMENT_BYTES`, two files), so a pass every few
/// seconds keeps a function near its bounds.
pub const EVERY: Duration = Duration::from_secs(5);

/// The bounds, from `lamb serve --log-retention`, `--log-max-streams` and
/// `--log-max-mb` (their defaults are there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRetention {
    pub max_age: Duration,
    pub max_streams: usize,
    pub max_bytes: u64,
}

/// One stream on disk: its files, their bytes, its newest modification.
#[derive(Debug)]
struct Stream {
    files: Vec<PathBuf>,
    bytes: u64,
    modified: SystemTime,
}

/// Prunes every function's streams once; answers how many streams went.
pub fn prune(logs_dir: &Path, keep: &LogRetention, now: SystemTime) -> usize {
    let Ok(functions) = std::fs::read_dir(logs_dir) else {
        return 0;
    };
    functions
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| prune_function(&e.path(), keep, now))
        .sum()
}

fn prune_function(dir: &Path, keep: &LogRetention, now: SystemTime) -> usize {
    let mut streams = streams_of(dir);
    // Newest first.
    streams.sort_by_key(|s| std::cmp::Reverse(s.modified));
    let mut kept_bytes = 0u64;
    let mut removed = 0;
    for (i, s) in streams.iter().enumerate() {
        let age = now.duration_since(s.modified).unwrap_or_default();
        let over = i >= keep.max_streams || kept_bytes + s.bytes > keep.max_bytes || age > keep.max_age;
        if i > 0 && over {
            s.files.iter().for_each(|f| drop(std::fs::remove_file(f)));
            removed += 1;
        } else {
            kept_bytes += s.bytes;
        }
    }
    removed
}

/// The streams in a function's log directory, segments grouped by name.
fn streams_of(dir: &Path) -> Vec<Stream> {
    let mut by_name: HashMap<String, Stream> = HashMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    for e in entries.flatten() {
        let Ok(meta) = e.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        let file = e.file_name().to_string_lossy().into_owned();
        let name = match file.rsplit_once('.') {
            Some((base, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => base.to_owned(),
            _ => file,
        };
        let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        let s = by_name.entry(name).or_insert(Stream {
            files: Vec::new(),
            bytes: 0,
            modified,
        });
        s.files.push(e.path());
        s.bytes += meta.len();
        s.modified = s.modified.max(modified);
    }
    by_name.into_values().collect()
}

/// Prunes now and then every [`EVERY`], on a thread of its own (it only
/// reads directories and removes files).
pub fn start(logs_dir: PathBuf, keep: LogRetention) {
    let spawned = std::thread::Builder::new()
        .name("log-retention".into())
        .spawn(move || loop {
            let removed = prune(&logs_dir, &keep, SystemTime::now());
            if removed > 0 {
                tracing::info!(removed, "log streams past their retention removed");
            }
            std::thread::sleep(EVERY);
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start log retention; log streams are kept forever");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(dir: &Path, name: &str, bytes: usize, age_s: u64) {
        let when = SystemTime::now() - Duration::from_secs(age_s);
        for file in [name.to_owned(), format!("{name}.1")] {
            let p = dir.join(file);
            std::fs::write(&p, vec![b'x'; bytes / 2]).unwrap();
            std::fs::File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(when)
                .unwrap();
        }
    }

    fn left(dir: &Path) -> Vec<String> {
        let mut names: Vec<_> = streams_of(dir)
            .into_iter()
            .map(|s| {
                s.files[0]
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .split('.')
                    .next()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        names.sort();
        names
    }

    #[test]
    fn prunes_by_age_count_and_bytes_oldest_first() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("f");
        std::fs::create_dir(&f).unwrap();
        for (i, age) in [10, 20, 30, 40, 50].iter().enumerate() {
            stream(&f, &format!("s{i}"), 100, *age);
        }
        stream(&f, "old", 100, 10_000);
        let keep = |max_age, max_streams, max_bytes| LogRetention {
            max_age: Duration::from_secs(max_age),
            max_streams,
            max_bytes,
        };
        assert_eq!(prune(tmp.path(), &keep(1000, 100, 1 << 20), SystemTime::now()), 1);
        assert_eq!(left(&f), ["s0", "s1", "s2", "s3", "s4"]);
        assert_eq!(prune(tmp.path(), &keep(1000, 4, 1 << 20), SystemTime::now()), 1);
        assert_eq!(left(&f), ["s0", "s1", "s2", "s3"]);
        assert_eq!(prune(tmp.path(), &keep(1000, 100, 250), SystemTime::now()), 2);
        assert_eq!(left(&f), ["s0", "s1"]);
        // The newest stream stays, whatever the bounds.
        assert_eq!(prune(tmp.path(), &keep(0, 0, 0), SystemTime::now()), 1);
        assert_eq!(left(&f), ["s0"]);
    }
}
