//! File-system checks shared by the validators: directories that must exist, files that must be
//! readable. The error names the key that holds the path.

use std::path::{Path, PathBuf};

use super::error::{invalid, Invalid};

pub(super) fn existing_dir(path: &[&str], dir: &Path) -> Result<PathBuf, Invalid> {
    match dir.canonicalize() {
        Ok(canonical) if canonical.is_dir() => Ok(canonical),
        Ok(_) => Err(invalid(
            path,
            format!("{} is not a directory", dir.display()),
        )),
        Err(e) => Err(invalid(path, format!("{}: {e}", dir.display()))),
    }
}

pub(super) fn readable_file(path: &[&str], file: &Path) -> Result<PathBuf, Invalid> {
    match std::fs::File::open(file) {
        Ok(_) => Ok(file.to_path_buf()),
        Err(e) => Err(invalid(path, format!("{}: {e}", file.display()))),
    }
}

/// `file` in the directory of the running `paddock`, where `cargo build` puts the programs and
/// libraries of paddock's builtin workers.
pub(super) fn next_to_paddock(pool: &str, file: &str) -> Result<PathBuf, Invalid> {
    let exe = std::env::current_exe().map_err(|e| {
        invalid(
            &["pools", pool, "builtin"],
            format!("cannot locate the paddock binary: {e}"),
        )
    })?;
    Ok(exe.with_file_name(file))
}
