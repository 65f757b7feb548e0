//! Every answer that is not a success: a status and a JSON body that says what went
//! wrong in words. Bad input keeps its 4xx and its message; internal faults answer
//! an opaque 500 and are logged on the server's standard error.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The body of every error answer.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong, in words.
    pub error: String,
    /// A stable word for programs: `refused`, `not_an_image`, `unreadable_image`,
    /// `bad_request`, `too_large`, `unsupported_media_type`, `busy`, `timeout`,
    /// `not_found`, `unauthorized`, `loading`, `internal`.
    pub kind: &'static str,
    /// The audit store's id of the request, when it was recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
}

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body.
    pub body: ErrorBody,
    /// Seconds a client should wait before trying again (503).
    pub retry_after: Option<u32>,
}

impl ApiError {
    /// An error with `status`, a stable `kind` and a message.
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody {
                error: message.into(),
                kind,
                id: None,
            },
            retry_after: None,
        }
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 503 with Retry-After.
    pub fn unavailable(kind: &'static str, message: impl Into<String>, retry_after: u32) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, kind, message)
        }
    }

    /// 500 with an opaque message; the cause goes to the server's log only.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        eprintln!("boneage serve: internal error: {cause}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error (logged on the server)",
        )
    }

    /// The same error, with the audit store's id.
    pub fn with_id(mut self, id: i64) -> Self {
        self.body.id = Some(id);
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body)).into_response();
        if let Some(s) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        response
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError::internal(e)
    }
}
