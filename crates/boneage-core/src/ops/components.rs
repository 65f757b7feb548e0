//! Connected components and hole filling.

use crate::image::Mask;

/// Pixel adjacency.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Connectivity {
    /// Edge neighbours only.
    Four,
    /// Edge and corner neighbours.
    Eight,
}

fn find(parent: &mut [u32], mut x: u32) -> u32 {
    while parent[x as usize] != x {
        parent[x as usize] = parent[parent[x as usize] as usize];
        x = parent[x as usize];
    }
    x
}

fn union(parent: &mut [u32], a: u32, b: u32) -> u32 {
    let (ra, rb) = (find(parent, a), find(parent, b));
    let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
    parent[hi as usize] = lo;
    lo
}

/// A horizontal run of equal pixels: row, columns `[start, end)`, component label.
#[derive(Clone, Copy, Debug)]
struct Run {
    y: usize,
    start: usize,
    end: usize,
    label: u32,
}

/// Labels the runs of pixels equal to `value`: runs in raster order with their
/// final component numbers (1..=count, in order of first appearance), and the count.
/// Run-based: union–find works per run, not per pixel.
fn label_runs(mask: &Mask, value: u8, conn: Connectivity) -> (Vec<Run>, u32) {
    let (w, h) = (mask.width(), mask.height());
    let m = mask.as_slice();
    let mut runs: Vec<Run> = Vec::new();
    let mut parent: Vec<u32> = vec![0];
    // 8-connectivity also joins runs that touch diagonally.
    let reach = if conn == Connectivity::Eight { 1 } else { 0 };
    let mut prev = 0..0; // indices into `runs` of the previous row
    for y in 0..h {
        let row = &m[y * w..(y + 1) * w];
        let first = runs.len();
        let mut j = prev.start;
        let mut x = 0;
        while x < w {
            if row[x] != value {
                x += 1;
                continue;
            }
            let start = x;
            while x < w && row[x] == value {
                x += 1;
            }
            let end = x;
            // Previous-row runs overlapping [start - reach, end + reach).
            while j < prev.end && runs[j].end + reach <= start {
                j += 1;
            }
            let mut label = 0u32;
            let mut k = j;
            while k < prev.end && runs[k].start < end + reach {
                let l = runs[k].label;
                label = if label == 0 {
                    l
                } else if l != label {
                    union(&mut parent, label, l)
                } else {
                    label
                };
                k += 1;
            }
            if label == 0 {
                label = parent.len() as u32;
                parent.push(label);
            }
            runs.push(Run {
                y,
                start,
                end,
                label,
            });
        }
        prev = first..runs.len();
    }
    // Unions always point a label at a smaller one, so one pass in order flattens
    // the table; then number the roots in order of first appearance.
    let n = parent.len();
    let mut root = vec![0u32; n];
    for l in 1..n {
        let p = find(&mut parent, l as u32) as usize;
        root[l] = if p == l { l as u32 } else { root[p] };
    }
    let mut number = vec![0u32; n];
    let mut count = 0u32;
    for r in runs.iter_mut() {
        let rt = root[r.label as usize] as usize;
        if number[rt] == 0 {
            count += 1;
            number[rt] = count;
        }
        r.label = number[rt];
    }
    (runs, count)
}

/// Labels the connected components of `mask`: 0 is background, components are
/// numbered 1..=count in raster order of their first pixel.
pub fn label_components(mask: &Mask, conn: Connectivity) -> (Vec<u32>, u32) {
    let (runs, count) = label_runs(mask, 1, conn);
    let w = mask.width();
    let mut labels = vec![0u32; w * mask.height()];
    for r in &runs {
        labels[r.y * w + r.start..r.y * w + r.end].fill(r.label);
    }
    (labels, count)
}

/// Keeps only the largest connected component (the first in raster order on ties).
pub fn largest_component(mask: &Mask, conn: Connectivity) -> Mask {
    let (runs, count) = label_runs(mask, 1, conn);
    let mut out = Mask::new(mask.width(), mask.height());
    if count == 0 {
        return out;
    }
    let sizes = label_sizes(&runs, count);
    let best = (1..=count as usize)
        .max_by_key(|&l| (sizes[l], std::cmp::Reverse(l)))
        .unwrap() as u32;
    let w = mask.width();
    let data = out.as_mut_slice();
    for r in runs.iter().filter(|r| r.label == best) {
        data[r.y * w + r.start..r.y * w + r.end].fill(1);
    }
    out
}

/// Pixels of each label of `runs` (index 0 unused).
fn label_sizes(runs: &[Run], count: u32) -> Vec<usize> {
    let mut sizes = vec![0usize; count as usize + 1];
    for r in runs {
        sizes[r.label as usize] += r.end - r.start;
    }
    sizes
}

/// The sizes in pixels of the connected components of `mask`, largest first.
pub fn component_sizes(mask: &Mask, conn: Connectivity) -> Vec<usize> {
    let (runs, count) = label_runs(mask, 1, conn);
    let mut sizes = label_sizes(&runs, count);
    sizes.remove(0);
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    sizes
}

/// Fills holes: background regions not connected (4-connectivity) to the image
/// border become foreground.
pub fn fill_holes(mask: &Mask) -> Mask {
    let (w, h) = (mask.width(), mask.height());
    let (runs, count) = label_runs(mask, 0, Connectivity::Four);
    let mut outside = vec![false; count as usize + 1];
    for r in &runs {
        if r.y == 0 || r.y + 1 == h || r.start == 0 || r.end == w {
            outside[r.label as usize] = true;
        }
    }
    let mut out = Mask::from_vec(w, h, vec![1; w * h]).expect("sizes match");
    let data = out.as_mut_slice();
    for r in runs.iter().filter(|r| outside[r.label as usize]) {
        data[r.y * w + r.start..r.y * w + r.end].fill(0);
    }
    out
}
