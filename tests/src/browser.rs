//! Headless Chromium through Debian's chromedriver (started on a free port per browser).
//! A missing browser fails the test that asked for one.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a browser that cannot start or answer fails the test loudly

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::error::CmdError;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

pub struct Browser {
    client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium; panics (fails the test) when either
    /// is missing.
    pub async fn start() -> Self {
        assert!(
            Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists(),
            "the UI tests need Debian's chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER})"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::Builder::new()
            .prefix("chromium-")
            .tempdir()
            .unwrap();
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("acceptInsecureCerts".into(), json!(true));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--window-size=1440,1000",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a Chromium session");
        Self {
            client,
            driver,
            _profile: profile,
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    pub async fn url(&self) -> String {
        self.client.current_url().await.unwrap().to_string()
    }

    async fn find(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
    }

    pub async fn fill(&self, css: &str, value: &str) {
        let element = self.find(css).await;
        element.clear().await.unwrap();
        element.send_keys(value).await.unwrap();
    }

    /// Sets a field's value directly (long PEM texts).
    pub async fn set_value(&self, id: &str, value: &str) {
        self.find(&format!("#{id}")).await;
        self.client
            .execute(
                "document.getElementById(arguments[0]).value = arguments[1];",
                vec![json!(id), json!(value)],
            )
            .await
            .unwrap();
    }

    pub async fn click(&self, css: &str) {
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("cannot click {css}: {e}"));
    }

    /// Clicks something that loads a new page and waits for that page.
    pub async fn navigate(&self, css: &str) {
        let element = self.find(css).await;
        self.mark_page().await;
        element
            .click()
            .await
            .unwrap_or_else(|e| panic!("cannot click {css}: {e}"));
        self.wait_for_new_page(css).await;
    }

    /// Clicks the button at `xpath`, accepts the confirmation dialog and waits for the
    /// next page.
    pub async fn confirm(&self, xpath: &str) {
        let element = self
            .client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::XPath(xpath))
            .await
            .unwrap_or_else(|e| panic!("no element {xpath}: {e}"));
        self.mark_page().await;
        element.click().await.unwrap();
        self.client.accept_alert().await.unwrap();
        self.wait_for_new_page(xpath).await;
    }

    async fn mark_page(&self) {
        self.client
            .execute("window.__leaving = true;", Vec::new())
            .await
            .unwrap();
    }

    async fn wait_for_new_page(&self, clicked: &str) {
        for _ in 0..200 {
            let done = self
                .client
                .execute(
                    "return window.__leaving !== true && document.readyState === 'complete';",
                    Vec::new(),
                )
                .await
                .map(|v| v.as_bool() == Some(true))
                .unwrap_or(false);
            if done {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("clicking {clicked} loaded no new page");
    }

    pub async fn select(&self, css: &str, label: &str) {
        self.find(css)
            .await
            .select_by_label(label)
            .await
            .unwrap_or_else(|e| panic!("cannot select {label:?} in {css}: {e}"));
    }

    /// Finds `css` and reads it; a page that polls and reloads itself (registration
    /// progress) can replace the element between the find and the read, so a stale
    /// element is found again instead of failing the test.
    async fn read<T, F, Fut>(&self, css: &str, read: F) -> T
    where
        F: Fn(Element) -> Fut,
        Fut: Future<Output = Result<T, CmdError>>,
    {
        for _ in 0..100 {
            match read(self.find(css).await).await {
                Ok(value) => return value,
                Err(e) if e.is_stale_element_reference() => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("cannot read {css}: {e}"),
            }
        }
        panic!("{css} was replaced by every reload for 5 s while being read")
    }

    pub async fn text(&self, css: &str) -> String {
        self.read(css, |e| async move { e.text().await }).await
    }

    pub async fn value(&self, css: &str) -> String {
        self.read(css, |e| async move { e.prop("value").await })
            .await
            .unwrap_or_default()
    }

    pub async fn selected(&self, css: &str) -> bool {
        self.read(css, |e| async move { e.is_selected().await })
            .await
    }

    pub async fn displayed(&self, css: &str) -> bool {
        self.read(css, |e| async move { e.is_displayed().await })
            .await
    }

    pub async fn count(&self, css: &str) -> usize {
        self.client.find_all(Locator::Css(css)).await.unwrap().len()
    }

    pub async fn script(&self, source: &str) -> String {
        let value = self.client.execute(source, Vec::new()).await.unwrap();
        value
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| value.to_string())
    }

    pub async fn script_async(&self, source: &str) -> String {
        let value = self.client.execute_async(source, Vec::new()).await.unwrap();
        value
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| value.to_string())
    }

    pub async fn screenshot(&self, path: &Path) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(path, png).unwrap();
    }

    pub async fn close(mut self) {
        let _closed = self.client.clone().close().await;
        let _killed = self.driver.kill();
        let _reaped = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _killed = self.driver.kill();
    }
}
