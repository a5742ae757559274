use super::test_support::{load, MINIMAL};
use super::*;

#[test]
fn embedded_default_is_valid() {
    let config = load_embedded_default().expect("embedded default");
    assert_eq!(config.frontend.listeners.len(), 3);
    assert_eq!(config.pools[0].name, "php");
    assert_eq!(config.pools[0].env["PHP_FCGI_CHILDREN"], "0");
    assert_eq!(config.pools[0].env["PADDOCK_THREADS"], "1");
}

#[test]
fn minimal_config_gets_defaults() {
    let config = load(MINIMAL).expect("valid");
    assert_eq!(
        config.frontend.limits.max_body_bytes,
        limits::DEFAULT_MAX_BODY
    );
    assert_eq!(config.frontend.sites[0].hosts, vec!["*"]);
}

#[test]
fn unknown_key_names_file_line_and_key() {
    let text = format!(
        "{MINIMAL}\n[pools.php]\nmode = \"prefork\"\ncommand = [\"php-cgi\"]\nworkerz = 3\n"
    );
    let error = load(&text).unwrap_err();
    assert_eq!(
        error.line,
        Some(text.lines().position(|l| l.starts_with("workerz")).unwrap() + 1)
    );
    assert!(error.key.ends_with("workerz"), "{error}");
    assert!(error.to_string().starts_with("test.toml:"), "{error}");
}

#[test]
fn wrong_type_names_the_key() {
    let text = MINIMAL.replace("address = \"127.0.0.1:0\"", "address = 8080");
    let error = load(&text).unwrap_err();
    assert_eq!(error.key, "listeners.web.address", "{error}");
    assert_eq!(error.line, Some(4));
}

#[test]
fn bad_size_names_the_key() {
    let text = format!("{MINIMAL}\n[limits]\nmax_body = \"lots\"\n");
    let error = load(&text).unwrap_err();
    assert_eq!(error.key, "limits.max_body", "{error}");
    assert!(error.message.contains("size"), "{error}");
}

#[test]
fn validation_errors_are_located() {
    let text = format!("{MINIMAL}\n[sites.main.scripts]\npool = \"nope\"\n");
    let error = load(&text).unwrap_err();
    assert_eq!(error.key, "sites.main.scripts.pool");
    assert_eq!(
        error.line,
        Some(text.lines().position(|l| l.starts_with("pool =")).unwrap() + 1)
    );
    assert!(error.message.contains("nope"));
}

#[test]
fn missing_root_is_an_error() {
    let error = load(&MINIMAL.replace("deploy/demo", "no/such/dir")).unwrap_err();
    assert_eq!(error.key, "sites.main.root");
    assert_eq!(error.line, Some(7));
}

#[test]
fn bad_address_and_duplicates() {
    let error = load(&MINIMAL.replace("127.0.0.1:0", "localhost")).unwrap_err();
    assert_eq!(error.key, "listeners.web.address");
    let twice =
        format!("{MINIMAL}\n[listeners.other]\nkind = \"http\"\naddress = \"127.0.0.1:7000\"\n")
            .replace("127.0.0.1:0", "127.0.0.1:7000");
    assert!(load(&twice)
        .unwrap_err()
        .message
        .contains("another listener"));
}

#[test]
fn syntax_error_has_a_line() {
    let error = load("[listeners.web\nkind = 1").unwrap_err();
    assert_eq!(error.line, Some(1));
}

#[test]
fn zero_workers_rejected() {
    let text = format!(
        "{MINIMAL}\n[pools.php]\nmode = \"prefork\"\ncommand = [\"php-cgi\"]\nworkers = 0\n"
    );
    let error = load(&text).unwrap_err();
    assert_eq!(error.key, "pools.php.workers");
}

/// Every config shipped in deploy/ must load (sozu and pingora do the same).
#[test]
fn every_shipped_example_config_is_valid() {
    let dir = Path::new(EMBEDDED_BASE_DIR).join("deploy/examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("deploy/examples") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            load_file(&path).unwrap_or_else(|e| panic!("{e}"));
            checked += 1;
        }
    }
    assert!(checked >= 2, "found only {checked} example configs");
}

#[test]
fn sizing_keys_belong_to_their_sizing() {
    let pool = |body: &str| {
        format!("{MINIMAL}\n[pools.php]\nmode = \"prefork\"\ncommand = [\"php-cgi\"]\n{body}\n")
    };
    let error = load(&pool("sizing = \"dynamic\"\nworkers = 3")).unwrap_err();
    assert_eq!(error.key, "pools.php.workers", "{error}");
    let error = load(&pool("min_spare = 3")).unwrap_err();
    assert_eq!(error.key, "pools.php.min_spare", "{error}");
    let error = load(&pool("sizing = \"dynamic\"\nmin_spare = 5\nmax_spare = 2")).unwrap_err();
    assert_eq!(error.key, "pools.php.max_spare", "{error}");
    let config = load(&pool(
        "sizing = \"ondemand\"\nmax_workers = 7\nidle_timeout = \"3s\"",
    ))
    .unwrap();
    assert_eq!(
        config.pools[0].sizing,
        Sizing::OnDemand {
            max: 7,
            idle_timeout: std::time::Duration::from_secs(3)
        }
    );
    let config = load(&pool(
        "sizing = \"dynamic\"\nmax_workers = 10\nmin_spare = 2\nmax_spare = 6",
    ))
    .unwrap();
    assert_eq!(
        config.pools[0].sizing,
        Sizing::Dynamic {
            start: 4,
            min_spare: 2,
            max_spare: 6,
            max: 10
        }
    );
}

#[test]
fn external_pools_take_a_socket_not_a_command() {
    let external = |body: &str| format!("{MINIMAL}\n[pools.fpm]\nmode = \"external\"\n{body}\n");
    let config = load(&external("socket = \"/run/fpm.sock\"\nconnections = 3")).unwrap();
    assert_eq!(config.pools[0].slots_per_worker, 3);
    assert!(config.frontend.pools[0].external);
    assert_eq!(load(&external("")).unwrap_err().key, "pools.fpm.socket");
    let error = load(&external("socket = \"/s\"\ncommand = [\"x\"]")).unwrap_err();
    assert_eq!(error.key, "pools.fpm.command");
}

#[test]
fn only_pools_sized_on_demand_tell_the_master_of_a_growing_queue_at_once() {
    let grows = |sizing: &str| {
        let text = format!(
            "{MINIMAL}\n[pools.php]\nmode = \"prefork\"\ncommand = [\"php-cgi\"]\n{sizing}\n"
        );
        load(&text).unwrap().frontend.pools[0].grows_on_demand
    };
    assert!(!grows(""), "static by default");
    assert!(!grows("workers = 3"));
    assert!(grows("sizing = \"dynamic\"\nmax_workers = 10"));
    assert!(grows("sizing = \"ondemand\"\nmax_workers = 4"));
    let external = format!("{MINIMAL}\n[pools.fpm]\nmode = \"external\"\nsocket = \"/s\"\n");
    assert!(!load(&external).unwrap().frontend.pools[0].grows_on_demand);
}

#[test]
fn only_external_pools_choose_whether_connections_are_kept() {
    let external = |body: &str| {
        format!("{MINIMAL}\n[pools.fpm]\nmode = \"external\"\nsocket = \"/s\"\n{body}\n")
    };
    let spec = |text: &str| load(text).unwrap().frontend.pools[0].keep_connections;
    // An external server's processes are not paddock's to count: not kept unless asked for.
    assert!(!spec(&external("")));
    assert!(spec(&external("keep_connections = true")));
    assert!(!spec(&external("protocol = \"http\"")));
    let error = load(&external("protocol = \"uwsgi\"\nkeep_connections = true")).unwrap_err();
    assert_eq!(error.key, "pools.fpm.keep_connections");
    // paddock's own workers: always kept, and the key is refused with the line it is on.
    let own = format!("{MINIMAL}\n[pools.php]\nmode = \"prefork\"\ncommand = [\"php-cgi\"]\n");
    assert!(spec(&own));
    let error = load(&format!("{own}keep_connections = false\n")).unwrap_err();
    assert_eq!(error.key, "pools.php.keep_connections");
    assert!(error.to_string().contains("only external pools"), "{error}");
}

#[test]
fn workers_run_under_sched_batch_unless_a_pool_says_normal() {
    let own = |body: &str| {
        format!("{MINIMAL}\n[pools.php]\nmode = \"prefork\"\ncommand = [\"php-cgi\"]\n{body}\n")
    };
    let scheduling = |text: &str| load(text).unwrap().pools[0].scheduling;
    assert_eq!(scheduling(&own("")), Scheduling::Batch);
    assert_eq!(
        scheduling(&own("scheduling = \"batch\"")),
        Scheduling::Batch
    );
    assert_eq!(
        scheduling(&own("scheduling = \"normal\"")),
        Scheduling::Normal
    );
    let error = load(&own("scheduling = \"fifo\"")).unwrap_err();
    assert_eq!(error.key, "pools.php.scheduling");
    assert_eq!(error.line, Some(12), "{error}");
    // An external server is started by someone else.
    let external = format!(
        "{MINIMAL}\n[pools.fpm]\nmode = \"external\"\nsocket = \"/s\"\nscheduling = \"normal\"\n"
    );
    let error = load(&external).unwrap_err();
    assert_eq!(error.key, "pools.fpm.scheduling");
    assert!(error.to_string().contains("external"), "{error}");
}

#[test]
fn cpu_affinity_spreads_only_workers_paddock_starts_itself() {
    let pool = |head: &str, body: &str| format!("{MINIMAL}\n[pools.app]\n{head}\n{body}\n");
    let threaded = "mode = \"threaded\"\nthreads = 4\ncommand = [\"app\"]";
    let affinity = |text: &str| load(text).unwrap().pools[0].cpu_affinity;
    assert_eq!(affinity(&pool(threaded, "")), CpuAffinity::None);
    assert_eq!(
        affinity(&pool(threaded, "cpu_affinity = \"none\"")),
        CpuAffinity::None
    );
    assert_eq!(
        affinity(&pool(threaded, "cpu_affinity = \"spread\"")),
        CpuAffinity::Spread
    );
    let prefork = "mode = \"prefork\"\ncommand = [\"php-cgi\"]";
    assert_eq!(
        affinity(&pool(prefork, "cpu_affinity = \"spread\"")),
        CpuAffinity::Spread
    );
    let error = load(&pool(threaded, "cpu_affinity = \"auto\"")).unwrap_err();
    assert_eq!(error.key, "pools.app.cpu_affinity");
    assert!(error.line.is_some(), "{error}");
    // Started by someone else, or forked by the PHP parent: nothing paddock could pin.
    let external = "mode = \"external\"\nsocket = \"/s\"";
    let error = load(&pool(external, "cpu_affinity = \"spread\"")).unwrap_err();
    assert_eq!(error.key, "pools.app.cpu_affinity");
    assert!(error.to_string().contains("external"), "{error}");
    let builtin_php = "mode = \"prefork\"\nbuiltin = \"php\"";
    let error = load(&pool(builtin_php, "cpu_affinity = \"spread\"")).unwrap_err();
    assert_eq!(error.key, "pools.app.cpu_affinity");
    assert!(error.to_string().contains("PHP parent"), "{error}");
    assert_eq!(
        affinity(&pool(builtin_php, "cpu_affinity = \"none\"")),
        CpuAffinity::None
    );
}

#[test]
fn send_ahead_is_on_for_builtin_php_pools_and_refused_elsewhere() {
    let builtin = |body: &str| {
        format!("{MINIMAL}\n[pools.php]\nmode = \"prefork\"\nbuiltin = \"php\"\n{body}\n")
    };
    let spec = |text: &str| load(text).unwrap().frontend.pools[0].send_ahead;
    assert!(spec(&builtin("")), "on by default");
    assert!(!spec(&builtin("send_ahead = false")));
    // php-cgi serves one connection until it closes: a request on a second would wait for that.
    let cgi = format!("{MINIMAL}\n[pools.php]\nmode = \"prefork\"\ncommand = [\"php-cgi\"]\n");
    assert!(!spec(&cgi));
    let error = load(&format!("{cgi}send_ahead = true\n")).unwrap_err();
    assert_eq!(error.key, "pools.php.send_ahead");
    assert_eq!(error.line, Some(12), "{error}");
    assert!(error.to_string().contains("only builtin"), "{error}");
    // The bound on the average request below which requests are sent ahead, in µs.
    let below = |text: &str| load(text).unwrap().frontend.pools[0].send_ahead_below_us;
    assert_eq!(below(&builtin("")), 500);
    assert_eq!(below(&builtin("send_ahead_below = \"250us\"")), 250);
    assert_eq!(below(&builtin("send_ahead_below = \"2ms\"")), 2_000);
    let error = load(&format!("{cgi}send_ahead_below = \"1ms\"\n")).unwrap_err();
    assert_eq!(error.key, "pools.php.send_ahead_below");
}

#[test]
fn send_ahead_is_offered_to_threaded_pools_running_a_command_and_off_by_default() {
    let threaded = |body: &str| {
        format!(
            "{MINIMAL}\n[pools.app]\nmode = \"threaded\"\nthreads = 8\n\
             command = [\"python3\", \"serve.py\"]\nprotocol = \"http\"\n{body}\n"
        )
    };
    let pool = |text: &str| load(text).unwrap().frontend.pools[0].clone();
    // Only the worker's server knows whether it takes connections beyond its threads.
    assert!(!pool(&threaded("")).send_ahead, "off by default");
    let on = pool(&threaded("send_ahead = true\nsend_ahead_below = \"2ms\""));
    assert!(on.send_ahead);
    assert_eq!(on.send_ahead_below_us, 2_000);
    // paddock's builtin CGI runner serves one connection per thread.
    let cgi = format!(
        "{MINIMAL}\n[pools.app]\nmode = \"threaded\"\nthreads = 4\nbuiltin = \"cgi\"\n\
         send_ahead = true\n"
    );
    let error = load(&cgi).unwrap_err();
    assert_eq!(error.key, "pools.app.send_ahead");
    assert!(
        error.to_string().contains("threaded pools running"),
        "{error}"
    );
}

#[test]
fn php_cgi_self_exit_limit_becomes_the_front_ends_retirement_count() {
    let text = format!(
        "{MINIMAL}\n[pools.php]\nmode = \"prefork\"\ncommand = [\"php-cgi\"]\nmax_requests = 500\nenv = {{ PHP_FCGI_MAX_REQUESTS = \"50\" }}\n"
    );
    let config = load(&text).unwrap();
    assert_eq!(config.frontend.pools[0].max_requests, 50);
    assert_eq!(config.frontend.pools[0].max_requests_jitter, 0);
}

#[test]
fn builtin_php_builds_the_parents_command_line() {
    let text = format!(
        "{MINIMAL}\n[pools.php]\nmode = \"prefork\"\nbuiltin = \"php\"\nphp_value = {{ memory_limit = \"64M\" }}\nphp_admin_value = {{ \"session.save_path\" = \"/tmp\" }}\n"
    );
    let config = load(&text).expect("valid");
    let pool = &config.pools[0];
    assert!(pool.builtin_php());
    // The worker ends an overrunning request itself; the front end's 504-and-kill comes 2 s later.
    assert_eq!(config.frontend.pools[0].request_timeout_ms, 62_000);
    // The parent is php-cgi's executable with paddock-php's library loaded into it.
    assert_eq!(pool.command[0], "/usr/bin/php-cgi8.2", "{:?}", pool.command);
    assert!(
        pool.php_library
            .as_ref()
            .is_some_and(|library| library.ends_with("libpaddock_php.so")),
        "{:?}",
        pool.php_library
    );
    // Its environment is not php-cgi's: its own main, which reads PHP_FCGI_*, never runs.
    assert!(
        !pool.env.contains_key("PHP_FCGI_CHILDREN"),
        "{:?}",
        pool.env
    );
    assert_eq!(
        pool.command[1..],
        [
            "zygote",
            "--define",
            "memory_limit=64M",
            "--define",
            "session.save_path=/tmp",
            "--request-timeout-ms",
            "60000",
            "--admin",
            "session.save_path"
        ]
    );
}

#[test]
fn builtin_php_in_a_threaded_pool_names_file_line_and_key() {
    let text = format!("{MINIMAL}\n[pools.php]\nmode = \"threaded\"\nbuiltin = \"php\"\n");
    let error = load(&text).unwrap_err();
    assert_eq!(error.key, "pools.php.builtin", "{error}");
    assert_eq!(
        error.line,
        Some(text.lines().position(|l| l.starts_with("builtin")).unwrap() + 1)
    );
    assert!(error.message.contains("prefork"), "{error}");
}

#[test]
fn php_settings_need_builtin_php_and_sane_values() {
    let cgi = format!(
        "{MINIMAL}\n[pools.php]\nmode = \"prefork\"\ncommand = [\"php-cgi\"]\nphp_value = {{ memory_limit = \"64M\" }}\n"
    );
    assert_eq!(load(&cgi).unwrap_err().key, "pools.php.php_value");
    let engine_of_cgi = format!(
        "{MINIMAL}\n[pools.php]\nmode = \"prefork\"\ncommand = [\"php-cgi\"]\nphp_engine = \"/usr/bin/php-cgi8.2\"\n"
    );
    let error = load(&engine_of_cgi).unwrap_err();
    assert_eq!(error.key, "pools.php.php_engine");
    assert!(error.message.contains("builtin"), "{error}");
    let empty_engine = format!(
        "{MINIMAL}\n[pools.php]\nmode = \"prefork\"\nbuiltin = \"php\"\nphp_engine = \"\"\n"
    );
    assert_eq!(load(&empty_engine).unwrap_err().key, "pools.php.php_engine");
    // A bare name is looked up in PATH, as a command's program is; a path is the config's.
    let engine = |value: &str| {
        let text = format!(
            "{MINIMAL}\n[pools.php]\nmode = \"prefork\"\nbuiltin = \"php\"\nphp_engine = \"{value}\"\n"
        );
        load(&text).expect("valid").pools[0].command[0].clone()
    };
    let sh = std::fs::canonicalize("/bin/sh").unwrap();
    assert_eq!(std::path::Path::new(&engine("sh")), sh);
    assert_eq!(engine("no-such-php-cgi"), "no-such-php-cgi");
    assert_eq!(engine("/opt/php/bin/php-cgi"), "/opt/php/bin/php-cgi");
    let missing_ini = format!(
        "{MINIMAL}\n[pools.php]\nmode = \"prefork\"\nbuiltin = \"php\"\nphp_ini = \"no/such/php.ini\"\n"
    );
    assert_eq!(load(&missing_ini).unwrap_err().key, "pools.php.php_ini");
    let two_lines = format!(
        "{MINIMAL}\n[pools.php]\nmode = \"prefork\"\nbuiltin = \"php\"\nphp_value = {{ x = \"a\\nb\" }}\n"
    );
    assert!(load(&two_lines)
        .unwrap_err()
        .key
        .starts_with("pools.php.php_value"));
    let twice = format!(
        "{MINIMAL}\n[pools.php]\nmode = \"prefork\"\nbuiltin = \"php\"\nphp_value = {{ x = \"1\" }}\nphp_admin_value = {{ x = \"2\" }}\n"
    );
    assert!(load(&twice)
        .unwrap_err()
        .key
        .starts_with("pools.php.php_value"));
}

#[test]
fn the_slow_request_log_is_a_builtin_php_option_shorter_than_the_request_timeout() {
    let pool = |extra: &str| {
        format!("{MINIMAL}\n[pools.php]\nmode = \"prefork\"\nbuiltin = \"php\"\n{extra}\n")
    };
    let config = load(&pool("slowlog_timeout = \"5s\"\nslowlog_trace_depth = 8")).expect("valid");
    let command = &config.pools[0].command;
    let at = command
        .iter()
        .position(|a| a == "--slowlog-timeout-ms")
        .expect("passed on");
    assert_eq!(
        command[at..at + 4],
        ["--slowlog-timeout-ms", "5000", "--slowlog-depth", "8"]
    );

    for (extra, key) in [
        ("slowlog_timeout = \"60s\"", "pools.php.slowlog_timeout"),
        ("slowlog_timeout = \"0s\"", "pools.php.slowlog_timeout"),
        (
            "slowlog_timeout = \"1s\"\nslowlog_trace_depth = 0",
            "pools.php.slowlog_trace_depth",
        ),
        ("slowlog_trace_depth = 5", "pools.php.slowlog_trace_depth"),
    ] {
        let error = load(&pool(extra)).unwrap_err();
        assert_eq!(error.key, key, "{extra}: {error}");
    }
    let php_cgi = format!(
        "{MINIMAL}\n[pools.php]\nmode = \"prefork\"\ncommand = [\"php-cgi\"]\nslowlog_timeout = \"1s\"\n"
    );
    let error = load(&php_cgi).unwrap_err();
    assert_eq!(error.key, "pools.php.slowlog_timeout", "{error}");
    assert!(error.to_string().contains("builtin"), "{error}");
}

#[test]
fn sendfile_settings_are_checked_with_their_key_and_line() {
    let valid = format!(
        "{MINIMAL}\n[sites.main.sendfile]\ninternal = [\"/protected/\"]\nroots = [\"deploy\"]\n"
    );
    let config = load(&valid).expect("valid");
    let sendfile = &config.frontend.sites[0].sendfile;
    assert_eq!(sendfile.internal, ["/protected/"]);
    assert!(sendfile.roots[0].is_absolute() && sendfile.roots[0].ends_with("deploy"));
    for (bad, wanted) in [
        ("internal = [\"protected\"]", "starts and ends with /"),
        ("internal = [\"/a/../b/\"]", "starts and ends with /"),
        ("roots = [\"no/such/dir\"]", "no/such/dir"),
        ("roots = [\"/\"]", "whole file system"),
    ] {
        let text = format!("{MINIMAL}\n[sites.main.sendfile]\n{bad}\n");
        let error = load(&text).unwrap_err();
        let key = bad.split(' ').next().unwrap();
        assert_eq!(error.key, format!("sites.main.sendfile.{key}"), "{error}");
        assert_eq!(error.line, Some(text.lines().count()), "{error}");
        assert!(error.message.contains(wanted), "{error}");
    }
}

#[test]
fn a_pool_speaks_fastcgi_unless_told_uwsgi_or_http() {
    let pool = |lines: &str| format!("{MINIMAL}\n[pools.app]\nmode = \"threaded\"\n{lines}\n");
    let config = load(&pool("command = [\"uwsgi\"]")).expect("valid");
    assert_eq!(config.frontend.pools[0].protocol, WorkerProtocol::Fastcgi);
    let config = load(&pool("command = [\"uwsgi\"]\nprotocol = \"uwsgi\"")).expect("valid");
    assert_eq!(config.frontend.pools[0].protocol, WorkerProtocol::Uwsgi);
    assert_eq!(config.pools[0].protocol, WorkerProtocol::Uwsgi);
    let external = format!(
        "{MINIMAL}\n[pools.app]\nmode = \"external\"\nsocket = \"/run/app.sock\"\nprotocol = \"uwsgi\"\n"
    );
    let config = load(&external).expect("an external uWSGI");
    assert_eq!(config.frontend.pools[0].protocol, WorkerProtocol::Uwsgi);

    let text = pool("builtin = \"cgi\"\nprotocol = \"uwsgi\"");
    let error = load(&text).unwrap_err();
    assert_eq!(error.key, "pools.app.protocol", "{error}");
    assert!(error.message.contains("FastCGI"), "{error}");
    let config = load(&pool("command = [\"uwsgi\"]\nprotocol = \"http\"")).expect("valid");
    assert_eq!(config.pools[0].protocol, WorkerProtocol::Http);
    let text = pool("builtin = \"cgi\"\nprotocol = \"http\"");
    let error = load(&text).unwrap_err();
    assert_eq!(error.key, "pools.app.protocol", "{error}");
    let text = pool("command = [\"uwsgi\"]\nprotocol = \"http2\"");
    let error = load(&text).unwrap_err();
    assert_eq!(error.key, "pools.app.protocol", "{error}");
    assert_eq!(
        error.line,
        Some(
            text.lines()
                .position(|l| l.starts_with("protocol"))
                .unwrap()
                + 1
        )
    );
}
