//! Compiles `proto/` with protox (pure Rust, so no system `protoc` is needed)
//! and writes the descriptor set that gRPC server reflection serves, so that
//! grpcurl works without a .proto file at hand.
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/authd/v1/authd.proto";
    println!("cargo:rerun-if-changed=proto");

    let mut compiler = protox::Compiler::new(["proto"])?;
    // Source info carries the .proto comments into reflection, so
    // `grpcurl describe` shows the documentation.
    compiler.include_source_info(true).include_imports(true);
    compiler.open_file(proto)?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("authd_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;

    tonic_prost_build::configure()
        // A handful of headers per Check: a BTreeMap decodes them without
        // hashing (std's SipHash) or a table to grow.
        .btree_map(".authd.v1.CheckRequest.headers")
        .build_client(true)
        .build_server(true)
        .compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}
