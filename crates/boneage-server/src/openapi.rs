//! The OpenAPI 3.1 document, generated from the handlers' annotations (utoipa) and
//! served at `/openapi.json`; `docs/openapi.json` is its committed copy, which a test
//! keeps current.
//!
//! The assessment's schema is written out here (the library's `Report` does not
//! depend on utoipa); a test checks that its properties are exactly the keys of a
//! real answer, so that the two cannot drift apart.

use std::collections::BTreeMap;

use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::routes;

/// The 90 % interval.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct IntervalDoc {
    /// Lower bound, months.
    low_months: f64,
    /// Upper bound, months.
    high_months: f64,
    /// Nominal coverage (0.9), measured out of fold.
    level: f64,
    /// Too wide to be useful.
    too_wide: bool,
}

/// Against the chronological age.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ComparisonDoc {
    /// Chronological age, months.
    chronological_months: f64,
    /// Bone age minus chronological age, months.
    difference_months: f64,
    /// Greulich–Pyle/Brush SD at the chronological age, months.
    sd_months: f64,
    /// Standard deviation score.
    sds: f64,
    /// delayed, normal or advanced (±2 SD).
    verdict: String,
    /// The age lies outside the table (the nearest row's SD was used).
    outside_table: bool,
}

/// The registration and the check after it.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct RegistrationDoc {
    /// Middle fingertip `[x, y]`, film pixels.
    fingertip: [f64; 2],
    /// Thumb tip.
    thumb: [f64; 2],
    /// Capitate.
    capitate: [f64; 2],
    /// The film was mirrored.
    mirrored: bool,
    /// The film's polarity was inverted (bone dark) and was read turned back.
    inverted_polarity: bool,
    /// Where the film lay on a larger canvas, `[x0, y0, x1, y1]` in the image's
    /// pixels, where it was read there alone.
    film_on_canvas: Option<[usize; 4]>,
    /// The film had already been cut out by another program (exact black around the
    /// hand) and was read with its own outline as the hand's mask.
    cut_out: bool,
    /// The film was refused every other way and its hand outlined by the U-Net
    /// trained for framed films, the answer standing where the second reader's
    /// locator agrees with it.
    framed_unet: bool,
    /// The hand's outline could not place the key points: they are the heat-map
    /// locator's alone, checked by the second key-point net and the check after
    /// registration.
    locator_alone: bool,
    /// The film was refused every other way and read again with two pieces of the
    /// hand's outline that point against each other taken for a forearm that ends
    /// inside the image, the answer standing where the second reader's locator agrees
    /// with it and the outline's five digits vouch for it.
    forearm_inside: bool,
    /// The film was refused every other way and read again with its dark values
    /// brought up for the U-Net (faint soft tissue), the answer standing where the
    /// second reader's locator agrees with it and the outline's five digits vouch
    /// for it.
    faint_tissue: bool,
    /// Canvas pixels per film pixel.
    zoom: f64,
    /// Rotation applied, degrees.
    rotation_deg: f64,
    /// Agreement with the mean registered hand.
    template_agreement: Option<f64>,
    /// Turn of the best template fit, degrees.
    template_turn_deg: Option<f64>,
    /// Scale of the best template fit.
    template_scale: Option<f64>,
}

/// How many pixels the film gives its hand, against the development films at its
/// bone age.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ResolutionDoc {
    /// Middle fingertip to capitate, film pixels.
    hand_span_px: f64,
    /// The development films' median span at this bone age, pixels.
    typical_span_px: f64,
    /// Under `low_share` of the usual span: too few pixels, the age is not to be
    /// relied on.
    low: bool,
    /// The share of the usual span under which the hand is `low` (0.6).
    low_share: f64,
}

/// One ensemble member's estimate.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct MemberDoc {
    /// Region: A (hand), B (carpals), C (metacarpals + phalanges).
    region: String,
    /// Head: regression or classification.
    head: String,
    /// Patients it was trained on: male, female or mixed.
    cohort: String,
    /// 0 for the first model of its region, head and cohort; 2, 3, … for further ones
    /// (the shipped default reads region A twice: from the 400×520 and the 800×1040
    /// registration).
    variant: u8,
    /// Its bone age, months.
    months: f64,
}

/// Links.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct LinksDoc {
    /// This assessment.
    #[schema(rename = "self")]
    this: String,
    /// Its evidence picture.
    overlay: String,
    /// The result as a DICOM Structured Report (`?kind=sc`: the picture as a Secondary Capture).
    dicom: String,
}

/// An assessment: the fields of `boneage assess --json`, plus the service's.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct AssessmentDoc {
    /// The audit store's id.
    id: i64,
    /// When it was made (UTC).
    created: String,
    /// Always "upload": file names are not kept (they may name the patient).
    file: String,
    /// M or F.
    sex: String,
    /// Where the sex came from: "the form" or "the file's header".
    sex_from: String,
    /// The bone age, months.
    bone_age_months: f64,
    /// The bone age in years and months.
    bone_age: String,
    /// Standard deviation across the ensemble's members, months.
    spread_months: f64,
    /// The 90 % interval (with the models' calibration).
    interval: Option<IntervalDoc>,
    /// The plain mean of the members, months.
    mean_months: f64,
    /// Each region's estimate (A, B, C, D), months, null where no model reads it.
    regions: BTreeMap<String, Option<f64>>,
    /// Every member's estimate.
    members: Vec<MemberDoc>,
    /// Against the chronological age, when it was given.
    chronological: Option<ComparisonDoc>,
    /// How the film was registered.
    registration: RegistrationDoc,
    /// Whether the film has pixels enough for its age to be read.
    resolution: ResolutionDoc,
    /// Seconds from the pixels to the answer.
    seconds: f64,
    /// Where the time went.
    timings: routes::Timings,
    /// The models' manifests and their SHA-256, `file hash` per line.
    models: String,
    /// Links.
    links: LinksDoc,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "boneage",
        description = "Pediatric bone age assessment from a left-hand radiograph (Iglovikov et al. 2018). Not for diagnostic use.",
        license(name = "MIT OR Apache-2.0")
    ),
    paths(
        routes::create_assessment,
        routes::list,
        routes::get_assessment,
        routes::overlay,
        routes::dicom,
        routes::reference,
        routes::predict,
        routes::healthz,
        routes::readyz,
        routes::metrics,
    ),
    components(schemas(crate::error::ErrorBody, crate::store::Record, crate::store::Outcome)),
    modifiers(&Bearer),
    tags(
        (name = "assessments", description = "Bone ages and their evidence"),
        (name = "compatibility", description = "Deeplasia's API"),
        (name = "health", description = "For orchestrators and monitoring"),
    )
)]
struct ApiDoc;

struct Bearer;

impl utoipa::Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(c) = openapi.components.as_mut() {
            c.add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
        openapi.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        )]);
    }
}

/// The document, as served.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc
}

/// The document as pretty JSON (what `docs/openapi.json` holds).
pub fn json() -> String {
    document()
        .to_pretty_json()
        .expect("the OpenAPI document serializes")
        + "\n"
}
