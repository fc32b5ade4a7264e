//! A failed `embed = "file"` declaration is one error: the struct still has `load()` and the
//! other file-mode items, so the code that uses them adds none.
use npu_model_macro::npu_model;

#[npu_model(path = "models/absent.gguf", target = "cpu", quant = "int8", embed = "file")]
struct OnDisk;

fn main() {
    let m = OnDisk::load().map_err(|e| e.to_string()).unwrap();
    println!("{} {}", m.config.n_layers, OnDisk::BLOB_FILE);
    let _ = OnDisk::load_from(OnDisk::blob_path().unwrap());
    let _ = OnDisk::verify_from("x");
}
