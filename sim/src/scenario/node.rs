//! A TOML document as a tree that remembers where every key and value was written, and a reader
//! over it that collects every problem instead of stopping at the first.
//!
//! serde stops at the first error; a scenario author wants all of them with their line. So the
//! document is first parsed by toml's own parser (`toml_edit`, which keeps the byte span of every
//! key and value) into [`Node`]s, then [`Table`] hands out fields by name, records wrong types and remembers which
//! keys were read, so [`Table::finish`] can refuse the unknown ones.
//!
//! Knows TOML and spans; knows nothing about what a scenario means.

use std::ops::Range;
use std::time::Duration;

/// One value and the bytes it was written in.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub span: Range<usize>,
    pub value: Value,
}

/// A TOML value whose children are [`Node`]s.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    String(String),
    Integer(i64),
    Float(f64),
    Boolean(bool),
    Datetime(String),
    Array(Vec<Node>),
    Table(Vec<Entry>),
}

/// One `key = value` of a table.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub key: String,
    pub key_span: Range<usize>,
    pub node: Node,
}

impl Value {
    /// The TOML type name, for "expected X, found Y" messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::String(_) => "a string",
            Value::Integer(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Boolean(_) => "a boolean",
            Value::Datetime(_) => "a datetime",
            Value::Array(_) => "an array",
            Value::Table(_) => "a table",
        }
    }

    /// The value as JSON (for tables passed through to another service).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::String(s) | Value::Datetime(s) => serde_json::Value::String(s.clone()),
            Value::Integer(i) => serde_json::Value::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::Boolean(b) => serde_json::Value::Bool(*b),
            Value::Array(items) => items.iter().map(|n| n.value.to_json()).collect(),
            Value::Table(entries) => serde_json::Value::Object(
                entries
                    .iter()
                    .map(|e| (e.key.clone(), e.node.value.to_json()))
                    .collect(),
            ),
        }
    }

    /// The value as a `toml::Value` (for tables passed through to a library's own config).
    pub fn to_toml(&self) -> toml::Value {
        match self {
            Value::String(s) => toml::Value::String(s.clone()),
            Value::Datetime(s) => s
                .parse()
                .map(toml::Value::Datetime)
                .unwrap_or_else(|_| toml::Value::String(s.clone())),
            Value::Integer(i) => toml::Value::Integer(*i),
            Value::Float(f) => toml::Value::Float(*f),
            Value::Boolean(b) => toml::Value::Boolean(*b),
            Value::Array(items) => {
                toml::Value::Array(items.iter().map(|n| n.value.to_toml()).collect())
            }
            Value::Table(entries) => toml::Value::Table(
                entries
                    .iter()
                    .map(|e| (e.key.clone(), e.node.value.to_toml()))
                    .collect(),
            ),
        }
    }
}

/// Parses `text` into a tree of [`Node`]s; a syntax error comes back with its byte span.
pub(crate) fn parse(text: &str) -> Result<Node, (Option<Range<usize>>, String)> {
    let doc =
        toml_edit::ImDocument::parse(text).map_err(|err| (err.span(), err.message().to_owned()))?;
    let root = doc.as_table();
    Ok(table_node(root, 0..0))
}

/// A table's entries; an implicit table (`population` in `[population.arrival]`) has no span
/// of its own, so it takes its first key's.
fn table_node(table: &toml_edit::Table, fallback: Range<usize>) -> Node {
    let mut entries = Vec::new();
    for (key, item) in table.iter() {
        let key_span = table
            .get_key_value(key)
            .and_then(|(k, _)| k.span())
            .unwrap_or_else(|| fallback.clone());
        if let Some(node) = item_node(item, key_span.clone()) {
            entries.push(Entry {
                key: key.to_owned(),
                key_span,
                node,
            });
        }
    }
    let span = table
        .span()
        .or_else(|| entries.first().map(|e| e.key_span.clone()))
        .unwrap_or(fallback);
    Node {
        span,
        value: Value::Table(entries),
    }
}

fn item_node(item: &toml_edit::Item, fallback: Range<usize>) -> Option<Node> {
    match item {
        toml_edit::Item::None => None,
        toml_edit::Item::Value(value) => Some(value_node(value, fallback)),
        toml_edit::Item::Table(table) => Some(table_node(table, fallback)),
        toml_edit::Item::ArrayOfTables(array) => {
            let items = array
                .iter()
                .map(|t| table_node(t, fallback.clone()))
                .collect();
            Some(Node {
                span: array.span().unwrap_or(fallback),
                value: Value::Array(items),
            })
        }
    }
}

fn value_node(value: &toml_edit::Value, fallback: Range<usize>) -> Node {
    let span = value.span().unwrap_or_else(|| fallback.clone());
    let value = match value {
        toml_edit::Value::String(s) => Value::String(s.value().clone()),
        toml_edit::Value::Integer(i) => Value::Integer(*i.value()),
        toml_edit::Value::Float(f) => Value::Float(*f.value()),
        toml_edit::Value::Boolean(b) => Value::Boolean(*b.value()),
        toml_edit::Value::Datetime(d) => Value::Datetime(d.value().to_string()),
        toml_edit::Value::Array(array) => {
            Value::Array(array.iter().map(|v| value_node(v, span.clone())).collect())
        }
        toml_edit::Value::InlineTable(table) => {
            let mut entries = Vec::new();
            for (key, v) in table.iter() {
                let key_span = table
                    .get_key_value(key)
                    .and_then(|(k, _)| k.span())
                    .unwrap_or_else(|| span.clone());
                entries.push(Entry {
                    key: key.to_owned(),
                    key_span,
                    node: value_node(v, span.clone()),
                });
            }
            Value::Table(entries)
        }
    };
    Node { span, value }
}

/// One problem in a scenario file: where, which field, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line.
    pub line: usize,
    /// Dotted path such as `population.arrival.rate` (`[2]` for array items).
    pub field: String,
    pub message: String,
}

/// Collects problems and turns byte offsets into lines.
pub(crate) struct Problems<'t> {
    text: &'t str,
    pub list: Vec<Problem>,
    /// What is accepted but should change (deprecated spellings); never fails the file.
    pub warnings: Vec<Problem>,
}

impl<'t> Problems<'t> {
    pub fn new(text: &'t str) -> Self {
        Problems {
            text,
            list: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// The 1-based line of byte offset `at`.
    pub fn line_of(&self, at: usize) -> usize {
        let end = at.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    }

    pub fn push(
        &mut self,
        span: &Range<usize>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) {
        let line = self.line_of(span.start);
        self.list.push(Problem {
            line,
            field: field.into(),
            message: message.into(),
        });
    }
}

impl Problems<'_> {
    /// Records a warning at `span`.
    pub fn warn(
        &mut self,
        span: &Range<usize>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) {
        let line = self.line_of(span.start);
        self.warnings.push(Problem {
            line,
            field: field.into(),
            message: message.into(),
        });
    }
}

impl Node {
    /// The span of the key at dotted `path` below this node (`engine.lease_secs`,
    /// `modes[0].timeout_secs`), or of the deepest node found on the way.
    pub fn key_span(&self, path: &str) -> Range<usize> {
        let mut node = self;
        let mut span = self.span.clone();
        for part in path.split('.') {
            let (key, index) = match part.split_once('[') {
                Some((key, rest)) => (key, rest.trim_end_matches(']').parse::<usize>().ok()),
                None => (part, None),
            };
            let Value::Table(entries) = &node.value else {
                break;
            };
            let Some(entry) = entries.iter().find(|e| e.key == key) else {
                break;
            };
            span = entry.key_span.clone();
            node = &entry.node;
            if let Some(i) = index {
                match &node.value {
                    Value::Array(items) if i < items.len() => {
                        node = &items[i];
                        span = node.span.clone();
                    }
                    _ => break,
                }
            }
        }
        span
    }
}

/// Joins a table path and a key.
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// A table being read: hands out fields and remembers which were asked for.
pub(crate) struct Table<'n> {
    pub path: String,
    pub span: Range<usize>,
    entries: &'n [Entry],
    used: Vec<bool>,
}

impl<'n> Table<'n> {
    /// `node` as a table at `path`; a problem (and `None`) when it is something else.
    pub fn from_node(node: &'n Node, path: &str, p: &mut Problems<'_>) -> Option<Self> {
        match &node.value {
            Value::Table(entries) => Some(Table {
                path: path.to_owned(),
                span: node.span.clone(),
                entries,
                used: vec![false; entries.len()],
            }),
            other => {
                p.push(
                    &node.span,
                    path,
                    format!("expected a table, found {}", other.type_name()),
                );
                None
            }
        }
    }

    pub fn field(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// The raw node of `key`, marking it read.
    pub fn node(&mut self, key: &str) -> Option<&'n Node> {
        let index = self.entries.iter().position(|e| e.key == key)?;
        self.used[index] = true;
        Some(&self.entries[index].node)
    }

    /// Whether `key` is present (does not mark it read).
    pub fn has(&self, key: &str) -> bool {
        self.entries.iter().any(|e| e.key == key)
    }

    /// Refuses every key that was never read.
    pub fn finish(self, p: &mut Problems<'_>) {
        for (entry, used) in self.entries.iter().zip(&self.used) {
            if !used {
                p.push(&entry.key_span, join(&self.path, &entry.key), "unknown key");
            }
        }
    }

    /// Marks every key read: for tables passed through as they are.
    /// The span of the key at dotted `path` below this table (see [`Node::key_span`]).
    pub fn key_span(&self, path: &str) -> Range<usize> {
        let node = Node {
            span: self.span.clone(),
            value: Value::Table(self.entries.to_vec()),
        };
        node.key_span(path)
    }

    pub fn entries_all(&mut self) -> &'n [Entry] {
        self.used.iter_mut().for_each(|u| *u = true);
        self.entries
    }

    fn wrong(&self, p: &mut Problems<'_>, key: &str, node: &Node, expected: &str) {
        p.push(
            &node.span,
            self.field(key),
            format!("expected {expected}, found {}", node.value.type_name()),
        );
    }

    pub fn missing(&self, p: &mut Problems<'_>, key: &str) {
        p.push(&self.span, self.field(key), "missing (required)");
    }

    pub fn opt_str(&mut self, p: &mut Problems<'_>, key: &str) -> Option<(String, Range<usize>)> {
        let node = self.node(key)?;
        match &node.value {
            Value::String(s) => Some((s.clone(), node.span.clone())),
            _ => {
                self.wrong(p, key, node, "a string");
                None
            }
        }
    }

    pub fn opt_bool(&mut self, p: &mut Problems<'_>, key: &str) -> Option<bool> {
        let node = self.node(key)?;
        match &node.value {
            Value::Boolean(b) => Some(*b),
            _ => {
                self.wrong(p, key, node, "a boolean");
                None
            }
        }
    }

    /// A number (integer or float).
    pub fn opt_f64(&mut self, p: &mut Problems<'_>, key: &str) -> Option<(f64, Range<usize>)> {
        let node = self.node(key)?;
        match &node.value {
            Value::Float(f) if f.is_finite() => Some((*f, node.span.clone())),
            Value::Integer(i) => Some((*i as f64, node.span.clone())),
            Value::Float(_) => {
                p.push(&node.span, self.field(key), "must be a finite number");
                None
            }
            _ => {
                self.wrong(p, key, node, "a number");
                None
            }
        }
    }

    /// A non-negative integer.
    pub fn opt_u64(&mut self, p: &mut Problems<'_>, key: &str) -> Option<(u64, Range<usize>)> {
        let node = self.node(key)?;
        match &node.value {
            Value::Integer(i) => match u64::try_from(*i) {
                Ok(v) => Some((v, node.span.clone())),
                Err(_) => {
                    p.push(&node.span, self.field(key), "must not be negative");
                    None
                }
            },
            _ => {
                self.wrong(p, key, node, "an integer");
                None
            }
        }
    }

    /// A duration written as a string with a unit: `"250ms"`, `"30s"`, `"2m"`, `"1h"`.
    pub fn opt_duration(
        &mut self,
        p: &mut Problems<'_>,
        key: &str,
    ) -> Option<(Duration, Range<usize>)> {
        let node = self.node(key)?;
        match &node.value {
            Value::String(s) => match parse_duration(s) {
                Ok(d) => Some((d, node.span.clone())),
                Err(why) => {
                    p.push(&node.span, self.field(key), why);
                    None
                }
            },
            _ => {
                p.push(
                    &node.span,
                    self.field(key),
                    format!(
                        "expected a duration string such as \"500ms\", \"30s\" or \"2m\", found {}",
                        node.value.type_name()
                    ),
                );
                None
            }
        }
    }

    /// A sub-table (a `[header]` table or an inline `{ ... }`).
    pub fn opt_table(&mut self, p: &mut Problems<'_>, key: &str) -> Option<Table<'n>> {
        let path = self.field(key);
        let node = self.node(key)?;
        Table::from_node(node, &path, p)
    }

    /// An array (of values or of tables).
    pub fn opt_array(
        &mut self,
        p: &mut Problems<'_>,
        key: &str,
    ) -> Option<(&'n [Node], Range<usize>)> {
        let node = self.node(key)?;
        match &node.value {
            Value::Array(items) => Some((items, node.span.clone())),
            _ => {
                self.wrong(p, key, node, "an array");
                None
            }
        }
    }
}

/// Parses a duration of the one grammar every config file uses (`"1.5s"`, `"250ms"`, `"2m"`,
/// `"1h"`, `"100us"`; see the `durations` crate); the error shows the grammar.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    durations::parse(text).map_err(|e| e.to_string())
}

/// Formats a duration the way scenarios write them.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms == 0.0 {
        "0s".to_owned()
    } else if ms < 1.0 {
        format!("{}us", (ms * 1000.0).round())
    } else if ms < 1000.0 {
        format!("{}ms", trim_float((ms * 10.0).round() / 10.0))
    } else if ms < 120_000.0 {
        format!("{}s", trim_float((ms / 10.0).round() / 100.0))
    } else if ms < 3_600_000.0 {
        format!("{}m", trim_float(ms / 60_000.0))
    } else {
        format!("{}h", trim_float(ms / 3_600_000.0))
    }
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_reach_nested_keys_and_values() {
        let text = "version = 1\n\n[run]\nduration = \"5s\"\n\n[[faults]]\nat = \"1s\"\nkind = \"x\"\n[population.arrival]\nrate = 2\n";
        let root = parse(text).expect("parses");
        let mut p = Problems::new(text);
        let mut top = Table::from_node(&root, "", &mut p).expect("table");
        let mut run = top.opt_table(&mut p, "run").expect("run");
        let (d, span) = run.opt_duration(&mut p, "duration").expect("duration");
        assert_eq!(d, Duration::from_secs(5));
        assert_eq!(p.line_of(span.start), 4);
        run.finish(&mut p);
        let (faults, _) = top.opt_array(&mut p, "faults").expect("faults");
        let mut fault = Table::from_node(&faults[0], "faults[0]", &mut p).expect("fault");
        let (_, span) = fault.opt_str(&mut p, "kind").expect("kind");
        assert_eq!(p.line_of(span.start), 8);
        let mut pop = top.opt_table(&mut p, "population").expect("population");
        let mut arrival = pop.opt_table(&mut p, "arrival").expect("arrival");
        let (rate, span) = arrival.opt_f64(&mut p, "rate").expect("rate");
        assert_eq!(rate, 2.0);
        assert_eq!(p.line_of(span.start), 10);
        // `version` and `faults[0].at` were never read.
        fault.finish(&mut p);
        top.finish(&mut p);
        let fields: Vec<_> = p.list.iter().map(|x| (x.line, x.field.as_str())).collect();
        assert_eq!(fields, vec![(7, "faults[0].at"), (1, "version")]);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_duration(Duration::from_secs(300)), "5m");
    }
}
