//! Hostile clients, workers and resources: request smuggling, HTTP/2 attacks, slow clients,
//! misbehaving FastCGI workers, exhausted descriptors, abandoned requests, and the long-tier soak
//! run (`#[ignore]`d). One test binary; each module is one attack surface.

mod cancelled_requests;
mod framing;
mod http2;
mod resources;
mod slow;
mod soak;
mod workers;
