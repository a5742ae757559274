//! The machine and software the numbers came from: cores, CPU, memory, kernel, load, and the
//! version of every server and client.

use std::process::Command;

fn first_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| {
            let text = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .unwrap_or_else(|_| "not installed".into())
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

pub(crate) fn load_average() -> String {
    read("/proc/loadavg")
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A markdown description of the machine.
pub(crate) fn describe(paddock_bin: &std::path::Path) -> String {
    let cpuinfo = read("/proc/cpuinfo");
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or("")
        .trim()
        .to_string();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = read("/proc/meminfo")
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    let repo = env!("CARGO_MANIFEST_DIR");
    let commit = first_line("git", &["-C", repo, "describe", "--always", "--dirty"]);
    let fpm = harness::peers::php_fpm_bin();
    let rows = [
        ("cores", cores.to_string()),
        ("cpu", model),
        ("memory", memory),
        ("kernel", first_line("uname", &["-sr"])),
        ("load average at start", load_average()),
        ("paddock", format!("{} ({commit})", paddock_bin.display())),
        ("nginx", first_line("nginx", &["-v"])),
        ("php-cgi", first_line("php-cgi", &["-v"])),
        ("php-fpm", first_line(&fpm.to_string_lossy(), &["-v"])),
        ("apache2", first_line("apache2", &["-v"])),
        ("wrk", first_line("wrk", &["--version"])),
        ("h2load", first_line("h2load", &["--version"])),
        ("openssl", first_line("openssl", &["version"])),
    ];
    let mut out = String::from("| | |\n|---|---|\n");
    for (name, value) in rows {
        out += &format!("| {name} | {value} |\n");
    }
    out
}
