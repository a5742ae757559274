//! `paddock status`, `paddock reload` and `paddock stop` talk to the running master over its
//! command socket and get an answer; with nothing running they say so.

use std::process::{Command, Output};

use harness::{
    paddock_bin, php_site, process_alive, require_php_cgi, test_site, Paddock, PATIENCE,
};

fn run(args: &[&str], config: &std::path::Path) -> Output {
    Command::new(paddock_bin())
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr)
}

#[test]
fn status_reload_and_stop_from_the_command_line() {
    require_php_cgi();
    let paddock = Paddock::start(&php_site(&test_site(), 2, ""));
    let config = paddock.dir.path().join("paddock.toml");

    let status = run(&["status"], &config);
    assert!(status.status.success(), "{}", text(&status));
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(json["pid"], paddock.pid());
    assert_eq!(json["pools"][0]["name"], "php");
    assert_eq!(json["pools"][0]["workers"], 2);
    let mut pids: Vec<u64> = json["pools"][0]["pids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_u64().unwrap())
        .collect();
    let mut expected: Vec<u64> = paddock
        .worker_pids("php-cgi")
        .into_iter()
        .map(u64::from)
        .collect();
    pids.sort();
    expected.sort();
    assert_eq!(pids, expected);

    // A broken file: the reload is refused with the reason, and the old config keeps serving.
    let good = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, good.replace("workers = 2", "workers = \"many\"")).unwrap();
    let refused = Command::new(paddock_bin())
        .args(["reload", "--socket"])
        .arg(paddock.dir.path().join("run/control.sock"))
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("pools.php.workers"),
        "{}",
        text(&refused)
    );
    std::fs::write(&config, good.replace("workers = 2", "workers = 3")).unwrap();
    let reloaded = run(&["reload"], &config);
    assert!(reloaded.status.success(), "{}", text(&reloaded));
    assert_eq!(String::from_utf8_lossy(&reloaded.stdout).trim(), "reloaded");
    paddock.wait_until("three workers", PATIENCE, || {
        paddock.worker_pids("php-cgi").len() == 3
    });

    // A second paddock on the same runtime directory refuses to start.
    let second = Command::new(paddock_bin())
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!second.status.success());
    assert!(
        text(&second).contains("another paddock is running"),
        "{}",
        text(&second)
    );

    let stopped = run(&["stop"], &config);
    assert!(stopped.status.success(), "{}", text(&stopped));
    paddock.wait_until("paddock to exit", PATIENCE, || {
        !process_alive(paddock.pid())
    });
    let gone = run(&["status"], &config);
    assert!(!gone.status.success());
    assert!(
        text(&gone).contains("no paddock is running at"),
        "{}",
        text(&gone)
    );
}

#[test]
fn commands_without_a_socket_explain_what_to_configure() {
    let output = Command::new(paddock_bin()).arg("status").output().unwrap();
    assert!(!output.status.success());
    assert!(
        text(&output).contains("set server.runtime_dir"),
        "{}",
        text(&output)
    );
}
