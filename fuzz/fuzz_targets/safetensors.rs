//! Loading parameters must return an error, never panic, on any bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use gradlab::activations::Activation;
use gradlab::models::fc::{self, FcConfig, LossKind};

fuzz_target!(|data: &[u8]| {
    let mut net = fc::build::<f32>(&FcConfig::new(Activation::Relu, LossKind::Ce), 2, 4).expect("builds");
    let _ = gradlab::models::params::load_bytes(&mut net, None, data, std::path::Path::new("fuzz.safetensors"));
});
