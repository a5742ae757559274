//! Checks that serde cannot express, and the defaults, turning a [`RawConfig`] into a [`Config`].

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use protocol::control::{
    CacheRule, FrontendSpec, ListenerKind, ListenerSpec, RedirectRule, RunAs, ScriptRouteSpec,
    SiteAcmeSpec, SiteSpec, SymlinkPolicy, TlsFiles,
};

use super::acme;
use super::error::{invalid, Invalid};
use super::paths::{existing_dir, readable_file};
use super::pool::{dispatch_spec, validate_pool};
use super::raw::{
    RawCertificate, RawConfig, RawListener, RawListenerKind, RawPool, RawSite, RawSymlinks,
};
use super::{limits, Config};

pub(super) const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

pub(super) fn validate(raw: RawConfig, base: &Path, file: &str) -> Result<Config, Invalid> {
    let pools = raw
        .pools
        .iter()
        .map(|(name, pool)| validate_pool(name, pool, base))
        .collect::<Result<Vec<_>, _>>()?;
    let dispatch = raw
        .pools
        .iter()
        .zip(&pools)
        .map(|((name, raw_pool), pool)| dispatch_spec(name, raw_pool, pool))
        .collect();
    let mut listeners = validate_listeners(&raw.listeners, base)?;
    let site_acme = acme_listeners(&raw, &mut listeners, base)?;
    let sites = raw
        .sites
        .iter()
        .map(|(name, site)| validate_site(name, site, base, &raw.pools))
        .collect::<Result<Vec<_>, _>>()?;
    if sites.is_empty() {
        return Err(invalid(&["sites"], "at least one site is required"));
    }
    if sites.iter().filter(|s| s.default).count() > 1 {
        return Err(invalid(&["sites"], "only one site may have default = true"));
    }

    let temp_dir = match &raw.server.temp_dir {
        Some(dir) => existing_dir(&["server", "temp_dir"], &base.join(dir))?,
        None => std::env::temp_dir(),
    };

    let log_level = raw
        .server
        .log_level
        .clone()
        .unwrap_or_else(|| "info".into());
    if !["error", "warn", "info", "debug", "trace"].contains(&log_level.as_str()) {
        return Err(invalid(
            &["server", "log_level"],
            "must be one of error, warn, info, debug, trace",
        ));
    }

    let frontend_runtime = match raw.server.frontend_runtime.as_deref() {
        None => frontend::RuntimeLayout::default(),
        Some(name) => frontend::RuntimeLayout::parse(name).ok_or_else(|| {
            invalid(
                &["server", "frontend_runtime"],
                format!(
                    "must be one of {}",
                    frontend::RuntimeLayout::NAMES.join(", ")
                ),
            )
        })?,
    };

    Ok(Config {
        origin: file.to_string(),
        path: None,
        runtime_dir: raw.server.runtime_dir.as_ref().map(|d| base.join(d)),
        control_socket: match (&raw.server.control_socket, &raw.server.runtime_dir) {
            (Some(path), _) => Some(base.join(path)),
            (None, Some(dir)) => Some(base.join(dir).join("control.sock")),
            (None, None) => None,
        },
        log_level,
        frontend_runtime,
        shutdown_timeout: raw
            .server
            .shutdown_timeout
            .map_or(DEFAULT_SHUTDOWN_TIMEOUT, |d| d.0),
        frontend: FrontendSpec {
            listeners,
            sites,
            pools: dispatch,
            limits: limits::limits(&raw.limits, temp_dir)?,
            timeouts: limits::timeouts(&raw.timeouts)?,
            http2: limits::http2(&raw.http2)?,
            run_as: run_as(raw.server.user.as_deref(), raw.server.group.as_deref())?,
            access_log: limits::access_log(raw.access_log.as_ref(), base)?,
            trusted_proxies: limits::trusted_proxies(&raw.client_address)?,
            site_acme,
        },
        pools,
    })
}

fn validate_listeners(
    raw: &BTreeMap<String, RawListener>,
    base: &Path,
) -> Result<Vec<ListenerSpec>, Invalid> {
    let mut seen = HashSet::new();
    let mut listeners = Vec::new();
    for (name, listener) in raw {
        let address: SocketAddr = listener.address.parse().map_err(|_| {
            invalid(
                &["listeners", name, "address"],
                format!(
                    "{:?} is not an IP address and port such as 127.0.0.1:8080 or [::1]:8443",
                    listener.address
                ),
            )
        })?;
        // Port 0 asks the kernel for a free port: several such listeners never collide.
        if address.port() != 0 && !seen.insert(address) {
            return Err(invalid(
                &["listeners", name, "address"],
                format!("{address} is used by another listener"),
            ));
        }
        let kind = match listener.kind {
            RawListenerKind::Http => ListenerKind::Http,
            RawListenerKind::Https => ListenerKind::Https,
            RawListenerKind::Admin => ListenerKind::Admin,
        };
        let sni_certificates = listener
            .sni_certificates
            .iter()
            .map(|c| certificate_files(name, c, base))
            .collect::<Result<Vec<_>, _>>()?;
        let tls = match (&listener.certificate, &listener.key) {
            (None, None) => None,
            (Some(certificate), Some(key)) => Some(TlsFiles {
                certificate: readable_file(
                    &["listeners", name, "certificate"],
                    &base.join(certificate),
                )?,
                key: readable_file(&["listeners", name, "key"], &base.join(key))?,
            }),
            (Some(_), None) => {
                return Err(invalid(
                    &["listeners", name, "key"],
                    "a certificate needs a key",
                ))
            }
            (None, Some(_)) => {
                return Err(invalid(
                    &["listeners", name, "certificate"],
                    "a key needs a certificate",
                ))
            }
        };
        if (tls.is_some() || !sni_certificates.is_empty()) && kind != ListenerKind::Https {
            return Err(invalid(
                &["listeners", name, "certificate"],
                "only listeners of kind \"https\" take a certificate",
            ));
        }
        if tls.is_none() && !sni_certificates.is_empty() {
            return Err(invalid(
                &["listeners", name, "certificate"],
                "sni_certificates need a default certificate and key on the listener",
            ));
        }
        let http2_prior_knowledge = listener.http2_prior_knowledge.unwrap_or(false);
        if http2_prior_knowledge && kind != ListenerKind::Http {
            return Err(invalid(
                &["listeners", name, "http2_prior_knowledge"],
                "only for kind \"http\" (HTTPS listeners offer h2 by ALPN)",
            ));
        }
        if listener.http3 && kind != ListenerKind::Https {
            return Err(invalid(
                &["listeners", name, "http3"],
                "only for kind \"https\" (HTTP/3 is always encrypted)",
            ));
        }
        if listener.http3 && listener.proxy_protocol {
            return Err(invalid(
                &["listeners", name, "http3"],
                "cannot be combined with proxy_protocol (QUIC carries no PROXY header)",
            ));
        }
        listeners.push(ListenerSpec {
            name: name.clone(),
            kind,
            address,
            tls,
            sni_certificates,
            http2_prior_knowledge,
            proxy_protocol: listener.proxy_protocol,
            // Filled in by `acme_listeners`, which needs the sites' hosts.
            acme: None,
            http3: listener.http3,
        });
    }
    if !listeners.iter().any(|l| l.kind != ListenerKind::Admin) {
        return Err(invalid(
            &["listeners"],
            "at least one listener of kind \"http\" or \"https\" is required",
        ));
    }
    Ok(listeners)
}

/// Checks each listener's and site's `acme` table (after the listeners: it needs all of them,
/// and the sites' hosts for the default names); returns the sites' ones.
fn acme_listeners(
    raw: &RawConfig,
    listeners: &mut [ListenerSpec],
    base: &Path,
) -> Result<Vec<SiteAcmeSpec>, Invalid> {
    let state_dir = base.join(
        raw.server
            .state_dir
            .as_deref()
            .unwrap_or(Path::new(acme::DEFAULT_STATE_DIR)),
    );
    let has_kind = |kind| listeners.iter().any(|l| l.kind == kind);
    let (has_http, has_https) = (has_kind(ListenerKind::Http), has_kind(ListenerKind::Https));
    let context = |site_hosts| acme::Context {
        site_hosts,
        has_http_listener: has_http,
        state_dir: &state_dir,
        base,
    };
    let mut sites = Vec::new();
    for (name, site) in &raw.sites {
        if let Some(acme) = &site.acme {
            let hosts = site.hosts.iter().flatten().map(String::as_str).collect();
            let acme = acme::validate_site(name, has_https, acme, &context(hosts))?;
            sites.push(SiteAcmeSpec {
                site: name.clone(),
                acme,
            });
        }
    }
    let all_hosts: Vec<&str> = raw
        .sites
        .values()
        .flat_map(|site| site.hosts.iter().flatten().map(String::as_str))
        .collect();
    for listener in listeners.iter_mut() {
        let raw_acme = raw
            .listeners
            .get(&listener.name)
            .and_then(|l| l.acme.as_ref());
        if let Some(acme) = raw_acme {
            listener.acme = Some(acme::validate_listener(
                &listener.name,
                listener.kind,
                acme,
                &context(all_hosts.clone()),
            )?);
        }
    }
    Ok(sites)
}

fn certificate_files(
    listener: &str,
    raw: &RawCertificate,
    base: &Path,
) -> Result<TlsFiles, Invalid> {
    let key_path = ["listeners", listener, "sni_certificates"];
    Ok(TlsFiles {
        certificate: readable_file(&key_path, &base.join(&raw.certificate))?,
        key: readable_file(&key_path, &base.join(&raw.key))?,
    })
}

fn validate_site(
    name: &str,
    site: &RawSite,
    base: &Path,
    pools: &BTreeMap<String, RawPool>,
) -> Result<SiteSpec, Invalid> {
    let root = existing_dir(&["sites", name, "root"], &base.join(&site.root))?;
    let hosts = site.hosts.clone().unwrap_or_else(|| vec!["*".into()]);
    if hosts.is_empty() {
        return Err(invalid(
            &["sites", name, "hosts"],
            "list at least one host, or \"*\"",
        ));
    }
    let index = site
        .index
        .clone()
        .unwrap_or_else(|| vec!["index.html".into()]);
    for file in &index {
        if file.is_empty() || file.contains('/') {
            return Err(invalid(
                &["sites", name, "index"],
                format!("{file:?} must be a plain file name"),
            ));
        }
    }
    let script = match &site.scripts {
        None => None,
        Some(scripts) => {
            let at = ["sites", name, "scripts"];
            let extensions = route_extensions(&at, scripts.extensions.as_ref(), &["php"])?;
            if let Some(front) = &scripts.front_controller {
                let has_extension = extensions.iter().any(|e| front.ends_with(&format!(".{e}")));
                if !front.starts_with('/') || !has_extension {
                    return Err(invalid(
                        &["sites", name, "scripts", "front_controller"],
                        "must be a URL path starting with / that ends in a script extension, e.g. \"/index.php\"",
                    ));
                }
            }
            let unbuffered = scripts.unbuffered.clone().unwrap_or_default();
            if unbuffered.iter().any(|prefix| !prefix.starts_with('/')) {
                return Err(invalid(
                    &["sites", name, "scripts", "unbuffered"],
                    "list URL path prefixes starting with /, e.g. [\"/events/\"]",
                ));
            }
            Some(ScriptRouteSpec {
                prefix: None,
                pool: route_pool(&at, &scripts.pool, pools)?,
                extensions,
                front_controller: scripts.front_controller.clone(),
                unbuffered,
                compress: scripts.compress.unwrap_or(true),
            })
        }
    };
    let mut routes = Vec::new();
    for (route, raw) in &site.routes {
        let at = ["sites", name, "routes", route.as_str()];
        if !raw.prefix.starts_with('/') || !raw.prefix.ends_with('/') || raw.prefix.contains("..") {
            let key = ["sites", name, "routes", route.as_str(), "prefix"];
            return Err(invalid(
                &key,
                "must be a URL path that starts and ends with /, e.g. \"/cgi-bin/\"",
            ));
        }
        routes.push(ScriptRouteSpec {
            prefix: Some(raw.prefix.clone()),
            pool: route_pool(&at, &raw.pool, pools)?,
            extensions: route_extensions(&at, raw.extensions.as_ref(), &["cgi", "pl", "py", "sh"])?,
            front_controller: None,
            // Prefix routes keep CGI output as the script wrote it: no compression, buffered.
            compress: false,
            unbuffered: Vec::new(),
        });
    }
    routes.sort_by_key(|r| std::cmp::Reverse(r.prefix.as_ref().map_or(0, String::len)));
    let mounts = super::mounts::validate_mounts(name, &site.mounts, base, pools)?;
    let symlinks = match site.symlinks {
        None | Some(RawSymlinks::InsideRoot) => SymlinkPolicy::InsideRoot,
        Some(RawSymlinks::OwnerMatch) => SymlinkPolicy::OwnerMatch,
        Some(RawSymlinks::Always) => SymlinkPolicy::Always,
    };
    let mut cache_control = Vec::new();
    for rule in &site.cache_control {
        if !rule.prefix.starts_with('/') {
            return Err(invalid(
                &["sites", name, "cache_control"],
                format!("prefix {:?} must start with /", rule.prefix),
            ));
        }
        let printable = |b: u8| b == b'\t' || (0x20..0x7f).contains(&b);
        if rule.value.is_empty() || !rule.value.bytes().all(printable) {
            return Err(invalid(
                &["sites", name, "cache_control"],
                format!("{:?} is not a valid header value", rule.value),
            ));
        }
        cache_control.push(CacheRule {
            prefix: rule.prefix.clone(),
            value: rule.value.clone(),
        });
    }
    let mut error_pages = Vec::new();
    for (code, page) in &site.error_pages {
        let status = code
            .parse::<u16>()
            .ok()
            .filter(|c| (400..=599).contains(c))
            .ok_or_else(|| {
                invalid(
                    &["sites", name, "error_pages", code],
                    "keys are status codes from 400 to 599, e.g. \"404\"",
                )
            })?;
        if !page.starts_with('/') {
            return Err(invalid(
                &["sites", name, "error_pages", code],
                "the page is a URL path under the document root, starting with /",
            ));
        }
        // A script page may carry a query string ("/index.php?error=404").
        let file = page.split_once('?').map_or(page.as_str(), |(path, _)| path);
        readable_file(
            &["sites", name, "error_pages", code],
            &root.join(file.trim_start_matches('/')),
        )?;
        error_pages.push((status, page.clone()));
    }
    if let Some(hsts) = &site.hsts {
        if !hsts.starts_with("max-age=") {
            return Err(invalid(
                &["sites", name, "hsts"],
                "a Strict-Transport-Security value, e.g. \"max-age=31536000; includeSubDomains\"",
            ));
        }
    }
    let mut redirects = Vec::new();
    for rule in &site.redirects {
        let status = rule.status.unwrap_or(301);
        if ![301, 302, 303, 307, 308].contains(&status) {
            return Err(invalid(
                &["sites", name, "redirects"],
                format!("status {status} is not a redirect (301, 302, 303, 307, 308)"),
            ));
        }
        let printable = |s: &str| !s.is_empty() && s.bytes().all(|b| (0x21..0x7f).contains(&b));
        if !rule.from.starts_with('/') || !printable(&rule.from) || !printable(&rule.to) {
            return Err(invalid(
                &["sites", name, "redirects"],
                format!(
                    "from {:?} must be a URL path starting with /, to {:?} a URL or path, without spaces",
                    rule.from, rule.to
                ),
            ));
        }
        redirects.push(RedirectRule {
            from: rule.from.clone(),
            to: rule.to.clone(),
            status,
        });
    }
    Ok(SiteSpec {
        name: name.to_string(),
        hosts,
        root,
        index,
        script,
        routes,
        mounts,
        symlinks,
        precompressed: site.precompressed.unwrap_or(true),
        cache_control,
        default: site.default,
        error_pages,
        https_redirect: site.https_redirect,
        hsts: site.hsts.clone(),
        redirects,
        rules: super::rules::validate_rules(name, site, base)?,
        sendfile: super::sendfile::validate(name, site.sendfile.as_ref(), base)?,
    })
}

pub(super) fn route_pool(
    at: &[&str],
    pool: &str,
    pools: &BTreeMap<String, RawPool>,
) -> Result<String, Invalid> {
    if pools.contains_key(pool) {
        return Ok(pool.to_string());
    }
    let mut key = at.to_vec();
    key.push("pool");
    Err(invalid(
        &key,
        format!("no pool named {pool:?} is defined under [pools]"),
    ))
}

fn route_extensions(
    at: &[&str],
    given: Option<&Vec<String>>,
    default: &[&str],
) -> Result<Vec<String>, Invalid> {
    let extensions = given
        .cloned()
        .unwrap_or_else(|| default.iter().map(|e| e.to_string()).collect());
    if extensions.is_empty()
        || extensions
            .iter()
            .any(|e| e.is_empty() || e.contains(['.', '/']))
    {
        let mut key = at.to_vec();
        key.push("extensions");
        return Err(invalid(
            &key,
            "list extensions without dots, e.g. [\"php\"]",
        ));
    }
    Ok(extensions)
}

/// `server.user` (and optionally `server.group`, else the user's own group) resolved to ids.
fn run_as(user: Option<&str>, group: Option<&str>) -> Result<Option<RunAs>, Invalid> {
    let Some(user) = user else {
        if group.is_some() {
            return Err(invalid(&["server", "group"], "needs server.user"));
        }
        return Ok(None);
    };
    let Ok(Some(found)) = nix::unistd::User::from_name(user) else {
        return Err(invalid(
            &["server", "user"],
            format!("no user named {user:?} on this system"),
        ));
    };
    let gid = match group {
        None => found.gid.as_raw(),
        Some(group) => match nix::unistd::Group::from_name(group) {
            Ok(Some(g)) => g.gid.as_raw(),
            _ => {
                return Err(invalid(
                    &["server", "group"],
                    format!("no group named {group:?} on this system"),
                ))
            }
        },
    };
    Ok(Some(RunAs {
        user: user.to_string(),
        uid: found.uid.as_raw(),
        gid,
    }))
}
