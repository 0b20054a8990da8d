//! strata's benchmark harness: load generator, peers (nginx, HAProxy), physical-limit probe and
//! report. Not built yet — it is issue 6; until then this binary says so and fails.

fn main() {
    eprintln!("the benchmark harness is not built yet (issue 6: `cargo xtask bench`)");
    std::process::exit(2);
}
