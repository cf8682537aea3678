// Compiles proto/ with protox (pure Rust), so building needs no system protoc.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../proto");
    let files = ["image_builder.proto", "lifecycle.proto", "supervisor.proto"];
    for f in files {
        println!("cargo:rerun-if-changed={proto_dir}/{f}");
    }
    let descriptors = protox::compile(files, [proto_dir])?;
    tonic_prost_build::configure().compile_fds(descriptors)?;
    Ok(())
}
