//! The runtime's error values. Nothing in this crate panics on bad input: every failure is one
//! of these.

use core::fmt;

/// The names of the schemes a target runs, carried by [`Error::UnsupportedScheme`] so the
/// message lists them without this module reading the target table: a bit mask over a static
/// list of names (bit `i` set = `names[i]` supported), small enough to keep [`Error`] small.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchemeNames {
    names: &'static [&'static str],
    mask: u32,
}

impl SchemeNames {
    /// The names of `names` whose bit is set in `mask` (bits past 31 cannot be set).
    pub const fn new(names: &'static [&'static str], mask: u32) -> SchemeNames {
        SchemeNames { names, mask }
    }

    /// The supported names, in list order.
    pub fn iter(&self) -> impl Iterator<Item = &'static str> + '_ {
        let mask = self.mask;
        self.names
            .iter()
            .enumerate()
            .filter(move |&(i, _)| i < 32 && mask >> i & 1 == 1)
            .map(|(_, n)| *n)
    }
}

/// Why a runtime operation could not run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The target has no pipeline that runs this scheme.
    UnsupportedScheme {
        /// Name of the chip profile asked for.
        target: &'static str,
        /// Name of the scheme asked for.
        scheme: &'static str,
        /// The schemes the target does run.
        supported: SchemeNames,
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
            Error::UnsupportedScheme { target, scheme, supported } => {
                write!(f, "target `{target}` cannot run quant `{scheme}`; it supports: ")?;
                for (i, s) in supported.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    f.write_str(s)?;
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
