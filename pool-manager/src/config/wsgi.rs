//! Validation of a `builtin = "wsgi"` pool: its `wsgi_app` into the command line of
//! `paddock-wsgi`, paddock's own WSGI worker, found next to the running `paddock`.

use super::error::{invalid, Invalid};
use super::paths::next_to_paddock;
use super::raw::RawPool;

/// paddock's WSGI worker (the wsgi-worker crate), installed next to `paddock` (`cargo build
/// -p paddock-wsgi` puts both in the same directory); also its process name.
pub(crate) const WSGI_PROGRAM: &str = "paddock-wsgi";

/// `PATH/paddock-wsgi MODULE[:CALLABLE]`. Whether the program exists is found when the pool
/// starts, like a `command`'s (a missing one fails the pool with the way to build it).
pub(super) fn command(name: &str, pool: &RawPool) -> Result<Vec<String>, Invalid> {
    let at = |message: &str| invalid(&["pools", name, "wsgi_app"], message);
    let Some(app) = &pool.wsgi_app else {
        return Err(at(
            "builtin = \"wsgi\" needs the application: wsgi_app = \"MODULE:CALLABLE\" \
             (e.g. \"myproject.wsgi:application\"; CALLABLE defaults to `application`)",
        ));
    };
    if !is_application(app) {
        return Err(at(
            "must be MODULE or MODULE:CALLABLE, dotted Python names (e.g. \"myapp:app\")",
        ));
    }
    let program = next_to_paddock(name, WSGI_PROGRAM)?;
    Ok(vec![program.to_string_lossy().into_owned(), app.clone()])
}

/// `wsgi_app` on a pool that is not `builtin = "wsgi"`.
pub(super) fn forbid_settings(name: &str, pool: &RawPool) -> Result<(), Invalid> {
    match pool.wsgi_app {
        Some(_) => Err(invalid(
            &["pools", name, "wsgi_app"],
            "applies to builtin = \"wsgi\" pools; a `command` names its application itself",
        )),
        None => Ok(()),
    }
}

/// `MODULE` or `MODULE:CALLABLE`: a dotted module path and an attribute name, each part a
/// Python identifier (ASCII here: a typo is likelier than a non-ASCII module name).
fn is_application(app: &str) -> bool {
    let identifier = |part: &str| {
        part.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    let (module, callable) = app.split_once(':').unwrap_or((app, "application"));
    module.split('.').all(identifier) && identifier(callable)
}

#[cfg(test)]
mod tests {
    use super::is_application;

    #[test]
    fn applications_are_dotted_modules_and_a_callable() {
        for good in ["app", "app:app", "my_site.wsgi:application", "_x.y2:_z"] {
            assert!(is_application(good), "{good}");
        }
        for bad in [
            "",
            ":app",
            "app:",
            "app:a:b",
            "my-site:app",
            "app.:x",
            "1app",
            "a b",
        ] {
            assert!(!is_application(bad), "{bad}");
        }
    }
}
