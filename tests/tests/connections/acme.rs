//! Automatic certificates against a real ACME server (pebble, started by each test on loopback):
//! issuance over HTTP-01 and TLS-ALPN-01, renewal of a short-lived certificate while an open
//! connection keeps working, a failed challenge that leaves the fallback certificate in place
//! with a clear log line, and a restart that reuses the stored account and certificate without
//! a new order. The client trusts pebble's issuing root only, so a handshake that succeeds
//! proves the certificate came from the ACME order.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use harness::observe::{scrape, value};
use harness::pebble::{loopback_port, Pebble, PebbleOptions};
use harness::tls_client::{self, presented, presented_unverified, TlsStream};
use harness::{Paddock, PATIENCE};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

const NAME: &str = "www.paddock-acme.example";
const EXPIRY: &str = "paddock_certificate_expiry_timestamp_seconds";
const RENEWALS: &str = "paddock_acme_renewals_total";

/// Paddock's listener ports, reserved before pebble starts (pebble needs them in its config).
struct Ports {
    http: u16,
    https: u16,
}

impl Ports {
    fn reserve() -> Ports {
        Ports {
            http: loopback_port(),
            https: loopback_port(),
        }
    }
}

/// Starts paddock with one site holding `hello.txt`, `acme` on the HTTPS listener, and the
/// state directory `state`; `extra_https` adds keys to the HTTPS listener.
fn start_paddock(
    ports: &Ports,
    pebble: &Pebble,
    challenge: &str,
    state: &Path,
    extra_https: &str,
) -> Paddock {
    start_paddock_as(ports, pebble, challenge, state, extra_https, "")
}

/// [`start_paddock`] with more `[server]` keys (`server`).
fn start_paddock_as(
    ports: &Ports,
    pebble: &Pebble,
    challenge: &str,
    state: &Path,
    extra_https: &str,
    server: &str,
) -> Paddock {
    let site = state.parent().unwrap().join("site");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(site.join("hello.txt"), "hello over acme\n").unwrap();
    Paddock::start_with(
        &format!(
            // The harness's config starts with its own [server] table: this key joins it.
            r#"
state_dir = "{state}"
{server}

[listeners.http]
kind = "http"
address = "127.0.0.1:{http}"

[listeners.https]
kind = "https"
address = "127.0.0.1:{https}"
acme = {{ directory = "{directory}", email = "ops@paddock-acme.example", challenge = "{challenge}", ca_certificate = "{ca}" }}
{extra_https}

[listeners.admin]
kind = "admin"
address = "127.0.0.1:0"

[sites.main]
root = "{site}"
hosts = ["{NAME}", "*"]
"#,
            state = state.display(),
            http = ports.http,
            https = ports.https,
            directory = pebble.directory,
            ca = pebble.directory_ca().display(),
            site = site.display(),
        ),
        true,
    )
}

/// A connection for [`NAME`] trusting `root` only (see [`tls_client::connect`]).
fn connect(addr: SocketAddr, root: &CertificateDer<'static>) -> TlsStream {
    tls_client::connect(addr, root, NAME)
}

/// GET /hello.txt for [`NAME`] on an open connection, which stays open; the body.
fn get_hello(stream: &mut TlsStream) -> String {
    tls_client::get(stream, NAME, "/hello.txt")
}

/// pebble validating HTTP-01 on paddock's HTTP port (and TLS-ALPN-01 where nothing listens);
/// `None` (the test returns) when pebble is not installed.
fn pebble_for_http01(ports: &Ports) -> Option<Pebble> {
    Pebble::start(PebbleOptions {
        http_port: ports.http,
        tls_port: loopback_port(),
        validity_secs: None,
    })
}

/// paddock getting its certificate over HTTP-01 into `state`, once the first one is installed.
fn issued_over_http01(ports: &Ports, pebble: &Pebble, state: &Path) -> Paddock {
    let paddock = start_paddock(ports, pebble, "http-01", state, "");
    paddock.wait_until("the ACME certificate", PATIENCE, || {
        installed_count(&paddock) == 1
    });
    paddock
}

fn installed_count(paddock: &Paddock) -> usize {
    paddock.log().matches("ACME certificate installed").count()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn http01_issues_a_certificate_and_a_restart_reuses_it_without_a_new_order() {
    let ports = Ports::reserve();
    let Some(pebble) = pebble_for_http01(&ports) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let mut paddock = issued_over_http01(&ports, &pebble, &state);
    let root = pebble.issuing_root();
    let mut stream = connect(paddock.https, &root);
    assert_eq!(get_hello(&mut stream), "hello over acme\n");
    let first = presented(&stream);

    let metrics = scrape(paddock.admin);
    let labels = [("listener", "https")];
    let expiry = value(&metrics, EXPIRY, &labels);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(expiry > now + 86_400.0, "expiry {expiry} (now {now})");
    let ok = [("certificate", "listener/https"), ("result", "success")];
    let failed = [("certificate", "listener/https"), ("result", "failure")];
    assert_eq!(value(&metrics, RENEWALS, &ok), 1.0);
    assert_eq!(value(&metrics, RENEWALS, &failed), 0.0);

    let acme = state.join("acme");
    assert_eq!(mode(&acme), 0o700);
    assert_eq!(
        mode(&acme.join("certificates/listener/https/key.pem")),
        0o600
    );
    let accounts: Vec<_> = std::fs::read_dir(acme.join("accounts"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(accounts.len(), 1);
    assert_eq!(mode(&accounts[0]), 0o600);

    // A token paddock does not expect is the site's own business (certbot --webroot files).
    let own = state
        .parent()
        .unwrap()
        .join("site/.well-known/acme-challenge");
    std::fs::create_dir_all(&own).unwrap();
    std::fs::write(own.join("site-token"), "the site's own answer").unwrap();
    let answer = harness::http_get(
        SocketAddr::from(([127, 0, 0, 1], ports.http)),
        "/.well-known/acme-challenge/site-token",
    )
    .unwrap();
    assert!(answer.ends_with("the site's own answer"), "{answer}");

    drop(stream);
    paddock.stop();
    let orders = pebble.orders();
    let paddock = start_paddock(&ports, &pebble, "http-01", &state, "");
    paddock.wait_for_log("ACME certificate loaded from the state directory");
    let stream = connect(paddock.https, &root);
    assert_eq!(
        presented(&stream),
        first,
        "the stored certificate is served again"
    );
    let metrics = scrape(paddock.admin);
    assert_eq!(value(&metrics, EXPIRY, &labels), expiry);
    assert_eq!(value(&metrics, RENEWALS, &ok), 0.0);
    assert_eq!(pebble.orders(), orders, "no new order after the restart");
    assert!(!paddock.log().contains("ACME account created"));
}

#[test]
fn tls_alpn01_renews_a_short_lived_certificate_while_open_connections_keep_working() {
    let ports = Ports::reserve();
    // Renewal is due at two thirds of the lifetime: about 20 s in.
    let Some(pebble) = Pebble::start(PebbleOptions {
        http_port: loopback_port(),
        tls_port: ports.https,
        validity_secs: Some(30),
    }) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let paddock = start_paddock(
        &ports,
        &pebble,
        "tls-alpn-01",
        &dir.path().join("state"),
        "",
    );
    paddock.wait_until("the ACME certificate", PATIENCE, || {
        installed_count(&paddock) >= 1
    });
    let root = pebble.issuing_root();
    let mut kept = connect(paddock.https, &root);
    assert_eq!(get_hello(&mut kept), "hello over acme\n");
    let first = presented(&kept);
    let labels = [("listener", "https")];
    let first_expiry = value(&scrape(paddock.admin), EXPIRY, &labels);

    paddock.wait_until("the renewed certificate", PATIENCE, || {
        installed_count(&paddock) >= 2
    });
    let mut fresh = connect(paddock.https, &root);
    assert_ne!(
        presented(&fresh),
        first,
        "a new connection gets the renewed certificate"
    );
    assert_eq!(get_hello(&mut fresh), "hello over acme\n");
    assert_eq!(
        get_hello(&mut kept),
        "hello over acme\n",
        "the connection opened before the renewal still works"
    );
    let metrics = scrape(paddock.admin);
    assert!(value(&metrics, EXPIRY, &labels) > first_expiry);
    let ok = [("certificate", "listener/https"), ("result", "success")];
    assert!(value(&metrics, RENEWALS, &ok) >= 2.0);
}

#[test]
fn a_failed_challenge_is_logged_and_the_fallback_certificate_stays() {
    let ports = Ports::reserve();
    // HTTP-01 validation goes to a port where nothing listens.
    let Some(pebble) = Pebble::start(PebbleOptions {
        http_port: loopback_port(),
        tls_port: loopback_port(),
        validity_secs: None,
    }) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = harness::self_signed_certificate(dir.path(), "fallback");
    let fallback = format!(
        "certificate = \"{}\"\nkey = \"{}\"",
        cert.display(),
        key.display()
    );
    let paddock = start_paddock(
        &ports,
        &pebble,
        "http-01",
        &dir.path().join("state"),
        &fallback,
    );
    paddock.wait_for_log("ACME certificate order failed");
    let log = paddock.log();
    let line = log
        .lines()
        .find(|l| l.contains("ACME certificate order failed"))
        .unwrap();
    for needle in [
        "certificate=listener/https",
        "http-01 validation failed",
        NAME,
        "retry_in_s=",
    ] {
        assert!(line.contains(needle), "{needle:?} missing from: {line}");
    }
    assert!(
        line.contains("configured or self-signed certificates"),
        "{line}"
    );
    let served = std::fs::read(&cert).unwrap();
    let served = CertificateDer::from_pem_slice(&served).unwrap();
    assert_eq!(
        presented_unverified(paddock.https, NAME),
        served.to_vec(),
        "the configured certificate is still served"
    );
    let metrics = scrape(paddock.admin);
    let failed = [("certificate", "listener/https"), ("result", "failure")];
    let ok = [("certificate", "listener/https"), ("result", "success")];
    assert_eq!(value(&metrics, RENEWALS, &failed), 1.0);
    assert_eq!(value(&metrics, RENEWALS, &ok), 0.0);
    assert!(!dir
        .path()
        .join("state/acme/certificates/listener/https/key.pem")
        .exists());
}

#[test]
fn an_account_the_ca_has_forgotten_is_made_anew_and_the_order_goes_through() {
    let ports = Ports::reserve();
    let Some(pebble) = pebble_for_http01(&ports) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let mut paddock = issued_over_http01(&ports, &pebble, &state);
    paddock.stop();
    let account_file = |state: &Path| {
        let accounts = state.join("acme/accounts");
        let entry = std::fs::read_dir(accounts)
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        std::fs::read_to_string(entry.path()).unwrap()
    };
    let old_account = account_file(&state);

    // The CA loses its memory (as a reset step-ca or pebble does); the stored certificate is
    // removed so that paddock has to order again with its stored account.
    let pebble = pebble.restart();
    std::fs::remove_dir_all(state.join("acme/certificates/listener/https")).unwrap();
    let paddock = start_paddock(&ports, &pebble, "http-01", &state, "");
    paddock.wait_until("the certificate from the new account", PATIENCE, || {
        installed_count(&paddock) == 1
    });
    assert!(paddock
        .log()
        .contains("the ACME server no longer knows the stored account; creating a new one"));
    assert_ne!(account_file(&state), old_account);
    let root = pebble.issuing_root();
    let mut stream = connect(paddock.https, &root);
    assert_eq!(get_hello(&mut stream), "hello over acme\n");
    let metrics = scrape(paddock.admin);
    let failed = [("certificate", "listener/https"), ("result", "failure")];
    assert_eq!(
        value(&metrics, RENEWALS, &failed),
        0.0,
        "recovered within the attempt"
    );
}

#[test]
fn a_front_end_that_drops_privileges_still_writes_its_acme_state() {
    if !is_root() {
        eprintln!("ACME privilege test skipped: it needs root (CI runs it as root)");
        return;
    }
    let ports = Ports::reserve();
    let Some(pebble) = pebble_for_http01(&ports) else {
        return;
    };
    // Traversable by `nobody`, as a real /var/lib is.
    let dir = tempfile::Builder::new()
        .permissions(std::fs::Permissions::from_mode(0o755))
        .tempdir()
        .unwrap();
    let state = dir.path().join("state");
    let paddock = start_paddock_as(&ports, &pebble, "http-01", &state, "", "user = \"nobody\"");
    // The order is placed and stored after the front end switched to nobody: installing it
    // proves the state directory was given to that user.
    paddock.wait_until("the ACME certificate", PATIENCE, || {
        installed_count(&paddock) == 1
    });
    let nobody = std::process::Command::new("id")
        .args(["-u", "nobody"])
        .output()
        .unwrap();
    let nobody: u32 = String::from_utf8_lossy(&nobody.stdout)
        .trim()
        .parse()
        .unwrap();
    let acme = state.join("acme");
    for path in [
        acme.clone(),
        acme.join("accounts"),
        acme.join("certificates/listener/https/key.pem"),
        acme.join("certificates/listener/https/certificate.pem"),
    ] {
        let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&path).unwrap());
        assert_eq!(owner, nobody, "{}", path.display());
    }
    assert_eq!(
        mode(&acme.join("certificates/listener/https/key.pem")),
        0o600
    );
    let mut stream = connect(paddock.https, &pebble.issuing_root());
    assert_eq!(get_hello(&mut stream), "hello over acme\n");
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .is_some_and(|uids| uids.split_whitespace().nth(1) == Some("0"))
}

#[test]
fn sites_get_certificates_of_their_own_chosen_by_sni() {
    let ports = Ports::reserve();
    let Some(pebble) = Pebble::start(PebbleOptions {
        http_port: ports.http,
        tls_port: ports.https,
        validity_secs: None,
    }) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(site.join("hello.txt"), "hello over acme\n").unwrap();
    let acme = |challenge: &str| {
        format!(
            r#"acme = {{ directory = "{}", challenge = "{challenge}", ca_certificate = "{}" }}"#,
            pebble.directory,
            pebble.directory_ca().display()
        )
    };
    // One site proves its name over TLS-ALPN-01, the other over HTTP-01; the listener has no
    // acme of its own and keeps its generated certificate for any other name.
    let paddock = Paddock::start_with(
        &format!(
            r#"
state_dir = "{state}"

[listeners.http]
kind = "http"
address = "127.0.0.1:{http}"

[listeners.https]
kind = "https"
address = "127.0.0.1:{https}"

[listeners.admin]
kind = "admin"
address = "127.0.0.1:0"

[sites.alpha]
root = "{site}"
hosts = ["alpha.paddock-acme.example"]
{alpha}

[sites.beta]
root = "{site}"
hosts = ["beta.paddock-acme.example"]
{beta}
"#,
            state = dir.path().join("state").display(),
            http = ports.http,
            https = ports.https,
            site = site.display(),
            alpha = acme("tls-alpn-01"),
            beta = acme("http-01"),
        ),
        true,
    );
    paddock.wait_until("both sites' certificates", PATIENCE, || {
        installed_count(&paddock) == 2
    });
    let root = pebble.issuing_root();
    let alpha = presented(&tls_client::connect(
        paddock.https,
        &root,
        "alpha.paddock-acme.example",
    ));
    let beta = presented(&tls_client::connect(
        paddock.https,
        &root,
        "beta.paddock-acme.example",
    ));
    assert_ne!(alpha, beta, "one certificate per site");
    let metrics = scrape(paddock.admin);
    for site in ["site/alpha", "site/beta"] {
        let ok = [("certificate", site), ("result", "success")];
        assert_eq!(value(&metrics, RENEWALS, &ok), 1.0, "{site}");
    }
    let key = dir.path().join("state/acme/certificates/site/beta/key.pem");
    assert_eq!(mode(&key), 0o600);
    // A name no site certificate covers still gets the listener's own (generated) one.
    let other = presented_unverified(paddock.https, NAME);
    assert!(other != alpha && other != beta);
}
