//! The loss landscape of a whole trained network (Li et al. 2018, "Visualizing the Loss
//! Landscape of Neural Nets"): loss and accuracy on the plane θ + α·d₁ + β·d₂ through saved
//! parameters θ, with random filter-normalised directions, and on straight lines (from the
//! initial parameters to θ; between two seeds' solutions — is there a barrier?).
//!
//! Every grid point is one member of an ensemble sharing the data, so a plane of thousands of
//! points is a few ensemble forward passes, split over the cores.

use crate::data::Samples;
use crate::error::{Error, Result};
use crate::init::SeededRng;
use crate::models::{Net, ParamKind};
use crate::training::{evaluate, threads};
use serde::Serialize;
use std::path::Path;

/// A point of parameter space: one vector per parameter tensor, in the net's order.
pub use crate::models::params::{Point, of_model as parameters_of};

/// Model 0's parameters of `net`.
pub fn parameters(net: &Net<f32>) -> Point {
    parameters_of(net, 0)
}

/// A random direction normalised filter by filter as Li et al. define it: for each weight
/// tensor, each output unit's (row's, or conv filter's) slice of a standard normal draw is
/// scaled to the norm of θ's slice; biases get 0 unless `biases`, then they are normalised as
/// one filter.
pub fn filter_normalized(net: &Net<f32>, theta: &Point, seed: u64, biases: bool) -> Point {
    let mut rng = SeededRng::new(seed);
    net.params
        .iter()
        .zip(theta)
        .map(|((_, id, kind), t)| {
            let shape = &net.graph.shape(*id)[1..];
            let mut d: Vec<f32> = t.iter().map(|_| rng.normal() as f32).collect();
            let rows = match kind {
                ParamKind::Weight => shape.first().copied().unwrap_or(1).max(1),
                ParamKind::Bias | ParamKind::NormScale | ParamKind::NormShift if biases => 1,
                ParamKind::Bias | ParamKind::NormScale | ParamKind::NormShift => {
                    d.iter_mut().for_each(|v| *v = 0.0);
                    return d;
                }
            };
            let per = t.len() / rows;
            for (dr, tr) in d.chunks_exact_mut(per).zip(t.chunks_exact(per)) {
                let dn = dr.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt();
                let tn = tr.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt();
                let s = if dn > 0.0 { (tn / dn) as f32 } else { 0.0 };
                dr.iter_mut().for_each(|v| *v *= s);
            }
            d
        })
        .collect()
}

/// Loss and accuracy of the training data at each point `θ + Σ cᵢ·dᵢ` given as coefficient
/// lists, evaluated `chunk` points per ensemble on every core. `build(e)` makes a net of `e`
/// models whose batch divides the evaluation.
pub fn evaluate_points(
    build: &(dyn Fn(usize) -> Result<Net<f32>> + Sync),
    data: &Samples,
    theta: &Point,
    dirs: &[&Point],
    coefs: &[Vec<f64>],
    chunk: usize,
) -> Result<(Vec<f64>, Vec<f64>)> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let n = coefs.len();
    let parts: Vec<(usize, usize)> = (0..n).step_by(chunk.max(1)).map(|s| (s, chunk.min(n - s))).collect();
    let next = AtomicUsize::new(0);
    let out: Mutex<Vec<(usize, Vec<f64>, Vec<f64>)>> = Mutex::new(vec![]);
    let failed: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..threads().min(parts.len()).max(1) {
            scope.spawn(|| {
                loop {
                    let k = next.fetch_add(1, Ordering::SeqCst);
                    let Some(&(start, len)) = parts.get(k) else { break };
                    let r = build(len).map(|mut net| {
                        for (p, (_, id, _)) in net.params.clone().iter().enumerate() {
                            let v = net.graph.value_mut(*id);
                            let per = v.len() / len;
                            for m in 0..len {
                                let c = &coefs[start + m];
                                for (i, slot) in v[m * per..(m + 1) * per].iter_mut().enumerate() {
                                    let mut x = theta[p][i] as f64;
                                    for (d, &ci) in dirs.iter().zip(c) {
                                        x += ci * d[p][i] as f64;
                                    }
                                    *slot = x as f32;
                                }
                            }
                        }
                        // Buffers (BatchNorm's running estimates) stay θ's: evaluation mode.
                        let params = net.params.len();
                        for (b, (_, id, _)) in net.buffers.clone().iter().enumerate() {
                            let Some(t) = theta.get(params + b) else { break };
                            let v = net.graph.value_mut(*id);
                            let per = v.len() / len;
                            for m in 0..len {
                                v[m * per..(m + 1) * per].copy_from_slice(t);
                            }
                        }
                        let ev = evaluate(&mut net, data);
                        (start, ev.loss, ev.accuracy)
                    });
                    match r {
                        Ok(v) => out.lock().expect("no worker panics").push(v),
                        Err(e) => {
                            *failed.lock().expect("no worker panics") = Some(e);
                            break;
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = failed.into_inner().expect("workers are done") {
        return Err(e);
    }
    let (mut loss, mut acc) = (vec![f64::NAN; n], vec![f64::NAN; n]);
    for (start, l, a) in out.into_inner().expect("workers are done") {
        loss[start..start + l.len()].copy_from_slice(&l);
        acc[start..start + a.len()].copy_from_slice(&a);
    }
    Ok((loss, acc))
}

/// What a landscape run found.
#[derive(Clone, Debug, Serialize)]
pub struct LandscapeSummary {
    pub points: usize,
    pub span: f64,
    pub loss_at_params: f64,
    pub accuracy_at_params: f64,
    pub min_loss_on_plane: f64,
    pub max_loss_on_plane: f64,
    /// Per line: its name, the loss at both ends, and the barrier: the largest excess of the
    /// loss along the line over the straight interpolation of its ends.
    pub lines: Vec<LineSummary>,
    pub grid_seconds: f64,
    /// With a trajectory: the fraction of its variance the two principal directions explain.
    pub pca_explained_variance: Option<(f64, f64)>,
}

#[derive(Clone, Debug, Serialize)]
pub struct LineSummary {
    pub name: String,
    pub loss_start: f64,
    pub loss_end: f64,
    pub barrier: f64,
}

/// The landscape around one setting's solution, for the report.
#[derive(Clone, Debug, Serialize)]
pub struct SettingPlane {
    pub setting: String,
    pub loss_at_solution: f64,
    pub min_on_plane: f64,
    /// Share of the plane (α, β ∈ [−1, 1]) where the loss is within twice the solution's.
    pub share_within_2x: f64,
    pub barrier_to_seed_1: f64,
}

/// Evenly spaced values over `[-span, span]`.
pub fn axis(points: usize, span: f64) -> Vec<f64> {
    (0..points).map(|i| -span + 2.0 * span * i as f64 / (points - 1) as f64).collect()
}

/// The largest excess of `losses` (at `ts` from 0 to 1) over the chord between their ends.
pub fn barrier(ts: &[f64], losses: &[f64]) -> f64 {
    let (a, b) = (losses[0], losses[losses.len() - 1]);
    ts.iter().zip(losses).map(|(&t, &l)| l - ((1.0 - t) * a + t * b)).fold(0.0, f64::max)
}

/// Writes directions as safetensors (`d1/<param>`, `d2/<param>`).
pub fn save_directions(net: &Net<f32>, dirs: &[(&str, &Point)], path: &Path) -> Result<()> {
    use safetensors::{Dtype, tensor::TensorView};
    let mut blobs = vec![];
    for (prefix, d) in dirs {
        for ((name, id, _), v) in net.params.iter().zip(d.iter()) {
            let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
            blobs.push((format!("{prefix}/{name}"), net.graph.shape(*id)[1..].to_vec(), bytes));
        }
    }
    let views: Vec<(String, TensorView)> = blobs
        .iter()
        .map(|(n, s, b)| (n.clone(), TensorView::new(Dtype::F32, s.clone(), b).expect("sizes agree by construction")))
        .collect();
    let bytes =
        safetensors::serialize(views, None).map_err(|e| Error::io(path, std::io::Error::other(e.to_string())))?;
    crate::atomic::write_atomic(path, &bytes)
}

/// The top two principal directions of a trajectory's steps from its end, `θᵢ − θ_end`, by
/// eigen-decomposing their Gram matrix; each direction has unit norm. Returns the directions,
/// the fraction of the variance each explains, and every point's coordinates on them.
#[allow(clippy::type_complexity)]
pub fn pca_plane(trajectory: &[Point], end: &Point) -> Option<((Point, Point), (f64, f64), Vec<(f64, f64)>)> {
    let n = trajectory.len();
    if n < 2 {
        return None;
    }
    let diffs: Vec<Vec<f64>> = trajectory
        .iter()
        .map(|t| t.iter().zip(end).flat_map(|(a, b)| a.iter().zip(b).map(|(x, y)| *x as f64 - *y as f64)).collect())
        .collect();
    let mut gram = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            gram[i * n + j] = diffs[i].iter().zip(&diffs[j]).map(|(a, b)| a * b).sum();
        }
    }
    let total: f64 = (0..n).map(|i| gram[i * n + i]).sum();
    // Power iteration with deflation for the top two eigenvectors of the Gram matrix.
    let mut vecs: Vec<(f64, Vec<f64>)> = vec![];
    let mut g = gram.clone();
    for k in 0..2 {
        let mut v: Vec<f64> = (0..n).map(|i| 1.0 + (i as f64 * 0.37 + k as f64).sin()).collect();
        let mut lambda = 0.0;
        for _ in 0..2000 {
            let w: Vec<f64> = (0..n).map(|i| (0..n).map(|j| g[i * n + j] * v[j]).sum()).collect();
            let norm = w.iter().map(|x| x * x).sum::<f64>().sqrt();
            if norm == 0.0 {
                break;
            }
            lambda = norm;
            v = w.iter().map(|x| x / norm).collect();
        }
        for i in 0..n {
            for j in 0..n {
                g[i * n + j] -= lambda * v[i] * v[j];
            }
        }
        vecs.push((lambda, v));
    }
    // Directions in parameter space: Σᵢ vᵢ·diffᵢ, normalised.
    let shapes: Vec<usize> = end.iter().map(Vec::len).collect();
    let dir = |v: &[f64]| -> Vec<f64> {
        let mut d = vec![0.0; diffs[0].len()];
        for (vi, di) in v.iter().zip(&diffs) {
            d.iter_mut().zip(di).for_each(|(a, b)| *a += vi * b);
        }
        let norm = d.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-300);
        d.iter().map(|x| x / norm).collect()
    };
    let (d1, d2) = (dir(&vecs[0].1), dir(&vecs[1].1));
    let coords: Vec<(f64, f64)> = diffs
        .iter()
        .map(|x| (x.iter().zip(&d1).map(|(a, b)| a * b).sum(), x.iter().zip(&d2).map(|(a, b)| a * b).sum()))
        .collect();
    let split = |d: &[f64]| -> Point {
        let mut out = vec![];
        let mut at = 0;
        for &len in &shapes {
            out.push(d[at..at + len].iter().map(|&x| x as f32).collect());
            at += len;
        }
        out
    };
    let explained = if total > 0.0 { (vecs[0].0 / total, vecs[1].0 / total) } else { (f64::NAN, f64::NAN) };
    Some(((split(&d1), split(&d2)), explained, coords))
}

/// The plane through `theta` along two filter-normalised directions (seeds `seed`, `seed + 1`):
/// `(directions, loss, accuracy)` on `points × points` values of (α, β), row-major over β.
#[allow(clippy::type_complexity)]
pub fn plane(
    build: &(dyn Fn(usize) -> Result<Net<f32>> + Sync),
    data: &Samples,
    theta: &Point,
    seed: u64,
    biases: bool,
    points: usize,
    span: f64,
) -> Result<((Point, Point), Vec<f64>, Vec<f64>)> {
    let one = build(1)?;
    let d1 = filter_normalized(&one, theta, seed, biases);
    let d2 = filter_normalized(&one, theta, seed + 1, biases);
    let ax = axis(points, span);
    let coefs: Vec<Vec<f64>> = ax.iter().flat_map(|&b| ax.iter().map(move |&a| vec![a, b])).collect();
    let chunk = (crate::training::PART_BYTES / one.graph.bytes().max(1)).clamp(1, 256);
    let (loss, acc) = evaluate_points(build, data, theta, &[&d1, &d2], &coefs, chunk)?;
    Ok(((d1, d2), loss, acc))
}

/// `gradlab landscape --network FILE --params P`: what to draw.
pub struct PlaneStudy<'a> {
    /// The network file (its data and network; the first cell of a sweep).
    pub file: &'a Path,
    /// The parameters the plane goes through.
    pub params: &'a Path,
    /// Also the line from these parameters to `params`, and from `params` to `other`.
    pub start: Option<&'a Path>,
    pub other: Option<&'a Path>,
    /// Checkpoints `seed-<S>-iter-<n>.safetensors` of seed `trajectory_seed`: the plane of the
    /// trajectory's top two principal directions.
    pub trajectory: Option<&'a Path>,
    pub trajectory_seed: u64,
    pub points: usize,
    pub span: f64,
    pub direction_seed: u64,
    pub biases: bool,
    pub out: &'a Path,
    pub force: bool,
}

/// The checkpoints `seed-<seed>-iter-<n>.safetensors` in `dir`, in order of `n`, read by `load`
/// (at least two).
fn checkpoints(dir: &Path, seed: u64, load: &dyn Fn(&Path) -> Result<Point>) -> Result<Vec<Point>> {
    let prefix = format!("seed-{seed}-iter-");
    let mut files: Vec<(usize, std::path::PathBuf)> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let name = path.file_name()?.to_str()?.to_string();
            let n: usize = name.strip_prefix(&prefix)?.strip_suffix(".safetensors")?.parse().ok()?;
            Some((n, path))
        })
        .collect();
    files.sort();
    if files.len() < 2 {
        return Err(Error::data(
            dir,
            format!("needs at least two checkpoints {prefix}<n>.safetensors (save_params with save_every)"),
        ));
    }
    files.iter().map(|(_, p)| load(p)).collect()
}

/// Evaluates and writes the plane (grid.csv, directions.safetensors, figures), the lines and
/// the trajectory's plane; returns the summary (also in summary.json) and the samples per pass.
pub fn plane_study(s: &PlaneStudy) -> Result<(LandscapeSummary, usize)> {
    use crate::report::surface::{GridPanel, GridPanels};
    let lab = crate::experiments::lab::load(s.file)?;
    let cell = &lab.cells[0];
    let (data, _) = lab.data(0)?;
    let batch = data.n.min(256);
    let build = |e: usize| {
        crate::models::spec::build::<f32>(&cell.file.network, &data, e, batch).map_err(|err| err.in_file(s.file))
    };
    let load = |path: &std::path::Path| -> Result<Point> {
        let mut one = build(1)?;
        crate::models::params::load_all(&mut one, path)?;
        Ok(parameters(&one))
    };
    // Every input read before the first output is written: a bad --other or checkpoint is an
    // error with nothing half-written.
    let theta = load(s.params)?;
    let start = s.start.as_ref().map(|p| load(p)).transpose()?;
    let other = s.other.as_ref().map(|p| load(p)).transpose()?;
    let trajectory = s.trajectory.map(|dir| checkpoints(dir, s.trajectory_seed, &load)).transpose()?;
    crate::atomic::prepare_out_dir(s.out, s.force)?;
    let started = std::time::Instant::now();
    let ((d1, d2), loss, acc) = plane(&build, &data, &theta, s.direction_seed, s.biases, s.points, s.span)?;
    let grid_seconds = started.elapsed().as_secs_f64();
    let ax = axis(s.points, s.span);
    let mut csv = String::from("alpha,beta,loss,accuracy\n");
    for (j, b) in ax.iter().enumerate() {
        for (i, a) in ax.iter().enumerate() {
            let k = j * s.points + i;
            csv.push_str(&format!("{a},{b},{},{}\n", loss[k], acc[k]));
        }
    }
    crate::atomic::write_atomic(&s.out.join("grid.csv"), csv.as_bytes())?;
    let one = build(1)?;
    save_directions(&one, &[("d1", &d1), ("d2", &d2)], &s.out.join("directions.safetensors"))?;
    let log_loss: Vec<f64> = loss.iter().map(|l| l.max(1e-12).log10()).collect();
    let panels = vec![
        GridPanel::new("loss", "log10 training loss", &ax, &ax, &log_loss).with_axes("α (d₁)", "β (d₂)"),
        GridPanel::new("accuracy", "training accuracy", &ax, &ax, &acc).with_axes("α (d₁)", "β (d₂)"),
    ];
    let title = format!("{}: the plane through {}", s.file.display(), s.params.display());
    crate::report::figures::render(
        &s.out.join("plane"),
        &GridPanels { title: title.clone(), panels: panels.clone(), surface: false },
    )?;
    crate::report::figures::render(
        &s.out.join("plane-surface"),
        &GridPanels { title, panels: panels[..1].to_vec(), surface: true },
    )?;
    // Lines: from --start to --params, and from --params to --other.
    let ts: Vec<f64> = (0..=40).map(|i| i as f64 / 40.0).collect();
    let mut lines = vec![];
    let mut lines_csv = String::from("line,t,loss,accuracy\n");
    for (name, from, to) in
        [("start to params", start, Some(theta.clone())), ("params to other", Some(theta.clone()), other)]
    {
        let (Some(from), Some(to)) = (from, to) else { continue };
        let diff: Point = from.iter().zip(&to).map(|(a, b)| a.iter().zip(b).map(|(x, y)| y - x).collect()).collect();
        let coefs: Vec<Vec<f64>> = ts.iter().map(|&t| vec![t]).collect();
        let (l, a) = evaluate_points(&build, &data, &from, &[&diff], &coefs, 64)?;
        for ((t, lv), av) in ts.iter().zip(&l).zip(&a) {
            lines_csv.push_str(&format!("{name},{t},{lv},{av}\n"));
        }
        lines.push(LineSummary {
            name: name.into(),
            loss_start: l[0],
            loss_end: l[l.len() - 1],
            barrier: barrier(&ts, &l),
        });
    }
    if !lines.is_empty() {
        crate::atomic::write_atomic(&s.out.join("lines.csv"), lines_csv.as_bytes())?;
        // 1D curves: loss against t along each line (t at positions 1..=41, labelled every 0.25).
        use crate::report::figures::{Band, CurvePanels, Panel};
        let mut series = vec![];
        for l in &lines {
            let vals: Vec<f64> = lines_csv
                .lines()
                .skip(1)
                .filter(|row| row.starts_with(&format!("{},", l.name)))
                .filter_map(|row| row.split(',').nth(2)?.parse().ok())
                .collect();
            let xs: Vec<f64> = (1..=vals.len()).map(|i| i as f64).collect();
            series.push((l.name.clone(), Band { iterations: xs, median: vals.clone(), lo: vals.clone(), hi: vals }));
        }
        let names: Vec<String> =
            ts.iter().enumerate().map(|(i, t)| if i % 10 == 0 { format!("{t}") } else { String::new() }).collect();
        let panel = Panel {
            title: "training loss along straight lines".into(),
            y_label: "loss".into(),
            log_y: true,
            y_range: None,
            series,
            x_names: names,
            x_desc: "t (0: the line's start, 1: its end)".into(),
        };
        crate::report::figures::render(
            &s.out.join("lines"),
            &CurvePanels { title: s.file.display().to_string(), panels: vec![panel], columns: 1 },
        )?;
    }
    // The trajectory's own plane: its top two principal directions, the path drawn over it.
    let mut pca_explained = None;
    if let Some(points) = trajectory {
        let mut path_points = points.clone();
        path_points.push(theta.clone());
        if let Some(((p1, p2), explained, coords)) = pca_plane(&path_points, &theta) {
            let reach = coords.iter().map(|(a, b)| a.abs().max(b.abs())).fold(0.0, f64::max).max(1e-6) * 1.25;
            let ax2 = axis(s.points, reach);
            let coefs: Vec<Vec<f64>> = ax2.iter().flat_map(|&b| ax2.iter().map(move |&a| vec![a, b])).collect();
            let (pl, pa) = evaluate_points(&build, &data, &theta, &[&p1, &p2], &coefs, 256)?;
            let mut csv = String::from("alpha,beta,loss,accuracy\n");
            for (c, (l, a)) in coefs.iter().zip(pl.iter().zip(&pa)) {
                csv.push_str(&format!("{},{},{l},{a}\n", c[0], c[1]));
            }
            crate::atomic::write_atomic(&s.out.join("pca-grid.csv"), csv.as_bytes())?;
            let logl: Vec<f64> = pl.iter().map(|l| l.max(1e-12).log10()).collect();
            let axes = (format!("PC1 ({:.0}%)", 100.0 * explained.0), format!("PC2 ({:.0}%)", 100.0 * explained.1));
            let panel = GridPanel::new("loss", "log10 training loss, trajectory from ○", &ax2, &ax2, &logl)
                .with_axes(&axes.0, &axes.1)
                .with_path(coords.clone());
            crate::report::figures::render(
                &s.out.join("pca-plane"),
                &GridPanels {
                    title: format!("the training trajectory's plane ({} checkpoints)", points.len() + 1),
                    panels: vec![panel],
                    surface: false,
                },
            )?;
            save_directions(&one, &[("pc1", &p1), ("pc2", &p2)], &s.out.join("pca-directions.safetensors"))?;
            pca_explained = Some(explained);
        }
    }
    let centre = (s.points / 2) * s.points + s.points / 2;
    let summary = LandscapeSummary {
        points: s.points,
        span: s.span,
        loss_at_params: loss[centre],
        accuracy_at_params: acc[centre],
        min_loss_on_plane: loss.iter().copied().fold(f64::INFINITY, f64::min),
        max_loss_on_plane: loss.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        lines,
        grid_seconds,
        pca_explained_variance: pca_explained,
    };
    crate::report::write_json(&s.out.join("summary.json"), &summary)?;
    Ok((summary, data.n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pca_of_a_trajectory_in_a_plane_explains_all_of_it() {
        // Points on the plane spanned by e0 and e1 of a 3-vector (one tensor), ending at 0.
        let pts: Vec<Point> = (0..6).map(|i| vec![vec![i as f32, (i * i) as f32 * 0.1, 0.0]]).rev().collect();
        let end: Point = vec![vec![0.0, 0.0, 0.0]];
        let ((d1, d2), (e1, e2), coords) = pca_plane(&pts, &end).unwrap();
        assert!((e1 + e2 - 1.0).abs() < 1e-9, "{e1} + {e2}");
        assert!(d1[0][2].abs() < 1e-6 && d2[0][2].abs() < 1e-6, "the directions stay in the plane");
        // Coordinates reproduce each point's distance from the end.
        for (p, (a, b)) in pts.iter().zip(&coords) {
            let r2: f64 = p[0].iter().map(|x| (*x as f64).powi(2)).sum();
            assert!((a * a + b * b - r2).abs() < 1e-6 * (1.0 + r2));
        }
    }

    #[test]
    fn a_barrier_is_the_excess_over_the_chord() {
        let ts = [0.0, 0.25, 0.5, 0.75, 1.0];
        assert_eq!(barrier(&ts, &[1.0, 1.0, 1.0, 1.0, 1.0]), 0.0);
        assert!((barrier(&ts, &[1.0, 2.0, 3.5, 2.0, 2.0]) - 2.0).abs() < 1e-12, "3.5 over the chord's 1.5");
        assert_eq!(axis(3, 1.0), vec![-1.0, 0.0, 1.0]);
    }
}
