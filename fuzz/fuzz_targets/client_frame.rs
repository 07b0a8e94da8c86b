//! The WebSocket frame parser on arbitrary text: it never panics, and every
//! answer is one the protocol documents.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;

// The parser alone, without the server around it: it only needs serde.
#[path = "../../src/protocol.rs"]
#[allow(dead_code)]
mod protocol;

fuzz_target!(|data: &[u8]| {
    // Text frames are UTF-8 by the time they reach the parser; the socket
    // layer closes on anything else (tests/security_ws.rs).
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed: Option<Value> = serde_json::from_str(text).ok();
    let object = parsed.as_ref().and_then(Value::as_object);
    match protocol::parse_client_frame(text) {
        Ok((_, reference)) => {
            let object = object.expect("only a JSON object is a frame");
            let kind = object["type"].as_str().expect("a frame has a string type");
            assert!(protocol::CLIENT_TYPES.contains(&kind));
            assert_eq!(reference.as_ref(), object.get("ref"));
        }
        Err(error) => {
            assert!(
                ["bad_frame", "unknown_type", "invalid"].contains(&error.code),
                "undocumented code {}",
                error.code
            );
            // The `ref` is echoed whenever the frame was an object, so a
            // client can match even an error to its request.
            if let Some(object) = object {
                assert_eq!(error.reference.as_ref(), object.get("ref"));
            } else {
                assert!(error.reference.is_none());
            }
        }
    }
});
