//! The command line's client for a running server: start a simulation or a bulk
//! import over the HTTP API and follow its job with a progress bar.
//!
//! A plain HTTP/1.1 client on a TCP stream (one request per connection): the server
//! is the merchant's own, usually on the same machine; `https://` is for a proxy in
//! front of it and is not spoken here.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

/// Where the server is and who is asking.
pub struct Client {
    host: String,
    key: String,
}

/// An answer: status and body.
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The body (JSON for every API answer).
    pub body: Value,
}

impl Client {
    /// A client of `url` (`http://host:port`) with the merchant key `key`.
    pub fn new(url: &str, key: &str) -> Result<Client, String> {
        let host = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("the server must be an http:// address, not {url:?}"))?
            .trim_end_matches('/')
            .to_string();
        Ok(Client {
            host,
            key: key.to_string(),
        })
    }

    /// Send one request.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<Answer, String> {
        let fail = |e: std::io::Error| format!("{}: {e}", self.host);
        let mut stream = TcpStream::connect(&self.host).map_err(fail)?;
        stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .map_err(fail)?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\nauthorization: Bearer {}\r\ncontent-length: {}\r\n",
            self.host,
            self.key,
            body.len()
        );
        if let Some(t) = content_type {
            head.push_str(&format!("content-type: {t}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).map_err(fail)?;
        stream.write_all(body).map_err(fail)?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).map_err(fail)?;
        parse(&raw)
    }

    /// Send and insist on a 2xx answer; a problem answer becomes its detail.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<Value, String> {
        let a = self.send(method, path, content_type, body)?;
        if (200..300).contains(&a.status) {
            return Ok(a.body);
        }
        let mut why = format!(
            "{} {}",
            a.status,
            a.body["detail"].as_str().unwrap_or("(no detail)")
        );
        for e in a.body["errors"].as_array().into_iter().flatten() {
            why.push_str(&format!(
                "\n  {}: {}",
                e["pointer"].as_str().unwrap_or_default(),
                e["message"].as_str().unwrap_or_default()
            ));
        }
        Err(why)
    }

    /// Follow the job `id` of `merchant` until it ends, drawing its progress on
    /// `out` (a terminal: one line, redrawn). Returns the ended job.
    pub fn follow(&self, merchant: &str, id: &str, out: &mut dyn Write) -> Result<Value, String> {
        loop {
            let job = self.call(
                "GET",
                &format!("/v1/merchants/{merchant}/jobs/{id}"),
                None,
                b"",
            )?;
            let _ = write!(out, "\r{}", bar(&job));
            let _ = out.flush();
            let status = job["status"].as_str().unwrap_or_default();
            if status != "queued" && status != "running" {
                let _ = writeln!(out);
                return Ok(job);
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// One line of progress: `[#####.....]  50.0%  12,345/s  ETA 8s  running`.
pub fn bar(job: &Value) -> String {
    const WIDTH: usize = 30;
    let p = &job["progress"];
    let percent = p["percent"].as_f64().unwrap_or(0.0).clamp(0.0, 100.0);
    let filled = ((percent / 100.0) * WIDTH as f64).round() as usize;
    let eta = p["eta_seconds"]
        .as_f64()
        .map_or_else(|| "-".to_string(), |s| format!("{:.0}s", s.ceil()));
    format!(
        "[{}{}] {:5.1}%  {:>9.0}/s  ETA {:>5}  {:<9}",
        "#".repeat(filled),
        ".".repeat(WIDTH - filled),
        percent,
        p["per_second"].as_f64().unwrap_or(0.0),
        eta,
        job["status"].as_str().unwrap_or_default()
    )
}

fn parse(raw: &[u8]) -> Result<Answer, String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("the server closed the connection without an answer")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("the server's answer has no status")?;
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    let mut body = raw[split + 4..].to_vec();
    if chunked {
        body = dechunk(&body);
    }
    Ok(Answer {
        status,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    })
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&b[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next()?.trim(), 16).ok())
            .unwrap_or(0);
        let start = eol + 2;
        if size == 0 || b.len() < start + size {
            break;
        }
        out.extend_from_slice(&b[start..start + size]);
        b = b.get(start + size + 2..).unwrap_or_default();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_fills_with_the_percentage_and_shows_rate_and_eta() {
        let job = serde_json::json!({"status": "running", "progress": {
            "percent": 50.0, "per_second": 12345.0, "eta_seconds": 7.2}});
        let line = bar(&job);
        assert!(
            line.starts_with(&format!("[{}{}]", "#".repeat(15), ".".repeat(15))),
            "{line}"
        );
        assert!(
            line.contains(" 50.0%") && line.contains("12345/s") && line.contains("ETA    8s"),
            "{line}"
        );
    }

    #[test]
    fn chunked_answers_are_joined() {
        let raw = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\n{\"a\r\n4\r\n\":1}\r\n0\r\n\r\n";
        let a = parse(raw).unwrap();
        assert_eq!((a.status, a.body), (200, serde_json::json!({"a": 1})));
    }
}
