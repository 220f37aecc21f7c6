//! Request bodies: parameters come in the query string only, but a client may still
//! send a body (an old form, `curl -d`). It is read to its end, however long, and
//! dropped, so the next request on a kept-alive connection starts where it should.

use axum::extract::{FromRequest, Request};
use futures_util::StreamExt;

use super::ApiError;

pub struct IgnoredBody;

impl<S: Sync> FromRequest<S> for IgnoredBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, _: &S) -> Result<Self, ApiError> {
        // Streamed, not buffered: no size limit is needed, nor a 413 for a large body.
        let mut chunks = request.into_body().into_data_stream();
        while let Some(chunk) = chunks.next().await {
            chunk
                .map_err(|e| ApiError::BadRequest(format!("cannot read the request body: {e}")))?;
        }
        Ok(Self)
    }
}
