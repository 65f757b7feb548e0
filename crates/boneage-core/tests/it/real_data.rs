//! The real RSNA images in `../shared/data/rsna`. Skipped, with a message, where
//! that folder is absent.

use boneage_core::Sex;
use boneage_core::dataset::Dataset;
use boneage_core::read_radiograph;
use rayon::prelude::*;

use crate::util::rsna_dir;

fn skip(what: &str) {
    eprintln!("SKIPPED {what}: ../shared/data/rsna not found beside the repository");
}

fn load_all(dir: &std::path::Path, expected: usize, min_side: usize) {
    let ds = Dataset::open_dir(dir).unwrap();
    assert_eq!(ds.samples.len(), expected, "{}", dir.display());
    let failures: Vec<String> = ds
        .samples
        .par_iter()
        .filter_map(|s| {
            let r = match read_radiograph(ds.image_path(s)) {
                Ok(r) => r,
                Err(e) => return Some(e.to_string()),
            };
            let (w, h) = (r.pixels.width(), r.pixels.height());
            if w.min(h) < min_side {
                return Some(format!("{}: only {w}x{h}", s.id));
            }
            let px = r.pixels.as_slice();
            let (lo, hi) = px
                .iter()
                .fold((1f32, 0f32), |(l, h), &v| (l.min(v), h.max(v)));
            (hi - lo < 0.1).then(|| format!("{}: flat image ({lo}..{hi})", s.id))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} failures, e.g. {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
}

#[test]
fn all_1000_raw_images_load() {
    let Some(rsna) = rsna_dir() else {
        return skip("all_1000_raw_images_load");
    };
    load_all(&rsna.join("raw"), 1000, 200);
    let ds = Dataset::open_dir(rsna.join("raw")).unwrap();
    assert_eq!(
        ds.samples.iter().filter(|s| s.sex == Sex::Male).count(),
        533
    );
}

#[test]
fn all_40_registered_images_load_at_canvas_size() {
    let Some(rsna) = rsna_dir() else {
        return skip("all_40_registered_images_load_at_canvas_size");
    };
    load_all(&rsna.join("registered"), 40, 1600);
    let ds = Dataset::open_dir(rsna.join("registered")).unwrap();
    for s in &ds.samples {
        let r = read_radiograph(ds.image_path(s)).unwrap();
        assert_eq!(
            (r.pixels.width(), r.pixels.height()),
            (1600, 2080),
            "{}",
            s.id
        );
    }
}
