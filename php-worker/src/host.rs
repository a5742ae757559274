//! Taking over the start of the PHP engine's executable.
//!
//! The master starts Debian's `php-cgi8.2` with this library in `LD_PRELOAD` and
//! [`SAPI_FD_VAR`] in its environment. The executable exports the whole engine (its extensions
//! link against it), so the library's references to PHP resolve to the executable's functions,
//! and the engine runs as compiled into the executable. The library defines
//! `__libc_start_main`, which the executable's entry code calls with its `main`: this one hands
//! the C library paddock's entry point instead, and php-cgi's own `main` runs only in a process
//! that inherited the library without the variable (it should not, as the variables are removed
//! at once, but a stray `LD_PRELOAD` must not turn another program into a PHP parent).
//!
//! The crate's process-start `unsafe` is here.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicPtr, Ordering};

use protocol::zygote::{SAPI_FD, SAPI_FD_VAR};

type Main = unsafe extern "C" fn(c_int, *mut *mut c_char, *mut *mut c_char) -> c_int;
type StartMain = unsafe extern "C" fn(
    Main,
    c_int,
    *mut *mut c_char,
    *mut c_void,
    *mut c_void,
    *mut c_void,
    *mut c_void,
) -> c_int;

/// The executable's own `main`, for a process not started by paddock.
static HOST_MAIN: AtomicPtr<c_void> = AtomicPtr::new(std::ptr::null_mut());

/// glibc's entry point for a program's start, interposed: the same arguments go to the real one
/// (the next definition, the C library's), with [`paddock_main`] as the program's `main`. The
/// three function pointers are passed through untouched (glibc 2.34 and later pass no `init`
/// and `fini`; older ones do), so they are declared as plain pointers.
///
/// # Safety
/// Called once by the executable's entry code, before `main`, as glibc's own would be.
// Exported from the library for the dynamic loader, not used from Rust.
#[allow(unreachable_pub)]
#[no_mangle]
pub unsafe extern "C" fn __libc_start_main(
    main: Main,
    argc: c_int,
    argv: *mut *mut c_char,
    init: *mut c_void,
    fini: *mut c_void,
    rtld_fini: *mut c_void,
    stack_end: *mut c_void,
) -> c_int {
    // SAFETY: dlsym with RTLD_NEXT looks the name up in the objects loaded after this one.
    let next = unsafe { libc::dlsym(libc::RTLD_NEXT, c"__libc_start_main".as_ptr()) };
    if next.is_null() {
        // Nothing sensible can run without the C library's start.
        // SAFETY: abort never returns and needs no state.
        unsafe { libc::abort() }
    }
    // SAFETY: the symbol is glibc's __libc_start_main, whose type this is.
    let real: StartMain = unsafe { std::mem::transmute::<*mut c_void, StartMain>(next) };
    HOST_MAIN.store(main as *mut c_void, Ordering::Relaxed);
    // SAFETY: the arguments are the ones the entry code gave, passed on unchanged.
    unsafe { real(paddock_main, argc, argv, init, fini, rtld_fini, stack_end) }
}

/// The program's `main`: paddock-php's start in a parent the master started, the executable's
/// own `main` anywhere else.
unsafe extern "C" fn paddock_main(
    argc: c_int,
    argv: *mut *mut c_char,
    envp: *mut *mut c_char,
) -> c_int {
    if std::env::var_os(SAPI_FD_VAR).is_none() {
        // SAFETY: stored by __libc_start_main before the C library called this function.
        let host: Main =
            unsafe { std::mem::transmute::<*mut c_void, Main>(HOST_MAIN.load(Ordering::Relaxed)) };
        // SAFETY: the executable's main, with the arguments it was meant to get.
        return unsafe { host(argc, argv, envp) };
    }
    // The process is still single-threaded: nothing reads the environment while it changes.
    std::env::remove_var("LD_PRELOAD");
    std::env::remove_var(SAPI_FD_VAR);
    // The dynamic loader has mapped the library; the descriptor it came through is not needed.
    // SAFETY: SAPI_FD was placed by the master for this purpose and nothing else owns it.
    unsafe { libc::close(SAPI_FD) };
    ignore_broken_pipes();
    crate::start()
}

/// A write to a pipe or socket whose reader has gone must fail with `EPIPE`, not kill the
/// process: php-cgi's own `main`, which does not run here, ignores SIGPIPE (and so did this
/// worker when it was a Rust program: Rust's runtime does it before `main`). Without it, `mail()`
/// with no `sendmail` installed kills the worker whenever `sh` exits before PHP writes the
/// message (WordPress's comment post answered 502 in some runs under load), as does an `fwrite`
/// to a command started by `popen` or `proc_open` that has exited. What a script starts
/// inherits the setting, as under php-cgi.
fn ignore_broken_pipes() {
    // SAFETY: the process is still single-threaded and runs no PHP yet; the disposition set is
    // the kernel's "ignore", no handler function.
    if unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) } == libc::SIG_ERR {
        eprintln!(
            "paddock-php: cannot ignore SIGPIPE: {}",
            std::io::Error::last_os_error()
        );
    }
}
