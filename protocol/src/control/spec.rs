//! The configuration schema the master sends to the front end: listeners, sites, per-pool
//! dispatch limits, timeouts. Built by the pool manager from the config file, in
//! [`ToFrontend::Configure`](super::ToFrontend::Configure).

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Everything the front end needs to serve: listeners, sites and the per-pool dispatch limits.
/// The listeners themselves arrive as inherited file descriptors, in the order of `listeners`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrontendSpec {
    pub listeners: Vec<ListenerSpec>,
    pub sites: Vec<SiteSpec>,
    pub pools: Vec<PoolDispatchSpec>,
    pub limits: LimitsSpec,
    pub timeouts: TimeoutsSpec,
    pub http2: Http2Spec,
    /// The unprivileged user the front end switches to once it holds its listeners and
    /// certificates (when paddock starts as root).
    pub run_as: Option<RunAs>,
    /// Where and how requests are logged; `None` = no access log.
    pub access_log: Option<AccessLogSpec>,
    /// Peers whose `Forwarded` / `X-Forwarded-For` / `X-Forwarded-Proto` headers are believed.
    pub trusted_proxies: Vec<IpNetwork>,
    /// Sites with a certificate of their own from an ACME server (`sites.NAME.acme`), served on
    /// every HTTPS listener to the names it covers.
    #[serde(default)]
    pub site_acme: Vec<SiteAcmeSpec>,
}

/// `sites.NAME.acme`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteAcmeSpec {
    pub site: String,
    pub acme: AcmeSpec,
}

/// A user and group to run as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunAs {
    pub user: String,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessLogSpec {
    /// The file, opened for appending; `None` = standard output.
    pub path: Option<PathBuf>,
    pub format: AccessLogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessLogFormat {
    /// The NCSA combined format that Apache and nginx write and log tools read.
    Combined,
    /// One JSON object per line.
    Json,
}

/// An address range, `10.0.0.0/8` or `::1/128`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpNetwork {
    pub address: std::net::IpAddr,
    pub prefix: u8,
}

impl IpNetwork {
    /// Parses `a.b.c.d`, `a.b.c.d/n`, `::1`, `2001:db8::/32`.
    pub fn parse(text: &str) -> Option<IpNetwork> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address.parse().ok()?, Some(prefix.parse().ok()?)),
            None => (text.parse().ok()?, None),
        };
        let max = if matches!(address, std::net::IpAddr::V4(_)) {
            32
        } else {
            128
        };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(IpNetwork { address, prefix })
    }

    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        let ip = match ip {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, std::net::IpAddr::V4),
            v4 => v4,
        };
        match (self.address, ip) {
            (std::net::IpAddr::V4(net), std::net::IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (std::net::IpAddr::V6(net), std::net::IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ListenerKind {
    Http,
    Https,
    Admin,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListenerSpec {
    pub name: String,
    pub kind: ListenerKind,
    pub address: SocketAddr,
    /// PEM certificate chain and key for HTTPS listeners; `None` means generate a self-signed one.
    /// This is the default certificate, used when no entry of `sni_certificates` matches.
    pub tls: Option<TlsFiles>,
    /// More certificates, each chosen when the client's SNI name is one its certificate covers.
    pub sni_certificates: Vec<TlsFiles>,
    /// Cleartext listeners: also accept HTTP/2 with prior knowledge (h2c). HTTPS listeners
    /// always offer h2 by ALPN.
    pub http2_prior_knowledge: bool,
    /// Every connection starts with a PROXY protocol (v1 or v2) header naming the real client.
    pub proxy_protocol: bool,
    /// Certificates obtained and renewed automatically from an ACME server (HTTPS only).
    #[serde(default)]
    pub acme: Option<AcmeSpec>,
    /// HTTPS listeners: also serve HTTP/3 (QUIC) on the same address and port over UDP, and
    /// advertise it with `Alt-Svc` on the TCP listener's responses.
    #[serde(default)]
    pub http3: bool,
}

/// `listeners.NAME.acme`: where the listener's certificate comes from when ACME is on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcmeSpec {
    /// The ACME server's directory URL (RFC 8555 section 7.1.1).
    pub directory: String,
    /// Contact for the account (`mailto:` is added), if any.
    pub email: Option<String>,
    /// The names the certificate covers; never empty once validated.
    pub domains: Vec<String>,
    pub challenge: AcmeChallenge,
    /// A PEM root that the directory's HTTPS certificate chains to (private ACME servers);
    /// `None` = the system's roots.
    pub ca_certificate: Option<PathBuf>,
    /// Where the account and certificates live: `<server.state_dir>/acme`.
    pub state_dir: PathBuf,
}

/// How the ACME server checks that paddock controls a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AcmeChallenge {
    /// `http://NAME/.well-known/acme-challenge/TOKEN` on a plain HTTP listener (port 80).
    Http01,
    /// A TLS handshake with ALPN `acme-tls/1` on this listener (port 443).
    TlsAlpn01,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsFiles {
    pub certificate: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteSpec {
    pub name: String,
    /// Host names this site answers for (without port); `*` matches any host.
    pub hosts: Vec<String>,
    /// Canonical, absolute document root.
    pub root: PathBuf,
    /// Index file names tried for a directory, in order.
    pub index: Vec<String>,
    /// The site's default script route (no prefix), e.g. `*.php` to the php pool.
    pub script: Option<ScriptRouteSpec>,
    /// Script routes for URL prefixes, longest prefix first; they take precedence over `script`.
    pub routes: Vec<ScriptRouteSpec>,
    /// Application mounts, longest prefix first: every request under the prefix goes to a pool
    /// without a script file on disk. They take precedence over `script` and `routes`.
    #[serde(default)]
    pub mounts: Vec<MountSpec>,
    /// Which symbolic links under the root may be followed.
    pub symlinks: SymlinkPolicy,
    /// Serve `file.br` / `file.gz` siblings to clients that accept them.
    pub precompressed: bool,
    /// `Cache-Control` for static files: the first rule whose prefix starts the URL path wins.
    pub cache_control: Vec<CacheRule>,
    /// Answers requests whose host matches no site.
    pub default: bool,
    /// Pages (URL paths under the root) shown instead of paddock's own error pages, by status.
    pub error_pages: Vec<(u16, String)>,
    /// Requests that arrive on a cleartext listener get a permanent redirect to HTTPS.
    pub https_redirect: bool,
    /// `Strict-Transport-Security` value sent on HTTPS responses.
    pub hsts: Option<String>,
    /// Redirect rules, tried in order before routing.
    pub redirects: Vec<RedirectRule>,
    /// Access rules, rewrites and response headers (docs/configuration.md, "Rules").
    pub rules: crate::site_rules::SiteRulesSpec,
    /// Files the application hands back to the front end to send (`X-Accel-Redirect`,
    /// `X-Sendfile`).
    #[serde(default)]
    pub sendfile: SendfileSpec,
}

/// Where a worker's `X-Accel-Redirect` and `X-Sendfile` may point (docs/configuration.md,
/// "Files sent for the application").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendfileSpec {
    /// URL path prefixes (`/protected/`) that clients cannot request: only a worker's
    /// `X-Accel-Redirect` reaches the files under them (nginx's `internal`).
    pub internal: Vec<String>,
    /// Directories (canonical paths) whose files a worker's `X-Sendfile` may name; none turns
    /// `X-Sendfile` off.
    pub roots: Vec<PathBuf>,
}

/// `from` is a URL path prefix; a matching request is redirected to `to` followed by the rest of
/// its path and its query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedirectRule {
    pub from: String,
    pub to: String,
    /// 301, 302, 303, 307 or 308.
    pub status: u16,
}

/// Which symbolic links the front end follows when it resolves a path under a document root
/// (as nginx's `disable_symlinks` and Apache's `SymLinksIfOwnerMatch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SymlinkPolicy {
    /// Only links whose target stays inside the document root.
    InsideRoot,
    /// Links whose target has the same owner as the link, wherever it is.
    OwnerMatch,
    /// Every link.
    Always,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheRule {
    /// URL path prefix, e.g. `/assets/`.
    pub prefix: String,
    /// The `Cache-Control` value, e.g. `public, max-age=31536000, immutable`.
    pub value: String,
}

/// How a site sends scripts to a pool (the `try_files $uri $uri/ /index.php` pattern).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScriptRouteSpec {
    /// Decoded URL path prefix this route applies to, ending in `/` (e.g. `/cgi-bin/`); `None`
    /// for a site's default route.
    pub prefix: Option<String>,
    pub pool: String,
    /// File extensions (without dot) that are scripts, e.g. `php`.
    pub extensions: Vec<String>,
    /// URL path of the front controller for paths that match no file, e.g. `/index.php`.
    pub front_controller: Option<String>,
    /// URL path prefixes (matched against SCRIPT_NAME) whose responses stream to the client
    /// unbuffered; `/` for every script of the site.
    pub unbuffered: Vec<String>,
    /// Compress text responses with gzip or brotli when the client accepts it.
    pub compress: bool,
}

/// An application mounted at a URL prefix (nginx's `location /app { fastcgi_pass … }`): a WSGI,
/// Rack or Go FastCGI server that routes requests itself, so there is no script file to find.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountSpec {
    /// Decoded URL path of the mount without a trailing slash: SCRIPT_NAME. "" for the whole site.
    pub prefix: String,
    pub pool: String,
    /// SCRIPT_FILENAME to send, for servers that want one; none is sent otherwise.
    pub script_filename: Option<PathBuf>,
    /// A regular file under the root that the path names is served as it is, before the
    /// application is asked (nginx's `try_files $uri @app`).
    pub static_first: bool,
    /// URL path prefixes whose responses stream to the client unbuffered.
    pub unbuffered: Vec<String>,
    /// Compress text responses with gzip or brotli when the client accepts it.
    pub compress: bool,
}

impl MountSpec {
    /// The mount's path segments: a request path whose segments start with these is under it.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.prefix.split('/').filter(|s| !s.is_empty())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolDispatchSpec {
    pub name: String,
    /// Longest a request may wait for a free worker before a 503.
    pub queue_timeout_ms: u64,
    /// Most requests that may wait at once; more get an immediate 503.
    pub queue_max: usize,
    /// Longest a worker may take for one request before a 504 and a kill.
    pub request_timeout_ms: u64,
    /// Requests after which a worker is retired (0 = never), plus a per-worker random extra of
    /// up to `max_requests_jitter`. The front end counts, since it knows when a worker is idle.
    pub max_requests: u64,
    pub max_requests_jitter: u64,
    /// The pool is a FastCGI server paddock does not manage: a failed connection does not mean
    /// its "worker" is gone.
    pub external: bool,
    /// The pool runs no worker while idle (ondemand): having none is not a reason to be unready.
    pub starts_empty: bool,
    /// The master starts workers when requests wait (dynamic and ondemand sizing), so a queue
    /// that grows is news for it at once. A static pool's size does not follow its queue: its
    /// load goes with the front end's regular report only, and a busy static pool does not wake
    /// the master every few requests.
    #[serde(default = "grows_on_demand_by_default")]
    pub grows_on_demand: bool,
    /// What the front end speaks to the pool's workers.
    #[serde(default)]
    pub protocol: WorkerProtocol,
    /// A connection carries the slot's next request (FastCGI's `FCGI_KEEP_CONN`, HTTP/1.1
    /// keep-alive). Always for paddock's own workers; for an external server only when its
    /// config says so, since a kept connection can hold one of its processes.
    #[serde(default = "keep_connections_by_default")]
    pub keep_connections: bool,
    /// `send_ahead`: a busy worker is sent more requests than it runs, to wait in its socket
    /// until it is done with one: two more for a prefork worker of paddock's own PHP, `threads`
    /// more for a threaded worker whose server takes them (opt-in).
    #[serde(default)]
    pub send_ahead: bool,
    /// Requests are sent ahead only while the pool's requests keep their worker less than this
    /// long on average (`send_ahead_below`, in µs): waiting behind a longer one costs more than
    /// the worker's sleep between requests it saves.
    #[serde(default = "send_ahead_below_by_default")]
    pub send_ahead_below_us: u64,
}

fn send_ahead_below_by_default() -> u64 {
    500
}

fn keep_connections_by_default() -> bool {
    true
}

fn grows_on_demand_by_default() -> bool {
    true
}

/// The wire between the front end and a pool's workers (a pool's `protocol` key).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkerProtocol {
    /// FastCGI: php-cgi, paddock's own workers, flup, uWSGI's `--protocol fastcgi`. A connection
    /// carries request after request.
    #[default]
    Fastcgi,
    /// uwsgi, uWSGI's native protocol (nginx's `uwsgi_pass`): the request as one packet, the
    /// answer as HTTP, one connection a request.
    Uwsgi,
    /// HTTP/1.1 (uWSGI's `--protocol http11`, or any HTTP server on the pool's socket): the
    /// request as the client's, with `X-Forwarded-*` headers for what only CGI variables carry;
    /// a connection carries request after request, as nginx's `keepalive` upstreams do.
    Http,
}

impl WorkerProtocol {
    pub fn name(self) -> &'static str {
        match self {
            WorkerProtocol::Fastcgi => "fastcgi",
            WorkerProtocol::Uwsgi => "uwsgi",
            WorkerProtocol::Http => "http",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LimitsSpec {
    /// Request bodies above this size are refused with 413 before any byte reaches a worker.
    pub max_body_bytes: u64,
    /// Request bodies up to this size stay in memory; larger ones go to a temporary file.
    pub body_memory_bytes: u64,
    /// Worker responses larger than this are cut off and answered with 502.
    pub max_response_bytes: u64,
    /// Worker responses up to this size stay in memory; larger ones go to a temporary file.
    pub response_memory_bytes: u64,
    /// Directory for request-body and response temporary files.
    pub temp_dir: PathBuf,
    /// Open client connections on the public listeners; at the limit, paddock stops accepting.
    pub max_connections: usize,
    /// Open connections from one client address; more are closed right after accept.
    pub max_connections_per_ip: usize,
    /// Requests served on one connection before paddock closes it (HTTP/1.1 `Connection: close`,
    /// HTTP/2 GOAWAY).
    pub max_requests_per_connection: u64,
    /// HTTP/1.1: largest request head (request line and headers) buffered, above it 431.
    /// HTTP/2: the advertised SETTINGS_MAX_HEADER_LIST_SIZE.
    pub max_header_bytes: u32,
    /// HTTP/1.1: most header lines in one request, above it 431.
    pub max_headers: usize,
    /// Longest request target (path and query), above it 414.
    pub max_uri_bytes: usize,
    /// A request body gets one more second for every this many bytes received, on top of
    /// `TimeoutsSpec::request_body_ms` (0: the body deadline is absolute).
    pub request_body_min_rate: u64,
    /// Total bytes of small static files kept in memory (0: no cache).
    pub static_cache_bytes: u64,
    /// Largest static file the cache keeps; larger ones are read from disk on every request.
    pub static_cache_max_file_bytes: u64,
}

/// Client-facing deadlines, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeoutsSpec {
    /// From accept to a finished TLS handshake.
    pub tls_handshake_ms: u64,
    /// From the first byte of a request (or from accept, for the first request) to its complete
    /// head: an absolute deadline, so a client trickling header bytes cannot extend it.
    pub request_header_ms: u64,
    /// Base deadline for receiving a request body (see `LimitsSpec::request_body_min_rate`).
    pub request_body_ms: u64,
    /// Longest an idle keep-alive connection stays open between requests.
    pub keepalive_ms: u64,
    /// Longest a write to the client may stay blocked (a client that stopped reading).
    pub send_ms: u64,
}

/// HTTP/2 protection limits, set explicitly instead of relying on library defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Http2Spec {
    /// SETTINGS_MAX_CONCURRENT_STREAMS.
    pub max_concurrent_streams: u32,
    /// Streams reset by the client before paddock accepted them, allowed at once (rapid reset,
    /// CVE-2023-44487); above it the connection gets GOAWAY.
    pub max_pending_accept_reset_streams: usize,
    /// Streams paddock may reset for client protocol errors on one connection before GOAWAY
    /// (CVE-2024-27316-style floods).
    pub max_local_error_reset_streams: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_parse_and_match() {
        let net = IpNetwork::parse("10.0.0.0/8").unwrap();
        assert!(net.contains("10.1.2.3".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        let one = IpNetwork::parse("::1").unwrap();
        assert!(one.contains("::1".parse().unwrap()));
        assert!(!one.contains("::2".parse().unwrap()));
        assert!(IpNetwork::parse("0.0.0.0/0")
            .unwrap()
            .contains("1.2.3.4".parse().unwrap()));
        assert!(IpNetwork::parse("10.0.0.0/33").is_none());
        assert!(IpNetwork::parse("example.com").is_none());
    }
}
