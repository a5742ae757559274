//! Replays the `config_load` fuzz corpus (frontend/fuzz/corpus/config_load) through the fuzz
//! target's property (frontend/fuzz/properties/config.rs): `load_str` never panics.
//!
//! The ignored test is the long tier without nightly (random mutation for
//! `PADDOCK_FUZZ_SECONDS`, default 60): `cargo test -p paddock --test fuzz_corpus -- --ignored`.

#[path = "../../frontend/fuzz/properties/config.rs"]
mod property;

#[path = "../../frontend/fuzz/properties/mutate.rs"]
mod mutate;

const CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../frontend/fuzz/corpus/config_load"
);

#[test]
fn config_load_corpus_never_panics() {
    let inputs = mutate::corpus(CORPUS);
    assert!(inputs.len() >= 10, "{} inputs in {CORPUS}", inputs.len());
    for input in &inputs {
        property::check(input);
    }
}

#[test]
#[ignore = "long tier: random mutation for PADDOCK_FUZZ_SECONDS (default 60)"]
fn config_load_random_mutations() {
    let tokens: &[&[u8]] = &[
        b"[pools.p]\n",
        b"[sites.s]\n",
        b"[listeners.l]\n",
        b"[limits]\n",
        b"[timeouts]\n",
        b"[http2]\n",
        b"[server]\n",
        b"workers = ",
        b"max_body = \"",
        b"KiB\"",
        b"GiB\"",
        b"\"0s\"",
        b"18446744073709551615",
        b"-1",
        b"= [\"",
        b"\"]\n",
        b"mode = \"threaded\"\n",
        b"sizing = \"dynamic\"\n",
        b"root = \"/\"\n",
        b"\n",
        b"=",
        b"\"",
        b"{",
        b"}",
    ];
    let runs = mutate::run(CORPUS, tokens, property::check);
    eprintln!("config_load: {runs} mutated inputs checked");
}
