// Finds the #[npu_model] declarations in src/, packs each model (cached by content hash) and
// writes the blob and the code the attribute expands to. Mistakes in a declaration surface as
// compile errors at the attribute; an error here means this is not a build script or OUT_DIR
// is not writable.
fn main() {
    if let Err(e) = npu_build::compile() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
