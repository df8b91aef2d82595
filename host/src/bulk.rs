//! Bulk import of members from a file (JSONL or CSV), for merchants moving from
//! another programme: rows are parsed and checked one by one, a bad row is reported
//! with its line number and reason and the rest goes on, and rows go to the engine
//! ([`Engine::import_members`]) in chunks of 4,096, one storage batch each.
//!
//! Idempotent: running the same file again reports every member `unchanged` and
//! writes nothing, so an import that stopped (cancelled, crashed) is finished by
//! running it again.
//!
//! # Formats
//!
//! JSONL: one [`ImportedMember`] object per line, blank lines skipped. Times are epoch
//! seconds (the JSON types as declared).
//!
//! ```text
//! {"member": "m-1", "enrolled_at": 1714521600, "balance": 1200, "tier": "gold", "attributes": {"segment": "vip"}}
//! ```
//!
//! CSV (RFC 4180: a header row, fields quoted with `"` when they hold commas, quotes
//! or line breaks, `""` for a quote inside one, CRLF or LF line ends). The columns are
//! `member` and `enrolled_at` (required), `balance`, `tier`, `birthday`, `expires_at`,
//! and any number of `attr.<name>`, each an attribute. An empty cell is absent. Times
//! are epoch seconds or RFC 3339 (`2024-05-01T00:00:00Z`, `2024-05-01T02:00:00+02:00`;
//! fractions of a second are dropped). A header with an unknown, repeated or missing
//! column refuses the whole file before any row is read.
//!
//! ```text
//! member,enrolled_at,balance,tier,attr.segment
//! m-1,2024-05-01T00:00:00Z,1200,gold,"vip, founder"
//! ```
//!
//! Line numbers are the file's physical lines, from 1 (for a CSV record spanning
//! lines, the line it starts on).

use std::io::BufRead;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

use crate::domain::{Attributes, Timestamp};
use crate::engine::{Done, Engine, EngineError, ImportedMember, RowOutcome, Ticket};

/// The format of an import file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// One JSON object per line.
    Jsonl,
    /// Comma-separated values with a header row (RFC 4180).
    Csv,
}

/// How far an import is, reported after each chunk is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Rows done (imported, unchanged or failed).
    pub rows: u64,
    /// Bytes of the input read up to the end of those rows.
    pub bytes: u64,
    /// The input's size, when known ([`run_file`]).
    pub total_bytes: Option<u64>,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ImportReport {
    /// Rows read (blank lines and the CSV header not counted).
    pub rows: u64,
    /// Members created.
    pub imported: u64,
    /// Rows imported before, identically: nothing changed.
    pub unchanged: u64,
    /// Rows refused.
    pub failed: u64,
    /// The first 100 refused rows, in file order.
    pub errors: Vec<RowError>,
    /// Whether the import was cancelled before the end of the input (the rows
    /// counted were done; running the file again finishes it).
    pub cancelled: bool,
}

/// A refused row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RowError {
    /// Its line in the file (from 1).
    pub line: u64,
    /// Its member id, when it could be read.
    pub member: Option<String>,
    /// Why, naming the field.
    pub reason: String,
}

/// Rows per call to the engine: one storage batch (about four writes a row) and one
/// progress report each. Large enough that a million members are ~250 batches, small
/// enough that a batch's member locks are held briefly and its writes stay a few MB.
/// Writing one such batch takes sled about 0.2 s on the benchmark machine, and sled
/// lets no read run meanwhile: live traffic during a large import waits that long at
/// worst (smaller chunks would shorten the wait, not the import's share of writing).
const CHUNK: usize = 4_096;

/// Errors kept in the report.
const MAX_ERRORS: usize = 100;

/// Longest line (JSONL) or record (CSV) read; a longer one is a row error.
const MAX_LINE: usize = 1 << 20;

/// Import the members in `input` (in `format`) into `merchant`, `now` being the time
/// of the import. `progress` is called after each chunk is durable; `cancel` is read
/// between chunks. Rows are only counted once durable.
///
/// Errors stop the import: a CSV header that is missing or wrong, an unknown
/// merchant or one without a programme (nothing is imported); input that cannot be
/// read, or storage failing (the rows before stay imported, and running the file
/// again finishes the import). Everything else is per row, in the report.
pub fn run(
    engine: &Engine,
    merchant: &str,
    format: Format,
    input: impl BufRead,
    now: Timestamp,
    progress: &mut dyn FnMut(&Progress),
    cancel: &AtomicBool,
) -> Result<ImportReport, EngineError> {
    import(engine, merchant, format, input, None, now, progress, cancel)
}

/// [`run`] on the file at `path`, with its size in the progress reports.
pub fn run_file(
    engine: &Engine,
    merchant: &str,
    format: Format,
    path: &Path,
    now: Timestamp,
    progress: &mut dyn FnMut(&Progress),
    cancel: &AtomicBool,
) -> Result<ImportReport, EngineError> {
    let unreadable = |e: std::io::Error| input_error(format!("{}: {e}", path.display()));
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let size = file.metadata().map_err(unreadable)?.len();
    let input = std::io::BufReader::with_capacity(1 << 20, file);
    import(
        engine,
        merchant,
        format,
        input,
        Some(size),
        now,
        progress,
        cancel,
    )
}

#[allow(clippy::too_many_arguments)]
fn import(
    engine: &Engine,
    merchant: &str,
    format: Format,
    input: impl BufRead,
    total_bytes: Option<u64>,
    now: Timestamp,
    progress: &mut dyn FnMut(&Progress),
    cancel: &AtomicBool,
) -> Result<ImportReport, EngineError> {
    // The merchant and its programme first, so a wrong merchant is one error, not
    // one per chunk (and a CSV header is checked before that: see `Csv::new`).
    let mut rows: Box<dyn Rows> = match format {
        Format::Jsonl => Box::new(Jsonl::new(input)),
        Format::Csv => Box::new(Csv::new(input)?),
    };
    engine.import_members(merchant, &[], now)?;
    let mut report = ImportReport::default();
    let mut pending: Option<Submitted> = None;
    loop {
        if cancel.load(Ordering::Relaxed) {
            report.cancelled = true;
            break;
        }
        let chunk = rows.chunk()?;
        if chunk.is_empty() {
            break;
        }
        let (outcomes, ticket) = engine.import_members(merchant, &chunk.rows, now)?;
        // The previous chunk is waited for only now: its flush ran while this one
        // was read and prepared.
        if let Some(done) = pending.replace(Submitted {
            chunk,
            outcomes,
            ticket,
        }) {
            done.finish(engine, &mut report)?;
            progress(&Progress {
                rows: report.rows,
                bytes: done.chunk.bytes,
                total_bytes,
            });
        }
    }
    if let Some(done) = pending {
        done.finish(engine, &mut report)?;
        progress(&Progress {
            rows: report.rows,
            bytes: done.chunk.bytes,
            total_bytes,
        });
    }
    Ok(report)
}

/// An input that cannot be read (not a row's fault: the import stops).
fn input_error(message: String) -> EngineError {
    EngineError::Invalid {
        pointer: "input".into(),
        message,
    }
}

/// Rows read from the input, with where they were.
#[derive(Default)]
struct Chunk {
    /// The rows that parsed.
    rows: Vec<ImportedMember>,
    /// Each row's line.
    lines: Vec<u64>,
    /// Rows that did not parse, in line order.
    errors: Vec<RowError>,
    /// Input bytes read up to the end of the chunk.
    bytes: u64,
}

impl Chunk {
    fn is_empty(&self) -> bool {
        self.rows.is_empty() && self.errors.is_empty()
    }

    fn len(&self) -> usize {
        self.rows.len() + self.errors.len()
    }

    fn push(&mut self, line: u64, row: Result<ImportedMember, (Option<String>, String)>) {
        match row {
            Ok(row) => {
                self.rows.push(row);
                self.lines.push(line);
            }
            Err((member, reason)) => self.errors.push(RowError {
                line,
                member,
                reason,
            }),
        }
    }
}

/// A chunk handed to the engine, waiting to be durable.
struct Submitted {
    chunk: Chunk,
    outcomes: Vec<RowOutcome>,
    ticket: Ticket,
}

impl Submitted {
    /// Wait until durable, then count the chunk's rows into `report`.
    fn finish(&self, engine: &Engine, report: &mut ImportReport) -> Result<(), EngineError> {
        engine.durable(Done {
            value: (),
            ticket: self.ticket,
        })?;
        let c = &self.chunk;
        let mut errors = c.errors.clone();
        for ((outcome, row), line) in self.outcomes.iter().zip(&c.rows).zip(&c.lines) {
            match outcome {
                RowOutcome::Imported => report.imported += 1,
                RowOutcome::Unchanged => report.unchanged += 1,
                RowOutcome::Failed(reason) => errors.push(RowError {
                    line: *line,
                    member: Some(row.member.clone()),
                    reason: reason.clone(),
                }),
            }
        }
        errors.sort_by_key(|e| e.line);
        report.rows += c.len() as u64;
        report.failed += errors.len() as u64;
        let room = MAX_ERRORS.saturating_sub(report.errors.len());
        report.errors.extend(errors.into_iter().take(room));
        Ok(())
    }
}

/// A parser of one format.
trait Rows {
    /// The next chunk of rows (empty at the end of the input).
    fn chunk(&mut self) -> Result<Chunk, EngineError>;
}

/// Reads physical lines, counting them and the bytes read.
struct Lines<R> {
    input: R,
    /// The current line, with its line end, at most [`MAX_LINE`] bytes of it.
    buf: Vec<u8>,
    /// Whether the current line was longer than [`MAX_LINE`].
    truncated: bool,
    /// Lines read.
    line: u64,
    /// Bytes read.
    bytes: u64,
}

impl<R: BufRead> Lines<R> {
    fn new(input: R) -> Lines<R> {
        Lines {
            input,
            buf: Vec::new(),
            truncated: false,
            line: 0,
            bytes: 0,
        }
    }

    /// Read the next line into `buf`; `false` at the end of the input.
    fn advance(&mut self) -> Result<bool, EngineError> {
        self.buf.clear();
        self.truncated = false;
        let mut read = 0;
        loop {
            let available = match self.input.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(input_error(format!(
                        "unreadable at line {}: {e}",
                        self.line + 1
                    )));
                }
            };
            if available.is_empty() {
                break;
            }
            let (take, end) = match available.iter().position(|b| *b == b'\n') {
                Some(i) => (i + 1, true),
                None => (available.len(), false),
            };
            let room = MAX_LINE.saturating_sub(self.buf.len());
            self.truncated |= take > room;
            self.buf.extend_from_slice(&available[..take.min(room)]);
            self.input.consume(take);
            read += take;
            if end {
                break;
            }
        }
        if self.line == 0 && self.buf.starts_with(b"\xEF\xBB\xBF") {
            // A byte-order mark, as spreadsheet programs write: not content.
            self.buf.drain(..3);
        }
        self.bytes += read as u64;
        if read == 0 {
            return Ok(false);
        }
        self.line += 1;
        Ok(true)
    }

    /// Whether the current line holds nothing but its line end.
    fn is_blank(&self) -> bool {
        self.buf.iter().all(|b| b.is_ascii_whitespace())
    }
}

// --- JSONL ----------------------------------------------------------------------------

struct Jsonl<R> {
    lines: Lines<R>,
}

impl<R: BufRead> Jsonl<R> {
    fn new(input: R) -> Jsonl<R> {
        Jsonl {
            lines: Lines::new(input),
        }
    }
}

impl<R: BufRead> Rows for Jsonl<R> {
    fn chunk(&mut self) -> Result<Chunk, EngineError> {
        let mut chunk = Chunk::default();
        while chunk.len() < CHUNK && self.lines.advance()? {
            if self.lines.is_blank() {
                continue;
            }
            let row = if self.lines.truncated {
                Err((None, format!("longer than {MAX_LINE} bytes")))
            } else {
                parse_json(&self.lines.buf)
            };
            chunk.push(self.lines.line, row);
        }
        chunk.bytes = self.lines.bytes;
        Ok(chunk)
    }
}

/// One JSONL line as a member, or its member id (if readable) and what is wrong.
fn parse_json(line: &[u8]) -> Result<ImportedMember, (Option<String>, String)> {
    // The typed parse is the fast path; only a bad row is parsed again, loosely, to
    // name the field at fault (serde's own message does not).
    serde_json::from_slice(line).map_err(|e| json_problem(line, &e))
}

fn json_problem(line: &[u8], error: &serde_json::Error) -> (Option<String>, String) {
    use serde_json::{Value, from_value};
    let value: Value = match serde_json::from_slice(line) {
        Ok(v) => v,
        Err(e) => return (None, format!("not valid JSON: {}", serde_message(&e))),
    };
    let Value::Object(fields) = value else {
        return (None, "must be a JSON object".into());
    };
    let member = fields
        .get("member")
        .and_then(Value::as_str)
        .map(str::to_string);
    for required in ["member", "enrolled_at"] {
        if !fields.contains_key(required) {
            return (member, format!("{required}: required"));
        }
    }
    for (name, v) in fields {
        let wrong = match name.as_str() {
            "member" => from_value::<String>(v).err(),
            "enrolled_at" | "balance" => from_value::<i64>(v).err(),
            "tier" | "birthday" => from_value::<Option<String>>(v).err(),
            "expires_at" => from_value::<Option<i64>>(v).err(),
            "attributes" => from_value::<Attributes>(v).err(),
            _ => {
                return (
                    member,
                    format!(
                        "{name}: unknown field; the fields are member, enrolled_at, balance, \
                         tier, birthday, attributes and expires_at"
                    ),
                );
            }
        };
        if let Some(e) = wrong {
            return (member, format!("{name}: {}", serde_message(&e)));
        }
    }
    (member, serde_message(error))
}

/// serde_json's message without its position (lines there are within the row).
fn serde_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let position = format!(" at line {} column {}", e.line(), e.column());
    match text.strip_suffix(&position) {
        Some(message) => format!("{message} (column {})", e.column()),
        None => text,
    }
}

// --- CSV ------------------------------------------------------------------------------

/// What a CSV column holds.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Column {
    Member,
    EnrolledAt,
    Balance,
    Tier,
    Birthday,
    ExpiresAt,
    /// An attribute, by name.
    Attribute(String),
}

impl Column {
    fn parse(name: &str) -> Option<Column> {
        Some(match name {
            "member" => Column::Member,
            "enrolled_at" => Column::EnrolledAt,
            "balance" => Column::Balance,
            "tier" => Column::Tier,
            "birthday" => Column::Birthday,
            "expires_at" => Column::ExpiresAt,
            _ => match name.strip_prefix("attr.") {
                Some(a) if !a.is_empty() => Column::Attribute(a.to_string()),
                _ => return None,
            },
        })
    }
}

struct Csv<R> {
    lines: Lines<R>,
    columns: Vec<Column>,
    /// The current record's fields (reused from record to record).
    fields: Vec<Vec<u8>>,
}

/// A header problem: the whole file is refused.
fn header_error(message: String) -> EngineError {
    EngineError::Invalid {
        pointer: "header".into(),
        message,
    }
}

impl<R: BufRead> Csv<R> {
    /// Read and check the header row.
    fn new(input: R) -> Result<Csv<R>, EngineError> {
        let mut csv = Csv {
            lines: Lines::new(input),
            columns: Vec::new(),
            fields: Vec::new(),
        };
        let Some((line, problem)) = csv.record()? else {
            return Err(header_error(
                "the file is empty; a CSV import starts with a header row".into(),
            ));
        };
        if let Some(problem) = problem {
            return Err(header_error(format!("line {line}: {problem}")));
        }
        for field in &csv.fields {
            let name = std::str::from_utf8(field)
                .map_err(|_| header_error(format!("line {line}: a column name is not UTF-8")))?;
            let column = Column::parse(name).ok_or_else(|| {
                header_error(format!(
                    "line {line}: unknown column {name:?}; the columns are member, \
                     enrolled_at, balance, tier, birthday, expires_at and attr.<name>"
                ))
            })?;
            if csv.columns.contains(&column) {
                return Err(header_error(format!(
                    "line {line}: column {name:?} appears twice"
                )));
            }
            csv.columns.push(column);
        }
        for (required, name) in [
            (Column::Member, "member"),
            (Column::EnrolledAt, "enrolled_at"),
        ] {
            if !csv.columns.contains(&required) {
                return Err(header_error(format!(
                    "line {line}: the column {name:?} is required"
                )));
            }
        }
        Ok(csv)
    }

    /// Read the next record (blank lines skipped) into `fields`: its first line and
    /// what is wrong with its syntax, if anything; `None` at the end of the input.
    fn record(&mut self) -> Result<Option<(u64, Option<String>)>, EngineError> {
        loop {
            if !self.lines.advance()? {
                return Ok(None);
            }
            if !self.lines.is_blank() {
                break;
            }
        }
        let start = self.lines.line;
        let mut problem = None;
        let mut n = 0; // fields so far
        let mut state = State::FieldStart;
        let mut size = 0;
        loop {
            if self.lines.truncated && problem.is_none() {
                problem = Some(format!("a line longer than {MAX_LINE} bytes"));
            }
            size += self.lines.buf.len();
            let buf = &self.lines.buf;
            let mut i = 0;
            while i < buf.len() {
                let b = buf[i];
                // A CR before the line's LF belongs to the line end (outside quotes).
                let line_end = b == b'\n' || (b == b'\r' && buf.get(i + 1) == Some(&b'\n'));
                if n == self.fields.len() {
                    self.fields.push(Vec::new());
                }
                let field = &mut self.fields[n];
                if state == State::FieldStart {
                    field.clear();
                }
                state = match (state, b) {
                    (State::Quoted, b'"') => State::QuoteInQuoted,
                    (State::Quoted, _) => {
                        field.push(b);
                        State::Quoted
                    }
                    (State::QuoteInQuoted, b'"') => {
                        field.push(b'"');
                        State::Quoted
                    }
                    (State::FieldStart, b'"') => State::Quoted,
                    (_, b',') => {
                        n += 1;
                        State::FieldStart
                    }
                    (_, _) if line_end => {
                        if b == b'\r' {
                            i += 1;
                        }
                        n += 1;
                        State::Done
                    }
                    (State::QuoteInQuoted, _) => {
                        problem.get_or_insert_with(|| {
                            format!(
                                "field {} has text after its closing quote (a quote inside \
                                 a quoted field is written \"\")",
                                n + 1
                            )
                        });
                        field.push(b);
                        State::Unquoted
                    }
                    (_, _) => {
                        field.push(b);
                        State::Unquoted
                    }
                };
                i += 1;
            }
            match state {
                State::Done => break,
                State::Quoted if size > MAX_LINE => {
                    // Most likely a quote never closed: give up on this record and
                    // start again on the next line.
                    problem = Some(format!(
                        "a quoted field still open after {MAX_LINE} bytes (a missing quote?)"
                    ));
                    n += 1;
                    break;
                }
                State::Quoted => {
                    if !self.lines.advance()? {
                        problem = Some("a quoted field is never closed".into());
                        n += 1;
                        break;
                    }
                }
                // The last line of the input, without a line end.
                _ => {
                    n += 1;
                    if n > self.fields.len() {
                        self.fields.push(Vec::new());
                    }
                    if state == State::FieldStart {
                        self.fields[n - 1].clear();
                    }
                    break;
                }
            }
        }
        self.fields.truncate(n);
        Ok(Some((start, problem)))
    }

    /// The current record as a member.
    fn member(&self) -> Result<ImportedMember, (Option<String>, String)> {
        let text = |field: &Vec<u8>| std::str::from_utf8(field).ok().map(str::to_string);
        let member = self
            .columns
            .iter()
            .position(|c| *c == Column::Member)
            .and_then(|i| self.fields.get(i))
            .and_then(text)
            .filter(|m| !m.is_empty());
        if self.fields.len() != self.columns.len() {
            return Err((
                member,
                format!(
                    "{} fields, but the header has {} columns",
                    self.fields.len(),
                    self.columns.len()
                ),
            ));
        }
        let mut row = ImportedMember {
            member: String::new(),
            enrolled_at: 0,
            balance: 0,
            tier: None,
            birthday: None,
            attributes: Attributes::new(),
            expires_at: None,
        };
        let mut enrolled = false;
        for (column, field) in self.columns.iter().zip(&self.fields) {
            let Ok(value) = std::str::from_utf8(field) else {
                return Err((member, format!("{}: not UTF-8", column_name(column))));
            };
            if value.is_empty() {
                continue;
            }
            let bad = |what: &str| {
                (
                    member.clone(),
                    format!("{}: {value:?} {what}", column_name(column)),
                )
            };
            match column {
                Column::Member => row.member = value.to_string(),
                Column::EnrolledAt => {
                    row.enrolled_at = parse_time(value).ok_or_else(|| bad(NOT_A_TIME))?;
                    enrolled = true;
                }
                Column::Balance => {
                    row.balance = value.parse().map_err(|_| bad("is not a whole number"))?;
                }
                Column::Tier => row.tier = Some(value.to_string()),
                Column::Birthday => row.birthday = Some(value.to_string()),
                Column::ExpiresAt => {
                    row.expires_at = Some(parse_time(value).ok_or_else(|| bad(NOT_A_TIME))?);
                }
                Column::Attribute(a) => {
                    row.attributes.insert(a.clone(), value.to_string());
                }
            }
        }
        if row.member.is_empty() {
            return Err((None, "member: required".into()));
        }
        if !enrolled {
            return Err((member, "enrolled_at: required".into()));
        }
        Ok(row)
    }
}

const NOT_A_TIME: &str =
    "is neither epoch seconds nor an RFC 3339 time such as 2024-05-01T00:00:00Z";

fn column_name(c: &Column) -> String {
    match c {
        Column::Member => "member".into(),
        Column::EnrolledAt => "enrolled_at".into(),
        Column::Balance => "balance".into(),
        Column::Tier => "tier".into(),
        Column::Birthday => "birthday".into(),
        Column::ExpiresAt => "expires_at".into(),
        Column::Attribute(a) => format!("attr.{a}"),
    }
}

/// Where the CSV parser is within a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a field.
    FieldStart,
    /// In a field that did not start with a quote.
    Unquoted,
    /// In a quoted field.
    Quoted,
    /// Just after a quote in a quoted field: its end, or the first of `""`.
    QuoteInQuoted,
    /// The record ended.
    Done,
}

impl<R: BufRead> Rows for Csv<R> {
    fn chunk(&mut self) -> Result<Chunk, EngineError> {
        let mut chunk = Chunk::default();
        while chunk.len() < CHUNK {
            let Some((line, problem)) = self.record()? else {
                break;
            };
            let row = match problem {
                Some(p) => Err((None, p)),
                None => self.member(),
            };
            chunk.push(line, row);
        }
        chunk.bytes = self.lines.bytes;
        Ok(chunk)
    }
}

/// Epoch seconds, or an RFC 3339 date-time (`T`, `t` or a space between date and
/// time; `Z` or an offset; a fraction of a second dropped).
fn parse_time(s: &str) -> Option<Timestamp> {
    if let Ok(seconds) = s.parse::<i64>() {
        return Some(seconds);
    }
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let d = b.get(r)?;
        d.iter()
            .all(u8::is_ascii_digit)
            .then(|| d.iter().fold(0u32, |n, c| n * 10 + u32::from(c - b'0')))
    };
    let sep = |i: usize, c: u8| b.get(i) == Some(&c);
    if !(sep(4, b'-')
        && sep(7, b'-')
        && matches!(b.get(10), Some(b'T' | b't' | b' '))
        && sep(13, b':')
        && sep(16, b':'))
    {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let year = i32::try_from(year).ok()?;
    let month = u8::try_from(month).ok().filter(|m| (1..=12).contains(m))?;
    let day = u8::try_from(day)
        .ok()
        .filter(|d| *d >= 1 && *d <= loyalty_sdk::time::days_in_month(year, month))?;
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut rest = &b[19..];
    if let Some(fraction) = rest.strip_prefix(b".") {
        let digits = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        rest = &fraction[digits..];
    }
    let offset = match rest {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let two = |a: u8, b: u8| -> Option<i64> {
                (a.is_ascii_digit() && b.is_ascii_digit())
                    .then(|| i64::from(a - b'0') * 10 + i64::from(b - b'0'))
            };
            let (h, m) = (two(*h1, *h2)?, two(*m1, *m2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let minutes = h * 60 + m;
            if *sign == b'+' {
                minutes * 60
            } else {
                -minutes * 60
            }
        }
        _ => return None,
    };
    let local =
        loyalty_sdk::time::timestamp(year, month, day, hour as u8, minute as u8, second as u8);
    Some(local - offset)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::ledger::LineKind;
    use crate::storage::SledStorage;

    /// 2026-09-21T13:46:40Z.
    const NOW: i64 = 1_790_000_000;
    /// 2024-05-01T00:00:00Z.
    const MAY_2024: i64 = 1_714_521_600;

    fn engine(dir: &Path) -> Arc<Engine> {
        crate::engine::tests::engine(Arc::new(SledStorage::open(dir, 8 << 20).unwrap()))
    }

    fn import(engine: &Engine, format: Format, text: &str) -> Result<ImportReport, EngineError> {
        run(
            engine,
            "air",
            format,
            text.as_bytes(),
            NOW,
            &mut |_| {},
            &AtomicBool::new(false),
        )
    }

    /// The report's errors as (line, reason up to the first ':' — the field).
    fn fields(report: &ImportReport) -> Vec<(u64, String)> {
        report
            .errors
            .iter()
            .map(|e| {
                let field = e.reason.split(':').next().unwrap_or_default();
                (e.line, field.to_string())
            })
            .collect()
    }

    fn assert_consistent(engine: &Engine, members: u64) {
        let check = engine.check("air").unwrap();
        assert_eq!(check.problems, Vec::<String>::new());
        assert_eq!(check.members, members);
    }

    #[test]
    fn jsonl_members_arrive_with_their_balances_tiers_and_attributes() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(dir.path());
        let file = format!(
            "{}\n\n{}\r\n{}",
            r#"{"member": "ann", "enrolled_at": 1714521600, "balance": 1200, "tier": "gold", "attributes": {"segment": "vip"}, "birthday": "1990-02-28"}"#,
            r#"{"member": "bob", "enrolled_at": 1714521600, "balance": 50, "expires_at": 1800000000}"#,
            r#"{"member": "cy", "enrolled_at": 1714521600}"#,
        );
        let report = import(&engine, Format::Jsonl, &file).unwrap();
        assert_eq!(
            report,
            ImportReport {
                rows: 3,
                imported: 3,
                ..ImportReport::default()
            }
        );
        let ann = engine.member("air", "ann", NOW).unwrap();
        assert_eq!(ann.balance.available, 1200);
        assert_eq!(ann.tier.id, "gold");
        assert_eq!(ann.attributes["segment"], "vip");
        assert_eq!(ann.birthday.as_deref(), Some("1990-02-28"));
        assert_eq!(ann.enrolled_at, MAY_2024);
        let bob = engine.member("air", "bob", NOW).unwrap();
        assert_eq!(
            (bob.balance.available, bob.tier.id.as_str()),
            (50, "member")
        );
        let line = &engine.ledger("air", "bob", None, 5).unwrap().lines[0];
        assert_eq!((line.kind, line.points), (LineKind::Earn, 50));
        assert_eq!(
            engine.member("air", "cy", NOW).unwrap().balance.available,
            0
        );
        assert_consistent(&engine, 3);
    }

    #[test]
    fn csv_members_arrive_with_rfc_3339_and_epoch_times() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(dir.path());
        let file = "\u{feff}member,enrolled_at,balance,tier,birthday,expires_at,attr.segment,attr.city\r\n\
                    ann,2024-05-01T00:00:00Z,1200,gold,1990-02-28,,vip,Oslo\r\n\
                    bob,1714521600,7,,,2027-01-01T02:00:00+02:00,,\r\n";
        let report = import(&engine, Format::Csv, file).unwrap();
        assert_eq!(
            (report.rows, report.imported, report.failed),
            (2, 2, 0),
            "{report:?}"
        );
        let ann = engine.member("air", "ann", NOW).unwrap();
        assert_eq!((ann.enrolled_at, ann.balance.available), (MAY_2024, 1200));
        assert_eq!(ann.tier.id, "gold");
        assert_eq!(ann.attributes.len(), 2);
        assert_eq!(ann.attributes["city"], "Oslo");
        let bob = engine.member("air", "bob", NOW).unwrap();
        assert_eq!(bob.enrolled_at, MAY_2024);
        assert!(bob.attributes.is_empty(), "empty cells are absent");
        // Expiring at 2027-01-01T00:00:00Z: still there a second before, gone at it.
        let new_year = 1_798_761_600;
        let at = |t| engine.member("air", "bob", t).unwrap().balance.available;
        assert_eq!((at(new_year - 1), at(new_year)), (7, 0));
        assert_consistent(&engine, 2);
    }

    #[test]
    fn bad_rows_are_reported_by_line_and_the_good_ones_imported() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(dir.path());
        let lines = [
            r#"{"member": "a1", "enrolled_at": 1714521600, "balance": 10}"#,
            r#"{"member": "a2", "enrolled_at": 1714521600, "balance": 10"#,
            r#"{"member": "a3", "enrolled_at": 1714521600, "points": 10}"#,
            r#"{"member": "a4", "enrolled_at": 1714521600, "balance": -5}"#,
            r#"{"member": "a5", "enrolled_at": 1714521600, "tier": "diamond"}"#,
            r#"{"member": "a6", "enrolled_at": "2024-05-01T00:00:00Z"}"#,
            r#"{"member": "a7", "enrolled_at": 1714521600, "birthday": "1990-13-01"}"#,
            r#"{"member": "a 8", "enrolled_at": 1714521600}"#,
            r#"{"member": "a1", "enrolled_at": 1714521600, "balance": 99}"#,
            r#"{"enrolled_at": 1714521600}"#,
            r#"[1, 2]"#,
            r#"{"member": "a9", "enrolled_at": 1714521600, "balance": 1.5}"#,
            r#"{"member": "a10", "enrolled_at": 1714521600, "balance": 20}"#,
        ];
        let report = import(&engine, Format::Jsonl, &lines.join("\n")).unwrap();
        assert_eq!(
            fields(&report),
            [
                (2, "not valid JSON"),
                (3, "points"),
                (4, "balance"),
                (5, "tier"),
                (6, "enrolled_at"),
                (7, "birthday"),
                (8, "member"),
                (9, "member"),
                (10, "member"),
                (11, "must be a JSON object"),
                (12, "balance"),
            ]
            .map(|(l, f)| (l, f.to_string()))
        );
        assert_eq!(report.errors[1].member.as_deref(), Some("a3"));
        assert_eq!(report.errors[2].member.as_deref(), Some("a4"));
        assert_eq!((report.rows, report.imported, report.failed), (13, 2, 11));
        assert_eq!(
            engine.member("air", "a1", NOW).unwrap().balance.available,
            10
        );
        assert_eq!(
            engine.member("air", "a10", NOW).unwrap().balance.available,
            20
        );
        assert_consistent(&engine, 2);
    }

    #[test]
    fn bad_csv_rows_are_reported_by_the_line_they_start_on() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(dir.path());
        let file = "member,enrolled_at,balance,birthday\n\
                    a1,2024-05-01T00:00:00Z,10,\n\
                    a2,2024-02-30T00:00:00Z,10,\n\
                    a3,1714521600,ten,\n\
                    a4,1714521600,10\n\
                    \"a5\nstill a5\",1714521600,1,\n\
                    a6,1714521600,\"1\"0,\n\
                    ,1714521600,1,\n\
                    a7,,1,\n\
                    a8,1714521600,3,\n\
                    a9,1714521600,\"4,\n";
        let report = import(&engine, Format::Csv, file).unwrap();
        assert_eq!(
            fields(&report),
            [
                (3, "enrolled_at"),
                (4, "balance"),
                (5, "3 fields, but the header has 4 columns"),
                (6, "member"),
                (8, "field 3 has text after its closing quote (a quote inside a quoted field is written \"\")"),
                (9, "member"),
                (10, "enrolled_at"),
                (12, "a quoted field is never closed"),
            ]
            .map(|(l, f)| (l, f.to_string()))
        );
        assert_eq!((report.rows, report.imported, report.failed), (10, 2, 8));
        assert_eq!(report.errors[2].member.as_deref(), Some("a4"));
        assert_consistent(&engine, 2);
    }

    #[test]
    fn running_the_same_file_again_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(dir.path());
        let file: String = (0..50)
            .map(|i| {
                format!("{{\"member\": \"m{i}\", \"enrolled_at\": 1714521600, \"balance\": {i}}}\n")
            })
            .chain(["{\"member\": \"m0\", \"enrolled_at\": 1}\n".to_string()])
            .collect();
        let first = import(&engine, Format::Jsonl, &file).unwrap();
        assert_eq!((first.imported, first.failed), (50, 1));
        let before = engine.member("air", "m7", NOW).unwrap();
        let written = engine.flush_stats().operations;
        let again = import(&engine, Format::Jsonl, &file).unwrap();
        assert_eq!((again.rows, again.unchanged, again.failed), (51, 50, 1));
        assert_eq!(again.errors, first.errors);
        assert_eq!(
            engine.flush_stats().operations,
            written,
            "the second run wrote"
        );
        assert_eq!(engine.member("air", "m7", NOW).unwrap(), before);
        assert_consistent(&engine, 50);
    }

    #[test]
    fn quoted_csv_fields_keep_their_commas_quotes_and_line_breaks() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(dir.path());
        let file = "attr.note,member,enrolled_at\r\n\
                    \"one, two\",a,1714521600\r\n\
                    \"she said \"\"hi\"\"\",b,1714521600\r\n\
                    \"line one\r\nline two\nline three\",c,1714521600\r\n\
                    \"\",\"d\",\"1714521600\"\r\n\
                    5\" screen,e,1714521600";
        let report = import(&engine, Format::Csv, file).unwrap();
        assert_eq!((report.imported, report.failed), (5, 0), "{report:?}");
        let note = |m: &str| {
            engine
                .member("air", m, NOW)
                .unwrap()
                .attributes
                .get("note")
                .cloned()
        };
        assert_eq!(note("a").as_deref(), Some("one, two"));
        assert_eq!(note("b").as_deref(), Some("she said \"hi\""));
        assert_eq!(
            note("c").as_deref(),
            Some("line one\r\nline two\nline three")
        );
        assert_eq!(note("d"), None);
        assert_eq!(note("e").as_deref(), Some("5\" screen"));
    }

    #[test]
    fn a_bad_csv_header_refuses_the_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(dir.path());
        for (file, says) in [
            ("member,enrolled_at,points\na,1\n", "\"points\""),
            ("member,enrolled_at,attr.\na,1\n", "\"attr.\""),
            ("member,enrolled_at,member\na,1,a\n", "twice"),
            ("member,balance\na,1\n", "\"enrolled_at\" is required"),
            ("", "empty"),
            ("\n\n", "empty"),
        ] {
            match import(&engine, Format::Csv, file) {
                Err(EngineError::Invalid { pointer, message }) => {
                    assert_eq!(pointer, "header");
                    assert!(message.contains(says), "{file:?}: {message}");
                }
                other => panic!("{file:?}: {other:?}"),
            }
        }
        assert_eq!(engine.check("air").unwrap().members, 0);
    }

    #[test]
    fn an_unknown_merchant_is_one_error() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(dir.path());
        let result = run(
            &engine,
            "nobody",
            Format::Jsonl,
            &b"{\"member\": \"a\", \"enrolled_at\": 1}\n"[..],
            NOW,
            &mut |_| {},
            &AtomicBool::new(false),
        );
        assert!(
            matches!(result, Err(EngineError::UnknownMerchant(_))),
            "{result:?}"
        );
    }

    #[test]
    fn progress_comes_per_chunk_and_cancel_stops_between_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(dir.path());
        let n = CHUNK * 2 + 10;
        let file: String = (0..n)
            .map(|i| {
                format!("{{\"member\": \"m{i}\", \"enrolled_at\": 1714521600, \"balance\": 1}}\n")
            })
            .collect();
        let mut seen = Vec::new();
        let report = run(
            &engine,
            "air",
            Format::Jsonl,
            file.as_bytes(),
            NOW,
            &mut |p| seen.push(*p),
            &AtomicBool::new(false),
        )
        .unwrap();
        assert_eq!(report.imported, n as u64);
        let rows: Vec<u64> = seen.iter().map(|p| p.rows).collect();
        assert_eq!(rows, [CHUNK as u64, 2 * CHUNK as u64, n as u64]);
        assert_eq!(seen.last().unwrap().bytes, file.len() as u64);

        // Cancelled after the first chunk: that chunk is done, the rest is not read.
        let dir = tempfile::tempdir().unwrap();
        let engine = self::engine(dir.path());
        let cancel = AtomicBool::new(false);
        let report = run(
            &engine,
            "air",
            Format::Jsonl,
            file.as_bytes(),
            NOW,
            &mut |_| cancel.store(true, Ordering::Relaxed),
            &cancel,
        )
        .unwrap();
        assert!(report.cancelled);
        // The second chunk was submitted before the first was reported durable.
        assert_eq!(report.imported, 2 * CHUNK as u64);
        assert_consistent(&engine, 2 * CHUNK as u64);
        // Running the file again finishes it.
        let rest = import(&engine, Format::Jsonl, &file).unwrap();
        assert_eq!((rest.unchanged, rest.imported), (2 * CHUNK as u64, 10));
    }

    #[test]
    fn times_are_epoch_seconds_or_rfc_3339() {
        for (text, expected) in [
            ("1714521600", Some(MAY_2024)),
            ("-86400", Some(-86_400)),
            ("2024-05-01T00:00:00Z", Some(MAY_2024)),
            ("2024-05-01t00:00:00z", Some(MAY_2024)),
            ("2024-05-01 00:00:00Z", Some(MAY_2024)),
            ("2024-05-01T00:00:00.999Z", Some(MAY_2024)),
            ("2024-05-01T02:30:00+02:30", Some(MAY_2024)),
            ("2024-04-30T19:00:00-05:00", Some(MAY_2024)),
            ("2024-02-29T00:00:00Z", Some(1_709_164_800)),
            ("2023-02-29T00:00:00Z", None),
            ("2024-05-01", None),
            ("2024-05-01T00:00:00", None),
            ("2024-05-01T24:00:00Z", None),
            ("2024-05-01T00:00:00.Z", None),
            ("2024-05-01T00:00:00+2:00", None),
            ("1714521600.5", None),
            ("", None),
        ] {
            assert_eq!(parse_time(text), expected, "{text:?}");
        }
    }
}
