// The web page of `boneage serve`, driven in a real browser (headless Chromium over
// the DevTools protocol; Node's own WebSocket, no npm packages): upload a film as a
// user would, wait for the answer, check that the numbers on the page are the API's,
// then a refusal, the printed report and a tablet's width, with a screenshot of each.
//
//   node --experimental-websocket page.mjs BASE_URL FILM BLANK OUT_DIR
//
// FILM is assessed, BLANK is refused. Exits non-zero with the reason on any mismatch.
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const [base, film, blank, out] = process.argv.slice(2);
if (!out) {
  console.error("usage: page.mjs BASE_URL FILM BLANK OUT_DIR");
  process.exit(2);
}
const fail = (msg) => { console.error("browser test FAILED: " + msg); process.exitCode = 1; throw new Error(msg); };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const profile = mkdtempSync(join(tmpdir(), "boneage-chromium-"));
const chrome = spawn(process.env.CHROMIUM || "chromium", [
  "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
  "--remote-debugging-port=0", `--user-data-dir=${profile}`, "about:blank",
], { stdio: ["ignore", "ignore", "pipe"] });
const wsUrl = await new Promise((res, rej) => {
  let err = "";
  const timer = setTimeout(() => rej(new Error("Chromium did not start: " + err)), 30000);
  chrome.stderr.on("data", (d) => {
    err += d;
    const m = err.match(/DevTools listening on (ws:\/\/\S+)/);
    if (m) { clearTimeout(timer); res(m[1]); }
  });
});

const ws = new WebSocket(wsUrl);
await new Promise((r) => ws.addEventListener("open", r, { once: true }));
let next = 1;
const waiting = new Map();
ws.addEventListener("message", (ev) => {
  const m = JSON.parse(ev.data);
  if (m.id && waiting.has(m.id)) {
    const { res, rej } = waiting.get(m.id);
    waiting.delete(m.id);
    m.error ? rej(new Error(JSON.stringify(m.error))) : res(m.result);
  }
});
const send = (method, params = {}, sessionId) => new Promise((res, rej) => {
  const id = next++;
  waiting.set(id, { res, rej });
  ws.send(JSON.stringify({ id, method, params, sessionId }));
});

const { targetId } = await send("Target.createTarget", { url: "about:blank" });
const { sessionId } = await send("Target.attachToTarget", { targetId, flatten: true });
const page = (method, params) => send(method, params, sessionId);
const evaluate = async (expression) => {
  const r = await page("Runtime.evaluate", { expression, awaitPromise: true, returnByValue: true });
  if (r.exceptionDetails) fail(`${expression}: ${JSON.stringify(r.exceptionDetails)}`);
  return r.result.value;
};
const until = async (expression, what, ms = 90000) => {
  const t = Date.now();
  while (Date.now() - t < ms) {
    const v = await evaluate(expression);
    if (v) return v;
    await sleep(200);
  }
  fail(`waited ${ms / 1000} s for ${what}`);
};
const viewport = (width, height) =>
  page("Emulation.setDeviceMetricsOverride", { width, height, deviceScaleFactor: 1, mobile: false });
const shot = async (name) => {
  const { cssContentSize } = await page("Page.getLayoutMetrics");
  const { data } = await page("Page.captureScreenshot", {
    format: "png", captureBeyondViewport: true,
    clip: { x: 0, y: 0, width: cssContentSize.width, height: cssContentSize.height, scale: 1 },
  });
  writeFileSync(join(out, name), Buffer.from(data, "base64"));
  console.log("screenshot " + join(out, name));
};
const upload = async (path, sex, age) => {
  const { root } = await page("DOM.getDocument", {});
  const { nodeId } = await page("DOM.querySelector", { nodeId: root.nodeId, selector: "#image" });
  await page("DOM.setFileInputFiles", { nodeId, files: [resolve(path)] });
  await evaluate(`(() => {
    document.getElementById("image").dispatchEvent(new Event("change"));
    document.querySelector('input[name=sex][value="${sex}"]').click();
    document.getElementById("age").value = ${JSON.stringify(age)};
    document.getElementById("submit").click();
    return true; })()`);
};

try {
  await page("Page.enable");
  await page("Runtime.enable");
  await page("DOM.enable");
  await viewport(1280, 800);
  await page("Page.navigate", { url: base + "/" });
  await until(`document.readyState === "complete" && !!document.getElementById("form")`, "the page");

  // A film that is assessed: the page's numbers are the API's.
  await upload(film, "F", "10y");
  const months = Number(await until(`document.getElementById("bone-age")?.dataset.months`, "the bone age"));
  const id = await until(`document.getElementById("print-date")?.textContent.match(/#(\\d+)/)?.[1]`, "the id");
  const row = await (await fetch(`${base}/v1/assessments/${id}`)).json();
  const a = row.assessment;
  if (months !== a.bone_age_months) fail(`page shows ${months} months, API ${a.bone_age_months}`);
  const shown = await evaluate(`document.getElementById("bone-age-months").textContent`);
  if (shown !== a.bone_age_months.toFixed(1)) fail(`page shows ${shown}, API ${a.bone_age_months}`);
  const sds = await evaluate(`document.getElementById("sds").textContent`);
  if (sds !== a.chronological.sds.toFixed(2)) fail(`page SDS ${sds}, API ${a.chronological.sds}`);
  const verdict = await evaluate(`document.getElementById("verdict").textContent`);
  if (verdict !== a.chronological.verdict) fail(`page verdict ${verdict}, API ${a.chronological.verdict}`);
  if (a.interval) {
    const iv = await evaluate(`document.getElementById("interval").textContent`);
    const want = `${a.interval.low_months.toFixed(0)}–${a.interval.high_months.toFixed(0)}`;
    if (iv !== want) fail(`page interval ${iv}, API ${want}`);
  }
  await until(`document.getElementById("patient-point") !== null`, "the growth chart's point");
  await until(`(() => { const i = document.getElementById("overlay"); return i && i.complete && i.naturalWidth > 0; })()`, "the evidence picture");
  await until(`document.querySelector('#recent tr[data-id="${id}"]') !== null`, "the recent list");
  console.log(`assessed: page ${months} months = API ${a.bone_age_months} (assessment #${id})`);
  await shot("result.png");

  // The printed report: the form and the list are left out.
  await page("Emulation.setEmulatedMedia", { media: "print" });
  const hidden = await evaluate(`getComputedStyle(document.getElementById("side")).display`);
  if (hidden !== "none") fail("the printed report shows the form");
  await viewport(794, 1123);
  await shot("print.png");
  const pdf = await page("Page.printToPDF", { printBackground: true });
  writeFileSync(join(out, "report.pdf"), Buffer.from(pdf.data, "base64"));
  await page("Emulation.setEmulatedMedia", { media: "" });

  // A tablet, portrait.
  await viewport(820, 1180);
  await shot("tablet.png");
  await viewport(1280, 800);

  // A film that is refused: the reason, in words.
  await upload(blank, "M", "");
  const reason = await until(`document.getElementById("refusal")?.textContent`, "the refusal");
  if (!reason.includes("no hand found")) fail(`the refusal does not say why: ${reason}`);
  console.log("refused: " + reason.slice(0, 120));
  await shot("refusal.png");

  // Keyboard: the recent list opens an assessment with Enter.
  await evaluate(`(() => { const r = document.querySelector('#recent tr[data-id="${id}"]'); r.focus();
    r.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", bubbles: true })); return true; })()`);
  const again = Number(await until(`document.getElementById("bone-age")?.dataset.months`, "the reopened assessment"));
  if (again !== a.bone_age_months) fail(`reopened ${again}, API ${a.bone_age_months}`);
  console.log("browser test passed");
} finally {
  ws.close();
  chrome.kill("SIGKILL");
  await sleep(300);
  rmSync(profile, { recursive: true, force: true });
}
