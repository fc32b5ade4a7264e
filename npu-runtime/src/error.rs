//! The runtime's error values. Nothing in this crate panics on bad input: every failure is one
//! of these.

use crate::format::Scheme;
use crate::target::{Target, TargetId};
use core::fmt;

/// Why a runtime operation could not run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The target has no pipeline that runs this scheme.
    UnsupportedScheme {
        /// The chip profile asked for.
        target: TargetId,
        /// The scheme asked for.
        scheme: Scheme,
    },
    /// A descriptor does not describe bytes that exist in the blob, or its fields disagree
    /// with each other (a corrupt or mismatched table).
    BadDescriptor(&'static str),
    /// The operation needs a different kind of tensor (e.g. a matmul on a norm vector).
    WrongKind,
    /// A slice handed in has the wrong length.
    Length {
        /// Which argument.
        what: &'static str,
        /// Length required.
        need: usize,
        /// Length given.
        got: usize,
    },
    /// An integer accumulator left its range (int16 for the int4 pipeline). The packer's
    /// K segmenting makes this impossible for weights it produced; seeing it means the
    /// descriptor was built by hand with too long a K segment.
    AccumulatorOverflow {
        /// K segment in which the overflow happened.
        k_seg: u32,
    },
    /// The backend cannot run here (an instruction set this CPU lacks, a worker thread that
    /// failed).
    Backend(&'static str),
    /// An NPU library call failed (the backend keeps the full description, with the tensor).
    Npu {
        /// The library function.
        call: &'static str,
        /// Its return code.
        code: i32,
    },
    /// A token or row index is outside the tensor.
    RowOutOfRange {
        /// Row asked for.
        row: u32,
        /// Rows the tensor has.
        rows: u32,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::UnsupportedScheme { target, scheme } => {
                let t = Target::get(target);
                write!(
                    f,
                    "target `{}` cannot run quant `{}`; it supports: ",
                    t.name,
                    scheme.name()
                )?;
                let mut first = true;
                for s in Scheme::ALL {
                    if t.scheme_spec(s).is_ok() {
                        if !first {
                            f.write_str(", ")?;
                        }
                        first = false;
                        f.write_str(s.name())?;
                    }
                }
                Ok(())
            }
            Error::BadDescriptor(why) => write!(f, "bad tensor descriptor: {why}"),
            Error::WrongKind => f.write_str("operation does not apply to this kind of tensor"),
            Error::Length { what, need, got } => {
                write!(f, "`{what}` has length {got}, needs {need}")
            }
            Error::AccumulatorOverflow { k_seg } => {
                write!(f, "integer accumulator overflow in K segment {k_seg}")
            }
            Error::Backend(why) => write!(f, "backend: {why}"),
            Error::Npu { call, code } => write!(f, "NPU call {call} returned {code}"),
            Error::RowOutOfRange { row, rows } => write!(f, "row {row} out of range (0..{rows})"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}
