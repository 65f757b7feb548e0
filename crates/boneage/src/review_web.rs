//! The review page of `boneage review --serve`: one overlay at a time, one key per
//! decision (the paper's reviewers curated 3–5 images a second), and for key-point
//! rounds three clicks that set the points by hand.
//!
//! A small HTTP/1.1 server on the standard library (one request per connection, one
//! at a time: it serves one reviewer on this machine). No build step: the page is the
//! HTML below.
//!
//! Routes: `GET /` the page; `GET /api/round` the round as JSON; `GET /tile/ID.png`
//! an overlay; `GET /image/ID.png` the radiograph for clicking (its original size in
//! the `X-Original-Size` header); `POST /api/decide` (`id`, `decision=accept|reject`);
//! `POST /api/set` (`id`, `fx`,`fy`,`tx`,`ty`,`cx`,`cy` in original pixels).

use boneage_core::dataset::{Dataset, mask_path};
use boneage_core::geometry::Point;
use boneage_core::image::Mask;
use boneage_core::keypoints::KeyPoints;
use boneage_core::read_radiograph;
use boneage_core::sheet::thumbnail;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};

use boneage_core::labels::{LabelKind, Labels, Round};
use boneage_core::overlay::{keypoint_tile, mask_tile};

/// Whatever went wrong with one request; its message is the answer's body.
type Failure = Box<dyn std::error::Error + Send + Sync>;

struct State {
    round: Round,
    labels: Labels,
    ds: Dataset,
}

struct Response {
    status: &'static str,
    content_type: &'static str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn ok(content_type: &'static str, body: Vec<u8>) -> Self {
        Self {
            status: "200 OK",
            content_type,
            headers: Vec::new(),
            body,
        }
    }

    fn error(status: &'static str, message: String) -> Self {
        Self {
            status,
            content_type: "text/plain; charset=utf-8",
            headers: Vec::new(),
            body: message.into_bytes(),
        }
    }
}

/// Serves the review page of `round` until the process is stopped.
pub fn serve(round: Round, labels: Labels, ds: Dataset, addr: &str) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr)
        .map_err(|e| std::io::Error::new(e.kind(), format!("listening on {addr}: {e}")))?;
    let state = State { round, labels, ds };
    // The real address (port 0 picks a free one); tests read this line.
    eprintln!(
        "review page for round {} ({}, {} candidates) at http://{}/ — Ctrl-C to stop",
        state.round.number,
        state.round.kind.name(),
        state.round.tiles.len(),
        listener.local_addr()?
    );
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let response = match read_request(&mut stream) {
            Ok((method, path, body)) => route(&state, &method, &path, &body)
                .unwrap_or_else(|e| Response::error("500 Internal Server Error", e.to_string())),
            Err(e) => Response::error("400 Bad Request", e.to_string()),
        };
        // A reviewer who closed the tab is not an error worth stopping for.
        let _ = write_response(&mut stream, &response);
    }
    Ok(())
}

fn read_request(stream: &mut TcpStream) -> Result<(String, String, String), Failure> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().ok_or("empty request")?.to_string();
    let path = parts.next().ok_or("no path")?.to_string();
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.trim().eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().map_err(|_| "bad Content-Length")?;
        }
    }
    if length > 1 << 16 {
        return Err("request body too large".into());
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    Ok((method, path, String::from_utf8_lossy(&body).into_owned()))
}

fn write_response(stream: &mut TcpStream, r: &Response) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n",
        r.status,
        r.content_type,
        r.body.len()
    );
    for (k, v) in &r.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(&r.body)?;
    stream.flush()
}

fn not_a_candidate(id: &str) -> Response {
    Response::error("404 Not Found", format!("no candidate {id}"))
}

/// `a=1&b=2` (no escapes needed: ids are file stems, values numbers).
fn form(body: &str) -> BTreeMap<String, String> {
    body.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn png(img: &image::RgbImage) -> Result<Vec<u8>, Failure> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)?;
    Ok(out.into_inner())
}

fn route(s: &State, method: &str, path: &str, body: &str) -> Result<Response, Failure> {
    let path = path.split('?').next().unwrap_or("");
    let known = |id: &str| s.round.tiles.iter().any(|t| t.2 == id);
    match (method, path) {
        ("GET", "/") => Ok(Response::ok(
            "text/html; charset=utf-8",
            PAGE.as_bytes().to_vec(),
        )),
        ("GET", "/api/round") => {
            let decisions = s.labels.decisions(s.round.kind)?;
            let items: Vec<serde_json::Value> = s
                .round
                .tiles
                .iter()
                .map(|(sheet, tile, id)| {
                    serde_json::json!({
                        "id": id, "sheet": sheet, "tile": tile,
                        "decision": decisions.get(id),
                    })
                })
                .collect();
            let v = serde_json::json!({
                "round": s.round.number,
                "kind": s.round.kind.name(),
                "items": items,
            });
            Ok(Response::ok("application/json", v.to_string().into_bytes()))
        }
        ("GET", p) if p.starts_with("/tile/") || p.starts_with("/image/") => {
            let id = p
                .rsplit('/')
                .next()
                .and_then(|f| f.strip_suffix(".png"))
                .unwrap_or("");
            if !known(id) {
                return Ok(not_a_candidate(id));
            }
            let sample =
                s.ds.samples
                    .iter()
                    .find(|x| x.id == id)
                    .ok_or_else(|| format!("{id} is not in the dataset"))?;
            let r = read_radiograph(s.ds.image_path(sample))?;
            let (w, h) = (r.pixels.width(), r.pixels.height());
            if p.starts_with("/image/") {
                let small = thumbnail(&r.pixels, 1200, 900);
                let mut resp =
                    Response::ok("image/png", png(&boneage_core::overlay::to_rgb(&small))?);
                resp.headers
                    .push(("X-Original-Size".into(), format!("{w}x{h}")));
                return Ok(resp);
            }
            let rgb = match s.round.kind {
                LabelKind::Mask => {
                    let m = Mask::load_png(&mask_path(&s.round.dir.join("masks"), id))?;
                    mask_tile(&r.pixels, &m, 480, 600)
                }
                LabelKind::Keypoints => {
                    // Hand-set points replace the candidate once set.
                    let set = s.labels.keypoints()?.get(id).copied();
                    let k = set
                        .or_else(|| s.round.candidates.get(id).copied())
                        .ok_or_else(|| format!("no candidate key points for {id}"))?;
                    let mask = s.labels.mask(id, w, h)?;
                    keypoint_tile(&r.pixels, mask.as_ref(), &k, 480, 600)
                }
            };
            Ok(Response::ok("image/png", png(&rgb)?))
        }
        ("POST", "/api/decide") => {
            let f = form(body);
            let id = f.get("id").map(String::as_str).unwrap_or("");
            if !known(id) {
                return Ok(not_a_candidate(id));
            }
            let accept = match f.get("decision").map(String::as_str) {
                Some("accept") => true,
                Some("reject") => false,
                other => {
                    return Ok(Response::error(
                        "400 Bad Request",
                        format!("decision {other:?}: expected accept or reject"),
                    ));
                }
            };
            s.round.decide(&s.labels, &[(id.to_string(), accept)])?;
            Ok(Response::ok("text/plain", b"ok".to_vec()))
        }
        ("POST", "/api/set") => {
            let f = form(body);
            let id = f.get("id").map(String::as_str).unwrap_or("");
            if !known(id) {
                return Ok(not_a_candidate(id));
            }
            let num = |k: &str| -> Result<f64, Failure> {
                f.get(k)
                    .and_then(|v| v.parse::<f64>().ok())
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| format!("{k}: expected a number").into())
            };
            let k = KeyPoints {
                fingertip: Point::new(num("fx")?, num("fy")?),
                thumb: Point::new(num("tx")?, num("ty")?),
                capitate: Point::new(num("cx")?, num("cy")?),
            };
            s.labels.set_keypoints(id, k)?;
            Ok(Response::ok("text/plain", b"ok".to_vec()))
        }
        _ => Ok(Response::error("404 Not Found", format!("{method} {path}"))),
    }
}

const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>boneage review</title>
<style>
body{background:#16161a;color:#ddd;font:14px system-ui,sans-serif;margin:0}
header{padding:8px 14px;background:#222;display:flex;gap:18px;align-items:center}
main{display:flex;justify-content:center;padding:10px}
img{max-height:86vh;max-width:96vw;cursor:crosshair}
.accept{color:#5d5}.reject{color:#e55}.set{color:#5af}
kbd{background:#333;border-radius:3px;padding:1px 5px}
</style></head><body>
<header><b id="title">loading…</b><span id="pos"></span><span id="state"></span>
<span id="help"><kbd>a</kbd> accept <kbd>r</kbd> reject <kbd>←</kbd><kbd>→</kbd> move
<kbd>n</kbd> next undecided <span id="kphelp" hidden><kbd>e</kbd> set points: click fingertip, thumb tip, capitate</span></span></header>
<main><img id="view" alt=""></main>
<script>
let round, i = 0, editing = null, scale = 1;
const $ = id => document.getElementById(id);
async function load() {
  round = await (await fetch('/api/round')).json();
  $('title').textContent = `round ${round.round} · ${round.kind}`;
  $('kphelp').hidden = round.kind !== 'keypoints';
  i = Math.max(0, round.items.findIndex(t => !t.decision));
  show();
}
function show() {
  const t = round.items[i];
  const done = round.items.filter(t => t.decision).length;
  $('pos').textContent = `${i + 1}/${round.items.length} · id ${t.id} (sheet ${t.sheet} tile ${t.tile}) · ${done} decided`;
  $('state').textContent = t.decision || 'undecided';
  $('state').className = t.decision || '';
  $('view').src = `/tile/${t.id}.png?v=${Date.now()}`;
  for (const k of [1, 2]) { const n = round.items[i + k]; if (n) new Image().src = `/tile/${n.id}.png`; }
}
async function post(url, body) {
  const r = await fetch(url, {method: 'POST', body});
  if (!r.ok) { alert(await r.text()); return false; }
  return true;
}
async function decide(d) {
  const t = round.items[i];
  if (await post('/api/decide', `id=${t.id}&decision=${d}`)) {
    t.decision = d; if (i + 1 < round.items.length) i++; show();
  }
}
async function edit() {
  const t = round.items[i];
  const r = await fetch(`/image/${t.id}.png`);
  const [w] = r.headers.get('X-Original-Size').split('x').map(Number);
  const url = URL.createObjectURL(await r.blob());
  $('view').onload = () => { scale = w / $('view').naturalWidth; $('view').onload = null; };
  $('view').src = url; editing = [];
  $('state').textContent = 'click the middle fingertip';
}
$('view').addEventListener('click', async e => {
  if (!editing) return;
  const b = $('view').getBoundingClientRect();
  const k = $('view').naturalWidth / b.width;
  editing.push([(e.clientX - b.left) * k * scale, (e.clientY - b.top) * k * scale]);
  const next = ['click the thumb tip', 'click the capitate centre'][editing.length - 1];
  if (next) { $('state').textContent = next; return; }
  const [f, th, c] = editing; editing = null;
  const t = round.items[i];
  if (await post('/api/set', `id=${t.id}&fx=${f[0]}&fy=${f[1]}&tx=${th[0]}&ty=${th[1]}&cx=${c[0]}&cy=${c[1]}`)) {
    t.decision = 'set'; show();
  }
});
document.addEventListener('keydown', e => {
  if (e.key === 'a') decide('accept');
  else if (e.key === 'r') decide('reject');
  else if (e.key === 'ArrowRight') { i = Math.min(i + 1, round.items.length - 1); show(); }
  else if (e.key === 'ArrowLeft') { i = Math.max(i - 1, 0); show(); }
  else if (e.key === 'n') { const j = round.items.findIndex((t, k) => k > i && !t.decision); if (j >= 0) { i = j; show(); } }
  else if (e.key === 'e' && round.kind === 'keypoints') edit();
  else if (e.key === 'Escape') { editing = null; show(); }
});
load();
</script></body></html>
"#;
