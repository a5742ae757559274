//! A small random mutator for the stable-toolchain long tier: corpus entries with bytes flipped,
//! inserted, deleted, or with dictionary tokens spliced in, checked for a bounded time. It finds
//! less than libFuzzer (no coverage feedback) but needs neither nightly nor instrumentation.

use std::time::{Duration, Instant};

/// Every file of a corpus directory.
pub(crate) fn corpus(dir: &str) -> Vec<Vec<u8>> {
    let mut inputs: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|entry| std::fs::read(entry.unwrap().path()).unwrap())
        .collect();
    inputs.sort();
    inputs
}

/// Checks mutations of the corpus with `check` for `PADDOCK_FUZZ_SECONDS` (default 60);
/// returns how many. The seed is printed so that a failure can be replayed
/// (`PADDOCK_FUZZ_SEED`).
pub(crate) fn run(dir: &str, tokens: &[&[u8]], check: impl Fn(&[u8])) -> u64 {
    let seconds = std::env::var("PADDOCK_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let mut state: u64 = std::env::var("PADDOCK_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    eprintln!("PADDOCK_FUZZ_SEED={state}");
    let mut next = move || {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let inputs = corpus(dir);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut runs = 0;
    while Instant::now() < deadline {
        let mut input = inputs[next() as usize % inputs.len()].clone();
        for _ in 0..1 + next() % 4 {
            let at = if input.is_empty() {
                0
            } else {
                next() as usize % (input.len() + 1)
            };
            match next() % 4 {
                0 if at < input.len() => input[at] ^= 1 << (next() % 8),
                1 => input.insert(at, next() as u8),
                2 if at < input.len() => {
                    input.remove(at);
                }
                _ => {
                    let token = tokens[next() as usize % tokens.len()];
                    input.splice(at..at, token.iter().copied());
                }
            }
        }
        check(&input);
        runs += 1;
    }
    runs
}
