//! `paddock-php`: the worker of `builtin = "php"` pools, built as a library
//! (`libpaddock_php.so`) that runs inside the PHP engine's own executable.
//!
//! The master starts Debian's `php-cgi8.2` with this library preloaded; the library takes over
//! the executable's start ([`host`]), so the executable's own `main` never runs and PHP is
//! started by paddock's SAPI instead, on the engine as the executable has it. (Debian's
//! `libphp8.2.so`, the embeddable engine, runs the same PHP 11–18 % slower: a shared library
//! built without `-fno-semantic-interposition` calls every engine function through the PLT and
//! inlines none across them; docs/benchmarks.md, "The engine from the php-cgi executable".)
//!
//! Once started, the process is the pool's warm parent (`paddock-php zygote`): it starts PHP
//! (php.ini read, extensions loaded, OPcache's shared memory created) and then, on the master's
//! request, forks one worker per listening socket the master hands it. Workers are re-parented
//! to the master (a child subreaper), which supervises them exactly like php-cgi workers; they
//! share the parent's memory and OPcache, so a new worker starts warm.
//!
//! # Layout
//! - `host` — taking over the executable's start (the crate's process-start `unsafe`);
//! - `args` — the command line the master builds;
//! - `zygote` — the warm parent: start PHP, then fork workers on request;
//! - `fork` — the double fork that hands a worker to the master (the crate's process `unsafe`);
//! - `worker` — a worker's life: descriptors, parent check, accept loop (a request is read off
//!   its connection by `protocol::responder::request_reader`);
//! - `exchange` — the request in flight: its body, and its output as FastCGI records;
//! - `request` — the decoded request in the form the C side reads;
//! - `ffi` — the calls into `csrc/paddock_sapi.c` and its callbacks (the crate's FFI `unsafe`);
//!   `csrc/user_ini.c` applies php.ini's per-directory sections and `.user.ini` files.
//!
//! Built without PHP's development headers, the library is a stub that says which packages to
//! install (see `build.rs`).

mod args;
mod connections;
#[cfg(paddock_libphp)]
mod exchange;
#[cfg(paddock_libphp)]
#[cfg(paddock_libphp)]
mod ffi;
#[cfg(paddock_libphp)]
mod fork;
mod host;
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

/// The program's start once [`host`] has taken over: its command line, then the parent's life.
/// Returns the exit status.
fn start() -> i32 {
    let args = match args::Args::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("paddock-php: {message}\n{}", args::USAGE);
            return 2;
        }
    };
    run(args)
}

#[cfg(paddock_libphp)]
fn run(args: args::Args) -> i32 {
    zygote::run(&args)
}

#[cfg(not(paddock_libphp))]
fn run(_args: args::Args) -> i32 {
    eprintln!(
        "paddock-php was built without PHP: install php8.2-dev and php8.2-cgi \
         (apt-get install php8.2-dev php8.2-cgi), then rebuild (cargo build --release -p paddock-php)"
    );
    protocol::zygote::EXIT_NO_PHP
}
