//! The checked-in crd.yaml is what the Rust types generate: regenerate it with
//! `cargo run --manifest-path packaging/operator/Cargo.toml -- crd > packaging/operator/crd.yaml`.

use cybs3_operator::crd::crd_yaml;

#[test]
fn checked_in_crd_matches_the_types() {
    let generated = crd_yaml().unwrap();
    let checked_in = include_str!("../crd.yaml");
    assert!(
        generated == checked_in,
        "crd.yaml is stale: regenerate it with `cybs3-operator crd > packaging/operator/crd.yaml`"
    );
}
