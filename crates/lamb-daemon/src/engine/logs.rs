//! Function logs: Lambda's platform lines (spec 2.6) and the log streams
//! under `<data-dir>/logs/<function>/`, one per sandbox, rotated by size.
//!
//! What a function prints is cut into lines of at most [`LINE_BYTES`] (a
//! line without a newline never grows a buffer past that) and the
//! `LogType: Tail` copy keeps only the last [`TAIL_BYTES`]: the daemon's
//! memory does not grow with a function's output.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;
use time::OffsetDateTime;

/// A stream's file is rotated past this size; two files are kept.
pub const SEGMENT_BYTES: u64 = 8 * 1024 * 1024;

/// CloudWatch Logs' limit on one log event: a longer line is cut into
/// pieces of this size, each its own line.
pub const LINE_BYTES: usize = 256 * 1024;

/// What `X-Amz-Log-Result` carries: the last 4 KB of the log.
pub const TAIL_BYTES: usize = 4096;

/// Appends to the `LogType: Tail` copy, keeping its last [`TAIL_BYTES`].
pub fn keep_tail(tail: &mut Vec<u8>, bytes: &[u8]) {
    if bytes.len() >= TAIL_BYTES {
        tail.clear();
        tail.extend_from_slice(&bytes[bytes.len() - TAIL_BYTES..]);
        return;
    }
    let over = (tail.len() + bytes.len()).saturating_sub(TAIL_BYTES);
    tail.drain(..over);
    tail.extend_from_slice(bytes);
}

/// A function's output cut into lines: what follows the last newline is
/// held until its newline comes, or until it reaches [`LINE_BYTES`].
#[derive(Debug, Default)]
pub struct LineBuffer {
    partial: Vec<u8>,
}

impl LineBuffer {
    /// Appends to `out` the lines `bytes` completes, each ending in `\n`.
    pub fn push(&mut self, mut bytes: &[u8], out: &mut Vec<u8>) {
        while !bytes.is_empty() {
            let room = LINE_BYTES - self.partial.len();
            if room == 0 {
                // A full line: its own newline ends it, any other byte cuts it.
                out.append(&mut self.partial);
                out.push(b'\n');
                if bytes[0] == b'\n' {
                    bytes = &bytes[1..];
                }
                continue;
            }
            let take = &bytes[..bytes.len().min(room)];
            match take.iter().position(|b| *b == b'\n') {
                Some(i) => {
                    out.append(&mut self.partial);
                    out.extend_from_slice(&take[..=i]);
                    bytes = &bytes[i + 1..];
                }
                None => {
                    self.partial.extend_from_slice(take);
                    bytes = &bytes[take.len()..];
                }
            }
        }
    }

    /// Ends a partial last line.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.partial.is_empty() {
            out.append(&mut self.partial);
            out.push(b'\n');
        }
    }
}

pub fn start_line(request_id: &str, version: &str) -> String {
    format!("START RequestId: {request_id} Version: {version}\n")
}

pub fn end_line(request_id: &str) -> String {
    format!("END RequestId: {request_id}\n")
}

/// Fields TAB-separated with a trailing TAB; `Init Duration` on a cold
/// start only, `Restore Duration` and `Billed Restore Duration` on a
/// SnapStart restore only, then `Status` (`timeout`) when the invocation
/// did not end.
pub fn report_line(
    request_id: &str,
    duration: Duration,
    memory_mb: u32,
    max_memory_bytes: u64,
    init: Option<Duration>,
    restore: Option<Duration>,
    status: Option<&str>,
) -> String {
    let ms = duration.as_secs_f64() * 1000.0;
    let billed = billed_ms(duration);
    let used_mb = used_mb(max_memory_bytes);
    let mut line = format!(
        "REPORT RequestId: {request_id}\tDuration: {ms:.2} ms\tBilled Duration: {billed} ms\t\
         Memory Size: {memory_mb} MB\tMax Memory Used: {used_mb} MB\t"
    );
    if let Some(init) = init {
        line.push_str(&format!("Init Duration: {:.2} ms\t", init.as_secs_f64() * 1000.0));
    }
    if let Some(restore) = restore {
        line.push_str(&format!(
            "Restore Duration: {:.2} ms\tBilled Restore Duration: {} ms\t",
            restore.as_secs_f64() * 1000.0,
            billed_ms(restore)
        ));
    }
    if let Some(status) = status {
        line.push_str(&format!("Status: {status}\t"));
    }
    line.push('\n');
    line
}

/// Billed Duration: whole milliseconds, rounded up, at least one.
pub fn billed_ms(duration: Duration) -> u128 {
    duration.as_nanos().div_ceil(1_000_000).max(1)
}

/// Max Memory Used in MB, rounded up.
pub fn used_mb(max_memory_bytes: u64) -> u64 {
    max_memory_bytes.div_ceil(1024 * 1024)
}

/// `2020-11-10T05:46:57.874Z <id> Task timed out after 3.00 seconds`.
pub fn timeout_line(request_id: &str, timeout_s: u32) -> String {
    format!(
        "{} {request_id} Task timed out after {timeout_s}.00 seconds\n",
        timestamp(OffsetDateTime::now_utc())
    )
}

/// The two lines Lambda logs when the runtime dies mid-invocation.
pub fn exit_lines(request_id: &str, status: &str) -> String {
    format!("RequestId: {request_id} Error: Runtime exited with error: {status}\nRuntime.ExitError\n")
}

pub fn timestamp(t: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// `AWS_LAMBDA_LOG_STREAM_NAME` (`YYYY/MM/DD/[version]<32 hex>`) and the
/// file name it is kept under (slashes are dashes).
pub fn stream_names(version: &str) -> (String, String) {
    let t = OffsetDateTime::now_utc();
    let hex = format!("{:032x}", rand::random::<u128>());
    let date = format!("{:04}/{:02}/{:02}", t.year(), u8::from(t.month()), t.day());
    let stream = format!("{date}/[{version}]{hex}");
    let file = stream.replace('/', "-");
    (stream, file)
}

/// One sandbox's log stream. Writes go straight to the file (the page
/// cache), so `lamb logs --follow` sees lines while an invocation runs.
#[derive(Debug)]
pub struct LogStream {
    dir: PathBuf,
    name: String,
    file: Option<File>,
    written: u64,
    segment: u32,
}

impl LogStream {
    pub fn open(dir: PathBuf, name: String) -> LogStream {
        let mut s = LogStream {
            dir,
            name,
            file: None,
            written: 0,
            segment: 0,
        };
        s.file = s.open_segment();
        s
    }

    /// A stream that keeps nothing: a pre-initialised sandbox's until its
    /// function is assigned (its runtime writes nothing meanwhile).
    pub fn none() -> LogStream {
        LogStream {
            dir: PathBuf::new(),
            name: String::new(),
            file: None,
            written: 0,
            segment: 0,
        }
    }

    fn segment_path(&self, segment: u32) -> PathBuf {
        match segment {
            0 => self.dir.join(&self.name),
            n => self.dir.join(format!("{}.{n}", self.name)),
        }
    }

    fn open_segment(&self) -> Option<File> {
        if let Err(e) = fs::create_dir_all(&self.dir) {
            tracing::warn!(dir = %self.dir.display(), error = %e, "cannot create the log directory");
            return None;
        }
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.segment_path(self.segment))
            .map_err(|e| tracing::warn!(error = %e, "cannot open a log stream"))
            .ok()
    }

    pub fn write(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if self.written >= SEGMENT_BYTES {
            self.rotate();
        }
        if let Some(f) = self.file.as_mut() {
            if f.write_all(bytes).is_ok() {
                self.written += bytes.len() as u64;
            }
        }
    }

    /// Starts the next file and drops the one before the previous.
    fn rotate(&mut self) {
        if self.segment >= 1 {
            let _ = fs::remove_file(self.segment_path(self.segment - 1));
        }
        self.segment += 1;
        self.written = 0;
        self.file = self.open_segment();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_is_lambdas_format() {
        let line = report_line(
            "id",
            Duration::from_micros(3_757_180),
            128,
            81 * 1024 * 1024,
            None,
            None,
            None,
        );
        assert_eq!(
            line,
            "REPORT RequestId: id\tDuration: 3757.18 ms\tBilled Duration: 3758 ms\tMemory Size: 128 MB\tMax Memory Used: 81 MB\t\n"
        );
        let cold = report_line(
            "id",
            Duration::from_millis(1),
            128,
            1,
            Some(Duration::from_micros(170_570)),
            None,
            None,
        );
        assert!(cold.ends_with("Max Memory Used: 1 MB\tInit Duration: 170.57 ms\t\n"));
        let restored = report_line(
            "id",
            Duration::from_millis(1),
            128,
            1,
            None,
            Some(Duration::from_micros(4_321_100)),
            None,
        );
        assert!(
            restored
                .ends_with("Max Memory Used: 1 MB\tRestore Duration: 4321.10 ms\tBilled Restore Duration: 4322 ms\t\n"),
            "{restored}"
        );
        let timeout = report_line("id", Duration::from_secs(3), 128, 1, None, None, Some("timeout"));
        assert!(
            timeout.ends_with("Max Memory Used: 1 MB\tStatus: timeout\t\n"),
            "{timeout}"
        );
    }

    fn lines_of(chunks: &[&[u8]]) -> Vec<usize> {
        let mut buf = LineBuffer::default();
        let mut out = Vec::new();
        for c in chunks {
            buf.push(c, &mut out);
            assert!(buf.partial.len() <= LINE_BYTES);
        }
        buf.finish(&mut out);
        assert_eq!(out.last(), Some(&b'\n'));
        out.split_inclusive(|b| *b == b'\n').map(|l| l.len() - 1).collect()
    }

    #[test]
    fn long_lines_are_cut_at_the_limit() {
        let big = vec![b'x'; 2 * LINE_BYTES + 10];
        assert_eq!(lines_of(&[&big]), [LINE_BYTES, LINE_BYTES, 10]);
        // Byte by byte, as a slow writer gives it.
        let chunks: Vec<&[u8]> = big.chunks(1000).collect();
        assert_eq!(lines_of(&chunks), [LINE_BYTES, LINE_BYTES, 10]);
        // A line of exactly the limit whose newline comes in the next read
        // is one line, not a line and an empty one.
        let exact = vec![b'y'; LINE_BYTES];
        assert_eq!(lines_of(&[&exact, b"\nz"]), [LINE_BYTES, 1]);
        assert_eq!(lines_of(&[b"a\nbc", b"d\n\ne"]), [1, 3, 0, 1]);
    }

    #[test]
    fn the_tail_keeps_the_last_bytes() {
        let mut tail = Vec::new();
        let all: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        for c in all.chunks(777) {
            keep_tail(&mut tail, c);
            assert!(tail.len() <= TAIL_BYTES);
        }
        assert_eq!(tail, all[all.len() - TAIL_BYTES..]);
        keep_tail(&mut tail, &all);
        assert_eq!(tail, all[all.len() - TAIL_BYTES..]);
    }

    #[test]
    fn streams_rotate_and_keep_two_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = LogStream::open(dir.path().to_path_buf(), "s".into());
        let chunk = vec![b'x'; (SEGMENT_BYTES / 2 + 1) as usize];
        for _ in 0..6 {
            s.write(&chunk);
        }
        let mut names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["s.1", "s.2"]);
        let (stream, file) = stream_names("$LATEST");
        assert!(stream.contains("/[$LATEST]") && !file.contains('/'));
    }
}
