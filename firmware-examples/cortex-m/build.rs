//! Packs the model (npu-build) and hands the linker cortex-m-rt's script, which includes
//! this crate's `memory.x`.

fn main() {
    if let Err(e) = npu_build::compile() {
        eprintln!("{e}");
        std::process::exit(1);
    }
    match std::env::var("CARGO_MANIFEST_DIR") {
        Ok(dir) => println!("cargo:rustc-link-search={dir}"),
        Err(_) => {
            eprintln!("CARGO_MANIFEST_DIR is not set: run this through cargo");
            std::process::exit(1);
        }
    }
    println!("cargo:rustc-link-arg=-Tlink.x");
    println!("cargo:rerun-if-changed=memory.x");
}
