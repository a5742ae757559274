//! `listeners.NAME.acme` and `sites.NAME.acme`: automatic certificates from an ACME server
//! (RFC 8555), one for all the sites' names on a listener or one per site.
//!
//! Checked here so that a mistake fails at start with its file, line and key: the listener must
//! be HTTPS (a site's, served by the HTTPS listeners, needs one), the directory an `https://` URL, the names plain DNS names (a wildcard needs the
//! DNS-01 challenge, which paddock does not answer), and HTTP-01 needs a plain HTTP listener to
//! be answered on. When `domains` is left out, the names are the `hosts` of every site (on a
//! listener) or of the site.

use std::path::{Path, PathBuf};

use protocol::control::{AcmeChallenge, AcmeSpec, ListenerKind};
use serde::Deserialize;

use super::error::{invalid, Invalid};
use super::paths::readable_file;

/// Where the account and certificates are kept when `server.state_dir` is not set.
pub(super) const DEFAULT_STATE_DIR: &str = "/var/lib/paddock";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAcme {
    pub directory: String,
    pub email: Option<String>,
    pub domains: Option<Vec<String>>,
    pub challenge: Option<String>,
    pub ca_certificate: Option<PathBuf>,
}

/// What the ACME settings of one listener or site are checked against.
#[derive(Debug)]
pub(super) struct Context<'a> {
    /// The hosts for the default `domains`: every site's for a listener, its own for a site.
    pub site_hosts: Vec<&'a str>,
    pub has_http_listener: bool,
    pub state_dir: &'a Path,
    pub base: &'a Path,
}

/// `listeners.NAME.acme`: only on HTTPS listeners.
pub(super) fn validate_listener(
    listener: &str,
    kind: ListenerKind,
    raw: &RawAcme,
    context: &Context<'_>,
) -> Result<AcmeSpec, Invalid> {
    if kind != ListenerKind::Https {
        return Err(invalid(
            &["listeners", listener, "acme"],
            "only listeners of kind \"https\" take acme",
        ));
    }
    validate(["listeners", listener, "acme"], raw, context)
}

/// `sites.NAME.acme`: the certificate is served by the HTTPS listeners, so one must exist.
pub(super) fn validate_site(
    site: &str,
    has_https_listener: bool,
    raw: &RawAcme,
    context: &Context<'_>,
) -> Result<AcmeSpec, Invalid> {
    if !has_https_listener {
        return Err(invalid(
            &["sites", site, "acme"],
            "a site's certificate is served by HTTPS listeners, and there is none",
        ));
    }
    validate(["sites", site, "acme"], raw, context)
}

fn validate(table: [&str; 3], raw: &RawAcme, context: &Context<'_>) -> Result<AcmeSpec, Invalid> {
    let key = |k: &'static str| [table[0], table[1], table[2], k];
    if !raw.directory.starts_with("https://") {
        return Err(invalid(
            &key("directory"),
            "must be the https:// URL of the ACME server's directory, such as \
             https://acme-v02.api.letsencrypt.org/directory",
        ));
    }
    if let Some(email) = &raw.email {
        if !email.contains('@') || email.contains(char::is_whitespace) {
            return Err(invalid(
                &key("email"),
                format!("{email:?} is not an address"),
            ));
        }
    }
    let domains = match &raw.domains {
        Some(domains) => {
            for domain in domains {
                check_domain(domain).map_err(|why| invalid(&key("domains"), why))?;
            }
            domains.iter().map(|d| d.to_ascii_lowercase()).collect()
        }
        None => default_domains(&context.site_hosts),
    };
    if domains.is_empty() {
        return Err(invalid(
            &key("domains"),
            "no names to ask a certificate for: list them in acme.domains, or give the site(s) \
             `hosts` that are plain DNS names (not `*` or IP addresses)",
        ));
    }
    let challenge = match raw.challenge.as_deref() {
        None | Some("tls-alpn-01") => AcmeChallenge::TlsAlpn01,
        Some("http-01") => AcmeChallenge::Http01,
        Some(other) => {
            return Err(invalid(
                &key("challenge"),
                format!("{other:?}: must be \"tls-alpn-01\" or \"http-01\""),
            ))
        }
    };
    if challenge == AcmeChallenge::Http01 && !context.has_http_listener {
        return Err(invalid(
            &key("challenge"),
            "http-01 is answered on a listener of kind \"http\" (port 80), and there is none",
        ));
    }
    let ca_certificate = raw
        .ca_certificate
        .as_ref()
        .map(|path| readable_file(&key("ca_certificate"), &context.base.join(path)))
        .transpose()?;
    Ok(AcmeSpec {
        directory: raw.directory.clone(),
        email: raw.email.clone(),
        domains,
        challenge,
        ca_certificate,
        state_dir: context.state_dir.join("acme"),
    })
}

/// The sites' host names that a certificate can name: no `*`, no wildcard, no IP address.
fn default_domains(hosts: &[&str]) -> Vec<String> {
    let mut domains: Vec<String> = hosts
        .iter()
        .filter(|host| check_domain(host).is_ok())
        .map(|host| host.to_ascii_lowercase())
        .collect();
    domains.sort();
    domains.dedup();
    domains
}

fn check_domain(domain: &str) -> Result<(), String> {
    if domain.contains('*') {
        return Err(format!(
            "{domain:?}: wildcard names need the DNS-01 challenge, which paddock does not answer"
        ));
    }
    if domain.parse::<std::net::IpAddr>().is_ok() {
        return Err(format!(
            "{domain:?}: ACME certificates here are for DNS names"
        ));
    }
    let well_formed = !domain.is_empty()
        && domain.len() <= 253
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if well_formed {
        Ok(())
    } else {
        Err(format!("{domain:?} is not a DNS name"))
    }
}
