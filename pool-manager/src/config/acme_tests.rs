//! Config tests for `listeners.NAME.acme` and `server.state_dir`.

use protocol::control::AcmeChallenge;

use super::test_support::load;
use super::*;

/// An HTTP and an HTTPS listener, two sites; `acme` goes on the HTTPS listener.
fn config(acme: &str) -> String {
    format!(
        r#"[server]
state_dir = "/srv/paddock-state"

[listeners.web]
kind = "http"
address = "127.0.0.1:0"

[listeners.secure]
kind = "https"
address = "127.0.0.1:0"
acme = {{ {acme} }}

[sites.main]
root = "deploy/demo"
hosts = ["www.example.org", "example.org", "*"]

[sites.other]
root = "deploy/demo"
hosts = ["shop.example.org", "10.0.0.1", "*.example.net"]
"#
    )
}

const DIRECTORY: &str = r#"directory = "https://acme.example/dir""#;

#[test]
fn names_default_to_the_sites_dns_hosts_and_the_challenge_to_tls_alpn() {
    let spec = load(&config(DIRECTORY)).unwrap().frontend;
    let acme = spec.listeners[0].acme.as_ref().unwrap();
    assert_eq!(
        acme.domains,
        ["example.org", "shop.example.org", "www.example.org"]
    );
    assert_eq!(acme.challenge, AcmeChallenge::TlsAlpn01);
    assert_eq!(acme.state_dir, Path::new("/srv/paddock-state/acme"));
    assert_eq!(acme.email, None);
    assert!(spec.listeners[1].acme.is_none());
}

#[test]
fn explicit_names_email_and_http01_are_kept() {
    let text = config(&format!(
        r#"{DIRECTORY}, email = "ops@example.org", domains = ["A.example.org"], challenge = "http-01""#
    ));
    let spec = load(&text).unwrap().frontend;
    let acme = spec.listeners[0].acme.as_ref().unwrap();
    assert_eq!(acme.domains, ["a.example.org"]);
    assert_eq!(acme.email.as_deref(), Some("ops@example.org"));
    assert_eq!(acme.challenge, AcmeChallenge::Http01);
}

#[test]
fn the_state_dir_defaults_to_var_lib_paddock() {
    let text = config(DIRECTORY).replace("state_dir = \"/srv/paddock-state\"\n", "");
    let spec = load(&text).unwrap().frontend;
    assert_eq!(
        spec.listeners[0].acme.as_ref().unwrap().state_dir,
        Path::new("/var/lib/paddock/acme")
    );
}

#[test]
fn mistakes_name_the_file_line_and_key() {
    let cases = [
        (
            r#"directory = "http://acme.example/dir""#.to_string(),
            "listeners.secure.acme.directory",
            "https://",
        ),
        (
            format!(r#"{DIRECTORY}, domains = ["*.example.org"]"#),
            "listeners.secure.acme.domains",
            "DNS-01",
        ),
        (
            format!(r#"{DIRECTORY}, domains = ["127.0.0.1"]"#),
            "listeners.secure.acme.domains",
            "DNS names",
        ),
        (
            format!(r#"{DIRECTORY}, domains = []"#),
            "listeners.secure.acme.domains",
            "no names",
        ),
        (
            format!(r#"{DIRECTORY}, challenge = "dns-01""#),
            "listeners.secure.acme.challenge",
            "tls-alpn-01",
        ),
        (
            format!(r#"{DIRECTORY}, email = "nobody""#),
            "listeners.secure.acme.email",
            "not an address",
        ),
        (
            format!(r#"{DIRECTORY}, ca_certificate = "/nonexistent/ca.pem""#),
            "listeners.secure.acme.ca_certificate",
            "/nonexistent/ca.pem",
        ),
        (format!(r#"{DIRECTORY}, typo = 1"#), "", "typo"),
    ];
    for (acme, key, message) in cases {
        let error = load(&config(&acme)).unwrap_err();
        assert!(
            error.key.starts_with(key) && error.message.contains(message),
            "{acme}: {error}"
        );
        assert_eq!(error.line, Some(11), "{acme}: {error}");
    }
}

#[test]
fn acme_needs_an_https_listener_and_http01_a_plain_one() {
    let text = config(DIRECTORY).replace(
        "kind = \"https\"\naddress = \"127.0.0.1:0\"\nacme",
        "kind = \"http\"\naddress = \"127.0.0.1:0\"\nacme",
    );
    let error = load(&text).unwrap_err();
    assert_eq!(error.key, "listeners.secure.acme", "{error}");
    assert!(error.message.contains("https"), "{error}");

    let text = config(&format!(r#"{DIRECTORY}, challenge = "http-01""#)).replace(
        "[listeners.web]\nkind = \"http\"",
        "[listeners.web]\nkind = \"admin\"",
    );
    let error = load(&text).unwrap_err();
    assert_eq!(error.key, "listeners.secure.acme.challenge", "{error}");
    assert!(error.message.contains("port 80"), "{error}");
}

#[test]
fn sites_without_dns_hosts_and_no_domains_are_refused() {
    let text = config(DIRECTORY)
        .replace(
            r#"hosts = ["www.example.org", "example.org", "*"]"#,
            r#"hosts = ["*"]"#,
        )
        .replace(
            r#"hosts = ["shop.example.org", "10.0.0.1", "*.example.net"]"#,
            r#"hosts = ["10.0.0.1"]"#,
        );
    let error = load(&text).unwrap_err();
    assert_eq!(error.key, "listeners.secure.acme.domains", "{error}");
    assert!(error.message.contains("hosts"), "{error}");
}

#[test]
fn a_site_takes_its_own_hosts_and_needs_an_https_listener() {
    let text = config(DIRECTORY).replace(
        "[sites.other]\nroot = \"deploy/demo\"\n",
        "[sites.other]\nroot = \"deploy/demo\"\nacme = { directory = \"https://acme.example/dir\", challenge = \"http-01\" }\n",
    );
    let spec = load(&text).unwrap().frontend;
    assert_eq!(spec.site_acme.len(), 1);
    let site = &spec.site_acme[0];
    assert_eq!(site.site, "other");
    assert_eq!(site.acme.domains, ["shop.example.org"]);
    assert_eq!(site.acme.challenge, AcmeChallenge::Http01);

    let no_https = MINIMAL_SITE_ACME;
    let error = load(no_https).unwrap_err();
    assert_eq!(error.key, "sites.main.acme", "{error}");
    assert!(error.message.contains("HTTPS listeners"), "{error}");
    assert_eq!(error.line, Some(8), "{error}");
}

const MINIMAL_SITE_ACME: &str = r#"[listeners.web]
kind = "http"
address = "127.0.0.1:0"

[sites.main]
root = "deploy/demo"
hosts = ["example.org"]
acme = { directory = "https://acme.example/dir" }
"#;
