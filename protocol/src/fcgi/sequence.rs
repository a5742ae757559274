//! How paddock numbers the requests it sends ahead to one worker, so that the worker can run
//! them in the order sent.
//!
//! A `builtin = "php"` worker may have requests waiting on several connections at once (the
//! front end's places ahead). The front end gives each request on a worker its ordinal as its
//! FastCGI request id, counting 1 to 65535 and round again (0 is FastCGI's management id); the
//! worker runs the waiting request whose id comes first. Requests waiting at once are a few
//! apart, so "first" is the shorter way round the ring.

/// The request id of a worker's request number `sequence` (counted from 0).
pub fn sequenced_request_id(sequence: u64) -> u16 {
    (sequence % u64::from(u16::MAX)) as u16 + 1
}

/// How many steps forward from `earlier` to `later` on the ring of ids 1 to 65535 (0 when they
/// are equal).
pub fn ids_apart(earlier: u16, later: u16) -> u32 {
    (u32::from(later) + u32::from(u16::MAX) - u32::from(earlier)) % u32::from(u16::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_go_forward_round_the_ring() {
        assert_eq!(ids_apart(7, 8), 1);
        assert_eq!(ids_apart(8, 8), 0);
        assert_eq!(ids_apart(65_535, 1), 1);
        assert_eq!(ids_apart(65_534, 2), 3);
        assert_eq!(ids_apart(8, 7), 65_534);
        assert_eq!(
            ids_apart(sequenced_request_id(65_534), sequenced_request_id(65_535)),
            1
        );
    }
}
