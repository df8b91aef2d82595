//! The real server, started on a loopback port with a temporary data directory, and
//! a small blocking HTTP/1.1 client to drive it as a partner app would.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::{binary, root};

/// The operator key the test servers are started with.
pub const OPERATOR: &str = "op_test_operator_key_0123456789";

/// A running `loyalty serve`, stopped (SIGTERM, then waited for) when dropped.
pub struct Server {
    child: Option<Child>,
    /// Its address.
    pub addr: SocketAddr,
    /// Its data directory.
    pub data: PathBuf,
    /// What it printed on standard output up to the end of its banner.
    pub banner: String,
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    /// A server on a fresh temporary data directory.
    pub fn start(extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        let mut s = Server::start_on(&data, extra);
        s._dir = Some(dir);
        s
    }

    /// A server on `data` (kept when the server stops).
    pub fn start_on(data: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(binary())
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--operator-key",
                OPERATOR,
            ])
            .arg("--data")
            .arg(data)
            .arg("--demo-plugins")
            .arg(crate::plugin_dir())
            .args(extra)
            .env("RUST_LOG", "warn")
            .current_dir(root())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start loyalty serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut banner = String::new();
        let mut addr = None;
        // The address comes first; with --demo the banner follows and ends with the
        // last curl line.
        let demo = extra.contains(&"--demo");
        for line in lines.by_ref() {
            let line = line.expect("read stdout");
            banner.push_str(&line);
            banner.push('\n');
            if let Some(a) = line.strip_prefix("listening on http://") {
                addr = Some(a.parse().expect("address"));
                if !demo {
                    break;
                }
            }
            if demo && line.contains("/members/alice -H") {
                break;
            }
        }
        // Keep draining so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server {
            child: Some(child),
            addr: addr.unwrap_or_else(|| panic!("the server printed no address: {banner}")),
            data: data.to_path_buf(),
            banner,
            _dir: None,
        }
    }
    /// The server process's id (`None` once it has stopped).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// A client for this server with `key` (or none).
    pub fn client(&self, key: Option<&str>) -> Client {
        Client {
            addr: self.addr,
            key: key.map(str::to_string),
        }
    }

    /// Stop with SIGTERM and wait; the exit status.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        for _ in 0..300 {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        child.wait().ok()
    }

    /// Kill with SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body text.
    pub body: String,
}

impl Answer {
    /// The body as JSON (panics with the answer when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("answer is not JSON ({e}): {self:?}"))
    }

    /// A header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The problem's kind (the fragment of its `type`), checking it is problem+json
    /// with the answer's status.
    pub fn problem(&self) -> String {
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{self:?}"
        );
        let p = self.json();
        assert_eq!(
            p["status"].as_u64(),
            Some(u64::from(self.status)),
            "{self:?}"
        );
        p["type"]
            .as_str()
            .and_then(|t| t.split('#').nth(1))
            .unwrap_or_else(|| panic!("no problem type: {self:?}"))
            .to_string()
    }

    /// Panic with the answer unless the status is `status`; the JSON body.
    pub fn expect(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "{self:?}");
        if self.body.is_empty() {
            Value::Null
        } else {
            self.json()
        }
    }
}

/// A blocking HTTP/1.1 client (one connection per request).
#[derive(Debug, Clone)]
pub struct Client {
    addr: SocketAddr,
    key: Option<String>,
}

impl Client {
    /// The same server with another key.
    pub fn with_key(&self, key: &str) -> Client {
        Client {
            addr: self.addr,
            key: Some(key.to_string()),
        }
    }

    /// GET.
    pub fn get(&self, path: &str) -> Answer {
        self.send("GET", path, &[], None)
    }

    /// POST JSON.
    pub fn post(&self, path: &str, body: &Value) -> Answer {
        self.send(
            "POST",
            path,
            &[("content-type", "application/json")],
            Some(body.to_string().as_bytes()),
        )
    }

    /// PUT JSON.
    pub fn put(&self, path: &str, body: &Value) -> Answer {
        self.send(
            "PUT",
            path,
            &[("content-type", "application/json")],
            Some(body.to_string().as_bytes()),
        )
    }

    /// PATCH JSON.
    pub fn patch(&self, path: &str, body: &Value) -> Answer {
        self.send(
            "PATCH",
            path,
            &[("content-type", "application/json")],
            Some(body.to_string().as_bytes()),
        )
    }

    /// DELETE.
    pub fn delete(&self, path: &str) -> Answer {
        self.send("DELETE", path, &[], None)
    }

    /// Any request.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Answer {
        self.try_send(method, path, headers, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// Any request; `Err` when no whole answer came (the server is gone, or was
    /// killed while answering).
    pub fn try_send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Answer, String> {
        let mut stream =
            TcpStream::connect(self.addr).map_err(|e| format!("connect to the server: {e}"))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .map_err(|e| format!("set a timeout: {e}"))?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n",
            self.addr
        );
        if let Some(k) = &self.key {
            head.push_str(&format!("authorization: Bearer {k}\r\n"));
        }
        for (n, v) in headers {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
        let body = body.unwrap_or_default();
        if !body.is_empty() || method != "GET" {
            head.push_str(&format!("content-length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        stream
            .write_all(head.as_bytes())
            .map_err(|e| format!("send the head: {e}"))?;
        // The server may answer (413) before reading everything; ignore a reset then.
        let _ = stream.write_all(body);
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw);
        parse(&raw)
    }
}

fn parse(raw: &[u8]) -> Result<Answer, String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no HTTP answer: {:?}", String::from_utf8_lossy(raw)))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status line: {head:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    if headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    } else if let Some((_, length)) = headers.iter().find(|(n, _)| n == "content-length")
        && length.parse::<usize>().ok() != Some(body.len())
    {
        return Err(format!(
            "the body ended after {} of {length} bytes",
            body.len()
        ));
    }
    Ok(Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&b[..eol])
                .split(';')
                .next()
                .unwrap_or("0")
                .trim(),
            16,
        )
        .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        out.extend_from_slice(&b[start..start + size]);
        b = &b[start + size + 2..];
    }
    out
}

/// A merchant created through the API, with its key.
pub struct Merchant {
    /// Its id.
    pub id: String,
    /// A client with its merchant key.
    pub client: Client,
    /// The key's token.
    pub key: String,
}

impl Merchant {
    /// `/v1/merchants/{id}` + `rest`.
    pub fn path(&self, rest: &str) -> String {
        format!("/v1/merchants/{}{rest}", self.id)
    }
}

/// Create merchant `id` with the operator key, upload `plugin` (a file in the plugin
/// directory, without `.wasm`) and activate it.
pub fn merchant(server: &Server, id: &str, plugin: &str) -> Merchant {
    let op = server.client(Some(OPERATOR));
    let created = op
        .post(
            "/v1/merchants",
            &serde_json::json!({"id": id, "name": format!("Merchant {id}"), "currency": "USD"}),
        )
        .expect(201);
    let key = created["key"]["token"].as_str().expect("token").to_string();
    let client = server.client(Some(&key));
    let bytes = std::fs::read(crate::plugin(plugin)).expect("plugin file");
    let v = client
        .send(
            "POST",
            &format!("/v1/merchants/{id}/plugins"),
            &[("content-type", "application/wasm")],
            Some(&bytes),
        )
        .expect(201);
    let version = v["version"].as_str().expect("version").to_string();
    client
        .post(
            &format!("/v1/merchants/{id}/plugins/{version}/activate"),
            &serde_json::json!({}),
        )
        .expect(200);
    Merchant {
        id: id.to_string(),
        client,
        key,
    }
}
