//! With the `match-function` feature, compiles `proto/matchFunction.proto` (the AGS Extend
//! match-function interface) into Rust with protox, a protobuf compiler written in Rust, so
//! building needs no `protoc` on the machine. Without the feature there is nothing to build.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "match-function")]
    {
        let proto = "proto/matchFunction.proto";
        println!("cargo:rerun-if-changed={proto}");
        let descriptors = protox::compile([proto], ["proto"])?;
        tonic_prost_build::configure()
            .build_server(true)
            .build_client(true)
            .compile_fds(descriptors)?;
    }
    Ok(())
}
