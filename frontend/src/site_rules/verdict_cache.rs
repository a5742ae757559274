//! The rules phase's outcome for a request, reused while none of the inputs its evaluation read
//! has changed: on a site with many rules and `.htaccess` files the evaluation (patterns,
//! rewrite captures, the merge of the files' settings) costs several times what routing does.
//!
//! An outcome is remembered per runtime thread (no lock, no memory the other thread writes),
//! per compiled rule set (a new configuration generation starts empty), under the request's
//! method, raw path and query and scheme — what every evaluation reads. With it are kept the
//! other inputs this evaluation read, each checked again on every use:
//! - the client's address, if a rule looked at it (a native `clients` rule whose pattern
//!   matched, an `.htaccess` `Require ip|local`, `Allow|Deny from` an address, `SetEnvIf
//!   Remote_Addr`, `%{REMOTE_ADDR}`);
//! - each server variable or request header the rewrite conditions, templates and `SetEnvIf`
//!   asked for, with its value (they all ask through [`RequestContext`]);
//! - the `.htaccess` state: every directory of the chain watched by inotify, and no change
//!   notice applied since (after draining the queue), and the document root still the same
//!   directory (its path watched too, else compared with a `stat`);
//! - every file-system answer the evaluation used (the request's stat memo), asked again
//!   through a fresh memo that the router then reads: a use costs about the router's own walk,
//!   which a site without rules makes anyway.
//!
//! Never remembered: a refusal or any other response (only "route it like this" is), an
//! evaluation that touched a rate limit (each request takes from a bucket) or Basic auth, read
//! a time variable or a symbolic-link test, went through a directory checked by `stat` rather
//! than watched, or reached the rewrite loop limit.
//!
//! Bounded: an estimate of the entries' bytes (emptied past [`MAX_BYTES`]), and an outcome is
//! remembered only the second time its target is seen ([`Doorkeeper`]), so a client sending a
//! new path with every request neither grows it nor pays for entries nobody uses. A site
//! without `.htaccess` files and rewrites is not cached at all: its evaluation reads neither
//! the file system nor variables and costs about what a lookup does.
//!
//! In debug builds (every end-to-end test) each use also runs the full evaluation and asserts
//! that both say the same, and every outcome is remembered from the first request on, so each
//! request the tests repeat checks the cache against the rules.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::Metadata;
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use http::request::Parts;
use http::Method;
use protocol::control::SiteSpec;

use super::context::RequestContext;
use super::htaccess_files::RootIdentity;
use super::{Client, CompiledSite, Routing, RuleFiles, Verdict};

/// Past this many bytes (an estimate of what the entries hold) a thread's cache starts again:
/// a client sending a new path with every request fills it, and then it is emptied; a
/// remembered outcome costs a few hundred bytes.
const MAX_BYTES: usize = 4 << 20;
/// A longer request target is not remembered (one entry may not take a large share).
const MAX_TARGET_BYTES: usize = 2048;
/// Slots of the doorkeeper: the targets seen once lately (see [`Doorkeeper`]).
const DOORKEEPER_SLOTS: usize = 4096;

/// What one evaluation read besides its key, recorded as it runs.
#[derive(Debug, Default)]
pub(super) struct Reads {
    /// Server variables and headers by name, with the value each had.
    variables: Vec<(String, Option<String>)>,
    pub client_address: bool,
    /// An `.htaccess` directory on the way is checked with a `stat`, not watched.
    pub htaccess_unwatched: bool,
    /// The `.htaccess` files' state when the evaluation first looked at them.
    pub htaccess: Option<HtaccessState>,
    /// Why the outcome is not a function of what is recorded, if it is not.
    refused: Option<&'static str>,
}

impl Reads {
    /// Records a variable's value as [`RequestContext`] answered it.
    pub(super) fn variable(&mut self, name: &str, value: &Option<String>) {
        match name {
            "REMOTE_ADDR" => self.client_address = true,
            // Functions of the path and of file-system answers, which the stat memo holds.
            "REQUEST_FILENAME" | "SCRIPT_FILENAME" => {}
            _ if name.starts_with("TIME") => self.refuse("a time variable"),
            _ if self.variables.iter().any(|(known, _)| known == name) => {}
            _ => self.variables.push((name.to_string(), value.clone())),
        }
    }

    /// The outcome must not be remembered.
    pub(super) fn refuse(&mut self, why: &'static str) {
        self.refused.get_or_insert(why);
    }
}

/// What makes a file-system answer the same for the rules: there or not, which file (device,
/// inode), its type and permission bits, and whether it is empty (`-s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    dev: u64,
    ino: u64,
    mode: u32,
    empty: bool,
}

fn fingerprint(meta: Option<&Metadata>) -> Option<Fingerprint> {
    meta.map(|m| Fingerprint {
        dev: m.dev(),
        ino: m.ino(),
        mode: m.mode(),
        empty: m.len() == 0,
    })
}

/// The `.htaccess` files' state an outcome was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct HtaccessState {
    /// The file cache's id and its count of applied change notices.
    version: (u64, u64),
    /// Which directory the document root was.
    root: RootIdentity,
}

impl HtaccessState {
    pub(super) fn new(version: (u64, u64), root: RootIdentity) -> Self {
        Self { version, root }
    }

    /// Where the root's path is watched (the usual case), no file-system call but the drain.
    fn now(site: &SiteSpec, files: &RuleFiles) -> Option<Self> {
        let (version, root_watched) = files.htaccess.version(&site.root);
        let root = if root_watched {
            RootIdentity::Watched
        } else {
            let meta = std::fs::metadata(&site.root).ok()?;
            RootIdentity::Stat(meta.dev(), meta.ino())
        };
        Some(Self { version, root })
    }
}

/// One remembered outcome and what it depends on.
struct Entry {
    method: Method,
    https: bool,
    routing: Routing,
    /// `Some` when a rule looked at the address.
    client: Option<IpAddr>,
    variables: Vec<(String, Option<String>)>,
    /// `Some` when the site reads `.htaccess` files.
    htaccess: Option<HtaccessState>,
    stats: Vec<(PathBuf, Option<Fingerprint>)>,
}

impl Entry {
    /// About how many bytes the entry holds, for the bound.
    fn footprint(&self, target: &str) -> usize {
        let paths: usize = self
            .stats
            .iter()
            .map(|(p, _)| p.as_os_str().len() + 64)
            .sum();
        let variables: usize = self
            .variables
            .iter()
            .map(|(n, v)| n.len() + v.as_ref().map_or(0, String::len) + 48)
            .sum();
        let routing = self.routing.env.len() * 64 + self.routing.headers.len() * 32;
        256 + target.len() + paths + variables + routing
    }

    /// The remembered routing, if every input still holds; it then carries the fresh
    /// file-system answers for the router.
    fn check(
        &self,
        site: &SiteSpec,
        parts: &Parts,
        client: Client,
        files: &RuleFiles,
    ) -> Option<Routing> {
        if self.method != parts.method || self.https != client.https {
            return None;
        }
        if self.client.is_some_and(|ip| ip != client.ip) {
            return None;
        }
        let ctx = RequestContext::new(site, parts, client);
        let variables_hold = self
            .variables
            .iter()
            .all(|(name, value)| ctx.server_variable(name) == *value);
        if !variables_hold {
            return None;
        }
        if let Some(state) = self.htaccess {
            if HtaccessState::now(site, files) != Some(state) {
                return None;
            }
            // The notices are drained: the answers below may come from earlier requests.
            ctx.stats.validate(files.htaccess.stat_validity());
        }
        let stats_hold = self.stats.iter().all(|(path, known)| {
            fingerprint(ctx.stats.allowed_metadata(site, path).as_ref()) == *known
        });
        if !stats_hold {
            return None;
        }
        let mut routing = self.routing.clone_without_stats();
        routing.stats = ctx.into_parts().0;
        Some(routing)
    }
}

/// One thread's remembered outcomes, per compiled rule set, by request target.
#[derive(Default)]
struct Cache {
    sites: HashMap<u64, HashMap<Box<str>, Vec<Entry>>>,
    bytes: usize,
    doorkeeper: Doorkeeper,
}

/// An outcome is remembered the second time its target is seen, not the first: a client that
/// sends a new target with every request (a scanner, a hostile client, unique query strings)
/// then costs a hash and one slot written per request, not an entry built, inserted and later
/// dropped (measured on the scenario 7 site: +2.3 µs on a 7.3 µs evaluation without it). A slot
/// holds a target's hash; a collision only delays remembering.
struct Doorkeeper {
    seen: Box<[u64]>,
}

impl Default for Doorkeeper {
    fn default() -> Self {
        Self {
            seen: vec![0; DOORKEEPER_SLOTS].into_boxed_slice(),
        }
    }
}

impl Doorkeeper {
    /// Whether `target` of `site_id` was seen lately; it counts as seen from now on.
    fn admits(&mut self, site_id: u64, target: &str) -> bool {
        use std::hash::{BuildHasher, Hash, Hasher};
        thread_local! {
            static KEYS: std::hash::RandomState = std::hash::RandomState::new();
        }
        // A debug server (the end-to-end tests') remembers every outcome from the first
        // request on, so that every repeated request is a hit that the cross-check verifies;
        // the doorkeeper is about cost only (its own unit tests keep it).
        if cfg!(all(debug_assertions, not(test))) {
            return true;
        }
        let hash = KEYS.with(|keys| {
            let mut hasher = keys.build_hasher();
            site_id.hash(&mut hasher);
            target.hash(&mut hasher);
            hasher.finish()
        });
        let slot = &mut self.seen[hash as usize % DOORKEEPER_SLOTS];
        let seen = *slot == hash;
        *slot = hash;
        seen
    }
}

impl Cache {
    fn recall(
        &self,
        site_id: u64,
        target: &str,
        site: &SiteSpec,
        parts: &Parts,
        client: Client,
        files: &RuleFiles,
    ) -> Option<Routing> {
        let entries = self.sites.get(&site_id)?.get(target)?;
        entries
            .iter()
            .find(|e| e.method == parts.method && e.https == client.https)?
            .check(site, parts, client, files)
    }

    fn remember(&mut self, site_id: u64, target: &str, entry: Entry) {
        let bytes = entry.footprint(target);
        if bytes > MAX_BYTES / 64 {
            return;
        }
        if self.bytes + bytes > MAX_BYTES {
            self.sites.clear();
            self.bytes = 0;
        }
        let entries = self
            .sites
            .entry(site_id)
            .or_default()
            .entry(target.into())
            .or_default();
        // One entry per method and scheme: a stale one is replaced.
        if let Some(old) = entries
            .iter()
            .position(|e| e.method == entry.method && e.https == entry.https)
        {
            let old = entries.swap_remove(old);
            self.bytes = self.bytes.saturating_sub(old.footprint(target));
        }
        entries.push(entry);
        self.bytes += bytes;
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.sites
            .values()
            .flat_map(HashMap::values)
            .map(Vec::len)
            .sum()
    }
}

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::default();
}

/// [`super::before_routing`]: a remembered outcome whose inputs still hold, else the full
/// evaluation (remembered when it may be).
pub(super) fn before_routing(
    compiled: &CompiledSite,
    site: &SiteSpec,
    parts: &Parts,
    client: Client,
    files: &RuleFiles,
) -> Verdict {
    let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let rules = compiled.rules();
    // Without `.htaccess` files and rewrites the evaluation reads neither the file system nor
    // variables: matching the patterns costs about what a cache lookup would.
    let worth_it = rules.htaccess || !rules.rewrites.rules.is_empty();
    if !worth_it || target.len() > MAX_TARGET_BYTES {
        return super::evaluate(compiled, site, parts, client, files).0;
    }
    if let Some(routing) = recalled(compiled, target, site, parts, client, files) {
        #[cfg(debug_assertions)]
        return cross_check(compiled, site, parts, client, files, routing);
        #[cfg(not(debug_assertions))]
        return Verdict::Route(routing);
    }
    let (verdict, reads) = super::evaluate(compiled, site, parts, client, files);
    let admitted = || CACHE.with(|cache| cache.borrow_mut().doorkeeper.admits(compiled.id, target));
    if let (Verdict::Route(routing), Some(reads)) = (&verdict, reads) {
        if !admitted() {
            return verdict;
        }
        if let Some(entry) = entry(routing, reads, rules.htaccess, parts, client) {
            CACHE.with(|cache| cache.borrow_mut().remember(compiled.id, target, entry));
        }
    }
    verdict
}

/// This thread's remembered outcome for `target`, if its inputs still hold.
fn recalled(
    compiled: &CompiledSite,
    target: &str,
    site: &SiteSpec,
    parts: &Parts,
    client: Client,
    files: &RuleFiles,
) -> Option<Routing> {
    CACHE.with(|cache| {
        cache
            .borrow()
            .recall(compiled.id, target, site, parts, client, files)
    })
}

/// What to remember of an evaluation, if it may be.
fn entry(
    routing: &Routing,
    reads: Reads,
    reads_htaccess: bool,
    parts: &Parts,
    client: Client,
) -> Option<Entry> {
    if reads.refused.is_some() || reads.htaccess_unwatched || routing.user.is_some() {
        return None;
    }
    // A site that reads `.htaccess` files whose state the evaluation did not learn (no root).
    if reads_htaccess && reads.htaccess.is_none() {
        return None;
    }
    let stats = routing
        .stats
        .recorded(|path, meta| (path.to_path_buf(), fingerprint(meta)))?;
    Some(Entry {
        method: parts.method.clone(),
        https: client.https,
        routing: routing.clone_without_stats(),
        client: reads.client_address.then_some(client.ip),
        variables: reads.variables,
        htaccess: reads.htaccess,
        stats,
    })
}

/// The debug builds' check of a remembered outcome against the full evaluation. A difference
/// is a bug unless the inputs changed in between (a test editing a file while a request runs):
/// then the entry no longer holds, and the fresh verdict is served.
#[cfg(debug_assertions)]
fn cross_check(
    compiled: &CompiledSite,
    site: &SiteSpec,
    parts: &Parts,
    client: Client,
    files: &RuleFiles,
    cached: Routing,
) -> Verdict {
    let (full, _) = super::evaluate(compiled, site, parts, client, files);
    if matches!(&full, Verdict::Route(routing) if *routing == cached) {
        return Verdict::Route(cached);
    }
    let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let still_holds = recalled(compiled, target, site, parts, client, files).is_some();
    assert!(
        !still_holds,
        "the verdict cache disagrees with the rules for {} {target}: cached {cached:?}, evaluated {full:?}",
        parts.method
    );
    full
}

/// How many outcomes this thread remembers (tests).
#[cfg(test)]
pub(super) fn remembered() -> usize {
    CACHE.with(|cache| cache.borrow().len())
}

/// About how many bytes this thread's remembered outcomes hold (tests).
#[cfg(test)]
pub(super) fn remembered_bytes() -> usize {
    CACHE.with(|cache| cache.borrow().bytes)
}

/// Whether this request's outcome would be served from the cache (tests, the cost probe).
#[cfg(test)]
pub(super) fn would_hit(
    compiled: &CompiledSite,
    site: &SiteSpec,
    parts: &Parts,
    client: Client,
    files: &RuleFiles,
) -> bool {
    let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    recalled(compiled, target, site, parts, client, files).is_some()
}

#[cfg(test)]
mod tests;
