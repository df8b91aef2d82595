//! The plugin's memory allocator on WebAssembly: a bump allocator over a static arena.
//!
//! Every operation runs in a fresh instance that is thrown away afterwards (its few hook
//! calls, e.g. an event's `on-event`, `evaluate-tier` and `perks`, share the arena), so
//! a general-purpose allocator's bookkeeping is wasted work, and Rust's default one
//! (dlmalloc) grows linear memory on its first allocation in every instance — which
//! costs the host an `mprotect` and a TLB shootdown per call. This allocator hands out
//! memory from a 256 KiB arena in the module's zero-initialised data, so a typical call
//! never grows memory; past the arena it grows memory in 64 KiB pages like any other
//! allocator (and the host's memory cap still applies). Freeing the most recent
//! allocation returns it, and growing the most recent allocation happens in place, so
//! the common `Vec` and `String` growth patterns do not waste the arena.
//!
//! Enabled by the SDK's default `arena-allocator` feature; turn default features off to
//! bring your own `#[global_allocator]`.
#![allow(unsafe_code)] // A global allocator cannot be written without `unsafe`.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::ptr;

const ARENA_BYTES: usize = 256 * 1024;
const PAGE: usize = 64 * 1024;

#[repr(C, align(16))]
struct Arena(UnsafeCell<[u8; ARENA_BYTES]>);

/// Bump pointer state: the next free byte and the end of the current region.
struct Cursor(UnsafeCell<(usize, usize)>);

// SAFETY: wasm32-unknown-unknown plugins are single-threaded; nothing else can touch
// these statics concurrently.
unsafe impl Sync for Arena {}
unsafe impl Sync for Cursor {}

static ARENA: Arena = Arena(UnsafeCell::new([0; ARENA_BYTES]));
static CURSOR: Cursor = Cursor(UnsafeCell::new((0, 0)));

/// The SDK's allocator (see the module docs).
pub struct BumpAllocator;

impl BumpAllocator {
    /// # Safety
    /// Single-threaded use only (true of every wasm32-unknown-unknown plugin).
    unsafe fn cursor(&self) -> &mut (usize, usize) {
        // SAFETY: see `Sync` above; the reference never outlives one allocator call.
        let c = unsafe { &mut *CURSOR.0.get() };
        if c.1 == 0 {
            let start = ARENA.0.get() as usize;
            *c = (start, start + ARENA_BYTES);
        }
        c
    }

    /// Grow linear memory by enough pages for `size` bytes at `align`; the new pages
    /// become the current region. Returns false when the host refuses.
    fn grow(cursor: &mut (usize, usize), size: usize, align: usize) -> bool {
        let pages = (size + align).div_ceil(PAGE).max(1);
        let old = core::arch::wasm32::memory_grow(0, pages);
        if old == usize::MAX {
            return false;
        }
        let start = old * PAGE;
        // Contiguous with the current region: extend it; otherwise start afresh.
        if cursor.1 == start {
            cursor.1 += pages * PAGE;
        } else {
            *cursor = (start, start + pages * PAGE);
        }
        true
    }
}

unsafe impl GlobalAlloc for BumpAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: single-threaded, see `cursor`.
        let cursor = unsafe { self.cursor() };
        loop {
            let start = (cursor.0 + layout.align() - 1) & !(layout.align() - 1);
            if let Some(end) = start.checked_add(layout.size())
                && end <= cursor.1
            {
                cursor.0 = end;
                return start as *mut u8;
            }
            if !Self::grow(cursor, layout.size(), layout.align()) {
                return ptr::null_mut();
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: single-threaded, see `cursor`.
        let cursor = unsafe { self.cursor() };
        // Only the most recent allocation can be returned to a bump allocator.
        if ptr as usize + layout.size() == cursor.0 {
            cursor.0 = ptr as usize;
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: single-threaded, see `cursor`.
        let cursor = unsafe { self.cursor() };
        let start = ptr as usize;
        // The most recent allocation grows or shrinks in place when it fits.
        if start + layout.size() == cursor.0
            && let Some(end) = start.checked_add(new_size)
            && end <= cursor.1
        {
            cursor.0 = end;
            return ptr;
        }
        if new_size <= layout.size() {
            return ptr;
        }
        // SAFETY: `layout.align()` is a valid alignment and `new_size` is non-zero
        // (it exceeds the old size), as GlobalAlloc::realloc requires of callers.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: as for `alloc`.
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both regions are valid for `layout.size()` bytes and distinct
            // (the new one was bumped past the old).
            unsafe { ptr::copy_nonoverlapping(ptr, new, layout.size()) };
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: BumpAllocator = BumpAllocator;
