//! The AccelByte Lobby WebSocket text frame codec.
//!
//! Lobby messages are UTF-8 text frames of `key: value` lines separated by
//! `\n`, the first line always being `type: <messageType>`; for example
//!
//! ```text
//! type: partyCreateRequest
//! id: 5c3f...
//! ```
//!
//! Both the emulated lobby and the load simulator's clients speak this format,
//! so the parser and encoder live here once. Parsing is strict enough to
//! reject garbage with a precise [`FrameError`] (the lobby answers those with
//! an error frame instead of crashing) and lenient where real clients differ
//! (CRLF line ends, blank lines, key case).
//!
//! The Unreal SDK may also wrap a message in an `LbS` … `LbE` envelope; see
//! [`wrap_envelope`] and [`strip_envelope`].

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// Marks the start of an enveloped message (Unreal SDK).
pub const ENVELOPE_START: &str = "LbS";
/// Marks the end of an enveloped message (Unreal SDK).
pub const ENVELOPE_END: &str = "LbE";

/// Key of the mandatory first line.
const TYPE_KEY: &str = "type";

/// Longest excerpt of an offending line kept in [`FrameError::MalformedLine`],
/// so a hostile multi-megabyte line cannot bloat logs and error frames.
const EXCERPT_CHARS: usize = 64;

/// Why a text frame could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    /// The frame has no non-blank line at all.
    #[error("empty frame")]
    Empty,
    /// The first non-blank line is not `type: <non-empty>`.
    #[error("line {line}: frame must start with a non-empty `type: ...` line")]
    MissingType { line: usize },
    /// A later line has no `:` (or no key before it).
    #[error("line {line}: expected `key: value`, got {text:?}")]
    MalformedLine { line: usize, text: String },
}

/// One lobby message: ordered `key: value` fields, the first being `type`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Frame {
    fields: Vec<(String, String)>,
}

impl Frame {
    /// A frame holding only `type: <message_type>`.
    pub fn new(message_type: impl Into<String>) -> Self {
        Self {
            fields: vec![(TYPE_KEY.to_owned(), message_type.into())],
        }
    }

    /// Appends `key: value` and returns the frame, for building in one
    /// expression.
    #[must_use]
    pub fn with(mut self, key: impl Into<String>, value: impl ToString) -> Self {
        self.push(key, value);
        self
    }

    /// Appends `key: value` in place.
    pub fn push(&mut self, key: impl Into<String>, value: impl ToString) -> &mut Self {
        self.fields.push((key.into(), value.to_string()));
        self
    }

    /// The message type (`type` field), or `""` for an empty default frame.
    pub fn message_type(&self) -> &str {
        self.get(TYPE_KEY).unwrap_or_default()
    }

    /// The value of the first field named `key`, compared case-insensitively
    /// as the Python SDK does (clients disagree on e.g. `userId` / `userID`).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(key))
            .map(|(_, value)| value.as_str())
    }

    /// All fields in order, keys as sent.
    pub fn fields(&self) -> &[(String, String)] {
        &self.fields
    }

    /// The wire text: `key: value` lines joined by `\n`, no trailing newline.
    ///
    /// CR and LF inside keys or values are replaced with spaces: the format
    /// has no escaping, so a raw newline (say, in a chat message or a
    /// player-chosen name) would split the field and let its remainder be
    /// read as extra, attacker-chosen fields. Surrounding whitespace in values
    /// does not survive a round trip, because [`parse`](Self::parse) trims it.
    pub fn encode(&self) -> String {
        let lines: Vec<String> = self
            .fields
            .iter()
            .map(|(key, value)| format!("{}: {}", single_line(key), single_line(value)))
            .collect();
        lines.join("\n")
    }

    /// Parses a frame. Accepts `\n` or `\r\n` line ends and skips blank lines;
    /// each other line is split at its first `:` and both sides are trimmed,
    /// so values may themselves contain `:` (timestamps, `a: b` payloads).
    pub fn parse(text: &str) -> Result<Frame, FrameError> {
        let mut lines = text
            .split('\n')
            .enumerate()
            .map(|(index, line)| (index + 1, line.strip_suffix('\r').unwrap_or(line)))
            .filter(|(_, line)| !line.trim().is_empty());

        let (first_line_no, first_line) = lines.next().ok_or(FrameError::Empty)?;
        let message_type = parse_type_line(first_line_no, first_line)?;
        let mut frame = Frame::new(message_type);
        for (line_no, line) in lines {
            let (key, value) = split_field(line).ok_or_else(|| FrameError::MalformedLine {
                line: line_no,
                text: excerpt(line),
            })?;
            frame.fields.push((key.to_owned(), value.to_owned()));
        }
        Ok(frame)
    }
}

impl fmt::Display for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

impl FromStr for Frame {
    type Err = FrameError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

/// The message type from the first non-blank line, which must be
/// `type: <non-empty>` (key case-insensitive).
fn parse_type_line(line_no: usize, line: &str) -> Result<String, FrameError> {
    match split_field(line) {
        Some((key, value)) if key.eq_ignore_ascii_case(TYPE_KEY) && !value.is_empty() => {
            Ok(value.to_owned())
        }
        _ => Err(FrameError::MissingType { line: line_no }),
    }
}

/// Splits `key: value` at the first `:`, trimming both sides. `None` when
/// there is no `:` or the key is empty, since such a line cannot be looked
/// up and no real client sends one.
fn split_field(line: &str) -> Option<(&str, &str)> {
    let (key, value) = line.split_once(':')?;
    let key = key.trim();
    (!key.is_empty()).then_some((key, value.trim()))
}

/// `text` with CR and LF replaced by spaces (see [`Frame::encode`]).
fn single_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

/// The first [`EXCERPT_CHARS`] characters of an offending line.
fn excerpt(line: &str) -> String {
    line.chars().take(EXCERPT_CHARS).collect()
}

/// `s` wrapped in the Unreal SDK's `LbS` … `LbE` envelope.
pub fn wrap_envelope(s: &str) -> String {
    format!("{ENVELOPE_START}{s}{ENVELOPE_END}")
}

/// `s` without its `LbS` … `LbE` envelope when both markers are present,
/// otherwise `s` unchanged (clients may or may not use the envelope).
pub fn strip_envelope(s: &str) -> &str {
    s.strip_prefix(ENVELOPE_START)
        .and_then(|inner| inner.strip_suffix(ENVELOPE_END))
        .unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESSAGE_NOTIF: &str = "type: messageNotif\n\
        id: 0123456789abcdef0123456789abcdef\n\
        from: system\n\
        to: user1\n\
        topic: NOTIF\n\
        payload: found 127.0.0.1 7777\n\
        sentAt: 2022-08-25T00:45:32Z";

    fn parse_ok(text: &str) -> Frame {
        Frame::parse(text).expect("frame should parse")
    }

    #[test]
    fn golden_message_notif_round_trips() {
        let frame = parse_ok(MESSAGE_NOTIF);
        assert_eq!(frame.message_type(), "messageNotif");
        assert_eq!(frame.get("payload"), Some("found 127.0.0.1 7777"));
        assert_eq!(frame.get("sentAt"), Some("2022-08-25T00:45:32Z"));
        assert_eq!(frame.fields().len(), 7);
        assert_eq!(frame.encode(), MESSAGE_NOTIF);
    }

    #[test]
    fn builder_encodes_golden_text() {
        let frame = Frame::new("messageNotif")
            .with("id", "0123456789abcdef0123456789abcdef")
            .with("from", "system")
            .with("to", "user1")
            .with("topic", "NOTIF")
            .with("payload", "found 127.0.0.1 7777")
            .with("sentAt", "2022-08-25T00:45:32Z");
        assert_eq!(frame.encode(), MESSAGE_NOTIF);
        assert_eq!(frame.to_string(), MESSAGE_NOTIF);
    }

    #[test]
    fn push_appends_in_order_and_accepts_numbers() {
        let mut frame = Frame::new("partyCreateResponse");
        frame.push("id", "req-1").push("code", 0);
        assert_eq!(
            frame.encode(),
            "type: partyCreateResponse\nid: req-1\ncode: 0"
        );
        let keys: Vec<&str> = frame.fields().iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["type", "id", "code"]);
    }

    #[test]
    fn value_keeps_everything_after_first_colon() {
        let frame = parse_ok("type: personalChatNotif\npayload: a: b\nsentAt: 12:34:56");
        assert_eq!(frame.get("payload"), Some("a: b"));
        assert_eq!(frame.get("sentAt"), Some("12:34:56"));
        assert_eq!(
            frame.encode(),
            "type: personalChatNotif\npayload: a: b\nsentAt: 12:34:56"
        );
    }

    #[test]
    fn tutorial_client_frame_is_malformed_at_line_two() {
        let err = Frame::parse("type: messageNotif\n0123456789abcdef01234567")
            .expect_err("line without a colon");
        assert_eq!(
            err,
            FrameError::MalformedLine {
                line: 2,
                text: "0123456789abcdef01234567".to_owned()
            }
        );
    }

    #[test]
    fn crlf_input_is_accepted() {
        let frame = parse_ok(&MESSAGE_NOTIF.replace('\n', "\r\n"));
        assert_eq!(frame.get("to"), Some("user1"));
        assert_eq!(frame.get("sentAt"), Some("2022-08-25T00:45:32Z"));
        assert_eq!(frame.encode(), MESSAGE_NOTIF);
    }

    #[test]
    fn blank_lines_are_skipped_but_counted() {
        let frame = parse_ok("\n\ntype: heartbeat\n\n   \nid: 7\n");
        assert_eq!(frame.message_type(), "heartbeat");
        assert_eq!(frame.get("id"), Some("7"));
        let err = Frame::parse("\ntype: heartbeat\n\nbroken").expect_err("malformed");
        assert!(matches!(err, FrameError::MalformedLine { line: 4, .. }));
    }

    #[test]
    fn get_is_case_insensitive_and_keys_are_kept() {
        let frame = parse_ok("Type: userStatusNotif\nuserID: abc\nActivity: lobby");
        assert_eq!(frame.message_type(), "userStatusNotif");
        assert_eq!(frame.get("userId"), Some("abc"));
        assert_eq!(frame.get("ACTIVITY"), Some("lobby"));
        assert_eq!(frame.get("missing"), None);
        assert_eq!(frame.fields()[1].0, "userID");
    }

    #[test]
    fn get_returns_first_duplicate() {
        let frame = parse_ok("type: x\nk: first\nK: second");
        assert_eq!(frame.get("k"), Some("first"));
        assert_eq!(frame.fields().len(), 3);
    }

    #[test]
    fn empty_values_are_allowed_after_type() {
        let frame = parse_ok("type: joinDefaultChannelRequest\nid:");
        assert_eq!(frame.get("id"), Some(""));
    }

    #[test]
    fn empty_input_is_an_error() {
        assert_eq!(Frame::parse(""), Err(FrameError::Empty));
        assert_eq!(Frame::parse("\r\n \n\t"), Err(FrameError::Empty));
    }

    #[test]
    fn first_line_must_be_non_empty_type() {
        assert_eq!(
            Frame::parse("id: 1\ntype: x"),
            Err(FrameError::MissingType { line: 1 })
        );
        assert_eq!(
            Frame::parse("\ntype:   \nid: 1"),
            Err(FrameError::MissingType { line: 2 })
        );
        assert_eq!(
            Frame::parse("hello"),
            Err(FrameError::MissingType { line: 1 })
        );
    }

    #[test]
    fn empty_key_is_malformed() {
        assert!(matches!(
            Frame::parse("type: x\n: value"),
            Err(FrameError::MalformedLine { line: 2, .. })
        ));
    }

    #[test]
    fn malformed_text_is_truncated_on_char_boundaries() {
        let long = "é".repeat(200);
        let err = Frame::parse(&format!("type: x\n{long}")).expect_err("malformed");
        let FrameError::MalformedLine { line, text } = err else {
            panic!("unexpected error {err:?}");
        };
        assert_eq!(line, 2);
        assert_eq!(text.chars().count(), 64);
    }

    #[test]
    fn error_messages_are_lower_case() {
        let err = FrameError::MalformedLine {
            line: 2,
            text: "abc".to_owned(),
        };
        assert_eq!(
            err.to_string(),
            r#"line 2: expected `key: value`, got "abc""#
        );
        assert_eq!(FrameError::Empty.to_string(), "empty frame");
    }

    #[test]
    fn encode_sanitises_newlines() {
        let frame = Frame::new("personalChatRequest")
            .with("payload", "hi\ntype: evil\r\nid: 1")
            .with("bad\nkey", "v");
        let text = frame.encode();
        assert_eq!(
            text,
            "type: personalChatRequest\npayload: hi type: evil  id: 1\nbad key: v"
        );
        let back = parse_ok(&text);
        assert_eq!(back.fields().len(), 3);
        assert_eq!(back.message_type(), "personalChatRequest");
        assert_eq!(back.get("payload"), Some("hi type: evil  id: 1"));
    }

    #[test]
    fn default_frame_is_empty() {
        let frame = Frame::default();
        assert_eq!(frame.message_type(), "");
        assert_eq!(frame.encode(), "");
    }

    #[test]
    fn from_str_parses() {
        let frame: Frame = "type: heartbeat".parse().expect("parse");
        assert_eq!(frame, Frame::new("heartbeat"));
    }

    #[test]
    fn envelope_wraps_and_strips() {
        let wrapped = wrap_envelope("type: heartbeat");
        assert_eq!(wrapped, "LbStype: heartbeatLbE");
        assert_eq!(strip_envelope(&wrapped), "type: heartbeat");
        assert_eq!(
            parse_ok(strip_envelope(&wrapped)).message_type(),
            "heartbeat"
        );
    }

    #[test]
    fn envelope_needs_both_markers() {
        assert_eq!(strip_envelope("type: heartbeat"), "type: heartbeat");
        assert_eq!(strip_envelope("LbStype: x"), "LbStype: x");
        assert_eq!(strip_envelope("type: xLbE"), "type: xLbE");
        assert_eq!(strip_envelope("LbSLbE"), "");
        // Overlapping markers are not a complete envelope.
        assert_eq!(strip_envelope("LbSbE"), "LbSbE");
    }
}
