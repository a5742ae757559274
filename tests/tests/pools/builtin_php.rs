//! `builtin = "php"` serving the test site: the same answers as php-cgi for the same requests
//! (what PHP sees of the request, bodies, uploads, cookies, status lines, redirects, HEAD,
//! streaming), and what php-cgi lacks (fastcgi_finish_request).

use std::path::{Path, PathBuf};

use harness::php_builtin::{php_builtin_site, require_libphp};
use harness::{php_site, require_php_cgi, split_response, test_site, wait_until, Paddock};
use serde_json::Value;

/// `$_SERVER` entries that differ between any two requests (time, ports, request id), or by
/// design: php-cgi pools get `PHP_FCGI_*` in their environment (docs/cgi-differences.md).
const VOLATILE: [&str; 8] = [
    "REQUEST_TIME",
    "REQUEST_TIME_FLOAT",
    "REMOTE_PORT",
    "SERVER_PORT",
    "HTTP_HOST",
    "PADDOCK_REQUEST_ID",
    "PHP_FCGI_CHILDREN",
    "PHP_FCGI_MAX_REQUESTS",
];

/// A response with what may differ between two servers taken out: the date and request id
/// headers, the pid, and the volatile `$_SERVER` entries of a JSON answer from echo.php (and so
/// its length).
fn normalized(paddock: &Paddock, args: &[&str]) -> String {
    let output = paddock.curl(&[&["-s", "-i"], args].concat());
    let raw = String::from_utf8_lossy(&output.stdout).into_owned();
    let (status, head, body) = split_response(&raw);
    let mut head: Vec<String> = head
        .lines()
        .filter(|l| {
            let name = l.split(':').next().unwrap_or("").to_ascii_lowercase();
            !matches!(name.as_str(), "date" | "x-request-id") && !l.starts_with("HTTP/")
        })
        .map(|l| l.replace(&paddock.http.port().to_string(), "PORT"))
        .collect();
    head.sort();
    let body = match serde_json::from_str::<Value>(&body) {
        Ok(mut json) => {
            // The entries taken out below change the length.
            head.retain(|l| !l.starts_with("content-length:"));
            if let Some(server) = json["server"].as_object_mut() {
                server.retain(|key, _| !VOLATILE.contains(&key.as_str()));
                // curl picks a new multipart boundary for every request.
                if let Some(Value::String(kind)) = server.get_mut("CONTENT_TYPE") {
                    if let Some(at) = kind.find("boundary=") {
                        kind.truncate(at + "boundary=".len());
                    }
                }
            }
            json["pid"] = Value::Null;
            format!("{json:#}")
        }
        Err(_) => body,
    };
    format!("{status}\n{}\n\n{body}", head.join("\n"))
}

/// A document root in a new temporary directory holding the one script `name`; the directory
/// lives as long as the returned guard.
fn one_script_site(name: &str, source: &str) -> (tempfile::TempDir, PathBuf) {
    let site = tempfile::tempdir().unwrap();
    let root = site.path().canonicalize().unwrap();
    std::fs::write(root.join(name), source).unwrap();
    (site, root)
}

fn write_body(dir: &Path, name: &str, len: usize) -> String {
    let path = dir.join(name);
    let data: Vec<u8> = (0..len).map(|n| (n * 7 % 251) as u8).collect();
    std::fs::write(&path, data).unwrap();
    path.display().to_string()
}

#[test]
fn builtin_php_answers_as_php_cgi_does() {
    if !require_libphp() {
        return;
    }
    require_php_cgi();
    let cgi = Paddock::start(&php_site(&test_site(), 1, ""));
    let builtin = Paddock::start(&php_builtin_site(&test_site(), 1, ""));
    let dir = tempfile::tempdir().unwrap();
    let upload = write_body(dir.path(), "upload.bin", 300 * 1024);
    let raw_body = write_body(dir.path(), "body.bin", 40 * 1024);
    let cases: Vec<Vec<String>> = [
        vec!["/echo.php?a=1&b=two%20words&list[]=x&list[]=y"],
        vec!["/echo.php/extra/path?x=1"],
        vec!["/echo.php", "--data", "name=Ada&message=hello+world&n[]=1"],
        vec![
            "/echo.php",
            "-F",
            "title=report",
            "-F",
            &format!("attachment=@{upload}"),
        ],
        vec![
            "/echo.php",
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            &format!("@{raw_body}"),
        ],
        vec!["/echo.php", "-H", "Cookie: a=1; b=two"],
        vec!["/echo.php", "-u", "ada:secret word"],
        vec!["/echo.php", "-I"],
        vec!["/headers.php?case=status"],
        vec!["/headers.php?case=cookies"],
        vec!["/headers.php?case=redirect"],
        vec!["/headers.php?case=created"],
        vec!["/headers.php"],
        vec!["/no/such/route?q=1"],
        vec!["/sub/"],
        vec!["/stream.php?chunks=3"],
        vec!["/big.php?kb=300"],
    ]
    .into_iter()
    .map(|case| case.into_iter().map(String::from).collect())
    .collect();
    for case in &cases {
        let request = |paddock: &Paddock| {
            let mut args: Vec<String> = vec![paddock.url(&case[0])];
            args.extend(case[1..].iter().cloned());
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            normalized(paddock, &args)
        };
        let (expected, got) = (request(&cgi), request(&builtin));
        assert_eq!(got, expected, "{case:?}: builtin = \"php\" vs php-cgi");
    }
    // Equal answers could still both be wrong: the essentials, checked outright.
    let raw = String::from_utf8_lossy(
        &builtin
            .curl(&["-s", "-i", &builtin.url("/headers.php?case=status")])
            .stdout,
    )
    .into_owned();
    assert!(raw.starts_with("HTTP/1.1 403 Login failed\r\n"), "{raw}");
    let cookies = String::from_utf8_lossy(
        &builtin
            .curl(&["-s", "-i", &builtin.url("/headers.php?case=cookies")])
            .stdout,
    )
    .matches("set-cookie:")
    .count();
    assert_eq!(cookies, 2);
    let seen: Value = serde_json::from_slice(
        &builtin
            .curl(&["-s", "-u", "ada:secret word", &builtin.url("/echo.php")])
            .stdout,
    )
    .unwrap();
    assert_eq!(seen["server"]["PHP_AUTH_USER"], "ada");
    assert_eq!(seen["server"]["PHP_AUTH_PW"], "secret word");
    // And it was paddock's own worker that answered, not a php-cgi.
    let pid = seen["pid"].as_u64().unwrap() as u32;
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "php-worker");
}

#[test]
fn fastcgi_finish_request_answers_and_the_script_runs_on() {
    if !require_libphp() {
        return;
    }
    let paddock = Paddock::start(&php_builtin_site(&test_site(), 1, ""));
    let dir = tempfile::tempdir().unwrap();
    let release = dir.path().join("go.release");
    let mark = dir.path().join("done.mark");
    let url = paddock.url(&format!(
        "/finish.php?release={}&mark={}",
        release.display(),
        mark.display()
    ));
    // The whole answer arrives while the script is still waiting for the release file.
    let raw = String::from_utf8_lossy(&paddock.curl(&["-s", "-i", &url]).stdout).into_owned();
    let (status, _, body) = split_response(&raw);
    assert_eq!((status, body.as_str()), (200, "answered\n"), "{raw}");
    assert!(!mark.exists(), "the script had not finished yet");
    std::fs::write(&release, b"").unwrap();
    wait_until("the script to run on after its answer", || {
        std::fs::read_to_string(&mark).is_ok_and(|m| m == "ran on")
    });
    // The worker serves the next request as usual.
    let raw = String::from_utf8_lossy(&paddock.curl(&["-s", &paddock.url("/headers.php")]).stdout)
        .into_owned();
    assert_eq!(raw, "no case\n");
}

#[test]
fn php_ini_php_value_and_php_admin_value_reach_scripts_and_admin_values_stay_put() {
    if !require_libphp() {
        return;
    }
    let (_site, root) = one_script_site(
        "ini.php",
        "<?php header('Content-Type: application/json');\n\
         echo json_encode([\n\
           'ini_file' => ini_get('post_max_size'),\n\
           'value' => ini_get('default_charset'),\n\
           'value_set' => ini_set('default_charset', 'ISO-8859-1'),\n\
           'admin' => ini_get('memory_limit'),\n\
           'admin_set' => ini_set('memory_limit', '300M'),\n\
           'admin_after' => ini_get('memory_limit'),\n\
         ]);\n",
    );
    let ini = root.join("pool.ini");
    std::fs::write(&ini, "post_max_size = 3M\n").unwrap();
    let paddock = Paddock::start(&php_builtin_site(
        &root,
        1,
        &format!(
            "php_ini = \"{}\"\nphp_value = {{ default_charset = \"UTF-16\" }}\nphp_admin_value = {{ memory_limit = \"96M\" }}",
            ini.display()
        ),
    ));
    let output = paddock.curl(&["-s", &paddock.url("/ini.php")]);
    let seen: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stdout)));
    assert_eq!(seen["ini_file"], "3M", "{seen}");
    assert_eq!(seen["value"], "UTF-16", "{seen}");
    assert_eq!(
        seen["value_set"], "UTF-16",
        "php_value may be changed: {seen}"
    );
    assert_eq!(seen["admin"], "96M", "{seen}");
    assert_eq!(seen["admin_set"], false, "php_admin_value may not: {seen}");
    assert_eq!(seen["admin_after"], "96M", "{seen}");
}

#[test]
fn user_ini_files_apply_from_the_document_root_down_as_under_php_cgi() {
    if !require_libphp() {
        return;
    }
    require_php_cgi();
    let site = tempfile::tempdir().unwrap();
    let root = site.path().canonicalize().unwrap();
    std::fs::create_dir(root.join("sub")).unwrap();
    let probe = "<?php header('Content-Type: application/json');\n\
                 echo json_encode([ini_get('default_charset'), ini_get('max_input_vars'), \
                 ini_get('memory_limit')]);\n";
    std::fs::write(root.join("ini.php"), probe).unwrap();
    std::fs::write(root.join("sub/ini.php"), probe).unwrap();
    std::fs::write(
        root.join(".user.ini"),
        "default_charset = \"ISO-8859-1\"\nmemory_limit = 77M\n",
    )
    .unwrap();
    std::fs::write(root.join("sub/.user.ini"), "max_input_vars = 123\n").unwrap();
    let cgi = Paddock::start(&php_site(&root, 1, ""));
    let builtin = Paddock::start(&php_builtin_site(&root, 1, ""));
    let admin = Paddock::start(&php_builtin_site(
        &root,
        1,
        "php_admin_value = { memory_limit = \"96M\" }",
    ));
    let get = |paddock: &Paddock, path: &str| -> Value {
        serde_json::from_slice(&paddock.curl(&["-s", &paddock.url(path)]).stdout).unwrap()
    };
    assert_eq!(
        get(&builtin, "/ini.php"),
        serde_json::json!(["ISO-8859-1", "1000", "77M"])
    );
    assert_eq!(
        get(&builtin, "/sub/ini.php"),
        serde_json::json!(["ISO-8859-1", "123", "77M"])
    );
    for path in ["/ini.php", "/sub/ini.php"] {
        assert_eq!(get(&builtin, path), get(&cgi, path), "{path}");
    }
    // A .user.ini cannot override php_admin_value.
    assert_eq!(
        get(&admin, "/sub/ini.php"),
        serde_json::json!(["ISO-8859-1", "123", "96M"])
    );
}

#[test]
fn php_value_and_php_flag_from_htaccess_apply_to_their_directory_only_as_under_mod_php() {
    if !require_libphp() {
        return;
    }
    let site = tempfile::tempdir().unwrap();
    let root = site.path().canonicalize().unwrap();
    std::fs::create_dir(root.join("app")).unwrap();
    let probe = "<?php header('Content-Type: application/json');\n\
                 echo json_encode([ini_get('memory_limit'), ini_get('display_errors'), \
                 ini_get('max_input_vars'), ini_get('disable_functions')]);\n";
    std::fs::write(root.join("ini.php"), probe).unwrap();
    std::fs::write(root.join("app/ini.php"), probe).unwrap();
    std::fs::write(
        root.join("app/.htaccess"),
        "php_value memory_limit 77M\nphp_flag display_errors off\nphp_value max_input_vars 321\n\
         php_value disable_functions \"\"\n",
    )
    .unwrap();
    let paddock = Paddock::start(&php_builtin_site(
        &root,
        1,
        "php_value = { display_errors = \"1\" }\n\
         php_admin_value = { max_input_vars = \"500\", disable_functions = \"exec\" }",
    ));
    let get = |path: &str| -> Value {
        serde_json::from_slice(&paddock.curl(&["-s", &paddock.url(path)]).stdout).unwrap()
    };
    let outside = serde_json::json!(["128M", "1", "500", "exec"]);
    assert_eq!(get("/ini.php"), outside);
    // The directory's settings apply, but php_admin_value stays what the pool says.
    // A flag is "0" or "1", as mod_php passes it.
    assert_eq!(
        get("/app/ini.php"),
        serde_json::json!(["77M", "0", "500", "exec"])
    );
    // The one worker served both: nothing leaked from the request before.
    assert_eq!(get("/ini.php"), outside);
}

#[test]
fn a_request_past_request_timeout_ends_with_php_timeout_error_and_a_504_and_the_worker_lives() {
    if !require_libphp() {
        return;
    }
    let paddock = Paddock::start(&php_builtin_site(
        &test_site(),
        1,
        "request_timeout = \"1s\"",
    ));
    let worker = |paddock: &Paddock| {
        let output = paddock.curl(&["-s", &paddock.url("/sleep.php?ms=0")]);
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let before = worker(&paddock);
    // Far longer than the timeout and its grace: only PHP's own timeout ends it in time.
    let status = paddock.curl_status(&[&paddock.url("/sleep.php?ms=60000")]);
    assert_eq!(status, 504);
    paddock.wait_for_log("Maximum execution time of 1 second exceeded");
    let log = paddock.log();
    assert!(
        log.lines()
            .any(|l| l.contains("Maximum execution time") && l.contains("sleep.php on line")),
        "the script and line are logged\n{log}"
    );
    // The worker was not killed: the same process answers the next request.
    assert_eq!(worker(&paddock), before, "{log}");
    assert!(!log.contains("reason=timeout_kill"), "{log}");
}

/// The parent runs the engine of Debian's php-cgi executable with paddock-php's library loaded
/// into it, and nothing of how it was loaded reaches a script or what a script starts: not
/// `LD_PRELOAD` (a shell command run by a script would load paddock-php into `sh`), not the
/// variable that says the process is paddock's, not the library's descriptor.
#[test]
fn the_engine_is_php_cgis_and_how_paddock_php_was_loaded_reaches_no_script() {
    if !require_libphp() {
        return;
    }
    let (_site, root) = one_script_site(
        "loaded.php",
        "<?php header('Content-Type: application/json');\n\
         echo json_encode([\n\
           'sapi' => php_sapi_name(),\n\
           'ini' => php_ini_loaded_file(),\n\
           'getenv' => getenv(),\n\
           'server' => array_keys($_SERVER),\n\
           'child' => shell_exec('env'),\n\
           'fds' => array_map(fn ($fd) => @readlink($fd), glob('/proc/self/fd/*')),\n\
         ]);\n",
    );
    let paddock = Paddock::start(&php_builtin_site(&root, 1, ""));
    let output = paddock.curl(&["-s", &paddock.url("/loaded.php")]);
    let seen: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stdout)));
    assert_eq!(seen["sapi"], "cgi-fcgi", "{seen}");
    assert_eq!(
        seen["ini"], "/etc/php/8.2/cgi/php.ini",
        "php-cgi's php.ini: {seen}"
    );
    let text = seen.to_string();
    for leak in ["LD_PRELOAD", "PADDOCK_PHP_SAPI_FD", "libpaddock_php"] {
        assert!(!text.contains(leak), "{leak} reached the script: {seen}");
    }
    assert!(
        seen["child"]
            .as_str()
            .is_some_and(|env| env.contains("PATH=")),
        "the script's child ran: {seen}"
    );

    let parent = harness::php_builtin::php_parent_pid(paddock.pid())
        .unwrap_or_else(|| panic!("no paddock-php parent: {}", paddock.log()));
    let exe = std::fs::read_link(format!("/proc/{parent}/exe")).unwrap();
    assert_eq!(
        exe,
        Path::new("/usr/bin/php-cgi8.2"),
        "the parent's program"
    );
    let maps = std::fs::read_to_string(format!("/proc/{parent}/maps")).unwrap();
    assert!(
        maps.contains("libpaddock_php.so"),
        "paddock-php's library is loaded"
    );
    assert!(
        !maps.contains("libphp8.2.so"),
        "the engine is the executable's, not the shared library's"
    );
}

/// A write to a pipe whose reader has exited fails in the script (`fwrite` returns false) and
/// the worker lives on, under builtin php as under php-cgi: both ignore SIGPIPE. (`mail()` with
/// no `sendmail` installed writes to such a pipe whenever `sh` exits first: WordPress's comment
/// post lost its worker to SIGPIPE and answered 502 in some runs under load before the builtin
/// worker ignored it.) The child's exit is waited for, so the write always finds it gone.
#[test]
fn a_write_to_a_pipe_whose_reader_exited_fails_in_the_script_and_the_worker_lives() {
    if !require_libphp() {
        return;
    }
    require_php_cgi();
    let (_site, root) = one_script_site(
        "pipe.php",
        "<?php header('Content-Type: application/json');\n\
         $child = proc_open(['true'], [0 => ['pipe', 'r']], $pipes);\n\
         for ($i = 0; $i < 60000 && proc_get_status($child)['running']; $i++) { usleep(1000); }\n\
         $wrote = @fwrite($pipes[0], str_repeat('x', 4096));\n\
         $ignored = 0;\n\
         foreach (file('/proc/self/status') as $line) {\n\
           if (str_starts_with($line, 'SigIgn:')) { $ignored = hexdec(trim(substr($line, 7))); }\n\
         }\n\
         echo json_encode(['wrote' => $wrote, 'pid' => getmypid(),\n\
           'sigpipe_ignored' => ($ignored >> 12) & 1]);\n",
    );
    for (kind, config) in [
        ("builtin", php_builtin_site(&root, 1, "")),
        ("php-cgi", php_site(&root, 1, "")),
    ] {
        let paddock = Paddock::start(&config);
        let answer = |n: u32| -> Value {
            let output = paddock.curl(&["-s", &paddock.url("/pipe.php")]);
            serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
                panic!(
                    "{kind}, request {n}: {e}: {}\n{}",
                    String::from_utf8_lossy(&output.stdout),
                    paddock.log()
                )
            })
        };
        let first = answer(1);
        assert_eq!(first["wrote"], false, "{kind}: {first}");
        assert_eq!(first["sigpipe_ignored"], 1, "{kind}: {first}");
        let second = answer(2);
        assert_eq!(second["pid"], first["pid"], "{kind}: the same worker");
        let log = paddock.log();
        assert!(!log.contains("SIGPIPE"), "{kind}: {log}");
    }
}

/// What a script sees of its process, and what a command it starts inherits, is what it sees
/// under php-cgi: blocked and ignored signals, umask, resource limits, working directory and
/// locale. The builtin worker starts without php-cgi's `main` and goes through paddock-php's own
/// forks, so a disposition or mask that either leaves behind (SIGPIPE was one) shows here. The
/// handlers PHP installs (`SigCgt`) differ by design: the builtin worker catches SIGALRM for
/// `request_timeout` (docs/cgi-differences.md, "SIGALRM").
#[test]
fn a_scripts_process_state_is_the_one_it_has_under_php_cgi() {
    if !require_libphp() {
        return;
    }
    require_php_cgi();
    let (_site, root) = one_script_site(
        "state.php",
        "<?php header('Content-Type: text/plain');\n\
         foreach (file('/proc/self/status') as $line) {\n\
           if (preg_match('/^(SigBlk|SigIgn|NoNewPrivs|Cap)/', $line)) { echo $line; }\n\
         }\n\
         printf(\"umask %04o\\n\", umask());\n\
         echo 'child ', shell_exec('grep -E \"^Sig(Blk|Ign)\" /proc/self/status | tr \"\\\\n\" \" \"'), \"\\n\";\n\
         echo file_get_contents('/proc/self/limits');\n\
         echo 'cwd ', getcwd(), \"\\n\", 'locale ', setlocale(LC_ALL, 0), \"\\n\";\n",
    );
    let state = |config: String| {
        let paddock = Paddock::start(&config);
        let output = paddock.curl(&["-s", &paddock.url("/state.php")]);
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let builtin = state(php_builtin_site(&root, 1, ""));
    let php_cgi = state(php_site(&root, 1, ""));
    for needle in [
        "SigBlk:",
        "SigIgn:",
        "umask",
        "child SigBlk:",
        "Max open files",
        "cwd ",
    ] {
        assert!(php_cgi.contains(needle), "{needle} in:\n{php_cgi}");
    }
    assert_eq!(builtin, php_cgi, "builtin (left) against php-cgi (right)");
}
