//! Settings of the process's allocator (mimalloc, see [`crate`]'s `ALLOCATOR`).
#![allow(unsafe_code)] // mimalloc's options are set through its C functions.

/// Have the allocator keep memory it has freed for 10 s before giving it back to the
/// kernel, instead of mimalloc's 1 s. sled allocates each 512 KiB buffer of its log
/// afresh and frees it once written, several times a second under load; with the
/// default, those buffers kept coming back as pages the kernel had to zero again
/// (`clear_page_erms`: 2.2 % of the server's CPU in the HTTP load test, 0.09 % with
/// this). A `MIMALLOC_PURGE_DELAY` in the environment still wins. Called when storage
/// is opened; the later calls do nothing.
pub(crate) fn keep_freed_memory() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // SAFETY: `mi_option_set` only stores the value; `MI_OPTION_PURGE_DELAY` is
        // `mi_option_purge_delay` of the mimalloc the `mimalloc` crate links (a test
        // checks that it reads back as that option's default before it is set).
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, 10_000) };
    });
}

/// `mi_option_purge_delay` in mimalloc's `mi_option_t`.
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

unsafe extern "C" {
    // mimalloc's own C functions, linked by the `mimalloc` crate.
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
    #[cfg(test)]
    fn mi_option_get(option: std::ffi::c_int) -> std::ffi::c_long;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_option_is_mimallocs_and_is_set() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // The option's default in mimalloc v3 is 1000 ms: reading it back proves the
        // index names that option (unless storage was opened first in this process).
        let before = unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) };
        assert!(
            before == 1_000 || before == 10_000,
            "option 15 reads {before}"
        );
        keep_freed_memory();
        assert_eq!(unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) }, 10_000);
    }
}
