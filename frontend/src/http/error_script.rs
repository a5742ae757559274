//! Error pages that are scripts: `ErrorDocument 404 /404.php` in an `.htaccess` file, or a
//! site's `error_pages = { "404" = "/index.php" }`, answers paddock's own 404 with what the
//! script prints, as Apache's internal redirect and nginx's `error_page` with a PHP location do.
//!
//! The page is requested as a new GET (HEAD stays HEAD) without a body, through the site's
//! rules for its own path (a page the rules refuse is not run), with the client's headers and
//! REQUEST_URI, and Apache's variables telling the script what happened: REDIRECT_STATUS (the
//! error's status), REDIRECT_URL, REDIRECT_QUERY_STRING and REDIRECT_REQUEST_METHOD. The answer
//! keeps the error's status unless the script chose another one; if the page fails in turn, the
//! client gets the first error, as Apache does (no error page for an error page).
//!
//! Only errors a client's well-formed request earns run a script: never a malformed request
//! (400, 408, 413, 414, 431, 501), which must not reach a worker; never a rate limit (429), whose
//! point is to spare the workers; never a worker failure (5xx), which the page would repeat on
//! the same pool. Those get a static page, or paddock's own.

use http::header::{CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use http::request::Parts;
use http::{Method, Response, StatusCode, Uri};
use rules::htaccess::ErrorDocument;

use crate::http::response::{Body, ErrorPage, OwnError};
use crate::http::router::{self, Route};
use crate::http::service::{route_and_respond, Scope};
use crate::http::site_policy;
use crate::site_rules::{self, Client, Verdict};

/// The statuses whose error page may be a script.
const SCRIPT_PAGE_STATUSES: [StatusCode; 5] = [
    StatusCode::UNAUTHORIZED,
    StatusCode::FORBIDDEN,
    StatusCode::NOT_FOUND,
    StatusCode::METHOD_NOT_ALLOWED,
    StatusCode::GONE,
];

/// Variables paddock sets for an error page's script; the same names from `.htaccess` give way.
const REDIRECT_VARIABLES: [&str; 3] = [
    "REDIRECT_URL",
    "REDIRECT_QUERY_STRING",
    "REDIRECT_REQUEST_METHOD",
];

/// An `.htaccess` `ErrorDocument` in place of one of paddock's own error responses.
pub(super) async fn error_document(
    scope: &Scope<'_>,
    original: &Parts,
    document: &ErrorDocument,
    error: Response<Body>,
) -> Response<Body> {
    match document {
        ErrorDocument::Local(page) => {
            if let Some(page) = script_page(scope, page, &error) {
                return run(scope, original, page, error).await;
            }
            site_policy::error_document(scope.site, document, error).await
        }
        _ => site_policy::error_document(scope.site, document, error).await,
    }
}

/// The site's own `error_pages` entry for one of paddock's own error responses.
pub(super) async fn site_error_page(
    scope: &Scope<'_>,
    original: &Parts,
    error: Response<Body>,
) -> Response<Body> {
    let status = error.status().as_u16();
    let page = scope
        .site
        .error_pages
        .iter()
        .find(|(code, _)| *code == status)
        .and_then(|(_, page)| script_page(scope, page, &error));
    match page {
        Some(page) => run(scope, original, page, error).await,
        None => site_policy::custom_error_page(scope.site, error).await,
    }
}

/// `page` as a URI when it names a script (or an application mount) that may answer `error`.
fn script_page(scope: &Scope<'_>, page: &str, error: &Response<Body>) -> Option<Uri> {
    let own = error.extensions().get::<OwnError>().is_some();
    if !own || !SCRIPT_PAGE_STATUSES.contains(&error.status()) {
        return None;
    }
    let uri: Uri = page.parse().ok()?;
    matches!(
        router::route(scope.site, uri.path()),
        Route::Script(_) | Route::App(_)
    )
    .then_some(uri)
}

/// Runs the script at `page` for the request `original`, which ended in `error`.
async fn run(
    scope: &Scope<'_>,
    original: &Parts,
    page: Uri,
    error: Response<Body>,
) -> Response<Body> {
    let status = error.status();
    let parts = page_request(original, page);
    let client = Client {
        ip: scope.conn.peer.ip(),
        https: scope.conn.https,
    };
    let files = &scope.state.rule_files;
    let mut routing =
        match site_rules::before_routing(scope.rules, scope.site, &parts, client, files) {
            Verdict::Route(routing) => routing,
            // The page is refused to this client as well: the error stands as it is.
            Verdict::Respond(_) => return error,
        };
    routing
        .env
        .retain(|(name, _)| !REDIRECT_VARIABLES.contains(&name.as_str()));
    routing.env.extend(redirect_variables(original));
    let inner = Scope {
        redirect_status: status.as_u16(),
        ..*scope
    };
    let asked = original.uri.path_and_query().map_or("/", |pq| pq.as_str());
    // Boxed: inline, a second copy of the request's whole answering future would sit in every
    // request's future, for the few that end in an error page run by a script.
    let answering = route_and_respond(&inner, &parts, asked, &routing, None);
    let mut answer = Box::pin(answering).await;
    if answer.extensions().get::<OwnError>().is_some() {
        return error;
    }
    // A script that printed no Status keeps the error's; one that chose a status (a redirect to
    // a login page, say) is obeyed.
    if answer.status() == StatusCode::OK {
        *answer.status_mut() = status;
    }
    answer.extensions_mut().insert(ErrorPage);
    answer
}

/// The request for an error page: the client's, as a GET (HEAD stays HEAD) of `page` without a
/// body.
fn page_request(original: &Parts, page: Uri) -> Parts {
    let mut parts = original.clone();
    parts.uri = page;
    if parts.method != Method::HEAD {
        parts.method = Method::GET;
    }
    for name in [CONTENT_LENGTH, TRANSFER_ENCODING, CONTENT_TYPE] {
        parts.headers.remove(name);
    }
    parts
}

/// Apache's variables for an error page: what the client asked for, and how.
fn redirect_variables(original: &Parts) -> Vec<(String, String)> {
    let mut variables = vec![
        ("REDIRECT_URL".to_owned(), original.uri.path().to_owned()),
        (
            "REDIRECT_REQUEST_METHOD".to_owned(),
            original.method.as_str().to_owned(),
        ),
    ];
    if let Some(query) = original.uri.query() {
        variables.push(("REDIRECT_QUERY_STRING".to_owned(), query.to_owned()));
    }
    variables
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: Method, target: &str) -> Parts {
        let (mut parts, ()) = http::Request::builder()
            .method(method)
            .uri(target)
            .header(CONTENT_LENGTH, "5")
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header("cookie", "session=1")
            .body(())
            .unwrap()
            .into_parts();
        parts.extensions.clear();
        parts
    }

    #[test]
    fn the_page_is_a_get_without_a_body_that_keeps_the_clients_headers() {
        let original = parts(Method::POST, "/missing?x=1");
        let page = page_request(&original, "/404.php?from=error".parse().unwrap());
        assert_eq!(page.method, Method::GET);
        assert_eq!(page.uri, "/404.php?from=error");
        assert!(!page.headers.contains_key(CONTENT_LENGTH));
        assert!(!page.headers.contains_key(CONTENT_TYPE));
        assert_eq!(page.headers["cookie"], "session=1");
    }

    #[test]
    fn a_head_request_gets_its_page_as_head() {
        let page = page_request(&parts(Method::HEAD, "/gone"), "/404.php".parse().unwrap());
        assert_eq!(page.method, Method::HEAD);
    }

    #[test]
    fn the_script_learns_what_the_client_asked_for() {
        let with_query = redirect_variables(&parts(Method::POST, "/a/b?x=1&y=2"));
        assert_eq!(
            with_query,
            [
                ("REDIRECT_URL".to_owned(), "/a/b".to_owned()),
                ("REDIRECT_REQUEST_METHOD".to_owned(), "POST".to_owned()),
                ("REDIRECT_QUERY_STRING".to_owned(), "x=1&y=2".to_owned()),
            ]
        );
        let without = redirect_variables(&parts(Method::GET, "/a"));
        assert!(without.iter().all(|(n, _)| n != "REDIRECT_QUERY_STRING"));
    }
}
