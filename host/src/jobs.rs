//! Background jobs (simulations and bulk imports): each runs on a thread of its own,
//! with progress readable while it runs, cancellation, and a record in storage
//! ([`Space::Jobs`]) that outlives the process.
//!
//! A job's record is written when it starts, about once a second while it runs (its
//! progress), and when it ends. A job that was running when the server stopped is
//! reported as `interrupted` at the next start, with the progress it had reached;
//! starting it again is the caller's choice (simulations and imports are both safe
//! to run again).

use crate::lock;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::bulk::ImportReport;
use crate::domain::Timestamp;
use crate::simulate::SimulationReport;
use crate::storage::{Batch, Key, Space, Storage, StorageError};

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// A simulation of a candidate programme.
    Simulation,
    /// A bulk import of members.
    Import,
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Waiting for another job of its kind to finish.
    Queued,
    /// Running.
    Running,
    /// Finished: the result is in `result`.
    Done,
    /// Stopped by an error (in `error`).
    Failed,
    /// Cancelled.
    Cancelled,
    /// The server stopped while it ran.
    Interrupted,
}

impl JobStatus {
    /// Whether the job has ended.
    pub fn ended(self) -> bool {
        !matches!(self, JobStatus::Queued | JobStatus::Running)
    }
}

/// How far a job has got.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct JobProgress {
    /// Units of work done (operations replayed through both sides, rows imported).
    pub done: u64,
    /// Units of work in all (0 while not yet known).
    pub total: u64,
    /// `done / total` in percent.
    pub percent: f64,
    /// Units per second since the job started.
    pub per_second: f64,
    /// Seconds left at that rate, when known.
    pub eta_seconds: Option<f64>,
}

/// A job's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum JobResult {
    /// A simulation's side-by-side report.
    Simulation(Box<SimulationReport>),
    /// An import's report.
    Import(ImportReport),
}

/// A job as stored and shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Job {
    /// Job id.
    pub id: String,
    /// What it does.
    pub kind: JobKind,
    /// Where it stands.
    pub status: JobStatus,
    /// What was asked.
    pub request: serde_json::Value,
    /// When it was started.
    pub created_at: Timestamp,
    /// When it ended.
    pub finished_at: Option<Timestamp>,
    /// How far it got.
    pub progress: JobProgress,
    /// The result, when done.
    pub result: Option<JobResult>,
    /// Why it failed or stopped.
    pub error: Option<String>,
}

/// A merchant's jobs, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct JobList {
    /// The jobs.
    pub jobs: Vec<Job>,
}

/// A running job's counters, shared with the work.
#[derive(Debug, Default)]
pub struct Counters {
    /// Units of work in all.
    pub total: AtomicU64,
    /// Units done.
    pub done: AtomicU64,
    /// Set to ask the work to stop.
    pub cancel: AtomicBool,
}

impl Counters {
    /// Whether the job was asked to stop.
    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}

/// What a job's work answers: its result, or why it stopped.
pub type Work = Box<dyn FnOnce(&Counters) -> Result<JobResult, String> + Send>;

struct Running {
    counters: Arc<Counters>,
    started: Mutex<Option<Instant>>,
}

/// The jobs of every merchant.
pub struct Jobs {
    storage: Arc<dyn Storage>,
    running: Mutex<HashMap<(String, String), Arc<Running>>>,
    // One job of each kind runs at a time (a simulation takes two cores); the others
    // queue. Std mutexes, held by a job's own thread for the whole job.
    lanes: [Arc<Mutex<()>>; 2],
    now: fn() -> Timestamp,
}

fn key(merchant: &str, id: &str) -> Key {
    Key::merchant(merchant, &[id.as_bytes()])
}

impl Jobs {
    /// The jobs in `storage`. Jobs stored as running are marked interrupted: they
    /// were running when the process stopped.
    pub fn open(storage: Arc<dyn Storage>, now: fn() -> Timestamp) -> Result<Jobs, StorageError> {
        let mut batch = Batch::new();
        for merchant in storage.merchants(Space::Jobs)? {
            for (k, bytes) in storage.scan(Space::Jobs, &merchant, &[])? {
                let Ok(mut job) = serde_json::from_slice::<Job>(&bytes) else {
                    continue;
                };
                if !job.status.ended() {
                    job.status = JobStatus::Interrupted;
                    job.finished_at = Some(now());
                    job.error = Some("the server stopped while the job ran; start it again".into());
                    batch.put(Space::Jobs, k, serde_json::to_vec(&job).unwrap_or_default());
                }
            }
        }
        if !batch.is_empty() {
            storage.apply(batch)?;
            storage.flush()?;
        }
        Ok(Jobs {
            storage,
            running: Mutex::new(HashMap::new()),
            lanes: [Arc::default(), Arc::default()],
            now,
        })
    }

    fn save(&self, merchant: &str, job: &Job) {
        let mut b = Batch::new();
        b.put(
            Space::Jobs,
            key(merchant, &job.id),
            serde_json::to_vec(job).unwrap_or_default(),
        );
        let saved = self.storage.apply(b).and_then(|()| self.storage.flush());
        if let Err(e) = saved {
            tracing::error!(merchant, job = %job.id, error = %e, "job record not saved");
        }
    }

    /// Start `work` as a job of `kind` for `merchant`, asked with `request`.
    pub fn start(
        self: &Arc<Self>,
        merchant: &str,
        kind: JobKind,
        request: serde_json::Value,
        work: Work,
    ) -> Result<Job, String> {
        let id = format!(
            "job_{}",
            crate::engine::random_code(20)
                .map_err(|e| e.to_string())?
                .to_ascii_lowercase()
        );
        let job = Job {
            id: id.clone(),
            kind,
            status: JobStatus::Queued,
            request,
            created_at: (self.now)(),
            finished_at: None,
            progress: JobProgress::default(),
            result: None,
            error: None,
        };
        self.save(merchant, &job);
        let running = Arc::new(Running {
            counters: Arc::default(),
            started: Mutex::new(None),
        });
        lock(&self.running).insert((merchant.to_string(), id.clone()), running.clone());
        let jobs = self.clone();
        let merchant = merchant.to_string();
        let first = job.clone();
        std::thread::Builder::new()
            .name(format!("job-{id}"))
            .spawn(move || jobs.run(&merchant, job, &running, work))
            .map_err(|e| format!("no thread for the job: {e}"))?;
        Ok(first)
    }

    fn run(&self, merchant: &str, mut job: Job, running: &Running, work: Work) {
        let lane = self.lanes[job.kind as usize].clone();
        let _turn = lock(&lane);
        let counters = &running.counters;
        if !counters.cancelled() {
            *lock(&running.started) = Some(Instant::now());
            job.status = JobStatus::Running;
            self.save(merchant, &job);
        }
        let finished = AtomicBool::new(false);
        let outcome = std::thread::scope(|s| {
            // Progress is saved about once a second, for a restart to report.
            s.spawn(|| {
                let mut seen = job.clone();
                seen.status = JobStatus::Running;
                'ticks: loop {
                    for _ in 0..10 {
                        std::thread::sleep(Duration::from_millis(100));
                        if finished.load(Ordering::Relaxed) {
                            break 'ticks;
                        }
                    }
                    seen.progress = self.progress(running);
                    self.save(merchant, &seen);
                }
            });
            let outcome = if counters.cancelled() {
                Err("cancelled".to_string())
            } else {
                work(counters)
            };
            finished.store(true, Ordering::Relaxed);
            outcome
        });
        job.progress = self.progress(running);
        job.finished_at = Some((self.now)());
        match outcome {
            Ok(result) => {
                job.status = JobStatus::Done;
                job.result = Some(result);
            }
            Err(_) if counters.cancelled() => {
                job.status = JobStatus::Cancelled;
                job.error = Some("cancelled".into());
            }
            Err(e) => {
                tracing::warn!(merchant, job = %job.id, error = %e, "job failed");
                job.status = JobStatus::Failed;
                job.error = Some(e);
            }
        }
        self.save(merchant, &job);
        lock(&self.running).remove(&(merchant.to_string(), job.id.clone()));
    }

    fn progress(&self, running: &Running) -> JobProgress {
        let c = &running.counters;
        let (done, total) = (
            c.done.load(Ordering::Relaxed),
            c.total.load(Ordering::Relaxed),
        );
        let secs = lock(&running.started).map_or(0.0, |s| s.elapsed().as_secs_f64());
        let per_second = if secs > 0.0 { done as f64 / secs } else { 0.0 };
        JobProgress {
            done,
            total,
            percent: if total > 0 {
                (done as f64 * 100.0 / total as f64).min(100.0)
            } else {
                0.0
            },
            per_second,
            eta_seconds: (per_second > 0.0 && total >= done)
                .then(|| (total - done) as f64 / per_second),
        }
    }

    /// A job, with its progress as of now when it is running.
    pub fn get(&self, merchant: &str, id: &str) -> Result<Option<Job>, StorageError> {
        let Some(bytes) = self.storage.get(Space::Jobs, &key(merchant, id))? else {
            return Ok(None);
        };
        let Ok(mut job) = serde_json::from_slice::<Job>(&bytes) else {
            return Ok(None);
        };
        if let Some(r) = lock(&self.running).get(&(merchant.to_string(), id.to_string()))
            && !job.status.ended()
        {
            job.progress = self.progress(r);
        }
        Ok(Some(job))
    }

    /// The merchant's jobs, newest first (at most `limit`).
    pub fn list(&self, merchant: &str, limit: usize) -> Result<Vec<Job>, StorageError> {
        let mut jobs: Vec<Job> = Vec::new();
        for (k, _) in self.storage.scan(Space::Jobs, merchant, &[])? {
            let id = String::from_utf8_lossy(k.last_part()).into_owned();
            if let Some(job) = self.get(merchant, &id)? {
                jobs.push(job);
            }
        }
        jobs.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        jobs.truncate(limit);
        Ok(jobs)
    }

    /// Ask a running job to stop. Answers the job (as it stands), `None` when there
    /// is no such job.
    pub fn cancel(&self, merchant: &str, id: &str) -> Result<Option<Job>, StorageError> {
        if let Some(r) = lock(&self.running).get(&(merchant.to_string(), id.to_string())) {
            r.counters.cancel.store(true, Ordering::Relaxed);
        }
        self.get(merchant, id)
    }

    /// Wait (up to `timeout`) until no job runs.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if lock(&self.running).is_empty() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bulk::ImportReport;
    use crate::storage::SledStorage;

    fn now() -> Timestamp {
        1_790_000_000
    }

    fn report(rows: u64) -> JobResult {
        JobResult::Import(ImportReport {
            rows,
            imported: rows,
            unchanged: 0,
            failed: 0,
            errors: Vec::new(),
            cancelled: false,
        })
    }

    fn ended(jobs: &Jobs, id: &str) -> Job {
        assert!(jobs.wait_idle(Duration::from_secs(10)));
        jobs.get("m", id).unwrap().unwrap()
    }

    #[test]
    fn a_job_reports_progress_and_its_result_and_can_be_cancelled() {
        let dir = tempfile::tempdir().unwrap();
        let storage: Arc<dyn Storage> = Arc::new(SledStorage::open(dir.path(), 1 << 20).unwrap());
        let jobs = Arc::new(Jobs::open(storage, now).unwrap());
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let job = jobs
            .start(
                "m",
                JobKind::Import,
                serde_json::json!({"rows": 10}),
                Box::new(move |c| {
                    c.total.store(10, Ordering::Relaxed);
                    c.done.store(4, Ordering::Relaxed);
                    wait.recv().map_err(|e| e.to_string())?;
                    c.done.store(10, Ordering::Relaxed);
                    Ok(report(10))
                }),
            )
            .unwrap();
        let running = eventually(|| {
            let j = jobs.get("m", &job.id).unwrap().unwrap();
            (j.progress.done == 4).then_some(j)
        });
        assert_eq!(running.status, JobStatus::Running);
        assert_eq!(running.progress.percent, 40.0);
        go.send(()).unwrap();
        let done = ended(&jobs, &job.id);
        assert_eq!(done.status, JobStatus::Done);
        assert_eq!(done.result, Some(report(10)));
        assert_eq!(done.progress.percent, 100.0);

        let slow = jobs
            .start(
                "m",
                JobKind::Import,
                serde_json::Value::Null,
                Box::new(|c| {
                    while !c.cancelled() {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err("stopped".into())
                }),
            )
            .unwrap();
        jobs.cancel("m", &slow.id).unwrap();
        assert_eq!(ended(&jobs, &slow.id).status, JobStatus::Cancelled);
        let listed: Vec<String> = jobs
            .list("m", 10)
            .unwrap()
            .into_iter()
            .map(|j| j.id)
            .collect();
        assert_eq!(listed.len(), 2);
        assert!(jobs.get("other", &job.id).unwrap().is_none());
    }

    #[test]
    fn a_job_running_when_the_process_stopped_is_reported_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let storage: Arc<dyn Storage> = Arc::new(SledStorage::open(dir.path(), 1 << 20).unwrap());
        let jobs = Arc::new(Jobs::open(storage.clone(), now).unwrap());
        let (_keep, wait) = std::sync::mpsc::channel::<()>();
        let job = jobs
            .start(
                "m",
                JobKind::Simulation,
                serde_json::Value::Null,
                Box::new(move |c| {
                    c.total.store(100, Ordering::Relaxed);
                    c.done.store(30, Ordering::Relaxed);
                    // Never ends by itself: the "process" stops under it.
                    let _ = wait.recv();
                    Err("gone".into())
                }),
            )
            .unwrap();
        // The stored record has the progress (saved about once a second).
        let stored = eventually(|| {
            let b = storage.get(Space::Jobs, &key("m", &job.id)).unwrap()?;
            let j: Job = serde_json::from_slice(&b).ok()?;
            (j.progress.done == 30).then_some(b)
        });
        // The process stops with that record on disk; a new one opens the storage
        // (a copy: the old job's thread still runs in this test process).
        let dir2 = tempfile::tempdir().unwrap();
        let after: Arc<dyn Storage> = Arc::new(SledStorage::open(dir2.path(), 1 << 20).unwrap());
        let mut b = Batch::new();
        b.put(Space::Jobs, key("m", &job.id), stored);
        after.apply(b).unwrap();
        let reopened = Jobs::open(after, now).unwrap();
        let j = reopened.get("m", &job.id).unwrap().unwrap();
        assert_eq!(j.status, JobStatus::Interrupted);
        assert_eq!(j.progress.done, 30);
        assert!(j.error.unwrap().contains("start it again"));
        drop(_keep);
        assert_eq!(ended(&jobs, &job.id).status, JobStatus::Failed);
    }

    fn eventually<T>(mut f: impl FnMut() -> Option<T>) -> T {
        for _ in 0..1000 {
            if let Some(v) = f() {
                return v;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("never happened");
    }
}
