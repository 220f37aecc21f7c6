//! What an input spec says about each input, and how a run's values are checked
//! against it: by the daemon for every run, and by clients before they send one.

use serde_json::Value;

use crate::env::RESERVED_PREFIX as RESERVED_ENV_PREFIX;
use crate::{InputSpec, InputValues};

/// What is stored instead of a secret input's value.
pub const SECRET_MASK: &str = "********";

/// One input's field object, e.g. `{"description": "Who to greet", "default": "world"}`.
/// All fields are optional (old specs are `{}`); unknown ones are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InputField {
    pub description: Option<String>,
    pub default: Option<String>,
    pub required: bool,
    /// The only values allowed.
    pub choices: Option<Vec<String>>,
    /// Passed to the job, never stored: `input.json` holds `SECRET_MASK` instead.
    pub secret: bool,
}

impl InputField {
    pub fn parse(name: &str, field: &Value) -> Result<Self, String> {
        let Value::Object(object) = field else {
            return Err(format!("input {name} must be an object, like {{}}"));
        };
        let text = |key: &str| match object.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(_) => Err(format!("{key} of input {name} must be a string")),
        };
        let flag = |key: &str| match object.get(key) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(flag)) => Ok(*flag),
            Some(_) => Err(format!("{key} of input {name} must be true or false")),
        };
        let choices = match object.get("choices") {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .map(|item| item.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .filter(|choices| !choices.is_empty())
                    .ok_or_else(|| format!("choices of input {name} must be a list of strings"))?,
            ),
            Some(_) => return Err(format!("choices of input {name} must be a list of strings")),
        };
        let parsed = Self {
            description: text("description")?,
            default: text("default")?,
            required: flag("required")?,
            choices,
            secret: flag("secret")?,
        };
        if let (Some(default), Some(choices)) = (&parsed.default, &parsed.choices)
            && !choices.contains(default)
        {
            return Err(format!(
                "the default of input {name} is not one of its choices"
            ));
        }
        Ok(parsed)
    }
}

/// Every input of a spec, in the spec's order; fails on the first malformed one.
pub fn fields(spec: &InputSpec) -> Result<Vec<(&str, InputField)>, String> {
    spec.iter()
        .map(|(name, field)| {
            if name.is_empty() || name.contains(['=', '\0']) {
                return Err(format!(
                    "input name {name:?} cannot be an environment variable"
                ));
            }
            if name.starts_with(RESERVED_ENV_PREFIX) {
                return Err(format!(
                    "input {name} may not set a {RESERVED_ENV_PREFIX}* variable"
                ));
            }
            Ok((name.as_str(), InputField::parse(name, field)?))
        })
        .collect()
}

/// The values a run gets: those given for inputs of the spec (others are dropped, as
/// the old tool did), defaults for the rest. Fails on a missing required input or a
/// value that is not one of its choices.
pub fn resolve(spec: &InputSpec, given: &InputValues) -> Result<InputValues, String> {
    let mut values = InputValues::new();
    for (name, field) in fields(spec)? {
        let value = given
            .get(name)
            .filter(|v| !v.is_empty())
            .or(field.default.as_ref());
        let Some(value) = value else {
            if field.required {
                return Err(format!("missing required input {name}"));
            }
            continue;
        };
        if let Some(choices) = &field.choices
            && !choices.contains(value)
        {
            return Err(format!(
                "input {name} must be one of: {}",
                choices.join(", ")
            ));
        }
        if value.contains('\0') {
            return Err(format!("input {name} contains a NUL byte"));
        }
        values.insert(name.to_owned(), value.clone());
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> InputSpec {
        serde_json::from_str(json).unwrap()
    }

    fn values(pairs: &[(&str, &str)]) -> InputValues {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn old_specs_keep_working() {
        let old = spec(r#"{"NAME": {}, "CITY": {}}"#);
        let resolved = resolve(&old, &values(&[("CITY", "Paris"), ("OTHER", "dropped")])).unwrap();
        assert_eq!(resolved, values(&[("CITY", "Paris")]));
    }

    #[test]
    fn defaults_required_and_choices() {
        let rich = spec(
            r#"{"NAME": {"required": true, "description": "Who"},
                "GREETING": {"default": "Hello", "x-ui": 1},
                "LEVEL": {"choices": ["low", "high"], "default": "low"},
                "TOKEN": {"secret": true}}"#,
        );
        let fields = fields(&rich).unwrap();
        assert!(fields[0].1.required && fields[3].1.secret);
        assert_eq!(
            resolve(&rich, &values(&[("NAME", "Ada")])).unwrap(),
            values(&[("NAME", "Ada"), ("GREETING", "Hello"), ("LEVEL", "low")])
        );
        assert_eq!(
            resolve(&rich, &values(&[])).unwrap_err(),
            "missing required input NAME"
        );
        assert_eq!(
            resolve(&rich, &values(&[("NAME", "Ada"), ("LEVEL", "max")])).unwrap_err(),
            "input LEVEL must be one of: low, high"
        );
    }

    #[test]
    fn malformed_specs() {
        for (json, error) in [
            (r#"{"A": 1}"#, "input A must be an object, like {}"),
            (
                r#"{"A": {"required": "yes"}}"#,
                "required of input A must be true or false",
            ),
            (
                r#"{"A": {"choices": []}}"#,
                "choices of input A must be a list of strings",
            ),
            (
                r#"{"A": {"choices": ["x"], "default": "y"}}"#,
                "the default of input A is not one of its choices",
            ),
            (
                r#"{"SERVITOR_JOB": {}}"#,
                "input SERVITOR_JOB may not set a SERVITOR_* variable",
            ),
            (
                r#"{"A=B": {}}"#,
                "input name \"A=B\" cannot be an environment variable",
            ),
        ] {
            assert_eq!(fields(&spec(json)).unwrap_err(), error, "{json}");
        }
    }
}
