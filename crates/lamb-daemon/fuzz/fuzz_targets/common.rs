//! Shared by the daemon's fuzz targets: the input is a raw HTTP/1.1
//! request (so the seeds are real requests as clients send them), split
//! into its parts by `httparse`.

pub struct Raw {
    pub method: String,
    pub target: String,
    /// Names lower-cased, values as sent (lossy UTF-8).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The request in `data`, or `None` when its head does not parse.
pub fn parse(data: &[u8]) -> Option<Raw> {
    let mut slots = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut slots);
    let httparse::Status::Complete(len) = req.parse(data).ok()? else {
        return None;
    };
    Some(Raw {
        method: req.method?.to_owned(),
        target: req.path?.to_owned(),
        headers: req
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_ascii_lowercase(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect(),
        body: data[len..].to_vec(),
    })
}
