//! Function logs: Lambda's platform lines (spec 2.6) and the log streams
//! under `<data-dir>/logs/<function>/`, one per sandbox, rotated by size.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;
use time::OffsetDateTime;

/// A stream's file is rotated past this size; two files are kept.
pub const SEGMENT_BYTES: u64 = 8 * 1024 * 1024;

pub fn start_line(request_id: &str, version: &str) -> String {
    format!("START RequestId: {request_id} Version: {version}\n")
}

pub fn end_line(request_id: &str) -> String {
    format!("END RequestId: {request_id}\n")
}

/// Fields TAB-separated with a trailing TAB; `Init Duration` last, on a
/// cold start only.
pub fn report_line(
    request_id: &str,
    duration: Duration,
    memory_mb: u32,
    max_memory_bytes: u64,
    init: Option<Duration>,
) -> String {
    let ms = duration.as_secs_f64() * 1000.0;
    let billed = (duration.as_nanos().div_ceil(1_000_000)).max(1);
    let used_mb = max_memory_bytes.div_ceil(1024 * 1024);
    let mut line = format!(
        "REPORT RequestId: {request_id}\tDuration: {ms:.2} ms\tBilled Duration: {billed} ms\t\
         Memory Size: {memory_mb} MB\tMax Memory Used: {used_mb} MB\t"
    );
    if let Some(init) = init {
        line.push_str(&format!("Init Duration: {:.2} ms\t", init.as_secs_f64() * 1000.0));
    }
    line.push('\n');
    line
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

fn timestamp(t: OffsetDateTime) -> String {
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
        let line = report_line("id", Duration::from_micros(3_757_180), 128, 81 * 1024 * 1024, None);
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
        );
        assert!(cold.ends_with("Max Memory Used: 1 MB\tInit Duration: 170.57 ms\t\n"));
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
