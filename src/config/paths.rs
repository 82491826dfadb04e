//! Where the paths written in a job file point. Every relative path in a job file — the
//! `warehouse`, a costs source's `url`, `fx.rates_file` — is relative to the folder the job
//! file is in, never to the working directory, so a job means the same wherever it is run
//! from (a shell in the repository, systemd, a container). URLs and absolute paths are taken
//! as they are.

use std::path::{Component, Path, PathBuf};

/// Resolve `location` (already free of `${VAR}`s) written in the job file at `job_path`.
/// URLs (`s3://…`, `https://…`, `file://…`, `memory://`) and absolute paths are returned
/// unchanged; a relative path becomes an absolute path under the job file's folder.
pub fn resolve_job_path(job_path: &Path, location: &str) -> String {
    if location.contains("://") || Path::new(location).is_absolute() {
        return location.to_string();
    }
    let dir = job_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let dir = if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        // A job path given relative to the working directory: the folder is that one's.
        std::env::current_dir()
            .map(|cwd| cwd.join(dir))
            .unwrap_or_else(|_| dir.to_path_buf())
    };
    // Lexically, as Cargo does: `jobs/../costs.csv` is shown and opened as `costs.csv`.
    let mut joined = PathBuf::new();
    for component in dir.join(location).components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(joined.components().next_back(), Some(Component::Normal(_))) =>
            {
                joined.pop();
            }
            other => joined.push(other),
        }
    }
    joined.display().to_string()
}

/// What is wrong with a file that could not be read, in words: missing is not invalid.
pub fn file_problem(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::NotFound => "does not exist".to_string(),
        std::io::ErrorKind::PermissionDenied => "cannot be read (permission denied)".to_string(),
        std::io::ErrorKind::IsADirectory => "is a folder, not a file".to_string(),
        _ => format!("cannot be read: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_resolve_against_the_job_files_folder() {
        let job = Path::new("/etc/funnelhouse/jobs/nightly.toml");
        assert_eq!(
            resolve_job_path(job, "costs.csv"),
            "/etc/funnelhouse/jobs/costs.csv"
        );
        assert_eq!(
            resolve_job_path(job, "./data/../../warehouse"),
            "/etc/funnelhouse/warehouse"
        );
        assert_eq!(resolve_job_path(job, "/srv/w"), "/srv/w");
        for url in [
            "s3://b/p",
            "https://x/costs.csv",
            "file:///tmp/c.csv",
            "memory://",
        ] {
            assert_eq!(resolve_job_path(job, url), url);
        }
        // A job path relative to the working directory.
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            resolve_job_path(Path::new("jobs/demo.toml"), "fx.csv"),
            cwd.join("jobs/fx.csv").display().to_string()
        );
        assert_eq!(
            resolve_job_path(Path::new("demo.toml"), "./warehouse"),
            cwd.join("warehouse").display().to_string()
        );
    }

    #[test]
    fn a_missing_file_is_told_apart_from_an_unreadable_one() {
        let missing = std::fs::read("/nonexistent/funnelhouse/file").unwrap_err();
        assert_eq!(file_problem(&missing), "does not exist");
        let dir = tempfile::tempdir().unwrap();
        let folder = std::fs::read_to_string(dir.path()).unwrap_err();
        assert_ne!(file_problem(&folder), "does not exist");
    }
}
