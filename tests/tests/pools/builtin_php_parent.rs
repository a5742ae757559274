//! The warm PHP parent of a `builtin = "php"` pool: workers forked from it share its OPcache,
//! and its death costs no request and no worker.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use harness::client::load;
use harness::php_builtin::{php_builtin_site, php_parent_pid, require_libphp};
use harness::{process_alive, signal, wait_for, Paddock};
use serde_json::Value;

fn get_json(paddock: &Paddock, path: &str) -> Value {
    let output = paddock.curl(&["-s", &paddock.url(path)]);
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{path}: not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            paddock.log()
        )
    })
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

/// `count` requests for `/pid.php` at once (each holds its worker for a second): the pids that
/// answered, one per request.
fn hold_workers(paddock: &Paddock, count: usize) -> Vec<String> {
    let url = paddock.url("/pid.php");
    std::thread::scope(|scope| {
        let clients: Vec<_> = (0..count)
            .map(|_| scope.spawn(|| paddock.curl(&["-s", "--fail", &url])))
            .collect();
        clients
            .into_iter()
            .map(|c| {
                let output = c.join().unwrap();
                assert!(output.status.success(), "{output:?}\n{}", paddock.log());
                String::from_utf8_lossy(&output.stdout).trim().to_string()
            })
            .collect()
    })
}

/// The spare middle process the PHP parent keeps for its next fork, when it is the parent's
/// only child and alive (not a zombie).
fn spare_middle(parent: u32) -> Option<u32> {
    match harness::children_of(parent).as_slice() {
        [(pid, name)] if name == "php-fork" => {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let state = stat.rsplit_once(") ")?.1.chars().next()?;
            (state != 'Z').then_some(*pid)
        }
        _ => None,
    }
}

#[test]
fn a_script_compiled_by_one_worker_is_cached_for_a_worker_forked_later() {
    if !require_libphp() {
        return;
    }
    let site = tempfile::tempdir().unwrap();
    let root = site.path().canonicalize().unwrap();
    write(&root, "target.php", "<?php return 'target';\n");
    write(&root, "other.php", "<?php return 'other';\n");
    write(
        &root,
        "compile.php",
        "<?php header('Content-Type: application/json');\n\
         echo json_encode(['pid' => getmypid(), 'value' => include __DIR__ . '/target.php']);\n",
    );
    write(
        &root,
        "probe.php",
        "<?php header('Content-Type: application/json');\n\
         $status = opcache_get_status(false);\n\
         echo json_encode([\n\
           'pid' => getmypid(),\n\
           'enabled' => $status['opcache_enabled'] ?? false,\n\
           'target' => opcache_is_script_cached(__DIR__ . '/target.php'),\n\
           'other' => opcache_is_script_cached(__DIR__ . '/other.php'),\n\
         ]);\n",
    );
    // Files this young are not cached by default (opcache.file_update_protection = 2 s).
    let paddock = Paddock::start(&php_builtin_site(
        &root,
        1,
        "php_value = { \"opcache.file_update_protection\" = \"0\" }",
    ));
    let master = paddock.pid();
    let parent = wait_for("the PHP parent", || php_parent_pid(master));

    let compiled = get_json(&paddock, "/compile.php");
    assert_eq!(compiled["value"], "target");
    let first = get_json(&paddock, "/probe.php");
    assert_eq!(first["pid"], compiled["pid"], "one worker");
    assert_eq!(first["enabled"], true, "OPcache is on: {first}");
    assert_eq!(
        (&first["target"], &first["other"]),
        (&Value::Bool(true), &Value::Bool(false))
    );

    // A new worker, forked after the compilation, has never run target.php, yet finds it cached.
    let old = first["pid"].as_u64().unwrap() as u32;
    signal(old, "KILL");
    let new = wait_for("a new worker", || {
        let workers = paddock.worker_pids("php-worker");
        (workers.len() == 1 && workers[0] != old).then(|| workers[0])
    });
    // Before its first request, the new worker has OPcache's pages in its page tables (it
    // mapped them after the fork), not left for the request to fault in one by one.
    wait_for("OPcache mapped by the new worker", || {
        (opcache_resident_kib(new) > 0).then_some(())
    });
    let second = get_json(&paddock, "/probe.php");
    assert_eq!(second["pid"], new, "{second}");
    assert_eq!(
        second["target"], true,
        "compiled by another worker: {second}"
    );
    assert_eq!(second["other"], false, "never compiled: {second}");
    assert_eq!(
        php_parent_pid(master),
        Some(parent),
        "forked by the same parent"
    );
}

/// KiB of OPcache's shared memory (a shared anonymous mapping, `/dev/zero (deleted)` in
/// `/proc/PID/smaps`) that `pid` has mapped.
fn opcache_resident_kib(pid: u32) -> u64 {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let mut in_opcache = false;
    let mut kib = 0;
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if first.contains('-') && !first.ends_with(':') {
            in_opcache = line.contains(" rw-s ") && line.contains("/dev/zero");
        } else if in_opcache {
            if let Some(rss) = line.strip_prefix("Rss:") {
                kib += rss
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .unwrap_or(0);
            }
        }
    }
    kib
}

/// The time of a log line ("2026-12-02T12:23:14.959489Z ..."), as tracing writes it in UTC.
fn log_time(line: &str) -> Option<SystemTime> {
    let stamp = line.split_whitespace().next()?.strip_suffix('Z')?;
    let (date, time) = stamp.split_once('T')?;
    let mut ymd = date.split('-').map(|p| p.parse::<i64>());
    let (y, m, d) = (ymd.next()?.ok()?, ymd.next()?.ok()?, ymd.next()?.ok()?);
    let mut hms = time.split(':');
    let (h, min) = (
        hms.next()?.parse::<u64>().ok()?,
        hms.next()?.parse::<u64>().ok()?,
    );
    let seconds: f64 = hms.next()?.parse().ok()?;
    // Days since 1970-01-01 of a proleptic Gregorian date.
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = u64::try_from(era * 146_097 + doe - 719_468).ok()?;
    let whole = days * 86_400 + h * 3600 + min * 60;
    Some(UNIX_EPOCH + Duration::from_secs(whole) + Duration::from_secs_f64(seconds))
}

#[test]
fn killing_the_php_parent_under_load_fails_no_request_and_a_new_one_starts() {
    if !require_libphp() {
        return;
    }
    let paddock = Paddock::start(&php_builtin_site(&harness::test_site(), 4, ""));
    let master = paddock.pid();
    let parent = wait_for("the PHP parent", || php_parent_pid(master));
    let serving = wait_for("four workers", || {
        let workers = paddock.worker_pids("php-worker");
        (workers.len() == 4).then_some(workers)
    });
    let spare = wait_for("the parent's spare middle process", || spare_middle(parent));

    let addr = paddock.http;
    let traffic = std::thread::spawn(move || {
        load(
            addr,
            8,
            Duration::from_secs(4),
            |_, _| ("GET".into(), "/sleep.php?ms=2".into(), Vec::new()),
            |r| r.status == 200,
        )
    });
    paddock.wait_pool("php", "requests under way", |p| {
        p["busy_slots"].as_u64().unwrap_or(0) > 0
    });
    let killed_at = SystemTime::now();
    signal(parent, "KILL");
    let new_parent = wait_for("a new PHP parent", || {
        php_parent_pid(master).filter(|&p| p != parent)
    });
    let log = paddock.log();
    let restarted = log
        .lines()
        .find(|l| l.contains("PHP parent restarted"))
        .and_then(log_time)
        .unwrap_or_else(|| panic!("no restart logged\n{log}"));
    // How soon is a measurement (well under 1 s on a quiet machine), not a bound: beside a CPU
    // hog the master itself may wait that long for a core.
    let after = restarted.duration_since(killed_at).unwrap_or_default();
    eprintln!("new PHP parent {after:?} after the kill");

    let report = traffic.join().unwrap();
    assert!(report.ok > 0);
    assert!(
        report.failures.is_empty(),
        "{} failures, e.g. {:?}\n{log}",
        report.failures.len(),
        &report.failures[..report.failures.len().min(5)]
    );
    for worker in &serving {
        assert!(
            process_alive(*worker),
            "worker {worker} outlived its parent"
        );
    }
    // The dead parent's spare died with it: it must not take the new parent's fork requests.
    wait_for("the old spare middle process gone", || {
        (!process_alive(spare)).then_some(())
    });
    // The new parent forks workers too: one replaces a killed worker and serves.
    signal(serving[0], "KILL");
    let replacement = wait_for("a worker from the new parent", || {
        paddock
            .worker_pids("php-worker")
            .into_iter()
            .find(|pid| !serving.contains(pid))
    });
    let output = paddock.curl(&["-s", &paddock.url("/headers.php")]);
    assert_eq!(String::from_utf8_lossy(&output.stdout), "no case\n");
    assert_eq!(php_parent_pid(master), Some(new_parent));
    assert!(process_alive(replacement));
}

#[test]
fn the_master_goes_on_while_php_preloads_and_every_worker_has_the_preloaded_classes() {
    if !require_libphp() {
        return;
    }
    harness::require_php_cgi();
    let site = tempfile::tempdir().unwrap();
    let root = site.path().canonicalize().unwrap();
    let release = root.join("preload.release");
    // opcache.preload runs once, in the PHP parent, before it is ready; this one waits for the
    // test (at most 60 s), like the preload of a large application that takes its time.
    write(
        &root,
        "preload.php",
        &format!(
            "<?php for ($i = 0; $i < 6000 && !file_exists('{}'); $i++) {{ usleep(10000); clearstatcache(); }}\n\
             class Preloaded {{ public static function hi() {{ return 'preloaded'; }} }}\n",
            release.display()
        ),
    );
    write(
        &root,
        "index.php",
        "<?php echo class_exists('Preloaded', false) ? Preloaded::hi() : 'not preloaded', ' ', getmypid();\n",
    );
    let user = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap();
    let user = String::from_utf8_lossy(&user.stdout).trim().to_string();
    // Two pools: the builtin one ("php"), whose parent preloads, and a php-cgi one ("zcgi")
    // for another host name, which must not wait for it.
    let config = format!(
        r#"{listeners}
[sites.slow]
hosts = ["slow.test"]
root = "{root}"
index = ["index.php"]

[sites.slow.scripts]
pool = "php"

[sites.other]
root = "{other}"
index = ["index.php"]

[sites.other.scripts]
pool = "zcgi"

[pools.php]
mode = "prefork"
builtin = "php"
workers = 2
php_admin_value = {{ "opcache.preload" = "{preload}", "opcache.preload_user" = "{user}" }}

[pools.zcgi]
mode = "prefork"
command = ["php-cgi"]
workers = 1
"#,
        listeners = harness::LISTENERS,
        root = root.display(),
        other = harness::test_site().display(),
        preload = root.join("preload.php").display(),
    );
    let paddock = Paddock::start_with(&config, false);
    // While the parent preloads, the php-cgi pool is started and serves.
    harness::wait_until("the php-cgi pool to serve", || {
        paddock
            .curl(&["-s", &paddock.url("/headers.php")])
            .stdout
            .starts_with(b"no case")
    });
    let parent = wait_for("the PHP parent", || php_parent_pid(paddock.pid()));
    let log = paddock.log();
    assert!(!log.contains("PHP parent ready"), "still preloading\n{log}");
    assert!(
        paddock.worker_pids("php-worker").is_empty(),
        "no builtin worker before PHP has started\n{log}"
    );
    std::fs::write(&release, b"").unwrap();
    paddock.wait_for_log("PHP parent ready");
    let workers = wait_for("two builtin workers", || {
        let workers = paddock.worker_pids("php-worker");
        (workers.len() == 2).then_some(workers)
    });
    // The parent that preloaded is the one that forked them: nobody gave up waiting for it.
    assert_eq!(php_parent_pid(paddock.pid()), Some(parent));
    assert_eq!(paddock.log().matches("PHP parent started").count(), 1);
    // Every worker, whichever answers, has the class the parent preloaded.
    for _ in 0..4 {
        let output = paddock.curl(&["-s", "-H", "Host: slow.test", &paddock.url("/")]);
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let (said, pid) = text.rsplit_once(' ').unwrap_or_else(|| panic!("{text}"));
        assert_eq!(said, "preloaded", "{text}");
        assert!(workers.contains(&pid.parse().unwrap()), "{text}");
    }
}

#[test]
fn an_on_demand_pool_has_its_php_parent_at_once_and_forks_a_burst_of_workers_together() {
    if !require_libphp() {
        return;
    }
    let site = tempfile::tempdir().unwrap();
    let root = site.path().canonicalize().unwrap();
    write(
        &root,
        "pid.php",
        "<?php usleep(1000000); echo getmypid(), \"\\n\";\n",
    );
    let config = php_builtin_site(&root, 1, "")
        .replace("workers = 1\n", "sizing = \"ondemand\"\nmax_workers = 16\n");
    let paddock = Paddock::start(&config);
    let master = paddock.pid();
    // Started with the pool, before any request: an on-demand pool's first workers are a fork
    // away, not PHP's whole start-up.
    let parent = wait_for("the PHP parent, with no request sent", || {
        php_parent_pid(master)
    });
    assert!(paddock.worker_pids("php-worker").is_empty());
    // Its first middle process is forked ahead, waiting for the first fork requests.
    let spare = wait_for("a spare middle process", || spare_middle(parent));

    // Twelve requests at once, each holding its worker for a second: the master asks the
    // parent for their workers together, and the parent forks them through middle processes
    // shared by up to four workers, the first of them the spare.
    let answers = hold_workers(&paddock, 12);
    let mut pids: Vec<u32> = answers.iter().map(|a| a.parse().unwrap()).collect();
    pids.sort_unstable();
    pids.dedup();
    // All twelve overlap for a second; a worker can serve a second request only if the others'
    // workers took that long to fork.
    assert!(pids.len() >= 8, "{answers:?}\n{}", paddock.log());
    let workers = paddock.worker_pids("php-worker");
    for pid in &pids {
        assert!(
            workers.contains(pid),
            "worker {pid} is not the master's child: {workers:?}"
        );
    }
    // The middle processes that forked exited and were reaped: the parent's only child is a new
    // spare, and no zombie.
    let next = wait_for("the middle processes reaped, a new spare", || {
        spare_middle(parent).filter(|&p| p != spare)
    });
    assert!(!process_alive(spare), "the first spare forked and exited");
    assert_eq!(php_parent_pid(master), Some(parent));

    // A spare that dies unasked is replaced, and the next workers come from its successor:
    // sixteen requests at once need more workers than the twelve or fewer there are.
    signal(next, "KILL");
    let successor = wait_for("a spare after the killed one", || {
        spare_middle(parent).filter(|&p| p != next)
    });
    let answers = hold_workers(&paddock, 16);
    assert_eq!(answers.len(), 16);
    assert!(
        !process_alive(successor),
        "the successor of the killed spare did not fork"
    );
    assert_eq!(php_parent_pid(master), Some(parent));
}
