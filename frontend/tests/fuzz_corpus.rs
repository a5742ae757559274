//! Replays the `router_path` fuzz corpus (frontend/fuzz/corpus/router_path) through the fuzz
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
