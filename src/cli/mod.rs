//! The command line: every option defined once, with its help and default; raw arguments are
//! resolved into a validated study config before any work starts.

pub mod reproduce;
pub mod sweep;
pub mod train;

use crate::engine::Reduction;
use crate::error::{Error, Result};
use crate::experiments::presets::LossKind;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

const EXIT_CODES: &str = "Exit codes: 0 success; 2 usage error (bad option or value, unusable --out); \
3 bad input data (a --data file missing, malformed or inconsistent); 4 file-system or runtime failure; \
130 interrupted (Ctrl-C; outputs so far are written and marked \"complete\": false).";

#[derive(Parser, Debug)]
#[command(
    name = "gradlab",
    version,
    about = "How activations, losses, initialisation and loss reduction shape gradients and training.",
    long_about = "gradlab reproduces and extends the experiments of a first deep-learning course \
(CIS 680 HW1): many seeds trained in lockstep by an exact, fast engine with automatic differentiation.\n\n\
Start with `gradlab reproduce --quick` (seconds), then `gradlab reproduce` (the full report).",
    after_help = EXIT_CODES
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// The main job: every study of the report over many seeds, and a report (report.html,
    /// report.md, results.json) whose every number comes from this run.
    #[command(after_help = EXIT_CODES)]
    Reproduce(reproduce::ReproduceArgs),
    /// Train one network family over many seeds and write metrics, summary and figures.
    Train {
        #[command(subcommand)]
        net: TrainNet,
    },
    /// The Task 2 study: Table 1's four settings (ReLU/sigmoid × CE/L2) plus the
    /// per-sample-bias variant of Sigmoid+L2 that the original code ran.
    #[command(after_help = EXIT_CODES)]
    Table1(Table1Args),
    /// Run an experiment file (TOML). A file with a [network] table describes its own data,
    /// layers, heads, initialisation, optimiser and training, and sweeps any of its keys
    /// (examples/networks/*.toml); the older form (`task = "fc"|"line"|"detect"|"landscape"`)
    /// sweeps activation × loss × lr × init std × reduction. Each cell is one ensemble of
    /// seeds; `--shard i/n` for job arrays. Data: `.npy`, `archive.npz:array` or `table.csv[:cols]`
    /// files, or `[data] generator =` random | line | detection | digits (compiled in) | circle |
    /// xor | gauss | spiral | plane | multi_gaussian (TensorFlow Playground's, with `noise`,
    /// `train_ratio`, `features`) | mnist | fashion_mnist (downloaded once into $GRADLAB_CACHE
    /// or ~/.cache/gradlab, SHA-256 checked).
    #[command(after_help = EXIT_CODES)]
    Run(sweep::RunArgs),
    /// The curvature of a network file's training loss at saved parameters (or its
    /// initialisation), from exact Hessian-vector products (forward-over-reverse in f64): the
    /// largest and smallest eigenvalues (Lanczos), the trace (Hutchinson, with its standard
    /// error), the eigenvalue density (stochastic Lanczos quadrature, as PyHessian), and for
    /// nets up to 3000 parameters the full spectrum; with the edge-of-stability threshold 2/lr.
    #[command(after_help = EXIT_CODES)]
    Hessian(sweep::HessianArgs),
    /// Check a network file's gradients against central finite differences in f64 at its
    /// initial parameters, per parameter tensor, with a verdict (exit 1 on a mismatch).
    #[command(after_help = EXIT_CODES)]
    Check(sweep::CheckArgs),
    /// Combine the output directories of `run --shard` into one.
    #[command(after_help = EXIT_CODES)]
    Merge(sweep::MergeArgs),
    /// Multi-run studies: leaky vs ReLU and exploding gradients (Tasks 3–4), depth, label noise
    /// (memorisation), data draw against initialisation.
    Study {
        #[command(subcommand)]
        which: StudyKind,
    },
    /// One neuron ŷ = act(w·x + b): output, L2 and cross-entropy losses and their gradients
    /// over a (w, b) grid, as figures (3D surface and heatmap with contours), grid.csv and a
    /// summary of the findings (Tasks 1 and 4). With --network and --params: a whole network's
    /// loss landscape (filter-normalised plane, lines, trajectory PCA).
    #[command(after_help = EXIT_CODES)]
    Landscape(LandscapeArgs),
    /// Measure speed against a large sgemm measured in the same run: training steps (fc73 per
    /// activation on the per-model path, the tape and portable kernels; the detect CNN on
    /// portable, AVX2 and AVX-512 kernels, on one core and on two, with the helper thread's
    /// calibration), file networks against builders,
    /// probe overhead, whole-network landscapes.
    Bench(crate::bench::BenchArgs),
    /// The live lab in a browser: pick a preset or edit an experiment file, press Run, and watch
    /// every seed's loss and accuracy (median and IQR), per-layer gradients and saturation, and
    /// the first seed's predictions while it trains; Task 1's neuron to drag over (w, b); past
    /// runs compared. Runs are written to --runs with exactly `gradlab run`'s outputs.
    #[command(after_help = EXIT_CODES)]
    Serve(ServeArgs),
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Port to listen on (0: any free port).
    #[arg(long, default_value_t = 8765)]
    pub port: u16,
    /// Address to bind. Anything but loopback requires the token printed at start on every call.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: std::net::IpAddr,
    /// Directory the page's runs are written to (one subdirectory per run).
    #[arg(long, value_name = "DIR", default_value = "gradlab-runs")]
    pub runs: PathBuf,
    /// A directory experiments may read data files from (repeatable) [default:
    /// ../shared/datasets and ./data where they exist].
    #[arg(long, value_name = "DIR")]
    pub data: Vec<PathBuf>,
    /// Open the page in the default browser (xdg-open / open).
    #[arg(long)]
    pub open: bool,
}

#[derive(Subcommand, Debug)]
pub enum TrainNet {
    /// The 73-parameter fully connected net (16 → 4 → 1) on the `random` dataset (Task 2).
    /// Lists in --act and --loss run every combination, each as one ensemble of --seeds models.
    #[command(after_help = EXIT_CODES)]
    Fc(FcArgs),
    /// The one-task CNN on `line` (Task 3): conv 7×7 1→16, act, conv 7×7 16→8, act, dense
    /// 128→1, sigmoid cross-entropy; stops at 100% training accuracy.
    #[command(after_help = EXIT_CODES)]
    Line(CnnArgs),
    /// The two-task CNN on `detection` (Task 3): the same trunk with a class head (sigmoid
    /// CE) and a width head (½Σ squared error); loss CE + 0.01·regression; stops when both
    /// accuracies (class; |ŵ − w| < 0.5) are 100%.
    #[command(after_help = EXIT_CODES)]
    Detect(CnnArgs),
}

#[derive(Subcommand, Debug)]
pub enum StudyKind {
    /// ReLU against leaky ReLU (slope 0.1) on line and detect: medians, IQRs and a two-sided
    /// Mann–Whitney U test on iterations-to-100%, plus dead-unit fractions (Task 4).
    #[command(after_help = EXIT_CODES)]
    LeakyVsRelu(StudyArgs),
    /// Exploding gradients on line and detect: baseline, loss summed over the batch, and
    /// initial weight std 1.0, the last two also with the gradient norm clipped to 1;
    /// converged / diverged / neither, and max |weight| (Task 3).
    #[command(after_help = EXIT_CODES)]
    Explosion(StudyArgs),
    /// Depth, past the report (Glorot & Bengio 2010): MLPs of 1..D hidden layers on `random`,
    /// sigmoid / tanh / ReLU × truncated-normal(0.1) / Xavier / He initialisation; the ratio of
    /// the first to the last hidden layer's gradient RMS, iterations to 100%, seeds converged.
    #[command(after_help = EXIT_CODES)]
    Depth(DepthArgs),
    /// The edge of stability (Cohen et al. 2021) on the built-in digits: their fully connected
    /// tanh [200, 200] net with the square loss under full-batch gradient descent at several
    /// learning rates η; the sharpness (Lanczos) every K iterations against 2/η, the iteration
    /// it first reaches 2/η, how it hovers there, and the loss's non-monotone fall.
    #[command(after_help = EXIT_CODES)]
    EdgeOfStability(EosArgs),
    /// Label noise (Arpit et al. 2017, Zhang et al. 2017): the report's nets on random, line and
    /// detection with a share of the training labels replaced by coin flips, each without and
    /// with a regulariser (dropout, weight decay, input noise); how fast and how far the net
    /// fits the clean and the corrupted labels (Arpit et al.'s Fig. 8), iterations to 100%,
    /// clean held-out accuracy and learning curves per noise level and arm.
    #[command(after_help = EXIT_CODES)]
    Memorisation(NoiseArgs),
    /// How BatchNorm helps optimisation (Santurkar et al. 2018): the digits CNN and the report's
    /// CNNs without and with BatchNorm before every hidden activation, under SGD; along each
    /// measured step's gradient (step sizes ¼–4× the learning rate, same batch) the range of
    /// the loss, the largest change of the gradient and the effective β-smoothness.
    #[command(after_help = EXIT_CODES)]
    Batchnorm(BatchnormArgs),
    /// Which samples are hard, forgotten, memorised: forgetting events (Toneva et al. 2019),
    /// data maps (Swayamdipta et al. 2020), EL2N and GraNd (Paul et al. 2021), C-scores (Jiang
    /// et al. 2021) and the learning order on random, line, detection and the digits, on the
    /// same seeds: their Spearman agreement, which finds flipped labels best, and held-out
    /// accuracy on the digits with the easiest k% removed by each.
    #[command(after_help = EXIT_CODES)]
    Samples(SamplesArgs),
    /// How much of the spread of iterations-to-100% comes from the 64-sample data draw and how
    /// much from the initial weights: D data seeds × S initial seeds per task, a two-way
    /// decomposition of the variance of log(iterations) with bootstrap intervals.
    #[command(name = "data-vs-init", after_help = EXIT_CODES)]
    DataVsInit(DataVsInitArgs),
}

#[derive(Args, Debug, Clone)]
pub struct BatchnormArgs {
    /// Seeds per task and arm, trained in lockstep.
    #[arg(long, default_value_t = 16)]
    pub seeds: usize,
    /// Iterations per run (every run trains them all).
    #[arg(long, default_value_t = 500)]
    pub max_iters: usize,
    /// Measure along the gradient every K iterations.
    #[arg(long, value_name = "K", default_value_t = 10)]
    pub every: usize,
    /// Tasks, comma-separated: digits (the digits CNN, minibatches of 64), line, detection
    /// (the report's CNNs, full batch).
    #[arg(long, value_delimiter = ',', default_value = "digits,line,detection")]
    pub tasks: Vec<String>,
    /// SGD's learning rate on the digits (line and detection keep the report's 0.1 and 0.01).
    #[arg(long, default_value_t = 0.05)]
    pub digits_lr: f64,
    /// Output directory: summary.json, batchnorm.md, batchnorm.svg/png, <task>/ with metrics.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Replace an earlier gradlab output in --out (cleared first; a directory holding other files is refused).
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug, Clone)]
pub struct NoiseArgs {
    /// Seeds per task and noise level.
    #[arg(long, default_value_t = 16)]
    pub seeds: usize,
    /// Shares of training labels replaced by coin flips, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0,0.25,0.5,1")]
    pub noise: Vec<f64>,
    /// Iteration cap per run.
    #[arg(long, default_value_t = 2000)]
    pub max_iters: usize,
    /// Tasks, comma-separated: random, line, detection.
    #[arg(long, value_delimiter = ',', default_value = "random,line,detection")]
    pub tasks: Vec<String>,
    /// Regulariser arms at every noise level, comma-separated: none, dropout, weight_decay,
    /// input_noise (Arpit et al. 2017, Sec. 5: do they slow memorisation more than learning?).
    #[arg(long, value_delimiter = ',', default_value = "none,dropout,weight_decay,input_noise")]
    pub arms: Vec<String>,
    /// The dropout arm's rate, after every hidden layer.
    #[arg(long, default_value_t = 0.5)]
    pub dropout: f64,
    /// The weight-decay arm's λ (SGD's `weight_decay`: g + λ·θ).
    #[arg(long, default_value_t = 0.01)]
    pub weight_decay: f64,
    /// The input-noise arm's σ, Gaussian noise added to the input while training.
    #[arg(long, default_value_t = 0.3)]
    pub input_noise: f64,
    /// Seed of the built-in data (the same draw at every noise level).
    #[arg(long, default_value_t = 0)]
    pub data_seed: u64,
    /// Output directory: summary.json, noise.md, <task>/ with metrics, curves and fit.svg/png
    /// (clean against corrupted labels fitted, per level and arm).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Replace an earlier gradlab output in --out (cleared first; a directory holding other files is refused).
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug, Clone)]
pub struct SamplesArgs {
    /// Seeds per task (and per C-score ratio, and per pruning run).
    #[arg(long, default_value_t = crate::training::DEFAULT_SEEDS)]
    pub seeds: usize,
    /// Share of training labels set to another class in the label-noise arm.
    #[arg(long, default_value_t = 0.2)]
    pub noise: f64,
    /// Shares of the digits removed in the pruning arm, comma-separated (0 is the baseline).
    #[arg(long, value_delimiter = ',', default_value = "0,0.1,0.2,0.3,0.4,0.5")]
    pub prune: Vec<f64>,
    /// C-score subset ratios, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9")]
    pub ratios: Vec<f64>,
    /// Tasks, comma-separated: random, line, detection, digits (pruning needs digits).
    #[arg(long, value_delimiter = ',', default_value = "random,line,detection,digits")]
    pub tasks: Vec<String>,
    /// Output directory: summary.json, samples.md, pruning.svg/png, and per task (and its
    /// noisy twin) the run's outputs with sample_measures.csv/json, data maps and extremes.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Replace an earlier gradlab output in --out (cleared first; a directory holding other files is refused).
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug, Clone)]
pub struct DataVsInitArgs {
    /// Data draws (built-in data seeds 0..D) per task.
    #[arg(long, default_value_t = 8)]
    pub draws: usize,
    /// Initial seeds per draw.
    #[arg(long, default_value_t = 16)]
    pub seeds: usize,
    /// Iteration cap per run (a seed that never converged counts at the cap).
    #[arg(long, default_value_t = 3000)]
    pub max_iters: usize,
    /// Tasks, comma-separated: random, line, detection.
    #[arg(long, value_delimiter = ',', default_value = "random,line,detection")]
    pub tasks: Vec<String>,
    /// Also train on the course files in DIR (laid out like ../shared/datasets/cis680-hw1/) and
    /// place their median among the draws'.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Output directory: summary.json, decomposition.md.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Replace an earlier gradlab output in --out (cleared first; a directory holding other files is refused).
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug, Clone)]
pub struct EosArgs {
    /// Learning rates of gradient descent, comma-separated (one panel pair each).
    #[arg(long, value_delimiter = ',', default_value = "0.05,0.1,0.2")]
    pub lrs: Vec<f64>,
    /// Iterations per learning rate.
    #[arg(long, default_value_t = 2000)]
    pub max_iters: usize,
    /// The sharpness every K iterations.
    #[arg(long, value_name = "K", default_value_t = 25)]
    pub every: usize,
    /// Seeds per learning rate (initialisations), in lockstep.
    #[arg(long, default_value_t = 2)]
    pub seeds: usize,
    /// Output directory: eos.csv, summary.json, metrics.csv, edge_of_stability.svg/png.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Replace an earlier gradlab output in --out (cleared first; a directory holding other files is refused).
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug, Clone)]
pub struct DepthArgs {
    /// Seeds per cell, trained in lockstep as one ensemble.
    #[arg(long, default_value_t = 16)]
    pub seeds: usize,
    /// Deepest MLP (hidden layers); every depth from 1 is run.
    #[arg(long, default_value_t = 8)]
    pub max_depth: usize,
    /// Units per hidden layer.
    #[arg(long, default_value_t = 32)]
    pub width: usize,
    /// Leave out the BatchNorm arm (each cell again with BatchNorm between every hidden layer
    /// and its activation).
    #[arg(long)]
    pub no_batchnorm: bool,
    /// Iteration cap per cell.
    #[arg(long, default_value_t = 2000)]
    pub max_iters: usize,
    /// Learning rate of plain gradient descent.
    #[arg(long, default_value_t = crate::training::REPORT_LR)]
    pub lr: f64,
    /// Seed of the built-in `random` data (64 samples, as Task 2's).
    #[arg(long, default_value_t = 0)]
    pub data_seed: u64,
    /// Output directory: summary.json, depth.md, depth.svg/png.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Replace an earlier gradlab output in --out (cleared first; a directory holding other files is refused).
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug, Clone)]
pub struct StudyArgs {
    /// Seeds per setting, trained in lockstep as one ensemble.
    #[arg(long, default_value_t = crate::training::DEFAULT_SEEDS)]
    pub seeds: usize,
    /// First seed.
    #[arg(long, default_value_t = 0)]
    pub first_seed: u64,
    /// Iteration cap per run.
    #[arg(long, default_value_t = crate::training::REPORT_MAX_ITERS)]
    pub max_iters: usize,
    /// Directory laid out like ../shared/datasets/cis680-hw1/; built-in generated data without it.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Seed of the built-in data generator (ignored with --data).
    #[arg(long, default_value_t = 0)]
    pub data_seed: u64,
    /// Output directory: summary.json, a markdown report, and line/ and detect/ subdirectories
    /// with each task's metrics and figures.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Replace an earlier gradlab output in --out (cleared first; a directory holding other files is refused).
    #[arg(long)]
    pub force: bool,
}

impl CommonArgs {
    /// --seeds as given; otherwise 32, or 1 with --init (every member would start the same).
    pub fn seeds(&self) -> usize {
        self.seeds.unwrap_or(crate::training::default_seeds(self.init.is_some()))
    }
}

impl StudyArgs {
    /// The shared options of a training command with these values and the defaults otherwise.
    pub fn common(&self) -> CommonArgs {
        CommonArgs {
            seeds: Some(self.seeds),
            first_seed: self.first_seed,
            lr: None,
            init_std: crate::training::REPORT_INIT_STD,
            bias_init: crate::training::REPORT_BIAS,
            max_iters: self.max_iters,
            reduction: Reduction::Mean,
            data: self.data.clone(),
            data_seed: self.data_seed,
            out: self.out.clone(),
            force: self.force,
            init: None,
            save_params: None,
            save_every: None,
            tensorboard: None,
            probe_every: crate::training::DEFAULT_PROBE_EVERY,
            held_out_every: crate::training::DEFAULT_HELD_OUT_EVERY,
            sharpness_every: 0,
            lambda_min: false,
            clip_norm: None,
            all_rows: false,
            samples: false,
            score_at: vec![],
        }
    }
}

#[derive(Args, Debug)]
pub struct CnnArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Activation(s) after each convolution, comma-separated (see `train fc --help`).
    #[arg(long, value_delimiter = ',', default_value = "relu")]
    pub act: Vec<String>,
    /// One conv bias per output position and channel (as the original two-task code had)
    /// instead of one per channel.
    #[arg(long)]
    pub untied_conv_bias: bool,
}

/// Options every training study shares.
#[derive(Args, Debug, Clone)]
pub struct CommonArgs {
    /// Number of seeds: models trained in lockstep as one ensemble, seeds FIRST_SEED.. [default: 32; 1 with --init].
    #[arg(long)]
    pub seeds: Option<usize>,
    /// First seed; model k uses seed FIRST_SEED + k for its initial weights.
    #[arg(long, default_value_t = 0)]
    pub first_seed: u64,
    /// Learning rate of plain gradient descent (full batch) [default: 0.1; 0.01 for detect].
    #[arg(long, allow_hyphen_values = true)]
    pub lr: Option<f64>,
    /// Standard deviation of the truncated-normal initial weights (redrawn beyond 2 std).
    #[arg(long, default_value_t = crate::training::REPORT_INIT_STD, allow_hyphen_values = true)]
    pub init_std: f64,
    /// Constant initial value of every bias.
    #[arg(long, default_value_t = crate::training::REPORT_BIAS, allow_hyphen_values = true)]
    pub bias_init: f64,
    /// Iteration cap; a seed that has not reached 100% accuracy by then counts as not converged.
    #[arg(long, default_value_t = crate::training::REPORT_MAX_ITERS)]
    pub max_iters: usize,
    /// How per-sample losses are reduced over the batch: mean, or sum (the report's
    /// "sum of losses", an effectively 64× larger step).
    #[arg(long, value_enum, default_value_t = Reduction::Mean)]
    pub reduction: Reduction,
    /// Directory laid out like ../shared/datasets/cis680-hw1/ (random/random_imgs.npy, ...).
    /// Without it, the built-in generator draws a dataset of the same distribution.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Seed of the built-in data generator (ignored with --data).
    #[arg(long, default_value_t = 0)]
    pub data_seed: u64,
    /// Output directory: metrics.csv, summary.json, a markdown table, figures (SVG + PNG).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Replace an earlier gradlab output in --out (cleared first; a directory holding other files is refused).
    #[arg(long)]
    pub force: bool,
    /// Start every model from the parameters in FILE (safetensors, PyTorch names and shapes;
    /// F32 or F64) instead of the random init (then --seeds defaults to 1).
    #[arg(long, value_name = "FILE")]
    pub init: Option<PathBuf>,
    /// Write each seed's final parameters to DIR/seed-<s>.safetensors (PyTorch names and shapes).
    #[arg(long, value_name = "DIR")]
    pub save_params: Option<PathBuf>,
    /// With --save-params: also save the initial parameters (seed-<s>-iter-0.safetensors) and
    /// every K updates (seed-<s>-iter-<n>.safetensors, the parameters after n updates), for
    /// the seeds still training.
    #[arg(long, value_name = "K", requires = "save_params")]
    pub save_every: Option<usize>,
    /// Also write TensorBoard event files: DIR/<setting>/seed-<s>/, one scalar per metric
    /// column and iteration (`tensorboard --logdir DIR`).
    #[arg(long, value_name = "DIR")]
    pub tensorboard: Option<PathBuf>,
    /// Per-layer probes (activation statistics, saturation, dead units, back-propagated and
    /// weight gradients, update ratios; layers.csv and figures) at iteration 1, at powers of two
    /// and every K iterations; 0 turns them off.
    #[arg(long, value_name = "K", default_value_t = crate::training::DEFAULT_PROBE_EVERY)]
    pub probe_every: usize,
    /// Held-out loss and accuracy every K iterations (columns held_out_loss, held_out_accuracy
    /// of metrics.csv and the curves); 0: only after training.
    #[arg(long, value_name = "K", default_value_t = crate::training::DEFAULT_HELD_OUT_EVERY)]
    pub held_out_every: usize,
    /// The sharpness (largest Hessian eigenvalue, by warm-started Lanczos on exact
    /// Hessian-vector products) every K iterations, per seed: column `sharpness`; 0: off.
    /// Compare it with 2/lr (the edge of stability).
    #[arg(long, value_name = "K", default_value_t = 0)]
    pub sharpness_every: usize,
    /// With --sharpness-every: also the smallest Hessian eigenvalue (column `lambda_min`;
    /// negative where the loss curves down, as ReLU nets' often does early on).
    #[arg(long, requires = "sharpness_every")]
    pub lambda_min: bool,
    /// Clip each model's global gradient norm to MAX before every step (as
    /// torch.nn.utils.clip_grad_norm_); off by default.
    #[arg(long, value_name = "MAX")]
    pub clip_norm: Option<f64>,
    /// Per-sample measures: forgetting events and the data map (confidence, variability,
    /// correctness) of every training sample, per seed: sample_measures.csv/json, data-map,
    /// forgetting and extremes figures (as `[samples]` in a network file).
    #[arg(long)]
    pub samples: bool,
    /// With --samples: also EL2N and GraNd of every training sample at these iterations,
    /// comma-separated (the parameters after it − 1 updates).
    #[arg(long, value_name = "IT,...", value_delimiter = ',', requires = "samples")]
    pub score_at: Vec<usize>,
    /// Write every evaluated row of every seed to metrics.csv. By default it keeps the first 64
    /// rows, then 16 per doubling of the iteration, and each seed's last; curves.csv has the
    /// exact quantiles over seeds at every kept iteration (at every one with this flag).
    #[arg(long)]
    pub all_rows: bool,
}

#[derive(Args, Debug)]
pub struct FcArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Hidden activation(s), comma-separated: identity, sigmoid, tanh, relu, leaky_relu[:slope]
    /// (slope 0.1 by default), elu[:alpha], selu, gelu, softplus, swish.
    #[arg(long, value_delimiter = ',', default_value = "sigmoid")]
    pub act: Vec<String>,
    /// Loss(es), comma-separated: l2 = squared error of σ(logit); ce = sigmoid cross-entropy.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "ce")]
    pub loss: Vec<LossKind>,
    /// Give every sample its own biases (hidden [64, 4], output [64, 1]): the variant the
    /// original code ran by mistake for Sigmoid+L2, which explains the report's number.
    #[arg(long)]
    pub per_sample_bias: bool,
}

#[derive(Args, Debug)]
pub struct LandscapeArgs {
    /// Activation of the neuron (any of `train fc --act`); cross-entropy is drawn only for
    /// sigmoid, the one activation whose output stays in (0, 1).
    #[arg(long, default_value = "sigmoid")]
    pub act: String,
    /// The input x.
    #[arg(long, default_value_t = 1.0, allow_hyphen_values = true)]
    pub x: f64,
    /// The target y.
    #[arg(long, default_value_t = 0.5, allow_hyphen_values = true)]
    pub y: f64,
    /// Half-width R of the square grid: w and b each over [-R, R]. Overridden per axis by
    /// --w-range / --b-range. The report: 6 for sigmoid (Task 1), 1 for leaky ReLU (Task 4).
    #[arg(long, default_value_t = 6.0)]
    pub range: f64,
    /// Weight axis as A,B (overrides --range for w).
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true, value_name = "A,B")]
    pub w_range: Option<Vec<f64>>,
    /// Bias axis as C,D (overrides --range for b).
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true, value_name = "C,D")]
    pub b_range: Option<Vec<f64>>,
    /// Grid points per axis (the report: 100; a network's plane: 51 is a good start).
    #[arg(long, default_value_t = 100)]
    pub points: usize,
    /// A whole network's landscape instead of one neuron's: the network file (its data and
    /// network; the first cell of a sweep), with --params.
    #[arg(long, value_name = "FILE.toml", requires = "params")]
    pub network: Option<PathBuf>,
    /// The parameters the plane goes through (safetensors, e.g. from save_params).
    #[arg(long, value_name = "FILE", requires = "network")]
    pub params: Option<PathBuf>,
    /// Initial parameters: also the straight line from them to --params.
    #[arg(long, value_name = "FILE", requires = "network")]
    pub start: Option<PathBuf>,
    /// Another solution (e.g. another seed's): also the line from --params to it (a barrier?).
    #[arg(long, value_name = "FILE", requires = "network")]
    pub other: Option<PathBuf>,
    /// Network plane: α and β each over [-SPAN, SPAN] (directions have the parameters' norms).
    #[arg(long, default_value_t = 1.0)]
    pub span: f64,
    /// Network plane: seed of the two random directions (filter-normalised, Li et al. 2018).
    #[arg(long, default_value_t = 0)]
    pub direction_seed: u64,
    /// Network plane: let the directions move biases too (they are 0 on biases by default).
    #[arg(long)]
    pub biases: bool,
    /// Also the plane of the training trajectory's top two principal directions, with the
    /// trajectory drawn over it: DIR holds `seed-<S>-iter-<n>.safetensors` checkpoints (from
    /// save_params with save_every) of the seed --trajectory-seed; --params is its end.
    #[arg(long, value_name = "DIR", requires = "network")]
    pub trajectory: Option<PathBuf>,
    /// The seed whose checkpoints --trajectory reads.
    #[arg(long, default_value_t = 0)]
    pub trajectory_seed: u64,
    /// Output directory: grid.csv, summary.json/md, <quantity>-surface/-heatmap.svg/png,
    /// heatmaps.svg/png and surfaces.svg/png.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Replace an earlier gradlab output in --out (cleared first; a directory holding other files is refused).
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct Table1Args {
    #[command(flatten)]
    pub common: CommonArgs,
}

// `--reduction mean|sum`, defined here so that the engine imports no command-line crate.
impl clap::ValueEnum for Reduction {
    fn value_variants<'a>() -> &'a [Self] {
        &Reduction::ALL
    }
    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.name()).help(match self {
            Reduction::Mean => "average over the batch (the report's default)",
            Reduction::Sum => "sum over the batch: a B-times larger step",
        }))
    }
}

/// Parses the command line and runs it. Help and version print and exit 0; bad usage exits 2.
pub fn run() -> Result<ExitCode> {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    match cli.command {
        Command::Train { net: TrainNet::Fc(args) } => {
            let acts = args
                .act
                .iter()
                .map(|a| crate::activations::Activation::parse(a).map_err(|e| Error::Usage(format!("--act: {e}"))))
                .collect::<Result<Vec<_>>>()?;
            let mut settings = vec![];
            for &act in &acts {
                for &loss in &args.loss {
                    settings.push(crate::experiments::fc_random::FcSetting {
                        act,
                        loss,
                        per_sample_bias: args.per_sample_bias,
                    });
                }
            }
            train::fc_study(&args.common, settings)
        }
        Command::Train { net: TrainNet::Line(args) } => train::cnn(crate::experiments::presets::CnnTask::Line, &args),
        Command::Train { net: TrainNet::Detect(args) } => {
            train::cnn(crate::experiments::presets::CnnTask::Detect, &args)
        }
        Command::Study { which: StudyKind::LeakyVsRelu(args) } => train::leaky_vs_relu(&args),
        Command::Study { which: StudyKind::Explosion(args) } => train::explosion(&args),
        Command::Study { which: StudyKind::Depth(args) } => train::depth(&args),
        Command::Study { which: StudyKind::EdgeOfStability(args) } => train::edge_of_stability(&args),
        Command::Study { which: StudyKind::Memorisation(args) } => train::memorisation(&args),
        Command::Study { which: StudyKind::Batchnorm(args) } => train::batchnorm(&args),
        Command::Study { which: StudyKind::Samples(args) } => train::samples(&args),
        Command::Study { which: StudyKind::DataVsInit(args) } => train::data_vs_init(&args),
        Command::Table1(args) => train::fc_study(&args.common, crate::experiments::fc_random::FcSetting::table1(true)),
        Command::Landscape(args) => landscape(&args),
        Command::Run(args) => sweep::run(&args),
        Command::Check(args) => sweep::check(&args),
        Command::Hessian(args) => sweep::hessian(&args),
        Command::Merge(args) => sweep::merge(&args),
        Command::Reproduce(args) => reproduce::reproduce(&args),
        Command::Bench(args) => crate::bench::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Serve(args) => serve(&args),
    }
}

fn serve(args: &ServeArgs) -> Result<ExitCode> {
    let data = if args.data.is_empty() {
        ["../shared/datasets", "data"].iter().map(PathBuf::from).filter(|p| p.is_dir()).collect()
    } else {
        for d in &args.data {
            if !d.is_dir() {
                return Err(Error::Usage(format!("--data {}: not a directory", d.display())));
            }
        }
        args.data.clone()
    };
    let server = crate::serve::start(crate::serve::ServeConfig {
        host: args.host,
        port: args.port,
        runs: args.runs.clone(),
        data: data.clone(),
    })?;
    let url = server.url();
    println!("gradlab lab at {url}");
    println!("runs are written to {}/", args.runs.display());
    if !data.is_empty() {
        println!(
            "experiments may read data from {}",
            data.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
        );
    }
    if server.token.is_some() {
        println!("not on loopback: every request needs the token in the address above");
    }
    println!("Ctrl-C stops the server; a run in progress is stopped and its outputs written, marked incomplete");
    if args.open {
        let opener = if cfg!(target_os = "macos") { "open" } else { "xdg-open" };
        if std::process::Command::new(opener).arg(&url).spawn().is_err() {
            eprintln!("could not start {opener}; open {url} yourself");
        }
    }
    let interrupted = train::interrupt_flag();
    while !interrupted.load(std::sync::atomic::Ordering::SeqCst) {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let stopped = server.stop_runs(std::time::Duration::from_secs(120));
    if stopped > 0 {
        eprintln!("stopped {stopped} run(s); their outputs are in {}/", args.runs.display());
    }
    server.stop();
    Ok(ExitCode::from(130))
}

fn landscape(args: &LandscapeArgs) -> Result<ExitCode> {
    if args.network.is_some() {
        return sweep::network_landscape(args);
    }
    use crate::experiments::landscape::{LandscapeConfig, compute, summary_markdown, write_outputs};
    let act = crate::activations::Activation::parse(&args.act).map_err(|e| Error::Usage(format!("--act: {e}")))?;
    if !(args.range.is_finite() && args.range > 0.0) {
        return Err(Error::Usage(format!("--range must be a positive number, got {}", args.range)));
    }
    let pair = |name: &str, v: &Option<Vec<f64>>| match v.as_deref() {
        None => Ok((-args.range, args.range)),
        Some(&[a, b]) => Ok((a, b)),
        Some(other) => Err(Error::Usage(format!("{name} takes two numbers A,B; got {} value(s)", other.len()))),
    };
    let cfg = LandscapeConfig {
        act,
        x: args.x,
        y: args.y,
        w_range: pair("--w-range", &args.w_range)?,
        b_range: pair("--b-range", &args.b_range)?,
        points: args.points,
    };
    cfg.validate()?;
    crate::atomic::prepare_out_dir(&args.out, args.force)?;
    let started = std::time::Instant::now();
    let grid = compute(&cfg)?;
    let computed = started.elapsed();
    let k = write_outputs(&args.out, &cfg, &grid)?;
    println!("{}", summary_markdown(&cfg, &k));
    println!(
        "computed {}×{} grid in {:.3} s; wrote {} in {:.1} s",
        cfg.points,
        cfg.points,
        computed.as_secs_f64(),
        args.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// `--act` values, each parsed with a suggestion on a typo.
pub fn parse_acts(names: &[String]) -> Result<Vec<crate::activations::Activation>> {
    names
        .iter()
        .map(|a| crate::activations::Activation::parse(a).map_err(|e| Error::Usage(format!("--act: {e}"))))
        .collect()
}
