//! How requests are read: parameters, methods, paths, bodies, and the error answers.
//! A rejected request changes nothing on disk.

use servitor_shared::ExecutionStatus;
use servitor_shared::api::RunAccepted;

use crate::sh;
use crate::support::{Connection, Workdir, encode};

/// Endpoints that name a job, with the method they take.
const JOB_ENDPOINTS: [(&str, &str); 6] = [
    ("GET", "/api/jobs/get?"),
    ("POST", "/api/jobs/run?"),
    ("GET", "/api/jobs/executions/get_list?"),
    ("GET", "/api/jobs/executions/get?execution_id=1&"),
    ("POST", "/api/jobs/executions/cancel?execution_id=1&"),
    ("GET", "/api/jobs/executions/logs/get?execution_id=1&"),
];

/// Endpoints that name an execution.
const EXECUTION_ENDPOINTS: [(&str, &str); 3] = [
    ("GET", "/api/jobs/executions/get"),
    ("POST", "/api/jobs/executions/cancel"),
    ("GET", "/api/jobs/executions/logs/get"),
];

#[test]
fn missing_or_malformed_parameters_are_400() {
    let wd = Workdir::new()
        .job("hello", &sh("echo hi"))
        .input_spec("hello", r#"{"NAME": {}}"#);
    let daemon = wd.start();
    let id = daemon.run("hello", &[]);
    daemon.wait_ended("hello", &id);
    let before = wd.tree("state");

    let mut cases = vec![
        (
            "GET",
            "/api/jobs/get".to_owned(),
            "missing parameter job_id",
        ),
        ("GET", "/api/jobs/get?job_id=".to_owned(), "missing"),
        ("GET", "/api/jobs/get?job_id".to_owned(), "missing"),
        ("POST", "/api/jobs/run".to_owned(), "missing"),
        ("POST", "/api/jobs/run?job_id=".to_owned(), "missing"),
        ("GET", "/api/jobs/executions/get_list".to_owned(), "missing"),
        ("GET", "/api/jobs/get?job_id=%FF".to_owned(), "UTF-8"),
        (
            "POST",
            "/api/jobs/run?job_id=hello&input_value_NAME=a%00b".to_owned(),
            "NUL",
        ),
        (
            "POST",
            "/api/jobs/run?job_id=hello&input_value_SERVITOR_JOB=x".to_owned(),
            "SERVITOR_",
        ),
        (
            "POST",
            "/api/jobs/run?job_id=hello&input_value_SERVITOR_ROOT=%2F".to_owned(),
            "SERVITOR_",
        ),
    ];
    for (method, path) in EXECUTION_ENDPOINTS {
        cases.push((method, format!("{path}?job_id=hello"), "missing"));
        cases.push((
            method,
            format!("{path}?job_id=hello&execution_id="),
            "missing",
        ));
        cases.push((method, format!("{path}?execution_id=1"), "missing"));
        for bad in [
            "abc",
            "0",
            "-1",
            "../../x",
            "..%2F..%2Fx",
            "01",
            "1.0",
            "%201",
        ] {
            cases.push((
                method,
                format!("{path}?job_id=hello&execution_id={bad}"),
                "positive decimal",
            ));
        }
    }
    for (method, target, expected) in cases {
        let message = daemon
            .request(method, &target)
            .error_message(400)
            .to_string();
        assert!(
            message.contains(expected),
            "{method} {target}: {message:?} does not say {expected:?}"
        );
    }
    assert_eq!(
        wd.tree("state"),
        before,
        "a rejected request changed the state"
    );
    assert_eq!(daemon.executions("hello").len(), 1);
}

#[test]
fn unknown_jobs_are_404_and_create_nothing() {
    let wd = Workdir::new()
        .job("hello", &sh("true"))
        .job("b", &sh("true"))
        .job("dir/x", &sh("true"))
        .job(".hidden", &sh("touch \"$SERVITOR_ROOT/ran\""))
        .job("dir/.secret", &sh("touch \"$SERVITOR_ROOT/ran\""))
        .job_with_mode("notes", "#!/bin/sh\ntouch \"$SERVITOR_ROOT/ran\"\n", 0o644)
        .file("outside", "#!/bin/sh\ntouch \"$SERVITOR_ROOT/ran\"\n");
    std::fs::set_permissions(
        wd.join("outside"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let daemon = wd.start();
    let before = wd.tree("state");
    assert_eq!(before, ["servitord.lock"]);

    let outside = wd.join("outside").display().to_string();
    let unknown = [
        "../../../../usr/bin/id",
        "/usr/bin/id",
        outside.as_str(),
        "../../outside",
        "../outside",
        "a/../b",
        "dir/../hello",
        "./hello",
        "hello/",
        "/hello",
        "dir//x",
        "dir/./x",
        ".",
        "..",
        ".hidden",
        "dir/.secret",
        "missing",
        "notes",
        "dir",
        "hello/x",
    ];
    for id in unknown {
        for (method, path) in JOB_ENDPOINTS {
            let target = format!("{path}job_id={}", encode(id));
            let message = daemon.request(method, &target).error_message(404);
            assert!(
                message.contains("unknown job"),
                "{method} {target}: {message}"
            );
        }
    }
    assert_eq!(wd.tree("state"), before, "an unknown job changed the state");
    assert!(!wd.join("ran").exists(), "an unknown job ran");
    assert!(!wd.join("config/jobs/hello/executions").exists());
}

#[test]
fn unknown_executions_are_404() {
    let wd = Workdir::new()
        .job("hello", &sh("true"))
        .job("never-run", &sh("true"));
    let daemon = wd.start();
    let id = daemon.run("hello", &[]);
    daemon.wait_ended("hello", &id);
    let before = wd.tree("state");

    for (method, path) in EXECUTION_ENDPOINTS {
        for job in ["hello", "never-run"] {
            for execution in ["2", "99", "18446744073709551615"] {
                let target = format!("{path}?job_id={job}&execution_id={execution}");
                let message = daemon.request(method, &target).error_message(404);
                assert!(message.contains("unknown execution"), "{target}: {message}");
            }
        }
    }
    // A job without runs has an empty list, and asking does not create its folder.
    let answer = daemon.get("/api/jobs/executions/get_list?job_id=never-run");
    assert_eq!(answer.status, 200);
    answer.assert_json();
    assert_eq!(answer.text(), "[]");
    assert_eq!(wd.tree("state"), before);
    assert!(!wd.join("state/jobs/never-run").exists());
}

#[test]
fn a_wrong_method_is_405_and_an_unknown_path_404() {
    let wd = Workdir::new().job("hello", &sh("true"));
    let daemon = wd.start();

    for (method, target, allowed) in [
        ("POST", "/api/jobs/get_list", "GET, HEAD"),
        ("DELETE", "/api/jobs/get?job_id=hello", "GET, HEAD"),
        ("GET", "/api/jobs/run?job_id=hello", "POST"),
        ("PUT", "/api/jobs/run?job_id=hello", "POST"),
        (
            "POST",
            "/api/jobs/executions/get_list?job_id=hello",
            "GET, HEAD",
        ),
        (
            "PATCH",
            "/api/jobs/executions/get?job_id=hello&execution_id=1",
            "GET, HEAD",
        ),
        (
            "GET",
            "/api/jobs/executions/cancel?job_id=hello&execution_id=1",
            "POST",
        ),
        (
            "POST",
            "/api/jobs/executions/logs/get?job_id=hello&execution_id=1",
            "GET, HEAD",
        ),
        ("POST", "/api/events", "GET, HEAD"),
    ] {
        let answer = daemon.request(method, target);
        let message = answer.error_message(405);
        assert!(message.contains(allowed), "{method} {target}: {message}");
        assert_eq!(answer.header("allow"), Some(allowed), "{method} {target}");
    }
    // GET on run did not run anything.
    assert!(!wd.join("state/jobs").exists());

    for (method, target) in [
        ("GET", "/api/nope"),
        ("GET", "/api/jobs"),
        ("GET", "/api/jobs/get_list/extra"),
        ("POST", "/api/jobs/delete?job_id=hello"),
        ("GET", "/"),
        ("GET", "/index.html"),
    ] {
        let message = daemon.request(method, target).error_message(404);
        assert!(!message.is_empty(), "{method} {target}");
    }
}

#[test]
fn parameters_are_read_like_the_old_tool() {
    let wd = Workdir::new()
        .job(
            "a/b",
            &sh("echo \"NAME=${NAME-unset} EMPTY=${EMPTY-unset} OTHER=${OTHER-unset} CITY=${CITY-unset}\""),
        )
        .input_spec("a/b", r#"{"NAME": {}, "EMPTY": {}, "CITY": {}}"#);
    let daemon = wd.start();

    for target in [
        "/api/jobs/get?job_id=a%2Fb",
        "/api/jobs/get?job_id=a%2fb",
        "/api/jobs/get?job_id=&job_id=a/b",
        "/api/jobs/get?job_id=a/b&job_id=missing",
        "/api/jobs/get?other=1&job_id=a/b",
    ] {
        let answer = daemon.get(target);
        assert_eq!(answer.status, 200, "{target}: {}", answer.text());
        assert_eq!(answer.value()["job_id"], "a/b", "{target}");
    }
    daemon
        .get("/api/jobs/get?job_id=missing&job_id=a/b")
        .error_message(404);

    let answer = daemon.post(
        "/api/jobs/run?job_id=a%2Fb&input_value_NAME=first&input_value_NAME=second\
         &input_value_EMPTY=&input_value_OTHER=x&input_value_CITY=Z%C3%BCrich+Nord",
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    let accepted: RunAccepted = answer.json();
    let execution = daemon.wait_status("a/b", &accepted.execution_id, ExecutionStatus::Success);
    let inputs: Vec<_> = execution
        .input_values
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(inputs, [("NAME", "first"), ("CITY", "Zürich Nord")]);
    assert_eq!(
        String::from_utf8(daemon.log_of("a/b", &accepted.execution_id)).unwrap(),
        "NAME=first EMPTY=unset OTHER=unset CITY=Zürich Nord\n"
    );
}

#[test]
fn request_bodies_are_read_and_ignored_on_kept_alive_connections() {
    let wd = Workdir::new().job("hello", &sh("echo hi"));
    let daemon = wd.start();
    let mut connection = daemon.connect();

    // A body that looks like another request must not be taken for one.
    let sneaky = b"GET /api/jobs/run?job_id=hello HTTP/1.1\r\nHost: x\r\n\r\n";
    connection
        .send("POST", "/api/jobs/run?job_id=hello", &[], sneaky)
        .unwrap();
    let first = connection.response(false).unwrap();
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.json::<RunAccepted>().execution_id, "1");

    let second = connection
        .request("GET", "/api/jobs/get?job_id=hello")
        .unwrap();
    assert_eq!(second.status, 200);
    assert_eq!(second.value()["job_id"], "hello");

    // A chunked body too.
    connection
        .send_raw(
            b"POST /api/jobs/run?job_id=hello HTTP/1.1\r\nHost: x\r\n\
              Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        )
        .unwrap();
    let third = connection.response(false).unwrap();
    assert_eq!(third.status, 200, "{}", third.text());
    assert_eq!(third.json::<RunAccepted>().execution_id, "2");

    daemon.wait_ended("hello", "1");
    daemon.wait_ended("hello", "2");
    // A body on an error answer is skipped as well.
    connection
        .send(
            "POST",
            "/api/jobs/executions/cancel?job_id=hello&execution_id=1",
            &[("Content-Type", "application/json")],
            br#"{"job_id": "hello", "execution_id": "2"}"#,
        )
        .unwrap();
    connection.response(false).unwrap().error_message(409);
    let next = connection.request("GET", "/api/jobs/get_list").unwrap();
    assert_eq!(next.status, 200);

    // However long: read and dropped, not refused.
    let long = vec![b'x'; 5 << 20];
    connection
        .send("POST", "/api/jobs/run?job_id=hello", &[], &long)
        .unwrap();
    let answer = connection.response(false).unwrap();
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.assert_json();
    assert_eq!(answer.json::<RunAccepted>().execution_id, "3");
    let last = connection.request("GET", "/api/jobs/get_list").unwrap();
    assert_eq!(last.status, 200);
    daemon.wait_ended("hello", "3");
    assert_eq!(daemon.executions("hello").len(), 3);
}

#[test]
fn garbage_on_the_socket_does_not_hurt_the_daemon() {
    let wd = Workdir::new().job("hello", &sh("true"));
    let daemon = wd.start();
    for garbage in [
        &b"\x00\x01\x02 not http at all\r\n\r\n"[..],
        b"GET /api/jobs/get_list HTTP/9.9\r\n\r\n",
        b"GET\r\n\r\n",
        b"GET /api/jobs/get_list HTTP/1.1\r\nContent-Length: nope\r\n\r\n",
    ] {
        let mut connection = daemon.connect();
        connection.send_raw(garbage).unwrap();
        // Either an error answer or a closed connection; never a hang or a crash.
        match connection.response(false) {
            Ok(answer) => assert!(
                (400..500).contains(&answer.status),
                "{garbage:?}: {answer:?}"
            ),
            Err(e) => assert_ne!(e.kind(), std::io::ErrorKind::TimedOut, "{garbage:?}"),
        }
    }
    // Half a request, then the client goes away.
    let mut connection = Connection::open(&daemon.socket()).unwrap();
    connection.send_raw(b"GET /api/jobs/get_list HTT").unwrap();
    drop(connection);

    assert_eq!(daemon.jobs().len(), 1);
}

#[test]
fn state_that_cannot_be_written_is_a_500_and_stays_local() {
    let wd = Workdir::new()
        .job("hello", &sh("true"))
        .job("fine", &sh("true"))
        .file("state/jobs/hello", "a file where a folder should be");
    let daemon = wd.start();

    let message = daemon.post("/api/jobs/run?job_id=hello").error_message(500);
    assert!(message.contains("hello"), "{message}");
    assert!(daemon.log().contains("internal error"), "{}", daemon.log());
    assert_eq!(
        wd.read("state/jobs/hello"),
        "a file where a folder should be"
    );
    assert!(daemon.executions("hello").is_empty());

    let id = daemon.run("fine", &[]);
    daemon.wait_status("fine", &id, ExecutionStatus::Success);
}
