// tokio peers for heddle's sched benchmarks (current_thread runtime).
// Usage: heddle_tokio_peers {timers|parkwake} [N]
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::runtime::Builder;

fn reps() -> usize {
    std::env::var("REPS").ok().and_then(|s| s.parse().ok()).unwrap_or(5)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = values.len();
    if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 }
}

fn resident_kib() -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    for line in status.lines() {
        if let Some(rest) = line.strip_prefix("VmRSS:") {
            return rest.split_whitespace().next().and_then(|v| v.parse().ok()).unwrap_or(-1);
        }
    }
    -1
}

// Create a sleep, poll it once so that it registers its timer, drop it:
// ns per arm + cancel.
fn timer_churn(n: usize) -> f64 {
    let runtime = Builder::new_current_thread().enable_time().build().unwrap();
    runtime.block_on(async move {
        let start = Instant::now();
        for _ in 0..n {
            let sleep = tokio::time::sleep(Duration::from_secs(3600));
            tokio::pin!(sleep);
            tokio::select! {
                biased;
                _ = &mut sleep => {}
                _ = std::future::ready(()) => {}
            }
        }
        start.elapsed().as_nanos() as f64 / n as f64
    })
}

// n tasks parked on one Notify, then all woken: ns per task and resident
// bytes per parked task.
fn park_wake(n: usize) -> (f64, f64) {
    let runtime = Builder::new_current_thread().build().unwrap();
    runtime.block_on(async move {
        let before = resident_kib();
        let notify = Arc::new(tokio::sync::Notify::new());
        let started = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let mut handles = Vec::with_capacity(n);
        for _ in 0..n {
            let notify = notify.clone();
            let started = started.clone();
            handles.push(tokio::spawn(async move {
                let notified = notify.notified();
                started.fetch_add(1, Ordering::Relaxed);
                notified.await
            }));
        }
        // A Notified registers when first polled: let every task run until it
        // has, and then once more so that each is parked on the Notify.
        while started.load(Ordering::Relaxed) < n {
            tokio::task::yield_now().await;
        }
        tokio::task::yield_now().await;
        let during = resident_kib();
        notify.notify_waiters();
        for handle in handles {
            handle.await.unwrap();
        }
        let elapsed = start.elapsed().as_nanos() as f64 / n as f64;
        (elapsed, (during - before) as f64 * 1024.0 / n as f64)
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map(String::as_str).unwrap_or("timers");
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    match mode {
        "timers" => {
            let values: Vec<f64> = (0..reps()).map(|_| timer_churn(n)).collect();
            println!("tokio_timer_sleep_drop: {:.1} ns/op", median(values));
        }
        "parkwake" => {
            let runs: Vec<(f64, f64)> = (0..3).map(|_| park_wake(n)).collect();
            println!("tokio_park_wake_1m: {:.1} ns/task", median(runs.iter().map(|r| r.0).collect()));
            // Memory from the first run only: later runs reuse freed memory.
            println!("tokio_park_wake_1m_memory: {:.0} bytes/task", runs[0].1);
        }
        _ => {
            eprintln!("usage: heddle_tokio_peers {{timers|parkwake}} [N]");
            std::process::exit(2);
        }
    }
}
