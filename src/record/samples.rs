//! Per-sample training dynamics of one seed (`training::sample_dynamics` writes them):
//! forgetting events (Toneva et al. 2019), the data-map coordinates (Swayamdipta et al. 2020),
//! EL2N and GraNd at chosen iterations (Paul et al. 2021); and, for C-scores (Jiang et al.
//! 2021), which samples a seed trained on and which it got right after training, and the
//! estimate (`experiments::cscores` computes it).

use serde::Serialize;

/// One seed's per-sample record. Every vector has one entry per training sample.
#[derive(Clone, Debug, Default)]
pub struct SeedSamples {
    /// How often the sample was evaluated: every evaluated iteration (full batch) or every time
    /// its minibatch was presented.
    pub evaluations: Vec<u32>,
    /// How many of those evaluations got it right.
    pub correct: Vec<u32>,
    /// Transitions from right to wrong between consecutive evaluations.
    pub forgetting_events: Vec<u32>,
    /// Right at least once.
    pub ever_correct: Vec<bool>,
    /// Mean probability of the true class over the evaluations.
    pub confidence: Vec<f64>,
    /// Its standard deviation (ddof 0).
    pub variability: Vec<f64>,
    /// EL2N and GraNd at the asked iterations.
    pub scored: Vec<ScoredAt>,
    /// Every evaluation `(iteration, sample, correct, p_true)`, when asked (`samples.trace`).
    pub trace: Vec<(u32, u32, bool, f64)>,
}

/// EL2N and GraNd of every sample at one iteration (the parameters after `iteration − 1`
/// updates; a seed that stopped earlier is scored with its last parameters).
#[derive(Clone, Debug, Default)]
pub struct ScoredAt {
    pub iteration: u32,
    pub el2n: Vec<f64>,
    pub grand: Vec<f64>,
}

impl SeedSamples {
    pub fn new(n: usize) -> SeedSamples {
        SeedSamples {
            evaluations: vec![0; n],
            correct: vec![0; n],
            forgetting_events: vec![0; n],
            ever_correct: vec![false; n],
            confidence: vec![0.0; n],
            variability: vec![0.0; n],
            scored: vec![],
            trace: vec![],
        }
    }

    /// Toneva et al.'s forgetting count: the forgetting events, or for a sample never right the
    /// number of its evaluations (as `order_examples_by_forgetting.py` counts it).
    pub fn forgetting(&self, s: usize) -> u32 {
        if self.ever_correct[s] { self.forgetting_events[s] } else { self.evaluations[s] }
    }

    /// The fraction of evaluations that got the sample right (NaN if never evaluated).
    pub fn correctness(&self, s: usize) -> f64 {
        self.correct[s] as f64 / self.evaluations[s] as f64
    }
}

/// One C-score run of one seed: the samples it trained on and the verdict of each training
/// sample after training.
#[derive(Clone, Debug, Default)]
pub struct SubsetVerdicts {
    pub trained_on: Vec<bool>,
    pub correct: Vec<bool>,
}

/// The C-score estimate of every training sample.
#[derive(Clone, Debug, Serialize)]
pub struct CScores {
    pub ratios: Vec<f64>,
    pub seeds: usize,
    /// Epochs of each subset's training.
    pub epochs: usize,
    /// Per ratio, per sample: `C_r`.
    #[serde(skip)]
    pub per_ratio: Vec<Vec<f64>>,
    /// Per sample: the mean of `C_r` over the ratios.
    #[serde(skip)]
    pub cscore: Vec<f64>,
    /// Per ratio: how many seeds held each sample out, at the least.
    pub min_held_out: Vec<usize>,
}
