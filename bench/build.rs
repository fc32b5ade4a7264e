fn main() {
    npu_build::compile().unwrap();
}
