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
