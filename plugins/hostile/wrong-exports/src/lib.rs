//! Hostile test plugin: claims the contract's `hooks` interface but exports only a
//! mistyped `describe` (returning a string) and none of the other hooks. The host's
//! upload validation must name the missing and mistyped exports.

#[allow(unsafe_code, missing_docs)]
mod bindings {
    wit_bindgen::generate!({
        inline: r#"
            package loyalty:program@1.0.0;

            interface hooks {
                describe: func() -> string;
            }

            world program {
                export hooks;
            }
        "#,
        world: "program",
    });

    /// The impostor.
    pub struct WrongExports;

    impl exports::loyalty::program::hooks::Guest for WrongExports {
        fn describe() -> String {
            "not a program-info".to_string()
        }
    }

    #[cfg(target_arch = "wasm32")]
    export!(WrongExports with_types_in self);
}

pub use bindings::WrongExports;
