//! `iot-bff`: the CBOR BFF for warehouse devices, as a standalone process.

fn main() -> std::process::ExitCode {
    switchyard_core::bff::main::<iot_bff::IotBff>()
}
