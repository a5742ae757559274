//! Replays the `router_path` and `rules_path` fuzz corpora (frontend/fuzz/corpus/router_path) through the fuzz
//! target's property (frontend/fuzz/properties/router.rs), so that every case the fuzzer ever
//! kept is checked by `cargo test` on stable.
//!
//! The ignored test is the long tier without nightly: a small random mutator over the corpus,
//! for `PADDOCK_FUZZ_SECONDS` (default 60):
//! `cargo test -p paddock-frontend --test fuzz_corpus -- --ignored`.

#[path = "../fuzz/properties/router.rs"]
mod property;

#[path = "../fuzz/properties/mutate.rs"]
mod mutate;

#[path = "../fuzz/properties/rules.rs"]
mod rules_property;

const RULES_CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/rules_path");

/// Replays the `rules_path` corpus: no spelling of a protected path gets past the site's native
/// rules and `.htaccess` files.
#[test]
fn rules_path_corpus_never_reaches_a_protected_file() {
    let inputs = mutate::corpus(RULES_CORPUS);
    assert!(
        inputs.len() >= 20,
        "{} inputs in {RULES_CORPUS}",
        inputs.len()
    );
    for input in &inputs {
        rules_property::check(input);
    }
}

#[test]
#[ignore = "long tier: random mutation for PADDOCK_FUZZ_SECONDS (default 60)"]
fn rules_path_random_mutations() {
    let tokens: &[&[u8]] = &[
        b"/",
        b"..",
        b".",
        b"%2e",
        b"%2f",
        b"%70",
        b"%63",
        b"//",
        b"private",
        b"closed",
        b"uploads",
        b"vendor",
        b"x.php",
        b"/extra",
        b"?q=1",
        b".htaccess",
        b"%00",
        b"%0a",
    ];
    let runs = mutate::run(RULES_CORPUS, tokens, rules_property::check);
    eprintln!("rules_path: {runs} mutated inputs checked");
}

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/router_path");

#[test]
fn router_path_corpus_keeps_every_path_under_the_root() {
    let inputs = mutate::corpus(CORPUS);
    assert!(inputs.len() >= 20, "{} inputs in {CORPUS}", inputs.len());
    for input in &inputs {
        property::check(input);
    }
}

#[test]
#[ignore = "long tier: random mutation for PADDOCK_FUZZ_SECONDS (default 60)"]
fn router_path_random_mutations() {
    let tokens: &[&[u8]] = &[
        b"/",
        b"..",
        b".",
        b"%2e",
        b"%2E%2e",
        b"%2f",
        b"%5c",
        b"%00",
        b"\\",
        b"//",
        b".env",
        b".well-known",
        b"link_out_dir",
        b"link_out_file.php",
        b"link_etc",
        b"link_in_dir",
        b"link_in_file.php",
        b"sub/deeper/up",
        b"upload/x.jpg",
        b"index.php",
        b".php",
        b"cgi-bin",
        b"run.sh",
        b"%c0%ae",
        b"%ff",
        b"site-evil",
    ];
    let runs = mutate::run(CORPUS, tokens, property::check);
    eprintln!("router_path: {runs} mutated inputs checked");
}
