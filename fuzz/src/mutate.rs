//! The mutation engine: byte-level mutations (bit flips, interesting bytes, deletions,
//! duplications, dictionary tokens, splices with other corpus entries, number swaps) and
//! structure-aware ones for JSON and TOML inputs (a node replaced by a value of another type, a
//! key dropped or added, an extreme number, an odd string), so inputs both break the syntax and
//! stay valid enough to reach the semantic checks behind it.
//!
//! Deterministic: everything is drawn from one seeded ChaCha stream, so a run is repeatable
//! from its seed.

use rand::{Rng as _, SeedableRng as _};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Number, Value};

/// Longest input a mutation produces.
pub const MAX_LEN: usize = 64 * 1024;

/// Bytes that tend to matter to text parsers.
const INTERESTING_BYTES: &[u8] = &[
    0, 0x7f, 0xff, 0xc3, 0xe2, b'\n', b'\r', b'\t', b' ', b':', b'"', b'\'', b'{', b'}', b'[',
    b']', b'\\', b',', b'=', b'.', b'-', b'+', b'#', b'0', b'9', b'e',
];

/// Numbers that sit on limits.
const INTERESTING_NUMBERS: &[&str] = &[
    "0",
    "-0",
    "-1",
    "1",
    "0.5",
    "1.5",
    "-1.5",
    "255",
    "65535",
    "65536",
    "2147483647",
    "2147483648",
    "4294967295",
    "4294967296",
    "9007199254740993",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "1e308",
    "1e309",
    "-1e308",
    "5e-324",
    "1e-400",
    "nan",
    "inf",
    "-inf",
];

/// Strings that tend to trip validation.
const ODD_STRINGS: &[&str] = &[
    "",
    " ",
    "\n",
    "a\nb",
    "type: x",
    "\u{0}",
    "\u{feff}",
    "é",
    "日本",
    "🎮",
    "\u{202e}",
    "-1",
    "0",
    "1e400",
    "NaN",
    "0s",
    "1ms",
    "-5s",
    "1.5s",
    "99999999999999999999h",
    "18446744073709551615ms",
    "1h1h",
    "s",
    "**",
    "/iam/**",
    "/",
    "//",
    "..",
    "seed",
    "null",
    "true",
    "https://127.0.0.1:1",
    "http://[::1]:0/x",
];

/// A seeded mutator with a target's dictionary.
#[derive(Debug)]
pub struct Mutator {
    rng: ChaCha8Rng,
    dict: Vec<Vec<u8>>,
}

impl Mutator {
    /// A mutator drawing from `seed`, inserting `dict` tokens (plus the keys it learns).
    pub fn new(seed: u64, dict: &[&str]) -> Self {
        Mutator {
            rng: ChaCha8Rng::seed_from_u64(seed),
            dict: dict.iter().map(|d| d.as_bytes().to_vec()).collect(),
        }
    }

    /// Adds a dictionary token (e.g. a key seen in a seed).
    pub fn learn(&mut self, token: &str) {
        let token = token.as_bytes().to_vec();
        if !token.is_empty() && !self.dict.contains(&token) {
            self.dict.push(token);
        }
    }

    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { self.rng.gen_range(0..n) }
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.rng.gen_bool(p.clamp(0.0, 1.0))
    }

    /// One to four stacked byte-level mutations of `base`; `other` feeds splices.
    pub fn bytes(&mut self, base: &[u8], other: &[u8]) -> Vec<u8> {
        let mut out = base.to_vec();
        let rounds = 1 + self.below(4);
        for _ in 0..rounds {
            self.byte_step(&mut out, other);
        }
        out.truncate(MAX_LEN);
        out
    }

    fn byte_step(&mut self, out: &mut Vec<u8>, other: &[u8]) {
        let len = out.len();
        match self.below(10) {
            0 if len > 0 => {
                let i = self.below(len);
                out[i] ^= 1 << self.below(8);
            }
            1 if len > 0 => {
                let i = self.below(len);
                out[i] = self.rng.r#gen();
            }
            2 if len > 0 => {
                let i = self.below(len);
                out[i] = INTERESTING_BYTES[self.below(INTERESTING_BYTES.len())];
            }
            3 if len > 0 => {
                let start = self.below(len);
                let n = 1 + self.below((len - start).min(32));
                out.drain(start..start + n);
            }
            4 if len > 0 => {
                let start = self.below(len);
                let n = 1 + self.below((len - start).min(64));
                let copy = out[start..start + n].to_vec();
                let at = self.below(len + 1);
                out.splice(at..at, copy);
            }
            5 if !self.dict.is_empty() => {
                let i = self.below(self.dict.len());
                let token = self.dict[i].clone();
                let at = self.below(len + 1);
                out.splice(at..at, token);
            }
            6 if !other.is_empty() => {
                let cut = self.below(len + 1);
                let from = self.below(other.len());
                out.truncate(cut);
                out.extend_from_slice(&other[from..]);
            }
            7 => {
                let n = 1 + self.below(8);
                let at = self.below(len + 1);
                let noise: Vec<u8> = (0..n).map(|_| self.rng.r#gen()).collect();
                out.splice(at..at, noise);
            }
            8 => self.swap_number(out),
            _ if len > 0 => {
                // Truncate: parsers meet cut-off input at every position.
                let at = self.below(len);
                out.truncate(at);
            }
            _ => out.push(INTERESTING_BYTES[self.below(INTERESTING_BYTES.len())]),
        }
    }

    /// Replaces a run of digits with a number on a limit.
    fn swap_number(&mut self, out: &mut Vec<u8>) {
        let digits: Vec<usize> = out
            .iter()
            .enumerate()
            .filter(|(_, b)| b.is_ascii_digit())
            .map(|(i, _)| i)
            .collect();
        let number = INTERESTING_NUMBERS[self.below(INTERESTING_NUMBERS.len())].as_bytes();
        if digits.is_empty() {
            let at = self.below(out.len() + 1);
            out.splice(at..at, number.iter().copied());
            return;
        }
        let start = digits[self.below(digits.len())];
        let mut end = start;
        while end < out.len() && (out[end].is_ascii_digit() || out[end] == b'.') {
            end += 1;
        }
        out.splice(start..end, number.iter().copied());
    }

    /// One to three structural mutations of a JSON value.
    pub fn json(&mut self, value: &mut Value) {
        let rounds = 1 + self.below(3);
        for _ in 0..rounds {
            let nodes = count_nodes(value);
            let target = self.below(nodes);
            let mut index = 0;
            self.json_at(value, target, &mut index);
        }
    }

    fn json_at(&mut self, value: &mut Value, target: usize, index: &mut usize) -> bool {
        if *index == target {
            self.json_node(value);
            return true;
        }
        *index += 1;
        match value {
            Value::Object(map) => {
                for (_, child) in map.iter_mut() {
                    if self.json_at(child, target, index) {
                        return true;
                    }
                }
                false
            }
            Value::Array(items) => {
                for child in items.iter_mut() {
                    if self.json_at(child, target, index) {
                        return true;
                    }
                }
                false
            }
            _ => false,
        }
    }

    fn json_node(&mut self, value: &mut Value) {
        match self.below(8) {
            0 => *value = self.scalar(),
            1 => *value = self.number(),
            2 => *value = Value::String(self.odd_string()),
            3 => match value {
                Value::Object(map) if !map.is_empty() => {
                    let key = map.keys().nth(self.below(map.len())).cloned();
                    if let Some(key) = key {
                        map.remove(&key);
                    }
                }
                Value::Array(items) if !items.is_empty() => {
                    let i = self.below(items.len());
                    items.remove(i);
                }
                _ => *value = Value::Null,
            },
            4 => match value {
                Value::Object(map) => {
                    let key = self.key();
                    let new = self.scalar();
                    map.insert(key, new);
                }
                Value::Array(items) if !items.is_empty() => {
                    let i = self.below(items.len());
                    let copy = items[i].clone();
                    let most = if self.chance(0.05) { 200 } else { 3 };
                    let copies = 1 + self.below(most);
                    for _ in 0..copies {
                        items.push(copy.clone());
                    }
                }
                _ => *value = Value::Array(vec![value.clone()]),
            },
            5 => {
                let inner = std::mem::take(value);
                *value = if self.chance(0.5) {
                    Value::Array(vec![inner])
                } else {
                    let mut map = Map::new();
                    map.insert(self.key(), inner);
                    Value::Object(map)
                };
            }
            6 => match value {
                Value::Number(n) => *value = self.near(n),
                Value::String(s) => {
                    let bytes = self.bytes(s.as_bytes(), b"");
                    *value = Value::String(String::from_utf8_lossy(&bytes).into_owned());
                }
                _ => *value = self.number(),
            },
            _ => {
                if let Value::Object(map) = value {
                    // A known key with another key's value: right names, wrong places.
                    if map.len() >= 2 {
                        let keys: Vec<String> = map.keys().cloned().collect();
                        let a = keys[self.below(keys.len())].clone();
                        let b = keys[self.below(keys.len())].clone();
                        if let Some(v) = map.get(&b).cloned() {
                            map.insert(a, v);
                        }
                    }
                } else {
                    *value = Value::Object(Map::new());
                }
            }
        }
    }

    fn key(&mut self) -> String {
        if !self.dict.is_empty() && self.chance(0.8) {
            let i = self.below(self.dict.len());
            String::from_utf8_lossy(&self.dict[i]).into_owned()
        } else {
            self.odd_string()
        }
    }

    fn odd_string(&mut self) -> String {
        match self.below(10) {
            0 => "x".repeat(1 + self.below(5000)),
            1 if !self.dict.is_empty() => {
                let i = self.below(self.dict.len());
                String::from_utf8_lossy(&self.dict[i]).into_owned()
            }
            _ => ODD_STRINGS[self.below(ODD_STRINGS.len())].to_owned(),
        }
    }

    fn number(&mut self) -> Value {
        let text = INTERESTING_NUMBERS[self.below(INTERESTING_NUMBERS.len())];
        serde_json::from_str::<Number>(text)
            .map(Value::Number)
            .unwrap_or_else(|_| Value::String(text.to_owned()))
    }

    fn near(&mut self, n: &Number) -> Value {
        let v = n.as_f64().unwrap_or(0.0);
        let choice = match self.below(5) {
            0 => -v,
            1 => v * 1000.0,
            2 => v / 1000.0,
            3 => v + 1.0,
            _ => v - 1.0,
        };
        if choice.fract() == 0.0 && choice.abs() < 9.0e15 {
            Value::from(choice as i64)
        } else {
            Number::from_f64(choice).map_or(Value::Null, Value::Number)
        }
    }

    fn scalar(&mut self) -> Value {
        match self.below(6) {
            0 => Value::Null,
            1 => Value::Bool(self.chance(0.5)),
            2 => self.number(),
            3 => Value::Array(Vec::new()),
            4 => Value::Object(Map::new()),
            _ => Value::String(self.odd_string()),
        }
    }
}

/// Nodes of a JSON value, itself included.
pub fn count_nodes(value: &Value) -> usize {
    1 + match value {
        Value::Object(map) => map.values().map(count_nodes).sum(),
        Value::Array(items) => items.iter().map(count_nodes).sum(),
        _ => 0,
    }
}

/// Every object key in `value`, for a dictionary.
pub fn keys_of(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                out.push(key.clone());
                keys_of(child, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| keys_of(v, out)),
        _ => {}
    }
}

/// A TOML document as JSON (for structural mutation), `None` if it does not parse.
pub fn toml_to_json(text: &str) -> Option<Value> {
    let table: toml::Table = toml::from_str(text).ok()?;
    serde_json::to_value(table).ok()
}

/// JSON back to a TOML document, `None` when TOML cannot say it (a null, a top-level
/// non-table).
pub fn json_to_toml(value: &Value) -> Option<String> {
    let table: toml::Table = serde_json::from_value(value.clone()).ok()?;
    toml::to_string(&table).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_mutations() {
        let mut a = Mutator::new(7, &["key"]);
        let mut b = Mutator::new(7, &["key"]);
        for _ in 0..100 {
            assert_eq!(
                a.bytes(b"type: x\nk: v", b"other"),
                b.bytes(b"type: x\nk: v", b"other")
            );
        }
    }

    #[test]
    fn structural_mutations_change_json_and_keep_it_json() {
        let mut m = Mutator::new(1, &["game_mode"]);
        let original = serde_json::json!({"a": [1, 2, {"b": "c"}], "d": 1.5});
        let mut changed = 0;
        for _ in 0..200 {
            let mut v = original.clone();
            m.json(&mut v);
            if v != original {
                changed += 1;
            }
            assert!(serde_json::to_vec(&v).is_ok());
        }
        assert!(
            changed > 150,
            "{changed} of 200 mutations changed the value"
        );
    }

    #[test]
    fn toml_survives_the_json_detour() {
        let v = toml_to_json("a = 1\n[b]\nc = \"d\"\n").expect("toml");
        let text = json_to_toml(&v).expect("back");
        assert_eq!(toml_to_json(&text), Some(v));
    }
}
