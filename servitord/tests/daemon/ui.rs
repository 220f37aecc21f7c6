//! The web UI's static files, served from `--ui-root` and from nowhere else.

use crate::sh;
use crate::support::{Daemon, Workdir};

const INDEX: &str = "<!doctype html><title>Servitor</title>";

fn with_ui() -> (Workdir, Daemon) {
    let wd = Workdir::new()
        .job("hello", &sh("true"))
        .file("ui/index.html", INDEX)
        .file("ui/app.js", "console.log('hi');")
        .file("ui/assets/style.css", "body {}")
        .file("ui/data.xyz", "\u{1}binary")
        .file("ui/.hidden.html", "hidden")
        .file("secret.txt", "not for the browser")
        .symlink("ui/leak.txt", "../secret.txt")
        .symlink("ui/alias.js", "app.js");
    let daemon = wd.daemon().arg("--ui-root").arg(wd.join("ui")).start();
    (wd, daemon)
}

#[test]
fn files_are_served_with_a_content_type_from_their_extension() {
    let (_wd, daemon) = with_ui();

    let index = daemon.get("/");
    assert_eq!(index.status, 200);
    assert_eq!(
        index.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(index.text(), INDEX);
    assert_eq!(daemon.get("/index.html").body, index.body);

    for (path, content_type, body) in [
        (
            "/app.js",
            "text/javascript; charset=utf-8",
            "console.log('hi');",
        ),
        (
            "/alias.js",
            "text/javascript; charset=utf-8",
            "console.log('hi');",
        ),
        ("/assets/style.css", "text/css; charset=utf-8", "body {}"),
        ("/data.xyz", "application/octet-stream", "\u{1}binary"),
    ] {
        let answer = daemon.get(path);
        assert_eq!(answer.status, 200, "{path}");
        assert_eq!(answer.header("content-type"), Some(content_type), "{path}");
        assert_eq!(answer.text(), body, "{path}");
    }
    // The API is not shadowed by the UI.
    assert_eq!(daemon.jobs().len(), 1);
    daemon.post("/index.html").error_message(405);
}

#[test]
fn nothing_outside_the_ui_root_nor_a_folder_is_served() {
    let (_wd, daemon) = with_ui();
    for path in [
        "/assets",
        "/assets/",
        "/missing.html",
        "/../secret.txt",
        "/assets/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/assets/%2e%2e/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        "/%2e%2e%2fsecret.txt",
        "/leak.txt",
        "/.hidden.html",
        "//etc/passwd",
        "/%2Fetc%2Fpasswd",
    ] {
        let answer = daemon.get(path);
        assert_eq!(answer.status, 404, "{path}: {}", answer.text());
        assert!(
            !answer.text().contains("not for the browser"),
            "{path} leaked"
        );
    }
}

#[test]
fn an_unchanged_file_answers_304() {
    let (_wd, daemon) = with_ui();
    let first = daemon.get("/app.js");
    let etag = first.header("etag").expect("an ETag").to_owned();

    let mut connection = daemon.connect();
    connection
        .send("GET", "/app.js", &[("If-None-Match", &etag)], b"")
        .unwrap();
    let unchanged = connection.response(false).unwrap();
    assert_eq!(unchanged.status, 304);
    assert!(unchanged.body.is_empty());
    assert_eq!(unchanged.header("etag"), Some(etag.as_str()));

    connection
        .send("GET", "/app.js", &[("If-None-Match", "\"other\"")], b"")
        .unwrap();
    let changed = connection.response(false).unwrap();
    assert_eq!(changed.status, 200);
    assert_eq!(changed.text(), "console.log('hi');");
}

#[test]
fn without_a_ui_root_nothing_is_served() {
    let wd = Workdir::new()
        .job("hello", &sh("true"))
        .file("ui/index.html", INDEX);
    let daemon = wd.start();
    for path in ["/", "/index.html", "/ui/index.html"] {
        let message = daemon.get(path).error_message(404);
        assert!(message.contains("not found"), "{path}: {message}");
    }
}
