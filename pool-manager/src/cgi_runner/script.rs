//! Running one CGI script: environment, stdin, stdout streamed to the caller, stderr by line, and
//! a deadline enforced on the whole process group.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How a script run ended.
#[derive(Debug, PartialEq, Eq)]
pub enum ScriptOutcome {
    Exited { status: i32, wrote_output: bool },
    TimedOut { wrote_output: bool },
}

/// A script could not be run at all.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    #[error("no such script")]
    NotFound,
    #[error("the script is not executable")]
    NotExecutable,
    #[error("cannot start the script: {0}")]
    Spawn(io::Error),
    #[error("cannot read the script's output: {0}")]
    Output(io::Error),
}

/// Runs `script` with `env` (plus PATH) as its environment and `stdin` as its input, copying its
/// stdout to `out` as it comes and handing each stderr line to `on_stderr`. The script runs in its
/// own process group, which is killed if it is still running after `timeout`.
#[allow(
    clippy::disallowed_methods,
    reason = "the CGI runner is a worker process, not the master: its helper threads never fork"
)]
pub fn run_script(
    script: &Path,
    env: &[(String, String)],
    stdin: &[u8],
    timeout: Duration,
    out: &mut dyn Write,
    mut on_stderr: impl FnMut(&[u8]),
) -> Result<ScriptOutcome, ScriptError> {
    let meta = std::fs::metadata(script).map_err(|_| ScriptError::NotFound)?;
    if !meta.is_file() {
        return Err(ScriptError::NotFound);
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(ScriptError::NotExecutable);
    }
    let mut command = Command::new(script);
    command
        .env_clear()
        .env(
            "PATH",
            std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()),
        )
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    if let Some(dir) = script.parent() {
        command.current_dir(dir);
    }
    let mut child = spawn_when_not_busy(&mut command).map_err(ScriptError::Spawn)?;
    let pid = child.id() as i32;

    let mut child_stdin = child.stdin.take().expect("piped");
    let input = stdin.to_vec();
    // Feed stdin from its own thread: a script that writes before reading must not deadlock us.
    let feeder = std::thread::spawn(move || {
        let _ = child_stdin.write_all(&input);
    });
    let child_stderr = child.stderr.take().expect("piped");
    let (stderr_tx, stderr_rx) = mpsc::channel();
    let stderr_reader = std::thread::spawn(move || {
        for line in BufReader::new(child_stderr)
            .split(b'\n')
            .map_while(Result::ok)
        {
            if stderr_tx.send(line).is_err() {
                break;
            }
        }
    });
    // The deadline: a watchdog kills the process group unless the script finished first.
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if done_rx.recv_timeout(timeout) == Err(mpsc::RecvTimeoutError::Timeout) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            return true;
        }
        false
    });

    let mut stdout = child.stdout.take().expect("piped");
    let mut buffer = [0u8; 16 * 1024];
    let mut wrote_output = false;
    let copied = loop {
        match stdout.read(&mut buffer) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                wrote_output = true;
                // A client that went away makes writes fail: keep draining so the script ends.
                let _ = out.write_all(&buffer[..n]);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    let status = child.wait();
    let _ = done_tx.send(());
    let timed_out = watchdog.join().unwrap_or(false);
    let _ = feeder.join();
    let _ = stderr_reader.join();
    for line in stderr_rx.try_iter() {
        let mut line = line;
        line.push(b'\n');
        on_stderr(&line);
    }
    let _ = out.flush();
    copied.map_err(ScriptError::Output)?;
    let status = status.map_err(ScriptError::Output)?;
    if timed_out {
        return Ok(ScriptOutcome::TimedOut { wrote_output });
    }
    Ok(ScriptOutcome::Exited {
        status: status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
        wrote_output,
    })
}

/// Spawns, retrying briefly on ETXTBSY: a script file that was just written can still be open for
/// writing in a process forked meanwhile (a deploy tool, or a sibling thread), which makes the
/// kernel refuse to execute it for that instant.
fn spawn_when_not_busy(command: &mut Command) -> io::Result<std::process::Child> {
    let mut attempts = 0;
    loop {
        match command.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && attempts < 20 => {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            result => return result,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, body).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    fn passes_environment_stdin_and_output() {
        let dir = tempfile::tempdir().unwrap();
        let path = script(
            dir.path(),
            "echo.sh",
            "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n%s:' \"$QUERY_STRING\"\ncat\necho oops >&2\n",
        );
        let env = [("QUERY_STRING".to_string(), "a=1".to_string())];
        let mut out = Vec::new();
        let mut errors = Vec::new();
        let outcome = run_script(
            &path,
            &env,
            b"body",
            Duration::from_secs(5),
            &mut out,
            |l| errors.push(l.to_vec()),
        )
        .unwrap();
        assert_eq!(
            outcome,
            ScriptOutcome::Exited {
                status: 0,
                wrote_output: true
            }
        );
        assert_eq!(out, b"Content-Type: text/plain\r\n\r\na=1:body");
        assert_eq!(errors, [b"oops\n".to_vec()]);
    }

    #[test]
    fn kills_the_process_group_after_the_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let path = script(dir.path(), "slow.sh", "#!/bin/sh\nsleep 30 &\nsleep 30\n");
        let started = std::time::Instant::now();
        let outcome = run_script(
            &path,
            &[],
            b"",
            Duration::from_millis(200),
            &mut Vec::new(),
            |_| {},
        )
        .unwrap();
        assert_eq!(
            outcome,
            ScriptOutcome::TimedOut {
                wrote_output: false
            }
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the background child did not hold us"
        );
    }

    #[test]
    fn missing_and_non_executable_scripts() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain.sh");
        std::fs::write(&plain, "#!/bin/sh\n").unwrap();
        let run =
            |p: &Path| run_script(p, &[], b"", Duration::from_secs(1), &mut Vec::new(), |_| {});
        assert!(matches!(
            run(&dir.path().join("nope.sh")),
            Err(ScriptError::NotFound)
        ));
        assert!(matches!(run(&plain), Err(ScriptError::NotExecutable)));
    }
}
