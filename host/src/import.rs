//! Importing a stream of operations into a merchant: one JSON object per line in,
//! one acknowledgement per line out, printed only once the operation is durable.
//!
//! This is how a merchant moving from another system loads its members and their
//! history (and how the crash test drives the engine from outside the process).
//! Operations run concurrently (up to `concurrency` at once), so acknowledgements come
//! in completion order; each names its input line.
//!
//! ```text
//! {"op": "enrol", "request": {"member": "m-1", "enrolled_at": 1790000000}}
//! {"op": "event", "member": "m-1", "event": {"id": "p-1", "occurred_at": 1790000100, "kind": "purchase", "amount": {"minor": 5000, "currency": "USD"}}}
//! {"op": "adjust", "member": "m-1", "at": 1790000200, "adjustment": {"id": "a-1", "points": 50, "reason": "goodwill", "by": "ops"}}
//! ```

use std::io::{BufRead, Write};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, mpsc};

use crate::domain::{Event, Timestamp};
use crate::engine::{Adjustment, Engine, EngineError, EnrolRequest};

/// One operation of an import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Operation {
    /// Enrol a member.
    Enrol {
        /// The enrolment.
        request: EnrolRequest,
    },
    /// Post an event.
    Event {
        /// The member.
        member: String,
        /// The event.
        event: Event,
    },
    /// A manual adjustment.
    Adjust {
        /// The member.
        member: String,
        /// When.
        at: Timestamp,
        /// The adjustment.
        adjustment: Adjustment,
    },
}

/// The acknowledgement of one input line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    /// The input line (1-based).
    pub line: u64,
    /// Whether it was applied (durably).
    pub ok: bool,
    /// The error, when it was not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

async fn apply(engine: &Arc<Engine>, merchant: &str, op: Operation) -> Result<(), EngineError> {
    let m = merchant.to_string();
    match op {
        Operation::Enrol { request } => {
            engine
                .submit(merchant, move |e| e.enrol(&m, &request))
                .await?;
        }
        Operation::Event { member, event } => {
            engine
                .submit(merchant, move |e| e.post_event(&m, &member, &event))
                .await?;
        }
        Operation::Adjust {
            member,
            at,
            adjustment,
        } => {
            engine
                .submit(merchant, move |e| e.adjust(&m, &member, &adjustment, at))
                .await?;
        }
    }
    Ok(())
}

/// Import the operations in `input` into `merchant`, writing an [`Ack`] per line to
/// `output` as each becomes durable. Returns (applied, failed).
pub async fn run(
    engine: Arc<Engine>,
    merchant: &str,
    input: impl BufRead + Send + 'static,
    mut output: impl Write,
    concurrency: usize,
) -> std::io::Result<(u64, u64)> {
    let (lines_tx, mut lines_rx) = mpsc::channel::<(u64, std::io::Result<String>)>(1024);
    // Standard input is read on its own thread: reading it blocks.
    std::thread::spawn(move || {
        for (i, line) in input.lines().enumerate() {
            if lines_tx.blocking_send((i as u64 + 1, line)).is_err() {
                return;
            }
        }
    });
    let (acks_tx, mut acks_rx) = mpsc::unbounded_channel::<Ack>();
    let limit = Arc::new(Semaphore::new(concurrency.max(1)));
    let reader = {
        let merchant = merchant.to_string();
        tokio::spawn(async move {
            while let Some((line, text)) = lines_rx.recv().await {
                let text = match text {
                    Ok(t) if t.trim().is_empty() => continue,
                    Ok(t) => t,
                    Err(e) => {
                        let _ = acks_tx.send(Ack {
                            line,
                            ok: false,
                            error: Some(format!("unreadable line: {e}")),
                        });
                        continue;
                    }
                };
                let op: Operation = match serde_json::from_str(&text) {
                    Ok(op) => op,
                    Err(e) => {
                        let _ = acks_tx.send(Ack {
                            line,
                            ok: false,
                            error: Some(format!("not an operation: {e}")),
                        });
                        continue;
                    }
                };
                let Ok(permit) = limit.clone().acquire_owned().await else {
                    return;
                };
                let (engine, merchant, acks) = (engine.clone(), merchant.clone(), acks_tx.clone());
                tokio::spawn(async move {
                    let result = apply(&engine, &merchant, op).await;
                    drop(permit);
                    let _ = acks.send(Ack {
                        line,
                        ok: result.is_ok(),
                        error: result.err().map(|e| e.to_string()),
                    });
                });
            }
        })
    };
    let (mut applied, mut failed) = (0, 0);
    while let Some(ack) = acks_rx.recv().await {
        if ack.ok {
            applied += 1;
        } else {
            failed += 1;
        }
        serde_json::to_writer(&mut output, &ack)?;
        output.write_all(b"\n")?;
        output.flush()?;
    }
    let _ = reader.await;
    Ok((applied, failed))
}
