//! Parsed response headers that each runtime thread owns.
//!
//! A custom `HeaderName` and every `HeaderValue` hold a reference-counted buffer, and cloning one
//! into a response counts it up. The front end keeps a copy of the rules per thread (so that no
//! request touches memory the other thread writes); a derived `Clone` would share the buffers
//! and put their counts back on a line both cores write for every response (measured: `bytes`'
//! `shared_clone` 0.5 % of the front end's samples on a site adding 6 headers). So the rules'
//! headers are copied deeply for each thread (`SiteRules`' `Clone`, `DirRules::thread_copy`).
//!
//! Better still, a copy is made of static text where it can be: the names and values the rules
//! use are interned for the life of the process, up to [`INTERNED_BYTES`] in all, and a header
//! made of static text is copied into a response and dropped with no count at all (measured on
//! scenario 7's site adding 6 headers: `bytes`' clone and drop functions 0.45 µs a request of
//! the front end's time). The bound keeps a site whose `.htaccess` files keep changing their
//! headers from growing it: past it, copies own their buffers as above.

use std::collections::HashSet;
use std::sync::Mutex;

use http::{HeaderName, HeaderValue};

/// The most text interned for the life of the process: headers of rules are a few hundred
/// bytes on a typical site.
pub const INTERNED_BYTES: usize = 64 << 10;

/// Text kept for the life of the process, and its total length.
static INTERNED: Mutex<(Option<HashSet<&'static str>>, usize)> = Mutex::new((None, 0));

/// `text` as static text: the interned copy, made now if the bound allows.
fn interned(text: &str) -> Option<&'static str> {
    let mut guard = INTERNED.lock().unwrap_or_else(|e| e.into_inner());
    let (set, used) = &mut *guard;
    let set = set.get_or_insert_with(HashSet::new);
    if let Some(known) = set.get(text) {
        return Some(known);
    }
    if *used + text.len() > INTERNED_BYTES {
        return None;
    }
    let leaked: &'static str = Box::leak(text.to_owned().into_boxed_str());
    set.insert(leaked);
    *used += text.len();
    Some(leaked)
}

/// A copy of `name` that costs no reference count to clone and drop where the bound allows,
/// else with a buffer of its own.
pub fn own_name(name: &HeaderName) -> HeaderName {
    // A `HeaderName` is stored lowercased and valid, which is what `from_static` asks.
    match interned(name.as_str()) {
        Some(text) => HeaderName::from_static(text),
        None => {
            HeaderName::from_bytes(name.as_str().as_bytes()).expect("a header name stays valid")
        }
    }
}

/// A copy of `value`, as [`own_name`] makes one.
pub fn own_value(value: &HeaderValue) -> HeaderValue {
    // `to_str` succeeds exactly for the visible ASCII that `from_static` accepts.
    let static_text = value.to_str().ok().and_then(interned);
    let mut copy = match static_text {
        Some(text) => HeaderValue::from_static(text),
        None => HeaderValue::from_bytes(value.as_bytes()).expect("a header value stays valid"),
    };
    copy.set_sensitive(value.is_sensitive());
    copy
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_interned_once_and_within_the_bound() {
        let a = interned("x-interned-once").unwrap();
        let b = interned(&String::from("x-interned-once")).unwrap();
        assert!(std::ptr::eq(a, b));
        let huge = "v".repeat(INTERNED_BYTES + 1);
        assert!(interned(&huge).is_none());
        // Past the bound, a copy owns its buffer and is still equal.
        let value = HeaderValue::from_str(&huge).unwrap();
        assert_eq!(own_value(&value), value);
    }

    #[test]
    fn values_beyond_visible_ascii_are_copied_not_interned() {
        let value = HeaderValue::from_bytes(b"caf\xe9").unwrap();
        assert_eq!(own_value(&value), value);
        let mut secret = HeaderValue::from_static("token");
        secret.set_sensitive(true);
        assert!(own_value(&secret).is_sensitive());
    }

    #[test]
    fn copies_are_equal() {
        let name = HeaderName::from_static("x-custom");
        assert_eq!(own_name(&name), name);
        let value = HeaderValue::from_static("v");
        assert_eq!(own_value(&value), value);
    }
}
