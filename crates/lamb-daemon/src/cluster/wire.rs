//! What a forward carries between nodes (docs/cluster.md, "Node-to-node
//! traffic"), compactly: the request's body is a short JSON head (who is
//! called, how) then the payload's raw bytes; the answer's body is a
//! sequence of frames (a type byte, a 4-byte big-endian length, the bytes),
//! so a streamed response travels chunk by chunk and a whole one without
//! base64. Pure encoding, tested here; the sending and the taking are in
//! `forward`.

use crate::error::ApiError;
use crate::invoker::{InvokeRequest, InvokeResponse, LogType};
use lamb_types::{ErrorKind, LambdaError};
use serde::{Deserialize, Serialize};

/// The call as it travels: what the chosen node needs to run the prepared
/// version, beside the payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub function: String,
    /// The version that runs (`$LATEST` or a number): never an alias, so
    /// the alias's dice are rolled once, by the receiving node.
    pub version: String,
    /// The ARN the caller invoked, alias and all.
    pub invoked_arn: String,
    pub request_id: String,
    pub log_tail: bool,
    pub client_context: Option<String>,
    /// The caller takes a streamed response (InvokeWithResponseStream, a
    /// `RESPONSE_STREAM` URL): the answer's chunks are framed as they come.
    pub stream: bool,
}

impl Head {
    pub fn of(req: &InvokeRequest) -> Head {
        Head {
            function: req.function.name.clone(),
            version: req.executed_version.to_string(),
            invoked_arn: req.invoked_function_arn.clone(),
            request_id: req.request_id.clone(),
            log_tail: req.log_type == LogType::Tail,
            client_context: req.client_context.clone(),
            stream: req.stream.is_some(),
        }
    }
}

/// A forward's body: the head's length (4 bytes, big-endian), the head,
/// the payload as it is.
pub fn request_body(head: &Head, payload: &[u8]) -> Vec<u8> {
    let head = serde_json::to_vec(head).expect("a head is JSON");
    let mut body = Vec::with_capacity(4 + head.len() + payload.len());
    body.extend_from_slice(&u32::try_from(head.len()).unwrap_or(u32::MAX).to_be_bytes());
    body.extend_from_slice(&head);
    body.extend_from_slice(payload);
    body
}

/// The head and the payload of a forward's body.
pub fn split_request(body: &[u8]) -> Result<(Head, &[u8]), LambdaError> {
    let bad = |why: &str| LambdaError::invalid_request_content(format!("bad forwarded invocation: {why}"));
    let len = body
        .get(..4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .ok_or_else(|| bad("no head"))?;
    let head = body.get(4..4 + len).ok_or_else(|| bad("the head is cut short"))?;
    let head = serde_json::from_slice(head).map_err(|e| bad(&e.to_string()))?;
    Ok((head, &body[4 + len..]))
}

/// One frame of a forward's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// The function began streaming, with this content type.
    Begin(String),
    /// Streamed bytes.
    Chunk(Vec<u8>),
    /// The answer's payload (absent when empty).
    Payload(Vec<u8>),
    /// The end of a call that ran: the payload came before.
    End(End),
    /// The call failed before or while it ran: the end too.
    Error(WireError),
}

/// How a call that ran ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct End {
    pub function_error: Option<String>,
    pub log_tail: Option<String>,
}

/// An [`ApiError`] as it travels: enough to answer the caller as the
/// chosen node would have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireError {
    pub status: u16,
    /// The exception's name (`x-amzn-ErrorType`).
    pub code: String,
    pub message: String,
    /// A throttle's `Reason`.
    pub reason: Option<String>,
}

/// The exceptions an invocation can end with, by name.
const KINDS: [ErrorKind; 9] = [
    ErrorKind::ResourceNotFound,
    ErrorKind::TooManyRequests,
    ErrorKind::Service,
    ErrorKind::InvalidRequestContent,
    ErrorKind::InvalidParameterValue,
    ErrorKind::RequestTooLarge,
    ErrorKind::ResourceConflict,
    ErrorKind::ResourceNotReady,
    ErrorKind::SnapStartNotReady,
];

impl WireError {
    pub fn of(e: &ApiError) -> WireError {
        let (code, message, reason) = match e {
            ApiError::Lambda(l) => (l.kind.name().to_owned(), l.message.clone(), None),
            ApiError::Throttled { reason } => (
                "TooManyRequestsException".to_owned(),
                "Rate Exceeded.".to_owned(),
                Some((*reason).to_owned()),
            ),
            ApiError::Other { code, message, .. } => ((*code).to_owned(), message.clone(), None),
            ApiError::Store(s) => {
                let l = s.to_lambda();
                (l.kind.name().to_owned(), l.message, None)
            }
        };
        WireError {
            status: e.status(),
            code,
            message,
            reason,
        }
    }

    /// The error again on the receiving node. An exception outside
    /// [`KINDS`] comes back as a `ServiceException` with its message.
    pub fn into_api(self) -> ApiError {
        if let Some(reason) = self.reason {
            return ApiError::Throttled {
                reason: throttle_reason(&reason),
            };
        }
        match KINDS.iter().find(|k| k.name() == self.code) {
            Some(kind) => LambdaError::new(*kind, self.message).into(),
            None => LambdaError::service(format!("{}: {}", self.code, self.message)).into(),
        }
    }
}

/// Lambda's throttle reasons as `'static` names.
pub fn throttle_reason(text: &str) -> &'static str {
    match text {
        "ReservedFunctionConcurrentInvocationLimitExceeded" => "ReservedFunctionConcurrentInvocationLimitExceeded",
        "FunctionInvocationRateLimitExceeded" => "FunctionInvocationRateLimitExceeded",
        _ => "ConcurrentInvocationLimitExceeded",
    }
}

const BEGIN: u8 = b'B';
const CHUNK: u8 = b'C';
const PAYLOAD: u8 = b'P';
const END: u8 = b'E';
const ERROR: u8 = b'X';

impl Frame {
    /// The frame's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let (kind, data): (u8, std::borrow::Cow<'_, [u8]>) = match self {
            Frame::Begin(ct) => (BEGIN, ct.as_bytes().into()),
            Frame::Chunk(b) => (CHUNK, b.as_slice().into()),
            Frame::Payload(b) => (PAYLOAD, b.as_slice().into()),
            Frame::End(end) => (END, serde_json::to_vec(end).expect("JSON").into()),
            Frame::Error(e) => (ERROR, serde_json::to_vec(e).expect("JSON").into()),
        };
        let mut out = Vec::with_capacity(5 + data.len());
        out.push(kind);
        out.extend_from_slice(&u32::try_from(data.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(&data);
        out
    }

    /// The frames of a whole answer.
    pub fn answer(result: &Result<InvokeResponse, ApiError>) -> Vec<u8> {
        match result {
            Ok(out) => {
                let mut bytes = if out.payload.is_empty() {
                    Vec::new()
                } else {
                    Frame::Payload(out.payload.clone()).encode()
                };
                bytes.extend(Frame::end(out).encode());
                bytes
            }
            Err(e) => Frame::Error(WireError::of(e)).encode(),
        }
    }

    pub fn end(out: &InvokeResponse) -> Frame {
        Frame::End(End {
            function_error: out.function_error.clone(),
            log_tail: out.log_tail.clone(),
        })
    }
}

/// Takes frames out of bytes as they arrive, in pieces of any size.
#[derive(Debug, Default)]
pub struct Reader {
    buf: Vec<u8>,
}

impl Reader {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole frame, if it has all arrived.
    pub fn frame(&mut self) -> Result<Option<Frame>, String> {
        let Some(head) = self.buf.get(..5) else {
            return Ok(None);
        };
        let (kind, len) = (
            head[0],
            u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize,
        );
        if self.buf.len() < 5 + len {
            return Ok(None);
        }
        let data: Vec<u8> = self.buf.drain(..5 + len).skip(5).collect();
        let json = |what: &str| format!("a bad {what} frame");
        Ok(Some(match kind {
            BEGIN => Frame::Begin(String::from_utf8(data).map_err(|_| json("begin"))?),
            CHUNK => Frame::Chunk(data),
            PAYLOAD => Frame::Payload(data),
            END => Frame::End(serde_json::from_slice(&data).map_err(|_| json("end"))?),
            ERROR => Frame::Error(serde_json::from_slice(&data).map_err(|_| json("error"))?),
            other => return Err(format!("an unknown frame type {other}")),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head() -> Head {
        Head {
            function: "f".into(),
            version: "$LATEST".into(),
            invoked_arn: "arn:aws:lambda:us-east-1:000000000000:function:f:live".into(),
            request_id: "r".into(),
            log_tail: true,
            client_context: Some("{}".into()),
            stream: false,
        }
    }

    #[test]
    fn a_request_body_carries_the_payload_bytes_as_they_are() {
        let payload = b"\x00\xff{\"raw\": true}";
        let body = request_body(&head(), payload);
        assert!(body.ends_with(payload));
        let (h, p) = split_request(&body).unwrap();
        assert_eq!((h, p), (head(), &payload[..]));
    }

    #[test]
    fn a_cut_or_empty_request_body_is_refused() {
        let body = request_body(&head(), b"x");
        assert!(split_request(&body[..10]).is_err());
        assert!(split_request(b"").is_err());
        assert!(split_request(&[0, 0, 0, 2, b'{', b'x']).is_err());
    }

    #[test]
    fn frames_are_read_back_whatever_pieces_they_arrive_in() {
        let frames = [
            Frame::Begin("text/plain".into()),
            Frame::Chunk(b"one".to_vec()),
            Frame::Chunk(Vec::new()),
            Frame::Payload(vec![7; 70_000]),
            Frame::End(End {
                function_error: Some("Unhandled".into()),
                log_tail: None,
            }),
        ];
        let bytes: Vec<u8> = frames.iter().flat_map(Frame::encode).collect();
        for piece in [1, 3, 4096, bytes.len()] {
            let mut reader = Reader::default();
            let mut got = Vec::new();
            for part in bytes.chunks(piece) {
                reader.push(part);
                while let Some(f) = reader.frame().unwrap() {
                    got.push(f);
                }
            }
            assert_eq!(got, frames);
        }
    }

    #[test]
    fn an_unknown_frame_is_an_error() {
        let mut reader = Reader::default();
        reader.push(&[b'Z', 0, 0, 0, 0]);
        assert!(reader.frame().is_err());
    }

    #[test]
    fn errors_come_back_as_the_same_exception() {
        let throttled = ApiError::Throttled {
            reason: "ReservedFunctionConcurrentInvocationLimitExceeded",
        };
        let back = WireError::of(&throttled).into_api();
        assert!(matches!(
            back,
            ApiError::Throttled {
                reason: "ReservedFunctionConcurrentInvocationLimitExceeded"
            }
        ));
        let missing: ApiError = LambdaError::not_found("Function not found: f").into();
        match WireError::of(&missing).into_api() {
            ApiError::Lambda(l) => assert_eq!(
                (l.kind, l.message.as_str()),
                (ErrorKind::ResourceNotFound, "Function not found: f")
            ),
            other => panic!("{other:?}"),
        }
        let whole = Frame::answer(&Err(missing));
        let mut reader = Reader::default();
        reader.push(&whole);
        assert!(matches!(reader.frame().unwrap(), Some(Frame::Error(e)) if e.status == 404));
    }
}
