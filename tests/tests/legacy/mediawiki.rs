//! MediaWiki (Debian's `mediawiki` package, copied into the test's directory) on SQLite:
//! installed with its own `maintenance/install.php`, then used through its API as an editor
//! would (log in, edit, upload an image that ImageMagick thumbnails), read by a visitor under
//! the short URLs MediaWiki's own Apache recipe gives, while the `.htaccess` files the package
//! ships, and the one MediaWiki writes for its upload stash, keep its internals closed with no
//! rule of the site's own.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use harness::client::{Connection, Response};
use harness::mediawiki::{self, PASSWORD};
use harness::{require_php_cgi, Paddock};
use serde_json::Value;

use super::browser::{Browser, Page};

/// The uploaded image's name: not ASCII, so its URLs are percent-encoded.
const IMAGE: &str = "Rotes Quadrat für Paddock.png";

/// What the test adds below the installer's LocalSettings.php.
const LOCAL_SETTINGS: &str = r#"
# paddock test: short URLs, uploads thumbnailed by ImageMagick.
$wgArticlePath = "/wiki/$1";
$wgEnableUploads = true;
$wgUseImageMagick = true;
$wgImageMagickConvertCommand = "/usr/bin/convert";
"#;

/// No `deny`, `no_scripts` or `rewrite` rule: what is closed below is closed by the
/// `.htaccess` files MediaWiki ships, and short URLs come from its documented `.htaccess`.
/// `handler`: the pool's `command = …` or `builtin = …` line.
fn site_config(root: &Path, handler: &str) -> String {
    format!(
        r#"
[sites.wiki]
root = "{root}"
index = ["index.php", "index.html"]

[sites.wiki.scripts]
pool = "php"

[pools.php]
mode = "prefork"
{handler}
workers = 4
"#,
        root = root.display()
    )
}

struct Wiki {
    dir: tempfile::TempDir,
    paddock: Paddock,
}

impl Wiki {
    /// The wiki's own directory (the copy of the package), at `/w`.
    fn w(&self) -> PathBuf {
        self.dir.path().join("htdocs/w")
    }

    fn raw(&self, path: &str) -> Response {
        Connection::open(self.paddock.http)
            .unwrap()
            .request("GET", path, &[], b"")
            .unwrap()
    }
}

fn install(handler: &str) -> Wiki {
    assert!(
        Command::new("convert").arg("-version").output().is_ok(),
        "apt-get install imagemagick (scripts/test.sh installs it)"
    );
    let dir = tempfile::tempdir().unwrap();
    let htdocs = dir.path().join("htdocs");
    let w = mediawiki::copy_package(&htdocs);
    let paddock = Paddock::start(&site_config(&htdocs, handler));
    // The installer builds the wiki's URLs on the running server's address.
    mediawiki::run_installer(&w, &dir.path().join("data"), &paddock.url(""));
    let settings = w.join("LocalSettings.php");
    let mut text = fs::read_to_string(&settings).unwrap();
    text.push_str(LOCAL_SETTINGS);
    fs::write(&settings, text).unwrap();
    Wiki { dir, paddock }
}

/// The JSON of an API answer, which must be a 200 without an `error` member.
fn api(page: &Page) -> Value {
    assert_eq!(page.status, 200, "{}", page.body);
    let value: Value =
        serde_json::from_str(&page.body).unwrap_or_else(|e| panic!("{e}: {}", page.body));
    assert!(value.get("error").is_none(), "{value}");
    value
}

/// A percent-encoded URL path as the file-system path it names.
fn decoded(path: &str) -> PathBuf {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1..i + 3)) {
            (b'%', Some(hex)) => {
                let hex = std::str::from_utf8(hex).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    PathBuf::from(String::from_utf8(out).unwrap())
}

/// Every file below `dir`.
fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_below(&path));
        } else {
            files.push(path);
        }
    }
    files
}

fn token(editor: &Browser, kind: &str) -> String {
    let answer = api(&editor.get(&format!(
        "/w/api.php?action=query&meta=tokens&type={kind}&format=json"
    )));
    answer["query"]["tokens"][format!("{kind}token")]
        .as_str()
        .unwrap_or_else(|| panic!("no {kind} token: {answer}"))
        .to_string()
}

fn edit(editor: &Browser, csrf: &str, text: &str, summary: &str) {
    let answer = api(&editor.post(
        "/w/api.php",
        &[
            ("action", "edit"),
            ("title", "Paddock Test"),
            ("text", text),
            ("summary", summary),
            ("token", csrf),
            ("format", "json"),
        ],
    ));
    assert_eq!(answer["edit"]["result"], "Success", "{answer}");
}

#[test]
fn mediawiki_installs_edits_uploads_and_stays_protected() {
    require_php_cgi();
    mediawiki(install("command = [\"php-cgi\"]"));
}

/// The same, on paddock's own PHP worker (`builtin = "php"`).
#[test]
fn mediawiki_on_builtin_php_installs_edits_uploads_and_stays_protected() {
    if !harness::php_builtin::require_libphp() {
        return;
    }
    mediawiki(install("builtin = \"php\""));
}

fn mediawiki(wiki: Wiki) {
    let editor = Browser::new(&wiki.paddock, wiki.dir.path(), "editor");
    let visitor = Browser::new(&wiki.paddock, wiki.dir.path(), "visitor");

    // The front page, through MediaWiki's short-URL .htaccess: `/` reaches index.php, which
    // sends the visitor to the main page's short URL.
    let front = visitor.get("/");
    assert_eq!(front.status, 301, "{}", front.body);
    assert_eq!(front.location, wiki.paddock.url("/wiki/Main_Page"));
    let main = visitor.get("/wiki/Main_Page");
    assert_eq!(main.status, 200, "{}", main.body);
    assert!(
        main.body.contains("MediaWiki has been installed"),
        "{}",
        main.body
    );

    // Log in (the API's client login, with its login token).
    let login_token = token(&editor, "login");
    let login = api(&editor.post(
        "/w/api.php",
        &[
            ("action", "clientlogin"),
            ("username", "Admin"),
            ("password", PASSWORD),
            ("logintoken", &login_token),
            ("loginreturnurl", &wiki.paddock.url("/")),
            ("format", "json"),
        ],
    ));
    assert_eq!(login["clientlogin"]["status"], "PASS", "{login}");

    // A new page, with the session's CSRF token.
    let csrf = token(&editor, "csrf");
    edit(&editor, &csrf, "First words.", "paddock first edit");
    // Upload an image (multipart, as the API takes files).
    let image = wiki.dir.path().join("red.png");
    let made = Command::new("convert")
        .args(["-size", "300x200", "xc:red"])
        .arg(format!("png:{}", image.display()))
        .status()
        .unwrap();
    assert!(made.success());
    let upload = api(&editor.post_multipart(
        "/w/api.php",
        &[
            ("action", "upload"),
            ("filename", IMAGE),
            ("comment", "paddock upload"),
            ("ignorewarnings", "1"),
            ("token", &csrf),
            ("format", "json"),
        ],
        &[("file", &image, "image/png")],
    ));
    assert_eq!(upload["upload"]["result"], "Success", "{upload}");
    let original = upload["upload"]["imageinfo"]["url"].as_str().unwrap();
    let original = &original[original.find("/w/images/").expect(original)..];
    let served = wiki.raw(original);
    assert_eq!(served.status, 200, "{original}");
    assert_eq!(served.header("content-type"), Some("image/png"));

    // An upload held in the stash (for review before publishing) goes to images/temp/, which
    // MediaWiki closes with a `.htaccess` it writes at run time: followed at once.
    let stashed = api(&editor.post_multipart(
        "/w/api.php",
        &[
            ("action", "upload"),
            ("filename", "Stashed.png"),
            ("stash", "1"),
            ("token", &csrf),
            ("format", "json"),
        ],
        &[("file", &image, "image/png")],
    ));
    assert!(stashed["upload"]["filekey"].is_string(), "{stashed}");
    let temp = wiki.w().join("images/temp");
    let written = fs::read_to_string(temp.join(".htaccess")).expect("MediaWiki's temp/.htaccess");
    assert!(written.contains("Require all denied"), "{written}");
    let stash_file = files_below(&temp)
        .into_iter()
        .find(|f| f.extension().is_some_and(|e| e == "png"))
        .expect("the stashed file");
    let stash_url = format!(
        "/w/images/temp/{}",
        stash_file
            .strip_prefix(&temp)
            .unwrap()
            .display()
            .to_string()
            .replace('!', "%21")
    );
    assert_eq!(wiki.raw(&stash_url).status, 403, "{stash_url}");

    // A second edit shows the image in the page.
    edit(
        &editor,
        &csrf,
        &format!("Served by a warm front end.\n\n[[File:{IMAGE}|thumb|120px|A red square]]"),
        "paddock second edit",
    );

    // A 120-pixel thumbnail: MediaWiki has ImageMagick render it when asked for its URL…
    let info = api(&visitor.get(
        "/w/api.php?action=query&titles=File:Rotes_Quadrat_f%C3%BCr_Paddock.png\
         &prop=imageinfo&iiprop=url|mime&iiurlwidth=120&format=json",
    ));
    let page = info["query"]["pages"]
        .as_object()
        .and_then(|pages| pages.values().next())
        .unwrap_or_else(|| panic!("{info}"));
    let thumb = page["imageinfo"][0]["thumburl"]
        .as_str()
        .unwrap_or_else(|| panic!("no thumbnail: {info}"));
    assert_eq!(page["imageinfo"][0]["thumbwidth"], 120, "{info}");
    let thumb = &thumb[thumb.find("/w/images/thumb/").expect(thumb)..];
    let on_disk = wiki.dir.path().join("htdocs").join(decoded(&thumb[1..]));
    assert!(on_disk.is_file(), "{} not rendered", on_disk.display());
    // …and paddock serves it as the static file it is: the 404-handler rule below sees that
    // the file exists (`%{DOCUMENT_ROOT}%{REQUEST_URI}` is the decoded path, as in Apache)
    // although the URL spells its name percent-encoded.
    let served = wiki.raw(thumb);
    assert_eq!(served.status, 200, "{thumb}");
    assert_eq!(served.header("content-type"), Some("image/png"), "{thumb}");
    assert!(
        served.header("etag").is_some(),
        "{thumb}: not the static file"
    );
    assert_eq!(served.header("content-disposition"), None, "{thumb}");
    assert!(served.body.starts_with(b"\x89PNG"));
    assert_eq!(served.body, fs::read(&on_disk).unwrap());

    // A size nobody asked for yet is rendered on its first request, by thumb_handler.php
    // through the 404-handler rule: the request's own path is what tells it which.
    let odd = thumb.replace("/120px-", "/77px-");
    let odd_on_disk = wiki.dir.path().join("htdocs").join(decoded(&odd[1..]));
    assert!(!odd_on_disk.exists());
    let served = wiki.raw(&odd);
    assert_eq!(served.status, 200, "{odd}: {}", served.text());
    assert_eq!(served.header("content-type"), Some("image/png"), "{odd}");
    // MediaWiki's answer, not a file's.
    let disposition = served.header("content-disposition").unwrap_or_default();
    assert!(disposition.starts_with("inline;"), "{odd}: {disposition}");
    // The PNG's IHDR width.
    assert_eq!(served.body[16..20], 77u32.to_be_bytes());
    assert!(odd_on_disk.is_file());

    // The page by its short URL, for a visitor, with the thumbnail in it.
    let article = visitor.get("/wiki/Paddock_Test");
    assert_eq!(article.status, 200, "{}", article.body);
    assert!(article
        .body
        .contains("<title>Paddock Test - Paddock Wiki</title>"));
    assert!(article.body.contains("Served by a warm front end."));
    assert!(article.body.contains(thumb), "{}", article.body);
    // Its history lists both edits, newest first.
    let history = visitor.get("/w/index.php?title=Paddock_Test&action=history");
    assert_eq!(history.status, 200);
    let second = history
        .body
        .find("paddock second edit")
        .expect("second edit");
    let first = history.body.find("paddock first edit").expect("first edit");
    assert!(second < first);
    // The short URL takes the same queries.
    let history = visitor.get("/wiki/Paddock_Test?action=history");
    assert!(history.body.contains("paddock first edit"));

    // Uploads never run PHP: Debian's images/.htaccess says `php_flag engine off`, so a script
    // dropped there is served as text, never run.
    let images = wiki.w().join("images");
    let payload = "<?php echo 'EXEC' . 'UTED';";
    fs::write(images.join("evil.php"), payload).unwrap();
    let evil = wiki.raw("/w/images/evil.php");
    assert_eq!(evil.status, 200);
    assert_eq!(evil.text(), payload);
    assert_eq!(evil.header("x-content-type-options"), Some("nosniff"));
    assert!(evil
        .header("content-type")
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(wiki.raw("/w/images/evil.php/x.png").status, 404);
    // Debian's file does not cover HTML: a page dropped in images/ would be served as HTML
    // (MediaWiki refuses such uploads, but the directory is the wiki's). MediaWiki's
    // Manual:Security asks for these to be served as plain text; the .htaccess line it gives
    // is followed from the next request, with no reload. `.phtml` was never run (only `.php`
    // is a script to this site): it goes from application/octet-stream to text/plain too.
    let html = "<script>alert(1)</script>";
    for name in ["x.html", "x.htm", "x.shtml"] {
        fs::write(images.join(name), html).unwrap();
    }
    fs::write(images.join("x.phtml"), payload).unwrap();
    assert_eq!(
        wiki.raw("/w/images/x.html").header("content-type"),
        Some("text/html")
    );
    let mut htaccess = fs::read_to_string(images.join(".htaccess")).unwrap();
    assert!(htaccess.contains("php_flag engine off"), "{htaccess}");
    htaccess.push_str(
        "\n# MediaWiki, Manual:Security: serve HTML as plain text, don't execute SHTML\n\
         AddType text/plain .html .htm .shtml .phtml\n",
    );
    fs::write(images.join(".htaccess"), htaccess).unwrap();
    for name in ["x.html", "x.htm", "x.shtml", "x.phtml"] {
        let page = wiki.raw(&format!("/w/images/{name}"));
        assert_eq!(page.status, 200, "{name}");
        assert_eq!(page.header("content-type"), Some("text/plain"), "{name}");
        assert!(!page.text().contains("EXECUTED"), "{name}");
    }

    // The directories MediaWiki (and Debian, for cache/) ship a `.htaccess` for are closed, for
    // scripts and static files alike.
    fs::write(wiki.w().join("cache/secret.txt"), "secret").unwrap();
    let denied = [
        "/w/includes/WebStart.php",
        "/w/includes/MainConfigNames.template",
        "/w/maintenance/install.php",
        "/w/maintenance/README",
        "/w/maintenance/archives/patch-actor-table.sql",
        "/w/languages/data/plurals.xml",
        "/w/languages/i18n/en.json",
        "/w/vendor/autoload.php",
        "/w/vendor/composer.json",
        "/w/cache/secret.txt",
        "/w/skins/MinervaNeue/dev-scripts/svg_check.sh",
    ];
    for path in denied {
        let page = wiki.raw(path);
        assert_eq!(page.status, 403, "{path}");
        assert!(!page.text().contains("secret"), "{path}");
    }
    // Next to them, what has no .htaccess is served.
    let logo = wiki.raw("/w/resources/assets/change-your-logo.svg");
    assert_eq!(logo.status, 200);
    // It is the shipped files that close them: the site has no rule of its own (above), and
    // with maintenance/.htaccess moved aside the same request is served; moved back, denied
    // again — each from the next request.
    let config = site_config(Path::new("/"), "");
    assert!(!config.contains("deny") && !config.contains("no_scripts"));
    let shipped = wiki.w().join("maintenance/.htaccess");
    let aside = wiki.dir.path().join("maintenance.htaccess");
    fs::rename(&shipped, &aside).unwrap();
    assert_eq!(wiki.raw("/w/maintenance/README").status, 200);
    fs::rename(&aside, &shipped).unwrap();
    assert_eq!(wiki.raw("/w/maintenance/README").status, 403);
}
