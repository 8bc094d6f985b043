//! The lobby frame codec ([`accelbyte::frame`]): any text parses or is refused without a
//! panic, and a frame that parses comes back unchanged from `encode` and a second parse. The
//! `LbS`/`LbE` envelope is stripped first, as the lobby client does. (The first run found that a
//! bare CR inside a value survives `parse` but becomes a space in `encode` — documented, lossy,
//! harmless — so the property allows exactly that.)

use accelbyte::frame::{Frame, strip_envelope, wrap_envelope};

use crate::{Target, Verdict};

/// Real frames of the lobby protocol.
const SEEDS: &[&str] = &[
    "type: connectNotif\nlobbySessionID: 3f1c\nloginType: NewLogin\nreconnectFromCode: 0",
    "type: messageNotif\nid: 9a\nfrom: system\nto: u1\ntopic: NOTIF\npayload: found 127.0.0.1 7777\nsentAt: 2024-01-01T00:00:00Z",
    "type: messageNotif\r\nid: 1\r\ntopic: NOTIF\r\npayload: searching\r\n",
    "type: heartbeat",
    "type: partyInfoRequest\nid: 42",
    "type: personalChatRequest\nid: 7\nto: u2\npayload: a: b: c",
    "type: disconnectNotif\nconnectionId: c1\nnamespace: matchbench",
    "\n\ntype: userStatusNotif\n\nuserID: u1\navailability: 1\n",
];

#[derive(Debug)]
pub struct FrameTarget;

impl Target for FrameTarget {
    fn name(&self) -> &'static str {
        "frame"
    }

    fn seeds(&self) -> Vec<Vec<u8>> {
        let mut seeds: Vec<Vec<u8>> = SEEDS.iter().map(|s| s.as_bytes().to_vec()).collect();
        seeds.push(wrap_envelope(SEEDS[1]).into_bytes());
        seeds
    }

    fn dictionary(&self) -> Vec<String> {
        [
            "type",
            "type: ",
            ": ",
            "\n",
            "\r\n",
            "LbS",
            "LbE",
            "payload: ",
            "id: ",
            "TYPE:",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
    }

    fn execute(&mut self, input: &[u8]) -> Verdict {
        let text = String::from_utf8_lossy(input);
        let text = strip_envelope(&text);
        match Frame::parse(text) {
            Ok(frame) => {
                let encoded = frame.encode();
                let again = Frame::parse(&encoded).unwrap_or_else(|e| {
                    panic!("an encoded frame does not parse: {e}: {encoded:?} from {text:?}")
                });
                // `encode` turns a CR inside a key or value into a space (the format has no
                // escaping; parse keeps a bare CR that does not end a line), and parse trims:
                // apart from that, every field comes back, in order.
                let single = |t: &str| t.replace(['\r', '\n'], " ").trim().to_owned();
                assert_eq!(again.fields().len(), frame.fields().len(), "{text:?}");
                for ((k, v), (k2, v2)) in frame.fields().iter().zip(again.fields()) {
                    assert_eq!((single(k), single(v)), (k2.clone(), v2.clone()), "{text:?}");
                }
                // One trip reaches a fixed point.
                assert_eq!(
                    Frame::parse(&again.encode()).as_ref(),
                    Ok(&again),
                    "{text:?}"
                );
                Verdict::Accepted
            }
            Err(_) => Verdict::Refused,
        }
    }
}
