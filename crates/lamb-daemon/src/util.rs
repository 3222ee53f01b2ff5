//! Small request and response helpers shared by the handlers.

use crate::error::ApiError;
use crate::state::AppState;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use lamb_types::{ArnContext, LambdaError};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// A JSON request body; an empty body reads as `{}`. Malformed JSON is
/// `InvalidRequestContentException`, a wrong member type or value
/// `InvalidParameterValueException`, as Lambda answers.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| {
        let err = if e.is_syntax() || e.is_eof() {
            LambdaError::invalid_request_content(format!("Could not parse request body into json: {e}"))
        } else {
            LambdaError::invalid_parameter(format!("Could not read the request body: {e}"))
        };
        err.into()
    })
}

pub fn json<T: Serialize>(status: u16, value: &T) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    (status, axum::Json(value)).into_response()
}

pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// Path parameters, in order, percent-decoded; a path that cannot be
/// decoded is a Lambda-shaped 400, not axum's plain text. Carries the
/// daemon's region and account, which a function's ARN must name.
pub struct Params(pub Vec<String>, ArnContext);

impl axum::extract::FromRequestParts<AppState> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(pairs) = axum::extract::Path::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|e| LambdaError::invalid_parameter(format!("bad path: {e}")))?;
        Ok(Self(pairs.into_iter().map(|(_, v)| v).collect(), state.ctx.clone()))
    }
}

impl Params {
    /// The path's first parameter: the resource the route is about (a
    /// function, layer, ARN, mapping UUID, trigger id or schedule name).
    pub fn resource(&self) -> &str {
        self.0.first().map(String::as_str).unwrap_or_default()
    }

    /// The path's second parameter: what the route names under the
    /// resource (an alias name, a layer version number).
    pub fn sub_resource(&self) -> &str {
        self.0.get(1).map(String::as_str).unwrap_or_default()
    }

    /// The `{FunctionName}` of a path that takes no qualifier (Update,
    /// aliases, concurrency, publish).
    pub fn unqualified_function(&self) -> Result<String, ApiError> {
        let name = lamb_types::FunctionRef::parse_unqualified(self.resource())?;
        lamb_types::FunctionRef::parse(self.resource())?.ensure_local(&self.1)?;
        Ok(name)
    }

    /// The `{FunctionName}` of a Get/Invoke/Delete path with its request's
    /// `Qualifier` member, both validated at once (lamb_types'
    /// `FunctionRef::parse_qualified`).
    pub fn qualified_function(
        &self,
        qualifier: Option<&str>,
    ) -> Result<(lamb_types::FunctionRef, lamb_types::Qualifier), ApiError> {
        let (fref, q) = lamb_types::FunctionRef::parse_qualified(self.resource(), qualifier)?;
        fref.ensure_local(&self.1)?;
        Ok((fref, q))
    }

    /// The `{FunctionName}` of a Get/Invoke/Delete path.
    pub fn function_ref(&self) -> Result<lamb_types::FunctionRef, ApiError> {
        let fref = lamb_types::FunctionRef::parse(self.resource())?;
        fref.ensure_local(&self.1)?;
        Ok(fref)
    }
}

/// Query parameters in order, percent-decoded, repeated names kept
/// (`UntagResource`'s `tagKeys=a&tagKeys=b`).
#[derive(Debug, Clone, Default)]
pub struct Query(pub Vec<(String, String)>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Self {
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(&s.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        };
        Self(
            raw.unwrap_or_default()
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (decode(k), decode(v))
                })
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// `Marker` and `MaxItems` of a list operation, owned so that they can
    /// move into the blocking registry call; an empty marker means the first page.
    pub fn page(&self) -> Result<Page, ApiError> {
        Ok(Page {
            marker: self.get("Marker").filter(|m| !m.is_empty()).map(str::to_owned),
            max_items: self.max_items()?,
        })
    }

    /// `MaxItems`, 1–10000 when given.
    pub fn max_items(&self) -> Result<usize, ApiError> {
        match self.get("MaxItems") {
            None | Some("") => Ok(0),
            Some(s) => match s.parse::<usize>() {
                Ok(n) if (1..=10_000).contains(&n) => Ok(n),
                _ => Err(LambdaError::validation(format!(
                    "1 validation error detected: Value '{s}' at 'maxItems' failed to satisfy constraint: \
                     Member must have value between 1 and 10000"
                ))
                .into()),
            },
        }
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Query {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::parse(parts.uri.query()))
    }
}

/// A list operation's paging parameters (see [`Query::page`]).
#[derive(Debug, Clone)]
pub struct Page {
    marker: Option<String>,
    max_items: usize,
}

impl Page {
    /// At most `limit` items, for operations Lambda pages more tightly.
    pub fn at_most(mut self, limit: usize) -> Page {
        self.max_items = self.max_items.min(limit);
        self
    }

    /// The registry's view of the same parameters.
    pub fn request(&self) -> lamb_store::PageRequest<'_> {
        lamb_store::PageRequest {
            marker: self.marker.as_deref(),
            max_items: self.max_items,
        }
    }
}
