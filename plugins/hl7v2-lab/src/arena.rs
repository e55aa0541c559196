//! Per-call bump allocation for the wasm component.
//!
//! Adapting one message makes a few hundred small allocations (the FHIR builders own their
//! strings) that all die together once the host has read the result. Inside the component the
//! global allocator is an [`Arena`]: while an `adapt` call runs ([`Call`]), small allocations
//! are bumped from one reusable chunk and their frees are no-ops; the chunk is rewound when the
//! next call starts — by then the previous result has been lowered to the host and released
//! (`cabi_post_adapt` runs before the next export call). Outside `adapt` (parameters lifted by
//! the bindings, `configure`, the adapter's own state) and for large blocks (≥ 64 KiB: message
//! text, documents, the JSON), the system allocator is used as usual. When a call overflows the
//! chunk, the rest of its allocations go to the system allocator and the next call gets a
//! chunk twice as big (up to 8 MiB).
//!
//! The component is single-threaded; natively (tests) the arena is not installed, only unit
//! tested.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::ptr;

/// First chunk size.
const INITIAL: usize = 256 * 1024;
/// Largest chunk.
const MAX: usize = 8 * 1024 * 1024;
/// Allocations at least this big always use the system allocator.
const LARGE: usize = 64 * 1024;
const CHUNK_ALIGN: usize = 16;

struct State {
    base: *mut u8,
    cap: usize,
    /// Address of the chunk's first free byte.
    next: usize,
    /// End address of the chunk during a call; 0 outside calls or without a chunk, so that
    /// one comparison refuses a block in every case (the allocation path is short: ≈ 200
    /// blocks a message).
    limit: usize,
    /// Chunk size for the next call.
    wanted: usize,
}

/// A bump allocator active during calls, over the system allocator.
pub struct Arena {
    state: UnsafeCell<State>,
}

// SAFETY: only installed as the global allocator of the wasm component, which runs on one
// thread; native tests use their own instances from one thread.
unsafe impl Sync for Arena {}

impl Arena {
    pub const fn new() -> Self {
        Arena {
            state: UnsafeCell::new(State {
                base: ptr::null_mut(),
                cap: 0,
                next: 0,
                limit: 0,
                wanted: INITIAL,
            }),
        }
    }

    #[allow(clippy::mut_from_ref)]
    fn state(&self) -> &mut State {
        // SAFETY: single-threaded (see `Sync`), and no reference outlives a method call.
        unsafe { &mut *self.state.get() }
    }

    /// Starts a call: rewinds the chunk (growing it when the last call overflowed).
    ///
    /// # Safety
    /// Nothing allocated from the arena during earlier calls may still be in use.
    pub unsafe fn begin(&self) {
        let s = self.state();
        if s.wanted > s.cap {
            if !s.base.is_null() {
                // SAFETY: allocated below with this layout.
                unsafe {
                    System.dealloc(
                        s.base,
                        Layout::from_size_align_unchecked(s.cap, CHUNK_ALIGN),
                    )
                };
            }
            // SAFETY: non-zero size, valid alignment.
            let base =
                unsafe { System.alloc(Layout::from_size_align_unchecked(s.wanted, CHUNK_ALIGN)) };
            (s.base, s.cap) = if base.is_null() {
                (ptr::null_mut(), 0)
            } else {
                (base, s.wanted)
            };
        }
        s.next = s.base as usize;
        s.limit = if s.base.is_null() { 0 } else { s.next + s.cap };
    }

    /// Ends a call: later allocations use the system allocator (the arena's blocks stay valid
    /// until the next [`Arena::begin`]).
    pub fn end(&self) {
        self.state().limit = 0;
    }

    fn owns(&self, p: *mut u8) -> bool {
        let s = self.state();
        let (p, base) = (p as usize, s.base as usize);
        !s.base.is_null() && p >= base && p < base + s.cap
    }

    /// A block from the chunk, or null when the arena is inactive, the block large or the
    /// chunk full.
    #[inline(always)]
    fn bump(&self, layout: Layout) -> *mut u8 {
        let s = self.state();
        let (size, align) = (layout.size(), layout.align());
        let fits = s.next.checked_add(align - 1).and_then(|a| {
            let start = a & !(align - 1);
            Some((start, start.checked_add(size)?))
        });
        match fits {
            Some((start, end)) if end <= s.limit && size < LARGE => {
                s.next = end;
                // Keep the pointer's provenance: offset from the chunk's base.
                s.base.wrapping_add(start - s.base as usize)
            }
            _ => {
                if s.limit != 0 && size < LARGE {
                    // The chunk is full: a bigger one for the next call.
                    s.wanted = (s.cap * 2).clamp(INITIAL, MAX);
                }
                ptr::null_mut()
            }
        }
    }
}

impl Default for Arena {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: blocks are either fresh, non-overlapping ranges of the chunk (aligned as asked) or
// come from `System`; each is released by the allocator that made it (`owns`).
unsafe impl GlobalAlloc for Arena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = self.bump(layout);
        if p.is_null() {
            // SAFETY: forwarded as is.
            unsafe { System.alloc(layout) }
        } else {
            p
        }
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        if !self.owns(p) {
            // SAFETY: a block of `System` (not from the chunk).
            unsafe { System.dealloc(p, layout) }
        }
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !self.owns(p) {
            // SAFETY: a block of `System`.
            return unsafe { System.realloc(p, layout, new_size) };
        }
        let s = self.state();
        let addr = p as usize;
        // The last block of an active call grows (or shrinks) in place when it fits.
        if addr + layout.size() == s.next && addr + new_size <= s.limit {
            s.next = addr + new_size;
            return p;
        }
        if new_size <= layout.size() {
            return p;
        }
        // SAFETY: valid layout (same alignment, non-zero size).
        let q = unsafe { self.alloc(Layout::from_size_align_unchecked(new_size, layout.align())) };
        if !q.is_null() {
            // SAFETY: both blocks are valid for the old size, and distinct.
            unsafe { ptr::copy_nonoverlapping(p, q, layout.size()) };
        }
        q
    }
}

/// An `adapt` call's use of the global arena (wasm only): begins on creation, ends on drop.
#[cfg(target_arch = "wasm32")]
pub struct Call(());

#[cfg(target_arch = "wasm32")]
impl Call {
    pub fn begin() -> Self {
        // SAFETY: the previous call's result was released by `cabi_post_adapt` before this
        // export call started, and nothing else allocated in a call outlives it.
        unsafe { GLOBAL.begin() };
        Call(())
    }
}

#[cfg(target_arch = "wasm32")]
impl Drop for Call {
    fn drop(&mut self) {
        GLOBAL.end();
    }
}

#[cfg(target_arch = "wasm32")]
#[global_allocator]
static GLOBAL: Arena = Arena::new();

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn bumps_during_calls_only() {
        let a = Arena::new();
        unsafe {
            // Inactive: system blocks.
            let s = a.alloc(layout(32, 8));
            assert!(!a.owns(s));
            a.begin();
            let p = a.alloc(layout(10, 1));
            let q = a.alloc(layout(24, 8));
            assert!(a.owns(p) && a.owns(q));
            assert_eq!(q as usize % 8, 0);
            assert!(q as usize >= p as usize + 10);
            // Large blocks: system.
            let big = a.alloc(layout(LARGE, 8));
            assert!(!a.owns(big));
            a.dealloc(big, layout(LARGE, 8));
            a.dealloc(p, layout(10, 1)); // no-op
            a.end();
            let after = a.alloc(layout(16, 8));
            assert!(!a.owns(after));
            a.dealloc(after, layout(16, 8));
            // The next call rewinds.
            a.begin();
            let p2 = a.alloc(layout(10, 1));
            assert_eq!(p2, p);
            a.end();
            a.dealloc(s, layout(32, 8));
        }
    }

    #[test]
    fn realloc_in_place_copies_otherwise_and_overflows_to_system() {
        let a = Arena::new();
        unsafe {
            a.begin();
            let p = a.alloc(layout(8, 1));
            p.copy_from(b"abcdefgh".as_ptr(), 8);
            let p = a.realloc(p, layout(8, 1), 100);
            assert!(a.owns(p));
            let other = a.alloc(layout(8, 1));
            assert!(a.owns(other));
            // No longer the last block: moved, contents kept.
            let q = a.realloc(p, layout(100, 1), 200);
            assert_ne!(p, q);
            assert_eq!(std::slice::from_raw_parts(q, 8), b"abcdefgh");
            // Fill the chunk: the rest goes to the system allocator and the next chunk grows.
            let mut system = Vec::new();
            for _ in 0..(INITIAL / 1024 + 8) {
                let b = a.alloc(layout(1024, 8));
                assert!(!b.is_null());
                if !a.owns(b) {
                    system.push(b);
                }
            }
            assert!(!system.is_empty());
            for b in system {
                a.dealloc(b, layout(1024, 8));
            }
            a.end();
            a.begin();
            assert_eq!(a.state().cap, INITIAL * 2);
            a.end();
        }
    }
}
