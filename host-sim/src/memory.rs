//! Bounds-checked access to guest memory. A bad pointer becomes
//! `Status::InvalidMemoryAccess`; it never reaches outside the guest's linear memory.

use wasmtime::Caller;

use crate::state::HostState;
use crate::types::Status;

pub(crate) type Cx<'a, 'b> = &'a mut Caller<'b, HostState>;

fn range(ptr: i32, len: i32) -> Option<std::ops::Range<usize>> {
    let start = ptr as u32 as usize;
    Some(start..start.checked_add(len as u32 as usize)?)
}

/// Whether `len` bytes at `ptr` lie inside guest memory: checked before the host builds
/// anything of that length (a guest may ask for 4 GiB).
pub(crate) fn in_bounds(c: Cx<'_, '_>, ptr: i32, len: i32) -> bool {
    let (Some(mem), Some(r)) = (c.data().memory, range(ptr, len)) else {
        return false;
    };
    r.end <= mem.data_size(&*c)
}

/// Copies `len` bytes at `ptr` out of guest memory.
pub(crate) fn read(c: Cx<'_, '_>, ptr: i32, len: i32) -> Result<Vec<u8>, Status> {
    let mem = c.data().memory.ok_or(Status::InvalidMemoryAccess)?;
    let r = range(ptr, len).ok_or(Status::InvalidMemoryAccess)?;
    mem.data(&*c)
        .get(r)
        .map(<[u8]>::to_vec)
        .ok_or(Status::InvalidMemoryAccess)
}

/// Writes `bytes` at `ptr`.
pub(crate) fn write(c: Cx<'_, '_>, ptr: i32, bytes: &[u8]) -> Result<(), Status> {
    let mem = c.data().memory.ok_or(Status::InvalidMemoryAccess)?;
    let r = range(ptr, bytes.len() as i32).ok_or(Status::InvalidMemoryAccess)?;
    let dst = mem
        .data_mut(&mut *c)
        .get_mut(r)
        .ok_or(Status::InvalidMemoryAccess)?;
    dst.copy_from_slice(bytes);
    Ok(())
}

pub(crate) fn write_u32(c: Cx<'_, '_>, ptr: i32, v: u32) -> Result<(), Status> {
    write(c, ptr, &v.to_le_bytes())
}

pub(crate) fn write_u64(c: Cx<'_, '_>, ptr: i32, v: u64) -> Result<(), Status> {
    write(c, ptr, &v.to_le_bytes())
}

/// Allocates `bytes.len()` bytes with the guest's allocator and copies `bytes` there.
/// The outer error is a trap inside the allocator; the inner one a failed allocation.
pub(crate) fn alloc_copy(c: Cx<'_, '_>, bytes: &[u8]) -> wasmtime::Result<Result<u32, Status>> {
    let Some(malloc) = c.data().malloc.clone() else {
        return Ok(Err(Status::InvalidMemoryAccess));
    };
    let Ok(size) = i32::try_from(bytes.len()) else {
        return Ok(Err(Status::InvalidMemoryAccess));
    };
    let ptr = malloc.call(&mut *c, size)?;
    if ptr == 0 {
        return Ok(Err(Status::InvalidMemoryAccess));
    }
    Ok(write(c, ptr, bytes).map(|()| ptr as u32))
}

/// proxy-wasm's "return a buffer" convention: allocate in the guest, then store the pointer
/// and size at `ptr_ptr` / `size_ptr`. Empty data stores a null pointer and size 0.
pub(crate) fn return_bytes(
    c: Cx<'_, '_>,
    bytes: &[u8],
    ptr_ptr: i32,
    size_ptr: i32,
) -> wasmtime::Result<Status> {
    let ptr = if bytes.is_empty() {
        0
    } else {
        match alloc_copy(c, bytes)? {
            Ok(p) => p,
            Err(s) => return Ok(s),
        }
    };
    if let Err(s) = write_u32(c, ptr_ptr, ptr) {
        return Ok(s);
    }
    if let Err(s) = write_u32(c, size_ptr, bytes.len() as u32) {
        return Ok(s);
    }
    Ok(Status::Ok)
}
