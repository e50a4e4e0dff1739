//! A new measurement is one observer: a toy one, written here as a user would write it in its own
//! file, adds a column and sees every hook in order, and the run's other numbers stay exactly
//! those of a run without it.

use gradlab::activations::Activation;
use gradlab::experiments::presets::{Fc73, LossKind};
use gradlab::models::Net;
use gradlab::record::Run;
use gradlab::training::{At, Observer, TrainOptions, observers, train, train_observed};

/// Counts updates, and writes each evaluated row's count of updates so far (`it − 1`) and the
/// number of models still training.
#[derive(Default)]
struct Toy {
    steps: usize,
    started: bool,
}

impl Observer for Toy {
    fn columns(&self, _: &Net<f32>) -> Vec<String> {
        vec!["toy_updates".into(), "toy_active".into()]
    }
    fn start(&mut self, _: &mut Net<f32>, run: &mut Run) -> gradlab::Result<()> {
        assert!(run.columns.ends_with(&["toy_updates".to_string(), "toy_active".to_string()]));
        self.started = true;
        Ok(())
    }
    fn evaluated(&mut self, _: &Net<f32>, at: &At, run: &mut Run, _: &mut bool) {
        assert!(self.started, "start comes first");
        let active = at.active.iter().filter(|&&a| a).count() as f32;
        for (row, _) in run.rows.iter_mut().zip(at.active).filter(|(_, a)| **a) {
            row.extend([self.steps as f32, active]);
        }
    }
    fn after_step(&mut self, _: &Net<f32>, _: &At, _: &mut Run) -> gradlab::Result<()> {
        self.steps += 1;
        Ok(())
    }
}

#[test]
fn a_toy_observer_adds_its_columns_and_changes_nothing_else() {
    let data = gradlab::data::generate(gradlab::data::DatasetKind::Random, 64, 0).samples();
    let held = gradlab::data::generate(gradlab::data::DatasetKind::Random, 64, 1).samples();
    let cfg = Fc73::new(Activation::Relu, LossKind::Ce);
    let opts = TrainOptions { max_iters: 300, all_rows: true, ..TrainOptions::new(3) };
    let plain = train("relu+ce", &mut cfg.build(3, 64).unwrap(), &data, Some(&held), &opts, &mut |_, _| true).unwrap();

    let mut net = cfg.build(3, 64).unwrap();
    let mut obs = observers(&net, &data, Some(&held), &opts);
    obs.push(Box::new(Toy::default()));
    let toy = train_observed("relu+ce", &mut net, &data, &opts, &mut obs, &mut |_, _| true).unwrap();

    let n = plain.columns.len();
    assert_eq!(toy.columns[..n], plain.columns[..], "the loop's and the standard observers' columns come first");
    assert_eq!(toy.columns[n..], ["toy_updates".to_string(), "toy_active".to_string()]);
    assert_eq!((toy.iterations.clone(), toy.at.clone()), (plain.iterations.clone(), plain.at.clone()));
    assert_eq!(toy.held_out_accuracy, plain.held_out_accuracy);
    for s in 0..3 {
        let rows = toy.rows[s].chunks_exact(n + 2).zip(plain.rows[s].chunks_exact(n));
        for ((a, b), &it) in rows.zip(&toy.at[s]) {
            assert_eq!(
                a[..n].iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                b.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            );
            assert_eq!(a[n], (it - 1) as f32, "a row at iteration {it} follows {} updates", it - 1);
            assert!((1.0..=3.0).contains(&a[n + 1]));
        }
    }
}
