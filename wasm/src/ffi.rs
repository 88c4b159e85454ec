//! The boundary to JavaScript: plain `extern "C"` functions taking and returning numbers.
//!
//! JS writes a request's bytes into `INPUT` (its address comes from `matcher_input`; 8-byte
//! aligned, so JS may write four bytes at a time through a `Uint32Array`) with
//! `TextEncoder.encodeInto` or a loop, then passes lengths. Layout of `INPUT`:
//! - insert/remove: the raw uri at offset 0, up to `URI_CAPACITY` bytes;
//! - lookup: the raw Host header at 0 (up to `HOST_CAPACITY`), the raw target at `HOST_CAPACITY`
//!   (up to `PATH_CAPACITY`). A longer target may be cut: registered paths are at most 4096 bytes,
//!   so the first 8 KiB of a target decide its match.
//! Bulk loads go through a buffer from `matcher_alloc` holding records `[id: i32 LE][len: u32 LE]
//! [uri bytes]`.
//!
//! Shared memory (the router's workers): the module imports its memory, which the router creates
//! shared, so one table serves every thread. One instance, the writer, applies every change and is
//! the only one that allocates; each reader thread runs its own instance of the module (data
//! section stripped, so instantiating it writes nothing) with its own shadow stack
//! (`__stack_pointer`, set by JS to a region the writer allocated) and its own `Reader` (input
//! buffer and lookup scratch, from `matcher_reader_new`), and calls only the `matcher_reader_*`
//! exports, which read the table and write nothing but their `Reader`. A reader may run while the
//! writer changes the table: JS brackets each lookup with a sequence counter and throws away an
//! answer read across a change (router/src/route/table-seqlock.ts); every loop a lookup makes is
//! bounded, and a read beyond memory traps, so a torn read costs a retry, never a hang.

use crate::matcher::{Inserted, Lookup, Matcher};

pub const HOST_CAPACITY: usize = 1024;
pub const PATH_CAPACITY: usize = 8192;
pub const URI_CAPACITY: usize = HOST_CAPACITY + PATH_CAPACITY;

#[repr(C, align(8))]
struct Input([u8; URI_CAPACITY]);

static mut INPUT: Input = Input([0; URI_CAPACITY]);
static mut MATCHER: Option<Matcher> = None;
static mut SEED: u64 = 0x243F_6A88_85A3_08D3;

/// A reader thread's own input buffer and lookup scratch.
#[repr(C, align(8))]
pub struct Reader {
    input: Input,
    lookup: Lookup,
}

fn matcher() -> &'static mut Matcher {
    // SAFETY: wasm32-unknown-unknown runs one thread, and exports are never re-entered.
    unsafe { MATCHER.get_or_insert_with(|| Matcher::new(SEED)) }
}

fn input() -> &'static mut [u8; URI_CAPACITY] {
    // SAFETY: as above; JS only writes the buffer between calls.
    unsafe { &mut INPUT.0 }
}

/// The address of the input buffer in linear memory.
#[no_mangle]
pub extern "C" fn matcher_input() -> *mut u8 {
    input().as_mut_ptr()
}

/// Byte capacities of the input buffer's regions: 0 host, 1 path, 2 uri.
#[no_mangle]
pub extern "C" fn matcher_capacity(region: u32) -> u32 {
    match region {
        0 => HOST_CAPACITY as u32,
        1 => PATH_CAPACITY as u32,
        _ => URI_CAPACITY as u32,
    }
}

/// Seeds the edge hash (call before the first insert; it empties the table). JS passes random bits
/// so that registered keys cannot be chosen to collide.
#[no_mangle]
pub extern "C" fn matcher_seed(low: u32, high: u32) {
    unsafe {
        SEED = (high as u64) << 32 | low as u64;
        MATCHER = Some(Matcher::new(SEED));
    }
}

/// Adds or replaces the route whose raw uri is `INPUT[..len]`; `truncated` is 1 when JS could not
/// fit the whole uri. Returns 0 refused, 1 added, 2 replaced.
#[no_mangle]
pub extern "C" fn matcher_insert(len: u32, truncated: u32, id: i32) -> u32 {
    let uri = &mut input()[..(len as usize).min(URI_CAPACITY)];
    match matcher().insert(uri, truncated == 0, id) {
        Inserted::Refused => 0,
        Inserted::Added => 1,
        Inserted::Replaced => 2,
    }
}

/// Removes the route whose raw uri is `INPUT[..len]`. Returns 1 removed, 0 absent or refused.
#[no_mangle]
pub extern "C" fn matcher_remove(len: u32, truncated: u32) -> u32 {
    let uri = &mut input()[..(len as usize).min(URI_CAPACITY)];
    matcher().remove(uri, truncated == 0) as u32
}

/// The route id for the raw Host `INPUT[..host_len]` and raw target
/// `INPUT[HOST_CAPACITY..HOST_CAPACITY + path_len]`, or -1.
#[no_mangle]
pub extern "C" fn matcher_lookup(host_len: u32, path_len: u32) -> i32 {
    let (host, path) = input().split_at_mut(HOST_CAPACITY);
    let host = &mut host[..(host_len as usize).min(HOST_CAPACITY)];
    let path = &mut path[..(path_len as usize).min(PATH_CAPACITY)];
    matcher().lookup(host, path)
}

/// The first half of a lookup, for the raw Host `INPUT[..host_len]`: the route id, -1, or -2 when
/// the target decides; then JS writes the target and calls `matcher_lookup_path`. Most hosts have
/// no path routes, so most lookups copy and cross once.
#[no_mangle]
pub extern "C" fn matcher_lookup_host(host_len: u32) -> i32 {
    let host = &mut input()[..(host_len as usize).min(HOST_CAPACITY)];
    matcher().lookup_host(host)
}

/// The second half, after `matcher_lookup_host` returned -2, for the raw target
/// `INPUT[HOST_CAPACITY..HOST_CAPACITY + path_len]`.
#[no_mangle]
pub extern "C" fn matcher_lookup_path(path_len: u32) -> i32 {
    let path = &mut input()[HOST_CAPACITY..HOST_CAPACITY + (path_len as usize).min(PATH_CAPACITY)];
    matcher().lookup_path(path)
}

/// Bytes of the target the last successful lookup matched (0 for a route without a path).
#[no_mangle]
pub extern "C" fn matcher_last_match_length() -> u32 {
    matcher().last_match_length()
}

#[no_mangle]
pub extern "C" fn matcher_clear() {
    matcher().clear();
}

#[no_mangle]
pub extern "C" fn matcher_count() -> u32 {
    matcher().len()
}

/// Bytes the table holds (vector capacities), excluding allocator slack and free memory.
#[no_mangle]
pub extern "C" fn matcher_memory_bytes() -> u32 {
    matcher().memory_bytes() as u32
}

/// Pre-sizes the table for `routes` more keys of `key_bytes` bytes in all.
#[no_mangle]
pub extern "C" fn matcher_reserve(routes: u32, key_bytes: u32) {
    matcher().reserve(routes as usize, key_bytes as usize);
}

/// A buffer of `len` bytes for `matcher_insert_many`; free it with `matcher_free`.
#[no_mangle]
pub extern "C" fn matcher_alloc(len: u32) -> *mut u8 {
    let mut buffer = Vec::<u8>::with_capacity(len as usize);
    let ptr = buffer.as_mut_ptr();
    std::mem::forget(buffer);
    ptr
}

#[no_mangle]
pub extern "C" fn matcher_free(ptr: *mut u8, len: u32) {
    // SAFETY: `ptr` and `len` come from `matcher_alloc`.
    unsafe { drop(Vec::from_raw_parts(ptr, 0, len as usize)) }
}

/// Inserts the records `[id: i32 LE][len: u32 LE][uri bytes]` in `ptr[..len]`. Returns how many
/// were accepted (added or replaced); a record cut off at the end stops the load.
#[no_mangle]
pub extern "C" fn matcher_insert_many(ptr: *mut u8, len: u32) -> u32 {
    // SAFETY: JS filled `len` bytes of a buffer from `matcher_alloc`.
    let records = unsafe { std::slice::from_raw_parts_mut(ptr, len as usize) };
    let m = matcher();
    let mut at = 0;
    let mut accepted = 0;
    while at + 8 <= records.len() {
        let id = i32::from_le_bytes([records[at], records[at + 1], records[at + 2], records[at + 3]]);
        let n = u32::from_le_bytes([records[at + 4], records[at + 5], records[at + 6], records[at + 7]]) as usize;
        at += 8;
        if at + n > records.len() {
            break;
        }
        if m.insert(&mut records[at..at + n], true, id) != Inserted::Refused {
            accepted += 1;
        }
        at += n;
    }
    accepted
}

/// A new reader (for a thread that will only look up): its input buffer is at
/// `matcher_reader_input`, laid out as `INPUT`. Called by the writer (the only allocator).
#[no_mangle]
pub extern "C" fn matcher_reader_new() -> *mut Reader {
    matcher(); // the table exists before anyone reads it
    Box::into_raw(Box::new(Reader { input: Input([0; URI_CAPACITY]), lookup: Lookup::new() }))
}

/// The address of a reader's input buffer (8-byte aligned; host at +0, target at +HOST_CAPACITY).
#[no_mangle]
pub extern "C" fn matcher_reader_input(reader: *mut Reader) -> *mut u8 {
    // SAFETY: `reader` comes from `matcher_reader_new` and is used by one thread.
    unsafe { (*reader).input.0.as_mut_ptr() }
}

/// `matcher_lookup_host` for a reader: reads the table, writes only `reader`.
#[no_mangle]
pub extern "C" fn matcher_reader_lookup_host(reader: *mut Reader, host_len: u32) -> i32 {
    // SAFETY: as above; the table is only read (see the module comment for concurrent changes).
    let r = unsafe { &mut *reader };
    match unsafe { MATCHER.as_ref() } {
        Some(m) => m.lookup_host_with(&mut r.lookup, &mut r.input.0[..(host_len as usize).min(HOST_CAPACITY)]),
        None => -1,
    }
}

/// `matcher_lookup_path` for a reader, after its `matcher_reader_lookup_host` returned -2.
#[no_mangle]
pub extern "C" fn matcher_reader_lookup_path(reader: *mut Reader, path_len: u32) -> i32 {
    let r = unsafe { &mut *reader };
    match unsafe { MATCHER.as_ref() } {
        Some(m) => m.lookup_path_with(&mut r.lookup, &mut r.input.0[HOST_CAPACITY..HOST_CAPACITY + (path_len as usize).min(PATH_CAPACITY)]),
        None => -1,
    }
}

/// `matcher_last_match_length` for a reader.
#[no_mangle]
pub extern "C" fn matcher_reader_last_match_length(reader: *mut Reader) -> u32 {
    unsafe { (*reader).lookup.last_match_length() }
}
