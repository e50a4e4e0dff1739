use gradlab::activations::Activation;
use gradlab::models::fc::LossKind;
fn main() {
    let act = match std::env::args().nth(1).as_deref() {
        Some("relu") => Activation::Relu,
        Some("tanh") => Activation::Tanh,
        _ => Activation::Sigmoid,
    };
    let s = gradlab::bench::fc73_step_seconds(32, act, LossKind::L2, std::time::Duration::from_secs(3)).unwrap();
    println!("{:.3} us/model-step", s * 1e6 / 32.0);
}
