//! The command line, as the master builds it from the pool's settings.

use std::time::Duration;

pub(crate) const USAGE: &str =
    "usage: paddock-php zygote [--ini FILE] [--define NAME=VALUE]... [--admin NAME]... [--request-timeout-ms N]
  (started by paddock for pools with builtin = \"php\", with its control socket as fd 3)";

#[derive(Debug, Default)]
pub(crate) struct Args {
    /// php.ini to read instead of the embed SAPI's default.
    pub(crate) ini: Option<String>,
    /// `php_value` and `php_admin_value` settings, `NAME=VALUE`, applied like `php -d`.
    pub(crate) defines: Vec<String>,
    /// Names of the `php_admin_value` settings, which scripts may not change.
    pub(crate) admin: Vec<String>,
    /// The pool's request_timeout: PHP's timeout error ends a request running longer.
    pub(crate) request_timeout: Option<Duration>,
}

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
                    let ms = value()?;
                    let ms: u64 = ms
                        .parse()
                        .map_err(|_| format!("--request-timeout-ms {ms:?}"))?;
                    parsed.request_timeout = Some(Duration::from_millis(ms));
                }
                _ => return Err(format!("unknown option {flag:?}")),
            }
        }
        Ok(parsed)
    }
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
        ])
        .unwrap();
        assert_eq!(args.request_timeout, Some(Duration::from_millis(1500)));
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
    }
}
