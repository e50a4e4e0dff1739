//! Many seeds without drowning in output: a run keeps log-spaced rows by default, and
//! curves.csv's quantiles over seeds are exact at the kept iterations.

use gradlab::activations::Activation;
use gradlab::data::generators;
use gradlab::experiments::presets::{Fc73, LossKind};
use gradlab::record::Run;
use gradlab::training::kept_rows::keep_row;
use gradlab::training::{TrainOptions, train};

fn run(all_rows: bool) -> Run {
    let data = generators::random(64, 0).samples();
    let held = generators::random(64, 1).samples();
    // Sigmoid+L2 runs long: several seeds stop at different iterations, most hit the cap.
    let cfg = Fc73::new(Activation::Sigmoid, LossKind::L2);
    let mut net = cfg.build::<f32>(6, 64).unwrap();
    let opts = TrainOptions { max_iters: 3000, all_rows, held_out_every: Some(50), ..TrainOptions::new(6) };
    train("s", &mut net, &data, Some(&held), &opts, &mut |_, _| true).unwrap()
}

#[test]
fn thinned_rows_are_the_full_rows_at_the_kept_iterations() {
    let (all, thin) = (run(true), run(false));
    let k = all.columns.len();
    let held = all.columns.iter().position(|c| c == "held_out_accuracy").unwrap();
    for s in 0..all.seeds.len() {
        let (a, t) = (&all.at[s], &thin.at[s]);
        assert_eq!(a.len(), all.rows[s].len() / k);
        assert!(t.len() < a.len() / 4, "seed {s}: {} of {} rows kept", t.len(), a.len());
        assert_eq!(t.last(), a.last(), "every seed's last row is kept");
        for (j, &it) in t.iter().enumerate() {
            let i = a.iter().position(|&x| x == it).expect("a kept row is a row");
            assert_eq!(
                &thin.rows[s][j * k..(j + 1) * k].iter().map(|v| v.to_bits()).collect::<Vec<_>>()[..],
                &all.rows[s][i * k..(i + 1) * k].iter().map(|v| v.to_bits()).collect::<Vec<_>>()[..]
            );
        }
        let mut measured = 0;
        for (i, &it) in a.iter().enumerate() {
            let has_held = all.rows[s][i * k + held].is_finite();
            measured += usize::from(has_held);
            let must = keep_row(i) || Some(&it) == a.last() || (has_held && keep_row(measured - 1));
            assert_eq!(t.contains(&it), must, "seed {s} iteration {it}");
        }
        assert!(measured > 64, "the run measures held-out more than 64 times ({measured})");
    }
    assert_eq!(all.iterations, thin.iterations);
}

#[test]
fn curves_csv_holds_exact_quantiles_over_seeds() {
    let r = run(false);
    let dir = std::env::temp_dir().join(format!("gradlab-rows-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    gradlab::report::write_run_csvs(&dir, std::slice::from_ref(&r)).unwrap();
    let text = std::fs::read_to_string(dir.join("curves.csv")).unwrap();
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = head.iter().position(|h| *h == "loss_median").unwrap();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), gradlab::report::iteration_grid(&r.at).len());
    // At each iteration: every seed's loss at its latest row up to there, median by sorting.
    for row in rows.iter().step_by(7) {
        let it: u32 = row[1].parse().unwrap();
        let mut v: Vec<f64> = (0..r.seeds.len())
            .filter_map(|s| {
                let j = r.at[s].iter().rposition(|&x| x <= it)?;
                Some(r.rows[s][j * r.columns.len()] as f64)
            })
            .collect();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
        let got: f32 = row[col].parse().unwrap();
        assert_eq!(got, median as f32, "iteration {it}");
        let running = r.at.iter().filter(|a| a.last().is_some_and(|&l| l >= it)).count();
        assert_eq!(row[2].parse::<usize>().unwrap(), running);
    }
    let metrics = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    assert_eq!(metrics.lines().count() - 1, r.at.iter().map(Vec::len).sum::<usize>());
    std::fs::remove_dir_all(&dir).unwrap();
}
