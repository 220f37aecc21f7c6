//! The OpenAPI description served at `/api/openapi.json`, held to what the daemon really
//! does: real answers of every operation, for every status code the code can give,
//! are checked against it (documented status, content type, and the body against its
//! JSON schema), every status it documents is seen, and every other method is a `405`
//! with an `Allow` header naming the documented ones.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{Value, json};
use servitor_shared::ExecutionStatus::{Cancelled, Failure, Running, Success};
use servitor_shared::api::{
    EVENTS, EXECUTIONS_CANCEL as CANCEL, EXECUTIONS_GET as EXECUTION,
    EXECUTIONS_GET_LIST as EXECUTIONS, EXECUTIONS_LOGS_GET as LOGS, HEALTH, JOBS_GET as JOB,
    JOBS_GET_LIST as JOBS, JOBS_RUN as RUN, METRICS, OPENAPI as SPEC_PATH, SCHEDULE_PAUSE as PAUSE,
    SCHEDULE_RESUME as RESUME,
};

use crate::support::{Daemon, Head, Response, TIMEOUT, Workdir, encode, wait_until};
use crate::{sh, wait_gate};

/// The JSON Schema dialect of OpenAPI 3.1's schema objects.
const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";
/// Methods tried on every path.
const METHODS: [&str; 6] = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];

/// Documented statuses no test here provokes, and why.
const NOT_PROVOKED: [(&str, &str, &str, &str); 2] = [
    (
        HEALTH,
        "get",
        "503",
        "only before restart recovery ends, which takes milliseconds",
    ),
    (
        CANCEL,
        "post",
        "503",
        "only for a run of a previous daemon that is being recovered",
    ),
];

/// The description, fetched from the daemon, and what was checked against it.
struct Spec {
    document: Value,
    validators: RefCell<BTreeMap<String, jsonschema::Validator>>,
    /// `(path, method, status)` seen.
    seen: RefCell<BTreeSet<(String, String, String)>>,
}

impl Spec {
    fn fetch(daemon: &Daemon) -> Self {
        let answer = daemon.get(SPEC_PATH);
        assert_eq!(answer.status, 200);
        answer.assert_json();
        let document: Value = answer.json();
        assert_eq!(document["openapi"], "3.1.0");
        assert_eq!(document["info"]["version"], env!("CARGO_PKG_VERSION"));
        Self {
            document,
            validators: RefCell::default(),
            seen: RefCell::default(),
        }
    }

    fn paths(&self) -> &serde_json::Map<String, Value> {
        self.document["paths"].as_object().expect("paths")
    }

    /// The methods described for `path`, lower case.
    fn methods(&self, path: &str) -> Vec<&str> {
        self.paths()[path]
            .as_object()
            .expect("a path item")
            .keys()
            .map(String::as_str)
            .filter(|key| *key != "description")
            .collect()
    }

    /// `value`, or what its `$ref` leads to, with its JSON pointer.
    fn resolve(&self, value: &Value, pointer: String) -> (Value, String) {
        match value["$ref"].as_str() {
            Some(target) => {
                let target = target.strip_prefix('#').expect("a local reference");
                let found = self.document.pointer(target).expect("a sound reference");
                self.resolve(found, target.to_owned())
            }
            None => (value.clone(), pointer),
        }
    }

    /// Checks an answer of `method path` (`path` as in the description): its status is
    /// documented, its content type too, and a JSON body fits the schema.
    #[track_caller]
    fn check(&self, method: &str, path: &str, answer: &Response) {
        let method = method.to_ascii_lowercase();
        let status = answer.status.to_string();
        let responses = format!("/paths/{}/{method}/responses", escape(path));
        let documented = self
            .document
            .pointer(&responses)
            .unwrap_or_else(|| panic!("{method} {path} is not described"));
        let response = documented.get(&status).unwrap_or_else(|| {
            panic!(
                "{method} {path} answered {status}, which is not described: {}",
                String::from_utf8_lossy(&answer.body)
            )
        });
        let (response, pointer) = self.resolve(response, format!("{responses}/{status}"));
        self.seen
            .borrow_mut()
            .insert((path.to_owned(), method.clone(), status.clone()));

        let content_type = answer.header("content-type");
        let Some(content) = response.get("content").and_then(Value::as_object) else {
            assert!(
                answer.body.is_empty(),
                "{method} {path} {status}: a body where none is described"
            );
            return;
        };
        let media_type = content_type
            .unwrap_or_else(|| panic!("{method} {path} {status}: no Content-Type"))
            .split(';')
            .next()
            .unwrap_or_default()
            .trim();
        let described = if content.contains_key(media_type) {
            media_type
        } else if content.contains_key("*/*") {
            "*/*"
        } else {
            panic!(
                "{method} {path} {status}: Content-Type {media_type} is not among {:?}",
                content.keys().collect::<Vec<_>>()
            )
        };
        if media_type == "application/json" {
            answer.assert_json();
            let schema = format!("#{pointer}/content/{}/schema", escape(described));
            self.validate(
                &schema,
                &answer.value(),
                &format!("{method} {path} {status}"),
            );
        }
    }

    /// Validates `instance` against the schema at `pointer` (`#/...`) of the description.
    #[track_caller]
    fn validate(&self, pointer: &str, instance: &Value, what: &str) {
        let errors = self.errors(pointer, instance);
        assert!(
            errors.is_empty(),
            "{what}: the answer does not fit {pointer}:\n{}\n{instance:#}",
            errors.join("\n")
        );
    }

    /// How `instance` does not fit the schema at `pointer`.
    fn errors(&self, pointer: &str, instance: &Value) -> Vec<String> {
        let mut validators = self.validators.borrow_mut();
        let validator = validators.entry(pointer.to_owned()).or_insert_with(|| {
            let mut root = self.document.clone();
            root["$schema"] = json!(DIALECT);
            // A URI fragment: `{` and `}` (of `/{path}`) must be percent-encoded.
            root["$ref"] = json!(pointer.replace('{', "%7B").replace('}', "%7D"));
            jsonschema::draft202012::new(&root)
                .unwrap_or_else(|e| panic!("the schema at {pointer} does not compile: {e}"))
        });
        validator
            .iter_errors(instance)
            .map(|e| format!("at {}: {e}", e.instance_path()))
            .collect()
    }

    /// Sends `method target`, whose path is `path` in the description, and checks it.
    #[track_caller]
    fn call(&self, daemon: &Daemon, method: &str, path: &str, target: &str) -> Response {
        let answer = daemon.request(method, target);
        self.check(method, path, &answer);
        answer
    }

    /// Every documented `(path, method, status)` was seen, but those known not to be.
    #[track_caller]
    fn assert_all_seen(&self) {
        let seen = self.seen.borrow();
        let mut missing = Vec::new();
        for (path, item) in self.paths() {
            for method in self.methods(path) {
                for status in item[method]["responses"]
                    .as_object()
                    .expect("responses")
                    .keys()
                {
                    let key = (path.clone(), method.to_owned(), status.clone());
                    let excused = NOT_PROVOKED.iter().any(|(p, m, s, _)| {
                        (*p, *m, *s) == (path.as_str(), method, status.as_str())
                    });
                    if !seen.contains(&key) && !excused {
                        missing.push(format!("{method} {path} {status}"));
                    }
                }
            }
        }
        assert!(missing.is_empty(), "described but never seen: {missing:?}");
    }
}

/// A JSON pointer segment.
fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

fn target(path: &str, params: &[(&str, &str)]) -> String {
    let query: Vec<String> = params
        .iter()
        .map(|(name, value)| format!("{name}={}", encode(value)))
        .collect();
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", query.join("&"))
    }
}

fn workdir() -> Workdir {
    let legacy = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/legacy-state");
    Workdir::new()
        // Runs of the old tool, damaged ones among them (status `unknown`, `error`).
        .copy_tree(&legacy, "state")
        .job("nightly/backup", &sh("echo backing up"))
        .input_spec("nightly/backup", r#"{"TARGET": {}}"#)
        .file(
            "config/jobs/nightly/backup.settings.json",
            r#"{"schedule": "30 2 * * *", "timezone": "Europe/Madrid"}"#,
        )
        .job("hello", &sh("echo Hello!"))
        .job("hi", &sh("echo Hello!"))
        .job("demo/greet", &sh("echo \"$GREETING, $NAME!\""))
        .input_spec(
            "demo/greet",
            r#"{"NAME": {"description": "Who", "required": true},
                "GREETING": {"default": "Hello", "x-ui": {"order": 1}},
                "LEVEL": {"choices": ["low", "high"], "default": "low"},
                "TOKEN": {"secret": true}}"#,
        )
        .job("demo/fail", &sh("echo failing >&2; exit 3"))
        .job(
            "gated",
            &sh(&format!("echo waiting; {}", wait_gate("gate"))),
        )
        .gate("gate")
        .job("busy", &sh(&wait_gate("busy-gate")))
        .gate("busy-gate")
        .file(
            "config/jobs/busy.settings.json",
            r#"{"concurrency": 1, "on_busy": "skip", "stop_signal": "SIGTERM",
                "stop_grace": "5s", "retention": {"keep_last": 10, "max_age": "30days"},
                "env": {"LANG": "C.UTF-8"}}"#,
        )
        .job("slow", &sh("sleep 30"))
        .file("config/jobs/slow.settings.json", r#"{"timeout": "300ms"}"#)
        .job("broken/spec", &sh("true"))
        .input_spec("broken/spec", "{not json")
        .job("broken/settings", &sh("true"))
        .file(
            "config/jobs/broken/settings.settings.json",
            r#"{"timout": "1h"}"#,
        )
        // Its executions folder is a file: no run of it can be recorded (`500`).
        .job("unrecordable", &sh("true"))
        .file("state/jobs/unrecordable/executions", "not a folder")
        .file("ui/index.html", "<!doctype html><title>Servitor</title>")
        .file("ui/app.js", "export {};")
}

#[test]
fn every_answer_fits_the_description_and_every_documented_status_happens() {
    let wd = workdir();
    let daemon = wd.daemon().arg("--ui-root").arg(wd.join("ui")).start();
    let spec = Spec::fetch(&daemon);
    // Sends `method path?params`, checks the answer against the description, and that
    // it is the `expected` status.
    let expect = |method: &str, path: &str, params: &[(&str, &str)], expected: u16| {
        let target = target(path, params);
        let answer = spec.call(&daemon, method, path, &target);
        assert_eq!(
            answer.status,
            expected,
            "{method} {target}: {}",
            String::from_utf8_lossy(&answer.body)
        );
        answer
    };
    let job = |id| [("job_id", id)];
    let execution = |job, id| [("job_id", job), ("execution_id", id)];

    // Jobs.
    let jobs = expect("GET", JOBS, &[], 200).value();
    let with = |field: &str| {
        jobs.as_array()
            .unwrap()
            .iter()
            .any(|j| j.get(field).is_some())
    };
    assert!(with("settings") && with("error"), "{jobs:#}");
    expect("GET", JOB, &job("demo/greet"), 200);
    expect("GET", JOB, &job("busy"), 200);
    expect("GET", JOB, &[], 400);
    expect("GET", JOB, &job("../etc"), 404);
    let scheduled = expect("GET", JOB, &job("nightly/backup"), 200).value();
    assert_eq!(
        scheduled["schedule"]["description"], "At 02:30",
        "{scheduled}"
    );

    // Schedules: paused and resumed, refused, and a state that cannot be saved.
    for path in [PAUSE, RESUME] {
        expect("POST", path, &job("nightly/backup"), 200);
        expect("POST", path, &[], 400);
        expect("POST", path, &job("nope"), 404);
    }
    let state = wd.join("state/schedules.json");
    let _ = std::fs::remove_file(&state);
    std::fs::create_dir(&state).unwrap();
    for path in [PAUSE, RESUME] {
        expect("POST", path, &job("nightly/backup"), 500);
    }
    std::fs::remove_dir(&state).unwrap();

    // Runs: accepted, refused for each reason, and one that cannot be recorded.
    let name = ("input_value_NAME", "Ada");
    expect(
        "POST",
        RUN,
        &[
            ("job_id", "demo/greet"),
            name,
            ("input_value_TOKEN", "s3cret"),
        ],
        200,
    );
    expect("POST", RUN, &job("demo/greet"), 400);
    expect(
        "POST",
        RUN,
        &[("job_id", "demo/greet"), name, ("input_value_LEVEL", "max")],
        400,
    );
    expect("POST", RUN, &job("nope"), 404);
    expect("POST", RUN, &job("broken/spec"), 409);
    expect("POST", RUN, &job("broken/settings"), 409);
    expect("POST", RUN, &job("unrecordable"), 500);
    expect("POST", RUN, &job("busy"), 200);
    expect("POST", RUN, &job("busy"), 409);
    for id in ["hi", "demo/fail", "slow", "gated"] {
        expect("POST", RUN, &job(id), 200);
    }
    daemon.wait_status("gated", "1", Running);
    daemon.wait_ended("hi", "1");
    daemon.wait_status("demo/fail", "1", Failure);
    let slow = daemon.wait_status("slow", "1", Failure);
    assert!(slow.timed_out, "{slow:?}");

    // Executions in every state: running, succeeded, failed, timed out, damaged.
    for id in [
        "hello",
        "hi",
        "demo/greet",
        "demo/fail",
        "slow",
        "gated",
        "nightly/backup",
    ] {
        expect("GET", EXECUTIONS, &job(id), 200);
    }
    let page = [
        ("job_id", "nightly/backup"),
        ("limit", "2"),
        ("before", "6"),
    ];
    let page = expect("GET", EXECUTIONS, &page, 200).value();
    assert_eq!(page.as_array().map(Vec::len), Some(2));
    // An empty value counts as absent (`allowEmptyValue`).
    let empty = [("job_id", "hi"), ("limit", ""), ("before", "")];
    assert_eq!(
        expect("GET", EXECUTIONS, &empty, 200)
            .value()
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    expect("GET", EXECUTIONS, &[("job_id", "hi"), ("limit", "0")], 400);
    expect("GET", EXECUTIONS, &[("job_id", "hi"), ("before", "x")], 400);
    expect("GET", EXECUTIONS, &job("nope"), 404);
    for (id, number) in [
        ("hi", "1"),
        ("slow", "1"),
        ("gated", "1"),
        ("demo/greet", "1"),
    ] {
        expect("GET", EXECUTION, &execution(id, number), 200);
    }
    for number in ["1", "2", "3", "4", "5", "6", "7"] {
        expect("GET", EXECUTION, &execution("nightly/backup", number), 200);
    }
    expect("GET", EXECUTION, &execution("hi", "01"), 400);
    expect("GET", EXECUTION, &job("hi"), 400);
    expect("GET", EXECUTION, &execution("hi", "9"), 404);

    // Logs: of a run that has ended, as it is now, and followed until the run ends.
    assert_eq!(
        expect("GET", LOGS, &execution("hi", "1"), 200).body,
        b"Hello!\n"
    );
    let now = [
        ("job_id", "gated"),
        ("execution_id", "1"),
        ("follow", "false"),
    ];
    // `running` may come before the job's first line.
    wait_until("gated to say it waits", TIMEOUT, || {
        daemon.log_now("gated", "1") == b"waiting\n"
    });
    assert_eq!(expect("GET", LOGS, &now, 200).body, b"waiting\n");
    let maybe = [("job_id", "hi"), ("execution_id", "1"), ("follow", "maybe")];
    expect("GET", LOGS, &maybe, 400);
    expect("GET", LOGS, &execution("hi", "2"), 404);
    let mut follow = daemon.stream(&target(LOGS, &execution("gated", "1")));
    spec.check("GET", LOGS, &head_only(&follow.head));

    // Events, while a run is cancelled.
    let mut events = daemon.stream(EVENTS);
    spec.check("GET", EVENTS, &head_only(&events.head));
    expect("POST", CANCEL, &execution("gated", "1"), 200);
    for _ in 0..2 {
        let event = serde_json::to_value(events.next_event(TIMEOUT)).unwrap();
        spec.validate("#/components/schemas/Event", &event, "an event");
    }
    assert!(follow.read_to_end(TIMEOUT).starts_with(b"waiting\n"));
    let cancelled = daemon.wait_status("gated", "1", Cancelled);
    assert!(cancelled.cancelled_by.is_some(), "{cancelled:?}");
    expect("GET", EXECUTION, &execution("gated", "1"), 200);
    expect("POST", CANCEL, &execution("gated", "1"), 409);
    expect("POST", CANCEL, &execution("gated", "0"), 400);
    expect("POST", CANCEL, &execution("gated", "2"), 404);
    wd.open_gate("busy-gate");
    daemon.wait_status("busy", "1", Success);
    daemon.wait_ended("demo/greet", "1");

    // Operations and this description.
    expect("GET", HEALTH, &[], 200);
    let metrics = expect("GET", METRICS, &[], 200);
    assert!(String::from_utf8_lossy(&metrics.body).contains("servitor_runs_started_total"));
    expect("GET", SPEC_PATH, &[], 200);

    // The web UI, its revalidation, and paths that are nothing.
    let index = expect("GET", "/", &[], 200);
    assert_eq!(
        index.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let app = spec.call(&daemon, "GET", "/{path}", "/app.js");
    assert_eq!(app.status, 200);
    for (file, etag, expected) in [
        ("/", index.header("etag"), 304),
        ("/app.js", app.header("etag"), 304),
        ("/app.js", Some("\"stale\""), 200),
    ] {
        let mut connection = daemon.connect();
        let etag = etag.expect("an ETag");
        connection
            .send("GET", file, &[("If-None-Match", etag)], b"")
            .unwrap();
        let answer = connection.response(false).unwrap();
        assert_eq!(answer.status, expected, "{file} {etag}");
        spec.check("GET", if file == "/" { "/" } else { "/{path}" }, &answer);
    }
    for missing in ["/missing.js", "/api/nope", "/.hidden", "/%2e%2e/etc/passwd"] {
        assert_eq!(spec.call(&daemon, "GET", "/{path}", missing).status, 404);
    }
    // Without a UI root, no page.
    let bare = Workdir::new();
    let without_ui = bare.start();
    assert_eq!(spec.call(&without_ui, "GET", "/", "/").status, 404);

    spec.assert_all_seen();
}

/// The head of a streamed answer, as an answer without a body.
fn head_only(head: &Head) -> Response {
    Response {
        status: head.status,
        headers: head.headers.clone(),
        body: Vec::new(),
    }
}

/// Every described path answers the methods it does not describe with `405`, an
/// `Allow` header naming those it does (and `HEAD` with `GET`), and an error body.
#[test]
fn other_methods_are_refused_with_the_documented_ones_allowed() {
    let wd = Workdir::new()
        .job("hello", &sh("true"))
        .file("ui/index.html", "<!doctype html>")
        .file("ui/app.js", "");
    let daemon = wd.daemon().arg("--ui-root").arg(wd.join("ui")).start();
    let spec = Spec::fetch(&daemon);
    let refusal = "#/components/responses/MethodNotAllowed/content/application~1json/schema";
    for path in spec.paths().keys() {
        let concrete = if path == "/{path}" {
            "/app.js"
        } else {
            path.as_str()
        };
        let described = spec.methods(path);
        let mut allowed: Vec<String> = described.iter().map(|m| m.to_ascii_uppercase()).collect();
        if described.contains(&"get") {
            allowed.push("HEAD".into());
        }
        for method in METHODS {
            if allowed.iter().any(|m| m == method) {
                continue;
            }
            let answer = daemon.request(method, concrete);
            assert_eq!(answer.status, 405, "{method} {concrete}: {}", answer.text());
            assert_eq!(
                answer.header("allow"),
                Some(allowed.join(", ").as_str()),
                "{method} {concrete}"
            );
            answer.assert_json();
            spec.validate(refusal, &answer.value(), &format!("{method} {concrete}"));
        }
    }
    // Nothing else is served: an unknown path is a 404 whatever the method.
    for method in METHODS {
        let answer = daemon.request(method, "/api/jobs/unknown");
        assert_eq!(answer.status, 404, "{method}");
    }
}

/// The contract's paths and methods (API.md), and the fields Servitor added.
#[test]
fn the_description_says_what_the_contract_says() {
    let wd = Workdir::new();
    let daemon = wd.start();
    let spec = Spec::fetch(&daemon);
    for (path, method) in [
        ("/api/jobs/get_list", "get"),
        ("/api/jobs/get", "get"),
        ("/api/jobs/run", "post"),
        ("/api/jobs/schedule/pause", "post"),
        ("/api/jobs/schedule/resume", "post"),
        ("/api/jobs/executions/get_list", "get"),
        ("/api/jobs/executions/get", "get"),
        ("/api/jobs/executions/cancel", "post"),
        ("/api/jobs/executions/logs/get", "get"),
        ("/api/events", "get"),
        ("/api/health", "get"),
        ("/metrics", "get"),
        ("/", "get"),
        ("/{path}", "get"),
    ] {
        assert_eq!(spec.methods(path), [method], "{path}");
        // Every parameter is in the query (but the UI's file path and its header), and
        // an optional one given empty counts as absent.
        let operation = &spec.paths()[path][method];
        for parameter in operation["parameters"].as_array().into_iter().flatten() {
            let (parameter, _) = spec.resolve(parameter, String::new());
            if parameter["in"] != "query" {
                assert!(path == "/" || path == "/{path}", "{path}: {parameter}");
            } else if parameter["required"] != true {
                assert_eq!(parameter["allowEmptyValue"], true, "{path}: {parameter}");
            }
        }
    }
    let execution = &spec.document["components"]["schemas"]["Execution"]["properties"];
    for added in [
        "error",
        "timed_out",
        "triggered_by",
        "cancelled_by",
        "trigger",
        "retry_of",
        "attempt",
    ] {
        assert!(execution.get(added).is_some(), "{added}");
    }
    let job = &spec.document["components"]["schemas"]["Job"]["properties"];
    assert!(job.get("settings").is_some() && job.get("error").is_some());

    // The schemas are strict enough to catch a changed answer.
    let schema = "#/components/schemas/Execution";
    let good = json!({"execution_id": "3", "status": "success",
        "status_history": [{"timestamp": "2024-03-17T00:59:08.123456+00:00", "status": "created"}],
        "result": {"exit_code": 0, "message": ""}, "input_values": {"NAME": "Ada"}});
    assert_eq!(spec.errors(schema, &good), Vec::<String>::new());
    let mut changed = Vec::new();
    for (pointer, value) in [
        ("/execution_id", json!("03")),
        ("/execution_id", json!(3)),
        ("/status", json!("done")),
        ("/result/exit_code", json!("0")),
        ("/input_values/NAME", json!(1)),
        ("/status_history/0/status", json!("unknown")),
        ("/timed_out", json!(false)),
    ] {
        let mut bad = good.clone();
        match bad.pointer_mut(pointer) {
            Some(slot) => *slot = value,
            None => bad["timed_out"] = value,
        }
        changed.push(bad);
    }
    let mut extra = good.clone();
    extra["surprise"] = json!(true);
    changed.push(extra);
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("result");
    changed.push(missing);
    for bad in changed {
        assert!(!spec.errors(schema, &bad).is_empty(), "{bad}");
    }
}
