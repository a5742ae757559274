//! Dynamic text responses are compressed (gzip, brotli) by Accept-Encoding, per site.

use harness::{php_site, require_php_cgi, split_response, test_site, Paddock};

fn encoding_and_body(paddock: &Paddock, path: &str, args: &[&str]) -> (Option<String>, String) {
    let mut all = vec!["-i"];
    all.extend_from_slice(args);
    let url = paddock.url(path);
    all.push(&url);
    let output = paddock.curl(&all);
    assert!(output.status.success(), "{output:?}");
    let (status, head, body) = split_response(&String::from_utf8_lossy(&output.stdout));
    assert_eq!(status, 200, "{head}");
    let encoding = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("content-encoding")
            .then(|| value.trim().to_string())
    });
    (encoding, body)
}

#[test]
fn text_responses_follow_accept_encoding() {
    require_php_cgi();
    let paddock = Paddock::start(&php_site(&test_site(), 1, ""));
    for (accept, expected) in [("gzip", "gzip"), ("br", "br"), ("gzip, br", "br")] {
        let (encoding, _) = encoding_and_body(
            &paddock,
            "/echo.php",
            &["-H", &format!("Accept-Encoding: {accept}")],
        );
        assert_eq!(encoding.as_deref(), Some(expected), "{accept}");
    }
    // curl decodes it back to the same JSON.
    let (encoding, body) = encoding_and_body(&paddock, "/echo.php?x=1", &["--compressed"]);
    assert!(encoding.is_some());
    let seen: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seen["get"]["x"], "1");
    // No Accept-Encoding: plain, and marked as varying by it (so that a cache never hands this
    // copy to a client that asked for gzip), as when the encoder runs and picks identity.
    assert_eq!(encoding_and_body(&paddock, "/echo.php", &[]).0, None);
    for (args, vary) in [
        (&[][..], true),
        (&["-H", "Accept-Encoding: identity"][..], true),
        (&["-H", "Accept-Encoding: gzip"][..], true),
    ] {
        let mut all = vec!["-sI", "-X", "GET"];
        all.extend_from_slice(args);
        let url = paddock.url("/echo.php");
        all.push(&url);
        let head = String::from_utf8_lossy(&paddock.curl(&all).stdout).to_ascii_lowercase();
        assert_eq!(
            head.contains("vary: accept-encoding"),
            vary,
            "{args:?}: {head}"
        );
    }
    let url = paddock.url("/sleep.php?ms=0");
    let tiny_head = String::from_utf8_lossy(&paddock.curl(&["-sI", "-X", "GET", &url]).stdout)
        .to_ascii_lowercase();
    assert!(!tiny_head.contains("vary:"), "{tiny_head}");
    // Binary content types are left alone, and so are tiny bodies.
    let binary = encoding_and_body(&paddock, "/big.php?kb=8", &["-H", "Accept-Encoding: gzip"]);
    assert_eq!(binary.0, None);
    let tiny = encoding_and_body(
        &paddock,
        "/sleep.php?ms=0",
        &["-H", "Accept-Encoding: gzip"],
    );
    assert_eq!(tiny.0, None);
}

#[test]
fn compression_can_be_turned_off_per_site() {
    require_php_cgi();
    let config = php_site(&test_site(), 1, "").replace(
        "front_controller = \"/index.php\"",
        "front_controller = \"/index.php\"\ncompress = false",
    );
    let paddock = Paddock::start(&config);
    let (encoding, _) = encoding_and_body(&paddock, "/echo.php", &["-H", "Accept-Encoding: gzip"]);
    assert_eq!(encoding, None);
}
