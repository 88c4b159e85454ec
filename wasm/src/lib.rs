//! skiff's route matcher, compiled to wasm32 and called by the router through `ffi`.
//! `trie` (with `edges` and `hash`) is the generic data structure; `key` and `matcher` hold
//! gorouter's routing rules; `ffi` is the thin numbers-only boundary to JavaScript.

mod edges;
mod hash;
pub mod key;
pub mod matcher;
pub mod trie;

#[cfg(target_arch = "wasm32")]
mod ffi;
