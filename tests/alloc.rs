//! A training step (forward, backward, optimiser) allocates nothing: every buffer is made when
//! the tape and the optimiser are built. Counted with a global allocator in this test binary.

use gradlab::data::generators;
use gradlab::init::WeightInit;
use gradlab::models::Init;
use gradlab::optim::{OptimConfig, OptimKind, Optimizer};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn steps_allocate(net: &mut gradlab::models::Net<f32>, optim: OptimConfig) -> usize {
    // The SIMD switch reads GRADLAB_SIMD once per process (a String when it is set).
    let _ = gradlab::engine::simd::enabled();
    let e = net.graph.ensemble();
    net.init(&Init::seeds(0, e, WeightInit::HeNormal, 0.0));
    let mut opt = Optimizer::new(optim, &net.graph);
    let active = vec![true; e];
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    for _ in 0..3 {
        net.graph.forward();
        net.graph.backward(net.loss);
        opt.step(&mut net.graph, &active);
    }
    ALLOCATIONS.load(Ordering::SeqCst) - before
}

#[test]
fn a_training_step_allocates_nothing() {
    use gradlab::experiments::presets::{Cnn, CnnTask};
    use gradlab::models::spec::{Layer, NetworkSpec, OutputSpec};
    let detection = generators::detection(16, 0);
    let cfg = Cnn {
        task: CnnTask::Detect,
        act: gradlab::activations::Activation::Relu,
        reduction: gradlab::engine::Reduction::Mean,
        untied_conv_bias: false,
    };
    let mut det = cfg.build::<f32>(2, 16).unwrap();
    det.set_data(&detection);
    let clip = OptimConfig { clip_norm: Some(1.0), ..OptimConfig::new(OptimKind::Adam, 0.01) };
    assert_eq!(steps_allocate(&mut det, clip), 0, "detect CNN with Adam and clipping");
    // A described network with padding (the im2col path), pooling, a residual and softmax.
    let mut line = generators::line(16, 0).samples();
    line.targets[0].classes = Some(2);
    let conv = |padding| Layer::Conv2d {
        channels: 4,
        kernel: 3,
        stride: 1,
        padding,
        act: Some("relu".into()),
        bias: Default::default(),
        name: None,
    };
    let spec = NetworkSpec {
        layers: vec![
            conv(1),
            Layer::Maxpool { kernel: 2, stride: None, name: None },
            conv(1),
            Layer::Residual { from: 1, act: None, name: None },
            Layer::Dense { units: 2, act: None, bias: Default::default(), name: None },
        ],
        output: OutputSpec { loss: Some("softmax_ce".into()), ..Default::default() },
        heads: None,
    };
    let mut net = gradlab::models::spec::build::<f32>(&spec, &line, 3, 16).unwrap();
    let all: Vec<usize> = (0..16).collect();
    net.feed(&line, &all);
    assert_eq!(steps_allocate(&mut net, OptimConfig::new(OptimKind::Nesterov, 0.01)), 0, "described CNN, Nesterov");
    // fc73 on the per-model path (where the CPU has it): its plan and scratch are made once,
    // at the first forward — here before counting — and steps allocate nothing after.
    use gradlab::experiments::presets::{Fc73, LossKind};
    let random = generators::random(64, 0).samples();
    let mut fc73 = Fc73::new(gradlab::activations::Activation::Sigmoid, LossKind::L2).build::<f32>(8, 64).unwrap();
    fc73.feed(&random, &(0..64).collect::<Vec<_>>());
    let _ = fc73.graph.is_fused();
    assert_eq!(steps_allocate(&mut fc73, OptimConfig::sgd(0.1)), 0, "fc73, plain SGD");
}
