//! `mobile-bff`: the REST BFF for mobile apps, as a standalone process.

fn main() -> std::process::ExitCode {
    switchyard_core::bff::main::<mobile_bff::MobileBff>()
}
