//! Just enough HTTP/1.1 for the Runtime API: one request at a time per
//! connection, `Content-Length` and chunked bodies, keep-alive by default
//! (the Python client keeps one connection) and `Connection: close` or
//! HTTP/1.1 (clients that open one per request). A streamed response
//! (`Lambda-Runtime-Function-Response-Mode: streaming`, chunked) is not read
//! with its head: the handler reads it piece by piece ([`Conn::read_stream`])
//! and relays each piece as it comes, trailers included.
//!
//! Hostile code runs beside the runtime, so every read is bounded in size
//! and in time ([`Limits`], docs/limits.md): a client that stalls, sends
//! endless headers or an endless body loses its connection, not a thread
//! forever.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Bodies past this are read and dropped, and the handler is told so: the
/// client gets its 413 without a reset connection. Past it the connection
/// is closed: 16 MiB is well over Lambda's 6 MB, and reading more only
/// serves a client that never stops.
const DISCARD_LIMIT: usize = 16 * 1024 * 1024;
/// Request line and headers together; past it: 431 and close.
const MAX_HEAD: usize = 64 * 1024;
/// Headers in one request; past it: 431 and close.
const MAX_HEADERS: usize = 64;
/// A chunk-size or trailer line.
const MAX_LINE: u64 = 4 * 1024;

/// How long a connection may take over each part of a request.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Between requests on a keep-alive connection. Longer than the longest
    /// function timeout (15 minutes): the runtime's connection sits idle
    /// while the handler runs, and must not be cut under it.
    pub idle: Duration,
    /// From the request's first byte to the end of its head.
    pub head: Duration,
    /// For the whole body, once the head is in.
    pub body: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            idle: Duration::from_secs(20 * 60),
            head: Duration::from_secs(10),
            body: Duration::from_secs(60),
        }
    }
}

/// A socket whose reads fail with `TimedOut` once `deadline` has passed,
/// however the bytes trickle in.
struct Timed {
    stream: TcpStream,
    deadline: Instant,
}

impl Read for Timed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        self.stream.set_read_timeout(Some(left))?;
        match self.stream.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(io::ErrorKind::TimedOut.into()),
            r => r,
        }
    }
}

pub struct Request {
    pub method: String,
    pub path: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The body was longer than the caller's limit; `body` is empty.
    pub oversized: bool,
    pub keep_alive: bool,
    /// A streamed response: the chunked body is still on the connection,
    /// for [`Conn::read_stream`].
    pub streaming: bool,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

pub struct Conn {
    reader: BufReader<Timed>,
    writer: TcpStream,
    limits: Limits,
    /// A streamed body not read to its end: the connection cannot carry
    /// another request.
    pub stream_pending: bool,
}

/// The end of a streamed body: its trailers (names lower-cased), or
/// `None` when the handler stopped reading it.
pub type Trailers = Option<Vec<(String, String)>>;

fn invalid(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.to_owned())
}

impl Conn {
    pub fn new(stream: TcpStream, limits: Limits) -> io::Result<Conn> {
        stream.set_nodelay(true)?;
        Ok(Conn {
            writer: stream.try_clone()?,
            reader: BufReader::with_capacity(
                16 * 1024,
                Timed {
                    stream,
                    deadline: Instant::now() + limits.idle,
                },
            ),
            limits,
            stream_pending: false,
        })
    }

    fn deadline_in(&mut self, d: Duration) {
        self.reader.get_mut().deadline = Instant::now() + d;
    }

    /// The next request; `None` when the client closed the connection.
    /// Bodies longer than `body_limit` are drained and flagged.
    pub fn read_request(&mut self, body_limit: usize) -> io::Result<Option<Request>> {
        self.deadline_in(self.limits.idle);
        if self.reader.fill_buf()?.is_empty() {
            return Ok(None);
        }
        self.deadline_in(self.limits.head);
        let mut head = Vec::with_capacity(512);
        loop {
            let before = head.len();
            let room = (MAX_HEAD + 1 - head.len()) as u64;
            let n = (&mut self.reader).take(room).read_until(b'\n', &mut head)?;
            if n == 0 {
                return if head.is_empty() {
                    Ok(None)
                } else {
                    Err(io::ErrorKind::UnexpectedEof.into())
                };
            }
            // Tolerate blank lines between requests.
            if before == 0 && (head == b"\r\n" || head == b"\n") {
                head.clear();
                continue;
            }
            if head.ends_with(b"\r\n\r\n") || head.ends_with(b"\n\n") {
                break;
            }
            if head.len() > MAX_HEAD {
                return Err(self.refuse(431, "request head too long"));
            }
        }
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Request::new(&mut slots);
        match parsed.parse(&head) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => return Err(self.refuse(400, "partial request head")),
            Err(httparse::Error::TooManyHeaders) => return Err(self.refuse(431, "too many headers")),
            Err(e) => return Err(self.refuse(400, &e.to_string())),
        }
        let headers: Vec<(String, String)> = parsed
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_ascii_lowercase(),
                    String::from_utf8_lossy(h.value).trim().to_owned(),
                )
            })
            .collect();
        let version = parsed.version.unwrap_or(1);
        let mut req = Request {
            method: parsed.method.unwrap_or("").to_owned(),
            path: parsed.path.unwrap_or("").to_owned(),
            headers,
            body: Vec::new(),
            oversized: false,
            keep_alive: version == 1,
            streaming: false,
        };
        if let Some(c) = req.header("connection") {
            let c = c.to_ascii_lowercase();
            if c.contains("close") {
                req.keep_alive = false;
            } else if c.contains("keep-alive") {
                req.keep_alive = true;
            }
        }
        let chunked = req
            .header("transfer-encoding")
            .is_some_and(|t| t.to_ascii_lowercase().contains("chunked"));
        self.deadline_in(self.limits.body);
        let streamed = req
            .header("lambda-runtime-function-response-mode")
            .is_some_and(|m| m.eq_ignore_ascii_case("streaming"));
        if chunked && streamed {
            req.streaming = true;
            self.stream_pending = true;
        } else if chunked {
            self.read_chunked(&mut req, body_limit)?;
        } else if let Some(len) = req.header("content-length") {
            let len: usize = len.parse().map_err(|_| invalid("bad content-length"))?;
            self.read_sized(&mut req, len, body_limit)?;
        }
        Ok(Some(req))
    }

    /// Answers a request that cannot be read (the connection closes after
    /// it) and gives the error that ends the connection.
    fn refuse(&mut self, status: u16, why: &str) -> io::Error {
        let _ = self.respond(status, &[], b"", false);
        invalid(why)
    }

    /// One line of a chunked body, at most [`MAX_LINE`] bytes.
    fn read_line(&mut self, line: &mut String) -> io::Result<usize> {
        line.clear();
        let n = (&mut self.reader).take(MAX_LINE).read_line(line)?;
        if n as u64 == MAX_LINE && !line.ends_with('\n') {
            return Err(invalid("chunk line too long"));
        }
        Ok(n)
    }

    fn read_sized(&mut self, req: &mut Request, len: usize, limit: usize) -> io::Result<()> {
        if len > limit {
            if len > DISCARD_LIMIT {
                req.keep_alive = false;
            } else {
                io::copy(&mut (&mut self.reader).take(len as u64), &mut io::sink())?;
            }
            req.oversized = true;
            return Ok(());
        }
        req.body.resize(len, 0);
        self.reader.read_exact(&mut req.body)
    }

    fn read_chunked(&mut self, req: &mut Request, limit: usize) -> io::Result<()> {
        let mut total = 0usize;
        let mut line = String::new();
        loop {
            self.read_line(&mut line)?;
            let size_text = line.trim().split(';').next().unwrap_or("");
            let size = usize::from_str_radix(size_text, 16).map_err(|_| invalid("bad chunk size"))?;
            if size == 0 {
                // Trailers, then the blank line.
                loop {
                    if self.read_line(&mut line)? == 0 || line.trim().is_empty() {
                        return Ok(());
                    }
                }
            }
            total = total.saturating_add(size);
            if total > DISCARD_LIMIT {
                req.keep_alive = false;
                req.oversized = true;
                return Ok(());
            }
            if total > limit || req.oversized {
                req.oversized = true;
                req.body = Vec::new();
                io::copy(&mut (&mut self.reader).take(size as u64), &mut io::sink())?;
            } else {
                let start = req.body.len();
                req.body.resize(start + size, 0);
                self.reader.read_exact(&mut req.body[start..])?;
            }
            self.read_line(&mut line)?;
        }
    }

    /// Reads a streamed (chunked) body, handing each piece (at most `piece`
    /// bytes) to `sink` as it arrives; `sink` answers `false` to stop. Each
    /// chunk has the idle limit to come: a streaming function writes when
    /// it has something, for as long as its timeout.
    pub fn read_stream(&mut self, piece: usize, mut sink: impl FnMut(&[u8]) -> bool) -> io::Result<Trailers> {
        let mut line = String::new();
        let mut buf = vec![0u8; piece.min(64 * 1024)];
        loop {
            self.deadline_in(self.limits.idle);
            self.read_line(&mut line)?;
            let size_text = line.trim().split(';').next().unwrap_or("");
            let mut left = usize::from_str_radix(size_text, 16).map_err(|_| invalid("bad chunk size"))?;
            if left == 0 {
                let trailers = self.read_trailers(&mut line)?;
                self.stream_pending = false;
                return Ok(Some(trailers));
            }
            while left > 0 {
                let n = left.min(buf.len());
                self.reader.read_exact(&mut buf[..n])?;
                left -= n;
                if !sink(&buf[..n]) {
                    return Ok(None);
                }
            }
            self.read_line(&mut line)?;
        }
    }

    /// The trailer fields after a chunked body's last chunk, up to the
    /// blank line.
    fn read_trailers(&mut self, line: &mut String) -> io::Result<Vec<(String, String)>> {
        let mut fields = Vec::new();
        loop {
            if self.read_line(line)? == 0 || line.trim().is_empty() {
                return Ok(fields);
            }
            if fields.len() >= MAX_HEADERS {
                return Err(invalid("too many trailers"));
            }
            if let Some((k, v)) = line.split_once(':') {
                fields.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
    }

    /// Writes a whole response in one call.
    pub fn respond(&mut self, status: u16, headers: &[(&str, &str)], body: &[u8], keep_alive: bool) -> io::Result<()> {
        let mut out = Vec::with_capacity(256 + body.len());
        write!(out, "HTTP/1.1 {status} {}\r\n", reason(status))?;
        for (k, v) in headers {
            write!(out, "{k}: {v}\r\n")?;
        }
        write!(out, "Content-Length: {}\r\n", body.len())?;
        if !keep_alive {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(body);
        self.writer.write_all(&out)
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Request Entity Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn pair() -> (Conn, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (server, _) = l.accept().unwrap();
        (Conn::new(server, Limits::default()).unwrap(), client)
    }

    #[test]
    fn sized_chunked_and_oversized_bodies() {
        let (mut conn, mut client) = pair();
        client
            .write_all(
                b"POST /a HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi\
                  POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n\
                  POST /c HTTP/1.1\r\nContent-Length: 10\r\nConnection: close\r\n\r\n0123456789",
            )
            .unwrap();
        let a = conn.read_request(5).unwrap().unwrap();
        assert_eq!(
            (a.path.as_str(), a.body.as_slice(), a.keep_alive),
            ("/a", &b"hi"[..], true)
        );
        let b = conn.read_request(5).unwrap().unwrap();
        assert_eq!(b.body, b"abcde");
        let c = conn.read_request(5).unwrap().unwrap();
        assert!(c.oversized && c.body.is_empty() && !c.keep_alive);
        drop(client);
        assert!(conn.read_request(5).unwrap().is_none());
    }

    #[test]
    fn streamed_bodies_come_in_pieces_with_their_trailers() {
        let (mut conn, mut client) = pair();
        client
            .write_all(
                b"POST /r HTTP/1.1\r\nLambda-Runtime-Function-Response-Mode: streaming\r\n\
                  Transfer-Encoding: chunked\r\nTrailer: Lambda-Runtime-Function-Error-Type\r\n\r\n\
                  5\r\nhello\r\n3\r\nabc\r\n0\r\nLambda-Runtime-Function-Error-Type: E\r\n\r\n\
                  GET /next HTTP/1.1\r\n\r\n",
            )
            .unwrap();
        let r = conn.read_request(5).unwrap().unwrap();
        assert!(r.streaming && r.body.is_empty() && conn.stream_pending);
        let mut pieces = Vec::new();
        let trailers = conn.read_stream(2, |p| {
            pieces.push(p.to_vec());
            true
        });
        let trailers = trailers.unwrap().unwrap();
        assert_eq!(pieces, [&b"he"[..], b"ll", b"o", b"ab", b"c"]);
        assert_eq!(trailers, [("lambda-runtime-function-error-type".into(), "E".into())]);
        assert!(!conn.stream_pending);
        assert_eq!(conn.read_request(5).unwrap().unwrap().path, "/next");
    }

    #[test]
    fn a_stopped_stream_stays_pending() {
        let (mut conn, mut client) = pair();
        client
            .write_all(
                b"POST /r HTTP/1.1\r\nLambda-Runtime-Function-Response-Mode: streaming\r\n\
                  Transfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n",
            )
            .unwrap();
        conn.read_request(5).unwrap().unwrap();
        assert_eq!(conn.read_stream(4, |_| false).unwrap(), None);
        assert!(conn.stream_pending);
    }
}
