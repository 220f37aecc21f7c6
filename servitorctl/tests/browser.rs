//! The web UI (`ui/`) end to end, in headless Chromium: a real servitord serves it,
//! the real `servitorctl ui` bridge is what the browser talks to, and the tests do
//! what a person does (type, click, reload) and wait, with deadlines, for what a
//! person would see. Screenshots land in `target/ui-screenshots/`.
//!
//! Needs Chromium and chromedriver (`apt-get install -y chromium chromium-driver`);
//! without them these tests fail, unless `SERVITOR_SKIP_BROWSER_TESTS=1` skips them.

use servitor_test_support as support;

#[path = "browser/harness.rs"]
mod harness;

use std::time::Duration;

use harness::{Browser, Servitor};
use serde_json::json;
use servitor_shared::ExecutionStatus;
use support::Workdir;

// Expressions for the page's state, to use in scripts.

/// The job ids shown in the tree (visible ones only), in order.
const TREE_JOBS: &str = "[...document.querySelectorAll('#tree a.job')]
    .filter((a) => a.offsetParent !== null).map((a) => a.dataset.jobId)";

/// The status on the tree's dot of the job `arguments[0]`.
const TREE_STATUS: &str = "[...document.querySelectorAll('#tree a.job')]
    .find((a) => a.dataset.jobId === arguments[0])?.querySelector('.dot').dataset.status";

/// The executions table as [[id, status], ...].
const EXECUTION_ROWS: &str = "[...document.querySelectorAll('tr[data-execution-id]')]
    .map((tr) => [tr.dataset.executionId, tr.dataset.status])";

/// The log's lines, as text.
const LOG_LINES: &str =
    "[...document.querySelectorAll('.log-lines .ln, .log .ln.open:not([hidden])')]
    .map((l) => l.textContent)";

const CONNECTED: &str = "return document.getElementById('conn').dataset.state === 'connected';";

fn browser_test_workdir() -> Workdir {
    Workdir::new()
        .job("hello", "#!/bin/sh\necho \"Hello from $SERVITOR_JOB\"\n")
        .job(
            "demo/fail",
            "#!/bin/sh\necho 'checking the disk...'\necho 'error: the disk is on fire' >&2\nexit 3\n",
        )
        .job(
            "demo/greet",
            "#!/bin/sh\necho \"$GREETING, $NAME!\"\nprintf '%s|%s|%s|%s\\n' \"$NAME\" \"$GREETING\" \"$TOKEN\" \"$NOTE\" > \"$SERVITOR_ROOT/greeted.txt\"\n",
        )
        .input_spec(
            "demo/greet",
            r#"{
  "NAME": {"description": "Who to greet", "required": true, "default": "Ada"},
  "GREETING": {"choices": ["Hello", "Hi", "Good morning"], "default": "Hello"},
  "TOKEN": {"secret": true, "description": "Never shown"},
  "NOTE": {}
}"#,
        )
        .file(
            "config/jobs/demo/greet.settings.json",
            r#"{"timeout": "5m", "concurrency": 1, "retention": {"keep_last": 50}}"#,
        )
        .job("demo/broken", "#!/bin/sh\necho never\n")
        .input_spec("demo/broken", "{\"NAME\": ")
        .job("tools/backup/database", "#!/bin/sh\necho 'backed up'\n")
        .job("build/release", "#!/bin/sh\necho 'released'\n")
}

/// A colourful run that goes on until it is cancelled.
const DEPLOY: &str = r#"#!/bin/sh
printf '\033[1;34m==>\033[0m \033[1mDeploying\033[0m servitor to \033[4mstaging\033[24m\n'
printf '   \033[1;32mFetching\033[0m origin/main \033[33m(3f2a9c1)\033[0m\n'
for crate in servitor-shared servitord servitorctl; do
  printf '  \033[1;32mCompiling\033[0m %s v0.1.0\n' "$crate"
done
printf '   \033[1;32mFinished\033[0m release profile in 41.3s \033[2m(ok)\033[22m\n'
printf '   \033[38;5;208m(3 warnings)\033[0m \033[38;2;120;200;255mUploading\033[0m artefacts\033]0;deploy\007\033[2K\n'
printf '\033[1;33mwarning\033[0m: disk usage at \033[1m81%%\033[0m on db-1\n'
printf '\033[1;31merror\033[0m: host \033[1mdb-2\033[22m is not answering, retrying\n'
i=0
while true; do
  i=$((i + 1))
  printf '\033[2m[%04d]\033[22m waiting for \033[36mdb-2\033[39m: tick %d\n' "$i" "$i"
  sleep 0.05
done
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tree_lists_filters_and_deep_links_survive_a_reload() {
    let Some(tools) = harness::tools("the_tree_lists_filters_and_deep_links_survive_a_reload")
    else {
        return;
    };
    // build/release has an execution whose files are damaged.
    let servitor = Servitor::start(
        browser_test_workdir()
            .file(
                "state/jobs/build/release/executions/last_execution.txt",
                "1",
            )
            .file(
                "state/jobs/build/release/executions/1/status_history.tsv",
                "",
            ),
    );
    let failed = servitor.daemon.run("demo/fail", &[]);
    servitor.daemon.wait_ended("demo/fail", &failed);
    let browser = Browser::start(&tools, "tree").await;
    browser.goto(&servitor.url("")).await;

    // Every job, in folders; the last status of each at a glance.
    let jobs = browser
        .wait(
            "the tree to list the jobs",
            &format!("const ids = {TREE_JOBS}; return ids.length === 6 && ids;"),
        )
        .await;
    assert_eq!(
        jobs,
        json!([
            "build/release",
            "demo/broken",
            "demo/fail",
            "demo/greet",
            "tools/backup/database",
            "hello"
        ]),
        "folders first, then jobs, by name"
    );
    browser
        .wait_with(
            "demo/fail to show its failure",
            &format!("return {TREE_STATUS} === 'failure';"),
            vec![json!("demo/fail")],
        )
        .await;
    browser
        .wait_with(
            "hello to show it never ran",
            &format!("return {TREE_STATUS} === 'none';"),
            vec![json!("hello")],
        )
        .await;

    browser
        .screenshots(
            "overview",
            "return document.querySelectorAll('.overview tbody tr').length === 6 && !document.querySelector('.dot.s-loading');",
        )
        .await;

    // A run started elsewhere shows up live.
    browser.wait("the live connection", CONNECTED).await;
    let hello = servitor.daemon.run("hello", &[]);
    browser
        .wait_with(
            "hello's new run to show as success in the tree",
            &format!("return {TREE_STATUS} === 'success';"),
            vec![json!("hello")],
        )
        .await;
    assert_eq!(hello, "1");

    // Typing filters; Enter opens the first match.
    browser.type_into("#filter", "gre").await;
    browser
        .wait(
            "the filter to leave demo/greet alone",
            &format!(
                "const ids = {TREE_JOBS}; return ids.length === 1 && ids[0] === 'demo/greet';"
            ),
        )
        .await;
    browser
        .client
        .find(fantoccini::Locator::Css("#filter"))
        .await
        .unwrap()
        .send_keys("\u{E007}")
        .await
        .unwrap();
    browser
        .wait(
            "Enter to open demo/greet",
            "return location.hash === '#/job/demo/greet' && document.querySelector('main h1')?.textContent === 'greet';",
        )
        .await;

    // A deep link to an execution, and the same page after a reload.
    let page = servitor.url("#/job/demo/fail/execution/1");
    browser.goto(&page).await;
    let shows_the_failure = r#"const main = document.getElementById('main');
        return main.dataset.status === 'failure'
          && main.querySelector('h1').textContent.includes('#1')
          && main.querySelector('.exit-code')?.textContent === '3'
          && document.title.startsWith('demo/fail #1');"#;
    browser
        .wait("the execution page of demo/fail #1", shows_the_failure)
        .await;
    browser
        .wait(
            "the log of demo/fail #1",
            &format!(
                "const lines = {LOG_LINES}; return lines.includes('error: the disk is on fire') && lines;"
            ),
        )
        .await;
    browser.reload().await;
    browser
        .wait("the same page after a reload", shows_the_failure)
        .await;
    assert_eq!(
        browser.js("return location.hash;").await,
        json!("#/job/demo/fail/execution/1")
    );

    // A damaged execution says so.
    browser
        .goto(&servitor.url("#/job/build/release/execution/1"))
        .await;
    let damage = browser
        .wait(
            "the damaged execution's error",
            "return document.getElementById('main').dataset.status === 'unknown'
               && document.querySelector('.details .error-box')?.textContent;",
        )
        .await;
    assert!(
        damage.as_str().unwrap().starts_with("Damaged execution: "),
        "{damage}"
    );

    // The keyboard: "/" goes to the filter, arrows into the tree.
    let body = browser
        .client
        .find(fantoccini::Locator::Css("body"))
        .await
        .unwrap();
    body.send_keys("/").await.unwrap();
    browser
        .wait(
            "\"/\" to focus the filter",
            "return document.activeElement?.id === 'filter';",
        )
        .await;
    browser
        .client
        .active_element()
        .await
        .unwrap()
        .send_keys("\u{E015}")
        .await
        .unwrap();
    browser
        .wait(
            "the arrow key to reach the tree",
            "return document.activeElement?.closest('#tree') !== null && document.activeElement !== document.body;",
        )
        .await;

    // A second tab shares the first one's event stream (a browser allows only six
    // connections to a host), and takes the stream over when the first one closes.
    let is_live = |leader: bool| {
        format!(
            "const c = document.getElementById('conn').dataset; return c.state === 'connected' && c.leader === '{leader}';"
        )
    };
    let newest_is = |id: &str| {
        format!(
            "const rows = {EXECUTION_ROWS}; return rows[0]?.[0] === '{id}' && rows[0][1] === 'success';"
        )
    };
    browser.goto(&servitor.url("#/job/hello")).await;
    browser.wait("the first tab to lead", &is_live(true)).await;
    let first_tab = browser.client.window().await.unwrap();
    let second_tab = browser.client.new_window(true).await.unwrap().handle;
    browser
        .client
        .switch_to_window(second_tab.clone())
        .await
        .unwrap();
    browser.goto(&servitor.url("#/job/hello")).await;
    browser
        .wait("the second tab to follow", &is_live(false))
        .await;
    let id = servitor.daemon.run("hello", &[]);
    browser
        .wait("the second tab to see the run live", &newest_is(&id))
        .await;
    browser.client.switch_to_window(first_tab).await.unwrap();
    browser.client.close_window().await.unwrap();
    browser.client.switch_to_window(second_tab).await.unwrap();
    browser
        .wait("the second tab to take over", &is_live(true))
        .await;
    let id = servitor.daemon.run("hello", &[]);
    browser
        .wait("the second tab to see the next run live", &newest_is(&id))
        .await;

    // The ANSI parser, on the cases a log meets.
    let failures = browser
        .client
        .execute_async(include_str!("browser/ansi_cases.js"), Vec::new())
        .await
        .expect("the ANSI cases run");
    assert_eq!(failures, json!([]), "ANSI rendering");

    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_started_from_the_page_gets_its_inputs_and_succeeds_live() {
    let Some(tools) =
        harness::tools("a_run_started_from_the_page_gets_its_inputs_and_succeeds_live")
    else {
        return;
    };
    let servitor = Servitor::start(browser_test_workdir());
    // Some history, so the page has something to show.
    for job in ["demo/greet", "demo/fail", "hello"] {
        let id = servitor.daemon.run(job, &[("NAME", "Linus")]);
        servitor.daemon.wait_ended(job, &id);
    }
    let browser = Browser::start(&tools, "job").await;
    browser.goto(&servitor.url("#/job/demo/greet")).await;
    browser.wait("the live connection", CONNECTED).await;

    // The form follows the input spec.
    let form = browser
        .wait(
            "the run form",
            r#"const f = document.querySelector('form.run-form');
            if (!f) return null;
            const name = f.elements.input_NAME, greeting = f.elements.input_GREETING;
            return {
              name: [name.value, name.required, name.type],
              nameLabel: f.querySelector('label[for="input-NAME"]').textContent,
              nameHelp: document.getElementById(name.getAttribute('aria-describedby'))?.textContent,
              greeting: [greeting.tagName, greeting.value, [...greeting.options].map((o) => o.value)],
              token: f.elements.input_TOKEN.type,
              note: [f.elements.input_NOTE.type, f.elements.input_NOTE.value, f.elements.input_NOTE.required],
            };"#,
        )
        .await;
    assert_eq!(
        form,
        json!({
            "name": ["Ada", true, "text"],
            "nameLabel": "NAME *",
            "nameHelp": "Who to greet",
            "greeting": ["SELECT", "Hello", ["", "Hello", "Hi", "Good morning"]],
            "token": "password",
            "note": ["text", "", false],
        })
    );

    // The job's settings are shown on its page.
    let limits = browser
        .wait("the job's settings", "const p = document.querySelector('.limits'); return p && !p.hidden ? p.textContent : null;")
        .await;
    assert_eq!(
        limits,
        json!("Settings: timeout 5m · at most 1 at once · keeps the last 50")
    );

    browser.type_into("#input-NAME", "Grace Hopper").await;
    browser
        .client
        .find(fantoccini::Locator::Css("#input-GREETING"))
        .await
        .unwrap()
        .select_by_value("Hi")
        .await
        .unwrap();
    browser.type_into("#input-TOKEN", "s3cret & more").await;
    browser.type_into("#input-NOTE", "a=b&c").await;
    browser.click("form.run-form button[type=submit]").await;

    // The new run appears at the top and reaches success, without a reload.
    let rows = browser
        .wait(
            "run #2 to appear and succeed",
            &format!(
                "const rows = {EXECUTION_ROWS}; return rows.length === 2 && rows[0][1] === 'success' && rows;"
            ),
        )
        .await;
    assert_eq!(rows, json!([["2", "success"], ["1", "success"]]));
    assert_eq!(
        servitor.workdir.read("greeted.txt"),
        "Grace Hopper|Hi|s3cret & more|a=b&c\n"
    );
    let log = servitor.daemon.log_of("demo/greet", "2");
    assert_eq!(String::from_utf8_lossy(&log), "Hi, Grace Hopper!\n");
    // The tree followed too.
    browser
        .wait_with(
            "the tree to show demo/greet's success",
            &format!("return {TREE_STATUS} === 'success';"),
            vec![json!("demo/greet")],
        )
        .await;
    browser
        .wait(
            "the toast of the new run",
            "return [...document.querySelectorAll('.toast')].some((t) => t.textContent.includes('demo/greet #2'));",
        )
        .await;

    browser
        .screenshots(
            "job-page",
            "return document.querySelectorAll('tr[data-execution-id]').length === 2 && !document.querySelector('.toast');",
        )
        .await;

    // A job whose input spec is broken says so, and the daemon's refusal is shown.
    browser.goto(&servitor.url("#/job/demo/broken")).await;
    browser
        .wait(
            "the broken spec's error",
            "return document.querySelector('.run-form .error-box')?.textContent.includes('input spec');",
        )
        .await;
    browser.click("form.run-form button[type=submit]").await;
    let message = browser
        .wait(
            "the daemon's refusal",
            "const m = document.querySelector('.form-error'); return m && !m.hidden && m.textContent;",
        )
        .await;
    assert!(
        message
            .as_str()
            .unwrap()
            .starts_with("Could not start the run: "),
        "{message}"
    );
    assert!(
        !servitor.workdir.join("state/jobs/demo/broken").exists(),
        "a refused run leaves nothing on disk"
    );

    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_log_streams_in_colour_follows_the_end_and_can_be_cancelled() {
    let Some(tools) =
        harness::tools("a_running_log_streams_in_colour_follows_the_end_and_can_be_cancelled")
    else {
        return;
    };
    let servitor = Servitor::start(browser_test_workdir().job("deploy/staging", DEPLOY));
    let browser = Browser::start(&tools, "execution").await;
    browser.goto(&servitor.url("#/job/deploy/staging")).await;
    browser.wait("the live connection", CONNECTED).await;
    browser.click("form.run-form button[type=submit]").await;
    browser.click(".toast a").await;
    browser
        .wait(
            "the execution page of the new run",
            "return location.hash === '#/job/deploy/staging/execution/1' && document.getElementById('main').dataset.status === 'running';",
        )
        .await;

    // The log streams in while the run goes on.
    let ticks = format!("{LOG_LINES}.filter((l) => / tick \\d+$/.test(l)).length");
    let tick_count = format!("return {ticks};");
    browser
        .wait("a few ticks", &format!("return {ticks} >= 5;"))
        .await;
    let first = browser.js(&tick_count).await.as_u64().unwrap();
    browser
        .wait(
            "more ticks, live",
            &format!("return {ticks} >= {};", first + 10),
        )
        .await;

    // Colours are styled spans, other escapes are gone.
    let styles = browser
        .js(r#"const span = (text) => [...document.querySelectorAll('.log span')].find((s) => s.textContent === text);
        const style = (text) => { const s = span(text); if (!s) return null; const c = getComputedStyle(s);
          return [s.className, c.color, c.fontWeight, c.textDecorationLine, c.opacity]; };
        return {
          error: style('error'), warnings: style('(3 warnings)'), uploading: style('Uploading'),
          staging: style('staging'), ok: style('(ok)'),
          text: document.querySelector('.log-scroll').textContent,
        };"#)
        .await;
    assert_eq!(
        styles["error"],
        json!(["f1 sb", "rgb(240, 82, 79)", "700", "none", "1"])
    );
    assert_eq!(styles["warnings"][1], json!("rgb(255, 135, 0)"));
    assert_eq!(styles["uploading"][1], json!("rgb(120, 200, 255)"));
    assert_eq!(styles["staging"][3], json!("underline"));
    assert_eq!(styles["ok"][0], json!("sd"));
    let text = styles["text"].as_str().unwrap();
    assert!(
        text.contains("   (3 warnings) Uploading artefacts"),
        "{text}"
    );
    assert!(
        !text.contains('\u{1b}') && !text.contains("[1;31m") && !text.contains("deploy\u{7}"),
        "escape codes leak into the page: {text:?}"
    );

    // The duration ticks while it runs.
    let duration = browser
        .js("return document.querySelector('.duration dd').textContent;")
        .await;
    browser
        .wait_with(
            "the duration to tick",
            "return document.querySelector('.duration dd').textContent !== arguments[0];",
            vec![duration],
        )
        .await;

    // Following the end: the view stays at the bottom as lines arrive...
    let at_bottom = "const s = document.querySelector('.log-scroll'); return s.scrollHeight > s.clientHeight && s.scrollHeight - s.scrollTop - s.clientHeight < 30;";
    browser
        .wait("the log to overflow and stay at its end", at_bottom)
        .await;
    let grown = |n: u64| format!("return {ticks} > {n};");
    let n = browser.js(&tick_count).await.as_u64().unwrap();
    browser.wait("more ticks", &grown(n + 5)).await;
    browser.wait("the view to follow", at_bottom).await;
    // ...stops when the reader scrolls up...
    browser
        .js("document.querySelector('.log-scroll').scrollTop = 0;")
        .await;
    browser
        .wait(
            "the Follow button",
            "return !document.querySelector('.jump').hidden;",
        )
        .await;
    let n = browser.js(&tick_count).await.as_u64().unwrap();
    browser.wait("more ticks", &grown(n + 10)).await;
    assert_eq!(
        browser
            .js("return document.querySelector('.log-scroll').scrollTop;")
            .await,
        json!(0),
        "the view must stay where the reader put it"
    );
    browser.screenshot("log-scrolled-up").await;
    // ...and resumes at the bottom.
    browser.click(".jump").await;
    browser.wait("the view back at the end", at_bottom).await;
    let n = browser.js(&tick_count).await.as_u64().unwrap();
    browser.wait("more ticks", &grown(n + 5)).await;
    browser.wait("the view to follow again", at_bottom).await;

    browser
        .screenshots(
            "execution-page",
            "const s = document.querySelector('.log-scroll'); return document.getElementById('conn').dataset.state === 'connected' && s.scrollHeight - s.scrollTop - s.clientHeight < 30 && !document.querySelector('.toast');",
        )
        .await;

    // Cancel.
    browser.click(".actions .btn.danger").await;
    browser
        .wait(
            "the run to end as cancelled",
            "const main = document.getElementById('main');
             return main.dataset.status === 'cancelled' && document.querySelector('.log').dataset.state === 'ended'
               && !document.querySelector('.actions .btn.danger');",
        )
        .await;
    let execution = servitor.daemon.execution("deploy/staging", "1");
    assert_eq!(execution.status, ExecutionStatus::Cancelled);
    // The duration stopped.
    let frozen = browser
        .js("return document.querySelector('.duration dd .ticking') === null;")
        .await;
    assert_eq!(frozen, json!(true));

    // The deep link shows the same after a reload.
    browser.reload().await;
    browser
        .wait(
            "the cancelled run after a reload",
            &format!(
                "const lines = {LOG_LINES}; return document.getElementById('main').dataset.status === 'cancelled' && lines.some((l) => l.includes('Deploying servitor to staging'));"
            ),
        )
        .await;

    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_log_shows_its_last_lines_and_earlier_ones_on_demand() {
    let Some(tools) = harness::tools("a_large_log_shows_its_last_lines_and_earlier_ones_on_demand")
    else {
        return;
    };
    const LINES: u64 = 520_000;
    // ~100 bytes a line, multi-byte characters included, so chunks split some of them.
    let script = format!(
        "#!/bin/sh\nawk 'BEGIN {{ for (i = 1; i <= {LINES}; i++) printf \"line %d \\033[32mgrün ✓ 日本\\033[0m padding-padding-padding-padding-padding-padding-padding-pad\\n\", i }}'\n"
    );
    let servitor = Servitor::start(Workdir::new().job("big", &script));
    let id = servitor.daemon.run("big", &[]);
    servitor.daemon.wait_ended("big", &id);
    let browser = Browser::start(&tools, "large-log").await;
    browser.goto(&servitor.url("")).await;
    browser.wait("the live connection", CONNECTED).await;
    browser.js("location.hash = '#/job/big/execution/1';").await;
    let state = browser
        .wait_for(
            "the whole log",
            Duration::from_secs(40),
            "const log = document.querySelector('.log');
             return log && log.dataset.state === 'ended' && log.dataset.lines === arguments[0]
               && document.querySelectorAll('.log-lines .ln').length === 5000 && log.dataset.lines;",
            vec![json!(LINES.to_string())],
        )
        .await;
    assert_eq!(state, json!(LINES.to_string()));
    let view = browser
        .js(
            r#"const lines = document.querySelectorAll('.log-lines .ln');
        return {
          count: lines.length,
          last: lines[lines.length - 1].textContent,
          lastNumber: lines[lines.length - 1].dataset.n,
          replacement: document.querySelector('.log-scroll').textContent.includes('\uFFFD'),
          earlier: document.querySelector('.earlier').textContent,
        };"#,
        )
        .await;
    assert_eq!(
        view["count"],
        json!(5000),
        "only the last lines are in the page"
    );
    assert_eq!(view["lastNumber"], json!(LINES.to_string()));
    assert!(
        view["last"]
            .as_str()
            .unwrap()
            .starts_with(&format!("line {LINES} grün ✓ 日本 padding")),
        "{view}"
    );
    assert_eq!(
        view["replacement"],
        json!(false),
        "UTF-8 decoded across chunks"
    );
    browser.click(".earlier").await;
    browser
        .wait(
            "earlier lines",
            "return document.querySelectorAll('.log-lines .ln').length === 10000;",
        )
        .await;

    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_reconnects_after_servitord_restarts() {
    let Some(tools) = harness::tools("the_page_reconnects_after_servitord_restarts") else {
        return;
    };
    let mut servitor = Servitor::start(browser_test_workdir().job(
        "ticker",
        "#!/bin/sh\ni=0\nwhile [ \"$i\" -lt 400 ]; do\n  i=$((i + 1))\n  echo \"tick $i\"\n  sleep 0.05\ndone\n",
    ));
    let id = servitor.daemon.run("ticker", &[]);
    let browser = Browser::start(&tools, "restart").await;
    browser
        .goto(&servitor.url(&format!("#/job/ticker/execution/{id}")))
        .await;
    browser.wait("the live connection", CONNECTED).await;
    let ticks = |n: u32| format!("const lines = {LOG_LINES}; return lines.includes('tick {n}');");
    browser.wait("the log to stream", &ticks(5)).await;

    // servitord goes away (as in a crash: the run goes on without it).
    servitor.daemon.kill();
    browser
        .wait(
            "the page to show it is disconnected",
            "return document.getElementById('conn').dataset.state !== 'connected' && !document.getElementById('offline').hidden;",
        )
        .await;
    browser
        .wait(
            "the log to wait for a reconnection",
            "return document.querySelector('.log').dataset.state === 'retrying';",
        )
        .await;
    // Meanwhile a job is added: only a refresh can show it.
    std::fs::write(servitor.workdir.job_path("late"), "#!/bin/sh\necho late\n").unwrap();
    std::fs::set_permissions(
        servitor.workdir.job_path("late"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    browser.screenshot("disconnected").await;

    servitor.daemon.start_again();
    browser.wait("the page to reconnect", CONNECTED).await;
    browser
        .wait(
            "the banner to go",
            "return document.getElementById('offline').hidden;",
        )
        .await;
    browser
        .wait(
            "the tree to show the new job",
            &format!("return {TREE_JOBS}.includes('late');"),
        )
        .await;
    // The log goes on where it was, without repeating a line.
    browser.wait("the log to go on", &ticks(60)).await;
    let lines = browser.js(&format!("return {LOG_LINES};")).await;
    let lines: Vec<String> = serde_json::from_value(lines).unwrap();
    let expected: Vec<String> = (1..=lines.len()).map(|i| format!("tick {i}")).collect();
    assert_eq!(lines, expected, "every line once, in order");

    // Events flow again.
    let hello = servitor.daemon.run("hello", &[]);
    assert_eq!(hello, "1");
    browser
        .wait_with(
            "hello's run to show in the tree",
            &format!("return {TREE_STATUS} === 'success';"),
            vec![json!("hello")],
        )
        .await;
    browser.close().await;
}

/// Every job's status, read from the tree by scrolling it from top to bottom (only
/// the rows on screen are in the page): {job id: status}.
const TREE_STATUSES_BY_SCROLLING: &str = "const done = arguments[arguments.length - 1];
(async () => {
  const side = document.getElementById('sidebar');
  const frames = () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  const seen = {};
  side.scrollTop = 0;
  await frames();
  for (;;) {
    for (const a of document.querySelectorAll('#tree a.job')) seen[a.dataset.jobId] = a.querySelector('.dot').dataset.status;
    if (side.scrollTop + side.clientHeight >= side.scrollHeight - 1) break;
    side.scrollTop += Math.floor(side.clientHeight / 2);
    await frames();
  }
  side.scrollTop = 0;
  done(seen);
})();";

/// A function of a folder's path answering the counts on its row in the tree:
/// [running, failed] (null when the row is not shown).
const FOLDER_COUNTS: &str = "((path) => {
    const f = document.querySelector(`#tree .folder[data-path='${path}']`);
    if (!f) return null;
    const n = (cls) => Number(f.querySelector(`.pill.${cls}`)?.textContent ?? 0);
    return [n('s-running'), n('s-failure')];
})";

/// The overview's first row as [job id, status].
const FIRST_OVERVIEW_ROW: &str = "((tr) => tr && [tr.dataset.jobId, tr.dataset.status])(
    document.querySelector('.overview tbody tr'))";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_jobs_show_their_status_and_a_cli_run_updates_its_row_and_folder() {
    let Some(tools) = harness::tools(
        "hundreds_of_jobs_show_their_status_and_a_cli_run_updates_its_row_and_folder",
    ) else {
        return;
    };
    // 6 folders of 50 jobs, one in three failing; f3/gated succeeds the first time,
    // and the second time waits on a gate, then fails.
    let mut workdir = Workdir::new().gate("gate").job(
        "f3/gated",
        "#!/bin/sh\n[ -e \"$SERVITOR_ROOT/second\" ] || exit 0\nread _ < \"$SERVITOR_ROOT/gate\"\nexit 4\n",
    );
    let mut expected = serde_json::Map::new();
    for folder in 0..6 {
        for i in 0..50 {
            let id = format!("f{folder}/job-{i:03}");
            let fails = i % 3 == 0;
            workdir = workdir.job(
                &id,
                if fails {
                    "#!/bin/sh\nexit 1\n"
                } else {
                    "#!/bin/sh\nexit 0\n"
                },
            );
            expected.insert(id, json!(if fails { "failure" } else { "success" }));
        }
    }
    expected.insert("f3/gated".into(), json!("success"));
    let servitor = Servitor::start(workdir);
    let runs: Vec<(String, String)> = expected
        .keys()
        .map(|id| (id.clone(), servitor.daemon.run(id, &[])))
        .collect();
    for (id, execution) in &runs {
        servitor.daemon.wait_ended(id, execution);
    }

    let browser = Browser::start(&tools, "many-jobs").await;
    browser.goto(&servitor.url("")).await;
    browser.wait("the live connection", CONNECTED).await;

    // The overview: every job with its status, once all its rows are shown.
    browser
        .wait(
            "the overview to show its first rows",
            "return document.querySelectorAll('.overview tbody tr').length === 100;",
        )
        .await;
    browser.click("button.more").await;
    browser.click("button.more").await;
    browser.click("button.more").await;
    let overview = browser
        .wait(
            "the overview to show every job",
            "const rows = [...document.querySelectorAll('.overview tbody tr')];
             return rows.length === 301 && Object.fromEntries(rows.map((tr) => [tr.dataset.jobId, tr.dataset.status]));",
        )
        .await;
    assert_eq!(overview, json!(expected), "the overview's statuses");

    // The tree: every job with its status.
    let tree = browser
        .client
        .execute_async(TREE_STATUSES_BY_SCROLLING, Vec::new())
        .await
        .expect("reading the tree");
    assert_eq!(tree, json!(expected), "the tree's statuses");
    // The filter narrows the tree to f3/gated, in its folder with its counts.
    browser.type_into("#filter", "gated").await;
    let counts = browser
        .wait_with(
            "the filter to show f3 and its counts",
            &format!("return {FOLDER_COUNTS}(arguments[0]);"),
            vec![json!("f3")],
        )
        .await;
    assert_eq!(counts, json!([0, 17]), "f3's counts");

    // A run started from the CLI: its row and its folder follow it live.
    std::fs::write(servitor.workdir.join("second"), "").unwrap();
    let output = std::process::Command::new(support::binary("servitorctl"))
        .arg("--workdir")
        .arg(servitor.workdir.path())
        .args(["run", "f3/gated"])
        .env_remove("SERVITOR_SOCKET")
        .env_remove("SERVITOR_WORKDIR")
        .output()
        .expect("servitorctl run");
    assert!(output.status.success(), "servitorctl run: {output:?}");
    let first_row_is = |status: &str| {
        format!("return JSON.stringify({FIRST_OVERVIEW_ROW}) === '[\"f3/gated\",\"{status}\"]';")
    };
    browser
        .wait(
            "the run to move f3/gated to the top of the overview, running",
            &first_row_is("running"),
        )
        .await;
    let tree_shows = |status: &str, counts: &str| {
        format!(
            "return {TREE_STATUS} === '{status}' && JSON.stringify({FOLDER_COUNTS}(arguments[1])) === '{counts}';"
        )
    };
    browser
        .wait_with(
            "f3/gated to show running in the tree, and f3 to count it",
            &tree_shows("running", "[1,17]"),
            vec![json!("f3/gated"), json!("f3")],
        )
        .await;
    servitor.workdir.open_gate("gate");
    browser
        .wait_with(
            "f3/gated to show its failure in the tree, and f3 to count it",
            &tree_shows("failure", "[0,18]"),
            vec![json!("f3/gated"), json!("f3")],
        )
        .await;
    browser
        .wait(
            "the overview to show f3/gated's failure first",
            &first_row_is("failure"),
        )
        .await;
    browser.close().await;
}

/// The job page's schedule card (null while hidden): {rule, next ('time' when a next run
/// is shown, else the line's text), paused, button}.
const SCHEDULE_CARD: &str = "const card = document.querySelector('section.schedule');
    if (!card || card.hidden) return null;
    return {
      rule: card.querySelector('.schedule-rule').textContent,
      next: card.querySelector('.next-run time[data-until]') ? 'time' : card.querySelector('.next-run').textContent,
      paused: card.querySelector('.tag.paused') !== null,
      button: card.querySelector('.form-actions button')?.textContent,
    };";

/// The job ids in the overview's next runs, soonest first (none while it is hidden).
const NEXT_RUN_JOBS: &str = "((list) => list && !list.closest('section').hidden
    ? [...list.querySelectorAll('li')].map((li) => li.dataset.jobId) : [])(
    document.querySelector('.next-runs'))";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_job_shows_its_next_run_its_fired_and_retried_runs_and_pauses() {
    let Some(tools) =
        harness::tools("a_scheduled_job_shows_its_next_run_its_fired_and_retried_runs_and_pauses")
    else {
        return;
    };
    let servitor = Servitor::start(
        Workdir::new()
            .job("flaky", "#!/bin/sh\necho 'no luck'\nexit 1\n")
            .file(
                "config/jobs/flaky.settings.json",
                r#"{"schedule": "*/2 * * * * *", "timezone": "Europe/Madrid",
                    "retry": {"attempts": 1, "delay": "1s"}}"#,
            )
            .job("hourly", "#!/bin/sh\necho 'on the hour'\n")
            .file(
                "config/jobs/hourly.settings.json",
                r#"{"schedule": "0 * * * *", "timezone": "UTC"}"#,
            )
            .job("hello", "#!/bin/sh\necho hello\n"),
    );
    let job = |id: &str| -> serde_json::Value {
        servitor
            .daemon
            .get_json(&format!("/api/jobs/get?job_id={id}"))
    };
    let browser = Browser::start(&tools, "schedule").await;

    // The overview lists both scheduled jobs among the next runs, not the other one.
    browser.goto(&servitor.url("")).await;
    browser.wait("the live connection", CONNECTED).await;
    let next_runs = browser
        .wait(
            "the overview's next runs",
            "const items = [...document.querySelectorAll('.next-runs li')];
             const card = document.querySelector('.next-runs')?.closest('section');
             if (!card || card.hidden || items.length < 2) return null;
             return Object.fromEntries(items.map((li) => [li.dataset.jobId,
               li.querySelector('time[data-until]') !== null && li.textContent]));",
        )
        .await;
    assert_eq!(
        next_runs.as_object().map(|o| o.len()),
        Some(2),
        "{next_runs}"
    );
    assert!(
        next_runs["flaky"]
            .as_str()
            .is_some_and(|t| t.contains("Every 2 seconds")),
        "{next_runs}"
    );
    assert!(
        next_runs["hourly"]
            .as_str()
            .is_some_and(|t| t.contains("At minute 0 past every hour")),
        "{next_runs}"
    );

    // The job's page: the schedule in words, its zone, a next run.
    browser.goto(&servitor.url("#/job/flaky")).await;
    let card = browser
        .wait(
            "the schedule card with a next run",
            &format!("const card = (() => {{ {SCHEDULE_CARD} }})(); return card?.next === 'time' && card;"),
        )
        .await;
    assert_eq!(
        card,
        json!({"rule": "Every 2 seconds · Europe/Madrid", "next": "time", "paused": false, "button": "Pause"})
    );

    // A fired run fails and is retried once: the rows say which is which.
    let marks = browser
        .wait(
            "a scheduled run and its retry in the executions",
            "const rows = [...document.querySelectorAll('tr[data-execution-id]')];
             const mark = (tr) => tr.querySelector('.trigger');
             const retry = rows.find((tr) => mark(tr)?.dataset.trigger === 'retry');
             if (!retry) return null;
             const of = mark(retry).querySelector('a')?.textContent;
             const fired = rows.find((tr) => '#' + tr.dataset.executionId === of);
             if (!fired || mark(fired)?.dataset.trigger !== 'schedule' || fired.dataset.status !== 'failure') return null;
             return {retry: retry.dataset.executionId, fired: fired.dataset.executionId,
               retryMark: mark(retry).textContent, retryTitle: mark(retry).title,
               firedMark: mark(fired).textContent};",
        )
        .await;
    let fired = marks["fired"].as_str().unwrap().to_owned();
    let retry = marks["retry"].as_str().unwrap().to_owned();
    assert_eq!(marks["retryMark"], json!(format!("retry of #{fired}")));
    assert_eq!(marks["retryTitle"], json!("attempt 1"));
    assert_eq!(marks["firedMark"], json!("schedule"));
    let retried: serde_json::Value = servitor.daemon.get_json(&format!(
        "/api/jobs/executions/get?job_id=flaky&execution_id={retry}"
    ));
    assert_eq!(retried["trigger"], json!("retry"), "{retried}");
    assert_eq!(retried["retry_of"], json!(fired), "{retried}");
    assert_eq!(retried["attempt"], json!(1), "{retried}");

    // The retry's own page says what started it.
    browser
        .goto(&servitor.url(&format!("#/job/flaky/execution/{retry}")))
        .await;
    let started_by = browser
        .wait(
            "the retry's page to say what started it",
            "const dd = [...document.querySelectorAll('.facts dt')]
               .find((dt) => dt.textContent === 'Started by')?.nextElementSibling;
             return dd && dd.textContent;",
        )
        .await;
    assert_eq!(started_by, json!(format!("retry of #{fired} · attempt 1")));
    browser.screenshot("retry").await;

    // Pause: the page shows it, and servitord has no next run for the job.
    browser.goto(&servitor.url("#/job/flaky")).await;
    browser
        .wait(
            "the schedule card's Pause button and next run",
            &format!("const card = (() => {{ {SCHEDULE_CARD} }})(); return card?.button === 'Pause' && card.next === 'time';"),
        )
        .await;
    // The next run moves at each fire, and the card with it; the Pause button that has
    // the focus (or the pointer) stays the same.
    let shown_next = browser
        .js(
            "const button = document.querySelector('section.schedule .form-actions button');
             button.focus();
             window.pauseButton = button;
             return document.querySelector('section.schedule .next-run time').dataset.until;",
        )
        .await;
    browser
        .wait_with(
            "the next run to move",
            "const time = document.querySelector('section.schedule .next-run time');
             return time && time.dataset.until !== arguments[0];",
            vec![shown_next],
        )
        .await;
    let kept = browser
        .js("return window.pauseButton.isConnected && document.activeElement === window.pauseButton;")
        .await;
    assert_eq!(kept, json!(true), "the Pause button was replaced");
    browser.click("section.schedule .form-actions button").await;
    let card = browser
        .wait(
            "the schedule card to show it is paused",
            &format!("const card = (() => {{ {SCHEDULE_CARD} }})(); return card?.paused && card;"),
        )
        .await;
    assert_eq!(
        card,
        json!({"rule": "Every 2 seconds · Europe/Madrid", "next": "Next run: none while paused", "paused": true, "button": "Resume"})
    );
    let paused = job("flaky");
    assert_eq!(paused["schedule"]["paused"], json!(true), "{paused}");
    assert_eq!(paused["next_run"], json!(null), "{paused}");
    browser.screenshot("paused").await;
    // The overview leaves a paused job out of the next runs.
    browser.goto(&servitor.url("")).await;
    browser
        .wait(
            "the overview's next runs without the paused job",
            &format!("return JSON.stringify({NEXT_RUN_JOBS}) === '[\"hourly\"]';"),
        )
        .await;

    // Resume brings the next run back, on the page and in the overview.
    browser.goto(&servitor.url("#/job/flaky")).await;
    browser
        .wait(
            "the schedule card's Resume button",
            &format!("return (() => {{ {SCHEDULE_CARD} }})()?.button === 'Resume';"),
        )
        .await;
    browser.click("section.schedule .form-actions button").await;
    let card = browser
        .wait(
            "the schedule card to show a next run again",
            &format!("const card = (() => {{ {SCHEDULE_CARD} }})(); return card && !card.paused && card.next === 'time' && card;"),
        )
        .await;
    assert_eq!(card["button"], json!("Pause"));
    let resumed = job("flaky");
    assert_eq!(resumed["schedule"]["paused"], json!(false), "{resumed}");
    assert!(resumed["next_run"].is_string(), "{resumed}");
    browser.goto(&servitor.url("")).await;
    browser
        .wait(
            "the overview's next runs to list the resumed job again",
            &format!("return {NEXT_RUN_JOBS}.includes('flaky');"),
        )
        .await;

    browser.close().await;
}
