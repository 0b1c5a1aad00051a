//! The process's memory bound and the allocator that turns running out into a clear error.

/// The memory bound: an input no budget foresaw (a values template that doubles a string in a
/// few dozen steps, say) must end in an error, not take the machine — on a CI runner it would
/// take the other jobs with it. pitrix caps its own data segment (`RLIMIT_DATA`: the heap and
/// every private anonymous mapping) at `PITRIX_MEMORY_LIMIT` (`4GiB`, `512MiB`, `0` for none;
/// default three quarters of the machine's memory), and an allocation the kernel then refuses
/// ends the run with a message and exit 2 instead of Rust's abort.
struct BoundedAlloc;

// SAFETY: every call is passed to the system allocator unchanged; only a null result (no
// memory) is handled, by ending the process.
unsafe impl std::alloc::GlobalAlloc for BoundedAlloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        let p = unsafe { std::alloc::System.alloc(layout) };
        if p.is_null() {
            out_of_memory();
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        let p = unsafe { std::alloc::System.alloc_zeroed(layout) };
        if p.is_null() {
            out_of_memory();
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, size: usize) -> *mut u8 {
        let p = unsafe { std::alloc::System.realloc(ptr, layout, size) };
        if p.is_null() {
            out_of_memory();
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: BoundedAlloc = BoundedAlloc;

/// Says why and exits; allocates nothing (there is no memory left to format with).
fn out_of_memory() -> ! {
    const MESSAGE: &[u8] = b"error[out-of-memory]: pitrix reached its memory limit and stopped\n  = hint: an input needs more memory than PITRIX_MEMORY_LIMIT allows (default: 3/4 of the machine's); a values template that builds huge strings does\n";
    // SAFETY: write(2) of a static buffer, then _exit(2): no unwinding, no destructors, no
    // allocation.
    unsafe {
        libc::write(2, MESSAGE.as_ptr().cast(), MESSAGE.len());
        libc::_exit(2)
    }
}

/// For a process that runs for weeks (`pitrix reconcile`): at most two glibc malloc arenas.
/// glibc gives each thread that allocates an arena of its own (up to eight per CPU), and what a
/// sync's threads freed stays resident in theirs, scattered among the few chunks still live, so
/// the idle controller kept the first sync's leftovers. In the soak (`bench/soak.sh`, 11,110
/// objects) two arenas took the idle heap from 26.2 to 20.9 MiB and the first sync's peak from
/// 100 to 80–85 MiB, in the same time; `malloc_trim` after each sync had freed nothing. musl, the
/// image's libc, has no arenas.
pub(crate) fn few_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets one of glibc's own tunables; it is called before the runtime
    // starts its threads.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Applies `PITRIX_MEMORY_LIMIT` (see [`BoundedAlloc`]); only ever lowers the limit.
pub(crate) fn limit_memory() -> Result<(), pitrix::Error> {
    let limit = match std::env::var("PITRIX_MEMORY_LIMIT") {
        Ok(text) => parse_bytes(&text).ok_or_else(|| {
            pitrix::Error::InvalidValue(format!(
                "PITRIX_MEMORY_LIMIT={text}: not a size like 4GiB, 512MiB or 0"
            ))
        })?,
        // SAFETY: sysconf has no memory effects.
        Err(_) => unsafe {
            let pages = libc::sysconf(libc::_SC_PHYS_PAGES);
            let page = libc::sysconf(libc::_SC_PAGESIZE);
            match pages > 0 && page > 0 {
                true => (pages as u64).saturating_mul(page as u64) / 4 * 3,
                false => 0,
            }
        },
    };
    if limit == 0 {
        return Ok(());
    }
    let mut current = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_DATA, &mut current) != 0 {
            return Ok(());
        }
        let wanted = (limit as libc::rlim_t).min(current.rlim_max);
        if wanted < current.rlim_cur {
            current.rlim_cur = wanted;
            libc::setrlimit(libc::RLIMIT_DATA, &current);
        }
    }
    Ok(())
}

/// `4GiB`, `512MiB`, `100M`, `2G`, `1048576`.
fn parse_bytes(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "K" | "KB" | "KiB" | "k" => 1 << 10,
        "M" | "MB" | "MiB" => 1 << 20,
        "G" | "GB" | "GiB" => 1 << 30,
        _ => return None,
    };
    number.parse::<u64>().ok()?.checked_mul(factor)
}
