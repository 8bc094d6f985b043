//! The matchmaker's request parsing ([`matchmaker::http::parse_request`]): the optional JSON
//! body of `POST /matchmaking` and `/v1/tickets`. Any body is a request or an AGS-shaped 400,
//! never a panic; an accepted one has the caller first, nobody twice, and at most the listed
//! members.

use matchmaker::auth::Principal;
use matchmaker::http::parse_request;
use serde_json::Value;

use crate::mutate::{Mutator, keys_of};
use crate::{Target, Verdict};

const SEEDS: &[&str] = &[
    "",
    "{}",
    r#"{"game_mode": "1v1"}"#,
    r#"{"game_mode": "5v5", "party_members": ["u2", {"user_id": "u3"}], "party_tokens": ["a.b.c", "d.e.f"], "attributes": {"mmr": 1500, "region": "eu-west-1", "rank": 3, "tag": "x", "ready": true, "none": null}}"#,
    r#"{"party_members": [{"user_id": "me"}, "u2"], "attributes": {"region": "us-east-1"}}"#,
    r#"  {"attributes": {"mmr": 0}}  "#,
];

#[derive(Debug)]
pub struct RequestTarget {
    caller: Principal,
}

impl RequestTarget {
    pub fn new() -> Self {
        RequestTarget {
            caller: Principal {
                user_id: "me".into(),
                namespace: fakes::seed::builtin::NAMESPACE.into(),
                display_name: String::new(),
            },
        }
    }
}

impl Default for RequestTarget {
    fn default() -> Self {
        Self::new()
    }
}

impl Target for RequestTarget {
    fn name(&self) -> &'static str {
        "request"
    }

    fn seeds(&self) -> Vec<Vec<u8>> {
        SEEDS.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    fn dictionary(&self) -> Vec<String> {
        let mut keys = Vec::new();
        for text in SEEDS {
            if let Ok(v) = serde_json::from_str::<Value>(text) {
                keys_of(&v, &mut keys);
            }
        }
        keys.extend(["me", "[", "]", "{", "}", "null", "\"\""].map(str::to_owned));
        keys.sort();
        keys.dedup();
        keys
    }

    fn mutate(&self, m: &mut Mutator, base: &[u8], other: &[u8]) -> Vec<u8> {
        if m.chance(0.5) {
            if let Ok(mut v) = serde_json::from_slice::<Value>(base) {
                m.json(&mut v);
                return serde_json::to_vec(&v).unwrap_or_default();
            }
        }
        m.bytes(base, other)
    }

    fn execute(&mut self, input: &[u8]) -> Verdict {
        match parse_request(input, &self.caller, "1v1") {
            Ok(request) => {
                let members = request.ticket.party.members();
                assert_eq!(
                    members.first(),
                    Some(&self.caller.user_id),
                    "the caller leads"
                );
                let mut unique = members.to_vec();
                unique.sort();
                unique.dedup();
                assert_eq!(unique.len(), members.len(), "nobody twice");
                assert!(members.len() <= 101 && request.party_tokens.len() <= 100);
                Verdict::Accepted
            }
            Err(e) => {
                assert!(e.status.is_client_error(), "{e:?}");
                Verdict::Refused
            }
        }
    }
}
