//! What the web UI's browser tests stand on: a real `servitord` serving the
//! repository's `ui/`, the real `servitorctl ui` bridge in front of it, and headless
//! Chromium driven through chromedriver (WebDriver, with `fantoccini`).
//!
//! Everything started here is stopped on drop, also when a test fails: the bridge is
//! killed, chromedriver and the Chromium it started are killed as a process group.

use std::env;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use rustix::process::{Pid, Signal, kill_process_group};
use serde_json::{Value as Json, json};
use tempfile::TempDir;

use crate::support::{Daemon, TIMEOUT, Workdir, binary};

/// How often the page is checked again while waiting for it.
const RECHECK: Duration = Duration::from_millis(40);

/// Chromium's flags: quiet, offline, and a fresh profile (added per browser).
const CHROMIUM_FLAGS: [&str; 10] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
];

/// Where chromedriver and Chromium are.
pub struct Tools {
    chromedriver: PathBuf,
    chromium: PathBuf,
}

/// The browser tools, or `None` when they are missing and the tests may be skipped
/// (`SERVITOR_SKIP_BROWSER_TESTS=1`); without that, missing tools fail the test.
pub fn tools(test: &str) -> Option<Tools> {
    let chromedriver = find_program("chromedriver");
    // Debian's /usr/bin/chromium is a wrapper script; the binary itself is faster to start.
    let chromium = ["/usr/lib/chromium/chromium"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .or_else(|| {
            ["chromium", "chromium-browser", "google-chrome"]
                .into_iter()
                .find_map(find_program)
        });
    if let (Some(chromedriver), Some(chromium)) = (chromedriver, chromium) {
        return Some(Tools {
            chromedriver,
            chromium,
        });
    }
    if env::var_os("SERVITOR_SKIP_BROWSER_TESTS").is_some_and(|v| v == "1") {
        // Straight to stderr, past the test harness's capture, so the skip is seen.
        let _ = writeln!(
            std::io::stderr(),
            "skipped {test}: Chromium or chromedriver is not installed (SERVITOR_SKIP_BROWSER_TESTS=1)"
        );
        return None;
    }
    panic!(
        "the web UI's browser tests need Chromium and chromedriver, which are not installed: \
         on Debian or Ubuntu, `apt-get install -y chromium chromium-driver` \
         (or set SERVITOR_SKIP_BROWSER_TESTS=1 to skip these tests)"
    );
}

fn find_program(name: &str) -> Option<PathBuf> {
    env::split_paths(&env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

/// The repository's `ui/` folder.
pub fn ui_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui")
}

/// `target/ui-screenshots/`, beside the test binaries' `target/<profile>/`.
pub fn screenshot_dir() -> PathBuf {
    let exe = env::current_exe().expect("the test binary's path");
    let target = exe
        .ancestors()
        .nth(3)
        .expect("the test binary lies in target/<profile>/deps");
    target.join("ui-screenshots")
}

// ---- servitord and the bridge -------------------------------------------------------

/// servitord on a working directory, with the web UI, behind `servitorctl ui`.
pub struct Servitor {
    bridge: Bridge,
    pub daemon: Daemon,
    pub workdir: Workdir,
}

impl Servitor {
    pub fn start(workdir: Workdir) -> Self {
        Self::start_with_ui(workdir, &ui_root())
    }

    /// The same with another web UI than the repository's (an older one, to compare).
    pub fn start_with_ui(workdir: Workdir, root: &Path) -> Self {
        let daemon = workdir.daemon().arg("--ui-root").arg(root).start();
        let bridge = Bridge::start(workdir.path());
        Self {
            bridge,
            daemon,
            workdir,
        }
    }

    /// Restarts servitord on the same working directory, serving the UI at `root`.
    #[allow(dead_code)] // used by the benchmark only
    pub fn switch_ui(&mut self, root: &Path) {
        self.daemon.terminate();
        self.daemon = self.workdir.daemon().arg("--ui-root").arg(root).start();
    }

    /// `http://127.0.0.1:PORT/` + `path` (e.g. `#/job/demo/greet`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.bridge.url)
    }
}

/// `servitorctl ui --listen 127.0.0.1:0`, killed on drop.
struct Bridge {
    child: Child,
    url: String,
    _output: TempDir,
}

impl Bridge {
    fn start(workdir: &Path) -> Self {
        let output = TempDir::new().expect("a temporary directory");
        let stderr = output.path().join("stderr");
        let mut child = Command::new(binary("servitorctl"))
            .arg("--workdir")
            .arg(workdir)
            .args(["ui", "--listen", "127.0.0.1:0"])
            .env_remove("SERVITOR_SOCKET")
            .env_remove("SERVITOR_WORKDIR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(File::create(&stderr).expect("a stderr file"))
            .spawn()
            .expect("servitorctl ui starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (lines, line) = mpsc::channel();
        std::thread::spawn(move || {
            for text in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = lines.send(text);
            }
        });
        let first = line.recv_timeout(TIMEOUT).unwrap_or_else(|_| {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "servitorctl ui printed no URL within {TIMEOUT:?}; stderr: {}",
                fs::read_to_string(&stderr).unwrap_or_default()
            )
        });
        // "Servitor web UI: http://127.0.0.1:PORT/ (Ctrl-C to stop)"
        let url = first
            .split_whitespace()
            .find(|word| word.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in servitorctl ui's first line: {first:?}"))
            .to_owned();
        Self {
            child,
            url,
            _output: output,
        }
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---- the browser ----------------------------------------------------------------------

/// chromedriver, leading its own process group with the Chromium it starts.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start(tools: &Tools) -> Self {
        let mut child = Command::new(&tools.chromedriver)
            .args(["--port=0", "--log-level=WARNING"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", tools.chromedriver.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let (ports, port) = mpsc::channel();
        // Reads chromedriver's output to its end, so that it never blocks on a full pipe.
        std::thread::spawn(move || {
            for text in BufReader::new(stdout).lines().map_while(Result::ok) {
                // "ChromeDriver was started successfully on port 41217."
                if let Some(rest) = text.split("started successfully on port ").nth(1) {
                    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                    if let Ok(number) = digits.parse::<u16>() {
                        let _ = ports.send(number);
                    }
                }
            }
        });
        let mut driver = Self { child, port: 0 };
        driver.port = port
            .recv_timeout(TIMEOUT)
            .unwrap_or_else(|_| panic!("chromedriver did not say its port within {TIMEOUT:?}"));
        driver
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(group) = i32::try_from(self.child.id()).ok().and_then(Pid::from_raw) {
            let _ = kill_process_group(group, Signal::KILL);
        }
        let _ = self.child.wait();
    }
}

/// One headless Chromium with a fresh profile.
pub struct Browser {
    pub client: Client,
    /// Prefix of this test's screenshots.
    name: String,
    _driver: Driver,
    _profile: TempDir,
}

impl Browser {
    pub async fn start(tools: &Tools, name: &str) -> Self {
        let driver = Driver::start(tools);
        let profile = TempDir::new().expect("a temporary profile folder");
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|s| (*s).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        args.push("--window-size=1280,800".into());
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": tools.chromium,
                "args": args,
            },
        });
        let Json::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
            .unwrap_or_else(|e| panic!("cannot start Chromium through chromedriver: {e}"));
        let browser = Self {
            client,
            name: name.to_owned(),
            _driver: driver,
            _profile: profile,
        };
        browser.resize(1280, 800).await;
        browser
    }

    /// Ends the session (Chromium exits); chromedriver is stopped on drop.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }

    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("cannot open {url}: {e}"));
    }

    /// Reloads the page, as the reload button does.
    pub async fn reload(&self) {
        self.client.refresh().await.expect("reloading the page");
    }

    /// Runs `script` (a function body) with `args` as `arguments`; answers its value.
    pub async fn js_with(&self, script: &str, args: Vec<Json>) -> Json {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    pub async fn js(&self, script: &str) -> Json {
        self.js_with(script, Vec::new()).await
    }

    /// Waits until `script` answers something other than null or false, and answers it.
    /// On timeout: a screenshot `failed-<what>.png` and the page's text.
    pub async fn wait(&self, what: &str, script: &str) -> Json {
        self.wait_with(what, script, Vec::new()).await
    }

    pub async fn wait_with(&self, what: &str, script: &str, args: Vec<Json>) -> Json {
        self.wait_for(what, TIMEOUT, script, args).await
    }

    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        script: &str,
        args: Vec<Json>,
    ) -> Json {
        let deadline = Instant::now() + timeout;
        let mut last_error = None;
        loop {
            match self.client.execute(script, args.clone()).await {
                Ok(Json::Null | Json::Bool(false)) => {}
                Ok(value) => return value,
                // The page may be between two documents (a reload).
                Err(e) => last_error = Some(e.to_string()),
            }
            if Instant::now() >= deadline {
                self.screenshot(&format!("failed-{}", slug(what))).await;
                let text = self
                    .client
                    .execute(
                        "return document.body ? document.body.innerText : ''",
                        vec![],
                    )
                    .await
                    .map(|v| v.as_str().unwrap_or_default().chars().take(3000).collect())
                    .unwrap_or_else(|e| format!("(no page text: {e})"));
                panic!(
                    "timed out after {timeout:?} waiting for {what} (last script error: {last_error:?})\n\
                     --- the page's text ---\n{text}\n--- end ---"
                );
            }
            tokio::time::sleep(RECHECK).await;
        }
    }

    /// Clicks the first element matching `css` (waiting for it to exist).
    pub async fn click(&self, css: &str) {
        self.wait_with(
            &format!("{css} to be shown"),
            // In the middle of the viewport, not under the sticky header.
            "const el = document.querySelector(arguments[0]);
             if (!el || el.offsetParent === null) return false;
             el.scrollIntoView({ block: 'center', inline: 'nearest' });
             return true;",
            vec![json!(css)],
        )
        .await;
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("cannot click {css}: {e}"));
    }

    /// Types `text` into the element matching `css`, after clearing it.
    pub async fn type_into(&self, css: &str, text: &str) {
        let element = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"));
        element.clear().await.expect("clearing a field");
        element.send_keys(text).await.expect("typing");
    }

    /// Sets the viewport's size in CSS pixels (the window is a little larger).
    pub async fn resize(&self, width: u32, height: u32) {
        let mut window = (width, height);
        for _ in 0..3 {
            self.client
                .set_window_size(window.0, window.1)
                .await
                .expect("resizing the window");
            let inner = self.js("return [innerWidth, innerHeight];").await;
            let inner = (
                inner[0].as_u64().unwrap_or(0) as u32,
                inner[1].as_u64().unwrap_or(0) as u32,
            );
            if inner == (width, height) {
                return;
            }
            window = (
                (window.0 + width).saturating_sub(inner.0),
                (window.1 + height).saturating_sub(inner.1),
            );
        }
        panic!("cannot give the viewport the size {width}x{height}");
    }

    /// Emulates `prefers-color-scheme: dark` (or light).
    pub async fn color_scheme(&self, dark: bool) {
        let scheme = if dark { "dark" } else { "light" };
        self.client
            .issue_cmd(Cdp {
                cmd: "Emulation.setEmulatedMedia",
                params: json!({"features": [{"name": "prefers-color-scheme", "value": scheme}]}),
            })
            .await
            .expect("emulating a colour scheme");
        self.wait_with(
            "the colour scheme to apply",
            "return matchMedia('(prefers-color-scheme: dark)').matches === arguments[0];",
            vec![json!(dark)],
        )
        .await;
    }

    /// Sends a Chrome DevTools Protocol command; answers its result.
    #[allow(dead_code)] // used by the benchmark only
    pub async fn cdp(&self, cmd: &'static str, params: Json) -> Json {
        self.client
            .issue_cmd(Cdp { cmd, params })
            .await
            .unwrap_or_else(|e| panic!("the DevTools command {cmd} failed: {e}"))
    }

    /// Saves a screenshot as `target/ui-screenshots/<test>-<name>.png`; answers its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let dir = screenshot_dir();
        fs::create_dir_all(&dir).expect("the screenshot folder");
        let path = dir.join(format!("{}-{name}.png", self.name));
        match self.client.screenshot().await {
            Ok(png) => fs::write(&path, png).expect("writing a screenshot"),
            Err(e) => eprintln!("no screenshot {}: {e}", path.display()),
        }
        path
    }

    /// Desktop and phone screenshots, light and dark, of the current page.
    pub async fn screenshots(&self, name: &str, ready: &str) {
        for (size, (width, height)) in [("desktop", (1280, 800)), ("phone", (390, 844))] {
            self.resize(width, height).await;
            for dark in [false, true] {
                self.color_scheme(dark).await;
                self.wait(&format!("{name} to be ready for its screenshot"), ready)
                    .await;
                let scheme = if dark { "dark" } else { "light" };
                self.screenshot(&format!("{name}-{size}-{scheme}")).await;
            }
        }
        self.color_scheme(false).await;
        self.resize(1280, 800).await;
    }
}

fn slug(text: &str) -> String {
    let slug: String = text
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    slug.chars().take(60).collect()
}

/// A Chrome DevTools Protocol command, sent through chromedriver.
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: Json,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        let body = json!({"cmd": self.cmd, "params": self.params});
        (http::Method::POST, Some(body.to_string()))
    }
}
