//! The properties the fuzz targets in `protocol/fuzz` check on every input.
//!
//! They live in the crate (behind the `fuzzing` feature, and in its own tests) rather than in the
//! fuzz crate so that `cargo test` replays the checked-in corpus through exactly the same code:
//! an input that once crashed a target is kept in the corpus and stays a regression test. Each
//! function panics when a property does not hold; any other input is fine.
//!
//! - [`record_decoder`]: records decode, round-trip through the encoder, need every byte.
//! - [`name_value_decoder`]: pairs round-trip; the canonical encoding is never longer.
//! - [`response_head`]: a parsed CGI head is well-formed and needs exactly its own bytes.
//! - [`request_params`]: the PARAMS built from a request never carry CR, LF or NUL, and
//!   SCRIPT_NAME and PATH_INFO are what REQUEST_URI says.
//! - [`http_answer`]: a worker's HTTP answer head needs only its own bytes; a chunked body
//!   decodes the same however reads split it.

mod http_answer;
mod params;
mod wire;

pub use http_answer::http_answer;
pub use params::request_params;
pub use wire::{name_value_decoder, record_decoder, response_head};

#[cfg(test)]
mod replay;
