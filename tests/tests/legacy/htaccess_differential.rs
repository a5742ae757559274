//! Differential test: the same `.htaccess` files and requests through Apache 2.4 (Debian's
//! `apache2` with mod_php, prefork, `AllowOverride All`, started by the test with a config of its
//! own) and through paddock (php-cgi pool). Status, `Location` (path and query), the body of
//! successful answers and the headers a case names must agree; every remaining difference must be
//! one that docs/htaccess-differences.md lists, recognised by its rule below, and every listed one
//! must still occur.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use harness::peers::{free_port, require_program, wait_until, Process};
use harness::{require_php_cgi, Paddock};

/// What every case's `e.php` prints: what PHP was asked to run and with what.
const ECHO: &str = r#"<?php
header('Content-Type: text/plain');
echo json_encode([
    'script' => $_SERVER['SCRIPT_NAME'] ?? null,
    'uri' => $_SERVER['REQUEST_URI'] ?? null,
    'query' => $_SERVER['QUERY_STRING'] ?? null,
    'path_info' => $_SERVER['PATH_INFO'] ?? null,
    'get' => $_GET,
    'var' => $_SERVER['DIFF_VAR'] ?? null,
    'redirect_var' => $_SERVER['REDIRECT_DIFF_VAR'] ?? null,
    'user' => $_SERVER['REMOTE_USER'] ?? null,
], JSON_UNESCAPED_SLASHES), "\n";
"#;

/// A script that sets a response header of its own.
const HEADER_PHP: &str = "<?php header('X-From-Php: yes'); echo \"headers\\n\";";

/// One directory of the document root: files (relative path, content) under `/<dir>/`. Every
/// directory also gets `e.php` ([`ECHO`]). In contents, `{D}` is the directory's URL path
/// (`/<dir>`) and `{AUTH}` the htpasswd file.
struct Tree {
    dir: &'static str,
    files: Vec<(&'static str, &'static str)>,
}

fn tree(dir: &'static str, files: &[(&'static str, &'static str)]) -> Tree {
    Tree {
        dir,
        files: files.to_vec(),
    }
}

/// One request: a target (path and query, sent as is), extra curl arguments, and the response
/// headers compared besides status, Location and body.
#[derive(Debug)]
struct Case {
    name: &'static str,
    target: &'static str,
    args: Vec<&'static str>,
    headers: Vec<&'static str>,
}

fn case(name: &'static str, target: &'static str) -> Case {
    Case {
        name,
        target,
        args: Vec::new(),
        headers: Vec::new(),
    }
}

impl Case {
    fn args(mut self, args: &[&'static str]) -> Self {
        self.args.extend_from_slice(args);
        self
    }

    fn header(mut self, name: &'static str) -> Self {
        self.headers.push(name);
        self
    }
}

const AUTH_BASIC: &str =
    "AuthType Basic\nAuthName \"Diff\"\nAuthUserFile {AUTH}\nRequire valid-user\n";

fn trees() -> Vec<Tree> {
    vec![
        // Access: Require.
        tree("req_denied", &[(".htaccess", "Require all denied\n")]),
        tree(
            "req_granted",
            &[
                (".htaccess", "Require all denied\n"),
                ("sub/.htaccess", "Require all granted\n"),
                ("sub/e.php", ECHO),
                ("inherit/e.php", ECHO),
            ],
        ),
        tree("req_ip_ok", &[(".htaccess", "Require ip 127.0.0.1\n")]),
        tree("req_ip_no", &[(".htaccess", "Require ip 10.1.2.0/24\n")]),
        tree(
            "req_not_ip",
            &[(
                ".htaccess",
                "<RequireAll>\nRequire all granted\nRequire not ip 127.0.0.1\n</RequireAll>\n",
            )],
        ),
        tree(
            "req_not_ip_other",
            &[(
                ".htaccess",
                "<RequireAll>\nRequire all granted\nRequire not ip 10.0.0.1\n</RequireAll>\n",
            )],
        ),
        // Access: Order/Allow/Deny.
        tree(
            "order_da_partial",
            &[(
                ".htaccess",
                "Order Deny,Allow\nDeny from all\nAllow from 127.0\n",
            )],
        ),
        tree(
            "order_ad_cidr",
            &[(
                ".htaccess",
                "Order Allow,Deny\nAllow from 127.0.0.0/8\nDeny from 127.0.0.1\n",
            )],
        ),
        tree(
            "order_ad_none",
            &[(".htaccess", "Order Allow,Deny\nAllow from 10.0\n")],
        ),
        tree(
            "order_da_mask",
            &[(".htaccess", "Order Deny,Allow\nDeny from 127.0.0.0/255.0.0.0\n")],
        ),
        tree(
            "order_ad_allow",
            &[(".htaccess", "Order Allow,Deny\nAllow from 127.0.0.1/32\n")],
        ),
        // Satisfy with Basic auth.
        tree(
            "satisfy_any",
            &[(
                ".htaccess",
                "Order Deny,Allow\nDeny from all\nAllow from 127.0.0.1\nAuthType Basic\nAuthName \"Diff\"\nAuthUserFile {AUTH}\nRequire valid-user\nSatisfy Any\n",
            )],
        ),
        tree(
            "satisfy_all",
            &[(
                ".htaccess",
                "Order Deny,Allow\nDeny from all\nAllow from 127.0.0.1\nAuthType Basic\nAuthName \"Diff\"\nAuthUserFile {AUTH}\nRequire valid-user\nSatisfy All\n",
            )],
        ),
        tree(
            "satisfy_all_ip_no",
            &[(
                ".htaccess",
                "Order Deny,Allow\nDeny from all\nAllow from 10.0.0.0/8\nAuthType Basic\nAuthName \"Diff\"\nAuthUserFile {AUTH}\nRequire valid-user\nSatisfy All\n",
            )],
        ),
        // Basic auth with each htpasswd hash.
        tree("auth", &[(".htaccess", AUTH_BASIC)]),
        tree(
            "auth_user",
            &[(
                ".htaccess",
                "AuthType Basic\nAuthName \"Diff\"\nAuthUserFile {AUTH}\nRequire user ap\n",
            )],
        ),
        // Files sections.
        tree(
            "files",
            &[
                (
                    ".htaccess",
                    "<Files secret.txt>\nRequire all denied\n</Files>\n<FilesMatch \"\\.(bak|sql)$\">\nRequire all denied\n</FilesMatch>\n<Files ~ \"^conf\\.\">\nRequire all denied\n</Files>\n",
                ),
                ("secret.txt", "secret\n"),
                ("other.txt", "other\n"),
                ("dump.sql", "rows\n"),
                ("conf.ini", "x=1\n"),
            ],
        ),
        // IfModule.
        tree(
            "ifmod_present",
            &[(
                ".htaccess",
                "<IfModule mod_rewrite.c>\nRequire all denied\n</IfModule>\n",
            )],
        ),
        tree(
            "ifmod_absent",
            &[(
                ".htaccess",
                "<IfModule mod_nothere.c>\nRequire all denied\n</IfModule>\n",
            )],
        ),
        tree(
            "ifmod_negated",
            &[(
                ".htaccess",
                "<IfModule !mod_nothere.c>\nRequire all denied\n</IfModule>\n",
            )],
        ),
        // Limit.
        tree(
            "limit",
            &[(".htaccess", "<Limit POST>\nRequire all denied\n</Limit>\n")],
        ),
        tree(
            "limit_except",
            &[(
                ".htaccess",
                "<LimitExcept GET>\nRequire all denied\n</LimitExcept>\n",
            )],
        ),
        tree(
            "limit_get",
            &[(".htaccess", "<Limit GET>\nRequire all denied\n</Limit>\n")],
        ),
        // Not applied by paddock yet (docs/legacy-apps.md).
        tree(
            "errdoc",
            &[(".htaccess", "ErrorDocument 404 http://example.test/not-found\n")],
        ),
        tree(
            "dirindex",
            &[
                (".htaccess", "DirectoryIndex start.php\n"),
                ("start.php", ECHO),
            ],
        ),
        tree(
            "always",
            &[(
                ".htaccess",
                "Require all denied\nHeader always set X-Always \"yes\"\nHeader set X-Success \"yes\"\n",
            )],
        ),
        tree(
            "always_r",
            &[(
                ".htaccess",
                "Header always set X-Always \"yes\"\nRedirect /always_r/old /always_r/new\nRewriteEngine On\nRewriteRule ^f$ - [F]\nRewriteRule ^r$ {D}/e.php [R=301,L]\n",
            )],
        ),
        tree(
            "merge",
            &[
                (
                    ".htaccess",
                    "RewriteEngine On\nRewriteRule ^noengine/page$ {D}/e.php?from=parent [L]\nRewriteRule ^plain/page$ {D}/e.php?from=parent [L]\n<Files secret.txt>\nRequire all denied\n</Files>\n",
                ),
                ("noengine/.htaccess", "Header set X-Child \"yes\"\n"),
                ("noengine/secret.txt", "secret\n"),
                ("plain/secret.txt", "secret\n"),
            ],
        ),
        tree(
            "auth_child",
            &[
                (".htaccess", AUTH_BASIC),
                ("open/.htaccess", "Require all granted\n"),
                ("open/e.php", ECHO),
                ("closed/e.php", ECHO),
            ],
        ),
        tree(
            "limit_auth",
            &[(
                ".htaccess",
                "AuthType Basic\nAuthName \"Diff\"\nAuthUserFile {AUTH}\n<Limit POST>\nRequire valid-user\n</Limit>\n",
            )],
        ),
        // Rewrites.
        tree(
            "rw_cap",
            &[(
                ".htaccess",
                "RewriteEngine On\nRewriteRule ^item/(\\d+)/(\\w+)$ e.php?id=$1&n=$2 [L]\n",
            )],
        ),
        tree(
            "rw_base",
            &[
                (
                    ".htaccess",
                    "RewriteEngine On\nRewriteBase {D}/app/\nRewriteRule ^x/(.*)$ e.php?p=$1 [L]\n",
                ),
                ("app/e.php", ECHO),
            ],
        ),
        tree(
            "rw_rel",
            &[
                (
                    ".htaccess",
                    "RewriteEngine On\nRewriteRule ^sub/page$ sub/e.php?rel=1 [L]\n",
                ),
                ("sub/e.php", ECHO),
            ],
        ),
        tree(
            "rw_fc",
            &[
                (
                    ".htaccess",
                    "RewriteEngine On\nRewriteCond %{REQUEST_FILENAME} !-f\nRewriteCond %{REQUEST_FILENAME} !-d\nRewriteRule . e.php [L]\n",
                ),
                ("real.txt", "real\n"),
                ("adir/index.html", "index\n"),
            ],
        ),
        tree(
            "rw_d",
            &[
                (
                    ".htaccess",
                    "RewriteEngine On\nRewriteCond %{REQUEST_FILENAME} -d\nRewriteRule ^(.+)$ e.php?dir=$1 [L]\nRewriteCond %{REQUEST_FILENAME} -f\nRewriteRule ^(.+)\\.txt$ e.php?file=$1 [L]\n",
                ),
                ("adir/index.html", "index\n"),
                ("f.txt", "file\n"),
            ],
        ),
        tree(
            "rw_qs",
            &[(
                ".htaccess",
                "RewriteEngine On\nRewriteCond %{QUERY_STRING} ^id=(\\d+)$\nRewriteRule ^show$ e.php?item=%1 [L]\n",
            )],
        ),
        tree(
            "rw_flags",
            &[(
                ".htaccess",
                "RewriteEngine On\nRewriteRule ^qsa$ e.php?a=1 [QSA,L]\nRewriteRule ^noqsa$ e.php?a=1 [L]\nRewriteRule ^qsd$ e.php [QSD,L]\nRewriteRule ^forbidden - [F]\nRewriteRule ^gone - [G]\nRewriteRule ^UPPER$ e.php?nc=1 [NC,L]\nRewriteRule ^env$ e.php [E=DIFF_VAR:hello,L]\nRewriteRule ^e\\.php$ - [E=DIFF_VAR:direct]\n",
            )],
        ),
        tree(
            "rw_r",
            &[(
                ".htaccess",
                "RewriteEngine On\nRewriteBase {D}/\nRewriteRule ^old$ {D}/new [R=301,L]\nRewriteRule ^old2$ new2 [R,L]\nRewriteRule ^q$ {D}/e.php?x=1 [R,L]\nRewriteRule ^qa$ {D}/e.php?x=1 [R,QSA,L]\n",
            )],
        ),
        tree(
            "rw_more",
            &[(
                ".htaccess",
                "RewriteEngine On\nRewriteCond %{QUERY_STRING} a=1 [OR]\nRewriteCond %{QUERY_STRING} b=2\nRewriteRule ^or$ e.php?matched=1 [L]\nRewriteCond %{REQUEST_METHOD} =POST\nRewriteRule ^method$ e.php?post=1 [L]\nRewriteRule ^method$ e.php?other=1 [L]\nRewriteRule ^b/(.*)$ e.php?v=$1 [B,L]\nRewriteRule ^bc/(.*)$ e.php?v=$1 [B=&,L]\nRewriteRule ^bt/(.*)$ e.php?v=$1 [BCTLS,L]\nRewriteCond %{HTTP:X-Mode} ^(on|yes)$ [NC]\nRewriteRule ^hdr$ e.php?mode=%1 [L]\nRewriteRule ^abs$ http://example.test/elsewhere?x=1 [R=302,L]\nRewriteRule ^chain$ step2 [C]\nRewriteRule ^step2$ e.php?chained=1 [L]\n",
            )],
        ),
        tree(
            "rw_setenv",
            &[(
                ".htaccess",
                "SetEnv DIFF_VAR fromsetenv\nRewriteEngine On\nRewriteRule ^go$ e.php [L]\n",
            )],
        ),
        tree(
            "rw_l",
            &[(".htaccess", "RewriteEngine On\nRewriteRule ^(.*)$ e.php?p=$1 [L]\n")],
        ),
        tree(
            "rw_end",
            &[(".htaccess", "RewriteEngine On\nRewriteRule ^(.*)$ e.php?p=$1 [END]\n")],
        ),
        tree(
            "rw_inh",
            &[
                (
                    ".htaccess",
                    "RewriteEngine On\nRewriteRule ^inh$ {D}/e.php?from=parent [L]\n",
                ),
                (
                    "child/.htaccess",
                    "RewriteEngine On\nRewriteOptions Inherit\nRewriteRule ^own$ {D}/e.php?from=child [L]\n",
                ),
                (
                    "plain/.htaccess",
                    "RewriteEngine On\nRewriteRule ^own$ {D}/e.php?from=plain [L]\n",
                ),
            ],
        ),
        tree(
            "rw_pct",
            &[(
                ".htaccess",
                "RewriteEngine On\nRewriteRule ^a\\ b$ e.php?sp=1 [L]\nRewriteRule ^p/(.*)$ e.php?v=$1 [L]\n",
            )],
        ),
        // mod_alias.
        tree(
            "redir",
            &[(
                ".htaccess",
                "Redirect /redir/old /redir/new\nRedirect 301 /redir/dir /redir/target\nRedirectMatch 301 ^/redir/m/(\\d+)$ /redir/e.php?n=$1\nRedirect gone /redir/gone\n",
            )],
        ),
        // mod_headers.
        tree(
            "hdr",
            &[
                (
                    ".htaccess",
                    "Header set X-Diff \"one\"\nHeader append X-Diff \"two\"\nHeader unset X-From-Php\nHeader set X-Static \"yes\"\n",
                ),
                ("h.php", HEADER_PHP),
                ("page.txt", "page\n"),
            ],
        ),
        tree(
            "hdr_child",
            &[
                (".htaccess", "Header set X-Level \"parent\"\n"),
                ("sub/.htaccess", "Header set X-Level \"child\"\n"),
                ("sub/page.txt", "page\n"),
                ("page.txt", "page\n"),
            ],
        ),
        // mod_mime.
        tree(
            "types",
            &[
                (
                    ".htaccess",
                    "AddType application/x-diff .dif\n<Files forced.data>\nForceType text/x-forced\n</Files>\n",
                ),
                ("a.dif", "diff\n"),
                ("forced.data", "data\n"),
                ("plain.txt", "plain\n"),
            ],
        ),
        tree(
            "types_force",
            &[
                (".htaccess", "ForceType application/x-all\n"),
                ("plain.txt", "plain\n"),
            ],
        ),
        // Scripts turned off.
        tree(
            "php_off",
            &[(
                ".htaccess",
                "<IfModule mod_php.c>\nphp_flag engine off\n</IfModule>\n",
            )],
        ),
        tree("handler_none", &[(".htaccess", "SetHandler none\n")]),
        // PATH_INFO against <Files>.
        tree(
            "pi",
            &[
                (".htaccess", "<Files *.php>\nRequire all denied\n</Files>\n"),
                ("ok.txt", "ok\n"),
            ],
        ),
        tree(
            "pi_txt",
            &[(".htaccess", "<FilesMatch \"\\.txt$\">\nRequire all denied\n</FilesMatch>\n")],
        ),
        // Trailing slashes.
        tree(
            "slash",
            &[
                ("adir/index.php", ECHO),
                (
                    ".htaccess",
                    "RewriteEngine On\nRewriteRule ^rdir/$ e.php?slash=1 [L]\n",
                ),
                ("rdir/.keep", ""),
            ],
        ),
    ]
}

fn cases() -> Vec<Case> {
    let bc = ["-u", "bc:pw-bc"];
    let ap = ["-u", "ap:pw-ap"];
    let sh = ["-u", "sh:pw-sh"];
    let post = ["-X", "POST", "-d", "a=1"];
    vec![
        case("Require all denied", "/req_denied/e.php"),
        case("parent denies, child grants", "/req_granted/sub/e.php?x=1"),
        case(
            "parent denies, child inherits",
            "/req_granted/inherit/e.php",
        ),
        case("Require ip allowed", "/req_ip_ok/e.php"),
        case("Require ip not allowed", "/req_ip_no/e.php"),
        case("Require not ip in RequireAll", "/req_not_ip/e.php"),
        case(
            "Require not ip (other) in RequireAll",
            "/req_not_ip_other/e.php",
        ),
        case("Deny,Allow partial address", "/order_da_partial/e.php"),
        case("Allow,Deny CIDR denied", "/order_ad_cidr/e.php"),
        case("Allow,Deny nothing allows", "/order_ad_none/e.php"),
        case("Deny,Allow net mask", "/order_da_mask/e.php"),
        case("Allow,Deny /32", "/order_ad_allow/e.php"),
        case("Satisfy Any without credentials", "/satisfy_any/e.php"),
        case("Satisfy All without credentials", "/satisfy_all/e.php").header("WWW-Authenticate"),
        case("Satisfy All with credentials", "/satisfy_all/e.php").args(&bc),
        case("Satisfy All, address refused", "/satisfy_all_ip_no/e.php").args(&bc),
        case("bcrypt right", "/auth/e.php").args(&bc),
        case("bcrypt wrong", "/auth/e.php").args(&["-u", "bc:nope"]),
        case("apr1 right", "/auth/e.php").args(&ap),
        case("apr1 wrong", "/auth/e.php").args(&["-u", "ap:pw-bc"]),
        case("SHA right", "/auth/e.php").args(&sh),
        case("SHA wrong", "/auth/e.php").args(&["-u", "sh:"]),
        case("unknown user", "/auth/e.php").args(&["-u", "nobody:pw-bc"]),
        case("no credentials", "/auth/e.php").header("WWW-Authenticate"),
        case("Require user, that user", "/auth_user/e.php").args(&ap),
        case("Require user, another user", "/auth_user/e.php").args(&bc),
        case("<Files> denies", "/files/secret.txt"),
        case("<Files> other file", "/files/other.txt"),
        case("<FilesMatch> denies", "/files/dump.sql"),
        case("<Files ~> denies", "/files/conf.ini"),
        case("<Files> percent-encoded name", "/files/secr%65t.txt"),
        case("<IfModule> present", "/ifmod_present/e.php"),
        case("<IfModule> absent", "/ifmod_absent/e.php"),
        case("<IfModule> negated", "/ifmod_negated/e.php"),
        case("<Limit POST>, GET", "/limit/e.php"),
        case("<Limit POST>, POST", "/limit/e.php").args(&post),
        case("<LimitExcept GET>, GET", "/limit_except/e.php"),
        case("<LimitExcept GET>, HEAD", "/limit_except/e.php").args(&["-I"]),
        case("<LimitExcept GET>, POST", "/limit_except/e.php").args(&post),
        case("rewrite with captures", "/rw_cap/item/42/foo?keep=1"),
        case("RewriteBase", "/rw_base/x/abc"),
        case("rewrite into a subdirectory", "/rw_rel/sub/page"),
        case("front controller, missing file", "/rw_fc/no/such/page?q=1"),
        case("front controller, real file", "/rw_fc/real.txt"),
        case("front controller, directory", "/rw_fc/adir/"),
        case("RewriteCond -d", "/rw_d/adir"),
        case("RewriteCond -d with a query", "/rw_d/adir?q=1"),
        case("RewriteCond -f", "/rw_d/f.txt"),
        case("QUERY_STRING condition with %1", "/rw_qs/show?id=7"),
        case("QUERY_STRING condition not met", "/rw_qs/show?id=x"),
        case("[QSA]", "/rw_flags/qsa?b=2"),
        case("no [QSA]", "/rw_flags/noqsa?b=2"),
        case("[QSD]", "/rw_flags/qsd?b=2"),
        case("[F]", "/rw_flags/forbidden"),
        case("[G]", "/rw_flags/gone"),
        case("[NC]", "/rw_flags/upper"),
        case("[E=] with a rewrite", "/rw_flags/env"),
        case("[E=] without a rewrite", "/rw_flags/e.php"),
        case("SetEnv with a rewrite", "/rw_setenv/go"),
        case("RewriteCond [OR]", "/rw_more/or?b=2"),
        case("RewriteCond [OR], neither", "/rw_more/or?c=3"),
        case("RewriteCond REQUEST_METHOD, POST", "/rw_more/method").args(&post),
        case("RewriteCond REQUEST_METHOD, GET", "/rw_more/method"),
        case("[B] escapes the capture", "/rw_more/b/x%20y%26z"),
        case("[B=&] escapes only &", "/rw_more/bc/x%2By%26z"),
        case("[BCTLS] escapes blanks, not &", "/rw_more/bt/a%20b%26c"),
        case("RewriteCond %{HTTP:…} [NC]", "/rw_more/hdr").args(&["-H", "X-Mode: YES"]),
        case("[R] to another host", "/rw_more/abs"),
        case("[C] chains", "/rw_more/chain"),
        case("<Limit GET>, GET", "/limit_get/e.php"),
        case("<Limit GET>, HEAD", "/limit_get/e.php").args(&["-I"]),
        case("<Limit GET>, POST", "/limit_get/e.php").args(&post),
        case("ErrorDocument to a URL", "/errdoc/missing"),
        case("DirectoryIndex", "/dirindex/"),
        case("Header always on a refusal", "/always/e.php")
            .header("X-Always")
            .header("X-Success"),
        case("Header always on a Redirect", "/always_r/old").header("X-Always"),
        case("Header always on [F]", "/always_r/f").header("X-Always"),
        case("Header always on [R]", "/always_r/r").header("X-Always"),
        case("Header always on a 404", "/always_r/missing").header("X-Always"),
        case(
            "parent rewrite, child .htaccess without one",
            "/merge/noengine/page",
        ),
        case(
            "parent rewrite, child without .htaccess",
            "/merge/plain/page",
        ),
        case(
            "parent <Files>, child .htaccess",
            "/merge/noengine/secret.txt",
        ),
        case(
            "parent <Files>, child without .htaccess",
            "/merge/plain/secret.txt",
        ),
        case(
            "parent asks a login, child grants",
            "/auth_child/open/e.php",
        ),
        case(
            "parent asks a login, child inherits",
            "/auth_child/closed/e.php",
        ),
        case(
            "parent asks a login, child inherits, user",
            "/auth_child/closed/e.php",
        )
        .args(&sh),
        case("Satisfy Any, wrong credentials", "/satisfy_any/e.php").args(&["-u", "bc:nope"]),
        case("<Limit POST> login, GET", "/limit_auth/e.php"),
        case("<Limit POST> login, POST", "/limit_auth/e.php").args(&post),
        case("<Limit POST> login, POST with a user", "/limit_auth/e.php")
            .args(&post)
            .args(&bc),
        case(".htaccess itself", "/files/.htaccess"),
        case("encoded slash", "/files/a%2Fb.txt"),
        case("file with a trailing slash", "/files/other.txt/"),
        case("dot segments", "/files/../files/other.txt"),
        case("[R=301]", "/rw_r/old"),
        case("[R] relative, default 302", "/rw_r/old2"),
        case("[R] with a query", "/rw_r/q?y=2"),
        case("[R,QSA]", "/rw_r/qa?y=2"),
        case("[L] loops", "/rw_l/foo"),
        case("[END] stops", "/rw_end/foo"),
        case("RewriteOptions Inherit", "/rw_inh/child/inh"),
        case("RewriteOptions Inherit, own rule", "/rw_inh/child/own"),
        case("no Inherit: parent rules off", "/rw_inh/plain/inh"),
        case("rewrite of an encoded space", "/rw_pct/a%20b"),
        case("encoded capture into a query", "/rw_pct/p/x%20y"),
        case("Redirect", "/redir/old"),
        case("Redirect prefix with a query", "/redir/dir/sub?x=1"),
        case("RedirectMatch", "/redir/m/12"),
        case("Redirect gone", "/redir/gone"),
        case("Header on a script", "/hdr/h.php")
            .header("X-Diff")
            .header("X-From-Php"),
        case("Header on a static file", "/hdr/page.txt")
            .header("X-Diff")
            .header("X-Static"),
        case("Header, child overrides", "/hdr_child/sub/page.txt").header("X-Level"),
        case("Header, parent", "/hdr_child/page.txt").header("X-Level"),
        case("AddType", "/types/a.dif").header("Content-Type"),
        case("ForceType in <Files>", "/types/forced.data").header("Content-Type"),
        case("no type directive", "/types/plain.txt").header("Content-Type"),
        case("ForceType for the directory", "/types_force/plain.txt").header("Content-Type"),
        case("php_flag engine off", "/php_off/e.php"),
        case("SetHandler none", "/handler_none/e.php"),
        case("PATH_INFO past <Files *.php>", "/pi/e.php/x.txt"),
        case("<Files *.php>, other file", "/pi/ok.txt"),
        case(
            "PATH_INFO .txt past <FilesMatch \\.txt$>",
            "/pi_txt/e.php/a.txt",
        ),
        case("directory without a slash", "/slash/adir"),
        case("directory with a slash", "/slash/adir/"),
        case("script with a trailing slash", "/slash/e.php/"),
        case("rewrite of a directory with a slash", "/slash/rdir/"),
    ]
}

/// A response reduced to what is compared.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    status: u16,
    /// Path and query of `Location`, scheme and authority dropped.
    location: Option<String>,
    /// Only for 2xx answers: error and redirect pages are each server's own text.
    body: Option<String>,
    headers: Vec<(String, Option<String>)>,
}

fn send(addr: SocketAddr, case: &Case) -> Seen {
    let url = format!("http://127.0.0.1:{}{}", addr.port(), case.target);
    let output = Command::new("curl")
        .args(["-sS", "-g", "--path-as-is", "--max-time", "30", "-D", "-"])
        .args(&case.args)
        .arg(&url)
        .output()
        .expect("run curl");
    let raw = String::from_utf8_lossy(&output.stdout).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("case {}: no response from {url}: {output:?}", case.name));
    let fields: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let field = |name: &str| {
        let values: Vec<&str> = fields
            .iter()
            .filter(|(n, _)| n == &name.to_ascii_lowercase())
            .map(|(_, v)| v.as_str())
            .collect();
        (!values.is_empty()).then(|| values.join(", "))
    };
    let location = field("location").map(|l| match l.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]).to_string(),
        None => l,
    });
    Seen {
        status,
        location,
        body: (200..300).contains(&status).then(|| body.to_string()),
        headers: case
            .headers
            .iter()
            .map(|h| (h.to_string(), field(h)))
            .collect(),
    }
}

/// Apache 2.4 with mod_php, as its own process with everything under `dir`.
struct Apache {
    process: Process,
    addr: SocketAddr,
    error_log: PathBuf,
}

impl Apache {
    fn start(dir: &Path, root: &Path) -> Apache {
        let binary = require_program("apache2", "apache2 libapache2-mod-php");
        let modules = Path::new("/usr/lib/apache2/modules");
        let php = std::fs::read_dir(modules)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("libphp") && n.ends_with(".so"))
            })
            .expect("mod_php is required: apt-get install libapache2-mod-php");
        let port = free_port(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let mut config = String::new();
        for module in [
            "mpm_prefork",
            "authz_core",
            "authz_host",
            "authz_user",
            "authn_core",
            "authn_file",
            "auth_basic",
            "access_compat",
            "rewrite",
            "alias",
            "headers",
            "mime",
            "env",
            "dir",
            "setenvif",
            "autoindex",
            "filter",
            "deflate",
        ] {
            writeln!(
                config,
                "LoadModule {module}_module {}/mod_{module}.so",
                modules.display()
            )
            .unwrap();
        }
        let user = if running_as_root() {
            "User www-data\nGroup www-data\n"
        } else {
            ""
        };
        write!(
            config,
            r#"LoadModule php_module {php}
ServerRoot {dir}
ServerName localhost
Listen 127.0.0.1:{port}
PidFile {dir}/apache.pid
ErrorLog {dir}/error.log
LogLevel warn
DefaultRuntimeDir {dir}
Mutex file:{dir} default
{user}StartServers 2
MinSpareServers 1
MaxSpareServers 4
TypesConfig /etc/mime.types
DocumentRoot {root}
AccessFileName .htaccess
<Directory />
    AllowOverride None
    Require all denied
</Directory>
<Directory {root}>
    Options FollowSymLinks
    AllowOverride All
    Require all granted
</Directory>
<Files ".ht*">
    Require all denied
</Files>
DirectoryIndex index.php index.html
<FilesMatch ".+\.ph(?:ar|p|tml)$">
    SetHandler application/x-httpd-php
</FilesMatch>
"#,
            php = php.display(),
            dir = dir.display(),
            root = root.display(),
        )
        .unwrap();
        let conf = dir.join("apache.conf");
        std::fs::write(&conf, config).unwrap();
        let error_log = dir.join("error.log");
        let mut process = Process::spawn(
            "apache2",
            // Its own process group: prefork's master signals its whole group when it stops,
            // and without -k it does not leave the test's group by itself.
            Command::new(binary)
                .process_group(0)
                .args(["-D", "FOREGROUND", "-f"])
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(Stdio::null()),
        );
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        wait_until(
            &mut process,
            || TcpStream::connect(addr).is_ok(),
            || std::fs::read_to_string(&error_log).unwrap_or_default(),
        );
        Apache {
            process,
            addr,
            error_log,
        }
    }
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// `user:hash` lines for bc (bcrypt), ap (apr1) and sh (SHA), made by Apache's own htpasswd.
fn htpasswd() -> String {
    let htpasswd = require_program("htpasswd", "apache2-utils");
    let mut lines = String::new();
    for (user, flag) in [("bc", "-B"), ("ap", "-m"), ("sh", "-s")] {
        let out = Command::new(&htpasswd)
            .args(["-n", "-b", flag, user, &format!("pw-{user}")])
            .output()
            .expect("run htpasswd");
        assert!(out.status.success(), "{out:?}");
        lines.push_str(String::from_utf8(out.stdout).unwrap().trim());
        lines.push('\n');
    }
    lines
}

/// A difference that docs/htaccess-differences.md lists: the section title, and when a case's
/// two answers are explained by it.
struct Documented {
    doc: &'static str,
    explains: fn(&Case, &Seen, &Seen) -> bool,
}

/// The JSON [`ECHO`] printed, if the answer was one.
fn echoed(seen: &Seen) -> Option<serde_json::Map<String, serde_json::Value>> {
    serde_json::from_str(seen.body.as_deref()?).ok()
}

const DOCUMENTED: &[Documented] = &[
    Documented {
        doc: "SetHandler none leaves PHP files to PHP",
        explains: |case, paddock, apache| {
            case.target.starts_with("/handler_none/")
                && paddock.status == 200
                && paddock.body.as_deref() == Some(ECHO)
                && echoed(apache).is_some()
        },
    },
    Documented {
        doc: "Dot files are not found rather than forbidden",
        explains: |case, paddock, apache| {
            case.target
                .rsplit('/')
                .next()
                .is_some_and(|n| n.starts_with('.'))
                && paddock.status == 404
                && apache.status == 403
        },
    },
];

#[test]
fn htaccess_files_mean_the_same_to_paddock_and_apache() {
    require_php_cgi();
    let dir = tempfile::Builder::new()
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .tempdir()
        .unwrap();
    let root = dir.path().join("root");
    let auth = dir.path().join("auth.htpasswd");
    std::fs::write(&auth, htpasswd()).unwrap();
    for tree in trees() {
        let url = format!("/{}", tree.dir);
        let files = std::iter::once(("e.php", ECHO)).chain(tree.files.iter().copied());
        for (name, content) in files {
            let path = root.join(tree.dir).join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            let content = content
                .replace("{D}", &url)
                .replace("{AUTH}", &auth.display().to_string());
            std::fs::write(path, content).unwrap();
        }
    }
    let apache_dir = dir.path().join("apache");
    std::fs::create_dir(&apache_dir).unwrap();
    let apache = Apache::start(&apache_dir, &root);
    let paddock = Paddock::start(&format!(
        r#"
[sites.test]
root = "{root}"
index = ["index.php", "index.html"]
htaccess = true

[sites.test.scripts]
pool = "php"

[pools.php]
mode = "prefork"
command = ["php-cgi"]
workers = 2
"#,
        root = root.display()
    ));

    let cases = cases();
    assert!(cases.len() >= 60, "only {} cases", cases.len());
    let docs = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/htaccess-differences.md"),
    )
    .expect("docs/htaccess-differences.md");
    let mut failures = String::new();
    let mut used = vec![false; DOCUMENTED.len()];
    for case in &cases {
        let from_apache = send(apache.addr, case);
        let from_paddock = send(paddock.http, case);
        // The same request again must get the same answer. A debug paddock serves it from the
        // rules' verdict cache where the outcome may be remembered, and checks that against
        // the full evaluation (site_rules/verdict_cache.rs): each case is then a cache case too.
        let again = send(paddock.http, case);
        if again != from_paddock {
            writeln!(
                failures,
                "{} ({}): a repeated request got another answer:\n  first:  {from_paddock:?}\n  second: {again:?}",
                case.name, case.target
            )
            .unwrap();
        }
        if from_apache == from_paddock {
            continue;
        }
        match DOCUMENTED
            .iter()
            .position(|d| (d.explains)(case, &from_paddock, &from_apache))
        {
            Some(i) => used[i] = true,
            None => writeln!(
                failures,
                "{} ({}):\n  apache:  {from_apache:?}\n  paddock: {from_paddock:?}",
                case.name, case.target
            )
            .unwrap(),
        }
    }
    for (rule, used) in DOCUMENTED.iter().zip(used) {
        if !docs.contains(&format!("| {} |", rule.doc)) {
            writeln!(
                failures,
                "docs/htaccess-differences.md lacks \"{}\"",
                rule.doc
            )
            .unwrap();
        }
        if !used {
            writeln!(
                failures,
                "listed difference \"{}\" no longer occurs: update the docs and this test",
                rule.doc
            )
            .unwrap();
        }
    }
    assert!(
        failures.is_empty(),
        "differences not listed in docs/htaccess-differences.md:\n{failures}\napache error log:\n{}",
        std::fs::read_to_string(&apache.error_log).unwrap_or_default()
    );
    drop(apache.process);
}
