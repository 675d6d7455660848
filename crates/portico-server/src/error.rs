//! API errors in Backstage's shape: `{error: {name, message}, request: {method, url},
//! response: {statusCode}}`. Handlers return [`ApiError`]; a middleware adds the request part.
//! Internal failures are logged with their cause and shown to the caller as a plain message.

use std::borrow::Cow;

use axum::Json;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use portico_catalog::ValidationError;
use portico_catalog::service::CatalogError;
use serde_json::json;

/// An error answer: status, Backstage error name, message, optional validation errors.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    name: Cow<'static, str>,
    message: String,
    errors: Option<Vec<ValidationError>>,
}

impl ApiError {
    /// An error with an explicit status and name.
    pub fn new(status: StatusCode, name: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            name: Cow::Borrowed(name),
            message: message.into(),
            errors: None,
        }
    }

    /// 400 `InputError`.
    pub fn input(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InputError", message)
    }

    /// 404 `NotFoundError`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NotFoundError", message)
    }

    /// 401 `AuthenticationError`.
    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "AuthenticationError",
            "Missing or invalid credentials: send Authorization: Bearer <token>",
        )
    }
}

/// The error part of a response, kept until the middleware knows the request.
#[derive(Debug, Clone)]
struct ErrorParts(ApiError);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response.extensions_mut().insert(ErrorParts(self));
        response
    }
}

impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> Self {
        let status = match &e {
            CatalogError::NotFound(_) => StatusCode::NOT_FOUND,
            CatalogError::Conflict(_) => StatusCode::CONFLICT,
            CatalogError::Input(_) | CatalogError::Invalid { .. } => StatusCode::BAD_REQUEST,
            CatalogError::NotAllowed(_) => StatusCode::FORBIDDEN,
            CatalogError::Database(cause) => {
                tracing::error!(error = %cause, "catalog storage failed");
                return Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Error",
                    "The catalog's storage failed; see the server log",
                );
            }
        };
        let errors = match &e {
            CatalogError::Invalid { errors, .. } => Some(errors.clone()),
            _ => None,
        };
        Self {
            status,
            name: e.name(),
            message: e.to_string(),
            errors,
        }
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(e: axum::extract::rejection::JsonRejection) -> Self {
        Self::input(e.body_text())
    }
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(e: axum::extract::rejection::QueryRejection) -> Self {
        Self::input(e.body_text())
    }
}

/// Middleware: gives error responses Backstage's body, with the request's method and URL.
pub async fn error_body(request: Request, next: Next) -> Response {
    // Kept as they are (cheap clones) and written out only for an error.
    let method = request.method().clone();
    let uri = request.uri().clone();
    let mut response = next.run(request).await;
    let Some(ErrorParts(error)) = response.extensions_mut().remove::<ErrorParts>() else {
        return response;
    };
    let mut body = json!({
        "error": {"name": error.name, "message": error.message},
        "request": {"method": method.as_str(), "url": uri.to_string()},
        "response": {"statusCode": error.status.as_u16()},
    });
    if let Some(errors) = error.errors {
        body["errors"] = json!(errors);
    }
    let headers = response.headers().clone();
    let mut out = (error.status, Json(body)).into_response();
    for (name, value) in &headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}
