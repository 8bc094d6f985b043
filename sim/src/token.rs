//! A player's access token, held compactly between searches.
//!
//! A sim holds one token per player for the player's whole life, and most of that life the
//! player only sleeps in a match. The token is an RS256 JWT of about 2 KB (roles and
//! permissions ride in its payload): three base64url segments, so its bytes decoded take three
//! quarters of the text. [`Token`] keeps the decoded bytes and writes the text again when a call
//! needs it (a few microseconds, once per search). A token that does not come back exactly from
//! its decoded form (not three segments, padding, non-canonical trailing bits) is kept as text:
//! what is sent is always the very string the server issued.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// An access token, decoded when that gives back the same text.
#[derive(Clone)]
pub struct Token(Repr);

#[derive(Clone)]
enum Repr {
    /// The three segments decoded, back to back; `ends` are where the first two end.
    Jwt {
        bytes: Box<[u8]>,
        ends: [u32; 2],
    },
    Text(Box<str>),
}

impl Token {
    pub fn new(text: String) -> Self {
        match decode(&text) {
            Some(jwt) if jwt.text() == text => jwt,
            _ => Token(Repr::Text(text.into_boxed_str())),
        }
    }

    /// The token as issued.
    pub fn text(&self) -> String {
        match &self.0 {
            Repr::Text(text) => text.to_string(),
            Repr::Jwt { bytes, ends } => {
                let [first, second] = ends.map(|end| end as usize);
                let parts = [&bytes[..first], &bytes[first..second], &bytes[second..]];
                let mut text = String::with_capacity(bytes.len() * 4 / 3 + 4);
                for (i, part) in parts.into_iter().enumerate() {
                    if i > 0 {
                        text.push('.');
                    }
                    URL_SAFE_NO_PAD.encode_string(part, &mut text);
                }
                text
            }
        }
    }

    /// Bytes held on the heap.
    pub fn heap_bytes(&self) -> usize {
        match &self.0 {
            Repr::Jwt { bytes, .. } => bytes.len(),
            Repr::Text(text) => text.len(),
        }
    }
}

fn decode(text: &str) -> Option<Token> {
    let mut segments = text.split('.');
    let parts = [segments.next()?, segments.next()?, segments.next()?];
    if segments.next().is_some() {
        return None;
    }
    let mut bytes = Vec::with_capacity(text.len() * 3 / 4);
    let mut ends = [0u32; 2];
    for (i, part) in parts.into_iter().enumerate() {
        URL_SAFE_NO_PAD.decode_vec(part, &mut bytes).ok()?;
        if let Some(end) = ends.get_mut(i) {
            *end = u32::try_from(bytes.len()).ok()?;
        }
    }
    Some(Token(Repr::Jwt {
        bytes: bytes.into_boxed_slice(),
        ends,
    }))
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token itself: it is a credential.
        f.debug_struct("Token")
            .field("heap_bytes", &self.heap_bytes())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload_len: usize) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","kid":"k1","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(vec![b'p'; payload_len]);
        let signature = URL_SAFE_NO_PAD.encode([7u8; 256]);
        format!("{header}.{payload}.{signature}")
    }

    #[test]
    fn a_jwt_comes_back_exactly_and_takes_three_quarters() {
        for payload_len in [0, 1, 2, 3, 1000, 1001] {
            let text = jwt(payload_len);
            let token = Token::new(text.clone());
            assert_eq!(token.text(), text);
            assert!(
                token.heap_bytes() <= text.len() * 3 / 4 + 2,
                "{} of {}",
                token.heap_bytes(),
                text.len()
            );
        }
    }

    #[test]
    fn anything_else_is_kept_as_text() {
        let padded = format!("{}=", jwt(1));
        // Non-canonical trailing bits ("Q" and "R" decode to the same byte).
        let loose = format!("{}.eyJ9.QR", URL_SAFE_NO_PAD.encode(b"{}"));
        for text in [
            "not a jwt",
            "a.b",
            "a.b.c.d",
            "",
            "..",
            padded.as_str(),
            loose.as_str(),
            "abc!.def.ghi",
        ] {
            let token = Token::new(text.to_owned());
            assert_eq!(token.text(), text);
        }
    }

    #[test]
    fn debug_does_not_show_the_token() {
        let text = jwt(10);
        let shown = format!("{:?}", Token::new(text.clone()));
        assert!(!shown.contains(&text[..20]), "{shown}");
    }
}
