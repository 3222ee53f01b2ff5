//! The messages between the daemon and `lamb init`, over the socketpair a
//! sandbox is started with (descriptor 3 inside the sandbox).
//!
//! One frame is a little-endian `u32` length, then that many bytes: a tag
//! byte and the fields in order. A string or byte field is a `u32` length and
//! the bytes; an optional one is a presence byte first; a number is a `u64`.
//! Binary rather than JSON because payloads reach 6 MB and a warm round trip
//! should cost a copy, not an escape pass.

use std::io::{self, Read, Write};

/// The largest frame either side accepts: a 6 MiB payload and its headers.
pub const MAX_FRAME: usize = 7 * 1024 * 1024;

/// The Runtime API's limit on a buffered response (RIE's `MaxPayloadSize`).
pub const MAX_RESPONSE: usize = 6 * 1024 * 1024 + 100;

/// Lambda's limit on a streamed response (20 MiB, its default soft limit).
pub const MAX_STREAMED: usize = 20 * 1024 * 1024;

/// The most one [`FromInit::StreamChunk`] carries: a runtime's larger
/// chunk goes out as several frames, each well under [`MAX_FRAME`].
pub const MAX_STREAM_CHUNK: usize = 1024 * 1024;

/// One invocation, as the runtime sees it on `GET /next`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Invoke {
    pub request_id: String,
    /// Unix epoch milliseconds.
    pub deadline_ms: u64,
    pub invoked_function_arn: String,
    pub trace_id: String,
    /// Decoded JSON of `X-Amz-Client-Context`.
    pub client_context: Option<String>,
    pub cognito_identity: Option<String>,
    pub payload: Vec<u8>,
}

/// Why a sandbox shuts down: the `shutdownReason` of the extensions'
/// SHUTDOWN event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownReason {
    /// Idle past its time, evicted, or the daemon stops.
    Spindown,
    /// The invocation ran past the function's timeout.
    Timeout,
    /// The runtime or an extension failed.
    Failure,
}

impl ShutdownReason {
    /// Lambda's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            ShutdownReason::Spindown => "spindown",
            ShutdownReason::Timeout => "timeout",
            ShutdownReason::Failure => "failure",
        }
    }
}

/// Daemon to init.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToInit {
    Invoke(Invoke),
    /// SHUTDOWN to the extensions, SIGTERM to the runtime, at most
    /// Lambda's shutdown budget for them, then init exits (which SIGKILLs
    /// what is left).
    Shutdown(ShutdownReason),
    /// An invocation is over (answered and complete, or timed out): what
    /// only the daemon knows of it, for `platform.report`: the peak memory
    /// of the sandbox's cgroup, in MB as the REPORT line gives it.
    Report {
        request_id: String,
        max_memory_used_mb: u64,
    },
    /// SnapStart: the sandbox, initialised ahead and parked in the runtime's
    /// `GET /runtime/restore/next`, is taken for an invocation: that call
    /// answers now, the runtime runs its after-restore hooks, and init says
    /// `Ready` again at its next `/invocation/next` (or `InitError` for a
    /// `/runtime/restore/error`). A runtime that never parked (no hooks)
    /// gets `Ready` at once.
    Restore,
    /// A pre-initialised sandbox's assignment (`lamb init --prewarm`): the
    /// function's whole environment, `KEY=VALUE` each, exactly what a plain
    /// start passes to `execve`. Its code is at `/var/task` already.
    Assign {
        env: Vec<String>,
    },
}

/// Init to daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromInit {
    /// The runtime asked for its first event: Init is done.
    Ready,
    Response {
        request_id: String,
        body: Vec<u8>,
    },
    /// The runtime began a streamed response (`Lambda-Runtime-Function-
    /// Response-Mode: streaming`) with this `Content-Type`; its bytes follow
    /// as [`FromInit::StreamChunk`]s, and a `Response` (empty body) or an
    /// `Error` (the error trailers, or a cut stream) ends it.
    StreamBegin {
        request_id: String,
        content_type: String,
    },
    /// Bytes of a streamed response, as the runtime wrote them (at most
    /// [`MAX_STREAM_CHUNK`]).
    StreamChunk {
        request_id: String,
        bytes: Vec<u8>,
    },
    /// `/invocation/{id}/error`, or a response the Runtime API refused
    /// (`Function.ResponseSizeTooLarge`).
    Error {
        request_id: String,
        error_type: String,
        body: Vec<u8>,
    },
    /// `/init/error`, or no bootstrap to start.
    InitError {
        error_type: String,
        body: Vec<u8>,
    },
    /// Sent just before an answer that extensions still hold: the caller
    /// gets the answer now, and the invocation completes at `Complete`
    /// (without `Held`, the answer completes it).
    Held {
        request_id: String,
    },
    /// Every extension is back in `/event/next` after a `Held` answer: the
    /// invocation is complete, the sandbox free for the next one.
    Complete {
        request_id: String,
    },
    /// A pre-initialised sandbox's runtime client is started and waits for
    /// its assignment ([`ToInit::Assign`]).
    Prewarmed,
    /// The runtime process ended; `status` as Go prints it (`exit status 1`,
    /// `signal: killed`). Init exits right after.
    Exited {
        status: String,
    },
}

const T_INVOKE: u8 = 1;
const T_SHUTDOWN: u8 = 2;
const T_REPORT: u8 = 3;
const T_RESTORE: u8 = 7;
const T_ASSIGN: u8 = 4;
const T_READY: u8 = 10;
const T_RESPONSE: u8 = 11;
const T_ERROR: u8 = 12;
const T_INIT_ERROR: u8 = 13;
const T_EXITED: u8 = 14;
const T_HELD: u8 = 15;
const T_COMPLETE: u8 = 16;
const T_STREAM_BEGIN: u8 = 17;
const T_STREAM_CHUNK: u8 = 18;
const T_PREWARMED: u8 = 19;

/// Builds one frame, its length prefix included.
struct Enc(Vec<u8>);

impl Enc {
    fn new(tag: u8, capacity: usize) -> Enc {
        let mut v = Vec::with_capacity(capacity + 5);
        v.extend_from_slice(&[0, 0, 0, 0, tag]);
        Enc(v)
    }
    fn bytes(mut self, b: &[u8]) -> Enc {
        self.0.extend_from_slice(&(b.len() as u32).to_le_bytes());
        self.0.extend_from_slice(b);
        self
    }
    fn opt(mut self, b: Option<&str>) -> Enc {
        match b {
            None => {
                self.0.push(0);
                self
            }
            Some(s) => {
                self.0.push(1);
                self.bytes(s.as_bytes())
            }
        }
    }
    fn u64(mut self, n: u64) -> Enc {
        self.0.extend_from_slice(&n.to_le_bytes());
        self
    }
    fn finish(mut self) -> Vec<u8> {
        let len = (self.0.len() - 4) as u32;
        self.0[..4].copy_from_slice(&len.to_le_bytes());
        self.0
    }
}

/// Reads the fields of one frame.
struct Dec<'a>(&'a [u8]);

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("bad frame: {what}"))
}

impl<'a> Dec<'a> {
    fn take(&mut self, n: usize) -> io::Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(bad("truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u32(&mut self) -> io::Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> io::Result<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn bytes(&mut self) -> io::Result<Vec<u8>> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.to_vec())
    }
    fn string(&mut self) -> io::Result<String> {
        String::from_utf8(self.bytes()?).map_err(|_| bad("string is not UTF-8"))
    }
    fn opt(&mut self) -> io::Result<Option<String>> {
        match self.take(1)?[0] {
            0 => Ok(None),
            _ => self.string().map(Some),
        }
    }
}

impl ToInit {
    /// The whole frame, length prefix included.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            ToInit::Invoke(i) => Enc::new(T_INVOKE, i.payload.len() + 256)
                .bytes(i.request_id.as_bytes())
                .u64(i.deadline_ms)
                .bytes(i.invoked_function_arn.as_bytes())
                .bytes(i.trace_id.as_bytes())
                .opt(i.client_context.as_deref())
                .opt(i.cognito_identity.as_deref())
                .bytes(&i.payload)
                .finish(),
            ToInit::Shutdown(reason) => {
                let mut e = Enc::new(T_SHUTDOWN, 1);
                e.0.push(*reason as u8);
                e.finish()
            }
            ToInit::Report {
                request_id,
                max_memory_used_mb,
            } => Enc::new(T_REPORT, 48)
                .bytes(request_id.as_bytes())
                .u64(*max_memory_used_mb)
                .finish(),
            ToInit::Restore => Enc::new(T_RESTORE, 0).finish(),
            ToInit::Assign { env } => {
                let size = env.iter().map(|e| e.len() + 4).sum::<usize>() + 8;
                env.iter()
                    .fold(Enc::new(T_ASSIGN, size).u64(env.len() as u64), |e, v| {
                        e.bytes(v.as_bytes())
                    })
                    .finish()
            }
        }
    }

    /// Decodes a frame without its length prefix.
    pub fn decode(frame: &[u8]) -> io::Result<ToInit> {
        let mut d = Dec(frame);
        match d.take(1)?[0] {
            T_INVOKE => Ok(ToInit::Invoke(Invoke {
                request_id: d.string()?,
                deadline_ms: d.u64()?,
                invoked_function_arn: d.string()?,
                trace_id: d.string()?,
                client_context: d.opt()?,
                cognito_identity: d.opt()?,
                payload: d.bytes()?,
            })),
            T_SHUTDOWN => Ok(ToInit::Shutdown(match d.take(1)?[0] {
                0 => ShutdownReason::Spindown,
                1 => ShutdownReason::Timeout,
                2 => ShutdownReason::Failure,
                _ => return Err(bad("unknown shutdown reason")),
            })),
            T_REPORT => Ok(ToInit::Report {
                request_id: d.string()?,
                max_memory_used_mb: d.u64()?,
            }),
            T_RESTORE => Ok(ToInit::Restore),
            T_ASSIGN => {
                let n = d.u64()?;
                // Each entry costs at least its 4-byte length.
                if n > (d.0.len() / 4) as u64 {
                    return Err(bad("too many variables"));
                }
                let env = (0..n).map(|_| d.string()).collect::<io::Result<Vec<_>>>()?;
                Ok(ToInit::Assign { env })
            }
            _ => Err(bad("unknown tag")),
        }
    }
}

impl FromInit {
    /// The whole frame, length prefix included.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            FromInit::Ready => Enc::new(T_READY, 0).finish(),
            FromInit::Prewarmed => Enc::new(T_PREWARMED, 0).finish(),
            FromInit::Response { request_id, body } => Enc::new(T_RESPONSE, body.len() + 64)
                .bytes(request_id.as_bytes())
                .bytes(body)
                .finish(),
            FromInit::Error {
                request_id,
                error_type,
                body,
            } => Enc::new(T_ERROR, body.len() + 128)
                .bytes(request_id.as_bytes())
                .bytes(error_type.as_bytes())
                .bytes(body)
                .finish(),
            FromInit::InitError { error_type, body } => Enc::new(T_INIT_ERROR, body.len() + 64)
                .bytes(error_type.as_bytes())
                .bytes(body)
                .finish(),
            FromInit::Exited { status } => Enc::new(T_EXITED, 32).bytes(status.as_bytes()).finish(),
            FromInit::Held { request_id } => Enc::new(T_HELD, 40).bytes(request_id.as_bytes()).finish(),
            FromInit::Complete { request_id } => Enc::new(T_COMPLETE, 40).bytes(request_id.as_bytes()).finish(),
            FromInit::StreamBegin {
                request_id,
                content_type,
            } => Enc::new(T_STREAM_BEGIN, 128)
                .bytes(request_id.as_bytes())
                .bytes(content_type.as_bytes())
                .finish(),
            FromInit::StreamChunk { request_id, bytes } => Enc::new(T_STREAM_CHUNK, bytes.len() + 64)
                .bytes(request_id.as_bytes())
                .bytes(bytes)
                .finish(),
        }
    }

    /// Decodes a frame without its length prefix.
    pub fn decode(frame: &[u8]) -> io::Result<FromInit> {
        let mut d = Dec(frame);
        match d.take(1)?[0] {
            T_READY => Ok(FromInit::Ready),
            T_PREWARMED => Ok(FromInit::Prewarmed),
            T_RESPONSE => Ok(FromInit::Response {
                request_id: d.string()?,
                body: d.bytes()?,
            }),
            T_ERROR => Ok(FromInit::Error {
                request_id: d.string()?,
                error_type: d.string()?,
                body: d.bytes()?,
            }),
            T_INIT_ERROR => Ok(FromInit::InitError {
                error_type: d.string()?,
                body: d.bytes()?,
            }),
            T_EXITED => Ok(FromInit::Exited { status: d.string()? }),
            T_HELD => Ok(FromInit::Held {
                request_id: d.string()?,
            }),
            T_COMPLETE => Ok(FromInit::Complete {
                request_id: d.string()?,
            }),
            T_STREAM_BEGIN => Ok(FromInit::StreamBegin {
                request_id: d.string()?,
                content_type: d.string()?,
            }),
            T_STREAM_CHUNK => Ok(FromInit::StreamChunk {
                request_id: d.string()?,
                bytes: d.bytes()?,
            }),
            _ => Err(bad("unknown tag")),
        }
    }
}

/// If `buf` starts with a whole frame, its length with the prefix.
pub fn frame_len(buf: &[u8]) -> io::Result<Option<usize>> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let n = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if n > MAX_FRAME {
        return Err(bad("too long"));
    }
    Ok((buf.len() >= 4 + n).then_some(4 + n))
}

/// Reads one frame's body (without the prefix); `None` at a clean end of file.
pub fn read_frame(r: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let n = u32::from_le_bytes(len) as usize;
    if n > MAX_FRAME {
        return Err(bad("too long"));
    }
    let mut body = vec![0u8; n];
    r.read_exact(&mut body)?;
    Ok(Some(body))
}

/// Writes one whole frame in one call.
pub fn write_frame(w: &mut impl Write, frame: &[u8]) -> io::Result<()> {
    w.write_all(frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_round_trips() {
        let to = [
            ToInit::Invoke(Invoke {
                request_id: "id".into(),
                deadline_ms: 1_700_000_000_123,
                invoked_function_arn: "arn:aws:lambda:us-east-1:000000000000:function:f:live".into(),
                trace_id: String::new(),
                client_context: Some("{\"a\":1}".into()),
                cognito_identity: None,
                payload: vec![0, 1, 2, 255],
            }),
            ToInit::Shutdown(ShutdownReason::Spindown),
            ToInit::Shutdown(ShutdownReason::Timeout),
            ToInit::Shutdown(ShutdownReason::Failure),
            ToInit::Report {
                request_id: "id".into(),
                max_memory_used_mb: 81,
            },
            ToInit::Restore,
            ToInit::Assign {
                env: vec!["A=1".into(), "_HANDLER=app.handler".into(), "EMPTY=".into()],
            },
            ToInit::Assign { env: vec![] },
        ];
        for m in to {
            let frame = m.encode();
            assert_eq!(frame_len(&frame).unwrap(), Some(frame.len()));
            assert_eq!(ToInit::decode(&frame[4..]).unwrap(), m);
        }
        let from = [
            FromInit::Ready,
            FromInit::Prewarmed,
            FromInit::Response {
                request_id: "id".into(),
                body: b"{}".to_vec(),
            },
            FromInit::Error {
                request_id: "id".into(),
                error_type: "Unhandled".into(),
                body: b"{\"errorMessage\":\"x\"}".to_vec(),
            },
            FromInit::InitError {
                error_type: "Runtime.InvalidEntrypoint".into(),
                body: vec![],
            },
            FromInit::Exited {
                status: "signal: killed".into(),
            },
            FromInit::Held {
                request_id: "id".into(),
            },
            FromInit::Complete {
                request_id: "id".into(),
            },
            FromInit::StreamBegin {
                request_id: "id".into(),
                content_type: "application/vnd.awslambda.http-integration-response".into(),
            },
            FromInit::StreamChunk {
                request_id: "id".into(),
                bytes: vec![0; 8],
            },
        ];
        for m in from {
            let frame = m.encode();
            let mut r = &frame[..];
            let body = read_frame(&mut r).unwrap().unwrap();
            assert_eq!(FromInit::decode(&body).unwrap(), m);
            assert!(read_frame(&mut r).unwrap().is_none());
        }
    }

    #[test]
    fn partial_and_garbage_frames_are_refused() {
        let frame = FromInit::Ready.encode();
        assert_eq!(frame_len(&frame[..3]).unwrap(), None);
        assert!(FromInit::decode(&[99]).is_err());
        assert!(ToInit::decode(&[T_INVOKE, 5, 0, 0, 0, b'a']).is_err());
        assert!(frame_len(&u32::MAX.to_le_bytes()).is_err());
    }
}
