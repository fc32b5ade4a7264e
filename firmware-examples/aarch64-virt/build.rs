//! Packs the model (npu-build) and hands the linker its memory map (`link.ld`).

fn main() {
    if let Err(e) = npu_build::compile() {
        eprintln!("{e}");
        std::process::exit(1);
    }
    // The script lives next to Cargo.toml; cargo runs build scripts there.
    match std::env::var("CARGO_MANIFEST_DIR") {
        Ok(dir) => println!("cargo:rustc-link-search={dir}"),
        Err(_) => {
            eprintln!("CARGO_MANIFEST_DIR is not set: run this through cargo");
            std::process::exit(1);
        }
    }
    println!("cargo:rustc-link-arg=-Tlink.ld");
    println!("cargo:rerun-if-changed=link.ld");
}
