//! Differential test: what PHP sees (`$_SERVER`, `$_GET`, `$_POST`, `$_COOKIE`, `$_FILES`, the
//! body) for the same request behind paddock (a php-cgi pool, and a `builtin = "php"` pool) and
//! behind nginx (Debian package, its stock `snippets/fastcgi-php.conf`) + php-fpm. After dropping
//! what legitimately differs between two servers (ports, times, pids, software names, worker
//! environments), every remaining difference must be one that docs/cgi-differences.md lists,
//! recognised by its rule below.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;

use harness::peers::{free_port, has_ipv6_loopback, Nginx, PhpFpm};
use harness::{require_php_cgi, test_site, Paddock, LISTENERS};
use serde_json::{Map, Value};

/// Which listener a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Http,
    Https,
    /// Plain HTTP from an IPv6 client.
    Http6,
}

/// One request shape: a URL path (with query), extra curl arguments, and entries that must have
/// exactly this value behind paddock (`None`: absent), whatever nginx does.
#[derive(Debug)]
struct Case {
    name: &'static str,
    via: Via,
    target: String,
    args: Vec<String>,
    checks: Vec<(&'static str, Option<Value>)>,
}

fn case(name: &'static str, via: Via, target: &str, args: &[&str]) -> Case {
    Case {
        name,
        via,
        target: target.to_string(),
        args: args.iter().map(|a| a.to_string()).collect(),
        checks: Vec::new(),
    }
}

impl Case {
    fn expect(mut self, key: &'static str, value: Value) -> Self {
        self.checks.push((key, Some(value)));
        self
    }

    fn expect_absent(mut self, key: &'static str) -> Self {
        self.checks.push((key, None));
        self
    }
}

/// The listeners of one stack.
#[derive(Debug, Clone, Copy)]
struct Endpoints {
    http: SocketAddr,
    https: SocketAddr,
    http6: Option<SocketAddr>,
}

impl Endpoints {
    fn ports(&self) -> Vec<u16> {
        let mut ports = vec![self.http.port(), self.https.port()];
        ports.extend(self.http6.map(|a| a.port()));
        ports
    }
}

/// Both stacks, serving the same document root.
struct Stacks {
    _dir: tempfile::TempDir,
    capture_dir: PathBuf,
    paddock: Paddock,
    _fpm: PhpFpm,
    nginx: Nginx,
    paddock_at: Endpoints,
    nginx_at: Endpoints,
}

fn site_root() -> PathBuf {
    test_site().canonicalize().expect("tests/site")
}

impl Stacks {
    /// `handler`: the pool's `command = …` or `builtin = …` line.
    fn start(handler: &str) -> Stacks {
        let dir = tempfile::tempdir().unwrap();
        let capture_dir = dir.path().join("capture");
        std::fs::create_dir(&capture_dir).unwrap();
        let ipv6 = has_ipv6_loopback();

        let fpm_dir = dir.path().join("fpm");
        std::fs::create_dir(&fpm_dir).unwrap();
        let fpm = PhpFpm::start(
            &fpm_dir,
            2,
            &format!("env[CAPTURE_DIR] = {}", capture_dir.display()),
        );
        let nginx_dir = dir.path().join("nginx");
        std::fs::create_dir(&nginx_dir).unwrap();
        let (nginx, nginx_at) = start_nginx(&nginx_dir, &fpm.socket, ipv6);

        let http6 = if ipv6 {
            "[listeners.http6]\nkind = \"http\"\naddress = \"[::1]:0\"\n"
        } else {
            ""
        };
        let config = format!(
            r#"{LISTENERS}
{http6}
[sites.test]
root = "{root}"
index = ["index.php"]

[sites.test.scripts]
pool = "php"
front_controller = "/capture.php"

[pools.php]
mode = "prefork"
{handler}
workers = 2
env = {{ CAPTURE_DIR = "{capture}" }}
"#,
            root = site_root().display(),
            capture = capture_dir.display(),
        );
        let paddock = Paddock::start_with(&config, true);
        let paddock_at = Endpoints {
            http: paddock.http,
            https: paddock.https,
            http6: ipv6.then(|| paddock.listener("http6").expect("http6 listener")),
        };
        Stacks {
            _dir: dir,
            capture_dir,
            paddock,
            _fpm: fpm,
            nginx,
            paddock_at,
            nginx_at,
        }
    }
}

/// nginx as Debian documents it for PHP: `try_files` to the front controller, and PHP locations
/// with the stock `snippets/fastcgi-php.conf` (the location regex is the one nginx's own wiki
/// gives for PATH_INFO support).
fn start_nginx(dir: &Path, fpm_socket: &Path, ipv6: bool) -> (Nginx, Endpoints) {
    let (cert, key) = harness::self_signed_certificate(dir, "cert");
    let https_port = free_port(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let http6_port = ipv6.then(|| free_port(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    let listen6 = http6_port.map_or(String::new(), |p| format!("listen [::1]:{p};"));
    let body = format!(
        r#"
  server {{
    listen {{listen}};
    listen 127.0.0.1:{https_port} ssl http2;
    {listen6}
    server_name localhost;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    root {root};
    index index.php;
    client_max_body_size 20m;
    location / {{
      try_files $uri $uri/ /capture.php$is_args$args;
    }}
    location ~ [^/]\.php(/|$) {{
      include snippets/fastcgi-php.conf;
      fastcgi_pass unix:{fpm};
    }}
  }}"#,
        cert = cert.display(),
        key = key.display(),
        root = site_root().display(),
        fpm = fpm_socket.display(),
    );
    let nginx = Nginx::start(dir, IpAddr::V4(Ipv4Addr::LOCALHOST), &body);
    let endpoints = Endpoints {
        http: nginx.addr,
        https: SocketAddr::from((Ipv4Addr::LOCALHOST, https_port)),
        http6: http6_port.map(|p| SocketAddr::from((Ipv6Addr::LOCALHOST, p))),
    };
    (nginx, endpoints)
}

/// Sends `case` to one stack and returns what PHP captured.
fn capture(stacks: &Stacks, at: &Endpoints, case: &Case, token: &str) -> Value {
    let url = match case.via {
        Via::Http => format!("http://localhost:{}{}", at.http.port(), case.target),
        Via::Https => format!("https://localhost:{}{}", at.https.port(), case.target),
        Via::Http6 => format!("http://[::1]:{}{}", at.http6.unwrap().port(), case.target),
    };
    let output = Command::new("curl")
        .args(["-sS", "-k", "-g", "--max-time", "30", "-o", "/dev/null"])
        .args(["-w", "%{http_code}"])
        .arg("--resolve")
        .arg(format!("localhost:{}:127.0.0.1", at.http.port()))
        .arg("--resolve")
        .arg(format!("localhost:{}:127.0.0.1", at.https.port()))
        .args(["-H", &format!("X-Capture-Token: {token}")])
        .args(&case.args)
        .arg(&url)
        .output()
        .expect("run curl");
    let status = String::from_utf8_lossy(&output.stdout);
    let file = stacks.capture_dir.join(format!("{token}.json"));
    let text = std::fs::read_to_string(&file).unwrap_or_else(|_| {
        panic!(
            "case {}: PHP did not run for {url} (status {status}, {output:?})\npaddock:\n{}\nnginx:\n{}",
            case.name,
            stacks.paddock.log(),
            stacks.nginx.error_log()
        )
    });
    std::fs::remove_file(&file).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("case {}: {e}: {text}", case.name))
}

/// `$_SERVER` entries that differ between any two servers and say nothing about the mapping.
const UNCOMPARED: &[&str] = &[
    "REMOTE_PORT",
    "REQUEST_TIME",
    "REQUEST_TIME_FLOAT",
    "SERVER_SOFTWARE",
    "PADDOCK_REQUEST_ID",
    "HTTP_X_CAPTURE_TOKEN",
];

/// The worker's own environment, which PHP merges into `$_SERVER`: php-cgi gets paddock's pool
/// environment, php-fpm its pool's `env[]` and USER/HOME.
const WORKER_ENVIRONMENT: &[&str] = &[
    "CAPTURE_DIR",
    "PADDOCK_THREADS",
    "PATH",
    "PHP_FCGI_CHILDREN",
    "PHP_FCGI_MAX_REQUESTS",
    "USER",
    "HOME",
];

/// Flattens a capture into comparable entries: one per `$_SERVER` variable, one per other
/// section; ports of either stack replaced by `<port>`.
fn entries(seen: &Value, ports: &[u16]) -> Map<String, Value> {
    let mut out = Map::new();
    let normalise = |value: &Value| -> Value {
        let mut text = value.to_string();
        for port in ports {
            text = text.replace(&port.to_string(), "<port>");
        }
        serde_json::from_str(&text).unwrap()
    };
    for (name, value) in seen["server"].as_object().expect("server section") {
        if UNCOMPARED.contains(&name.as_str()) || WORKER_ENVIRONMENT.contains(&name.as_str()) {
            continue;
        }
        out.insert(format!("server.{name}"), normalise(value));
    }
    for section in ["get", "post", "cookie", "files", "input_sha1"] {
        out.insert(section.to_string(), normalise(&seen[section]));
    }
    out
}

/// One entry that differs.
#[derive(Debug)]
struct Difference<'a> {
    key: &'a str,
    paddock: &'a Map<String, Value>,
    nginx: &'a Map<String, Value>,
}

impl Difference<'_> {
    fn paddock(&self, key: &str) -> Option<&str> {
        self.paddock.get(key).and_then(Value::as_str)
    }

    fn nginx(&self, key: &str) -> Option<&str> {
        self.nginx.get(key).and_then(Value::as_str)
    }

    fn describe(&self, case: &str) -> String {
        let show = |v: Option<&Value>| v.map_or("(absent)".into(), Value::to_string);
        format!(
            "{case}: {}\n  paddock: {}\n  nginx:   {}\n",
            self.key,
            show(self.paddock.get(self.key)),
            show(self.nginx.get(self.key))
        )
    }
}

/// A difference docs/cgi-differences.md explains, under the heading `doc`, recognised exactly:
/// a rule says how the two values relate, so an unrelated change to the same variable still
/// fails the test.
struct Documented {
    doc: &'static str,
    keys: &'static [&'static str],
    explains: fn(&Difference<'_>) -> bool,
}

fn field(key: &str) -> &str {
    key.strip_prefix("server.").unwrap_or(key)
}

const DOCUMENTED: &[Documented] = &[
    Documented {
        doc: "Empty variables are left out",
        keys: &[
            "server.CONTENT_TYPE",
            "server.PATH_INFO",
            "server.REMOTE_USER",
        ],
        explains: |d| d.paddock(d.key).is_none() && d.nginx(d.key) == Some(""),
    },
    Documented {
        doc: "No HTTP_CONTENT_TYPE or HTTP_CONTENT_LENGTH",
        keys: &["server.HTTP_CONTENT_TYPE", "server.HTTP_CONTENT_LENGTH"],
        explains: |d| {
            let plain = format!("server.{}", &field(d.key)["HTTP_".len()..]);
            d.paddock(d.key).is_none() && d.nginx(d.key) == d.nginx(&plain)
        },
    },
    Documented {
        doc: "PATH_TRANSLATED is set with PATH_INFO",
        keys: &["server.PATH_TRANSLATED"],
        explains: |d| {
            let root = d.paddock("server.DOCUMENT_ROOT").unwrap_or("");
            let info = d.paddock("server.PATH_INFO").unwrap_or("");
            d.nginx(d.key).is_none() && d.paddock(d.key) == Some(&format!("{root}{info}"))
        },
    },
    Documented {
        doc: "DOCUMENT_URI includes PATH_INFO",
        keys: &["server.DOCUMENT_URI"],
        explains: |d| {
            let script = d.paddock("server.SCRIPT_NAME").unwrap_or("");
            let info = d.paddock("server.PATH_INFO").unwrap_or("");
            d.nginx(d.key) == d.nginx("server.SCRIPT_NAME")
                && d.paddock(d.key) == Some(&format!("{script}{info}"))
        },
    },
    Documented {
        doc: "Repeated header fields are combined",
        keys: &["server.HTTP_X_MULTI", "server.HTTP_COOKIE", "cookie"],
        explains: |d| {
            if d.key == "cookie" {
                // nginx's last Cookie line wins; paddock's cookies include all of its cookies.
                let (Some(p), Some(n)) = (d.paddock[d.key].as_object(), d.nginx[d.key].as_object())
                else {
                    return false;
                };
                return p.len() > n.len() && n.iter().all(|(k, v)| p.get(k) == Some(v));
            }
            let separator = if d.key == "server.HTTP_COOKIE" {
                "; "
            } else {
                ", "
            };
            match (d.paddock(d.key), d.nginx(d.key)) {
                (Some(p), Some(n)) => p.ends_with(&format!("{separator}{n}")),
                _ => false,
            }
        },
    },
    Documented {
        doc: "REMOTE_USER is only set by authentication",
        keys: &["server.REMOTE_USER"],
        explains: |d| {
            d.paddock(d.key).is_none()
                && d.nginx(d.key).is_some()
                && d.nginx(d.key) == d.paddock("server.PHP_AUTH_USER")
        },
    },
    Documented {
        doc: "SERVER_NAME is the requested host",
        keys: &["server.SERVER_NAME"],
        explains: |d| {
            // Ports were replaced by a placeholder; the rule needs the host only.
            let host = d.paddock("server.HTTP_HOST").unwrap_or("");
            let host = host.replace(":<port>", "");
            d.nginx(d.key) == Some("localhost")
                && d.paddock(d.key) == protocol::cgi::server_name_from_host(&host)
        },
    },
];

/// The rule that explains `difference`, if any.
fn documented(difference: &Difference<'_>) -> Option<&'static Documented> {
    DOCUMENTED
        .iter()
        .find(|rule| rule.keys.contains(&difference.key) && (rule.explains)(difference))
}

/// A multipart body with a fixed boundary (curl picks a random one, which would show up in
/// CONTENT_TYPE), written to `dir`; returns the curl arguments that send it.
fn multipart_args(dir: &Path) -> Vec<String> {
    let boundary = "paddock-differential-boundary";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"field\"\r\n\r\nvalue\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"list[]\"\r\n\r\none\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"list[]\"\r\n\r\ntwo\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a b.txt\"\r\n\
         Content-Type: text/plain\r\n\r\nfile content\n\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"empty\"; filename=\"\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n\r\n\
         --{boundary}--\r\n"
    );
    let path = dir.join("multipart.body");
    std::fs::write(&path, body).unwrap();
    vec![
        "-H".into(),
        format!("Content-Type: multipart/form-data; boundary={boundary}"),
        "--data-binary".into(),
        format!("@{}", path.display()),
    ]
}

fn cases(ipv6: bool, dir: &Path) -> Vec<Case> {
    use serde_json::json;
    use Via::{Http, Http6, Https};
    let long_header = format!("X-Long: {}", "L".repeat(6000));
    let long_query = format!("/capture.php?long={}", "q".repeat(3000));
    let many_headers: Vec<String> = (0..40)
        .flat_map(|i| ["-H".to_string(), format!("X-Header-{i}: value {i}")])
        .collect();
    let many_headers: Vec<&str> = many_headers.iter().map(String::as_str).collect();
    let multipart = multipart_args(dir);
    let multipart: Vec<&str> = multipart.iter().map(String::as_str).collect();
    let mut all = vec![
        case("plain GET", Http, "/capture.php", &[])
            .expect("server.HTTP_HOST", json!("localhost:<port>"))
            .expect("server.SERVER_NAME", json!("localhost"))
            .expect("server.REQUEST_SCHEME", json!("http"))
            .expect_absent("server.HTTPS"),
        case("query", Http, "/capture.php?a=1&b=two", &[]),
        case("repeated query key", Http, "/capture.php?a=1&a=2", &[])
            .expect("get", json!({"a": "2"})),
        case("array query", Http, "/capture.php?l[]=1&l[]=2&m[k]=v", &[])
            .expect("get", json!({"l": ["1", "2"], "m": {"k": "v"}})),
        case(
            "empty query values",
            Http,
            "/capture.php?empty=&novalue&=x&",
            &[],
        )
        .expect("get", json!({"empty": "", "novalue": ""})),
        case(
            "plus and percent",
            Http,
            "/capture.php?q=a+b%20c%2Bd&%41=%3D",
            &[],
        )
        .expect("get", json!({"q": "a b c+d", "A": "="}))
        .expect("server.QUERY_STRING", json!("q=a+b%20c%2Bd&%41=%3D")),
        case("utf-8 query", Http, "/capture.php?u=%C3%A9%E2%82%AC", &[])
            .expect("get", json!({"u": "é€"})),
        case("encoded NUL in query", Http, "/capture.php?n=a%00b", &[]),
        case("long query", Http, &long_query, &[]),
        case("PATH_INFO", Http, "/capture.php/extra/path", &[])
            .expect("server.PATH_INFO", json!("/extra/path"))
            .expect("server.SCRIPT_NAME", json!("/capture.php")),
        case(
            "encoded PATH_INFO",
            Http,
            "/capture.php/a%20b/%C3%A9?x=1",
            &[],
        )
        .expect("server.PATH_INFO", json!("/a b/é"))
        .expect("server.REQUEST_URI", json!("/capture.php/a%20b/%C3%A9?x=1")),
        case("PATH_INFO trailing slash", Http, "/capture.php/dir/", &[])
            .expect("server.PATH_INFO", json!("/dir/")),
        case("encoded script name", Http, "/captur%65.php", &[])
            .expect("server.SCRIPT_NAME", json!("/capture.php")),
        case("directory index", Http, "/sub/", &[])
            .expect("server.SCRIPT_NAME", json!("/sub/index.php")),
        case("directory index with query", Http, "/sub/?page=2", &[]),
        case("front controller", Http, "/no/such/page?x=1", &[])
            .expect("server.SCRIPT_NAME", json!("/capture.php"))
            .expect("server.REQUEST_URI", json!("/no/such/page?x=1"))
            .expect_absent("server.PATH_INFO"),
        case("front controller trailing slash", Http, "/pretty/url/", &[]),
        case(
            "dot segments",
            Http,
            "/sub/../capture.php",
            &["--path-as-is"],
        ),
        case("HEAD", Http, "/capture.php?h=1", &["-I"])
            .expect("server.REQUEST_METHOD", json!("HEAD")),
        case("OPTIONS", Http, "/capture.php", &["-X", "OPTIONS"]),
        case("DELETE", Http, "/capture.php?id=3", &["-X", "DELETE"]),
        case(
            "urlencoded POST",
            Http,
            "/capture.php?from=query",
            &["-d", "a=1&b=x+y&c=%26&arr[k]=v&arr[]=2"],
        )
        .expect(
            "post",
            json!({"a": "1", "b": "x y", "c": "&", "arr": {"k": "v", "0": "2"}}),
        ),
        case(
            "urlencoded POST with charset",
            Http,
            "/capture.php",
            &[
                "-H",
                "Content-Type: application/x-www-form-urlencoded; charset=UTF-8",
                "-d",
                "name=%C3%A9",
            ],
        ),
        case("multipart POST", Http, "/capture.php?m=1", &multipart)
            .expect("post", json!({"field": "value", "list": ["one", "two"]})),
        case(
            "JSON POST",
            Http,
            "/capture.php",
            &[
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                "{\"a\":[1,2]}",
            ],
        )
        .expect("server.CONTENT_LENGTH", json!("11")),
        case(
            "empty POST",
            Http,
            "/capture.php",
            &["-X", "POST", "-d", ""],
        ),
        case(
            "PUT body",
            Http,
            "/capture.php/item/7",
            &[
                "-X",
                "PUT",
                "-H",
                "Content-Type: text/plain",
                "--data-binary",
                "new text",
            ],
        ),
        case(
            "chunked POST",
            Http,
            "/capture.php",
            &["-H", "Transfer-Encoding: chunked", "-d", "k=chunked"],
        )
        .expect("post", json!({"k": "chunked"}))
        .expect("server.CONTENT_LENGTH", json!("9")),
        case(
            "cookies",
            Http,
            "/capture.php",
            &["-H", "Cookie: a=1; b=x%20y; c=a+b"],
        )
        .expect("cookie", json!({"a": "1", "b": "x y", "c": "a+b"})),
        case(
            "repeated Cookie headers",
            Http,
            "/capture.php",
            &["-H", "Cookie: a=1", "-H", "Cookie: b=2"],
        )
        .expect("cookie", json!({"a": "1", "b": "2"})),
        case(
            "repeated header",
            Http,
            "/capture.php",
            &["-H", "X-Multi: one", "-H", "X-Multi: two"],
        )
        .expect("server.HTTP_X_MULTI", json!("one, two")),
        case("long header", Http, "/capture.php", &["-H", &long_header]),
        case("many headers", Http, "/capture.php", &many_headers)
            .expect("server.HTTP_X_HEADER_39", json!("value 39")),
        case(
            "basic authorization",
            Http,
            "/capture.php",
            &["-u", "alice:s3cr:et"],
        )
        .expect("server.PHP_AUTH_USER", json!("alice"))
        .expect("server.PHP_AUTH_PW", json!("s3cr:et"))
        .expect_absent("server.REMOTE_USER"),
        case(
            "bearer authorization",
            Http,
            "/capture.php",
            &["-H", "Authorization: Bearer abc.def"],
        )
        .expect("server.HTTP_AUTHORIZATION", json!("Bearer abc.def")),
        case(
            "header names with underscore and dot",
            Http,
            "/capture.php",
            &["-H", "X_Under: 1", "-H", "X.Dot: 2", "-H", "X-Fine: 3"],
        )
        .expect_absent("server.HTTP_X_UNDER")
        .expect_absent("server.HTTP_X_DOT")
        .expect("server.HTTP_X_FINE", json!("3")),
        case(
            "Proxy header (httpoxy)",
            Http,
            "/capture.php",
            &["-H", "Proxy: http://evil:1"],
        )
        .expect_absent("server.HTTP_PROXY"),
        case(
            "explicit Host with port",
            Http,
            "/capture.php",
            &["-H", "Host: localhost:8080"],
        )
        .expect("server.HTTP_HOST", json!("localhost:8080")),
        case("HTTP/1.0", Http, "/capture.php", &["--http1.0"])
            .expect("server.SERVER_PROTOCOL", json!("HTTP/1.0")),
        case("HTTPS", Https, "/capture.php?s=1", &[])
            .expect("server.HTTPS", json!("on"))
            .expect("server.REQUEST_SCHEME", json!("https")),
        case("HTTPS PATH_INFO", Https, "/capture.php/secure", &[]),
        case("HTTPS HTTP/2", Https, "/capture.php", &["--http2"])
            .expect("server.SERVER_PROTOCOL", json!("HTTP/2.0"))
            .expect("server.HTTP_HOST", json!("localhost:<port>")),
        case(
            "HTTPS HTTP/2 POST",
            Https,
            "/capture.php",
            &["--http2", "-d", "a=1"],
        )
        .expect("post", json!({"a": "1"})),
    ];
    if ipv6 {
        all.push(
            case("IPv6 client", Http6, "/capture.php?v=6", &[])
                .expect("server.REMOTE_ADDR", json!("::1"))
                .expect("server.SERVER_NAME", json!("[::1]")),
        );
    }
    all
}

#[test]
fn php_sees_the_same_request_behind_paddock_and_nginx() {
    require_php_cgi();
    differential(Stacks::start("command = [\"php-cgi\"]"));
}

/// The same comparison with paddock's own PHP worker (`builtin = "php"`) behind paddock: it must
/// differ from nginx + php-fpm exactly where php-cgi does.
#[test]
fn builtin_php_sees_the_same_request_behind_paddock_and_nginx() {
    if !harness::php_builtin::require_libphp() {
        return;
    }
    differential(Stacks::start("builtin = \"php\""));
}

fn differential(stacks: Stacks) {
    let ports: Vec<u16> = stacks
        .paddock_at
        .ports()
        .into_iter()
        .chain(stacks.nginx_at.ports())
        .collect();
    let cases = cases(stacks.paddock_at.http6.is_some(), stacks._dir.path());
    assert!(cases.len() >= 30, "only {} request shapes", cases.len());
    let docs = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/cgi-differences.md"),
    )
    .expect("docs/cgi-differences.md");
    let mut failures = String::new();
    let mut used = vec![false; DOCUMENTED.len()];
    for (i, case) in cases.iter().enumerate() {
        let paddock = entries(
            &capture(&stacks, &stacks.paddock_at, case, &format!("p{i}")),
            &ports,
        );
        let nginx = entries(
            &capture(&stacks, &stacks.nginx_at, case, &format!("n{i}")),
            &ports,
        );
        for (key, expected) in &case.checks {
            if paddock.get(*key) != expected.as_ref() {
                failures.push_str(&format!(
                    "{}: behind paddock {key} is {:?}, expected {expected:?}\n",
                    case.name,
                    paddock.get(*key)
                ));
            }
        }
        let mut keys: Vec<&String> = paddock.keys().chain(nginx.keys()).collect();
        keys.sort();
        keys.dedup();
        for key in keys
            .into_iter()
            .filter(|k| paddock.get(*k) != nginx.get(*k))
        {
            let difference = Difference {
                key,
                paddock: &paddock,
                nginx: &nginx,
            };
            match documented(&difference) {
                Some(rule) => {
                    used[DOCUMENTED
                        .iter()
                        .position(|r| std::ptr::eq(r, rule))
                        .unwrap()] = true;
                }
                None => failures.push_str(&difference.describe(case.name)),
            }
        }
    }
    for (rule, used) in DOCUMENTED.iter().zip(used) {
        if !docs.contains(&format!("## {}", rule.doc)) {
            failures.push_str(&format!(
                "docs/cgi-differences.md lacks \"## {}\"\n",
                rule.doc
            ));
        }
        if !used {
            failures.push_str(&format!(
                "documented difference \"{}\" no longer occurs: update the docs and this test\n",
                rule.doc
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "undocumented differences or failed checks:\n{failures}"
    );
}
