//! The boundary with `csrc/paddock_sapi.c`: the calls into it, and the callbacks it makes for
//! output, the request body and log messages. The only `unsafe` FFI code of the crate.
//!
//! The callbacks never unwind into C (a panic there aborts the worker, which the master treats
//! as a crash) and return before PHP may `longjmp` (an aborted connection is reported to PHP by
//! the C side after the Rust callback has returned), so no Rust frame is ever jumped over.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_long, CString};

use crate::exchange;

/// `struct pdk_param`.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Param {
    pub(crate) name: *mut c_char,
    pub(crate) name_len: usize,
    pub(crate) value: *mut c_char,
    pub(crate) value_len: usize,
}

/// `struct pdk_request`: pointers into a [`crate::request::PhpRequest`].
#[repr(C)]
#[derive(Debug)]
pub(crate) struct RequestView {
    pub(crate) params: *const Param,
    pub(crate) param_count: usize,
    pub(crate) method: *mut c_char,
    pub(crate) query_string: *mut c_char,
    pub(crate) script_name: *mut c_char,
    pub(crate) script_filename: *mut c_char,
    pub(crate) content_type: *mut c_char,
    pub(crate) authorization: *mut c_char,
    pub(crate) content_length: c_long,
    pub(crate) proto_num: c_int,
    pub(crate) headers_only: c_int,
}

#[cfg(not(test))]
extern "C" {
    fn pdk_startup_php(
        ini_path: *const c_char,
        defines: *const *const c_char,
        define_count: usize,
        admin_names: *const *const c_char,
        admin_count: usize,
    ) -> c_int;
    fn pdk_run_request(request: *const RequestView, timeout_ms: c_long) -> c_int;
    fn pdk_engine_check(built: *mut *const c_char, running: *mut *const c_char) -> c_int;
    fn pdk_request_peak_memory() -> usize;
    fn pdk_slowlog_install(depth: c_int);
    fn pdk_flag_slow_request();
    fn pdk_clear_slow_request();
}
#[cfg(test)]
use unlinked::*;

/// Hooks the slow-request log into PHP's VM interrupts, with at most `depth` frames a trace.
pub(crate) fn slowlog_install(depth: u32) {
    // SAFETY: sets PHP's interrupt hook once, on PHP's thread, between requests.
    unsafe { pdk_slowlog_install(c_int::try_from(depth).unwrap_or(c_int::MAX)) }
}

/// Asks PHP's thread to log the running request's stack at its next VM interrupt check. Safe
/// from any thread: it only stores to two atomic flags.
pub(crate) fn flag_slow_request() {
    // SAFETY: an atomic store to a C flag and one to PHP's `EG(vm_interrupt)`, an atomic bool
    // made to be set from elsewhere (signal handlers, other threads).
    unsafe { pdk_flag_slow_request() }
}

/// Drops a slow-request flag that its request did not use.
pub(crate) fn clear_slow_request() {
    // SAFETY: an atomic store to a C flag.
    unsafe { pdk_clear_slow_request() }
}

/// The most memory the current request's script has held (`memory_get_peak_usage()`); after
/// the request, the figure it ended with.
pub(crate) fn request_peak_memory() -> u64 {
    // SAFETY: reads PHP's allocator figures on this, PHP's only thread; valid at any time after
    // startup (between requests it returns a saved number).
    unsafe { pdk_request_peak_memory() as u64 }
}

/// Whether the engine this process runs (the executable's) is the PHP version paddock-php was
/// compiled for; if not, what each is.
pub(crate) fn engine_matches() -> Result<(), String> {
    let mut built = std::ptr::null();
    let mut running = std::ptr::null();
    // SAFETY: fills both pointers with static NUL-terminated strings (a literal, and the engine's
    // own version text, which exists once PHP has started: called after `startup`).
    let status = unsafe { pdk_engine_check(&mut built, &mut running) };
    if status == 0 {
        return Ok(());
    }
    // SAFETY: both point to static NUL-terminated strings (above).
    let text = |p: *const c_char| unsafe { std::ffi::CStr::from_ptr(p) }.to_string_lossy();
    Err(format!(
        "the PHP engine's executable is not the PHP paddock-php was built for: it runs {}, \
         paddock-php was built with the headers of PHP {}; set the pool's php_engine to a \
         php-cgi of that version, or rebuild paddock-php against this one",
        text(running).lines().next().unwrap_or_default(),
        text(built)
    ))
}

/// Starts PHP (module startup: ini files, extensions, OPcache's shared memory) in this process.
pub(crate) fn startup(
    ini: Option<&str>,
    defines: &[String],
    admin: &[String],
) -> Result<(), String> {
    let c = |s: &str| CString::new(s).map_err(|_| format!("{s:?} contains a NUL byte"));
    let ini = ini.map(c).transpose()?;
    let defines = defines
        .iter()
        .map(|d| c(d))
        .collect::<Result<Vec<_>, _>>()?;
    let admin = admin.iter().map(|d| c(d)).collect::<Result<Vec<_>, _>>()?;
    let define_ptrs: Vec<*const c_char> = defines.iter().map(|d| d.as_ptr()).collect();
    let admin_ptrs: Vec<*const c_char> = admin.iter().map(|d| d.as_ptr()).collect();
    // SAFETY: every pointer is a NUL-terminated string owned by the vectors above, which outlive
    // the call; the arrays' lengths are passed with them. Called once, before any request.
    let status = unsafe {
        pdk_startup_php(
            ini.as_ref().map_or(std::ptr::null(), |i| i.as_ptr()),
            define_ptrs.as_ptr(),
            define_ptrs.len(),
            admin_ptrs.as_ptr(),
            admin_ptrs.len(),
        )
    };
    if status == 0 {
        Ok(())
    } else {
        Err("PHP failed to start (see the messages above)".into())
    }
}

/// Runs one request through PHP; its output goes to the current [`exchange`]. PHP's timeout
/// error ends it after `timeout` (none when zero). False when PHP could not even start it.
pub(crate) fn run_request(view: &RequestView, timeout: std::time::Duration) -> bool {
    let timeout_ms = c_long::try_from(timeout.as_millis()).unwrap_or(c_long::MAX);
    // SAFETY: `view` points into a live PhpRequest that the caller neither moves nor changes
    // during the call; PHP was started by `startup` in this process (or the parent it forked
    // from), and requests run one at a time on this, the only thread.
    unsafe { pdk_run_request(view, timeout_ms) == 0 }
}

/// # Safety
/// `bytes` points to `len` readable bytes (C contract of `pdk_rs_write`).
#[no_mangle]
unsafe extern "C" fn pdk_rs_write(bytes: *const c_char, len: usize) -> c_int {
    if len == 0 {
        return 0;
    }
    // SAFETY: the C side passes a buffer of `len` bytes that stays valid during the call.
    let bytes = unsafe { std::slice::from_raw_parts(bytes.cast::<u8>(), len) };
    exchange::with(|x| x.write(bytes)).map_or(0, |ok| c_int::from(!ok))
}

#[no_mangle]
extern "C" fn pdk_rs_flush() -> c_int {
    exchange::with(|x| x.flush()).map_or(0, |ok| c_int::from(!ok))
}

/// # Safety
/// `buffer` points to `len` writable bytes (C contract of `pdk_rs_read_body`).
#[no_mangle]
unsafe extern "C" fn pdk_rs_read_body(buffer: *mut c_char, len: usize) -> usize {
    if len == 0 {
        return 0;
    }
    // SAFETY: the C side passes a buffer of `len` writable bytes, exclusively ours for the call.
    let buffer = unsafe { std::slice::from_raw_parts_mut(buffer.cast::<u8>(), len) };
    exchange::with(|x| x.read_body(buffer)).unwrap_or(0)
}

#[no_mangle]
extern "C" fn pdk_rs_finish() {
    exchange::with(|x| x.finish_early());
}

/// # Safety
/// `message` points to `len` readable bytes (C contract of `pdk_rs_log`).
#[no_mangle]
unsafe extern "C" fn pdk_rs_log(message: *const c_char, len: usize) {
    // SAFETY: the C side passes a message of `len` bytes that stays valid during the call.
    let message = unsafe { std::slice::from_raw_parts(message.cast::<u8>(), len) };
    exchange::log(message);
}

/// The crate's unit tests are a program of their own, not loaded into PHP's executable, so the
/// C side (whose references to PHP only that executable resolves) is not linked into them: these
/// stand-ins take its place, and no unit test reaches one.
#[cfg(test)]
#[allow(clippy::missing_safety_doc)]
mod unlinked {
    use std::ffi::{c_char, c_int, c_long};

    fn unreachable() -> ! {
        unreachable!("the unit tests run no PHP")
    }
    pub(super) unsafe fn pdk_startup_php(
        _: *const c_char,
        _: *const *const c_char,
        _: usize,
        _: *const *const c_char,
        _: usize,
    ) -> c_int {
        unreachable()
    }
    pub(super) unsafe fn pdk_run_request(_: *const super::RequestView, _: c_long) -> c_int {
        unreachable()
    }
    pub(super) unsafe fn pdk_engine_check(_: *mut *const c_char, _: *mut *const c_char) -> c_int {
        unreachable()
    }
    pub(super) unsafe fn pdk_request_peak_memory() -> usize {
        unreachable()
    }
    pub(super) unsafe fn pdk_slowlog_install(_: c_int) {
        unreachable()
    }
    pub(super) unsafe fn pdk_flag_slow_request() {
        unreachable()
    }
    pub(super) unsafe fn pdk_clear_slow_request() {
        unreachable()
    }
}
