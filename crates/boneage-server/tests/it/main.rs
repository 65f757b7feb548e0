//! Tests of the service: every route in process (tower's `oneshot`, no sockets), and
//! the faults a network brings over real loopback sockets. The models are the
//! shipped ones, loaded once for all tests.

mod faults;
mod routes;

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response};
use boneage::{Assessor, DeviceChoice, ModelsDir};
use boneage_server::{Config, State, app};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// The shipped models, loaded once.
pub fn assessor() -> Arc<Assessor> {
    static A: OnceLock<Arc<Assessor>> = OnceLock::new();
    A.get_or_init(|| {
        let dir = ModelsDir::locate(None).expect("the shipped models folder");
        Arc::new(Assessor::load(&dir, DeviceChoice::Cpu).expect("the shipped models load"))
    })
    .clone()
}

/// A service with its own audit store in `dir`, the shipped models installed.
pub fn service(dir: &Path, tune: impl FnOnce(&mut Config)) -> Arc<State> {
    let mut config = Config::new(
        ModelsDir::locate(None).expect("models"),
        dir.join("audit.sqlite"),
    );
    config.timeout = Duration::from_secs(60);
    tune(&mut config);
    let state = State::new(config).expect("open the audit store");
    state.set_models(assessor());
    state
}

/// One request through the router; the status, headers and body bytes.
pub async fn call(app: &Router, req: Request<Body>) -> (u16, axum::http::HeaderMap, Vec<u8>) {
    let response: Response<Body> = app.clone().oneshot(req).await.expect("infallible");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    (status, headers, body)
}

/// The body as JSON.
pub fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)))
}

/// A part of a multipart form: a text field or a file.
pub enum Part<'a> {
    Text(&'a str, &'a str),
    File(&'a str, &'a [u8]),
}

pub const BOUNDARY: &str = "boneage-test-boundary-7MA4YWxk";

/// A multipart/form-data body.
pub fn form(parts: &[Part<'_>]) -> Vec<u8> {
    let mut b = Vec::new();
    for p in parts {
        b.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        match p {
            Part::Text(name, value) => {
                b.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                        .as_bytes(),
                );
            }
            Part::File(name, bytes) => {
                b.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{name}\"; filename=\"film\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                    )
                    .as_bytes(),
                );
                b.extend_from_slice(bytes);
                b.extend_from_slice(b"\r\n");
            }
        }
    }
    b.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    b
}

/// A POST of a multipart form.
pub fn post_form(path: &str, parts: &[Part<'_>]) -> Request<Body> {
    let body = form(parts);
    Request::post(path)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .header("content-length", body.len())
        .body(Body::from(body))
        .unwrap()
}

/// A GET.
pub fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

/// A phantom film that the shipped models assess, as PNG bytes: the first of seed
/// 3's phantoms that the front end accepts (most are).
pub fn film() -> Vec<u8> {
    static F: OnceLock<Vec<u8>> = OnceLock::new();
    F.get_or_init(|| {
        let config = boneage_core::phantom::PhantomConfig::default();
        for i in 0..20 {
            let mut rng = boneage_core::phantom::image_rng(3, i);
            let ph = boneage_core::phantom::generate(&config, &mut rng).expect("a phantom");
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("ph.png");
            ph.image.save_png(&path).unwrap();
            let bytes = std::fs::read(&path).unwrap();
            let r = boneage_core::read_radiograph_bytes(&bytes, "ph.png").unwrap();
            let patient = boneage::Patient::new(boneage_core::Sex::Female);
            if assessor().assess(&r, &patient).is_ok() {
                return bytes;
            }
        }
        panic!("none of 20 phantoms was assessed by the shipped models")
    })
    .clone()
}

/// A blank film: no hand, which the front end refuses.
pub fn blank_png() -> Vec<u8> {
    let mut out = Vec::new();
    image::DynamicImage::ImageLuma8(image::GrayImage::from_pixel(300, 400, image::Luma([20])))
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

pub fn router(state: &Arc<State>) -> Router {
    app(state.clone())
}
