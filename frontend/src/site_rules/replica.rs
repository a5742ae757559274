//! Per-thread copies of compiled rules, so that no request touches memory another runtime
//! thread is writing.
//!
//! A `regex::Regex` keeps a pool of search caches: the first thread to search owns one and
//! takes it without a lock; every other thread locks the pool and takes a cache whose memory
//! last lived on the other core. A site's patterns shared by both runtime threads made every
//! request on the second thread pay that for each of its pattern searches (a site with 50 rules
//! and five `.htaccess` files makes about thirty), on top of the reference counts of the shared
//! rules bouncing between the cores. Measured on that site's static file: the rules cost
//! +2.8 µs a request with one runtime thread and +10 µs with two. A clone of a `Regex` has a
//! pool of its own, so each thread searches its own copy, made once per rules version.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// Past this many copies a thread starts again (old configuration generations' copies go).
const MAX_COPIES: usize = 1024;

/// One thread's copies, by the original's process-unique id.
pub(super) struct Replicas<T> {
    copies: RefCell<HashMap<u64, Rc<T>>>,
}

impl<T> Default for Replicas<T> {
    fn default() -> Self {
        Self {
            copies: RefCell::new(HashMap::new()),
        }
    }
}

impl<T: Clone> Replicas<T> {
    /// This thread's copy of `original`, whose content never changes under `id`.
    pub(super) fn get(&self, id: u64, original: &T) -> Rc<T> {
        if let Some(copy) = self.copies.borrow().get(&id) {
            return copy.clone();
        }
        let copy = Rc::new(original.clone());
        let mut copies = self.copies.borrow_mut();
        if copies.len() >= MAX_COPIES {
            copies.clear();
        }
        copies.insert(id, copy.clone());
        copy
    }
}

/// A process-unique id for something whose copies [`Replicas`] keeps.
pub(super) fn next_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_copy_per_id_per_thread() {
        let replicas = Replicas::default();
        let (a, b) = (next_id(), next_id());
        let first = replicas.get(a, &String::from("x"));
        assert!(Rc::ptr_eq(
            &first,
            &replicas.get(a, &String::from("ignored"))
        ));
        assert_eq!(*replicas.get(b, &String::from("y")), "y");
    }
}
