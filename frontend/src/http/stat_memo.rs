//! What one request already learned from the file system, so that the walks made for it (the
//! `.htaccess` chain, the rewrite conditions' `-f`/`-d`, `REQUEST_FILENAME`, then the router)
//! ask the kernel about each path once.
//!
//! Only the rules phase records: a site without `.htaccess` and rewrites never fills the memo,
//! and the router then stats as it always did, with no copy of a path. Answers are as fresh as
//! the request: the memo lives and dies with it. Once the rules phase has drained the site's
//! change notices it says so ([`StatMemo::validate`]), and from then on the memo also takes
//! answers that earlier requests found, where no notice has voided them
//! ([`crate::site_rules::watched_stats`]).

use std::fs::Metadata;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use protocol::control::SiteSpec;

use super::router;
use crate::site_rules::watched_stats::{self, StatValidity};

/// A rewrite loop may name many paths; past this many the memo stops growing (lookups still
/// work, they just are not remembered).
const MAX_ENTRIES: usize = 64;

/// Answers of [`router::allowed_metadata`] for one request. A `Mutex` rather than a `RefCell`
/// because the memo rides along the request across awaits; it is never contended.
/// Entries are large (a `Metadata` is about 180 bytes): a memo's list, grown for every request
/// of a site with rules, took a `realloc` and a trip to the allocator's shared arena each time
/// (measured on scenario 7's site: 5 % of the front end's samples, with waits on the arena's
/// lock). So each thread keeps a few emptied lists for the next requests.
const SPARE_LISTS: usize = 4;

type Known = Vec<(PathBuf, Option<Metadata>)>;

thread_local! {
    static SPARE: std::cell::RefCell<Vec<Known>> = const { std::cell::RefCell::new(Vec::new()) };
}

#[derive(Debug, Default)]
pub(crate) struct StatMemo {
    known: Mutex<Known>,
    /// Some answer was not remembered (past [`MAX_ENTRIES`]): the memo no longer lists every
    /// path the request's rules looked at, so what they decided cannot be re-validated from it.
    overflowed: AtomicBool,
    /// Set once the request has drained its site's change notices: answers may then come from
    /// earlier requests ([`watched_stats`]).
    validity: OnceLock<StatValidity>,
}

impl StatMemo {
    /// [`router::allowed_metadata`], remembered.
    pub(crate) fn allowed_metadata(&self, site: &SiteSpec, path: &Path) -> Option<Metadata> {
        let mut known = self.lock();
        if let Some(meta) = find(&known, path) {
            return meta;
        }
        let meta = self.ask(site, path);
        if known.len() < MAX_ENTRIES {
            if known.capacity() == 0 {
                *known = SPARE
                    .with(|spare| spare.borrow_mut().pop())
                    .unwrap_or_default();
            }
            known.push((path.to_path_buf(), meta.clone()));
        } else {
            self.overflowed.store(true, Ordering::Relaxed);
        }
        meta
    }

    /// Every answer asked through [`StatMemo::allowed_metadata`], in order, as `summary` makes
    /// it of each; `None` when some answer was not remembered.
    pub(crate) fn recorded<T>(
        &self,
        mut summary: impl FnMut(&Path, Option<&Metadata>) -> T,
    ) -> Option<Vec<T>> {
        if self.overflowed.load(Ordering::Relaxed) {
            return None;
        }
        let known = self.lock();
        Some(
            known
                .iter()
                .map(|(path, meta)| summary(path, meta.as_ref()))
                .collect(),
        )
    }

    /// [`router::allowed_metadata`] from the memo when the rules phase asked it already, else
    /// from the file system without recording (the router's own walk).
    pub(crate) fn recalled_or_stat(&self, site: &SiteSpec, path: &Path) -> Option<Metadata> {
        match self.known(path) {
            Some(known) => known,
            None => self.ask(site, path),
        }
    }

    /// The request has drained its site's change notices; `validity` is what they counted.
    pub(crate) fn validate(&self, validity: StatValidity) {
        let _ = self.validity.set(validity);
    }

    /// [`router::allowed_metadata`], from an earlier request where nothing has changed since.
    fn ask(&self, site: &SiteSpec, path: &Path) -> Option<Metadata> {
        let Some(validity) = self.validity.get() else {
            return router::allowed_metadata(site, path);
        };
        if let Some(answer) = watched_stats::recall(validity, path) {
            return answer;
        }
        // Before the `stat`: a change after it must be a notice to come.
        let may_remember = watched_stats::may_remember(validity, path);
        let (answer, link) = router::allowed_metadata_and_link(site, path);
        if may_remember && !link {
            watched_stats::remember(validity, path, &answer);
        }
        answer
    }

    /// The remembered answer: `Some(None)` means "looked up, not there (or not allowed)".
    fn known(&self, path: &Path) -> Option<Option<Metadata>> {
        find(&self.lock(), path)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Known> {
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for StatMemo {
    fn drop(&mut self) {
        let known = self.known.get_mut().unwrap_or_else(|e| e.into_inner());
        if known.capacity() == 0 || known.capacity() > MAX_ENTRIES {
            return;
        }
        let mut list = std::mem::take(known);
        list.clear();
        SPARE.with(|spare| {
            let mut spare = spare.borrow_mut();
            if spare.len() < SPARE_LISTS {
                spare.push(list);
            }
        });
    }
}

fn find(known: &[(PathBuf, Option<Metadata>)], path: &Path) -> Option<Option<Metadata>> {
    // Most recent first: a walk asks about the path it just extended. Compared as bytes:
    // `Path`'s own equality parses both into components.
    let path = path.as_os_str();
    known
        .iter()
        .rev()
        .find(|(p, _)| p.as_os_str() == path)
        .map(|(_, meta)| meta.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(root: &Path) -> SiteSpec {
        SiteSpec {
            name: "t".into(),
            hosts: vec!["*".into()],
            root: root.to_path_buf(),
            index: Vec::new(),
            routes: Vec::new(),
            script: None,
            symlinks: protocol::control::SymlinkPolicy::InsideRoot,
            precompressed: false,
            cache_control: Vec::new(),
            default: false,
            error_pages: Vec::new(),
            https_redirect: false,
            hsts: None,
            redirects: Vec::new(),
            rules: Default::default(),
            sendfile: Default::default(),
            mounts: Vec::new(),
        }
    }

    #[test]
    fn an_answer_is_remembered_for_the_request() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.txt");
        std::fs::write(&file, "x").unwrap();
        let site = site(dir.path());
        let memo = StatMemo::default();
        assert!(memo
            .allowed_metadata(&site, &file)
            .is_some_and(|m| m.is_file()));
        std::fs::remove_file(&file).unwrap();
        // Within the request the first answer stands; without the memo the file is gone.
        assert!(memo.recalled_or_stat(&site, &file).is_some());
        assert!(StatMemo::default().recalled_or_stat(&site, &file).is_none());
    }

    #[test]
    fn a_missing_path_is_remembered_as_missing() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("later.txt");
        let site = site(dir.path());
        let memo = StatMemo::default();
        assert!(memo.allowed_metadata(&site, &file).is_none());
        std::fs::write(&file, "x").unwrap();
        assert!(memo.allowed_metadata(&site, &file).is_none());
    }

    #[test]
    fn the_router_walk_alone_records_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let site = site(dir.path());
        let memo = StatMemo::default();
        assert!(memo.recalled_or_stat(&site, dir.path()).is_some());
        assert!(memo.known(dir.path()).is_none());
    }
}
