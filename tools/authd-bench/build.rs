//! Compiles the echo service, the benchmark's ceiling, with protox (pure
//! Rust, no system protoc).
fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let mut echo = protox::Compiler::new(["proto"])?;
    echo.open_file("proto/authd/bench/v1/echo.proto")?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(echo.file_descriptor_set())?;
    Ok(())
}
