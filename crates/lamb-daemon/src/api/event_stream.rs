//! AWS's event-stream encoding (`application/vnd.amazon.eventstream`), the
//! body of InvokeWithResponseStream that boto3 and the AWS SDKs parse.
//!
//! A message is a 12-byte prelude (total length, headers length, both
//! big-endian `u32`, and the CRC32 of those 8 bytes), the headers, the
//! payload, and the CRC32 of everything before it. A header is its name's
//! length (`u8`) and name, a type byte (7: string), the value's length
//! (big-endian `u16`) and the value. Lambda sends only `event` messages:
//! `PayloadChunk` (the function's bytes) and one `InvokeComplete` (JSON with
//! `ErrorCode`, `ErrorDetails`, `LogResult`) at the end.

/// The header value type of a UTF-8 string.
const STRING: u8 = 7;

/// One encoded message with string headers.
pub fn message(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut encoded_headers = Vec::new();
    for (name, value) in headers {
        encoded_headers.push(name.len() as u8);
        encoded_headers.extend_from_slice(name.as_bytes());
        encoded_headers.push(STRING);
        encoded_headers.extend_from_slice(&(value.len() as u16).to_be_bytes());
        encoded_headers.extend_from_slice(value.as_bytes());
    }
    let total = 12 + encoded_headers.len() + payload.len() + 4;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(encoded_headers.len() as u32).to_be_bytes());
    let prelude_crc = crc32fast::hash(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&encoded_headers);
    out.extend_from_slice(payload);
    let message_crc = crc32fast::hash(&out);
    out.extend_from_slice(&message_crc.to_be_bytes());
    out
}

/// An `event` message of type `event_type`.
fn event(event_type: &str, content_type: &str, payload: &[u8]) -> Vec<u8> {
    message(
        &[
            (":event-type", event_type),
            (":content-type", content_type),
            (":message-type", "event"),
        ],
        payload,
    )
}

/// Bytes the function streamed.
pub fn payload_chunk(bytes: &[u8]) -> Vec<u8> {
    event("PayloadChunk", "application/octet-stream", bytes)
}

/// The end of the stream: how the invocation ended (`ErrorCode` and
/// `ErrorDetails` when it failed) and the base64 log tail when asked.
pub fn invoke_complete(error: Option<(&str, &str)>, log_result: Option<&str>) -> Vec<u8> {
    let mut body = serde_json::Map::new();
    if let Some((code, details)) = error {
        body.insert("ErrorCode".into(), code.into());
        body.insert("ErrorDetails".into(), details.into());
    }
    if let Some(log) = log_result {
        body.insert("LogResult".into(), log.into());
    }
    let json = serde_json::Value::Object(body).to_string();
    event("InvokeComplete", "application/json", json.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_empty_message_is_awss_test_vector() {
        // aws-c-event-stream's `empty_message` vector: CRCs 0x05c248eb
        // (prelude) and 0x7d98c8ff (message).
        assert_eq!(
            message(&[], b""),
            [0, 0, 0, 0x10, 0, 0, 0, 0, 0x05, 0xc2, 0x48, 0xeb, 0x7d, 0x98, 0xc8, 0xff]
        );
    }

    #[test]
    fn a_payload_chunk_is_framed_with_its_headers_and_crcs() {
        // Checked against botocore's own decoder (EventStreamBuffer).
        let m = payload_chunk(b"hi");
        let expected_headers: &[u8] = b"\x0b:event-type\x07\x00\x0cPayloadChunk\
            \x0d:content-type\x07\x00\x18application/octet-stream\
            \x0d:message-type\x07\x00\x05event";
        let total = 12 + expected_headers.len() + 2 + 4;
        assert_eq!(&m[..4], &(total as u32).to_be_bytes());
        assert_eq!(&m[4..8], &(expected_headers.len() as u32).to_be_bytes());
        assert_eq!(&m[12..12 + expected_headers.len()], expected_headers);
        assert_eq!(&m[m.len() - 6..m.len() - 4], b"hi");
        assert_eq!(&m[8..12], &crc32fast::hash(&m[..8]).to_be_bytes());
        assert_eq!(&m[m.len() - 4..], &crc32fast::hash(&m[..m.len() - 4]).to_be_bytes());
        assert_eq!(&m[m.len() - 4..], KNOWN_CHUNK_CRC);
    }

    /// The message CRC of `payload_chunk(b"hi")`, from a reference encoding
    /// that botocore's decoder accepts (it checks both CRCs).
    const KNOWN_CHUNK_CRC: &[u8] = &[17, 98, 228, 105];

    #[test]
    fn invoke_complete_says_how_it_ended() {
        let m = invoke_complete(Some(("Unhandled", "{\"errorMessage\":\"x\"}")), Some("TG9n"));
        let json: serde_json::Value = serde_json::from_slice(&m[m.len() - 4 - json_len(&m)..m.len() - 4]).unwrap();
        assert_eq!(json["ErrorCode"], "Unhandled");
        assert_eq!(json["ErrorDetails"], "{\"errorMessage\":\"x\"}");
        assert_eq!(json["LogResult"], "TG9n");
        let ok = invoke_complete(None, None);
        assert_eq!(&ok[ok.len() - 6..ok.len() - 4], b"{}");
    }

    /// The payload length of one message.
    fn json_len(m: &[u8]) -> usize {
        let total = u32::from_be_bytes([m[0], m[1], m[2], m[3]]) as usize;
        let headers = u32::from_be_bytes([m[4], m[5], m[6], m[7]]) as usize;
        total - 12 - headers - 4
    }
}
