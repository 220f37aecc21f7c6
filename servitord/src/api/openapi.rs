//! `GET /api/openapi.json`: the OpenAPI 3.1 description of this API. It is written by
//! hand in `openapi.json` beside this file; the tests keep it true: real answers of a
//! real daemon are validated against it, and every route is described
//! (`servitord/tests/daemon/openapi.rs`, and the unit tests below).

use std::sync::LazyLock;

use axum::body::Bytes;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// The description as written.
const WRITTEN: &str = include_str!("openapi.json");

/// The description as served: `info.version` says this daemon's version.
static SERVED: LazyLock<Bytes> = LazyLock::new(|| {
    let mut document: Value =
        serde_json::from_str(WRITTEN).expect("openapi.json is JSON (a unit test checks it)");
    document["info"]["version"] = Value::from(env!("CARGO_PKG_VERSION"));
    Bytes::from(serde_json::to_vec(&document).expect("a JSON value serializes"))
});

pub async fn get() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        SERVED.clone(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn document() -> Value {
        serde_json::from_slice(&SERVED).expect("the served description is JSON")
    }

    /// Every `$ref` in `value`, with where it was found.
    fn refs<'a>(value: &'a Value, at: String, found: &mut Vec<(String, &'a str)>) {
        match value {
            Value::Object(object) => {
                for (key, value) in object {
                    match (key.as_str(), value) {
                        ("$ref", Value::String(target)) => found.push((at.clone(), target)),
                        _ => refs(value, format!("{at}/{key}"), found),
                    }
                }
            }
            Value::Array(items) => {
                for (index, item) in items.iter().enumerate() {
                    refs(item, format!("{at}/{index}"), found);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn is_openapi_3_1_with_the_daemon_version_and_sound_references() {
        let document = document();
        assert_eq!(document["openapi"], "3.1.0");
        assert_eq!(document["info"]["version"], env!("CARGO_PKG_VERSION"));
        let mut found = Vec::new();
        refs(&document, String::new(), &mut found);
        assert!(found.len() > 20);
        for (at, target) in found {
            let pointer = target
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("{at}: {target} is not a local reference"));
            assert!(
                document.pointer(pointer).is_some(),
                "{at}: {target} leads nowhere"
            );
        }
        let mut operation_ids = BTreeSet::new();
        for (path, item) in document["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("a path item") {
                if method == "description" {
                    continue;
                }
                let id = operation["operationId"].as_str().expect("an operationId");
                assert!(operation_ids.insert(id), "{path} {method}: {id} twice");
                assert!(operation["responses"]["200"].is_object(), "{path} {method}");
            }
        }
    }

    #[test]
    fn describes_every_route_and_only_those() {
        let document = document();
        let described: BTreeSet<&str> = document["paths"]
            .as_object()
            .expect("paths")
            .keys()
            .map(String::as_str)
            .collect();
        // The web UI's files: the router's fallback.
        let fallback = BTreeSet::from(["/", "/{path}"]);
        let routes: BTreeSet<&str> = super::super::ROUTES.into_iter().collect();
        assert_eq!(
            described
                .difference(&fallback)
                .copied()
                .collect::<BTreeSet<_>>(),
            routes
        );
    }
}
