//! Virtual hosts: which site answers a request, by its Host (or HTTP/2 `:authority`, or the TLS
//! SNI name when neither is present).
//!
//! Order: an exact name, then the longest matching wildcard (`*.example.com` matches
//! `www.example.com` and `a.b.example.com`, not `example.com`), then the site marked
//! `default = true`, then a site listing `*`, then the first site. Names compare without case and
//! without a trailing dot; the port is ignored.

use protocol::control::SiteSpec;

pub(crate) fn select<'a>(sites: &'a [SiteSpec], host: Option<&str>) -> &'a SiteSpec {
    let name = host.map(normalize);
    let by_name = name.as_deref().and_then(|name| {
        sites
            .iter()
            .find(|s| s.hosts.iter().any(|h| h.eq_ignore_ascii_case(name)))
            .or_else(|| best_wildcard(sites, name))
    });
    by_name
        .or_else(|| sites.iter().find(|s| s.default))
        .or_else(|| sites.iter().find(|s| s.hosts.iter().any(|h| h == "*")))
        .unwrap_or(&sites[0])
}

fn best_wildcard<'a>(sites: &'a [SiteSpec], name: &str) -> Option<&'a SiteSpec> {
    sites
        .iter()
        .flat_map(|site| site.hosts.iter().map(move |h| (site, h)))
        .filter_map(|(site, pattern)| {
            let suffix = pattern.strip_prefix("*.")?;
            let matches = name.len() > suffix.len() + 1
                && name[name.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
                && name.as_bytes()[name.len() - suffix.len() - 1] == b'.';
            matches.then_some((site, suffix.len()))
        })
        .max_by_key(|(_, len)| *len)
        .map(|(site, _)| site)
}

/// `Example.COM.:8443` → `example.com`; `[::1]:8443` → `::1`.
pub(crate) fn normalize(host: &str) -> String {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    name.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use protocol::control::SymlinkPolicy;

    /// A static site served from `/`, for tests that need one.
    pub(crate) fn site(name: &str, hosts: &[&str], default: bool) -> SiteSpec {
        SiteSpec {
            name: name.into(),
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            root: "/".into(),
            index: vec![],
            script: None,
            routes: vec![],
            mounts: Vec::new(),
            symlinks: SymlinkPolicy::InsideRoot,
            precompressed: false,
            cache_control: vec![],
            default,
            error_pages: vec![],
            https_redirect: false,
            hsts: None,
            redirects: vec![],
            rules: Default::default(),
            sendfile: Default::default(),
        }
    }

    #[test]
    fn exact_then_longest_wildcard_then_default() {
        let sites = vec![
            site("a", &["example.com"], false),
            site("b", &["*.example.com"], false),
            site("c", &["*.api.example.com"], false),
            site("d", &["other.org"], true),
        ];
        let pick = |host: Option<&str>| select(&sites, host).name.clone();
        assert_eq!(pick(Some("Example.COM.:443")), "a");
        assert_eq!(pick(Some("www.example.com")), "b");
        assert_eq!(pick(Some("v1.api.example.com")), "c");
        assert_eq!(pick(Some("badexample.com")), "d");
        assert_eq!(pick(Some("unknown.net")), "d");
        assert_eq!(pick(None), "d");
    }

    #[test]
    fn without_a_default_the_catch_all_then_the_first() {
        let sites = vec![site("a", &["a.test"], false), site("z", &["*"], false)];
        assert_eq!(select(&sites, Some("x.test")).name, "z");
        let sites = vec![site("a", &["a.test"], false), site("b", &["b.test"], false)];
        assert_eq!(select(&sites, Some("x.test")).name, "a");
        assert_eq!(normalize("[::1]:8443"), "::1");
    }
}
