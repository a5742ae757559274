//! The Django test site (Debian's python3-django, SQLite) in a threaded pool of 2 processes × 8
//! threads, mounted at `/`: the admin login with its CSRF token and session, a wrong password,
//! a form refused without its CSRF token and accepted with it (over TLS with HTTP/2, where Django
//! also checks the Referer), and logged-in admin pages under concurrent clients.

use std::path::Path;
use std::process::Command;

use harness::wsgi::{apps_dir, python_has, threaded_pool_on, WsgiServer, SYSTEM_PYTHON};
use harness::{listeners_h2c, Paddock};

use crate::support::{curl_ok, THREADS, WORKERS};

const PASSWORD: &str = "correct horse battery staple";

/// `manage.py` with the site's database at `db`.
fn manage(app_dir: &Path, db: &Path, args: &[&str]) {
    let output = Command::new(SYSTEM_PYTHON)
        .arg("manage.py")
        .args(args)
        .current_dir(app_dir)
        .env("APP_DB", db)
        .env("DJANGO_SUPERUSER_PASSWORD", PASSWORD)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run manage.py");
    assert!(
        output.status.success(),
        "manage.py {args:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The value of the hidden `csrfmiddlewaretoken` field in a page.
fn csrf_token(page: &str) -> String {
    let at = page
        .find("name=\"csrfmiddlewaretoken\" value=\"")
        .unwrap_or_else(|| panic!("no CSRF token in {page}"));
    let rest = &page[at + "name=\"csrfmiddlewaretoken\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

#[test]
fn the_django_admin_logs_in_and_csrf_protects_its_forms() {
    django_admin(WsgiServer::Flup);
}

/// The same in paddock's own WSGI worker.
#[test]
fn the_django_admin_logs_in_and_csrf_protects_its_forms_in_paddocks_wsgi_worker() {
    django_admin(WsgiServer::Paddock);
}

fn django_admin(server: WsgiServer) {
    if !python_has(&["django"], "python3-django") {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let db = scratch.path().join("site.sqlite3");
    let app_dir = apps_dir().join("django_site");
    manage(&app_dir, &db, &["migrate", "--noinput"]);
    manage(
        &app_dir,
        &db,
        &[
            "createsuperuser",
            "--noinput",
            "--username",
            "admin",
            "--email",
            "admin@example.test",
        ],
    );
    let root = scratch.path().join("public");
    std::fs::create_dir(&root).unwrap();
    let pool = threaded_pool_on(
        server,
        &app_dir,
        "testsite.wsgi:application",
        WORKERS,
        THREADS,
        &format!(
            "env = {{ APP_DB = \"{}\", PYTHONDONTWRITEBYTECODE = \"1\" }}",
            db.display()
        ),
    );
    let config = format!(
        "{}\n[sites.django]\nroot = \"{}\"\n[sites.django.mounts.site]\nprefix = \"/\"\npool = \"django\"\n[pools.django]\n{pool}",
        listeners_h2c(),
        root.display()
    );
    let paddock = Paddock::start_with(&config, true);
    let jar = scratch.path().join("cookies");
    let jar = jar.to_str().unwrap();
    let curl = |args: &[&str]| {
        let mut all = vec!["-b", jar, "-c", jar];
        all.extend_from_slice(args);
        curl_ok(&paddock, &all)
    };

    // The login page sets the CSRF cookie and carries the token.
    let login_url = paddock.url("/admin/login/?next=/admin/");
    let page = curl(&[&login_url]);
    assert!(page.contains("Django administration"), "{page}");
    let token = csrf_token(&page);
    let wrong = curl(&[
        "-d",
        &format!("csrfmiddlewaretoken={token}&username=admin&password=wrong&next=/admin/"),
        &login_url,
    ]);
    assert!(
        wrong.contains("Please enter the correct username"),
        "{wrong}"
    );
    let login = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{redirect_url}",
        "--data-urlencode",
        &format!("csrfmiddlewaretoken={token}"),
        "--data-urlencode",
        "username=admin",
        "--data-urlencode",
        &format!("password={PASSWORD}"),
        "--data-urlencode",
        "next=/admin/",
        &login_url,
    ]);
    assert_eq!(
        login,
        format!("302 {}", paddock.url("/admin/")),
        "{}",
        paddock.log()
    );
    let admin = curl(&[&paddock.url("/admin/")]);
    assert!(admin.contains("Site administration"), "{admin}");
    assert!(admin.contains("Users"), "{admin}");

    // Logged-in admin pages for 24 clients at once: sessions read from SQLite by several threads.
    // They only read the cookie jar: 24 curls rewriting one file at exit would race.
    let users = paddock.url("/admin/auth/user/");
    let answers: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..24)
            .map(|_| {
                scope.spawn(|| curl_ok(&paddock, &["-b", jar, "-w", "\n%{http_code}", &users]))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for answer in answers {
        assert!(answer.ends_with("\n200"), "{answer}");
        assert!(answer.contains("admin@example.test"), "{answer}");
    }

    // A form without its CSRF token is refused; with it (and over TLS the Referer Django
    // checks), it is accepted. Over HTTP/2 with TLS, on a fresh cookie jar.
    let tls_jar = scratch.path().join("tls-cookies");
    let tls_jar = tls_jar.to_str().unwrap();
    let contact = paddock.https_url("/contact/");
    let tls = |args: &[&str]| {
        let mut all = vec![
            "--http2",
            "-b",
            tls_jar,
            "-c",
            tls_jar,
            "-e",
            contact.as_str(),
        ];
        all.extend_from_slice(args);
        curl_ok(&paddock, &all)
    };
    let refused = tls(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{http_version}",
        "-d",
        "name=Ada&message=hi",
        &contact,
    ]);
    assert_eq!(refused, "403 2");
    let form = tls(&[&contact]);
    let token = csrf_token(&form);
    let thanks = tls(&[
        "-d",
        &format!("csrfmiddlewaretoken={token}&name=Ada&message=Hello%20there"),
        &contact,
    ]);
    assert!(thanks.contains("Thanks, Ada!"), "{thanks}");
}
