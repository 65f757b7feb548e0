//! RSNA-style datasets: a folder of `<id>.png` images and a labels CSV, plus a
//! sex-stratified, seeded train/validation split.

use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::domain::Sex;
use crate::error::{Error, Result};

/// One labelled radiograph.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Sample {
    /// The image id; the image is `<id>.png` in the dataset folder.
    pub id: String,
    /// Bone age in months (Greulich–Pyle reading).
    pub boneage_months: f64,
    /// Patient sex.
    pub sex: Sex,
}

/// A labels table and the folder its images live in (or several pooled).
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Folder of `<id>.png` images (the first folder of a pooled dataset).
    pub image_dir: PathBuf,
    /// The labelled samples, in file order.
    pub samples: Vec<Sample>,
    /// For a pooled dataset ([`Dataset::open_dirs`]): the folder of each sample that
    /// is not in `image_dir`.
    pub elsewhere: std::collections::BTreeMap<String, PathBuf>,
}

impl Dataset {
    /// Opens a dataset from its labels CSV and image folder. Images are not read;
    /// use [`Dataset::image_path`] and [`crate::read_radiograph`].
    pub fn open(labels_csv: impl AsRef<Path>, image_dir: impl AsRef<Path>) -> Result<Self> {
        Ok(Self {
            image_dir: image_dir.as_ref().to_path_buf(),
            samples: read_labels(labels_csv)?,
            elsewhere: Default::default(),
        })
    }

    /// The labelled images of several folders (each as [`Dataset::open_dir`]) as one
    /// dataset, in folder order; an id in two folders is an error naming both.
    pub fn open_dirs(dirs: &[PathBuf]) -> Result<Self> {
        let (first, rest) = dirs
            .split_first()
            .ok_or_else(|| Error::InvalidArgument("no dataset folder given".into()))?;
        let mut ds = Self::open_dir(first)?;
        let mut seen: std::collections::BTreeSet<String> =
            ds.samples.iter().map(|s| s.id.clone()).collect();
        for dir in rest {
            for s in Self::open_dir(dir)?.samples {
                if !seen.insert(s.id.clone()) {
                    let before = ds.elsewhere.get(&s.id).unwrap_or(&ds.image_dir);
                    return Err(Error::Table {
                        path: dir.clone(),
                        detail: format!(
                            "id {} is also in {}: pooled datasets need distinct ids",
                            s.id,
                            before.display()
                        ),
                    });
                }
                ds.elsewhere.insert(s.id.clone(), dir.clone());
                ds.samples.push(s);
            }
        }
        Ok(ds)
    }

    /// Opens the usual layouts: `DIR/labels.csv` with images in `DIR` (phantoms),
    /// or `DIR.csv` beside `DIR` (as in `../shared/data/rsna/raw` + `raw.csv`).
    pub fn open_dir(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let inside = dir.join("labels.csv");
        let beside = dir.with_extension("csv");
        let labels = if inside.is_file() {
            inside
        } else if beside.is_file() {
            beside
        } else {
            return Err(Error::Table {
                path: dir.to_path_buf(),
                detail: format!(
                    "no labels file: looked for {} and {}",
                    inside.display(),
                    beside.display()
                ),
            });
        };
        Self::open(labels, dir)
    }

    /// The image file of a sample.
    pub fn image_path(&self, sample: &Sample) -> PathBuf {
        self.elsewhere
            .get(&sample.id)
            .unwrap_or(&self.image_dir)
            .join(format!("{}.png", sample.id))
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum SexColumn {
    /// A boolean `male` column.
    Male(usize),
    /// A `Sex` column with M/F.
    Letter(usize),
}

/// Normalises a header: lower case, letters and digits only.
fn key(header: &str) -> String {
    header
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Reads an RSNA labels CSV in any of its published spellings:
/// `id,boneage,male` (True/False or true/false), `Case ID,Sex,Ground truth bone age (months)`
/// (M/F), `Image ID,male,Bone Age (months)`.
pub fn read_labels(path: impl AsRef<Path>) -> Result<Vec<Sample>> {
    let path = path.as_ref();
    let table = |detail: String| Error::Table {
        path: path.to_path_buf(),
        detail,
    };
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(std::io::BufReader::new(file));
    let headers = reader
        .headers()
        .map_err(|e| table(format!("cannot read the header line: {e}")))?
        .clone();
    let (mut id_col, mut age_col, mut sex_col) = (None, None, None);
    let mut not_understood = Vec::new();
    for (i, h) in headers.iter().enumerate() {
        match key(h).as_str() {
            "id" | "caseid" | "imageid" => id_col = Some(i),
            "boneage" | "boneagemonths" | "groundtruthboneagemonths" | "groundtruthboneage" => {
                age_col = Some(i)
            }
            "male" => sex_col = Some(SexColumn::Male(i)),
            "sex" | "gender" => sex_col = Some(SexColumn::Letter(i)),
            _ => not_understood.push(format!("{h:?}")),
        }
    }
    let missing: Vec<&str> = [
        id_col
            .is_none()
            .then_some("an id column (id, Case ID, Image ID)"),
        age_col.is_none().then_some(
            "a bone age column (boneage, Bone Age (months), Ground truth bone age (months))",
        ),
        sex_col
            .is_none()
            .then_some("a sex column (male as true/false, or Sex as M/F)"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !missing.is_empty() {
        let extra = if not_understood.is_empty() {
            String::new()
        } else {
            format!("; column(s) not understood: {}", not_understood.join(", "))
        };
        return Err(table(format!("missing {}{extra}", missing.join(" and "))));
    }
    let (id_col, age_col, sex_col) = (id_col.unwrap(), age_col.unwrap(), sex_col.unwrap());

    let mut samples = Vec::new();
    for (row, record) in reader.records().enumerate() {
        let line = row + 2;
        let record = record.map_err(|e| table(format!("line {line}: {e}")))?;
        let field = |i: usize| record.get(i).unwrap_or("");
        let id = field(id_col).to_string();
        if id.is_empty() {
            return Err(table(format!("line {line}: empty id")));
        }
        let age_text = field(age_col);
        let boneage_months: f64 = age_text
            .parse()
            .ok()
            .filter(|a: &f64| a.is_finite() && *a >= 0.0)
            .ok_or_else(|| {
                table(format!(
                    "line {line}: bone age {age_text:?} in column {:?} is not a number of months",
                    &headers[age_col]
                ))
            })?;
        let sex = match sex_col {
            SexColumn::Male(i) => match field(i).to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "t" => Sex::Male,
                "false" | "0" | "no" | "f" => Sex::Female,
                other => {
                    return Err(table(format!(
                        "line {line}: {other:?} in column {:?} is not true/false",
                        &headers[i]
                    )));
                }
            },
            SexColumn::Letter(i) => match field(i).to_ascii_uppercase().as_str() {
                "M" | "MALE" => Sex::Male,
                "F" | "FEMALE" => Sex::Female,
                other => {
                    return Err(table(format!(
                        "line {line}: {other:?} in column {:?} is not M or F",
                        &headers[i]
                    )));
                }
            },
        };
        samples.push(Sample {
            id,
            boneage_months,
            sex,
        });
    }
    Ok(samples)
}

/// Writes labels as `id,boneage,male` (the RSNA training-set spelling), atomically.
pub fn write_labels(path: &Path, samples: &[Sample]) -> Result<()> {
    crate::io::write_atomic(path, |w| {
        use std::io::Write;
        writeln!(w, "id,boneage,male")?;
        for s in samples {
            writeln!(w, "{},{},{}", s.id, s.boneage_months, s.sex.is_male())?;
        }
        Ok(())
    })
}

/// Suffix of hand-mask files in label folders: `<id>.mask.png`, so that a mask is
/// never taken for a film named by its id.
pub const MASK_SUFFIX: &str = ".mask.png";

/// Where a label folder keeps the hand mask of image `id`.
pub fn mask_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}{MASK_SUFFIX}"))
}

/// The hand mask of image `id` in `dir`, if there is one: `<id>.mask.png` (label
/// folders) or `<id>.png` (the phantom generator's `masks/`).
pub fn find_mask(dir: &Path, id: &str) -> Option<PathBuf> {
    [mask_path(dir, id), dir.join(format!("{id}.png"))]
        .into_iter()
        .find(|p| p.is_file())
}

/// The file of region `region`'s crop of image `id` in a crops folder (`boneage
/// preprocess --out`): `<id>_A.png`, `<id>_B.png`, `<id>_C.png`.
pub fn crop_path(dir: &Path, id: &str, region: crate::registration::Region) -> PathBuf {
    dir.join(format!("{id}_{}.png", region.name()))
}

/// The registered canvas a crops folder (`boneage preprocess --out`) was cut from:
/// the size of its registered hands (`<id>.png` beside `<id>_A.png`), checked against
/// the size of that film's region A crop. The film with the smallest id decides.
pub fn crops_canvas(dir: &Path) -> Result<crate::registration::Canvas> {
    use crate::registration::{Canvas, Region};
    let table = |detail: String| Error::Table {
        path: dir.to_path_buf(),
        detail,
    };
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let id = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|name| name.strip_suffix("_A.png").map(str::to_string))
        .filter(|id| dir.join(format!("{id}.png")).is_file())
        .min()
        .ok_or_else(|| {
            table(
                "no region crops here (`<id>_A.png` beside the registered hand `<id>.png`, \
                 as `boneage preprocess --out` writes them)"
                    .into(),
            )
        })?;
    let size = |path: &Path| {
        image::image_dimensions(path).map_err(|e| Error::Corrupt {
            path: path.to_path_buf(),
            format: "PNG",
            detail: e.to_string(),
        })
    };
    let (w, h) = size(&dir.join(format!("{id}.png")))?;
    let canvas = Canvas::new(w as usize, h as usize)?;
    let a = canvas.region(Region::A);
    let crop = size(&crop_path(dir, &id, Region::A))?;
    if crop != (a.w as u32, a.h as u32) {
        return Err(table(format!(
            "{id}_A.png is {}x{}, but region A of the {w}x{h} registered hand {id}.png is \
             {}x{}: not a folder written by `boneage preprocess`",
            crop.0, crop.1, a.w, a.h
        )));
    }
    Ok(canvas)
}

/// Image ids, one per line (`#` starts a comment): hold-out lists and the like.
pub fn read_id_list(path: &Path) -> Result<std::collections::BTreeSet<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    Ok(text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

/// A short fingerprint of a list of samples' ids (`N ids HASH`, FNV-1a), so that a
/// cache made for one split is never taken for another.
pub fn ids_fingerprint(samples: &[Sample]) -> String {
    let h = fnv1a(samples.iter().flat_map(|s| s.id.bytes().chain([b','])));
    format!("{} ids {h:016x}", samples.len())
}

/// A short fingerprint of a folder's files, names and contents (`N files HASH`,
/// FNV-1a, in name order; subfolders left out), so that a cache made from a folder
/// of labels is never taken for the same folder edited.
pub fn folder_fingerprint(dir: &Path) -> Result<String> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        if path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    // Each file as its name, its length and its bytes, so that no two folders
    // run together into the same stream.
    let mut parts = Vec::with_capacity(files.len());
    for path in &files {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let name = path
            .file_name()
            .unwrap_or_default()
            .as_encoded_bytes()
            .to_vec();
        parts.push((name, bytes));
    }
    let h = fnv1a(parts.iter().flat_map(|(name, bytes)| {
        let len = (bytes.len() as u64).to_le_bytes();
        name.iter()
            .copied()
            .chain([0])
            .chain(len)
            .chain(bytes.iter().copied())
    }));
    Ok(format!("{} files {h:016x}", files.len()))
}

/// The 64-bit FNV-1a hash of `bytes`: stable across runs and platforms (a cache's
/// fingerprint, a seed drawn from an id).
pub fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

/// Indices of a train/validation split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    /// Indices into the sample list used for training.
    pub train: Vec<usize>,
    /// Indices held out for validation.
    pub validation: Vec<usize>,
}

/// Assigns each sample to one of `k` folds (0-based), stratified by sex and age: within
/// each sex the samples are sorted by bone age and taken `k` at a time, and each run
/// of `k` is dealt to the folds in a seeded random order. Every fold then gets each
/// sex in proportion and the whole age range; fold sizes differ by at most one per
/// sex. The same samples and seed always give the same folds.
pub fn assign_folds(samples: &[Sample], k: usize, seed: u64) -> Result<Vec<usize>> {
    if k < 2 || k > samples.len() {
        return Err(Error::InvalidArgument(format!(
            "cannot make {k} folds of {} samples: use 2 to {}",
            samples.len(),
            samples.len()
        )));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut fold = vec![0; samples.len()];
    // Where the next partial run (the last, shorter one of a sex) starts, so that the
    // partial runs of the two sexes do not both fall on the first folds.
    let mut start = 0;
    for sex in [Sex::Male, Sex::Female] {
        let mut idx: Vec<usize> = (0..samples.len())
            .filter(|&i| samples[i].sex == sex)
            .collect();
        idx.sort_by(|&a, &b| {
            samples[a]
                .boneage_months
                .total_cmp(&samples[b].boneage_months)
                .then_with(|| samples[a].id.cmp(&samples[b].id))
        });
        for run in idx.chunks(k) {
            let mut order: Vec<usize> = (0..k).collect();
            order.shuffle(&mut rng);
            if run.len() < k {
                order = (0..run.len()).map(|j| (start + j) % k).collect();
                start = (start + run.len()) % k;
            }
            for (&i, &f) in run.iter().zip(&order) {
                fold[i] = f;
            }
        }
    }
    Ok(fold)
}

/// A sex-stratified, seeded split that holds out `n_validation` samples, each sex in
/// proportion to its share. The same samples and seed always give the same split.
pub fn split_stratified(samples: &[Sample], n_validation: usize, seed: u64) -> Result<Split> {
    if n_validation > samples.len() {
        return Err(Error::InvalidArgument(format!(
            "cannot hold out {n_validation} of {} samples",
            samples.len()
        )));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut validation = Vec::with_capacity(n_validation);
    let mut train = Vec::with_capacity(samples.len() - n_validation);
    let n_male = samples.iter().filter(|s| s.sex == Sex::Male).count();
    let val_male =
        ((n_validation as f64) * n_male as f64 / samples.len().max(1) as f64).round() as usize;
    let val_male = val_male
        .min(n_male)
        .max(n_validation.saturating_sub(samples.len() - n_male));
    for (sex, n_val) in [
        (Sex::Male, val_male),
        (Sex::Female, n_validation - val_male),
    ] {
        let mut idx: Vec<usize> = (0..samples.len())
            .filter(|&i| samples[i].sex == sex)
            .collect();
        idx.shuffle(&mut rng);
        validation.extend_from_slice(&idx[..n_val]);
        train.extend_from_slice(&idx[n_val..]);
    }
    validation.sort_unstable();
    train.sort_unstable();
    Ok(Split { train, validation })
}
