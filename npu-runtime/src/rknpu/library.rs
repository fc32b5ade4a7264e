//! librknnrt, loaded at run time with `dlopen` (libloading): no link-time dependency, so the
//! same binary starts on machines without the library and says what is missing.

use super::ffi::{self, *};
use super::RknpuError;
use std::path::PathBuf;

/// Environment variable naming the library file to load instead of `librknnrt.so`.
pub const LIB_ENV: &str = "NPU_RKNN_LIB";
/// The file name looked up on the loader path when [`LIB_ENV`] is unset.
pub const LIB_NAME: &str = "librknnrt.so";

/// The matmul entry points of a loaded librknnrt. The required set is what 1.5.x exports;
/// the 2.x additions are probed and may be absent.
pub struct Rknn {
    /// Where it was loaded from (the env value or the bare name).
    pub origin: String,
    pub(crate) create: FnCreate,
    pub(crate) set_io_mem: FnSetIoMem,
    pub(crate) set_core_mask: FnSetCoreMask,
    pub(crate) run: FnCtx,
    pub(crate) destroy: FnCtx,
    pub(crate) create_mem: FnCreateMem,
    pub(crate) destroy_mem: FnDestroyMem,
    /// Present in every library with the matmul API; not used by the backend (B is copied).
    pub create_mem_from_fd: Option<FnCreateMemFromFd>,
    /// 2.x: cache maintenance of cacheable buffers.
    pub(crate) mem_sync: Option<FnMemSync>,
    /// 2.x: allocation with flags.
    pub create_mem2: Option<FnCreateMem2>,
    // Keeps the code mapped as long as the function pointers above live.
    _lib: libloading::Library,
}

impl std::fmt::Debug for Rknn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rknn")
            .field("origin", &self.origin)
            .field("mem_sync", &self.mem_sync.is_some())
            .field("create_mem2", &self.create_mem2.is_some())
            .finish()
    }
}

impl Rknn {
    /// Loads `$NPU_RKNN_LIB` if set, else `librknnrt.so` through the dynamic loader's search
    /// path (`LD_LIBRARY_PATH`, `/etc/ld.so.cache`, `/lib`, `/usr/lib`).
    pub fn load() -> Result<Rknn, RknpuError> {
        match std::env::var_os(LIB_ENV) {
            Some(p) if !p.is_empty() => Rknn::load_from(PathBuf::from(p), true),
            _ => Rknn::load_from(PathBuf::from(LIB_NAME), false),
        }
    }

    /// Loads a given file (a bare name goes through the loader's search path).
    pub fn load_from(path: PathBuf, from_env: bool) -> Result<Rknn, RknpuError> {
        let origin = path.display().to_string();
        let where_ = if from_env {
            format!("{origin} (from {LIB_ENV})")
        } else {
            format!(
                "{LIB_NAME} on the loader path (LD_LIBRARY_PATH, /etc/ld.so.cache, /usr/lib); set {LIB_ENV} to the library file to use another one"
            )
        };
        // SAFETY: loading runs the library's initialisers; librknnrt (and the stand-in) have
        // no initialisers with preconditions on the caller.
        let lib = unsafe { libloading::Library::new(&path) }.map_err(|e| {
            RknpuError::LibraryNotFound { looked: where_.clone(), reason: e.to_string() }
        })?;
        fn req<T: Copy>(
            lib: &libloading::Library,
            name: &str,
            origin: &str,
        ) -> Result<T, RknpuError> {
            // SAFETY: `T` is the function type the brief's §9 prototype gives for `name`.
            unsafe { lib.get::<T>(name.as_bytes()) }.map(|s| *s).map_err(|_| {
                RknpuError::MissingSymbol { library: origin.to_owned(), symbol: name.to_owned() }
            })
        }
        fn opt<T: Copy>(lib: &libloading::Library, name: &str) -> Option<T> {
            // SAFETY: as in `req`.
            unsafe { lib.get::<T>(name.as_bytes()) }.ok().map(|s| *s)
        }
        Ok(Rknn {
            create: req(&lib, "rknn_matmul_create", &origin)?,
            set_io_mem: req(&lib, "rknn_matmul_set_io_mem", &origin)?,
            set_core_mask: req(&lib, "rknn_matmul_set_core_mask", &origin)?,
            run: req(&lib, "rknn_matmul_run", &origin)?,
            destroy: req(&lib, "rknn_matmul_destroy", &origin)?,
            create_mem: req(&lib, "rknn_create_mem", &origin)?,
            destroy_mem: req(&lib, "rknn_destroy_mem", &origin)?,
            create_mem_from_fd: opt(&lib, "rknn_create_mem_from_fd"),
            mem_sync: opt(&lib, "rknn_mem_sync"),
            create_mem2: opt(&lib, "rknn_create_mem2"),
            origin,
            _lib: lib,
        })
    }

    /// Creates a matmul context; returns it with the io attributes the library filled in.
    pub fn matmul_create(
        &self,
        info: &MatmulInfo,
    ) -> Result<(RknnMatmulCtx, Box<MatmulIoAttr>), i32> {
        let mut ctx: RknnMatmulCtx = 0;
        let mut info = *info;
        let mut io = Box::new(MatmulIoAttr::ZERO);
        // SAFETY: valid pointers to initialised structs of the ABI's sizes.
        let r = unsafe { (self.create)(&mut ctx, &mut info, &mut *io) };
        if r < 0 {
            Err(r)
        } else {
            Ok((ctx, io))
        }
    }

    /// Device probe: a 32×32×32 fp16 context created and destroyed. The library returns
    /// `RKNN_ERR_DEVICE_UNAVAILABLE` (or fails) when no NPU device node is usable.
    pub fn probe(&self) -> Result<(), RknpuError> {
        let info = MatmulInfo {
            m: 1,
            k: 32,
            n: 32,
            type_: 1,
            b_layout: ffi::layout::NATIVE,
            ..MatmulInfo::ZERO
        };
        match self.matmul_create(&info) {
            Ok((ctx, _)) => {
                // SAFETY: a context the library just created.
                unsafe { (self.destroy)(ctx) };
                Ok(())
            }
            Err(code) => Err(RknpuError::Call {
                call: "rknn_matmul_create",
                code,
                tensor: "(device probe, fp16 1x32x32)".into(),
                hint: hint(code),
            }),
        }
    }
}

/// What a return code usually means for this backend's calls.
pub(crate) fn hint(code: i32) -> &'static str {
    match code {
        ffi::ret::DEVICE_UNAVAILABLE => {
            "no usable NPU device: check /dev/rknpu or the rknpu DRM node and its permissions (`npu doctor`)"
        }
        ffi::ret::MALLOC_FAIL => "out of NPU memory",
        ffi::ret::PARAM_INVALID => {
            "parameters rejected: unsupported matmul type for this chip or library version, or a K/N limit (see the library's E RKNN line above)"
        }
        _ => "see the library's E RKNN line above",
    }
}
