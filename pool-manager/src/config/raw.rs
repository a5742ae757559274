//! The config file as written: serde structs that mirror the TOML one to one.
//!
//! Every struct denies unknown fields so that a typo is an error at start-up, not a silently ignored
//! setting. Defaults live next to the checks (`validate.rs`, `pool.rs`, `limits.rs`), so this file
//! stays a plain schema.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::acme::RawAcme;
use super::raw_rules::{
    RawAuth, RawClients, RawDeny, RawHeaders, RawNoScripts, RawRateLimit, RawRewrite,
};
use super::units::{Duration, Size};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub listeners: BTreeMap<String, RawListener>,
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default)]
    pub timeouts: RawTimeouts,
    #[serde(default)]
    pub http2: RawHttp2,
    pub access_log: Option<RawAccessLog>,
    #[serde(default)]
    pub client_address: RawClientAddress,
    #[serde(default)]
    pub sites: BTreeMap<String, RawSite>,
    #[serde(default)]
    pub pools: BTreeMap<String, RawPool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    pub runtime_dir: Option<PathBuf>,
    /// Long-lived state (ACME accounts and certificates).
    pub state_dir: Option<PathBuf>,
    pub control_socket: Option<PathBuf>,
    pub user: Option<String>,
    pub group: Option<String>,
    pub temp_dir: Option<PathBuf>,
    pub log_level: Option<String>,
    pub shutdown_timeout: Option<Duration>,
    /// How the front end's event loops use the cores: `per-core` or `shared`.
    pub frontend_runtime: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum RawListenerKind {
    Http,
    Https,
    Admin,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawListener {
    pub kind: RawListenerKind,
    pub address: String,
    pub certificate: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// More certificates for HTTPS listeners, chosen by SNI.
    #[serde(default)]
    pub sni_certificates: Vec<RawCertificate>,
    pub http2_prior_knowledge: Option<bool>,
    #[serde(default)]
    pub proxy_protocol: bool,
    pub acme: Option<RawAcme>,
    #[serde(default)]
    pub http3: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAccessLog {
    /// A file path, or "-" for standard output.
    pub path: PathBuf,
    pub format: Option<RawAccessLogFormat>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum RawAccessLogFormat {
    Combined,
    Json,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClientAddress {
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCertificate {
    pub certificate: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    pub max_body: Option<Size>,
    pub body_memory: Option<Size>,
    pub max_response: Option<Size>,
    pub response_memory: Option<Size>,
    pub max_connections: Option<usize>,
    pub max_connections_per_ip: Option<usize>,
    pub max_requests_per_connection: Option<u64>,
    pub max_header_size: Option<Size>,
    pub max_headers: Option<usize>,
    pub max_uri: Option<Size>,
    pub request_body_min_rate: Option<Size>,
    pub static_cache_size: Option<Size>,
    pub static_cache_max_file: Option<Size>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTimeouts {
    pub tls_handshake: Option<Duration>,
    pub request_header: Option<Duration>,
    pub request_body: Option<Duration>,
    pub keepalive: Option<Duration>,
    pub send: Option<Duration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttp2 {
    pub max_concurrent_streams: Option<u32>,
    pub max_pending_accept_reset_streams: Option<usize>,
    pub max_local_error_reset_streams: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSite {
    pub hosts: Option<Vec<String>>,
    /// A certificate of the site's own from an ACME server.
    pub acme: Option<RawAcme>,
    pub root: PathBuf,
    pub index: Option<Vec<String>>,
    pub scripts: Option<RawScripts>,
    /// Extra script routes by URL prefix (e.g. `/cgi-bin/` to a CGI pool), keyed by a name.
    #[serde(default)]
    pub routes: BTreeMap<String, RawRoute>,
    /// Applications mounted at URL prefixes (no script files), keyed by a name.
    #[serde(default)]
    pub mounts: BTreeMap<String, RawMount>,
    pub symlinks: Option<RawSymlinks>,
    pub precompressed: Option<bool>,
    #[serde(default)]
    pub cache_control: Vec<RawCacheRule>,
    #[serde(default)]
    pub default: bool,
    /// Status code (as a string key, e.g. "404") → URL path of the page.
    #[serde(default)]
    pub error_pages: BTreeMap<String, String>,
    #[serde(default)]
    pub https_redirect: bool,
    pub hsts: Option<String>,
    #[serde(default)]
    pub redirects: Vec<RawRedirect>,
    /// Read `.htaccess` files (default true).
    pub htaccess: Option<bool>,
    #[serde(default)]
    pub deny: Vec<RawDeny>,
    #[serde(default)]
    pub no_scripts: Vec<RawNoScripts>,
    #[serde(default)]
    pub rewrite: Vec<RawRewrite>,
    #[serde(default)]
    pub headers: Vec<RawHeaders>,
    #[serde(default)]
    pub auth: Vec<RawAuth>,
    #[serde(default)]
    pub clients: Vec<RawClients>,
    #[serde(default)]
    pub rate_limit: Vec<RawRateLimit>,
    pub sendfile: Option<super::sendfile::RawSendfile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoute {
    pub prefix: String,
    pub pool: String,
    pub extensions: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMount {
    pub prefix: String,
    pub pool: String,
    pub script_filename: Option<PathBuf>,
    pub static_first: Option<bool>,
    pub unbuffered: Option<Vec<String>>,
    pub compress: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRedirect {
    pub from: String,
    pub to: String,
    pub status: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum RawSymlinks {
    InsideRoot,
    OwnerMatch,
    Always,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCacheRule {
    pub prefix: String,
    pub value: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScripts {
    pub pool: String,
    pub extensions: Option<Vec<String>>,
    pub front_controller: Option<String>,
    pub unbuffered: Option<Vec<String>>,
    pub compress: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum RawPoolMode {
    Prefork,
    Threaded,
    External,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum RawBuiltin {
    Cgi,
    Php,
    Wsgi,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum RawScheduling {
    Batch,
    Normal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum RawCpuAffinity {
    None,
    Spread,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum RawReadiness {
    Listen,
    Notify,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum RawSizing {
    Static,
    Dynamic,
    Ondemand,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPool {
    pub mode: RawPoolMode,
    pub command: Option<Vec<String>>,
    pub builtin: Option<RawBuiltin>,
    /// `builtin = "wsgi"`: the application, `MODULE[:CALLABLE]`.
    pub wsgi_app: Option<String>,
    pub script_timeout: Option<Duration>,
    /// `builtin = "php"`: a php.ini to read instead of the engine's executable's default, and
    /// settings applied on top (php-fpm's names).
    pub php_ini: Option<PathBuf>,
    /// `builtin = "php"`: the php-cgi executable whose engine the workers run.
    pub php_engine: Option<PathBuf>,
    #[serde(default)]
    pub php_value: BTreeMap<String, String>,
    #[serde(default)]
    pub php_admin_value: BTreeMap<String, String>,
    /// `builtin = "php"`: the PHP stack of a request running longer is logged (php-fpm's
    /// `request_slowlog_timeout`), with at most `slowlog_trace_depth` frames.
    pub slowlog_timeout: Option<Duration>,
    pub slowlog_trace_depth: Option<u32>,
    pub threads: Option<u32>,
    pub socket: Option<PathBuf>,
    pub connections: Option<u32>,
    pub keep_connections: Option<bool>,
    pub send_ahead: Option<bool>,
    pub send_ahead_below: Option<Duration>,
    pub protocol: Option<protocol::control::WorkerProtocol>,

    pub sizing: Option<RawSizing>,
    pub workers: Option<u32>,
    pub max_workers: Option<u32>,
    pub start_workers: Option<u32>,
    pub min_spare: Option<u32>,
    pub max_spare: Option<u32>,
    pub idle_timeout: Option<Duration>,
    pub spawn_rate: Option<u32>,
    /// When a started worker gets requests: once its socket listens, or once it says so.
    pub readiness: Option<RawReadiness>,
    pub start_timeout: Option<Duration>,
    pub max_starting: Option<u32>,

    pub max_requests: Option<u64>,
    pub max_requests_jitter: Option<u64>,
    pub max_rss: Option<Size>,
    pub max_lifetime: Option<Duration>,

    pub working_directory: Option<PathBuf>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    pub env_allow: Option<Vec<String>>,
    pub user: Option<String>,
    pub group: Option<String>,
    pub rlimit_nofile: Option<u64>,
    pub rlimit_nproc: Option<u64>,
    pub rlimit_core: Option<Size>,
    pub scheduling: Option<RawScheduling>,
    pub cpu_affinity: Option<RawCpuAffinity>,

    pub request_timeout: Option<Duration>,
    pub queue_timeout: Option<Duration>,
    pub queue_max: Option<usize>,
}
