//! One fault: [`Fault`] (what it does, to what, how often, when) and [`parse_fault`], the one
//! way a JSON body or a converted TOML table becomes one, with errors naming the field.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use durations::Deprecation;

use super::error::{FieldError, de};
use super::kinds::{FaultKind, KINDS};
use super::spelling;
use super::target::Target;
use super::window::Window;

/// One fault: what it does ([`FaultKind`], flattened next to the common fields), to what, how
/// often and when.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fault {
    /// Assigned by the server (`<kind>-<n>`) when empty.
    pub id: String,
    #[serde(skip_serializing_if = "Target::is_empty")]
    pub target: Target,
    /// Chance that the fault acts on one call, notification or register (0..=1, default 1).
    pub probability: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    #[serde(flatten)]
    pub kind: FaultKind,
}

impl Fault {
    /// A fault on `target` with probability 1, no window and a server-assigned id.
    pub fn new(target: Target, kind: FaultKind) -> Self {
        Self {
            id: String::new(),
            target,
            probability: 1.0,
            window: None,
            kind,
        }
    }

    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    pub fn with_probability(mut self, probability: f64) -> Self {
        self.probability = probability;
        self
    }

    pub fn with_window(mut self, window: Window) -> Self {
        self.window = Some(window);
        self
    }

    /// Whether the fault is active `elapsed` after it was added.
    pub fn active_at(&self, elapsed: Duration) -> bool {
        self.window.is_none_or(|w| w.contains(elapsed))
    }
}

/// Keys every fault has besides its kind's own.
const COMMON_KEYS: [&str; 5] = ["id", "target", "probability", "window", "kind"];

/// Parses one fault from JSON (an API body) or a converted TOML table. A `state` key (what
/// `GET /_fakes/faults` adds) is ignored, so a listed fault can be sent back as is.
pub fn parse_fault(value: Value) -> Result<Fault, FieldError> {
    parse_fault_noting(value).map(|(fault, _)| fault)
}

/// [`parse_fault`], also returning the deprecated duration keys the input used (see
/// [`super::spelling`]), with paths relative to the fault.
pub fn parse_fault_noting(value: Value) -> Result<(Fault, Vec<Deprecation>), FieldError> {
    let Value::Object(mut map) = value else {
        return Err(FieldError::new(
            "",
            "a fault must be a table (JSON object) with a `kind`",
        ));
    };
    let (notes, renames) = spelling::settle(&mut map)?;
    let fault = parse_settled(map).map_err(|e| renames.apply(e))?;
    Ok((fault, notes))
}

fn parse_settled(mut map: Map<String, Value>) -> Result<Fault, FieldError> {
    map.remove("state");
    let id: Option<String> = take(&mut map, "id")?;
    let target = match map.remove("target") {
        None => Target::default(),
        Some(Value::String(text)) => Target::shorthand(&text)?,
        Some(value) => de("target", value)?,
    };
    let probability: Option<f64> = take(&mut map, "probability")?;
    let window: Option<Window> = take(&mut map, "window")?;
    let kind = match map.remove("kind") {
        Some(Value::String(kind)) => kind,
        Some(other) => {
            return Err(FieldError::new(
                "kind",
                format!("must be a string, got {other}"),
            ));
        }
        None => {
            return Err(FieldError::new(
                "kind",
                format!("missing field `kind`, expected one of {}", KINDS.join(", ")),
            ));
        }
    };
    let kind = FaultKind::parse(&kind, map).map_err(|e| {
        // The kind's own "expected one of" lists only its fields; the common ones are valid too.
        if e.message.starts_with("unknown field") && !e.field.contains('.') {
            FieldError {
                message: format!("{} (or one of {})", e.message, COMMON_KEYS.join(", ")),
                ..e
            }
        } else {
            e
        }
    })?;
    let mut target = target;
    if let Some(method) = target.method.as_mut() {
        *method = method.to_ascii_uppercase();
    }
    let fault = Fault {
        id: id.unwrap_or_default(),
        target,
        probability: probability.unwrap_or(1.0),
        window,
        kind,
    };
    fault.validate(probability.is_some())?;
    Ok(fault)
}

pub(super) fn take<T: DeserializeOwned + Default>(
    map: &mut Map<String, Value>,
    key: &str,
) -> Result<T, FieldError> {
    match map.remove(key) {
        None | Some(Value::Null) => Ok(T::default()),
        Some(value) => de(key, value),
    }
}

impl<'de> Deserialize<'de> for Fault {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        parse_fault(Value::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}
