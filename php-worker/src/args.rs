//! The command line, as the master builds it from the pool's settings.

use std::time::Duration;

pub(crate) const USAGE: &str =
    "usage: paddock-php zygote [--ini FILE] [--define NAME=VALUE]... [--admin NAME]... [--request-timeout-ms N]
  [--slowlog-timeout-ms N [--slowlog-depth N]]
  (started by paddock for pools with builtin = \"php\", with its control socket as fd 3)";

#[derive(Debug, Default)]
pub(crate) struct Args {
    /// php.ini to read instead of the engine executable's default.
    pub(crate) ini: Option<String>,
    /// `php_value` and `php_admin_value` settings, `NAME=VALUE`, applied like `php -d`.
    pub(crate) defines: Vec<String>,
    /// Names of the `php_admin_value` settings, which scripts may not change.
    pub(crate) admin: Vec<String>,
    /// The pool's request_timeout: PHP's timeout error ends a request running longer.
    pub(crate) request_timeout: Option<Duration>,
    /// The pool's slowlog_timeout: the stack of a request running longer is logged.
    pub(crate) slowlog_timeout: Option<Duration>,
    /// Frames a slow-request trace shows at most.
    pub(crate) slowlog_depth: Option<u32>,
}

/// Frames a slow-request trace shows when the pool does not say (php-fpm's default).
pub(crate) const DEFAULT_SLOWLOG_DEPTH: u32 = 20;

impl Args {
    pub(crate) fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
        match args.next().as_deref() {
            Some("zygote") => {}
            Some(other) => return Err(format!("unknown command {other:?}")),
            None => return Err("no command".into()),
        }
        let mut parsed = Args::default();
        while let Some(flag) = args.next() {
            let mut value = || args.next().ok_or(format!("{flag} needs a value"));
            match flag.as_str() {
                "--ini" => parsed.ini = Some(value()?),
                "--define" => {
                    let define = value()?;
                    if !define.contains('=') {
                        return Err(format!("--define {define:?}: expected NAME=VALUE"));
                    }
                    parsed.defines.push(define);
                }
                "--admin" => parsed.admin.push(value()?),
                "--request-timeout-ms" => {
                    parsed.request_timeout = Some(Duration::from_millis(number(&flag, value()?)?));
                }
                "--slowlog-timeout-ms" => {
                    parsed.slowlog_timeout = Some(Duration::from_millis(number(&flag, value()?)?));
                }
                "--slowlog-depth" => {
                    let depth = number(&flag, value()?)?;
                    parsed.slowlog_depth =
                        Some(u32::try_from(depth).map_err(|_| format!("{flag} {depth}"))?);
                }
                _ => return Err(format!("unknown option {flag:?}")),
            }
        }
        Ok(parsed)
    }
}

fn number(flag: &str, value: String) -> Result<u64, String> {
    value.parse().map_err(|_| format!("{flag} {value:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, String> {
        Args::parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn parses_the_masters_command_line() {
        let args = parse(&[
            "zygote",
            "--ini",
            "/etc/p.ini",
            "--define",
            "memory_limit=64M",
            "--admin",
            "memory_limit",
            "--request-timeout-ms",
            "1500",
            "--slowlog-timeout-ms",
            "500",
            "--slowlog-depth",
            "5",
        ])
        .unwrap();
        assert_eq!(args.request_timeout, Some(Duration::from_millis(1500)));
        assert_eq!(args.slowlog_timeout, Some(Duration::from_millis(500)));
        assert_eq!(args.slowlog_depth, Some(5));
        assert_eq!(args.ini.as_deref(), Some("/etc/p.ini"));
        assert_eq!(args.defines, ["memory_limit=64M"]);
        assert_eq!(args.admin, ["memory_limit"]);
    }

    #[test]
    fn refuses_what_it_does_not_know() {
        assert!(parse(&[]).is_err());
        assert!(parse(&["serve"]).is_err());
        assert!(parse(&["zygote", "--define", "novalue"]).is_err());
        assert!(parse(&["zygote", "--ini"]).is_err());
        assert!(parse(&["zygote", "--bogus"]).is_err());
        assert!(parse(&["zygote", "--request-timeout-ms", "soon"]).is_err());
        assert!(parse(&["zygote", "--slowlog-depth", "-1"]).is_err());
    }
}
