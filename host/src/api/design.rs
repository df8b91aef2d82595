//! Designing with evidence: simulations of a candidate programme on the merchant's
//! history, history files, bulk imports of members, the jobs that run them, and the
//! analytics. Merchant keys only.

use std::path::PathBuf;

use axum::extract::State;
use axum::http::StatusCode;

use super::auth::MerchantKey;
use super::extract::{DataFile, Json, Path, Query};
use super::types::{AnalyticsQuery, HistoryFile, LapsedQuery};
use super::{Answer, Api, ApiError, now, ok, reply};
use crate::analytics::{self, Period};
use crate::bulk::Format;
use crate::engine::{Recorded, check_config};
use crate::jobs::{JobKind, JobList, JobResult, Work};
use crate::registry::ActivePlugin;
use crate::simulate::{self, Contender, SimulationRequest, Source};

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
}

fn id_ok(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn history_path(api: &Api, merchant: &str, id: &str) -> PathBuf {
    api.dir()
        .join("histories")
        .join(merchant)
        .join(format!("{id}.jsonl"))
}

/// `POST /v1/merchants/{merchant}/simulations`: replay history through a candidate
/// version and the active one, as a background job (202 with the job).
pub async fn simulations_create(
    State(api): State<Api>,
    _: MerchantKey,
    Path(merchant): Path<String>,
    Json(req): Json<SimulationRequest>,
) -> Answer {
    let settings = api.engine().merchant(&merchant)?;
    if let (Some(from), Some(to)) = (req.from, req.to)
        && from >= to
    {
        return Err(ApiError::invalid("/to", "must be after from"));
    }
    let source = match &req.history {
        Some(id) => {
            let path = history_path(&api, &merchant, id);
            if !id_ok(id) || !path.is_file() {
                return Err(ApiError::invalid(
                    "/history",
                    format!("no uploaded history {id:?}"),
                ));
            }
            if req.from.is_some() || req.to.is_some() {
                return Err(ApiError::invalid(
                    "/history",
                    "a history file is replayed whole: leave out from and to",
                ));
            }
            Source::File(path)
        }
        None => Source::Journal {
            from: req.from,
            to: req.to,
        },
    };
    let registry = api.registry().clone();
    let m = merchant.clone();
    let r = req.clone();
    let (active, candidate) = blocking(move || {
        let active = registry.active(&m).ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "no-programme",
                "No active programme",
                "the merchant has no active programme to compare the candidate with",
            )
        })?;
        if registry.version(&m, &r.candidate)?.is_none() {
            return Err(ApiError::invalid(
                "/candidate",
                format!("no uploaded version {:?}", r.candidate),
            ));
        }
        let plugin = registry.compile(&m, &r.candidate)?;
        Ok((
            active,
            ActivePlugin {
                version: r.candidate.clone(),
                plugin,
            },
        ))
    })
    .await?;
    let schema = &candidate.plugin.info().config_schema;
    let config = match &req.config {
        Some(c) => {
            check_config(schema, c)?;
            Some(c.clone())
        }
        // The merchant's config when the candidate accepts it, else its default.
        None => settings
            .config
            .clone()
            .filter(|c| check_config(schema, c).is_ok()),
    };
    let mut candidate_settings = (*settings).clone();
    candidate_settings.config = config;
    let active = Contender {
        programme: active,
        settings: (*settings).clone(),
    };
    let candidate = Contender {
        programme: std::sync::Arc::new(candidate),
        settings: candidate_settings,
    };
    let engine = api.engine().clone();
    let m = merchant.clone();
    let work: Work = Box::new(move |counters| {
        simulate::run(&engine, &m, &source, active, candidate, counters)
            .map(|r| JobResult::Simulation(Box::new(r)))
            .map_err(|e| e.to_string())
    });
    let request = serde_json::to_value(&req).unwrap_or_default();
    let job = api
        .jobs()
        .start(&merchant, JobKind::Simulation, request, work)
        .map_err(ApiError::internal)?;
    Ok(reply(StatusCode::ACCEPTED, &job))
}

/// `POST /v1/merchants/{merchant}/histories`: upload a history file for simulations
/// (`application/x-ndjson`: one operation per line, as the journal records them).
/// Every line is checked; the file is kept under the SHA-256 of its bytes.
pub async fn histories_upload(
    State(api): State<Api>,
    _: MerchantKey,
    Path(merchant): Path<String>,
    file: DataFile,
) -> Answer {
    api.engine().merchant(&merchant)?;
    if file.format != Format::Jsonl {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported content type",
            "a history file is application/x-ndjson",
        ));
    }
    let dir = api.dir().join("histories").join(&merchant);
    let info = blocking(move || {
        use sha2::Digest;
        use std::io::BufRead;
        let text =
            std::fs::File::open(&file.path).map_err(|e| ApiError::internal(e.to_string()))?;
        let mut hash = sha2::Sha256::new();
        let (mut operations, mut first_at, mut last_at) = (0, None, None);
        let mut errors = Vec::new();
        for (i, line) in std::io::BufReader::new(text).lines().enumerate() {
            let line =
                line.map_err(|e| ApiError::invalid(format!("/lines/{}", i + 1), e.to_string()))?;
            hash.update(line.as_bytes());
            hash.update(b"\n");
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Recorded>(&line) {
                Ok(op) => {
                    operations += 1;
                    first_at = first_at.or(Some(op.at()));
                    last_at = Some(op.at());
                }
                Err(e) if errors.len() < 20 => errors.push(super::FieldError {
                    pointer: format!("/lines/{}", i + 1),
                    message: e.to_string(),
                }),
                Err(_) => {}
            }
        }
        if !errors.is_empty() {
            let _ = std::fs::remove_file(&file.path);
            return Err(ApiError::validation(errors));
        }
        let id = crate::domain::hex(&hash.finalize());
        std::fs::create_dir_all(&dir).map_err(|e| ApiError::internal(e.to_string()))?;
        std::fs::rename(&file.path, dir.join(format!("{id}.jsonl")))
            .map_err(|e| ApiError::internal(e.to_string()))?;
        Ok(HistoryFile {
            id,
            operations,
            first_at,
            last_at,
        })
    })
    .await?;
    Ok(reply(StatusCode::CREATED, &info))
}

/// `POST /v1/merchants/{merchant}/imports`: import members from JSONL
/// (`application/x-ndjson`) or CSV (`text/csv`) as a background job (202 with the
/// job). Bad rows are reported with their line; running the file again is safe.
pub async fn imports_create(
    State(api): State<Api>,
    _: MerchantKey,
    Path(merchant): Path<String>,
    file: DataFile,
) -> Answer {
    api.engine().merchant(&merchant)?;
    let engine = api.engine().clone();
    let m = merchant.clone();
    let request = serde_json::json!({
        "format": if file.format == Format::Csv { "csv" } else { "jsonl" },
        "bytes": file.bytes,
    });
    let work: Work = Box::new(move |counters| {
        let mut progress = |p: &crate::bulk::Progress| {
            counters.total.store(
                p.total_bytes.unwrap_or(p.bytes),
                std::sync::atomic::Ordering::Relaxed,
            );
            counters
                .done
                .store(p.bytes, std::sync::atomic::Ordering::Relaxed);
        };
        let result = crate::bulk::run_file(
            &engine,
            &m,
            file.format,
            &file.path,
            now(),
            &mut progress,
            &counters.cancel,
        );
        let _ = std::fs::remove_file(&file.path);
        match result {
            Ok(r) if r.cancelled => Err("cancelled".into()),
            Ok(r) => Ok(JobResult::Import(r)),
            Err(e) => Err(e.to_string()),
        }
    });
    let job = api
        .jobs()
        .start(&merchant, JobKind::Import, request, work)
        .map_err(ApiError::internal)?;
    Ok(reply(StatusCode::ACCEPTED, &job))
}

/// `GET /v1/merchants/{merchant}/jobs`: the merchant's jobs, newest first.
pub async fn jobs_list(
    State(api): State<Api>,
    _: MerchantKey,
    Path(merchant): Path<String>,
) -> Answer {
    api.engine().merchant(&merchant)?;
    let jobs = api.jobs().clone();
    let list = blocking(move || jobs.list(&merchant, 100).map_err(storage)).await?;
    Ok(ok(&JobList { jobs: list }))
}

fn storage(e: crate::storage::StorageError) -> ApiError {
    ApiError::from(crate::engine::EngineError::from(e))
}

fn no_job(id: &str) -> ApiError {
    ApiError::not_found("unknown-job", format!("no job {id:?}"))
}

/// `GET /v1/merchants/{merchant}/jobs/{job}`: a job, with its progress and, when
/// done, its result.
pub async fn job_get(
    State(api): State<Api>,
    _: MerchantKey,
    Path((merchant, job)): Path<(String, String)>,
) -> Answer {
    let jobs = api.jobs().clone();
    let id = job.clone();
    let found = blocking(move || jobs.get(&merchant, &id).map_err(storage)).await?;
    Ok(ok(&found.ok_or_else(|| no_job(&job))?))
}

/// `POST /v1/merchants/{merchant}/jobs/{job}/cancel`: ask a running job to stop.
pub async fn job_cancel(
    State(api): State<Api>,
    _: MerchantKey,
    Path((merchant, job)): Path<(String, String)>,
) -> Answer {
    let jobs = api.jobs().clone();
    let id = job.clone();
    let found = blocking(move || jobs.cancel(&merchant, &id).map_err(storage)).await?;
    Ok(ok(&found.ok_or_else(|| no_job(&job))?))
}

fn period(q: &AnalyticsQuery) -> Result<Period, ApiError> {
    Period::parse(q.from.as_deref(), q.to.as_deref())
        .map_err(|(pointer, message)| ApiError::invalid(format!("/query{pointer}"), message))
}

async fn figures(
    api: &Api,
    merchant: &str,
    q: &AnalyticsQuery,
) -> Result<analytics::Analytics, ApiError> {
    let period = period(q)?;
    let m = merchant.to_string();
    Ok(api
        .engine()
        .read(merchant, move |e| {
            analytics::analytics(e, &m, period, now())
        })
        .await?)
}

/// `GET /v1/merchants/{merchant}/analytics`: every figure at once.
pub async fn analytics_all(
    State(api): State<Api>,
    _: MerchantKey,
    Path(merchant): Path<String>,
    Query(q): Query<AnalyticsQuery>,
) -> Answer {
    Ok(ok(&figures(&api, &merchant, &q).await?))
}

/// `GET /v1/merchants/{merchant}/analytics/repeat-customers`.
pub async fn analytics_repeat(
    State(api): State<Api>,
    _: MerchantKey,
    Path(merchant): Path<String>,
    Query(q): Query<AnalyticsQuery>,
) -> Answer {
    Ok(ok(&figures(&api, &merchant, &q).await?.repeat_customers))
}

/// `GET /v1/merchants/{merchant}/analytics/nps`.
pub async fn analytics_nps(
    State(api): State<Api>,
    _: MerchantKey,
    Path(merchant): Path<String>,
    Query(q): Query<AnalyticsQuery>,
) -> Answer {
    Ok(ok(&figures(&api, &merchant, &q).await?.nps))
}

/// `GET /v1/merchants/{merchant}/analytics/tiers`.
pub async fn analytics_tiers(
    State(api): State<Api>,
    _: MerchantKey,
    Path(merchant): Path<String>,
    Query(q): Query<AnalyticsQuery>,
) -> Answer {
    Ok(ok(&figures(&api, &merchant, &q).await?.tiers))
}

/// `GET /v1/merchants/{merchant}/analytics/points`.
pub async fn analytics_points(
    State(api): State<Api>,
    _: MerchantKey,
    Path(merchant): Path<String>,
    Query(q): Query<AnalyticsQuery>,
) -> Answer {
    Ok(ok(&figures(&api, &merchant, &q).await?.points))
}

/// `GET /v1/merchants/{merchant}/analytics/budget`.
pub async fn analytics_budget(
    State(api): State<Api>,
    _: MerchantKey,
    Path(merchant): Path<String>,
    Query(q): Query<AnalyticsQuery>,
) -> Answer {
    Ok(ok(&figures(&api, &merchant, &q).await?.budget))
}

/// `GET /v1/merchants/{merchant}/analytics/lapsed?days=&after=&limit=`.
pub async fn analytics_lapsed(
    State(api): State<Api>,
    _: MerchantKey,
    Path(merchant): Path<String>,
    Query(q): Query<LapsedQuery>,
) -> Answer {
    let days = q.days.unwrap_or(90);
    if days > 36_600 {
        return Err(ApiError::invalid("/query/days", "at most 36600"));
    }
    let limit = super::page_limit(q.limit, 100, 1000)?;
    let m = merchant.clone();
    let page = api
        .engine()
        .read(&merchant, move |e| {
            analytics::lapsed(e, &m, days, now(), q.after.as_deref(), limit)
        })
        .await?;
    Ok(ok(&page))
}
