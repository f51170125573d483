//! What one test's database and app cost to set up: run by hand with
//! `cargo test --test api setup_cost -- --ignored --nocapture`.
use std::time::{Duration, Instant};

use crate::helpers::spawn_app;

#[tokio::test]
#[ignore = "a measurement, not a spec"]
async fn setup_cost() {
    // The first pays for the server (and the template, where there is one).
    let started = Instant::now();
    drop(spawn_app().await);
    println!("first spawn_app + drop: {:?}", started.elapsed());
    const N: u32 = 20;
    let (mut spawn, mut total) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..N {
        let started = Instant::now();
        let app = spawn_app().await;
        spawn += started.elapsed();
        drop(app);
        total += started.elapsed();
    }
    println!(
        "mean over {N}: spawn_app {:?}, spawn_app + drop {:?}",
        spawn / N,
        total / N
    );
}
