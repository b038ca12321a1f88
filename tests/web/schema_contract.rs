//! `schema/web.graphql` is generated from the code; any drift fails here.

#[test]
fn the_checked_in_schema_matches_the_code() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema/web.graphql");
    let generated = web_bff::sdl();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &generated).expect("schema/web.graphql is writable");
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "schema/web.graphql differs from the schema the code builds.\n\
         If the change is intended, regenerate it with:\n  \
         cargo run -p web-bff -- --print-schema > schema/web.graphql"
    );
}
