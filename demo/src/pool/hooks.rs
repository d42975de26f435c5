//! The pool's lifecycle hooks: exported no-ops the node probe attaches uprobes to, so it can
//! follow every object from allocation to release (and see it used after).
//!
//! Each takes the object id first, as `wbpf_pool_access` does, which is the convention the
//! probe's `pool_objects` detector reads. On x86-64 each starts with the 5-byte nop that makes
//! a uprobe cheap ([`crate::probe_site`]). The bodies differ so that no two hooks can ever be
//! folded into one address (a uprobe on one would then fire for both).

/// Called once an object is allocated, with its new id.
#[cfg(target_arch = "x86_64")]
#[no_mangle]
#[unsafe(naked)]
pub extern "C" fn wbpf_pool_alloc(object_id: u64) {
    core::arch::naked_asm!(crate::probe_site!(), "ret")
}

/// Called on every release, before the pool checks the id: a release of a stale id (a double
/// release) is seen too.
#[cfg(target_arch = "x86_64")]
#[no_mangle]
#[unsafe(naked)]
pub extern "C" fn wbpf_pool_release(object_id: u64) {
    core::arch::naked_asm!(crate::probe_site!(), "nop", "ret")
}

#[cfg(not(target_arch = "x86_64"))]
#[no_mangle]
#[inline(never)]
pub extern "C" fn wbpf_pool_alloc(object_id: u64) {
    std::hint::black_box((object_id, 1u8));
}

#[cfg(not(target_arch = "x86_64"))]
#[no_mangle]
#[inline(never)]
pub extern "C" fn wbpf_pool_release(object_id: u64) {
    std::hint::black_box((object_id, 2u16));
}
