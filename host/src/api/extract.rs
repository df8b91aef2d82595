//! Extractors whose rejections are the API's own problems: JSON bodies (content type,
//! size limit, syntax, schema, then the Rust type), query strings, and raw wasm
//! uploads. A malformed request never reaches a handler.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use super::Api;
use super::problem::{ApiError, FieldError};
use super::schemas::RequestBody;

/// A JSON request body of type `T`, checked against `T`'s schema.
pub struct Json<T>(pub T);

/// Read at most `limit` bytes of the body.
async fn read_body(req: Request, limit: usize) -> Result<Bytes, ApiError> {
    match axum::body::to_bytes(req.into_body(), limit).await {
        Ok(b) => Ok(b),
        Err(e) => {
            let too_large =
                std::iter::successors(Some(&e as &(dyn std::error::Error + 'static)), |e| {
                    e.source()
                })
                .any(|e| e.is::<http_body_util::LengthLimitError>());
            Err(if too_large {
                ApiError::body_too_large(limit)
            } else {
                ApiError::unreadable_body(e.to_string())
            })
        }
    }
}

fn content_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    Some(
        value
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase(),
    )
}

fn unsupported(expected: &str, found: Option<String>) -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
        "Unsupported content type",
        match found {
            Some(f) => format!("the body must be {expected}, not {f}"),
            None => format!("the body must be {expected}; set Content-Type"),
        },
    )
}

/// A JSON value in which no object names a member twice (I-JSON, RFC 7493): with
/// `{"id": "a", "id": "b"}` a reader that keeps the first and one that keeps the last
/// would disagree about what was sent, so it is refused rather than read either way.
struct Strict(serde_json::Value);

impl<'de> serde::Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(serde_json::Value::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(serde::de::Error::custom(format!(
                    "the member {key:?} appears twice in one object"
                )));
            }
            let Strict(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(serde_json::Value::Object(object))
    }
}

/// Parse and check a JSON body for `T`.
pub fn parse_json<T: RequestBody>(api: &Api, bytes: &[u8]) -> Result<T, ApiError> {
    let value = serde_json::from_slice::<Strict>(bytes)
        .map(|v| v.0)
        .map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed-json",
                "The body is not valid JSON",
                format!("line {} column {}: {e}", e.line(), e.column()),
            )
        })?;
    let errors = api.schemas().check::<T>(&value);
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    // What the schema lets through and the Rust type still refuses (an integer out of
    // its type's range, a whole number written with a fraction) is named by its pointer.
    serde_path_to_error::deserialize(value).map_err(|e| {
        ApiError::validation(vec![FieldError {
            pointer: json_pointer(e.path()),
            message: e.inner().to_string(),
        }])
    })
}

/// The JSON pointer (RFC 6901) of a path serde took into a value.
fn json_pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut pointer = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => pointer.push_str(&format!("/{index}")),
            Segment::Map { key } => {
                pointer.push('/');
                pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
            }
            Segment::Enum { .. } | Segment::Unknown => {}
        }
    }
    pointer
}

/// Path parameters of type `T`; a parameter that cannot be read (not UTF-8 once
/// percent-decoded, or not of its type) is refused with a problem naming it.
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(rejection) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid-path",
                "The path is not valid",
                rejection.body_text(),
            )),
        }
    }
}

impl<T: RequestBody> FromRequest<Api> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, api: &Api) -> Result<Self, ApiError> {
        match content_type(req.headers()) {
            Some(t) if t == "application/json" || t.ends_with("+json") => {}
            other => return Err(unsupported("application/json", other)),
        }
        let bytes = read_body(req, api.limits().json_body).await?;
        parse_json::<T>(api, &bytes).map(Json)
    }
}

/// A wasm upload: the raw bytes of a component or core module.
pub struct Wasm(pub Bytes);

impl FromRequest<Api> for Wasm {
    type Rejection = ApiError;

    async fn from_request(req: Request, api: &Api) -> Result<Self, ApiError> {
        match content_type(req.headers()) {
            Some(t) if t == "application/wasm" || t == "application/octet-stream" => {}
            other => return Err(unsupported("application/wasm", other)),
        }
        // One byte over the registry's own limit, so the registry says how large the
        // plugin is against its limit rather than the transport cutting it off.
        let bytes = read_body(req, api.limits().upload_body).await?;
        Ok(Wasm(bytes))
    }
}

/// A data file upload (bulk imports, history files), streamed to a spool file under
/// the data directory: JSON lines (`application/x-ndjson`, `application/jsonl`,
/// `text/plain`) or
/// CSV (`text/csv`), at most [`super::Limits::data_body`] bytes. The handler may move
/// the file; whatever is still at `path` when the `DataFile` is dropped is removed, so
/// a refused upload leaves nothing in the spool.
pub struct DataFile {
    /// Where the body was written.
    pub path: std::path::PathBuf,
    /// Its format, from the content type.
    pub format: crate::bulk::Format,
    /// Its size.
    pub bytes: u64,
}

impl FromRequest<Api> for DataFile {
    type Rejection = ApiError;

    async fn from_request(req: Request, api: &Api) -> Result<Self, ApiError> {
        use http_body_util::BodyExt;
        use std::io::Write;
        let Some(format) = data_format(req.headers()) else {
            return Err(unsupported(
                "application/x-ndjson or text/csv",
                content_type(req.headers()),
            ));
        };
        let limit = api.limits().data_body;
        let dir = api.dir().join("spool");
        let internal = |e: std::io::Error| ApiError::internal(format!("spool file: {e}"));
        std::fs::create_dir_all(&dir).map_err(internal)?;
        let name = format!(
            "upload-{}",
            crate::engine::random_code(16).map_err(|e| ApiError::internal(e.to_string()))?
        );
        // The upload owns its file from here: an early return drops it, and the file.
        let mut upload = DataFile {
            path: dir.join(name),
            format,
            bytes: 0,
        };
        let mut file =
            std::io::BufWriter::new(std::fs::File::create(&upload.path).map_err(internal)?);
        let mut body = req.into_body();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| ApiError::unreadable_body(e.to_string()))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            upload.bytes += data.len() as u64;
            if upload.bytes > limit as u64 {
                return Err(ApiError::body_too_large(limit));
            }
            // A page-cache write of one frame: too short to be worth a thread hop.
            tokio::task::block_in_place(|| file.write_all(&data)).map_err(internal)?;
        }
        file.flush().map_err(internal)?;
        Ok(upload)
    }
}

/// The format of a data file's body by its content type (JSON lines:
/// `application/x-ndjson`, `application/jsonl`, `text/plain`; CSV: `text/csv`), or
/// `None` when it is not one.
pub(super) fn data_format(headers: &HeaderMap) -> Option<crate::bulk::Format> {
    match content_type(headers).as_deref()? {
        "application/x-ndjson" | "application/jsonl" | "text/plain" => {
            Some(crate::bulk::Format::Jsonl)
        }
        "text/csv" => Some(crate::bulk::Format::Csv),
        _ => None,
    }
}

impl Drop for DataFile {
    fn drop(&mut self) {
        // Moved away (a history file kept) or removed already: nothing to do.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A query string of type `T`; unknown or malformed parameters are refused.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| Query(q.0))
            .map_err(|e| {
                use std::error::Error;
                let detail = e.source().map_or_else(|| e.to_string(), |s| s.to_string());
                ApiError::invalid("query", detail)
            })
    }
}
