//! Every route, status code and error body, in process.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::Request;
use boneage::Patient;
use boneage_core::{Sex, read_radiograph_bytes};
use boneage_server::openapi;

use crate::{Part, blank_png, call, film, get, json, post_form, router, runtime, service};

/// The property names of a schema in the OpenAPI document.
fn properties(doc: &serde_json::Value, schema: &str) -> BTreeSet<String> {
    doc["components"]["schemas"][schema]["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("schema {schema} has properties"))
        .keys()
        .cloned()
        .collect()
}

fn keys(v: &serde_json::Value) -> BTreeSet<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("an object: {v}"))
        .keys()
        .cloned()
        .collect()
}

#[test]
fn an_upload_is_assessed_recorded_and_shown() {
    let film = film();
    let dir = tempfile::tempdir().unwrap();
    let state = service(dir.path(), |_| {});
    let app = router(&state);
    runtime().block_on(async {
        let (status, headers, body) = call(
            &app,
            post_form(
                "/v1/assessments",
                &[
                    Part::File("image", &film),
                    Part::Text("sex", "F"),
                    Part::Text("age", "14y2m"),
                ],
            ),
        )
        .await;
        assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
        let doc = json(&body);
        let id = doc["id"].as_i64().expect("an id");
        assert_eq!(
            headers["location"].to_str().unwrap(),
            format!("/v1/assessments/{id}")
        );
        // The same numbers as the library (and so as `boneage assess --json`).
        let r = read_radiograph_bytes(&film, "ph.png").unwrap();
        let a = crate::assessor()
            .assess(&r, &Patient::new(Sex::Female).with_age(170.0))
            .unwrap();
        assert_eq!(doc["bone_age_months"].as_f64(), Some(a.bone_age_months()));
        assert_eq!(doc["chronological"]["chronological_months"], 170.0);
        assert_eq!(doc["sex_from"], "the form");
        assert_eq!(doc["file"], "upload", "file names are never kept");
        assert!(doc["interval"]["low_months"].as_f64().unwrap() < a.bone_age_months());
        assert!(doc["models"].as_str().unwrap().contains("unet.json "));

        // The schema in the OpenAPI document names exactly the answer's fields.
        let api: serde_json::Value = serde_json::from_str(&openapi::json()).unwrap();
        assert_eq!(keys(&doc), properties(&api, "AssessmentDoc"));
        assert_eq!(keys(&doc["interval"]), properties(&api, "IntervalDoc"));
        assert_eq!(
            keys(&doc["chronological"]),
            properties(&api, "ComparisonDoc")
        );
        assert_eq!(
            keys(&doc["registration"]),
            properties(&api, "RegistrationDoc")
        );
        assert_eq!(keys(&doc["members"][0]), properties(&api, "MemberDoc"));
        assert_eq!(keys(&doc["timings"]), properties(&api, "Timings"));
        assert_eq!(keys(&doc["links"]), properties(&api, "LinksDoc"));

        // Read back: the audit row carries the same document.
        let (status, _, body) = call(&app, get(&format!("/v1/assessments/{id}"))).await;
        assert_eq!(status, 200);
        let row = json(&body);
        assert_eq!(row["outcome"], "assessed");
        assert_eq!(row["status"], 201);
        assert_eq!(row["assessment"], doc);
        assert_eq!(row["sex"], "F");
        assert_eq!(row["input_sha256"].as_str().unwrap().len(), 64);

        // The evidence picture.
        let (status, headers, png) =
            call(&app, get(doc["links"]["overlay"].as_str().unwrap())).await;
        assert_eq!(status, 200);
        assert_eq!(headers["content-type"], "image/png");
        let pic = image::load_from_memory(&png).unwrap();
        assert!(pic.width() > 300 && pic.height() > 300);

        // Deeplasia's route gives the same bone age in its own shape.
        let (status, _, body) = call(
            &app,
            post_form(
                "/predict",
                &[
                    Part::File("file", &film),
                    Part::Text("sex", "female"),
                    Part::Text("use_mask", "1"),
                ],
            ),
        )
        .await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let d = json(&body);
        assert_eq!(
            keys(&d),
            ["bone_age", "sex_predicted", "used_sex"]
                .map(String::from)
                .into()
        );
        assert_eq!(d["bone_age"].as_f64(), Some(a.bone_age_months() - 0.0));
        assert_eq!(d["used_sex"], "f");
        assert_eq!(d["sex_predicted"], false);

        // Newest first; pages.
        let (_, _, body) = call(&app, get("/v1/assessments?limit=1")).await;
        let page = json(&body);
        assert_eq!(page["items"][0]["route"], "/predict");
        let next = page["next_before"].as_i64().unwrap();
        let (_, _, body) = call(&app, get(&format!("/v1/assessments?limit=5&before={next}"))).await;
        let page = json(&body);
        assert_eq!(page["items"][0]["id"], id);
        assert_eq!(page["items"].as_array().unwrap().len(), 1);

        // Counted.
        let (status, _, body) = call(&app, get("/metrics")).await;
        assert_eq!(status, 200);
        let text = String::from_utf8(body).unwrap();
        assert!(
            text.contains("boneage_requests_total{route=\"/v1/assessments\",status=\"201\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("boneage_assessment_seconds_count 2"),
            "{text}"
        );
    });
}

#[test]
fn bad_requests_get_clear_errors_and_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let state = service(dir.path(), |c| c.body_limit = 200_000);
    let app = router(&state);
    let png = blank_png();
    runtime().block_on(async {
        let expect =
            |status: u16, kind: &str, words: &str, got: (u16, axum::http::HeaderMap, Vec<u8>)| {
                let body = json(&got.2);
                assert_eq!(got.0, status, "{body}");
                assert_eq!(body["kind"], kind, "{body}");
                let error = body["error"].as_str().unwrap();
                assert!(error.contains(words), "{error:?} should say {words:?}");
                body
            };
        // Not a form.
        let req = Request::post("/v1/assessments")
            .header("content-type", "image/png")
            .body(Body::from(png.clone()))
            .unwrap();
        expect(
            415,
            "unsupported_media_type",
            "multipart/form-data",
            call(&app, req).await,
        );
        // A form without the image.
        let b = expect(
            400,
            "bad_request",
            "no `image` part",
            call(
                &app,
                post_form("/v1/assessments", &[Part::Text("sex", "F")]),
            )
            .await,
        );
        assert!(b["id"].as_i64().is_some(), "a rejection is recorded: {b}");
        // Garbage bytes.
        expect(
            415,
            "not_an_image",
            "not a PNG, JPEG or DICOM",
            call(
                &app,
                post_form(
                    "/v1/assessments",
                    &[Part::File("image", b"hello, world"), Part::Text("sex", "F")],
                ),
            )
            .await,
        );
        // A truncated PNG.
        expect(
            422,
            "unreadable_image",
            "could not be read",
            call(
                &app,
                post_form(
                    "/v1/assessments",
                    &[
                        Part::File("image", &png[..png.len() / 2]),
                        Part::Text("sex", "F"),
                    ],
                ),
            )
            .await,
        );
        // No sex anywhere.
        expect(
            422,
            "bad_request",
            "give sex=M or sex=F",
            call(
                &app,
                post_form("/v1/assessments", &[Part::File("image", &png)]),
            )
            .await,
        );
        // A bad sex, age, pair of dates, unknown part.
        expect(
            400,
            "bad_request",
            "use M or F",
            call(
                &app,
                post_form(
                    "/v1/assessments",
                    &[Part::File("image", &png), Part::Text("sex", "X")],
                ),
            )
            .await,
        );
        expect(
            400,
            "bad_request",
            "age \"ten\"",
            call(
                &app,
                post_form(
                    "/v1/assessments",
                    &[
                        Part::File("image", &png),
                        Part::Text("sex", "M"),
                        Part::Text("age", "ten"),
                    ],
                ),
            )
            .await,
        );
        expect(
            400,
            "bad_request",
            "after the study date",
            call(
                &app,
                post_form(
                    "/v1/assessments",
                    &[
                        Part::File("image", &png),
                        Part::Text("sex", "M"),
                        Part::Text("birth", "2020-01-02"),
                        Part::Text("study", "2019-01-01"),
                    ],
                ),
            )
            .await,
        );
        expect(
            400,
            "bad_request",
            "unknown form part \"patient\"",
            call(
                &app,
                post_form("/v1/assessments", &[Part::Text("patient", "Jane Doe")]),
            )
            .await,
        );
        // Too large: declared, and streamed without a length.
        let big = vec![7u8; 300_000];
        expect(
            413,
            "too_large",
            "declares 300",
            call(
                &app,
                post_form("/v1/assessments", &[Part::File("image", &big)]),
            )
            .await,
        );
        let chunks = futures_body(crate::form(&[
            Part::File("image", &big),
            Part::Text("sex", "F"),
        ]));
        let req = Request::post("/v1/assessments")
            .header(
                "content-type",
                format!("multipart/form-data; boundary={}", crate::BOUNDARY),
            )
            .body(chunks)
            .unwrap();
        expect(
            413,
            "too_large",
            "at most 200000 bytes",
            call(&app, req).await,
        );
        // A film without a hand: refused, with the reason, recorded.
        let b = expect(
            422,
            "refused",
            "no hand found",
            call(
                &app,
                post_form(
                    "/v1/assessments",
                    &[Part::File("image", &png), Part::Text("sex", "F")],
                ),
            )
            .await,
        );
        let id = b["id"].as_i64().unwrap();
        let (status, _, body) = call(&app, get(&format!("/v1/assessments/{id}"))).await;
        assert_eq!(status, 200);
        let row = json(&body);
        assert_eq!(row["outcome"], "refused");
        assert_eq!(row["status"], 422);
        assert!(row["reason"].as_str().unwrap().contains("no hand found"));
        assert!(row["assessment"].is_null());
        let (_, _, body) = call(&app, get("/v1/assessments/999999/overlay.png")).await;
        assert!(
            json(&body)["error"]
                .as_str()
                .unwrap()
                .contains("pixels are never stored")
        );
        // Deeplasia's route names its own part.
        expect(
            400,
            "bad_request",
            "no `file` part",
            call(&app, post_form("/predict", &[Part::Text("sex", "female")])).await,
        );
        // Other routes.
        expect(
            404,
            "not_found",
            "no assessment 999999",
            call(&app, get("/v1/assessments/999999")).await,
        );
        expect(
            404,
            "not_found",
            "no route GET /v2",
            call(&app, get("/v2")).await,
        );
        expect(
            400,
            "bad_request",
            "give 1 to 200",
            call(&app, get("/v1/assessments?limit=0")).await,
        );
        expect(
            400,
            "bad_request",
            "use M or F",
            call(&app, get("/v1/reference/X")).await,
        );
        // The rejected requests that reached the handler are in the audit store; no
        // row holds the name the unknown part carried.
        let rows = state.store.list(200, None).unwrap();
        assert_eq!(rows.len(), 12, "{rows:#?}");
        assert!(rows.iter().all(|r| !format!("{r:?}").contains("Jane Doe")));
    });
}

/// A body that arrives in chunks without a declared length.
fn futures_body(bytes: Vec<u8>) -> Body {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        bytes.chunks(16_384).map(|c| Ok(c.to_vec())).collect();
    Body::from_stream(tokio_stream(chunks))
}

fn tokio_stream(
    chunks: Vec<Result<Vec<u8>, std::io::Error>>,
) -> impl futures_core::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send {
    Iter(chunks.into_iter())
}

struct Iter(std::vec::IntoIter<Result<Vec<u8>, std::io::Error>>);

impl futures_core::Stream for Iter {
    type Item = Result<Vec<u8>, std::io::Error>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        std::task::Poll::Ready(self.0.next())
    }
}

#[test]
fn health_readiness_reference_page_and_api_description() {
    let dir = tempfile::tempdir().unwrap();
    let config = boneage_server::Config::new(
        boneage::ModelsDir::locate(None).unwrap(),
        dir.path().join("a.sqlite"),
    );
    let state = boneage_server::State::new(config).unwrap();
    let app = router(&state);
    runtime().block_on(async {
        let (status, _, body) = call(&app, get("/healthz")).await;
        assert_eq!((status, json(&body)["status"].clone()), (200, "ok".into()));
        // Not ready before the models are in.
        let (status, _, body) = call(&app, get("/readyz")).await;
        assert_eq!(status, 503);
        assert_eq!(json(&body)["status"], "loading");
        let (status, headers, body) = call(
            &app,
            post_form(
                "/v1/assessments",
                &[Part::File("image", &blank_png()), Part::Text("sex", "F")],
            ),
        )
        .await;
        assert_eq!(status, 503);
        assert_eq!(json(&body)["kind"], "loading");
        assert!(headers.contains_key("retry-after"));
        state.set_models(crate::assessor());
        let (status, _, body) = call(&app, get("/readyz")).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        assert!(
            json(&body)["models"]
                .as_str()
                .unwrap()
                .contains("age/calibration.json ")
        );

        let (status, _, body) = call(&app, get("/v1/reference/F")).await;
        assert_eq!(status, 200);
        let rows = json(&body)["rows"].as_array().unwrap().clone();
        assert!(rows.len() > 10);
        assert_eq!(rows[0]["age_months"], 3.0);

        let (status, headers, body) = call(&app, get("/")).await;
        assert_eq!(status, 200);
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let page = String::from_utf8(body).unwrap();
        for needle in [
            "/v1/assessments",
            "/v1/reference/",
            "not for diagnostic use",
            "drawChart",
        ] {
            assert!(page.contains(needle), "the page lacks {needle}");
        }

        let (status, _, body) = call(&app, get("/openapi.json")).await;
        assert_eq!(status, 200);
        assert_eq!(String::from_utf8(body).unwrap(), openapi::json());
    });
}

/// The committed `docs/openapi.json` is the document the server gives; every path
/// the router answers is in it and every `$ref` resolves. `BONEAGE_BLESS=1`
/// rewrites it.
#[test]
fn the_openapi_document_is_valid_and_current() {
    let text = openapi::json();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    if std::env::var_os("BONEAGE_BLESS").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = keys(&doc["paths"]);
    for p in [
        "/v1/assessments",
        "/v1/assessments/{id}",
        "/v1/assessments/{id}/overlay.png",
        "/v1/assessments/{id}/dicom",
        "/v1/reference/{sex}",
        "/predict",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(paths.contains(p), "{p} is not described");
    }
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(refs.len() > 10);
    for r in refs {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("{r}"));
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "{r} does not resolve"
        );
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == text,
        "docs/openapi.json is stale: run `BONEAGE_BLESS=1 cargo test -p boneage-server openapi` and commit it"
    );
}

fn collect_refs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(o) => {
            for (k, x) in o {
                if k == "$ref" {
                    out.push(x.as_str().unwrap().to_string());
                } else {
                    collect_refs(x, out);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

#[test]
fn a_token_guards_everything_but_the_page_and_health_checks() {
    let dir = tempfile::tempdir().unwrap();
    let state = service(dir.path(), |c| c.token = Some("s3cret".into()));
    let app = router(&state);
    runtime().block_on(async {
        for open in ["/", "/healthz", "/readyz", "/openapi.json"] {
            assert_eq!(call(&app, get(open)).await.0, 200, "{open}");
        }
        for closed in [
            "/v1/assessments",
            "/metrics",
            "/v1/reference/F",
            "/v1/assessments/1",
        ] {
            let (status, headers, body) = call(&app, get(closed)).await;
            assert_eq!(status, 401, "{closed}");
            assert_eq!(headers["www-authenticate"], "Bearer");
            assert_eq!(json(&body)["kind"], "unauthorized");
        }
        let wrong = Request::get("/v1/assessments")
            .header("authorization", "Bearer s3creT")
            .body(Body::empty())
            .unwrap();
        assert_eq!(call(&app, wrong).await.0, 401);
        let right = Request::get("/v1/assessments")
            .header("authorization", "Bearer s3cret")
            .body(Body::empty())
            .unwrap();
        assert_eq!(call(&app, right).await.0, 200);
    });
    // Beyond loopback, a token is required.
    let mut c = boneage_server::Config::new(boneage::ModelsDir::given("models"), "x".into());
    c.addr = "0.0.0.0:8080".parse().unwrap();
    assert!(c.validate().unwrap_err().contains("needs --token"));
    c.token = Some("t".into());
    assert!(c.validate().is_ok());
}

#[test]
fn a_full_queue_answers_503_with_retry_after_before_reading_the_body() {
    let dir = tempfile::tempdir().unwrap();
    let state = service(dir.path(), |c| {
        c.workers = 1;
        c.queue = 1;
    });
    let app = router(&state);
    // Two requests in progress fill the one worker and the one place in the queue.
    let held = [state.admit().unwrap(), state.admit().unwrap()];
    runtime().block_on(async {
        let (status, headers, body) = call(
            &app,
            post_form(
                "/v1/assessments",
                &[Part::File("image", &blank_png()), Part::Text("sex", "F")],
            ),
        )
        .await;
        assert_eq!(status, 503);
        assert_eq!(json(&body)["kind"], "busy");
        assert_eq!(headers["retry-after"], "2");
        // Reads are not queued.
        assert_eq!(call(&app, get("/v1/assessments")).await.0, 200);
        let (_, _, body) = call(&app, get("/metrics")).await;
        let text = String::from_utf8(body).unwrap();
        assert!(text.contains("boneage_busy_total 1"), "{text}");
        assert!(text.contains("boneage_queue_depth 2"), "{text}");
    });
    drop(held);
    runtime().block_on(async {
        let (status, _, _) = call(
            &app,
            post_form(
                "/v1/assessments",
                &[Part::File("image", &blank_png()), Part::Text("sex", "F")],
            ),
        )
        .await;
        assert_eq!(status, 422, "admitted again once the places are free");
    });
}

/// A DICOM film with the patient's name and ID in its header: sex from the header,
/// no identifier kept or answered, and the result as a Structured Report and a
/// Secondary Capture placed in the film's study, referencing it (dciodvfy, when
/// installed, finds no error).
#[test]
fn a_dicom_film_gives_dicom_results_and_its_identifiers_stay_in_the_request() {
    use dicom_core::{DataElement, PrimitiveValue, VR};
    use dicom_dictionary_std::tags;
    use dicom_object::{InMemDicomObject, meta::FileMetaTableBuilder};

    let png = film();
    let gray = image::load_from_memory(&png).unwrap().to_luma8();
    let mut obj = InMemDicomObject::new_empty();
    let put =
        |o: &mut InMemDicomObject, tag, vr, v: PrimitiveValue| o.put(DataElement::new(tag, vr, v));
    let (study, series, sop) = (
        "1.2.826.0.1.3680043.2.1125.91",
        "1.2.826.0.1.3680043.2.1125.92",
        "1.2.826.0.1.3680043.2.1125.93",
    );
    put(
        &mut obj,
        tags::SOP_CLASS_UID,
        VR::UI,
        "1.2.840.10008.5.1.4.1.1.1.1".into(),
    );
    put(&mut obj, tags::SOP_INSTANCE_UID, VR::UI, sop.into());
    put(&mut obj, tags::STUDY_INSTANCE_UID, VR::UI, study.into());
    put(&mut obj, tags::SERIES_INSTANCE_UID, VR::UI, series.into());
    put(&mut obj, tags::PATIENT_NAME, VR::PN, "DOE^JANE".into());
    put(&mut obj, tags::PATIENT_ID, VR::LO, "MRN-5550123".into());
    put(&mut obj, tags::PATIENT_SEX, VR::CS, "F".into());
    put(&mut obj, tags::MODALITY, VR::CS, "DX".into());
    put(
        &mut obj,
        tags::ROWS,
        VR::US,
        PrimitiveValue::from(gray.height() as u16),
    );
    put(
        &mut obj,
        tags::COLUMNS,
        VR::US,
        PrimitiveValue::from(gray.width() as u16),
    );
    for (tag, v) in [
        (tags::SAMPLES_PER_PIXEL, 1u16),
        (tags::BITS_ALLOCATED, 8),
        (tags::BITS_STORED, 8),
        (tags::HIGH_BIT, 7),
        (tags::PIXEL_REPRESENTATION, 0),
    ] {
        put(&mut obj, tag, VR::US, PrimitiveValue::from(v));
    }
    put(
        &mut obj,
        tags::PHOTOMETRIC_INTERPRETATION,
        VR::CS,
        "MONOCHROME2".into(),
    );
    put(
        &mut obj,
        tags::PIXEL_DATA,
        VR::OB,
        PrimitiveValue::U8(gray.as_raw().clone().into()),
    );
    let file = obj
        .with_meta(
            FileMetaTableBuilder::new()
                .transfer_syntax("1.2.840.10008.1.2.1")
                .media_storage_sop_class_uid("1.2.840.10008.5.1.4.1.1.1.1")
                .media_storage_sop_instance_uid(sop),
        )
        .unwrap();
    let mut dcm = Vec::new();
    file.write_all(&mut dcm).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let state = service(dir.path(), |_| {});
    let app = router(&state);
    runtime().block_on(async {
        let (status, _, body) = call(
            &app,
            post_form("/v1/assessments", &[Part::File("image", &dcm)]),
        )
        .await;
        assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
        let doc = json(&body);
        assert_eq!(doc["sex"], "F");
        assert_eq!(doc["sex_from"], "the file's header");
        let id = doc["id"].as_i64().unwrap();
        let (_, _, row) = call(&app, get(&format!("/v1/assessments/{id}"))).await;
        for leak in ["DOE", "JANE", "MRN-5550123"] {
            assert!(
                !String::from_utf8_lossy(&body).contains(leak),
                "the answer holds {leak}"
            );
            assert!(
                !String::from_utf8_lossy(&row).contains(leak),
                "the audit row holds {leak}"
            );
        }
        let db = std::fs::read(dir.path().join("audit.sqlite")).unwrap();
        assert!(
            !db.windows(8).any(|w| w == b"DOE^JANE"),
            "the audit store holds the name"
        );

        let open = |bytes: &[u8], name: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            (p.clone(), dicom_object::open_file(&p).unwrap())
        };
        let text = |o: &dicom_object::DefaultDicomObject, tag| {
            o.element(tag)
                .unwrap()
                .to_str()
                .unwrap()
                .trim_end_matches(['\0', ' '])
                .to_string()
        };
        let (status, headers, sr) = call(&app, get(&format!("/v1/assessments/{id}/dicom"))).await;
        assert_eq!(status, 200);
        assert_eq!(headers["content-type"], "application/dicom");
        let (sr_path, sr) = open(&sr, "sr.dcm");
        assert_eq!(
            text(&sr, tags::SOP_CLASS_UID),
            "1.2.840.10008.5.1.4.1.1.88.33"
        );
        assert_eq!(text(&sr, tags::STUDY_INSTANCE_UID), study);
        assert_eq!(text(&sr, tags::PATIENT_NAME), "");
        assert_eq!(text(&sr, tags::PATIENT_SEX), "F");
        // A warning item exactly where the answer flagged low resolution.
        let warnings = sr
            .element(tags::CONTENT_SEQUENCE)
            .unwrap()
            .items()
            .unwrap()
            .iter()
            .filter(|i| {
                boneage_core::io::dicom_out::concept_meaning(i).as_deref() == Some("Warning")
            })
            .count();
        let low = doc["resolution"]["low"]
            .as_bool()
            .expect("the answer's resolution");
        assert_eq!(warnings, usize::from(low), "{doc}");
        let ev = &sr
            .element(tags::CURRENT_REQUESTED_PROCEDURE_EVIDENCE_SEQUENCE)
            .unwrap()
            .items()
            .unwrap()[0];
        let se = &ev
            .element(tags::REFERENCED_SERIES_SEQUENCE)
            .unwrap()
            .items()
            .unwrap()[0];
        assert_eq!(
            se.element(tags::SERIES_INSTANCE_UID)
                .unwrap()
                .to_str()
                .unwrap()
                .trim_end_matches('\0'),
            series
        );
        let bone_age = sr
            .element(tags::CONTENT_SEQUENCE)
            .unwrap()
            .items()
            .unwrap()
            .iter()
            .find_map(|i| {
                let mv = i.element(tags::MEASURED_VALUE_SEQUENCE).ok()?;
                let c = &i
                    .element(tags::CONCEPT_NAME_CODE_SEQUENCE)
                    .unwrap()
                    .items()
                    .unwrap()[0];
                (c.element(tags::CODE_MEANING)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .trim()
                    == "Bone age")
                    .then(|| {
                        mv.items().unwrap()[0]
                            .element(tags::NUMERIC_VALUE)
                            .unwrap()
                            .to_str()
                            .unwrap()
                            .trim()
                            .to_string()
                    })
            });
        assert_eq!(
            bone_age,
            Some(format!("{:.2}", doc["bone_age_months"].as_f64().unwrap()))
        );

        let (status, _, sc) = call(&app, get(&format!("/v1/assessments/{id}/dicom?kind=sc"))).await;
        assert_eq!(status, 200);
        let (sc_path, sc) = open(&sc, "sc.dcm");
        assert_eq!(text(&sc, tags::SOP_CLASS_UID), "1.2.840.10008.5.1.4.1.1.7");
        assert_eq!(text(&sc, tags::STUDY_INSTANCE_UID), study);
        assert_eq!(text(&sc, tags::PHOTOMETRIC_INTERPRETATION), "RGB");

        let (status, _, body) =
            call(&app, get(&format!("/v1/assessments/{id}/dicom?kind=pdf"))).await;
        assert_eq!(
            (status, json(&body)["kind"].clone()),
            (400, "bad_request".into())
        );

        for p in [&sr_path, &sc_path] {
            match boneage_core::io::dicom_out::dciodvfy(p) {
                None => eprintln!("SKIPPED dciodvfy: not installed (apt-get install dicom3tools)"),
                Some((clean, report)) => assert!(clean, "{}: dciodvfy:\n{report}", p.display()),
            }
        }
    });
}
