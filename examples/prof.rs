fn main() {
    let e: usize = std::env::args().nth(1).unwrap().parse().unwrap();
    let s = gradlab::bench::detect_step_seconds(e, std::time::Duration::from_secs(2)).unwrap();
    println!("E={e}: {:.3} ms/model", s * 1e3 / e as f64);
}
