//! What paddock sends back: static files, compression, and buffered or streamed worker
//! responses.

mod buffering;
mod compression;
mod direct_path;
mod large_files;
mod sendfile;
mod static_files;
