// tokio peers for heddle's sched benchmarks.
// Usage: heddle_tokio_peers {timers|parkwake|parkchain|fib|wake} [N]
//   timers, parkwake  on a current_thread runtime
//   fib   fib(27), tokio::spawn per call (both children), each JoinHandle
//         awaited, on a multi-thread runtime of 2 workers: ms per fib(27)
//   wake  two spawned tasks ping-pong over mpsc channels, multi-thread
//         runtime of 2 workers (tokio decides where each runs: they may
//         share a worker): ns per round trip
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
    park_all(n, |notify, started| async move {
        let notified = notify.notified();
        started.fetch_add(1, Ordering::Relaxed);
        notified.await;
        0u8
    })
}

// Spawns n tasks made by `task(notify, started)` (each counts itself in
// `started`, then waits on `notify`) on a current_thread runtime, measures
// resident memory once all are parked, wakes them all and awaits them: ns
// per task and resident bytes per parked task. The handles' vector is made
// (and touched) first: it is not the tasks' memory.
fn park_all<F, Fut>(n: usize, task: F) -> (f64, f64)
where
    F: Fn(Arc<tokio::sync::Notify>, Arc<AtomicUsize>) -> Fut,
    Fut: std::future::Future<Output = u8> + Send + 'static,
{
    let runtime = Builder::new_current_thread().build().unwrap();
    runtime.block_on(async move {
        let mut handles: Vec<Option<tokio::task::JoinHandle<u8>>> = (0..n).map(|_| None).collect();
        let before = resident_kib();
        let notify = Arc::new(tokio::sync::Notify::new());
        let started = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        for handle in handles.iter_mut() {
            *handle = Some(tokio::spawn(task(notify.clone(), started.clone())));
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
            handle.unwrap().await.unwrap();
        }
        let elapsed = start.elapsed().as_nanos() as f64 / n as f64;
        (elapsed, (during - before) as f64 * 1024.0 / n as f64)
    })
}

// memory_per_parked_task: n tasks, each parked on one Notify at the end of
// an async call chain three functions deep (as heddle's and the other
// peers' tasks are): resident bytes per parked task. The chain's futures
// are nested in the task's one allocation.
#[inline(never)]
async fn chain_c(notify: Arc<tokio::sync::Notify>, started: Arc<AtomicUsize>) -> u8 {
    let locals = [1u8; 64];
    let notified = notify.notified();
    started.fetch_add(1, Ordering::Relaxed);
    notified.await;
    std::hint::black_box(locals)[0]
}
#[inline(never)]
async fn chain_b(notify: Arc<tokio::sync::Notify>, started: Arc<AtomicUsize>) -> u8 {
    chain_c(notify, started).await + 1
}
#[inline(never)]
async fn chain_a(notify: Arc<tokio::sync::Notify>, started: Arc<AtomicUsize>) -> u8 {
    chain_b(notify, started).await + 1
}

fn parked_chain_memory(n: usize) -> f64 {
    park_all(n, chain_a).1
}

fn fib(n: u64) -> std::pin::Pin<Box<dyn std::future::Future<Output = u64> + Send>> {
    Box::pin(async move {
        if n < 2 {
            return n;
        }
        let a = tokio::spawn(fib(n - 1));
        let b = tokio::spawn(fib(n - 2));
        a.await.unwrap() + b.await.unwrap()
    })
}

async fn fib_tree() -> f64 {
    let start = Instant::now();
    assert_eq!(tokio::spawn(fib(27)).await.unwrap(), 196418, "fib(27) gave the wrong sum");
    start.elapsed().as_secs_f64() * 1e3
}

async fn ping_pong(rounds: u32) -> f64 {
    let (ping_tx, mut ping_rx) = tokio::sync::mpsc::channel::<u32>(1);
    let (pong_tx, mut pong_rx) = tokio::sync::mpsc::channel::<u32>(1);
    let echo = tokio::spawn(async move {
        while let Some(v) = ping_rx.recv().await {
            if pong_tx.send(v).await.is_err() {
                break;
            }
        }
    });
    let pinger = tokio::spawn(async move {
        let start = Instant::now();
        for i in 0..rounds {
            ping_tx.send(i).await.unwrap();
            pong_rx.recv().await.unwrap();
        }
        start.elapsed().as_nanos() as f64 / rounds as f64
    });
    let ns = pinger.await.unwrap();
    echo.await.unwrap();
    ns
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
        "parkchain" => {
            // One run: a fresh process's first million tasks.
            println!("tokio_parked_chain_1m_memory: {:.0} bytes/task", parked_chain_memory(n));
        }
        "fib" | "wake" => {
            let runtime = Builder::new_multi_thread().worker_threads(2).build().unwrap();
            runtime.block_on(async {
                if mode == "fib" {
                    fib_tree().await; // warm-up
                    let mut values = Vec::new();
                    for _ in 0..reps() {
                        values.push(fib_tree().await);
                    }
                    println!("tokio_fib_tree_multi_thread_2w: {:.1} ms", median(values));
                } else {
                    ping_pong(1000).await;
                    let mut values = Vec::new();
                    for _ in 0..reps() {
                        values.push(ping_pong(100_000).await);
                    }
                    println!("tokio_wake_cross_thread_multi_thread_2w: {:.0} ns", median(values));
                }
            });
        }
        _ => {
            eprintln!("usage: heddle_tokio_peers {{timers|parkwake|parkchain|fib|wake}} [N]");
            std::process::exit(2);
        }
    }
}
