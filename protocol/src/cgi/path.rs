//! The URL path of a request, decoded into segments, and its split into SCRIPT_NAME and PATH_INFO.
//!
//! The front end's router walks these segments on disk to find the script (the first segment
//! that is a regular file); the split itself is pure and lives here so that it is fuzzed together
//! with the meta-variables it feeds. PATH_INFO is always the segments after the script, so it is a
//! suffix of the decoded path by construction: no regex, no length arithmetic that could underflow
//! (the php-fpm CVE-2019-11043 came from such a split).

use percent_encoding::percent_decode_str;

/// Why a request path cannot name anything under the document root. The front end answers 400.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathError {
    NotAbsolute,
    NotUtf8,
    ForbiddenCharacter,
    AboveRoot,
}

impl PathError {
    /// The message as a static string, for error pages.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotAbsolute => "the request path must start with /",
            Self::NotUtf8 => "the request path is not valid UTF-8",
            Self::ForbiddenCharacter => "the request path contains a forbidden character",
            Self::AboveRoot => "the request path climbs above the document root",
        }
    }
}

impl std::fmt::Display for PathError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for PathError {}

/// A decoded, normalised URL path: no empty or `.` segments, `..` applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlPath {
    segments: Vec<String>,
    trailing_slash: bool,
}

/// Decodes a percent-encoded path (no query) into segments, dropping empty and `.` segments and
/// applying `..`. A `..` that would climb above the root is an error, as in nginx; so are NUL
/// (it would truncate the file name in C), CR and LF (no file name needs them; CVE-2019-11043
/// began with a `%0a` in a path) and backslash (a separator on other systems).
pub fn decode_url_path(raw_path: &str) -> Result<UrlPath, PathError> {
    if !raw_path.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    let decoded = percent_decode_str(raw_path)
        .decode_utf8()
        .map_err(|_| PathError::NotUtf8)?;
    if decoded.contains(['\0', '\r', '\n', '\\']) {
        return Err(PathError::ForbiddenCharacter);
    }
    let mut segments: Vec<String> = Vec::new();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                if segments.pop().is_none() {
                    return Err(PathError::AboveRoot);
                }
            }
            other => segments.push(other.to_string()),
        }
    }
    Ok(UrlPath {
        segments,
        trailing_slash: raw_path.ends_with('/'),
    })
}

impl UrlPath {
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// Whether the raw path ended in `/`.
    pub fn trailing_slash(&self) -> bool {
        self.trailing_slash
    }

    /// SCRIPT_NAME and PATH_INFO when segment `script` (0-based) is the script: the segments up
    /// to it, and the ones after it ("" when none; a trailing slash of the request is kept, so
    /// `/x.php/` has PATH_INFO `/`, as Apache and nginx pass it).
    ///
    /// # Panics
    /// If `script` is not a segment index.
    pub fn split_at_script(&self, script: usize) -> (String, String) {
        self.split_after(script + 1)
    }

    /// SCRIPT_NAME and PATH_INFO for an application mounted at the first `count` segments: the
    /// mount's path, and the rest of the request's (a trailing slash kept, as for a script; ""
    /// when the request named the mount itself without one).
    ///
    /// # Panics
    /// If `count` is more than the number of segments.
    pub fn split_after(&self, count: usize) -> (String, String) {
        let (name, rest) = self.segments.split_at(count);
        let script_name = join(name);
        let mut path_info = join(rest);
        if self.trailing_slash {
            path_info.push('/');
        }
        (script_name, path_info)
    }
}

/// `/a/b` from `["a", "b"]`; "" from none.
fn join(segments: &[String]) -> String {
    let len = segments.iter().map(|s| s.len() + 1).sum();
    let mut joined = String::with_capacity(len);
    for segment in segments {
        joined.push('/');
        joined.push_str(segment);
    }
    joined
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(raw: &str, script: usize) -> (String, String) {
        decode_url_path(raw).unwrap().split_at_script(script)
    }

    #[test]
    fn control_characters_in_a_path_are_refused() {
        for path in ["/a%0ab.php", "/a%0D", "/x%00.php", "/a%5cb"] {
            assert_eq!(
                decode_url_path(path).unwrap_err(),
                PathError::ForbiddenCharacter,
                "{path}"
            );
        }
    }

    #[test]
    fn segments_are_decoded_and_normalised() {
        let path = decode_url_path("//a/./b%20c/../d%2Fe/").unwrap();
        // %2F decodes to a separator, as in nginx.
        assert_eq!(path.segments(), ["a", "d", "e"]);
        assert!(path.trailing_slash());
        assert_eq!(decode_url_path("/").unwrap().segments(), [] as [String; 0]);
    }

    #[test]
    fn bad_paths_are_rejected() {
        assert_eq!(decode_url_path("a.php"), Err(PathError::NotAbsolute));
        assert_eq!(decode_url_path("/%ff"), Err(PathError::NotUtf8));
        assert_eq!(
            decode_url_path("/a%00.php"),
            Err(PathError::ForbiddenCharacter)
        );
        assert_eq!(
            decode_url_path("/a%5Cb"),
            Err(PathError::ForbiddenCharacter)
        );
        assert_eq!(decode_url_path("/a/../.."), Err(PathError::AboveRoot));
        assert_eq!(
            PathError::AboveRoot.reason(),
            PathError::AboveRoot.to_string()
        );
    }

    #[test]
    fn split_gives_script_name_and_path_info() {
        assert_eq!(split("/index.php", 0), ("/index.php".into(), "".into()));
        // As Apache and nginx pass it (tests/tests/legacy/htaccess_differential.rs found the difference).
        assert_eq!(split("/index.php/", 0), ("/index.php".into(), "/".into()));
        assert_eq!(
            split("/app/index.php/a%20b/c/", 1),
            ("/app/index.php".into(), "/a b/c/".into())
        );
        assert_eq!(split("/x.php//y", 0), ("/x.php".into(), "/y".into()));
    }

    #[test]
    fn split_after_a_mount() {
        let after = |raw: &str, count| decode_url_path(raw).unwrap().split_after(count);
        assert_eq!(after("/", 0), ("".into(), "/".into()));
        assert_eq!(after("/a/b", 0), ("".into(), "/a/b".into()));
        assert_eq!(after("/app", 1), ("/app".into(), "".into()));
        assert_eq!(after("/app/", 1), ("/app".into(), "/".into()));
        assert_eq!(after("/app/x%20y/", 1), ("/app".into(), "/x y/".into()));
    }
}
