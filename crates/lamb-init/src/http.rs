//! Just enough HTTP/1.1 for the Runtime API: one request at a time per
//! connection, `Content-Length` and chunked bodies, keep-alive by default
//! (the Python client keeps one connection) and `Connection: close` or
//! HTTP/1.0 (clients that open one per request).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;

/// Bodies past this are read and dropped, and the handler is told so: the
/// client gets its 413 without a reset connection.
const DISCARD_LIMIT: usize = 64 * 1024 * 1024;
const MAX_HEAD: usize = 64 * 1024;

pub struct Request {
    pub method: String,
    pub path: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The body was longer than the caller's limit; `body` is empty.
    pub oversized: bool,
    pub keep_alive: bool,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

pub struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

fn invalid(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.to_owned())
}

impl Conn {
    pub fn new(stream: TcpStream) -> io::Result<Conn> {
        stream.set_nodelay(true)?;
        Ok(Conn {
            writer: stream.try_clone()?,
            reader: BufReader::with_capacity(16 * 1024, stream),
        })
    }

    /// The next request; `None` when the client closed the connection.
    /// Bodies longer than `body_limit` are drained and flagged.
    pub fn read_request(&mut self, body_limit: usize) -> io::Result<Option<Request>> {
        let mut head = Vec::with_capacity(512);
        loop {
            let before = head.len();
            let n = self.reader.read_until(b'\n', &mut head)?;
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
                return Err(invalid("request head too long"));
            }
        }
        let mut slots = [httparse::EMPTY_HEADER; 64];
        let mut parsed = httparse::Request::new(&mut slots);
        match parsed.parse(&head).map_err(|e| invalid(&e.to_string()))? {
            httparse::Status::Complete(_) => {}
            httparse::Status::Partial => return Err(invalid("partial request head")),
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
        if chunked {
            self.read_chunked(&mut req, body_limit)?;
        } else if let Some(len) = req.header("content-length") {
            let len: usize = len.parse().map_err(|_| invalid("bad content-length"))?;
            self.read_sized(&mut req, len, body_limit)?;
        }
        Ok(Some(req))
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
            line.clear();
            self.reader.read_line(&mut line)?;
            let size_text = line.trim().split(';').next().unwrap_or("");
            let size = usize::from_str_radix(size_text, 16).map_err(|_| invalid("bad chunk size"))?;
            if size == 0 {
                // Trailers, then the blank line.
                loop {
                    line.clear();
                    if self.reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
                        return Ok(());
                    }
                }
            }
            total += size;
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
            line.clear();
            self.reader.read_line(&mut line)?;
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
        413 => "Request Entity Too Large",
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
        (Conn::new(server).unwrap(), client)
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
}
