//! The built-in CGI runner: paddock's own FastCGI handler for CGI/1.1 scripts (the job of
//! fcgiwrap), run as a *threaded* worker.
//!
//! Each request runs its script as a fresh process, so many can run at once safely: the worker
//! serves up to `--threads` requests concurrently on its FastCGI socket (fd 0). The script gets the
//! request's CGI meta-variables as its environment (plus PATH), the buffered body on stdin, and
//! writes a CGI response on stdout, which is passed through unchanged; its stderr goes to FCGI_STDERR
//! (the front end logs it with pool, pid and request id). A script that overruns `--timeout-ms` is
//! killed with its whole process group.
//!
//! # Layout
//! - this file — the worker's entry point and the FastCGI side;
//! - `script.rs` — running one script with its pipes and deadline.

mod script;

use std::io::Write;
use std::time::Duration;

use protocol::responder::{Request, Responder, Response};

pub use script::{run_script, ScriptError, ScriptOutcome};

/// Serves CGI scripts on the inherited FastCGI socket until the process is stopped.
pub fn run(threads: usize, timeout: Duration) -> anyhow::Result<()> {
    let responder = Responder::from_listen_fd()?.threads(threads.max(1));
    responder.serve(|request, response| handle(request, response, timeout))?;
    Ok(())
}

fn handle(request: &Request, response: &mut Response<'_>, timeout: Duration) -> u32 {
    let env: Vec<(String, String)> = request
        .params()
        .filter_map(|(name, value)| {
            Some((
                String::from_utf8(name.to_vec()).ok()?,
                String::from_utf8_lossy(value).into_owned(),
            ))
        })
        .collect();
    let Some(script) = request.param("SCRIPT_FILENAME").map(str::to_owned) else {
        return answer_error(response, "400 Bad Request", "no SCRIPT_FILENAME");
    };
    let mut stderr_lines = Vec::new();
    let outcome = run_script(
        std::path::Path::new(&script),
        &env,
        request.stdin(),
        timeout,
        &mut *response,
        |line| stderr_lines.push(line.to_vec()),
    );
    for line in stderr_lines {
        let _ = response.stderr(&line);
    }
    match outcome {
        Ok(ScriptOutcome::Exited { status: 0, .. }) => 0,
        Ok(ScriptOutcome::Exited {
            status,
            wrote_output,
        }) => {
            if !wrote_output {
                return answer_error(
                    response,
                    "502 Bad Gateway",
                    &format!("the script exited with status {status} without output"),
                );
            }
            status as u32
        }
        Ok(ScriptOutcome::TimedOut { wrote_output }) => {
            let _ = response.stderr(format!("{script}: killed after {timeout:?}\n").as_bytes());
            if !wrote_output {
                return answer_error(response, "504 Gateway Timeout", "the script took too long");
            }
            1
        }
        Err(ScriptError::NotFound) => answer_error(response, "404 Not Found", "no such script"),
        Err(ScriptError::NotExecutable) => {
            answer_error(response, "403 Forbidden", "the script is not executable")
        }
        Err(e) => {
            let _ = response.stderr(format!("{script}: {e}\n").as_bytes());
            answer_error(response, "502 Bad Gateway", "the script could not be run")
        }
    }
}

fn answer_error(response: &mut Response<'_>, status: &str, detail: &str) -> u32 {
    let _ = write!(
        response,
        "Status: {status}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{detail}\n"
    );
    0
}
