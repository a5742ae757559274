//! The command-line side of `paddock status|reload|stop`: one command to the running master's
//! command socket, one answer back.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::Config;

/// How long to wait for the master's answer (a reload validates the whole config first).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(
        "{origin} names no command socket: set server.runtime_dir (the socket is then \
         <runtime_dir>/control.sock) or server.control_socket, or pass --socket"
    )]
    NoSocket { origin: String },
    #[error("no paddock is running at {path}: {source}")]
    NotRunning {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("paddock at {path} did not answer: {source}")]
    NoAnswer {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Refused(String),
}

/// The command socket of the paddock that `config` describes.
pub fn socket_of(config: &Config) -> Result<PathBuf, CommandError> {
    config
        .control_socket
        .clone()
        .ok_or_else(|| CommandError::NoSocket {
            origin: config.origin.clone(),
        })
}

/// Sends `command` and returns the answer; an answer starting with `error:` is an error.
pub fn send(socket: &Path, command: &str) -> Result<String, CommandError> {
    let mut stream = UnixStream::connect(socket).map_err(|source| CommandError::NotRunning {
        path: socket.to_path_buf(),
        source,
    })?;
    let no_answer = |source| CommandError::NoAnswer {
        path: socket.to_path_buf(),
        source,
    };
    stream
        .set_read_timeout(Some(ANSWER_TIMEOUT))
        .map_err(no_answer)?;
    stream
        .write_all(format!("{command}\n").as_bytes())
        .map_err(no_answer)?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).map_err(no_answer)?;
    let answer = answer.trim().to_string();
    match answer.strip_prefix("error: ") {
        Some(reason) => Err(CommandError::Refused(reason.to_string())),
        None if answer.is_empty() => Err(no_answer(std::io::ErrorKind::UnexpectedEof.into())),
        None => Ok(answer),
    }
}
