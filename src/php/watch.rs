//! Worker mode's file watcher (`worker.watch`, for development): a thread
//! that looks at the files under a directory twice a second and, when one
//! of them changed, appeared or went away, asks every worker script thread
//! to start its script again. It polls rather than using inotify, so it
//! sees changes on any file system (bind mounts, network shares) the same
//! way.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use super::worker_mode::AppQueue;

/// How often the tree is looked at.
const TICK: Duration = Duration::from_millis(500);

/// The files that count: what an app's code and config are made of.
const EXTENSIONS: [&str; 7] = ["php", "inc", "env", "twig", "yaml", "yml", "ini"];

/// What the tree looked like: each file's path, size and modification time.
type Fingerprint = Vec<(PathBuf, u64, Option<SystemTime>)>;

/// Starts the watcher of `dir` for `app`; it ends when the app's queue does.
pub(super) fn spawn(dir: PathBuf, app: Arc<AppQueue>) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("php-watch".into())
        .spawn(move || {
            let mut last = fingerprint(&dir);
            while !app.finished() {
                std::thread::sleep(TICK);
                let now = fingerprint(&dir);
                if now != last {
                    tracing::info!(
                        "worker script: files changed under {}; starting it again",
                        dir.display()
                    );
                    app.restart_all();
                    last = now;
                }
            }
        })
}

/// Every watched file under `dir`, sorted; hidden directories skipped.
fn fingerprint(dir: &Path) -> Fingerprint {
    let mut files = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(next) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&next) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            if meta.is_dir() {
                let hidden = entry.file_name().to_string_lossy().starts_with('.');
                if !hidden {
                    todo.push(path);
                }
            } else if watched(&path) {
                files.push((path, meta.len(), meta.modified().ok()));
            }
        }
    }
    files.sort();
    files
}

fn watched(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.contains(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_changed_or_removed_code_file_changes_the_fingerprint() {
        let dir = std::env::temp_dir().join(format!("tfpm-watch-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::create_dir_all(dir.join(".git")).unwrap();
        std::fs::write(dir.join("index.php"), "<?php").unwrap();
        let first = fingerprint(&dir);
        assert_eq!(first.len(), 1);
        std::fs::write(dir.join("notes.txt"), "not code").unwrap();
        std::fs::write(dir.join(".git/HEAD.php"), "hidden").unwrap();
        assert_eq!(
            fingerprint(&dir),
            first,
            "other files and hidden dirs do not count"
        );
        std::fs::write(dir.join("src/App.php"), "<?php").unwrap();
        let second = fingerprint(&dir);
        assert_ne!(second, first);
        std::fs::write(dir.join("src/App.php"), "<?php // longer").unwrap();
        assert_ne!(fingerprint(&dir), second);
        std::fs::remove_file(dir.join("src/App.php")).unwrap();
        assert_eq!(fingerprint(&dir), first);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
