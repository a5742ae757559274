//! `paddock-php`: the worker program of `builtin = "php"` pools.
//!
//! The master starts it once per pool as the pool's warm parent (`paddock-php zygote`): it starts
//! PHP (php.ini read, extensions loaded, OPcache's shared memory created) and then, on the
//! master's request, forks one worker per listening socket the master hands it. Workers are
//! re-parented to the master (a child subreaper), which supervises them exactly like php-cgi
//! workers; they share the parent's memory and OPcache, so a new worker starts warm.
//!
//! # Layout
//! - `args` — the command line the master builds;
//! - `zygote` — the warm parent: start PHP, then fork workers on request;
//! - `fork` — the double fork that hands a worker to the master (the crate's process `unsafe`);
//! - `worker` — a worker's life: descriptors, parent check, accept loop;
//! - `fcgi_conn` — reading one FastCGI request off a connection;
//! - `exchange` — the request in flight: its body, and its output as FastCGI records;
//! - `request` — the decoded request in the form the C side reads;
//! - `ffi` — the calls into `csrc/paddock_sapi.c` and its callbacks (the crate's FFI `unsafe`);
//!   `csrc/user_ini.c` applies php.ini's per-directory sections and `.user.ini` files.
//!
//! Built without PHP's development files, the program is a stub that says which packages to
//! install (see `build.rs`).

mod args;
mod connections;
#[cfg(paddock_libphp)]
mod exchange;
#[cfg(paddock_libphp)]
mod fcgi_conn;
#[cfg(paddock_libphp)]
mod ffi;
#[cfg(paddock_libphp)]
mod fork;
#[cfg(paddock_libphp)]
mod premap;
#[cfg(paddock_libphp)]
mod request;
#[cfg(paddock_libphp)]
mod slowlog;
#[cfg(paddock_libphp)]
mod worker;
#[cfg(paddock_libphp)]
mod zygote;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args = match args::Args::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("paddock-php: {message}\n{}", args::USAGE);
            return ExitCode::from(2);
        }
    };
    run(args)
}

#[cfg(paddock_libphp)]
fn run(args: args::Args) -> ExitCode {
    zygote::run(&args)
}

#[cfg(not(paddock_libphp))]
fn run(_args: args::Args) -> ExitCode {
    eprintln!(
        "paddock-php was built without PHP: install libphp8.2-embed and php8.2-dev \
         (apt-get install libphp8.2-embed php8.2-dev), then rebuild (cargo build --release -p paddock-php)"
    );
    ExitCode::from(protocol::zygote::EXIT_NO_PHP as u8)
}
