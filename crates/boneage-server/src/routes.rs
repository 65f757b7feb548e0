//! The handlers. Assessments are read from a multipart form, computed on the worker
//! threads (never on the async ones) and recorded in the audit store before the
//! answer leaves.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State as Shared};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use boneage::Patient;
use boneage::assessor::age_from_dates;
use boneage_core::growth::{parse_age, reference_rows};
use boneage_core::io::dicom_out::{self, BoneAgeResult};
use boneage_core::io::{DicomSource, sniff};
use boneage_core::{Sex, read_radiograph_bytes};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::state::{State, hex};
use crate::store::{NewRecord, Outcome, Record};

type AppState = Shared<Arc<State>>;

/// The web page.
pub async fn page() -> Html<&'static str> {
    Html(include_str!("page.html"))
}

/// `GET /healthz` answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always "ok" when the process answers.
    pub status: &'static str,
    /// Seconds since start.
    pub uptime_s: f64,
}

/// The process answers.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "The process answers", body = Health)))]
pub async fn healthz(Shared(state): AppState) -> Json<Health> {
    Json(Health {
        status: "ok",
        uptime_s: state.uptime(),
    })
}

/// `GET /readyz` answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Ready {
    /// "ready", "loading" or "failed".
    pub status: &'static str,
    /// Why not ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The models' manifests and their SHA-256, `file hash` per line.
    pub models: String,
}

/// The models are loaded and the audit store answers.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, description = "Ready to assess", body = Ready),
              (status = 503, description = "Models loading or failed, or the store is broken", body = Ready)))]
pub async fn readyz(Shared(state): AppState) -> Response {
    let (status, code, reason) = match state.assessor() {
        Ok(_) => match state.store.integrity() {
            Ok(s) if s == "ok" => ("ready", StatusCode::OK, None),
            Ok(s) => ("failed", StatusCode::SERVICE_UNAVAILABLE, Some(s)),
            Err(e) => (
                "failed",
                StatusCode::SERVICE_UNAVAILABLE,
                Some(e.to_string()),
            ),
        },
        Err(e) if e.contains("loading") => ("loading", StatusCode::SERVICE_UNAVAILABLE, Some(e)),
        Err(e) => ("failed", StatusCode::SERVICE_UNAVAILABLE, Some(e)),
    };
    let body = Ready {
        status,
        reason,
        models: state.models_version.clone(),
    };
    (code, Json(body)).into_response()
}

/// Counters in the Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text", content_type = "text/plain", body = String)))]
pub async fn metrics(Shared(state): AppState) -> Response {
    let (waiting, running) = state.queue_state();
    let text = state.metrics.render(waiting, running, state.capacity());
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        text,
    )
        .into_response()
}

/// One row of the growth reference.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ReferenceRow {
    /// Chronological age, months.
    pub age_months: f64,
    /// Greulich–Pyle mean bone age at that age, months.
    pub mean_months: f64,
    /// Its standard deviation (Brush Foundation), months.
    pub sd_months: f64,
}

/// The growth chart's reference for one sex.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Reference {
    /// "M" or "F".
    pub sex: &'static str,
    /// Where the numbers come from.
    pub source: &'static str,
    /// Rows by age.
    pub rows: Vec<ReferenceRow>,
}

/// The Greulich–Pyle mean bone age and Brush SD by age, for growth charts.
#[utoipa::path(get, path = "/v1/reference/{sex}", tag = "assessments",
    params(("sex" = String, Path, description = "M or F")),
    responses((status = 200, description = "The table", body = Reference),
              (status = 400, description = "Not M or F", body = crate::error::ErrorBody)))]
pub async fn reference(Path(sex): Path<String>) -> Result<Json<Reference>, ApiError> {
    let sex: Sex = sex.parse().map_err(ApiError::bad_request)?;
    Ok(Json(Reference {
        sex: sex.letter(),
        source: "Greulich & Pyle atlas (2nd ed., 1959), Brush Foundation standard deviations",
        rows: reference_rows(sex)
            .into_iter()
            .map(|(age, mean, sd)| ReferenceRow {
                age_months: age,
                mean_months: mean,
                sd_months: sd,
            })
            .collect(),
    }))
}

/// What the form carried.
struct Form {
    bytes: axum::body::Bytes,
    sex: Option<Sex>,
    age_months: Option<f64>,
}

/// The multipart form of an assessment (documentation only: the handler reads the
/// parts itself, to answer 415 and 413 with a body that says why).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct AssessmentForm {
    /// The radiograph: PNG, JPEG or DICOM (`file` is accepted too).
    #[schema(value_type = String, format = Binary)]
    image: Vec<u8>,
    /// M or F (also `male` / `female`); optional when the DICOM header records it.
    sex: Option<String>,
    /// Chronological age: `10y3m`, `10.5y`, `7m` or months.
    age: Option<String>,
    /// Birth date, YYYY-MM-DD (with `study`, instead of `age`).
    birth: Option<String>,
    /// Study date, YYYY-MM-DD.
    study: Option<String>,
}

/// Reads the form: `image` (or `file`), `sex`, `age` or `birth` + `study`.
async fn read_form(req: Request, deeplasia: bool, limit: usize) -> Result<Form, ApiError> {
    let is_multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    if !is_multipart {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send a multipart/form-data form with the radiograph in the `image` part (PNG, JPEG or DICOM) and `sex`",
        ));
    }
    let mut multipart = Multipart::from_request(req, &())
        .await
        .map_err(|e| ApiError::bad_request(format!("the multipart form: {}", e.body_text())))?;
    let mut bytes = None;
    let (mut sex, mut age, mut birth, mut study) = (None, None, None, None);
    // Everything that breaks while the parts stream in is the client's: a body over
    // the limit, or one that ends early or breaks off.
    let part_error = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!(
                    "the upload is larger than this server takes: at most {limit} bytes (--max-body)"
                ),
            )
        } else {
            ApiError::bad_request(format!(
                "reading the form: {} (the upload ended early, broke off or is not a well-formed multipart body)",
                e.body_text()
            ))
        }
    };
    while let Some(field) = multipart.next_field().await.map_err(part_error)? {
        let name = field.name().unwrap_or_default().to_string();
        match name.as_str() {
            "image" | "file" => bytes = Some(field.bytes().await.map_err(part_error)?),
            "sex" | "age" | "birth" | "study" | "use_mask" => {
                let text = field.text().await.map_err(part_error)?;
                let text = text.trim().to_string();
                if text.is_empty() {
                    continue;
                }
                match name.as_str() {
                    "sex" => sex = Some(text),
                    "age" => age = Some(text),
                    "birth" => birth = Some(text),
                    "study" => study = Some(text),
                    _ => {} // Deeplasia's use_mask: the hand is always masked here.
                }
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown form part {other:?}: expected image, sex, age, birth, study"
                )));
            }
        }
    }
    let bytes = bytes.ok_or_else(|| {
        ApiError::bad_request(if deeplasia {
            "the form has no `file` part: send the radiograph as `file`"
        } else {
            "the form has no `image` part: send the radiograph as `image` (PNG, JPEG or DICOM)"
        })
    })?;
    let sex = sex
        .map(|s| s.parse::<Sex>().map_err(ApiError::bad_request))
        .transpose()?;
    let age_months = match (age, birth, study) {
        (Some(a), None, None) => Some(parse_age(&a).ok_or_else(|| {
            ApiError::bad_request(format!(
                "age {a:?}: use e.g. 10y3m, 10.5y, 7m or a number of months"
            ))
        })?),
        (None, Some(b), Some(s)) => Some(
            age_from_dates(&b, &s)
                .map_err(|e| ApiError::bad_request(format!("birth/study: {e}")))?,
        ),
        (None, None, None) => None,
        (Some(_), _, _) => {
            return Err(ApiError::bad_request(
                "give either age or birth and study, not both",
            ));
        }
        _ => return Err(ApiError::bad_request("birth and study go together")),
    };
    Ok(Form {
        bytes,
        sex,
        age_months,
    })
}

/// What the computation gave.
enum Computed {
    Assessed {
        document: serde_json::Value,
        months: f64,
        picture: Vec<u8>,
        sex: Sex,
        age_months: Option<f64>,
        source: Option<DicomSource>,
    },
    Refused {
        reason: String,
        sex: Sex,
        age_months: Option<f64>,
        source: Option<DicomSource>,
    },
    Rejected(ApiError),
}

/// Timings of one assessment, seconds.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Timings {
    /// Waiting for a worker.
    pub queue_s: f64,
    /// Decoding the image.
    pub read_s: f64,
    /// From the pixels to the bone age.
    pub assess_s: f64,
}

/// Reads, assesses and records one upload; what `POST /v1/assessments` and
/// `POST /predict` share.
async fn assess_upload(
    state: &Arc<State>,
    route: &'static str,
    req: Request,
    deeplasia: bool,
) -> Result<(i64, Record), ApiError> {
    let arrived = Instant::now();
    let timeout = state.config.timeout;
    let assessor = state
        .assessor()
        .map_err(|e| ApiError::unavailable("loading", e, 5))?;
    let form =
        match tokio::time::timeout(timeout, read_form(req, deeplasia, state.config.body_limit))
            .await
        {
            Ok(form) => form,
            Err(_) => Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "timeout",
                format!(
                    "the upload did not arrive within {} s",
                    timeout.as_secs_f64()
                ),
            )),
        };
    let record = |outcome, status: StatusCode, sha: Option<String>, result: String| NewRecord {
        route,
        input_sha256: sha,
        sex: None,
        age_months: None,
        status: status.as_u16(),
        outcome,
        bone_age_months: None,
        result,
        duration_s: arrived.elapsed().as_secs_f64(),
        source: None,
    };
    let form = match form {
        Ok(f) => f,
        Err(e) => {
            if e.status != StatusCode::REQUEST_TIMEOUT {
                let id = state.store.insert(&record(
                    Outcome::Rejected,
                    e.status,
                    None,
                    e.body.error.clone(),
                ))?;
                return Err(e.with_id(id));
            }
            return Err(e);
        }
    };
    let sha = hex(&Sha256::digest(&form.bytes));
    if sniff(&form.bytes).is_none() {
        let e = ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not_an_image",
            format!(
                "the upload ({} bytes) is not a PNG, JPEG or DICOM file",
                form.bytes.len()
            ),
        );
        let id = state.store.insert(&record(
            Outcome::Rejected,
            e.status,
            Some(sha),
            e.body.error.clone(),
        ))?;
        return Err(e.with_id(id));
    }
    let waited = Instant::now();
    let permit = match tokio::time::timeout(
        timeout.saturating_sub(arrived.elapsed()),
        state.workers.clone().acquire_owned(),
    )
    .await
    {
        Ok(Ok(p)) => p,
        _ => {
            return Err(ApiError::unavailable(
                "timeout",
                format!("no worker became free within {} s", timeout.as_secs_f64()),
                5,
            ));
        }
    };
    let queue_s = waited.elapsed().as_secs_f64();
    let worker_state = state.clone();
    let job = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let _running = worker_state.running_guard();
        compute(&assessor, &form, queue_s)
    });
    let computed = match tokio::time::timeout(timeout.saturating_sub(arrived.elapsed()), job).await
    {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return Err(ApiError::internal(format!("the assessment panicked: {e}"))),
        Err(_) => {
            return Err(ApiError::unavailable(
                "timeout",
                format!(
                    "the assessment took longer than {} s",
                    timeout.as_secs_f64()
                ),
                5,
            ));
        }
    };
    let store_state = state.clone();
    let duration = arrived.elapsed().as_secs_f64();
    tokio::task::spawn_blocking(move || -> Result<_, ApiError> {
        let state = store_state;
        match computed {
            Computed::Assessed {
                document,
                months,
                picture,
                sex,
                age_months,
                source,
            } => {
                let id = state.store.insert(&NewRecord {
                    route,
                    input_sha256: Some(sha),
                    sex: Some(sex.letter()),
                    age_months,
                    status: 201,
                    outcome: Outcome::Assessed,
                    bone_age_months: Some(months),
                    result: document.to_string(),
                    duration_s: duration,
                    source,
                })?;
                state.keep_picture(id, picture);
                let row = state.store.get(id)?.ok_or_else(|| {
                    ApiError::internal(format!("row {id} vanished after insertion"))
                })?;
                Ok((id, row))
            }
            Computed::Refused {
                reason,
                sex,
                age_months,
                source,
            } => {
                state.metrics.refusal();
                let id = state.store.insert(&NewRecord {
                    route,
                    input_sha256: Some(sha),
                    sex: Some(sex.letter()),
                    age_months,
                    status: 422,
                    outcome: Outcome::Refused,
                    bone_age_months: None,
                    result: reason.clone(),
                    duration_s: duration,
                    source,
                })?;
                Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "refused",
                    format!("refused: {reason}"),
                )
                .with_id(id))
            }
            Computed::Rejected(e) => {
                let id = state.store.insert(&NewRecord {
                    route,
                    input_sha256: Some(sha),
                    sex: None,
                    age_months: None,
                    status: e.status.as_u16(),
                    outcome: Outcome::Rejected,
                    bone_age_months: None,
                    result: e.body.error.clone(),
                    duration_s: duration,
                    source: None,
                })?;
                Err(e.with_id(id))
            }
        }
    })
    .await
    .map_err(|e| ApiError::internal(format!("the audit store's task failed: {e}")))?
}

/// Decodes and assesses (on a worker thread).
fn compute(assessor: &boneage::Assessor, form: &Form, queue_s: f64) -> Computed {
    let t = Instant::now();
    let film = match read_radiograph_bytes(&form.bytes, "upload") {
        Ok(f) => f,
        Err(e) => {
            return Computed::Rejected(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unreadable_image",
                format!("the image could not be read: {e}"),
            ));
        }
    };
    let read_s = t.elapsed().as_secs_f64();
    let (sex, sex_from) = match (form.sex, film.meta.sex) {
        (Some(s), _) => (s, "the form"),
        (None, Some(s)) => (s, "the file's header"),
        (None, None) => {
            return Computed::Rejected(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "bad_request",
                "the patient's sex is needed and the file does not record it: give sex=M or sex=F",
            ));
        }
    };
    let mut patient = Patient::new(sex);
    patient.age_months = form.age_months.or(film.meta.age_months);
    match assessor.assess(&film, &patient) {
        Ok(a) => {
            let report = a.report("upload", sex_from, a.seconds);
            let mut document = serde_json::to_value(&report).unwrap_or_default();
            if let Some(o) = document.as_object_mut() {
                o.insert(
                    "timings".into(),
                    serde_json::to_value(Timings {
                        queue_s,
                        read_s,
                        assess_s: a.seconds,
                    })
                    .unwrap_or_default(),
                );
            }
            let mut picture = Vec::new();
            let rgb = a.evidence_picture(&assessor.canvas());
            let _ = image::DynamicImage::ImageRgb8(rgb).write_to(
                &mut std::io::Cursor::new(&mut picture),
                image::ImageFormat::Png,
            );
            Computed::Assessed {
                document,
                months: a.bone_age_months(),
                picture,
                sex,
                age_months: patient.age_months,
                source: film.meta.source.clone(),
            }
        }
        Err(e) => Computed::Refused {
            reason: e.to_string(),
            sex,
            age_months: patient.age_months,
            source: film.meta.source.clone(),
        },
    }
}

/// The assessment document of a recorded row: the `--json` fields plus `id`,
/// `created`, `models`, `timings` and `links`.
pub fn assessment_document(row: &Record) -> Option<serde_json::Value> {
    let mut doc = row.assessment.clone()?;
    let o = doc.as_object_mut()?;
    let id = row.id;
    o.insert("id".into(), id.into());
    o.insert("created".into(), row.time.clone().into());
    o.insert("models".into(), row.models.clone().into());
    o.insert(
        "links".into(),
        serde_json::json!({
            "self": format!("/v1/assessments/{id}"),
            "overlay": format!("/v1/assessments/{id}/overlay.png"),
            "dicom": format!("/v1/assessments/{id}/dicom"),
        }),
    );
    Some(doc)
}

/// Assesses a radiograph.
#[utoipa::path(post, path = "/v1/assessments", tag = "assessments",
    request_body(content = AssessmentForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "The bone age, with the evidence", body = crate::openapi::AssessmentDoc,
         headers(("Location" = String, description = "The assessment's URL"))),
        (status = 400, description = "A bad form", body = crate::error::ErrorBody),
        (status = 401, description = "No or a wrong bearer token", body = crate::error::ErrorBody),
        (status = 408, description = "The upload was too slow", body = crate::error::ErrorBody),
        (status = 413, description = "The body is larger than the limit", body = crate::error::ErrorBody),
        (status = 415, description = "Not a multipart form, or the upload is not an image", body = crate::error::ErrorBody),
        (status = 422, description = "Refused (no confidence in the film; the reason in words), unreadable image, or no sex", body = crate::error::ErrorBody),
        (status = 503, description = "Queue full, models loading, or timed out (Retry-After)", body = crate::error::ErrorBody),
    ))]
pub async fn create_assessment(Shared(state): AppState, req: Request) -> Response {
    let t = Instant::now();
    let result = assess_upload(&state, "/v1/assessments", req, false).await;
    state.metrics.latency(t.elapsed().as_secs_f64());
    match result {
        Ok((id, row)) => match assessment_document(&row) {
            Some(doc) => (
                StatusCode::CREATED,
                [(header::LOCATION, format!("/v1/assessments/{id}"))],
                Json(doc),
            )
                .into_response(),
            None => ApiError::internal(format!("row {id} holds no assessment")).into_response(),
        },
        Err(e) => e.into_response(),
    }
}

/// Deeplasia's answer.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeeplasiaAnswer {
    /// The bone age, months.
    pub bone_age: f64,
    /// Whether the sex was predicted (never: it must be given or be in the header).
    pub sex_predicted: bool,
    /// "m" or "f".
    pub used_sex: String,
}

/// Deeplasia's request and answer (`file`, `sex` = male/female, `use_mask`
/// ignored), so that its clients work unchanged.
#[utoipa::path(post, path = "/predict", tag = "compatibility",
    request_body(content = AssessmentForm, content_type = "multipart/form-data"),
    responses((status = 200, description = "The bone age", body = DeeplasiaAnswer),
              (status = 422, description = "Refused or no sex", body = crate::error::ErrorBody)))]
pub async fn predict(Shared(state): AppState, req: Request) -> Response {
    let t = Instant::now();
    let result = assess_upload(&state, "/predict", req, true).await;
    state.metrics.latency(t.elapsed().as_secs_f64());
    match result {
        Ok((_, row)) => Json(DeeplasiaAnswer {
            bone_age: row.bone_age_months.unwrap_or(f64::NAN),
            sex_predicted: false,
            used_sex: row.sex.unwrap_or_default().to_ascii_lowercase(),
        })
        .into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET /v1/assessments` query.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    /// At most this many (1–200, default 20).
    pub limit: Option<u32>,
    /// Only ids below this (the last id of the previous page).
    pub before: Option<i64>,
}

/// The audit rows, newest first.
#[derive(Serialize, utoipa::ToSchema)]
pub struct List {
    /// The rows.
    pub items: Vec<Record>,
    /// `before` for the next page, when there may be one.
    pub next_before: Option<i64>,
}

/// Recent requests, newest first (assessed, refused and rejected).
#[utoipa::path(get, path = "/v1/assessments", tag = "assessments", params(ListQuery),
    responses((status = 200, description = "A page of the audit rows", body = List),
              (status = 400, description = "A bad limit", body = crate::error::ErrorBody)))]
pub async fn list(
    Shared(state): AppState,
    Query(q): Query<ListQuery>,
) -> Result<Json<List>, ApiError> {
    let limit = q.limit.unwrap_or(20);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit {limit}: give 1 to 200"
        )));
    }
    let store_state = state.clone();
    let items = tokio::task::spawn_blocking(move || store_state.store.list(limit, q.before))
        .await
        .map_err(ApiError::internal)??;
    let next_before = (items.len() == limit as usize)
        .then(|| items.last().map(|r| r.id))
        .flatten();
    Ok(Json(List { items, next_before }))
}

/// One audit row; an assessed one carries the assessment as `POST` answered it.
#[utoipa::path(get, path = "/v1/assessments/{id}", tag = "assessments",
    params(("id" = i64, Path, description = "The assessment's id")),
    responses((status = 200, description = "The row", body = Record),
              (status = 404, description = "No such id", body = crate::error::ErrorBody)))]
pub async fn get_assessment(
    Shared(state): AppState,
    Path(id): Path<i64>,
) -> Result<Json<Record>, ApiError> {
    let mut row = state
        .store
        .get(id)?
        .ok_or_else(|| ApiError::not_found(format!("no assessment {id}")))?;
    row.assessment = assessment_document(&row);
    Ok(Json(row))
}

/// The evidence picture: the registered hand with its key points and regions.
#[utoipa::path(get, path = "/v1/assessments/{id}/overlay.png", tag = "assessments",
    params(("id" = i64, Path, description = "The assessment's id")),
    responses((status = 200, description = "PNG", content_type = "image/png", body = Vec<u8>),
              (status = 404, description = "No such assessment, or its picture is no longer kept", body = crate::error::ErrorBody)))]
pub async fn overlay(Shared(state): AppState, Path(id): Path<i64>) -> Response {
    match state.picture(id) {
        Some(png) => (
            [(header::CONTENT_TYPE, HeaderValue::from_static("image/png"))],
            Body::from(png.as_ref().clone()),
        )
            .into_response(),
        None => ApiError::not_found(format!(
            "no picture for assessment {id}: pictures are kept in memory only, for the last {} assessments since the server started (pixels are never stored)",
            state.config.pictures
        ))
        .into_response(),
    }
}

/// `GET /v1/assessments/{id}/dicom` query.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct DicomQuery {
    /// `sr` (Comprehensive Structured Report, the default) or `sc` (Secondary
    /// Capture of the evidence picture, while the picture is kept).
    pub kind: Option<String>,
}

/// The result as DICOM for PACS: a Structured Report with the measured values, or a
/// Secondary Capture of the evidence picture; both in the input's study and
/// referencing it when the input was DICOM. No patient name or ID is written.
#[utoipa::path(get, path = "/v1/assessments/{id}/dicom", tag = "assessments",
    params(("id" = i64, Path, description = "The assessment's id"), DicomQuery),
    responses((status = 200, description = "A DICOM file (Part 10)", content_type = "application/dicom", body = Vec<u8>),
              (status = 400, description = "An unknown kind", body = crate::error::ErrorBody),
              (status = 404, description = "No such assessment, a refused one, or its picture is no longer kept", body = crate::error::ErrorBody)))]
pub async fn dicom(
    Shared(state): AppState,
    Path(id): Path<i64>,
    Query(q): Query<DicomQuery>,
) -> Result<Response, ApiError> {
    let kind = q.kind.as_deref().unwrap_or("sr");
    if !matches!(kind, "sr" | "sc") {
        return Err(ApiError::bad_request(format!(
            "kind {kind:?}: sr (Structured Report) or sc (Secondary Capture)"
        )));
    }
    let row = state
        .store
        .get(id)?
        .ok_or_else(|| ApiError::not_found(format!("no assessment {id}")))?;
    let doc = row.assessment.as_ref().ok_or_else(|| {
        ApiError::not_found(format!(
            "assessment {id} was {}: no bone age to report",
            match row.outcome {
                Outcome::Refused => "refused",
                _ => "rejected",
            }
        ))
    })?;
    let f = |v: &serde_json::Value| v.as_f64();
    let seed = format!("{id}/{}", row.input_sha256.as_deref().unwrap_or(""));
    let regions = doc["regions"]
        .as_object()
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| v.as_f64().map(|m| (k.clone(), m)))
                .collect()
        })
        .unwrap_or_default();
    let result = BoneAgeResult {
        source: row.source.as_ref(),
        sex: if row.sex.as_deref() == Some("M") {
            Sex::Male
        } else {
            Sex::Female
        },
        bone_age_months: f(&doc["bone_age_months"]).unwrap_or(f64::NAN),
        interval: f(&doc["interval"]["low_months"]).zip(f(&doc["interval"]["high_months"])),
        chronological_months: f(&doc["chronological"]["chronological_months"]),
        sds: f(&doc["chronological"]["sds"]),
        verdict: doc["chronological"]["verdict"].as_str(),
        regions,
        // What the reader must know before relying on the age, as `assess` says it.
        warnings: boneage::resolution::Resolution::from_json(&doc["resolution"])
            .and_then(|r| r.warning())
            .into_iter()
            .collect(),
        version: env!("CARGO_PKG_VERSION"),
        created: &row.time,
        uid_seed: &seed,
    };
    let bytes = if kind == "sr" {
        dicom_out::structured_report(&result)
    } else {
        let png = state.picture(id).ok_or_else(|| {
            ApiError::not_found(format!(
                "no picture for assessment {id}: pictures are kept in memory only, for the last {} assessments since the server started",
                state.config.pictures
            ))
        })?;
        let rgb = image::load_from_memory(&png)
            .map_err(ApiError::internal)?
            .to_rgb8();
        dicom_out::secondary_capture(&result, rgb.as_raw(), rgb.width(), rgb.height())
    }
    .map_err(ApiError::internal)?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/dicom".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"boneage-{id}-{kind}.dcm\""),
            ),
        ],
        bytes,
    )
        .into_response())
}
