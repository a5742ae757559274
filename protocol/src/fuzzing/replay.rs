//! Replays every file of the checked-in fuzz corpus (`protocol/fuzz/corpus/<target>/`) through the
//! target's property check, so inputs that once failed stay regression tests.

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(outcome.is_ok(), "{} fails its property", path.display());
        files += 1;
    }
    assert!(files > 0, "no corpus for {target}");
}

#[test]
fn record_decoder_corpus() {
    replay("record_decoder", super::record_decoder);
}

#[test]
fn name_value_decoder_corpus() {
    replay("name_value_decoder", super::name_value_decoder);
}

#[test]
fn response_head_corpus() {
    replay("response_head", super::response_head);
}

#[test]
fn request_params_corpus() {
    replay("request_params", super::request_params);
}

#[test]
fn http_answer_corpus() {
    replay("http_answer", super::http_answer);
}
