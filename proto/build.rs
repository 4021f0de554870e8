//! Generates the protobuf and tonic bindings into OUT_DIR with the vendored protoc (no system
//! protoc needed).
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/rampart/sensor/v1/sensor.proto",
        "proto/rampart/sensor/v1/admission.proto",
        "proto/rampart/collector/v1/collector.proto",
    ];
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure().compile_with_config(config, &protos, &["proto"])?;
    Ok(())
}
