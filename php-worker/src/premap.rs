//! Mapping the shared memory a new worker will read before its first request does.
//!
//! A fork copies the page tables of private memory only: a shared mapping (OPcache's cache, an
//! APCu segment) starts empty in the child, and the child maps its pages one page fault at a
//! time as it reads them. The parent never runs a script, so the pages the workers filled (the
//! compiled scripts) are all missing from a new worker's tables: MediaWiki's first request in a
//! new worker took about 1,400 page faults, 420 of them for 27 MiB of OPcache, where later
//! requests take about 300 (`perf stat`, 2026-12-05). One `madvise(MADV_POPULATE_READ)` per run
//! of pages maps them before the worker takes a request. That is not much cheaper than the
//! faults (the kernel maps the same pages, 1.5–5 ms for those 27 MiB here), but it is done
//! while the new worker waits for its first request, which a recycled worker or one started
//! ahead of demand usually does, instead of inside it.
//!
//! Only pages that already exist are mapped (`mincore` says which): populating a hole of a
//! shared mapping would allocate it, and OPcache reserves far more than it fills. Nothing is
//! copied and nothing becomes private: the pages stay shared, the worker's page tables grow by
//! 8 bytes per 4 KiB page. Best effort: a kernel without `MADV_POPULATE_READ` (before 5.14)
//! leaves the faults to the first request, as before.
#![allow(unsafe_code)]

use std::ops::Range;

/// Maps in the existing pages of this process's shared memory mappings; how many pages.
pub(crate) fn map_shared_memory() -> usize {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return 0;
    };
    let page = page_size();
    let mut mapped = 0;
    for area in maps.lines().filter_map(shared_memory_area) {
        match map_existing_pages(area, page) {
            Some(n) => mapped += n,
            // The kernel lacks MADV_POPULATE_READ: no point trying the other areas.
            None => break,
        }
    }
    mapped
}

/// The address range of a `/proc/self/maps` line if it is shared, writable memory (OPcache's
/// `mmap`, `shm` and `posix` segments, memfd), not a file of a disk.
fn shared_memory_area(line: &str) -> Option<Range<usize>> {
    let mut fields = line.split_whitespace();
    let range = fields.next()?;
    let perms = fields.next()?;
    let path = fields.nth(3).unwrap_or("");
    let shared_memory = path == "/dev/zero"
        || path.starts_with("/SYSV")
        || path.starts_with("/dev/shm/")
        || path.starts_with("/memfd:");
    if !(perms.starts_with("rw") && perms.ends_with('s') && shared_memory) {
        return None;
    }
    let (start, end) = range.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    (start < end).then_some(start..end)
}

fn page_size() -> usize {
    // SAFETY: sysconf only reads a system constant.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size)
        .ok()
        .filter(|&s| s > 0)
        .unwrap_or(4096)
}

/// Maps the pages of `area` that exist; `None` when the kernel cannot populate.
fn map_existing_pages(area: Range<usize>, page: usize) -> Option<usize> {
    let pages = (area.end - area.start) / page;
    let mut resident = vec![0u8; pages];
    // SAFETY: `area` is a whole mapping of this process (from /proc/self/maps, page aligned),
    // and `resident` has one byte per page of it, as mincore requires.
    let known = unsafe {
        libc::mincore(
            area.start as *mut libc::c_void,
            area.end - area.start,
            resident.as_mut_ptr(),
        )
    };
    if known != 0 {
        return Some(0);
    }
    let mut mapped = 0;
    for run in resident_runs(&resident) {
        let start = area.start + run.start * page;
        let len = (run.end - run.start) * page;
        // SAFETY: populating only faults in pages of this process's own mapping for reading;
        // no memory's contents change.
        let done =
            unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_POPULATE_READ) };
        if done != 0 {
            return (std::io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL))
                .then_some(mapped);
        }
        mapped += run.end - run.start;
    }
    Some(mapped)
}

/// The runs of consecutive resident pages in a `mincore` vector (bit 0 of each byte).
fn resident_runs(resident: &[u8]) -> Vec<Range<usize>> {
    let mut runs = Vec::new();
    let mut start = None;
    for (i, byte) in resident.iter().enumerate() {
        match (byte & 1 == 1, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                runs.push(s..i);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        runs.push(s..resident.len());
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_shared_writable_memory_is_taken() {
        let opcache = "40a8b000-48a8b000 rw-s 00000000 00:01 224708                             /dev/zero (deleted)";
        assert_eq!(shared_memory_area(opcache), Some(0x40a8b000..0x48a8b000));
        let sysv = "7f00000000-7f00100000 rw-s 00000000 00:01 5  /SYSV00000000 (deleted)";
        assert!(shared_memory_area(sysv).is_some());
        for other in [
            "7f4b1cbff000-7f4b1cc06000 r--s 00000000 fe:00 325745   /usr/lib/x86_64-linux-gnu/gconv/gconv-modules.cache",
            "7f4b19400000-7f4b19600000 rw-p 00000000 00:00 0",
            "56196c9cc000-56196caae000 rw-p 00000000 00:00 0                          [heap]",
            "7f0000000000-7f0000001000 rw-s 00000000 fe:00 12   /var/lib/app/data.db",
        ] {
            assert_eq!(shared_memory_area(other), None, "{other}");
        }
    }

    #[test]
    fn runs_of_resident_pages() {
        assert_eq!(resident_runs(&[]), Vec::<Range<usize>>::new());
        assert_eq!(
            resident_runs(&[1, 1, 0, 0, 1, 0, 3]),
            vec![0..2, 4..5, 6..7]
        );
        assert_eq!(resident_runs(&[0, 2, 0]), Vec::<Range<usize>>::new());
    }

    #[test]
    fn an_anonymous_shared_mapping_gets_its_existing_pages_mapped() {
        let page = page_size();
        let len = 8 * page;
        // SAFETY: a fresh anonymous shared mapping of `len` bytes, unmapped below.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED);
        // Pages 1 and 2 exist; the others are holes, which must stay holes.
        // SAFETY: both writes are inside the mapping.
        unsafe {
            *(base as *mut u8).add(page) = 1;
            *(base as *mut u8).add(2 * page) = 1;
        }
        let area = base as usize..base as usize + len;
        let mapped = map_existing_pages(area, page);
        let mut resident = vec![0u8; 8];
        // SAFETY: as in map_existing_pages.
        unsafe { libc::mincore(base, len, resident.as_mut_ptr()) };
        // SAFETY: the mapping made above, unused from here.
        unsafe { libc::munmap(base, len) };
        assert!(matches!(mapped, Some(2) | None), "{mapped:?}");
        assert_eq!(resident_runs(&resident), vec![1..3], "no hole filled");
    }
}
