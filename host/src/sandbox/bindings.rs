//! Host-side bindings generated from the one contract file, `sdk/wit/program.wit`.
#![allow(unsafe_code, missing_docs, clippy::all)]

wasmtime::component::bindgen!({
    path: "../sdk/wit",
    world: "program",
    additional_derives: [PartialEq],
});
