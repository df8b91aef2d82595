//! Typed programme config and plugin state, from JSON, with errors that say what is wrong.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Attribute, Context, Event, Member, Outcome, PluginError};

/// The error code for a config the plugin cannot read.
pub const INVALID_CONFIG: &str = "invalid-config";
/// The error code for a state blob the plugin cannot read.
pub const INVALID_STATE: &str = "invalid-state";

impl Context {
    /// The merchant's programme config as `T`. An empty config reads as `{}`, so a
    /// `#[serde(default)]` struct gets its defaults. The error names the field and
    /// position that failed, e.g. `invalid programme config: invalid type: string
    /// "x", expected u32 at line 1 column 20`.
    pub fn config<T: DeserializeOwned>(&self) -> Result<T, PluginError> {
        let text = if self.config.trim().is_empty() {
            "{}"
        } else {
            self.config.as_str()
        };
        // Serde reads a JSON array into a struct's fields in order; a config is an
        // object, so anything else is refused before it can be misread.
        if !text.trim_start().starts_with('{') {
            return Err(PluginError::new(
                INVALID_CONFIG,
                "invalid programme config: must be a JSON object",
            ));
        }
        serde_json::from_str(text)
            .map_err(|e| PluginError::new(INVALID_CONFIG, format!("invalid programme config: {e}")))
    }
}

impl Member {
    /// The plugin's state blob as `T` (JSON); an empty blob is `T::default()`.
    pub fn state_as<T: DeserializeOwned + Default>(&self) -> Result<T, PluginError> {
        if self.state.is_empty() {
            return Ok(T::default());
        }
        serde_json::from_slice(&self.state)
            .map_err(|e| PluginError::new(INVALID_STATE, format!("invalid plugin state: {e}")))
    }

    /// A profile attribute by key.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        find(&self.attributes, key)
    }
}

impl Event {
    /// An event attribute by key.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        find(&self.attributes, key)
    }
}

impl Outcome {
    /// Set the new plugin state to `state`, encoded as JSON.
    pub fn with_state<T: Serialize>(mut self, state: &T) -> Self {
        self.state = Some(encode_state(state));
        self
    }
}

/// Encode a state value as the JSON bytes the host stores.
pub fn encode_state<T: Serialize>(state: &T) -> Vec<u8> {
    // Serialising plain data structs to JSON cannot fail; a map with non-string keys
    // is the one way it can, and that is a bug in the plugin worth a loud panic.
    serde_json::to_vec(state).expect("plugin state must serialise to JSON")
}

pub(crate) fn find<'a>(attributes: &'a [Attribute], key: &str) -> Option<&'a str> {
    attributes
        .iter()
        .find(|a| a.key == key)
        .map(|a| a.value.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{context, member};
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Config {
        rate: u32,
        name: String,
    }

    impl Default for Config {
        fn default() -> Self {
            Config {
                rate: 5,
                name: "x".into(),
            }
        }
    }

    #[test]
    fn empty_config_gives_the_defaults() {
        let c: Config = context(0, "").config().unwrap();
        assert_eq!(c, Config::default());
    }

    #[test]
    fn a_wrong_type_is_reported_with_its_position() {
        let err = context(0, r#"{"rate": "ten"}"#)
            .config::<Config>()
            .unwrap_err();
        assert_eq!(err.code, INVALID_CONFIG);
        assert!(err.message.contains("expected u32"), "{}", err.message);
        assert!(err.message.contains("column"), "{}", err.message);
    }

    #[test]
    fn a_config_that_is_not_an_object_is_refused() {
        for text in ["[5, \"x\"]", "5", "\"text\"", "null"] {
            let err = context(0, text).config::<Config>().unwrap_err();
            assert_eq!(err.code, INVALID_CONFIG, "{text}");
        }
    }

    #[test]
    fn an_unknown_field_is_named() {
        let err = context(0, r#"{"rte": 1}"#).config::<Config>().unwrap_err();
        assert!(err.message.contains("`rte`"), "{}", err.message);
    }

    #[test]
    fn state_round_trips_and_defaults_when_empty() {
        #[derive(Debug, Default, Deserialize, Serialize, PartialEq)]
        struct S {
            rides: u32,
        }
        let mut m = member("m");
        assert_eq!(m.state_as::<S>().unwrap(), S::default());
        let out = Outcome::new().with_state(&S { rides: 3 });
        m.state = out.state.unwrap();
        assert_eq!(m.state_as::<S>().unwrap(), S { rides: 3 });
        m.state = b"not json".to_vec();
        assert_eq!(m.state_as::<S>().unwrap_err().code, INVALID_STATE);
    }
}
