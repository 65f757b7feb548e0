//! Weights on disk: `NAME.safetensors` beside a `NAME.json` manifest that says what
//! the weights are (which network, its exact config, input size, normalisation, sex,
//! region, the data it was trained on, its metrics). Loading checks the manifest
//! against the network the caller expects and refuses a mismatch with a clear error,
//! instead of silently filling a different network.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use boneage_core::registration::Canvas;
use boneage_core::{Cohort, NetKind, View};
use burn::module::Module;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use serde::{Deserialize, Serialize};

/// Version of the manifest layout.
pub const MANIFEST_VERSION: u32 = 1;

/// What a weights file holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Layout version ([`MANIFEST_VERSION`]).
    pub version: u32,
    /// Which network (`"unet"`, `"keypoints"` or `"age"` in the file).
    pub net: NetKind,
    /// The network's config exactly as its `Config` serialises it.
    pub config: serde_json::Value,
    /// Input (height, width).
    pub input: [usize; 2],
    /// How inputs are normalised, in words.
    pub normalization: String,
    /// Cohort (`"M"`, `"F"` or `"mixed"` in the file); `None` where it does not apply.
    #[serde(with = "boneage_core::domain::cohort_code")]
    pub sex: Option<Cohort>,
    /// What a bone-age net reads (`"A"`, `"B"`, `"C"` or `"whole"`); `None` where it
    /// does not apply.
    pub region: Option<View>,
    /// The registered canvas a bone-age net's region crops were cut from; absent
    /// (older manifests, and nets that read no region): the CPU canvas, 400×520.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canvas: Option<Canvas>,
    /// A bone-age net's number among the models of its region, head and cohort in one
    /// ensemble: absent for the first, 2, 3, … for further ones (`boneage export
    /// --variant`; the folder then names it `A-reg-mixed-2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<u8>,
    /// The data it was trained on, in words (dataset, size, split seed).
    pub trained_on: String,
    /// Metrics by name (e.g. `val_mae_months`).
    pub metrics: BTreeMap<String, f64>,
}

/// What can go wrong with weights files.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// A file could not be read or written.
    #[error("{}: {cause}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause (in the message, not chained).
        cause: std::io::Error,
    },
    /// The manifest is not valid JSON of the expected layout.
    #[error("{}: not a boneage weights manifest: {detail}", path.display())]
    Manifest {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The manifest describes another network than the one expected.
    #[error("{}: holds {found}, but {expected} was expected", path.display())]
    Mismatch {
        /// The manifest file.
        path: PathBuf,
        /// What the manifest says.
        found: String,
        /// What the caller asked for.
        expected: String,
    },
    /// The tensors could not be read or do not fit the network.
    #[error("{}: {detail}", path.display())]
    Tensors {
        /// The weights file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// The check after registration's template could not be read (the message names
    /// the file).
    #[error("{0}")]
    Template(String),
}

/// The manifest path beside a weights path (`x.safetensors` → `x.json`).
pub fn manifest_path(weights: &Path) -> PathBuf {
    weights.with_extension("json")
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> WeightsError + '_ {
    move |cause| WeightsError::Io {
        path: path.to_path_buf(),
        cause,
    }
}

/// Saves `model` to `weights` (safetensors) and its manifest beside it, each written
/// to a temporary file first and renamed, so that a failure leaves no half-written file.
pub fn save<M: Module>(model: &M, manifest: &Manifest, weights: &Path) -> Result<(), WeightsError> {
    let tmp = weights.with_extension("safetensors.tmp");
    let mut store = SafetensorsStore::from_file(&tmp).metadata("boneage-net", manifest.net.code());
    model
        .save_into(&mut store)
        .map_err(|e| WeightsError::Tensors {
            path: weights.to_path_buf(),
            detail: format!("cannot write the tensors: {e}"),
        })?;
    std::fs::rename(&tmp, weights).map_err(io(weights))?;
    write_manifest(weights, manifest)
}

/// Writes `manifest` beside `weights` (a temporary file, then renamed).
pub fn write_manifest(weights: &Path, manifest: &Manifest) -> Result<(), WeightsError> {
    let json = serde_json::to_string_pretty(manifest).expect("a manifest serialises");
    let mpath = manifest_path(weights);
    let mtmp = mpath.with_extension("json.tmp");
    std::fs::write(&mtmp, json).map_err(io(&mtmp))?;
    std::fs::rename(&mtmp, &mpath).map_err(io(&mpath))
}

/// Reads the manifest beside `weights`.
pub fn read_manifest(weights: &Path) -> Result<Manifest, WeightsError> {
    let path = manifest_path(weights);
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    let m: Manifest = serde_json::from_str(&text).map_err(|e| WeightsError::Manifest {
        path: path.clone(),
        detail: e.to_string(),
    })?;
    if m.version != MANIFEST_VERSION {
        return Err(WeightsError::Manifest {
            path,
            detail: format!(
                "manifest version {} (this boneage reads {MANIFEST_VERSION})",
                m.version
            ),
        });
    }
    Ok(m)
}

/// `config` without the keys whose value is null, at every depth: a manifest written
/// before a choice existed lacks the key that a newer one writes as null, and both
/// mean the same.
fn without_nulls(config: &serde_json::Value) -> serde_json::Value {
    match config {
        serde_json::Value::Object(fields) => serde_json::Value::Object(
            fields
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Loads `weights` into `model`, which must have been built from the config that
/// `expected` describes: the manifest's net, config and input must match it exactly,
/// and every tensor must be present with its shape.
pub fn load<M: Module>(
    mut model: M,
    weights: &Path,
    expected: &Manifest,
) -> Result<M, WeightsError> {
    let found = read_manifest(weights)?;
    let describe = |m: &Manifest| {
        format!(
            "a {} net for {}x{} input with config {}",
            m.net, m.input[0], m.input[1], m.config
        )
    };
    if found.net != expected.net
        || without_nulls(&found.config) != without_nulls(&expected.config)
        || found.input != expected.input
    {
        return Err(WeightsError::Mismatch {
            path: manifest_path(weights),
            found: describe(&found),
            expected: describe(expected),
        });
    }
    let tensors = |detail: String| WeightsError::Tensors {
        path: weights.to_path_buf(),
        detail,
    };
    let bytes = std::fs::read(weights).map_err(io(weights))?;
    let result = match tensors_of(&bytes).map_err(tensors)? {
        // The usual case, read in one pass: burn's safetensors store parses the
        // header again for every tensor it hands out (0.1 s for an EfficientNet).
        Some(found) => model.apply(found, None, None, false),
        None => {
            // Half-precision and 8-bit files (see [`store_as`]) are widened to f32
            // in memory: the networks compute in f32.
            let bytes = match convert_floats(&bytes, Precision::F32).map_err(tensors)? {
                Some(wide) => wide,
                None => bytes,
            };
            let mut store = SafetensorsStore::from_bytes(Some(bytes))
                .validate(true)
                .allow_partial(false);
            model
                .load_from(&mut store)
                .map_err(|e| tensors(format!("cannot read the tensors: {e}")))?
        }
    };
    let problems = misfits(&result);
    if !problems.is_empty() {
        return Err(tensors(format!(
            "the tensors do not fit the network: {}",
            problems.join("; ")
        )));
    }
    Ok(model)
}

/// What kept a store's tensors from fitting a module: each error, and each of the
/// module's tensors the store lacked ("missing PATH"). Empty when all fitted.
pub(crate) fn misfits(result: &burn::store::ApplyResult) -> Vec<String> {
    let mut problems: Vec<String> = result.errors.iter().map(|e| format!("{e:?}")).collect();
    problems.extend(result.missing.iter().map(|(p, _)| format!("missing {p}")));
    problems
}

/// Storage precision of floating-point tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    /// 32-bit floats, as the networks compute.
    F32,
    /// 16-bit floats: half the size on disk.
    F16,
    /// The head in 8 bits, the rest in 16: the weights of the linear layers and of
    /// the 1×1 convolution before the global pooling (tensors of rank 2, and those
    /// named `…head.conv.weight`) as 8-bit integers with one scale per output channel
    /// (slice of the first dimension); every other tensor as 16-bit floats. About
    /// 10 % smaller than [`Precision::F16`] for an EfficientNet-Lite0 age model.
    ///
    /// Only the head: rounding the backbone's convolutions to 8 bits moved the
    /// shipped models' ages by 2–4 months on average (the depthwise layers, followed
    /// by batch norm, amplify it), the head alone by 0.02–0.03 months (77 films,
    /// `docs/cv/canvas-800.md`); [`Precision::WideI8`] rounds the wide 1×1
    /// convolutions too, which costs little.
    HeadI8,
    /// As [`Precision::HeadI8`], and the wide 1×1 convolutions too: those of at
    /// least [`WIDE_VALUES`] weights (an EfficientNet-Lite0's expansions and
    /// projections in its last three stages, 2.5 M of its 3.4 M weights). An age
    /// model takes 4.3 MB instead of 6.8; on 120 films its ages moved by 0.25 months
    /// on average (0.02 in the mean, 1.1 at most), where every 1×1 convolution in 8
    /// bits moved them by 0.9 (0.6 in the mean): the narrow early layers are the
    /// sensitive ones.
    WideI8,
}

/// The fewest weights of a 1×1 convolution that [`Precision::WideI8`] stores in 8 bits.
pub const WIDE_VALUES: usize = 50_000;

/// Whether [`Precision::HeadI8`] stores tensor `name` of `shape` in 8 bits.
pub fn head_in_8_bits(name: &str, shape: &[usize]) -> bool {
    let values: usize = shape.iter().product();
    values >= 64 && (shape.len() == 2 || name.ends_with("head.conv.weight"))
}

/// Whether [`Precision::WideI8`] stores tensor `name` of `shape` in 8 bits: the
/// head's tensors, and 1×1 convolutions of at least [`WIDE_VALUES`] weights.
pub fn wide_in_8_bits(name: &str, shape: &[usize]) -> bool {
    let values: usize = shape.iter().product();
    head_in_8_bits(name, shape) || (matches!(shape, [_, _, 1, 1]) && values >= WIDE_VALUES)
}

/// Suffix of the tensor holding an 8-bit tensor's scales (f32, one per slice of the
/// first dimension): value = scale × stored integer.
pub const I8_SCALE_SUFFIX: &str = ".i8-scale";

/// A safetensors buffer's header (JSON object: name → dtype, shape, data offsets;
/// `__metadata__`) and its data section.
fn split_safetensors(
    bytes: &[u8],
) -> Result<(serde_json::Map<String, serde_json::Value>, &[u8]), String> {
    let bad = |d: &str| format!("not a safetensors file: {d}");
    let n = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")) as usize)
        .ok_or_else(|| bad("shorter than its header length"))?;
    let header = bytes
        .get(8..8usize.saturating_add(n))
        .ok_or_else(|| bad("header runs past the end"))?;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(header).map_err(|e| bad(&format!("header is not JSON: {e}")))?;
    Ok((header, &bytes[8 + n..]))
}

/// The tensors of a header that hold values (not the metadata, not the scales of
/// 8-bit tensors).
fn value_tensors(
    header: &serde_json::Map<String, serde_json::Value>,
) -> impl Iterator<Item = (&String, &serde_json::Value)> {
    header
        .iter()
        .filter(|(k, _)| *k != "__metadata__" && !k.ends_with(I8_SCALE_SUFFIX))
}

/// The raw bytes and shape of tensor `name`, checked against its dtype's width.
fn raw_of<'a>(
    name: &str,
    v: &serde_json::Value,
    data: &'a [u8],
    width: usize,
) -> Result<(Vec<usize>, &'a [u8]), String> {
    let bad = |d: &str| format!("not a safetensors file: tensor {name} {d}");
    let shape: Vec<usize> = v["shape"]
        .as_array()
        .and_then(|a| a.iter().map(|d| d.as_u64().map(|d| d as usize)).collect())
        .ok_or_else(|| bad("has no shape"))?;
    let offsets = v["data_offsets"].as_array();
    let at = |i: usize| offsets.and_then(|o| o.get(i)).and_then(|x| x.as_u64());
    let (Some(start), Some(end)) = (at(0), at(1)) else {
        return Err(bad("has no data offsets"));
    };
    let raw = data
        .get(start as usize..end as usize)
        .filter(|r| r.len() == shape.iter().product::<usize>() * width)
        .ok_or_else(|| bad("lies outside the file or does not match its shape"))?;
    Ok((shape, raw))
}

/// A tensor's shape and values.
type ShapedFloats = (Vec<usize>, Vec<f32>);

/// Tensor `name`'s values as f32 with its shape (F16 widened, I8 scaled back), or
/// `None` when its dtype is none of F32, F16 and I8.
fn floats_of(
    name: &str,
    v: &serde_json::Value,
    header: &serde_json::Map<String, serde_json::Value>,
    data: &[u8],
) -> Result<Option<ShapedFloats>, String> {
    Ok(Some(match v["dtype"].as_str() {
        Some("F32") => {
            let (shape, raw) = raw_of(name, v, data, 4)?;
            let values = raw
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            (shape, values)
        }
        Some("F16") => {
            let (shape, raw) = raw_of(name, v, data, 2)?;
            let values = raw
                .chunks_exact(2)
                .map(|c| half::f16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f32())
                .collect();
            (shape, values)
        }
        Some("I8") => {
            let (shape, raw) = raw_of(name, v, data, 1)?;
            let scale_name = format!("{name}{I8_SCALE_SUFFIX}");
            let scales = match header.get(&scale_name) {
                Some(sv) if sv["dtype"] == "F32" => raw_of(&scale_name, sv, data, 4)?.1,
                _ => {
                    return Err(format!(
                        "not a safetensors file: 8-bit tensor {name} has no f32 scales {scale_name}"
                    ));
                }
            };
            let rows = shape.first().copied().unwrap_or(1).max(1);
            if scales.len() != rows * 4 {
                return Err(format!(
                    "not a safetensors file: {scale_name} holds {} scales for {rows} slices",
                    scales.len() / 4
                ));
            }
            let per_row = (raw.len() / rows).max(1);
            let values = raw
                .chunks(per_row)
                .zip(scales.chunks_exact(4))
                .flat_map(|(row, c)| {
                    let scale = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                    row.iter().map(move |&q| scale * f32::from(q as i8))
                })
                .collect();
            (shape, values)
        }
        _ => return Ok(None),
    }))
}

/// Every tensor of a safetensors buffer as f32 (F16 widened, I8 scaled back), or
/// `None` when some tensor has another dtype (burn's store reads those).
fn tensors_of(bytes: &[u8]) -> Result<Option<Vec<burn::store::burn_pack::Tensor>>, String> {
    let (header, data) = split_safetensors(bytes)?;
    let mut out = Vec::with_capacity(header.len());
    for (name, v) in value_tensors(&header) {
        let Some((shape, values)) = floats_of(name, v, &header, data)? else {
            return Ok(None);
        };
        let data = burn::tensor::TensorData::new(values, shape);
        out.push(burn::store::bridge::from_data(data, name.clone(), None));
    }
    Ok(Some(out))
}

/// `values` (a tensor of `shape`) as symmetric 8-bit integers with one f32 scale per
/// slice of the first dimension: the largest magnitude of each slice maps to ±127.
fn quantize_i8(shape: &[usize], values: &[f32]) -> (Vec<u8>, Vec<u8>) {
    let rows = shape.first().copied().unwrap_or(1).max(1);
    let per_row = values.len() / rows;
    let (mut q, mut scales) = (
        Vec::with_capacity(values.len()),
        Vec::with_capacity(rows * 4),
    );
    for row in values.chunks(per_row.max(1)) {
        let max = row.iter().fold(0f32, |m, v| m.max(v.abs()));
        let scale = max / 127.0;
        for v in row {
            let i = if scale > 0.0 {
                (v / scale).round().clamp(-127.0, 127.0) as i8
            } else {
                0
            };
            q.push(i as u8);
        }
        scales.extend_from_slice(&scale.to_le_bytes());
    }
    (q, scales)
}

/// The dtype `to` stores tensor `name` of `shape` in.
fn dtype_in(to: Precision, name: &str, shape: &[usize]) -> &'static str {
    match to {
        Precision::F32 => "F32",
        Precision::F16 => "F16",
        Precision::HeadI8 if head_in_8_bits(name, shape) => "I8",
        Precision::HeadI8 => "F16",
        Precision::WideI8 if wide_in_8_bits(name, shape) => "I8",
        Precision::WideI8 => "F16",
    }
}

/// Rewrites a safetensors buffer with every F32/F16/I8 tensor stored in `to`
/// precision; `None` when there is nothing to convert (read from the header alone).
/// Other dtypes and the metadata are kept.
pub fn convert_floats(bytes: &[u8], to: Precision) -> Result<Option<Vec<u8>>, String> {
    let (header, data) = split_safetensors(bytes)?;
    let changes = |(name, v): &(&String, &serde_json::Value)| {
        let shape: Vec<usize> = v["shape"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|d| d.as_u64())
                    .map(|d| d as usize)
                    .collect()
            })
            .unwrap_or_default();
        matches!(v["dtype"].as_str(), Some("F32" | "F16" | "I8"))
            && v["dtype"] != dtype_in(to, name, &shape)
    };
    if !value_tensors(&header).any(|e| changes(&e)) {
        return Ok(None);
    }
    let mut entries: Vec<(&String, &serde_json::Value)> = value_tensors(&header).collect();
    entries.sort_by_key(|(_, v)| v["data_offsets"][0].as_u64().unwrap_or(0));
    let mut out_header = serde_json::Map::new();
    if let Some(m) = header.get("__metadata__") {
        out_header.insert("__metadata__".into(), m.clone());
    }
    let mut out = Vec::with_capacity(data.len());
    let push = |out_header: &mut serde_json::Map<String, serde_json::Value>,
                out: &mut Vec<u8>,
                name: String,
                dtype: &str,
                shape: serde_json::Value,
                bytes: &[u8]| {
        let start = out.len();
        out.extend_from_slice(bytes);
        out_header.insert(
            name,
            serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [start, out.len()]}),
        );
    };
    for (name, v) in entries {
        let Some((shape, values)) = floats_of(name, v, &header, data)? else {
            let (s, e) = (
                v["data_offsets"][0].as_u64().unwrap_or(u64::MAX) as usize,
                v["data_offsets"][1].as_u64().unwrap_or(u64::MAX) as usize,
            );
            let raw = data.get(s..e).ok_or_else(|| {
                format!("not a safetensors file: tensor {name} lies outside the file")
            })?;
            push(
                &mut out_header,
                &mut out,
                name.clone(),
                v["dtype"].as_str().unwrap_or(""),
                v["shape"].clone(),
                raw,
            );
            continue;
        };
        let dtype = dtype_in(to, name, &shape);
        let (bytes, scales) = match dtype {
            "F32" => (values.iter().flat_map(|f| f.to_le_bytes()).collect(), None),
            "F16" => (
                values
                    .iter()
                    .flat_map(|&f| half::f16::from_f32(f).to_bits().to_le_bytes())
                    .collect(),
                None,
            ),
            _ => {
                let (q, scales) = quantize_i8(&shape, &values);
                (q, Some(scales))
            }
        };
        push(
            &mut out_header,
            &mut out,
            name.clone(),
            dtype,
            v["shape"].clone(),
            &bytes,
        );
        if let Some(scales) = scales {
            push(
                &mut out_header,
                &mut out,
                format!("{name}{I8_SCALE_SUFFIX}"),
                "F32",
                serde_json::json!([shape.first().copied().unwrap_or(1)]),
                &scales,
            );
        }
    }
    let mut h = serde_json::to_vec(&out_header).expect("header serialises");
    h.resize(h.len().div_ceil(8) * 8, b' ');
    let mut file = Vec::with_capacity(8 + h.len() + out.len());
    file.extend_from_slice(&(h.len() as u64).to_le_bytes());
    file.extend_from_slice(&h);
    file.extend_from_slice(&out);
    Ok(Some(file))
}

/// Copies weights `src` (with its manifest) to `dst` with the tensors stored in
/// `precision` (see [`Precision`]), written atomically; `load` widens them to f32
/// again. Returns the new size in bytes.
pub fn store_as(src: &Path, dst: &Path, precision: Precision) -> Result<u64, WeightsError> {
    let bytes = std::fs::read(src).map_err(io(src))?;
    let narrow = convert_floats(&bytes, precision)
        .map_err(|detail| WeightsError::Tensors {
            path: src.to_path_buf(),
            detail,
        })?
        .unwrap_or(bytes);
    let manifest = read_manifest(src)?;
    let write = |path: &Path, bytes: &[u8]| {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
        std::fs::rename(&tmp, path).map_err(io(path))
    };
    write(dst, &narrow)?;
    write_manifest(dst, &manifest)?;
    Ok(narrow.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key absent and a key null are the same config, at every depth; any other
    /// value differs.
    #[test]
    fn a_null_key_is_an_absent_one() {
        let old = serde_json::json!({"backbone": {"efficientnet": "lite0"}, "refines": "thumb"});
        let new = serde_json::json!({
            "backbone": {"efficientnet": "lite0", "cut": null},
            "refines": "thumb",
            "lite_stages": null
        });
        let cut = serde_json::json!({"backbone": {"efficientnet": "lite0"}, "refines": "thumb", "lite_stages": 4});
        assert_eq!(without_nulls(&old), without_nulls(&new));
        assert_ne!(without_nulls(&old), without_nulls(&cut));
    }
}
