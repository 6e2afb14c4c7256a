//! The daemon's memory policy: transparent huge pages off once start-up is done.
//!
//! mimalloc reserves its arenas a gigabyte at a time and asks the kernel for transparent huge
//! pages on them (`madvise(MADV_HUGEPAGE)`). Where the kernel's THP mode is `madvise` (the
//! common default), the first touch of each 2 MiB of such an arena allocates a huge page, and
//! with `defrag` at `madvise` it compacts memory first, inside the fault: the thread that
//! touched the memory waits. On the machines pingpost is measured on that is about 5 ms a
//! fault, and the exchange thread is the one touching new memory as auctions accumulate, so
//! every ping in flight waits with it (BENCHMARKS.md, "Transparent huge pages").
//!
//! Turning THP off for the process (`prctl(PR_SET_THP_DISABLE)`) makes later faults take
//! ordinary pages, without compaction; huge pages already in place stay. The daemon does it
//! after start-up, once the book is compiled and the journal replayed, so that the book keeps
//! the huge pages it was built in. `pingpost serve --transparent-huge-pages` keeps THP on.

/// Turns transparent huge pages off for this process from now on (Linux; elsewhere there is
/// nothing to turn off). See the module docs.
///
/// # Errors
///
/// The kernel's refusal, as `prctl` reports it.
pub fn stop_transparent_huge_pages() -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        rustix::thread::disable_transparent_huge_pages(true).map_err(std::io::Error::from)
    }
    #[cfg(not(target_os = "linux"))]
    {
        Ok(())
    }
}

/// Whether transparent huge pages are off for this process (always, where there are none).
///
/// # Errors
///
/// The kernel's refusal, as `prctl` reports it.
pub fn transparent_huge_pages_stopped() -> std::io::Result<bool> {
    #[cfg(target_os = "linux")]
    {
        rustix::thread::transparent_huge_pages_are_disabled().map_err(std::io::Error::from)
    }
    #[cfg(not(target_os = "linux"))]
    {
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The flag is per process, and a test binary runs its tests as threads of one process:
    /// this test turns THP off for all of them, which no other test depends on.
    #[test]
    fn stopping_turns_the_process_flag_on() {
        stop_transparent_huge_pages().expect("prctl(PR_SET_THP_DISABLE)");
        assert!(transparent_huge_pages_stopped().expect("prctl(PR_GET_THP_DISABLE)"));
    }
}
