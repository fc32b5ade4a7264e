//! Buffers: `rknn_create_mem*` (lazily backed mappings, or the caller's), `rknn_destroy_mem`,
//! `rknn_mem_sync`, and `rknn_matmul_set_io_mem` binding a buffer to a context's A, B or C.
//! Each buffer counts against its context's IOMMU domain, rounded up to pages.

use crate::state::{log, state, MemRec, State, DOMAIN_BYTES};
use npu_runtime::rknpu::ffi::*;
use std::ffi::{c_int, c_void};

/// A `TensorMem` for `data`, recorded in the state: the next fake fd, and as physical address
/// the domain in the high 32 bits over the buffer's offset in it (`accounted` already counted).
fn new_mem(
    s: &mut State,
    domain: usize,
    data: *mut u8,
    size: u32,
    mapped: usize,
    accounted: u64,
    flags: u32,
) -> *mut TensorMem {
    let fd = s.next_fd;
    s.next_fd += 1;
    let mem = Box::into_raw(Box::new(TensorMem {
        virt_addr: data.cast(),
        phys_addr: ((domain as u64) << 32) | (s.domain_used[domain] - accounted),
        fd,
        offset: 0,
        size,
        flags,
        priv_data: std::ptr::null_mut(),
    }));
    s.mems.insert(mem as usize, MemRec { data, size, domain, accounted, mapped });
    mem
}

/// `rknn_create_mem*`: an anonymous mapping of `size` rounded up to pages, counted against the
/// context's domain.
fn alloc(ctx: RknnMatmulCtx, size: u64) -> *mut TensorMem {
    let mut g = state();
    let s = g.as_mut().expect("initialised by state()");
    let Some(c) = s.ctxs.get(&ctx) else {
        log("rknn_create_mem: invalid context");
        return std::ptr::null_mut();
    };
    let domain = c.domain;
    if size == 0 || size > u32::MAX as u64 {
        log(&format!("rknn_create_mem: invalid size {size}"));
        return std::ptr::null_mut();
    }
    let pages = size.div_ceil(4096) * 4096;
    if s.domain_used[domain] + pages > DOMAIN_BYTES {
        log(&format!(
            "rknn_create_mem: iommu domain {domain} is full ({} of {} bytes used, {pages} asked)",
            s.domain_used[domain], DOMAIN_BYTES
        ));
        return std::ptr::null_mut();
    }
    // SAFETY: an anonymous private mapping; pages are backed only when touched.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            pages as usize,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        log("rknn_create_mem: out of memory");
        return std::ptr::null_mut();
    }
    s.domain_used[domain] += pages;
    new_mem(s, domain, p.cast(), size as u32, pages as usize, pages, mem_flags::ALLOC_INSIDE)
}

/// `rknn_create_mem`.
#[no_mangle]
pub extern "C" fn rknn_create_mem(ctx: RknnMatmulCtx, size: u32) -> *mut TensorMem {
    alloc(ctx, size as u64)
}

/// `rknn_create_mem2` (2.x).
#[no_mangle]
pub extern "C" fn rknn_create_mem2(ctx: RknnMatmulCtx, size: u64, _flags: u64) -> *mut TensorMem {
    alloc(ctx, size)
}

/// `rknn_create_mem_from_fd`: the caller's mapping `virt` is used from `offset` on (the fd
/// itself is only recorded; what the real library does with `virt` vs `offset` is not
/// documented).
#[no_mangle]
pub extern "C" fn rknn_create_mem_from_fd(
    ctx: RknnMatmulCtx,
    fd: i32,
    virt: *mut c_void,
    size: u32,
    offset: i32,
) -> *mut TensorMem {
    let mut g = state();
    let s = g.as_mut().expect("initialised by state()");
    let Some(c) = s.ctxs.get(&ctx) else {
        log("rknn_create_mem_from_fd: invalid context");
        return std::ptr::null_mut();
    };
    let domain = c.domain;
    if fd < 0 || virt.is_null() || size == 0 || offset < 0 {
        log("rknn_create_mem_from_fd: invalid fd, address, size or offset");
        return std::ptr::null_mut();
    }
    let pages = (size as u64).div_ceil(4096) * 4096;
    if s.domain_used[domain] + pages > DOMAIN_BYTES {
        log(&format!("rknn_create_mem_from_fd: iommu domain {domain} is full"));
        return std::ptr::null_mut();
    }
    s.domain_used[domain] += pages;
    let data = virt.cast::<u8>().wrapping_add(offset as usize);
    let mem = new_mem(s, domain, data, size, 0, pages, mem_flags::FROM_FD);
    // SAFETY: just created.
    unsafe {
        (*mem).fd = fd;
        (*mem).offset = offset;
        (*mem).virt_addr = virt;
    }
    mem
}

/// `rknn_create_mem_from_phys`: physical memory cannot be simulated; always NULL.
#[no_mangle]
pub extern "C" fn rknn_create_mem_from_phys(
    _ctx: RknnMatmulCtx,
    _phys: u64,
    _virt: *mut c_void,
    _size: u32,
) -> *mut TensorMem {
    log("rknn-sim: rknn_create_mem_from_phys is not simulated");
    std::ptr::null_mut()
}

/// `rknn_destroy_mem`.
///
/// # Safety
/// `mem` from this library's allocators, not yet destroyed (unknown pointers are rejected).
#[no_mangle]
pub unsafe extern "C" fn rknn_destroy_mem(_ctx: RknnMatmulCtx, mem: *mut TensorMem) -> c_int {
    let mut g = state();
    let s = g.as_mut().expect("initialised by state()");
    let Some(rec) = s.mems.remove(&(mem as usize)) else {
        log("rknn_destroy_mem: unknown buffer");
        return ret::PARAM_INVALID;
    };
    s.domain_used[rec.domain] -= rec.accounted;
    for c in s.ctxs.values_mut() {
        for b in &mut c.bound {
            if *b == Some(mem as usize) {
                *b = None;
            }
        }
    }
    if rec.mapped > 0 {
        // SAFETY: our own mapping of that length.
        unsafe { libc::munmap(rec.data.cast(), rec.mapped) };
    }
    // SAFETY: created by Box::into_raw in `new_mem`, removed from the table once.
    drop(unsafe { Box::from_raw(mem) });
    ret::SUCC
}

/// `rknn_mem_sync` (2.x): counted; the stand-in's memory is coherent.
#[no_mangle]
pub extern "C" fn rknn_mem_sync(ctx: RknnMatmulCtx, mem: *mut TensorMem, mode: c_int) -> c_int {
    let mut g = state();
    let s = g.as_mut().expect("initialised by state()");
    if !s.ctxs.contains_key(&ctx)
        || !s.mems.contains_key(&(mem as usize))
        || !(1..=3).contains(&mode)
    {
        log("rknn_mem_sync: invalid context, buffer or mode");
        return ret::PARAM_INVALID;
    }
    s.syncs += 1;
    ret::SUCC
}

/// `rknn_matmul_set_io_mem`.
///
/// # Safety
/// `attr` points at a `rknn_matmul_tensor_attr` (or is null).
#[no_mangle]
pub unsafe extern "C" fn rknn_matmul_set_io_mem(
    ctx: RknnMatmulCtx,
    mem: *mut TensorMem,
    attr: *mut MatmulTensorAttr,
) -> c_int {
    if attr.is_null() {
        log("rknn_matmul_set_io_mem: null tensor attr");
        return ret::PARAM_INVALID;
    }
    // SAFETY: checked non-null.
    let attr = unsafe { &*attr };
    let mut g = state();
    let s = g.as_mut().expect("initialised by state()");
    let Some(rec) = s.mems.get(&(mem as usize)) else {
        log("rknn_matmul_set_io_mem: unknown buffer");
        return ret::PARAM_INVALID;
    };
    let (size, mdom) = (rec.size, rec.domain);
    let Some(c) = s.ctxs.get_mut(&ctx) else {
        log("rknn_matmul_set_io_mem: invalid context");
        return ret::CTX_INVALID;
    };
    let name: Vec<u8> = name_bytes(&attr.name).collect();
    let which = [&c.io.a, &c.io.b, &c.io.c]
        .iter()
        .position(|t| name_bytes(&t.name).eq(name.iter().copied()));
    let Some(which) = which else {
        log("rknn_matmul_set_io_mem: tensor attr is not A, B or C of this context");
        return ret::PARAM_INVALID;
    };
    let want = [c.io.a.size, c.io.b.size, c.io.c.size][which];
    if mdom != c.domain {
        log(&format!(
            "rknn_matmul_set_io_mem: buffer in iommu domain {mdom}, context in {}",
            c.domain
        ));
        return ret::PARAM_INVALID;
    }
    if size < want {
        log(&format!(
            "rknn_matmul_set_io_mem: {} mem size {size} is less than tensor size {want}",
            ["A", "B", "C"][which]
        ));
        return ret::PARAM_INVALID;
    }
    c.bound[which] = Some(mem as usize);
    ret::SUCC
}
