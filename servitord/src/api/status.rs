//! `/api/health` and `/metrics`: how the daemon is doing, for people and monitoring.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use servitor_shared::api::Health;

use super::json;
use crate::app::App;
use crate::observe::metrics::Gauges;

/// `200` once ready (history loaded, workers up), `503` before.
pub async fn health(State(app): State<Arc<App>>) -> Response {
    let ready = app.is_ready();
    let health = Health {
        status: if ready { "ok" } else { "starting" }.to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        uptime_seconds: app.uptime().as_secs_f64(),
        workdir: app.workdir().root().display().to_string(),
        jobs: app.catalog().snapshot().await.entries.len(),
        running: app.runs().active(),
        queued: app.runs().waiting(),
        workers: app.workers(),
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, json(&health)).into_response()
}

pub async fn metrics(State(app): State<Arc<App>>) -> Response {
    let seconds = |time: Option<jiff::Timestamp>| time.map(|t| t.as_microsecond() as f64 / 1e6);
    let gauges = Gauges {
        running: app.runs().active(),
        queued: app.runs().waiting(),
        event_clients: app.event_clients(),
        log_followers: app.log_followers(),
        slurm_polls: app.runs().slurm_polls(),
        uptime: app.uptime(),
        last_ends: app
            .history()
            .last_ends()
            .into_iter()
            .map(|(job, success, failure)| (job.to_string(), seconds(success), seconds(failure)))
            .collect(),
        next_runs: app
            .schedules()
            .scheduler()
            .next_runs()
            .into_iter()
            .map(|(job, at)| (job, at.as_microsecond() as f64 / 1e6))
            .collect(),
    };
    (
        [(header::CONTENT_TYPE, crate::observe::metrics::CONTENT_TYPE)],
        app.metrics().render(&gauges),
    )
        .into_response()
}
