//! Loading parameters must return an error, never panic, on any bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use gradlab::activations::Activation;
use gradlab::experiments::presets::{Fc73, LossKind};

fuzz_target!(|data: &[u8]| {
    let mut net = Fc73::new(Activation::Relu, LossKind::Ce).build::<f32>(2, 4).expect("builds");
    let _ = gradlab::models::params::load_bytes(&mut net, None, data, std::path::Path::new("fuzz.safetensors"));
});
