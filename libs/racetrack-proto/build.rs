// Compiles proto/ with protox (pure Rust), so building needs no system protoc.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read at run time, not baked in with `env!`: cargo reuses a compiled build script across
    // checkouts of the workspace (its hash does not include the path), which then compiled the
    // other checkout's proto/.
    let proto_dir = format!("{}/../../proto", std::env::var("CARGO_MANIFEST_DIR")?);
    let files = [
        "dashboard.proto",
        "image_builder.proto",
        "lifecycle.proto",
        "supervisor.proto",
    ];
    for f in files {
        println!("cargo:rerun-if-changed={proto_dir}/{f}");
    }
    let descriptors = protox::compile(files, [proto_dir.as_str()])?;
    tonic_prost_build::configure().compile_fds(descriptors)?;
    Ok(())
}
