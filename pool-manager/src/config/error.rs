//! Configuration errors: [`ConfigError`], what `paddock check` and a refused reload report (file,
//! line, dotted key, message), and [`Invalid`], what a validator returns before the file and line
//! are known. In a module of their own so that every validator (`validate`, `pool`, `limits`,
//! `rules`, `paths`) uses them without importing another validator.

use std::fmt;

/// A config file (or the embedded default) is not valid.
#[derive(Debug)]
pub struct ConfigError {
    pub file: String,
    /// 1-based line of the offending key, when it could be located.
    pub line: Option<usize>,
    /// Dotted path of the offending key, e.g. `pools.php.workers`.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: ", self.file, line)?,
            None => write!(f, "{}: ", self.file)?,
        }
        if !self.key.is_empty() {
            write!(f, "key `{}`: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// A validation failure at a key path; the caller adds file and line.
#[derive(Debug)]
pub(super) struct Invalid {
    pub path: Vec<String>,
    pub message: String,
}

pub(super) fn invalid(path: &[&str], message: impl Into<String>) -> Invalid {
    Invalid {
        path: path.iter().map(|p| p.to_string()).collect(),
        message: message.into(),
    }
}
