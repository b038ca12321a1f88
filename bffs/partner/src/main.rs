//! `partner-bff`: the REST BFF for partner integrations, as a standalone process.

fn main() -> std::process::ExitCode {
    switchyard_core::bff::main::<partner_bff::PartnerBff>()
}
