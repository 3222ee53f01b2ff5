//! The S3 `ObjectCreated:Put` event a new file becomes: bucket = the served
//! file system's name, key = the file's path under its root.

use lamb_store::FileTriggerRecord;
use md5::{Digest, Md5};
use serde_json::{json, Value};
use std::io::Read;
use std::path::Path;

/// A key as S3 event notifications spell it: form-URL-encoded, `/` kept,
/// a space as `+`.
pub fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' | b'*' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Whether a trigger wants a file of this file system at `key`.
pub fn matches(t: &FileTriggerRecord, filesystem: &str, key: &str) -> bool {
    let in_dir = t.dir.is_empty()
        || key
            .strip_prefix(t.dir.as_str())
            .is_some_and(|rest| rest.starts_with('/'));
    t.filesystem == filesystem && in_dir && key.starts_with(t.prefix.as_str()) && key.ends_with(t.suffix.as_str())
}

/// The most of a file the watcher reads for its eTag: a function can make
/// a 1 TB sparse file for nothing, and the watcher is one thread for every
/// trigger of its file system.
pub const ETAG_HASH_BYTES: u64 = 16 * 1024 * 1024;

/// A file's eTag and size (the size from `fstat`). Up to
/// [`ETAG_HASH_BYTES`], the hex MD5 of its content, as a single-part
/// upload's; past that, shaped like a multipart upload's, `<hex MD5 of the
/// first ETAG_HASH_BYTES>-<parts of that size>`, which S3 clients already
/// treat as opaque: not a digest of the whole content.
pub fn etag_and_size(root: &Path, rel: &Path) -> std::io::Result<(String, u64)> {
    let (file, size) = super::beneath::open_regular(root, rel)?;
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut reader = file.take(ETAG_HASH_BYTES);
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let md5 = hex::encode(hasher.finalize());
    if size <= ETAG_HASH_BYTES {
        return Ok((md5, size));
    }
    Ok((format!("{md5}-{}", size.div_ceil(ETAG_HASH_BYTES)), size))
}

pub struct ObjectCreated<'a> {
    pub trigger: &'a FileTriggerRecord,
    pub region: &'a str,
    pub key: &'a str,
    pub size: u64,
    pub etag: &'a str,
    pub event_time: time::OffsetDateTime,
    pub request_id: &'a str,
}

/// `{"Records":[{...}]}` with one S3 record.
pub fn s3_put_event(e: &ObjectCreated<'_>) -> Value {
    let bucket = &e.trigger.filesystem;
    let time = e
        .event_time
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        ))
        .unwrap_or_default();
    let sequencer = format!("{:016X}", e.event_time.unix_timestamp_nanos() as u64);
    json!({
        "Records": [{
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": e.region,
            "eventTime": time,
            "eventName": "ObjectCreated:Put",
            "userIdentity": {"principalId": "lamb"},
            "requestParameters": {"sourceIPAddress": "127.0.0.1"},
            "responseElements": {
                "x-amz-request-id": e.request_id,
                "x-amz-id-2": e.request_id,
            },
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": e.trigger.id,
                "bucket": {
                    "name": bucket,
                    "ownerIdentity": {"principalId": "lamb"},
                    "arn": format!("arn:aws:s3:::{bucket}"),
                },
                "object": {
                    "key": encode_key(e.key),
                    "size": e.size,
                    "eTag": e.etag,
                    "sequencer": sequencer,
                },
            },
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trigger(dir: &str, prefix: &str, suffix: &str) -> FileTriggerRecord {
        FileTriggerRecord {
            id: "t".into(),
            function: "f".into(),
            qualifier: "$LATEST".into(),
            filesystem: "photos".into(),
            dir: dir.into(),
            prefix: prefix.into(),
            suffix: suffix.into(),
            created_ms: 0,
        }
    }

    #[test]
    fn keys_are_encoded_as_s3_does() {
        assert_eq!(encode_key("a/b c+d.ppm"), "a/b+c%2Bd.ppm");
        assert_eq!(encode_key("é"), "%C3%A9");
    }

    #[test]
    fn filters() {
        assert!(matches(&trigger("", "", ".ppm"), "photos", "x/y.ppm"));
        assert!(!matches(&trigger("", "", ".ppm"), "photos", "x/y.thumb.png"));
        assert!(!matches(&trigger("", "", ""), "other", "y.ppm"));
        assert!(matches(&trigger("in", "in/raw-", ""), "photos", "in/raw-1"));
        assert!(!matches(&trigger("in", "", ""), "photos", "inbox/a"));
        assert!(!matches(&trigger("in", "", ""), "photos", "a"));
    }

    #[test]
    fn record_shape() {
        let t = trigger("", "", "");
        let v = s3_put_event(&ObjectCreated {
            trigger: &t,
            region: "us-east-1",
            key: "a b.ppm",
            size: 3,
            etag: "900150983cd24fb0d6963f7d28e17f72",
            event_time: time::OffsetDateTime::UNIX_EPOCH,
            request_id: "r",
        });
        let r = &v["Records"][0];
        assert_eq!(r["eventSource"], "aws:s3");
        assert_eq!(r["eventName"], "ObjectCreated:Put");
        assert_eq!(r["eventTime"], "1970-01-01T00:00:00.000Z");
        assert_eq!(r["s3"]["bucket"]["name"], "photos");
        assert_eq!(r["s3"]["object"]["key"], "a+b.ppm");
        assert_eq!(r["s3"]["object"]["size"], 3);
    }

    #[test]
    fn etag_is_hex_md5() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"abc").unwrap();
        assert_eq!(
            etag_and_size(dir.path(), Path::new("f")).unwrap(),
            ("900150983cd24fb0d6963f7d28e17f72".to_owned(), 3)
        );
    }

    #[test]
    fn a_huge_file_is_hashed_up_to_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let f = std::fs::File::create(dir.path().join("sparse")).unwrap();
        let size = 1u64 << 40;
        f.set_len(size).unwrap();
        let (etag, got) = etag_and_size(dir.path(), Path::new("sparse")).unwrap();
        assert_eq!(got, size);
        let zeros = vec![0u8; ETAG_HASH_BYTES as usize];
        let md5 = hex::encode(Md5::digest(&zeros));
        assert_eq!(etag, format!("{md5}-{}", size / ETAG_HASH_BYTES));
    }
}
